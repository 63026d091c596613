# Process model (SPEC section 7): a crashed worker is replaced; the pool keeps serving.

master=$(cat "$FETCHML_VAR/run/fcgi.pid")
workers_now() { pgrep -P "$master" | wc -l; }
check "the master runs 4 workers" [ "$(workers_now)" -eq 4 ]
victim=$(pgrep -P "$master" | head -1)
kill -KILL "$victim"
respawned() { [ "$(workers_now)" -eq 4 ] && ! kill -0 "$victim" 2>/dev/null; }
for i in $(seq 50); do respawned && break; sleep 0.1; done
check "a worker killed with SIGKILL is respawned" respawned
check "api.log records the crash" grep -q "worker $victim exited unexpectedly" "$FETCHML_VAR/log/api.log"
as researcher GET /v1/whoami
check "the pool still serves after the crash" status_is 200
check "the socket is mode 0660" [ "$(stat -c %a "$FETCHML_VAR/run/fcgi.sock")" = 660 ]
