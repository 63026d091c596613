# The brute-force guard on a shared address (README "Rate limiting and the
# brute-force guard"): while 127.0.0.1 is blocked, a key that worked from it
# before keeps working; any other key, valid or not, gets the same 429; an
# unblocked address costs no more Redis round trips than before; requests
# without any key are bounded per address (rate_limit.anonymous).
#
# Every test reaches the stack from 127.0.0.1: the blocks here are short and
# the address's guard keys are cleared at the end.

t46_known=t46-known-key-0000000000000000000000000
t46_fresh=t46-fresh-key-0000000000000000000000000
t46_fenced=t46-fenced-key-000000000000000000000000
t46_audit=$FETCHML_VAR/log/audit.log
t46_api=$FETCHML_VAR/log/api.log
t46_clear() {
    rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null
}
t46_users="    t46known:
      hash: \"$(hash_of $t46_known)\"
      roles: [\"analyst\"]
    t46fresh:
      hash: \"$(hash_of $t46_fresh)\"
      roles: [\"analyst\"]
    t46fenced:
      hash: \"$(hash_of $t46_fenced)\"
      roles: [\"analyst\"]
      ip_whitelist: [\"10.99.0.0/16\"]"
t46_config() { # t46_config ANONYMOUS_MAX
    write_config "rate_limit={ requests_per_minute: 100000, burst: 100000, auth_failures: { max: 10, window_seconds: 60, block_seconds: 20, known_days: 30 }, anonymous: { max: $1, window_seconds: 20 } }" \
        extra_users="$t46_users"
}
t46_ok() { as $t46_known GET /v1/whoami && status_is 200 && json_is .rate_limit.requests_per_minute 100000; }
t46_calls() { rcli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"; }
# t46_audited REASON: the audit line of the last request has this reason, no user and no key id.
t46_audited() {
    grep -F "\"trace_id\":\"$TRACE\"" "$t46_audit" |
        jq -e --arg r "$1" '.reason == $r and .user == null and .key_id == null and .status == 429' >/dev/null
}
# t46_shape: the answer without what differs from request to request (trace id, date, seconds left).
t46_shape() {
    {
        echo "$STATUS"
        tr -d '\r' <"$H" | grep -Evi '^(x-request-id|date|retry-after):' | sort
        jq -c 'del(.trace_id)' <"$B"
    } 2>/dev/null
}

t46_config 1000000
check "reload with auth_failures max 10, known_days 30" reload_until t46_ok
t46_clear

# ---- an unblocked address costs what it did --------------------------------------------
t46_e0=$(t46_calls exists) t46_s0=$(t46_calls set) t46_p0=$(t46_calls pttl)
for i in $(seq 5); do
    curl -sk -H "X-API-Key: $t46_known" \
        $(for _ in $(seq 20); do printf '%s ' "$BASE/v1/whoami"; done) >/dev/null 2>&1
done
t46_e1=$(t46_calls exists) t46_s1=$(t46_calls set) t46_p1=$(t46_calls pttl)
t46_sets=$((${t46_s1:-0} - ${t46_s0:-0})) t46_exists=$((${t46_e1:-0} - ${t46_e0:-0}))
t46_pttls=$((${t46_p1:-0} - ${t46_p0:-0}))
echo "  100 requests from an unblocked address: $t46_pttls PTTL, $t46_sets SET, $t46_exists EXISTS"
check "no EXISTS for an unblocked address (known-ness is asked only while blocked)" [ "$t46_exists" -eq 0 ]
check "at most one SET per worker for a key already known ($t46_sets)" [ "$t46_sets" -le 4 ]
check "the guard's check stays one PTTL per worker and second ($t46_pttls <= 40)" [ "$t46_pttls" -le 40 ]
t46_known_ttl() { rcli TTL "$(rcli --scan --pattern 'fetchml:authknown:127.0.0.1:*' | head -1)"; }
t46_ttl=$(t46_known_ttl)
check "keys that worked from 127.0.0.1 are known clients of it for 30 days (TTL $t46_ttl s)" \
    test "${t46_ttl:-0}" -gt 2500000 -a "${t46_ttl:-0}" -le 2592000

# ---- 10 bad keys block the address ----------------------------------------------------------
t46_codes=""
for i in $(seq 10); do
    as "$(printf 't46-bad-%032d' "$i")" GET /v1/whoami
    t46_codes+="$STATUS "
done
check "10 bad keys from 127.0.0.1 -> 401 each" [ "$t46_codes" = "$(printf '401 %.0s' $(seq 10))" ]
check "... and the 10th blocked the address" bash -c '[ "$(rcli PTTL fetchml:authblock:127.0.0.1)" -gt 15000 ]'
# Past the documented lag (a worker may have found the address clean < 1 s before the block).
sleep 1.1

as $t46_known GET /v1/whoami
check "a key that worked from 127.0.0.1 before keeps working while it is blocked" status_is 200
check "... as its own user" json_is .user t46known

t46_e0=$(t46_calls exists)
as $t46_fresh GET /v1/whoami
check "a valid key never used from 127.0.0.1 -> 429" error_is 429 RATE_LIMITED
check "... with Retry-After" header_has 'Retry-After: [0-9]+'
check "... audited as ip_blocked, with no user and no key id" t46_audited ip_blocked
t46_valid=$(t46_shape)
as "t46-bad-00000000000000000000000000000011" GET /v1/whoami
check "a bad key -> 429 too" error_is 429 RATE_LIMITED
check "... audited the same way" t46_audited ip_blocked
t46_bad=$(t46_shape)
check "the valid-but-unknown key's 429 is the bad key's 429 (status, headers, body)" [ "$t46_valid" = "$t46_bad" ]
t46_e1=$(t46_calls exists)
check "both cost the same lookup (one EXISTS each)" [ "$((t46_e1 - t46_e0))" -eq 2 ]
req GET /v1/whoami
check "no key at all -> 429" error_is 429 RATE_LIMITED
check "the refused keys were not logged or counted as failed authentications" \
    [ "$(rcli GET fetchml:authfail:127.0.0.1)" = 10 ]
check "api.log names the block" grep -q 'brute-force guard: source=127.0.0.1 blocked for 20 s after repeated failed authentications' "$t46_api"
t46_clear
sleep 1.1 # an operator's unblock reaches every worker within a second

# ---- a valid key from outside its own networks is a failed authentication ---------------------
t46_codes=""
for i in $(seq 10); do
    as $t46_fenced GET /v1/whoami
    t46_codes+="$STATUS "
done
check "a key used from outside its user's ip_whitelist -> 403, 10 times" [ "$t46_codes" = "$(printf '403 %.0s' $(seq 10))" ]
check "... each counted as a failed authentication" [ "$(rcli GET fetchml:authfail:127.0.0.1)" = 10 ]
check "... and logged as one, for fail2ban" \
    bash -c "[ \$(grep -c 'authentication failed: reason=user_ip_not_allowed source=127.0.0.1' '$t46_api') -ge 10 ]"
sleep 1.1
as $t46_fresh GET /v1/whoami
check "... so the 10th blocked the address for keys not known there" error_is 429 RATE_LIMITED
t46_clear

# ---- requests without a key are bounded per address ------------------------------------------
t46_config 15
check "reload with anonymous max 15 per 20 s" reload_until t46_ok
t46_clear
t46_codes=""
for i in $(seq 15); do
    req GET /v1/whoami
    t46_codes+="$STATUS "
done
check "15 requests without a key -> 401 each" [ "$t46_codes" = "$(printf '401 %.0s' $(seq 15))" ]
check "... counted apart from failed authentications" [ -z "$(rcli GET fetchml:authfail:127.0.0.1)" ]
sleep 1.1
t46_lines=$(wc -l <"$t46_api")
t46_all429=1
for i in $(seq 10); do
    req GET /v1/whoami
    status_is 429 || t46_all429=0
done
check "past anonymous.max, requests without a key -> 429 before any key check" [ "$t46_all429" = 1 ]
check "... with Retry-After up to the window's end (<= 20 s)" \
    bash -c "tr -d '\r' <'$H' | grep -Eqi '^Retry-After: ([1-9]|1[0-9]|20)$'"
check "... audited as ip_blocked" t46_audited ip_blocked
check "... and writing nothing to api.log" [ "$(wc -l <"$t46_api")" -eq "$t46_lines" ]
as $t46_known GET /v1/whoami
check "a known client still gets in" status_is 200
as $t46_fresh GET /v1/whoami
check "a valid key never used from here does not" error_is 429 RATE_LIMITED
check "api.log says why the address was blocked" \
    grep -q 'brute-force guard: source=127.0.0.1 blocked for [0-9]* s after too many requests without a key' "$t46_api"

t46_clear
write_config
reload_until true
