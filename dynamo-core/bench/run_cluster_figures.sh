#!/usr/bin/env bash
# Measures the 3-node figures of docs/benchmarks.md: three memory-engine
# nodes on loopback forming one cluster (N=3, R=2, W=2), driven by
# dynamo-bench with its clients spread over the three nodes.
#
#   dynamo-core/bench/run_cluster_figures.sh [BIN_DIR]   (default: build-release/bin)
#   DURATION=10 BASE_PORT=17111 ...
#   NODE_ARGS="--anti-entropy-interval-ms 0" ...   (extra dynamod options)
#   CURVE=1 ...   (every node with a key pair and the authorized keys: the
#                  three as peers, the bench's key as a client)
#   METRICS=1 ...  (every node serves /metrics on 127.0.0.1:BASE_PORT+100+i,
#                   scraped every SCRAPE_INTERVAL s, default 1, during the runs)
#
# Run it while nothing else runs:
#   flock /tmp/dynamo-build.lock dynamo-core/bench/run_cluster_figures.sh
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
DURATION=${DURATION:-10}
BASE_PORT=${BASE_PORT:-17111}
WORK=$(mktemp -d /tmp/dynamo-cluster-figures.XXXXXX)
PIDS=()
SCRAPER=
cleanup() {
  [[ -n $SCRAPER ]] && kill "$SCRAPER" 2>/dev/null
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

CURVE=${CURVE:-0}
BENCH_KEYS=()
if [[ $CURVE == 1 ]]; then
  for name in n0 n1 n2 bench; do "$BIN/dynamoctl" keygen --out "$WORK/$name" >/dev/null; done
  for i in 0 1 2; do
    echo "$(cat "$WORK/n$i.pub") peer tcp://127.0.0.1:$((BASE_PORT + i))"
  done >"$WORK/authorized_keys"
  echo "$(cat "$WORK/bench.pub") client" >>"$WORK/authorized_keys"
  BENCH_KEYS=(--curve-secret-key-file "$WORK/bench.key" --server-public-key "$WORK/n0.pub")
fi
# dynamoctl's keys for node i (none without CURVE).
ctl_keys() {
  [[ $CURVE == 1 ]] || return 0
  echo --curve-secret-key-file "$WORK/bench.key" --server-public-key "$WORK/n$1.pub"
}

ENDPOINTS=()
for i in 0 1 2; do
  ep=tcp://127.0.0.1:$((BASE_PORT + i))
  args=(--listen "$ep" --backend memory --data-dir "$WORK/n$i" --node-id "n$i")
  if [[ $CURVE == 1 ]]; then
    args+=(--curve-secret-key-file "$WORK/n$i.key" --authorized-keys "$WORK/authorized_keys")
  fi
  [[ ${METRICS:-0} == 1 ]] && args+=(--metrics-listen "127.0.0.1:$((BASE_PORT + 100 + i))")
  # shellcheck disable=SC2206
  args+=(${NODE_ARGS:-})
  ((i > 0)) && args+=(--seed "${ENDPOINTS[0]}")
  "$BIN/dynamod" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
  PIDS+=("$!")
  ENDPOINTS+=("$ep")
done
# Until the three agree on a ring holding all three.
for _ in $(seq 150); do
  # shellcheck disable=SC2046
  rings=$(for i in 0 1 2; do
            "$BIN/dynamoctl" --node "${ENDPOINTS[$i]}" $(ctl_keys "$i") --timeout-ms 300 \
              --json ring 2>/dev/null || echo down
          done | sort -u)
  if [[ $(wc -l <<<"$rings") == 1 && $rings == *'"n0"'* && $rings == *'"n1"'* &&
        $rings == *'"n2"'* ]]; then
    break
  fi
  sleep 0.2
done
TARGET=$(IFS=,; echo "${ENDPOINTS[*]}")
if [[ ${METRICS:-0} == 1 ]]; then
  (while sleep "${SCRAPE_INTERVAL:-1}"; do
     for i in 0 1 2; do curl -s -o /dev/null "http://127.0.0.1:$((BASE_PORT + 100 + i))/metrics"; done
   done) &
  SCRAPER=$!
fi

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
nodes_ms() { local t=0 p; for p in "${PIDS[@]}"; do t=$(awk -v a="$t" -v b="$(cpu_ms "$p")" 'BEGIN{print a+b}'); done; echo "$t"; }

echo "| workload | ops/s | get p50 / p99 / p99.9 / max (µs) | put p50 / p99 / p99.9 / max (µs) | errors | nodes CPU |"
echo "|---|---:|---|---|---:|---:|"
run() {
  local name=$1
  shift
  if [[ " $* " == *" --preload "* ]]; then
    "$BIN/dynamo-bench" --target "$TARGET" "${BENCH_KEYS[@]}" --preload --ops 1 --json >/dev/null 2>&1
  fi
  local args=()
  for a in "$@"; do [[ $a == --preload ]] || args+=("$a"); done
  local before t0 t1 after out
  before=$(nodes_ms)
  t0=$(date +%s.%N)
  out=$("$BIN/dynamo-bench" --target "$TARGET" "${BENCH_KEYS[@]}" --duration "$DURATION" --json \
    "${args[@]}" 2>/dev/null)
  t1=$(date +%s.%N)
  after=$(nodes_ms)
  python3 - "$name" "$out" "$before" "$after" "$t0" "$t1" <<'PY'
import json, sys
name, out, before, after, t0, t1 = sys.argv[1], json.loads(sys.argv[2]), *map(float, sys.argv[3:])
def lat(op):
    d = out[op]
    if not d["count"]:
        return "-"
    l = d["latency_us"]
    return "%d / %d / %d / %d" % (l["p50"], l["p99"], l["p999"], l["max"])
cpu = (after - before) / ((t1 - t0) * 1000) * 100
print("| %s | %d | %s | %s | %d | %d %% |" % (name, out["throughput"], lat("get"), lat("put"),
                                            out["errors"], cpu))
PY
}
run "100% put" --put-ratio 1
run "100% get" --put-ratio 0 --preload
run "50/50" --put-ratio 0.5 --preload
run "50/50, depth 8" --put-ratio 0.5 --depth 8 --preload
