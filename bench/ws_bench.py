#!/usr/bin/python3
"""WebSocket benchmark client (scripts/bench.d/50-ws.sh).

  ws_bench.py URL KEY SOCKETS MESSAGES REDIS_SOCKET CHANNEL
  (REDISCLI_AUTH: the password of the Redis user REDISCLI_USER, default "default")

Opens SOCKETS sockets to URL with the key in X-API-Key (in batches, each
handshake the real one: TLS, nginx's auth_request into the pool), then, once
every socket is open, prints "open N" and reads a line from stdin (the caller
measures nginx's memory meanwhile). Then it publishes MESSAGES events, one
every 100 ms, with PUBLISH on CHANNEL (<prefix>events) straight to Redis's
unix socket (RESP, as the workers' fm_events_publish sends it), each event
holding the time just before it was published, and records when each
socket's client got it: Redis -> fetchml-wsrelay -> nchan -> the socket, and
this one Python process taking the message off every socket (with thousands
of TLS sockets on the same CPUs, most of the time). Prints
"latency_ms p50 P p99 P max M samples N missing K" and
exits; every step has a deadline.
"""
import asyncio
import json
import os
import socket
import ssl
import sys
import time

import websockets

BATCH = 100
OPEN_DEADLINE_S = 240
RECV_DEADLINE_S = 10


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def redis_call(sock, *args):
    """One command, one single-line reply (+OK, :N); an error reply raises."""
    sock.sendall(resp(*args))
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise RuntimeError("redis closed the connection")
        line += chunk
    if line.startswith(b"-"):
        raise RuntimeError("redis: %r" % line)
    return line


async def main():
    url, key, n, msgs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rsock.settimeout(5)
    rsock.connect(sys.argv[5])
    channel = sys.argv[6]
    if os.environ.get("REDISCLI_AUTH"):
        redis_call(rsock, "AUTH", os.environ.get("REDISCLI_USER", "default"),
                   os.environ["REDISCLI_AUTH"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    socks = []
    t0 = time.time()

    async def one():
        return await websockets.connect(url, ssl=ctx, extra_headers={"X-API-Key": key},
                                        open_timeout=60, compression=None, ping_interval=None,
                                        max_queue=None)

    while len(socks) < n:
        if time.time() - t0 > OPEN_DEADLINE_S:
            print("open %d of %d within %d s: giving up" % (len(socks), n, OPEN_DEADLINE_S))
            return 1
        want = min(BATCH, n - len(socks))
        got = await asyncio.gather(*[one() for _ in range(want)], return_exceptions=True)
        bad = [g for g in got if isinstance(g, Exception)]
        socks += [g for g in got if not isinstance(g, Exception)]
        if bad:
            print("handshake failed: %r" % bad[0])
            return 1
    print("open %d in %.1f s" % (len(socks), time.time() - t0), flush=True)
    sys.stdin.readline()

    lat = []
    missing = 0
    for i in range(msgs):
        sent = time.time()
        ev = json.dumps({"id": "bench%d" % i, "type": "task.progress", "ts": "",
                         "task": {"id": "bench", "user": "bench", "sent": sent}})
        redis_call(rsock, "PUBLISH", channel, ev)

        async def recv(ws):
            while True:
                m = await ws.recv()
                if ('"bench%d"' % i) in m:
                    return time.time()

        got = await asyncio.gather(*[asyncio.wait_for(recv(s), RECV_DEADLINE_S) for s in socks],
                                   return_exceptions=True)
        for g in got:
            if isinstance(g, Exception):
                missing += 1
            else:
                lat.append((g - sent) * 1000)
        await asyncio.sleep(0.1)
    lat.sort()
    if not lat:
        print("latency_ms none received, missing %d" % missing)
        return 1
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print("latency_ms p50 %.1f p99 %.1f max %.1f samples %d missing %d" %
          (pick(0.5), pick(0.99), lat[-1], len(lat), missing))
    await asyncio.gather(*[s.close() for s in socks], return_exceptions=True)
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
