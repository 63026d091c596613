# The audit logger (README "Audit trail and logs"): one process of the pool,
# fetchml-audit, holds the audit trail open for writing; no worker, sweeper or
# relay has a descriptor of it. A worker killed mid-stream leaves the chain
# intact; a stalled logger makes requests fail closed (503, nothing changed,
# no record written late); a killed one stops the master (it runs under an
# account of its own, which the master cannot start another under), a new
# start continues the chain and no acknowledged record is lost. The pool's
# account cannot open, truncate, rename or remove the trail, signal the
# logger or read its key, and a trail in a place it could change is
# refused. The logger signs the chain head (Ed25519
# checkpoints), and `fetchml-admin audit-verify --public-key` proves what a
# bare hash chain cannot: a trail recomputed without the key fails.

t76_audit=$FETCHML_VAR/log/audit.log
t76_pub=$FETCHML_VAR/dev/audit-sign.pub
t76_adm=$FETCHML_BUILD/fetchml-admin
t76_master=$(cat "$FETCHML_VAR/run/fcgi.pid")

t76_logger() { pgrep -x -P "$t76_master" fetchml-audit; }
t76_verify() { "$t76_adm" audit-verify --partial --public-key "$t76_pub" "$@" >"$OUT/t76-verify.out" 2>&1; }
# t76_fds PID: "<flags> <target>" of each descriptor of PID that is the audit file.
t76_fds() {
    local fd t
    for fd in /proc/"$1"/fd/*; do
        t=$(readlink "$fd" 2>/dev/null) || continue
        [ "$t" = "$t76_audit" ] || continue
        printf '%s %s\n' "$(awk '/^flags:/{print $2}' "/proc/$1/fdinfo/${fd##*/}")" "$t"
    done
}
# Whether octal open(2) flags include write access (O_WRONLY 1 or O_RDWR 2).
t76_writable() { [ $((8#$1 & 3)) -ne 0 ]; }

as researcher GET /v1/whoami
check "the pool runs one audit logger, fetchml-audit" [ "$(t76_logger | wc -l)" = 1 ]
t76_lpid=$(t76_logger)
t76_lflags=$(t76_fds "$t76_lpid" | awk '{print $1}' | head -1)
check "... which holds the audit file open for writing, O_APPEND" \
    bash -c "[ -n '$t76_lflags' ] && [ \$((8#$t76_lflags & 3)) -ne 0 ] && [ \$((8#$t76_lflags & 02000)) -ne 0 ]"
t76_others_clean() {
    local p
    for p in $(pgrep -P "$t76_master"); do
        [ "$p" = "$t76_lpid" ] && continue
        [ -z "$(t76_fds "$p")" ] || return 1
    done
}
check "no worker, sweeper or relay has a descriptor of the audit file (/proc/PID/fdinfo)" t76_others_clean
# Shared anonymous mappings of PID: the metrics region everywhere, the chain state in the logger.
t76_shared_maps() { grep -c ' rw-s .*/dev/zero' "/proc/$1/maps"; }
t76_no_region() {
    [ "$(t76_shared_maps "$(pgrep -x -P "$t76_master" fetchml-fcgi | head -1)")" -lt \
        "$(t76_shared_maps "$t76_lpid")" ]
}
check "... nor the chain state's shared memory" t76_no_region
# The master's sockets but the FastCGI one (its end of the logger's control socketpair among
# them): no worker, sweeper or relay may hold one, or it could name the logger a trail.
t76_sockets() { ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | sort -u; }
t76_fcgi_inode=$(awk -v p="$FETCHML_VAR/run/fcgi.sock" '$8 == p { print $7 }' /proc/net/unix | head -1)
t76_no_control() {
    local forbidden p
    forbidden=$(t76_sockets "$t76_master" | grep -vx "$t76_fcgi_inode")
    [ -n "$t76_fcgi_inode" ] && [ -n "$forbidden" ] || return 1
    for p in $(pgrep -P "$t76_master"); do
        [ "$p" = "$t76_lpid" ] && continue
        [ -z "$(comm -12 <(t76_sockets "$p") <(printf '%s\n' "$forbidden"))" ] || return 1
    done
}
check "no worker, sweeper or relay holds the master's end of the logger's control socket" t76_no_control
check "the signing key is not open in any worker" \
    bash -c "! ls -l /proc/$(pgrep -x -P "$t76_master" fetchml-fcgi | head -1)/fd | grep -qF audit-sign.key"

# ---- a worker killed mid-stream ------------------------------------------------------
t76_cfg=$OUT/t76-load.curl
for ((i = 0; i < 400; i++)); do
    [ "$i" -eq 0 ] || echo next
    printf 'url = "%s/v1/whoami"\nheader = "X-API-Key: %s"\ninsecure\noutput = "/dev/null"\n' \
        "$BASE" "$FETCHML_RESEARCHER_KEY"
    printf 'write-out = "%%{http_code} %%header{x-request-id}\\n"\n'
done >"$t76_cfg"
timeout 60 curl -s --parallel --parallel-max 8 -K "$t76_cfg" >"$OUT/t76-load.out" 2>/dev/null &
t76_load=$!
sleep 0.5
kill -KILL "$(pgrep -x -P "$t76_master" fetchml-fcgi | head -1)"
wait "$t76_load"
# The test config's rate limit answers most of them 429: recorded all the same.
t76_answered() { awk '$1 == 200 || $1 == 429 {print $2}' "$OUT/t76-load.out"; }
t76_acked_recorded() { # every request answered has its record in the trail
    local t
    for t in $(t76_answered); do
        grep -qF "\"trace_id\":\"$t\"" "$t76_audit" || return 1
    done
}
check "a load with a worker killed in it: most answered (200, 429)" \
    [ "$(t76_answered | wc -l)" -ge 300 ]
check "... each answer's record is in the trail" t76_acked_recorded
check "... and the chain is intact" t76_verify "$t76_audit"

# ---- the logger stalled: fail closed, nothing written late ---------------------------
kill -STOP "$t76_lpid"
t76_job=t76-stalled-$RANDOM
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d "{\"job_name\":\"$t76_job\"}"
t76_trace=$TRACE
forget_trace
check "with the logger stalled, POST /v1/tasks -> 503 SERVICE_UNAVAILABLE" error_is 503 SERVICE_UNAVAILABLE
kill -CONT "$t76_lpid"
as researcher GET /v1/tasks
check "... and the task was not created (its change undone)" bash -c "! grep -qF '$t76_job' '$B'"
sleep 0.3
check "... and its record was not written after the deadline" \
    bash -c "! grep -qF '\"trace_id\":\"$t76_trace\"' '$t76_audit'"
check "the logger serves again once resumed" status_is 200

t76_serving() { as researcher GET /v1/whoami && status_is 200; }

# ---- the logger's own account: the pool's cannot touch the trail ------------------------
if t76_pool=$(fm_pool_user); then
    t76_auser=$(fm_audit_user)
    t76_worker=$(pgrep -x -P "$t76_master" fetchml-fcgi | head -1)
    check "the logger runs as logging.audit_user ($t76_auser), the workers as server.user ($t76_pool)" \
        [ "$(ps -o user= -p "$t76_lpid")/$(ps -o user= -p "$t76_worker")" = "$t76_auser/$t76_pool" ]
    check "... and the trail is the logger's account's, mode 0600" \
        [ "$(stat -c '%U %a' "$t76_audit")" = "$t76_auser 600" ]
    # Everything a compromised worker could try, as the pool's account.
    t76_as_pool() { setpriv --reuid="$t76_pool" --regid="$(id -g "$t76_pool")" --init-groups "$@" 2>/dev/null; }
    t76_size=$(stat -c %s "$t76_audit")
    check "the pool's account cannot open the trail for writing" \
        not t76_as_pool sh -c 'exec 3>>"$1"' sh "$t76_audit"
    check "... nor truncate it" not t76_as_pool truncate -s 0 "$t76_audit"
    check "... nor rename it (the log directory is sticky)" not t76_as_pool mv "$t76_audit" "$t76_audit.gone"
    check "... nor remove it" not t76_as_pool rm -f "$t76_audit"
    check "... nor signal the logger" not t76_as_pool kill -STOP "$t76_lpid"
    check "... nor read the signing key" not t76_as_pool cat "$FETCHML_VAR/dev/audit-sign.key"
    t76_whole() { [ -f "$t76_audit" ] && [ "$(stat -c %s "$t76_audit")" -ge "$t76_size" ] && t76_verify "$t76_audit"; }
    check "... and the trail is whole and verifies after all that" t76_whole

    # A trail where the pool's account could remove it: the logger refuses it, the old one stays.
    t76_dir=$FETCHML_VAR/t76-open-dir # $OUT is root's alone: the logger could not reach it
    mkdir -p "$t76_dir" && chown "$t76_auser:$(id -gn "$t76_pool")" "$t76_dir" && chmod 770 "$t76_dir"
    write_config "logging.file=\"$t76_dir/audit.log\""
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
    t76_dir_refused() {
        grep -qF "$t76_dir: the audit trail's directory is writable by its group (mode 0770) and not sticky" \
            "$FETCHML_VAR/log/api.log"
    }
    check "a reload naming a trail in a non-sticky directory of the pool's group is refused" \
        wait_for 5 t76_dir_refused
    as researcher GET /v1/whoami
    t76_old_trail() { status_is 200 && grep -qF "\"trace_id\":\"$TRACE\"" "$t76_audit" && [ ! -e "$t76_dir/audit.log" ]; }
    check "... the running configuration keeps serving, into the old trail" t76_old_trail
    chmod 1770 "$t76_dir"
    t76_new_trail() { as researcher GET /v1/whoami && [ -s "$t76_dir/audit.log" ]; }
    check "... and once the directory is sticky the same reload is taken" reload_until t76_new_trail
    write_config
    check "reload back to the test config" reload_until t76_serving
    # The requests answered meanwhile are in that trail, not the stack's, which test_90 reads.
    grep -o '"trace_id":"[0-9a-f]*"' "$t76_dir/audit.log" | cut -d'"' -f4 >"$OUT/t76-side.traces"
    grep -vxFf "$OUT/t76-side.traces" "$OUT/traces" >"$OUT/traces.new" || true
    mv "$OUT/traces.new" "$OUT/traces"
fi

# ---- signed checkpoints --------------------------------------------------------------
t76_signed() { t76_verify "$t76_audit" && grep -q '^signatures good: [1-9]' "$OUT/t76-verify.out"; }
kill -USR1 "$t76_master" # a rotation's reopen signs the head first
check "after SIGUSR1 the trail holds a checkpoint that the public key verifies" wait_for 5 t76_signed
t76_last_cp() { grep -F '"action":"CHECKPOINT"' "$t76_audit" | tail -1 | jq -r .seq; }
write_config logging.audit_sign_interval_ms=300
check "reload with logging.audit_sign_interval_ms 300" reload_until t76_serving
sleep 0.5 # the retired logger signs once more as it stops
t76_cp0=$(t76_last_cp)
t76_new_cp() { as researcher GET /v1/whoami && [ "$(t76_last_cp)" -gt "$t76_cp0" ]; }
check "... then checkpoints follow the records within a second" wait_for 2 t76_new_cp
check "audit-verify reports the signed seq and the unsigned tail" \
    bash -c "t=\$(cat '$OUT/t76-verify.out'); [[ \$t == *'signed through seq '* && \$t == *'unsigned tail: '* ]]"
check "without --public-key it says the checkpoints went unchecked" \
    bash -c "'$t76_adm' audit-verify --partial '$t76_audit' | grep -q 'signed checkpoints not checked'"

# Recomputed by someone who could write the file but not read the key.
python3 - "$t76_audit" "$OUT/t76-forged.log" <<'PY'
import hashlib, sys
prev, done = None, False
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        line = line.rstrip("\n")
        body = line[: line.index(',"hash":"')]
        if prev is None:
            prev = body[body.index(',"prev_hash":"') + 14 : -1]
        if not done and '"source_ip":"127.0.0.1"' in body:
            body = body.replace('"source_ip":"127.0.0.1"', '"source_ip":"10.6.6.6"')
            done = True
        body = body[: body.index(',"prev_hash":"')] + ',"prev_hash":"%s"' % prev
        prev = hashlib.sha256(body.encode()).hexdigest()
        out.write(body + ',"hash":"%s"}\n' % prev)
PY
check "a recomputed trail passes as a hash chain" \
    bash -c "'$t76_adm' audit-verify --partial '$OUT/t76-forged.log' >/dev/null"
check "... and fails with --public-key (bad checkpoint signature)" \
    bash -c "! '$t76_adm' audit-verify --partial --public-key '$t76_pub' '$OUT/t76-forged.log' 2>'$OUT/t76-forged.err' && grep -q 'bad checkpoint signature' '$OUT/t76-forged.err'"
grep -vF '"action":"CHECKPOINT"' "$OUT/t76-forged.log" | python3 -c '
import hashlib, re, sys
prev, seq = None, None
for line in sys.stdin:
    body = line.rstrip("\n")[: line.index(",\"hash\":\"")]
    if prev is None:
        prev = body[body.index(",\"prev_hash\":\"") + 14 : -1]
        seq = int(re.search(r"\"seq\":(\d+)", body).group(1))
    body = re.sub(r"\"seq\":\d+", "\"seq\":%d" % seq, body, count=1)
    body = body[: body.index(",\"prev_hash\":\"")] + ",\"prev_hash\":\"%s\"" % prev
    prev = hashlib.sha256(body.encode()).hexdigest()
    print(body + ",\"hash\":\"%s\"}" % prev)
    seq += 1' >"$OUT/t76-stripped.log"
check "... and stripped of its checkpoints it fails too (nothing signed)" \
    bash -c "'$t76_adm' audit-verify --partial '$OUT/t76-stripped.log' >/dev/null && ! '$t76_adm' audit-verify --partial --public-key '$t76_pub' '$OUT/t76-stripped.log' >/dev/null 2>&1"

# A key the logger could not keep to itself is refused, and the running one stays.
# (Where the master, which has given up root, can open it: the pool's var dir, its account's.)
t76_open=$FETCHML_VAR/dev/t76-open.key
cp "$FETCHML_VAR/dev/audit-sign.key" "$t76_open"
chmod 0644 "$t76_open"
if t76_pool=$(fm_pool_user); then chown "$t76_pool" "$t76_open"; fi
write_config "logging.audit_sign_key=\"$t76_open\""
"$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
t76_refused() { grep -qF "$t76_open must be a regular file that only its owner may read" "$FETCHML_VAR/log/api.log"; }
check "a reload naming a signing key others may read is refused" wait_for 5 t76_refused
as researcher GET /v1/whoami
check "... and the running configuration keeps serving" status_is 200
write_config
check "reload back to the test config" reload_until t76_serving
check "the whole trail still verifies with the public key" t76_verify "$t76_audit"

# ---- the logger killed: the master stops, a new start continues the chain -----------
as researcher GET /v1/whoami
t76_before=$TRACE
t76_lpid=$(t76_logger)
kill -KILL "$t76_lpid"
t76_master_gone() { ! kill -0 "$t76_master" 2>/dev/null; }
check "a killed logger stops the master (it cannot start another under the logger's account)" \
    wait_for 15 t76_master_gone
check "api.log says why" grep -q "the audit logger exited unexpectedly (signal 9)" "$FETCHML_VAR/log/api.log"
check "... and that it stopped for that" grep -q "stopped (the audit logger had gone)" "$FETCHML_VAR/log/api.log"
"$ROOT/scripts/run-local.sh" start >"$OUT/t76-restart.out" 2>&1
check "the stack starts again" t76_serving
check "the record acknowledged before the kill is in the trail" grep -qF "\"trace_id\":\"$t76_before\"" "$t76_audit"
check "the chain is intact across the restart" t76_verify "$t76_audit"
