#!/usr/bin/env bash
# Builds dynamo and starts a local 3-node cluster; Ctrl-C stops it. Each node
# also serves the Redis protocol (redis-cli, any Redis client library).
# Installs the Debian packages it needs first (with sudo when not root).
#
#   ./run.sh
#
# A second run is quick: nothing is reinstalled and the build is incremental.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
source packaging/bootstrap.sh

BUILD_DIR=build
# What a local node needs; the engine plugins are loaded at run time.
BUILD_TARGETS=(dynamod dynamoctl dynamo_backend_memory dynamo_backend_file dynamo_capi dynamo_example_cart)

# The nodes to start: "NODE_ID ENDPOINT RESP_ADDRESS"; the first founds the
# cluster.
NODES=(
  "node1 tcp://127.0.0.1:7101 127.0.0.1:7201"
  "node2 tcp://127.0.0.1:7102 127.0.0.1:7202"
  "node3 tcp://127.0.0.1:7103 127.0.0.1:7203"
)
BACKEND=file

echo "==> checking Debian packages"
dynamo_bootstrap

echo "==> configuring (${BUILD_DIR}/)"
cmake -S . -B "$BUILD_DIR"

echo "==> building ${BUILD_TARGETS[*]}"
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${BUILD_TARGETS[@]}"

BIN="$BUILD_DIR/bin"
seed=""
pids=()
stop_nodes() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping the nodes"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_nodes INT TERM EXIT

echo "==> starting ${#NODES[@]} nodes ($BACKEND engine, data and logs in ./data)"
for spec in "${NODES[@]}"; do
  read -r node_id endpoint resp <<<"$spec"
  mkdir -p "data/$node_id"
  args=(--node-id "$node_id" --listen "$endpoint" --data-dir "./data/$node_id" --backend "$BACKEND"
        --redis-listen "$resp")
  # The first node founds the cluster; the others join it through it. A node
  # restarted later finds its membership in its data folder.
  [[ -n "$seed" ]] && args+=(--seed "$seed")
  "$BIN/dynamod" "${args[@]}" 2>>"data/$node_id.log" &
  pids+=("$!")
  seed=${seed:-$endpoint}
done

# Wait until every node reports the same ring, holding every node.
converged() {
  local rings spec id ep
  rings=$(for spec in "${NODES[@]}"; do
            read -r _ ep _ <<<"$spec"
            "$BIN/dynamoctl" --node "$ep" --timeout-ms 500 --json ring 2>/dev/null || echo down
          done | sort -u)
  [[ "$(wc -l <<<"$rings")" == 1 && "$rings" != down ]] || return 1
  for spec in "${NODES[@]}"; do
    read -r id _ _ <<<"$spec"
    grep -q "\"$id\"" <<<"$rings" || return 1
  done
}
read -r _ first _ <<<"${NODES[0]}"
for _ in $(seq 1 150); do
  converged && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a node failed to start; see data/*.log" >&2; exit 1; }
  done
  sleep 0.2
done
converged || { echo "the nodes did not agree on a ring in 30 s; see data/*.log" >&2; exit 1; }

"$BIN/dynamoctl" --node "$first" status
cat <<MSG

==> a ${#NODES[@]}-node cluster is running (N=3, R=2, W=2). From another terminal:
      $BIN/dynamoctl put hello world          # any node takes any request
      $BIN/dynamoctl --node tcp://127.0.0.1:7102 get hello
      $BIN/dynamoctl ring
    Each node also speaks the Redis protocol, on 127.0.0.1:7201-7203:
      redis-cli -p 7201 SET hello world
      redis-cli -p 7203 GET hello
      redis-cli -p 7202 DYN.GET hello       # the context, then every sibling
    Logs: data/<node>.log. Press Ctrl-C to stop the cluster.

MSG
wait "${pids[@]}"
