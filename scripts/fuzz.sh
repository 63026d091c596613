#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs fuzz_redact, the
# redaction filter's target, for a bounded time. Exits non-zero on a finding;
# the input that caused it is kept in the build directory's fuzz-artifacts/.
#
#   scripts/fuzz.sh                    60 s
#   FUZZ_SECONDS=30 scripts/fuzz.sh    another bound
#
# Needs the Debian packages clang and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes). Builds in build-fuzz/ (FETCHML_FUZZ_BUILD overrides).
# The seeds in tests/fuzz/corpus_redact/ are only read; what the fuzzer learns
# goes to the build directory and is reused by the next run.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
BUILD=${FETCHML_FUZZ_BUILD:-$ROOT/build-fuzz}
[[ $FUZZ_SECONDS =~ ^[1-9][0-9]{0,4}$ ]] || fm_die "FUZZ_SECONDS must be 1-99999, got '$FUZZ_SECONDS'"
command -v clang >/dev/null 2>&1 || fm_die "clang is missing (apt-get install clang libclang-rt-14-dev)"

fm_install_deps
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=clang cmake -S "$ROOT" -B "$BUILD" -DFM_FUZZ=ON >/dev/null || fm_die "cmake configure failed ($BUILD)"
fi
cmake --build "$BUILD" --target fuzz_redact -- --no-print-directory >/dev/null ||
    fm_die "building fuzz_redact failed (is libclang-rt-14-dev installed?)"

mkdir -p "$BUILD/corpus_redact" "$BUILD/fuzz-artifacts"
log=$BUILD/fuzz_redact.log
fm_say "fuzz_redact for $FUZZ_SECONDS s (log: $log)"
# The timeout is a backstop in case the target hangs past -max_total_time.
if timeout $((FUZZ_SECONDS + 60)) "$BUILD/fuzz_redact" -max_total_time="$FUZZ_SECONDS" \
    -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/fuzz-artifacts/" \
    "$BUILD/corpus_redact" "$ROOT/tests/fuzz/corpus_redact" >"$log" 2>&1; then
    fm_say "fuzz_redact: no finding ($(grep -m1 '^Done' "$log" || echo 'no run count'))"
else
    tail -n 40 "$log" >&2
    fm_die "fuzz_redact found a problem; the input is in $BUILD/fuzz-artifacts/"
fi
