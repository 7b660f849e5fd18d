// Close-code advice and tokens: an auth close is not retried, a draining server is left at the
// moment it named (for another one), and a token provider keeps a session past its first token.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TickerClient } from "../src/index.js";
import { mintJwt, next, sleep, startServer, until, webSocketImpl } from "./support.js";

const SECRET = "a test secret of at least thirty-two characters";
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
const nowSecs = () => Math.floor(Date.now() / 1000);

test("a session closed with an auth code (4004, token expired) is not retried", async () => {
  const server = await startServer({
    env: { TICKER__AUTH__HMAC_SECRET: SECRET, TICKER__AUTH__LEEWAY_SECS: "0" },
  });
  const token = mintJwt(SECRET, { sub: "test", exp: nowSecs() + 2 });
  let asked = 0;
  // The same token every time: nothing fresh to send, so the session ends at its expiry.
  const c = client({ url: server.ws, symbols: ["AAPL"], token: () => (asked++, token) });
  const closes = [];
  c.on("disconnect", (d) => closes.push(d));
  c.start();
  const welcome = await next(c, "welcome");
  assert.ok(welcome.expires_at > Date.now());
  await until("signed out", () => c.state === "signed-out", 10_000);
  assert.equal(c.stopped.code, 4004);
  assert.deepEqual(closes.map((d) => d.advice), ["no"]);
  const askedThen = asked;
  await sleep(2000);
  assert.equal(c.state, "signed-out");
  assert.equal(asked, askedThen, "no new connect asked for a token");
  assert.equal(closes.length, 1, "no retry");
  await server.stop();
});

test("a browser-style refusal (4002, bad token) is not retried", { skip: !process.env.TICKER_WS_MODULE && "needs the ws package (Origin header)" }, async () => {
  const server = await startServer({
    env: { TICKER__AUTH__HMAC_SECRET: SECRET, TICKER__AUTH__BROWSER_REFUSAL: "close" },
  });
  const c = client({
    url: server.ws,
    token: () => "not-a-valid-token",
    webSocketOptions: { origin: server.http },
  });
  const closes = [];
  c.on("disconnect", (d) => closes.push(d));
  c.start();
  await until("signed out", () => c.state === "signed-out");
  assert.equal(c.stopped.code, 4002);
  await sleep(1500);
  assert.equal(closes.length, 1, "no retry");
  await server.stop();
});

test("a draining notice: reconnect after reconnect_after_ms, to another server", async () => {
  const drain = { TICKER__SERVER__DRAIN_MS: "1500" };
  const a = await startServer({ env: { ...drain, TICKER__SERVER__NODE_ID: "a" } });
  const b = await startServer({ env: { ...drain, TICKER__SERVER__NODE_ID: "b" } });
  // What a load balancer would do: new connections go to the nodes still taking them.
  let target = a.ws;
  const c = client({ url: () => target, symbols: ["AAPL", "MSFT"] });
  const closes = [];
  const states = [];
  c.on("disconnect", (d) => closes.push({ ...d, at: Date.now() }));
  c.on("state", ({ state }) => states.push(state));
  // Both servers go whatever happens: one left running would keep `node --test` waiting.
  try {
    c.start();
    assert.equal((await next(c, "welcome")).node, "a");
    const notice = next(c, "status");
    a.stop("SIGTERM");
    const status = await notice;
    const noticedAt = Date.now();
    target = b.ws;
    assert.equal(status.server, "draining");
    const resubscribed = next(c, "subscribed", 15_000);
    const welcome = await next(c, "welcome", 15_000);
    const welcomedAt = Date.now();
    assert.equal(welcome.node, "b");
    assert.equal(closes.length, 1);
    // Node's own WebSocket now and then reports 1006 for this close although the server sent
    // 1001: about one run in ten of this suite under load, never with the `ws` package against
    // the same server and test. Which server it reconnects to, and when, is
    // what this test is about.
    const codes = process.env.TICKER_WS_MODULE ? [1001] : [1001, 1006];
    assert.ok(codes.includes(closes[0].code), `closed with ${closes[0].code}`);
    assert.ok(
      welcomedAt >= noticedAt + status.reconnect_after_ms - 50,
      `reconnected ${welcomedAt - noticedAt} ms after the notice, advised ${status.reconnect_after_ms}`,
    );
    assert.ok(!states.includes("stopped"));
    assert.deepEqual((await resubscribed).symbols, ["AAPL", "MSFT"]);
    await a.exited;
  } finally {
    await a.stop();
    await b.stop();
  }
});

test("a token provider keeps a session open past its first token's expiry", async () => {
  const server = await startServer({
    env: { TICKER__AUTH__HMAC_SECRET: SECRET, TICKER__AUTH__LEEWAY_SECS: "0" },
  });
  let minted = 0;
  const c = client({
    url: server.ws,
    symbols: ["AAPL"],
    token: async () => mintJwt(SECRET, { sub: `t${++minted}`, exp: nowSecs() + 3 }),
  });
  const welcomes = [];
  const refreshed = [];
  c.on("welcome", (w) => welcomes.push(w));
  c.on("authenticated", (a) => refreshed.push(a));
  c.start();
  await next(c, "welcome");
  const firstExpiry = welcomes[0].expires_at;
  await until("two refreshes", () => refreshed.length >= 2, 15_000);
  await until("past the first expiry", () => Date.now() > firstExpiry + 1000);
  assert.equal(welcomes.length, 1, "one session throughout");
  assert.equal(c.state, "live");
  assert.ok(refreshed.at(-1).expires_at > firstExpiry);
  const [quote] = await next(c, "quotes");
  assert.equal(quote.symbol, "AAPL");
  await server.stop();
});
