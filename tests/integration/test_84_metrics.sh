# GET /metrics (README "Monitoring"): metrics:read only, Bearer works, the
# Prometheus text format that promtool accepts, and exact counts: N requests of
# a kind move their counter by exactly N, summed over every worker, across a
# kill of every worker and across reloads (the counters live in shared memory
# the master keeps).

LIMITED_KEY=metrics-limited-key-000000000000000000000
t84_users() { # the scraper, and a user with a tiny bucket
    metrics_user
    printf '    limited:\n      hash: "%s"\n      roles: ["analyst"]\n' "$(hash_of "$LIMITED_KEY")"
    printf '      rate_limit: { requests_per_minute: 1, burst: 2 }\n'
}
write_config extra_users="$(t84_users)"
prom_ok() { req GET /metrics -H "Authorization: Bearer $PROM_KEY"; status_is 200; }
check "a reload adds a user holding only metrics:read" reload_until prom_ok

SCRAPE=$OUT/metrics.txt
scrape() { req GET /metrics -H "Authorization: Bearer $PROM_KEY" && cp "$B" "$SCRAPE"; }
val() { awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }' "$SCRAPE"; }
REQ='fetchml_http_requests_total{route="/v1/whoami",method="GET",status="200"}'
R401='fetchml_http_requests_total{route="/v1/whoami",method="GET",status="401"}'
UNKNOWN='fetchml_auth_failures_total{reason="unknown_key"}'
HCOUNT='fetchml_http_request_duration_seconds_count{route="/v1/whoami"}'

scrape
check "GET /metrics with a Bearer key holding metrics:read: 200" status_is 200
check "... Content-Type is the text format 0.0.4" header_has 'Content-Type: text/plain; version=0\.0\.4'
check "... audited like any request (user prometheus, GET /metrics, 200)" \
    grep -q "\"trace_id\":\"$TRACE\",\"user\":\"prometheus\".*\"action\":\"GET /metrics\".*\"status\":200" \
    "$FETCHML_VAR/log/audit.log"
check "promtool check metrics finds nothing" \
    bash -c '[ -z "$(promtool check metrics <"$1" 2>&1)" ]' _ "$SCRAPE"
check "no duplicate series; histograms cumulative, ending in +Inf, _count == +Inf bucket" \
    python3 "$ROOT/tests/integration/check_exposition.py" "$SCRAPE"
check "every family named fetchml_*" \
    bash -c '! grep -v "^#" "$1" | grep -qv "^fetchml_"' _ "$SCRAPE"
for fam in fetchml_http_requests_total fetchml_http_request_duration_seconds \
    fetchml_auth_failures_total fetchml_guard_blocks_total fetchml_rate_limited_total \
    fetchml_redis_errors_total fetchml_redis_command_duration_seconds \
    fetchml_audit_write_failures_total fetchml_events_published_total fetchml_events_failed_total \
    fetchml_websockets_open fetchml_pool_workers fetchml_pool_worker_restarts_total \
    fetchml_pool_listen_queue_length fetchml_config_reloads_total \
    fetchml_config_last_reload_successful fetchml_config_age_seconds fetchml_build_info; do
    check "the exposition has $fam" grep -q "^# TYPE $fam " "$SCRAPE"
done
check "the metrics scrape itself is counted under its route pattern" \
    grep -q '^fetchml_http_requests_total{route="/metrics",method="GET",status="200"} ' "$SCRAPE"
check "the pool gauges count the 4 workers (busy + idle)" \
    [ $(($(val 'fetchml_pool_workers{state="busy"}') + $(val 'fetchml_pool_workers{state="idle"}'))) -eq 4 ]
check "the scraping worker is busy" [ "$(val 'fetchml_pool_workers{state="busy"}')" -ge 1 ]
check "the listen queue's backlog is shown" [ "$(val fetchml_pool_listen_queue_max)" -gt 0 ]

as researcher GET /metrics
check "a researcher (no metrics:read) gets 403" error_is 403 FORBIDDEN
req GET /metrics
check "without a key: 401, no anonymous access to metrics" error_is 401 UNAUTHORIZED
as analyst GET /metrics
check "the analyst role (metrics:read) may read them, with X-API-Key too" status_is 200
req GET /metrics?x=1 -H "Authorization: Bearer $PROM_KEY"
check "a query string is refused (400)" error_is 400 BAD_REQUEST

# Exact deltas, with the scraper's key (no rate limit in the way). The raw
# path never becomes a label: a path with an id is counted under its pattern.
N=13
scrape
r0=$(val "$REQ") u0=$(val "$UNKNOWN") f0=$(val "$R401") h0=$(val "$HCOUNT")
for _ in $(seq $N); do as "$PROM_KEY" GET /v1/whoami; done
for _ in $(seq 5); do as wrong-key-00000000000000000000000000000000 GET /v1/whoami; done
scrape
check "$N requests: the request counter grows by exactly $N" [ $(($(val "$REQ") - r0)) -eq $N ]
check "... and the route's duration histogram by $N (plus 5 refused)" \
    [ $(($(val "$HCOUNT") - h0)) -eq $((N + 5)) ]
check "5 unknown keys: auth failures (unknown_key) grow by exactly 5" [ $(($(val "$UNKNOWN") - u0)) -eq 5 ]
check "... and the 401 series of the route by exactly 5" [ $(($(val "$R401") - f0)) -eq 5 ]
as researcher GET /v1/tasks/00000000-0000-4000-8000-000000000000
scrape
check "a task path is counted as /v1/tasks/{id}" \
    grep -q '^fetchml_http_requests_total{route="/v1/tasks/{id}",method="GET",status="404"} ' "$SCRAPE"
check "... never under its raw path" bash -c '! grep -q "00000000-0000-4000" "$1"' _ "$SCRAPE"
as researcher GET /no/such/route
scrape
check "a path no route matches is route=\"unmatched\"" \
    grep -q '^fetchml_http_requests_total{route="unmatched",method="GET",status="404"} ' "$SCRAPE"

# The other counters move by exactly what happened: 2 admitted then 3 refused by a
# bucket of 2; one task created, one event published.
scrape
l0=$(val fetchml_rate_limited_total) e0=$(val fetchml_events_published_total)
for _ in 1 2 3 4 5; do as "$LIMITED_KEY" GET /v1/whoami; done
check "a bucket of 2, 5 requests: the last one refused (429)" error_is 429 RATE_LIMITED
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name": "metrics-probe"}'
check "a task is created (201)" status_is 201
scrape
check "... fetchml_rate_limited_total grows by exactly 3" [ $(($(val fetchml_rate_limited_total) - l0)) -eq 3 ]
check "... fetchml_events_published_total by exactly 1 (task.created)" \
    [ $(($(val fetchml_events_published_total) - e0)) -eq 1 ]
check "... and Redis commands were timed" [ "$(val fetchml_redis_command_duration_seconds_count)" -gt 0 ]

# Across a kill of every worker: nothing counted is lost.
master=$(cat "$FETCHML_VAR/run/fcgi.pid")
workers_now() { pgrep -x -P "$master" fetchml-fcgi | wc -l; }
four_workers() { [ "$(workers_now)" -eq 4 ]; }
wait_for 5 four_workers
scrape
r0=$(val "$REQ") k0=$(val fetchml_pool_worker_restarts_total)
for _ in $(seq $N); do as "$PROM_KEY" GET /v1/whoami; done
victims=$(pgrep -x -P "$master" fetchml-fcgi | tr '\n' ' ')
# shellcheck disable=SC2086
kill -KILL $victims
all_new() { four_workers && for v in $victims; do ! kill -0 "$v" 2>/dev/null || return 1; done; }
check "every worker killed with SIGKILL is replaced" wait_for 10 all_new
for _ in $(seq $N); do as "$PROM_KEY" GET /v1/whoami; done
scrape
check "across the kill of every worker: exactly $((2 * N)) more requests counted" \
    [ $(($(val "$REQ") - r0)) -eq $((2 * N)) ]
check "... and 4 worker restarts" [ $(($(val fetchml_pool_worker_restarts_total) - k0)) -eq 4 ]
check "... the pool gauges follow the new workers" \
    [ $(($(val 'fetchml_pool_workers{state="busy"}') + $(val 'fetchml_pool_workers{state="idle"}'))) -eq 4 ]

# Reloads keep the counters (one region for the master's life) and are counted.
ok0=$(val 'fetchml_config_reloads_total{result="ok"}') ref0=$(val 'fetchml_config_reloads_total{result="refused"}')
r0=$(val "$REQ") t0=$(val fetchml_config_loaded_timestamp_seconds)
sleep 1.1
write_config extra_users="$(t84_users)"
"$ROOT/scripts/run-local.sh" reload >/dev/null 2>&1
reloaded() { scrape && [ "$(val 'fetchml_config_reloads_total{result="ok"}')" -eq $((ok0 + 1)) ]; }
check "a reload is counted as ok" wait_for 5 reloaded
check "... the counters survive it" [ "$(val "$REQ")" -eq "$r0" ]
check "... the loaded config's timestamp moves" [ "$(val fetchml_config_loaded_timestamp_seconds)" -gt "$t0" ]
# run-local.sh reload checks the file first; the master itself must refuse it.
printf 'server: [\n' >"$FETCHML_VAR/dev/config.yaml"
kill -HUP "$master"
refused() { scrape && [ "$(val 'fetchml_config_reloads_total{result="refused"}')" -eq $((ref0 + 1)) ]; }
check "a broken config's reload is counted as refused" wait_for 5 refused
check "... and fetchml_config_last_reload_successful is 0" [ "$(val fetchml_config_last_reload_successful)" = 0 ]
write_config extra_users="$(t84_users)"
reload_ok_again() { scrape && [ "$(val fetchml_config_last_reload_successful)" = 1 ]; }
check "the next good reload sets it back to 1" reload_until reload_ok_again
