# Audit trail and logs (SPEC section 5). Runs last: it checks every request
# the earlier tests made.

audit=$FETCHML_VAR/log/audit.log
missing=0 dup=0 badfields=0
while read -r t; do
    [ -n "$t" ] || continue
    n=$(grep -c "\"trace_id\":\"$t\"" "$audit" || true)
    [ "$n" -eq 0 ] && missing=$((missing + 1))
    [ "$n" -gt 1 ] && dup=$((dup + 1))
    line=$(grep -m1 "\"trace_id\":\"$t\"" "$audit" || true)
    [ -n "$line" ] && ! jq -e 'has("ts") and has("user") and has("key_id") and has("action") and
        has("source_ip") and has("result") and has("status") and has("trace_id") and has("seq")
        and has("prev_hash") and has("hash")' <<<"$line" >/dev/null && badfields=$((badfields + 1))
done < <(sort -u "$OUT/traces")
total=$(sort -u "$OUT/traces" | grep -c . || true)
check "every request ($total) left an audit line" [ "$missing" -eq 0 ]
check "no request left two audit lines" [ "$dup" -eq 0 ]
check "every audit line has ts, user, key_id, action, source_ip, result, status, trace_id" [ "$badfields" -eq 0 ]
check "every audit line is valid JSON" bash -c "jq -e . '$audit' >/dev/null"
check "refused requests are audited as failures" grep -q '"result":"failure","status":401' "$audit"
check "audit lines carry the source address" grep -q '"source_ip":"127.0.0.1"' "$audit"
check "failed authentications are in api.log with the source address" \
    grep -q 'authentication failed: reason=unknown_key source=127.0.0.1' "$FETCHML_VAR/log/api.log"

leaks=0
for k in "$FETCHML_ADMIN_KEY" "$FETCHML_RESEARCHER_KEY" "$FETCHML_ANALYST_KEY"; do
    for s in "$k" "$(hash_of "$k")"; do
        if grep -rqiF -- "$s" "$FETCHML_VAR/log"; then leaks=$((leaks + 1)); fi
    done
done
check "no log under var/log contains a demo key or its SHA-256" [ "$leaks" -eq 0 ]
check "log files exist for app, audit, nginx and Redis" bash -c "for f in api.log audit.log nginx-access.log nginx-error.log redis.log; do [ -f '$FETCHML_VAR/log/'\$f ] || exit 1; done"

as researcher GET "/v1/tasks/$FETCHML_ANALYST_KEY?password=hunter2-canary"
check "nginx's access log records no path or query string" bash -c "! grep -qF -- 'hunter2-canary' '$FETCHML_VAR/log/nginx-access.log' && ! grep -qF -- '$FETCHML_ANALYST_KEY' '$FETCHML_VAR/log/nginx-access.log'"
