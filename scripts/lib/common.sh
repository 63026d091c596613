# Shared by scripts/run-local.sh and scripts/test.sh: install what is missing,
# build. Source it; it sets ROOT.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build, the local stack and the tests need.
# (fail2ban for its filter test, clang + libclang-rt for the fuzzer, wrk for the benchmark.)
FM_PACKAGES="build-essential cmake pkg-config libfcgi-dev libhiredis-dev libyaml-dev
libcjson-dev libsodium-dev check nginx-light redis-server redis-tools openssl curl jq
fail2ban clang libclang-rt-14-dev wrk"

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
        $sudo systemctl disable --now nginx redis-server >/dev/null 2>&1 || true
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
