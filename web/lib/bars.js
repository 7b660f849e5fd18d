// OHLCV bars per symbol at 1 s and 1 min, in the column layout uPlot draws from: the server's
// history (GET /api/history) with the live updates folded in as they arrive, the way the
// server builds its own bars (docs/protocol.md, "History and resume").

/** The chart's views: bar length and how much of the past a view shows. */
export const INTERVALS = {
  "1s": { ms: 1000, spanMs: 5 * 60_000 },
  "1m": { ms: 60_000, spanMs: 24 * 60 * 60_000 },
};

/** One symbol's bars of one interval, oldest first; `t` in Unix seconds (uPlot's time unit). */
export class BarSeries {
  t = [];
  o = [];
  h = [];
  l = [];
  c = [];
  v = [];
  /** Whether the server's history has been merged in (else only what this page saw). */
  loaded = false;
  #ms;
  #keep;

  constructor(interval) {
    const { ms, spanMs } = INTERVALS[interval];
    this.#ms = ms;
    // A bar more than the view, so the oldest visible bar is never half gone.
    this.#keep = spanMs / ms + 1;
  }

  get length() {
    return this.t.length;
  }

  /** Folds one update (`volume` = shares traded since the previous one) into its bar. */
  fold(ts, price, volume) {
    const t = (Math.floor(ts / this.#ms) * this.#ms) / 1000;
    const last = this.t.length - 1;
    if (last >= 0 && t < this.t[last]) return; // older than the newest bar: already counted
    if (last >= 0 && t === this.t[last]) {
      this.h[last] = Math.max(this.h[last], price);
      this.l[last] = Math.min(this.l[last], price);
      this.c[last] = price;
      this.v[last] += volume;
      return;
    }
    this.#push(t, price, price, price, price, volume);
    this.#trim();
  }

  /**
   * Merges the server's `bars` (oldest first, `t` in ms): they replace what this page has up
   * to their newest bar, which is combined with this page's bar of the same time (either may
   * have seen the later updates of it); this page's newer bars stay. Returns whether a bar may
   * be missing between the two (history served before the live updates started): ask again.
   */
  merge(bars) {
    this.loaded = true;
    if (!bars.length) return false;
    const mine = this.#columns();
    const newest = bars.at(-1).t / 1000;
    const next = mine.t.find((t) => t > newest);
    const seam = next !== undefined && next - newest > this.#ms / 1000 && !mine.t.includes(newest);
    this.t = [];
    this.o = [];
    this.h = [];
    this.l = [];
    this.c = [];
    this.v = [];
    for (const bar of bars) this.#push(bar.t / 1000, bar.o, bar.h, bar.l, bar.c, bar.v);
    for (let i = 0; i < mine.t.length; i++) {
      if (mine.t[i] < newest) continue;
      if (mine.t[i] === newest) {
        const last = this.t.length - 1;
        this.h[last] = Math.max(this.h[last], mine.h[i]);
        this.l[last] = Math.min(this.l[last], mine.l[i]);
        this.c[last] = mine.c[i];
        this.v[last] = Math.max(this.v[last], mine.v[i]);
      } else {
        this.#push(mine.t[i], mine.o[i], mine.h[i], mine.l[i], mine.c[i], mine.v[i]);
      }
    }
    this.#trim();
    return seam;
  }

  #columns() {
    const { t, o, h, l, c, v } = this;
    return { t, o, h, l, c, v };
  }

  #push(t, o, h, l, c, v) {
    this.t.push(t);
    this.o.push(o);
    this.h.push(h);
    this.l.push(l);
    this.c.push(c);
    this.v.push(v);
  }

  #trim() {
    const extra = this.t.length - this.#keep;
    if (extra <= 0) return;
    for (const column of [this.t, this.o, this.h, this.l, this.c, this.v]) column.splice(0, extra);
  }
}

/** Every symbol's bars at every interval. */
export class BarBook {
  #symbols = new Map();

  /** The bars of `symbol` at `interval` (created empty on first use). */
  series(symbol, interval) {
    return this.#entry(symbol).series[interval];
  }

  /** Folds a quote into every interval; call once per update (the caller drops repeats). */
  add(quote) {
    const entry = this.#entry(quote.symbol);
    // The first quote seen (or one after a reset of the day's volume) adds no volume.
    const traded = entry.volume === undefined ? 0 : Math.max(0, quote.volume - entry.volume);
    entry.volume = quote.volume;
    for (const series of Object.values(entry.series)) series.fold(quote.ts, quote.price, traded);
  }

  delete(symbol) {
    this.#symbols.delete(symbol);
  }

  #entry(symbol) {
    let entry = this.#symbols.get(symbol);
    if (!entry) {
      const series = Object.fromEntries(Object.keys(INTERVALS).map((i) => [i, new BarSeries(i)]));
      entry = { volume: undefined, series };
      this.#symbols.set(symbol, entry);
    }
    return entry;
  }
}

/**
 * The newest bars of `symbol` from the server for a view of `interval`, oldest first, at most
 * `maxLimit` (what `welcome` says the server keeps).
 */
export async function fetchBars(symbol, interval, maxLimit = Infinity) {
  const { ms, spanMs } = INTERVALS[interval];
  const limit = Math.min(spanMs / ms, maxLimit);
  const query = `interval=${interval}&limit=${limit}`;
  const response = await fetch(`/api/history/${encodeURIComponent(symbol)}?${query}`);
  if (!response.ok) throw new Error(`history of ${symbol}: HTTP ${response.status}`);
  return (await response.json()).bars;
}
