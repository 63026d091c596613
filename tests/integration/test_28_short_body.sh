# A request body that ends before CONTENT_LENGTH bytes (the FastCGI stream
# closed early) is refused with 400 BAD_REQUEST and audited, never handed on
# as the whole body. nginx always sends whole bodies, so this test speaks
# FastCGI to the pool's socket itself; the short body is valid JSON on its
# own, so a pool that took it as the whole body would create a task (201).
# Also what Apache's mod_proxy_fcgi sends where nginx does not
# (conf/apache/README.md): a chunked body without CONTENT_LENGTH, and repeated
# credential headers merged into one param.

t28_sock=$FETCHML_VAR/run/fcgi.sock
t28_audit=$FETCHML_VAR/log/audit.log

# t28_fcgi TRACE_ID CONTENT_LENGTH BODY: one FastCGI request (POST /v1/tasks as
# the researcher, from 127.0.0.1) from nginx's user, whom the pool serves
# (server.allowed_peers); sets STATUS, the response body in $B.
# T28_PARAMS (NAME=VALUE lines) changes params: VALUE "-" drops NAME.
t28_fcgi() {
    local -A p=([REQUEST_METHOD]=POST [DOCUMENT_URI]=/v1/tasks [SCRIPT_NAME]=/v1/tasks
        [QUERY_STRING]= [REMOTE_ADDR]=127.0.0.1 [REQUEST_ID]="$1"
        [HTTP_X_API_KEY]="$FETCHML_RESEARCHER_KEY" [CONTENT_TYPE]=application/json
        [CONTENT_LENGTH]="$2")
    local line k args=()
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if [ "${line#*=}" = - ]; then unset "p[${line%%=*}]"; else p[${line%%=*}]=${line#*=}; fi
    done <<<"${T28_PARAMS:-}"
    for k in "${!p[@]}"; do args+=("$k=${p[$k]}"); done
    STATUS=$(fcgi_request "$t28_sock" "$B" --body "$3" "${args[@]}") || STATUS=000
}
t28_trace() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
t28_listed() { as researcher GET "/v1/tasks?limit=1000" && json_is 'any(.tasks[]; .job_name == "t28")' "$1"; }

t28_whole=$(t28_trace)
t28_body='{"job_name":"t28"}'
t28_fcgi "$t28_whole" "${#t28_body}" "$t28_body"
check "FastCGI straight to the pool: a whole body -> 201" status_is 201
t28_id=$(jq -r .id "$B" 2>/dev/null)
as admin DELETE "/v1/tasks/$t28_id"
check "... (that task deleted again)" status_is 204

t28_short=$(t28_trace)
t28_fcgi "$t28_short" 100 "$t28_body"
check "a body shorter than CONTENT_LENGTH (valid JSON itself) -> 400, not 201" status_is 400
check "... BAD_REQUEST" json_is .code BAD_REQUEST
check "... with the request's trace id" json_is .trace_id "$t28_short"
check "... saying the body is incomplete" json_is .error "request body incomplete"
check "... audited as a failure, reason body_incomplete" \
    bash -c "grep -F '\"trace_id\":\"$t28_short\"' '$t28_audit' | jq -e '.status == 400 and .reason == \"body_incomplete\"' >/dev/null"
check "... and no task was created" t28_listed false
t28_empty=$(t28_trace)
t28_fcgi "$t28_empty" 16 ""
check "CONTENT_LENGTH 16 and no body at all -> 400 body incomplete" json_is .error "request body incomplete"

# Apache passes a chunked body it has not counted without CONTENT_LENGTH; read as
# empty it would be refused for the wrong reason, or taken where no body is needed.
t28_chunked=$(t28_trace)
T28_PARAMS=$'CONTENT_LENGTH=-\nHTTP_TRANSFER_ENCODING=chunked' t28_fcgi "$t28_chunked" 0 "$t28_body"
check "a body with Transfer-Encoding and no CONTENT_LENGTH -> 411 LENGTH_REQUIRED" \
    bash -c "[ $STATUS = 411 ] && jq -e '.code == \"LENGTH_REQUIRED\"' '$B' >/dev/null"
check "... audited, reason length_required" \
    bash -c "grep -F '\"trace_id\":\"$t28_chunked\"' '$t28_audit' | jq -e '.status == 411 and .reason == \"length_required\"' >/dev/null"
check "... and no task was created" t28_listed false
# Apache merges repeated headers into one, ", " between: refused as two credentials.
t28_merged=$(t28_trace)
T28_PARAMS="HTTP_X_API_KEY=$FETCHML_RESEARCHER_KEY, $FETCHML_RESEARCHER_KEY" t28_fcgi "$t28_merged" \
    "${#t28_body}" "$t28_body"
check "a merged X-API-Key (two keys, one param) -> 401, audited as malformed_key" \
    bash -c "[ $STATUS = 401 ] && grep -F '\"trace_id\":\"$t28_merged\"' '$t28_audit' |
        jq -e '.status == 401 and .reason == \"malformed_key\"' >/dev/null"
