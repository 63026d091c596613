# nginx at the edge (README "nginx in front"): a credential sent to the
# plain-HTTP port is refused and recorded, not redirected; nginx's own error
# answers are JSON with the code the README lists for their status; its
# internal error locations cannot be reached from outside.

# README's list of codes and their statuses ("Calling the API"): an error
# body's code must be listed, with its status.
declare -A e_status=()
while read -r e_c e_s; do e_status[$e_c]=$e_s; done < <(sed -n '/^Codes: /,/^$/p' "$ROOT/README.md" |
    tr '\n' ' ' | grep -oE '`[A-Z_]+` [0-9]{3}' | tr -d '`')
check "README lists the error codes (${#e_status[@]})" [ "${#e_status[@]}" -ge 15 ]
# e_json STATUS CODE: that answer, a JSON error body with our trace id, the code of that status.
e_json() {
    local code
    code=$(jq -r .code <"$B" 2>/dev/null)
    status_is "$1" && [ "$code" = "$2" ] && [ "${e_status[$code]:-}" = "$STATUS" ] &&
        error_body_is "$2" && header_has 'Content-Type: application/json'
}
# e_http METHOD PATH [curl args...]: req, on the plain-HTTP port.
e_http() { BASE=$HTTP_BASE req "$@"; }
e_audit() { grep -F "\"trace_id\":\"$1\"" "$FETCHML_VAR/log/audit.log" | tail -1; }
e_jq() { # e_jq [ARGS...] FILTER <<<LINE: the line is there and the filter holds
    local line
    line=$(cat)
    [ -n "$line" ] && jq -e "$@" >/dev/null <<<"$line"
}

# ---- a credential over plain HTTP --------------------------------------------------

# The key id of the researcher's key, from the record of a request over HTTPS.
as researcher GET /v1/whoami
e_kid=$(e_audit "$TRACE" | jq -r .key_id)
check "the researcher's key id is known from an HTTPS request ($e_kid)" grep -Eqx '[0-9a-f]{12}' <<<"$e_kid"

e_http GET /v1/whoami -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "X-API-Key over plain HTTP -> 403 CREDENTIAL_IN_CLEAR, JSON" e_json 403 CREDENTIAL_IN_CLEAR
check "... not redirected (no Location)" bash -c "! tr -d '\r' <'$H' | grep -qi '^Location:'"
check "... the message says the credential travelled in clear" bash -c "jq -r .error <'$B' | grep -qi 'plain HTTP'"
e_line=$(e_audit "$TRACE")
check "... recorded in the audit trail by key id, reason credential_in_clear" \
    e_jq --arg k "$e_kid" '.key_id == $k and .reason == "credential_in_clear" and .status == 403
        and .user == "researcher"' <<<"$e_line"
check "... and warned in api.log with the key id, never the key" \
    bash -c "grep -F 'trace_id=$TRACE' '$FETCHML_VAR/log/api.log' | grep -q 'plain HTTP.*key_id=$e_kid' &&
        ! grep -qF '$FETCHML_RESEARCHER_KEY' '$FETCHML_VAR/log/api.log'"

e_http POST /v1/tasks -H "Authorization: Bearer $FETCHML_ADMIN_KEY" -H 'Content-Type: application/json' \
    -d '{"job_name":"in-clear"}'
check "Authorization: Bearer over plain HTTP -> 403 CREDENTIAL_IN_CLEAR" e_json 403 CREDENTIAL_IN_CLEAR
check "... recorded with a key id" e_jq '.reason == "credential_in_clear" and (.key_id | test("^[0-9a-f]{12}$"))' \
    <<<"$(e_audit "$TRACE")"
e_http GET /v1/whoami -H "X-API-Key: not-a-key-of-anyone"
check "an unknown key over plain HTTP gets the same 403 (nothing to learn)" e_json 403 CREDENTIAL_IN_CLEAR

# Plain HTTP sent to the HTTPS port: the same, there.
BASE=http://127.0.0.1:$FETCHML_HTTPS_PORT req GET /v1/whoami -H "X-API-Key: $FETCHML_ANALYST_KEY"
check "a credential in plain HTTP to the HTTPS port -> 403 CREDENTIAL_IN_CLEAR" e_json 403 CREDENTIAL_IN_CLEAR
check "... recorded by key id" e_jq '.reason == "credential_in_clear" and .user == "analyst"' <<<"$(e_audit "$TRACE")"
BASE=http://127.0.0.1:$FETCHML_HTTPS_PORT req GET /v1/whoami
forget_trace
check "... without one -> 400 BAD_REQUEST" e_json 400 BAD_REQUEST

e_http GET /v1/whoami
forget_trace
check "without a credential, plain HTTP still redirects to HTTPS (301)" \
    bash -c "[ $STATUS = 301 ] && tr -d '\r' <'$H' | grep -qx 'Location: https://127.0.0.1:$FETCHML_HTTPS_PORT/v1/whoami'"

# The flag is a FastCGI param of nginx's config; a client header becomes an
# HTTP_* param (or is dropped, with underscores) and cannot set it.
as researcher GET /v1/whoami -H 'Fetchml-Plain-Http: 1' -H 'FETCHML_PLAIN_HTTP: 1'
check "a client header cannot set FETCHML_PLAIN_HTTP over HTTPS (200)" status_is 200

# ---- the app's errors carry the code of their status too ---------------------------

req GET /v1/whoami
check "the app: no key -> 401 UNAUTHORIZED" e_json 401 UNAUTHORIZED
as researcher GET /v1/nope
check "the app: no route -> 404 NOT_FOUND" e_json 404 NOT_FOUND
as researcher DELETE /v1/whoami
check "the app: wrong method -> 405 METHOD_NOT_ALLOWED" e_json 405 METHOD_NOT_ALLOWED
as analyst POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"x"}'
check "the app: no permission -> 403 FORBIDDEN" e_json 403 FORBIDDEN
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"x","priority":99}'
check "the app: invalid task -> 422 VALIDATION_ERROR" e_json 422 VALIDATION_ERROR
req GET /health --interface 127.0.0.2
check "the app: outside the allow-list -> 403 IP_NOT_ALLOWED" e_json 403 IP_NOT_ALLOWED

# ---- nginx's internal error locations ------------------------------------------------

for p in /__fetchml_error/ /__fetchml_error/400 /__fetchml_error/404 /__fetchml_error/429 \
    /__fetchml_error/503 /__fetchml_error/nope; do
    req GET "$p"
    forget_trace
    check "GET $p from outside -> 404 NOT_FOUND JSON" e_json 404 NOT_FOUND
    e_http GET "$p"
    forget_trace
    check "... on the plain-HTTP port too" e_json 404 NOT_FOUND
done

# ---- every error nginx answers itself ------------------------------------------------

req GET /v1/whoami -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
check "a 9 KB header -> 431 HEADER_TOO_LARGE" e_json 431 HEADER_TOO_LARGE
req GET "/v1/$(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
check "a 9 KB path -> 414 URI_TOO_LONG" e_json 414 URI_TOO_LONG
req POST /v1/tasks -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Content-Length: 2000000' -d x
forget_trace
check "Content-Length over client_max_body_size -> 413 PAYLOAD_TOO_LARGE" e_json 413 PAYLOAD_TOO_LARGE
req GET /v1/whoami -H 'Transfer-Encoding: gzip'
forget_trace
check "an unknown Transfer-Encoding -> 501 NOT_IMPLEMENTED" e_json 501 NOT_IMPLEMENTED
req TRACE /v1/whoami
forget_trace
check "TRACE -> 405 METHOD_NOT_ALLOWED" e_json 405 METHOD_NOT_ALLOWED
# A request line with an HTTP version nginx does not speak (curl cannot send one).
t15_505=$(printf 'GET /v1/whoami HTTP/9.9\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    timeout 5 openssl s_client -quiet -connect "127.0.0.1:$FETCHML_HTTPS_PORT" 2>/dev/null || true)
t15_505_json() {
    head -1 <<<"$t15_505" | grep -q ' 505 ' &&
        tr -d '\r' <<<"$t15_505" | awk 'body; /^$/ { body = 1 }' |
        jq -e '.code == "HTTP_VERSION_NOT_SUPPORTED" and (.trace_id | length) > 0' >/dev/null
}
check "HTTP/9.9 -> 505 HTTP_VERSION_NOT_SUPPORTED, the JSON body" t15_505_json
e_http GET "/v1/$(head -c 9000 /dev/zero | tr '\0' a)"
forget_trace
check "plain HTTP port: a 9 KB path -> 414 URI_TOO_LONG" e_json 414 URI_TOO_LONG
out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GARBAGE\r\n\r\n" >&3 && cat <&3' _ \
    "$FETCHML_HTTP_PORT" 2>/dev/null)
check "plain HTTP port: a garbage request line -> 400 BAD_REQUEST JSON" \
    bash -c "grep -q '^HTTP/1.1 400' <<<'$out' && grep -q '\"code\":\"BAD_REQUEST\"' <<<'$out'"

# Statuses that need a broken upstream or a refusing location: test locations
# dropped into the HTTPS server (the template's extra include), nginx reloaded.
# A FastCGI socket that accepts and never answers, where nginx's workers reach it.
e_hang=$FETCHML_VAR/run/e-hang.sock
python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(8)
time.sleep(30)' "$e_hang" &
e_hang_pid=$!
cat >"$FETCHML_VAR/nginx/extra/edge-test.conf" <<NGINX
location = /__edge_test/403 { deny all; }
location = /__edge_test/500 { return 500; }
location = /__edge_test/502 {
    include $ROOT/nginx/snippets/fetchml-fastcgi.conf;
    fastcgi_pass unix:$OUT/no-such.sock;
}
location = /__edge_test/504 {
    fastcgi_read_timeout 1s;
    fastcgi_pass unix:$e_hang;
}
NGINX
e_reload_until() { # reload nginx, then wait (<= 10 s) until the check passes
    nginx -q -p "$FETCHML_VAR/nginx" -c "$FETCHML_VAR/nginx/nginx.conf" \
        -e "$FETCHML_VAR/log/nginx-startup.log" -s reload && wait_for 10 "$@"
}
e_extra_up() { [ "$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/__edge_test/403")" = 403 ]; }
check "nginx reloads with the test locations" e_reload_until e_extra_up
# Asked again until it holds: for a moment after the reload, old nginx workers
# (without the test locations) still take some connections.
e_edge_json() { req GET "/__edge_test/$1" && forget_trace && e_json "$2" "$3"; }
for s in 403:403:FORBIDDEN 500:503:SERVICE_UNAVAILABLE \
    502:503:SERVICE_UNAVAILABLE 504:503:SERVICE_UNAVAILABLE; do
    IFS=: read -r e_from e_to e_code <<<"$s"
    check "nginx's $e_from -> $e_to $e_code JSON" wait_for 10 e_edge_json "$e_from" "$e_to" "$e_code"
    [ "$e_to" = 503 ] && check "... with Retry-After" header_has 'Retry-After: 1'
done
check "... the 504 was nginx's upstream timeout (nginx-error.log)" \
    wait_for 5 grep -q 'upstream timed out.*/__edge_test/504' "$FETCHML_VAR/log/nginx-error.log"
kill "$e_hang_pid" 2>/dev/null
rm -f "$e_hang"
rm -f "$FETCHML_VAR/nginx/extra/edge-test.conf"
e_extra_down() { [ "$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/__edge_test/403")" != 403 ]; }
check "nginx reloads without them" e_reload_until e_extra_down

# The production site carries the same limits, error pages and plain-HTTP
# handling: it must stay a valid configuration (this checkout's paths).
e_prod=$OUT/prod-nginx
mkdir -p "$e_prod/nchan" # the publisher socket's directory (the site's comments)
sed -e "s|/opt/fetchml|$ROOT|g; s|/secrets/cert.pem|$FETCHML_VAR/dev/tls.crt|; s|/secrets/key.pem|$FETCHML_VAR/dev/tls.key|; s|/secrets/chain.pem|$FETCHML_VAR/dev/tls.crt|" \
    -e "s|/run/fetch_ml/|$e_prod/|g; s|/etc/fetch_ml/publisher-token.conf|$FETCHML_VAR/dev/publisher-token.conf|" \
    "$ROOT/nginx/fetchml-site.conf" >"$e_prod/site.conf"
# As the site's comments say: nchan loaded, this repository's nginx/ beside nginx.conf.
ln -sfn "$ROOT/nginx" "$e_prod/fetchml"
printf 'load_module /usr/lib/nginx/modules/ngx_nchan_module.so;\npid %s/nginx.pid;\nevents { worker_connections 64; }\nhttp { variables_hash_max_size 2048; include %s/site.conf; }\n' \
    "$e_prod" "$e_prod" >"$e_prod/nginx.conf"
check "nginx/fetchml-site.conf passes nginx -t" \
    nginx -q -t -p "$e_prod" -c "$e_prod/nginx.conf" -e "$e_prod/error.log"

# ---- framing --------------------------------------------------------------------------

# The app sends a buffered body's length, so nginx passes it on rather than chunking.
# e_framed: the last answer has Content-Length equal to its body, no Transfer-Encoding.
e_framed() {
    local cl
    cl=$(tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="content-length"{print $2}' | tail -1)
    [ -n "$cl" ] && [ "$cl" = "$(wc -c <"$B")" ] && ! header_has 'Transfer-Encoding:'
}
as researcher GET /v1/whoami
check "a JSON answer carries its Content-Length, not chunked" e_framed
req GET /v1/whoami
check "... an error answer too (401)" e_framed
as researcher HEAD /v1/whoami
e_head_cl=$(tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="content-length"{print $2}' | tail -1)
as researcher GET /v1/whoami
check "... HEAD gives the length GET sends ($e_head_cl)" [ "$e_head_cl" = "$(wc -c <"$B")" ]
