#!/usr/bin/env bash
# What quiet symbols cost (docs/benchmarks.md §16): 8,000 generated symbols, each moving on
# about 1 tick in 100 (a real market's long tail), 100 ms ticks. Server CPU with no client,
# then with CLIENTS clients each watching ONE symbol (Zipf-like popularity). Loopback only;
# stops by itself.
#
#   benches/quiet.sh [TICKER_BINARY]      CLIENTS=2000 SECS=15 by default
set -eu
cd "$(dirname "$0")/.."
bin=${1:-./target/release/ticker}
clients=${CLIENTS:-2000}
secs=${SECS:-15}
cargo build --release --quiet -p ticker --bin ticker -p ticker-bench --bin ticker-bench
./target/release/ticker-bench universe --symbols 8000 --seed 1 > /tmp/u8000.toml
ulimit -n "$(ulimit -Hn)"
export TICKER_ENV=bench
port=${PORT:-18600}
# History off: its rings fill during the run and would count as the clients' memory.
export TICKER__HISTORY__RESUME_UPDATES=0 TICKER__HISTORY__BARS_1S=0 TICKER__HISTORY__BARS_1M=0 \
  TICKER__HISTORY__GENERATE_PAST=false
TICKER__SERVER__PORT=$port TICKER__FEED__UPDATE_PROBABILITY=0.01 TICKER__FEED__MAX_QUIET_TICKS=600 \
  "$bin" --config /tmp/u8000.toml >/tmp/quiet.log 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.05; done
sleep 3
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(cpu); sleep "$secs"; t1=$(cpu)
awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" \
  'BEGIN { printf "no clients: %.4f cores\n", (b - a) / hz / s }'
./target/release/ticker-bench push --addr "127.0.0.1:$port" --clients "$clients" \
  --symbols-per-client 1 --warmup-secs 3 --duration-secs "$secs" --server-pid "$pid" \
  --label "$clients clients, one quiet symbol each" 2>/dev/null
kill $pid; wait $pid 2>/dev/null || true
