#!/usr/bin/env bash
# Runs the units of conf/systemd/ under a real systemd: a minimal Debian 12
# (debootstrap, kept between runs) booted with systemd-nspawn, a throw-away
# copy each run (-x), so that nothing of a run stays. Inside, the install of
# docs/operations.md: the accounts (fetchml.sysusers), the directories
# (fetchml.tmpfiles), this build's programs, the units, a production config
# (conf/config-prod.yaml with one known key), the Redis password as a
# root-only file (mode 0440) that LoadCredential= hands the pool, Redis with
# the ACL file of fetchml-admin redis-acl. Then it checks that both units
# start, the pool starts as root and gives it up, serves through its socket
# (a FastCGI request from nginx's user, from the host), logs to the journal
# (journalctl -u fetchml-api; the alias fetchml-fcgi works for systemctl),
# survives `systemctl reload`
# (which reads the credential again after the master gave up root), stops
# cleanly and starts again over its own files. Needs root and the network
# for the first debootstrap: about four minutes then, seconds after. Not
# part of scripts/test.sh (slow, and it boots a container).
#
#   scripts/check-systemd.sh
#
# Environment: FETCHML_BUILD (build/; a build without sanitizers), FETCHML_SYSTEMD_ROOT (the Debian tree,
# /var/tmp/fetchml-systemd-root; made when missing), FETCHML_SYSTEMD_OUT (a
# new temporary directory: the journal and what the checks saw; kept).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

BUILD=${FETCHML_BUILD:-$ROOT/build}
BASE=${FETCHML_SYSTEMD_ROOT:-/var/tmp/fetchml-systemd-root}
OUT=${FETCHML_SYSTEMD_OUT:-$(mktemp -d /tmp/fetchml-systemd.XXXXXX)}
PROGRAMS="fetchml-fcgi fetchml-admin fetchml-logrelay"
[ "$(id -u)" -eq 0 ] || fm_die "run as root (debootstrap, systemd-nspawn)"
for p in $PROGRAMS; do [ -x "$BUILD/$p" ] || fm_die "no $BUILD/$p: build first"; done
FM_PACKAGES="debootstrap systemd-container python3" fm_install_deps
mkdir -p "$OUT" && chmod 0755 "$OUT"

# ---- the Debian tree, once: systemd, Redis and the libraries the programs link --------
if [ ! -x "$BASE/usr/lib/systemd/systemd" ]; then
    # The package of each library, by its real path (the /usr-merged name or the other).
    libs=$(for p in $PROGRAMS; do ldd "$BUILD/$p"; done | awk '$3 ~ /^\// { print $3 }' | sort -u |
        while read -r f; do
            f=$(realpath "$f")
            dpkg -S "$f" 2>/dev/null || dpkg -S "/usr$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null
        done | cut -d: -f1 | sort -u | tr '\n' ,)
    # The host's Debian mirror, as apt has it.
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
    fm_say "debootstrap Debian 12 into $BASE (once; a few minutes)"
    rm -rf "$BASE.new"
    timeout 1200 debootstrap --variant=minbase \
        --include="${libs}systemd,systemd-sysv,dbus,redis-server,procps" bookworm "$BASE.new" \
        "${mirror:-http://deb.debian.org/debian}" >"$OUT/debootstrap.log" 2>&1 ||
        { tail -5 "$OUT/debootstrap.log"; fm_die "debootstrap failed"; }
    mv "$BASE.new" "$BASE"
fi

# ---- what the install copies in, read-only at /opt/fetchml-check ------------------------
stage=$OUT/stage
mkdir -p "$stage/bin" "$OUT/run"
for p in $PROGRAMS; do cp "$BUILD/$p" "$stage/bin/"; done
cp "$ROOT"/conf/systemd/* "$ROOT/conf/redis/redis.conf" "$stage/"
KEY=$(openssl rand -hex 32)
KEY_HASH=$(printf '%s' "$KEY" | "$BUILD/fetchml-admin" hash) || fm_die "fetchml-admin hash failed"
# The production file, with one more user, whose key this script knows.
fm_config_apply "auth.api_keys+=    checker:
      hash: \"$KEY_HASH\"
      roles: [\"researcher\"]" \
    <"$ROOT/conf/config-prod.yaml" >"$stage/config-prod.yaml" || fm_die "cannot write the config"
cat >"$stage/install.sh" <<'EOF'
set -e
s=/opt/fetchml-check
install -m 0755 $s/bin/* /usr/local/bin/
install -d /usr/local/lib/systemd/system /usr/local/lib/sysusers.d /usr/local/lib/tmpfiles.d
install -m 0644 $s/*.service /usr/local/lib/systemd/system/
install -m 0644 $s/fetchml.sysusers /usr/local/lib/sysusers.d/fetchml.conf
install -m 0644 $s/fetchml.tmpfiles /usr/local/lib/tmpfiles.d/fetchml.conf
systemd-sysusers
systemd-tmpfiles --create fetchml.conf
install -d -m 0750 -o root -g fetchml /etc/fetch_ml
install -m 0640 -o root -g fetchml $s/config-prod.yaml /etc/fetch_ml/
install -d -m 0700 /etc/fetch_ml/credentials
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >/etc/fetch_ml/credentials/redis-password)
chmod 0400 /etc/fetch_ml/credentials/redis-password
# The audit logger's signing key (its account's alone) and the relay's publisher token (root's).
fetchml-admin audit-keygen /var/lib/fetch_ml-audit/audit-sign.key /etc/fetch_ml/audit-sign.pub >/dev/null
chown fetchml-audit:fetchml-audit /var/lib/fetch_ml-audit/audit-sign.key
chmod 0400 /var/lib/fetch_ml-audit/audit-sign.key
fetchml-admin publisher-token /etc/fetch_ml/publisher-token /etc/fetch_ml/publisher-token.conf >/dev/null
CREDENTIALS_DIRECTORY=/etc/fetch_ml/credentials \
    fetchml-admin redis-acl /etc/fetch_ml/config-prod.yaml >/etc/redis/users.acl
chown redis:redis /etc/redis/users.acl && chmod 0640 /etc/redis/users.acl
install -m 0640 -o redis -g redis $s/redis.conf /etc/redis/redis.conf
systemctl restart redis-server
systemctl daemon-reload
systemctl enable --now fetchml-logrelay fetchml-api
EOF

# ---- boot -------------------------------------------------------------------------------
# /run/fetch_ml is a directory of the host's, so that a request can come from the host.
fm_say "booting $BASE (a throw-away copy) with systemd-nspawn"
# -x copies the tree beside it as .#machine.<name>..., removed when nspawn ends by itself.
copies() { find "$(dirname "$BASE")" -maxdepth 1 -name ".#*machine.$(basename "$BASE")*" | sort; }
copies_before=$(copies)
systemd-nspawn -q -x -b -D "$BASE" --register=no --keep-unit --console=pipe \
    --bind-ro="$stage:/opt/fetchml-check" --bind="$OUT/run:/run/fetch_ml" \
    </dev/null >"$OUT/boot.log" 2>&1 &
nspawn=$!
leader=""
stop_container() {
    if [ -n "$leader" ]; then
        nsenter -t "$leader" -a journalctl -b --no-pager -o short-precise >"$OUT/journal.txt" 2>&1
        nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1
    fi
    for _ in $(seq 60); do kill -0 "$nspawn" 2>/dev/null || return 0; sleep 0.5; done
    kill -TERM "$nspawn" 2>/dev/null
    sleep 2
    kill -0 "$nspawn" 2>/dev/null || return 0
    kill -KILL "$nspawn" 2>/dev/null
    [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
    # Killed, nspawn leaves its copy: this run's only.
    comm -13 <(printf '%s\n' "$copies_before") <(copies) | while read -r c; do rm -rf "$c"; done
}
trap stop_container EXIT
for _ in $(seq 100); do
    leader=$(pgrep -P "$nspawn" | head -1)
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { cat "$OUT/boot.log"; fm_die "systemd-nspawn did not start a container"; }
inside() { timeout 60 nsenter -t "$leader" -a "$@"; }
booted() { [[ $(inside systemctl is-system-running 2>/dev/null) == @(running|degraded) ]]; }
for _ in $(seq 60); do booted && break; sleep 1; done
booted || { cat "$OUT/boot.log"; fm_die "the container's systemd did not finish booting"; }
fm_say "systemd $(inside systemctl --version | awk 'NR == 1 { print $2 }') is PID 1 in the container"

# ---- the checks -------------------------------------------------------------------------
pass=0 fail=0
check() {
    local what=$1
    shift
    if "$@" >>"$OUT/checks.log" 2>&1; then
        pass=$((pass + 1)) && printf '  ok    %s\n' "$what"
    else
        fail=$((fail + 1)) && printf '  FAIL  %s\n' "$what"
    fi
}
journal() { inside journalctl -b --no-pager -o cat "$@"; }
prop() { inside systemctl show -P "$1" "$2"; }
request() { # the status of GET /v1/whoami with the key, from nginx's user on the host
    python3 "$ROOT/tests/integration/fcgi_request.py" "$OUT/run/fcgi.sock" "$OUT/body" \
        --as www-data REQUEST_METHOD=GET DOCUMENT_URI=/v1/whoami SCRIPT_NAME=/v1/whoami \
        QUERY_STRING= REMOTE_ADDR=127.0.0.1 REQUEST_ID="check$RANDOM" "HTTP_X_API_KEY=$KEY"
}
serves() { [ "$(request)" = 200 ] && grep -q '"checker"' "$OUT/body"; }

check "the install (sysusers, tmpfiles, programs, units, config, credential, Redis ACL)" \
    inside bash /opt/fetchml-check/install.sh
[ "$fail" -eq 0 ] || { tail -20 "$OUT/checks.log"; fm_die "the install failed"; }
is_active() { [ "$(inside systemctl is-active "$1")" = active ]; }
# Active, and not by a restart after a failed start (Restart=on-failure).
started() { sleep 1 && is_active "$1" && [ "$(prop NRestarts "$1")" = 0 ]; }
for u in fetchml-logrelay fetchml-api fetchml-fcgi; do
    check "systemctl is-active $u (no restart)" started "$u"
done
logged() { # logged UNIT GREP-ARGS...: within 10 s, the unit's journal has the line
    local unit=$1
    shift
    for _ in $(seq 20); do
        journal -u "$unit" | grep "$@" >/dev/null && return 0
        sleep 0.5
    done
    return 1
}
check "journalctl -u fetchml-api shows the pool's lines (its start)" \
    logged fetchml-api 'fetchml-fcgi started: 8 workers on unix:/run/fetch_ml/fcgi.sock'
master=$(prop MainPID fetchml-fcgi)
fetchml_uid=$(inside id -u fetchml)
status_of() { inside cat "/proc/$master/status" | awk -v f="$1:" '$1 == f { $1 = ""; print substr($0, 2) }'; }
dropped() {
    [ "$(status_of Uid)" = "$fetchml_uid $fetchml_uid $fetchml_uid $fetchml_uid" ] &&
        [ "$(status_of CapPrm)" = 0000000000000000 ] && [ "$(status_of CapEff)" = 0000000000000000 ] &&
        [ "$(status_of NoNewPrivs)" = 1 ] && logged fetchml-api "running as fetchml (uid $fetchml_uid"
}
check "the master started as root and is now fetchml: four uids, no capability, no_new_privs" dropped
audit_uid=$(inside id -u fetchml-audit)
logger_ids() {
    local p
    p=$(inside pgrep -x -P "$master" fetchml-audit) &&
        [ "$(inside awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$p/status")" = "$audit_uid $audit_uid $audit_uid $audit_uid" ] &&
        logged fetchml-api "audit logger $p: generation 0 writes /var/log/fetch_ml/audit.log, signing its head"
}
check "the audit logger runs as fetchml-audit and writes the trail, signing it" logger_ids
trail_place() {
    [ "$(inside stat -c '%U %a' /var/log/fetch_ml)" = "root 755" ] &&
        [ "$(inside stat -c '%U %a' /var/log/fetch_ml/audit.log)" = "fetchml-audit 600" ]
}
check "... in root's /var/log/fetch_ml (0755), the trail its account's alone (0600)" trail_place
cred=/run/credentials/fetchml-api.service/redis-password
cred_mode() { [ "$(inside stat -c '%U %a' "$cred")" = "root 400" ]; }
check "the credential $cred is root's, mode 0400" cred_mode
check "... and the config read the Redis password from it" logged fetchml-api "password from file $cred"
check "a request from nginx's user through /run/fetch_ml/fcgi.sock is served (200; Redis as its ACL user)" serves

reloaded() {
    inside systemctl reload fetchml-api &&
        logged fetchml-api -F 'configuration reloaded from /etc/fetch_ml/config-prod.yaml (generation 1)'
}
check "systemctl reload fetchml-api: generation 1 (the dropped master read the credential again)" reloaded
none_refused() { ! journal -u fetchml-api | grep 'reload refused' >/dev/null; }
check "... none refused" none_refused
check "... and it serves after it" serves
check "... the new generation's password read through the descriptor kept from the start" \
    logged fetchml-api -F "password from file $cred (kept open: it cannot be opened again)"
# A bad file: the HUP is delivered (systemctl reload succeeds), the master refuses the file
# and keeps serving the one it has.
refused() {
    inside cp -p /etc/fetch_ml/config-prod.yaml /etc/fetch_ml/config-prod.yaml.good &&
        inside sh -c 'printf "server:\n  workers: 0\n" >>/etc/fetch_ml/config-prod.yaml' &&
        inside systemctl reload fetchml-api && logged fetchml-api 'reload refused, keeping the running configuration' &&
        serves && inside mv /etc/fetch_ml/config-prod.yaml.good /etc/fetch_ml/config-prod.yaml
}
check "a bad config on reload: refused in the journal, the running one serves" refused
relay_as_fetchml() { [ "$(prop User fetchml-logrelay)" = fetchml ] && is_active fetchml-logrelay; }
check "the log relay runs as fetchml" relay_as_fetchml
check "the sockets' directory is fetchml's, group www-data, mode 0750 (fetchml.tmpfiles), both started" \
    [ "$(stat -c '%u %g %a' "$OUT/run")" = "$fetchml_uid $(inside id -g www-data) 750" ]

stopped() {
    inside systemctl stop fetchml-api && [ "$(inside systemctl is-active fetchml-fcgi)" = inactive ] &&
        [ "$(prop Result fetchml-fcgi)" = success ] && [ ! -e "$OUT/run/fcgi.sock" ]
}
check "systemctl stop fetchml-api: inactive, result success, the socket's name removed" stopped
check "... the journal says stopped" logged fetchml-api -E '\] stopped$'
restarted() {
    inside systemctl start fetchml-fcgi && is_active fetchml-fcgi &&
        for _ in $(seq 20); do serves && return 0; sleep 0.5; done
    return 1
}
check "systemctl start again, over the logs it gave to fetchml: active, serves" restarted
# systemd copies the credential with a mode of its own: a source that its group may read
# (root:fetchml 0440, say) still gives the pool a file that passes the loader's check.
cred_0440() {
    inside chmod 0440 /etc/fetch_ml/credentials/redis-password && inside systemctl restart fetchml-fcgi &&
        is_active fetchml-fcgi && cred_mode && for _ in $(seq 20); do serves && return 0; sleep 0.5; done
    return 1
}
check "a credential source of mode 0440: restarted, still 0400 in the unit, serves" cred_0440
online() {
    inside systemd-analyze security --no-pager "$1" >"$OUT/security-$1.txt" 2>&1
    awk '/Overall exposure level/ { l = $(NF - 2) + 0 } END { exit !(l > 0 && l <= 2.0) }' "$OUT/security-$1.txt"
}
for u in fetchml-api fetchml-logrelay; do
    check "systemd-analyze security $u (the loaded unit): at most 2.0" online "$u"
done

printf '%d passed, %d failed; the journal and the checks'"'"' output in %s\n' "$pass" "$fail" "$OUT"
[ "$fail" -eq 0 ]
