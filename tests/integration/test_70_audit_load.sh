# Audit trail under load, across rotation and on a full disk (README "Audit trail and logs"):
# 20,000 requests from 16 parallel connections leave exactly 20,000 whole,
# consecutive, verifiable lines; a rotation in the middle of a load loses
# none and the chain continues into the new file; a request whose record
# cannot be written gets 503 and changes nothing.
#
# The load is one curl with --parallel (16 transfers at a time, kept-alive
# connections), a 4-way mix: 200 (whoami), 401 (unknown key), 403 (analyst
# creating a task), 404 (unknown route). curl writes each response's status
# and X-Request-Id, which is the trace_id its audit line must carry.

t70_audit=$FETCHML_VAR/log/audit.log
t70_access=$FRONT_ACCESS_LOG
t70_adm=$FETCHML_BUILD/fetchml-admin
t70_bad=$(printf '%064d' 70)
t70_cfg=$FETCHML_VAR/dev/config.yaml

# write_config, with limits a load does not trip (the rate limit and the
# brute-force guard), and the audit trail at $1 when given.
t70_config() {
    local file=()
    [ -z "${1:-}" ] || file=("logging.file=\"$1\"")
    write_config 'rate_limit={ requests_per_minute: 1000000, burst: 1000000, auth_failures: { max: 1000000, window_seconds: 60, block_seconds: 1 } }' \
        "${file[@]}"
}
t70_high_limits() { as researcher GET /v1/whoami && json_is .rate_limit.requests_per_minute 1000000; }

# t70_load N OUT: N requests in the mix; "<status> <x-request-id>" per line in OUT.
t70_load() {
    local n=$1 out=$2 cfg=$OUT/t70-load-$RANDOM.curl i
    {
        for ((i = 0; i < n; i++)); do
            [ "$i" -eq 0 ] || echo next
            case $((i % 4)) in
            0) printf 'url = "%s/v1/whoami"\nheader = "X-API-Key: %s"\n' "$BASE" "$FETCHML_RESEARCHER_KEY" ;;
            1) printf 'url = "%s/v1/whoami"\nheader = "X-API-Key: %s"\n' "$BASE" "$t70_bad" ;;
            2) printf 'url = "%s/v1/tasks"\nheader = "X-API-Key: %s"\ndata = "{}"\n' "$BASE" "$FETCHML_ANALYST_KEY" ;;
            3) printf 'url = "%s/v1/t70-nope"\nheader = "X-API-Key: %s"\n' "$BASE" "$FETCHML_RESEARCHER_KEY" ;;
            esac
            printf 'insecure\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%header{x-request-id}\\n"\n'
        done
    } >"$cfg"
    timeout 120 curl -s --parallel --parallel-max 16 -K "$cfg" >"$out" 2>/dev/null
}
t70_mix_is() { # t70_mix_is OUT EACH: EACH of 200, 401, 403 and 404, nothing else
    [ "$(cut -d' ' -f1 "$1" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" = \
        "200:$2 401:$2 403:$2 404:$2 " ]
}
# Lines of a file that are whole JSON objects with the chain fields (an
# interleaved or torn line is not).
t70_json_lines() {
    jq -Rn 'reduce (inputs | (try fromjson catch null)
        | select(type == "object" and has("seq") and has("trace_id") and has("prev_hash") and has("hash"))) as $x (0; . + 1)' "$@"
}
# Number of places where seq does not go up by exactly one from line to line.
t70_seq_gaps() {
    jq -Rn '[inputs | fromjson | .seq] as $s | [range(1; $s | length) | select($s[.] != $s[. - 1] + 1)] | length' "$@"
}
t70_lines() { wc -l <"$1"; }
# Lines that record a request: all but the audit logger's signed checkpoints, which
# it adds now and then (test_76).
t70_requests() { grep -cvF '"action":"CHECKPOINT"' "$@" | awk -F: '{n += $NF} END {print n + 0}'; }
t70_verify() { "$t70_adm" audit-verify "$@" >/dev/null; }
# Audit lines sorted by seq: rejoins pieces of one chain written to several files.
t70_by_seq() {
    cat "$@" | awk '{ match($0, /"seq":[0-9]+/); print substr($0, RSTART + 6, RLENGTH - 6) "\t" $0 }' |
        sort -n -k1,1 | cut -f2-
}
# Replaces audit.log with the whole chain and makes the pool reopen it; used
# after this test split the trail, so that test_90 sees one file.
t70_rejoin() {
    # The pool's account (server.user) writes the file.
    t70_by_seq "$@" >"$t70_audit.joined" && chown --reference="$t70_audit" "$t70_audit.joined" &&
        mv "$t70_audit.joined" "$t70_audit"
    kill -USR1 "$(cat "$FETCHML_VAR/run/fcgi.pid")"
    sleep 0.5
}

# nginx sends its log lines without blocking: with a short queue at the
# relay's socket (net.unix.max_dgram_qlen where it was made) some are lost.
# run-local.sh gives it 512 without touching the host's value (relay_netns).
t70_qlen=$(relay_queue || echo 0)
echo "  (the relay's socket queues $t70_qlen datagrams)"
t70_config
check "the test config raises the limits" grep -q '^rate_limit: { requests_per_minute: 1000000, burst: 1000000, auth_failures: { max: 1000000,' "$t70_cfg"
check "reload with limits a load does not trip" reload_until t70_high_limits

# ---- 20,000 requests, 4 workers, 16 connections ----------------------------------
t70_before=$(t70_lines "$t70_audit")
t70_access_before=$(t70_lines "$t70_access")
t70_t0=$SECONDS
t70_load 20000 "$OUT/t70-load.out"
echo "  (20000 requests in $((SECONDS - t70_t0)) s)"
check "20,000 responses: 5,000 each of 200, 401, 403, 404" t70_mix_is "$OUT/t70-load.out" 5000
tail -n +$((t70_before + 1)) "$t70_audit" >"$OUT/t70-all-new.log"
grep -vF '"action":"CHECKPOINT"' "$OUT/t70-all-new.log" >"$OUT/t70-new.log"
t70_after=$(t70_lines "$OUT/t70-new.log")
check "the audit trail has exactly 20,000 new request records (got $t70_after)" \
    [ "$t70_after" -eq 20000 ]
check "each new line is one whole JSON record (none torn or interleaved)" \
    [ "$(t70_json_lines "$OUT/t70-all-new.log")" = "$(t70_lines "$OUT/t70-all-new.log")" ]
check "their seq goes up by one from line to line" [ "$(t70_seq_gaps "$OUT/t70-all-new.log")" = 0 ]
jq -r .trace_id "$OUT/t70-new.log" | sort >"$OUT/t70-traces-audit"
cut -d' ' -f2 "$OUT/t70-load.out" | sort >"$OUT/t70-traces-sent"
check "each response's X-Request-Id is the trace_id of exactly one new line" \
    cmp -s "$OUT/t70-traces-audit" "$OUT/t70-traces-sent"
check "each line records its response's status" \
    [ "$(jq -r '"\(.status) \(.trace_id)"' "$OUT/t70-new.log" | sort | md5sum)" = "$(sort "$OUT/t70-load.out" | md5sum)" ]
check "fetchml-admin audit-verify accepts the whole trail" t70_verify "$t70_audit"
if [ "$t70_qlen" -ge 512 ]; then
    t70_grown() { [ $(($(t70_lines "$t70_access") - t70_access_before)) -ge 20000 ]; }
    wait_for 5 t70_grown
    tail -n +$((t70_access_before + 1)) "$t70_access" >"$OUT/t70-access.log"
    check "$FRONT's access log (through fetchml-logrelay) has 20,000 new JSON lines" \
        [ "$(jq -Rn '[inputs | try fromjson catch empty | select(.trace_id)] | length' "$OUT/t70-access.log")" = 20000 ]
else
    echo "  skip $FRONT access-line count: the relay's socket queues $t70_qlen datagrams (< 512), so nginx may drop lines under load"
fi

# ---- rotation under load -----------------------------------------------------------
t70_before=$(t70_requests "$t70_audit")
t70_load 4000 "$OUT/t70-rot.out" &
t70_pid=$!
t70_quarter() { [ $(($(t70_requests "$t70_audit") - t70_before)) -ge 1000 ]; }
wait_for 5 t70_quarter
mv "$t70_audit" "$t70_audit.1"
# Only the audit logger writes the file (test_76): a worker's own SIGUSR1
# changes nothing for the trail, and the master's reaches the logger, which
# signs the renamed file's head and then opens the new one.
t70_master=$(cat "$FETCHML_VAR/run/fcgi.pid")
kill -USR1 "$(pgrep -x -P "$t70_master" fetchml-fcgi | head -1)"
sleep 0.3
kill -USR1 "$t70_master"
wait "$t70_pid"
check "4,000 responses during the rotation" t70_mix_is "$OUT/t70-rot.out" 1000
t70_old=$(t70_requests "$t70_audit.1") t70_new=$(t70_requests "$t70_audit")
check "the rotation happened mid-load ($((t70_old - t70_before)) lines before it, $t70_new after)" \
    [ $((t70_old - t70_before)) -gt 0 -a "$t70_new" -gt 0 ]
check "no line lost: $t70_old in audit.log.1 + $t70_new in audit.log = $t70_before + 4000" \
    [ $((t70_old + t70_new)) -eq $((t70_before + 4000)) ]
check "both files hold whole JSON records only" \
    [ "$(t70_json_lines "$t70_audit.1" "$t70_audit")" = "$(cat "$t70_audit.1" "$t70_audit" | wc -l)" ]
check "audit-verify audit.log.1 audit.log: the chain continues into the new file" \
    t70_verify "$t70_audit.1" "$t70_audit"
check "... and the new file alone is a valid rotated piece (--partial)" \
    t70_verify --partial "$t70_audit"
t70_rejoin "$t70_audit.1" "$t70_audit"
rm -f "$t70_audit.1"
check "rejoined, the trail verifies as one file" t70_verify "$t70_audit"

# The front's logs rotate the same way: fetchml-logrelay reopens its files on SIGUSR1.
mv "$t70_access" "$t70_access.1"
kill -USR1 "$(cat "$FETCHML_VAR/run/logrelay.pid")"
t70_in_new_access() { as researcher GET /v1/whoami && sleep 0.05 && grep -qF "\"trace_id\":\"$TRACE\"" "$t70_access" 2>/dev/null; }
check "after SIGUSR1 the relay writes a new $FRONT-access.log" wait_for 3 t70_in_new_access
check "... created mode 0640" [ "$(stat -c %a "$t70_access")" = 640 ]

# ---- fail closed: the audit trail on a full file system ------------------------------
t70_mnt=$FETCHML_VAR/t70-tmpfs
t70_job=t70-failclosed-$RANDOM$RANDOM
mkdir -p "$t70_mnt"
t70_umount() {
    mountpoint -q "$t70_mnt" || return 0
    wait_for 5 umount "$t70_mnt" 2>/dev/null || umount -l "$t70_mnt"
}
# This file runs in a subshell of its own: the trap is its own too.
trap t70_umount EXIT
# The pool's account (server.user, the owner of audit.log) creates the trail there.
if ! mount -t tmpfs -o "size=64k,mode=0700,uid=$(stat -c %u "$t70_audit"),gid=$(stat -c %g "$t70_audit")" \
    fetchml-t70 "$t70_mnt" 2>/dev/null; then
    echo "  skip fail-closed on a full disk: mounting a tmpfs is not permitted here"
else
    t70_config "$t70_mnt/audit.log"
    check "the test config puts the audit trail on the tmpfs" grep -qF "  file: \"$t70_mnt/audit.log\"" "$t70_cfg"
    t70_on_tmpfs() { as researcher GET /v1/whoami && grep -qF "\"trace_id\":\"$TRACE\"" "$t70_mnt/audit.log"; }
    check "reload with the audit trail on a 64 KiB tmpfs" reload_until t70_on_tmpfs
    dd if=/dev/zero of="$t70_mnt/fill" bs=1k 2>/dev/null
    check "the tmpfs is full" [ "$(df --output=avail -k "$t70_mnt" | tail -1 | tr -d ' ')" = 0 ]
    # The refusal itself is audited when the file's last page still has room
    # for its line, so its record may or may not exist; when it does, it must
    # say refused. Without one, test_90 must not look for it.
    t70_refused() { # t70_refused: the request just made is audited as a refusal, or not at all
        t70_rec=$(grep -F "\"trace_id\":\"$TRACE\"" "$t70_mnt/audit.log" || true)
        [ -n "$t70_rec" ] || forget_trace
        [ -z "$t70_rec" ] || jq -e '.status == 503 and .reason == "audit_unavailable"' <<<"$t70_rec" >/dev/null
    }
    as researcher POST /v1/tasks -H 'Content-Type: application/json' -d "{\"job_name\":\"$t70_job\"}"
    check "POST /v1/tasks with an unwritable audit trail -> 503" status_is 503
    check "... SERVICE_UNAVAILABLE" error_body_is SERVICE_UNAVAILABLE
    check "... its audit record, if any, is the refusal (503, audit_unavailable)" t70_refused
    check "... and api.log says why, with its trace_id" \
        grep -qF "audit trail not writable (No space left on device); refusing before any change trace_id=$TRACE" \
        "$FETCHML_VAR/log/api.log"
    # A read changes nothing, so it is not refused up front: it is answered only
    # if its record is written (the file's last page may still have room).
    t70_read_ok() {
        as researcher GET /v1/whoami
        if status_is 200; then
            grep -F "\"trace_id\":\"$TRACE\"" "$t70_mnt/audit.log" | jq -e '.status == 200' >/dev/null
        else
            status_is 503 && t70_refused
        fi
    }
    check "a read is answered only with its record written, else 503" t70_read_ok

    t70_config
    t70_on_disk() { as researcher GET /v1/whoami && grep -qF "\"trace_id\":\"$TRACE\"" "$t70_audit"; }
    check "reload with the audit trail back on disk" reload_until t70_on_disk
    t70_listed() { # t70_listed true|false: the researcher's whole task list holds $t70_job or not
        as researcher GET "/v1/tasks?limit=1000" && status_is 200 && json_is '.total < 1000' true &&
            json_is "any(.tasks[]; .job_name == \"$t70_job\")" "$1"
    }
    check "GET /v1/tasks: the refused task was not created" t70_listed false
    as researcher POST /v1/tasks -H 'Content-Type: application/json' -d "{\"job_name\":\"$t70_job\"}"
    check "... while the same request now succeeds (201)" status_is 201
    check "... and is listed, so the check above can see such a task" t70_listed true

    # Another logging.file is another trail: each file holds a chain of its own.
    check "the trail written on the tmpfs is a chain of its own, from seq 1" \
        t70_verify "$t70_mnt/audit.log"
    check "audit.log's chain continued where it stopped" t70_verify "$t70_audit"
    # test_90 looks for every request's record in audit.log: not for those on the tmpfs.
    jq -r .trace_id "$t70_mnt/audit.log" | grep -vxF -f - "$OUT/traces" >"$OUT/traces.kept" || true
    mv "$OUT/traces.kept" "$OUT/traces"
    t70_umount
    check "the tmpfs is unmounted" bash -c "! mountpoint -q '$t70_mnt'"
fi
trap - EXIT
rmdir "$t70_mnt" 2>/dev/null || true

# Leave the stack as the next tests expect: default config, no failure count for 127.0.0.1.
rcli DEL fetchml:authfail:127.0.0.1 fetchml:authblock:127.0.0.1 >/dev/null
write_config
t70_default_limits() { as researcher GET /v1/whoami && json_is .rate_limit.requests_per_minute 120; }
check "reload with the default test config" reload_until t70_default_limits
