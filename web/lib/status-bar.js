// The dashboard's always-visible header figures: connection state, message age, rate, latency.

import { clockTime, connectionLabel, millis, seconds, showFigure } from "./format.js";
import { percentile } from "./stats.js";

const $ = (selector) => document.querySelector(selector);

let connection = { state: "connecting", attempt: 0, stopped: null };
/** Unix ms since which the server's feed is stale (a cluster edge lost its broker), 0 if live. */
let staleSince = 0;
/** How the last reconnect resumed: "" (not a resume), "recovered", or "gap" (with its symbols). */
let resume = { outcome: "", lost: [] };

export function showConnectionState(state, attempt, stopped = null) {
  connection = { state, attempt, stopped };
  // A new session tells us again, right after its welcome, if its feed is stale.
  if (state !== "live") staleSince = 0;
  render();
}

/** A resume was answered: `lost` are the symbols the server could not replay (a hole). */
export function showResume(lost) {
  resume = { outcome: lost.length ? "gap" : "recovered", lost };
  render();
}

/** A `status` message: the connection is fine, but quotes may not be flowing behind it. */
export function showFeedStatus(status) {
  staleSince = status.feed === "stale" ? (status.since ?? Date.now()) : 0;
  render();
}

function render() {
  const stale = connection.state === "live" && staleSince > 0;
  const state = stale ? "stale" : connection.state;
  const status = $("#status");
  status.dataset.state = state;
  status.textContent = stale
    ? `feed stale since ${clockTime(staleSince)}`
    : connectionLabel(connection.state, connection.attempt, connection.stopped);
  const gap = connection.state === "live" && resume.outcome === "gap";
  if (gap) {
    const more = resume.lost.length > 3 ? ` +${resume.lost.length - 3}` : "";
    status.textContent += ` · resumed with a gap (${resume.lost.slice(0, 3).join(", ")}${more})`;
  }
  status.dataset.resume = connection.state === "live" ? resume.outcome : "";
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
