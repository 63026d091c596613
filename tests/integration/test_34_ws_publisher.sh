# nchan's publisher admits only the relay's token (attack finding F3; SPEC
# 4.2): the relay runs under the FastCGI workers' account, so the socket's
# directory (0750, test_62) cannot keep a compromised worker out. nginx
# answers 403 to a publisher request without the token
# (websocket.publisher_token_file) or with another one, while the relay's own
# events reach /ws clients; the pool's account can neither publish nor read
# the token, nor look into the relay; no child but the relay was given the
# token file; a relay whose token nginx refuses logs why, never the token.

t34_sock=$FETCHML_VAR/run/nchan/nchan.sock
t34_token=$FETCHML_VAR/dev/publisher-token
t34_api=$FETCHML_VAR/log/api.log
t34_master=$(cat "$FETCHML_VAR/run/fcgi.pid")
# t34_publish TYPE [curl args...]: POSTs {"type": TYPE} to u.researcher and all; curl's status.
t34_publish() {
    local type=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --unix-socket "$t34_sock" -X POST \
        -H 'Content-Type: application/json' -d "{\"type\":\"$type\"}" "$@" \
        http://localhost/u.researcher,all 2>/dev/null
}
t34_status_is() { # t34_status_is WANT COMMAND...: the command printed WANT
    local want=$1 got
    shift
    got=$("$@")
    [ "$got" = "$want" ] || { echo "  (got $got)"; return 1; }
}
t34_header() { printf 'X-FetchML-Publisher-Token: %s' "$1"; }

trap ws_stop_all EXIT
ws_listen t34r --key "$FETCHML_RESEARCHER_KEY"
check "the researcher's socket is open" ws_is_open t34r

# ---- no token, a wrong one ------------------------------------------------------------
check "a publish without the token is refused 403" t34_status_is 403 t34_publish t34.none
check "... with a wrong token too" \
    t34_status_is 403 t34_publish t34.wrong -H "$(t34_header "$(openssl rand -hex 32)")"
check "... with the token's MD5 (what nginx's include holds) too" \
    t34_status_is 403 t34_publish t34.md5 -H "$(t34_header "$(sed -n 's/^secure_link "\(.*\)";$/\1/p' \
        "$FETCHML_VAR/dev/publisher-token.conf")")"
check "... a DELETE of a channel (which closes its sockets) without it too" \
    t34_status_is 403 curl -s -o /dev/null -w '%{http_code}' --unix-socket "$t34_sock" -X DELETE \
    http://localhost/all
check "... and a GET of a channel's info" \
    t34_status_is 403 curl -s -o /dev/null -w '%{http_code}' --unix-socket "$t34_sock" http://localhost/all
# The relay's token, read by root: nginx takes it, so the refusals above were the token's.
t34_admitted() { [[ $(t34_publish t34.admitted -H "$(t34_header "$(cat "$t34_token")")") == 20[12] ]]; }
check "with the relay's token nginx takes the publish (201 or 202)" t34_admitted
check "... and the researcher's socket gets it" wait_for 2 ws_any t34r '.event.type == "t34.admitted"'
check "... but none of the refused ones" \
    bash -c "! grep -q 't34\.\(none\|wrong\|md5\)' '$OUT/ws-t34r.out'"

# ---- the relay's own events -----------------------------------------------------------
as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"t34-relay"}'
check "the researcher queues a task -> 201" status_is 201
t34_task=$(json .id || true)
check "the relay's task.created reaches the researcher's socket" \
    wait_for 2 ws_got t34r task.created "$t34_task"

# ---- the token's files, the descriptor ----------------------------------------------
check "the token file is root's, mode 0600" [ "$(stat -c '%U %a' "$t34_token")" = "root 600" ]
check "nginx's include of its check is root's, mode 0600" \
    [ "$(stat -c '%U %a' "$FETCHML_VAR/dev/publisher-token.conf")" = "root 600" ]
# t34_holders: the pids of the pool's processes that hold the token file open.
t34_holders() {
    local p
    for p in "$t34_master" $(pgrep -P "$t34_master"); do
        ls -l "/proc/$p/fd" 2>/dev/null | grep -q " -> $t34_token\$" && echo "$p"
    done
}
t34_relay=$(pgrep -P "$t34_master" -x fetchml-wsrelay | head -1)
check "a relay runs (fetchml-wsrelay)" [ -n "$t34_relay" ]
check "only the master holds the token file open: no worker, sweeper or logger was given it, and the relay closed it once read" \
    t34_status_is "$t34_master" t34_holders

if [ "$(id -u)" -ne 0 ]; then
    echo "  (not root: the pool's account is this user; its checks are not exercised)"
else
    t34_user=$(fm_pool_user)
    t34_as() { setpriv --reuid="$t34_user" --regid="$(id -g "$t34_user")" --init-groups "$@"; }
    t34_cannot() { ! t34_as "$@" >/dev/null 2>&1; }
    check "the pool's account ($t34_user) reaches the socket, but nginx refuses it 403" \
        t34_status_is 403 t34_as curl -s -o /dev/null -w '%{http_code}' --unix-socket "$t34_sock" \
        -X POST -d '{"type":"t34.pool"}' http://localhost/u.researcher
    check "... it cannot read the token file" t34_cannot cat "$t34_token"
    check "... nor nginx's include" t34_cannot cat "$FETCHML_VAR/dev/publisher-token.conf"
    check "... nor list the relay's descriptors (the relay is not dumpable)" \
        t34_cannot ls "/proc/$t34_relay/fd"
    check "... nor read its environment" t34_cannot head -c1 "/proc/$t34_relay/environ"

    # ---- a token nginx refuses: the relay says so ------------------------------------
    # The dropped master cannot open the root-only file again: a reload keeps its
    # descriptor, and the next relay reads whatever the file (the same inode) holds.
    t34_saved=$(cat "$t34_token")
    t34_lines0=$(wc -l <"$t34_api")
    t34_bad=$(openssl rand -hex 32)
    printf '%s\n' "$t34_bad" >"$t34_token"
    t34_refusal_logged() {
        tail -n +"$((t34_lines0 + 1))" "$t34_api" | grep -q "error \[[0-9]*\] websocket relay: .*refused the relay's token (403).*$t34_token"
    }
    check "with a token nginx does not know, the new relay logs the 403 as an error naming the file" \
        reload_until t34_refusal_logged
    check "... the reload kept the master's descriptor of the file it can no longer open" \
        bash -c "tail -n +$((t34_lines0 + 1)) '$t34_api' | grep -q 'cannot open $t34_token again'"
    check "... and no log holds the token" bash -c "! grep -rqF '$t34_bad' '$FETCHML_VAR/log'"
    printf '%s\n' "$t34_saved" >"$t34_token"
    t34_flows() {
        as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"t34-back"}' &&
            status_is 201 && wait_for 2 ws_got t34r task.created "$(json .id)"
    }
    check "the file's token back, after a reload the relay's events flow again" reload_until t34_flows
fi
check "no log holds the relay's token" bash -c "! grep -rqF '$(cat "$t34_token")' '$FETCHML_VAR/log'"
ws_stop_all
