# The journal (P journal, lib/store/tasks.h): every transition records itself
# in its own script; whoever writes its audit record acknowledges it, and the
# sweeper's reconciler audits (RECONCILE) and announces what nobody
# acknowledged after a 10 s grace: a caller killed before its record, or a
# command that timed out while Redis ran it later (Redis hung).

P=fetchml:
t29_audit=$FETCHML_VAR/log/audit.log
t29_json='Content-Type: application/json'
t29_redis=$(cat "$FETCHML_VAR/run/redis.pid")
trap 'kill -CONT "$t29_redis" 2>/dev/null' EXIT
t29_reconciled() { jq -c 'select(.action | startswith("RECONCILE "))' "$t29_audit"; }
t29_in_journal() { rcli ZRANGE "${P}journal" 0 -1 | grep -qF "$1"; }
t29_new() { # t29_new NAME: researcher queues a task; its id in T29_ID
    as researcher POST /v1/tasks -H "$t29_json" -d "{\"job_name\":\"$1\"}"
    T29_ID=$(json .id)
}

# --- (c) normal traffic is acknowledged ---------------------------------------------------
t29_none_reconciled() { [ -z "$(t29_reconciled)" ]; }
check "the earlier files' traffic left no RECONCILE record (every transition was acknowledged)" \
    t29_none_reconciled
t29_new journal-normal
t29_a=$T29_ID
as worker POST /v1/worker/claim
t29_claimed=$(json .id)
as worker POST "/v1/tasks/$t29_claimed/heartbeat" -H "$t29_json" -d '{"progress":5}'
as worker POST "/v1/tasks/$t29_claimed/complete" -H "$t29_json" -d '{"status":"completed"}'
t29_new journal-cancel
t29_b=$T29_ID
as researcher POST "/v1/tasks/$t29_b/cancel"
as researcher DELETE "/v1/tasks/$t29_b"
t29_acked() { ! t29_in_journal "$t29_a" && ! t29_in_journal "$t29_b" && ! t29_in_journal "$t29_claimed"; }
check "create, claim, heartbeat, complete, cancel, delete: none left in ${P}journal" \
    wait_for 2 t29_acked

# --- (a) a member nobody acknowledged is reconciled ---------------------------------------
t29_new journal-planted
t29_p=$T29_ID
t29_trace=t29-$(openssl rand -hex 8)
t29_old=$(($(rcli TIME | head -1) * 1000 - 20000))
t29_member="$t29_old $t29_p task.started $t29_trace researcher/gpu9"
REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$FETCHML_VAR/dev/redis-ops.env") \
    timeout 20 stdbuf -oL redis-cli --no-auth-warning --user ops -s "$FETCHML_VAR/run/redis.sock" \
    SUBSCRIBE "${P}events" >"$OUT/t29-events" 2>&1 &
t29_sub=$!
wait_for 3 grep -qs '^subscribe' "$OUT/t29-events"
rcli ZADD "${P}journal" "$t29_old" "$t29_member" >/dev/null
t29_record() { # t29_record JQ: one RECONCILE record passes the test
    [ "$(t29_reconciled | jq -c "select($1)" | wc -l)" = 1 ]
}
check "a planted member older than the grace becomes a RECONCILE record within 3 s" \
    wait_for 3 t29_record ".task_id==\"$t29_p\""
check "... named by the original trace id and actor, user null, status 200, its event as reason" \
    t29_record ".action==\"RECONCILE /v1/tasks/$t29_p\" and .trace_id==\"$t29_trace\" and
        .worker==\"researcher/gpu9\" and .user==null and .status==200 and
        .reason==\"unacknowledged task.started\" and .resource==\"/v1/tasks/$t29_p\""
check "... and is removed from ${P}journal" wait_for 2 bash -c "! rcli ZSCORE '${P}journal' '$t29_member' | grep -q ."
check "... and its event published with the task" \
    wait_for 2 grep -q "\"type\":\"task.started\".*\"id\":\"$t29_p\"" "$OUT/t29-events"
kill "$t29_sub" 2>/dev/null
wait "$t29_sub" 2>/dev/null
check "the trail still verifies" bash -c "'$FETCHML_BUILD/fetchml-admin' audit-verify '$t29_audit' >/dev/null"
as admin DELETE "/v1/tasks/$t29_p"

# --- (b) Redis hangs while the sweeper's script waits: it runs later, unacknowledged -------
t29_master=$(cat "$FETCHML_VAR/run/fcgi.pid")
t29_sweeper() { pgrep -x -P "$t29_master" fetchml-sweeper; }
t29_replaced() { # a new generation's sweeper, the old one gone
    [ "$(t29_sweeper | wc -l)" -eq 1 ] && [ "$(t29_sweeper)" != "$1" ] && ! kill -0 "$1" 2>/dev/null
}
write_config 'jobs={ lease_seconds: 2, max_attempts: 3, sweep_interval_ms: 200 }'
check "reload with jobs.lease_seconds 2" reload_until t29_replaced "$(t29_sweeper)"
sleep 1 # the new sweeper has run passes: its scripts are loaded
# Tasks other files left queued would be claimed first: claim and complete them.
for _ in $(seq 200); do
    as worker POST /v1/worker/claim
    status_is 200 || break
    as worker POST "/v1/tasks/$(json .id)/complete" -H "$t29_json" -d '{"status":"completed"}'
done
t29_ids=()
for n in 1 2 3; do
    t29_new "journal-hang-$n"
    t29_ids+=("$T29_ID")
done
for n in 1 2 3; do as worker POST /v1/worker/claim; done
t29_running() {
    local id
    for id in "${t29_ids[@]}"; do [ "$(rcli HGET "${P}task:$id" status)" = running ] || return 1; done
}
check "three tasks running, claimed through the API, 2 s leases" t29_running
kill -STOP "$t29_redis"
sleep 4
kill -CONT "$t29_redis"
check "api.log says the sweeper's call failed while Redis hung" \
    grep -q "sweeper: cannot sweep expired leases" "$FETCHML_VAR/log/api.log"
t29_requeued() {
    local id
    for id in "${t29_ids[@]}"; do [ "$(rcli HGET "${P}task:$id" status)" = queued ] || return 1; done
}
check "once Redis resumes, the leases are swept (requeued)" wait_for 3 t29_requeued
t29_audited() { # every requeued task has a SWEEP or RECONCILE record of it
    local id
    for id in "${t29_ids[@]}"; do
        jq -ne --arg id "$id" '[inputs | select(.task_id == $id and
            ((.action | startswith("SWEEP ")) and .reason == "requeued" or
             (.action | startswith("RECONCILE ")) and .reason == "unacknowledged task.requeued"))]
            | length > 0' "$t29_audit" >/dev/null || return 1
    done
}
check "within the grace (10 s) and 4 s, every requeue has a SWEEP or RECONCILE record" \
    wait_for 14 t29_audited
echo "  (RECONCILE records so far: $(t29_reconciled | wc -l))"
t29_journal_empty() { [ "$(rcli ZCARD "${P}journal")" = 0 ]; }
check "... and the journal ends empty" wait_for 3 t29_journal_empty
check "the trail still verifies" bash -c "'$FETCHML_BUILD/fetchml-admin' audit-verify '$t29_audit' >/dev/null"
for id in "${t29_ids[@]}"; do as admin DELETE "/v1/tasks/$id"; done

write_config
check "reload with the test config" reload_until t29_replaced "$(t29_sweeper)"
