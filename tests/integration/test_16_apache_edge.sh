# Apache 2.4 at the edge (conf/apache/README.md; run.sh runs this file only with
# FETCHML_FRONT=apache): the app sees behind Apache what it sees behind nginx
# (trace id, normalised path, Authorization, the plain-HTTP flag), and where
# Apache differs (merged headers, chunked bodies, body limits it does not
# apply to proxied requests, %2F) nothing weakens a check; Apache's own errors
# are JSON; the production site passes apache2 -t.
a16_audit() { grep -F "\"trace_id\":\"$1\"" "$FETCHML_VAR/log/audit.log" | tail -1; }
a16_jq() { # a16_jq [ARGS...] FILTER <<<LINE: the line is there and the filter holds
    local line
    line=$(cat)
    [ -n "$line" ] && jq -e "$@" >/dev/null <<<"$line"
}
# a16_json STATUS CODE: that answer, the JSON error body with our trace id.
a16_json() { status_is "$1" && error_body_is "$2" && header_has 'Content-Type: application/json'; }

# ---- what the app sees --------------------------------------------------------------

as researcher GET /v1/whoami
check "X-Request-Id is 32 hex (MD5 of mod_unique_id's id)" grep -Eqx '[0-9a-f]{32}' <<<"$TRACE"
check "... and the audit record's trace_id" a16_jq '.status == 200 and .user == "researcher"' <<<"$(a16_audit "$TRACE")"
a16_t1=$TRACE
as researcher GET /v1/whoami
check "... a new one for each request" [ "$TRACE" != "$a16_t1" ]
check "... the access log (through the relay) has it" \
    wait_for 3 grep -qF "\"trace_id\":\"$TRACE\"" "$FRONT_ACCESS_LOG"
req GET /v1/whoami -H "Authorization: Bearer $FETCHML_ANALYST_KEY"
check "Authorization: Bearer reaches the app (CGIPassAuth) -> 200" status_is 200
req GET /v1/whoami -H "X_API_KEY: $FETCHML_ANALYST_KEY"
check "a header with an underscore never becomes the key (401)" error_is 401 UNAUTHORIZED
as researcher GET /v1/tasks/../whoami --path-as-is
check "dot segments are resolved before the app routes: /v1/tasks/../whoami -> 200" status_is 200
check "... recorded under the normalised path" a16_jq '.resource == "/v1/whoami"' <<<"$(a16_audit "$TRACE")"
as researcher GET //v1//whoami --path-as-is
check "// is merged -> 200" status_is 200
req GET /v1/tasks/%2e%2e/%2e%2e/%2e%2e/health --path-as-is
forget_trace
check "a path that climbs above / never reaches the app (400 JSON)" a16_json 400 BAD_REQUEST
req GET /v1/experiments/x/files/a%2Fb -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
forget_trace
check "%2F in a path -> 404 NOT_FOUND from Apache (AllowEncodedSlashes Off)" a16_json 404 NOT_FOUND
check "... which never reached the app" bash -c "! grep -qF '\"trace_id\":\"$TRACE\"' '$FETCHML_VAR/log/audit.log'"

# ---- credentials ---------------------------------------------------------------------

as researcher GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "X-API-Key sent twice (Apache merges them) -> 401" error_is 401 UNAUTHORIZED
check "... audited as malformed_key, not as an unknown key" a16_jq '.reason == "malformed_key"' <<<"$(a16_audit "$TRACE")"
req GET /v1/whoami -H "Authorization: Bearer $FETCHML_ADMIN_KEY" -H "Authorization: Bearer $FETCHML_ADMIN_KEY"
check "Authorization sent twice -> 401 malformed_key" \
    bash -c "[ $STATUS = 401 ] && grep -F '\"trace_id\":\"$TRACE\"' '$FETCHML_VAR/log/audit.log' | jq -e '.reason == \"malformed_key\"' >/dev/null"

BASE=$HTTP_BASE req GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "X-API-Key over plain HTTP -> 403 CREDENTIAL_IN_CLEAR, not redirected" \
    bash -c "[ $STATUS = 403 ] && jq -e '.code == \"CREDENTIAL_IN_CLEAR\"' '$B' >/dev/null && ! grep -qi '^Location:' '$H'"
check "... recorded with the key's user" a16_jq '.reason == "credential_in_clear" and .user == "researcher"' \
    <<<"$(a16_audit "$TRACE")"
BASE=$HTTP_BASE req GET /v1/whoami -H "Authorization: Bearer $FETCHML_ADMIN_KEY"
check "Authorization over plain HTTP -> 403 CREDENTIAL_IN_CLEAR" json_is .code CREDENTIAL_IN_CLEAR
BASE=$HTTP_BASE req GET '/v1/tasks?limit=5'
forget_trace
check "no credential over plain HTTP -> 301 to HTTPS, path and query kept" \
    bash -c "[ $STATUS = 301 ] && tr -d '\r' <'$H' | grep -qx 'Location: https://127.0.0.1:$FETCHML_HTTPS_PORT/v1/tasks?limit=5'"
as researcher GET /v1/whoami -H 'Fetchml-Plain-Http: 1'
check "a client header cannot set FETCHML_PLAIN_HTTP over HTTPS (200)" status_is 200

# ---- bodies and limits ---------------------------------------------------------------

as researcher POST /v1/tasks -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
    -d '{"job_name":"a16-chunked"}'
check "a small chunked body (mod_buffer reads it whole) -> 201" status_is 201
a16_id=$(json .id)
[ -n "$a16_id" ] && as admin DELETE "/v1/tasks/$a16_id"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$OUT/a16-big"
printf '{"job_name":"a16-big"}' >>"$OUT/a16-big"
as researcher POST /v1/tasks -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$OUT/a16-big"
check "a chunked body over the limit reaches the app without a length -> 411, never read as empty" \
    error_is 411 LENGTH_REQUIRED
check "... audited, reason length_required" a16_jq '.reason == "length_required"' <<<"$(a16_audit "$TRACE")"
as researcher POST /v1/tasks -H 'Content-Type: application/json' --data-binary @"$OUT/a16-big"
forget_trace
check "a 1.1 MB body with its Content-Length -> 413 PAYLOAD_TOO_LARGE" a16_json 413 PAYLOAD_TOO_LARGE
# LimitRequestBody does not bound a proxied body: without the check of
# fetchml-fcgi.conf Apache would wait for 2 MB that never come (408).
t_start=$EPOCHREALTIME
as researcher POST /v1/tasks --max-time 5 -H 'Content-Length: 2000000' -H 'Content-Type: application/json' -d x
forget_trace
check "Content-Length 2000000 and 1 byte sent -> 413 at once, before any body is read" \
    bash -c "[ $STATUS = 413 ] && awk -v a=$t_start -v b=$EPOCHREALTIME 'BEGIN { exit !(b - a < 2) }'"
as researcher PUT /v1/experiments/a16/files/big.bin --max-time 5 -H 'Content-Length: 300000000' -d x
forget_trace
check "an upload's Content-Length over data.max_file_bytes -> 413 at once" a16_json 413 PAYLOAD_TOO_LARGE

# A body trickled over 2 s reaches the pool only when whole (mod_buffer), so it
# holds no worker meanwhile: the scrape in the middle sees itself busy, alone.
python3 - "$FETCHML_HTTPS_PORT" "$FETCHML_RESEARCHER_KEY" >"$OUT/a16-slow" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10))
body = b'{"job_name":"a16-slow-body"}'
s.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: localhost\r\nX-API-Key: " + sys.argv[2].encode() +
          b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
for i in range(0, len(body), 4):
    s.sendall(body[i:i + 4])
    time.sleep(2 / (len(body) / 4))
print(s.recv(100).split(b"\r\n")[0].decode())
PY
a16_slow=$!
sleep 1
req GET /metrics -H "Authorization: Bearer $FETCHML_ANALYST_KEY"
a16_busy=$(awk '/^fetchml_pool_workers\{state="busy"\}/ { print $2 }' "$B")
check "a body still trickling in holds no pool worker (busy: $a16_busy, the scrape)" [ "$a16_busy" = 1 ]
wait "$a16_slow"
check "... and is served once whole (201)" grep -q '^HTTP/1.1 201' "$OUT/a16-slow"

# ---- Apache's own errors are JSON ----------------------------------------------------

req GET "/v1/$(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
# Refused before the request line is read whole: no trace id (README there).
check "a 9 KB path -> 414 URI_TOO_LONG JSON" bash -c "[ $STATUS = 414 ] && jq -e '.code == \"URI_TOO_LONG\"' '$B' >/dev/null"
req TRACE /v1/whoami
forget_trace
check "TRACE -> 405 METHOD_NOT_ALLOWED JSON" a16_json 405 METHOD_NOT_ALLOWED
req GET /v1/whoami -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
check "a 9 KB header -> 400 JSON (Apache has no 431)" bash -c "[ $STATUS = 400 ] && jq -e '.code == \"BAD_REQUEST\"' '$B' >/dev/null"
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "GET /ws is never upgraded behind Apache (no nchan): refused, not 101" \
    bash -c "[ $STATUS != 101 ] && [ $STATUS -ge 400 ]"

# ---- the production site -------------------------------------------------------------

# As conf/apache/fetchml-site.conf says, with this checkout's paths, the dev
# certificate, and the modules Debian's a2enmod would load.
a16_prod=$OUT/prod-apache
mkdir -p "$a16_prod"
sed -e "s|/opt/fetchml|$ROOT|g; s|/secrets/cert.pem|$FETCHML_VAR/dev/tls.crt|; s|/secrets/key.pem|$FETCHML_VAR/dev/tls.key|" \
    -e "s|/run/fetch_ml/|$a16_prod/|g; s|/run/apache2/|$a16_prod/|g" "$ROOT/conf/apache/fetchml-site.conf" \
    >"$a16_prod/site.conf"
{
    printf 'ServerRoot "%s"\nPidFile "%s/apache.pid"\nDefaultRuntimeDir "%s"\nServerName localhost\n' \
        "$a16_prod" "$a16_prod" "$a16_prod"
    printf 'ErrorLog "%s/error.log"\n' "$a16_prod"
    grep '^LoadModule' "$FETCHML_VAR/apache/httpd.conf"
    printf 'Listen 127.0.0.1:80\nListen 127.0.0.1:443\nInclude "%s/site.conf"\n' "$a16_prod"
} >"$a16_prod/httpd.conf"
check "conf/apache/fetchml-site.conf passes apache2 -t" \
    apache2 -t -f "$a16_prod/httpd.conf" -E "$a16_prod/error.log"
