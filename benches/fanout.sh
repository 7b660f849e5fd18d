#!/usr/bin/env bash
# Workload W of docs/benchmarks.md against ticker, the minimal fan-out baseline and a Node.js
# `ws` server (benches/node_ws_server.js), one after the other on the same machine in one run,
# with the same load generator.
#
#   benches/fanout.sh CLIENTS [SECONDS] [more ticker-bench push options, e.g. --slow-share 0.1]
#   PIN=1 benches/fanout.sh ...   servers on CPU 0, the load generator on CPU 1
#
# Loopback only; each run stops by itself. Output: one report per server (add --json for JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
# PORT (default 8081) is where each server listens in turn.
port=${PORT:-8081}
clients=${1:?usage: benches/fanout.sh CLIENTS [SECONDS] [options]}
secs=${2:-30}
shift $(( $# >= 2 ? 2 : 1 ))
# Two builds: the server alone, so that no dev-dependency feature (the tests' fault injection)
# reaches `ticker`; then the load generator and the baseline, from the `ticker-bench` package.
cargo build --release --quiet -p ticker --bin ticker
cargo build --release --quiet -p ticker-bench --bin ticker-bench --example fanout_baseline
ulimit -n "$(ulimit -Hn)"
export TICKER_ENV=bench

# PIN=1: each server on CPU 0 and the load generator on CPU 1, so that neither takes the
# other's core (less noise between runs; every server then has one core).
server_cpu=() generator_cpu=()
if [ "${PIN:-0}" = 1 ]; then server_cpu=(taskset -c 0) generator_cpu=(taskset -c 1); fi

run() {
  local label=$1; shift
  "${server_cpu[@]}" "$@" > "/tmp/fanout-$label.log" 2>&1 &
  local pid=$!
  sleep 1
  "${generator_cpu[@]}" ./target/release/ticker-bench push --addr "127.0.0.1:$port" --clients "$clients" \
    --duration-secs "$secs" --server-pid "$pid" --label "$label" "${extra[@]}" 2>/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

extra=("$@")
TICKER__SERVER__PORT=$port run ticker ./target/release/ticker
run baseline ./target/release/examples/fanout_baseline "127.0.0.1:$port"
# The Node.js peer: `ws` 8 from the npm registry, installed once into target/.
if command -v node >/dev/null && command -v npm >/dev/null; then
  [ -d target/node-ws/node_modules/ws ] || npm install --silent --prefix target/node-ws ws@8 >/dev/null
  NODE_PATH=target/node-ws/node_modules run node-ws node benches/node_ws_server.js "127.0.0.1:$port"
else
  echo "node-ws: skipped, node and npm are not installed" >&2
fi
