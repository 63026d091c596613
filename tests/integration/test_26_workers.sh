# Job workers through the real stack (SPEC 4.1, README "Running a job worker"):
# queue -> claim -> heartbeat -> complete -> the owner sees the result, every
# step audited with its task and worker; 8 scripts/example-worker.py
# processes over 500 tasks claim each exactly once; a worker killed mid-task
# loses its task to the sweeper and another worker finishes it; attempts run
# out -> failed "lease expired"; only the lease holder heartbeats or
# completes (a 409 shows nothing of the task); cancel while running; SIGTERM
# lets the example worker finish its task and exit, an idle one back off; quota,
# size and response limits; a full Redis refuses a new task with a clean 503
# and evicts nothing; RBAC of the worker role.

t26_wa=t26wa-$(openssl rand -hex 12) # worker w26a
t26_wb=t26wb-$(openssl rand -hex 12) # worker w26b
t26_r=t26r-$(openssl rand -hex 12)   # researcher r26, whose tasks these are
t26_worker=$ROOT/scripts/example-worker.py
t26_audit=$FETCHML_VAR/log/audit.log
t26_json='Content-Type: application/json'
t26_gen=0
# t26_config [OVERRIDE...]: the test config, these users, a short lease and a
# quick sweeper, then the overrides; reloads and waits until r26's burst
# says that the new config answers.
t26_config() {
    local u rate
    t26_gen=$((t26_gen + 1))
    rate="rate_limit: { requests_per_minute: 1000000, burst: $((100000 + t26_gen)) }"
    u=$'    w26a:\n      hash: "'"$(hash_of "$t26_wa")"$'"\n      roles: ["worker"]\n      '"$rate"
    u+=$'\n    w26b:\n      hash: "'"$(hash_of "$t26_wb")"$'"\n      roles: ["worker"]\n      '"$rate"
    u+=$'\n    r26:\n      hash: "'"$(hash_of "$t26_r")"$'"\n      roles: ["researcher"]\n      '"$rate"
    write_config extra_users="$u" 'jobs={ lease_seconds: 2, max_attempts: 2, sweep_interval_ms: 200 }' "$@" &&
        reload_until t26_config_is $((100000 + t26_gen))
}
t26_config_is() { as "$t26_r" GET /v1/whoami && json_is .rate_limit.burst "$1"; }
t26_new() { # t26_new BODY: r26 queues a task; its id in T26_ID
    as "$t26_r" POST /v1/tasks -H "$t26_json" -d "$1"
    T26_ID=$(json .id)
}
t26_task() { as "$t26_r" GET "/v1/tasks/$1"; } # the task as its owner sees it
t26_task_is() { t26_task "$1" && status_is 200 && jq -e "$2" "$B" >/dev/null; }
# t26_run KEY LOG [OPTION...] -- PROGRAM...: an example worker in the background (pid in
# T26_PID); whatever is still running when the file ends is stopped.
t26_pids_all=()
t26_run() {
    local key=$1 log=$2
    shift 2
    FETCHML_API_KEY=$key python3 "$t26_worker" --url "$BASE" \
        --cacert "$FETCHML_VAR/dev/tls.crt" "$@" 2>"$log" &
    T26_PID=$!
    t26_pids_all+=("$T26_PID")
}
t26_gone() { ! kill -0 "$1" 2>/dev/null; }
# Redis's memory limit as it was, should the file stop while Redis is made full.
t26_maxmem=$(rcli CONFIG GET maxmemory | sed -n 2p)
t26_policy=$(rcli CONFIG GET maxmemory-policy | sed -n 2p)
t26_cleanup() {
    local p
    for p in "${t26_pids_all[@]}"; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rcli CONFIG SET maxmemory "$t26_maxmem" >/dev/null
    rcli CONFIG SET maxmemory-policy "$t26_policy" >/dev/null
}
trap t26_cleanup EXIT
# t26_audited N ID JQ-CONDITION: exactly N audit lines of task ID match the condition
t26_audited() {
    [ "$(jq -c --arg id "$2" "select(.task_id == \$id and ($3))" "$t26_audit" | wc -l)" = "$1" ]
}

check "reload with two workers and a researcher of this file's own" t26_config

# Tasks other files left queued would be claimed first: a worker runs them all (true ignores args).
t26_run "$t26_wa" "$OUT/t26-drain.log" --poll 0.05 --exit-when-idle -- true
check "a worker drains what earlier files queued and exits when idle" wait_for 30 t26_gone "$T26_PID"
check "the example worker never prints its key" bash -c "! grep -qF '$t26_wa' '$OUT/t26-drain.log'"

# --- the whole lifecycle, by hand ----------------------------------------------------------
# A subscriber to the events channel (line-buffered; stopped after the lifecycle).
REDISCLI_AUTH=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$FETCHML_VAR/dev/redis-ops.env") \
    timeout 30 stdbuf -oL redis-cli --no-auth-warning --user ops -s "$FETCHML_VAR/run/redis.sock" \
    SUBSCRIBE fetchml:events >"$OUT/t26-events" 2>&1 &
t26_sub=$!
t26_pids_all+=("$t26_sub")
wait_for 3 grep -qs '^subscribe' "$OUT/t26-events"
t26_new '{"job_name":"t26-life","args":["--lr","0.1"],"priority":7}'
check "r26 queues a task -> 201 queued, attempts 0" \
    bash -c "[ $STATUS = 201 ] && jq -e '.status==\"queued\" and .attempts==0 and .cancel_requested==false and .worker_id==null' '$B' >/dev/null"
t26_life=$T26_ID
as "$t26_wa" POST /v1/worker/claim
check "a claim with no body and no Content-Type -> 200, that task" \
    bash -c "[ $STATUS = 200 ] && [ -n '$t26_life' ] && jq -e '.id==\"$t26_life\"' '$B' >/dev/null"
check "the claimed task is running, held by w26a, attempt 1, with a lease" \
    bash -c "[ $STATUS = 200 ] && jq -e '.status==\"running\" and .worker_id==\"w26a\" and .attempts==1 and (.lease_expires_at|type)==\"string\" and (.started_at|type)==\"string\"' '$B' >/dev/null"
as "$t26_wa" POST /v1/worker/claim
check "the queue is empty -> 204 without a body" bash -c "[ $STATUS = 204 ] && [ ! -s '$B' ]"
as "$t26_wa" POST "/v1/tasks/$t26_life/heartbeat" -H "$t26_json" -d '{"progress":40,"metrics":{"loss":0.5}}'
check "heartbeat -> 200 with the lease, cancel_requested false and the task" \
    bash -c "[ $STATUS = 200 ] && jq -e '(.lease_expires_at|type)==\"string\" and .cancel_requested==false and .task.progress==40' '$B' >/dev/null"
as "$t26_wa" POST "/v1/tasks/$t26_life/heartbeat"
check "an empty heartbeat (no body, no Content-Type) -> 200" status_is 200
as "$t26_wa" POST "/v1/tasks/$t26_life/complete" -H "$t26_json" -d '{"status":"done"}'
check "complete with an unknown status -> 422" error_is 422 VALIDATION_ERROR
as "$t26_wa" POST "/v1/tasks/$t26_life/complete" -H "$t26_json" -d '{"status":"completed"}'
check "complete -> 200 completed with ended_at, the lease gone" \
    bash -c "[ $STATUS = 200 ] && jq -e '.status==\"completed\" and (.ended_at|type)==\"string\" and .lease_expires_at==null' '$B' >/dev/null"
check "the owner sees the result: completed by w26a, progress and metrics kept" \
    t26_task_is "$t26_life" '.status=="completed" and .worker_id=="w26a" and .progress==40 and .metrics.loss==0.5'
check "audited: the claim with its task and worker" \
    t26_audited 1 "$t26_life" '.action=="POST /v1/worker/claim" and .status==200 and .worker=="w26a"'
check "audited: the completion with its task and worker" \
    t26_audited 1 "$t26_life" '.action=="POST /v1/tasks/'"$t26_life"'/complete" and .status==200 and .worker=="w26a"'
check "audited: the create names its task" \
    t26_audited 1 "$t26_life" '.action=="POST /v1/tasks" and .status==201 and .user=="r26"'
as "$t26_wa" POST "/v1/tasks/$t26_life/complete" -H "$t26_json" -d '{"status":"completed"}'
check "completing it again -> 409" error_is 409 CONFLICT
# The event types of task $1 on the channel so far, in order, one line.
t26_events() { grep '^{' "$OUT/t26-events" | jq -r --arg id "$1" 'select(.task.id==$id) | .type' | paste -sd' '; }
t26_events_are() { [ "$(t26_events "$1")" = "$2" ]; }
check "each transition was published once, in order; the refused ones not at all" \
    wait_for 3 t26_events_are "$t26_life" "task.created task.started task.progress task.progress task.completed"
kill "$t26_sub" 2>/dev/null && wait "$t26_sub" 2>/dev/null

# --- only the holder -----------------------------------------------------------------------
t26_new '{"job_name":"t26-held"}'
t26_held=$T26_ID
as "$t26_wa" POST /v1/worker/claim -H "$t26_json" -d '{"worker":"gpu-1"}'
check "a named claim -> worker_id w26a/gpu-1" json_is .worker_id w26a/gpu-1
as "$t26_wb" POST "/v1/tasks/$t26_held/heartbeat"
check "another worker's heartbeat -> 409 CONFLICT" error_is 409 CONFLICT
check "... which shows nothing of the task" bash -c "! grep -q '$t26_held' '$B' && ! jq -e 'has(\"task\")' '$B' >/dev/null"
as "$t26_wb" POST "/v1/tasks/$t26_held/complete" -H "$t26_json" -d '{"status":"completed"}'
check "another worker's complete -> 409, nothing of the task" \
    bash -c "[ $STATUS = 409 ] && ! grep -q '$t26_held' '$B'"
as "$t26_wa" POST "/v1/tasks/$t26_held/heartbeat"
check "the same key without the worker's name is not the holder -> 409" error_is 409 CONFLICT
as "$t26_wa" POST "/v1/tasks/$t26_held/heartbeat?worker=gpu-1"
check "the holder, named as it claimed -> 200" status_is 200
as "$t26_wa" POST "/v1/tasks/00000000-0000-4000-8000-000000000000/heartbeat"
check "heartbeat of a task that does not exist -> 404" error_is 404 NOT_FOUND
check "the refused heartbeat and complete are audited with the task and the worker that tried" \
    t26_audited 2 "$t26_held" '.status==409 and .worker=="w26b"'
as "$t26_wa" POST "/v1/tasks/$t26_held/complete?worker=gpu-1" -H "$t26_json" \
    -d '{"status":"failed","error":"exit status 3"}'
check "the holder fails it with an error -> 200 failed" \
    bash -c "[ $STATUS = 200 ] && jq -e '.status==\"failed\" and .error==\"exit status 3\"' '$B' >/dev/null"

# --- RBAC of the worker role ---------------------------------------------------------------
t26_new '{"job_name":"t26-rbac"}'
t26_rbac=$T26_ID
as "$t26_wa" POST /v1/tasks -H "$t26_json" -d '{"job_name":"t26-by-worker"}'
check "a worker cannot create a task -> 403" error_is 403 FORBIDDEN
as "$t26_wa" POST "/v1/tasks/$t26_rbac/cancel"
check "a worker cannot cancel a task -> 403" error_is 403 FORBIDDEN
as "$t26_wa" DELETE "/v1/tasks/$t26_rbac"
check "a worker cannot delete a task -> 403" error_is 403 FORBIDDEN
as "$t26_wa" GET "/v1/tasks/$t26_rbac"
check "a worker reads another user's task -> 200" json_is .user r26
as "$t26_wa" GET "/v1/tasks?status=queued&limit=1000"
check "a worker lists every user's tasks" bash -c "jq -e --arg id '$t26_rbac' '.tasks|map(.id)|index(\$id)' '$B' >/dev/null"
as analyst POST /v1/worker/claim
check "an analyst cannot claim -> 403" error_is 403 FORBIDDEN
as researcher POST "/v1/tasks/$t26_rbac/heartbeat"
check "a researcher cannot heartbeat -> 403" error_is 403 FORBIDDEN
as researcher GET "/v1/tasks/$t26_rbac"
check "a researcher still cannot read r26's task -> 404" status_is 404
as "$t26_r" POST "/v1/tasks/$t26_rbac/cancel"
check "its owner cancels it (queued -> cancelled)" json_is .status cancelled

# --- cancel while running, with the example worker -----------------------------------------
t26_new '{"job_name":"t26-cancel","args":["30"]}'
t26_cancel=$T26_ID
t26_run "$t26_wa" "$OUT/t26-cancel.log" --name c1 --heartbeat 0.3 --max-tasks 1 -- sleep
check "the example worker runs the task (sleep 30)" wait_for 10 t26_task_is "$t26_cancel" '.status=="running" and .worker_id=="w26a/c1"'
t26_child=$(pgrep -P "$T26_PID" || true)
as "$t26_r" POST "/v1/tasks/$t26_cancel/cancel"
check "cancel of a running task -> 200, still running, cancel_requested" \
    bash -c "[ $STATUS = 200 ] && jq -e '.status==\"running\" and .cancel_requested==true' '$B' >/dev/null"
check "the worker learns it from a heartbeat and completes it as cancelled" \
    wait_for 10 t26_task_is "$t26_cancel" '.status=="cancelled" and (.ended_at|type)=="string"'
check "the worker exits" wait_for 10 t26_gone "$T26_PID"
check "it stopped its program (sleep) first" bash -c "[ -n '$t26_child' ] && ! kill -0 '$t26_child' 2>/dev/null"
check "its log says why" grep -q 'cancel requested' "$OUT/t26-cancel.log"

# --- SIGTERM: the worker finishes the task in hand, claims nothing more, exits ---------------
t26_new '{"job_name":"t26-term","args":["1.5"]}'
t26_term=$T26_ID
t26_run "$t26_wa" "$OUT/t26-term.log" --name t1 --heartbeat 0.3 --poll 0.1 -- sleep
check "the example worker runs the task (sleep 1.5)" wait_for 10 t26_task_is "$t26_term" '.status=="running"'
kill -TERM "$T26_PID"
t26_new '{"job_name":"t26-after-term"}'
t26_after_term=$T26_ID
check "after SIGTERM it completes the task in hand and exits" \
    wait_for 10 t26_gone "$T26_PID"
check "... the task is completed" t26_task_is "$t26_term" '.status=="completed"'
check "... and it claimed nothing more" t26_task_is "$t26_after_term" '.status=="queued"'
as "$t26_r" POST "/v1/tasks/$t26_after_term/cancel"

# --- a worker killed mid-task; attempts exhausted (lease 2 s, 2 attempts, sweep every 200 ms) --
t26_new '{"job_name":"t26-killed","args":["30"],"priority":10}'
t26_killed=$T26_ID
t26_run "$t26_wa" "$OUT/t26-killed.log" --name k1 --max-tasks 1 -- sleep
check "worker A runs the task" wait_for 10 t26_task_is "$t26_killed" '.status=="running" and .worker_id=="w26a/k1"'
t26_child=$(pgrep -P "$T26_PID" || true)
kill -KILL "$T26_PID" $t26_child 2>/dev/null
wait "$T26_PID" 2>/dev/null
t26_run "$t26_wb" "$OUT/t26-other.log" --name other --poll 0.2 --max-tasks 1 -- true
t26_other=$T26_PID
check "A is killed (SIGKILL); after its lease the task is requeued and worker B finishes it: attempts 2" \
    wait_for 15 t26_task_is "$t26_killed" '.status=="completed" and .attempts==2 and .worker_id=="w26b/other"'
check "the sweeper audited the requeue (SWEEP, reason requeued, worker A)" \
    t26_audited 1 "$t26_killed" '(.action|startswith("SWEEP")) and .reason=="requeued" and .worker=="w26a/k1"'
wait_for 10 t26_gone "$t26_other" || kill "$t26_other" 2>/dev/null

t26_new '{"job_name":"t26-expire","priority":10}'
t26_expire=$T26_ID
as "$t26_wa" POST /v1/worker/claim
check "claimed once by a worker that then goes silent" json_is .id "$t26_expire"
check "the sweeper requeues it at its lease's end (nobody claims meanwhile), attempts 1" \
    wait_for 8 t26_task_is "$t26_expire" '.status=="queued" and .attempts==1 and .worker_id==null'
as "$t26_wb" POST "/v1/tasks/$t26_expire/heartbeat"
check "a heartbeat of a requeued task -> 409" error_is 409 CONFLICT
as "$t26_wb" POST /v1/worker/claim
check "claimed a second time: attempts 2" bash -c "[ $STATUS = 200 ] && jq -e '.attempts==2' '$B' >/dev/null"
check "attempts exhausted -> failed with \"lease expired\"" \
    wait_for 8 t26_task_is "$t26_expire" '.status=="failed" and .error=="lease expired" and .attempts==2'
check "the sweeper audited it (reason lease_expired)" t26_audited 1 "$t26_expire" '.reason=="lease_expired"'

# --- 8 workers, 500 tasks --------------------------------------------------------------------
t26_cfg=$OUT/t26-create.curl
mkdir -p "$OUT/t26-created"
for ((t26_i = 0; t26_i < 500; t26_i++)); do
    [ "$t26_i" -eq 0 ] || echo next
    printf 'url = "%s/v1/tasks"\nheader = "X-API-Key: %s"\nheader = "%s"\n' "$BASE" "$t26_r" "$t26_json"
    printf 'data = "{\\"job_name\\":\\"t26-many\\",\\"priority\\":%d}"\n' $((t26_i % 3 + 4))
    printf 'insecure\noutput = "%s/t26-created/%d.json"\n' "$OUT" "$t26_i"
done >"$t26_cfg"
timeout 60 curl -s --parallel --parallel-max 8 -K "$t26_cfg" 2>/dev/null
cat "$OUT"/t26-created/*.json | jq -r 'select(.id) | .id' | sort -u >"$OUT/t26-ids"
check "500 tasks queued" [ "$(wc -l <"$OUT/t26-ids")" = 500 ]
t26_start=$EPOCHREALTIME
t26_pids=()
for t26_i in 1 2 3 4 5 6 7 8; do
    t26_run "$t26_wa" "$OUT/t26-many-$t26_i.log" --name "m$t26_i" --poll 0.05 --exit-when-idle -- true
    t26_pids+=("$T26_PID")
done
t26_all_gone() {
    local p
    for p in "${t26_pids[@]}"; do t26_gone "$p" || return 1; done
}
check "8 workers empty the queue and exit (<= 50 s)" wait_for 50 t26_all_gone
echo "  (8 workers over 500 tasks: $(((${EPOCHREALTIME/./} - ${t26_start/./}) / 1000)) ms)"
# The ids claimed, one a line, sorted: from the workers' logs, from the audit trail.
grep -ho 'claimed [0-9a-f-]*' "$OUT"/t26-many-*.log | cut -d' ' -f2 | sort >"$OUT/t26-claims"
jq -r 'select(.action=="POST /v1/worker/claim" and .status==200) | .task_id' "$t26_audit" |
    sort | comm -12 - "$OUT/t26-ids" >"$OUT/t26-audit-claims"
t26_once() { [ "$(uniq -d "$1" | wc -l) $(uniq "$1" | comm -12 - "$OUT/t26-ids" | wc -l) $(wc -l <"$1")" = "0 500 500" ]; }
check "the workers' logs: each of the 500 claimed exactly once, nothing else" t26_once "$OUT/t26-claims"
check "the audit trail: each of the 500 claimed exactly once" t26_once "$OUT/t26-audit-claims"
as "$t26_r" GET "/v1/tasks?status=completed&limit=1000"
check "every one of the 500 ends completed, at its first attempt" \
    bash -c "jq -r '.tasks[] | select(.attempts==1) | .id' '$B' | sort | comm -12 - '$OUT/t26-ids' | wc -l | grep -qx 500"
check "the work was shared (more than one worker claimed)" \
    bash -c "[ \$(grep -l 'claimed' '$OUT'/t26-many-*.log | wc -l) -gt 1 ]"

# --- an idle worker backs off, and stops at once on SIGTERM ---------------------------------
t26_run "$t26_wa" "$OUT/t26-idle.log" --name idle --poll 0.2 -- true
sleep 3
kill -TERM "$T26_PID"
check "an idle worker exits promptly on SIGTERM" wait_for 2 t26_gone "$T26_PID"
t26_idle_claims=$(jq -c 'select(.action=="POST /v1/worker/claim" and .worker=="w26a/idle")' "$t26_audit" | wc -l)
check "an empty queue (204) makes it wait longer each time: $t26_idle_claims claims in 3 s, not 15" \
    bash -c "[ $t26_idle_claims -ge 2 ] && [ $t26_idle_claims -le 7 ]"

# --- limits ----------------------------------------------------------------------------------
check "reload with limits.max_open_tasks 3, max_task_bytes 12000, max_response_bytes 80000" \
    t26_config 'limits={ max_open_tasks: 3, max_task_bytes: 12000, max_response_bytes: 80000 }'
t26_open=() t26_st=
for t26_i in 1 2 3; do
    t26_new '{"job_name":"t26-quota"}'
    t26_open+=("$T26_ID") t26_st+=$STATUS
done
check "3 open tasks are allowed" [ "$t26_st" = 201201201 ]
t26_new '{"job_name":"t26-quota"}'
check "a 4th open task -> 429 QUOTA_EXCEEDED" error_is 429 QUOTA_EXCEEDED
check "... a JSON error with our trace id" error_body_is QUOTA_EXCEEDED
as "$t26_wa" POST /v1/worker/claim
t26_q=$(json .id)
as "$t26_wa" POST "/v1/tasks/$t26_q/complete" -H "$t26_json" -d '{"status":"completed"}'
t26_new '{"job_name":"t26-quota"}'
check "a completed task frees its place -> 201" status_is 201
t26_open+=("$T26_ID")
for t26_i in "${t26_open[@]}"; do as "$t26_r" POST "/v1/tasks/$t26_i/cancel"; done

t26_big=$(printf '"%03000d",' 1 2 3)
t26_new "{\"job_name\":\"t26-big\",\"args\":[${t26_big%,}]}"
check "a task record over limits.max_task_bytes -> 413 PAYLOAD_TOO_LARGE" error_is 413 PAYLOAD_TOO_LARGE
check "... a JSON error with our trace id" error_body_is PAYLOAD_TOO_LARGE
t26_new '{"job_name":"t26-small"}'
check "a small one still fits -> 201" status_is 201
as "$t26_r" POST "/v1/tasks/$T26_ID/cancel"

as "$t26_r" GET "/v1/tasks?limit=1000"
t26_n=$(json '.tasks|length')
t26_next=$(json .next_offset)
check "limits.max_response_bytes cuts a page: fewer tasks than asked, the body within 80000 bytes" \
    bash -c "[ $STATUS = 200 ] && [ '$t26_n' -ge 1 ] && [ '$t26_n' -lt 1000 ] && [ \$(stat -c %s '$B') -le 80000 ]"
check "... and next_offset says where the next page starts" [ "$t26_next" = "$t26_n" ]
jq -r '.tasks[].id' "$B" >"$OUT/t26-page1"
as "$t26_r" GET "/v1/tasks?limit=1000&offset=$t26_next"
check "the next page goes on with other tasks" \
    bash -c "[ $STATUS = 200 ] && jq -r '.tasks[].id' '$B' | grep -vqxFf '$OUT/t26-page1' && ! jq -r '.tasks[].id' '$B' | grep -qxFf '$OUT/t26-page1'"
t26_total=$(json .total || echo 1)
as "$t26_r" GET "/v1/tasks?limit=1&offset=$((t26_total - 1))"
check "the last page's next_offset is null" bash -c "[ $STATUS = 200 ] && jq -e '.next_offset==null and (.tasks|length)==1' '$B' >/dev/null"

# --- Redis full: a clean 503, nothing evicted ------------------------------------------------
# Only a create is refused while Redis is full: the rate limiter (on_redis_error stays deny)
# and the guard keep deciding, reads and cancels work (their scripts run with allow-oom).
t26_new '{"job_name":"t26-before-full"}'
t26_before_full=$T26_ID
# What eviction would take: task records and the index of every task (keys with a TTL,
# such as rate-limit buckets, may expire meanwhile).
t26_task_keys() { echo "$(rcli --scan --pattern 'fetchml:task:*' | wc -l) $(rcli ZCARD fetchml:tasks)"; }
t26_keys=$(t26_task_keys)
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
rcli CONFIG SET maxmemory 1 >/dev/null
t26_new '{"job_name":"t26-full"}'
t26_full_status=$STATUS t26_full_trace=$TRACE
check "Redis full: POST /v1/tasks -> 503 SERVICE_UNAVAILABLE" error_is 503 SERVICE_UNAVAILABLE
check "... a JSON error with our trace id, from the task store" \
    bash -c "jq -e --arg t '$TRACE' '.trace_id==\$t and .error==\"task store unavailable\"' '$B' >/dev/null"
check "nothing was evicted or added: the task keys are as they were" [ "$(t26_task_keys)" = "$t26_keys" ]
as "$t26_r" GET /v1/whoami
check "Redis full: the rate limiter still decides (whoami 200 under on_redis_error deny)" status_is 200
as "$t26_r" GET "/v1/tasks/$t26_before_full"
check "Redis full: a task is still read -> 200" status_is 200
as "$t26_r" POST "/v1/tasks/$t26_before_full/cancel"
check "Redis full: a task is still cancelled -> 200" status_is 200
rcli CONFIG SET maxmemory "$t26_maxmem" >/dev/null
rcli CONFIG SET maxmemory-policy "$t26_policy" >/dev/null
check "the 503 is audited" \
    bash -c "jq -se --arg t '$t26_full_trace' 'map(select(.trace_id==\$t and .status==$t26_full_status)) | length == 1' '$t26_audit' >/dev/null"
t26_new '{"job_name":"t26-after-full"}'
check "with room again, a task is created -> 201" status_is 201
as "$t26_r" POST "/v1/tasks/$T26_ID/cancel"

write_config
check "reload without this file's users and settings" \
    reload_until bash -c "! curl -sfk -o /dev/null -H 'X-API-Key: $t26_r' '$BASE/v1/whoami'"
