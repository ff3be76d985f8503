#!/usr/bin/env bash
# Builds dynamo with warnings as errors and runs the whole test suite
# (unit tests, backend conformance, integration tests that start real nodes).
# Installs the Debian packages it needs first (with sudo when not root).
#
#   ./test.sh              everything
#   ./test.sh -R file      extra arguments go to ctest
#
# Exits with ctest's status. A second run is quick: nothing is reinstalled and
# the build is incremental.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
source packaging/bootstrap.sh

BUILD_DIR=build

echo "==> checking Debian packages"
dynamo_bootstrap

echo "==> configuring (${BUILD_DIR}/, warnings as errors)"
cmake -S . -B "$BUILD_DIR" -DDYNAMO_WERROR=ON

echo "==> building"
cmake --build "$BUILD_DIR" -j "$(nproc)"

# Two tests at a time is safe: integration tests pick free loopback ports and
# their own temporary data folders, so concurrent tests never share a node.
echo "==> running tests"
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
