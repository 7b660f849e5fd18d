// `TickerClient`: one live session with a ticker server, kept alive across failures. It
// reconnects with full-jitter backoff as the close code advises, resubscribes and resumes every
// symbol from its last seq (so nothing is lost while the server's ring holds it), refreshes its
// token before it expires, times requests out, watches for silence, and falls back to polling
// `/api/quotes` while no WebSocket gets through. There is never more than one socket.

import { backoffDelay, DEFAULT_BACKOFF, reconnectAdvice, SIGN_IN_CODES } from "./advice.js";
import { Emitter } from "./emitter.js";
import { TickerError } from "./errors.js";
import { QuotePoller } from "./poller.js";
import { SeqTracker } from "./seq-tracker.js";
import { httpBaseOf, withToken } from "./urls.js";

export const PROTOCOL = "ticker.v1";
// Used until `welcome` says otherwise, so a handshake that hangs is also given up on.
const DEFAULT_HEARTBEAT_MS = 5000;
// No message of any kind for this many heartbeat intervals means the connection is dead.
const SILENCE_LIMIT = 3;
/** How long a close may follow an `error` before the socket is taken as closed without one. */
const ERROR_CLOSE_GRACE_MS = 100;
const OPEN = 1;
const MAX_TIMER_MS = 2 ** 31 - 1;
const CONNECTING = 0;

const DEFAULTS = {
  symbols: [],
  requestTimeoutMs: 10_000,
  drainJitterMs: 1000,
  tokenRefreshMarginMs: 30_000,
  backoff: DEFAULT_BACKOFF,
  poll: { afterFailures: 3, intervalMs: 1000, retryWebSocketMs: 10_000 },
};

/** Errors that come with a `subscribed` after them: the rest of the request still applied. */
const PARTIAL = new Set(["unknown_symbol", "forbidden_symbol", "bad_request"]);

export class TickerClient extends Emitter {
  /** "idle", "connecting", "live", "reconnecting", "polling", "offline", "signed-out", "stopped" or "closed". */
  state = "idle";
  /** Failed attempts since the last welcome. */
  attempt = 0;
  /** Why the server closed for good: `{ code, reason }` while signed-out or stopped. */
  stopped = null;
  /** Date.now() of the last message received, 0 before the first. */
  lastMessageAt = 0;
  /** The current session's `welcome`, null between sessions. */
  welcome = null;

  #o;
  #WebSocket;
  #fetch;
  #symbols;
  #seqs = new SeqTracker();
  #ws = null;
  #welcomed = false;
  #generation = 0;
  #openedAt = 0;
  #heartbeatMs = DEFAULT_HEARTBEAT_MS;
  #failures = 0;
  #nextId = 0;
  /** id → { op, resolve, reject, timer, errors } */
  #pending = new Map();
  /** subscribe/unsubscribe calls made between sessions, settled by the next resubscribe. */
  #waiting = [];
  #resume = null;
  /** `welcome.run` of the last session: seqs only mean something within one run of the feed. */
  #run = undefined;
  #replayMarker = null;
  #reconnectTimer = 0;
  #pingTimer = 0;
  #watchdogTimer = 0;
  #refreshTimer = 0;
  /** Date.now() after which a draining server advised reconnecting; 0 without such advice. */
  #reconnectAt = 0;
  #token;
  #poller = null;
  #lifecycle = [];

  /** @param {import("./index.js").ClientOptions} options */
  constructor(options) {
    super();
    this.#o = {
      ...DEFAULTS,
      ...options,
      poll: options.poll === false ? false : { ...DEFAULTS.poll, ...options.poll },
    };
    this.#WebSocket = "WebSocket" in options ? options.WebSocket : globalThis.WebSocket;
    this.#fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    this.#symbols = new Set(this.#o.symbols);
  }

  /** Connects (and keeps connecting); returns the client. */
  start() {
    if (this.state !== "idle" && this.state !== "closed") return this;
    const browser = typeof globalThis.addEventListener === "function" && globalThis.navigator;
    if (this.#o.lifecycle ?? Boolean(browser)) this.#watchPage();
    if (this.#isOffline()) this.#goOffline();
    else this.#connect();
    return this;
  }

  /** Ends the session for good: no reconnect, no polling; pending requests are rejected. */
  close() {
    this.#discardSocket(1000);
    this.#stopPolling();
    clearTimeout(this.#refreshTimer);
    for (const remove of this.#lifecycle) remove();
    this.#lifecycle = [];
    this.#failPending("closed", "the client was closed", true);
    this.#setState("closed");
  }

  /** The symbols this client wants, in the order they were added. */
  get symbols() {
    return [...this.#symbols];
  }

  /** "websocket" while a session is live, "poll" while polling, else null. */
  get transport() {
    if (this.state === "live") return "websocket";
    return this.#poller?.running ? "poll" : null;
  }

  /** The extensions the server accepted (e.g. `permessage-deflate; …`). */
  get extensions() {
    return this.#ws?.extensions ?? "";
  }

  /** How many updates of `symbol` never arrived (seq jumps on the stream). */
  missed(symbol) {
    return this.#seqs.missed(symbol);
  }

  /** The newest seq of `symbol` this client has, if any. */
  lastSeq(symbol) {
    return this.#seqs.lastSeq(symbol);
  }

  /**
   * Adds `symbols`; settled by the server's `subscribed` (with any partial `errors` attached),
   * rejected with a TickerError for a refused request or a timeout.
   */
  subscribe(symbols, { timeoutMs } = {}) {
    for (const symbol of symbols) this.#symbols.add(symbol);
    return this.#subscription("subscribe", symbols, timeoutMs);
  }

  /** Removes `symbols` (and forgets their seqs); settled like `subscribe`. */
  unsubscribe(symbols, { timeoutMs } = {}) {
    const all = symbols.includes("*");
    for (const symbol of all ? [...this.#symbols] : symbols) {
      this.#symbols.delete(symbol);
      this.#seqs.forget(symbol);
    }
    return this.#subscription("unsubscribe", symbols, timeoutMs);
  }

  /** A symbol's bars: over the session when live, else from `GET /api/history/{symbol}`. */
  async history(symbol, { interval = "1m", limit, timeoutMs } = {}) {
    if (this.#isLive()) {
      const fields = limit === undefined ? { symbol, interval } : { symbol, interval, limit };
      return this.#request("history", fields, timeoutMs);
    }
    const query = new URLSearchParams({ interval });
    if (limit !== undefined) query.set("limit", String(limit));
    const path = `/api/history/${encodeURIComponent(symbol)}?${query}`;
    const body = await this.#http(path, timeoutMs);
    return { type: "history", ...body };
  }

  /** An application-level round trip; settled by the `pong`. */
  ping({ timeoutMs } = {}) {
    if (!this.#isLive()) return Promise.reject(new TickerError("disconnected", "not connected"));
    return this.#request("ping", {}, timeoutMs);
  }

  // --- connecting -------------------------------------------------------------------------

  async #connect() {
    const generation = ++this.#generation;
    this.#discardSocket();
    this.stopped = null;
    if (!this.#poller?.running) this.#setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let url;
    try {
      await this.#refreshToken();
      url = typeof this.#o.url === "function" ? await this.#o.url() : this.#o.url;
    } catch (error) {
      if (generation !== this.#generation) return;
      this.emit("error", error);
      this.#failed();
      return;
    }
    // A close(), an offline event or another connect came meanwhile.
    if (generation !== this.#generation || this.state === "closed") return;
    this.#httpBase = this.#o.httpUrl ?? httpBaseOf(url);
    if (!this.#WebSocket) {
      this.#startPolling();
      return;
    }
    let ws;
    try {
      ws = new this.#WebSocket(withToken(url, this.#token), PROTOCOL, this.#o.webSocketOptions);
    } catch (error) {
      this.emit("error", error);
      this.#failed();
      return;
    }
    // `error` is followed by `close`, which drives reconnection. Not always: Node 20's own
    // WebSocket reports a refused handshake with `error` alone, so a socket still current a
    // moment later is taken as closed. (A listener also keeps Node's `ws` from throwing.)
    ws.onerror = () => {
      setTimeout(() => {
        if (this.#ws === ws) this.#closed({ code: 1006, reason: "" });
      }, ERROR_CLOSE_GRACE_MS);
    };
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onclose = (event) => this.#closed(event);
    this.#ws = ws;
    this.#welcomed = false;
    this.#openedAt = Date.now();
    this.#armWatchdog();
  }

  #httpBase = "";

  /** The server closed (or the connection broke): reconnect as the close code says. */
  #closed(event) {
    const welcomed = this.#welcomed;
    this.#discardSocket();
    this.#sessionLost();
    const advice = reconnectAdvice(event.code);
    this.emit("disconnect", { code: event.code, reason: event.reason, advice });
    if (advice === "no") {
      this.stopped = { code: event.code, reason: event.reason };
      this.#stopPolling();
      clearTimeout(this.#refreshTimer);
      this.#failPending(
        "disconnected",
        `closed by the server (${event.code} ${event.reason})`.trim(),
        true,
      );
      this.#setState(SIGN_IN_CODES.includes(event.code) ? "signed-out" : "stopped");
      return;
    }
    if (advice === "now") this.attempt = 0;
    if (!welcomed) this.#failures += 1;
    if (!welcomed) {
      this.#failed();
      return;
    }
    this.#reconnect(advice === "now" ? 0 : undefined);
  }

  /** A connect that did not reach `welcome`: back off, and poll once it keeps failing. */
  #failed() {
    this.#discardSocket();
    const poll = this.#o.poll;
    if (poll && this.#failures >= poll.afterFailures) this.#startPolling();
    this.#reconnect();
  }

  #reconnect(delayMs) {
    this.#discardSocket();
    if (this.state === "closed") return;
    if (this.#isOffline()) {
      this.#goOffline();
      return;
    }
    this.attempt += 1;
    const polling = this.#poller?.running;
    if (!polling) this.#setState("reconnecting");
    // The server said when it would close this session: reconnect then, spread by jitter, and
    // reach another node (the draining one refuses new sessions).
    let delay = this.#reconnectAt
      ? Math.max(0, this.#reconnectAt - Date.now()) + Math.random() * this.#o.drainJitterMs
      : (delayMs ?? backoffDelay(this.attempt, this.#o.backoff));
    // While polling works, the WebSocket is tried again at a calmer pace.
    if (polling) delay = Math.max(delay, Math.random() * this.#o.poll.retryWebSocketMs);
    this.#reconnectAt = 0;
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #goOffline() {
    this.#generation += 1;
    this.#discardSocket();
    this.#sessionLost();
    this.#stopPolling();
    this.#setState("offline");
  }

  /** Detaches and closes the current socket and clears every timer tied to it. */
  #discardSocket(code) {
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#watchdogTimer);
    clearInterval(this.#pingTimer);
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.onmessage = null;
    ws.onclose = null;
    if (ws.readyState === CONNECTING || ws.readyState === OPEN) ws.close(code);
  }

  /** Between sessions: sent requests are answered by no one; subscriptions wait for the next. */
  #sessionLost() {
    this.welcome = null;
    this.#resume = null;
    this.#replayMarker = null;
    for (const [id, request] of this.#pending) {
      if (request.op === "subscribe" || request.op === "unsubscribe") {
        this.#pending.delete(id);
        this.#waiting.push(request);
      }
    }
    this.#failPending("disconnected", "the session ended before the answer", false);
  }

  /** Re-arms itself until nothing has arrived for SILENCE_LIMIT heartbeats, then reconnects. */
  #armWatchdog() {
    clearTimeout(this.#watchdogTimer);
    const lastSign = Math.max(this.lastMessageAt, this.#openedAt);
    const left = lastSign + SILENCE_LIMIT * this.#heartbeatMs - Date.now();
    if (left <= 0) {
      const welcomed = this.#welcomed;
      this.#discardSocket();
      this.#sessionLost();
      if (!welcomed) this.#failures += 1;
      if (welcomed) this.#reconnect();
      else this.#failed();
      return;
    }
    this.#watchdogTimer = setTimeout(() => this.#armWatchdog(), left);
  }

  // --- receiving --------------------------------------------------------------------------

  #receive(text) {
    this.lastMessageAt = Date.now();
    this.emit("frame", "in", text);
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.emit("error", new TickerError("bad_message", "the server sent text that is not JSON"));
      return;
    }
    this.emit("message", message);
    switch (message.type) {
      case "welcome":
        this.#onWelcome(message);
        break;
      case "subscribed":
        this.#onSubscribed(message);
        break;
      case "snapshot":
        this.#deliver("snapshot", message.quotes, "snapshot");
        break;
      case "quotes":
        this.#deliver("quotes", message.quotes, this.#replayMarker === null ? "live" : "replay");
        break;
      case "pong":
        if (message.id !== null && message.id === this.#replayMarker) this.#replayMarker = null;
        this.#settle(message.id, message);
        break;
      case "history":
        this.#settle(message.id, message);
        break;
      case "authenticated":
        this.#scheduleRefresh(message.expires_at);
        this.emit("authenticated", message);
        this.#settle(message.id, message);
        break;
      case "status":
        if (message.server === "draining") {
          this.#reconnectAt = Date.now() + message.reconnect_after_ms;
        }
        this.emit("status", message);
        break;
      case "error":
        this.#onError(message);
        break;
    }
  }

  #onWelcome(welcome) {
    this.welcome = welcome;
    this.#welcomed = true;
    this.#heartbeatMs = welcome.heartbeat_interval_ms;
    this.attempt = 0;
    this.#failures = 0;
    this.#stopPolling();
    this.#scheduleRefresh(welcome.expires_at);
    // Symbols the server does not know would only come back as `unknown_symbol`.
    if (welcome.symbols) {
      for (const symbol of this.#symbols) {
        if (symbol !== "*" && !welcome.symbols.includes(symbol)) this.#symbols.delete(symbol);
      }
    }
    this.#setState("live");
    this.#armWatchdog();
    // Browsers hide WebSocket Ping frames from scripts; an answered ping proves the path works.
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
    this.emit("welcome", welcome);
    const sameRun = !this.#run || !welcome.run || welcome.run === this.#run;
    this.#run = welcome.run ?? this.#run;
    this.#resubscribe(sameRun);
  }

  /**
   * A new session starts with no subscription: subscribe to everything, resuming from the last
   * seqs on the same run of the feed; on another run (a restarted server) without `since`, and
   * every symbol seen before counts as lost (its snapshot starts the new run's numbering).
   */
  #resubscribe(sameRun) {
    const symbols = this.symbols;
    if (!symbols.length) {
      const waiting = this.#waiting.splice(0);
      for (const request of waiting) {
        clearTimeout(request.timer);
        request.resolve({ type: "subscribed", symbols: [] });
      }
      return;
    }
    const since = this.#seqs.since(symbols);
    const resuming = Object.keys(since);
    const fields = resuming.length && sameRun ? { symbols, since } : { symbols };
    const id = this.#send("subscribe", fields);
    this.#resume = { id, symbols: resuming };
    // Replies come in order: the replayed updates arrive before this ping's pong.
    if (fields.since) this.#replayMarker = this.#send("ping", {});
  }

  #onSubscribed(message) {
    const resume = this.#resume;
    if (resume && message.id === resume.id) {
      this.#resume = null;
      const waiting = this.#waiting.splice(0);
      for (const request of waiting) {
        clearTimeout(request.timer);
        request.resolve({ ...message, errors: request.errors });
      }
      if (resume.symbols.length) {
        const recovered = message.recovered ?? [];
        const lost = resume.symbols.filter((s) => !recovered.includes(s));
        this.#seqs.resync(lost);
        this.emit("resumed", { recovered, lost });
      }
    }
    this.emit("subscribed", message);
    this.#settle(message.id, message);
  }

  #onError(message) {
    const error = new TickerError(message.code, message.message, message);
    // Symbols the server will never give us are not asked for again.
    if (message.code === "unknown_symbol" || message.code === "forbidden_symbol") {
      for (const symbol of message.symbols ?? []) this.#symbols.delete(symbol);
    }
    this.emit("error", error);
    const request = message.id === undefined ? undefined : this.#pending.get(message.id);
    if (!request) return;
    const partial =
      (request.op === "subscribe" || request.op === "unsubscribe") &&
      PARTIAL.has(message.code) &&
      message.symbols;
    if (partial) request.errors.push(message);
    else this.#settle(message.id, error);
  }

  /** Emits the quotes this client has not seen yet, in order, and the gaps before them. */
  #deliver(event, quotes, source) {
    const fresh = [];
    const all = this.#symbols.has("*");
    for (const quote of quotes) {
      // Updates of a removed symbol can still arrive until the server acknowledges the removal.
      if (!all && !this.#symbols.has(quote.symbol)) continue;
      const { accepted, gap, from } = this.#seqs.accept(quote);
      if (!accepted) continue;
      // Polling skips updates by design; only the stream promises every one.
      if (gap > 0 && source !== "poll") {
        this.#seqs.countMissed(quote.symbol, gap);
        this.emit("gap", { symbol: quote.symbol, after: from, seq: quote.seq, missed: gap });
      }
      fresh.push(quote);
    }
    if (fresh.length) this.emit(event, fresh, { source });
  }

  // --- requests ---------------------------------------------------------------------------

  #subscription(op, symbols, timeoutMs) {
    if (this.#isLive()) return this.#request(op, { symbols }, timeoutMs);
    // While polling the next poll asks for the new list; otherwise the next session's
    // resubscribe carries it and settles this call.
    if (this.#poller?.running) return Promise.resolve({ type: "subscribed", symbols: this.symbols });
    return new Promise((resolve, reject) => {
      const request = { op, resolve, reject, errors: [] };
      request.timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((r) => r !== request);
        reject(new TickerError("timeout", `no session to ${op} within the timeout`));
      }, timeoutMs ?? this.#o.requestTimeoutMs);
      this.#waiting.push(request);
    });
  }

  /** Sends `op` with a fresh id and settles by the reply carrying it, or times out. */
  #request(op, fields, timeoutMs) {
    return new Promise((resolve, reject) => {
      const id = this.#send(op, fields);
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TickerError("timeout", `no answer to ${op} (id ${id}) within the timeout`));
      }, timeoutMs ?? this.#o.requestTimeoutMs);
      this.#pending.set(id, { op, resolve, reject, timer, errors: [] });
    });
  }

  /** Sends `{op, id, ...fields}`; returns the id. */
  #send(op, fields) {
    const id = ++this.#nextId;
    const text = JSON.stringify({ op, ...fields, id });
    this.#ws.send(text);
    this.emit("frame", "out", text);
    return id;
  }

  #settle(id, outcome) {
    const request = id === undefined || id === null ? undefined : this.#pending.get(id);
    if (!request) return;
    this.#pending.delete(id);
    clearTimeout(request.timer);
    if (outcome instanceof Error) request.reject(outcome);
    else request.resolve(request.errors.length ? { ...outcome, errors: request.errors } : outcome);
  }

  #failPending(code, message, waitingToo) {
    const requests = [...this.#pending.values(), ...(waitingToo ? this.#waiting : [])];
    this.#pending.clear();
    if (waitingToo) this.#waiting = [];
    for (const request of requests) {
      clearTimeout(request.timer);
      request.reject(new TickerError(code, message));
    }
  }

  #heartbeat() {
    if (this.#isLive()) this.#send("ping", {});
  }

  #isLive() {
    return this.state === "live" && this.#ws?.readyState === OPEN;
  }

  // --- tokens -----------------------------------------------------------------------------

  /** Asks the token provider; returns whether the token changed. */
  async #refreshToken() {
    if (!this.#o.token) return false;
    const token = (await this.#o.token()) || undefined;
    const changed = token !== this.#token;
    this.#token = token;
    return changed;
  }

  #scheduleRefresh(expiresAt) {
    clearTimeout(this.#refreshTimer);
    if (!expiresAt || !this.#o.token) return;
    const left = expiresAt - Date.now();
    const margin = Math.min(this.#o.tokenRefreshMarginMs, left / 2);
    const delay = Math.max(0, left - margin);
    // Timers fire at once past 2^31 - 1 ms (24.8 days): a long-lived token is looked at again then.
    this.#refreshTimer =
      delay > MAX_TIMER_MS
        ? setTimeout(() => this.#scheduleRefresh(expiresAt), MAX_TIMER_MS)
        : setTimeout(() => this.#sendFreshToken(), delay);
  }

  /** Before the session's token expires: a fresh one with `auth`, not a reconnect. */
  async #sendFreshToken() {
    try {
      // The same token again would change nothing: the session ends at its expiry (4004).
      if (!(await this.#refreshToken()) || !this.#token || !this.#isLive()) return;
      await this.#request("auth", { token: this.#token });
    } catch (error) {
      this.emit("error", error);
    }
  }

  // --- polling ----------------------------------------------------------------------------

  #startPolling() {
    const poll = this.#o.poll;
    if (!poll || !this.#fetch || this.#poller?.running) return;
    this.#poller = new QuotePoller({
      base: this.#httpBase,
      symbols: () => this.symbols,
      token: () => this.#token,
      intervalMs: poll.intervalMs,
      timeoutMs: this.#o.requestTimeoutMs,
      fetch: this.#fetch,
      onQuotes: (quotes) => this.#deliver("quotes", quotes, "poll"),
      onFailure: (error) => this.emit("error", new TickerError("http", error.message)),
    });
    this.#poller.start();
    // Between sessions: settle what waits for one, the poll serves the new list.
    const waiting = this.#waiting.splice(0);
    for (const request of waiting) {
      clearTimeout(request.timer);
      request.resolve({ type: "subscribed", symbols: this.symbols });
    }
    this.#setState("polling");
  }

  #stopPolling() {
    this.#poller?.stop();
  }

  async #http(path, timeoutMs) {
    if (!this.#httpBase) {
      const url = typeof this.#o.url === "function" ? await this.#o.url() : this.#o.url;
      this.#httpBase = this.#o.httpUrl ?? httpBaseOf(url);
    }
    const response = await this.#fetch(withToken(this.#httpBase + path, this.#token), {
      signal: AbortSignal.timeout(timeoutMs ?? this.#o.requestTimeoutMs),
    });
    const body = await response.json();
    if (!response.ok) throw new TickerError(body.error ?? "http", body.message ?? `HTTP ${response.status}`, body);
    return body;
  }

  // --- the page ---------------------------------------------------------------------------

  #isOffline() {
    return globalThis.navigator?.onLine === false && this.#lifecycle.length > 0;
  }

  #watchPage() {
    const listen = (event, handler) => {
      globalThis.addEventListener(event, handler);
      this.#lifecycle.push(() => globalThis.removeEventListener(event, handler));
    };
    listen("offline", () => this.#goOffline());
    listen("online", () => {
      if (this.state === "offline") this.#connect();
    });
    // A page left for another may sit in the back/forward cache with its socket still open:
    // release the server's session on leaving, and connect again if the page is brought back.
    listen("pagehide", () => {
      this.#generation += 1;
      this.#discardSocket();
      this.#sessionLost();
      this.#stopPolling();
    });
    listen("pageshow", (event) => {
      if (event.persisted) this.#connect();
    });
  }

  #setState(state) {
    this.state = state;
    this.emit("state", { state, attempt: this.attempt, stopped: this.stopped });
  }
}
