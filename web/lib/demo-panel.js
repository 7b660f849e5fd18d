// One side of the push-versus-polling demo: paints the quotes it is given and keeps its figures.

import { flash } from "./flash.js";
import { bytes, count, millis, price, showFigure } from "./format.js";
import { mean, percentile, RollingWindow } from "./stats.js";

const STALENESS_SPAN_MS = 60_000;

export class DemoPanel {
  requests = 0;
  bytes = 0;
  #shown = 0;
  #missed = 0;
  #staleness = new RollingWindow(STALENESS_SPAN_MS);
  #firstUnshownTs;
  #root;
  /** symbol → {seq, fields} */
  #rows = new Map();

  /**
   * @param {HTMLElement} root holds a <tbody> and the [data-metric] elements
   * @param {string[]} symbols
   * @param {HTMLTemplateElement} rowTemplate
   * @param {(quote: object, shownSeq: number | undefined) => number} firstUnshownTs the ts of
   *   the first update of `quote.symbol` after `shownSeq` (the one this panel shows)
   */
  constructor(root, symbols, rowTemplate, firstUnshownTs) {
    this.#root = root;
    this.#firstUnshownTs = firstUnshownTs;
    const body = root.querySelector("tbody");
    for (const symbol of symbols) {
      const tr = rowTemplate.content.firstElementChild.cloneNode(true);
      const fields = {};
      for (const el of tr.querySelectorAll("[data-field]")) fields[el.dataset.field] = el;
      fields.symbol.textContent = symbol;
      body.append(tr);
      this.#rows.set(symbol, { seq: undefined, fields });
    }
  }

  /** Paints `quote` unless this panel already shows that state (same seq). */
  show(quote) {
    const row = this.#rows.get(quote.symbol);
    if (!row || row.seq === quote.seq) return;
    // A gap in seq is updates this panel never showed.
    if (row.seq !== undefined && quote.seq > row.seq + 1) this.#missed += quote.seq - row.seq - 1;
    row.fields.price.textContent = price(quote.price);
    row.fields.seq.textContent = String(quote.seq);
    flash(row.fields.price, "var(--flash-flat)");
    this.#shown += 1;
    const now = Date.now();
    this.#staleness.add(now - this.#firstUnshownTs(quote, row.seq), now);
    row.seq = quote.seq;
  }

  setNote(text) {
    this.#root.querySelector(".note").textContent = text;
  }

  /** Refreshes the figures, and per row how long the shown price has been out of date. */
  render(now, history) {
    for (const [symbol, row] of this.#rows) {
      const behind = row.seq !== undefined && history.latestSeq(symbol) > row.seq;
      const since = behind ? history.ts(symbol, row.seq + 1) : undefined;
      row.fields.lag.textContent = since === undefined ? "—" : millis(now - since);
    }
    const staleness = this.#staleness.values(now);
    this.#figure("shown", this.#shown, count);
    this.#figure("missed", this.#missed, count);
    this.#figure("staleness-avg", Math.round(mean(staleness)), millis);
    this.#figure("staleness-p99", percentile(staleness, 99), millis);
    this.#figure("requests", this.requests, count);
    this.#figure("bytes", this.bytes, bytes);
  }

  #figure(metric, value, text) {
    showFigure(this.#root.querySelector(`[data-metric="${metric}"]`), value, text);
  }
}
