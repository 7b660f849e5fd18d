// One live WebSocket to the ticker server, kept alive across failures: reconnects with
// exponential backoff and full jitter, detects a silent connection with application pings,
// and waits for the browser to come back online. There is never more than one socket. A server
// that shuts down says when it will close the session (`draining`); the reconnect then waits for
// that moment plus jitter instead of the backoff. A close code that says "do not retry" (a token
// problem, a protocol error) stops it instead: state "signed-out" or "stopped", with the
// server's reason in `stopped`.

import { withToken } from "./token.js";

const PROTOCOL = "ticker.v1";
const BACKOFF = { baseMs: 500, factor: 2, capMs: 5000 };
// Used until `welcome` says otherwise, so a handshake that hangs is also given up on.
const DEFAULT_HEARTBEAT_MS = 5000;
// No message of any kind for this many heartbeat intervals means the connection is dead.
const SILENCE_LIMIT = 3;
/** The most random delay added to a draining server's `reconnect_after_ms`. */
const DRAIN_JITTER_MS = 1000;

/** The server's WebSocket URL, with the access token if there is one (`token.js`); the page
 * names the path in `<meta name="ticker-socket">`. */
export function socketUrl() {
  const path = document.querySelector('meta[name="ticker-socket"]').content;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return withToken(`${scheme}//${location.host}${path}`);
}

/** Close codes of token problems (docs/protocol.md): the page must sign in again. */
const SIGN_IN_CODES = new Set([4001, 4002, 4003, 4004]);

/**
 * What the server's close `code` tells a client to do (docs/protocol.md, Close codes):
 * "no" (do not retry), "now" (reconnect at once) or "backoff".
 */
export function reconnectAdvice(code) {
  if (code === 1000 || [1002, 1003, 1007, 1009].includes(code)) return "no";
  if (code >= 4000 && code <= 4099) return "no";
  if (code >= 4100 && code <= 4199) return "now";
  return "backoff";
}

/** Full jitter: a random wait below the capped exponential delay of `attempt` (from 1). */
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF.capMs, BACKOFF.baseMs * BACKOFF.factor ** (attempt - 1));
  return Math.random() * ceiling;
}

export class Connection {
  /** Date.now() of the last message received, 0 before the first. */
  lastMessageAt = 0;
  state = "connecting";
  attempt = 0;
  /** Why the server closed for good: `{ code, reason }`, while the state is signed-out or stopped. */
  stopped = null;

  #url;
  #onMessage;
  #onState;
  #onFrame;
  #ws = null;
  #openedAt = 0;
  #heartbeatMs = DEFAULT_HEARTBEAT_MS;
  #pingId = 0;
  #reconnectTimer = 0;
  #pingTimer = 0;
  #watchdogTimer = 0;
  /** Date.now() after which a draining server advised reconnecting; 0 without such advice. */
  #reconnectAt = 0;

  /**
   * @param {object} options
   * @param {string} options.url
   * @param {(message: object) => void} options.onMessage every parsed server message
   * @param {(state: string, attempt: number) => void} options.onState
   * @param {(direction: "in" | "out", text: string) => void} [options.onFrame] raw text frames
   */
  constructor({ url, onMessage, onState, onFrame = () => {} }) {
    this.#url = url;
    this.#onMessage = onMessage;
    this.#onState = onState;
    this.#onFrame = onFrame;
  }

  start() {
    addEventListener("offline", () => this.#goOffline());
    addEventListener("online", () => {
      if (this.state === "offline") this.#open();
    });
    // A page left for another may sit in the back/forward cache with its socket still open:
    // release the server's session on leaving, and connect again if the page is brought back.
    addEventListener("pagehide", () => this.#discardSocket());
    addEventListener("pageshow", (event) => {
      if (event.persisted) this.#open();
    });
    if (navigator.onLine) this.#open();
    else this.#goOffline();
  }

  /** Sends `message` as JSON if the server has welcomed us; returns whether it was sent. */
  send(message) {
    // The socket may already be closing while its `close` event is still on its way.
    if (this.state !== "live" || this.#ws.readyState !== WebSocket.OPEN) return false;
    const text = JSON.stringify(message);
    this.#ws.send(text);
    this.#onFrame("out", text);
    return true;
  }

  #open() {
    this.#discardSocket();
    this.stopped = null;
    this.#setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.#url, PROTOCOL);
    // `error` is always followed by `close`, so `close` alone drives reconnection.
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onclose = (event) => this.#closed(event);
    this.#ws = ws;
    this.#openedAt = Date.now();
    this.#armWatchdog();
  }

  /** The extensions the server accepted (e.g. `permessage-deflate; server_no_context_takeover`). */
  get extensions() {
    return this.#ws?.extensions ?? "";
  }

  #receive(text) {
    this.lastMessageAt = Date.now();
    this.#onFrame("in", text);
    const message = JSON.parse(text);
    if (message.type === "welcome") this.#welcomed(message);
    if (message.type === "status" && message.server === "draining") {
      this.#reconnectAt = Date.now() + message.reconnect_after_ms;
    }
    this.#onMessage(message);
  }

  #welcomed(welcome) {
    this.#heartbeatMs = welcome.heartbeat_interval_ms;
    this.attempt = 0;
    this.#setState("live");
    this.#armWatchdog();
    // Browsers hide WebSocket Ping frames from scripts; an answered ping proves the path works.
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(
      () => this.send({ op: "ping", id: ++this.#pingId }),
      this.#heartbeatMs,
    );
  }

  /** Re-arms itself until nothing has arrived for SILENCE_LIMIT heartbeats, then reconnects. */
  #armWatchdog() {
    clearTimeout(this.#watchdogTimer);
    const lastSign = Math.max(this.lastMessageAt, this.#openedAt);
    const left = lastSign + SILENCE_LIMIT * this.#heartbeatMs - Date.now();
    if (left <= 0) {
      this.#reconnect();
      return;
    }
    this.#watchdogTimer = setTimeout(() => this.#armWatchdog(), left);
  }

  /** The server closed (or the connection broke): reconnect as the close code says. */
  #closed(event) {
    const advice = reconnectAdvice(event.code);
    if (advice === "no") {
      this.#discardSocket();
      this.stopped = { code: event.code, reason: event.reason };
      this.#setState(SIGN_IN_CODES.has(event.code) ? "signed-out" : "stopped");
      return;
    }
    if (advice === "now") this.attempt = 0;
    this.#reconnect(advice === "now" ? 0 : undefined);
  }

  #reconnect(delayMs) {
    this.#discardSocket();
    if (!navigator.onLine) {
      this.#goOffline();
      return;
    }
    this.attempt += 1;
    this.#setState("reconnecting");
    // The server said when it would close this session: reconnect then, spread by jitter, and
    // reach another node (the draining one refuses new sessions).
    const delay = this.#reconnectAt
      ? Math.max(0, this.#reconnectAt - Date.now()) + Math.random() * DRAIN_JITTER_MS
      : (delayMs ?? backoffDelay(this.attempt));
    this.#reconnectAt = 0;
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
  }

  #goOffline() {
    this.#discardSocket();
    this.#setState("offline");
  }

  /** Detaches and closes the current socket and clears every timer tied to it. */
  #discardSocket() {
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#watchdogTimer);
    clearInterval(this.#pingTimer);
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.onmessage = null;
    ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
  }

  #setState(state) {
    this.state = state;
    this.#onState(state, this.attempt, this.stopped);
  }
}
