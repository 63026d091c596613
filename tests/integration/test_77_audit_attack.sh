# Review s16-attack: what a compromised worker (a process of the pool's
# account, server.user) can still do to the audit trail. Written failing:
# each check names a hole the review found; see the review's report.
#
# 1. fm_audit_check_place looks at the trail's own directory only: a trail
#    below a directory of the pool's account (here $VAR/t77-pool/sub, sub the
#    logger's, 0700) is taken, and the pool can then rename sub away and put
#    a symbolic link in its place, which the logger follows on its next
#    record (O_NOFOLLOW guards the last component only).
# 2. The root master gives the trail to logging.audit_user at start
#    (give_file) even when another account made it: in a log directory the
#    pool may create files in (1770, the pool's group, as run-local.sh makes
#    it and as the logger's own refusal suggests), the pool creates audit.log
#    after a rotation's rename, keeps it open, and once the master is started
#    again (by the operator, as the refused records ask for, or by the
#    supervisor after the pool killed it) it holds a writable descriptor of
#    the logger's trail: it can cut the trail back to its last checkpoint and
#    audit-verify --public-key still passes.

if [ "$(id -u)" -ne 0 ]; then
    echo "  (not root: the accounts are one, nothing to test)"
else
    t77_pool=$(fm_pool_user)
    t77_auser=$(fm_audit_user)
    t77_api=$FETCHML_VAR/log/api.log
    t77_as_pool() { setpriv --reuid="$t77_pool" --regid="$(id -g "$t77_pool")" --init-groups "$@"; }
    t77_serving() { as researcher GET /v1/whoami && status_is 200; }

    # ---- 0. the logger serves server.user's connections alone (auditlog.c accept_one) --------
    t77_master=$(cat "$FETCHML_VAR/run/fcgi.pid")
    t77_lpid=$(pgrep -x -P "$t77_master" fetchml-audit)
    # The abstract name of the socket the logger listens on (its descriptors' inodes, /proc/net/unix).
    t77_name() {
        local i
        for i in $(ls -l "/proc/$t77_lpid/fd" | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p'); do
            awk -v i="$i" '$4 == "00010000" && $7 == i && $8 ~ /^@/ { print substr($8, 2) }' /proc/net/unix
        done | head -1
    }
    t77_sock=$(t77_name)
    t77_mark=t77-other-uid-$RANDOM
    cat >"$OUT/t77-send.py" <<'PY'
import socket, struct, sys, time
f = ('"trace_id":"%s","user":null,"key_id":null,"action":"GET /","resource":"/",'
     '"source_ip":null,"result":"success","status":200,"reason":null,"prev_hash":"' % sys.argv[2]).encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(3)
s.connect("\0" + sys.argv[1])
ms = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000) + 2000
try:
    s.send(struct.pack("<IIq", 0x31414d46, len(f), ms) + f)
    a = s.recv(8)
    print(struct.unpack("<ii", a)[0] if len(a) == 8 else "hung-up")
except OSError:
    print("hung-up")
PY
    t77_send() { # t77_send USER MARK: one well-formed record as USER; prints the answer's rc or hung-up
        setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups /usr/bin/python3 - "$t77_sock" "$2" <"$OUT/t77-send.py"
    }
    check "the logger's socket is found" [ -n "$t77_sock" ]
    check "a record from another account (nobody) is not answered" \
        [ "$(t77_send nobody "$t77_mark")" = hung-up ]
    sleep 0.3
    check "... and not written" not grep -qF "$t77_mark" "$FETCHML_VAR/log/audit.log"

    # ---- 1. a directory of the pool's above the trail's ---------------------------------
    t77_parent=$FETCHML_VAR/t77-pool
    mkdir -p "$t77_parent/sub" && chown "$t77_pool:" "$t77_parent" &&
        chown "$t77_auser:" "$t77_parent/sub" && chmod 700 "$t77_parent/sub"
    t77_lines=$(wc -l <"$t77_api")
    write_config "logging.file=\"$t77_parent/sub/audit.log\""
    "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
    t77_refused() { tail -n +"$((t77_lines + 1))" "$t77_api" | grep -F "$t77_parent" | grep -q refused; }
    check "a reload naming a trail below a directory of the pool's account is refused" \
        wait_for 5 t77_refused
    check "... and no trail was made there" [ ! -e "$t77_parent/sub/audit.log" ]
    write_config
    check "reload back to the test config" reload_until t77_serving

    # ---- 2. a trail the pool's account made, given to the logger by the root master ------
    t77_dir=$FETCHML_VAR/t77-logs
    mkdir -p "$t77_dir" && chown "$t77_auser:$(id -gn "$t77_pool")" "$t77_dir" && chmod 1770 "$t77_dir"
    t77_as_pool /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
time.sleep(30)' "$t77_dir/audit.log" &
t77_holder=$!
    wait_for 5 [ -e "$t77_dir/audit.log" ]
    write_config "server.listen=\"unix:$OUT/t77.sock\"" 'logging.api_file=~' \
        "logging.file=\"$t77_dir/audit.log\"" && cp -p "$FETCHML_VAR/dev/config.yaml" "$OUT/t77.yaml"
    write_config
    REDIS_PASSWORD=x timeout 5 "$FETCHML_BUILD/fetchml-fcgi" -c "$OUT/t77.yaml" >"$OUT/t77.out" 2>&1
    check "a root start does not give the logger a trail the pool's account made (and holds open)" \
        [ "$(stat -c %U "$t77_dir/audit.log")" != "$t77_auser" ]
    kill "$t77_holder" 2>/dev/null
    wait "$t77_holder" 2>/dev/null
    rm -rf "$t77_dir" "$t77_parent"
    check "the test stack still serves" reload_until t77_serving
fi
