# Redis's ACL (conf/redis/, conf/README.md "Redis"): the product's own user may
# run exactly what the product sends, on its keys and its one channel; the
# default user is off; the AOF keeps tasks across a crash of Redis.
t51_pw=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env")
t51_cli() { # t51_cli ARGS...: redis-cli as the product's user, fetchml
    REDISCLI_AUTH=$t51_pw timeout 5 redis-cli --no-auth-warning --user fetchml \
        -s "$FETCHML_VAR/run/redis.sock" "$@"
}
t51_refused() { # t51_refused ARGS...: the product's user gets NOPERM for this command
    local out
    out=$(t51_cli "$@" 2>&1)
    [[ $out == NOPERM* ]] || { printf '    %s: %s\n' "$*" "$out" >&2; return 1; }
}

# What every test before this one made the product send was allowed (run.sh checks the rest).
t51_before=$(acl_refusals fetchml)
check "no command, key or channel of the product was refused by the ACL so far (${t51_before:-none})" \
    [ -z "$t51_before" ]
t51_ping() { [ "$(t51_cli PING)" = PONG ]; }
check "the product's user works: PING" t51_ping
t51_default() { [[ $(REDISCLI_AUTH=$t51_pw redis-cli --no-auth-warning -s "$FETCHML_VAR/run/redis.sock" PING 2>&1) == *WRONGPASS* ]]; }
check "the default user is off: AUTH with the product's password as default is refused" t51_default

set -f # the commands' words are not file names
for t51_cmd in FLUSHALL FLUSHDB "CONFIG GET *" "CONFIG SET appendonly no" "KEYS *" "SCAN 0" \
    "SHUTDOWN NOSAVE" "ACL SETUSER fetchml +@all" "ACL LIST" "MONITOR" \
    "EVAL return 0" "FUNCTION FLUSH" "FCALL f 0" "MODULE LIST" "SCRIPT FLUSH" "REPLICAOF 127.0.0.1 1" \
    "CLIENT LIST" "SAVE" "MIGRATE 127.0.0.1 1 fetchml:x 0 10"; do
    # shellcheck disable=SC2086 # the words of the command
    check "the product's user may not run $t51_cmd" t51_refused $t51_cmd
done
set +f
t51_debug() { [[ $(t51_cli DEBUG SLEEP 0 2>&1) == *"DEBUG command not allowed"* ]]; }
check "DEBUG is refused to every client (enable-debug-command no)" t51_debug
# New code: loading it is allowed (a restarted Redis has forgotten the product's scripts and
# each worker loads them again), running it is not.
t51_sha=$(t51_cli SCRIPT LOAD "return redis.call('FLUSHALL')")
t51_is_sha() { [[ $t51_sha =~ ^[0-9a-f]{40}$ ]]; }
check "SCRIPT LOAD of new code answers its SHA-1 ($t51_sha)" t51_is_sha
check "... and EVALSHA of it is refused" t51_refused EVALSHA "$t51_sha" 0
check "keys outside redis.key_prefix are refused" t51_refused GET other:key
check "SET outside redis.key_prefix is refused" t51_refused SET other:key 1
check "channels other than <prefix>events are refused" t51_refused PUBLISH other 1
check "commands the product does not send are refused on its own keys (RENAME)" \
    t51_refused RENAME fetchml:a fetchml:b
t51_logged() { acl_refusals fetchml | grep -q '^command flushall$'; }
check "the ACL logged those refusals" t51_logged
rcli ACL LOG RESET >/dev/null

# The file the dev stack loaded is fetchml-admin redis-acl of its config, as in production.
t51_acl() {
    REDIS_PASSWORD=$t51_pw "$FETCHML_BUILD/fetchml-admin" redis-acl "$FETCHML_VAR/dev/config.yaml" |
        cmp -s - <(head -2 "$FETCHML_VAR/dev/users.acl")
}
check "the dev Redis runs the ACL of fetchml-admin redis-acl" t51_acl
# conf/redis/users.acl is that command's output for conf/config-prod.yaml (the hash aside).
t51_nohash() { sed -E 's/ #[0-9a-f]{64} / #<sha256> /' "$@"; }
t51_prod() {
    local creds
    creds=$(mktemp -d "$OUT/t51-creds.XXXXXX")
    (umask 077 && echo x >"$creds/redis-password")
    prod_config "$creds/config-prod.yaml" &&
        CREDENTIALS_DIRECTORY=$creds "$FETCHML_BUILD/fetchml-admin" redis-acl \
            "$creds/config-prod.yaml" | t51_nohash | cmp - <(t51_nohash "$ROOT/conf/redis/users.acl")
}
check "conf/redis/users.acl is fetchml-admin redis-acl conf/config-prod.yaml (regenerate it when a script changes)" t51_prod

# ---- AOF: a task survives a crash of Redis (appendfsync everysec) ----------------------
t51_pidfile=$FETCHML_VAR/run/redis.pid
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"t51-aof","priority":3}'
t51_id=$(json .id)
check "a task is created before the crash" status_is 201
t51_aof() { rcli INFO persistence | tr -d '\r' | grep -q '^aof_enabled:1$'; }
check "Redis runs with the AOF on" t51_aof
t51_fsync() { [ "$(rcli CONFIG GET appendfsync | tail -1)" = everysec ]; }
check "... fsynced every second" t51_fsync
sleep 1.2 # everysec: what is older than a second is on disk
t51_old=$(cat "$t51_pidfile")
kill -KILL "$t51_old"
t51_gone() { ! kill -0 "$t51_old" 2>/dev/null; }
check "Redis is killed (SIGKILL: no shutdown save)" wait_for 5 t51_gone
t51_up() { [ "$(rcli PING 2>/dev/null)" = PONG ]; }
t51_start() { fm_redis_server "$FETCHML_VAR/dev/redis.conf" >/dev/null && wait_for 5 t51_up; }
check "Redis starts again with the same config" t51_start
t51_get() { as researcher GET "/v1/tasks/$t51_id" && status_is 200 && json_is .job_name t51-aof; }
check "the task is there after the restart" wait_for 5 t51_get
# The restart emptied Redis's script cache: the product's user loads its scripts again.
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"t51-after","priority":3}'
check "a task is created after the restart (its script loaded again)" status_is 201
as researcher POST "/v1/tasks/$t51_id/cancel"
check "... and the first one cancelled" status_is 200
t51_after=$(acl_refusals fetchml)
check "nothing the product sent after the restart was refused (${t51_after:-none})" [ -z "$t51_after" ]

# ---- conf/redis/redis.conf: production's file starts Redis with what it promises -------
# Its paths are moved into a directory of this test's; the ACL file is conf/redis/users.acl
# with an operator user added, as conf/README.md tells operators to.
t51_dir=$(mktemp -d "$OUT/t51-prod.XXXXXX")
t51_ops=$(openssl rand -hex 16)
{
    cat "$ROOT/conf/redis/users.acl"
    printf 'user ops on #%s ~* &* +@all\n' "$(printf '%s' "$t51_ops" | sha256sum | cut -d' ' -f1)"
} >"$t51_dir/users.acl"
redis-server "$ROOT/conf/redis/redis.conf" --supervised no --daemonize yes \
    --unixsocket "$t51_dir/r.sock" --pidfile "$t51_dir/r.pid" --logfile "$t51_dir/r.log" \
    --dir "$t51_dir" --aclfile "$t51_dir/users.acl" >/dev/null 2>&1
t51_pcli() { REDISCLI_AUTH=$t51_ops timeout 5 redis-cli --no-auth-warning --user ops -s "$t51_dir/r.sock" "$@"; }
t51_pup() { [ "$(t51_pcli PING 2>/dev/null)" = PONG ]; }
check "conf/redis/redis.conf starts Redis (paths moved to a test directory)" wait_for 5 t51_pup
t51_pconf() {
    local want=$1 got
    shift
    got=$(t51_pcli CONFIG GET "$@" | paste -d= - - | LC_ALL=C sort | tr '\n' ' ')
    [ "$got" = "$want" ] || { printf '    got: %s\n' "$got" >&2; return 1; }
}
check "... with no TCP port, AOF, appendfsync everysec, maxmemory 256mb, noeviction" \
    t51_pconf "appendfsync=everysec appendonly=yes maxmemory-policy=noeviction maxmemory=268435456 port=0 " \
    port appendonly appendfsync maxmemory maxmemory-policy
t51_pdefault() { [[ $(redis-cli -s "$t51_dir/r.sock" PING 2>&1) == NOAUTH* ]]; }
check "... and the default user off (NOAUTH)" t51_pdefault
t51_pcli SHUTDOWN NOSAVE >/dev/null 2>&1
