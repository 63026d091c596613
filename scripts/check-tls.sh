#!/usr/bin/env bash
# Checks the local stack's TLS with testssl.sh (Debian's testssl.sh package),
# an outside scanner: every protocol, cipher, forward-secrecy, server-
# preference, header and vulnerability finding must be rated "OK" or "INFO"
# (testssl.sh's severities: OK, INFO, LOW, MEDIUM, HIGH, CRITICAL, and WARN
# for a test it could not run). Anything worse fails the run, except the few
# listed by id in ACCEPTED: that the dev certificate is self-signed, and one
# about the scanner's own openssl.
# Slow (a few minutes), so not part of scripts/test.sh.
#
#   scripts/check-tls.sh                 start a private stack (nginx), scan it, stop it
#   FETCHML_FRONT=apache scripts/check-tls.sh     the same with Apache in front
#   scripts/check-tls.sh HOST:PORT       scan a stack that is already running
#
# The findings are kept in $OUT (printed at the end): testssl.json (every
# finding) and summary.txt (one line per finding worse than OK or INFO).
# Environment: FETCHML_BUILD (build/), FETCHML_TLS_PORT (9561; with 9560 for
# plain HTTP), FETCHML_TLS_OUT (a new temporary directory).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

# The findings accepted, each by its testssl.sh 3.0 id and nothing else:
#   cert_chain_of_trust  the dev certificate is self-signed (CRITICAL)
#   cert_revocation      so it names no CRL or OCSP responder (HIGH)
#   DNS_CAArecord        and 127.0.0.1 has no DNS name, so no CAA record (LOW)
#   engine_problem       the scanning host's openssl has no GOST engine: about
#                        the scanner, not the server (WARN)
# A production certificate from a public CA has none of the first three.
ACCEPTED="cert_chain_of_trust cert_revocation DNS_CAArecord engine_problem"

OUT=${FETCHML_TLS_OUT:-$(mktemp -d /tmp/fetchml-tls.XXXXXX)}
mkdir -p "$OUT"
# The stack's var/ is below it: the pool's and the audit logger's accounts must reach it
# (mktemp makes it root's alone), as tests/integration/run.sh does for its own.
chmod 755 "$OUT"
FM_PACKAGES="testssl.sh jq" fm_install_deps

target=${1:-}
started=""
stop_stack() {
    [ -n "$started" ] && FETCHML_VAR=$started "$ROOT/scripts/run-local.sh" stop >/dev/null 2>&1
}
trap stop_stack EXIT
if [ -z "$target" ]; then
    port=${FETCHML_TLS_PORT:-9561}
    started=$OUT/var
    mkdir -p "$started"
    fm_say "starting a private stack (${FETCHML_FRONT:-nginx} in front) on 127.0.0.1:$port"
    FETCHML_VAR=$started FETCHML_HTTPS_PORT=$port FETCHML_HTTP_PORT=$((port - 1)) \
        "$ROOT/scripts/run-local.sh" >"$OUT/run-local.out" 2>&1 ||
        { cat "$OUT/run-local.out"; fm_die "the stack did not start"; }
    target=127.0.0.1:$port
fi

fm_say "testssl.sh against $target (this takes a few minutes)"
# --warnings off: no question to answer; --ip one: the address as given.
# Client simulation (-c) lists handshakes of old clients and rates none, and
# takes long: left out.
testssl --quiet --color 0 --warnings off --sneaky --ip one --jsonfile "$OUT/testssl.json" \
    --protocols --server-defaults --server-preference --std --fs --headers --vulnerable \
    "https://$target" >"$OUT/testssl.out" 2>&1
rc=$?
[ -s "$OUT/testssl.json" ] || { tail -20 "$OUT/testssl.out"; fm_die "testssl.sh wrote no findings (status $rc)"; }

# Every finding worse than OK or INFO that is not an expected certificate one.
jq -r --arg expected "$ACCEPTED" '
    ($expected | split("\\s+"; null)) as $ok_ids
    | .[] | select(.severity != "OK" and .severity != "INFO")
    | select(.id as $i | $ok_ids | index($i) | not)
    | "\(.severity)\t\(.id)\t\(.finding)"' "$OUT/testssl.json" >"$OUT/summary.txt"
jq -r --arg expected "$ACCEPTED" '
    ($expected | split("\\s+"; null)) as $ok_ids
    | .[] | select(.severity != "OK" and .severity != "INFO")
    | select(.id as $i | $ok_ids | index($i))
    | "\(.severity)\t\(.id)\t\(.finding)"' "$OUT/testssl.json" >"$OUT/expected.txt"

printf '\nSeverities of the %s findings: %s\n' "$(jq length "$OUT/testssl.json")" \
    "$(jq -r '[.[].severity] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$OUT/testssl.json")"
printf 'Protocols offered: %s\n' "$(jq -r '[.[] | select((.id | test("^(SSLv[23]|TLS1(_[123])?)$")) and (.finding | test("^offered")))
    | .id] | join(" ")' "$OUT/testssl.json")"
printf 'Cipher suites the server picks (per protocol): %s\n' \
    "$(jq -r '[.[] | select(.id | test("^cipher_?order_TLS")) | "\(.id | sub("^cipher_?order_"; "")): \(.finding)"] | join("; ")' "$OUT/testssl.json")"
printf 'Accepted findings: the dev certificate, the scanner side (%s):\n' "$(wc -l <"$OUT/expected.txt")"
sed 's/^/  /' "$OUT/expected.txt"
if [ -s "$OUT/summary.txt" ]; then
    printf 'FAILED: findings worse than OK (%s):\n' "$(wc -l <"$OUT/summary.txt")"
    sed 's/^/  /' "$OUT/summary.txt"
    printf 'Full report: %s/testssl.out\n' "$OUT"
    exit 1
fi
printf 'PASSED: no protocol, cipher or vulnerability finding worse than OK (report: %s/testssl.out)\n' "$OUT"
