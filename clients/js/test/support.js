// Test support: the real server binary (TICKER_BIN), a TCP relay whose connections a test can
// cut or whose upgrades it can refuse, HS256 tokens, and waiting for conditions.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import net from "node:net";
import { pathToFileURL } from "node:url";

/** The WebSocket implementation: the `ws` package named by TICKER_WS_MODULE, else the global one. */
export async function webSocketImpl() {
  const module = process.env.TICKER_WS_MODULE;
  if (!module) return globalThis.WebSocket;
  return (await import(pathToFileURL(module).href)).default;
}

/** A port free right now (for a server that must come back on the same one). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `check()` is truthy (polled), or rejects after `timeoutMs` naming `what`. */
export async function until(what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ticker binary on `port` (a free one by default) with `TICKER__…` settings in `env`. */
export async function startServer({ port, env = {} } = {}) {
  const bin = process.env.TICKER_BIN;
  if (!bin) throw new Error("TICKER_BIN names the server binary (tests/js_client.rs sets it)");
  port ??= await freePort();
  const child = spawn(bin, [], {
    env: {
      ...process.env,
      TICKER__SERVER__HOST: "127.0.0.1",
      TICKER__SERVER__PORT: String(port),
      TICKER__LOG__LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const http = `http://127.0.0.1:${port}`;
  await until(`the server on ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    try {
      return (await fetch(`${http}/healthz`)).ok;
    } catch {
      return false;
    }
  });
  return {
    port,
    http,
    ws: `ws://127.0.0.1:${port}/ws`,
    /** Stops it (SIGTERM drains, SIGKILL is a crash) and waits for the exit. */
    async stop(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    exited,
  };
}

/**
 * A TCP relay to `target` (a port). `cut()` drops every connection and refuses new ones until
 * `restore()`; `blockUpgrades` answers WebSocket upgrades with 403 while HTTP passes; `mute`
 * stops relaying what clients send once the upgrade went through (a server that never answers).
 */
export class Relay {
  blockUpgrades = false;
  mute = false;
  #down = false;
  #sockets = new Set();
  #server;

  constructor(target) {
    this.target = target;
  }

  async start() {
    this.#server = net.createServer((client) => this.#accept(client));
    await new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = this.#server.address().port;
    this.ws = `ws://127.0.0.1:${this.port}/ws`;
    this.http = `http://127.0.0.1:${this.port}`;
    return this;
  }

  cut() {
    this.#down = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  restore() {
    this.#down = false;
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #accept(client) {
    if (this.#down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    // Every request is looked at until one upgrades: a client may send its upgrade on a
    // connection kept alive from plain HTTP requests (Node's fetch and WebSocket share a pool).
    let upgraded = false;
    client.on("data", (chunk) => {
      if (!upgraded && /^upgrade:\s*websocket/im.test(chunk.toString("latin1"))) {
        if (this.blockUpgrades) {
          client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
          upstream.destroy();
          return;
        }
        upgraded = true;
      } else if (upgraded && this.mute) {
        return;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
  }
}

/** An HS256 JWT signed with `secret`. */
export function mintJwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  const signature = createHmac("sha256", secret).update(body).digest("base64url");
  return `${body}.${signature}`;
}

/** Every quote a client emits, per symbol, in order, with where it came from. */
export function record(client) {
  const seen = new Map();
  const add = (quotes, { source }) => {
    for (const quote of quotes) {
      if (!seen.has(quote.symbol)) seen.set(quote.symbol, []);
      seen.get(quote.symbol).push({ seq: quote.seq, source, quote });
    }
  };
  client.on("quotes", add);
  client.on("snapshot", add);
  return seen;
}

/** Waits for the client's next `event` (the listener's first argument). */
export function next(client, event, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.once(event, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
