#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for a bounded
# time from its seed corpus (tests/fuzz/corpus/<name>). New inputs go to a scratch copy,
# so the tree is not changed; a crash leaves its input in build-fuzz/artifacts and fails.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-60}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DDURO_SANITIZE=address,undefined -DDURO_FUZZ=ON -DDURO_WERROR=ON -DBUILD_TESTING=OFF >/dev/null
ninja -C build-fuzz fuzz_webhook fuzz_graphql fuzz_config fuzz_record
mkdir -p build-fuzz/artifacts
status=0
for t in webhook graphql config record; do
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$t/." "$work/"
  echo "== fuzz_$t for ${secs}s" >&2
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="build-fuzz/artifacts/$t-" -print_final_stats=1 "$work" \
       >"build-fuzz/fuzz_$t.log" 2>&1; then
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/fuzz_$t.log" | tail -2 >&2
  else
    echo "fuzz_$t FAILED: see build-fuzz/fuzz_$t.log and build-fuzz/artifacts" >&2
    tail -40 "build-fuzz/fuzz_$t.log" >&2
    status=1
  fi
  rm -rf "$work"
done
exit $status
