#!/usr/bin/env python3
"""Mixed load and its checks for scripts/chaos.sh (the chaos run of scripts/bench.sh).

  chaos_client.py load BASE CAFILE SECONDS CLIENTS OUT.jsonl
      CLIENTS threads, each with one kept-alive HTTPS connection (http.client,
      TLS verified against CAFILE, the dev certificate), send a fixed mix of API
      requests for SECONDS seconds (each at most MAX_PER_CLIENT requests), and
      write one JSON line per attempt to OUT.jsonl: the time, the request, the
      status (0 when there was no answer), every response header and the
      error code of the body, or the connection error. The keys come from the
      environment (CHAOS_KEY_ADMIN, CHAOS_KEY_RESEARCHER, CHAOS_KEY_ANALYST)
      and are never written anywhere.

  chaos_client.py check SECONDS OUT.jsonl AUDIT_NEW.jsonl VERIFIED
      Prints the summary line and every failure; exit status 1 on a failure
      (VERIFIED: "yes" when fetchml-admin audit-verify passed, which the
      summary reports).
      An answer is good when it is 2xx, 4xx, or 503 with Retry-After. An answer
      came from the application when it carries Cache-Control: no-store, which
      the worker sets on every response and nginx's own answers (its error
      pages, a 502 turned into 503 when a worker dies) lack. The set of those
      answers' X-Request-Id must equal the set of trace_ids of the audit lines
      written during the run (AUDIT_NEW.jsonl), one line each; except a 503
      "audit trail unavailable" (the audit logger was killed with the request's
      record in flight: refused, changed nothing, may have no record), which
      is counted apart.

Only loopback is driven (BASE is https://127.0.0.1:PORT); every request has a
timeout; the run ends at SECONDS.
"""
import collections
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.parse

MAX_PER_CLIENT = 200000
TIMEOUT_S = 10
# The mix: (weight, name). Each name is one request shape in Client.request().
MIX = [
    (20, "whoami"),
    (15, "create"),
    (8, "list"),
    (4, "list_admin"),
    (15, "get"),
    (8, "cancel"),
    (8, "delete"),
    (4, "create_analyst"),
    (9, "bad_key"),
    (9, "no_key"),
    (1, "too_long"),
]
# Credentials that fail: well-formed but unknown (hex, fetchml_ with a wrong
# checksum) and malformed ones.
BAD_KEYS = [
    {"X-API-Key": "0" * 64},
    {"X-API-Key": "fetchml_" + "1" * 64 + "_abcdef"},
    {"Authorization": "Bearer not-a-key"},
    {"X-API-Key": "x" * 300},
]


class Client(threading.Thread):
    def __init__(self, n, base, ctx, deadline, keys, out, lock):
        super().__init__(daemon=True)
        self.n, self.ctx, self.deadline, self.keys = n, ctx, deadline, keys
        self.out, self.lock = out, lock
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.rng = random.Random(n)
        self.tasks = []  # ids this client created and has not deleted
        self.conn = None
        self.seq = 0
        names = [name for w, name in MIX for _ in range(w)]
        self.names = names

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT_S, context=self.ctx)

    def task_id(self):
        if self.tasks and self.rng.random() < 0.85:
            return self.rng.choice(self.tasks)
        return "%032x" % self.rng.getrandbits(128)  # unknown: 404

    def request(self, name):
        """(method, path, headers, body) of one request of the mix."""
        k, j = self.keys, {"Content-Type": "application/json"}
        if name == "whoami":
            return "GET", "/v1/whoami", {"X-API-Key": k["researcher"]}, None
        if name == "create":
            self.seq += 1
            body = json.dumps({"job_name": "chaos-%d-%d" % (self.n, self.seq), "priority": 5})
            return "POST", "/v1/tasks", dict(j, **{"X-API-Key": k["researcher"]}), body
        if name == "list":
            return "GET", "/v1/tasks?limit=20", {"X-API-Key": k["researcher"]}, None
        if name == "list_admin":
            return "GET", "/v1/tasks?limit=5", {"Authorization": "Bearer " + k["admin"]}, None
        if name == "get":
            return "GET", "/v1/tasks/" + self.task_id(), {"X-API-Key": k["researcher"]}, None
        if name == "cancel":
            return "POST", "/v1/tasks/%s/cancel" % self.task_id(), {"X-API-Key": k["researcher"]}, None
        if name == "delete":
            return "DELETE", "/v1/tasks/" + self.task_id(), {"X-API-Key": k["admin"]}, None
        if name == "create_analyst":  # 403: analysts may not create
            return "POST", "/v1/tasks", dict(j, **{"X-API-Key": k["analyst"]}), '{"job_name":"chaos-no"}'
        if name == "bad_key":
            return "GET", "/v1/whoami", dict(self.rng.choice(BAD_KEYS)), None
        if name == "too_long":  # nginx refuses it itself (414), the app never sees it
            return "GET", "/v1/whoami?q=" + "a" * 9000, {"X-API-Key": k["researcher"]}, None
        return "GET", "/v1/whoami", {}, None  # no_key

    def one(self, name):
        method, path, headers, body = self.request(name)
        rec = {"t": round(time.monotonic(), 4), "client": self.n, "name": name, "method": method,
               "path": path.split("?")[0], "status": 0, "headers": {}, "code": None, "error": None}
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.connect()
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            rec["status"] = resp.status
            rec["headers"] = {h.lower(): v for h, v in resp.getheaders()}
            try:
                doc = json.loads(data) if data else None
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                rec["code"] = doc.get("code")
                if resp.status == 503 and doc.get("error") == "audit trail unavailable":
                    rec["unaudited"] = True
                if name == "create" and resp.status == 201 and isinstance(doc.get("id"), str):
                    self.tasks.append(doc["id"])
                if name == "delete" and resp.status in (200, 204, 404):
                    tid = path.rsplit("/", 1)[1]
                    if tid in self.tasks:
                        self.tasks.remove(tid)
            if rec["headers"].get("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as e:
            rec["error"] = "%s: %s" % (type(e).__name__, e)
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        rec["ms"] = round((time.monotonic() - t0) * 1000, 2)
        return rec

    def run(self):
        recs = []
        for _ in range(MAX_PER_CLIENT):
            if time.monotonic() >= self.deadline:
                break
            recs.append(self.one(self.rng.choice(self.names)))
            if recs[-1]["error"] is not None:
                time.sleep(0.05)  # no busy loop while the stack refuses connections
            if len(recs) >= 500:
                self.flush(recs)
                recs = []
        self.flush(recs)
        if self.conn is not None:
            self.conn.close()

    def flush(self, recs):
        with self.lock:
            for r in recs:
                self.out.write(json.dumps(r, separators=(",", ":")) + "\n")
            self.out.flush()


def load(base, cafile, seconds, clients, out_path):
    if urllib.parse.urlsplit(base).hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("chaos_client: loopback only")
    keys = {r: os.environ["CHAOS_KEY_" + r.upper()] for r in ("admin", "researcher", "analyst")}
    ctx = ssl.create_default_context(cafile=cafile)
    deadline = time.monotonic() + float(seconds)
    lock = threading.Lock()
    with open(out_path, "w") as out:
        threads = [Client(i, base, ctx, deadline, keys, out, lock) for i in range(int(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(float(seconds) + 2 * TIMEOUT_S + 5)
    return 0


def check(seconds, answers_path, audit_path, verified):
    answers = [json.loads(l) for l in open(answers_path)]
    audit = [json.loads(l) for l in open(audit_path)]
    # The load never asks for /health: keyless GET /health lines are the
    # harness's own readiness probes (scripts/run-local.sh reload), not answers
    # the client saw. They are counted apart, never matched.
    probes = [r for r in audit if r.get("action") == "GET /health" and r.get("user") is None]
    audit = [r for r in audit if not (r.get("action") == "GET /health" and r.get("user") is None)]
    # The audit logger's signed checkpoints answer no request either.
    checkpoints = sum(1 for r in audit if "signature" in r)
    audit = [r for r in audit if "signature" not in r]
    kinds = collections.Counter()
    failures = []
    app_traces = collections.Counter()
    nginx_503 = 0
    slow = 0
    for a in answers:
        s, h = a["status"], a["headers"]
        trace = h.get("x-request-id", "-")
        if a["ms"] > 1000:
            slow += 1
        if a["error"] is not None:
            kinds["other"] += 1
            failures.append("no answer: %s %s after %.0f ms: %s" % (a["method"], a["path"], a["ms"], a["error"]))
            continue
        if h.get("cache-control") == "no-store":
            app_traces[trace] += 1
        if 200 <= s < 300:
            kinds["2xx"] += 1
        elif 400 <= s < 500:
            kinds["4xx"] += 1
        elif s == 503 and h.get("retry-after"):
            kinds["503"] += 1
            if h.get("cache-control") != "no-store":
                nginx_503 += 1
        else:
            kinds["other"] += 1
            failures.append("%d %s %s (code %s, %s, trace %s)" % (
                s, a["method"], a["path"], a["code"],
                "app" if h.get("cache-control") == "no-store" else "nginx", trace))
    audit_traces = collections.Counter(r.get("trace_id", "-") for r in audit)
    # Refused for want of the audit logger: with or without a record, never an error.
    unaudited = {a["headers"].get("x-request-id") for a in answers if a.get("unaudited")}
    unaudited -= set(audit_traces)
    for t in unaudited:
        del app_traces[t]
    n2, lines = sum(app_traces.values()), len(audit)
    missing = sorted(set(app_traces) - set(audit_traces))
    extra = sorted(set(audit_traces) - set(app_traces))
    dup = sorted(t for t, c in audit_traces.items() if c > 1)
    for t in missing:
        failures.append("answered by the app but not in the audit trail: trace %s" % t)
    for t in extra:
        rec = next(r for r in audit if r.get("trace_id") == t)
        failures.append("in the audit trail without an answer from the app: trace %s (status %s, reason %s, %s %s)" % (
            t, rec.get("status"), rec.get("reason"), rec.get("action"), rec.get("resource")))
    for t in dup:
        failures.append("trace %s has %d audit lines" % (t, audit_traces[t]))
    same = n2 == lines and not missing and not extra and not dup
    statuses = collections.Counter(a["status"] for a in answers if a["error"] is None)
    # The chaos users' limits are too large to trip: a 429 to one of their keys
    # is the guard's block of 127.0.0.1, which a known client should pass.
    valid_429 = sum(1 for a in answers if a["status"] == 429 and a["name"] not in ("bad_key", "no_key"))
    if verified != "yes":
        failures.append("fetchml-admin audit-verify failed over the rotated files and the current one")
    print("chaos (%s s): %d requests: 2xx %d, 4xx %d, 503 %d (all with Retry-After), other %d; "
          "audit: %d lines, chain %s; answered-by-app %d == audit lines %d: %s"
          % (seconds, len(answers), kinds["2xx"], kinds["4xx"], kinds["503"], kinds["other"], lines,
             "verified" if verified == "yes" else "NOT verified", n2, lines, "yes" if same else "no"))
    print("chaos detail: %d readiness probes of the reloads and %d signed checkpoints in the audit "
          "trail, set apart; %d answers 503 \"audit trail unavailable\" without a record (the audit "
          "logger killed)" % (len(probes), checkpoints, len(unaudited)))
    print("chaos detail: statuses %s; 503 from nginx (no app answer) %d; 429 to valid keys %d; "
          "answers slower than 1 s %d, slowest %.0f ms"
          % (", ".join("%d: %d" % kv for kv in sorted(statuses.items())), nginx_503, valid_429, slow,
             max([a["ms"] for a in answers] or [0])))
    for f in failures[:50]:
        print("chaos failure: " + f)
    if len(failures) > 50:
        print("chaos failure: ... and %d more" % (len(failures) - 50))
    return 1 if failures else 0


def main(argv):
    if len(argv) == 7 and argv[1] == "load":
        return load(*argv[2:])
    if len(argv) == 6 and argv[1] == "check":
        return check(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
