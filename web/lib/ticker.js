// The page's connection to the server that serves it: the client package (`clients/js`, served
// at `/client/`) with this page's WebSocket address and access token (`token.js`). The package
// does the reconnecting, resuming, seq tracking and page-lifecycle handling.

import { TickerClient } from "../client/index.js";
import { accessToken } from "./token.js";

/** The server's WebSocket URL; the page names the path in `<meta name="ticker-socket">`. */
export function socketUrl() {
  const path = document.querySelector('meta[name="ticker-socket"]').content;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/**
 * A client of this page's server, not started yet. The pages show the connection's own state,
 * so there is no polling fallback here (the demo compares push with polling on purpose).
 * @param {import("../client/index.js").ClientOptions | object} [options]
 */
export function connect(options = {}) {
  return new TickerClient({ url: socketUrl(), token: accessToken, poll: false, ...options });
}
