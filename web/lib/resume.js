// Continuity across reconnects: the last seq seen per symbol, which a new session's subscribe
// sends as `since` so the server replays what was missed (docs/protocol.md, "Resume"), and
// the updates that never arrived (a jump in seq) counted per symbol.

export class ResumeTracker {
  /** symbol → the newest seq this page has. */
  #seqs = new Map();
  /** symbol → updates known to be missing (seq jumps). */
  #missed = new Map();
  /** The symbols of the resume in flight, until its `subscribed` arrives. */
  #asked = null;
  /** Resumed symbols not recovered: their next quote is a snapshot, maybe of a new run. */
  #resync = new Set();

  /**
   * The subscribe that starts a new session: resumes every symbol this page has seen.
   * @param {string[]} symbols
   * @param {unknown} id the request id, to recognize its `subscribed`
   */
  subscribe(symbols, id) {
    const since = {};
    for (const symbol of symbols) {
      const seq = this.#seqs.get(symbol);
      if (seq !== undefined) since[symbol] = seq;
    }
    const resuming = Object.keys(since);
    this.#asked = resuming.length ? { id, symbols: resuming } : null;
    this.#resync.clear();
    return resuming.length
      ? { op: "subscribe", symbols, since, id }
      : { op: "subscribe", symbols, id };
  }

  /**
   * Reads a `subscribed`: undefined unless it answers the resume in flight; else the resumed
   * symbols that were not recovered (they get a snapshot: the page has a hole there).
   */
  subscribed(message) {
    const asked = this.#asked;
    if (!asked || message.id !== asked.id) return undefined;
    this.#asked = null;
    const recovered = new Set(message.recovered ?? []);
    const lost = asked.symbols.filter((s) => !recovered.has(s));
    for (const symbol of lost) this.#resync.add(symbol);
    return lost;
  }

  /**
   * Records a quote (of a `quotes` frame or a `snapshot`); false if this page already has that
   * update or a newer one (a snapshot repeating the last state), which must not be counted again.
   */
  accept(quote) {
    const last = this.#seqs.get(quote.symbol);
    if (this.#resync.delete(quote.symbol) && last !== undefined && quote.seq < last) {
      // A server of another run numbers from scratch: start over from its snapshot.
      this.#seqs.set(quote.symbol, quote.seq);
      return true;
    }
    if (last !== undefined && quote.seq <= last) return false;
    if (last !== undefined && quote.seq > last + 1) {
      this.#missed.set(quote.symbol, this.missed(quote.symbol) + quote.seq - last - 1);
    }
    this.#seqs.set(quote.symbol, quote.seq);
    return true;
  }

  /** How many updates of `symbol` this page is known to have missed. */
  missed(symbol) {
    return this.#missed.get(symbol) ?? 0;
  }

  forget(symbol) {
    this.#seqs.delete(symbol);
    this.#missed.delete(symbol);
  }
}
