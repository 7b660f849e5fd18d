// The chart's axes, decided here rather than by uPlot's auto-ranging, so that every state looks
// sane: a full series, a flat one, a single bar and none at all (times in Unix seconds).

/** Price steps between y-axis labels: never below a cent, so two labels never read the same. */
export const PRICE_INCRS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50]
  .concat([100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000]);

/**
 * The visible time window: `spanS` seconds ending with the newest bar (of `barS` seconds), or
 * ending now when there is none, so a lone bar sits at the right edge of a normal window.
 */
export function timeWindow(times, barS, spanS, nowS) {
  const end = times.length ? times.at(-1) + barS : nowS;
  return [end - spanS, end];
}

/** Index of the first of `times` (ascending) at or after `from`. */
export function firstAtOrAfter(times, from) {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < from) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The price range of `lows`/`highs` from index `i0`, with some room above and below; a flat
 * series gets a small range around its price instead of a blown-up one.
 */
export function priceWindow(lows, highs, i0) {
  let low = Infinity;
  let high = -Infinity;
  for (let i = i0; i < lows.length; i++) {
    low = Math.min(low, lows[i]);
    high = Math.max(high, highs[i]);
  }
  if (low > high) return [0, 1]; // no data: the labels are hidden anyway
  const middle = (low + high) / 2;
  // At least ±0.1 % of the price, and never less than a few cents.
  const half = Math.max((high - low) / 2, middle * 0.001, 0.03);
  const pad = half * 0.1;
  return [middle - half - pad, middle + half + pad];
}

const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
const clockSeconds = new Intl.DateTimeFormat("en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** Time-axis labels: clock times, with seconds only when the ticks are under a minute apart. */
export function timeLabels(ticks, incrS) {
  const format = incrS < 60 ? clockSeconds : clock;
  return ticks.map((t) => format.format(t * 1000));
}

/** The start times of the bars of `barS` seconds missing between `times[i0]` and the last one. */
export function missingBars(times, barS, i0) {
  const missing = [];
  for (let i = i0 + 1; i < times.length; i++) {
    for (let t = times[i - 1] + barS; t < times[i] - barS / 2; t += barS) missing.push(t);
  }
  return missing;
}
