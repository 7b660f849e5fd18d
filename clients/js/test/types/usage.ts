// Type-checked by `tsc --noEmit` (tests/js_client.rs): the README's example and the event types.
import { TickerClient, TickerError, reconnectAdvice, type Quote, type ServerMessage } from "../../src/index.js";

const client = new TickerClient({
  url: "ws://127.0.0.1:8080/ws",
  symbols: ["AAPL", "MSFT"],
  token: async () => "a-token",
  poll: { afterFailures: 3, intervalMs: 1000 },
});
client.on("quotes", (quotes: Quote[], { source }) => {
  for (const q of quotes) console.log(q.symbol, q.price.toFixed(2), q.seq, source);
});
client.on("gap", ({ symbol, missed }) => console.warn(`${symbol}: ${missed} updates lost`));
client.on("state", ({ state, stopped }) => console.log(state, stopped?.code));
client.on("message", (m: ServerMessage) => {
  if (m.type === "welcome") console.log(m.node, m.history?.intervals["1s"]);
});
client.start();

async function use(): Promise<void> {
  try {
    const reply = await client.subscribe(["NVDA"], { timeoutMs: 2000 });
    console.log(reply.symbols, reply.recovered ?? [], reply.errors?.length);
    const history = await client.history("AAPL", { interval: "1m", limit: 10 });
    console.log(history.bars.map((b) => b.c));
  } catch (error) {
    if (error instanceof TickerError && error.code === "timeout") client.close();
  }
  const advice: "no" | "now" | "backoff" = reconnectAdvice(4004);
  console.log(advice);
}
void use();
