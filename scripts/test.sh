#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, format check, a -Werror build
# with gcc on Debian 12's librdkafka (2.0.2) and an AddressSanitizer+
# UndefinedBehaviorSanitizer build with clang on a current librdkafka (scripts/rdkafka.sh,
# 2.14.2), then every test (unit, and integration against a real Kafka broker that CTest
# starts and stops) in both builds: the whole suite on both librdkafka versions. Tests of
# an assignment mode the library lacks (cooperative, consumer on 2.0.2) skip, saying so.
#
# Usage: scripts/test.sh [ctest arguments...]      e.g. scripts/test.sh -L unit
# Environment: DURO_TEST_BUILDS="release asan" (which builds to test), DURO_FUZZ_SECONDS
# (20; 0 skips the fuzzers), DURO_CACHE.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

echo "== format check (clang-format)" >&2
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find common bridge enricher tests -name '*.[ch]')
clang-format --dry-run --Werror "${sources[@]}"

builds=${DURO_TEST_BUILDS:-"release asan"}
status=0
for b in $builds; do
  case "$b" in
    release) dir=build; args=(-DCMAKE_C_COMPILER=gcc) ;;
    asan)    dir=build-asan; args=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug
                                   -DDURO_SANITIZE=address,undefined
                                   -DDURO_RDKAFKA_PREFIX="$("$root/scripts/rdkafka.sh" --print-prefix)") ;;
    *) echo "test.sh: unknown build $b" >&2; exit 2 ;;
  esac
  echo "== build $b ($dir)" >&2
  cmake -S . -B "$dir" -G Ninja -DDURO_WERROR=ON "${args[@]}" >/dev/null
  ninja -C "$dir"
  echo "== tests in $b ($("$dir/duro-enricher" --version))" >&2
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$dir" && ctest --output-on-failure --no-tests=error "$@") || status=1
done
# libFuzzer targets, bounded (clang, ASan+UBSan); DURO_FUZZ_SECONDS=0 skips them.
fuzz_secs=${DURO_FUZZ_SECONDS:-20}
if [ "$fuzz_secs" -gt 0 ]; then
  echo "== fuzz (${fuzz_secs}s per target)" >&2
  "$root/scripts/fuzz.sh" "$fuzz_secs" || status=1
fi
exit $status
