// The board: one row per subscribed symbol, cloned from the page's <template id="quote-row">.

import { flash } from "./flash.js";
import { drawSparkline } from "./sparkline.js";
import { count, direction, percent, price, signed } from "./format.js";

// By the direction of this tick (not of the day's change).
const FLASH_COLORS = {
  up: "var(--flash-up)",
  down: "var(--flash-down)",
  flat: "var(--flash-flat)",
};

export class QuoteTable {
  #body;
  #template;
  #colors;
  #rows = new Map();
  #names = new Map();

  /**
   * @param {HTMLTableSectionElement} body
   * @param {HTMLTemplateElement} template
   * @param {{up: string, down: string}} colors of the sparklines (a canvas cannot use CSS)
   * @param {{onSelect: (symbol: string) => void, onRemove: (symbol: string) => void}} actions
   */
  constructor(body, template, colors, { onSelect, onRemove }) {
    this.#body = body;
    this.#template = template;
    this.#colors = colors;
    body.addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-symbol]");
      if (!tr) return;
      if (event.target.closest('button[data-action="remove"]')) onRemove(tr.dataset.symbol);
      else onSelect(tr.dataset.symbol);
    });
    body.addEventListener("keydown", (event) => {
      const tr = event.target.closest("tr[data-symbol]");
      if (tr && event.target === tr && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        onSelect(tr.dataset.symbol);
      }
    });
  }

  /** Makes the rows exactly `symbols`: removes the others, appends new ones at the end. */
  setSymbols(symbols) {
    for (const [symbol, row] of this.#rows) {
      if (!symbols.includes(symbol)) {
        row.tr.remove();
        this.#rows.delete(symbol);
      }
    }
    for (const symbol of symbols) {
      if (!this.#rows.has(symbol)) this.#body.append(this.#newRow(symbol).tr);
    }
  }

  /** Company names by symbol, shown under each symbol. */
  setNames(names) {
    this.#names = names;
    for (const [symbol, row] of this.#rows) row.fields.name.textContent = names.get(symbol) ?? "";
  }

  select(symbol) {
    for (const [s, row] of this.#rows) row.tr.setAttribute("aria-current", String(s === symbol));
  }

  /** Paints `quote` and its chart `series`; false if the symbol has no row (any more). */
  paint(quote, series) {
    const row = this.#rows.get(quote.symbol);
    if (!row) return false;
    const { tr, fields } = row;
    const tick = row.price === undefined ? "flat" : direction(quote.price - row.price);
    row.price = quote.price;
    tr.dataset.seq = String(quote.seq);
    tr.dataset.dir = direction(quote.change);
    fields.price.textContent = price(quote.price);
    fields.bid.textContent = price(quote.bid);
    fields.ask.textContent = price(quote.ask);
    fields.change.textContent = signed(quote.change);
    fields.change_pct.textContent = percent(quote.change_pct);
    fields.volume.textContent = count(quote.volume);
    fields.range.textContent = `${price(quote.low)} – ${price(quote.high)}`;
    const position = (quote.price - quote.low) / (quote.high - quote.low || 1);
    fields.rangeBar.style.setProperty("--position", `${(position * 100).toFixed(1)}%`);
    flash(fields.price, FLASH_COLORS[tick]);
    this.#drawSparkline(row, series);
    return true;
  }

  /** Redraws the sparkline of `symbol` from `series` (e.g. once its history has arrived). */
  sparkline(symbol, series) {
    const row = this.#rows.get(symbol);
    if (row && row.price !== undefined) this.#drawSparkline(row, series);
  }

  #drawSparkline(row, series) {
    const rising = series.prices.length && row.price >= series.prices[0];
    drawSparkline(row.canvas, series, rising ? this.#colors.up : this.#colors.down);
  }

  #newRow(symbol) {
    const tr = this.#template.content.firstElementChild.cloneNode(true);
    tr.dataset.symbol = symbol;
    const fields = {};
    for (const el of tr.querySelectorAll("[data-field]")) fields[el.dataset.field] = el;
    fields.rangeBar = tr.querySelector(".range-bar");
    fields.symbol.textContent = symbol;
    fields.name.textContent = this.#names.get(symbol) ?? "";
    tr.querySelector('button[data-action="remove"]').setAttribute("aria-label", `Remove ${symbol}`);
    const row = { tr, fields, canvas: tr.querySelector("canvas"), price: undefined };
    this.#rows.set(symbol, row);
    return row;
  }
}
