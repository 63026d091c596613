# Every key rotated in one command after a suspected breach (docs/operations.md,
# "Keys"): fetchml-admin rotate --all rewrites the running stack's config in
# place and reloads it; every old key is refused at once, every new key works,
# the rest of the file is unchanged, and no key reaches a log.

K37A=t37-alice-key-00000000000000000000000000
K37B=t37-bob-key-000000000000000000000000000000
K37C=t37-carol-key-0000000000000000000000000000
cfg=$FETCHML_VAR/dev/config.yaml
t37_users=$(printf '    # t37: three shapes of keys\n    t37a:\n      hash: %s   # plain\n      roles: ["analyst"]\n' "$(hash_of "$K37A")"
    printf '    t37b:\n      keys:\n        - hash: "%s"\n          label: "laptop"\n      roles: ["analyst"]\n' "$(hash_of "$K37B")"
    printf '    t37c: { keys: [{ hash: '"'"'%s'"'"' }], roles: ["analyst"] }\n' "$(hash_of "$K37C")")
write_config extra_users="$t37_users"
t37c_ok() { as "$K37C" GET /v1/whoami && status_is 200; }
check "reload adds three users with keys in three shapes" reload_until t37c_ok

old_keys=("$FETCHML_ADMIN_KEY" "$FETCHML_RESEARCHER_KEY" "$FETCHML_ANALYST_KEY" "$FETCHML_WORKER_KEY" "$K37A" "$K37B" "$K37C")
all_ok() { local k; for k in "$@"; do as "$k" GET /v1/whoami && status_is 200 || return 1; done; }
check "before: every old key works" all_ok "${old_keys[@]}"

# A hash from the environment cannot be rotated in the file: refused, file untouched.
cp -p "$cfg" "$OUT/t37-before.yaml"
write_config extra_users="$t37_users"$'\n    t37env:\n      hash: "${T37_HASH}"\n'
cp -p "$cfg" "$OUT/t37-env.yaml"
T37_HASH=$(hash_of "t37-env-key-0000000000000000000000000000") REDIS_PASSWORD=x \
    "$FETCHML_BUILD/fetchml-admin" rotate --all -c "$cfg" --keys-out "$OUT/t37-env-keys" \
    >"$OUT/t37-env.out" 2>"$OUT/t37-env.err"
rc=$?
check "rotate --all refuses a hash from the environment (exit $rc)" [ "$rc" -eq 1 ]
cat "$OUT/t37-env.err"
check "... at its file:line:col" grep -qE "config.yaml:[0-9]+:[0-9]+: this hash comes from the environment" "$OUT/t37-env.err"
check "... leaves the file as it was" cmp -s "$cfg" "$OUT/t37-env.yaml"
nothing_left() { [ ! -e "$OUT/t37-env-keys" ] && ! ls "$cfg".bak-* "$(dirname "$cfg")"/.config.yaml.rotate-* >/dev/null 2>&1; }
check "... and no keys file, no backup, no temporary file" nothing_left
cp -p "$OUT/t37-before.yaml" "$cfg"

stat -c '%u:%g %a' "$cfg" >"$OUT/t37-stat-before"
REDIS_PASSWORD=x "$FETCHML_BUILD/fetchml-admin" rotate --all -c "$cfg" --reload "$FETCHML_VAR/run/fcgi.pid" --reload "$FETCHML_VAR/run/logrelay.pid" \
    --keys-out "$OUT/t37-keys" >"$OUT/t37-rotate.out" 2>"$OUT/t37-rotate.err"
rc=$?
check "rotate --all --reload succeeds (exit $rc)" [ "$rc" -eq 0 ]
cat "$OUT/t37-rotate.err"
backup=$(ls "$cfg".bak-* 2>/dev/null | head -1)
check "the keys file is new and 0600" [ "$(stat -c %a "$OUT/t37-keys" 2>/dev/null)" = 600 ]
check "... and has one key per user (7)" [ "$(grep -c '^[A-Za-z0-9_.-]* fetchml_[0-9a-f]\{72\}$' "$OUT/t37-keys")" -eq 7 ]
quiet() { [ ! -s "$OUT/t37-rotate.out" ] && ! grep -q fetchml_ "$OUT/t37-rotate.err"; }
check "with --keys-out, no key on stdout or stderr" quiet
check "the config keeps its owner, group and mode" [ "$(stat -c '%u:%g %a' "$cfg")" = "$(cat "$OUT/t37-stat-before")" ]
check "the old file is kept as the backup, with its mode" cmp -s "$backup" "$OUT/t37-before.yaml"
check "... and the same owner, group and mode" [ "$(stat -c '%u:%g %a' "$backup")" = "$(cat "$OUT/t37-stat-before")" ]
# Only the key lines differ: every comment and every other line stays.
other_changes() { diff "$backup" "$cfg" | grep '^[<>]' | grep -vE '^[<>] +(- )?(hash|label|expires):'; }
check "only hash/label lines changed (t37c's flow line aside)" [ -z "$(other_changes | grep -v 't37c: {')" ]
comments_kept() { grep -q '# t37: three shapes of keys' "$cfg" && grep -q '# plain' "$cfg" && grep -q '^# Development configuration' "$cfg"; }
check "... comments kept" comments_kept
no_old_hash() { local k; for k in "${old_keys[@]}"; do ! grep -q "$(hash_of "$k")" "$cfg" || return 1; done; }
check "no old hash is left in the config" no_old_hash

old_refused() { local k; for k in "${old_keys[@]}"; do as "$k" GET /v1/whoami && status_is 401 || return 1; done; }
check "after the reload every old key gets 401" wait_for 5 old_refused
new_ok() {
    local u k
    while read -r u k; do
        as "$k" GET /v1/whoami && status_is 200 && json_is .user "$u" || return 1
    done < <(grep -v '^#' "$OUT/t37-keys")
}
check "every new key works, for its own user" new_ok
new_in() { # new_in FILE: a new key (or its hash) appears in FILE
    local u k
    while read -r u k; do
        grep -qF -e "$k" -e "$(hash_of "$k")" "$1" && return 0
    done < <(grep -v '^#' "$OUT/t37-keys")
    return 1
}
no_new_in() { ! new_in "$1"; }
check "no new key or hash in api.log" no_new_in "$FETCHML_VAR/log/api.log"
check "no new key or hash in the audit trail" no_new_in "$FETCHML_VAR/log/audit.log"
check "the new keys' requests are audited by user" grep -q '"user":"t37b"' "$FETCHML_VAR/log/audit.log"
old_in() { local k; for k in "${old_keys[@]}"; do grep -qF "$k" "$1" && return 0; done; return 1; }
no_old_in() { ! old_in "$1"; }
check "no old key in api.log" no_old_in "$FETCHML_VAR/log/api.log"
check "no old key in the audit trail" no_old_in "$FETCHML_VAR/log/audit.log"

# One user with --write and a grace: the new key on stdout, the old one kept until it expires.
t37a_key=$(awk '$1 == "t37a" {print $2}' "$OUT/t37-keys")
REDIS_PASSWORD=x "$FETCHML_BUILD/fetchml-admin" rotate -c "$cfg" t37a --write --grace 1h \
    --reload "$FETCHML_VAR/run/fcgi.pid" >"$OUT/t37-one.out" 2>"$OUT/t37-one.err"
rc=$?
check "rotate t37a --write --grace 1h succeeds (exit $rc)" [ "$rc" -eq 0 ]
t37a_new=$(awk '$1 == "t37a" {print $2}' "$OUT/t37-one.out")
check "... prints t37a's new key once on stdout" [ "$(grep -c fetchml_ "$OUT/t37-one.out")" -eq 1 ] && [ -n "$t37a_new" ]
check "... and no key on stderr" [ "$(grep -c fetchml_ "$OUT/t37-one.err")" -eq 0 ]
old_kept() { grep -A1 -F "hash: \"$(hash_of "$t37a_key")\"" "$cfg" | grep -q 'expires: "'; }
check "... keeps the old key with an expires" old_kept
t37a_new_ok() { as "$t37a_new" GET /v1/whoami && status_is 200 && json_is .user t37a; }
check "the new key works after the reload" wait_for 5 t37a_new_ok
as "$t37a_key" GET /v1/whoami
check "... and the old one still does, for the grace period" status_is 200

# The dev users' keys again, for the tests after this one.
rm -f "$cfg".bak-*
write_config
admin_ok() { as admin GET /v1/whoami && status_is 200; }
check "the test config is back" reload_until admin_ok
