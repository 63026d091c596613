# WebSocket /ws before the upgrade (SPEC 4.2, README "WebSocket events"): the
# whole pipeline runs in the pool through nginx's auth_request, so every
# refusal is the usual JSON error with its status, headers and trace id, and
# an audit record, and never a 101; the key comes in X-API-Key,
# Authorization: Bearer, or the fetchml.bearer.<key> subprotocol offered after
# ws+meta.nchan (answered ws+meta.nchan, never the key); never in the query.

t31_audit=$FETCHML_VAR/log/audit.log
trap ws_stop_all EXIT
t31_noread=$(openssl rand -hex 32)
t31_slow=$(openssl rand -hex 32)
t31_expired=$(openssl rand -hex 32)
t31_fresh=$(openssl rand -hex 32)
t31_qkey=$(openssl rand -hex 32)
t31_origin="https://app.t31.example"
write_config "websocket.allowed_origins=[\"$t31_origin\"]" extra_users="    t31noread:
      hash: \"$(hash_of "$t31_noread")\"
    t31slow:
      hash: \"$(hash_of "$t31_slow")\"
      roles: [\"researcher\"]
      rate_limit: { requests_per_minute: 1, burst: 1 }
    t31expired:
      keys: [{ hash: \"$(hash_of "$t31_expired")\", expires: \"2020-01-01T00:00:00Z\" }]
      roles: [\"researcher\"]
    t31fresh:
      hash: \"$(hash_of "$t31_fresh")\"
      roles: [\"researcher\"]"
t31_ready() { as "$t31_noread" GET /v1/whoami && status_is 200; }
check "reload with the /ws test users and websocket.allowed_origins" reload_until t31_ready

# t31_audited STATUS REASON: the audit record of the last request's trace.
t31_audited() {
    wait_for 2 grep -qF "\"trace_id\":\"$TRACE\"" "$t31_audit" &&
        grep -F "\"trace_id\":\"$TRACE\"" "$t31_audit" | grep -F '"action":"GET /ws"' |
        grep -F "\"status\":$1," | grep -qF "\"reason\":\"$2\""
}

# ---- refused before the upgrade ---------------------------------------------------------
ws_req
t31_401() { status_is 401 && error_body_is UNAUTHORIZED; }
check "no key -> 401 UNAUTHORIZED, the JSON error with the trace id" t31_401
check "... with WWW-Authenticate: Bearer" header_has 'www-authenticate: bearer'
check "... and audited (GET /ws, 401, missing_key)" t31_audited 401 missing_key
ws_req -H "X-API-Key: $(openssl rand -hex 32)"
check "an unknown key -> 401 UNAUTHORIZED" error_is 401 UNAUTHORIZED
check "... audited (unknown_key)" t31_audited 401 unknown_key
ws_req -H "X-API-Key: $t31_expired"
check "an expired key -> 401 UNAUTHORIZED" error_is 401 UNAUTHORIZED
check "... audited (expired)" t31_audited 401 expired
ws_req -H "X-API-Key: $t31_noread"
check "a key without jobs:read -> 403 FORBIDDEN" error_is 403 FORBIDDEN
check "... audited (forbidden)" t31_audited 403 forbidden
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H "Origin: https://evil.example"
check "an Origin outside websocket.allowed_origins -> 403 FORBIDDEN" error_is 403 FORBIDDEN
check "... with the trace id in the body" json_is .trace_id "$TRACE"
check "... audited (origin_not_allowed)" t31_audited 403 origin_not_allowed
# The bucket (burst 1) is the user's, on every route: whoami takes its one token.
as "$t31_slow" GET /v1/whoami
ws_req -H "X-API-Key: $t31_slow"
check "over the user's rate limit -> 429 RATE_LIMITED" error_is 429 RATE_LIMITED
check "... with Retry-After and RateLimit headers" bash -c "grep -qi '^retry-after: [0-9]' '$H' && grep -qi '^ratelimit-policy:' '$H'"
check "... audited (rate_limited)" t31_audited 429 rate_limited
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Sec-WebSocket-Protocol: fetchml.bearer.x, ws+meta.nchan'
check "a key in X-API-Key and one as subprotocol -> 401 (ambiguous)" error_is 401 UNAUTHORIZED
# nchan answers only ws+meta.nchan, and only first: any other list gets an empty
# Sec-WebSocket-Protocol, which a client takes as a failed handshake.
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Sec-WebSocket-Protocol: chat, ws+meta.nchan'
check "subprotocols without ws+meta.nchan first -> 400 BAD_REQUEST, no upgrade" error_is 400 BAD_REQUEST
check "... the error says to offer ws+meta.nchan first" bash -c "jq -r .error <'$B' | grep -q 'ws+meta.nchan first'"
check "... audited (bad_subprotocol)" t31_audited 400 bad_subprotocol
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Sec-WebSocket-Protocol: chat'
check "a subprotocol nchan does not know -> 400" error_is 400 BAD_REQUEST
# Which of two Origins (or two subprotocol lists) nchan or a browser would read is not ours to guess.
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H "Origin: $t31_origin" -H 'Origin: https://evil.example'
check "Origin sent twice -> 400 BAD_REQUEST" error_is 400 BAD_REQUEST
check "... audited (repeated_header)" t31_audited 400 repeated_header
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -H 'Sec-WebSocket-Protocol: ws+meta.nchan' \
    -H 'Sec-WebSocket-Protocol: chat'
check "Sec-WebSocket-Protocol sent twice -> 400 BAD_REQUEST" error_is 400 BAD_REQUEST

# The global allow-list and the guard: the address itself.
write_config "websocket.allowed_origins=[\"$t31_origin\"]" ip_whitelist='["10.0.0.0/8"]' extra_users="    t31fresh:
      hash: \"$(hash_of "$t31_fresh")\"
      roles: [\"researcher\"]"
t31_outside() { as researcher GET /v1/whoami && status_is 403; }
check "reload with an allow-list without 127.0.0.1" reload_until t31_outside
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "an address not allowed -> 403 IP_NOT_ALLOWED" error_is 403 IP_NOT_ALLOWED
check "... audited (ip_not_allowed)" t31_audited 403 ip_not_allowed
write_config "websocket.allowed_origins=[\"$t31_origin\"]" extra_users="    t31fresh:
      hash: \"$(hash_of "$t31_fresh")\"
      roles: [\"researcher\"]"
t31_back() { as researcher GET /v1/whoami && status_is 200; }
check "reload with 127.0.0.1 allowed again" reload_until t31_back
# A short block: the workers keep what they learnt of it until it ends, whatever Redis says later.
t31_block_end=$((${EPOCHREALTIME/./} / 1000 + 4000))
rcli SET fetchml:authblock:127.0.0.1 1 PX 4000 >/dev/null
# A key that works nowhere, new at each try: until the worker has seen the block a try gets
# 401 (a valid key would get its 101 and become a known client of the address).
t31_blocked() { ws_req -H "X-API-Key: $(openssl rand -hex 32)" && status_is 429; }
check "an address the guard blocks -> 429 RATE_LIMITED (a key never seen from there)" wait_for 3 t31_blocked
check "... a JSON error with the trace id" error_body_is RATE_LIMITED
check "... audited (ip_blocked)" t31_audited 429 ip_blocked
rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 fetchml:anon:127.0.0.1 >/dev/null
t31_left=$((t31_block_end - ${EPOCHREALTIME/./} / 1000 + 200))
[ "$t31_left" -le 0 ] || sleep "$((t31_left / 1000)).$(printf '%03d' $((t31_left % 1000)))"

# ---- the key never in the query ---------------------------------------------------------
WS_PATH="/ws?api_key=$t31_qkey" ws_req
check "?api_key=<key> without a header -> 401" error_is 401 UNAUTHORIZED
WS_PATH="/ws?api_key=$t31_qkey" ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "a valid key in the header and one in the query -> 400 BAD_REQUEST" error_is 400 BAD_REQUEST
ws_open --path "/ws?token=$t31_qkey"
check "a WebSocket client with only a query key gets no 101 (401)" status_is 401 || echo "    got: $WS"
sleep 0.5
t31_leak=$(grep -rlF -- "$t31_qkey" "$FETCHML_VAR/log" || true)
check "the query key is in no log file" [ -z "$t31_leak" ]

# ---- a handshake in clear ------------------------------------------------------------------
t31_clear=$(curl -s -o "$B" -D "$H" -w '%{http_code}' --max-time 5 "$HTTP_BASE/ws" -H 'Connection: Upgrade' \
    -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    -H "Sec-WebSocket-Protocol: ws+meta.nchan, fetchml.bearer.$FETCHML_ANALYST_KEY" || true)
check "a handshake on the plain-HTTP port with a subprotocol key -> 403 CREDENTIAL_IN_CLEAR, not a redirect" \
    bash -c "[ '$t31_clear' = 403 ] && jq -e '.code == \"CREDENTIAL_IN_CLEAR\"' '$B' >/dev/null"
t31_clear_trace=$(tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')
t31_clear_audit() { grep -F "\"trace_id\":\"$t31_clear_trace\"" "$t31_audit" | grep -F '"user":"analyst"' | grep -qF '"reason":"credential_in_clear"'; }
check "... audited with the key's user (rotate it)" wait_for 2 t31_clear_audit

# ---- accepted -----------------------------------------------------------------------------
ws_open --key "$FETCHML_RESEARCHER_KEY"
check "X-API-Key -> 101" status_is 101
ws_open --bearer "$FETCHML_RESEARCHER_KEY"
check "Authorization: Bearer -> 101" status_is 101
ws_open --proto "$FETCHML_RESEARCHER_KEY"
check "subprotocols ws+meta.nchan, fetchml.bearer.<key> -> 101" status_is 101
check "... the handshake answers ws+meta.nchan" [ "$(jq -r .subprotocol <<<"$WS")" = ws+meta.nchan ]
check "... and the key is nowhere in the answer" bash -c "! grep -qF -- '$FETCHML_RESEARCHER_KEY' <<<'$WS'"
ws_open --proto-only "$FETCHML_RESEARCHER_KEY"
check "fetchml.bearer.<key> without ws+meta.nchan first -> 400 (nchan could not answer it)" status_is 400
ws_open --key "$FETCHML_RESEARCHER_KEY" --origin "$t31_origin"
check "an allowed Origin -> 101" status_is 101
ws_open --key "$FETCHML_RESEARCHER_KEY" --no-meta
check "no subprotocol at all (a script) -> 101" status_is 101
ws_req -H "X-API-Key: $FETCHML_RESEARCHER_KEY" -X POST
check "POST /ws -> 405" status_is 405
req GET /ws -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
check "GET /ws without the upgrade -> 400 BAD_REQUEST, JSON" error_is 400 BAD_REQUEST
# A handshake nchan would refuse after the auth answer is refused by the pool
# first: nothing is registered or audited as an opened socket (RFC 6455 4.1).
t31_bad_handshake() { # t31_bad_handshake WHAT [curl args...]: 400 and no WS_OPEN for its trace
    local what=$1
    shift
    req GET /ws --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H "X-API-Key: $FETCHML_WORKER_KEY" "$@"
    check "a handshake $what -> 400 BAD_REQUEST" error_is 400 BAD_REQUEST
    sleep 0.3
    check "... and no WS_OPEN record for it" bash -c "! grep -F '\"trace_id\":\"$TRACE\"' '$t31_audit' | grep -qF WS_OPEN"
}
t31_bad_handshake "without Sec-WebSocket-Key" -H 'Sec-WebSocket-Version: 13'
t31_bad_handshake "of version 8" -H 'Sec-WebSocket-Version: 8' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
t31_bad_handshake "with a key that is not 16 bytes of base64" -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: c2hvcnQ='
t31_bad_handshake "over HTTP/1.0" --http1.0 -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='

# ---- opened and closed sockets are audited ------------------------------------------------
# A socket that lives a moment (one closed at once, before nginx's open callback is done,
# may get no close callback from nchan: the relay then writes its record, "gone").
ws_listen an1 --key "$FETCHML_ANALYST_KEY" --seconds 1
t31_trace=$(grep -F '"action":"GET /ws"' "$t31_audit" | grep -F '"user":"analyst"' | tail -1 | jq -r .trace_id)
wait_for 3 ws_closed an1
t31_opened() { grep -F "\"trace_id\":\"$t31_trace\"" "$t31_audit" | grep -F '"action":"WS_OPEN /ws"' | grep -qF '"user":"analyst"'; }
t31_closed() { grep -F "\"trace_id\":\"$t31_trace\"" "$t31_audit" | grep -F '"action":"WS_CLOSE /ws"' | grep -Eq '"reason":"closed channel=user duration_ms=[0-9]+"'; }
check "the open is audited (WS_OPEN, user, same trace id as the handshake)" wait_for 3 t31_opened
check "the close is audited (WS_CLOSE, reason, channel kind, duration)" wait_for 3 t31_closed
check "... with the key id" bash -c "grep -F '\"trace_id\":\"$t31_trace\"' '$t31_audit' | grep -F WS_CLOSE | grep -q '\"key_id\":\"[0-9a-f]\{12\}\"'"
check "... and the handshake's own record says which channel (GET /ws, 204, channel=user)" \
    bash -c "grep -F '\"trace_id\":\"$t31_trace\"' '$t31_audit' | grep -F '\"action\":\"GET /ws\"' | grep -qF '\"reason\":\"channel=user\"'"

write_config
check "reload with the default test config" reload_until t31_back
