// Rolling figures over a sliding time window: rates, means and percentiles of recent samples.

export class RollingWindow {
  #spanMs;
  #startedAt = Date.now();
  #times = [];
  #values = [];
  // Index of the oldest live sample; the arrays are compacted only now and then.
  #head = 0;

  constructor(spanMs) {
    this.#spanMs = spanMs;
  }

  add(value, now = Date.now()) {
    this.#times.push(now);
    this.#values.push(value);
  }

  /** The samples of the last `spanMs`, oldest first. */
  values(now = Date.now()) {
    this.#prune(now);
    return this.#values.slice(this.#head);
  }

  /** Sum of the samples per second, over the window (or over less while it is still filling). */
  ratePerSecond(now = Date.now()) {
    const spanMs = Math.min(this.#spanMs, now - this.#startedAt);
    const total = this.values(now).reduce((sum, v) => sum + v, 0);
    return spanMs > 0 ? (total * 1000) / spanMs : 0;
  }

  #prune(now) {
    const cutoff = now - this.#spanMs;
    while (this.#head < this.#times.length && this.#times[this.#head] < cutoff) this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times.splice(0, this.#head);
      this.#values.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

export function mean(values) {
  return values.length ? values.reduce((sum, v) => sum + v, 0) / values.length : NaN;
}

/** Nearest-rank percentile (`p` in 0..100); NaN without samples. */
export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)];
}
