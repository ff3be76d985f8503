#!/usr/bin/env bash
# Measures the one-node figures of docs/benchmarks.md: a memory-engine node
# (N=R=W=1) and a local redis-server, each under the same dynamo-bench
# workloads, one after the other, with the CPU time each process used.
#
#   dynamo-core/bench/run_figures.sh [BIN_DIR]     (default: build-release/bin)
#   DURATION=10 DYNAMO_PORT=17101 REDIS_PORT=16379 EXTRA=1 ...
#
# Run it while nothing else runs (other builds wait while you hold the lock):
#   flock /tmp/dynamo-build.lock dynamo-core/bench/run_figures.sh
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
DURATION=${DURATION:-10}
DYNAMO_PORT=${DYNAMO_PORT:-17101}
REDIS_PORT=${REDIS_PORT:-16379}
DYNAMO=tcp://127.0.0.1:$DYNAMO_PORT
REDIS=redis://127.0.0.1:$REDIS_PORT
WORK=$(mktemp -d /tmp/dynamo-figures.XXXXXX)
NODE_PID="" REDIS_PID=""

cleanup() {
  [[ -n "$NODE_PID" ]] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/dynamod" --listen "$DYNAMO" --backend memory --data-dir "$WORK/node" \
  --replicas 1 --read-quorum 1 --write-quorum 1 >"$WORK/node.log" 2>&1 &
NODE_PID=$!
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
  "$BIN/dynamoctl" --node "$DYNAMO" --timeout-ms 200 status >/dev/null 2>&1 &&
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

# CPU time (ms) a process has used so far.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
# CPU time (ms) all processes of the machine have used so far (not idle).
machine_ms() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2 + $3 + $4 + $7 + $8) * 1000 / hz}' /proc/stat
}

# CPU columns: % of one core; "machine" is every process on all cores, so
# machine - server - bench is what else ran meanwhile (should be ~0).
echo "| workload | target | ops/s | get p50 / p99 / p99.9 / max (µs) | put p50 / p99 / p99.9 / max (µs) | errors | server CPU | bench CPU | machine CPU |"
echo "|---|---|---:|---|---|---:|---:|---:|---:|"
# run NAME SERVER_PID BENCH-ARGS...
run() {
  local name=$1 pid=$2
  shift 2
  local before after mbefore mafter t0 t1 args=() a shown
  # --preload runs as an invocation of its own (with --ops 1), so the
  # measured run's CPU figures cover only the measured operations.
  for a in "$@"; do [[ $a == --preload ]] || args+=("$a"); done
  if ((${#args[@]} != $#)); then
    "$BIN/dynamo-bench" "${args[@]}" --preload --ops 1 >/dev/null 2>&1
  fi
  shown="dynamo-bench ${args[*]} --duration $DURATION"
  ((${#args[@]} == $#)) || shown="dynamo-bench ${args[*]} --preload --ops 1; $shown"
  before=$(cpu_ms "$pid") mbefore=$(machine_ms) t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/time" "$BIN/dynamo-bench" "${args[@]}" \
    --duration "$DURATION" --json >"$WORK/out.json" 2>"$WORK/err"
  after=$(cpu_ms "$pid") mafter=$(machine_ms) t1=$(date +%s.%N)
  python3 - "$name" "$before" "$after" "$WORK/out.json" "$WORK/time" "$shown" \
    "$mbefore" "$mafter" "$t0" "$t1" <<'PY'
import json, sys
name, before, after, out, tfile, shown, mbefore, mafter, t0, t1 = sys.argv[1:]
d = json.load(open(out))
user, sys_ = map(float, open(tfile).read().split()[-2:])
wall = float(t1) - float(t0)  # the bench process's whole life: CPU shares use it
def lat(op):
    l = op["latency_us"]
    return "—" if not op["count"] else "%d / %d / %d / %d" % (l["p50"], l["p99"], l["p999"], l["max"])
print("| %s | %s | %.0f | %s | %s | %d | %.0f%% | %.0f%% | %.0f%% |" % (
    name, d["kind"], d["throughput"], lat(d["get"]), lat(d["put"]), d["errors"],
    (float(after) - float(before)) / 10 / wall, (user + sys_) * 100 / wall,
    (float(mafter) - float(mbefore)) / 10 / wall))
print("  `%s`" % shown, file=sys.stderr)
PY
}

W="--clients 50 --value-size 100 --keys 100000"
for target in dynamo redis; do
  if [[ $target == dynamo ]]; then T=$DYNAMO P=$NODE_PID; else T=$REDIS P=$REDIS_PID; fi
  run "100% put" "$P" --target "$T" $W --put-ratio 1
  run "100% get" "$P" --target "$T" $W --put-ratio 0 --preload
  run "50/50" "$P" --target "$T" $W --put-ratio 0.5 --preload
  if [[ "${EXTRA:-1}" == 1 ]]; then
    run "50/50 zipfian 0.99" "$P" --target "$T" $W --put-ratio 0.5 --preload --dist zipfian
    run "50/50 depth 8" "$P" --target "$T" $W --put-ratio 0.5 --preload --depth 8
    run "50/50 2 bench threads" "$P" --target "$T" $W --put-ratio 0.5 --preload --threads 2
  fi
done
