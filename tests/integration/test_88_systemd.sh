# systemd units (conf/systemd/, conf/README.md "systemd"): each parses
# (systemd-analyze verify, on a copy whose ExecStart= names this build's
# programs), is sandboxed to an exposure of at most 2.0 by
# systemd-analyze security --offline=true with nothing on stderr, takes the
# Redis password by LoadCredential=. The pool's is fetchml-api.service (the security
# guide's journalctl -u fetchml-api: journalctl does not follow an alias), also
# fetchml-fcgi.service.
# The pool's unit starts the master as root with only the capabilities of its
# start; the accounts and directories come from fetchml.sysusers and
# fetchml.tmpfiles. Nothing here needs systemd running (this machine's PID 1
# is not systemd); scripts/check-systemd.sh boots one and runs the units.
t88_dir=$(mktemp -d "$OUT/t88.XXXXXX")
for t88_unit in "$ROOT"/conf/systemd/*.service; do
    t88_name=$(basename "$t88_unit")
    t88_security() {
        local out
        out=$(systemd-analyze security --offline=true --no-pager "$t88_unit" 2>"$t88_dir/$t88_name.err") || return 1
        t88_level=$(sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$out")
        [ -n "$t88_level" ] && awk -v l="$t88_level" 'BEGIN { exit !(l <= 2.0) }'
    }
    t88_level=?
    check "$t88_name: systemd-analyze security --offline exposure at most 2.0" t88_security
    printf '    (%s: %s)\n' "$t88_name" "$t88_level"
    t88_quiet() { [ ! -s "$t88_dir/$t88_name.err" ] || { cat "$t88_dir/$t88_name.err" >&2; return 1; }; }
    check "$t88_name: ... with nothing on stderr" t88_quiet
    sed "s|/usr/local/bin/|$FETCHML_BUILD/|g" "$t88_unit" >"$t88_dir/$t88_name"
    t88_verify() {
        systemd-analyze verify --man=no "$t88_dir/$t88_name" >"$t88_dir/$t88_name.verify" 2>&1 &&
            [ ! -s "$t88_dir/$t88_name.verify" ] || { cat "$t88_dir/$t88_name.verify" >&2; return 1; }
    }
    check "$t88_name: systemd-analyze verify finds nothing" t88_verify
    check "$t88_name: the Redis password by LoadCredential=, never in the environment" \
        bash -c "grep -q '^LoadCredential=redis-password:/etc/fetch_ml/credentials/redis-password$' '$t88_unit' &&
            ! grep -Eq '^(Environment|EnvironmentFile)=' '$t88_unit'"
done
check "fetchml-api.service is also fetchml-fcgi.service (systemctl reload fetchml-fcgi)" \
    grep -qx 'Alias=fetchml-fcgi.service' "$ROOT/conf/systemd/fetchml-api.service"

# The pool's unit: root at the start (the master forks the audit logger, which becomes
# logging.audit_user, then gives up root for server.user), with the bounding set of that
# start alone, each capability explained, nothing ambient, no_new_privs.
t88_pool=$ROOT/conf/systemd/fetchml-api.service
t88_caps="CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE"
t88_root_start() {
    ! grep -Eq '^(User|DynamicUser|Group)=' "$t88_pool" &&
        grep -qx "CapabilityBoundingSet=$t88_caps" "$t88_pool" &&
        grep -qx 'AmbientCapabilities=' "$t88_pool" && grep -qx 'NoNewPrivileges=yes' "$t88_pool" &&
        [ "$(grep -c '^CapabilityBoundingSet=' "$t88_pool")" = 1 ]
}
check "fetchml-api.service starts as root with only $t88_caps, none ambient, no_new_privs" t88_root_start
t88_caps_explained() {
    local c
    for c in $t88_caps; do grep -Eq "^#.*\b$c\b" "$t88_pool" || return 1; done
}
check "... each capability has its reason in a comment" t88_caps_explained
# No RuntimeDirectory= and the like: systemd gives such a directory, and all in it, to the
# unit's user at every start (root for the pool, fetchml:fetchml for the relay), and the
# two units share /run/fetch_ml and /var/log/fetch_ml.
check "neither unit makes a directory of its own (fetchml.tmpfiles does, with its owners)" \
    bash -c "! grep -Eq '^(Runtime|Logs|State|Cache|Configuration)Directory=' '$ROOT'/conf/systemd/*.service"
# systemd 252 gives ExecReload= no credentials in a mount namespace (systemd/systemd#35227):
# a `fetchml-fcgi -t` there cannot read the password, and every reload would fail.
# And the pool's HUP comes from outside the sandbox: its root has no CAP_KILL, and the
# master is fetchml by then.
t88_reload() {
    grep -qx 'ExecReload=+/bin/kill -HUP $MAINPID' "$t88_pool" &&
        ! grep -h '^ExecReload=' "$ROOT"/conf/systemd/*.service | grep -Eqv '^ExecReload=\+?/bin/kill -HUP \$MAINPID$'
}
check "no ExecReload= needs the credential (only the HUP, for the pool from outside its sandbox)" t88_reload

# The accounts and directories, made in an empty root as systemd-sysusers and
# systemd-tmpfiles make them on the host.
t88_root=$t88_dir/root
mkdir -p "$t88_root/etc" "$t88_root/usr/local/lib/sysusers.d" "$t88_root/usr/local/lib/tmpfiles.d"
echo 'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin' >"$t88_root/etc/passwd"
echo 'www-data:x:33:' >"$t88_root/etc/group"
cp "$ROOT/conf/systemd/fetchml.sysusers" "$t88_root/usr/local/lib/sysusers.d/fetchml.conf"
cp "$ROOT/conf/systemd/fetchml.tmpfiles" "$t88_root/usr/local/lib/tmpfiles.d/fetchml.conf"
t88_id() { awk -F: -v n="$2" '$1 == n { print $3 }' "$t88_root/etc/$1"; }
t88_sysusers() {
    systemd-sysusers --root="$t88_root" fetchml.conf >"$t88_dir/sysusers.out" 2>&1 &&
        [ -n "$(t88_id passwd fetchml)" ] && [ -n "$(t88_id passwd fetchml-audit)" ] &&
        [ "$(t88_id passwd fetchml)" != "$(t88_id passwd fetchml-audit)" ] &&
        grep -Eq '^redis:x:[0-9]+:(.*,)?fetchml(,|$)' "$t88_root/etc/group"
}
check "fetchml.sysusers: the accounts fetchml and fetchml-audit, fetchml in group redis" t88_sysusers
t88_tmpfiles() {
    local f=$(t88_id passwd fetchml) a=$(t88_id passwd fetchml-audit) w=33
    systemd-tmpfiles --root="$t88_root" --create fetchml.conf >"$t88_dir/tmpfiles.out" 2>&1 &&
        [ "$(stat -c '%u %g %a' "$t88_root/run/fetch_ml")" = "$f $w 750" ] &&
        [ "$(stat -c '%u %g %a' "$t88_root/run/fetch_ml/nchan")" = "0 $f 750" ] &&
        [ "$(stat -c '%u %g %a' "$t88_root/var/log/fetch_ml")" = "0 0 755" ] &&
        [ "$(stat -c '%u %a' "$t88_root/var/log/fetch_ml/audit.log")" = "$a 600" ] &&
        [ "$(stat -c '%u %a' "$t88_root/var/log/fetch_ml/api.log")" = "$f 640" ] &&
        [ "$(stat -c '%u %a' "$t88_root/var/lib/fetch_ml-audit")" = "$a 700" ] &&
        [ "$(stat -c '%u %g %a' "$t88_root/var/lib/fetch_ml/experiments")" = "$f $f 750" ]
}
check "fetchml.tmpfiles: /run/fetch_ml fetchml:www-data, its nchan/ root:fetchml, the logs root's with each file its writer's (the trail fetchml-audit's, 0600), the logger's key directory, the state" t88_tmpfiles
t88_rw_paths() {
    local d
    for d in $(awk '$1 == "d" && $2 !~ /\/nchan$/ && $2 !~ /experiments$/ && $2 !~ /fetch_ml-audit$/ { print $2 }' \
        "$ROOT/conf/systemd/fetchml.tmpfiles"); do
        grep -Eq "^ReadWritePaths=(.* )?$d( |$)" "$t88_pool" || return 1
    done
}
check "... and the pool may write each of them (ReadWritePaths=)" t88_rw_paths

# What the units' ExecStartPre= runs, with a credentials directory as systemd makes one (a
# private directory, the file mode 0400): config-prod.yaml reads the password from it.
mkdir -m 0700 "$t88_dir/credentials"
(umask 077 && openssl rand -hex 24 >"$t88_dir/credentials/redis-password")
chmod 0400 "$t88_dir/credentials/redis-password"
# (tests/unit/test_config.c checks the password read is that file's.)
prod_config "$t88_dir/config-prod.yaml"
t88_prod() {
    CREDENTIALS_DIRECTORY=$t88_dir/credentials "$FETCHML_BUILD/fetchml-fcgi" -t \
        -c "$t88_dir/config-prod.yaml" >"$t88_dir/check.out" 2>&1 &&
        grep -q 'test is successful' "$t88_dir/check.out"
}
check "fetchml-fcgi -t reads config-prod.yaml's Redis password from \$CREDENTIALS_DIRECTORY" t88_prod
t88_nocreds() {
    ! env -u CREDENTIALS_DIRECTORY "$FETCHML_BUILD/fetchml-fcgi" -t -c "$t88_dir/config-prod.yaml" \
        >"$t88_dir/nocreds.out" 2>&1 && grep -q 'CREDENTIALS_DIRECTORY is not set' "$t88_dir/nocreds.out"
}
check "... and refuses to start without it (CREDENTIALS_DIRECTORY is not set)" t88_nocreds
