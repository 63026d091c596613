#!/usr/bin/env python3
"""example-worker.py - a reference job worker for the fetchml API (SPEC 4.1).

    FETCHML_API_KEY=... scripts/example-worker.py [options] -- PROGRAM [ARG...]

It claims a queued task (POST /v1/worker/claim), runs PROGRAM with the
task's args appended, heartbeats while it runs (POST /v1/tasks/{id}/heartbeat,
every third of the lease) and ends the task with the program's exit status
(POST /v1/tasks/{id}/complete: 0 is "completed", anything else "failed").

What runs: the operator chooses the program, on this command line; a task
only adds arguments. A task's args list is appended element by element, a
single string as one argument, null as nothing. Nothing goes through a shell.
The child gets FETCHML_TASK_ID and FETCHML_JOB_NAME in its environment, and
not FETCHML_API_KEY.

The key comes from FETCHML_API_KEY only (never the command line, where other
users see it in ps; never printed). Give the worker a key with the `worker`
role (fetchml-admin keygen NAME worker).

Behaviour:
  - 204 (queue empty): waits --poll seconds, longer each time, up to 30 s.
  - 429 and 503: waits Retry-After seconds if the answer has one, else as
    for 204; a connection error too.
  - a heartbeat answer with cancel_requested: terminates the program (SIGTERM,
    SIGKILL after --grace seconds) and completes the task as "cancelled".
  - a heartbeat refused with 409 (the lease was lost: the task went back to
    the queue): terminates the program and does not complete the task.
  - SIGTERM or SIGINT: claims nothing more, lets the running task finish and
    completes it, then exits. A second one abandons the task: the program
    is terminated and the task is left to its lease, which runs out and
    puts it back in the queue for another worker.
Each claim and completion is one line on stderr.

Needs Python 3 and requests (Debian: python3-requests).
"""

import argparse
import datetime
import os
import random
import signal
import subprocess
import sys
import time

import requests

MAX_WAIT = 30.0
TIMEOUT = (5, 30)  # connect, read (seconds)


def log(msg):
    print("example-worker[%d]: %s" % (os.getpid(), msg), file=sys.stderr, flush=True)


class Stop:
    """SIGTERM/SIGINT: the first asks to finish, the second to abandon."""

    def __init__(self):
        self.count = 0
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame):
        self.count += 1


def seconds_until(rfc3339):
    """Seconds from now to an RFC 3339 UTC time such as 2026-01-01T00:00:00.000Z."""
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc)
    return (t - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


def heartbeat_interval(lease_expires_at, fixed):
    if fixed:
        return fixed
    try:
        left = seconds_until(lease_expires_at)
    except (TypeError, ValueError):
        return 1.0
    return min(max(left / 3.0, 0.2), 60.0)


def retry_after(resp, default):
    try:
        return max(float(resp.headers.get("Retry-After", "")), 0.1)
    except ValueError:
        return default


def task_argv(program, args):
    if args is None:
        return list(program)
    if isinstance(args, str):
        return list(program) + [args]
    return list(program) + [str(a) for a in args]


class Worker:
    def __init__(self, opts, key):
        self.opts = opts
        self.base = opts.url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = key
        # Given with each request: a Session's own verify loses to REQUESTS_CA_BUNDLE.
        self.verify = opts.cacert if opts.cacert else True
        self.stop = Stop()
        self.wait = opts.poll

    def post(self, path, body=None, params=None):
        """POST, with a JSON body when one is given (a claim needs none)."""
        kw = {"params": params, "timeout": TIMEOUT, "verify": self.verify}
        if body is not None:
            kw["json"] = body
        return self.http.post(self.base + path, **kw)

    def holder(self):
        """The query naming this worker on heartbeats and completions, as its claim did."""
        return {"worker": self.opts.name} if self.opts.name else None

    def idle(self, seconds):
        """Sleeps up to seconds, waking early when asked to stop."""
        end = time.monotonic() + seconds
        while not self.stop.count and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))

    def backoff(self, resp=None):
        wait = self.wait * (0.5 + random.random())
        if resp is not None and resp.status_code in (429, 503):
            wait = retry_after(resp, wait)
        self.wait = min(self.wait * 2, MAX_WAIT)
        self.idle(wait)

    def claim(self):
        """The claimed task, or None (after waiting) when there is none to take."""
        try:
            r = self.post("/v1/worker/claim", {"worker": self.opts.name} if self.opts.name else None)
        except requests.RequestException as e:
            log("claim: %s" % type(e).__name__)
            self.backoff()
            return None
        if r.status_code == 200:
            self.wait = self.opts.poll
            return r.json()
        if r.status_code == 204:
            if self.opts.exit_when_idle:
                self.stop.count = max(self.stop.count, 1)
                return None
        else:
            log("claim: HTTP %d %s" % (r.status_code, r.text[:200]))
            if r.status_code in (401, 403):
                sys.exit(2)  # a key that cannot claim never will
        self.backoff(r)
        return None

    def complete(self, task_id, status, error=None):
        body = {"status": status}
        if error:
            body["error"] = error[:4096]
        for attempt in range(5):
            try:
                r = self.post("/v1/tasks/%s/complete" % task_id, body, self.holder())
            except requests.RequestException as e:
                log("complete %s: %s" % (task_id, type(e).__name__))
                time.sleep(0.5 * (attempt + 1))
                continue
            if r.status_code in (429, 503):
                time.sleep(retry_after(r, 0.5 * (attempt + 1)))
                continue
            if r.status_code == 200:
                log("completed %s %s" % (task_id, status))
            else:
                log("complete %s: HTTP %d %s" % (task_id, r.status_code, r.text[:200]))
            return
        log("complete %s: gave up; the lease will run out" % task_id)

    def terminate(self, child):
        child.terminate()
        try:
            child.wait(self.opts.grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def run(self, task):
        """Runs one claimed task to its end."""
        task_id = task["id"]
        log("claimed %s (attempt %s)" % (task_id, task.get("attempts")))
        env = {k: v for k, v in os.environ.items() if k != "FETCHML_API_KEY"}
        env["FETCHML_TASK_ID"] = task_id
        env["FETCHML_JOB_NAME"] = task.get("job_name") or ""
        try:
            child = subprocess.Popen(task_argv(self.opts.program, task.get("args")), env=env,
                                     stdin=subprocess.DEVNULL)
        except OSError as e:
            self.complete(task_id, "failed", "could not start the program: %s" % e.strerror)
            return
        every = heartbeat_interval(task.get("lease_expires_at"), self.opts.heartbeat)
        next_beat = time.monotonic() + every
        while child.poll() is None:
            if self.stop.count > 1:
                log("abandoning %s: its lease will run out" % task_id)
                self.terminate(child)
                return
            if time.monotonic() < next_beat:
                time.sleep(min(0.05, max(next_beat - time.monotonic(), 0)))
                continue
            try:
                r = self.post("/v1/tasks/%s/heartbeat" % task_id, None, self.holder())
            except requests.RequestException as e:
                log("heartbeat %s: %s" % (task_id, type(e).__name__))
                next_beat = time.monotonic() + min(every, 1.0)
                continue
            if r.status_code == 200:
                beat = r.json()
                every = heartbeat_interval(beat.get("lease_expires_at"), self.opts.heartbeat)
                if beat.get("cancel_requested"):
                    log("cancel requested for %s" % task_id)
                    self.terminate(child)
                    self.complete(task_id, "cancelled", "cancelled by request")
                    return
            elif r.status_code in (404, 409):
                log("lost the lease on %s (HTTP %d); stopping it" % (task_id, r.status_code))
                self.terminate(child)
                return
            else:
                log("heartbeat %s: HTTP %d" % (task_id, r.status_code))
            next_beat = time.monotonic() + every
        code = child.returncode
        if code == 0:
            self.complete(task_id, "completed")
        elif code < 0:
            self.complete(task_id, "failed", "killed by signal %d" % -code)
        else:
            self.complete(task_id, "failed", "exit status %d" % code)

    def loop(self):
        done = 0
        while not self.stop.count and (not self.opts.max_tasks or done < self.opts.max_tasks):
            task = self.claim()
            if task is not None:
                self.run(task)
                done += 1
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="https://127.0.0.1:8443", help="API base URL")
    p.add_argument("--cacert", help="CA file to verify the server with (default: system CAs)")
    p.add_argument("--name", help="worker name, [A-Za-z0-9_.:-]{1,63}: worker_id <user>/<name>")
    p.add_argument("--poll", type=float, default=1.0, help="first wait when the queue is empty")
    p.add_argument("--heartbeat", type=float, help="heartbeat interval (default: lease / 3)")
    p.add_argument("--grace", type=float, default=10.0, help="SIGTERM to SIGKILL, seconds")
    p.add_argument("--max-tasks", type=int, default=0, help="exit after this many tasks")
    p.add_argument("--exit-when-idle", action="store_true", help="exit when the queue is empty")
    p.add_argument("program", nargs="+", help="PROGRAM [ARG...] to run for each task (after --)")
    opts = p.parse_args()
    key = os.environ.get("FETCHML_API_KEY", "")
    if not key:
        p.error("FETCHML_API_KEY is not set")
    return Worker(opts, key).loop()


if __name__ == "__main__":
    sys.exit(main())
