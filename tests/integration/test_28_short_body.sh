# A request body that ends before CONTENT_LENGTH bytes (the FastCGI stream
# closed early) is refused with 400 BAD_REQUEST and audited, never handed on
# as the whole body. nginx always sends whole bodies, so this test speaks
# FastCGI to the pool's socket itself; the short body is valid JSON on its
# own, so a pool that took it as the whole body would create a task (201).
# Also what Apache's mod_proxy_fcgi sends where nginx does not
# (conf/apache/README.md): a chunked body without CONTENT_LENGTH, and repeated
# credential headers merged into one param.

t28_sock=$FETCHML_VAR/run/fcgi.sock
t28_audit=$FETCHML_VAR/log/audit.log

# t28_fcgi TRACE_ID CONTENT_LENGTH BODY: one FastCGI request (POST /v1/tasks as
# the researcher, from 127.0.0.1); sets STATUS, the response body in $B.
# T28_PARAMS (NAME=VALUE lines) changes params: VALUE "-" drops NAME.
t28_fcgi() {
    STATUS=$(python3 - "$t28_sock" "$1" "$2" "$3" "$FETCHML_RESEARCHER_KEY" "$B" <<'PY'
import os, socket, struct, sys

sock_path, trace, clen, body, key, out = sys.argv[1:7]

def record(rtype, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), pad, 0) + content + b"\0" * pad

def pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    n, v = name.encode(), value.encode()
    return length(len(n)) + length(len(v)) + n + v

params = {
    "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/v1/tasks", "SCRIPT_NAME": "/v1/tasks",
    "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1", "REQUEST_ID": trace,
    "HTTP_X_API_KEY": key, "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": clen,
}
for line in os.environ.get("T28_PARAMS", "").splitlines():
    name, _, value = line.partition("=")
    if value == "-":
        params.pop(name, None)
    else:
        params[name] = value
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sock_path)
s.sendall(record(1, struct.pack(">HB5x", 1, 0))  # BEGIN_REQUEST, responder, close after
          + record(4, b"".join(pair(k, v) for k, v in params.items())) + record(4, b"")
          + record(5, body.encode()) + record(5, b""))  # STDIN, then its end
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
stdout, i = b"", 0
while i + 8 <= len(data):
    _, rtype, _, n, pad, _ = struct.unpack(">BBHHBB", data[i:i + 8])
    if rtype == 6:
        stdout += data[i + 8:i + 8 + n]
    i += 8 + n + pad
head, _, payload = stdout.partition(b"\r\n\r\n")
open(out, "wb").write(payload)
status = [l for l in head.split(b"\r\n") if l.lower().startswith(b"status:")]
print(status[0].split()[1].decode() if status else "000")
PY
    ) || STATUS=000
}
t28_trace() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
t28_listed() { as researcher GET "/v1/tasks?limit=1000" && json_is 'any(.tasks[]; .job_name == "t28")' "$1"; }

t28_whole=$(t28_trace)
t28_body='{"job_name":"t28"}'
t28_fcgi "$t28_whole" "${#t28_body}" "$t28_body"
check "FastCGI straight to the pool: a whole body -> 201" status_is 201
t28_id=$(jq -r .id "$B" 2>/dev/null)
as admin DELETE "/v1/tasks/$t28_id"
check "... (that task deleted again)" status_is 204

t28_short=$(t28_trace)
t28_fcgi "$t28_short" 100 "$t28_body"
check "a body shorter than CONTENT_LENGTH (valid JSON itself) -> 400, not 201" status_is 400
check "... BAD_REQUEST" json_is .code BAD_REQUEST
check "... with the request's trace id" json_is .trace_id "$t28_short"
check "... saying the body is incomplete" json_is .error "request body incomplete"
check "... audited as a failure, reason body_incomplete" \
    bash -c "grep -F '\"trace_id\":\"$t28_short\"' '$t28_audit' | jq -e '.status == 400 and .reason == \"body_incomplete\"' >/dev/null"
check "... and no task was created" t28_listed false
t28_empty=$(t28_trace)
t28_fcgi "$t28_empty" 16 ""
check "CONTENT_LENGTH 16 and no body at all -> 400 body incomplete" json_is .error "request body incomplete"

# Apache passes a chunked body it has not counted without CONTENT_LENGTH; read as
# empty it would be refused for the wrong reason, or taken where no body is needed.
t28_chunked=$(t28_trace)
T28_PARAMS=$'CONTENT_LENGTH=-\nHTTP_TRANSFER_ENCODING=chunked' t28_fcgi "$t28_chunked" 0 "$t28_body"
check "a body with Transfer-Encoding and no CONTENT_LENGTH -> 411 LENGTH_REQUIRED" \
    bash -c "[ $STATUS = 411 ] && jq -e '.code == \"LENGTH_REQUIRED\"' '$B' >/dev/null"
check "... audited, reason length_required" \
    bash -c "grep -F '\"trace_id\":\"$t28_chunked\"' '$t28_audit' | jq -e '.status == 411 and .reason == \"length_required\"' >/dev/null"
check "... and no task was created" t28_listed false
# Apache merges repeated headers into one, ", " between: refused as two credentials.
t28_merged=$(t28_trace)
T28_PARAMS="HTTP_X_API_KEY=$FETCHML_RESEARCHER_KEY, $FETCHML_RESEARCHER_KEY" t28_fcgi "$t28_merged" \
    "${#t28_body}" "$t28_body"
check "a merged X-API-Key (two keys, one param) -> 401, audited as malformed_key" \
    bash -c "[ $STATUS = 401 ] && grep -F '\"trace_id\":\"$t28_merged\"' '$t28_audit' |
        jq -e '.status == 401 and .reason == \"malformed_key\"' >/dev/null"
