# conf/prometheus/alerts.yml: promtool checks the rules, and alerts_test.yml's
# unit tests (one that fires and one that stays silent per alert) pass.

check "promtool check rules conf/prometheus/alerts.yml" \
    promtool check rules "$ROOT/conf/prometheus/alerts.yml"
check "promtool test rules conf/prometheus/alerts_test.yml" \
    promtool test rules "$ROOT/conf/prometheus/alerts_test.yml"
for a in FetchmlAuthFailureSpike FetchmlGuardBlocks FetchmlRateLimitSurge FetchmlRedisErrors \
    FetchmlAuditWriteFailures FetchmlHigh5xxRatio FetchmlWorkerRestarts FetchmlConfigStale FetchmlDown; do
    check "$a is defined and has a unit test that fires it" bash -c \
        'grep -q "alert: $1\$" "$2/alerts.yml" && grep -A3 "alertname: $1\$" "$2/alerts_test.yml" | grep -q exp_labels' \
        _ "$a" "$ROOT/conf/prometheus"
done
