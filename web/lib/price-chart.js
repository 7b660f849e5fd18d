// The large chart of the selected symbol, drawn by uPlot (loaded as the global `uPlot`).

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
      scales: { x: { time: true } },
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
