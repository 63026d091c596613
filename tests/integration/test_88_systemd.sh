# systemd units (conf/systemd/, conf/README.md "systemd"): each parses
# (systemd-analyze verify, on a copy whose ExecStart= names this build's
# programs), is sandboxed to an exposure of at most 2.0 by
# systemd-analyze security --offline=true with nothing on stderr, takes the
# Redis password by LoadCredential=, and the pool's is also fetchml-api.service.
# Nothing here needs systemd running: this machine may have no PID 1 systemd.
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
check "fetchml-fcgi.service is also fetchml-api.service (journalctl -u fetchml-api)" \
    grep -qx 'Alias=fetchml-api.service' "$ROOT/conf/systemd/fetchml-fcgi.service"

# What the units' ExecStartPre= runs, with a credentials directory as systemd makes one (a
# private directory, the file mode 0400): config-prod.yaml reads the password from it.
mkdir -m 0700 "$t88_dir/credentials"
(umask 077 && openssl rand -hex 24 >"$t88_dir/credentials/redis-password")
chmod 0400 "$t88_dir/credentials/redis-password"
# (tests/unit/test_config.c checks the password read is that file's.)
t88_prod() {
    CREDENTIALS_DIRECTORY=$t88_dir/credentials "$FETCHML_BUILD/fetchml-fcgi" -t \
        -c "$ROOT/conf/config-prod.yaml" >"$t88_dir/check.out" 2>&1 &&
        grep -q 'test is successful' "$t88_dir/check.out"
}
check "fetchml-fcgi -t reads config-prod.yaml's Redis password from \$CREDENTIALS_DIRECTORY" t88_prod
t88_nocreds() {
    ! env -u CREDENTIALS_DIRECTORY "$FETCHML_BUILD/fetchml-fcgi" -t -c "$ROOT/conf/config-prod.yaml" \
        >"$t88_dir/nocreds.out" 2>&1 && grep -q 'CREDENTIALS_DIRECTORY is not set' "$t88_dir/nocreds.out"
}
check "... and refuses to start without it (CREDENTIALS_DIRECTORY is not set)" t88_nocreds
