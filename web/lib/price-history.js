// The last few minutes of prices per symbol, in the column layout uPlot draws from.

export class PriceHistory {
  #spanSeconds;
  #series = new Map();

  constructor(spanMs) {
    this.#spanSeconds = spanMs / 1000;
  }

  add(quote) {
    let series = this.#series.get(quote.symbol);
    if (!series) {
      series = { times: [], prices: [] };
      this.#series.set(quote.symbol, series);
    }
    // uPlot's time scale counts seconds.
    const t = quote.ts / 1000;
    // A snapshot after reconnecting repeats the last state: keep one point per moment.
    if (series.times.length && t <= series.times.at(-1)) return;
    series.times.push(t);
    series.prices.push(quote.price);
    const stale = series.times.findIndex((time) => time >= t - this.#spanSeconds);
    if (stale > 0) {
      series.times.splice(0, stale);
      series.prices.splice(0, stale);
    }
  }

  /** `{times, prices}` of `symbol`, empty when nothing has arrived yet. */
  get(symbol) {
    return this.#series.get(symbol) ?? { times: [], prices: [] };
  }

  delete(symbol) {
    this.#series.delete(symbol);
  }
}
