// What a client does after a close, and how long it waits (docs/protocol.md, "Close codes").

/** Close codes of token problems: the user must sign in again (or get a fresh token). */
export const SIGN_IN_CODES = Object.freeze([4001, 4002, 4003, 4004]);

/**
 * What the server's close `code` tells a client to do: "no" (do not retry), "now" (reconnect at
 * once) or "backoff". Private codes are read by range, so codes added later are handled too.
 * @param {number} code
 * @returns {"no" | "now" | "backoff"}
 */
export function reconnectAdvice(code) {
  if (code === 1000 || [1002, 1003, 1007, 1009].includes(code)) return "no";
  if (code >= 4000 && code <= 4099) return "no";
  if (code >= 4100 && code <= 4199) return "now";
  return "backoff";
}

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, factor: 2, capMs: 5000 });

/**
 * Full jitter: a random wait below the capped exponential delay of `attempt` (from 1), so that
 * clients dropped together do not come back together.
 */
export function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * backoff.factor ** (attempt - 1));
  return random() * ceiling;
}
