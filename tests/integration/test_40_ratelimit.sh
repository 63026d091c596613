# Per-user token bucket (SPEC section 2, step 6).

write_config '["127.0.0.1", "::1"]' "    burster:
      hash: \"$(hash_of burster-test-key-0000000000000000000)\"
      roles: [\"analyst\"]
      rate_limit: { requests_per_minute: 6, burst: 5 }"
burster_ok() { as burster-test-key-0000000000000000000 GET /v1/whoami; status_is 200; }
check "reload adds a user with burst 5" reload_until burster_ok
check "responses carry RateLimit-Policy" header_has 'RateLimit-Policy: "user";q=6;w=60'
check "responses carry RateLimit" header_has 'RateLimit: "user";r=[0-9]+;t=[0-9]+'

urls=()
for i in $(seq 8); do urls+=("$BASE/v1/whoami"); done
codes=$(curl -sk -H "X-API-Key: burster-test-key-0000000000000000000" -w '%{http_code}\n' -o /dev/null "${urls[@]}")
n429=$(grep -c 429 <<<"$codes" || true)
n200=$(grep -c 200 <<<"$codes" || true)
check "more than burst rapid requests -> at least one 429 (got $n429)" [ "$n429" -ge 1 ]
check "no more than burst admitted (got $n200 of 8 after 1 earlier)" [ "$n200" -le 4 ]

as burster-test-key-0000000000000000000 GET /v1/whoami
check "a refused request -> 429" status_is 429
check "429 carries Retry-After in whole seconds >= 1" bash -c "tr -d '\r' <'$H' | grep -Eqi '^Retry-After: [1-9][0-9]*$'"
check "429 body has code RATE_LIMITED" error_body_is RATE_LIMITED
as researcher GET /v1/whoami
check "another user is not limited by it" status_is 200
write_config
reload_until true
