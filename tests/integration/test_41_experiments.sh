# Experiment files (SPEC section 6) through the real stack: the routes, their
# answers and audit records, RBAC and ?user=, ETag and If-Match /
# If-None-Match, the upload rate and the quotas; then the traversal corpus:
# requests with encoded and double-encoded separators and dots, overlong
# UTF-8, NUL and control characters, long names and paths, case and Unicode
# normalization twins, and names a user with shell access planted in the tree
# (symbolic and hard links to files and directories outside it and in another
# user's tree, dangling links, FIFOs, device files), and a rename race while
# requests resolve. None may read, write, list or delete anything outside the
# caller's tree: the files outside and the other user's tree are compared
# before and after, and no answer may carry their contents.

t41_a=t41a-$(openssl rand -hex 12) # e41a: experiments:* (the caller of most requests)
t41_b=t41b-$(openssl rand -hex 12) # e41b: experiments:*, the other user
t41_r=t41r-$(openssl rand -hex 12) # e41r: experiments:read only
t41_exp=$FETCHML_VAR/experiments
t41_out=$FETCHML_VAR/t41-outside # a directory outside every tree
t41_audit=$FETCHML_VAR/log/audit.log
t41_gen=0
# t41_config [OVERRIDE...]: these users and the overrides; reloads and waits
# until e41a's burst says that the new config answers.
t41_config() {
    local u rate
    t41_gen=$((t41_gen + 1))
    rate="rate_limit: { requests_per_minute: 1000000, burst: $((100000 + t41_gen)) }"
    u=$'    e41a:\n      hash: "'"$(hash_of "$t41_a")"$'"\n      permissions: { "experiments:*": true }\n      '"$rate"
    u+=$'\n    e41b:\n      hash: "'"$(hash_of "$t41_b")"$'"\n      permissions: { "experiments:*": true }\n      '"$rate"
    u+=$'\n    e41r:\n      hash: "'"$(hash_of "$t41_r")"$'"\n      permissions: { "experiments:read": true }\n      '"$rate"
    write_config extra_users="$u" data.uploads_per_minute=100000 "$@" &&
        reload_until t41_config_is $((100000 + t41_gen))
}
t41_config_is() { as "$t41_a" GET /v1/whoami && json_is .rate_limit.burst "$1"; }
t41_url() { printf '/v1/experiments/%s/files/%s' "$1" "$2"; }
t41_put() { # t41_put KEY EXP PATH FILE [curl args...]
    local k=$1 e=$2 p=$3 f=$4
    shift 4
    as "$k" PUT "$(t41_url "$e" "$p")" -T "$f" "$@"
}
t41_etag() { tr -d '\r' <"$H" | awk -F': ' 'tolower($1)=="etag"{print $2}'; }
t41_last_audit() { grep -F "\"trace_id\":\"$TRACE\"" "$t41_audit" | tail -1; }
t41_audit_has() { t41_last_audit | jq -e "$1" >/dev/null; }

check "reload with this file's users" t41_config

printf 'hello\n' >"$OUT/t41-hello"
printf 'second version\n' >"$OUT/t41-v2"

# ---- the routes ------------------------------------------------------------------
as "$t41_a" GET /v1/experiments
check "GET /v1/experiments before any upload: 200, no experiments" \
    bash -c "[ $STATUS = 200 ] && jq -e '.user == \"e41a\" and .experiments == [] and .usage.files == 0' '$B' >/dev/null"
t41_put "$t41_a" run1 "ckpt/epoch-1/model.bin" "$OUT/t41-hello"
t41_e1=$(t41_etag)
check "PUT a file in a new experiment and directories: 201 with its ETag (SHA-256 of the content)" \
    bash -c "[ $STATUS = 201 ] && [ '$t41_e1' = '\"$(sha256sum "$OUT/t41-hello" | cut -c1-64)\"' ] && jq -e '.created == true and .bytes == 6' '$B' >/dev/null"
check "the PUT is audited: experiments:create, its path, 6 bytes" \
    t41_audit_has '.permission == "experiments:create" and .bytes == 6 and .resource == "/v1/experiments/run1/files/ckpt/epoch-1/model.bin" and (has("owner") | not)'
check "the file is 0600 and its directories 0700 in data.experiments_dir/<user>/<experiment>" \
    bash -c "[ \$(stat -c %a '$t41_exp/e41a/run1/ckpt/epoch-1/model.bin') = 600 ] && [ \$(stat -c %a '$t41_exp/e41a/run1/ckpt/epoch-1') = 700 ] && [ \$(stat -c %a '$t41_exp/e41a') = 700 ]"
as "$t41_a" GET "$(t41_url run1 ckpt/epoch-1/model.bin)"
check "GET the file: 200, the same bytes, ETag, application/octet-stream, Content-Length" \
    bash -c "[ $STATUS = 200 ] && cmp -s '$B' '$OUT/t41-hello' && [ '$(t41_etag)' = '$t41_e1' ] && tr -d '\r' <'$H' | grep -qi '^content-type: application/octet-stream$' && tr -d '\r' <'$H' | grep -qi '^content-length: 6$'"
check "the GET is audited: experiments:read and the bytes sent" \
    t41_audit_has '.permission == "experiments:read" and .bytes == 6 and .status == 200'
as "$t41_a" HEAD "$(t41_url run1 ckpt/epoch-1/model.bin)" -I
check "HEAD: 200 with the ETag and no body" bash -c "[ $STATUS = 200 ] && [ '$(t41_etag)' = '$t41_e1' ] && ! grep -q hello '$B'"
# A body of unknown length (chunked: curl -T - from a pipe) is refused, and the file stays.
as "$t41_a" PUT "$(t41_url run1 ckpt/epoch-1/model.bin)" -T - <"$OUT/t41-v2"
check "PUT without Content-Length (chunked): 411 LENGTH_REQUIRED" error_is 411 LENGTH_REQUIRED
as "$t41_a" GET "$(t41_url run1 ckpt/epoch-1/model.bin)"
check "... and the file is unchanged" bash -c "[ $STATUS = 200 ] && cmp -s '$B' '$OUT/t41-hello'"
t41_put "$t41_a" run1 "notes.txt" "$OUT/t41-v2"
as "$t41_a" GET /v1/experiments
check "GET /v1/experiments: the experiment with its file count and bytes" \
    bash -c "[ $STATUS = 200 ] && jq -e '.experiments == [{\"name\":\"run1\",\"files\":2,\"bytes\":21}] and .usage.bytes == 21 and .usage.directories == 3 and .usage.quota_files > 0' '$B' >/dev/null"
as "$t41_a" GET "/v1/experiments/run1/files?limit=1"
check "the listing is paged: limit 1 gives the first path, total 2, next_offset 1" \
    bash -c "[ $STATUS = 200 ] && jq -e '.files[0].path == \"ckpt/epoch-1/model.bin\" and .total == 2 and .next_offset == 1 and (.files | length) == 1 and .files[0].bytes == 6' '$B' >/dev/null"
as "$t41_a" GET "/v1/experiments/run1/files?limit=1&offset=1"
check "the second page holds the other file and no next_offset" \
    bash -c "[ $STATUS = 200 ] && jq -e '.files[0].path == \"notes.txt\" and .next_offset == null' '$B' >/dev/null"
as "$t41_a" GET "/v1/experiments/run1/files?limit=0"
check "limit=0 -> 400" error_is 400 BAD_REQUEST
as "$t41_a" GET "/v1/experiments/nope/files"
check "the listing of an experiment that does not exist -> 404" error_is 404 NOT_FOUND
as "$t41_a" GET "$(t41_url run1 missing.txt)"
check "GET of a missing file -> 404" error_is 404 NOT_FOUND
as "$t41_a" GET "$(t41_url run1 ckpt)"
check "GET of a directory -> 404" error_is 404 NOT_FOUND

# ---- ETag preconditions ---------------------------------------------------------
t41_put "$t41_a" run1 "ckpt/epoch-1/model.bin" "$OUT/t41-v2" -H 'If-Match: "0000000000000000000000000000000000000000000000000000000000000000"'
check "PUT with an If-Match that is not the current ETag -> 412, the file unchanged" \
    bash -c "[ $STATUS = 412 ] && jq -e '.code == \"PRECONDITION_FAILED\"' '$B' >/dev/null && cmp -s '$t41_exp/e41a/run1/ckpt/epoch-1/model.bin' '$OUT/t41-hello'"
t41_put "$t41_a" run1 "ckpt/epoch-1/model.bin" "$OUT/t41-v2" -H "If-None-Match: *"
check "PUT with If-None-Match: * over an existing file -> 412" error_is 412 PRECONDITION_FAILED
t41_put "$t41_a" run1 "ckpt/epoch-1/model.bin" "$OUT/t41-v2" -H "If-Match: $t41_e1"
check "PUT with If-Match of the current ETag -> 200 (replaced), the new content in place" \
    bash -c "[ $STATUS = 200 ] && jq -e '.created == false' '$B' >/dev/null && cmp -s '$t41_exp/e41a/run1/ckpt/epoch-1/model.bin' '$OUT/t41-v2'"
t41_put "$t41_a" run1 "ckpt/epoch-1/model.bin" "$OUT/t41-v2" -H "If-Match: $t41_e1"
check "the old ETag no longer matches: 412 (compare-and-swap)" error_is 412 PRECONDITION_FAILED
t41_put "$t41_a" run1 "fresh.txt" "$OUT/t41-v2" -H "If-Match: *"
check "If-Match: * on a file that does not exist -> 412, nothing created" \
    bash -c "[ $STATUS = 412 ] && [ ! -e '$t41_exp/e41a/run1/fresh.txt' ]"
t41_put "$t41_a" run1 "fresh.txt" "$OUT/t41-v2" -H "If-None-Match: *"
check "If-None-Match: * on a file that does not exist -> 201" status_is 201

# ---- RBAC, ?user= and other users' trees --------------------------------------------
t41_put "$t41_b" bexp "secret.txt" "$OUT/t41-hello"
check "the other user uploads into a tree of its own" status_is 201
as "$t41_a" GET "$(t41_url bexp secret.txt)"
check "another user's experiment, by name: 404" error_is 404 NOT_FOUND
for t41_m in GET DELETE; do
    as "$t41_a" "$t41_m" "$(t41_url bexp secret.txt)?user=e41b"
    check "$t41_m with ?user=<another user> by a non-admin -> 404, as if it did not exist" error_is 404 NOT_FOUND
done
as "$t41_a" PUT "$(t41_url bexp planted.txt)?user=e41b" -T "$OUT/t41-v2"
check "PUT with ?user=<another user> by a non-admin -> 404, nothing written there" \
    bash -c "[ $STATUS = 404 ] && [ ! -e '$t41_exp/e41b/bexp/planted.txt' ]"
as "$t41_a" GET "/v1/experiments?user=e41b"
check "GET /v1/experiments?user=<another user> by a non-admin -> 404" error_is 404 NOT_FOUND
as admin GET "/v1/experiments?user=e41b"
check "an admin lists another user's experiments with ?user=, audited with the owner" \
    bash -c "[ $STATUS = 200 ] && jq -e '.user == \"e41b\" and .experiments[0].name == \"bexp\"' '$B' >/dev/null && grep -F '\"trace_id\":\"$TRACE\"' '$t41_audit' | jq -e '.owner == \"e41b\" and .user == \"admin\"' >/dev/null"
as admin GET "$(t41_url bexp secret.txt)?user=e41b"
check "an admin reads another user's file with ?user=" bash -c "[ $STATUS = 200 ] && cmp -s '$B' '$OUT/t41-hello'"
as admin GET "/v1/experiments?user=nobody-like-this"
check "?user= naming no configured user -> 404" error_is 404 NOT_FOUND
t41_put "$t41_r" r "x" "$OUT/t41-hello"
check "experiments:read alone cannot PUT (403)" error_is 403 FORBIDDEN
as "$t41_r" DELETE "$(t41_url run1 notes.txt)"
check "experiments:read alone cannot DELETE (403)" error_is 403 FORBIDDEN
as analyst PUT "$(t41_url r x)" -T "$OUT/t41-hello"
check "the analyst role reads but does not create experiments (403)" error_is 403 FORBIDDEN

# ---- DELETE --------------------------------------------------------------------
as "$t41_a" DELETE "$(t41_url run1 notes.txt)"
check "DELETE a file: 200 with its bytes, gone from the disk, audited experiments:delete" \
    bash -c "[ $STATUS = 200 ] && jq -e '.deleted == true and .bytes == 15' '$B' >/dev/null && [ ! -e '$t41_exp/e41a/run1/notes.txt' ] && grep -F '\"trace_id\":\"$TRACE\"' '$t41_audit' | jq -e '.permission == \"experiments:delete\" and .bytes == 15' >/dev/null"
as "$t41_a" DELETE "$(t41_url run1 notes.txt)"
check "DELETE again -> 404" error_is 404 NOT_FOUND
# Directories live as long as something is in them.
t41_put "$t41_a" brief "a/b/c.txt" "$OUT/t41-hello"
t41_put "$t41_a" brief "a/keep.txt" "$OUT/t41-hello"
as "$t41_a" DELETE "$(t41_url brief a/b/c.txt)"
check "a DELETE removes the directory it empties (a/b), not one still holding a file (a)" \
    bash -c "[ $STATUS = 200 ] && [ ! -e '$t41_exp/e41a/brief/a/b' ] && [ -f '$t41_exp/e41a/brief/a/keep.txt' ]"
as "$t41_a" DELETE "$(t41_url brief a/keep.txt)"
as "$t41_a" GET /v1/experiments
check "deleting an experiment's last file removes the experiment: no longer listed, nothing on disk" \
    bash -c "[ $STATUS = 200 ] && jq -e '[.experiments[].name] == [\"run1\"]' '$B' >/dev/null && [ ! -e '$t41_exp/e41a/brief' ]"
t41_put "$t41_a" "ckpt-failed" "x/y.bin" "$OUT/t41-hello" -H "If-Match: *"
check "a refused upload (412) into a new experiment leaves no directory" \
    bash -c "[ $STATUS = 412 ] && [ ! -e '$t41_exp/e41a/ckpt-failed' ]"

# ---- limits --------------------------------------------------------------------
t41_config data.max_file_bytes=1000 data.quota_files=7 data.quota_bytes=4000
head -c 1001 /dev/zero >"$OUT/t41-1001"
head -c 1000 /dev/zero >"$OUT/t41-1000"
head -c 100 /dev/zero >"$OUT/t41-100"
t41_put "$t41_a" lim "big" "$OUT/t41-1001"
check "a file over data.max_file_bytes -> 413, nothing stored" \
    bash -c "[ $STATUS = 413 ] && jq -e '.code == \"PAYLOAD_TOO_LARGE\"' '$B' >/dev/null && [ ! -e '$t41_exp/e41a/lim/big' ]"
# data.quota_files counts files and directories: e41a holds run1/ckpt/epoch-1/model.bin and
# run1/fresh.txt (5 entries), room for one file in a new experiment (2 more).
t41_put "$t41_a" lim "deep/er/one" "$OUT/t41-100"
check "a file whose new directories would pass data.quota_files=7 -> 429 naming quota_files, no directory made" \
    bash -c "[ $STATUS = 429 ] && jq -e '.code == \"QUOTA_EXCEEDED\" and (.error | test(\"quota_files\"))' '$B' >/dev/null && [ ! -e '$t41_exp/e41a/lim' ]"
t41_put "$t41_a" lim "one" "$OUT/t41-1000"
check "a file in a new experiment fits data.quota_files=7 (7 entries)" status_is 201
t41_put "$t41_a" lim "two" "$OUT/t41-1000"
check "a fourth file -> 429 QUOTA_EXCEEDED naming quota_files, nothing stored" \
    bash -c "[ $STATUS = 429 ] && jq -e '.code == \"QUOTA_EXCEEDED\" and (.error | test(\"quota_files\"))' '$B' >/dev/null && [ ! -e '$t41_exp/e41a/lim/two' ]"
t41_put "$t41_a" lim "one" "$OUT/t41-1000"
check "overwriting a file counts no new file: 200" status_is 200
as "$t41_a" DELETE "$(t41_url lim one)"
t41_put "$t41_a" lim "two" "$OUT/t41-1000"
check "after a DELETE the file quota has room again" status_is 201
t41_config data.quota_bytes=1100
t41_put "$t41_a" lim "two" "$OUT/t41-1000"
check "an overwrite is counted by its new size, not added to the old: within 1100 bytes" status_is 200
t41_put "$t41_a" lim "three" "$OUT/t41-100" -H "If-None-Match: *"
check "bytes over data.quota_bytes -> 429 QUOTA_EXCEEDED naming quota_bytes" \
    bash -c "[ $STATUS = 429 ] && jq -e '.code == \"QUOTA_EXCEEDED\" and (.error | test(\"quota_bytes\"))' '$B' >/dev/null"
t41_config data.uploads_per_minute=2
for t41_i in 1 2 3; do t41_put "$t41_a" rate "f$t41_i" "$OUT/t41-hello"; done
check "data.uploads_per_minute=2: the third upload in a row -> 429 RATE_LIMITED with Retry-After" \
    bash -c "[ $STATUS = 429 ] && jq -e '.code == \"RATE_LIMITED\"' '$B' >/dev/null && tr -d '\r' <'$H' | grep -qi '^retry-after: [1-9]'"
as "$t41_a" GET "$(t41_url rate f1)"
check "the upload rate does not limit reads" status_is 200
t41_config

# ---- the traversal corpus ---------------------------------------------------------
# What a user with shell access plants: outside every tree, in the other
# user's tree, and links and special files inside e41a's tree.
mkdir -p "$t41_out/dir" "$t41_exp/e41a/plant/sub"
printf 'TOPSECRET-OUTSIDE\n' >"$t41_out/secret.txt"
printf 'TOPSECRET-DIR\n' >"$t41_out/dir/inner.txt"
t41_bsecret=$t41_exp/e41b/bexp/secret.txt
printf 'TOPSECRET-BOB\n' >"$t41_bsecret"
t41_p=$t41_exp/e41a/plant
ln -s "$t41_out/secret.txt" "$t41_p/abs_link"
ln -s ../../../t41-outside/secret.txt "$t41_p/rel_link"
ln -s ../../e41b/bexp/secret.txt "$t41_p/bob_link"
ln -s "$t41_out" "$t41_p/out_dir"
ln -s ../../e41b/bexp "$t41_p/bob_dir"
ln -s nowhere "$t41_p/dangling"
ln -s "$t41_out/created-through-a-link" "$t41_p/dangling_out"
ln -s /proc/self/root/etc/passwd "$t41_p/proc_link"
ln "$t41_out/secret.txt" "$t41_p/hard_out"
ln "$t41_bsecret" "$t41_p/hard_bob"
mkfifo "$t41_p/fifo"
mknod "$t41_p/dev_zero" c 1 5 2>/dev/null || true
mknod "$t41_p/dev_null" c 1 3 2>/dev/null || true
ln -s ../e41b/bexp "$t41_exp/e41a/bob_exp"
ln -s "$t41_out" "$t41_exp/e41a/out_exp"
# What the user plants in the trees is theirs, i.e. the pool's account's (server.user).
t41_owner=$(stat -c %u:%g "$t41_exp")
chown -hR "$t41_owner" "$t41_exp/e41a" "$t41_exp/e41b"
# The state the corpus must leave alone: every file outside e41a's tree.
t41_state() {
    (cd "$FETCHML_VAR" && find t41-outside experiments/e41b -printf '%p %y %s %n\n' | sort &&
        find t41-outside experiments/e41b -type f -exec sha256sum {} + | sort)
}
t41_state >"$OUT/t41-before"
t41_cases=0 t41_leaks=0 t41_bad=0
: >"$OUT/t41-corpus.log"
# t41_case WANT METHOD PATH [curl args...]: one request of the corpus as e41a;
# WANT lists the acceptable statuses (a request nginx refuses itself never
# reaches the app and is not audited: its trace is dropped). No answer may
# carry a planted secret.
t41_case() {
    local want=$1 m=$2 p=$3
    shift 3
    t41_cases=$((t41_cases + 1))
    if [ "$m" = PUT ]; then
        as "$t41_a" PUT "$p" -T "$OUT/t41-v2" "$@"
    else
        as "$t41_a" "$m" "$p" "$@"
    fi
    grep -qF "\"trace_id\":\"$TRACE\"" "$t41_audit" || forget_trace
    if grep -q TOPSECRET "$B" 2>/dev/null; then t41_leaks=$((t41_leaks + 1)); fi
    if [[ " $want " != *" $STATUS "* ]]; then
        t41_bad=$((t41_bad + 1))
        printf 'FAIL %s %s -> %s (want %s)\n' "$m" "$p" "$STATUS" "$want" >>"$OUT/t41-corpus.log"
    fi
}
F=/v1/experiments/plant/files
# Planted names, each with GET, PUT and DELETE: never followed, never replaced.
for t41_n in abs_link rel_link bob_link dangling dangling_out proc_link hard_out hard_bob fifo \
    dev_zero dev_null; do
    t41_case 404 GET "$F/$t41_n"
    t41_case 409 PUT "$F/$t41_n"
    t41_case 404 DELETE "$F/$t41_n"
done
for t41_n in out_dir/secret.txt out_dir/dir/inner.txt bob_dir/secret.txt; do
    t41_case 404 GET "$F/$t41_n"
    t41_case 409 PUT "$F/$t41_n"
    t41_case 404 DELETE "$F/$t41_n"
done
t41_case 409 PUT "$F/out_dir/new.txt"
t41_case 409 PUT "$F/bob_dir/new.txt"
t41_case 409 PUT "$F/fifo/x"
# Experiments that are links.
for t41_x in bob_exp out_exp; do
    t41_case 404 GET "/v1/experiments/$t41_x/files"
    t41_case 404 GET "/v1/experiments/$t41_x/files/secret.txt"
    t41_case 409 PUT "/v1/experiments/$t41_x/files/new.txt"
    t41_case 404 DELETE "/v1/experiments/$t41_x/files/secret.txt"
done
# Encodings: nginx decodes the path once and resolves dot segments; what is
# left is a name, looked up beneath the tree, or refused.
t41_case "400 404" GET "$F/..%2f..%2f..%2ft41-outside%2fsecret.txt"
t41_case "400 404" GET "$F/%2e%2e/%2e%2e/%2e%2e/t41-outside/secret.txt"
t41_case "400 404" GET "$F/%2E%2E%2F%2E%2E%2F%2E%2E%2Fe41b%2Fbexp%2Fsecret.txt"
t41_case "400 404" GET "/v1/experiments/..%2f..%2fe41b/files/bexp/secret.txt"
t41_case "400 404" GET "/v1/experiments/%2e%2e/files/e41b/bexp/secret.txt"
t41_case "400 404" DELETE "$F/..%2f..%2f..%2fe41b%2fbexp%2fsecret.txt"
t41_case "400 404 409" PUT "$F/..%2f..%2f..%2ft41-outside%2fput.txt"
t41_case 404 GET "$F/%252e%252e%252f%252e%252e%252fsecret.txt"
t41_case 201 PUT "$F/%252e%252e%252fdouble.txt"
t41_case 404 GET "$F/..%5c..%5c..%5ct41-outside%5csecret.txt"
t41_case 400 GET "$F/%c0%ae%c0%ae/%c0%ae%c0%ae/secret.txt"
t41_case 400 GET "$F/a%c0%afb"
t41_case 400 PUT "$F/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afx"
t41_case 400 GET "$F/a%e0%80%afb"
t41_case 400 GET "$F/a%ed%a0%80b"
t41_case 400 GET "$F/a%ff"
# A NUL: nginx passes it on and the app refuses the name (400); Apache refuses
# any path with %00 itself, before the app (404).
t41_nul=400
[ "$FRONT" = apache ] && t41_nul=404
t41_case "$t41_nul" GET "$F/a%00b"
t41_case "$t41_nul" PUT "$F/a%00.txt"
t41_case 400 GET "$F/a%01b"
t41_case 400 PUT "$F/a%0ab"
t41_case 400 PUT "$F/a%0d%0aX-Injected:%201"
t41_case 400 GET "$F/a%1b%5b31mb"
t41_case 400 GET "$F/a%7fb"
t41_case 400 GET "$F/a%c2%85b"
t41_case 400 PUT "$F/a%e2%80%aeb"
t41_case 400 PUT "$F/a%e2%80%a8b"
t41_case 400 PUT "$F/.fetchml-0011223344556677"
t41_case 400 GET "$F/dir/"
t41_case "400 404" GET "$F/.."
t41_case "200 400 404" GET "/v1/experiments/plant/files/a/%2e%2e"
t41_case 400 GET "/v1/experiments/a%01b/files/x"
# Long names and paths.
t41_255=$(printf 'n%.0s' $(seq 255))
t41_256=$(printf 'n%.0s' $(seq 256))
t41_case 201 PUT "$F/$t41_255"
t41_case 400 PUT "$F/$t41_256"
t41_case 404 GET "/v1/experiments/$t41_256/files/x"
t41_long=$(for i in $(seq 9); do printf '%s/' "$(printf 'd%.0s' $(seq 120))"; done)x
t41_case 400 PUT "$F/$t41_long"
t41_deep=$(for i in $(seq 70); do printf 'd/'; done)x
t41_case 400 PUT "$F/$t41_deep"
# Case and Unicode normalization: different names, never the same file.
t41_case 201 PUT "$F/Case.txt"
t41_case 404 GET "$F/case.txt"
t41_case 404 GET "$F/CASE.TXT"
t41_case 201 PUT "$F/caf%c3%a9.txt"
t41_case 404 GET "$F/cafe%cc%81.txt"
t41_case 404 GET "/v1/experiments/PLANT/files/Case.txt"
t41_case 404 GET "/v1/experiments/plant/files/Case.txt?user=E41B"
check "the traversal corpus has at least 50 cases ($t41_cases)" [ "$t41_cases" -ge 50 ]
check "every corpus request got an expected answer ($t41_bad unexpected; see $OUT/t41-corpus.log)" \
    [ "$t41_bad" -eq 0 ]
[ "$t41_bad" -eq 0 ] || cat "$OUT/t41-corpus.log"
check "no corpus answer carries a planted secret" [ "$t41_leaks" -eq 0 ]
as "$t41_a" GET "/v1/experiments/plant/files?limit=1000"
check "the listing shows only regular files of the tree: no link, FIFO, device or hard link" \
    bash -c "[ $STATUS = 200 ] && jq -e '[.files[].path] | (map(test(\"link|dangling|hard_|fifo|dev_|out_dir|bob_dir\")) | any | not) and (index(\"Case.txt\") != null)' '$B' >/dev/null"
as "$t41_a" GET /v1/experiments
check "GET /v1/experiments does not list linked experiments" \
    bash -c "[ $STATUS = 200 ] && jq -e '[.experiments[].name] | (index(\"bob_exp\") == null) and (index(\"out_exp\") == null)' '$B' >/dev/null"
check "the double-encoded name is a literal name inside the tree" \
    test -f "$t41_exp/e41a/plant/%2e%2e%2fdouble.txt"

# A rename race: a shell user swaps plant/race between a real directory and a
# link to the outside directory (renameat2 RENAME_EXCHANGE, so the name always
# exists) while requests resolve paths through it.
mkdir -p "$t41_p/race"
printf 'inside\n' >"$t41_p/race/secret.txt"
ln -s "$t41_out" "$t41_p/race.other"
chown -hR "$t41_owner" "$t41_p/race" "$t41_p/race.other"
python3 - "$t41_p" <<'PY' &
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
end = time.time() + 4
while time.time() < end:
    libc.renameat2(-100, b"race", -100, b"race.other", 2)  # AT_FDCWD, RENAME_EXCHANGE
PY
t41_racer=$!
t41_race_leak=0 t41_race_n=0
while kill -0 "$t41_racer" 2>/dev/null; do
    t41_race_n=$((t41_race_n + 1))
    as "$t41_a" GET "$F/race/secret.txt"
    grep -q TOPSECRET "$B" && t41_race_leak=$((t41_race_leak + 1))
    as "$t41_a" GET "$F/race/../race/secret.txt"
    grep -q TOPSECRET "$B" && t41_race_leak=$((t41_race_leak + 1))
    as "$t41_a" PUT "$F/race/put-$t41_race_n.txt" -T "$OUT/t41-v2"
    as "$t41_a" DELETE "$F/race/secret.txt"
    if [ "$STATUS" = 200 ]; then t41_put "$t41_a" plant race/secret.txt "$OUT/t41-hello"; fi
done
wait "$t41_racer"
check "the rename race ($t41_race_n rounds) never served the outside file" [ "$t41_race_leak" -eq 0 ]
t41_state >"$OUT/t41-after"
check "nothing outside e41a's tree was read into an answer, written, or deleted (compared before/after)" \
    cmp -s "$OUT/t41-before" "$OUT/t41-after"
check "no file was created through a link outside the tree" \
    bash -c "[ ! -e '$t41_out/created-through-a-link' ] && ! ls '$t41_out' | grep -q put-"
rm -rf "$t41_out" "$t41_exp/e41a/plant" "$t41_exp/e41a/bob_exp" "$t41_exp/e41a/out_exp"
