# Per-user token bucket (README "Rate limiting and the brute-force guard").

write_config extra_users="    burster:
      hash: \"$(hash_of burster-test-key-0000000000000000000)\"
      roles: [\"analyst\"]
      rate_limit: { requests_per_minute: 6, burst: 5 }"
burster_ok() { as burster-test-key-0000000000000000000 GET /v1/whoami; status_is 200; }
check "reload adds a user with burst 5" reload_until burster_ok
check "responses carry RateLimit-Policy" header_has 'RateLimit-Policy: "user";q=6;w=60'
check "responses carry RateLimit" header_has 'RateLimit: "user";r=[0-9]+;t=[0-9]+'

urls=()
for i in $(seq 8); do urls+=(-o /dev/null "$BASE/v1/whoami"); done
codes=$(curl -sk -H "X-API-Key: burster-test-key-0000000000000000000" -w '%{http_code}\n' "${urls[@]}")
n429=$(grep -cx 429 <<<"$codes" || true)
n200=$(grep -cx 200 <<<"$codes" || true)
check "more than burst rapid requests -> at least one 429 (got $n429)" [ "$n429" -ge 1 ]
check "no more than burst admitted (got $n200 of 8 after 1 earlier)" [ "$n200" -le 4 ]

as burster-test-key-0000000000000000000 GET /v1/whoami
check "a refused request -> 429" status_is 429
check "429 carries Retry-After in whole seconds >= 1" bash -c "tr -d '\r' <'$H' | grep -Eqi '^Retry-After: [1-9][0-9]*$'"
check "429 body has code RATE_LIMITED" error_body_is RATE_LIMITED
check "... and exactly one Retry-After (nginx adds none to the app's)" \
    bash -c "[ \"\$(tr -d '\r' <'$H' | grep -ci '^Retry-After:')\" = 1 ]"
as researcher GET /v1/whoami
check "another user is not limited by it" status_is 200
write_config
reload_until true

# Exact across the pool: 32 concurrent clients hammer one user (60/min, burst
# 10) through the 4 workers for ~5 s. Admitted <= burst + rate * elapsed,
# elapsed from before the first request to after the last, with no slack.
rl_racer=racer-test-key-00000000000000000000000000
rl_fast=fast-test-key-000000000000000000000000000
write_config extra_users="    racer:
      hash: \"$(hash_of $rl_racer)\"
      roles: [\"analyst\"]
      rate_limit: { requests_per_minute: 60, burst: 10 }
    fast:
      hash: \"$(hash_of $rl_fast)\"
      roles: [\"analyst\"]
      rate_limit: { requests_per_minute: 1000000, burst: 1000000 }"
rl_racer_ok() { as $rl_racer GET /v1/whoami; status_is 200; }
check "reload adds racer (60/min, burst 10)" reload_until rl_racer_ok
# Let the bucket fill again and any tokens a worker reserved expire.
sleep 1.5

# One client: curl with 20 URLs on one connection, again until the deadline (at most 100 rounds).
rl_client() {
    local deadline=$1 i
    for i in $(seq 100); do
        [ "$(date +%s%N)" -lt "$deadline" ] || break
        curl -sk -H "X-API-Key: $rl_racer" -w 'CODE:%{http_code}\n' \
            $(for _ in $(seq 20); do printf '%s ' "$BASE/v1/whoami"; done) 2>/dev/null
    done
}
export -f rl_client
export rl_racer BASE
rl_t0=$(date +%s%N)
seq 32 | xargs -P 32 -I{} bash -c "rl_client $((rl_t0 + 5000000000))" >"$OUT/racer.out"
rl_t1=$(date +%s%N)
rl_200=$(grep -o 'CODE:200' "$OUT/racer.out" | wc -l)
rl_429=$(grep -o 'CODE:429' "$OUT/racer.out" | wc -l)
rl_other=$(grep -o 'CODE:[0-9]*' "$OUT/racer.out" | grep -cv 'CODE:200\|CODE:429' || true)
rl_elapsed=$(awk -v a="$rl_t0" -v b="$rl_t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
rl_bound=$(awk -v e="$rl_elapsed" 'BEGIN { printf "%.3f", 10 + 60 / 60 * e }')
echo "  racer: $rl_200 admitted, $rl_429 refused in ${rl_elapsed} s; bound $rl_bound"
check "32 clients x 4 workers: only 200 and 429 ($rl_other other)" [ "$rl_other" -eq 0 ]
check "the clients were refused many times ($rl_429 429s)" [ "$rl_429" -ge 100 ]
check "admitted $rl_200 <= burst + rate x elapsed = $rl_bound" \
    awk -v n="$rl_200" -v b="$rl_bound" 'BEGIN { exit !(n <= b) }'
# Below it by the clients' start-up time and a token or two in flight, not more.
check "admitted $rl_200 >= burst + rate x elapsed - 3 (little lost to reservations)" \
    awk -v n="$rl_200" -v b="$rl_bound" 'BEGIN { exit !(n >= b - 3) }'

# Fewer than one Redis round trip per request: 200 requests by a user with a
# high limit, on keep-alive connections, cost a fraction of an EVALSHA each.
rl_calls() { rcli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"; }
rl_e0=$(rl_calls evalsha) rl_p0=$(rl_calls pttl)
for i in $(seq 10); do
    curl -sk -H "X-API-Key: $rl_fast" \
        $(for _ in $(seq 20); do printf '%s ' "$BASE/v1/whoami"; done) >/dev/null 2>&1
done
rl_e1=$(rl_calls evalsha) rl_p1=$(rl_calls pttl)
rl_evals=$((${rl_e1:-0} - ${rl_e0:-0})) rl_pttls=$((${rl_p1:-0} - ${rl_p0:-0}))
echo "  200 requests: $rl_evals EVALSHA, $rl_pttls PTTL ($(awk -v e="$rl_evals" -v p="$rl_pttls" 'BEGIN { printf "%.3f", (e + p) / 200 }') round trips per request)"
check "200 requests of a high-limit user took <= 50 EVALSHA ($rl_evals) and <= 40 PTTL ($rl_pttls)" \
    test "$rl_evals" -le 50 -a "$rl_pttls" -le 40
write_config
reload_until true
