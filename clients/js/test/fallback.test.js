// Degraded paths: WebSocket upgrades refused → polling with ETags emits the same quotes, then
// back to WebSocket; a server that stops answering → requests time out cleanly.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TickerClient, TickerError } from "../src/index.js";
import { next, record, Relay, startServer, until, webSocketImpl } from "./support.js";

const FAST = { baseMs: 100, factor: 2, capMs: 400 };
let WebSocket;
before(async () => (WebSocket = await webSocketImpl()));

const clients = [];
after(() => clients.forEach((c) => c.close()));
function client(options) {
  const c = new TickerClient({ WebSocket, backoff: FAST, ...options });
  clients.push(c);
  return c;
}

test("upgrades refused: polling emits the same quotes, then back to WebSocket", async () => {
  const server = await startServer();
  const relay = await new Relay(server.port).start();
  relay.blockUpgrades = true;
  const reference = client({ url: server.ws, symbols: ["AAPL"], poll: false });
  const statuses = [];
  const counting = async (url, init) => {
    const response = await fetch(url, init);
    statuses.push({ status: response.status, conditional: Boolean(init.headers["If-None-Match"]) });
    return response;
  };
  const c = client({
    url: relay.ws,
    symbols: ["AAPL"],
    fetch: counting,
    poll: { afterFailures: 2, intervalMs: 50, retryWebSocketMs: 500 },
  });
  const ref = record(reference);
  const got = record(c);
  reference.start();
  c.start();
  await until("polling", () => c.state === "polling" && c.transport === "poll");
  await until("polled quotes", () => (got.get("AAPL") ?? []).filter((e) => e.source === "poll").length >= 5);
  assert.ok(statuses.some((s) => s.status === 304 && s.conditional), "an unchanged answer is a 304");

  relay.blockUpgrades = false;
  await until("back on WebSocket", () => c.state === "live" && c.transport === "websocket");
  await until("live quotes", () => got.get("AAPL").some((e) => e.source === "live"));
  const polled = got.get("AAPL").filter((e) => e.source === "poll");
  const reference_ = new Map(ref.get("AAPL").map((e) => [e.seq, e.quote]));
  for (const { seq, quote } of polled) {
    if (reference_.has(seq)) assert.deepEqual(quote, reference_.get(seq), `seq ${seq}`);
  }
  assert.ok(polled.some((e) => reference_.has(e.seq)), "polls and the stream overlap");
  const seqs = got.get("AAPL").map((e) => e.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], "each update once, in order");
  await relay.close();
  await server.stop();
});

test("without any WebSocket implementation the client polls", async () => {
  const server = await startServer();
  const c = new TickerClient({ url: server.ws, symbols: ["MSFT"], WebSocket: null, poll: { intervalMs: 100 } });
  clients.push(c);
  c.start();
  const [quotes, { source }] = await new Promise((resolve) => c.once("quotes", (...args) => resolve(args)));
  assert.equal(source, "poll");
  assert.equal(quotes[0].symbol, "MSFT");
  const history = await c.history("MSFT", { interval: "1m", limit: 3 });
  assert.equal(history.bars.length, 3);
  await server.stop();
});

test("requests time out cleanly when the server does not answer", async () => {
  const server = await startServer();
  const relay = await new Relay(server.port).start();
  const c = client({ url: relay.ws, poll: false });
  c.start();
  await next(c, "welcome");
  const history = await c.history("AAPL", { interval: "1s", limit: 5 });
  assert.equal(history.bars.length, 5, "answered while the server listens");
  relay.mute = true;
  const started = Date.now();
  await assert.rejects(c.subscribe(["AAPL"], { timeoutMs: 300 }), (error) => {
    assert.ok(error instanceof TickerError);
    assert.equal(error.code, "timeout");
    return true;
  });
  await assert.rejects(c.history("AAPL", { timeoutMs: 300 }), { code: "timeout" });
  await assert.rejects(c.ping({ timeoutMs: 300 }), { code: "timeout" });
  assert.ok(Date.now() - started < 2000);
  assert.equal(c.state, "live", "a timeout does not end the session by itself");
  c.close();
  await assert.rejects(c.ping(), { code: "disconnected" });
  await relay.close();
  await server.stop();
});
