#!/usr/bin/env bash
# History memory (docs/benchmarks.md §12, §18): SYMBOLS generated symbols (8,000 by default),
# two servers side by side, one with the default [history] and one with history off, no
# clients; resident memory from /proc/PID/status at 5 s and at SECS (120 by default: at the
# generated universe's rate every symbol's 600-update ring is full after about a minute).
# Loopback only; stops by itself.
#
#   benches/history_memory.sh [TICKER_BINARY]      SYMBOLS=8000 SECS=120 by default
set -eu
cd "$(dirname "$0")/.."
bin=${1:-./target/release/ticker}
symbols=${SYMBOLS:-8000}
secs=${SECS:-120}
cargo build --release --quiet -p ticker --bin ticker -p ticker-bench --bin ticker-bench
./target/release/ticker-bench universe --symbols "$symbols" --seed 1 > "/tmp/u$symbols.toml"
export TICKER_ENV=bench TICKER__LOG__LEVEL=warn
TICKER__SERVER__PORT=0 "$bin" --config "/tmp/u$symbols.toml" >/dev/null 2>&1 &
with=$!
TICKER__SERVER__PORT=0 TICKER__HISTORY__RESUME_UPDATES=0 TICKER__HISTORY__BARS_1S=0 \
  TICKER__HISTORY__BARS_1M=0 TICKER__HISTORY__GENERATE_PAST=false \
  "$bin" --config "/tmp/u$symbols.toml" >/dev/null 2>&1 &
without=$!
rss() { awk '/VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f s", ($14 + $15) / hz }' "/proc/$1/stat"; }
sleep 5
echo "at 5 s: history $(rss $with), no history $(rss $without)"
sleep $((secs - 5))
echo "at $secs s: history $(rss $with) ($(cpu $with) CPU), no history $(rss $without) ($(cpu $without) CPU)"
kill $with $without
wait 2>/dev/null || true
