# Global and per-user IP allow-lists, changed by editing the YAML and reloading; refused reloads.

ip_refused() { as researcher GET /v1/whoami; status_is 403; }
write_config ip_whitelist='["127.0.0.2"]'
check "reload with an allow-list of 127.0.0.2 only" reload_until ip_refused
check "a client at 127.0.0.1 -> 403" status_is 403
check "403 body has code IP_NOT_ALLOWED" error_body_is IP_NOT_ALLOWED

ip_allowed_again() { as researcher GET /v1/whoami; status_is 200; }
write_config ip_whitelist='["127.0.0.0/8", "::1"]'
check "reload with 127.0.0.0/8 lets the client in again" reload_until ip_allowed_again

write_config extra_users="    limited:
      hash: \"$(hash_of limited-user-test-key-000000000000)\"
      roles: [\"analyst\"]
      ip_whitelist: [\"10.9.8.7\"]"
per_user() { as limited-user-test-key-000000000000 GET /v1/whoami; status_is 403; }
check "a per-user allow-list refuses other addresses" reload_until per_user
check "per-user refusal body" error_body_is IP_NOT_ALLOWED

# hup_refused: signal a reload and wait until api.log says it was refused.
refusals() { grep -c 'reload refused' "$FETCHML_VAR/log/api.log" || true; }
hup_refused() {
    local before
    before=$(refusals)
    kill -HUP "$(cat "$FETCHML_VAR/run/fcgi.pid")"
    wait_for 5 eval '[ "$(refusals)" -gt '"$before"' ]'
}
write_config data.bogus_key=1
check "the test config has an unknown key" grep -q '^  bogus_key: 1$' "$FETCHML_VAR/dev/config.yaml"
check "a reload of it is refused" hup_refused
as researcher GET /v1/whoami
check "a config with an unknown key is refused on reload; the old config keeps serving" status_is 200
check "api.log says why, with file:line:col" grep -Eq "reload refused.*config.yaml:[0-9]+:[0-9]+: .*bogus_key" "$FETCHML_VAR/log/api.log"
write_config logging.file="\"$FETCHML_VAR/no-such-dir/audit.log\""
check "the test config points the audit trail at a missing directory" grep -q no-such-dir "$FETCHML_VAR/dev/config.yaml"
check "a reload of it is refused" hup_refused
as researcher GET /v1/whoami
check "a reload naming an audit trail nobody can open is refused; the old config keeps serving" status_is 200
check "... and api.log says which file" grep -q "cannot open $FETCHML_VAR/no-such-dir/audit.log for appending" "$FETCHML_VAR/log/api.log"
write_config
check "restore the config" reload_until ip_allowed_again
