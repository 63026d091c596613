# Part of scripts/bench.sh (sourced; see the comment above its loop): the cost of
# logging.audit_sync. For each mode the bench stack is reloaded with it, and after a
# short warm-up wrk measures GET /v1/whoami (one audit record per request) for a few
# seconds. Prints "audit_sync none: X req/s", "audit_sync interval (N ms): X req/s",
# "audit_sync always: X req/s", and "audit checkpoints every 100 ms: X req/s" (none,
# with the audit logger signing the chain head 600 times as often as by default;
# every run here, like "full", goes through the audit logger). The original config
# is put back afterwards.
# shellcheck shell=bash disable=SC2034 # INVALID is bench.sh's
as_cfg=$VAR/dev/config.yaml
as_secs=$((DURATION < 5 ? DURATION : 5))
cp -p "$as_cfg" "$VAR/dev/config.yaml.audit-sync-orig" # owner and mode: the dropped master reads it

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
    timeout $((as_secs + 15)) "${WRK[@]}" -d"${as_secs}s" "$FULL_URL" >"$out" || true
    bad=$(grep -E '^ *(Non-2xx or 3xx responses|Socket errors):' "$out" || true)
    if [ -n "$bad" ]; then
        fm_say "audit_sync $1: $bad"
        INVALID=1
    fi
    AS_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
}

as_run none
as_none=$AS_RPS
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
