# A real Prometheus scrapes the stack (README "Monitoring"): over HTTPS with
# the dev CA and a Bearer key from a file, as conf/prometheus/prometheus.yml.in
# says; the target is up and the request counter can be queried. The same
# scrape without a key is a target that is down with 401. Every panel query of
# conf/grafana/fetchml.json returns data from it, and alerts.yml loads.

write_config extra_users="$(metrics_user)"
prom_ok() { req GET /metrics -H "Authorization: Bearer $PROM_KEY"; status_is 200; }
check "the scraper's user is in the config" reload_until prom_ok

umask 077
printf '%s\n' "$PROM_KEY" >"$OUT/prometheus.key"
umask 022
PROM_CONFIG=$OUT/prometheus.yml
fm_subst "$ROOT/conf/prometheus/prometheus.yml.in" "TARGET=127.0.0.1:$FETCHML_HTTPS_PORT" \
    "CA_FILE=$FETCHML_VAR/dev/tls.crt" "KEY_FILE=$OUT/prometheus.key" SCRAPE_INTERVAL=1s \
    "RULES_FILE=$ROOT/conf/prometheus/alerts.yml" >"$PROM_CONFIG"
# The same target without a key (no authorization block), to see it refused.
cat >>"$PROM_CONFIG" <<YAML
  - job_name: fetchml-anonymous
    scheme: https
    tls_config:
      ca_file: "$FETCHML_VAR/dev/tls.crt"
    static_configs:
      - targets: ["127.0.0.1:$FETCHML_HTTPS_PORT"]
YAML
check "promtool check config accepts the rendered scrape config" \
    promtool check config "$PROM_CONFIG"
check "Prometheus starts on 127.0.0.1:$PROM_PORT" prometheus_start "$PROM_CONFIG"

health_of() { # health_of JOB: the target's health (up, down, unknown)
    prom_targets | jq -r --arg j "$1" '.data.activeTargets[] | select(.labels.job == $j) | .health'
}
target_up() { [ "$(health_of fetchml)" = up ]; }
check "the target is up (HTTPS, dev CA, Bearer key from a file)" wait_for 30 target_up
anon_down() { [ "$(health_of fetchml-anonymous)" = down ]; }
check "the same scrape without a key: the target is down" wait_for 30 anon_down
check "... with 401 as the reason" bash -c "$(declare -f prom_targets); PROM_BASE=$PROM_BASE;"'
    prom_targets | jq -e ".data.activeTargets[] | select(.labels.job == \"fetchml-anonymous\") |
        .lastError | test(\"401\")" >/dev/null'

has_data() { prom_query "$1" && jq -e '.data.result | length > 0' "$OUT/query.json" >/dev/null; }
check "a query returns the request counter" has_data 'fetchml_http_requests_total{job="fetchml"}'
check "... including the scrapes themselves, under route /metrics" \
    has_data 'fetchml_http_requests_total{job="fetchml",route="/metrics",status="200"}'
check "alerts.yml is loaded (9 rules)" bash -c "curl -sf $PROM_BASE/api/v1/rules |
    jq -e '[.data.groups[].rules[]] | length == 9' >/dev/null"

# Traffic for the dashboard's rates, then every panel's query.
for _ in $(seq 10); do as researcher GET /v1/whoami; done
for _ in $(seq 3); do as wrong-key-00000000000000000000000000000000 GET /v1/whoami; done
rates() { has_data 'rate(fetchml_auth_failures_total{job="fetchml"}[1m]) > 0'; }
check "the scraped counters move (rate of auth failures > 0)" wait_for 30 rates
check "conf/grafana/fetchml.json: valid structure" \
    python3 "$ROOT/tests/integration/check_dashboard.py" "$ROOT/conf/grafana/fetchml.json"
check "... and every panel's query returns data from this Prometheus" \
    python3 "$ROOT/tests/integration/check_dashboard.py" "$ROOT/conf/grafana/fetchml.json" "$PROM_BASE"
prometheus_stop
check "Prometheus is stopped" bash -c "! curl -sf -o /dev/null $PROM_BASE/-/ready"
