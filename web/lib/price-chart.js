// The large chart of the selected symbol, drawn by uPlot (loaded as the global `uPlot`): its
// bars as a line of closing prices or as candles, over a fixed window ending at the newest bar.
// What is drawn is also stated on the element (`data-points`, `data-holes`, …), for tests.

import { INTERVALS } from "./bars.js";
import {
  firstAtOrAfter,
  missingBars,
  PRICE_INCRS,
  priceWindow,
  timeLabels,
  timeWindow,
} from "./chart-scales.js";

export class PriceChart {
  #plot;
  #container;
  #colors;
  /** What `show` was last given. */
  #bars = null;
  #interval = "1s";
  #style = "line";
  #x = [0, 1];
  #y = [0, 1];
  /** Index of the first bar in the window. */
  #i0 = 0;

  /**
   * @param {HTMLElement} container sized by CSS; the chart follows its size
   * @param {{line: string, fill: string, axis: string, grid: string, up: string, down: string}}
   *   colors of the line and its fill, the axes and grid, and of rising and falling candles
   */
  constructor(container, colors) {
    this.#container = container;
    this.#colors = colors;
    const axis = {
      stroke: colors.axis,
      grid: { stroke: colors.grid, width: 1 },
      ticks: { stroke: colors.grid, width: 1 },
    };
    const linear = uPlot.paths.linear();
    const options = {
      width: container.clientWidth,
      height: container.clientHeight,
      legend: { show: false },
      // Live data redraws every tick, which would undo any zoom at once.
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: {
        x: { time: true, range: () => this.#x },
        y: { range: () => this.#y },
      },
      series: [
        {},
        {
          label: "Price",
          stroke: colors.line,
          fill: colors.fill,
          width: 1.5,
          paths: (u, ...rest) => (this.#style === "line" ? linear(u, ...rest) : null),
          // A line needs two bars; fewer are drawn as dots.
          points: { show: () => this.#style === "line" && this.#visible() < 3, size: 6 },
        },
      ],
      axes: [
        { ...axis, values: (_, ticks, _i, _space, incr) => timeLabels(ticks, incr) },
        {
          ...axis,
          size: 64,
          incrs: PRICE_INCRS,
          values: (_, ticks) => ticks.map((v) => (this.#visible() ? v.toFixed(2) : "")),
        },
      ],
      hooks: { draw: [(u) => this.#style === "candles" && this.#drawCandles(u)] },
    };
    this.#plot = new uPlot(options, [[], []], container);
    new ResizeObserver(() =>
      this.#plot.setSize({ width: container.clientWidth, height: container.clientHeight }),
    ).observe(container);
  }

  /**
   * Shows `bars` (a BarSeries of `interval`) as `style` ("line" or "candles").
   * @param {import("./bars.js").BarSeries | null} bars
   */
  show(bars, interval, style) {
    this.#bars = bars;
    this.#interval = interval;
    this.#style = style;
    const { ms, spanMs } = INTERVALS[interval];
    const t = bars?.t ?? [];
    this.#x = timeWindow(t, ms / 1000, spanMs / 1000, Date.now() / 1000);
    this.#i0 = firstAtOrAfter(t, this.#x[0]);
    const candles = style === "candles";
    const lows = (candles ? bars?.l : bars?.c) ?? [];
    const highs = (candles ? bars?.h : bars?.c) ?? [];
    this.#y = priceWindow(lows, highs, this.#i0);
    this.#plot.setData([t, bars?.c ?? []]);
    this.#describe(t, ms / 1000);
  }

  #visible() {
    return (this.#bars?.length ?? 0) - this.#i0;
  }

  #describe(t, barS) {
    const d = this.#container.dataset;
    d.interval = this.#interval;
    d.style = this.#style;
    d.points = String(this.#visible());
    // Bars without updates are not listed, so a hole is either a quiet feed or a lost update.
    const missing = missingBars(t, barS, this.#i0);
    d.holes = String(missing.length);
    d.missing = missing.slice(0, 20).map((s) => s * 1000).join(" ");
    d.first = this.#visible() ? String(t[this.#i0] * 1000) : "";
    d.last = this.#visible() ? String(t.at(-1) * 1000) : "";
  }

  #drawCandles(u) {
    const bars = this.#bars;
    if (!bars || !bars.length) return;
    const { ctx } = u;
    const barS = INTERVALS[this.#interval].ms / 1000;
    const slot = u.valToPos(this.#x[0] + barS, "x", true) - u.valToPos(this.#x[0], "x", true);
    const body = Math.max(1, Math.floor(slot * 0.7));
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    for (let i = this.#i0; i < bars.length; i++) {
      const x = Math.round(u.valToPos(bars.t[i] + barS / 2, "x", true));
      const [open, close] = [u.valToPos(bars.o[i], "y", true), u.valToPos(bars.c[i], "y", true)];
      ctx.fillStyle = bars.c[i] >= bars.o[i] ? this.#colors.up : this.#colors.down;
      const high = u.valToPos(bars.h[i], "y", true);
      const low = u.valToPos(bars.l[i], "y", true);
      ctx.fillRect(x, Math.round(high), 1, Math.max(1, Math.round(low - high)));
      const top = Math.round(Math.min(open, close));
      const height = Math.max(1, Math.round(Math.abs(close - open)));
      ctx.fillRect(x - Math.floor(body / 2), top, body, height);
    }
    ctx.restore();
  }
}
