// The pure parts, on fixed inputs: close-code advice, full-jitter backoff, seq tracking.

import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, reconnectAdvice, SeqTracker } from "../src/index.js";

test("close codes are read by range", () => {
  const advice = [1000, 1001, 1002, 1006, 1008, 1009, 4001, 4004, 4099, 4100, 4199, 4408, 4500];
  assert.deepEqual(advice.map(reconnectAdvice), [
    "no", "backoff", "no", "backoff", "backoff", "no", "no", "no", "no", "now", "now", "backoff", "backoff",
  ]);
});

test("full jitter stays below the capped exponential ceiling", () => {
  const backoff = { baseMs: 500, factor: 2, capMs: 5000 };
  assert.equal(backoffDelay(1, backoff, () => 0.999), 499.5);
  assert.equal(backoffDelay(3, backoff, () => 0.5), 1000);
  assert.equal(backoffDelay(10, backoff, () => 0.999), 4995);
  assert.equal(backoffDelay(10, backoff, () => 0), 0);
});

test("seqs: repeats are dropped, jumps are gaps, a lost resume may start a new run", () => {
  const seqs = new SeqTracker();
  const q = (seq, symbol = "AAPL") => ({ symbol, seq });
  assert.deepEqual(seqs.accept(q(5)), { accepted: true, gap: 0, from: undefined });
  assert.equal(seqs.accept(q(5)).accepted, false, "a snapshot repeating the last state");
  assert.deepEqual(seqs.accept(q(8)), { accepted: true, gap: 2, from: 5 });
  assert.deepEqual(seqs.since(["AAPL", "MSFT"]), { AAPL: 8 });
  assert.equal(seqs.accept(q(2)).accepted, false, "an older update of this run");
  seqs.resync(["AAPL"]);
  assert.equal(seqs.accept(q(2)).accepted, true, "the snapshot of a server of another run");
  assert.equal(seqs.lastSeq("AAPL"), 2);
  seqs.forget("AAPL");
  assert.deepEqual(seqs.since(["AAPL"]), {});
});
