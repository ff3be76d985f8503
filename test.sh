#!/usr/bin/env bash
# Builds dynamo with warnings as errors and runs the whole test suite
# (unit tests, backend conformance, integration tests that start real nodes).
# Installs the Debian packages it needs first (with sudo when not root).
# The mysql engine's tests run against a private MariaDB server that this
# script starts in build/mariadb (tests/mariadb/mariadb.sh; never the system's
# server) and stops at the end, also when tests fail or on Ctrl-C; its data
# stays there for the next run. Run it as root or as a user with sudo: the
# tests that change the machine use sudo (docs/testing.md).
#
#   ./test.sh              everything: every ctest test; the fuzz targets
#                          (tests/fuzz/run.sh, DYNAMO_FUZZ_SECONDS each, default 20);
#                          then the tests again on sanitizer builds: ASan+UBSan
#                          (build-asan/) and TSan (build-tsan/)
#   ./test.sh -R file      extra arguments go to ctest, and only ctest runs
#
# Exits non-zero when a test failed, a fuzz target found a problem or a
# sanitizer reported one. A second run is quick: nothing is reinstalled and
# the builds are incremental.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
source packaging/bootstrap.sh

BUILD_DIR=build

# ccache (installed below, used by CMakeLists.txt when found) keys objects by
# paths relative to this tree, so two checkouts of the same sources share
# them (a second clone; CI's two passes, .ci/as-sudo-user).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

echo "==> checking Debian packages"
DYNAMO_DEBIAN_PACKAGES+=("${DYNAMO_TEST_PACKAGES[@]}")
dynamo_bootstrap

echo "==> configuring (${BUILD_DIR}/, warnings as errors)"
cmake -S . -B "$BUILD_DIR" -DDYNAMO_WERROR=ON

echo "==> building"
cmake --build "$BUILD_DIR" -j "$(nproc)"

MARIADB_DIR="$BUILD_DIR/mariadb"
stop_mariadb() {
  bash tests/mariadb/mariadb.sh stop "$MARIADB_DIR" || true
}
trap stop_mariadb EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> starting a private MariaDB server (${MARIADB_DIR}/)"
bash tests/mariadb/mariadb.sh start "$MARIADB_DIR"
# shellcheck disable=SC1091
source "$MARIADB_DIR/env"

# The tests labelled "privileged" (iptables partitions, package installs) run
# as root or through `sudo -n`. A user whose sudo asks a password is asked
# once here, at a terminal; without it those tests fail and say why.
if ((EUID != 0)) && command -v sudo >/dev/null 2>&1 && ! sudo -n true 2>/dev/null \
  && [[ -t 0 ]]; then
  echo "==> the tests that change the machine (iptables, packages) need sudo"
  sudo -v || echo "==> no sudo: the privileged tests will fail" >&2
fi

# Two tests at a time is safe: integration tests pick free loopback ports and
# their own temporary data folders, so concurrent tests never share a node
# (tests against MariaDB use tables or databases of their own).
echo "==> running tests"
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@" || status=$?
# A selection of tests (arguments for ctest) runs only those.
if (($# > 0)); then
  exit "$status"
fi

# Every decoder of outside bytes under libFuzzer (clang, ASan+UBSan), each
# for DYNAMO_FUZZ_SECONDS (default 20) from its seed corpus
# (docs/testing.md, "Fuzzing").
echo "==> fuzzing"
fuzz_status=0
tests/fuzz/run.sh build-fuzz "${DYNAMO_FUZZ_SECONDS:-20}" || fuzz_status=$?

# The tests again on sanitizer builds of their own (docs/testing.md,
# "Sanitizers"). Their programs stop at the first report, which fails the
# test (options: dynamo-core/base/sanitizer_options.c). -O1 -g1 builds
# quicker than the release flags and keeps every finding's file and line.
sanitizer_flags=(-DDYNAMO_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
  "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1" "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1"
  -DDYNAMO_SIM_MUTATION_TESTS=OFF -DDYNAMO_TEST_TIME_SCALE=3)
sanitizer_status=0

echo "==> ASan+UBSan build (build-asan/)"
cmake -S . -B build-asan "${sanitizer_flags[@]}" -DDYNAMO_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$(nproc)"
# Every test but the privileged ones (they install packages and need the
# release build) and the simulator's own tests of its seeds and schedules
# (the regression seeds and exact replay do run).
echo "==> the tests under ASan+UBSan"
ctest --test-dir build-asan --output-on-failure -j2 -LE privileged \
  -E '^(Seeds/|Simulator\.SchedulesCauseEveryKindOfFault)' \
  || sanitizer_status=$?

# TSan: the unit tests of everything that runs threads (the worker pool,
# the hint store's writer, the client library, both event loops, the
# durable log, the file engine, the engine conformance suite, and the
# node's store written on several threads during a migration).
tsan_tests=(core_util_test core_hint_store_test core_client_test transport_loop_test
  durable_log_test file_engine_test backend_conformance_test local_store_concurrency_test)
echo "==> TSan build (build-tsan/): ${tsan_tests[*]}"
cmake -S . -B build-tsan "${sanitizer_flags[@]}" -DDYNAMO_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${tsan_tests[@]}" \
  dynamo_backend_memory dynamo_backend_file dynamo_backend_mysql
tsan_regex="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
echo "==> the threaded unit tests under TSan"
ctest --test-dir build-tsan --output-on-failure -j2 -L "$tsan_regex" || sanitizer_status=$?

if ((status != 0)); then
  echo "==> some tests failed (see above)" >&2
  exit "$status"
fi
if ((fuzz_status != 0)); then
  echo "==> a fuzz target found a problem (see above)" >&2
  exit "$fuzz_status"
fi
if ((sanitizer_status != 0)); then
  echo "==> a test failed on a sanitizer build (see above)" >&2
  exit "$sanitizer_status"
fi
echo "==> all tests passed, also under ASan+UBSan and TSan; every fuzz target ran without a finding"
