# Privileges (SPEC 7): started as root, the master gives up root for
# server.user after binding and opening, and refuses to serve as root; the
# FastCGI socket serves only server.allowed_peers (SO_PEERCRED), so a local
# process that can reach the socket cannot choose REMOTE_ADDR or the /ws
# event params (attack finding F3); nchan's publisher socket is out of every
# other local user's reach (F4), and the pool's own account, which reaches
# it, gets 403 without the relay's token (F3 of the later review; test_34).
# The stack runs as root on the test machine; run by another user, the parts
# that need root say so and are skipped.

t62_master=$(cat "$FETCHML_VAR/run/fcgi.pid")
t62_sock=$FETCHML_VAR/run/fcgi.sock
t62_api=$FETCHML_VAR/log/api.log
t62_audit=$FETCHML_VAR/log/audit.log
# ids FIELD PID: the four ids of a /proc status line (Uid: or Gid:), or its value.
t62_status() { awk -v f="$1:" '$1 == f { $1 = ""; print substr($0, 2) }' "/proc/$2/status"; }
# The master and its children but the audit logger, which has an account of its own.
t62_procs() {
    printf '%s\n' "$t62_master"
    ps --ppid "$t62_master" -o pid=,comm= | awk '$2 != "fetchml-audit" { print $1 }'
}

if [ "$(id -u)" -ne 0 ]; then
    echo "  (not root: the drop, the refused peers and the nchan directory are not exercised)"
else
    t62_user=$(fm_pool_user) t62_uid=$(id -u "$(fm_pool_user)") t62_gid=$(id -g "$(fm_pool_user)")
    # ---- the drop: every process of the pool, for good --------------------------------
    # t62_ids PID UID GID: PID runs as UID/GID for good (no capability, no_new_privs).
    t62_ids() {
        [ "$(t62_status Uid "$1")" = "$2 $2 $2 $2" ] &&
            [ "$(t62_status Gid "$1")" = "$3 $3 $3 $3" ] &&
            [ "$(t62_status CapEff "$1")" = 0000000000000000 ] &&
            [ "$(t62_status CapPrm "$1")" = 0000000000000000 ] &&
            [ "$(t62_status NoNewPrivs "$1")" = 1 ]
    }
    t62_dropped() {
        local p n=0
        for p in $(t62_procs); do
            t62_ids "$p" "$t62_uid" "$t62_gid" || return 1
            n=$((n + 1))
        done
        [ "$n" -ge 6 ] # the master, 4 workers, the sweeper (and the relay)
    }
    t62_auser=$(fm_audit_user)
    t62_logger_ids() {
        local p
        p=$(pgrep -x -P "$t62_master" fetchml-audit) &&
            t62_ids "$p" "$(id -u "$t62_auser")" "$(id -g "$t62_auser")"
    }
    check "the master and every child run as server.user $t62_user: real, effective, saved and fs ids, no capability, no_new_privs" \
        t62_dropped
    check "api.log says the master gave up root" grep -q "running as $t62_user (uid $t62_uid" "$t62_api"
    check "the socket belongs to $t62_user, group www-data (socket_group), mode 0660" \
        [ "$(stat -c '%U %G %a' "$t62_sock")" = "$t62_user www-data 660" ]
    check "the audit logger alone runs as logging.audit_user $t62_auser, for good likewise" t62_logger_ids
    check "api.log belongs to $t62_user, the audit trail to $t62_auser" \
        [ "$(stat -c %U "$t62_api" "$t62_audit" | tr '\n' ' ')" = "$t62_user $t62_auser " ]

    # ---- refusing to serve as root -------------------------------------------------
    # Configs of a second master on a socket of its own (it must stop before binding).
    t62_cfg() { # t62_cfg OUT OVERRIDE...: the test config with the overrides
        local out=$1
        shift
        write_config "server.listen=\"unix:$OUT/t62.sock\"" 'logging.api_file=~' "$@" &&
            cp -p "$FETCHML_VAR/dev/config.yaml" "$out"
    }
    t62_start() { # t62_start CONFIG [PREFIX...]: runs a master on CONFIG; its output in $OUT/t62.out
        local cfg=$1
        shift
        REDIS_PASSWORD=x timeout 10 "$@" "$FETCHML_BUILD/fetchml-fcgi" -c "$cfg" >"$OUT/t62.out" 2>&1
    }
    t62_cfg "$OUT/t62-nouser.yaml" 'server.user=~'
    t62_cfg "$OUT/t62-root.yaml" 'server.user=root'
    t62_cfg "$OUT/t62-noaudit.yaml" 'logging.audit_user=~'
    t62_cfg "$OUT/t62-sameaudit.yaml" "logging.audit_user=\"$t62_user\""
    t62_cfg "$OUT/t62-user.yaml"
    chmod 644 "$OUT/t62-user.yaml" && chmod 755 "$OUT"
    write_config
    t62_start "$OUT/t62-nouser.yaml"
    t62_rc=$?
    check "started as root without server.user: exit 1, before binding" \
        bash -c "[ $t62_rc = 1 ] && [ ! -e '$OUT/t62.sock' ]"
    check "... saying it never serves as root" \
        grep -q "started as root and server.user is not set: the pool never serves as root" "$OUT/t62.out"
    t62_start "$OUT/t62-noaudit.yaml"
    t62_rc=$?
    check "started as root without logging.audit_user: exit 1, before binding, saying why" \
        bash -c "[ $t62_rc = 1 ] && [ ! -e '$OUT/t62.sock' ] && grep -q 'logging.audit_user is not set: the audit logger needs an account of its own' '$OUT/t62.out'"
    t62_start "$OUT/t62-sameaudit.yaml"
    t62_rc=$?
    check "... or with logging.audit_user the pool's own account" \
        bash -c "[ $t62_rc = 1 ] && grep -q \"logging.audit_user is server.user's account\" '$OUT/t62.out'"
    t62_start "$OUT/t62-root.yaml"
    t62_rc=$?
    check "server.user: root is refused at load (uid 0)" \
        bash -c "[ $t62_rc = 1 ] && grep -q 'server.user: \"root\" has uid 0; the pool never serves as root' '$OUT/t62.out'"
    t62_start "$OUT/t62-user.yaml" setpriv --reuid=daemon --regid=daemon --clear-groups
    t62_rc=$?
    chmod 700 "$OUT"
    check "started as another user (daemon), it cannot become server.user: exit 1, saying so" \
        bash -c "[ $t62_rc = 1 ] && grep -q 'server.user is $t62_user (uid $t62_uid), but fetchml-fcgi was started as uid 1, not root' '$OUT/t62.out'"

    # Started as server.user itself (no root to give up), the master skips the drop and
    # serves: its own socket, logs and audit trail in a directory of that user's, no
    # signing key and a copy of the publisher token of its own (the stack's are not its to
    # read), the stack's Redis; its audit logger shares its account (no logging.audit_user). It is in socket_group
    # (www-data) itself, as it must be to give the socket that group without root.
    t62_self=$OUT/t62-self
    mkdir -p "$t62_self" && chown "$t62_user:$(id -gn "$t62_user")" "$t62_self" && chmod 755 "$OUT"
    cp "$FETCHML_VAR/dev/publisher-token" "$t62_self/" && chown "$t62_user" "$t62_self/publisher-token"
    t62_cfg "$t62_self/config.yaml" "server.listen=\"unix:$t62_self/fcgi.sock\"" \
        "logging.file=\"$t62_self/audit.log\"" "logging.api_file=\"$t62_self/api.log\"" \
        'logging.audit_sign_key=~' 'server.workers=2' 'logging.audit_user=~' \
        "websocket.publisher_token_file=\"$t62_self/publisher-token\""
    write_config
    REDIS_PASSWORD=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env") \
        setpriv --reuid="$t62_user" --regid="$(id -gn "$t62_user")" --groups="$(id -g www-data)" \
        "$FETCHML_BUILD/fetchml-fcgi" -c "$t62_self/config.yaml" >"$t62_self/out" 2>&1 &
    t62_self_pid=$!
    t62_self_serves() {
        [ "$(fcgi_request "$t62_self/fcgi.sock" "$B" "${t62_whoami[@]}" REQUEST_ID="t62self$RANDOM")" = 200 ]
    }
    t62_whoami=(REQUEST_METHOD=GET DOCUMENT_URI=/v1/whoami SCRIPT_NAME=/v1/whoami QUERY_STRING=
        REMOTE_ADDR=127.0.0.1 "HTTP_X_API_KEY=$FETCHML_RESEARCHER_KEY")
    check "started as server.user $t62_user (not root), the master serves (200 through its socket)" \
        wait_for 15 t62_self_serves
    t62_self_as_is() {
        [ "$(t62_status Uid "$t62_self_pid")" = "$t62_uid $t62_uid $t62_uid $t62_uid" ] &&
            grep -q 'fetchml-fcgi started: 2 workers' "$t62_self/api.log" &&
            ! grep -q 'running as ' "$t62_self/api.log" &&
            grep -q 'the audit logger runs under the pool.s own account' "$t62_self/api.log"
    }
    check "... as $t62_user from the start: it skipped the drop (no \"running as\" line), and warns that its logger shares the account" t62_self_as_is
    t62_self_stopped() { grep -q '\] stopped$' "$t62_self/api.log" && [ ! -e "$t62_self/fcgi.sock" ]; }
    kill -TERM "$t62_self_pid"
    check "... and stops on TERM, its socket's name removed" wait_for 15 t62_self_stopped
    wait "$t62_self_pid"
    chmod 700 "$OUT"

    # A log path the master would give to server.user is never a symbolic link: a root
    # chown would land on whatever it points at (and a root open(2) would create or append to
    # it): it is not even opened (O_NOFOLLOW).
    t62_target=$OUT/t62-target.log
    : >"$t62_target"
    ln -sf "$t62_target" "$OUT/t62-link.log"
    t62_cfg "$OUT/t62-link.yaml" "logging.api_file=\"$OUT/t62-link.log\""
    write_config
    t62_start "$OUT/t62-link.yaml"
    t62_rc=$?
    check "logging.api_file a symbolic link: the master gives nothing away and stops (exit 1)" \
        bash -c "[ $t62_rc = 1 ] && grep -q 'cannot open $OUT/t62-link.log: Too many levels of symbolic links' '$OUT/t62.out' &&
                 [ \"\$(stat -c %U '$t62_target')\" = root ] && [ ! -e '$OUT/t62.sock' ]"

    # ---- SO_PEERCRED: nginx's user is served, another local user is not ---------------
    # A new generation of workers, none of which has logged a refused peer in the last
    # 10 s (test_60's second master probes the socket as root, a refused peer too).
    t62_serves() { as researcher GET /v1/whoami && status_is 200; }
    check "a reload starts workers that have refused nobody yet" reload_until t62_serves
    scrape_refused() {
        as admin GET /metrics >/dev/null &&
            awk '$1 == "fetchml_fastcgi_peers_refused_total" { print $2 }' "$B"
    }
    t62_r0=$(scrape_refused)
    t62_trace=t62forged$RANDOM
    t62_forged=(REQUEST_METHOD=GET DOCUMENT_URI=/v1/whoami SCRIPT_NAME=/v1/whoami QUERY_STRING=
        REMOTE_ADDR=127.0.0.1 "HTTP_X_API_KEY=$FETCHML_RESEARCHER_KEY")
    STATUS=$(fcgi_request "$t62_sock" "$B" "${t62_forged[@]}" REQUEST_ID="$t62_trace-ok")
    check "a direct FastCGI request from www-data (allowed_peers) is served (200)" status_is 200
    # daemon in group www-data: the socket's mode lets it connect, only the peer check stops it.
    t62_lines0=$(grep -c 'refused a FastCGI connection from uid 1 ' "$t62_api" || true)
    STATUS=$(fcgi_request "$t62_sock" "$B" --as daemon:www-data "${t62_forged[@]}" \
        REQUEST_ID="$t62_trace")
    check "... one from another local user (daemon) forging REMOTE_ADDR gets nothing: closed unread" \
        status_is closed
    t62_refused_counted() { [ "$(scrape_refused)" -eq $((t62_r0 + 1)) ]; }
    check "... counted: fetchml_fastcgi_peers_refused_total +1" t62_refused_counted
    check "... logged once in api.log with its uid" \
        bash -c "[ \$(grep -c 'refused a FastCGI connection from uid 1 ' '$t62_api') -eq $((t62_lines0 + 1)) ]"
    check "... never audited (it was never a request)" bash -c "! grep -qF '\"trace_id\":\"$t62_trace\"' '$t62_audit'"
    # A forged /ws close event (F3): a WS_CLOSE record for a connection nobody opened.
    STATUS=$(fcgi_request "$t62_sock" "$B" --as daemon:www-data FETCHML_WS_EVENT=close FETCHML_WS_CONN=forged \
        FETCHML_WS_USER=admin FETCHML_WS_KIND=admin REMOTE_ADDR=10.6.6.6 REQUEST_ID="$t62_trace-ws")
    check "a forged FETCHML_WS_EVENT=close from daemon is refused, no WS_CLOSE record" \
        bash -c "[ '$STATUS' = closed ] && ! grep -qF '\"trace_id\":\"$t62_trace-ws\"' '$t62_audit'"
    # A flood: all counted, a line per worker at most (REFUSED_LOG_S).
    t62_lines0=$(grep -c 'refused a FastCGI connection' "$t62_api" || true)
    t62_r0=$(scrape_refused)
    for _ in $(seq 40); do
        fcgi_request "$t62_sock" /dev/null --as daemon:www-data "${t62_forged[@]}" >/dev/null 2>&1
    done
    t62_flood_counted() { [ "$(scrape_refused)" -eq $((t62_r0 + 40)) ]; }
    check "40 refused connections in a row: all 40 counted" t62_flood_counted
    check "... and at most one api.log line per worker (no flood)" \
        bash -c "[ \$((\$(grep -c 'refused a FastCGI connection' '$t62_api') - $t62_lines0)) -le 4 ]"
    as researcher GET /v1/whoami
    check "nginx's requests are served all along" status_is 200

    # ---- F4: nchan's publisher socket ---------------------------------------------
    t62_nchan=$FETCHML_VAR/run/nchan
    check "nchan's publisher socket is in a directory of mode 0750, group $(id -gn "$t62_user")" \
        [ "$(stat -c '%a %G' "$t62_nchan")" = "750 $(id -gn "$t62_user")" ]
    t62_publish() { # t62_publish USER: POSTs an event to a channel as USER; curl's status
        setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups curl -s -o /dev/null -w '%{http_code}' \
            --unix-socket "$t62_nchan/nchan.sock" -X POST -d '{"forged":1}' http://localhost/t62 2>/dev/null
    }
    t62_www_cannot() { [ "$(t62_publish www-data)" = 000 ]; }
    t62_pool_refused() { [ "$(t62_publish "$t62_user")" = 403 ]; }
    check "www-data cannot publish (nor DELETE a channel): the socket is out of its reach" t62_www_cannot
    check "the pool's account ($t62_user) reaches it, but without the relay's token nginx answers 403 (test_34)" \
        t62_pool_refused
fi
