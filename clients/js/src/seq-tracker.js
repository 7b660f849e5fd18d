// Continuity across reconnects: the last seq seen per symbol, which a new session's subscribe
// sends as `since` so the server replays what was missed (docs/protocol.md, "Resume"), and the
// updates that never arrived (a jump in seq) counted per symbol.

export class SeqTracker {
  /** symbol → the newest seq accepted. */
  #seqs = new Map();
  /** symbol → updates known to be missing (seq jumps). */
  #missed = new Map();
  /** Resumed symbols not recovered: their next quote is a snapshot, maybe of a new run. */
  #resync = new Set();

  /** `since` for a subscribe of `symbols`: the symbols seen before, with their last seq. */
  since(symbols) {
    const since = {};
    const all = symbols.includes("*");
    for (const [symbol, seq] of this.#seqs) {
      if (all || symbols.includes(symbol)) since[symbol] = seq;
    }
    return since;
  }

  /** Symbols a resume did not recover: their next quote may start a new run's numbering. */
  resync(symbols) {
    this.#resync.clear();
    for (const symbol of symbols) this.#resync.add(symbol);
  }

  /**
   * Records a quote; returns `{ accepted: false }` for an update already seen (a snapshot
   * repeating the last state, a replay overlapping a poll), else `{ accepted: true, gap }` where
   * `gap` is how many updates were skipped before it (0 normally).
   */
  accept(quote) {
    const last = this.#seqs.get(quote.symbol);
    if (this.#resync.delete(quote.symbol) && last !== undefined && quote.seq < last) {
      // A server of another run numbers from scratch: start over from its snapshot.
      this.#seqs.set(quote.symbol, quote.seq);
      return { accepted: true, gap: 0, from: last };
    }
    if (last !== undefined && quote.seq <= last) return { accepted: false, gap: 0, from: last };
    const gap = last === undefined ? 0 : quote.seq - last - 1;
    this.#seqs.set(quote.symbol, quote.seq);
    return { accepted: true, gap, from: last };
  }

  /** Counts `count` updates of `symbol` as missed. */
  countMissed(symbol, count) {
    this.#missed.set(symbol, this.missed(symbol) + count);
  }

  /** How many updates of `symbol` are known to have been missed. */
  missed(symbol) {
    return this.#missed.get(symbol) ?? 0;
  }

  /** The newest seq of `symbol` accepted, if any. */
  lastSeq(symbol) {
    return this.#seqs.get(symbol);
  }

  forget(symbol) {
    this.#seqs.delete(symbol);
    this.#missed.delete(symbol);
    this.#resync.delete(symbol);
  }
}
