# Chaos run (scripts/chaos.sh, which its header describes): mixed load while
# Redis is restarted and hung, workers are killed, the config is reloaded and
# the logs are rotated, then the checks of every answer and of the audit
# trail. Not a timing: its lines say whether the stack held up. Run it alone
# with FETCHML_BENCH_ONLY=chaos scripts/bench.sh.
if ! FETCHML_BENCH_WORKERS=$WORKERS "$ROOT/scripts/chaos.sh"; then
    echo "chaos: FAILED (the lines above say what)"
    INVALID=1
fi
