#!/usr/bin/python3
"""WebSocket client for the integration tests and the benchmark (python3-websockets).

  wsclient.py open   [options]   try one handshake; print one JSON line:
                                 {"status": 101, "subprotocol": ...} or
                                 {"status": N, "headers": {...}} (refused)
  wsclient.py listen [options]   connect, then write one JSON line per message
                                 to --out ({"t": unix seconds, "id": nchan's id,
                                 "event": {...}}) and, when the socket closes,
                                 {"t": ..., "closed": code}; --ready FILE is
                                 created once connected (or holds the refusal)
Options: --url (wss://127.0.0.1:$FETCHML_HTTPS_PORT/ws), --path (/ws, may carry
a query), --key K (X-API-Key), --bearer K (Authorization: Bearer), --proto K
(subprotocols ws+meta.nchan, fetchml.bearer.K), --proto-only K (just
fetchml.bearer.K), --no-meta (no subprotocol), --origin O, --header "N: V"
(repeatable), --last-id ID (Last-Event-ID), --seconds S (listen at most S,
default 600; the tests stop theirs sooner).
"""
import argparse
import asyncio
import json
import os
import ssl
import sys
import time

import websockets


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["open", "listen"])
    p.add_argument("--url", default=None)
    p.add_argument("--path", default="/ws")
    p.add_argument("--key")
    p.add_argument("--bearer")
    p.add_argument("--proto")
    p.add_argument("--proto-only")
    p.add_argument("--no-meta", action="store_true")
    p.add_argument("--origin")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--last-id")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--out")
    p.add_argument("--ready")
    return p.parse_args()


def connect_args(a):
    url = a.url or "wss://127.0.0.1:%s%s" % (os.environ["FETCHML_HTTPS_PORT"], a.path)
    headers = []
    if a.key:
        headers.append(("X-API-Key", a.key))
    if a.bearer:
        headers.append(("Authorization", "Bearer " + a.bearer))
    if a.last_id:
        headers.append(("Last-Event-ID", a.last_id))
    for h in a.header:
        n, v = h.split(":", 1)
        headers.append((n.strip(), v.strip()))
    protos = [] if a.no_meta else ["ws+meta.nchan"]
    if a.proto:
        protos.append("fetchml.bearer." + a.proto)
    if a.proto_only:
        protos = ["fetchml.bearer." + a.proto_only]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    kw = dict(ssl=ctx, extra_headers=headers, open_timeout=10, max_size=None,
              subprotocols=protos or None, origin=a.origin, compression=None)
    return url, kw


def parse_message(m):
    """ws+meta.nchan frames are "id: X\\ncontent-type: T\\n\\n<data>"; plain ones are the data."""
    mid = None
    if isinstance(m, bytes):
        m = m.decode()
    if m.startswith("id: "):
        head, _, m = m.partition("\n\n")
        for line in head.split("\n"):
            if line.startswith("id: "):
                mid = line[4:]
    try:
        ev = json.loads(m)
    except ValueError:
        ev = m
    return mid, ev


async def do_open(a):
    url, kw = connect_args(a)
    try:
        ws = await websockets.connect(url, **kw)
    except websockets.InvalidStatusCode as e:
        print(json.dumps({"status": e.status_code, "headers": dict(e.headers)}))
        return
    except websockets.InvalidHandshake as e:
        print(json.dumps({"status": 0, "error": str(e)}))
        return
    print(json.dumps({"status": 101, "subprotocol": ws.subprotocol,
                      "headers": dict(ws.response_headers)}))
    await ws.close()


async def do_listen(a):
    url, kw = connect_args(a)
    out = open(a.out, "a", buffering=1)
    try:
        ws = await websockets.connect(url, **kw)
    except websockets.InvalidStatusCode as e:
        if a.ready:
            with open(a.ready, "w") as f:
                f.write("refused %d\n" % e.status_code)
        return
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("open %s\n" % ws.subprotocol)
    deadline = time.time() + a.seconds
    try:
        while True:
            left = deadline - time.time()
            if left <= 0:
                break
            m = await asyncio.wait_for(ws.recv(), left)
            mid, ev = parse_message(m)
            out.write(json.dumps({"t": time.time(), "id": mid, "event": ev}) + "\n")
    except websockets.ConnectionClosed as e:
        out.write(json.dumps({"t": time.time(), "closed": e.code}) + "\n")
        return
    except asyncio.TimeoutError:
        pass
    await ws.close()
    out.write(json.dumps({"t": time.time(), "closed": "timeout"}) + "\n")


def main():
    a = parse_args()
    asyncio.run(do_open(a) if a.mode == "open" else do_listen(a))


if __name__ == "__main__":
    sys.exit(main())
