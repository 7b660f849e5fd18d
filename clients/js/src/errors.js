// The one error type the client rejects with: a server `error` reply, a timeout, a lost session.

export class TickerError extends Error {
  /**
   * @param {string} code the server's error code, or "timeout", "disconnected", "closed", "http"
   * @param {string} message
   * @param {object} [reply] the server's `error` message, when there is one
   */
  constructor(code, message, reply) {
    super(message);
    this.name = "TickerError";
    this.code = code;
    this.reply = reply;
  }
}
