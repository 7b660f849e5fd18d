// The ticker client: one import for browsers and Node.
export { backoffDelay, DEFAULT_BACKOFF, reconnectAdvice, SIGN_IN_CODES } from "./advice.js";
export { PROTOCOL, TickerClient } from "./client.js";
export { TickerError } from "./errors.js";
export { SeqTracker } from "./seq-tracker.js";
