#!/usr/bin/env python3
"""Misbehaving TLS clients for mesa-injector's bad-input tests (python ssl,
certificate verified against the test CA).

  rawclient.py MODE PORT CA SNI
    idle            connect, send nothing; print seconds until the server closes
    trickle         send request headers one byte every 0.5 s; print seconds until closed
    partial         send headers and part of the body, then stall; print seconds until closed
    chunked BYTES   send a chunked POST body of BYTES; print the status line
    hold N          hold N connections open, then try one more; print whether it was served
    slowpost FILE   send FILE as a POST body in two halves 1.5 s apart; print the status line
    unread FILE N   pipeline N requests with FILE as body from a thread and read
                    nothing for 3 s, print "reading", then read; print "answers K"
                    (the 200 answers that arrived)
    records FILE N  on one connection, N times: two requests with FILE as body, each
                    cut into several TLS records, all sent before reading; expect two
                    200 answers within 5 s; print "ok N" (records the server reads
                    ahead must not wait for data that will never come)
"""
import socket
import ssl
import sys
import time


def connect(port, ca, sni, timeout=30):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=sni)


def wait_closed(s, start):
    try:
        while True:
            if not s.recv(4096):
                break
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return time.monotonic() - start


def read_answer(s, buf):
    """One HTTP answer from s, after the bytes already in buf: returns its
    status line and the bytes read past it, or (None, buf) when the server
    closes first. A socket timeout propagates."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    headers, buf = buf.split(b"\r\n\r\n", 1)
    n = int([h.split(b":")[1] for h in headers.split(b"\r\n")
             if h.lower().startswith(b"content-length:")][0])
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    return headers.split(b"\r\n")[0], buf[n:]


def main():
    mode, port, ca, sni = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    head = ("POST /mutate-pods HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % sni)
    if mode == "idle":
        start = time.monotonic()
        s = connect(port, ca, sni)
        print("%.1f" % wait_closed(s, start))
    elif mode == "trickle":
        start = time.monotonic()
        s = connect(port, ca, sni)
        s.settimeout(0.5)
        data = (head + "X-Slow: " + "a" * 200 + "\r\n").encode()
        try:
            for b in data:
                s.send(bytes([b]))
                try:
                    if not s.recv(4096):
                        break
                except socket.timeout:
                    pass
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        print("%.1f" % (time.monotonic() - start))
    elif mode == "partial":
        start = time.monotonic()
        s = connect(port, ca, sni)
        s.sendall((head + "Content-Length: 1000\r\n\r\n" + "{" * 10).encode())
        print("%.1f" % wait_closed(s, start))
    elif mode == "chunked":
        total = int(sys.argv[5])
        s = connect(port, ca, sni)
        s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < total:
                n = min(len(chunk), total - sent)
                s.sendall(b"%x\r\n" % n + chunk[:n] + b"\r\n")
                sent += n
            s.sendall(b"0\r\n\r\n")
            s.settimeout(10)
            resp = s.recv(4096).decode(errors="replace")
            print(resp.split("\r\n")[0] if resp else "closed")
        except (ConnectionError, ssl.SSLError, OSError) as e:
            print("closed after %d bytes: %s" % (sent, e))
    elif mode == "hold":
        n = int(sys.argv[5])
        held = [connect(port, ca, sni) for _ in range(n)]
        try:
            s = connect(port, ca, sni, timeout=3)
            s.settimeout(3)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            resp = s.recv(4096)
            print("served" if resp.startswith(b"HTTP/1.1 200") else "refused")
        except (ConnectionError, ssl.SSLError, OSError, socket.timeout):
            print("refused")
        for h in held:
            h.close()
    elif mode == "slowpost":
        body = open(sys.argv[5], "rb").read()
        s = connect(port, ca, sni)
        s.sendall((head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body[: len(body) // 2])
        print("sent-half", flush=True)
        time.sleep(1.5)
        s.sendall(body[len(body) // 2:])
        s.settimeout(10)
        resp = b""
        try:
            while b"\r\n" not in resp:
                chunk = s.recv(4096)
                if not chunk:
                    break
                resp += chunk
        except (ConnectionError, ssl.SSLError, OSError) as e:
            print("error: %s" % e)
            return
        print(resp.decode(errors="replace").split("\r\n")[0] if resp else "closed")
    elif mode == "unread":
        import threading
        body, n = open(sys.argv[5], "rb").read(), int(sys.argv[6])
        req = (head + "Accept-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body
        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast
        raw.connect(("127.0.0.1", port))
        s = ctx.wrap_socket(raw, server_hostname=sni)

        def send_all():
            try:
                for _ in range(n):
                    s.sendall(req)
            except (ConnectionError, ssl.SSLError, OSError):
                pass

        threading.Thread(target=send_all, daemon=True).start()
        time.sleep(3)
        print("reading", flush=True)
        s.settimeout(10)
        got, buf = 0, b""
        try:
            while got < n:
                status, buf = read_answer(s, buf)
                if status is None:
                    break
                if status.startswith(b"HTTP/1.1 200"):
                    got += 1
        except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
            pass
        print("answers %d" % got)
    elif mode == "records":
        body, rounds = open(sys.argv[5], "rb").read(), int(sys.argv[6])
        req = (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
        s = connect(port, ca, sni)
        s.settimeout(5)
        buf = b""
        for r in range(rounds):
            # Each send() is one TLS record: 7 per request, 14 back to back.
            for _ in range(2):
                step = len(req) // 6
                for i in range(0, len(req), step):
                    s.send(req[i:i + step])
            for k in range(2):
                try:
                    status, buf = read_answer(s, buf)
                    if status is None:
                        sys.exit("round %d answer %d: connection closed" % (r, k))
                    if not status.startswith(b"HTTP/1.1 200"):
                        sys.exit("round %d answer %d: %s" % (r, k, status))
                except socket.timeout:
                    sys.exit("round %d answer %d: no answer within 5 s" % (r, k))
        print("ok %d" % rounds)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
