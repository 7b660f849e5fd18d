// Addresses: the HTTP base of a WebSocket URL, and a token as `?token=` (browsers cannot set
// headers on a WebSocket, so the token travels in the query on both paths).

/** `ws://host:port/ws` → `http://host:port` (`wss` → `https`). */
export function httpBaseOf(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return url.origin;
}

/** `url` with `token` as `?token=`; unchanged without a token. */
export function withToken(url, token) {
  if (!token) return url;
  const full = new URL(url);
  full.searchParams.set("token", token);
  return full.href;
}
