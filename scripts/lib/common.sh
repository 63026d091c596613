# Shared by scripts/run-local.sh and scripts/test.sh: install what is missing,
# build. Source it; it sets ROOT.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build, the local stack and the tests need.
# (fail2ban for its filter test, clang + libclang-rt for the fuzzer, wrk for the benchmark,
# python3-requests for scripts/example-worker.py, libnginx-mod-nchan for /ws,
# python3-websockets for its tests and the README example, prometheus for promtool and the
# scrape test, python3-jsonschema for the OpenAPI contract test, systemd for systemd-analyze
# (the units' test; systemd need not run), apache2 for the tests through Apache.
# scripts/check-tls.sh installs testssl.sh itself.)
FM_PACKAGES="build-essential cmake pkg-config libfcgi-dev libhiredis-dev libyaml-dev
libcjson-dev libsodium-dev libssl-dev check nginx-light redis-server redis-tools openssl curl jq
fail2ban clang libclang-rt-14-dev wrk python3-requests libnginx-mod-nchan python3-websockets
prometheus python3-jsonschema systemd apache2"

fm_say() { printf '==> %s\n' "$*" >&2; }
fm_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

fm_install_deps() {
    local missing=() p
    for p in $FM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    fm_say "installing missing packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq || fm_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || fm_die "apt-get install failed: ${missing[*]}"
    # Debian starts these on install where it can; the project runs its own.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now nginx redis-server apache2 >/dev/null 2>&1 || true
    fi
}

# fm_build DIR [cmake args...]: configure once, build incrementally.
fm_build() {
    local dir=$1
    shift
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || fm_die "cmake configure failed ($dir)"
    fi
    cmake --build "$dir" -j "$(nproc)" -- --no-print-directory >/dev/null ||
        cmake --build "$dir" -j 1 || fm_die "build failed ($dir)"
}

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds (status 0) or
# SECONDS (a whole or decimal number) have passed since the first try; CMD
# runs at least once. Status 0 when it succeeded, 1 when time ran out.
# (Redis's test suite calls this wait_for_condition.)
wait_for() {
    local frac deadline
    if ! [[ $1 =~ ^([0-9]+)(\.([0-9]{1,6}))?$ ]]; then
        printf 'wait_for: SECONDS must be a number, got "%s"\n' "$1" >&2
        return 2
    fi
    frac=${BASH_REMATCH[3]}000000
    deadline=$((${EPOCHREALTIME/./} + 10#${BASH_REMATCH[1]} * 1000000 + 10#${frac:0:6}))
    shift
    until "$@"; do
        [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# fm_subst TEMPLATE key=value...: TEMPLATE with each @key@ replaced, on stdout.
fm_subst() {
    local text kv
    text=$(<"$1")
    shift
    for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
    printf '%s\n' "$text"
}

# fm_config_apply [OVERRIDE...] <YAML >YAML: the YAML on stdin with each
# override applied, in order (a later one for the same PATH wins):
#   PATH=VALUE   the key at PATH (SECTION, SECTION.KEY, ...) becomes
#                "KEY: VALUE"; whatever it held (one line or a block) is
#                dropped. VALUE is YAML text: a scalar or a flow [..] or {..};
#                one that starts with a newline is a block, indented by the
#                caller. A key the file lacks is added at the end of its
#                parent, which must exist.
#   PATH+=LINES  LINES (YAML, indented for the children of PATH) go at the
#                end of the block at PATH, e.g. more users under auth.api_keys.
# A key below one that an earlier override gave whole is an error: the value
# is text, not merged.
# It understands block mappings with the 2-space indentation of
# conf/dev/config.yaml.in, which is all it is used on. Status 2 (and a
# message) on a malformed override or one whose parent is not in the file.
fm_config_apply() {
    local -A set=() add=() seen=()
    local -a order=() open=() opened=()
    local kv name line ind key path skip=-1
    for kv in "$@"; do
        name=${kv%%=*}
        if [[ $kv != *=* || ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\+?$ ]]; then
            printf 'fm_config_apply: not PATH=VALUE or PATH+=LINES: %s\n' "${kv%%$'\n'*}" >&2
            return 2
        fi
        key=${name%+}
        while [[ $key == *.* ]]; do
            key=${key%.*}
            if [ -n "${set[$key]+x}" ]; then
                printf 'fm_config_apply: %s: %s was given whole by an earlier override; give it whole again\n' \
                    "${name%+}" "$key" >&2
                return 2
            fi
        done
        if [[ $name == *+ ]]; then
            [ -z "${kv#*=}" ] || add[${name%+}]+=${kv#*=}$'\n'
        else
            # A new value for a block replaces what earlier overrides put in it.
            for key in "${!set[@]}" "${!add[@]}"; do
                [[ $key == "$name".* ]] && unset 'set[$key]' 'add[$key]'
            done
            unset 'add[$name]'
            [ -n "${set[$name]+x}" ] || order+=("$name")
            set[$name]=${kv#*=}
        fi
    done
    # Ends the innermost open block: its appended lines, then the keys it lacks.
    _fm_config_close() {
        local p=${open[-1]} i=${opened[-1]} n v
        unset 'open[-1]' 'opened[-1]'
        [ -z "$p" ] || printf '%s' "${add[$p]:-}"
        for n in "${order[@]}"; do
            [ -n "${set[$n]+x}" ] && [ -z "${seen[$n]:-}" ] || continue
            if [ -z "$p" ]; then [[ $n != *.* ]] || continue; else [ "${n%.*}" = "$p" ] || continue; fi
            v=${set[$n]}
            [[ $v == $'\n'* ]] || v=" $v"
            printf '%*s%s:%s\n' $((i < 0 ? 0 : i + 2)) '' "${n##*.}" "$v"
            seen[$n]=1
        done
    }
    open=("") opened=(-1)
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^(\ *)([A-Za-z_][A-Za-z0-9_]*):(\ |$) ]]; then
            ind=${#BASH_REMATCH[1]} key=${BASH_REMATCH[2]}
            [ "$skip" -lt 0 ] || [ "$ind" -le "$skip" ] || continue
            skip=-1
            while [ "${opened[-1]}" -ge "$ind" ]; do _fm_config_close; done
            path=${open[-1]:+${open[-1]}.}$key
            open+=("$path") opened+=("$ind")
            if [ -n "${set[$path]+x}" ]; then
                kv=${set[$path]}
                [[ $kv == $'\n'* ]] || kv=" $kv"
                printf '%*s%s:%s\n' "$ind" '' "$key" "$kv"
                seen[$path]=1 skip=$ind
                continue
            fi
        elif [ "$skip" -ge 0 ]; then
            [[ $line =~ ^(\ *) ]]
            [ -n "${line// /}" ] && [ "${#BASH_REMATCH[1]}" -le "$skip" ] || continue
            skip=-1
        fi
        printf '%s\n' "$line"
    done
    while [ ${#open[@]} -gt 0 ]; do _fm_config_close; done
    unset -f _fm_config_close
    for name in "${order[@]}"; do
        [ -z "${set[$name]+x}" ] || [ -n "${seen[$name]:-}" ] && continue
        printf 'fm_config_apply: %s: no section %s in the file\n' "$name" "${name%.*}" >&2
        return 2
    done
}

# fm_system_account NAME: the system account NAME (no home, no shell, a group
# of its own), created when missing, as a package's postinst would.
fm_system_account() {
    id -u "$1" >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group "$1" || fm_die "cannot create the system account $1"
}

# fm_pool_user: the account the FastCGI pool runs as (server.user) when the
# scripts run as root: FETCHML_POOL_USER, default fetchml, created when
# missing (fm_system_account): an account of its own, as production has
# (docs/operations.md), not nobody, which other daemons may share (the
# socket's allowed peers always include the pool's own account). Prints
# nothing and fails when not root: the pool then runs as the caller.
fm_pool_user() {
    [ "$(id -u)" -eq 0 ] || return 1
    local u=${FETCHML_POOL_USER:-fetchml}
    fm_system_account "$u"
    printf '%s\n' "$u"
}

# fm_audit_user: the account the audit logger runs as (logging.audit_user)
# when the scripts run as root: FETCHML_AUDIT_USER, default fetchml-audit,
# created when missing (fm_system_account): the logger must not share the
# pool's account, or a compromised worker could rewrite the trail. Prints
# nothing and fails when not root (the logger then shares the caller's
# account).
fm_audit_user() {
    [ "$(id -u)" -eq 0 ] || return 1
    local u=${FETCHML_AUDIT_USER:-fetchml-audit}
    fm_system_account "$u"
    printf '%s\n' "$u"
}

# fm_audit_dir DIR: as root, DIR (holding the audit trail and the pool's
# logs) becomes the audit logger's, in the pool's group, mode 1770: the pool
# may create its own files there, and the sticky bit keeps it from removing
# or replacing the logger's (the logger refuses a directory that would let
# it, fm_audit_check_place). Nothing to do otherwise.
fm_audit_dir() {
    local a p
    a=$(fm_audit_user) || return 0
    p=$(fm_pool_user) || return 0
    chown "$a:$(id -gn "$p")" "$1" && chmod 1770 "$1"
}

# fm_pool_file FILE: as root, FILE becomes readable by the pool's group (0640,
# owner root), as the configuration must be: the master re-reads it on SIGHUP
# after it has given up root. Nothing to do otherwise.
fm_pool_file() {
    local u
    u=$(fm_pool_user) || return 0
    chgrp "$(id -gn "$u")" "$1" && chmod 640 "$1"
}

# fm_redis_server CONF: redis-server CONF (it daemonizes); as root, in the
# pool's group, so that its socket (unixsocketperm 770) admits the pool and
# not www-data.
fm_redis_server() {
    local group=() pool
    pool=$(fm_pool_user) && group=(setpriv --regid="$(id -gn "$pool")" --clear-groups)
    "${group[@]}" redis-server "$1"
}

# fm_dev_config OUT VAR ADMIN_HASH RESEARCHER_HASH ANALYST_HASH WORKER_HASH [OVERRIDE...]:
# writes OUT (mode 0600; 0640 for the pool's group as root, fm_pool_file) from
# conf/dev/config.yaml.in, the one template of run-local.sh's config and the
# integration tests' (tests/integration/lib.sh write_config), with the var
# dir, the demo users' key hashes and the overrides (fm_config_apply). As
# root, the master drops to fm_pool_user, the FastCGI socket goes to nginx's
# group, www-data, and only nginx's workers (www-data) and the pool itself may
# connect (server.allowed_peers), and the audit logger runs as fm_audit_user;
# otherwise nginx runs as the caller, the one peer allowed.
fm_dev_config() {
    local out=$1 ids=() pool
    if pool=$(fm_pool_user); then
        ids=('server.socket_group="www-data"' "server.user=\"$pool\""
            'server.allowed_peers=["www-data"]' "logging.audit_user=\"$(fm_audit_user)\"")
    else
        ids=("server.allowed_peers=[\"$(id -un)\"]")
    fi
    (
        umask 077
        fm_subst "$ROOT/conf/dev/config.yaml.in" "VAR=$2" "ADMIN_HASH=$3" "RESEARCHER_HASH=$4" \
            "ANALYST_HASH=$5" "WORKER_HASH=$6" | fm_config_apply "${ids[@]}" "${@:7}" >"$out.new"
    ) && fm_pool_file "$out.new" && mv "$out.new" "$out"
}
