#!/usr/bin/env bash
# Measures what background work costs clients (docs/benchmarks.md,
# "Background work under load"): four file-engine nodes (N=3, R=2, W=2);
# one is stopped while KEYS keys are written, so the others keep hints for
# it; then it starts again and the hints are delivered while 50 clients run a
# 50/50 load for DURATION s through the three others. The same load runs
# first with no background work (the baseline). Reports both p99s, the
# hints delivered and how long delivery took.
#
#   dynamo-core/bench/run_background_figures.sh [BIN_DIR]   (default: build-release/bin)
#   KEYS=135000 DURATION=10 BASE_PORT=17131 NODE_ARGS="--background-target-p99-ms 0" ...
#
# Run it while nothing else runs.
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
KEYS=${KEYS:-135000}
DURATION=${DURATION:-10}
BASE_PORT=${BASE_PORT:-17131}
WORK=$(mktemp -d /tmp/dynamo-background-figures.XXXXXX)
declare -A PIDS
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ep() { echo "tcp://127.0.0.1:$((BASE_PORT + $1))"; }
start() {
  local i=$1 args
  args=(--listen "$(ep "$i")" --backend file --data-dir "$WORK/n$i" --node-id "n$i")
  ((i > 0)) && args+=(--seed "$(ep 0)")
  # shellcheck disable=SC2206
  args+=(${NODE_ARGS:-})
  "$BIN/dynamod" "${args[@]}" >>"$WORK/n$i.log" 2>&1 &
  PIDS[$i]=$!
}
status_field() {  # node, python expression over the status document d
  "$BIN/dynamoctl" --node "$(ep "$1")" --timeout-ms 2000 --json status 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null || echo -1
}
hints_pending() {
  local total=0 i
  for i in 0 1 2; do total=$((total + $(status_field "$i" 'd["hints_pending"]'))); done
  echo "$total"
}
load() {  # label: 50 clients, 50/50, through n0..n2; prints the bench's JSON summary
  "$BIN/dynamo-bench" --target "$(ep 0),$(ep 1),$(ep 2)" --clients 50 --put-ratio 0.5 \
    --keys "$KEYS" --value-size 100 --duration "$DURATION" --json >"$WORK/$1.json"
  python3 - "$1" "$WORK/$1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
print("%-22s %8.0f ops/s  p99 get %.2f ms, put %.2f ms  errors %d" % (
    sys.argv[1], d["throughput"], d["get"]["latency_us"]["p99"] / 1e3,
    d["put"]["latency_us"]["p99"] / 1e3, d["errors"]))
PY
}

for i in 0 1 2 3; do start "$i"; sleep 0.3; done
for _ in $(seq 150); do
  rings=$(for i in 0 1 2 3; do "$BIN/dynamoctl" --node "$(ep "$i")" --timeout-ms 300 --json ring \
            2>/dev/null || echo down; done | sort -u)
  [[ $(wc -l <<<"$rings") == 1 && $rings == *'"n3"'* ]] && break
  sleep 0.2
done
"$BIN/dynamo-bench" --target "$(ep 0),$(ep 1),$(ep 2),$(ep 3)" --keys "$KEYS" --value-size 100 \
  --preload --ops 1 --json >/dev/null 2>&1
echo "$KEYS keys written on 4 nodes (${NODE_ARGS:-default options})"
load "baseline"

# n3 away: every write of a key it replicates leaves a hint for it.
kill -TERM "${PIDS[3]}"
wait "${PIDS[3]}" 2>/dev/null || true
sleep 4  # until the others take it for down
"$BIN/dynamo-bench" --target "$(ep 0),$(ep 1),$(ep 2)" --keys "$KEYS" --value-size 100 \
  --preload --ops 1 --json >/dev/null 2>&1
# status shows hints as of each node's last handoff tick (1 s): wait until
# the count holds still.
pending=-1
while :; do
  sleep 1.5
  now=$(hints_pending)
  ((now == pending)) && break
  pending=$now
done
echo "hints pending for n3: $pending"

t0=$(date +%s.%N)
start 3
load "during hint delivery" &
load_pid=$!
while (($(hints_pending) > 0)); do sleep 0.2; done
t1=$(date +%s.%N)
wait "$load_pid"
python3 - "$pending" "$t0" "$t1" <<'PY'
import sys
n, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print("%d hints delivered in %.1f s after n3 restarted (%.0f/s)" % (n, t1 - t0, n / (t1 - t0)))
PY
for i in 0 1 2 3; do
  echo "n$i background: $(status_field "$i" 'd["background"]')"
  echo "n$i anti-entropy: $(status_field "$i" 'd["anti_entropy"]'), hints: $(status_field "$i" 'd["hints"]')"
done
