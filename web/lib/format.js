// Display formats, fixed to one locale so prices always read like 228.50.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export const price = (n) => n.toFixed(2);

export const signed = (n) => (n > 0 ? "+" : "") + n.toFixed(2);

export const percent = (n) => `${signed(n)}%`;

/** "up", "down" or "flat": the stylesheet colours by it. */
export const direction = (change) => (change > 0 ? "up" : change < 0 ? "down" : "flat");

export const count = (n) => integer.format(n);

export const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

export const millis = (ms) => `${integer.format(ms)} ms`;

/** A Unix time in ms as a wall-clock time, e.g. 14:03:27. */
export const clockTime = (ms) => new Date(ms).toLocaleTimeString("en-GB");

export function bytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}

/**
 * The connection state as shown to people, e.g. "reconnecting (attempt 3)"; for a connection
 * the server closed for good, what to do about it and the server's reason.
 */
export function connectionLabel(state, attempt, stopped) {
  const why = stopped?.reason ? `: ${stopped.reason}` : "";
  switch (state) {
    case "reconnecting":
      return `reconnecting (attempt ${attempt})`;
    case "signed-out":
      return `sign in again${why}`;
    case "stopped":
      return `disconnected${why}; reload to retry`;
    case "polling":
      return "polling (no WebSocket)";
    default:
      return state;
  }
}

/** Shows a figure: `text` for people, the raw number in `data-value`; "—" while there is none. */
export function showFigure(element, value, text) {
  const known = Number.isFinite(value);
  element.dataset.value = known ? String(value) : "";
  element.textContent = known ? text(value) : "—";
}
