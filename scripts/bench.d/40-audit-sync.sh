# Part of scripts/bench.sh (sourced; see the comment above its loop): the cost of
# logging.audit_sync. For each mode the bench stack is reloaded with it, and after a
# short warm-up wrk measures GET /v1/whoami (one audit record per request) for a few
# seconds. Prints "audit_sync none: X req/s", "audit_sync interval (N ms): X req/s",
# "audit_sync always: X req/s", "audit checkpoints every 100 ms: X req/s" (none,
# with the audit logger signing the chain head 600 times as often as by default;
# every run here, like "full", goes through the audit logger), and "audit logger: X us
# CPU per record, Y% of the workers' CPU" (its user + system time over the none run,
# from /proc: what the separate writer process costs). The original config is put
# back afterwards.
# shellcheck shell=bash disable=SC2034 # INVALID is bench.sh's
as_cfg=$VAR/dev/config.yaml
as_secs=$((DURATION < 5 ? DURATION : 5))
cp -p "$as_cfg" "$VAR/dev/config.yaml.audit-sync-orig" # owner and mode: the dropped master reads it

# as_ticks PID...: the CPU time (user + system, clock ticks) the processes have used.
as_ticks() {
    local p t=0
    for p in "$@"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# as_run MODE [OVERRIDE...]: reload with logging.audit_sync MODE (and the overrides),
# then wrk; sets AS_RPS (req/s, "?" when the reload failed) and INVALID when the run
# saw errors.
as_run() {
    local out="$VAR/wrk-audit-sync-${*//[^a-z0-9_]/-}.txt" bad
    AS_RPS="?"
    if ! fm_config_apply "logging.audit_sync=$1" "logging.audit_sync_ms=1000" "${@:2}" \
        <"$VAR/dev/config.yaml.audit-sync-orig" >"$as_cfg.new" || ! fm_pool_file "$as_cfg.new" ||
        ! mv "$as_cfg.new" "$as_cfg" ||
        ! timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || ! wait_for 5 full_ok; then
        fm_say "audit_sync $1: reload failed"
        INVALID=1
        return 0
    fi
    timeout $((WARMUP + 15)) "${WRK[@]}" -d"${WARMUP}s" "$FULL_URL" >/dev/null || true
    local master logger l0 p0
    master=$(cat "$RUN/fcgi.pid")
    logger=$(pgrep -x -P "$master" fetchml-audit || true)
    l0=$(as_ticks "$logger") p0=$(as_ticks $(pgrep -x -P "$master" fetchml-fcgi))
    timeout $((as_secs + 15)) "${WRK[@]}" -d"${as_secs}s" "$FULL_URL" >"$out" || true
    AS_LOGGER_TICKS=$(($(as_ticks "$logger") - l0))
    AS_POOL_TICKS=$(($(as_ticks $(pgrep -x -P "$master" fetchml-fcgi)) - p0))
    AS_REQUESTS=$(awk '/ requests in / {print $1}' "$out")
    bad=$(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$out" || true)
    if [ -n "$bad" ]; then
        fm_say "audit_sync $1: $bad"
        INVALID=1
    fi
    AS_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
}

as_run none
as_none=$AS_RPS
# What the audit logger costs: its CPU per record, and beside the workers' (the hop's other end).
as_logger=$(awk -v l="$AS_LOGGER_TICKS" -v p="$AS_POOL_TICKS" -v n="${AS_REQUESTS:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0 && p > 0) printf "%.1f us CPU per record, %.0f%% of the workers'"'"' CPU", l * 1e6 / hz / n, 100 * l / p; else printf "?" }')
as_run interval
as_interval=$AS_RPS
as_run always
as_always=$AS_RPS
as_run none logging.audit_sign_interval_ms=100
as_signed=$AS_RPS
mv "$VAR/dev/config.yaml.audit-sync-orig" "$as_cfg"
if ! timeout 20 "$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1 || ! wait_for 5 full_ok; then
    fm_die "reload with the original bench config failed"
fi
echo "audit_sync none: ${as_none:-?} req/s (wrk -c$CONNS, ${as_secs}s, GET /v1/whoami)"
echo "audit_sync interval (1000 ms): ${as_interval:-?} req/s"
echo "audit_sync always: ${as_always:-?} req/s"
echo "audit checkpoints every 100 ms (audit_sync none): ${as_signed:-?} req/s"
echo "audit logger (audit_sync none): $as_logger"
