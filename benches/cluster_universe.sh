#!/usr/bin/env bash
# Cluster mode with a large universe (docs/benchmarks.md §17): a real nats-server, one
# publisher and one edge, 8,000 generated symbols each moving every 100 ms tick (80,000
# per-symbol messages a second), no clients. Reports each process's CPU over SECS seconds: what
# an edge pays to follow every symbol's subject, the most per-symbol subscriptions could save.
# Loopback only; stops by itself. Needs nats-server on the PATH.
#
#   benches/cluster_universe.sh       SECS=15 by default
set -eu
cd "$(dirname "$0")/.."
secs=${SECS:-15}
cargo build --release --quiet -p ticker --bin ticker -p ticker-bench --bin ticker-bench
./target/release/ticker-bench universe --symbols 8000 --seed 1 > /tmp/u8000.toml
export TICKER_ENV=bench TICKER__NATS__URL=nats://127.0.0.1:14222
nats-server -a 127.0.0.1 -p 14222 >/tmp/cu-nats.log 2>&1 &
nats=$!
sleep 1
./target/release/ticker publish --config /tmp/u8000.toml >/tmp/cu-publisher.log 2>&1 &
publisher=$!
TICKER__FEED__SOURCE=nats TICKER__SERVER__PORT=18700 ./target/release/ticker \
  --config /tmp/u8000.toml >/tmp/cu-edge.log 2>&1 &
edge=$!
until curl -sf -o /dev/null http://127.0.0.1:18700/readyz; do sleep 0.1; done
sleep 5
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A t0
for p in $nats $publisher $edge; do t0[$p]=$(cpu "$p"); done
sleep "$secs"
for name in nats:$nats publisher:$publisher edge:$edge; do
  p=${name#*:}
  awk -v n="${name%%:*}" -v a="${t0[$p]}" -v b="$(cpu "$p")" -v hz="$hz" -v s="$secs" \
    -v rss="$(awk '/VmRSS/ {print $2}' "/proc/$p/status")" \
    'BEGIN { printf "%-10s %.3f cores  RSS %.1f MiB\n", n, (b - a) / hz / s, rss / 1024 }'
done
curl -s -o /dev/null -w "edge /api/quotes (8,000): %{size_download} B in %{time_total} s\n" \
  http://127.0.0.1:18700/api/quotes
kill $edge $publisher; wait $edge $publisher 2>/dev/null || true
kill $nats; wait $nats 2>/dev/null || true
