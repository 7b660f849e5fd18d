// A client on Node's `ws` package, which offers permessage-deflate by default: with
// `threshold: 0` it compresses even its short requests. Prints what it saw as one JSON line;
// exits 0 once a ping was answered and quotes arrived. Used by tests/node_client.rs.
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2], { perMessageDeflate: { threshold: 0 } });
const seen = { extensions: null, types: {} };
const fail = (why, code) => {
  console.error(why, JSON.stringify(seen));
  process.exit(code);
};
const timer = setTimeout(() => fail('timeout', 2), 10000);
ws.on('upgrade', (res) => {
  seen.extensions = res.headers['sec-websocket-extensions'] || null;
});
ws.on('message', (data) => {
  const message = JSON.parse(data.toString());
  seen.types[message.type] = (seen.types[message.type] || 0) + 1;
  if (message.type === 'welcome') {
    ws.send(JSON.stringify({ op: 'ping', id: 7 }));
    ws.send(JSON.stringify({ op: 'subscribe', symbols: Array(50).fill('AAPL') }));
  }
  if (message.type === 'pong') seen.pong = message.id;
  if (seen.pong === 7 && (seen.types.quotes || 0) >= 5 && !seen.done) {
    seen.done = true;
    clearTimeout(timer);
    console.log(JSON.stringify(seen));
    ws.close(1000);
  }
});
ws.on('close', (code) => (seen.done ? process.exit(0) : fail(`closed with ${code}`, 3)));
ws.on('error', (e) => fail(String(e), 4));
