#!/usr/bin/env bash
# A real exchange's universe (docs/benchmarks.md §10): 8,000 generated symbols, clients watching
# 20 each (Zipf-like popularity), against workload W's 20 symbols watched whole; start-up, idle
# cost, /api/quotes and /api/symbols?q= on the large universe. Loopback only; stops by itself.
#
#   benches/universe.sh            CLIENTS=2000 by default
#   PIN=1 benches/universe.sh      the server on CPU 0, the load generator on CPU 1
set -u
cd "$(dirname "$0")/.."
cargo build --release --quiet -p ticker --bin ticker -p ticker-bench --bin ticker-bench
./target/release/ticker-bench universe --symbols 8000 --seed 1 > /tmp/u8000.toml
ulimit -n "$(ulimit -Hn)"
export TICKER_ENV=bench
# History off: its rings fill during the run and would count as the clients' memory.
export TICKER__HISTORY__RESUME_UPDATES=0 TICKER__HISTORY__BARS_1S=0 TICKER__HISTORY__BARS_1M=0 \
  TICKER__HISTORY__GENERATE_PAST=false
port=${PORT:-18500}
server_cpu=() generator_cpu=()
if [ "${PIN:-0}" = 1 ]; then server_cpu=(taskset -c 0) generator_cpu=(taskset -c 1); fi
start() { # $@ extra args
  local t0=$(date +%s%N)
  TICKER__SERVER__PORT=$port TICKER__LOG__LEVEL=warn "${server_cpu[@]}" ./target/release/ticker "$@" >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.01; done
  echo "startup_ms $(( ($(date +%s%N) - t0) / 1000000 ))"
  sleep 2
  echo "idle_rss_kib $(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
}
stop() { kill $pid; wait $pid 2>/dev/null; }
echo "== 8000 symbols"
start --config /tmp/u8000.toml
for i in 1 2 3; do curl -s -o /dev/null -w "api_quotes_all %{http_code} %{size_download}B %{time_total}s\n" "http://127.0.0.1:$port/api/quotes"; done
for i in 1 2 3; do curl -s -o /dev/null -w "api_symbols_q %{http_code} %{time_total}s\n" "http://127.0.0.1:$port/api/symbols?q=PA&limit=20"; done
ps -o %cpu= -p $pid | xargs echo "idle_cpu_percent"
"${generator_cpu[@]}" ./target/release/ticker-bench push --addr 127.0.0.1:$port --clients ${CLIENTS:-2000} --symbols-per-client 20 --warmup-secs 3 --duration-secs 15 --server-pid $pid --label zipf20-of-8000 2>/dev/null
stop
echo "== workload W (config/bench.toml, 20 symbols), subscribe-all"
start
"${generator_cpu[@]}" ./target/release/ticker-bench push --addr 127.0.0.1:$port --clients ${CLIENTS:-2000} --warmup-secs 3 --duration-secs 15 --server-pid $pid --label all-of-W 2>/dev/null
stop
