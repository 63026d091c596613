#!/usr/bin/env python3
"""One FastCGI request straight to the pool's socket, as nginx would send it.

usage: fcgi_request.py SOCKET OUT [--as USER[:GROUP]] [--body TEXT] [NAME=VALUE...]

Sends BEGIN_REQUEST (responder, no keep-alive), the params, the body (if any)
as STDIN and its end, then reads until the pool closes. The response body
(after the CGI headers) goes to OUT; stdout gets the status of the Status:
header, or "closed" when the connection ended without an answer (refused).
--as USER[:GROUP]: connect as that user (the test runs as root), with GROUP as
its one supplementary group: OUT is opened first, then every id of the
process becomes USER's, so SO_PEERCRED names USER.
"""
import grp
import os
import pwd
import socket
import struct
import sys


def record(rtype, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), pad, 0) + content + b"\0" * pad


def pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)

    n, v = name.encode(), value.encode()
    return length(len(n)) + length(len(v)) + n + v


def main(argv):
    sock_path, out_path, args = argv[1], argv[2], argv[3:]
    user, body, params = None, b"", {}
    while args:
        a = args.pop(0)
        if a == "--as":
            user = args.pop(0)
        elif a == "--body":
            body = args.pop(0).encode()
        else:
            k, _, v = a.partition("=")
            params[k] = v
    out = open(out_path, "wb")
    if user is not None:
        user, _, group = user.partition(":")
        pw = pwd.getpwnam(user)
        os.setgroups([grp.getgrnam(group).gr_gid] if group else [])
        os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
        os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    msg = record(1, struct.pack(">HB5x", 1, 0))
    msg += record(4, b"".join(pair(k, v) for k, v in params.items())) + record(4, b"")
    if body:
        msg += record(5, body)
    msg += record(5, b"")
    data = b""
    try:
        s.sendall(msg)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass  # refused: the pool closed the connection unread (a reset, or before all was sent)
    stdout, i = b"", 0
    while i + 8 <= len(data):
        _, rtype, _, n, pad, _ = struct.unpack(">BBHHBB", data[i:i + 8])
        if rtype == 6:
            stdout += data[i + 8:i + 8 + n]
        i += 8 + n + pad
    head, _, payload = stdout.partition(b"\r\n\r\n")
    out.write(payload)
    status = [l for l in head.split(b"\r\n") if l.lower().startswith(b"status:")]
    print(status[0].split()[1].decode() if status else "closed")


if __name__ == "__main__":
    main(sys.argv)
