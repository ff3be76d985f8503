#!/usr/bin/env bash
# Measures server- against client-driven coordination (docs/benchmarks.md,
# "Client-driven coordination"): four nodes on loopback forming one cluster
# (N=3, R=2, W=2, so each node replicates about three quarters of the keys),
# driven by dynamo-bench in --mode server (clients spread round-robin over
# the four nodes, each coordinating what it gets) and --mode client (each
# request to the first node of its key's preference list), alternating
# server, client, server, client ... for each workload.
#
#   dynamo-core/bench/run_mode_figures.sh [BIN_DIR]   (default: build-release/bin)
#   ENGINE=file|memory  DURATION=10  CLIENTS=50  DEPTH=1  ROUNDS=2  BASE_PORT=17121
#   WORKLOADS="put get mix"   (100% put, 100% get, 50/50)
#   NODE_ARGS="..."   (extra dynamod options)
#
# Before every measured run, `dynamo-bench --preload --ops 1 --depth 8`
# (server mode, not measured) writes every key once with the context it
# read, so each run starts from one version per key whatever the runs before
# it wrote. Prints one row per run, then the mean of each mode over the
# rounds. Run it while nothing else runs (`uptime` first). CPU columns are in
# % of one core (the machine has nproc x 100 %): the four nodes together, the
# bench, and every process of the machine; machine - nodes - bench is what
# else ran meanwhile.
set -euo pipefail

BIN=$(cd "${1:-build-release/bin}" && pwd)
ENGINE=${ENGINE:-file}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-50}
DEPTH=${DEPTH:-1}
ROUNDS=${ROUNDS:-2}
WORKLOADS=${WORKLOADS:-put get mix}
BASE_PORT=${BASE_PORT:-17121}
NODES=4
WORK=$(mktemp -d /tmp/dynamo-mode-figures.XXXXXX)
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ENDPOINTS=()
for ((i = 0; i < NODES; i++)); do
  ep=tcp://127.0.0.1:$((BASE_PORT + i))
  args=(--listen "$ep" --backend "$ENGINE" --data-dir "$WORK/n$i" --node-id "n$i")
  # shellcheck disable=SC2206
  args+=(${NODE_ARGS:-})
  ((i > 0)) && args+=(--seed "${ENDPOINTS[0]}")
  "$BIN/dynamod" "${args[@]}" >"$WORK/n$i.log" 2>&1 &
  PIDS+=("$!")
  ENDPOINTS+=("$ep")
done
# Until every node reports the same ring, holding all of them.
for _ in $(seq 150); do
  rings=$(for ep in "${ENDPOINTS[@]}"; do
            "$BIN/dynamoctl" --node "$ep" --timeout-ms 300 --json ring 2>/dev/null || echo down
          done | sort -u)
  all=1
  for ((i = 0; i < NODES; i++)); do [[ $rings == *"\"n$i\""* ]] || all=0; done
  [[ $(wc -l <<<"$rings") == 1 && $all == 1 ]] && break
  sleep 0.2
done
TARGET=$(IFS=,; echo "${ENDPOINTS[*]}")

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
nodes_ms() { local t=0 p; for p in "${PIDS[@]}"; do t=$(awk -v a="$t" -v b="$(cpu_ms "$p")" 'BEGIN{print a+b}'); done; echo "$t"; }
machine_ms() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2 + $3 + $4 + $7 + $8) * 1000 / hz}' /proc/stat
}
# The nodes' summed "forwarded" counter (puts passed on by a non-replica).
forwarded() {
  local t=0 ep f
  for ep in "${ENDPOINTS[@]}"; do
    f=$("$BIN/dynamoctl" --node "$ep" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["forwarded"])')
    t=$((t + f))
  done
  echo "$t"
}

W=(--target "$TARGET" --value-size 100 --keys 100000)
echo "$ENGINE engine, $NODES nodes, N=3 R=2 W=2, $CLIENTS clients x depth $DEPTH," \
  "${DURATION} s per run; $(uptime)" >&2
echo "| workload | mode | ops/s | get p50 / p99 / p99.9 (µs) | put p50 / p99 / p99.9 (µs) | errors | forwarded | nodes CPU | bench CPU | machine CPU |"
echo "|---|---|---:|---|---|---:|---:|---:|---:|---:|"
run() {
  local name=$1 mode=$2 ratio=$3
  "$BIN/dynamo-bench" "${W[@]}" --clients 50 --depth 8 --preload --ops 1 --json >/dev/null 2>&1
  local before mbefore fbefore t0 t1 after mafter fafter
  fbefore=$(forwarded)
  before=$(nodes_ms) mbefore=$(machine_ms) t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/time" "$BIN/dynamo-bench" "${W[@]}" --clients "$CLIENTS" \
    --depth "$DEPTH" --mode "$mode" --put-ratio "$ratio" --duration "$DURATION" \
    --json >"$WORK/out.json" 2>/dev/null
  after=$(nodes_ms) mafter=$(machine_ms) t1=$(date +%s.%N)
  fafter=$(forwarded)
  python3 - "$name" "$WORK/out.json" "$before" "$after" "$mbefore" "$mafter" "$t0" "$t1" \
    "$fbefore" "$fafter" "$WORK/runs.jsonl" "$WORK/time" <<'PY'
import json, sys
name, out = sys.argv[1], json.load(open(sys.argv[2]))
before, after, mbefore, mafter, t0, t1, fbefore, fafter = map(float, sys.argv[3:11])
user, sys_ = map(float, open(sys.argv[12]).read().split()[-2:])
wall = t1 - t0  # the bench process's whole life
def lat(op):
    d = out[op]
    if not d["count"]:
        return "—"
    l = d["latency_us"]
    return "%d / %d / %d" % (l["p50"], l["p99"], l["p999"])
fwd = int(fafter - fbefore)
nodes = (after - before) / 10 / wall
machine = (mafter - mbefore) / 10 / wall
bench = (user + sys_) * 100 / wall
print("| %s | %s | %.0f | %s | %s | %d | %d | %.0f %% | %.0f %% | %.0f %% |" % (
    name, out["mode"], out["throughput"], lat("get"), lat("put"), out["errors"], fwd, nodes,
    bench, machine), flush=True)
with open(sys.argv[11], "a") as f:
    f.write(json.dumps({"name": name, "out": out, "forwarded": fwd, "nodes": nodes,
                        "bench": bench, "machine": machine}) + "\n")
PY
}

for w in $WORKLOADS; do
  case $w in
    put) name="100% put" ratio=1 ;;
    get) name="100% get" ratio=0 ;;
    mix) name="50/50" ratio=0.5 ;;
    *) echo "unknown workload $w (put, get, mix)" >&2; exit 2 ;;
  esac
  for ((r = 0; r < ROUNDS; r++)); do
    run "$name" server "$ratio"
    run "$name" client "$ratio"
  done
done

# Per workload and mode, the mean over the rounds: throughput (each run's in
# brackets), the runs' percentiles, the share of puts forwarded, and CPU time
# per operation of the four nodes together and of the bench.
python3 - "$WORK/runs.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def mean(xs):
    return sum(xs) / len(xs)
def num(x):
    return "{:,}".format(round(x))
print()
print("| workload | mode | ops/s: mean (runs) | get p50 / p99 / p99.9 (µs) | put p50 / p99 / p99.9 (µs) | puts forwarded | nodes CPU per op | bench CPU per op |")
print("|---|---|---|---|---|---:|---:|---:|")
names = []
for r in runs:
    if r["name"] not in names:
        names.append(r["name"])
for name in names:
    for mode in ("server", "client"):
        sel = [r for r in runs if r["name"] == name and r["out"]["mode"] == mode]
        if not sel:
            continue
        ops = [r["out"]["throughput"] for r in sel]
        cells = []
        for op in ("get", "put"):
            if not any(r["out"][op]["count"] for r in sel):
                cells.append("—")
                continue
            cells.append(" / ".join(num(mean([r["out"][op]["latency_us"][p] for r in sel]))
                                    for p in ("p50", "p99", "p999")))
        puts = sum(r["out"]["put"]["count"] for r in sel)
        fwd = "—" if not puts else "%.0f %%" % (100 * sum(r["forwarded"] for r in sel) / puts)
        nodes = mean([r["nodes"] * 1e4 / r["out"]["throughput"] for r in sel])
        bench = mean([r["bench"] * 1e4 / r["out"]["throughput"] for r in sel])
        print("| %s | %s | **%s** (%s) | %s | %s | %s | %d µs | %d µs |" % (
            name, mode, num(mean(ops)), ", ".join(num(o) for o in ops), *cells, fwd, nodes,
            bench))
PY
