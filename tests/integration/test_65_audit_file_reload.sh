# A reload that names another audit file (logging.file) continues that file's
# own hash chain, not the one of the file written before: a file that
# already holds a chain gets the next seq and its last hash as prev_hash, and
# `fetchml-admin audit-verify` accepts it alone. Back on the first file, its
# chain continues where it stopped.
#
# The requests here go around req/as (curl directly), so that their trace
# ids, recorded in the other file, are not looked for in audit.log later.

t65_audit=$FETCHML_VAR/log/audit.log
t65_other=$FETCHML_VAR/log/t65-other.log
t65_cfg=$FETCHML_VAR/dev/config.yaml
t65_adm=$FETCHML_BUILD/fetchml-admin

# t65_hit: GET /v1/whoami as the researcher; prints the response's X-Request-Id.
t65_hit() {
    curl -sk -o /dev/null -D "$OUT/t65-headers" -H "X-API-Key: $FETCHML_RESEARCHER_KEY" \
        "$BASE/v1/whoami" || return 1
    tr -d '\r' <"$OUT/t65-headers" | awk -F': ' 'tolower($1)=="x-request-id"{print $2}' | tail -1
}
t65_lands_in() { # t65_lands_in FILE: a new request's record is written to FILE
    local t
    t=$(t65_hit) && [ -n "$t" ] && grep -qF "\"trace_id\":\"$t\"" "$1"
}
t65_last() { tail -1 "$1" | jq -r "$2"; }
t65_verify() { "$t65_adm" audit-verify "$@" >/dev/null; }

# The other file holds a chain of its own: the first three records of this run
# (made sure of: run alone, this file is the first to make requests).
for i in 1 2 3 4 5; do as researcher GET /v1/whoami; done
head -3 "$t65_audit" >"$t65_other"
chown "$(stat -c %u "$t65_audit")" "$t65_other" # the pool's account (server.user) appends to it
check "the other audit file is a valid chain of 3 records" t65_verify "$t65_other"
t65_head=$(t65_last "$t65_other" .hash)
check "audit.log is further along its chain (seq > 3)" [ "$(t65_last "$t65_audit" .seq)" -gt 3 ]

write_config
sed -i -E "s#^  file: \".*\"\$#  file: \"$t65_other\"#" "$t65_cfg"
check "reload with logging.file naming the other file" reload_until t65_lands_in "$t65_other"
for i in 1 2 3 4; do t65_hit >/dev/null; done
check "the records continue the other file's chain (seq 4 follows its seq 3)" \
    [ "$(sed -n 4p "$t65_other" | jq -r '"\(.seq) \(.prev_hash)"')" = "4 $t65_head" ]
check "audit-verify accepts the other file alone" t65_verify "$t65_other"
check "... which holds its 3 records and the new ones" [ "$(wc -l <"$t65_other")" -ge 8 ]
t65_seq=$(t65_last "$t65_audit" .seq)

write_config
check "reload back onto audit.log" reload_until t65_lands_in "$t65_audit"
check "audit.log's chain continues where it stopped (seq $t65_seq + 1)" \
    [ "$(grep -c "\"seq\":$((t65_seq + 1))," "$t65_audit")" = 1 ]
check "audit-verify accepts audit.log" t65_verify "$t65_audit"
rm -f "$t65_other"
