#!/usr/bin/env bash
# Measures how fast a replica that lost its data is refilled
# (docs/benchmarks.md, "Rebuild" and "Repair"): three file-engine nodes (N=3,
# so each holds every key), KEYS keys of 100 bytes written, one node stopped,
# its engine folder deleted, restarted; then the time until its engine holds
# every key again, with no client request at all. By default the node
# rebuilds by streaming its partitions (--rebuild-streams); with
# NODE_ARGS="--rebuild-streams 0" anti-entropy alone refills it.
#
#   dynamo-core/bench/run_repair_figures.sh [BIN_DIR]   (default: build-release/bin)
#   KEYS=100000 BASE_PORT=17121 NODE_ARGS="--anti-entropy-rate 20000" ...
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
KEYS=${KEYS:-100000}
BASE_PORT=${BASE_PORT:-17121}
WORK=$(mktemp -d /tmp/dynamo-repair-figures.XXXXXX)
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
engine_keys() {
  "$BIN/dynamoctl" --node "$(ep "$1")" --timeout-ms 2000 --json status 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["engine"]["keys"])' 2>/dev/null ||
    echo 0
}
wait_keys() {  # node, count, deadline s
  local end=$((SECONDS + $3))
  while (($(engine_keys "$1") < $2)); do
    ((SECONDS < end)) || { echo "n$1 never reached $2 keys" >&2; exit 1; }
    sleep 0.2
  done
}

for i in 0 1 2; do start "$i"; sleep 0.3; done
for _ in $(seq 150); do
  rings=$(for i in 0 1 2; do "$BIN/dynamoctl" --node "$(ep "$i")" --timeout-ms 300 --json ring \
            2>/dev/null || echo down; done | sort -u)
  [[ $(wc -l <<<"$rings") == 1 && $rings == *'"n2"'* ]] && break
  sleep 0.2
done
"$BIN/dynamo-bench" --target "$(ep 0),$(ep 1),$(ep 2)" --keys "$KEYS" --value-size 100 \
  --preload --ops 1 --json >/dev/null 2>&1
for i in 0 1 2; do wait_keys "$i" "$KEYS" 120; done
echo "$KEYS keys on each of 3 nodes"

kill -TERM "${PIDS[2]}"
wait "${PIDS[2]}" 2>/dev/null || true
rm -rf "$WORK/n2/file"
t0=$(date +%s.%N)
start 2
wait_keys 2 "$KEYS" 1800
t1=$(date +%s.%N)
python3 - "$KEYS" "$t0" "$t1" <<'PY'
import sys
keys, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print("wiped node refilled: %d keys in %.1f s (%.0f keys/s, %.1f MB/s of values)"
      % (keys, t1 - t0, keys / (t1 - t0), keys * 100 / (t1 - t0) / 1e6))
PY
"$BIN/dynamoctl" --node "$(ep 2)" --json status |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["rebuild"]; print("rebuild:", r)'
grep -h "rebuil" "$WORK/n2.log" | tail -3 || true
for i in 0 1 2; do
  "$BIN/dynamoctl" --node "$(ep "$i")" --json status |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["node_id"], d["anti_entropy"])'
done
