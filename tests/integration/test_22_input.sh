# Text input is UTF-8 or refused: every string of a JSON body (keys, values,
# args, metadata) and every query value; raw bytes are sent from files
# (--data-binary @FILE) so that the shell never sees them. A JSON body must
# come as Content-Type application/json (415 otherwise); nothing refused is
# stored, so what the API serves back stays strict JSON.

# A researcher of its own, so that these requests leave the shared users'
# rate-limit buckets to the files after this one.
t22_key=t22-$(openssl rand -hex 12)
write_config extra_users=$'    t22:\n      hash: "'"$(hash_of "$t22_key")"$'"\n      roles: ["researcher"]'
t22_known() { as "$t22_key" GET /v1/whoami && status_is 200; }
check "reload with a user of this file's own" reload_until t22_known
t22_post() { # t22_post FILE [curl args...]: the t22 user posts FILE as a task body
    local f=$1
    shift
    as "$t22_key" POST /v1/tasks --data-binary @"$f" "$@"
}
t22_json='Content-Type: application/json'
t22_n=0
# t22_bad DESCRIPTION PRINTF-FORMAT: a body with those bytes -> 400 BAD_REQUEST
t22_bad() {
    t22_n=$((t22_n + 1))
    # shellcheck disable=SC2059 # the format holds the raw bytes on purpose
    printf "$2" >"$OUT/t22-$t22_n.json"
    t22_post "$OUT/t22-$t22_n.json" -H "$t22_json"
    check "$1 -> 400 BAD_REQUEST" bash -c "[ $STATUS = 400 ] && jq -e '.code == \"BAD_REQUEST\"' '$B' >/dev/null"
}
t22_bad "an overlong '/' (C0 AF) in args" '{"job_name":"t22","args":"a\xc0\xafb"}'
t22_bad "an overlong three-byte form in args" '{"job_name":"t22","args":"\xe0\x80\xaf"}'
t22_bad "a raw surrogate (ED A0 80) in a metadata value" '{"job_name":"t22","metadata":{"n":"\xed\xa0\x80"}}'
t22_bad "a code point past U+10FFFF in an args array" '{"job_name":"t22","args":["ok","\xf4\x90\x80\x80"]}'
t22_bad "a truncated sequence in a metadata key" '{"job_name":"t22","metadata":{"k\xe2\x82":1}}'
t22_bad "a lone continuation byte in an unknown key" '{"job_name":"t22","x\x80":1}'
t22_bad "an unpaired surrogate escape" '{"job_name":"t22","args":"\\ud800"}'
t22_bad "a lone low surrogate escape" '{"job_name":"t22","args":"\\udc00x"}'
t22_bad "a high surrogate escape before a non-surrogate" '{"job_name":"t22","args":"\\ud800\\u0041"}'

printf '{"job_name":"t22-ok","args":"caf\xc3\xa9 \\ud83d\\ude00","metadata":{"note":"\xe2\x82\xac"}}' >"$OUT/t22-ok.json"
t22_post "$OUT/t22-ok.json" -H "$t22_json"
check "valid UTF-8 and a surrogate pair escape -> 201" status_is 201
t22_id=$(json .id)
as "$t22_key" GET "/v1/tasks/$t22_id"
check "served back as the UTF-8 that was sent" json_is .args "café 😀"

as "$t22_key" GET "/v1/tasks?limit=1000"
check "the task list is valid JSON and holds no refused task" \
    bash -c "jq -e '[.tasks[] | select(.job_name == \"t22\")] | length == 0' '$B' >/dev/null"

# Refused as not UTF-8 (a malformed value), not merely as an unknown status,
# and the error body never echoes the bytes (it stays valid UTF-8).
t22_malformed() { error_is 400 BAD_REQUEST && json .error | grep -q '^malformed' && iconv -f UTF-8 -t UTF-8 "$B" >/dev/null; }
for t22_q in 'status=%C0%AF' 'status=%ED%A0%80' 'status=%F4%90%80%80' 'status=%E2%82' 'status=%FF' 'st%80tus=1'; do
    as "$t22_key" GET "/v1/tasks?$t22_q"
    check "query $t22_q -> 400 BAD_REQUEST, malformed" t22_malformed
done
printf 'status=\xed\xa0\x80' >"$OUT/t22-q"
as "$t22_key" GET "/v1/tasks?$(cat "$OUT/t22-q")"
check "a raw surrogate in a query value -> 400, malformed" t22_malformed

# Content-Type: application/json, any letter case, parameters allowed.
printf '{"job_name":"t22-ct"}' >"$OUT/t22-ct.json"
for t22_ct in 'application/json; charset=utf-8' 'Application/JSON'; do
    t22_post "$OUT/t22-ct.json" -H "Content-Type: $t22_ct"
    check "Content-Type: $t22_ct -> 201" status_is 201
done
t22_post "$OUT/t22-ct.json" -H 'Content-Type: text/plain'
check "Content-Type: text/plain -> 415 UNSUPPORTED_MEDIA_TYPE" \
    bash -c "[ $STATUS = 415 ] && jq -e '.code == \"UNSUPPORTED_MEDIA_TYPE\"' '$B' >/dev/null"
check "the 415 is a JSON error with our trace id" error_body_is UNSUPPORTED_MEDIA_TYPE
t22_post "$OUT/t22-ct.json" -H 'Content-Type: application/x-www-form-urlencoded'
check "curl's default form type -> 415" error_is 415 UNSUPPORTED_MEDIA_TYPE
t22_post "$OUT/t22-ct.json" -H 'Content-Type:'
check "no Content-Type -> 415" error_is 415 UNSUPPORTED_MEDIA_TYPE
as "$t22_key" POST "/v1/tasks/$t22_id/cancel"
check "a route without a body needs no Content-Type (cancel -> 200)" status_is 200
write_config
check "reload without the t22 user" reload_until bash -c "! curl -sfk -o /dev/null -H 'X-API-Key: $t22_key' '$BASE/v1/whoami'"
