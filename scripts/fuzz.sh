#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each of them for
# a bounded time: first every saved regression input once, then new inputs.
# Exits non-zero if any target finds a problem; the input that caused it is
# kept in the build directory's fuzz-artifacts/.
#
#   scripts/fuzz.sh                         every target, 60 s each
#   FUZZ_SECONDS=15 scripts/fuzz.sh         another bound per target
#   scripts/fuzz.sh config query            only these targets
#
# The targets are tests/fuzz/fuzz_<name>.c, one per parser of outside input
# (redact, config, cidr, query, taskbody, route, params, syslog, audit); each
# file's header says what it checks. Per target, from tests/fuzz/:
#   corpus_<name>/   seeds, only read; what the fuzzer learns goes to the
#                    build directory's corpus_<name>/ and is reused next run;
#   <name>.dict      a dictionary (-dict), when there is one;
#   regress_<name>/  inputs that once found a bug: each is run first and must
#                    pass. A finding is fixed in the code and its input copied
#                    here, so that it stays a test.
#
# Needs the Debian packages clang and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes). Builds in build-fuzz/ (FETCHML_FUZZ_BUILD overrides).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
BUILD=${FETCHML_FUZZ_BUILD:-$ROOT/build-fuzz}
FUZZ=$ROOT/tests/fuzz
[[ $FUZZ_SECONDS =~ ^[1-9][0-9]{0,4}$ ]] || fm_die "FUZZ_SECONDS must be 1-99999, got '$FUZZ_SECONDS'"
command -v clang >/dev/null 2>&1 || fm_die "clang is missing (apt-get install clang libclang-rt-14-dev)"

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for src in "$FUZZ"/fuzz_*.c; do
        n=${src##*/fuzz_}
        names+=("${n%.c}")
    done
fi
for n in "${names[@]}"; do
    [ -f "$FUZZ/fuzz_$n.c" ] || fm_die "no fuzz target '$n' (tests/fuzz/fuzz_$n.c)"
done

fm_install_deps
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=clang cmake -S "$ROOT" -B "$BUILD" -DFM_FUZZ=ON >/dev/null || fm_die "cmake configure failed ($BUILD)"
fi
cmake --build "$BUILD" -j2 --target "${names[@]/#/fuzz_}" -- --no-print-directory >/dev/null ||
    fm_die "building the fuzz targets failed (is libclang-rt-14-dev installed?)"
mkdir -p "$BUILD/fuzz-artifacts"

# Longest input per target: a few records or lines more than the parser's own limit.
max_len() {
    case $1 in
    audit) echo 20000 ;;
    redact | cidr | route) echo 4096 ;;
    *) echo 8192 ;;
    esac
}

failed=()
for n in "${names[@]}"; do
    bin=$BUILD/fuzz_$n log=$BUILD/fuzz_$n.log
    opts=(-max_len="$(max_len "$n")" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$BUILD/fuzz-artifacts/$n-")
    [ -f "$FUZZ/$n.dict" ] && opts+=(-dict="$FUZZ/$n.dict")
    regress=()
    [ -d "$FUZZ/regress_$n" ] && mapfile -t regress < <(find "$FUZZ/regress_$n" -type f | sort)
    if [ ${#regress[@]} -gt 0 ] && ! "$bin" "${opts[@]}" "${regress[@]}" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        fm_say "fuzz_$n: a regression input of tests/fuzz/regress_$n/ fails again (log: $log)"
        failed+=("$n")
        continue
    fi
    mkdir -p "$BUILD/corpus_$n"
    fm_say "fuzz_$n for $FUZZ_SECONDS s (${#regress[@]} regression inputs passed; log: $log)"
    # The timeout is a backstop in case the target hangs past -max_total_time.
    if timeout $((FUZZ_SECONDS + 60)) "$bin" "${opts[@]}" -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 "$BUILD/corpus_$n" "$FUZZ/corpus_$n" >"$log" 2>&1; then
        fm_say "fuzz_$n: no finding ($(grep -m1 '^Done' "$log" || echo 'no run count'))"
    else
        tail -n 40 "$log" >&2
        fm_say "fuzz_$n found a problem; the input is in $BUILD/fuzz-artifacts/"
        failed+=("$n")
    fi
done
[ ${#failed[@]} -eq 0 ] || fm_die "fuzzing found problems in: ${failed[*]}"
