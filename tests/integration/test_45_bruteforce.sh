# Brute-force guard (README "Rate limiting and the brute-force guard") and the
# fail2ban filter for api.log's "authentication failed" line.
#
# Every test reaches the stack from 127.0.0.1, so this one uses a short block
# (3 s), waits it out, and clears the address's count at the end.

bf_key=bf-valid-key-000000000000000000000000000
# A valid key that never worked from 127.0.0.1: no known client (test_46), so a block holds it.
bf_fresh=bf-fresh-key-00000000000000000000000000
bf_api=$FETCHML_VAR/log/api.log
bf_audit=$FETCHML_VAR/log/audit.log
bf_clear() { rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null; }

write_config 'rate_limit={ requests_per_minute: 120, burst: 30, auth_failures: { max: 5, window_seconds: 60, block_seconds: 3 } }' \
    extra_users="    guarded:
      hash: \"$(hash_of $bf_key)\"
      roles: [\"analyst\"]
    fresh:
      hash: \"$(hash_of $bf_fresh)\"
      roles: [\"analyst\"]"
check "the test config sets auth_failures" grep -q '^rate_limit: .*auth_failures: { max: 5, window_seconds: 60, block_seconds: 3 } }$' \
    "$FETCHML_VAR/dev/config.yaml"
bf_ok() { as $bf_key GET /v1/whoami; status_is 200; }
check "reload with auth_failures max 5, block 3 s" reload_until bf_ok
bf_clear

# Requests without a key (health probes, a forgotten header) guess nothing: not counted.
for i in 1 2 3 4 5 6; do req GET /health; done
check "keyless requests are not counted as failed authentications" [ -z "$(rcli GET fetchml:authfail:127.0.0.1)" ]

bf_from=$(($(wc -l <"$bf_api") + 1))
bf_codes=""
as "0000000000000000000000000000000000000000000000000000000000000001" GET /v1/whoami
bf_codes+="$STATUS "
as "0000000000000000000000000000000000000000000000000000000000000002" GET /v1/whoami
bf_codes+="$STATUS "
req GET /v1/whoami -H "Authorization: Basic $(printf 'u:p' | base64)"
bf_codes+="$STATUS "
req GET /v1/whoami -H "Authorization: Bearer not a key"
bf_codes+="$STATUS "
as "0000000000000000000000000000000000000000000000000000000000000003" GET /v1/whoami
bf_codes+="$STATUS "
check "5 failed authentications -> 401 each (got $bf_codes)" [ "$bf_codes" = "401 401 401 401 401 " ]
check "the count is in Redis under the source address" [ "$(rcli GET fetchml:authfail:127.0.0.1)" = 5 ]
bf_ttl=$(rcli PTTL fetchml:authblock:127.0.0.1)
check "the 5th set a block of 3 s (PTTL $bf_ttl)" test "$bf_ttl" -gt 1500 -a "$bf_ttl" -le 3000

# Another worker may have found the address clean less than 1 s before the
# block: the documented lag (bruteforce.h). Past it, every worker refuses.
sleep 1.1
as $bf_fresh GET /v1/whoami
check "a blocked address -> 429 even with a valid key (one not yet known from there)" status_is 429
check "... with code RATE_LIMITED" error_body_is RATE_LIMITED
check "... and Retry-After of the block's remaining seconds (1..2)" \
    bash -c "tr -d '\r' <'$H' | grep -Eqi '^Retry-After: [12]$'"
check "... and no RateLimit fields (no user was looked at)" bash -c "! tr -d '\r' <'$H' | grep -qi '^RateLimit:'"
bf_line=$(grep -F "\"trace_id\":\"$TRACE\"" "$bf_audit" || true)
bf_audited() { jq -e '.reason == "ip_blocked" and .user == null and .key_id == null and .status == 429' \
    <<<"$bf_line" >/dev/null; }
check "the refusal is audited with reason ip_blocked and no user" bf_audited

bf_all429=1
for i in 1 2 3 4; do
    as "0000000000000000000000000000000000000000000000000000000000000004" GET /v1/whoami
    status_is 429 || bf_all429=0
done
check "while blocked, bad keys -> 429 too" [ "$bf_all429" = 1 ]
check "... and are neither counted nor logged as failed authentications" \
    [ "$(rcli GET fetchml:authfail:127.0.0.1)" = 5 ]

bf_fresh_ok() { as $bf_fresh GET /v1/whoami; status_is 200; }
check "after the 3 s block the valid key works again" wait_for 4 bf_fresh_ok

# The fail2ban filter on the lines this test wrote: one match per failure, nothing else.
tail -n +"$bf_from" "$bf_api" >"$OUT/bf-api.log"
check "the keyless requests did write their own authentication failed line" grep -q 'reason=missing_key' "$bf_api"
if command -v fail2ban-regex >/dev/null; then
    bf_f2b=$(fail2ban-regex "$OUT/bf-api.log" "$ROOT/conf/fail2ban/filter.d/fetchml.conf" 2>&1)
    bf_matched=$(sed -n 's/^Failregex: \([0-9]*\) total$/\1/p' <<<"$bf_f2b")
    check "fail2ban-regex matches the 5 failed authentications exactly (got ${bf_matched:-none})" \
        [ "$bf_matched" = 5 ]
    check "... and reads every line's date" grep -Eq '^\|  \[[0-9]+\] \{\^LN-BEG\}Year-Month-Day' <<<"$bf_f2b"
    bf_f2b=$(fail2ban-regex "$bf_api" "$ROOT/conf/fail2ban/filter.d/fetchml.conf" 2>&1)
    bf_matched=$(sed -n 's/^Failregex: \([0-9]*\) total$/\1/p' <<<"$bf_f2b")
    bf_guesses=$(grep 'authentication failed: ' "$bf_api" | grep -vc 'reason=missing_key')
    check "fail2ban-regex on the whole api.log matches every failed key ($bf_matched of $bf_guesses), not keyless requests" \
        [ "$bf_matched" = "$bf_guesses" ]
else
    not_ok "fail2ban-regex is not installed (apt-get install fail2ban)"
fi
check "the jail watches /var/log/fetch_ml/api.log with this filter" \
    bash -c "grep -Eq '^logpath *= */var/log/fetch_ml/api.log$' '$ROOT/conf/fail2ban/jail.d/fetchml.conf' &&
             grep -Eq '^filter *= *fetchml$' '$ROOT/conf/fail2ban/jail.d/fetchml.conf'"

bf_clear
write_config
reload_until true
