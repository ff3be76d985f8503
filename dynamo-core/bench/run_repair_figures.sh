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
# Debian's python3: a python3 first on PATH may be a shim (pyenv's is a
# shell script that forks a dozen processes per call).
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
# Waits until node $1's engine holds at least $2 keys, polling its status
# every 0.1 s from one process (a new python per poll cost the machine a
# fifth of its CPU while it was being measured).
wait_keys() {  # node, count, deadline s
  "$PY" - "$BIN/dynamoctl" "$(ep "$1")" "$2" "$3" <<'PY'
import json, subprocess, sys, time
ctl, node, want, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + limit
while True:
    r = subprocess.run([ctl, "--node", node, "--timeout-ms", "2000", "--json", "status"],
                       capture_output=True, text=True)
    try:
        if json.loads(r.stdout)["engine"]["keys"] >= want:
            break
    except (ValueError, KeyError, TypeError):
        pass
    if time.monotonic() > end:
        sys.exit("%s never reached %d keys" % (node, want))
    time.sleep(0.1)
PY
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
"$PY" - "$KEYS" "$t0" "$t1" <<'PY'
import sys
keys, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print("wiped node refilled: %d keys in %.1f s (%.0f keys/s, %.1f MB/s of values)"
      % (keys, t1 - t0, keys / (t1 - t0), keys * 100 / (t1 - t0) / 1e6))
PY
"$BIN/dynamoctl" --node "$(ep 2)" --json status |
  "$PY" -c 'import json,sys; r=json.load(sys.stdin)["rebuild"]; print("rebuild:", r)'
grep -h "rebuil" "$WORK/n2.log" | tail -3 || true
for i in 0 1 2; do
  "$BIN/dynamoctl" --node "$(ep "$i")" --json status |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["node_id"], d["anti_entropy"])'
done
