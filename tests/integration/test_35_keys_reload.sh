# Keys and reload (README "Keys, roles and reload"): rotation with a grace
# expiry, revocation on reload, and reloads under load that drop nothing.

OLDKEY=old-rotating-key-0000000000000000000000
NEWKEY=new-rotating-key-0000000000000000000000
TEMPKEY=temporary-key-00000000000000000000000000
LOADKEY=load-key-000000000000000000000000000000
grace_end=$(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%SZ)
users() { # users [EXTRA]: the rotating user, a loader, and whatever else is given
    printf '    rotator:\n      roles: ["analyst"]\n      keys:\n'
    printf '        - { hash: "%s", label: "new" }\n' "$(hash_of "$NEWKEY")"
    printf '        - { hash: "%s", expires: "%s", label: "old" }\n' "$(hash_of "$OLDKEY")" "$grace_end"
    printf '    loader:\n      hash: "%s"\n      roles: ["analyst"]\n' "$(hash_of "$LOADKEY")"
    printf '      rate_limit: { requests_per_minute: 1000000, burst: 1000000 }\n'
    printf '%s' "${1:-}"
}
temp_user=$(printf '    temp:\n      hash: "%s"\n      roles: ["analyst"]\n' "$(hash_of "$TEMPKEY")")

write_config extra_users="$(users "$temp_user")"
temp_ok() { as "$TEMPKEY" GET /v1/whoami; status_is 200; }
check "reload adds a rotating user, a loader and a temporary user" reload_until temp_ok

as "$OLDKEY" GET /v1/whoami
check "during the grace period the old key works" status_is 200
as "$NEWKEY" GET /v1/whoami
check "... and so does the new one" status_is 200

# Revocation: the temporary user leaves the file; within 1 s of the reload its key is refused.
write_config extra_users="$(users)"
"$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
sleep 0.3
as "$TEMPKEY" GET /v1/whoami
check "a key removed from the file is refused (401) within 1 s of the reload" status_is 401
check "... as an unknown key in the audit trail" grep -q "\"trace_id\":\"$TRACE\".*\"reason\":\"unknown_key\"" "$FETCHML_VAR/log/audit.log"

# Reloads under a bounded load: 4 clients for ~20 s (60 s at most) while 10
# reloads happen; every answer is 200 or 429.
codes=$OUT/load-codes
: >"$codes"
urls=()
for i in $(seq 50); do urls+=(-o /dev/null "$BASE/v1/whoami"); done
reloads_logged() { grep -c 'configuration reloaded' "$FETCHML_VAR/log/api.log" || true; }
reloads_before=$(reloads_logged)
load_until=$((SECONDS + 60))
rm -f "$OUT/stop-load"
for c in 1 2 3 4; do
    (
        while [ $SECONDS -lt $load_until ] && [ ! -e "$OUT/stop-load" ]; do
            curl -sk -w '%{http_code}\n' -H "X-API-Key: $LOADKEY" "${urls[@]}" >>"$codes.$c" 2>/dev/null ||
                echo "curl-exit-$?" >>"$codes.$c"
        done
    ) &
done
for r in $(seq 10); do
    sleep 1.8
    if [ $((r % 2)) -eq 0 ]; then
        write_config extra_users="$(users "$temp_user")"
    else
        write_config extra_users="$(users)"
    fi
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || echo "reload $r failed"
done
# The last reload is signalled, not yet done: keep the load on until it is logged.
ten_reloads() { [ $(($(reloads_logged) - reloads_before)) -ge 10 ]; }
wait_for 5 ten_reloads
sleep 1
touch "$OUT/stop-load"
wait
cat "$codes".* >"$codes"
total=$(grep -c . "$codes" || true)
bad=$(grep -cvE '^(200|429)$' "$codes" || true)
reloads=$(($(reloads_logged) - reloads_before))
check "the load made many requests ($total)" [ "$total" -ge 1000 ]
check "zero 5xx and zero connection errors across 10 reloads ($bad bad of $total)" [ "$bad" -eq 0 ]
check "all 10 reloads took effect ($reloads logged)" [ "$reloads" -eq 10 ]
grep -vE '^(200|429)$' "$codes" | sort | uniq -c | head -5

# Revocation under load: once a worker of the new generation has refused the
# removed key, no worker of the old one answers for it again, although busy
# old workers find a connection waiting at every accept (they stop before
# their next request, not after a run of them). The load keeps more requests
# in flight than there are workers (wrk, 32 connections), so that the listen
# queue is never empty. Bounded: 12 s.
write_config extra_users="$(users "$temp_user")"
check "reload brings the temporary user back" reload_until temp_ok
timeout 20 wrk -t2 -c32 -d12s -H "X-API-Key: $LOADKEY" "$BASE/v1/whoami" >"$OUT/t35-wrk" 2>&1 &
t35_wrk=$!
sleep 2
write_config extra_users="$(users)"
"$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 &
temp_refused() { as "$TEMPKEY" GET /v1/whoami; status_is 401; }
wait_for 10 temp_refused
after=$OUT/t35-after-revoke
for _ in $(seq 40); do
    curl -sk -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $TEMPKEY" "$BASE/v1/whoami" >>"$after"
done
kill "$t35_wrk" 2>/dev/null || true
wait "$t35_wrk" 2>/dev/null || true
wait
check "under load, after the first refusal the removed key is refused every time ($(sort "$after" | uniq -c | tr -s ' \n' ' '))" \
    [ "$(grep -c '^401$' "$after")" -eq 40 ]

# After the grace period, the old key is refused as expired; the new one still works.
grace_over() { [ "$(date -u +%s)" -gt "$(date -u -d "$grace_end" +%s)" ]; }
wait_for 60 grace_over
as "$OLDKEY" GET /v1/whoami
check "after its expiry the old key is refused (401)" status_is 401
check "... audited as expired" grep -q "\"trace_id\":\"$TRACE\".*\"reason\":\"expired\"" "$FETCHML_VAR/log/audit.log"
as "$NEWKEY" GET /v1/whoami
check "the new key keeps working" status_is 200

# fetchml-admin rotate prints the new key and a keys: list with the old key on a grace expiry.
out=$(REDIS_PASSWORD=x "$FETCHML_BUILD/fetchml-admin" rotate -c "$FETCHML_VAR/dev/config.yaml" loader --grace 2d)
newkey=$(sed -n 's/^key: //p' <<<"$out")
old_hash=$(hash_of "$LOADKEY")
new_hash=$(hash_of "$newkey")
prefixed() { [[ $newkey =~ ^fetchml_[0-9a-f]{72}$ ]]; }
keeps_old() { grep -A1 -F "hash: \"$old_hash\"" <<<"$out" | grep -q 'expires: "'; }
lists_new() { grep -qF "hash: \"$new_hash\"" <<<"$out"; }
check "rotate prints a new prefixed key" prefixed
check "rotate keeps the old key with an expires" keeps_old
check "rotate lists the new key's hash" lists_new

write_config
reload_until true
