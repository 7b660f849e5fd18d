#!/usr/bin/env bash
# permessage-deflate at scale: workload W with N clients that offer the extension
# (`ticker-bench push --compression`), against ticker with `ws.compression` off, shared and
# per_connection in turn, the same load generator each time. Reports wire bytes per quote and
# server CPU per frame (docs/benchmarks.md §15).
#
#   benches/compression.sh CLIENTS [SECONDS]
#   PIN=1 benches/compression.sh ...   the server on CPU 0 and the load generator on CPU 1
#                                      (per_connection then has one core: it cannot keep up)
#   MODES="off shared" benches/compression.sh ...   only these settings of ws.compression
#
# Loopback only; each run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8081}
clients=${1:?usage: benches/compression.sh CLIENTS [SECONDS]}
secs=${2:-15}
cargo build --release --quiet -p ticker --bin ticker
cargo build --release --quiet -p ticker-bench --bin ticker-bench
ulimit -n "$(ulimit -Hn)"
export TICKER_ENV=bench
server_cpu=() generator_cpu=()
if [ "${PIN:-0}" = 1 ]; then server_cpu=(taskset -c 0) generator_cpu=(taskset -c 1); fi
for mode in ${MODES:-off shared per_connection}; do
  TICKER__SERVER__PORT=$port TICKER__WS__COMPRESSION=$mode "${server_cpu[@]}" ./target/release/ticker \
    > "/tmp/compression-$mode.log" 2>&1 &
  pid=$!
  sleep 1
  "${generator_cpu[@]}" ./target/release/ticker-bench push --addr "127.0.0.1:$port" --clients "$clients" \
    --duration-secs "$secs" --server-pid "$pid" --label "ws.compression=$mode" --compression \
    2>/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
