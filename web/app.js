// The dashboard: wires the live connection (the client package, `lib/ticker.js`) to the board,
// the chart of the selected symbol, the symbol picker and the header figures. Charts start from
// the server's history and stay continuous across reconnects: the client resumes every session
// from the last seq seen and says which symbols it could not recover.

import { BarBook, fetchBars } from "./lib/bars.js";
import { bindViewToggles, loadView } from "./lib/chart-view.js";
import { direction, percent, price } from "./lib/format.js";
import { PriceChart } from "./lib/price-chart.js";
import { QuoteTable } from "./lib/quote-table.js";
import { RollingWindow } from "./lib/stats.js";
import {
  showConnectionState,
  showFeedStatus,
  showMessageAge,
  showResume,
  showThroughput,
} from "./lib/status-bar.js";
import { loadSymbols, saveSymbols } from "./lib/symbol-store.js";
import { connect } from "./lib/ticker.js";
import { accessToken, saveToken, withToken } from "./lib/token.js";

const RATE_SPAN_MS = 5_000;
const LATENCY_SPAN_MS = 60_000;
const REFRESH_MS = 250;
const NOTICE_MS = 4_000;
/** How long typing pauses before the picker searches a large universe. */
const SEARCH_DELAY_MS = 150;

const $ = (selector) => document.querySelector(selector);
const rootStyle = getComputedStyle(document.documentElement);
const cssColor = (name) => rootStyle.getPropertyValue(name).trim();

let symbols = loadSymbols();
let selected = null;
/** Every symbol the server knows, from `welcome`; empty for a large universe (searched instead). */
let known = [];
let searchTimer = 0;
let names = new Map();
const latest = new Map();
/** Per symbol, the newest quote not painted yet; `live` is false for snapshots. */
const pending = new Map();
let frame = 0;
let noticeTimer = 0;
/** Bars kept per interval by the server (`welcome`'s `history.intervals`), once known. */
let barLimits = {};
/** `symbol/interval` of the history requests in flight. */
const loading = new Set();

const bars = new BarBook();
const view = loadView();
const rate = new RollingWindow(RATE_SPAN_MS);
const latency = new RollingWindow(LATENCY_SPAN_MS);

const table = new QuoteTable(
  $("#quotes tbody"),
  $("#quote-row"),
  { up: cssColor("--up"), down: cssColor("--down") },
  { onSelect: select, onRemove: removeSymbol },
);
const chart = new PriceChart($("#chart"), {
  line: cssColor("--accent"),
  fill: cssColor("--accent-fill"),
  axis: cssColor("--muted"),
  grid: cssColor("--grid"),
  up: cssColor("--up"),
  down: cssColor("--down"),
});
const connection = connect({ symbols });
connection.on("state", ({ state, attempt, stopped }) =>
  showConnectionState(state, attempt, stopped),
);
connection.on("welcome", welcomed);
connection.on("resumed", ({ lost }) => resumed(lost));
connection.on("snapshot", (quotes) => receive(quotes, false));
connection.on("quotes", (quotes, { source }) => {
  // Replayed updates are not live: they count neither for the rate nor for the latency.
  const live = source === "live";
  if (live) rate.add(quotes.length);
  receive(quotes, live);
});
connection.on("status", showFeedStatus);
connection.on("error", (error) => {
  if (error.reply) refused(error.reply);
});

/** A new session: the client resubscribes (resuming) by itself; the page reloads what failed. */
function welcomed(welcome) {
  // For the curious and for tests: what the browser and the server agreed on (compression).
  document.body.dataset.extensions = connection.extensions;
  known = welcome.symbols ?? [];
  if (known.length) {
    const stillKnown = symbols.filter((s) => known.includes(s));
    if (stillKnown.length !== symbols.length) setSymbols(stillKnown);
  }
  barLimits = welcome.history?.intervals ?? {};
  fillPicker();
  if (!names.size) loadNames();
  // Whatever could not be loaded before (server unreachable) is loaded now.
  for (const symbol of symbols) loadBars(symbol, "1s");
  if (selected) loadBars(selected, view.interval);
}

/** The answer to a resume: symbols not recovered have a hole, which their history fills. */
function resumed(lost) {
  showResume(lost);
  for (const symbol of lost) {
    for (const interval of ["1s", "1m"]) {
      if (bars.series(symbol, interval).loaded) loadBars(symbol, interval, true);
    }
  }
}

function refused(error) {
  // unknown_symbol lists the offenders; forget them so they are not asked for again.
  if (error.code === "unknown_symbol" && error.symbols) {
    setSymbols(symbols.filter((s) => !error.symbols.includes(s)));
  }
  notify(error.message);
}

function receive(quotes, live) {
  for (const quote of quotes) {
    // Updates of a removed symbol can still arrive until the server acknowledges the removal.
    // (The client hands over every update once: a snapshot repeating the last state is not.)
    if (!symbols.includes(quote.symbol)) continue;
    bars.add(quote);
    latest.set(quote.symbol, quote);
    pending.set(quote.symbol, { quote, live });
  }
  // Paint once per frame: a burst of frames costs one repaint and the newest state wins.
  if (!frame) frame = requestAnimationFrame(paint);
}

function paint() {
  frame = 0;
  const liveTicks = [];
  for (const { quote, live } of pending.values()) {
    if (!table.paint(quote, sparkline(quote.symbol))) continue;
    if (quote.symbol === selected) showSelected();
    if (live) liveTicks.push(quote.ts);
  }
  pending.clear();
  const now = Date.now();
  for (const ts of liveTicks) latency.add(now - ts, now);
}

function showSelected() {
  const quote = latest.get(selected);
  $("#chart-symbol").textContent = selected ?? "—";
  $("#chart-name").textContent = names.get(selected) ?? "";
  $("#chart-price").textContent = quote ? price(quote.price) : "";
  $("#chart-change").textContent = quote ? percent(quote.change_pct) : "";
  $("#chart-change").dataset.dir = quote ? direction(quote.change) : "flat";
  $("#chart-span").textContent = view.interval === "1s" ? "last 5 minutes" : "last 24 hours";
  chart.show(selected ? bars.series(selected, view.interval) : null, view.interval, view.style);
  // For tests and the curious: updates of this symbol that never reached the page.
  $("#chart").dataset.missed = selected ? String(connection.missed(selected)) : "0";
}

/** A row's sparkline: the closes of the 1 s bars. */
function sparkline(symbol) {
  const series = bars.series(symbol, "1s");
  return { times: series.t, prices: series.c };
}

function select(symbol) {
  selected = symbol;
  table.select(symbol);
  if (symbol) loadBars(symbol, view.interval);
  showSelected();
}

/**
 * Merges the server's bars of `symbol` into the chart (once per symbol and interval, unless
 * `again`: a resume that left a hole).
 */
async function loadBars(symbol, interval, again = false) {
  const key = `${symbol}/${interval}`;
  if (loading.has(key) || (!again && bars.series(symbol, interval).loaded)) return;
  loading.add(key);
  let retry = false;
  try {
    const fetched = await fetchBars(symbol, interval, barLimits[interval]);
    // Removed meanwhile: its bars are gone and must not come back.
    if (!symbols.includes(symbol)) return;
    // Served before this page's live updates began, with updates in between: once more.
    if (bars.series(symbol, interval).merge(fetched) && !again) retry = true;
  } catch {
    // Server unreachable, or too old to have history: the next welcome tries again.
    return;
  } finally {
    loading.delete(key);
  }
  if (retry) loadBars(symbol, interval, true);
  if (symbol === selected) showSelected();
  if (interval === "1s") table.sparkline(symbol, sparkline(symbol));
}

function setSymbols(list) {
  symbols = list;
  saveSymbols(list);
  table.setSymbols(list);
  $("#empty-board").hidden = list.length > 0;
  if (!list.includes(selected)) select(list[0] ?? null);
}

function addSymbol(typed) {
  const symbol = typed.trim().toUpperCase();
  if (!symbol) return;
  if (known.length && !known.includes(symbol)) {
    notify(`unknown symbol: ${symbol}`);
    return;
  }
  // A stale notice (a failed add) must not linger next to a successful one.
  clearTimeout(noticeTimer);
  $("#notice").textContent = "";
  if (!symbols.includes(symbol)) {
    setSymbols([...symbols, symbol]);
    // While disconnected the next session subscribes to it; refusals come as `error` events.
    connection.subscribe([symbol]).catch(() => {});
    loadBars(symbol, "1s");
  }
  select(symbol);
}

function removeSymbol(symbol) {
  setSymbols(symbols.filter((s) => s !== symbol));
  connection.unsubscribe([symbol]).catch(() => {});
  bars.delete(symbol);
  latest.delete(symbol);
  pending.delete(symbol);
}

async function loadNames() {
  try {
    // A small universe in one request; a large one only for the symbols on the board.
    const queries = known.length
      ? ["/api/symbols"]
      : symbols.map((s) => `/api/symbols?q=${encodeURIComponent(s)}&limit=1`);
    for (const query of queries) {
      const response = await fetch(withToken(query));
      if (!response.ok) return;
      for (const s of await response.json()) names.set(s.symbol, s.name);
    }
  } catch {
    // Server unreachable: the next welcome tries again.
    return;
  }
  table.setNames(names);
  fillPicker();
  showSelected();
}

function fillPicker(list = known) {
  const options = list.map((symbol) => {
    const option = document.createElement("option");
    option.value = symbol;
    option.label = names.get(symbol) ?? symbol;
    return option;
  });
  $("#known-symbols").replaceChildren(...options);
}

/** Searches the server's universe as the user types, when `welcome` did not list it. */
async function searchPicker(text) {
  if (known.length || !text.trim()) return;
  try {
    const query = `/api/symbols?q=${encodeURIComponent(text.trim())}&limit=20`;
    const response = await fetch(withToken(query));
    if (!response.ok) return;
    const found = await response.json();
    for (const s of found) names.set(s.symbol, s.name);
    fillPicker(found.map((s) => s.symbol));
  } catch {
    // Offline: the next keystroke tries again.
  }
}

/**
 * With auth on, a page without a (valid) token cannot connect, and the WebSocket cannot say why:
 * ask the API, and on 401 show the token field.
 */
async function checkAccess() {
  try {
    const response = await fetch(withToken("/api/symbols?limit=1"));
    if (response.status !== 401) return;
  } catch {
    // Unreachable: the connection's own retries cover it.
    return;
  }
  $("#access").hidden = false;
  $("#access-message").textContent = accessToken()
    ? "The server refused this access token."
    : "This server needs an access token.";
  $("#token-input").focus();
}

function notify(text) {
  clearTimeout(noticeTimer);
  $("#notice").textContent = text;
  noticeTimer = setTimeout(() => ($("#notice").textContent = ""), NOTICE_MS);
}

$("#symbol-input").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => searchPicker(event.target.value), SEARCH_DELAY_MS);
});

$("#access").addEventListener("submit", (event) => {
  event.preventDefault();
  saveToken($("#token-input").value.trim());
  // The socket and every request take the token from storage: start over with it.
  location.reload();
});

$("#picker").addEventListener("submit", (event) => {
  event.preventDefault();
  addSymbol($("#symbol-input").value);
  $("#symbol-input").value = "";
});

setInterval(() => {
  const now = Date.now();
  showMessageAge(connection.lastMessageAt, now);
  showThroughput(rate.ratePerSecond(now), latency.values(now));
}, REFRESH_MS);

bindViewToggles($("#chart-view"), view, () => {
  if (selected) loadBars(selected, view.interval);
  showSelected();
});
setSymbols(symbols);
// History first: the chart is full before the socket is even open.
for (const symbol of symbols) loadBars(symbol, "1s");
connection.start();
checkAccess();
