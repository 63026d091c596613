#!/usr/bin/env python3
"""Slow and idle connections from one address, for test_75_connections.sh and
test_43_slow_transfers.sh.

    [SLOW_KEY=key SLOW_PATH=/v1/...] slow_clients.py HOST PORT SOURCE_ADDR HOLD_SECONDS KIND=COUNT...

Opens COUNT connections of each KIND from SOURCE_ADDR (a loopback address) to
HOST:PORT, paced over the first seconds, holds them for HOLD_SECONDS at most,
then closes what is left and exits; it never runs longer than HOLD_SECONDS + 5.
Kinds:
    tcp       connects and sends nothing
    hello     sends the first bytes of a TLS ClientHello, then nothing
    slowhello the same, then the rest of the ClientHello one byte a second
    tls       completes the TLS handshake, then sends nothing
    header    TLS, then a request header one byte a second, never finished
    body      TLS, a whole POST header announcing 100000 bytes, then the
              body one byte a second
    upload    TLS, a PUT of SLOW_PATH-<n> with X-API-Key SLOW_KEY announcing
              10000000 bytes, then the body one byte a second
    getbody   TLS, a GET of SLOW_PATH with no key announcing a 100000-byte
              body, then the body one byte a second (nginx passes bodies on
              unbuffered on the experiments files routes)
    download  TLS, a GET of SLOW_PATH with X-API-Key SLOW_KEY, on a socket with
              a 32 KiB receive buffer, read at most 8 KiB every quarter
              second (at most 32 KiB/s, steadily; still nginx's send_timeout
              may fire: the server's TCP send buffer grows to megabytes and
              wakes nginx for writing only once a third of it is free)
Prints one JSON object: for each kind, how many were opened, how many could
not connect (refused or closed by the server; timed out, on a loaded machine), how many the server closed (and the longest it let one stay
open, in seconds), the status codes of any answers and the first
answer of each status.
"""
import asyncio
import json
import ssl
import sys
import time

import os
import socket

HOST, PORT, SOURCE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
KEY, PATH = os.environ.get("SLOW_KEY", ""), os.environ.get("SLOW_PATH", "/")
HOLD = float(sys.argv[4])
KINDS = dict((k, int(v)) for k, v in (a.split("=") for a in sys.argv[5:]))
START = time.monotonic()
RAMP = 2.0  # seconds over which the connections are opened

stats = {k: {"opened": 0, "connect_failed": 0, "connect_timeout": 0, "closed_by_server": 0, "max_held_s": 0.0,
             "min_held_s": None, "statuses": {}, "sample": {}} for k in KINDS}


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


CTX = tls_context()


async def trickle(writer, reader, first, then):
    """Sends first, then one byte of then a second, until the server answers or closes."""
    writer.write(first)
    await writer.drain()
    for i in range(len(then)):
        try:
            data = await asyncio.wait_for(reader.read(4096), 1.0)
        except asyncio.TimeoutError:
            writer.write(then[i:i + 1])
            await writer.drain()
            continue
        return data
    return await reader.read(4096)


def closed_by_server(st, opened):
    held = round(time.monotonic() - opened, 2)
    st["closed_by_server"] += 1
    st["max_held_s"] = max(st["max_held_s"], held)
    st["min_held_s"] = held if st["min_held_s"] is None else min(st["min_held_s"], held)


def record(st, data):
    if data.startswith(b"HTTP/1.1 "):
        code = data[9:12].decode()
        st["statuses"][code] = st["statuses"].get(code, 0) + 1
        st["sample"].setdefault(code, data.decode("latin-1"))


async def slow_read(st, reader):
    """Reads 8 KiB every quarter second until the server closes (the status counted at once)."""
    record(st, await reader.read(8192))
    while True:
        await asyncio.sleep(0.25)
        if not await reader.read(8192):
            return


async def connect(tls, small_rcvbuf):
    if not small_rcvbuf:
        return await asyncio.open_connection(HOST, PORT, ssl=CTX if tls else None, local_addr=(SOURCE, 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.setblocking(False)
    sock.bind((SOURCE, 0))
    await asyncio.get_running_loop().sock_connect(sock, (HOST, PORT))
    return await asyncio.open_connection(sock=sock, ssl=CTX, server_hostname=HOST)


async def one(kind, delay, seq):
    st = stats[kind]
    await asyncio.sleep(delay)
    tls = kind in ("tls", "header", "body", "upload", "download", "getbody")
    try:
        reader, writer = await asyncio.wait_for(connect(tls, kind == "download"), 10.0)
    except asyncio.TimeoutError:
        st["connect_timeout"] += 1  # a loaded machine: not the server's refusal
        return
    except (OSError, ssl.SSLError):
        st["connect_failed"] += 1  # refused, or closed before the handshake ended
        return
    st["opened"] += 1
    opened = time.monotonic()
    try:
        if kind == "hello":
            writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            await writer.drain()
            data = await reader.read(4096)
        elif kind == "slowhello":
            data = await trickle(writer, reader, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                 b"\x00" * 500)
        elif kind == "header":
            data = await trickle(writer, reader, b"GET /health HTTP/1.1\r\nHost: x\r\n",
                                 b"X-Slow: " + b"a" * 1000)
        elif kind == "body":
            data = await trickle(writer, reader,
                                 b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
                                 b"{" + b" " * 9999)
        elif kind == "upload":
            data = await trickle(writer, reader,
                                 ("PUT %s-%d HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
                                  "Content-Length: 10000000\r\n\r\n" % (PATH, seq, KEY)).encode(),
                                 b"u" * 10000)
        elif kind == "getbody":
            data = await trickle(writer, reader,
                                 ("GET %s HTTP/1.1\r\nHost: x\r\nX-API-Key: bogus\r\n"
                                  "Content-Length: 100000\r\n\r\n" % PATH).encode(),
                                 b"g" * 10000)
        elif kind == "download":
            writer.write(("GET %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nConnection: close\r\n\r\n"
                          % (PATH, KEY)).encode())
            await writer.drain()
            await slow_read(st, reader)
            data = b""
        else:
            data = await reader.read(4096)
        record(st, data)
        closed_by_server(st, opened)
    except (OSError, ssl.SSLError):
        closed_by_server(st, opened)
    finally:
        writer.close()


async def main():
    total = sum(KINDS.values())
    tasks, i = [], 0
    for kind, count in KINDS.items():
        for _ in range(count):
            tasks.append(asyncio.ensure_future(one(kind, RAMP * i / max(total, 1), i)))
            i += 1
    done, pending = await asyncio.wait(tasks, timeout=HOLD)
    for t in pending:
        t.cancel()
    await asyncio.wait(pending, timeout=5) if pending else None
    print(json.dumps(stats))


asyncio.run(main())
