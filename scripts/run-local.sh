#!/usr/bin/env bash
# Runs the whole fetchml-fcgi stack locally: Redis (ACL users, unix socket, AOF),
# the FastCGI pool, fetchml-logrelay (nginx's logs through the redaction
# filter) and nginx with TLS on https://127.0.0.1:9101.
#
#   scripts/run-local.sh          install what is missing, build, start
#   scripts/run-local.sh stop     stop everything
#   scripts/run-local.sh reload   re-read var/dev/config.yaml (a bad file is refused) and
#                                 wait until the new configuration serves
#   scripts/run-local.sh status   show what runs
#
# It changes no host setting: fetchml-logrelay, which must queue nginx's log
# datagrams under load, runs in a network namespace of its own where the queue
# length can be raised (relay_netns below).
#
# Generated state lives in var/ (git-ignored). Environment overrides, used by
# the integration tests to run a second stack beside yours:
#   FETCHML_VAR (var/), FETCHML_HTTPS_PORT (9101), FETCHML_HTTP_PORT (9100),
#   FETCHML_BUILD (build/), FETCHML_RELOAD_WAIT (60, seconds 'reload' waits),
#   FETCHML_REDIS_MAXMEMORY (256mb, Redis's maxmemory; it never evicts),
#   FETCHML_FRONT (nginx; apache: Apache 2.4 in front instead, from
#   conf/apache/local/httpd.conf.in, without /ws: conf/apache/README.md)
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

VAR=${FETCHML_VAR:-$ROOT/var}
HTTPS_PORT=${FETCHML_HTTPS_PORT:-9101}
HTTP_PORT=${FETCHML_HTTP_PORT:-9100}
BUILD=${FETCHML_BUILD:-$ROOT/build}
FRONT=${FETCHML_FRONT:-nginx}
case $FRONT in nginx | apache) ;; *) fm_die "FETCHML_FRONT must be nginx or apache, not $FRONT" ;; esac
# How long 'reload' waits for the new configuration to serve, seconds.
RELOAD_WAIT_S=${FETCHML_RELOAD_WAIT:-60}
DEV=$VAR/dev
RUN=$VAR/run

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
# listening NAME: the daemon has made its socket and written its pid file.
listening() { [ -S "$RUN/$1.sock" ] && [ -f "$RUN/$1.pid" ]; }

gone() { ! kill -0 "$1" 2>/dev/null; }

# stop_one NAME: TERM (QUIT for nginx), wait up to 15 s, then KILL.
stop_one() {
    local name=$1 sig=${2:-TERM} p
    p=$(pid_of "$name")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || { rm -f "$RUN/$name.pid"; return 0; }
    kill "-$sig" "$p" 2>/dev/null || true
    if ! wait_for 15 gone "$p"; then
        fm_say "$name did not stop in time; killing it"
        kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
}

do_stop() {
    stop_one nginx QUIT
    # graceful-stop: requests in progress finish, as with nginx's QUIT.
    stop_one apache WINCH
    # After nginx, so that its last lines still reach the files.
    stop_one logrelay TERM
    stop_one fcgi TERM
    stop_one redis TERM
    fm_say "stopped"
}

subst() { # subst TEMPLATE OUT key=value...
    local tmpl=$1 out=$2
    shift 2
    fm_subst "$tmpl" "$@" >"$out.tmp" && mv "$out.tmp" "$out"
}

# Demo keys in the format fetchml-admin makes (fetchml_ + 64 hex + checksum).
gen_key() { "$BUILD/fetchml-admin" keygen demo | sed -n 's/^key: //p'; }
hash_key() { printf '%s' "$1" | "$BUILD/fetchml-admin" hash; }

# First run: secrets and the config an operator may then edit.
first_run() {
    umask 077
    mkdir -p "$DEV"
    chmod 700 "$DEV"
    if [ ! -f "$DEV/redis.env" ]; then
        fm_say "generating dev secrets in $DEV"
        printf 'REDIS_PASSWORD=%s\n' "$(openssl rand -hex 24)" >"$DEV/redis.env"
    fi
    # The operator's Redis user (redis-cli, the tests' rcli): separate from the product's.
    [ -f "$DEV/redis-ops.env" ] ||
        printf 'REDIS_OPS_PASSWORD=%s\n' "$(openssl rand -hex 24)" >"$DEV/redis-ops.env"
    if [ ! -f "$DEV/tls.crt" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
            -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            -keyout "$DEV/tls.key" -out "$DEV/tls.crt" >/dev/null 2>&1 ||
            fm_die "openssl could not create the dev certificate"
    fi
    if [ ! -f "$DEV/audit-sign.key" ]; then
        # The audit logger's checkpoint key; verify with --public-key $DEV/audit-sign.pub.
        rm -f "$DEV/audit-sign.pub"
        "$BUILD/fetchml-admin" audit-keygen "$DEV/audit-sign.key" "$DEV/audit-sign.pub" >/dev/null ||
            fm_die "fetchml-admin audit-keygen failed"
    fi
    if [ ! -f "$DEV/publisher-token" ]; then
        # The relay's token for nchan's publisher, and nginx's check of it (websocket section).
        rm -f "$DEV/publisher-token.conf"
        "$BUILD/fetchml-admin" publisher-token "$DEV/publisher-token" \
            "$DEV/publisher-token.conf" >/dev/null || fm_die "fetchml-admin publisher-token failed"
    fi
    if [ ! -f "$DEV/keys.env" ]; then
        local a r n w
        a=$(gen_key) r=$(gen_key) n=$(gen_key) w=$(gen_key)
        printf 'FETCHML_%s_KEY=%s\n' ADMIN "$a" RESEARCHER "$r" ANALYST "$n" WORKER "$w" \
            >"$DEV/keys.env"
        fm_dev_config "$DEV/config.yaml" "$VAR" "$(hash_key "$a")" "$(hash_key "$r")" \
            "$(hash_key "$n")" "$(hash_key "$w")" || fm_die "cannot write $DEV/config.yaml"
    elif ! grep -q '^FETCHML_WORKER_KEY=' "$DEV/keys.env"; then
        # A var/ from before the worker role: add its key, not the user (the config is the operator's).
        local w
        w=$(gen_key)
        printf 'FETCHML_WORKER_KEY=%s\n' "$w" >>"$DEV/keys.env"
        fm_say "added FETCHML_WORKER_KEY to $DEV/keys.env; to use it, add to auth.api_keys in $DEV/config.yaml:"
        printf '    worker:\n      hash: "%s"\n      roles: ["worker"]\n' "$(hash_key "$w")" >&2
    fi
    umask 022
}

# dev/users.acl: the product's user as production has it (fetchml-admin redis-acl, from the
# config's redis section and password), and "ops" with every right for redis-cli.
write_acl() {
    local ops
    ops=$(sed -n 's/^REDIS_OPS_PASSWORD=//p' "$DEV/redis-ops.env")
    (
        umask 077
        set -a
        . "$DEV/redis.env"
        set +a
        "$BUILD/fetchml-admin" redis-acl "$DEV/config.yaml" >"$DEV/users.acl.new" ||
            fm_die "fetchml-admin redis-acl $DEV/config.yaml failed (a config from before" \
                "redis.username: add 'username: fetchml' to its redis section)"
        printf 'user ops on resetpass #%s ~* &* +@all\n' \
            "$(printf '%s' "$ops" | sha256sum | cut -d' ' -f1)" >>"$DEV/users.acl.new"
    ) && mv "$DEV/users.acl.new" "$DEV/users.acl"
}

start_redis() {
    alive redis && return 0
    write_acl
    subst "$ROOT/conf/dev/redis.conf.in" "$DEV/redis.conf" "VAR=$VAR" \
        "MAXMEMORY=${FETCHML_REDIS_MAXMEMORY:-256mb}"
    fm_redis_server "$DEV/redis.conf" || fm_die "redis-server did not start (see $VAR/log/redis.log)"
    wait_for 5 test -S "$RUN/redis.sock" ||
        fm_die "redis-server did not open $RUN/redis.sock (see $VAR/log/redis.log)"
}

start_fcgi() {
    alive fcgi && return 0
    set -a
    . "$DEV/redis.env"
    set +a
    "$BUILD/fetchml-fcgi" -t -c "$DEV/config.yaml" >/dev/null || fm_die "config check failed"
    nohup "$BUILD/fetchml-fcgi" -c "$DEV/config.yaml" -p "$RUN/fcgi.pid" \
        >>"$VAR/log/fcgi.stderr" 2>&1 </dev/null &
    unset REDIS_PASSWORD
    wait_for 5 listening fcgi ||
        fm_die "fetchml-fcgi did not start (see $VAR/log/fcgi.stderr and $VAR/log/api.log)"
}

# nginx logs to syslog on this socket; the relay redacts and writes
# log/nginx-error.log and log/nginx-access.log. It knows the Redis password
# (from the config, as fetchml-fcgi does) to redact it as a literal.
start_logrelay() {
    alive logrelay && return 0
    local group_args=() ns=()
    # nginx workers run as www-data and must reach the socket.
    [ "$(id -u)" -eq 0 ] && group_args=(-g www-data)
    relay_netns ns
    set -a
    . "$DEV/redis.env"
    set +a
    nohup "${ns[@]}" "$BUILD/fetchml-logrelay" -s "$RUN/logrelay.sock" "${group_args[@]}" \
        -c "$DEV/config.yaml" -p "$RUN/logrelay.pid" \
        -o "nginx_error=$VAR/log/nginx-error.log" -o "nginx_access=$VAR/log/nginx-access.log" \
        -o "apache_error=$VAR/log/apache-error.log" -o "apache_access=$VAR/log/apache-access.log" \
        >>"$VAR/log/logrelay.stderr" 2>&1 </dev/null &
    unset REDIS_PASSWORD
    wait_for 5 listening logrelay || fm_die "fetchml-logrelay did not start (see $VAR/log/logrelay.stderr)"
}

# The relay's datagram queue. nginx sends its log lines without blocking, so a
# line that finds the relay's queue full is lost. A unix datagram socket queues
# net.unix.max_dgram_qlen datagrams, the value of the network namespace it is
# made in, and the kernel's default of 10 loses lines under load. The sysctl is
# host-wide, and a development script must not change the host: instead the
# relay starts in a network namespace of its own whose value is RELAY_QLEN.
# Its socket has a filesystem path, which a process in any namespace reaches,
# so nginx sends to it as before; the relay needs no network of its own.
RELAY_QLEN=512 # systemd's default on Debian, which the production unit gets
RELAY_NS_CMD='echo "$0" >/proc/sys/net/unix/max_dgram_qlen && exec "$@"'

# relay_netns ARRAY: sets ARRAY to the command prefix that starts a program in
# such a namespace: unshare --net as root; otherwise in a user namespace of its
# own (unshare --user --map-root-user --net), where the kernel allows one.
# Empty, with a warning, when neither works.
relay_netns() {
    local -n prefix=$1
    local try
    prefix=()
    for try in "unshare --net" "unshare --user --map-root-user --net"; do
        [ "$try" = "unshare --net" ] && [ "$(id -u)" -ne 0 ] && continue
        # shellcheck disable=SC2086 # the words of $try are the command
        if $try sh -c "$RELAY_NS_CMD" "$RELAY_QLEN" true 2>/dev/null; then
            read -r -a prefix <<<"$try"
            prefix+=(sh -c "$RELAY_NS_CMD" "$RELAY_QLEN")
            return 0
        fi
    done
    local host
    host=$(cat /proc/sys/net/unix/max_dgram_qlen 2>/dev/null || echo 0)
    [ "$host" -ge "$RELAY_QLEN" ] ||
        fm_say "warning: cannot start fetchml-logrelay in a network namespace of its own" \
            "(unshare --net); its queue is the host's net.unix.max_dgram_qlen ($host), and" \
            "nginx's log lines may be lost under load"
}

# max_file_bytes: data.max_file_bytes of the config (its default when the
# file leaves it out), for nginx's body limit on experiment uploads.
max_file_bytes() {
    awk '/^[^ #]/ { data = ($1 == "data:") }
         data && $1 == "max_file_bytes:" { v = $2 }
         END { print (v != "" ? v : 1073741824) }' "$DEV/config.yaml"
}

start_nginx() {
    alive nginx && return 0
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user www-data;"
    # A socket left by an nginx that did not stop cleanly would fail the bind (nginx is not running).
    rm -f "$RUN/nchan/nchan.sock"
    # The snippets include each other relative to nginx.conf's directory (fetchml-websocket.conf).
    ln -sfn "$ROOT/nginx" "$VAR/nginx/fetchml"
    subst "$ROOT/nginx/local/nginx.conf.in" "$VAR/nginx/nginx.conf" "VAR=$VAR" "ROOT=$ROOT" \
        "HTTPS_PORT=$HTTPS_PORT" "HTTP_PORT=$HTTP_PORT" "NGINX_USER=$user_line" \
        "MAX_FILE_BYTES=$(max_file_bytes)"
    # -e: the few lines nginx writes before it has read its configuration.
    nginx -q -t -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -e "$VAR/log/nginx-startup.log" ||
        fm_die "nginx configuration test failed"
    nginx -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -e "$VAR/log/nginx-startup.log" ||
        fm_die "nginx did not start (see $VAR/log/nginx-startup.log)"
}

# Apache 2.4 instead of nginx (FETCHML_FRONT=apache): the same ports, a
# private ServerRoot in $VAR/apache (config, pid, locks, session cache, its
# startup log, a copy of the dev certificate and key), and no process of it as
# root: started as root, all of Apache runs as www-data from the start
# (setpriv), master included, which the unprivileged ports allow. Its pid file
# and startup log are linked into $RUN and $VAR/log.
start_apache() {
    alive apache && return 0
    local as=() owner
    owner=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        as=(setpriv --reuid=www-data --regid=www-data --init-groups)
        owner=www-data
    fi
    mkdir -p "$VAR/apache"
    chown "$owner" "$VAR/apache"
    install -m 0600 -o "$owner" "$DEV/tls.key" "$VAR/apache/tls.key"
    install -m 0644 -o "$owner" "$DEV/tls.crt" "$VAR/apache/tls.crt"
    local startup=$VAR/apache/startup.log
    [ -e "$startup" ] || install -m 0640 -o "$owner" /dev/null "$startup"
    ln -sfn "$startup" "$VAR/log/apache-startup.log"
    subst "$ROOT/conf/apache/local/httpd.conf.in" "$VAR/apache/httpd.conf" "VAR=$VAR" "ROOT=$ROOT" \
        "HTTPS_PORT=$HTTPS_PORT" "HTTP_PORT=$HTTP_PORT" "MAX_FILE_BYTES=$(max_file_bytes)"
    ln -sfn "$VAR/apache/apache.pid" "$RUN/apache.pid"
    "${as[@]}" apache2 -t -f "$VAR/apache/httpd.conf" -E "$startup" 2>>"$startup" ||
        fm_die "apache2 configuration test failed (see $startup)"
    "${as[@]}" apache2 -f "$VAR/apache/httpd.conf" -E "$startup" -k start ||
        fm_die "apache2 did not start (see $startup)"
    wait_for 5 test -s "$RUN/apache.pid" || fm_die "apache2 wrote no pid file (see $startup)"
}

# answers: the stack answers GET /health without a key (401); sets code.
answers() {
    code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/health" || true)
    [ "$code" = 401 ]
}
# serves: a worker answers GET /health, whatever the new configuration makes of
# this client (401; 403 when its allow-list leaves 127.0.0.1 out; 503 while Redis
# is down): a worker's answer carries Cache-Control: no-store, nginx's own error
# pages do not; sets code.
serves() {
    local headers
    headers=$(curl -sk -o /dev/null -D - "https://127.0.0.1:$HTTPS_PORT/health" || true)
    code=$(printf '%s\n' "$headers" | awk 'NR == 1 { print $2 }')
    printf '%s\n' "$headers" | tr -d '\r' | grep -qi '^cache-control: no-store$'
}

do_start() {
    fm_install_deps
    fm_build "$BUILD"
    mkdir -p "$VAR/log" "$RUN/nchan" "$VAR/nginx/extra" "$VAR/redis" "$VAR/experiments"
    chmod 755 "$VAR"
    chmod 750 "$VAR/log" "$VAR/redis"
    chmod 700 "$VAR/experiments" "$RUN/nchan"
    first_run
    local pool
    if pool=$(fm_pool_user); then
        # The pool gives up root for $pool (server.user). nginx's workers run as
        # www-data and must reach the FastCGI socket; the pool removes its
        # socket and pid file at stop. It writes its logs and the experiment
        # trees, reads its configuration on reload, and its relay (alone with
        # root) reaches nchan's publisher socket.
        # The audit logger runs as an account of its own: it owns the log
        # directory (sticky, so the pool cannot remove the trail), the trail
        # and its signing key; $DEV lets it reach the key, not read the rest.
        local pgroup audit
        pgroup=$(id -gn "$pool")
        audit=$(fm_audit_user)
        chown "$pool:www-data" "$RUN" && chmod 750 "$RUN" &&
            chgrp "$pgroup" "$DEV" "$RUN/nchan" && fm_audit_dir "$VAR/log" &&
            chmod 711 "$DEV" && chmod 750 "$RUN/nchan" && fm_pool_file "$DEV/config.yaml" &&
            chown "$audit:$audit" "$DEV/audit-sign.key" && chmod 400 "$DEV/audit-sign.key" &&
            chown -R "$pool:$pgroup" "$VAR/experiments" ||
            fm_die "cannot give $VAR to the pool's account $pool and the audit logger's $audit"
    fi
    start_redis
    start_fcgi
    start_logrelay
    "start_$FRONT"
    local code=000
    wait_for 5 answers || fm_die "the stack does not answer on https://127.0.0.1:$HTTPS_PORT (got $code)"
    cat <<MSG

fetchml-fcgi is running on https://127.0.0.1:$HTTPS_PORT (http://127.0.0.1:$HTTP_PORT redirects).
Demo keys are in $DEV/keys.env; the config is $DEV/config.yaml (edit, then '$0 reload').

  . $DEV/keys.env
  curl -sk -H "X-API-Key: \$FETCHML_RESEARCHER_KEY" https://127.0.0.1:$HTTPS_PORT/v1/whoami
  curl -sk -H "Authorization: Bearer \$FETCHML_RESEARCHER_KEY" -H 'Content-Type: application/json' \\
       -d '{"job_name":"train-resnet","priority":7}' https://127.0.0.1:$HTTPS_PORT/v1/tasks

Logs: $VAR/log/ (api.log, audit.log, nginx-*.log, redis.log). Stop with '$0 stop'.
MSG
}

# new_generation MASTER "OLD_PIDS" LOG MARK: the reload is over. Either the
# master refused it (a "reload refused" line in LOG after line MARK; sets
# REFUSED), or every worker from before the signal has exited and a new one
# runs: from then on every request meets the new snapshot.
REFUSED=""
new_generation() {
    local p
    REFUSED=$(tail -n +"$(($4 + 1))" "$3" 2>/dev/null | grep -m1 'reload refused' || true)
    [ -z "$REFUSED" ] || return 0
    for p in $2; do
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" != "$1" ] || return 1
    done
    [ -n "$(pgrep -P "$1" || true)" ]
}

do_reload() {
    alive fcgi || fm_die "fetchml-fcgi is not running"
    set -a
    . "$DEV/redis.env"
    set +a
    if ! "$BUILD/fetchml-fcgi" -t -c "$DEV/config.yaml" >/dev/null; then
        fm_say "the running configuration stays in force"
        exit 1
    fi
    local master log=$VAR/log/fcgi.stderr old mark code=000
    master=$(pid_of fcgi)
    # The audit logger serves every generation: it is not replaced.
    old=$(ps --ppid "$master" -o pid=,comm= | awk '$2 != "fetchml-audit" { print $1 }' | tr '\n' ' ' || true)
    # The master logs to its stderr (this file) whatever logging.level says about info lines.
    mark=$(wc -l <"$log" 2>/dev/null || echo 0)
    kill -HUP "$master"
    # The relay redacts the config's keys in nginx's logs: it reads them again too.
    ! alive logrelay || kill -HUP "$(pid_of logrelay)"
    if ! wait_for "$RELOAD_WAIT_S" new_generation "$master" "$old" "$log" "$mark"; then
        fm_die "the new configuration did not take over within ${RELOAD_WAIT_S} s" \
            "(FETCHML_RELOAD_WAIT); see $VAR/log/api.log and $log"
    fi
    if [ -n "$REFUSED" ]; then
        fm_say "$REFUSED"
        fm_say "the running configuration stays in force"
        exit 1
    fi
    wait_for "$RELOAD_WAIT_S" serves ||
        fm_die "the stack does not answer on https://127.0.0.1:$HTTPS_PORT after the reload (got $code)"
    fm_say "reloaded: the new configuration serves"
}

do_status() {
    local s
    for s in redis fcgi logrelay nginx apache; do
        if alive "$s"; then echo "$s: running (pid $(pid_of "$s"))"; else echo "$s: stopped"; fi
    done
}

case "${1:-start}" in
start) do_start ;;
stop) do_stop ;;
reload) do_reload ;;
status) do_status ;;
*) echo "usage: $0 [start|stop|reload|status]" >&2; exit 2 ;;
esac
