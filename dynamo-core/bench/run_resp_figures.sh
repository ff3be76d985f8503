#!/usr/bin/env bash
# Measures the Redis-protocol figures of docs/benchmarks.md: the same
# dynamo-bench workload against a redis-server and against dynamo's RESP front
# ends (1 node N=R=W=1, and 3 nodes N=3 R=2 W=2, memory and file engines),
# with the CPU per operation of the generator and of all server processes.
#
#   dynamo-core/bench/run_resp_figures.sh [BIN_DIR]   (default: build-release/bin)
#   ROUNDS=3 DURATION=10 CLIENTS=50 TARGETS="redis dyn1-memory dyn3-memory" ...
#   NODE_ARGS="..."   (extra dynamod options)
#   BENCH=path/to/dynamo-bench   (default: BIN_DIR's; e.g. to drive an older build's nodes)
#
# Each round runs every target once, in turn (interleaved rounds); the table
# gives the median round of each target by throughput. Run it while nothing
# else runs.
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
BENCH=${BENCH:-$BIN/dynamo-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-50}
TARGETS=${TARGETS:-redis dyn1-memory dyn1-file dyn3-memory dyn3-file}
BASE_PORT=${BASE_PORT:-17300}
WORK=$(mktemp -d /tmp/dynamo-resp-figures.XXXXXX)
PIDS=()
stop_servers() {
  if ((${#PIDS[@]})); then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  PIDS=()
}
trap 'stop_servers; rm -rf "$WORK"' EXIT

# start_target NAME: starts it fresh (empty data); sets TARGET_URLS.
start_target() {
  local name=$1 n engine i ep resp args urls=()
  rm -rf "${WORK:?}/data"
  mkdir -p "$WORK/data"
  if [[ $name == redis ]]; then
    redis-server --port "$BASE_PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --daemonize no >"$WORK/redis.log" 2>&1 &
    PIDS+=("$!")
    urls+=("redis://127.0.0.1:$BASE_PORT")
    for _ in $(seq 100); do
      redis-cli -p "$BASE_PORT" PING >/dev/null 2>&1 && break
      sleep 0.05
    done
  else
    n=${name:3:1}
    engine=${name#dyn?-}
    local seed=""
    for ((i = 0; i < n; i++)); do
      ep=tcp://127.0.0.1:$((BASE_PORT + 10 + i))
      resp=127.0.0.1:$((BASE_PORT + 20 + i))
      args=(--listen "$ep" --backend "$engine" --data-dir "$WORK/data/n$i" --node-id "n$i"
            --redis-listen "$resp")
      ((n == 1)) && args+=(--replicas 1 --read-quorum 1 --write-quorum 1)
      [[ -n $seed ]] && args+=(--seed "$seed")
      # shellcheck disable=SC2206
      args+=(${NODE_ARGS:-})
      "$BIN/dynamod" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
      PIDS+=("$!")
      seed=${seed:-$ep}
      urls+=("redis://$resp")
    done
    # Until every node sees a ring holding all of them.
    for _ in $(seq 150); do
      local ok=1
      for ((i = 0; i < n; i++)); do
        local ring
        ring=$("$BIN/dynamoctl" --node "tcp://127.0.0.1:$((BASE_PORT + 10 + i))" --timeout-ms 300 \
                 --json ring 2>/dev/null || true)
        for ((j = 0; j < n; j++)); do [[ $ring == *"\"n$j\""* ]] || ok=0; done
      done
      ((ok)) && break
      sleep 0.2
    done
  fi
  TARGET_URLS=$(IFS=,; echo "${urls[*]}")
}

run_one() {
  local name=$1 round=$2
  start_target "$name"
  local pids
  pids=$(IFS=,; echo "${PIDS[*]}")
  "$BENCH" --target "$TARGET_URLS" --clients "$CLIENTS" --duration "$DURATION" \
    --preload --json --server-pids "$pids" 2>/dev/null >"$WORK/$name.$round.json"
  stop_servers
}

for round in $(seq "$ROUNDS"); do
  for name in $TARGETS; do
    run_one "$name" "$round"
    echo "round $round $name: $(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput"]))' "$WORK/$name.$round.json") ops/s" >&2
  done
done

python3 - "$WORK" "$ROUNDS" $TARGETS <<'PY'
import json, sys
work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| target | ops/s (median of %d) | get p50 / p99 / p99.9 (µs) | put p50 / p99 / p99.9 (µs) "
      "| errors | conflicts | server CPU/op (µs) | generator CPU/op (µs) |" % rounds)
print("|---|---:|---|---|---:|---:|---:|---:|")
for name in names:
    docs = sorted((json.load(open("%s/%s.%d.json" % (work, name, r + 1))) for r in range(rounds)),
                  key=lambda d: d["throughput"])
    d = docs[len(docs) // 2]
    def lat(op):
        l = d[op]["latency_us"]
        return "%d / %d / %d" % (l["p50"], l["p99"], l["p999"])
    print("| %s | %d (%s) | %s | %s | %d | %d | %.1f | %.1f |" % (
        name, d["throughput"], ", ".join(str(int(x["throughput"])) for x in docs), lat("get"),
        lat("put"), d["errors"], d["get"]["conflicts"], d["servers_cpu_us_per_op"],
        d["generator_cpu_us_per_op"]))
PY
