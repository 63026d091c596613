#!/usr/bin/env python3
"""Slow and idle connections from one address, for test_75_connections.sh.

    slow_clients.py HOST PORT SOURCE_ADDR HOLD_SECONDS KIND=COUNT...

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

HOST, PORT, SOURCE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
HOLD = float(sys.argv[4])
KINDS = dict((k, int(v)) for k, v in (a.split("=") for a in sys.argv[5:]))
START = time.monotonic()
RAMP = 2.0  # seconds over which the connections are opened

stats = {k: {"opened": 0, "connect_failed": 0, "connect_timeout": 0, "closed_by_server": 0, "max_held_s": 0.0,
             "statuses": {}, "sample": {}} for k in KINDS}


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
    st["closed_by_server"] += 1
    st["max_held_s"] = max(st["max_held_s"], round(time.monotonic() - opened, 2))


async def one(kind, delay):
    st = stats[kind]
    await asyncio.sleep(delay)
    tls = kind in ("tls", "header", "body")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, PORT, ssl=CTX if tls else None,
                                    local_addr=(SOURCE, 0)), 10.0)
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
        else:
            data = await reader.read(4096)
        if data.startswith(b"HTTP/1.1 "):
            code = data[9:12].decode()
            st["statuses"][code] = st["statuses"].get(code, 0) + 1
            st["sample"].setdefault(code, data.decode("latin-1"))
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
            tasks.append(asyncio.ensure_future(one(kind, RAMP * i / max(total, 1))))
            i += 1
    done, pending = await asyncio.wait(tasks, timeout=HOLD)
    for t in pending:
        t.cancel()
    await asyncio.wait(pending, timeout=5) if pending else None
    print(json.dumps(stats))


asyncio.run(main())
