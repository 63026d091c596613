# Process model: a crashed worker is replaced; the pool keeps serving; one master per socket.

master=$(cat "$FETCHML_VAR/run/fcgi.pid")
# Workers only: the sweeper, the master's other child, is named fetchml-sweeper (test_27).
workers_now() { pgrep -x -P "$master" fetchml-fcgi | wc -l; }
# Right after a reload, retired workers may still be finishing their last request.
four_workers() { [ "$(workers_now)" -eq 4 ]; }
check "the master runs 4 workers" wait_for 5 four_workers
victim=$(pgrep -x -P "$master" fetchml-fcgi | head -1)
kill -KILL "$victim"
respawned() { [ "$(workers_now)" -eq 4 ] && ! kill -0 "$victim" 2>/dev/null; }
check "a worker killed with SIGKILL is respawned" wait_for 5 respawned
check "api.log records the crash" grep -q "worker $victim exited unexpectedly" "$FETCHML_VAR/log/api.log"
as researcher GET /v1/whoami
check "the pool still serves after the crash" status_is 200

# Kills from outside are no crash loop: three young workers killed in a row
# are each replaced at once, without the start-up backoff (1, 2, 4 s).
backoffs=$(grep -c "workers are crashing at start" "$FETCHML_VAR/log/api.log" || true)
for _ in 1 2 3; do
    wait_for 5 four_workers || break
    kill -KILL "$(pgrep -x -P "$master" fetchml-fcgi | tail -1)"
    sleep 0.2
done
check "three young workers killed from outside are replaced within 1 s" wait_for 1 four_workers
check "... with no crash-loop backoff" \
    [ "$(grep -c "workers are crashing at start" "$FETCHML_VAR/log/api.log" || true)" = "$backoffs" ]
check "the socket is mode 0660" [ "$(stat -c %a "$FETCHML_VAR/run/fcgi.sock")" = 660 ]

set -a
. "$FETCHML_VAR/dev/redis.env"
set +a
out=$(timeout 10 "$FETCHML_BUILD/fetchml-fcgi" -c "$FETCHML_VAR/dev/config.yaml" -p "$FETCHML_VAR/run/fcgi.pid" 2>&1)
rc=$?
check "a second master refuses to start (exit 1)" [ "$rc" -eq 1 ]
check "... and says the pool is already running" grep -q "already running" <<<"$out"
check "the first master still owns its pid file" [ "$(cat "$FETCHML_VAR/run/fcgi.pid")" = "$master" ]
out=$(timeout 10 "$FETCHML_BUILD/fetchml-fcgi" -c "$FETCHML_VAR/dev/config.yaml" 2>&1)
unset REDIS_PASSWORD
check "without a pid file, the live socket still stops a second master" grep -q "in use by another process" <<<"$out"
as researcher GET /v1/whoami
check "the pool still serves after both attempts" status_is 200
