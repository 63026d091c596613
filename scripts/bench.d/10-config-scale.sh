# Bench part (sourced by scripts/bench.sh): the configuration at scale. For
# 1,000, 10,000 and 100,000 generated users (each "    s<i>:" with the hash
# of a known key and role analyst, beside the bench user), prints
#   config N users: load X ms (fetchml-fcgi -t), worker RSS Y MB
# X is the best of three checks of the file (fetchml-fcgi -t: the whole load,
# as a reload does it); Y is VmRSS of a worker of the stack reloaded with that
# file (scripts/run-local.sh reload waits until it serves), after it answered
# the bench user once. The bench config is restored and reloaded afterwards.

cs_bench_cfg=$VAR/dev/config.yaml
cp "$cs_bench_cfg" "$VAR/dev/config.bench.yaml"

# cs_users N: N generated users, indented for auth.api_keys.
cs_users() {
    python3 - "$1" <<'PY'
import hashlib, sys
out = []
for i in range(int(sys.argv[1])):
    h = hashlib.sha256(b"scale-key-%d" % i).hexdigest()
    out.append('    s%06d:\n      hash: "%s"\n      roles: ["analyst"]\n' % (i, h))
sys.stdout.write("".join(out))
PY
}

# cs_load_ms FILE: the best of three wall times of fetchml-fcgi -t on FILE, ms.
cs_load_ms() {
    local best="" t0 ms
    for _ in 1 2 3; do
        t0=${EPOCHREALTIME/./}
        REDIS_PASSWORD=$(sed -n 's/^REDIS_PASSWORD=//p' "$VAR/dev/redis.env") \
            timeout 60 "$BUILD/fetchml-fcgi" -t -c "$1" >/dev/null 2>&1 || return 1
        ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
        [ -n "$best" ] && [ "$best" -le "$ms" ] || best=$ms
    done
    echo "$best"
}

# cs_worker_rss: VmRSS of one worker of the running pool, MB (one decimal).
cs_worker_rss() {
    local w
    w=$(pgrep -x -P "$(cat "$RUN/fcgi.pid")" fetchml-fcgi | head -1) || return 1
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$w/status"
}

for cs_n in 1000 10000 100000; do
    cs_file=$VAR/dev/config-$cs_n.yaml
    cs_users "$cs_n" >"$VAR/cs-users.yaml"
    # bench.sh gives auth.api_keys as one flow mapping ({ bench: {...} }): it
    # becomes a block with the bench user first, then the generated users.
    (umask 077 && awk -v users="$VAR/cs-users.yaml" '
        /^  api_keys: *\{.*\} *$/ {
            sub(/^  api_keys: *\{ */, ""); sub(/ *\} *$/, "")
            print "  api_keys:"; print "    " $0; $0 = "  api_keys:"; flow = 1
        }
        !flow { print }
        /^  api_keys:$/ { while ((getline l < users) > 0) print l; flow = 0 }' \
        "$VAR/dev/config.bench.yaml" >"$cs_file")
    grep -q '^    s000000:$' "$cs_file" || fm_die "config scale: no auth.api_keys block to add users to"
    cs_ms=$(cs_load_ms "$cs_file") || cs_ms=""
    cp "$cs_file" "$cs_bench_cfg"
    cs_rss=""
    if timeout 90 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 && wait_for 10 full_ok; then
        cs_rss=$(cs_worker_rss) || cs_rss=""
    fi
    if [ -z "$cs_ms" ] || [ -z "$cs_rss" ]; then
        echo "config $cs_n users: not measured (the check or the reload failed)"
        INVALID=1
    else
        echo "config $cs_n users: load $cs_ms ms (fetchml-fcgi -t), worker RSS $cs_rss MB"
    fi
    rm -f "$cs_file" "$VAR/cs-users.yaml"
done

cp "$VAR/dev/config.bench.yaml" "$cs_bench_cfg"
timeout 90 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 && wait_for 10 full_ok || {
    echo "config scale: the bench config could not be restored"
    INVALID=1
}
rm -f "$VAR/dev/config.bench.yaml"
