# The harness's own fixtures, which every later file relies on: the config
# overrides behind write_config (fm_config_apply, scripts/lib/common.sh) and
# wait_for.

h_yaml=$'a:\n  b: 1\n  c:\n    d: 2\ne: 3'
h_is() { # h_is WANT OVERRIDE...: h_yaml with the overrides applied is WANT
    local got
    got=$(fm_config_apply "${@:2}" <<<"$h_yaml") && [ "$got" = "$1" ]
}
h_refused() { ! fm_config_apply "$@" <<<"$h_yaml" >/dev/null 2>&1; }
check "PATH=VALUE replaces one key's line" h_is $'a:\n  b: 7\n  c:\n    d: 2\ne: 3' a.b=7
check "... and a whole block" h_is $'a:\n  b: 1\n  c: { d: 5 }\ne: 3' 'a.c={ d: 5 }'
check "... adds a key its section lacks, at the section's end" h_is $'a:\n  b: 1\n  c:\n    d: 2\n  x: 9\ne: 3' a.x=9
check "... and a section the file lacks, at the end" h_is $'a:\n  b: 1\n  c:\n    d: 2\ne: 3\ng: 1' g=1
check "a later override of the same key wins" h_is $'a:\n  b: 8\n  c:\n    d: 2\ne: 3' a.b=7 a.b=8
check "PATH+=LINES appends to a block" h_is $'a:\n  b: 1\n  c:\n    d: 2\n    f: 4\ne: 3' 'a.c+=    f: 4'
check "an override below a missing section is refused" h_refused z.y=1
check "... and one below a key given whole" h_refused 'a={ b: 1 }' a.b=2
check "... and one that is not PATH=VALUE" h_refused '["10.0.0.0/8"]'

# write_config's older positional form writes what the named overrides do.
h_user=$'    harness:\n      hash: "'"$(hash_of harness-test-key-0000000000000000000)"$'"\n      roles: ["analyst"]'
write_config '["127.0.0.2"]' "$h_user"
cp "$FETCHML_VAR/dev/config.yaml" "$OUT/h-positional.yaml"
write_config ip_whitelist='["127.0.0.2"]' extra_users="$h_user"
check "write_config IP_WHITELIST EXTRA_USERS = ip_whitelist=... extra_users=..." \
    cmp -s "$OUT/h-positional.yaml" "$FETCHML_VAR/dev/config.yaml"
h_has() { grep -qFx -- "$1" "$FETCHML_VAR/dev/config.yaml"; }
h_lacks() { ! h_has "$1"; }
check "... the config has the allow-list" h_has '  ip_whitelist: ["127.0.0.2"]'
check "... and the extra user" h_has '    harness:'
check "the written config passes fetchml-admin check-config" \
    bash -c "REDIS_PASSWORD=x '$FETCHML_BUILD/fetchml-admin' check-config '$FETCHML_VAR/dev/config.yaml' >/dev/null"
write_config
check "write_config with no argument is the stack's config again" h_has '  ip_whitelist: ["127.0.0.1", "::1"]'
check "... without the extra user" h_lacks '    harness:'

h_n=0
h_third() { h_n=$((h_n + 1)) && [ "$h_n" -ge 3 ]; }
check "wait_for polls until the command succeeds" wait_for 5 h_third
h_t0=${EPOCHREALTIME/./}
wait_for 0.3 false
h_rc=$? h_ms=$(((${EPOCHREALTIME/./} - h_t0) / 1000))
check "wait_for gives up after its time with status 1 (${h_ms} ms)" \
    bash -c "[ $h_rc = 1 ] && [ $h_ms -ge 300 ] && [ $h_ms -lt 1500 ]"
