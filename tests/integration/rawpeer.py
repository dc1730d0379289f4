#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""rawpeer.py - a misbehaving peer for Cohort's integration tests.

Speaks just enough of the wire protocol (12-byte prefix: u32 BE header_len,
u64 BE payload_len; then a msgpack header map) to reach the controller, then
sends something wrong and reports what the controller did. Standard library
only: msgpack is hand-encoded for the few small maps needed.

  rawpeer.py plain HOST PORT        (HOST a path: that Unix-domain socket)
  rawpeer.py tls HOST PORT --ca CA [--cert C --key K] [--tls12]
                 [--send-hello [--role R]] [--then KIND] [--wait SECS]
                 [--probe SECS]

KIND is partial-push (a client request for a 16 MiB chunked push, then
1 MiB of it, then nothing), garbage, oversize (payload_len 2**40), oversize-header (header_len
1 GiB), empty-header (header_len 0), truncated (a 100-byte header announced,
10 bytes sent), unknown-type ({"t":"bogus"}), wrong-type (a request whose
"id" is a string) or none.

Each step prints one line, in order:

  handshake-failed: REASON   TLS refused (also when, as TLS 1.3 allows, the
                             refusal of a client certificate only shows on
                             the first read or write after the handshake)
  welcome                    the controller accepted the hello
  refused: TEXT              the controller answered the hello with an error
  no-reply: closed|open      no frame came back for the hello
  closed | open              after the bad input: the controller closed the
                             connection (EOF or reset), or it was still open
                             after --wait seconds (default 5)

The exit status is 0 whenever an outcome was observed and printed; the test
script asserts on the text. 2 means a usage error, 3 an unexpected failure.
"""

import argparse
import errno
import socket
import ssl
import struct
import sys
import time

PREFIX = struct.Struct(">IQ")


# ---- tiny msgpack -------------------------------------------------------

def pack(obj):
    """Encode dict/str/int/bool/None as msgpack (small sizes suffice)."""
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 0x80:
            return bytes([obj])
        if -32 <= obj < 0:
            return struct.pack(">b", obj)
        if 0 <= obj < 2**32:
            return b"\xce" + struct.pack(">I", obj)
        if 0 <= obj < 2**64:
            return b"\xcf" + struct.pack(">Q", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, str):
        b = obj.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(obj, dict):
        if len(obj) >= 16:
            raise ValueError("map too large for this packer")
        out = bytes([0x80 | len(obj)])
        for k, v in obj.items():
            out += pack(k) + pack(v)
        return out
    raise TypeError("cannot pack %r" % type(obj))


def unpack(data, i=0):
    """Decode one msgpack object at data[i:]; return (object, next index)."""
    b = data[i]
    i += 1
    if b < 0x80:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
        if b <= 0x8F:
            n = b & 0x0F
        elif b == 0xDE:
            n, = struct.unpack_from(">H", data, i)
            i += 2
        else:
            n, = struct.unpack_from(">I", data, i)
            i += 4
        d = {}
        for _ in range(n):
            k, i = unpack(data, i)
            v, i = unpack(data, i)
            d[k] = v
        return d, i
    if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
        if b <= 0x9F:
            n = b & 0x0F
        elif b == 0xDC:
            n, = struct.unpack_from(">H", data, i)
            i += 2
        else:
            n, = struct.unpack_from(">I", data, i)
            i += 4
        a = []
        for _ in range(n):
            v, i = unpack(data, i)
            a.append(v)
        return a, i
    if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        if 0xA0 <= b <= 0xBF:
            n = b & 0x1F
        else:
            size = {0xD9: 1, 0xC4: 1, 0xDA: 2, 0xC5: 2, 0xDB: 4, 0xC6: 4}[b]
            n = int.from_bytes(data[i:i + size], "big")
            i += size
        raw = data[i:i + n]
        i += n
        if b in (0xC4, 0xC5, 0xC6):
            return bytes(raw), i
        return raw.decode("utf-8", "replace"), i
    fixed = {
        0xC0: (0, None), 0xC2: (0, False), 0xC3: (0, True),
        0xCC: (1, ">B"), 0xCD: (2, ">H"), 0xCE: (4, ">I"), 0xCF: (8, ">Q"),
        0xD0: (1, ">b"), 0xD1: (2, ">h"), 0xD2: (4, ">i"), 0xD3: (8, ">q"),
        0xCA: (4, ">f"), 0xCB: (8, ">d"),
    }
    if b in fixed:
        size, fmt = fixed[b]
        if size == 0:
            return fmt, i
        v, = struct.unpack_from(fmt, data, i)
        return v, i + size
    raise ValueError("unsupported msgpack byte 0x%02x" % b)


def frame(header, payload=b""):
    h = pack(header)
    return PREFIX.pack(len(h), len(payload)) + h + payload


# ---- the bad inputs -------------------------------------------------------

def bad_input(kind):
    """Bytes to send, and whether to stop writing afterwards (no more)."""
    if kind == "garbage":
        # A well-formed prefix announcing a 52-byte header and no payload,
        # then 52 random-looking bytes. 0xc1 is the one byte msgpack never
        # uses, so the header cannot parse. 64 bytes in all.
        body = bytes([0xC1]) + bytes((i * 167 + 91) % 251 for i in range(51))
        return PREFIX.pack(len(body), 0) + body
    if kind == "oversize":
        # Payload of 2**40 bytes, far over the 4 GiB default limit.
        return PREFIX.pack(16, 2**40)
    if kind == "truncated":
        # Announces a 100-byte header, delivers 10 bytes of it.
        return PREFIX.pack(100, 0) + b"\x81\xa1t\xa5hello\xa1"
    if kind == "empty-header":
        # header_len 0: no frame may have an empty header.
        return PREFIX.pack(0, 0)
    if kind == "oversize-header":
        # header_len of 1 GiB, over the 16 MiB header limit.
        return PREFIX.pack(1 << 30, 0)
    if kind == "unknown-type":
        return frame({"t": "bogus"})
    if kind == "wrong-type":
        return frame({"t": "request", "id": "x", "op": "execute"})
    if kind == "deep":
        # {"t": "ping", "x": [[[...]]]} nested 200 deep (fixarray of 1).
        h = b"\x82\xa1t\xa4ping\xa1x" + b"\x91" * 200 + b"\x00"
        return PREFIX.pack(len(h), 0) + h
    if kind == "huge-claim":
        # A header declaring a 4-billion-element array in 8 bytes.
        h = b"\x81\xa1t\xdd\xff\xff\xff\xff"
        return PREFIX.pack(len(h), 0) + h
    if kind == "partial-push":
        # A push announcing a 16 MiB value in chunks, then 1 MiB of it:
        # the peer leaves before the rest (the value never completes).
        return (frame({"t": "request", "id": 1, "op": "push",
                       "name": "partial", "chunked": 16 << 20}) +
                frame({"t": "chunk", "id": 1}, bytes(1 << 20)))
    if kind == "none":
        return b""
    raise ValueError(kind)


# ---- I/O helpers ------------------------------------------------------------

def say(text):
    print(text, flush=True)


def error_text(e):
    if isinstance(e, ssl.SSLError):
        return e.reason or e.strerror or str(e)
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno)) + " (" + \
            (e.strerror or "") + ")"
    return str(e) or type(e).__name__


def recv_exact(sock, n, deadline):
    """n bytes, or None on EOF; raises socket.timeout past the deadline."""
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock, timeout):
    """(header dict, payload) or None on EOF."""
    deadline = time.monotonic() + timeout
    prefix = recv_exact(sock, PREFIX.size, deadline)
    if prefix is None:
        return None
    hlen, plen = PREFIX.unpack(prefix)
    header = recv_exact(sock, hlen, deadline)
    if header is None:
        return None
    payload = recv_exact(sock, plen, deadline) if plen else b""
    if payload is None:
        return None
    try:
        h, _ = unpack(header)
    except (ValueError, IndexError, KeyError, struct.error):
        h = {"raw": header}
    return h, payload


def wait_for_close(sock, timeout):
    """'closed' if the peer closes (EOF, reset, TLS alert), else 'open'."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "open"
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return "open"
        except (ssl.SSLError, ConnectionError, OSError):
            return "closed"
        if not data:
            return "closed"
        # Anything sent before the close is ignored.


def connect(host, port):
    """A TCP connection to host:port, or to the Unix-domain socket host if
    it is a path (port is then ignored)."""
    if host.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(host)
        return s
    return socket.create_connection((host, port), timeout=5)


# ---- subcommands ------------------------------------------------------------

def cmd_plain(args):
    with connect(args.host, args.port) as s:
        try:
            s.sendall(b"hello\r\n")
        except OSError:
            say("closed")
            return 0
        say(wait_for_close(s, args.wait))
    return 0


def cmd_tls(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.tls12:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    raw = connect(args.host, args.port)
    s = ctx.wrap_socket(raw, do_handshake_on_connect=False)
    try:
        try:
            s.do_handshake()
        except (ssl.SSLError, OSError) as e:
            say("handshake-failed: " + error_text(e))
            return 0

        # In TLS 1.3 the server judges the client certificate after the
        # client has finished: a refusal arrives as an alert on the first
        # read. Look for one before writing anything, for a write into a
        # socket the server has already closed draws a reset that can
        # discard the alert (and its reason) unread.
        s.settimeout(args.probe)
        try:
            data = s.recv(65536)
            if not data:
                say("handshake-failed: closed after the handshake")
                return 0
        except (socket.timeout, TimeoutError):
            pass
        except (ssl.SSLError, OSError) as e:
            say("handshake-failed: " + error_text(e))
            return 0

        if args.send_hello:
            try:
                s.sendall(frame({"t": "hello", "v": 1,
                                 "role": args.role}))
                f = read_frame(s, args.wait)
            except (socket.timeout, TimeoutError):
                say("no-reply: open")
                f = False
            except (ssl.SSLError, OSError) as e:
                say("handshake-failed: " + error_text(e))
                return 0
            if f is None:
                say("no-reply: closed")
                return 0
            if f:
                h, _ = f
                t = h.get("t") if isinstance(h, dict) else None
                if t == "welcome":
                    say("welcome")
                elif t == "error":
                    say("refused: " + str(h.get("message", "")))
                else:
                    say("unexpected: %r" % (h,))

        data = bad_input(args.then)
        if data:
            try:
                s.settimeout(5)
                s.sendall(data)
            except (ssl.SSLError, OSError):
                say("closed")
                return 0
        say(wait_for_close(s, args.wait))
        return 0
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plain", help="plain TCP, no TLS")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--wait", type=float, default=5.0)
    p.set_defaults(fn=cmd_plain)
    p = sub.add_parser("tls", help="TLS, then optionally hello and bad input")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--send-hello", action="store_true")
    p.add_argument("--role", default="client",
                   help="role claimed in the hello (default client)")
    p.add_argument("--then", default="none",
                   choices=["garbage", "oversize", "oversize-header",
                            "empty-header", "truncated", "unknown-type",
                            "wrong-type", "deep", "huge-claim",
                            "partial-push", "none"])
    p.add_argument("--wait", type=float, default=5.0,
                   help="seconds to wait for a reply or a close")
    p.add_argument("--probe", type=float, default=0.3,
                   help="seconds to watch for a TLS alert after the "
                   "handshake, before sending anything (default 0.3)")
    p.set_defaults(fn=cmd_tls)
    args = ap.parse_args()
    if getattr(args, "cert", None) and not args.key:
        ap.error("--cert needs --key")
    try:
        return args.fn(args)
    except Exception as e:  # a bug here, not an outcome
        print("rawpeer: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
