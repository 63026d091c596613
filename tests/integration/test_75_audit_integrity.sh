# The audit trail and the logs as every reader sees them (README "Audit trail and
# logs"): characters that some tool takes for a line break or that reorder text
# on screen are escaped in every log, so Python's str.splitlines() finds one line
# per line; a deleted or replaced audit file is noticed and the chain goes on in
# the file at the path; logging.api_file may not name the audit trail;
# logging.audit_sync always still answers and chains every request.

t75_audit=$FETCHML_VAR/log/audit.log
t75_adm=$FETCHML_BUILD/fetchml-admin

# t75_one_line_each FILE...: for every file, str.splitlines() of its text (UTF-8,
# undecodable bytes kept as surrogates) gives exactly as many lines as it has '\n'.
t75_one_line_each() {
    python3 - "$@" <<'PY'
import sys
bad = 0
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    for i, raw in enumerate(data.split(b"\n")[:-1], 1):
        if len(raw.decode("utf-8", "surrogateescape").splitlines()) > 1:
            print(f"  {path}:{i}: splitlines() sees more than one line", file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
}

# NEL, U+2028, U+2029, RLO, LRI, PDI, RLM, VT, FF, FS and DEL, percent-encoded in the
# path (nginx decodes them into the path the audit record holds), in the query and in
# the key header (an unknown key: logged as a failed authentication).
t75_evil='%C2%85a%E2%80%A8b%E2%80%A9c%E2%80%AEd%E2%81%A6e%E2%81%A9f%E2%80%8Fg%0Bh%0Ci%1Cj%7Fk'
as researcher GET "/v1/tasks/x$t75_evil?q=$t75_evil"
t75_trace=$TRACE
req GET "/v1/whoami$t75_evil" -H "X-API-Key: $(printf 'k\xe2\x80\xa8\xc2\x85\xe2\x80\xae')"
# Raw bytes too, where curl passes them on (nginx's error log quotes request lines).
curl -sk -o /dev/null --path-as-is "$BASE/v1/$(printf '\xc2\x85\xe2\x80\xa8\xe2\x80\xae')" \
    -H "X-Request-Id: t75-raw" || true
t75_rec=$(grep -F "\"trace_id\":\"$t75_trace\"" "$t75_audit" || true)
t75_rec_json() { [ -n "$t75_trace" ] && [ -n "$t75_rec" ] && jq -e . <<<"$t75_rec" >/dev/null; }
t75_rec_escaped() {
    grep -qF '\u0085a\u2028b\u2029c\u202ed\u2066e\u2069f\u200fg\u000bh\u000ci\u001cj\u007fk' <<<"$t75_rec"
}
t75_no_raw() { # t75_no_raw FILE: no NEL, U+2028 or RLO as UTF-8 in FILE
    python3 -c 'import sys; d = open(sys.argv[1], "rb").read()
sys.exit(any(c.encode() in d for c in "\u0085\u2028\u202e"))' "$1"
}
check "the record of a path with NEL, U+2028/9 and bidi controls is one JSON line" t75_rec_json
check "... with them written as \\uXXXX" t75_rec_escaped
check "audit.log has no raw NEL, U+2028 or RLO" t75_no_raw "$t75_audit"
# The relay (nginx's error lines): a message with NEL, U+2028 and RLO as UTF-8.
logger -u "$FETCHML_VAR/run/logrelay.sock" --rfc3164 -t nginx_error \
    "t75relay $(printf '\xc2\x85 \xe2\x80\xa8 \xe2\x80\xae') end"
t75_relayed() { grep -qF 't75relay \xc2\x85 \xe2\x80\xa8 \xe2\x80\xae end' "$FETCHML_VAR/log/nginx-error.log"; }
check "the relay writes NEL, U+2028 and RLO as \\xNN" wait_for 3 t75_relayed
check "str.splitlines() sees one line per line in audit.log, api.log and nginx's logs (relay)" \
    t75_one_line_each "$t75_audit" "$FETCHML_VAR/log/api.log" "$FETCHML_VAR/log/nginx-error.log" \
    "$FETCHML_VAR/log/nginx-access.log"

# ---- the audit file deleted, then replaced -------------------------------------------
t75_lands() { # t75_lands FILE: the last request's record is in FILE
    [ -n "$TRACE" ] && grep -qF "\"trace_id\":\"$TRACE\"" "$1"
}
cp "$t75_audit" "$OUT/t75-before.log"
rm "$t75_audit"
as researcher GET /v1/whoami
check "after the audit file was deleted, a request is still answered" status_is 200
check "... and its record is in a new file at the path" t75_lands "$t75_audit"
check "... and api.log says the audit file was deleted" \
    grep -qF "audit: the open $t75_audit was deleted (or replaced)" "$FETCHML_VAR/log/api.log"
check "... which continues the chain of the deleted file (audit-verify --partial old new)" \
    "$t75_adm" audit-verify --partial "$OUT/t75-before.log" "$t75_audit"

# Put the whole trail back in one file, renamed over the path: the pool follows it.
cat "$OUT/t75-before.log" "$t75_audit" >"$t75_audit.new"
# The logger's account writes it (logging.audit_user), and only it may: owner and mode kept.
chown --reference="$t75_audit" "$t75_audit.new" && chmod --reference="$t75_audit" "$t75_audit.new"
mv "$t75_audit.new" "$t75_audit"
as researcher GET /v1/whoami
check "after the audit file was replaced, the next record goes to the new file" t75_lands "$t75_audit"
check "... exactly once" [ "$(grep -cF "\"trace_id\":\"$TRACE\"" "$t75_audit")" = 1 ]
check "... and the trail verifies as one file" "$t75_adm" audit-verify --partial "$t75_audit"

# ---- config: the operational log may not be the audit trail -----------------------
write_config "logging.api_file=\"$t75_audit\""
t75_refused() {
    ! REDIS_PASSWORD=$(sed -n 's/^REDIS_PASSWORD=//p' "$FETCHML_VAR/dev/redis.env") \
        "$t75_adm" check-config "$FETCHML_VAR/dev/config.yaml" >"$OUT/t75-check.err" 2>&1 &&
        grep -q 'logging.api_file: the operational log and the audit trail must be different files' \
            "$OUT/t75-check.err"
}
check "a config whose logging.api_file is logging.file is refused (fetchml-admin check-config)" \
    t75_refused

# ---- audit_sync always ------------------------------------------------------------
t75_always_ok() { as researcher GET /v1/whoami && status_is 200 && t75_lands "$t75_audit"; }
write_config "logging.audit_sync=always"
check "reload with logging.audit_sync: always" reload_until t75_always_ok
for _ in 1 2 3 4 5; do as researcher GET /v1/whoami; done
check "under audit_sync always, requests are answered and recorded" t75_always_ok
check "... and the trail verifies" "$t75_adm" audit-verify --partial "$t75_audit"
write_config
check "reload back to audit_sync none" reload_until t75_always_ok
