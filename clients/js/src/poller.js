// The polling fallback: `GET /api/quotes?symbols=…` at a fixed rate with the last ETag in
// If-None-Match, so an unchanged answer is a bodiless 304. Used while no WebSocket gets through.

import { withToken } from "./urls.js";

export class QuotePoller {
  #options;
  #etag = "";
  #etagQuery = "";
  #timer = 0;
  #running = false;
  #controller = null;

  /**
   * @param {object} options
   * @param {string} options.base the server's HTTP origin
   * @param {() => string[]} options.symbols what to ask for, read before every request
   * @param {() => string | undefined} options.token
   * @param {number} options.intervalMs time between the starts of two requests
   * @param {number} options.timeoutMs a request that takes longer is abandoned
   * @param {typeof fetch} options.fetch
   * @param {(quotes: object[]) => void} options.onQuotes a 200's quotes
   * @param {(error: Error, status?: number) => void} options.onFailure
   */
  constructor(options) {
    this.#options = options;
  }

  get running() {
    return this.#running;
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    this.#poll();
  }

  stop() {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#controller?.abort();
    this.#controller = null;
  }

  async #poll() {
    const { base, symbols, token, intervalMs, timeoutMs, onQuotes, onFailure } = this.#options;
    const started = Date.now();
    const list = symbols();
    if (list.length) {
      const query = list.map(encodeURIComponent).join(",");
      // An ETag only revalidates the same question.
      if (query !== this.#etagQuery) this.#etag = "";
      const url = withToken(`${base}/api/quotes?symbols=${query}`, token());
      const controller = new AbortController();
      this.#controller = controller;
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const headers = this.#etag ? { "If-None-Match": this.#etag } : {};
        // "no-store": the ETag is ours to send, a browser cache must not answer for the server.
        const response = await this.#options.fetch(url, {
          headers,
          cache: "no-store",
          signal: controller.signal,
        });
        if (!this.#running) return;
        if (response.status === 200) {
          const body = await response.json();
          this.#etag = response.headers.get("etag") ?? "";
          this.#etagQuery = query;
          onQuotes(body.quotes);
        } else if (response.status !== 304) {
          onFailure(new Error(`HTTP ${response.status}`), response.status);
        }
      } catch (error) {
        if (this.#running) onFailure(error);
      } finally {
        clearTimeout(timer);
      }
    }
    if (!this.#running) return;
    const wait = Math.max(0, started + intervalMs - Date.now());
    this.#timer = setTimeout(() => this.#poll(), wait);
  }
}
