// Resume: a client whose connection is cut repeatedly ends up with exactly the updates of a
// reference client that never disconnected; a server restart is followed by a resubscribe.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TickerClient } from "../src/index.js";
import { next, record, Relay, sleep, startServer, until, webSocketImpl } from "./support.js";

const SYMBOLS = ["AAPL", "MSFT", "NVDA"];
const FAST = { baseMs: 100, factor: 2, capMs: 400 };
let WebSocket;
before(async () => (WebSocket = await webSocketImpl()));

const clients = [];
after(() => clients.forEach((c) => c.close()));
function client(options) {
  const c = new TickerClient({ WebSocket, poll: false, backoff: FAST, ...options });
  clients.push(c);
  return c;
}

test("a resume across server-side drops loses and repeats nothing", async () => {
  const server = await startServer();
  const relay = await new Relay(server.port).start();
  const reference = client({ url: server.ws, symbols: SYMBOLS });
  const cut = client({ url: relay.ws, symbols: SYMBOLS });
  const ref = record(reference);
  const got = record(cut);
  const resumed = [];
  const gaps = [];
  cut.on("resumed", (r) => resumed.push(r));
  cut.on("gap", (g) => gaps.push(g));
  reference.start();
  cut.start();
  await until("both live", () => reference.state === "live" && cut.state === "live");
  await sleep(800);
  for (let round = 1; round <= 3; round++) {
    relay.cut();
    await sleep(600);
    relay.restore();
    await until(`resume ${round}`, () => resumed.length === round && cut.state === "live");
    await sleep(500);
  }
  await sleep(1000);

  assert.deepEqual(resumed.map((r) => r.lost), [[], [], []], "every resume recovered all");
  assert.deepEqual(gaps, []);
  for (const symbol of SYMBOLS) {
    const mine = got.get(symbol);
    const theirs = new Map(ref.get(symbol).map((e) => [e.seq, e.quote]));
    for (let i = 1; i < mine.length; i++) {
      assert.equal(mine[i].seq, mine[i - 1].seq + 1, `${symbol}: no hole, no repeat at ${i}`);
    }
    const first = Math.max(mine[0].seq, ref.get(symbol)[0].seq);
    const last = Math.min(mine.at(-1).seq, ref.get(symbol).at(-1).seq);
    assert.ok(last - first > 20, `${symbol}: a long common stretch (${first}..${last})`);
    for (const { seq, quote } of mine) {
      if (seq >= first && seq <= last) assert.deepEqual(quote, theirs.get(seq), `${symbol} ${seq}`);
    }
    assert.ok(mine.some((e) => e.source === "replay"), `${symbol}: some updates were replayed`);
  }
  relay.close();
  await server.stop();
});

test("a server restart on the same port: reconnect, resubscribe, snapshot", async () => {
  const first = await startServer();
  const c = client({ url: first.ws, symbols: ["AAPL"] });
  const welcomes = [];
  c.on("welcome", (w) => welcomes.push(w));
  c.start();
  await until("updates of the first run", () => c.lastSeq("AAPL") >= 3, 20_000);
  const resumed = [];
  c.on("resumed", (r) => resumed.push(r));
  await first.stop("SIGKILL");
  const snapshotAfter = next(c, "snapshot", 20_000);
  const second = await startServer({ port: first.port });
  const [snapshot] = await snapshotAfter;
  assert.equal(snapshot.symbol, "AAPL");
  assert.equal(welcomes.length, 2);
  assert.notEqual(welcomes[0].session_id, welcomes[1].session_id);
  // Another run (`welcome.run`): subscribed without `since`, so nothing of the old numbering
  // is replayed from the new ring; the symbol counts as lost and starts over from the snapshot.
  assert.notEqual(welcomes[0].run, welcomes[1].run);
  assert.deepEqual(resumed, [{ recovered: [], lost: ["AAPL"] }]);
  assert.equal(c.state, "live");
  assert.equal(c.lastSeq("AAPL"), snapshot.seq, "the new run's numbering is taken over");
  // And updates keep coming, after the snapshot.
  const [update] = await next(c, "quotes");
  assert.ok(update.seq > snapshot.seq);
  await second.stop();
});
