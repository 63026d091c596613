#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the Check unit
# tests through CTest (a normal build and an AddressSanitizer + UBSan build),
# every libFuzzer target for a bounded time (scripts/fuzz.sh), then the
# integration tests against a real nginx + Redis stack on loopback, and
# their front-related part through Apache 2.4 instead of nginx, each stack
# started and stopped by the tests. Exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

fm_install_deps
# As root: the pool's and the audit logger's system accounts (fetchml, fetchml-audit), which
# the integration stack runs as and conf/config-prod.yaml names (test_config loads it).
if [ "$(id -u)" -eq 0 ]; then
    fm_pool_user >/dev/null && fm_audit_user >/dev/null
fi

fm_say "build"
fm_build "$ROOT/build"
fm_say "unit tests"
(cd "$ROOT/build" && ctest --output-on-failure)

# Every parser of outside input, 12 s each (about 2 minutes in all); saved
# regression inputs first. Longer runs: scripts/fuzz.sh with FUZZ_SECONDS.
fm_say "fuzz every parser of outside input (libFuzzer, ASan + UBSan)"
FUZZ_SECONDS=12 "$ROOT/scripts/fuzz.sh"

fm_say "unit tests under AddressSanitizer + UBSan"
fm_build "$ROOT/build-asan" -DFM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd "$ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure)

# The stack under test runs the sanitizer build, so memory errors and undefined
# behaviour on the real request path fail the run (run.sh checks the reports).
fm_say "integration tests (nginx + Redis + fetchml-fcgi under ASan+UBSan, on loopback)"
FETCHML_BUILD="$ROOT/build-asan" "$ROOT/tests/integration/run.sh"

# The same stack with Apache 2.4 in front (conf/apache/): the files about what a
# front can change (authentication, credentials, paths, bodies, limits, audit),
# without the four longest (FETCHML_FRONT_SUBSET=ci; run.sh says why each file
# is skipped). About 2 minutes on a quiet machine (100 s of tests and the start).
fm_say "integration tests through Apache 2.4 (the front-related subset)"
FETCHML_FRONT=apache FETCHML_FRONT_SUBSET=ci FETCHML_BUILD="$ROOT/build-asan" "$ROOT/tests/integration/run.sh"

# Two front-door hosts on one Redis deployment with Sentinel failover (SPEC 9): a script of its
# own, since it starts two stacks and a Redis master, replicas and sentinels (about a minute).
fm_say "several hosts: two stacks, one Redis master + replicas + three sentinels, a failover"
FETCHML_BUILD="$ROOT/build-asan" "$ROOT/tests/integration/hosts.sh"
