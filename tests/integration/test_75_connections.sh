# Connection exhaustion (README "nginx in front"): one address holding
# thousands of idle or slow TLS connections does not starve other clients.
# The attacker is 127.0.0.2 (not exempt from nginx's per-client limits, and
# outside the test config's allow-list: it never needs the app); the normal
# client is 127.0.0.1. Bounded: 3650 connections, 20 s, then the attacker
# closes what is left and exits by itself (slow_clients.py).

# ---- one client = an IPv4 address or an IPv6 /64 ------------------------------------
# The shipped http-level settings in an nginx of their own, on a unix socket,
# where the realip module takes the client address from a test header (the
# stack's nginx has no such back door). A limit of 1 request per minute, keyed
# like the stack's limits, shows which addresses count as one client.
cx_d=$OUT/nginx64
mkdir -p "$cx_d"
cat >"$cx_d/nginx.conf" <<NGINX
pid $cx_d/nginx.pid;
error_log $cx_d/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $cx_d/body;
    proxy_temp_path $cx_d/proxy;
    fastcgi_temp_path $cx_d/fastcgi;
    uwsgi_temp_path $cx_d/uwsgi;
    scgi_temp_path $cx_d/scgi;
    include $ROOT/nginx/fetchml-site.conf.inc;
    limit_req_zone \$fetchml_flood_key zone=cx64:1m rate=1r/m;
    server {
        listen unix:$cx_d/t.sock;
        set_real_ip_from unix:;
        real_ip_header X-Test-Addr;
        # A file, not "return": return answers in the rewrite phase, before any limit.
        location / { limit_req zone=cx64; root $cx_d; }
    }
}
NGINX
echo ok >"$cx_d/f.txt"
cx_from() { curl -s --unix-socket "$cx_d/t.sock" -o /dev/null -w '%{http_code}' -H "X-Test-Addr: $1" http://t/f.txt; }
if nginx -q -p "$cx_d" -c "$cx_d/nginx.conf" -e "$cx_d/error.log" && wait_for 5 test -S "$cx_d/t.sock"; then
    cx_codes=""
    for a in 2001:db8:1:2::1 2001:db8:1:2:ffff::9 2001:db8:1:3::1 2001:db8:0:0:1::1 2001:db8::2 \
        192.0.2.1 192.0.2.2 ::ffff:192.0.2.1 ::1 ::1; do
        [ "$(cx_from "$a")" = 429 ] && cx_codes+="$a=limited " || cx_codes+="$a=ok "
    done
    check "IPv6 addresses count per /64, IPv4 per address, IPv4-mapped as IPv4, loopback exempt ($cx_codes)" \
        [ "$cx_codes" = "2001:db8:1:2::1=ok 2001:db8:1:2:ffff::9=limited 2001:db8:1:3::1=ok 2001:db8:0:0:1::1=ok 2001:db8::2=limited 192.0.2.1=ok 192.0.2.2=ok ::ffff:192.0.2.1=limited ::1=ok ::1=ok " ]
    kill "$(cat "$cx_d/nginx.pid")"
    wait_for 5 bash -c "! [ -e '$cx_d/nginx.pid' ]"
else
    not_ok "the per-/64 test nginx did not start: $(cat "$cx_d/error.log")"
fi

# ---- thousands of idle or slow connections ----------------------------------------
cx_out=$OUT/slow_clients.json
# nginx's side: worker_connections 8192 per worker, each proxied request two
# descriptors (worker_rlimit_nofile).
cx_nofile() {
    local w n min=
    for w in $(pgrep -P "$(cat "$FETCHML_VAR/run/nginx.pid")"); do
        n=$(awk '/^Max open files/ { print $4 }' "/proc/$w/limits")
        [ -z "$min" ] || [ "$n" -lt "$min" ] && min=$n
    done
    echo "${min:-0}"
}
cx_w=$(cx_nofile)
check "nginx's workers may open 16384 descriptors ($cx_w)" [ "$cx_w" -ge 16384 ]
cx_log=$OUT/normal_client.txt
# The attacker's descriptors: one per connection, and some to spare.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
check "this shell may open 4000 descriptors (ulimit -n $(ulimit -n))" [ "$(ulimit -n)" -ge 4000 ]

cx_workers() { pgrep -P "$(cat "$FETCHML_VAR/run/nginx.pid")" | sort | tr '\n' ' '; }
cx_before=$(cx_workers)
timeout 30 python3 "$ROOT/tests/integration/slow_clients.py" 127.0.0.1 "$FETCHML_HTTPS_PORT" 127.0.0.2 20 \
    body=150 header=150 tls=300 slowhello=50 hello=500 tcp=2500 >"$cx_out" 2>"$OUT/slow_clients.err" &
cx_pid=$!
# While the attack holds (from 1 s in, after most connections are open, to 12 s):
# the normal client's requests, each on a new connection, as a user's would be.
sleep 1
: >"$cx_log"
for i in $(seq 40); do
    curl -sk --max-time 5 -o /dev/null -w '%{http_code} %{time_total}\n' \
        -H "X-API-Key: $FETCHML_RESEARCHER_KEY" "$BASE/v1/whoami" >>"$cx_log" || echo "000 5" >>"$cx_log"
    sleep 0.25
done
wait "$cx_pid"
cx_rc=$?
# Diagnosis for the checks below: a reload during the attack (nginx -s
# reload, or a HUP from outside the test) closes every idle connection at once.
[ "$(cx_workers)" = "$cx_before" ] ||
    echo "  # nginx's workers changed during the attack ($cx_before-> $(cx_workers)): reloaded?"
cx_n200=$(grep -c '^200 ' "$cx_log" || true)
cx_slowest=$(sort -k2 -g "$cx_log" | tail -1 | cut -d' ' -f2)
check "the normal client got 200 for all 40 requests during the attack ($cx_n200; slowest ${cx_slowest}s)" \
    [ "$cx_n200" = 40 ]
check "... each within 2 s" awk '$2 >= 2 { exit 1 }' "$cx_log"
check "the attacker stopped by itself within its bounds (exit status $cx_rc)" [ "$cx_rc" = 0 ]

cx() { jq -r "$1" <"$cx_out" 2>/dev/null; }
echo "  # attacker: $(jq -c 'map_values(del(.sample))' <"$cx_out" 2>/dev/null)"
cx_opened=$(cx '[.[].opened] | add')
cx_failed=$(cx '[.[].connect_failed] | add')
cx_capacity() { [ "${cx_opened:-0}" -ge 3300 ] && [ "$cx_failed" = 0 ]; }
check "nginx accepted the attacker's connections ($cx_opened of 3650, none refused or reset: $cx_failed)" \
    cx_capacity
# client_header_timeout (10 s) bounds a connection from accept to the end of
# its request header, TLS handshake included; the attacker holds for 20 s
# (a generous bound: on a loaded machine nginx may accept seconds late).
cx_cut_off() { # cx_cut_off KIND: nginx closed each of them, none held more than 14 s
    [ "$(cx ".$1.opened")" -gt 0 ] && [ "$(cx ".$1.closed_by_server")" = "$(cx ".$1.opened")" ] &&
        awk -v t="$(cx ".$1.max_held_s")" 'BEGIN { exit !(t < 14) }'
}
for k in tcp hello slowhello tls header; do
    check "nginx closed every idle or slow '$k' connection within 14 s ($(cx ".$k.max_held_s") s at most)" \
        cx_cut_off "$k"
done
# A request trickling its body counts against limit_conn (64 per client):
# beyond that, the attacker's requests are refused at once.
cx_refused=$(cx '.body.statuses["429"] // 0')
check "of 150 slow-body requests, those beyond the per-client limit were refused 429 ($cx_refused)" \
    [ "$cx_refused" -ge 80 ]
cx_429=$(cx '.body.sample["429"] // ""')
check "... with the JSON RATE_LIMITED error and Retry-After" \
    bash -c 'grep -q "\"code\":\"RATE_LIMITED\"" <<<"$1" && grep -qi "^Retry-After: 1" <<<"$1"' _ "$cx_429"

# Afterwards the attacker's address is served normally (the app refuses it: 403).
code=$(curl -sk --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$BASE/health")
check "after the attack, 127.0.0.2 reaches the app again (403 from the allow-list)" [ "$code" = 403 ]
