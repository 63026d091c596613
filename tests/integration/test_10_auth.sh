# Authentication (the key check: README "How a request is handled", step 4) as a client sees it.

as researcher GET /v1/whoami
check "researcher whoami -> 200" status_is 200
check "whoami names researcher" json_is .user researcher
check "whoami lists jobs:create" json '.permissions | index("jobs:create")'
check "whoami is not admin" json_is .admin false

# The demo job worker (built-in role worker): jobs:run and jobs:read, nothing else.
as worker GET /v1/whoami
check "worker whoami lists exactly jobs:read and jobs:run" \
    json_is '[.user, .admin, (.roles | join(",")), (.permissions | join(","))] | join(" ")' \
    "worker false worker jobs:read,jobs:run"
as worker POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name": "w"}'
check "a worker cannot create tasks (403)" status_is 403

req GET /v1/whoami -H "Authorization: Bearer $FETCHML_RESEARCHER_KEY"
check "Authorization: Bearer works" status_is 200
req GET /v1/whoami -H "Authorization: bearer $FETCHML_RESEARCHER_KEY"
check "the Bearer scheme is case-insensitive" status_is 200

req GET /v1/whoami
check "no key -> 401" status_is 401
check "no key -> WWW-Authenticate" header_has "WWW-Authenticate: Bearer"
check "no key -> JSON error with code UNAUTHORIZED and the trace id" error_body_is UNAUTHORIZED

as "0000000000000000000000000000000000000000000000000000000000000000" GET /v1/whoami
check "wrong key -> 401" status_is 401
check "wrong key -> UNAUTHORIZED body" error_body_is UNAUTHORIZED

req GET /health
check "GET /health without a key -> 401 (no anonymous access)" status_is 401
as analyst GET /health
check "GET /health with a key -> 200" status_is 200
check "health reports redis ok" json_is .redis ok

req GET "/v1/whoami?api_key=$FETCHML_RESEARCHER_KEY"
check "a key in the query string is not accepted" status_is 401

req GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H "Authorization: Bearer $FETCHML_ANALYST_KEY"
check "two different keys in one request -> 401" status_is 401

req GET /v1/whoami -H "Authorization: Basic $(printf 'researcher:%s' "$FETCHML_RESEARCHER_KEY" | base64 -w0)"
check "Basic credentials are refused" status_is 401

as researcher GET /v1/nope
check "unknown route -> 404 NOT_FOUND" status_is 404
check "404 body" error_body_is NOT_FOUND
as researcher DELETE /v1/whoami
check "wrong method -> 405 with Allow" bash -c "[ $STATUS = 405 ] && tr -d '\r' <'$H' | grep -qi '^Allow: GET'"

code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$HTTP_BASE/v1/whoami")
check "http:// redirects to https:// (301)" [ "$code" = "301 https://127.0.0.1:$FETCHML_HTTPS_PORT/v1/whoami" ]

req HEAD /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -I
check "HEAD on a GET route -> 200" status_is 200
req GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H "X-API-Key: $FETCHML_ADMIN_KEY"
check "X-API-Key sent twice -> 401 (ambiguous)" status_is 401
req GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "even the same key twice -> 401" status_is 401

code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: evil.example' "$HTTP_BASE/v1/whoami")
check "the redirect ignores the Host header (no open redirect)" [ "$code" = "301 https://127.0.0.1:$FETCHML_HTTPS_PORT/v1/whoami" ]

# Errors nginx raises itself carry the same JSON shape.
out=$(printf 'GARBAGE\r\n\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$FETCHML_HTTPS_PORT" 2>/dev/null)
check "a garbage request line -> 400 JSON BAD_REQUEST" bash -c "grep -q '^HTTP/1.1 400' <<<'$out' && grep -q '\"code\":\"BAD_REQUEST\"' <<<'$out'"
req GET "/v1/$(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
check "a 9 KB path -> JSON error" error_is 414 URI_TOO_LONG
STATUS=$(curl -s -o "$B" -w '%{http_code}' "http://127.0.0.1:$FETCHML_HTTPS_PORT/v1/whoami")
check "plain HTTP to the HTTPS port -> 400 JSON" error_is 400 BAD_REQUEST
req TRACE /v1/whoami
forget_trace
check "TRACE -> 405 JSON" error_is 405 METHOD_NOT_ALLOWED

# nginx's per-address flood limit (100 r/s, bursts of 200; 127.0.0.1 is exempt):
# a client at 127.0.0.2 sending 400 requests at once is cut off with 429.
# (Apache has no such limit: conf/apache/README.md.)
nginx_only "the per-address flood limit" && {
    flood=()
    for i in $(seq 400); do flood+=(-o "$OUT/flood.$i" "$BASE/health"); done
    codes=$(curl -sk --interface 127.0.0.2 -w '%{http_code} %header{retry-after}\n' "${flood[@]}")
    n429=$(grep -c '^429 ' <<<"$codes" || true)
    n403=$(grep -c '^403 ' <<<"$codes" || true)
    check "an address flooding nginx is cut off with 429 ($n429 of 400; $n403 reached the app)" \
        bash -c "[ $n429 -ge 100 ] && [ $n403 -ge 150 ]"
    first429=$(grep -n '^429 ' <<<"$codes" | head -1 | cut -d: -f1)
    flood_429_ok() {
        grep -qx '429 1' <<<"$codes" && ! grep -q '^429 [^1]' <<<"$codes" &&
            jq -e '.code=="RATE_LIMITED" and (.trace_id|length)==32' "$OUT/flood.$first429" >/dev/null
    }
    check "... each with Retry-After: 1 and the JSON error body RATE_LIMITED" flood_429_ok
}
