// Push versus polling on the same symbols, side by side. The push panel is fed by one WebSocket,
// the polling panel by GET /api/quotes every N ms. The WebSocket also records when every update
// happened, so the polling panel's staleness counts from the first update it failed to show.

import { DemoPanel } from "./lib/demo-panel.js";
import { connectionLabel } from "./lib/format.js";
import { Poller } from "./lib/poller.js";
import { SeqHistory } from "./lib/seq-history.js";
import { DEFAULT_SYMBOLS } from "./lib/symbol-store.js";
import { connect } from "./lib/ticker.js";
import { withToken } from "./lib/token.js";
import { deflatedFrameBytes, drainTransferredBytes, frameBytes } from "./lib/traffic.js";

const QUOTES_PATH = "/api/quotes";
// Longer than the longest poll interval, so a skipped update is still known when it is looked up.
const HISTORY_MS = 120_000;
const REFRESH_MS = 250;

const $ = (selector) => document.querySelector(selector);

/** `?symbols=A,B` picks other symbols; the dashboard's defaults otherwise. */
function chosenSymbols() {
  const listed = new URLSearchParams(location.search).get("symbols") ?? "";
  const symbols = listed.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  return symbols.length ? symbols : DEFAULT_SYMBOLS;
}

const symbols = chosenSymbols();
const history = new SeqHistory(HISTORY_MS);
const rowTemplate = $("#demo-row");

const push = new DemoPanel($("#push-panel"), symbols, rowTemplate, (quote) => quote.ts);
const poll = new DemoPanel($("#poll-panel"), symbols, rowTemplate, (quote, shownSeq) => {
  // The first poll has nothing to compare with; later ones look up the first skipped update.
  const skipped = shownSeq === undefined ? undefined : history.ts(quote.symbol, shownSeq + 1);
  return skipped ?? quote.ts;
});

const connection = connect({ symbols });
connection.on("state", ({ state, attempt, stopped }) =>
  push.setNote(connectionLabel(state, attempt, stopped)),
);
connection.on("frame", (direction, text) => {
  if (direction === "in" && connection.extensions.includes("permessage-deflate")) {
    deflatedFrameBytes(text).then((bytes) => (push.bytes += bytes));
  } else {
    push.bytes += frameBytes(direction, text);
  }
});
connection.on("welcome", () => {
  push.requests += 1; // the upgrade request
  // What the browser and the server agreed on, for the footnote and for tests.
  document.body.dataset.extensions = connection.extensions;
  $("#push-compression").textContent = connection.extensions.includes("permessage-deflate")
    ? "compressed (permessage-deflate): each frame's payload as this browser deflates it"
    : "uncompressed";
});
const showPushed = (quotes) => {
  for (const quote of quotes) {
    history.record(quote);
    push.show(quote);
  }
};
connection.on("snapshot", showPushed);
connection.on("quotes", showPushed);

const intervalInput = $("#poll-interval");
let periodMs = intervalInput.valueAsNumber;
const pollNote = () => `every ${periodMs} ms`;
const poller = new Poller({
  url: withToken(`${QUOTES_PATH}?symbols=${symbols.map(encodeURIComponent).join(",")}`),
  periodMs,
  onRequest: () => (poll.requests += 1),
  onQuotes: (quotes) => {
    for (const quote of quotes) poll.show(quote);
    poll.setNote(pollNote());
  },
  onFailure: (reason) => poll.setNote(`request failed: ${reason}`),
});

intervalInput.addEventListener("input", () => {
  const ms = intervalInput.valueAsNumber;
  // The input's own min and max bound the interval; anything else typed is ignored.
  if (ms >= Number(intervalInput.min) && ms <= Number(intervalInput.max)) {
    periodMs = ms;
    poller.setPeriod(ms);
    poll.setNote(pollNote());
  }
});

setInterval(() => {
  const now = Date.now();
  poll.bytes += drainTransferredBytes(QUOTES_PATH);
  push.render(now, history);
  poll.render(now, history);
}, REFRESH_MS);

connection.start();
poller.start();
