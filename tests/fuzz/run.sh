#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) in BUILD_DIR and runs
# each for SECONDS (one per core at a time), starting from its seed corpus in tests/fuzz/corpus (read
# only: new inputs go to a scratch folder). Exits non-zero, naming the
# target and the input that crashed, when any target finds a crash, a leak,
# undefined behaviour or a broken round trip (docs/testing.md, "Fuzzing").
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

build_dir=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_request fuzz_reply fuzz_resp fuzz_siblings fuzz_context fuzz_cluster_state
    fuzz_tree fuzz_hint_store fuzz_config fuzz_file_segment)
fi

echo "==> building the fuzz targets (${build_dir}/, clang-14, ASan+UBSan)"
cmake -S . -B "$build_dir" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDYNAMO_FUZZ=ON -DDYNAMO_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target fuzz_all

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One target per core at a time; each gets its SECONDS of its own.
fuzz_one() {
  local t=$1 status=0
  mkdir -p "$scratch/$t"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build_dir/bin/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$scratch/$t-" \
    "$scratch/$t" "tests/fuzz/corpus/$t" >"$scratch/$t.log" 2>&1 &
  local pid=$!
  wait "$pid" || status=$?
  # The target's scratch files (tests/fuzz/scratch_segment.h) are named by its pid.
  rm -rf /dev/shm/dynamo-fuzz-*-"$pid" "${TMPDIR:-/tmp}"/dynamo-fuzz-*-"$pid"
  echo "$status" >"$scratch/$t.status"
}
parallel=$(nproc)
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do
    wait -n || true
  done
  echo "==> fuzzing $t for ${seconds} s"
  fuzz_one "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  if [[ "$(cat "$scratch/$t.status" 2>/dev/null)" == 0 ]]; then
    echo "    $t: $(grep -E "^stat::number_of_executed_units" "$scratch/$t.log" || echo "?")"
  else
    echo "==> $t FAILED; its output:" >&2
    tail -n 60 "$scratch/$t.log" >&2
    for a in "$scratch/$t"-*; do
      [[ -e $a ]] || continue
      mkdir -p "$build_dir/fuzz-artifacts"
      cp "$a" "$build_dir/fuzz-artifacts/"
      echo "==> the input: $build_dir/fuzz-artifacts/$(basename "$a")" >&2
    done
    failed+=("$t")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "==> fuzz targets that failed: ${failed[*]}" >&2
  exit 1
fi
echo "==> every fuzz target ran ${seconds} s without a finding"
