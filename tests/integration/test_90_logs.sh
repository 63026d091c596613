# Audit trail and logs: one hash-chained record per request, no secret in any
# log, fetchml-admin's commands. Runs last: it checks every request the earlier
# tests made.

audit=$FETCHML_VAR/log/audit.log
missing=0 dup=0 badfields=0
while read -r t; do
    [ -n "$t" ] || continue
    n=$(grep -c "\"trace_id\":\"$t\"" "$audit" || true)
    [ "$n" -eq 0 ] && missing=$((missing + 1))
    [ "$n" -gt 1 ] && dup=$((dup + 1)) && grep "\"trace_id\":\"$t\"" "$audit" | jq -c '[.action, .status, .reason]' | sed 's/^/    two lines: /' | head -4
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
for k in "$FETCHML_ADMIN_KEY" "$FETCHML_RESEARCHER_KEY" "$FETCHML_ANALYST_KEY" "$FETCHML_WORKER_KEY"; do
    for s in "$k" "$(hash_of "$k")"; do
        if grep -rqiF -- "$s" "$FETCHML_VAR/log"; then leaks=$((leaks + 1)); fi
    done
done
check "no log under var/log contains a demo key or its SHA-256" [ "$leaks" -eq 0 ]
check "log files exist for app, audit, $FRONT and Redis" bash -c "for f in api.log audit.log $FRONT-access.log $FRONT-error.log redis.log; do [ -f '$FETCHML_VAR/log/'\$f ] || exit 1; done"

as researcher GET "/v1/tasks/$FETCHML_ANALYST_KEY?password=hunter2-canary"
check "$FRONT's access log records no path or query string" bash -c "! grep -qF -- 'hunter2-canary' '$FRONT_ACCESS_LOG' && ! grep -qF -- '$FETCHML_ANALYST_KEY' '$FRONT_ACCESS_LOG'"

# fetchml-admin audit-verify over the trail this run wrote (at least 12 records).
for i in $(seq 12); do as analyst GET /v1/whoami; done
adm=$FETCHML_BUILD/fetchml-admin
check "audit-verify accepts the intact trail" bash -c "'$adm' audit-verify '$audit' >/dev/null"
cp "$audit" "$OUT/edited.log"
sed -i '3s/"status":[0-9]*/"status":200/; 3s/"result":"failure"/"result":"success"/' "$OUT/edited.log"
sed -i '5s/"user":null/"user":"admin"/; 5s/"user":"[a-z]*"/"user":"admin"/' "$OUT/edited.log"
out=$("$adm" audit-verify "$OUT/edited.log" 2>&1)
check "an edited record is caught, naming its line" bash -c "! '$adm' audit-verify '$OUT/edited.log' 2>/dev/null && grep -Eq 'edited.log:(3|5): seq [0-9]+: hash mismatch' <<<'$out'"
sed '7d' "$audit" >"$OUT/deleted.log"
check "a deleted record is caught" bash -c "! '$adm' audit-verify '$OUT/deleted.log' 2>/dev/null"
awk 'NR==8{l=$0; next} NR==9{print; print l; next} {print}' "$audit" >"$OUT/swapped.log"
check "two swapped records are caught" bash -c "! '$adm' audit-verify '$OUT/swapped.log' 2>/dev/null"
tail -n +4 "$audit" >"$OUT/cut.log"
check "records cut from the start are caught" bash -c "! '$adm' audit-verify '$OUT/cut.log' 2>/dev/null"
check "... and accepted with --partial (a rotated trail)" bash -c "'$adm' audit-verify --partial '$OUT/cut.log' >/dev/null"
head -n 10 "$audit" >"$OUT/part1.log"
tail -n +11 "$audit" >"$OUT/part2.log"
check "the chain verifies across files" bash -c "'$adm' audit-verify '$OUT/part1.log' '$OUT/part2.log' >/dev/null"
check "files in the wrong order are caught" bash -c "! '$adm' audit-verify '$OUT/part2.log' '$OUT/part1.log' 2>/dev/null"

# A head recorded elsewhere catches what the chain alone cannot: a cut end, a recomputed chain.
headline=$("$adm" audit-verify "$OUT/part1.log" | sed -n 's/.* head \([0-9]*:[0-9a-f]*\)$/\1/p')
check "audit-verify prints the head as SEQ:HASH" bash -c "[[ '$headline' =~ ^10:[0-9a-f]{64}$ ]]"
check "--head: the full trail contains the recorded head" bash -c "'$adm' audit-verify --head '$headline' '$audit' >/dev/null"
head -n 8 "$audit" >"$OUT/cut-end.log"
check "--head: records removed from the end are caught" bash -c "! '$adm' audit-verify --head '$headline' '$OUT/cut-end.log' 2>/dev/null"
forged=$OUT/forged.log
python3 - "$audit" "$forged" <<'PY'
import hashlib, json, sys
prev, done = "0" * 64, False
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for n, line in enumerate(f, 1):
        line = line.rstrip("\n")
        body = line[: line.index(',"hash":"')]
        # rewrite a request's record (line 4 or the next, not a checkpoint), then recompute the chain
        if n >= 4 and not done and '"source_ip":"127.0.0.1"' in body:
            body = body.replace('"source_ip":"127.0.0.1"', '"source_ip":"10.6.6.6"')
            done = True
        rec = json.loads(body + "}")
        body = body[: body.index(',"prev_hash":"')] + ',"prev_hash":"%s"' % prev
        prev = hashlib.sha256(body.encode()).hexdigest()
        out.write(body + ',"hash":"%s"}\n' % prev)
PY
check "a recomputed chain passes on its own (the limit of a bare hash chain)" bash -c "'$adm' audit-verify '$forged' >/dev/null"
check "--head: a recomputed chain is caught" bash -c "! '$adm' audit-verify --head '$headline' '$forged' 2>/dev/null"

# The other admin commands.
check "fetchml-admin hash reads stdin and matches sha256sum" \
    bash -c "[ \"\$(printf abc | '$adm' hash)\" = \"\$(printf abc | sha256sum | cut -d' ' -f1)\" ]"
check "check-config accepts the running config (exit 0)" bash -c "REDIS_PASSWORD=x '$adm' check-config '$FETCHML_VAR/dev/config.yaml' >/dev/null"
printf 'auth:\n  enabled: false\n' >"$OUT/bad.yaml"
out=$("$adm" check-config "$OUT/bad.yaml" 2>&1)
check "check-config refuses a bad config (exit 1) with file:line:col" \
    bash -c "! '$adm' check-config '$OUT/bad.yaml' >/dev/null 2>&1 && grep -q 'bad.yaml:2:12: auth.enabled: false is refused' <<<'$out'"
kg=$("$adm" keygen carol analyst)
key=$(sed -n 's/^key: //p' <<<"$kg")
keygen_ok() { [[ $key =~ ^fetchml_[0-9a-f]{72}$ ]] && grep -qF "hash: \"$(hash_of "$key")\"" <<<"$kg"; }
check "keygen prints a 256-bit fetchml_ key and the hash the config needs" keygen_ok
as "$key" GET /v1/whoami
check "a generated key that is not configured -> 401" status_is 401
if [ "${key: -1}" = 0 ]; then badkey=${key%?}1; else badkey=${key%?}0; fi
as "$badkey" GET /v1/whoami
check "a generated key with a broken checksum -> 401" status_is 401
# keygen NAME worker: a job worker's key; once configured it has jobs:run (and jobs:read).
kg=$("$adm" keygen gpu-1 worker 2>"$OUT/keygen.err")
wkey=$(sed -n 's/^key: //p' <<<"$kg")
check "keygen NAME worker prints the snippet with roles: [\"worker\"] and no note" \
    bash -c "grep -qxF '      roles: [\"worker\"]' <<<'$kg' && [ ! -s '$OUT/keygen.err' ]"
out=$("$adm" keygen gpu-2 workers 2>&1 >/dev/null)
check "keygen with a role that is not built in notes it on stderr (exit 0)" \
    bash -c "'$adm' keygen gpu-2 workers >/dev/null 2>&1 && grep -qF '\"workers\" is not a built-in role' <<<'$out'"
write_config extra_users="$(sed -n '/^    gpu-1:/,$p' <<<"$kg")"
reload_until bash -c "[ \"\$(curl -sk -o /dev/null -w '%{http_code}' -H 'X-API-Key: $wkey' '$BASE/v1/whoami')\" = 200 ]"
as "$wkey" GET /v1/whoami
check "the configured worker key's whoami lists jobs:run" json '.permissions | index("jobs:run")'
write_config && reload_until true
