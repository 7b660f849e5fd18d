// Types of the ticker client and of every message of protocol version 1 (docs/protocol.md).

// --- server → client ----------------------------------------------------------------------

export interface Quote {
  symbol: string;
  price: number;
  bid: number;
  ask: number;
  open: number;
  high: number;
  low: number;
  change: number;
  change_pct: number;
  volume: number;
  /** Per symbol, one more on every update. */
  seq: number;
  /** Unix epoch milliseconds. */
  ts: number;
}

export interface Bar {
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  n: number;
}

export type Interval = "1s" | "1m";

export interface Welcome {
  type: "welcome";
  version: 1;
  session_id: string;
  /** Every symbol, when the server has at most 256. */
  symbols?: string[];
  symbol_count: number;
  heartbeat_interval_ms: number;
  idle_timeout_ms: number;
  node: string;
  /** Names the feed's run: seqs of one run say nothing about another's. */
  run?: string;
  history?: {
    intervals: Partial<Record<Interval, number>>;
    resume_updates: number;
    max_resume_quotes: number;
  };
  /** Unix epoch milliseconds at which the session's token expires. */
  expires_at?: number;
  delay_ms?: number;
}

export interface Authenticated {
  type: "authenticated";
  id?: RequestId;
  expires_at: number;
}

export interface Subscribed {
  type: "subscribed";
  id?: RequestId;
  symbols: string[];
  recovered?: string[];
  /** Partial refusals (`unknown_symbol`, `forbidden_symbol`, …) that came before this reply. */
  errors?: ServerError[];
}

export interface Snapshot {
  type: "snapshot";
  quotes: Quote[];
}

export interface Quotes {
  type: "quotes";
  quotes: Quote[];
}

export interface Status {
  type: "status";
  feed: "live" | "stale";
  since?: number;
  server?: "draining";
  reconnect_after_ms?: number;
}

export interface Pong {
  type: "pong";
  id: RequestId | null;
}

export interface History {
  type: "history";
  id?: RequestId;
  symbol: string;
  interval: Interval;
  bars: Bar[];
}

export type ErrorCode =
  | "bad_request"
  | "unknown_symbol"
  | "too_many_subscriptions"
  | "too_many_symbols"
  | "forbidden_symbol"
  | "unauthorized"
  | "forbidden"
  | "rate_limited";

export interface ServerError {
  type: "error";
  id?: RequestId;
  code: ErrorCode | (string & {});
  message: string;
  symbols?: string[];
}

export type ServerMessage =
  | Welcome
  | Authenticated
  | Subscribed
  | Snapshot
  | Quotes
  | Status
  | Pong
  | History
  | ServerError;

// --- client → server ----------------------------------------------------------------------

export type RequestId = number | string | boolean | null | object;

export type ClientMessage =
  | { op: "subscribe"; symbols: string[]; since?: Record<string, number>; id?: RequestId }
  | { op: "unsubscribe"; symbols: string[]; id?: RequestId }
  | { op: "ping"; id?: RequestId }
  | { op: "history"; symbol: string; interval?: Interval; limit?: number; id?: RequestId }
  | { op: "auth"; token: string; id?: RequestId };

// --- the client ---------------------------------------------------------------------------

/** What a server's close code advises (docs/protocol.md, "Close codes"). */
export type ReconnectAdvice = "no" | "now" | "backoff";

export interface Backoff {
  baseMs: number;
  factor: number;
  capMs: number;
}

export interface PollOptions {
  /** Connects that fail in a row (no `welcome`) before polling starts. Default 3. */
  afterFailures?: number;
  /** Time between the starts of two polls. Default 1000. */
  intervalMs?: number;
  /** While polling, the WebSocket is tried again after a random wait below this. Default 10000. */
  retryWebSocketMs?: number;
}

/** The constructor of a WHATWG-style WebSocket: the browser's, Node 22's, or the `ws` package's. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: any): WebSocketLike;
}

export interface WebSocketLike {
  readonly readyState: number;
  readonly extensions: string;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ClientOptions {
  /** The server's WebSocket URL (`ws://host:port/ws`), or a function giving it before each connect. */
  url: string | (() => string | Promise<string>);
  /** Symbols to subscribe to on every session. */
  symbols?: string[];
  /**
   * Called before each connect and before the session's token expires; the token goes as
   * `?token=` on connect and with `auth` on an open session. Empty or null: no token.
   */
  token?: () => string | null | undefined | Promise<string | null | undefined>;
  /** The WebSocket implementation; default `globalThis.WebSocket`. None: polling only. */
  WebSocket?: WebSocketConstructor;
  /** Third argument of the WebSocket constructor (Node's `ws`: headers, origin, …). */
  webSocketOptions?: unknown;
  /** Default `globalThis.fetch`; used for polling and `history()` between sessions. */
  fetch?: typeof fetch;
  /** The server's HTTP origin; default derived from `url` (`ws` → `http`). */
  httpUrl?: string;
  /** A request unanswered this long is rejected with code "timeout". Default 10000. */
  requestTimeoutMs?: number;
  /** Reconnect backoff (full jitter). Default 500 ms doubling up to 5 s. */
  backoff?: Backoff;
  /** The most random delay added to a draining server's `reconnect_after_ms`. Default 1000. */
  drainJitterMs?: number;
  /** How long before `expires_at` a fresh token is sent (at most half the time left). Default 30000. */
  tokenRefreshMarginMs?: number;
  /** The polling fallback; `false` turns it off. */
  poll?: PollOptions | false;
  /** Page lifecycle (online/offline, back/forward cache); default on where `addEventListener` exists. */
  lifecycle?: boolean;
}

export type ConnectionState =
  | "idle"
  | "connecting"
  | "live"
  | "reconnecting"
  | "polling"
  | "offline"
  | "signed-out"
  | "stopped"
  | "closed";

export interface StateChange {
  state: ConnectionState;
  attempt: number;
  stopped: { code: number; reason: string } | null;
}

export interface Gap {
  symbol: string;
  /** The last seq before the gap. */
  after: number;
  /** The seq that came next. */
  seq: number;
  /** How many updates are missing. */
  missed: number;
}

export interface Resumed {
  /** Symbols whose missed updates were replayed. */
  recovered: string[];
  /** Symbols resumed but not recovered: they got a snapshot, with a hole before it. */
  lost: string[];
}

export type QuoteSource = "live" | "replay" | "poll" | "snapshot";

export interface ClientEvents {
  /** New updates, each once, in seq order per symbol. */
  quotes: (quotes: Quote[], info: { source: QuoteSource }) => void;
  snapshot: (quotes: Quote[], info: { source: "snapshot" }) => void;
  gap: (gap: Gap) => void;
  status: (status: Status) => void;
  /** Server `error` messages, transport and token provider failures. */
  error: (error: TickerError | Error) => void;
  state: (change: StateChange) => void;
  welcome: (welcome: Welcome) => void;
  subscribed: (subscribed: Subscribed) => void;
  resumed: (resumed: Resumed) => void;
  authenticated: (authenticated: Authenticated) => void;
  disconnect: (close: { code: number; reason: string; advice: ReconnectAdvice }) => void;
  /** Every parsed server message. */
  message: (message: ServerMessage) => void;
  /** Every text frame, both ways. */
  frame: (direction: "in" | "out", text: string) => void;
}

export interface RequestOptions {
  timeoutMs?: number;
}

export declare class TickerClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly attempt: number;
  readonly stopped: { code: number; reason: string } | null;
  readonly lastMessageAt: number;
  readonly welcome: Welcome | null;
  readonly symbols: string[];
  readonly transport: "websocket" | "poll" | null;
  readonly extensions: string;
  start(): this;
  close(): void;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  /**
   * Adds `symbols` to this client's list, kept across sessions. Settled by the server's
   * `subscribed`; between sessions by the next session's resubscribe; while polling at once
   * (the next poll asks for the new list). Rejected with a TickerError when refused or timed out.
   */
  subscribe(symbols: string[], options?: RequestOptions): Promise<Subscribed>;
  unsubscribe(symbols: string[], options?: RequestOptions): Promise<Subscribed>;
  history(
    symbol: string,
    options?: RequestOptions & { interval?: Interval; limit?: number },
  ): Promise<History>;
  ping(options?: RequestOptions): Promise<Pong>;
  missed(symbol: string): number;
  lastSeq(symbol: string): number | undefined;
}

export declare class TickerError extends Error {
  constructor(code: string, message: string, reply?: ServerError);
  /** The server's error code, or "timeout", "disconnected", "closed", "http", "bad_message". */
  readonly code: ErrorCode | "timeout" | "disconnected" | "closed" | "http" | "bad_message" | (string & {});
  readonly reply?: ServerError | object;
}

export declare class SeqTracker {
  since(symbols: string[]): Record<string, number>;
  resync(symbols: string[]): void;
  accept(quote: Quote): { accepted: boolean; gap: number; from: number | undefined };
  countMissed(symbol: string, count: number): void;
  missed(symbol: string): number;
  lastSeq(symbol: string): number | undefined;
  forget(symbol: string): void;
}

export declare const PROTOCOL: "ticker.v1";
export declare const SIGN_IN_CODES: readonly number[];
export declare const DEFAULT_BACKOFF: Readonly<Backoff>;
export declare function reconnectAdvice(code: number): ReconnectAdvice;
export declare function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;
