#!/usr/bin/env bash
# Integration tests: start a private stack with scripts/run-local.sh (its own
# var dir and ports, so a running dev stack is untouched), run every
# tests/integration/test_*.sh against it, each in a subshell of its own (names
# cannot collide between files; a file that stops before its end is a
# failure), stop it, print "N passed, N failed" over all the files' checks.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
export FETCHML_VAR=${FETCHML_TEST_VAR:-$(mktemp -d /tmp/fetchml-it.XXXXXX)}
export FETCHML_HTTPS_PORT=${FETCHML_TEST_HTTPS_PORT:-9201}
export FETCHML_HTTP_PORT=${FETCHML_TEST_HTTP_PORT:-9200}
export FETCHML_BUILD=${FETCHML_BUILD:-$ROOT/build}
chmod 755 "$FETCHML_VAR"

cleanup() {
    # A monitoring test's Prometheus (lib.sh prometheus_start), if a test stopped before stopping it.
    [ -f "$FETCHML_VAR/run/prometheus.pid" ] && kill "$(cat "$FETCHML_VAR/run/prometheus.pid")" 2>/dev/null
    "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A development script must not change host settings; run-local.sh once raised
# net.unix.max_dgram_qlen for its log relay.
host_qlen() { cat /proc/sys/net/unix/max_dgram_qlen; }
qlen_before=$(host_qlen)
if ! "$ROOT/scripts/run-local.sh" >"$FETCHML_VAR/run-local.out" 2>&1; then
    cat "$FETCHML_VAR/run-local.out"
    echo "integration: the stack did not start"
    echo "0 passed, 1 failed"
    exit 1
fi
set -a
. "$FETCHML_VAR/dev/keys.env"
set +a

PASS=0 FAIL=0
. "$ROOT/tests/integration/lib.sh"
check "starting the stack leaves the host's net.unix.max_dgram_qlen as it was ($qlen_before)" \
    [ "$(host_qlen)" = "$qlen_before" ]
# Run the tests under write_config's loose brute-force guard, and forget the
# failed authentication of run-local.sh's start-up probe.
write_config && reload_until true
rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null
for t in "$ROOT"/tests/integration/test_*.sh; do
    [ -n "${FETCHML_TEST_ONLY:-}" ] && [[ $t != *"$FETCHML_TEST_ONLY"* ]] && continue
    name=$(basename "$t")
    echo "# $name"
    rm -f "$OUT/finished"
    (
        . "$t"
        touch "$OUT/finished"
    )
    rc=$?
    [ -e "$OUT/finished" ] || not_ok "$name stopped before its end (exit status $rc); its later checks did not run"
done

# Every answer the tests got through req, against docs/openapi.yaml.
if python3 "$ROOT/tests/integration/check_contract.py" "$ROOT/docs/openapi.yaml" "$CONTRACT" \
    >"$FETCHML_VAR/contract.out" 2>&1; then
    ok "every response the suite received matches docs/openapi.yaml ($(tail -1 "$FETCHML_VAR/contract.out"))"
else
    not_ok "responses that do not match docs/openapi.yaml:"
    cat "$FETCHML_VAR/contract.out"
fi

# The FastCGI pool's and the log relay's stderr must hold no sanitizer report.
"$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1
no_sanitizer_reports

summary integration
