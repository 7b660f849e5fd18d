// The large chart of the selected symbol, drawn by uPlot (loaded as the global `uPlot`).

/** The x-axis spans at least this many seconds, ending at the newest point: a few seconds of
 * data would otherwise stretch over the whole width with millisecond labels. */
const MIN_SPAN_S = 30;

export class PriceChart {
  #plot;

  /**
   * @param {HTMLElement} container sized by CSS; the chart follows its size
   * @param {{line: string, fill: string, axis: string, grid: string}} colors
   */
  constructor(container, colors) {
    const axis = {
      stroke: colors.axis,
      grid: { stroke: colors.grid, width: 1 },
      ticks: { stroke: colors.grid, width: 1 },
    };
    const options = {
      width: container.clientWidth,
      height: container.clientHeight,
      legend: { show: false },
      // Live data redraws every tick, which would undo any zoom at once.
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: {
        x: { time: true, range: (_, min, max) => [Math.min(min, max - MIN_SPAN_S), max] },
      },
      series: [{}, { label: "Price", stroke: colors.line, fill: colors.fill, width: 1.5 }],
      axes: [axis, { ...axis, size: 64, values: (_, ticks) => ticks.map((v) => v.toFixed(2)) }],
    };
    this.#plot = new uPlot(options, [[], []], container);
    new ResizeObserver(() =>
      this.#plot.setSize({ width: container.clientWidth, height: container.clientHeight }),
    ).observe(container);
  }

  /** Shows `{times, prices}` (a PriceHistory series). */
  show({ times, prices }) {
    this.#plot.setData([times, prices]);
  }
}
