// The Node.js peer of docs/benchmarks.md: what a user would write in an afternoon with the
// `ws` package (8.x) instead of ticker. The same market shape as workload W (the symbols and
// prices of config/bench.toml, every symbol moving every 100 ms), the same JSON quotes, and a
// naive broadcast loop: every client gets every tick, `ws` frames it once per client.
//
//   node benches/node_ws_server.js 127.0.0.1:8081     (benches/fanout.sh installs `ws`)
"use strict";
const fs = require("fs");
const path = require("path");
const { WebSocketServer } = require("ws");

const [host, port] = (process.argv[2] || "127.0.0.1:8081").split(":");
const toml = fs.readFileSync(path.join(__dirname, "..", "config", "bench.toml"), "utf8");
const symbols = [...toml.matchAll(/symbol = "([^"]+)"[\s\S]*?price = ([\d.]+)/g)].map((m) => ({
  symbol: m[1],
  open: Number(m[2]),
  price: Number(m[2]),
  high: Number(m[2]),
  low: Number(m[2]),
  volume: 0,
  seq: 0,
}));
const round2 = (x) => Math.round(x * 100) / 100;

const wss = new WebSocketServer({ host, port: Number(port), perMessageDeflate: false });
setInterval(() => {
  const ts = Date.now();
  const quotes = symbols.map((s) => {
    s.price *= Math.exp((Math.random() - 0.5) * 0.004);
    s.high = Math.max(s.high, s.price);
    s.low = Math.min(s.low, s.price);
    s.volume += 100 * (1 + Math.floor(Math.random() * 20));
    s.seq += 1;
    const half = Math.max((s.price * 4) / 20000, 0.005);
    return {
      symbol: s.symbol,
      price: round2(s.price),
      bid: round2(s.price - half),
      ask: round2(s.price + half),
      open: round2(s.open),
      high: round2(s.high),
      low: round2(s.low),
      change: round2(s.price - s.open),
      change_pct: round2(((s.price - s.open) / s.open) * 100),
      volume: s.volume,
      seq: s.seq,
      ts,
    };
  });
  const frame = JSON.stringify({ type: "quotes", quotes });
  for (const client of wss.clients) {
    if (client.readyState === 1) client.send(frame);
  }
}, 100);
console.error(`node ws server on ${host}:${port}, ${symbols.length} symbols`);
