#!/usr/bin/env bash
# Measures one node (N=R=W=1) on each storage engine under the same
# dynamo-bench workloads (docs/benchmarks.md, "Engines"): memory, file
# (sync=interval and sync=always) and mysql on a private MariaDB started for
# the run (tests/mariadb/mariadb.sh), each fresh, one after the other.
#
#   dynamo-core/bench/run_engine_figures.sh [BIN_DIR]   (default: build-release/bin)
#   DURATION=8 PORT=17141 ...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$(cd "${1:-build-release/bin}" && pwd)
DURATION=${DURATION:-8}
PORT=${PORT:-17141}
EP=tcp://127.0.0.1:$PORT
WORK=$(mktemp -d /tmp/dynamo-engine-figures.XXXXXX)
NODE_PID=""
cleanup() {
  [[ -n "$NODE_PID" ]] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  bash "$ROOT/tests/mariadb/mariadb.sh" destroy "$WORK/mariadb" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

bash "$ROOT/tests/mariadb/mariadb.sh" start "$WORK/mariadb" >/dev/null
# shellcheck disable=SC1090
source <(bash "$ROOT/tests/mariadb/mariadb.sh" env "$WORK/mariadb")

echo "| engine | workload | ops/s | get p50 / p99 (µs) | put p50 / p99 (µs) | errors |"
echo "|---|---|---:|---|---|---:|"
for engine in memory file-interval file-always mysql; do
  args=(--listen "$EP" --data-dir "$WORK/$engine" --replicas 1 --read-quorum 1 --write-quorum 1)
  case $engine in
    memory) args+=(--backend memory) ;;
    file-interval) args+=(--backend file --backend-opt sync=interval) ;;
    file-always) args+=(--backend file --backend-opt sync=always) ;;
    mysql) args+=(--backend mysql --backend-opt "socket=$DYNAMO_TEST_MYSQL_SOCKET"
                  --backend-opt "user=$DYNAMO_TEST_MYSQL_USER"
                  --backend-opt "password=$DYNAMO_TEST_MYSQL_PASSWORD"
                  --backend-opt "database=$DYNAMO_TEST_MYSQL_DATABASE"
                  --backend-opt table=bench) ;;
  esac
  "$BIN/dynamod" "${args[@]}" >"$WORK/$engine.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 100); do
    "$BIN/dynamoctl" --node "$EP" --timeout-ms 200 status >/dev/null 2>&1 && break
    sleep 0.1
  done
  W=(--target "$EP" --clients 50 --value-size 100 --keys 100000)
  "$BIN/dynamo-bench" "${W[@]}" --preload --ops 1 --json >/dev/null 2>&1
  for spec in "100% put:1" "100% get:0" "50/50:0.5"; do
    name=${spec%%:*} ratio=${spec##*:}
    out=$("$BIN/dynamo-bench" "${W[@]}" --put-ratio "$ratio" --duration "$DURATION" --json 2>/dev/null)
    python3 - "$engine" "$name" "$out" <<'PY'
import json, sys
engine, name, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def lat(op):
    d = out[op]
    return "-" if not d["count"] else "%d / %d" % (d["latency_us"]["p50"], d["latency_us"]["p99"])
print("| %s | %s | %d | %s | %s | %d |" % (engine, name, out["throughput"], lat("get"), lat("put"),
                                          out["errors"]))
PY
  done
  kill "$NODE_PID"
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=""
done
