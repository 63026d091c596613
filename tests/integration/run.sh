#!/usr/bin/env bash
# Integration tests: start a private stack with scripts/run-local.sh (its own
# var dir and ports, so a running dev stack is untouched), run every
# tests/integration/test_*.sh against it, each in a subshell of its own (names
# cannot collide between files; a file that stops before its end is a
# failure), stop it, print "N passed, N failed" over all the files' checks.
#
# FETCHML_FRONT=apache puts Apache 2.4 in front instead of nginx
# (conf/apache/) and runs the files about what a front can change:
# authentication, credentials, paths, bodies, limits and audit. The others are
# skipped, each with its reason (front_skip below). FETCHML_TEST_ONLY still
# picks among them. FETCHML_FRONT_SUBSET=ci (scripts/test.sh) leaves out the
# four longest of them too (about 3.5 of their 5.5 minutes), whose front-
# related checks the others repeat: the full Apache run is the default.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
export FETCHML_VAR=${FETCHML_TEST_VAR:-$(mktemp -d /tmp/fetchml-it.XXXXXX)}
export FETCHML_HTTPS_PORT=${FETCHML_TEST_HTTPS_PORT:-9201}
export FETCHML_HTTP_PORT=${FETCHML_TEST_HTTP_PORT:-9200}
export FETCHML_BUILD=${FETCHML_BUILD:-$ROOT/build}
export FETCHML_FRONT=${FETCHML_FRONT:-nginx}
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
# front_skip NAME: why file NAME does not run with this front (nothing: it runs).
front_skip() {
    if [ "$FETCHML_FRONT" != apache ]; then
        [ "$1" != test_16_apache_edge.sh ] || echo "Apache's edge, with FETCHML_FRONT=apache; nginx's is test_15_edge.sh"
        return 0
    fi
    case $1 in
    test_15_edge.sh) echo "nginx's own edge (its error pages, 497, its test locations, nginx -t of the site); Apache's is test_16_apache_edge.sh" ;;
    test_26_* | test_27_* | test_29_*) echo "the job workers, sweeper and journal: the pool and Redis, the same behind either front" ;;
    test_31_* | test_32_* | test_33_* | test_34_*) echo "WebSocket /ws needs nginx with nchan (conf/apache/README.md)" ;;
    test_36_*) echo "configuration scale and reload: the pool alone" ;;
    test_38_*) echo "relative paths in the configuration: the pool alone, the same behind either front" ;;
    test_50_* | test_52_*) echo "Redis and its failures: the pool alone" ;;
    test_60_*) echo "the pool's process model" ;;
    test_43_*) echo "slow transfers through nginx's unbuffered experiments location and its temp-file limit; Apache's mod_buffer reads bodies first (conf/apache/README.md)" ;;
    test_62_*) echo "the pool's privileges and peer check, and nginx's nchan publisher socket: the same behind either front" ;;
    test_75_connections.sh) echo "nginx's per-client connection and flood limits; Apache has none (conf/apache/README.md)" ;;
    test_84_* | test_85_* | test_86_* | test_87_*) echo "metrics, Prometheus and OpenAPI: the same behind either front" ;;
    esac
    [ "${FETCHML_FRONT_SUBSET:-all}" = ci ] || return 0
    case $1 in
    test_35_*) echo "CI subset: key rotation under load (43 s); test_10, test_80 and test_82 cover the keys through Apache" ;;
    test_42_*) echo "CI subset: uploads under load (24 s); test_16 and test_41 cover the upload route through Apache" ;;
    test_70_*) echo "CI subset: 20,000 requests (50 s); test_16, test_65 and test_75 cover the audit records through Apache" ;;
    test_90_*) echo "CI subset: fetchml-admin and the whole trail (90 s); the same behind either front" ;;
    esac
}
for t in "$ROOT"/tests/integration/test_*.sh; do
    [ -n "${FETCHML_TEST_ONLY:-}" ] && [[ $t != *"$FETCHML_TEST_ONLY"* ]] && continue
    name=$(basename "$t")
    why=$(front_skip "$name")
    if [ -n "$why" ]; then
        echo "# $name: skipped with $FETCHML_FRONT in front: $why"
        continue
    fi
    t_start=$SECONDS
    echo "# $name"
    rm -f "$OUT/finished"
    (
        . "$t"
        touch "$OUT/finished"
    )
    rc=$?
    [ -e "$OUT/finished" ] || not_ok "$name stopped before its end (exit status $rc); its later checks did not run"
    echo "# $name: $((SECONDS - t_start)) s"
done

# Every answer the tests got through req, against docs/openapi.yaml.
if python3 "$ROOT/tests/integration/check_contract.py" "$ROOT/docs/openapi.yaml" "$CONTRACT" \
    >"$FETCHML_VAR/contract.out" 2>&1; then
    ok "every response the suite received matches docs/openapi.yaml ($(tail -1 "$FETCHML_VAR/contract.out"))"
else
    not_ok "responses that do not match docs/openapi.yaml:"
    cat "$FETCHML_VAR/contract.out"
fi

# The whole suite ran as Redis's ACL user of the product (conf/redis/): nothing it sent was
# refused, not even a fire-and-forget PUBLISH whose error no test would see.
t_acl=$(acl_refusals fetchml | sort | uniq -c | tr -s ' \n' ' ')
check "Redis's ACL refused nothing the product sent during the suite (${t_acl:-none})" [ -z "$t_acl" ]

# The FastCGI pool's and the log relay's stderr must hold no sanitizer report.
"$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1
no_sanitizer_reports

summary "integration ($FETCHML_FRONT in front)"
