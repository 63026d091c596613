# Redis: password required, password never in YAML.

out=$(redis-cli -s "$FETCHML_VAR/run/redis.sock" PING 2>&1)
check "Redis refuses commands without the password (NOAUTH)" grep -q NOAUTH <<<"$out"
check "Redis answers with the password" bash -c "[ \"\$(rcli PING)\" = PONG ]"
check "Redis has no TCP port open" bash -c "[ \"\$(rcli CONFIG GET port | tail -1)\" = 0 ]"
# Bounded, never evicting (conf/README.md, "Redis memory"): full means writes fail, not lost tasks.
t50_mem() { [ "$(rcli CONFIG GET maxmemory | tail -1)" -gt 0 ] && [ "$(rcli CONFIG GET maxmemory-policy | tail -1)" = noeviction ]; }
check "Redis has a maxmemory (256mb unless FETCHML_REDIS_MAXMEMORY) and maxmemory-policy noeviction" t50_mem
pw=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env")
check "the Redis password is not in any YAML file (var/ and the repo)" \
    bash -c "! grep -rqF --include='*.yaml' --include='*.yml' -- '$pw' '$FETCHML_VAR' '$ROOT/conf'"
check "redis.env is mode 0600" [ "$(stat -c %a "$FETCHML_VAR/dev/redis.env")" = 600 ]
