# Bench part (sourced by scripts/bench.sh, see the comment above its loop):
# what one address flooding the API without a valid key costs the audit
# trail. wrk floods GET /v1/whoami from 127.0.0.1 for FLOOD_S seconds with no
# key, then as long with one wrong key, under the bench config's guard
# (rate_limit.auth_failures and rate_limit.anonymous at their defaults: the
# address is soon blocked, and the rest is refused 429 at the guard). Prints
#   anonymous flood: N audit bytes/s from one address (M requests/s answered 429)
# over both floods (M counts the app's 429s, from the audit trail), a detail
# line per flood, and whether the bench key, a known client of 127.0.0.1,
# still got 200 while the address was blocked. Leaves the address unblocked.
FLOOD_S=3
flood_audit=$VAR/log/audit.log
flood_clear() {
    rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null
}
flood_total_bytes=0 flood_total_429=0 flood_total_ms=0 flood_detail=""
# flood NAME [wrk args...]: one flood; adds to the totals and the detail line.
flood() {
    local name=$1 before after t0 t1 ms n429
    shift
    before=$(stat -c %s "$flood_audit")
    t0=$(date +%s%N)
    timeout $((FLOOD_S + 10)) wrk -t2 -c16 -d"${FLOOD_S}s" "$@" "$BASE/v1/whoami" >"$VAR/wrk-flood-$name.txt" ||
        fm_die "wrk failed (flood, $name)"
    t1=$(date +%s%N)
    sleep 0.2 # the last records
    after=$(stat -c %s "$flood_audit")
    ms=$(((t1 - t0) / 1000000))
    n429=$(tail -c +"$((before + 1))" "$flood_audit" | grep -c '"status":429' || true)
    flood_total_bytes=$((flood_total_bytes + after - before))
    flood_total_429=$((flood_total_429 + n429))
    flood_total_ms=$((flood_total_ms + ms))
    flood_detail+=$(awk -v n="$name" -v b="$((after - before))" -v r="$n429" -v ms="$ms" \
        'BEGIN { printf "%s%s: %.0f audit bytes/s, %.0f 429/s", "; ", n, b * 1000 / ms, r * 1000 / ms }')
}
fm_say "anonymous flood: ${FLOOD_S}s without a key, ${FLOOD_S}s with a wrong key, from 127.0.0.1"
flood_clear
sleep 1.1 # every worker's cached view of 127.0.0.1 is fresh
flood no-key
flood bad-key -H "X-API-Key: $(printf '%064d' 20)"
flood_known=$(get "$FULL_URL")
flood_clear
sleep 1.1
awk -v b="$flood_total_bytes" -v r="$flood_total_429" -v ms="$flood_total_ms" \
    'BEGIN { printf "anonymous flood: %.0f audit bytes/s from one address (%.0f requests/s answered 429)\n", b * 1000 / ms, r * 1000 / ms }'
echo "anonymous flood detail (wrk -t2 -c16, ${FLOOD_S}s each)${flood_detail}; the bench key (a known client of the address) meanwhile: $flood_known"
# shellcheck disable=SC2034 # INVALID is bench.sh's: a known client refused makes the run not comparable
[ "$flood_known" = 200 ] || INVALID=1
[ "$(get "$FULL_URL")" = 200 ] || fm_die "the bench key does not answer 200 after the flood"
