// Bytes on the wire per quote, with whatever compression the server negotiates: one client on
// Node's `ws` package (which offers permessage-deflate), subscribed to every symbol, counts the
// TCP bytes it reads and the quotes it receives over DURATION seconds after a 2 s warm-up.
// Usage: node bench/deflate_bytes.js ws://127.0.0.1:8080/ws?symbols=* [DURATION] [plain]
// (run where `npm install ws` put node_modules, e.g. NODE_PATH=DIR/node_modules; `plain`
// offers no extension). Prints one JSON line. See docs/benchmarks.md.
const WebSocket = require('ws');

const [url, seconds = '10', plain] = process.argv.slice(2);
const ws = new WebSocket(url, { perMessageDeflate: plain !== 'plain' });
let quotes = 0;
let frames = 0;
let start = null;
ws.on('upgrade', (res) => {
  console.error('extensions:', res.headers['sec-websocket-extensions'] || '(none)');
});
ws.on('open', () => {
  setTimeout(() => {
    start = { bytes: ws._socket.bytesRead, at: Date.now() };
    setTimeout(() => {
      const bytes = ws._socket.bytesRead - start.bytes;
      const secs = (Date.now() - start.at) / 1000;
      console.log(JSON.stringify({
        extensions: ws.extensions || '', frames, quotes, bytes,
        bytes_per_quote: +(bytes / quotes).toFixed(1), bytes_per_sec: Math.round(bytes / secs),
      }));
      ws.close(1000);
    }, Number(seconds) * 1000);
  }, 2000);
});
ws.on('message', (data) => {
  if (start === null) return;
  const message = JSON.parse(data.toString());
  if (message.type === 'quotes') {
    frames += 1;
    quotes += message.quotes.length;
  }
});
ws.on('close', () => process.exit(0));
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
