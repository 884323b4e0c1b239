#!/usr/bin/env bash
# Push throughput with the metrics endpoint disabled and enabled (scraped every
# second), interleaved A B A B, median of ROUNDS rounds per variant.
#
#   benches/metrics_overhead.sh [ROUNDS] [SECONDS]
#
# BASELINE=/path/to/other/dmqnode adds a third variant (e.g. a build from
# before the probes were added) to measure the cost of counting itself.
# Every node started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-5}
cargo build --release -q -p dmq-node -p dmq-benches
node=$PWD/target/release/dmqnode
load=target/release/legacy_load
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run VARIANT BINARY METRICS(0|1): prints req/s
run() {
  local bin=$2 metrics=$3 port mport pid scraper=""
  port=$(free_port); mport=$(free_port)
  local args=(-O server.port="$port" -O server.neoport=0 -O server.shards=1
    -O server.channel_size_limit=268435456 -O stats.console=false
    -O server.unix_socket_path="$work/s.sock" -O log.file="$work/root.log" -O stats.file_name="$work/stats.log")
  if [ "$metrics" = 1 ]; then args+=(-O metrics.address=127.0.0.1:"$mport"); else args+=(-O metrics.address=); fi
  if [ "$bin" != "$node" ]; then
    # An older build may not know every key: keep to the common ones.
    args=(-O server.port="$port" -O server.shards=1 -O server.channel_size_limit=268435456 -O log.file="$work/root.log")
  fi
  (cd "$work" && exec "$bin" "${args[@]}" >/dev/null 2>&1) &
  pid=$!
  sleep 0.5
  if [ "$metrics" = 1 ]; then
    ( for _ in $(seq 1 $((seconds + 3))); do curl -s "http://127.0.0.1:$mport/metrics" >/dev/null || true; sleep 1; done ) &
    scraper=$!
  fi
  "$load" push "127.0.0.1:$port" 50 16 "$seconds" 100 | sed -E 's/.*: ([0-9]+) req\/s/\1/'
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A results
variants=("disabled $node 0" "enabled $node 1")
[ -n "${BASELINE:-}" ] && variants+=("baseline $BASELINE 0")
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    set -- $v
    rate=$(run "$1" "$2" "$3")
    echo "round $r $1: $rate req/s"
    results[$1]+="$rate "
  done
done
echo
for v in "${variants[@]}"; do
  set -- $v
  m=$(echo "${results[$1]}" | tr ' ' '\n' | grep . | median)
  echo "$1 median: $m req/s"
  eval "med_$1=$m"
done
awk -v a="$med_disabled" -v b="$med_enabled" 'BEGIN {printf "enabled / disabled = %.3f\n", b / a}'
if [ -n "${BASELINE:-}" ]; then
  awk -v a="$med_baseline" -v b="$med_disabled" 'BEGIN {printf "with probes / baseline = %.3f\n", b / a}'
fi
