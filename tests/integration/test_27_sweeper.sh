# The sweeper (fcgi-app/sweeper.c): expired leases end on their own, with no
# request made, audited as SWEEP and published as events; the sweeper is
# one child of the master per generation, respawned when killed, replaced on
# reload. A task is made running with an expired lease directly in Redis
# (docs/redis-layout.md), as a worker that died after its claim leaves it.

master=$(cat "$FETCHML_VAR/run/fcgi.pid")
audit=$FETCHML_VAR/log/audit.log
P=fetchml:
sweeper_pid() { pgrep -x -P "$master" fetchml-sweeper; }
one_sweeper() { [ "$(sweeper_pid | wc -l)" -eq 1 ]; }
check "the master runs one sweeper (pgrep -x fetchml-sweeper)" wait_for 5 one_sweeper
first=$(sweeper_pid)
# It serves no requests, so it does not hold the FastCGI socket: only the
# master and the workers do (ss -xlp lists every process holding it).
t27_holders() { ss -xlpn 2>/dev/null | grep -F "$FETCHML_VAR/run/fcgi.sock"; }
check "the master holds the FastCGI socket (ss -xlp sees its holders)" \
    bash -c "$(declare -f t27_holders); t27_holders | grep -q 'pid=$master,'"
check "the sweeper does not hold the FastCGI socket" \
    bash -c "$(declare -f t27_holders); ! t27_holders | grep -q 'pid=$first,'"

# expire ID ATTEMPTS [CANCEL]: the task is running, held by researcher/gpu0,
# its lease ended a second ago (Redis clock).
expire() {
    local id=$1 now lease seq
    now=$(rcli TIME | head -1)
    lease=$(((now - 1) * 1000))
    seq=$(rcli HGET "${P}task:$id" seq)
    rcli HSET "${P}task:$id" status running worker_id researcher/gpu0 attempts "$2" \
        lease_ms "$lease" started_ms "$((lease - 60000))" >/dev/null
    [ -z "${3:-}" ] || rcli HSET "${P}task:$id" cancel_requested 1 >/dev/null
    rcli ZREM "${P}queue" "$id" >/dev/null
    rcli ZREM "${P}status:queued" "$id" >/dev/null
    rcli ZREM "${P}user:researcher:status:queued" "$id" >/dev/null
    rcli ZADD "${P}status:running" "$seq" "$id" >/dev/null
    rcli ZADD "${P}user:researcher:status:running" "$seq" "$id" >/dev/null
    rcli ZADD "${P}leases" "$lease" "$id" >/dev/null
}
new_task() {
    as researcher POST /v1/tasks -H 'Content-Type: application/json' -d "{\"job_name\":\"$1\"}"
    json .id
}
status_in_redis() { [ "$(rcli HGET "${P}task:$1" status)" = "$2" ]; }
# sweep_is ID JQ: task ID has one SWEEP record, and it passes the jq test.
sweep_is() {
    jq -ne --arg a "SWEEP /v1/tasks/$1" "[inputs | select(.action == \$a)] | length == 1 and (.[0] | $2)" \
        "$audit" >/dev/null
}

T1=$(new_task sweep-requeue)
T2=$(new_task sweep-exhausted)
T3=$(new_task sweep-cancel)
# A subscriber to the events channel (line-buffered: it is killed at the end, not ended).
REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$FETCHML_VAR/dev/redis-ops.env") \
    timeout 20 stdbuf -oL redis-cli --no-auth-warning --user ops -s "$FETCHML_VAR/run/redis.sock" \
    SUBSCRIBE "${P}events" >"$OUT/t27-events" 2>&1 &
t27_sub=$!
sleep 0.3
expire "$T1" 1
expire "$T2" 3
expire "$T3" 1 cancel
t0=${EPOCHREALTIME/./}
# Only Redis is looked at until the sweeper has acted: no request reaches the app.
check "an expired lease is requeued within 2.5 s, with no request made" \
    wait_for 2.5 status_in_redis "$T1" queued
echo "  (took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms; jobs.sweep_interval_ms is 1000)"
check "... with attempts exhausted (3 of 3) it fails" wait_for 2.5 status_in_redis "$T2" failed
check "... with cancellation requested it is cancelled" wait_for 2.5 status_in_redis "$T3" cancelled

as researcher GET "/v1/tasks/$T1"
check "the requeued task keeps its attempts, loses its worker and lease" \
    bash -c "jq -e '.status==\"queued\" and .attempts==1 and .worker_id==null and .lease_expires_at==null' '$B' >/dev/null"
check "... and is back in the queue" bash -c "[ -n \"\$(rcli ZSCORE ${P}queue '$T1')\" ]"
as researcher GET "/v1/tasks/$T2"
check "the exhausted task is failed with error \"lease expired\"" \
    bash -c "jq -e '.status==\"failed\" and .error==\"lease expired\" and (.ended_at|type)==\"string\"' '$B' >/dev/null"

check "the requeue is audited: SWEEP, user null, source_ip null, reason requeued, task_id, worker" \
    sweep_is "$T1" ".user==null and .key_id==null and .source_ip==null and .status==200 and
        .result==\"success\" and .reason==\"requeued\" and .task_id==\"$T1\" and
        .worker==\"researcher/gpu0\" and .resource==\"/v1/tasks/$T1\""
check "... the failure with reason lease_expired" sweep_is "$T2" '.reason=="lease_expired"'
check "... the cancel with reason cancelled" sweep_is "$T3" '.reason=="cancelled"'
check "the trail still verifies" bash -c "'$FETCHML_BUILD/fetchml-admin' audit-verify '$audit' >/dev/null"
kill "$t27_sub" 2>/dev/null
wait "$t27_sub" 2>/dev/null
check "the events were published on ${P}events (task.requeued, task.failed, task.cancelled)" \
    bash -c "grep -q '\"type\":\"task.requeued\".*\"$T1\"' '$OUT/t27-events' &&
             grep -q '\"type\":\"task.failed\".*\"$T2\"' '$OUT/t27-events' &&
             grep -q '\"type\":\"task.cancelled\".*\"$T3\"' '$OUT/t27-events'"

# Fail closed: a transition whose audit record cannot be written is undone,
# and the next pass after the trail is back makes it (the path is a directory
# for a while: reopening fails, so every record is refused).
T6=$(new_task sweep-unaudited)
mv "$audit" "$audit.t27"
mkdir "$audit"
expire "$T6" 1
sleep 2.5
check "with the audit trail unwritable an expired lease stays (undone, not lost)" \
    bash -c "[ \"\$(rcli HGET ${P}task:$T6 status)\" = running ] && [ -n \"\$(rcli ZSCORE ${P}leases $T6)\" ]"
check "... and api.log says why" grep -q "sweeper: audit record for task $T6 could not be written" \
    "$FETCHML_VAR/log/api.log"
rmdir "$audit"
mv "$audit.t27" "$audit"
check "once it is back, the next pass requeues it" wait_for 2.5 status_in_redis "$T6" queued
check "... audited once" sweep_is "$T6" '.reason=="requeued"'

# Redis hung (SIGSTOP) for 3 s: the sweeper waits for the interval between
# passes (its breaker fails them at once), warns in api.log, and sweeps again
# once Redis answers.
t27_redis=$(cat "$FETCHML_VAR/run/redis.pid")
t27_sweeper=$(sweeper_pid)
t27_cpu() { awk '{ print $14 + $15 }' "/proc/$t27_sweeper/stat"; }
t27_cpu0=$(t27_cpu)
kill -STOP "$t27_redis"
trap 'kill -CONT "$t27_redis" 2>/dev/null' EXIT
sleep 3
kill -CONT "$t27_redis"
t27_ticks=$(($(t27_cpu) - t27_cpu0))
check "with Redis hung for 3 s the sweeper does not spin ($t27_ticks ticks of CPU, < 50)" \
    [ "$t27_ticks" -lt 50 ]
check "... and api.log says it cannot sweep" grep -q "sweeper: cannot sweep expired leases" \
    "$FETCHML_VAR/log/api.log"
T7=$(new_task sweep-after-hang)
expire "$T7" 1
check "once Redis answers again it sweeps" wait_for 2.5 status_in_redis "$T7" queued

# Supervision: a killed sweeper is respawned (not a crash loop: no backoff).
kill -KILL "$first"
respawned() { one_sweeper && [ "$(sweeper_pid)" != "$first" ]; }
check "a sweeper killed with SIGKILL is respawned" wait_for 5 respawned
check "api.log records it" grep -q "sweeper $first exited unexpectedly" "$FETCHML_VAR/log/api.log"
T4=$(new_task sweep-after-respawn)
expire "$T4" 1
check "the new sweeper sweeps" wait_for 2.5 status_in_redis "$T4" queued

# A reload replaces it with the new generation's.
second=$(sweeper_pid)
replaced() { one_sweeper && [ "$(sweeper_pid)" != "$second" ] && ! kill -0 "$second" 2>/dev/null; }
check "a reload replaces the sweeper" reload_until replaced
T5=$(new_task sweep-after-reload)
expire "$T5" 1
check "the new generation's sweeper sweeps" wait_for 2.5 status_in_redis "$T5" queued
for t in "$T1" "$T2" "$T3" "$T4" "$T5" "$T6" "$T7"; do as admin DELETE "/v1/tasks/$t"; done
