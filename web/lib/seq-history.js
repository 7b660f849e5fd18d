// When each update happened: (symbol, seq) → ts for the last little while, filled from the
// push stream, which sees every update. The polling panel looks up what it skipped over here.

export class SeqHistory {
  #spanMs;
  /** symbol → Map(seq → ts), oldest first. */
  #bySymbol = new Map();
  #latest = new Map();

  constructor(spanMs) {
    this.#spanMs = spanMs;
  }

  record(quote) {
    let updates = this.#bySymbol.get(quote.symbol);
    if (!updates) {
      updates = new Map();
      this.#bySymbol.set(quote.symbol, updates);
    }
    updates.set(quote.seq, quote.ts);
    this.#latest.set(quote.symbol, quote.seq);
    for (const [seq, ts] of updates) {
      if (ts >= quote.ts - this.#spanMs) break;
      updates.delete(seq);
    }
  }

  /** The ts of update `seq` of `symbol`, or undefined if it is not (or no longer) known. */
  ts(symbol, seq) {
    return this.#bySymbol.get(symbol)?.get(seq);
  }

  /** The newest seq of `symbol` seen on the stream. */
  latestSeq(symbol) {
    return this.#latest.get(symbol);
  }
}
