// The dashboard's always-visible header figures: connection state, message age, rate, latency.

import { connectionLabel, millis, seconds, showFigure } from "./format.js";
import { percentile } from "./stats.js";

const $ = (selector) => document.querySelector(selector);

export function showConnectionState(state, attempt) {
  const status = $("#status");
  status.dataset.state = state;
  status.textContent = connectionLabel(state, attempt);
  // Lets the stylesheet dim prices that are no longer live.
  document.body.dataset.connection = state;
}

/** `lastMessageAt` is 0 until the first message. */
export function showMessageAge(lastMessageAt, now) {
  $("#last-message-age").textContent = lastMessageAt ? seconds(now - lastMessageAt) : "—";
}

/** @param {number} rate quotes per second @param {number[]} latencies tick-to-screen, ms */
export function showThroughput(rate, latencies) {
  showFigure($("#updates-per-sec"), Math.round(rate * 10) / 10, (v) => v.toFixed(1));
  showFigure($("#latency-p50"), percentile(latencies, 50), millis);
  showFigure($("#latency-p99"), percentile(latencies, 99), millis);
}
