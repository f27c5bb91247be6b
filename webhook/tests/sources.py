#!/usr/bin/env python3
"""Clients of mesa-injector that each bind their own source address
(127.0.0.0/8 is all local on Linux), for tests/integration/webhook_hostile.sh:
one source misbehaves, another is the API server.

  sources.py flood PORT SRC N SECONDS
      keeps N plain TCP connections (no TLS hello) open from SRC for SECONDS,
      opening each again 200 ms after the server closes it; prints JSON: how
      many were opened, how long each lived from its handshake until the
      server closed it, and how many were still connecting at the end (their
      SYNs dropped)
  sources.py tls PORT CA SNI SRC N idle|slow
      N TLS connections from SRC that complete the handshake and then send
      nothing (idle) or one request line and one header line (slow); prints
      JSON: the seconds until the server closed each (null: still open 15 s on)
  sources.py bodies PORT CA SNI SRC N BYTES SECONDS
      N TLS connections from SRC, each sending a POST whose Content-Length
      promises more than BYTES and BYTES of it, then stalling for SECONDS;
      prints JSON: how many the server closed while they stalled
  sources.py reviews PORT CA SNI SRC BODY K
      K reviews on one keep-alive connection, then K more each on a new
      connection, from SRC; prints JSON: how many were answered 200 with a
      JSON patch, and the first error
"""
import json
import selectors
import socket
import ssl
import sys
import time


def bound(src):
    s = socket.socket()
    s.bind((src, 0))
    return s


def flood(port, src, n, seconds):
    sel = selectors.DefaultSelector()
    started, lifetimes, reopen = {}, [], []
    opened = never = 0

    def open_one():
        nonlocal opened
        s = bound(src)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        started[s] = None  # established: when it first becomes writable
        opened += 1

    def closed(s):
        nonlocal never
        t = started.pop(s)
        if t is None:
            never += 1
        else:
            lifetimes.append(time.monotonic() - t)
        sel.unregister(s)
        s.close()
        reopen.append(time.monotonic() + 0.2)

    for _ in range(n):
        open_one()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, events in sel.select(timeout=0.05):
            s = key.fileobj
            if started[s] is None and events & selectors.EVENT_WRITE:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    closed(s)
                    continue
                started[s] = time.monotonic()
                sel.modify(s, selectors.EVENT_READ)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = s.recv(1)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed(s)
        now = time.monotonic()
        while reopen and reopen[0] <= now and now < end:
            reopen.pop(0)
            open_one()
    waiting = sum(1 for t in started.values() if t is None)
    for s in started:
        s.close()
    print(json.dumps({"opened": opened, "never_connected": never, "waiting_at_end": waiting,
                      "lifetimes": sorted(lifetimes)}))


def tls_clients(port, ca, sni, src, n, mode):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    conns = []
    for _ in range(n):
        s = bound(src)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = ctx.wrap_socket(s, server_hostname=sni)
        if mode == "slow":
            t.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\n")
        conns.append((t, time.monotonic()))
    closed = []
    for t, start in conns:
        t.settimeout(max(0.1, start + 15 - time.monotonic()))
        try:
            while t.recv(4096):
                pass
            closed.append(time.monotonic() - start)
        except socket.timeout:
            closed.append(None)
        except (ConnectionError, ssl.SSLError, OSError):
            closed.append(time.monotonic() - start)
        t.close()
    print(json.dumps({"closed_after": closed}))


def bodies(port, ca, sni, src, n, size, seconds):
    ctx = ssl.create_default_context(cafile=ca)
    head = (b"POST /mutate-pods HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (sni.encode(), 2 * size))
    conns = []
    for _ in range(n):
        s = bound(src)
        s.connect(("127.0.0.1", port))
        t = ctx.wrap_socket(s, server_hostname=sni)
        try:
            t.sendall(head + b"{" + b" " * (size - 1))
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        conns.append(t)
    time.sleep(seconds)
    closed = 0
    for t in conns:
        t.setblocking(False)
        try:
            if t.recv(1) == b"":
                closed += 1
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except (ConnectionError, ssl.SSLError, OSError):
            closed += 1
        t.close()
    print(json.dumps({"sent": n, "closed": closed}))


def read_answer(t, buf):
    while b"\r\n\r\n" not in buf:
        chunk = t.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    n = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0])
    while len(buf) < n:
        chunk = t.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the answer")
        buf += chunk
    return head.split(b"\r\n")[0], buf[:n], buf[n:]


def reviews(port, ca, sni, src, body_file, k):
    ctx = ssl.create_default_context(cafile=ca)
    body = open(body_file, "rb").read()
    req = (b"POST /mutate-pods HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % (sni.encode(), len(body))) + body

    def connect():
        s = bound(src)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ctx.wrap_socket(s, server_hostname=sni)

    good, first_error = 0, None
    keep = None
    for i in range(2 * k):
        try:
            if i >= k or keep is None:
                if keep is not None:
                    keep.close()
                keep = connect()
            keep.sendall(req)
            status, answer, _ = read_answer(keep, b"")
            if status.startswith(b"HTTP/1.1 200") and b'"patchType":"JSONPatch"' in answer:
                good += 1
            elif first_error is None:
                first_error = "%s: %s" % (status, answer[:100])
        except (ConnectionError, ssl.SSLError, OSError) as e:
            keep = None
            if first_error is None:
                first_error = "request %d: %s" % (i, e)
    print(json.dumps({"good": good, "of": 2 * k, "first_error": first_error}))


def main():
    mode = sys.argv[1]
    if mode == "flood":
        flood(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "tls":
        tls_clients(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    elif mode == "bodies":
        bodies(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]),
               float(sys.argv[8]))
    elif mode == "reviews":
        reviews(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
