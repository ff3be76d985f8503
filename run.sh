#!/usr/bin/env bash
# Builds dynamo and starts a local node in the foreground; Ctrl-C stops it.
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
BUILD_TARGETS=(dynamod dynamoctl dynamo_backend_memory dynamo_backend_file)

# The nodes to start: "NODE_ID ENDPOINT". The last one runs in the foreground.
NODES=(
  "node1 tcp://127.0.0.1:7101"
)
BACKEND=file

echo "==> checking Debian packages"
dynamo_bootstrap

echo "==> configuring (${BUILD_DIR}/)"
cmake -S . -B "$BUILD_DIR"

echo "==> building ${BUILD_TARGETS[*]}"
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${BUILD_TARGETS[@]}"

BIN="$BUILD_DIR/bin"
read -r node_id endpoint <<<"${NODES[-1]}"
mkdir -p "data/$node_id"

cat <<MSG

==> starting dynamo node '$node_id' on $endpoint ($BACKEND backend, data in ./data/$node_id)
    Reach it from another terminal:
      $BIN/dynamoctl --node $endpoint put hello world
      $BIN/dynamoctl --node $endpoint get hello
      $BIN/dynamoctl --node $endpoint status
    Press Ctrl-C to stop it.

MSG

exec "$BIN/dynamod" --node-id "$node_id" --listen "$endpoint" \
  --data-dir "./data/$node_id" --backend "$BACKEND"
