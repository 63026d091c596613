# A configured key never reaches a log, whatever its format and wherever a
# client puts it (README "Audit trail and logs"): the filter hashes the
# tokens of each line and redacts those that are configured keys. Keys in
# four formats (the analyst's fetchml_ key, a UUID, base64 with + / and =
# padding, 32 hex digits) are sent in a path segment, a query value
# (raw and %-encoded), odd headers, and a request line that only the front
# logs (nginx: a 413 it refuses itself; Apache: a path above /, which each
# reaches the front's error log through fetchml-logrelay); then no file under
# var/log may hold any of them.
# nginx hands the app the normalised path (merge_slashes: "//" becomes "/"),
# so fixed base64 keys that start with '/', hold "//" and end in "/=" are
# sent every run, besides the random one (which has a leading '/' only now
# and then); their merged forms must not reach a log either.

t82_log=$FETCHML_VAR/log
t82_id=$(openssl rand -hex 4)
t82_uuid=$(cat /proc/sys/kernel/random/uuid)
t82_b64=
for _ in $(seq 500); do
    t82_b64=$(openssl rand -base64 16) # 24 characters, "==" at the end
    [[ $t82_b64 == *+* && $t82_b64 == */* ]] && break
done
t82_hex=$(openssl rand -hex 16)
t82_lead="/lCz8xq3Vv+0aTQe2n7W9g=="
t82_double="Xk4r+Tz1//q8WmYc2Pa0Lw=="
t82_slasheq="Hq9d+Ws2Lp4Ny7Tb0Ke3Gc/="
t82_pct() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
check "a base64 key with + and / in it ($t82_b64)" bash -c '[[ $1 == *+* && $1 == */* && $1 == *== ]]' _ "$t82_b64"

t82_user() { # t82_user NAME KEY: a researcher with that key, YAML lines for extra_users
    printf '    %s:\n      hash: "%s"\n      roles: ["researcher"]' "$1" "$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)"
}
write_config 'rate_limit={ requests_per_minute: 100000, burst: 100000, auth_failures: { max: 100000, window_seconds: 60, block_seconds: 1 } }' \
    extra_users="$(t82_user t82uuid "$t82_uuid")"$'\n'"$(t82_user t82b64 "$t82_b64")"$'\n'"$(t82_user t82hex "$t82_hex")"$'\n'"$(t82_user t82lead "$t82_lead")"$'\n'"$(t82_user t82double "$t82_double")"$'\n'"$(t82_user t82slasheq "$t82_slasheq")"
t82_relay_at=$(wc -l <"$t82_log/logrelay.stderr")
t82_known() {
    as "$t82_uuid" GET /v1/whoami && json_is .user t82uuid &&
        as "$t82_b64" GET /v1/whoami && json_is .user t82b64 &&
        as "$t82_hex" GET /v1/whoami && json_is .user t82hex &&
        as "$t82_lead" GET /v1/whoami && json_is .user t82lead &&
        as "$t82_double" GET /v1/whoami && json_is .user t82double &&
        as "$t82_slasheq" GET /v1/whoami && json_is .user t82slasheq
}
check "reload with users whose keys are a UUID, base64 (also with '/' first, \"//\" inside, \"/=\" last) and 32 hex" reload_until t82_known
t82_relay_reloaded() { tail -n +"$((t82_relay_at + 1))" "$t82_log/logrelay.stderr" | grep -q 'secrets of .* registered'; }
check "the relay read the config's secrets again on reload" wait_for 5 t82_relay_reloaded

t82_keys=("$FETCHML_ANALYST_KEY" "$t82_uuid" "$t82_b64" "$t82_hex" "$t82_lead" "$t82_double" "$t82_slasheq")
t82_names=(fetchml uuid base64 hex32 lead double slasheq)
head -c 2000000 /dev/zero | tr '\0' 'a' >"$OUT/t82-big"
t82_error_at=$(wc -l <"$FRONT_ERROR_LOG")
for i in "${!t82_keys[@]}"; do
    k=${t82_keys[$i]} n=${t82_names[$i]} p=$(t82_pct "${t82_keys[$i]}")
    as researcher GET "/v1/tasks/$k"
    check "$n key as a path segment -> 404" status_is 404
    as researcher GET "/v1/tasks/$p/cancel" -X POST
    # Apache refuses a %2F in a path itself (404, AllowEncodedSlashes Off): not audited.
    [ "$FRONT" = apache ] && [[ $p == *%2F* ]] && forget_trace
    check "$n key %-encoded in a path segment -> 404" status_is 404
    as researcher GET "/v1/tasks?status=$p"
    check "$n key as a query value -> 400" status_is 400
    as researcher GET "/v1/tasks?limit=1&$p=1"
    check "$n key as a query name -> 400" status_is 400
    as researcher GET /v1/whoami -H "X-Foo: $k" -H "User-Agent: $k" -H "Referer: https://x/$k"
    check "$n key in X-Foo, User-Agent and Referer -> 200" status_is 200
    req GET /v1/whoami -H "X-API-Key: $k"
    check "$n key used as a key -> 200" status_is 200
    req POST "/v1/t82ctl$t82_id$n/$k?q=$p" -H 'Content-Type: application/json' \
        -H "X-API-Key: $FETCHML_RESEARCHER_KEY" --data-binary @"$OUT/t82-big"
    forget_trace # refused by the front: only its logs have it
    check "$n key in the request line of a 413 $FRONT refuses itself" status_is 413
    if [ "$FRONT" = apache ]; then
        req GET "/v1/tasks/../../../t82ctl$t82_id$n/$k?q=$p" --path-as-is -H "X-API-Key: $FETCHML_RESEARCHER_KEY"
        forget_trace
        check "$n key in a path above / that Apache refuses itself (400)" status_is 400
    fi
done

# The lines that would have held the keys are there, with the marker.
t82_in_error_log() {
    local n
    if [ "$FRONT" = apache ]; then
        # Apache writes "(PATH?QUERY)": the parenthesis joins the path to the
        # token, and the filter redacts a base64 key's whole token, path too.
        [ "$(tail -n +"$((t82_error_at + 1))" "$FRONT_ERROR_LOG" |
            grep -cE "invalid URI path \(((/v1/tasks/\.\./\.\./\.\./t82ctl$t82_id[a-z0-9]+/)?\[REDACTED\]\?(q=)?\[REDACTED\])\)")" \
            -eq "${#t82_names[@]}" ]
        return
    fi
    for n in "${t82_names[@]}"; do
        grep -qF "request: \"POST /v1/t82ctl$t82_id$n/[REDACTED]?q=[REDACTED] HTTP/1.1\"" "$t82_log/nginx-error.log" || return 1
    done
}
check "$FRONT-error.log has each request line it refused, keys redacted (through the relay)" wait_for 3 t82_in_error_log
check "the audit trail has the path-segment requests, keys redacted" \
    bash -c "[ \$(grep -cF '\"resource\":\"/v1/tasks/[REDACTED]\"' '$t82_log/audit.log') -ge 4 ]"
# "/v1/tasks//<key>" reached the app as "/v1/tasks/<key but its '/'>", routed as that task.
check "the audit trail has the leading-'/' key's path-segment request, key redacted" \
    grep -qF '"resource":"/v1/tasks/[REDACTED]","source_ip":"127.0.0.1","result":"failure","status":404,"reason":"task_not_found","task_id":"[REDACTED]"' "$t82_log/audit.log"

# ---- the search: every form, every file -------------------------------------------------
t82_forms=$OUT/t82-forms
: >"$t82_forms"
for k in "${t82_keys[@]}"; do # raw, %-encoded, slashes merged, without a leading '/'
    printf '%s\n%s\n%s\n%s\n' "$k" "$(t82_pct "$k")" "$(printf '%s' "$k" | tr -s /)" "${k#/}" >>"$t82_forms"
done
t82_found=$(grep -rlaF -f "$t82_forms" "$t82_log" || true)
check "no key, raw, %-encoded or merged, in any file under var/log ($(find "$t82_log" -type f | wc -l) files)" [ -z "$t82_found" ]
[ -z "$t82_found" ] || grep -raoF -f "$t82_forms" "$t82_log" | sed 's/^/    /' | head -20

write_config
t82_default() { as researcher GET /v1/whoami && json_is .rate_limit.requests_per_minute 120; }
check "reload with the default test config" reload_until t82_default
