# Experiment uploads under load and faults (SPEC section 6): a 200 MB upload
# and download leave every FastCGI worker's peak RSS (VmHWM) under 16 MB
# above what it was; a worker killed mid-upload, or a client that goes away,
# leaves no file and no temporary file; 8 clients doing read-modify-write
# with If-Match lose no update; the file and byte quotas hold exactly under 8
# concurrent uploaders.

t42_k=t42-$(openssl rand -hex 12)
t42_dir=$FETCHML_VAR/experiments/e42
# t42_config [OVERRIDE...]: user e42 (experiments:*) and the overrides (lib.sh exp_user_config).
t42_config() { exp_user_config e42 "$t42_k" "$@"; }
t42_url() { printf '%s/v1/experiments/%s/files/%s' "$BASE" "$1" "$2"; }
t42_workers() { pgrep -P "$(cat "$FETCHML_VAR/run/fcgi.pid")" | sort -n; }
# t42_hwm: "pid kB" of every child of the master (the workers and the sweeper).
t42_hwm() {
    local p
    for p in $(t42_workers); do
        printf '%s %s\n' "$p" "$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null)"
    done
}
# t42_grew BEFORE AFTER: the largest VmHWM growth, in kB, of a process in both.
t42_grew() { join "$1" "$2" | awk '{ d = $3 - $2; if (d > m) m = d } END { print m + 0 }'; }

check "reload with user e42" t42_config

# ---- 200 MB, in bounded memory -----------------------------------------------------
head -c 200000000 /dev/urandom >"$OUT/t42-big"
t42_hwm >"$OUT/t42-hwm0"
t42_status=$(curl -sk -o "$B" -w '%{http_code}' -H "X-API-Key: $t42_k" -T "$OUT/t42-big" \
    "$(t42_url big model.bin)")
t42_hwm >"$OUT/t42-hwm1"
check "a 200 MB upload: 201, the file whole on disk, ETag = its SHA-256" \
    bash -c "[ '$t42_status' = 201 ] && cmp -s '$OUT/t42-big' '$t42_dir/big/model.bin' && jq -e '.etag == \"$(sha256sum "$OUT/t42-big" | cut -c1-64)\"' '$B' >/dev/null"
t42_up=$(t42_grew "$OUT/t42-hwm0" "$OUT/t42-hwm1")
check "no FastCGI worker's peak RSS grew by 16 MB during the upload (largest growth ${t42_up} kB)" \
    [ "$t42_up" -lt 16384 ]
t42_status=$(curl -sk -o "$OUT/t42-down" -w '%{http_code}' -H "X-API-Key: $t42_k" \
    "$(t42_url big model.bin)")
t42_hwm >"$OUT/t42-hwm2"
check "the 200 MB download: 200, the same bytes" \
    bash -c "[ '$t42_status' = 200 ] && cmp -s '$OUT/t42-big' '$OUT/t42-down'"
t42_down=$(t42_grew "$OUT/t42-hwm0" "$OUT/t42-hwm2")
check "no worker's peak RSS grew by 16 MB over upload and download (largest growth ${t42_down} kB)" \
    [ "$t42_down" -lt 16384 ]
rm -f "$OUT/t42-down"

# ---- a worker killed mid-upload, a client that goes away ----------------------------------
head -c 50000000 /dev/zero >"$OUT/t42-50m"
printf '0' >"$OUT/t42-zero"
# t42_uploader: the worker holding an upload's unnamed temporary file open (O_TMPFILE in the
# user's directory: /proc shows it as "<dir>/#<inode> (deleted)").
t42_uploader() {
    local p
    for p in $(t42_workers); do
        if ls -l "/proc/$p/fd" 2>/dev/null | grep -q "$t42_dir/#[0-9]* (deleted)"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
curl -sk -o /dev/null -H "X-API-Key: $t42_k" --limit-rate 5M -T "$OUT/t42-50m" \
    "$(t42_url killed half.bin)" &
t42_curl=$!
wait_for 10 t42_uploader >/dev/null
t42_victim=$(t42_uploader || true)
check "an upload in flight is an unnamed temporary file of a worker (O_TMPFILE)" [ -n "$t42_victim" ]
[ -n "$t42_victim" ] && kill -KILL "$t42_victim"
wait "$t42_curl" 2>/dev/null
check "the worker killed mid-upload left no file, no temporary file and no directory in the tree" \
    bash -c "[ ! -e '$t42_dir/killed' ] && [ -z \"\$(find '$t42_dir' -name '.fetchml-*' 2>/dev/null)\" ]"
as "$t42_k" GET /v1/experiments/killed/files
check "the listing of that experiment shows no file" \
    bash -c "[ $STATUS = 404 ] || jq -e '.total == 0' '$B' >/dev/null"
t42_respawned() { [ "$(t42_workers | wc -l)" -ge "$(t42_workers_want)" ]; }
t42_workers_want() { wc -l <"$OUT/t42-hwm0"; }
check "the master replaced the killed worker" wait_for 10 t42_respawned
curl -sk -o /dev/null -H "X-API-Key: $t42_k" --limit-rate 2M --max-time 2 -T "$OUT/t42-50m" \
    "$(t42_url gone half.bin)"
as "$t42_k" GET /v1/experiments/gone/files
check "a client that went away mid-upload left no file, no temporary file and no directory" \
    bash -c "[ ! -e '$t42_dir/gone' ] && [ $STATUS = 404 ]"
# Refused before the body is read (no key, no permission, over data.max_file_bytes):
# the JSON answer reaches the client at once, nginx is not left waiting for the
# rest, and the worker is free for the next request.
t42_refused() { # t42_refused WANT KEY: a 50 MB PUT as KEY; passes when WANT came back within 5 s
    local out
    out=$(curl -sk -o "$B" -w '%{http_code} %{time_total}' -H "X-API-Key: $2" -T "$OUT/t42-50m" \
        "$(t42_url refused x.bin)")
    [ "${out% *}" = "$1" ] && jq -e .code "$B" >/dev/null &&
        awk -v t="${out#* }" 'BEGIN { exit !(t < 5) }'
}
check "a 50 MB upload with an unknown key: 401 at once" t42_refused 401 "not-a-key-$t42_k"
check "a 50 MB upload without experiments:create: 403 at once" t42_refused 403 "$FETCHML_ANALYST_KEY"
curl -sk -o /dev/null -H "X-API-Key: $t42_k" -T "$OUT/t42-zero" "$(t42_url exists f)"
t42_exists() { # a 50 MB PUT with If-None-Match: * over an existing file: 412 within 5 s
    local out
    out=$(curl -sk -o "$B" -w '%{http_code} %{time_total}' -H "X-API-Key: $t42_k" \
        -H 'If-None-Match: *' -T "$OUT/t42-50m" "$(t42_url exists f)")
    [ "${out% *}" = 412 ] && awk -v t="${out#* }" 'BEGIN { exit !(t < 5) }' &&
        [ "$(cat "$t42_dir/exists/f")" = 0 ]
}
check "a 50 MB upload whose If-None-Match: * fails: 412 before the body is read" t42_exists
t42_config data.max_file_bytes=1000000
check "a 50 MB upload over data.max_file_bytes: 413 at once" t42_refused 413 "$t42_k"
t42_config
check "nothing was stored by the refused uploads" test ! -e "$t42_dir/refused"
rm -f "$OUT/t42-50m" "$OUT/t42-big" "$t42_dir/big/model.bin"

# ---- slow uploads hold at most data.concurrent_transfers workers -------------------------
# Two uploads trickle (20 bytes, one every 0.3 s) on a pool of 4 that receives 2 at once: a
# third upload is refused at once (503, Retry-After), and other requests are served meanwhile.
t42_config server.workers=4 data.concurrent_transfers=2
printf 'x' >"$OUT/t42-one"
t42_slow() { # t42_slow NAME: one trickling upload in the background, its status in $OUT/t42-slow-NAME
    /usr/bin/python3 - "$BASE" "$t42_k" "$1" >"$OUT/t42-slow-$1" 2>&1 <<'PY' &
import socket, ssl, sys, time, urllib.parse
base, key, name = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlparse(base)
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection((u.hostname, u.port), timeout=30), server_hostname=u.hostname)
s.sendall(("PUT /v1/experiments/slow/files/%s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
           "Content-Length: 20\r\nConnection: close\r\n\r\n" % (name, key)).encode())
for _ in range(20):
    time.sleep(0.3)
    s.sendall(b"y")
print(s.recv(64).split(b" ")[1].decode())
PY
}
t42_slow s1
t42_slow s2
sleep 1.5
as "$t42_k" PUT /v1/experiments/slow/files/third -T "$OUT/t42-one"
check "a third upload while two trickle on a pool that takes 2: 503 at once, with Retry-After (got $STATUS)" \
    bash -c "[ $STATUS = 503 ] && jq -e '.code == \"SERVICE_UNAVAILABLE\"' '$B' >/dev/null && tr -d '\r' <'$H' | grep -qi '^retry-after: 1$'"
t42_fast() { local i t; for i in 1 2 3 4 5; do t=$(curl -sk -o /dev/null -w '%{time_total}' -H "X-API-Key: $t42_k" "$BASE/v1/whoami"); awk -v t="$t" 'BEGIN { exit !(t < 1) }' || return 1; done; }
check "... while the other workers answer at once (5 requests under 1 s each)" t42_fast
wait
check "the two trickling uploads end 201" bash -c "[ \"\$(cat '$OUT/t42-slow-s1')\" = 201 ] && [ \"\$(cat '$OUT/t42-slow-s2')\" = 201 ]"
as "$t42_k" PUT /v1/experiments/slow/files/third -T "$OUT/t42-one"
check "... after which an upload is taken again (201)" status_is 201
rm -rf "$t42_dir/slow" "$OUT/t42-one"

# ---- concurrency: If-Match loses no update; quotas hold ----------------------------------
t42_config server.workers=8 data.concurrent_transfers=8
curl -sk -o /dev/null -H "X-API-Key: $t42_k" -T "$OUT/t42-zero" "$(t42_url cas counter)"
# 8 clients, each adding 1 to the counter 5 times: GET it (value and ETag),
# PUT value+1 with If-Match, and on 412 start over.
python3 - "$BASE" "$t42_k" >"$OUT/t42-cas.out" 2>&1 <<'PY'
import http.client, ssl, sys, threading, urllib.parse
base, key = sys.argv[1], sys.argv[2]
host = urllib.parse.urlparse(base)
ctx = ssl._create_unverified_context()
path = "/v1/experiments/cas/files/counter"
conflicts = []
def client(n):
    done = lost = 0
    while done < 5:
        c = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=30)
        c.request("GET", path, headers={"X-API-Key": key})
        r = c.getresponse()
        value, etag = int(r.read()), r.getheader("ETag")
        c.close()
        c = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=30)
        c.request("PUT", path, body=str(value + 1).encode(), headers={"X-API-Key": key, "If-Match": etag})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status == 200:
            done += 1
        elif r.status == 412:
            lost += 1
        else:
            raise SystemExit("unexpected status %d" % r.status)
    conflicts.append(lost)
threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("conflicts", sum(conflicts), "clients", len(conflicts))
PY
as "$t42_k" GET /v1/experiments/cas/files/counter
check "8 clients x 5 If-Match increments: the counter is 40, no update lost ($(cat "$OUT/t42-cas.out"))" \
    bash -c "[ $STATUS = 200 ] && [ \"\$(cat '$B')\" = 40 ] && grep -q 'clients 8' '$OUT/t42-cas.out'"

# Readers during replaces: 2 clients replace a file as fast as they can while 4 others GET it
# for 6 s; every GET finds a whole file (the old content or the new one), never 404 (a reader
# that opened the old content just before its last name went used to answer 404).
python3 - "$BASE" "$t42_k" >"$OUT/t42-race.out" 2>&1 <<'PY'
import http.client, ssl, sys, threading, time, urllib.parse
base, key = sys.argv[1], sys.argv[2]
host = urllib.parse.urlparse(base)
ctx = ssl._create_unverified_context()
path = "/v1/experiments/race/files/f"
until = time.monotonic() + 6
seen = {}
lock = threading.Lock()
def call(method, body=None):
    c = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=30)
    c.request(method, path, body=body, headers={"X-API-Key": key})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data
def writer(n):
    i = 0
    while time.monotonic() < until:
        i += 1
        call("PUT", (b"%d-%d" % (n, i)) * 1000)
def reader():
    while time.monotonic() < until:
        status, data = call("GET")
        if status == 200 and (len(data) % 1000 or data != data[:len(data) // 1000] * 1000):
            status = "torn"
        with lock:
            seen[status] = seen.get(status, 0) + 1
call("PUT", b"0-0" * 1000)
threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
threads += [threading.Thread(target=reader) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))
PY
check "GETs during concurrent replaces: every one 200 with a whole file, none 404 ($(cat "$OUT/t42-race.out"))" \
    bash -c "grep -Eq '^200=[0-9]+$' '$OUT/t42-race.out'"

# t42_burst EXP: 8 concurrent uploads of 1 MB new files into EXP; their statuses in $OUT/t42-burst.
head -c 1000000 /dev/zero >"$OUT/t42-1m"
t42_burst() {
    local i
    : >"$OUT/t42-burst"
    for i in 1 2 3 4 5 6 7 8; do
        curl -sk -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $t42_k" -T "$OUT/t42-1m" \
            "$(t42_url "$1" "f$i")" >>"$OUT/t42-burst" &
    done
    wait
}
t42_count() { grep -c "^$1\$" "$OUT/t42-burst" || true; }
rm -rf "$t42_dir"
t42_config server.workers=8 data.concurrent_transfers=8 data.quota_files=5
t42_burst qf
check "quota_files=5 (the experiment's directory and 4 files) under 8 concurrent uploaders: 4 created, 4 refused 429, 4 files on disk" \
    bash -c "[ $(t42_count 201) = 4 ] && [ $(t42_count 429) = 4 ] && [ \$(find '$t42_dir' -type f | wc -l) = 4 ]"
rm -rf "$t42_dir"
t42_config server.workers=8 data.concurrent_transfers=8 data.quota_bytes=3500000
t42_burst qb
check "quota_bytes=3.5 MB under 8 concurrent 1 MB uploaders: 3 created, 5 refused, 3 MB on disk" \
    bash -c "[ $(t42_count 201) = 3 ] && [ $(t42_count 429) = 5 ] && [ \$(du -sb --apparent-size '$t42_dir' | awk '{print \$1}') -lt 3500000 ] && [ \$(find '$t42_dir' -type f | wc -l) = 3 ]"
t42_burst qb
check "overwriting the same 8 names concurrently stays within the byte quota" \
    bash -c "[ \$(find '$t42_dir' -type f -printf '%s\n' | awk '{ s += \$1 } END { print s }') -le 3500000 ]"
rm -rf "$t42_dir" "$OUT/t42-1m"
t42_config
