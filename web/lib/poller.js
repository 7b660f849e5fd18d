// Polls a URL at a fixed rate with fetch, letting the browser revalidate with If-None-Match.

// A request that hangs must not stop polling for good.
const TIMEOUT_MS = 10_000;

export class Poller {
  #url;
  #periodMs;
  #onQuotes;
  #onRequest;
  #onFailure;
  #timer = 0;
  #lastStart = -Infinity;
  #inFlight = false;

  /**
   * @param {object} options
   * @param {string} options.url answers `{ts, quotes}` (GET /api/quotes)
   * @param {number} options.periodMs time between the starts of two requests
   * @param {(quotes: object[]) => void} options.onQuotes
   * @param {() => void} options.onRequest each request made
   * @param {(reason: string) => void} options.onFailure
   */
  constructor({ url, periodMs, onQuotes, onRequest, onFailure }) {
    this.#url = url;
    this.#periodMs = periodMs;
    this.#onQuotes = onQuotes;
    this.#onRequest = onRequest;
    this.#onFailure = onFailure;
  }

  start() {
    this.#schedule();
  }

  /** Takes effect at once: the next request is due `periodMs` after the last one started. */
  setPeriod(periodMs) {
    this.#periodMs = periodMs;
    if (!this.#inFlight) this.#schedule();
  }

  #schedule() {
    clearTimeout(this.#timer);
    const wait = this.#lastStart + this.#periodMs - performance.now();
    this.#timer = setTimeout(() => this.#poll(), Math.max(0, wait));
  }

  async #poll() {
    this.#inFlight = true;
    this.#lastStart = performance.now();
    this.#onRequest();
    try {
      // "no-cache" revalidates the cached answer: the server replies 304 while nothing changed,
      // and the browser hands us the cached body.
      const response = await fetch(this.#url, {
        cache: "no-cache",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.#onQuotes((await response.json()).quotes);
    } catch (error) {
      this.#onFailure(error.message);
    } finally {
      this.#inFlight = false;
      this.#schedule();
    }
  }
}
