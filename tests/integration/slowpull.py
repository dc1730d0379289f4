#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""slowpull.py - a client that asks for a value and then stops reading.

For Cohort's slow-reader test (t4003): connects to the controller of a
profile with the profile's client certificate (from client.json), says
hello, reads the welcome, sends one pull request and then sleeps without
reading anything, so the value's reply stream backs up in the controller.

  slowpull.py --profile DIR --name NAME [--target N] [--sleep SECS]
              [--rcvbuf BYTES]

Prints, one line each as it happens:

  welcome         the controller accepted the hello
  refused: TEXT   it answered the hello with an error (exit 1)
  sent            the pull request is written; now sleeping
  woke            the sleep ended (the socket is then closed unread)

Standard library only; the framing and the msgpack decoder come from
rawpeer.py next to this file. Exit status 0 after "woke", 1 on a refusal
or a closed connection, 2 on a usage error.
"""

import argparse
import json
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawpeer  # noqa: E402


def pack(obj):
    """rawpeer's msgpack encoder, plus short lists."""
    if isinstance(obj, list):
        if len(obj) >= 16:
            raise ValueError("list too long for this packer")
        return bytes([0x90 | len(obj)]) + b"".join(pack(v) for v in obj)
    if isinstance(obj, dict):
        out = bytes([0x80 | len(obj)])
        for k, v in obj.items():
            out += pack(k) + pack(v)
        return out
    return rawpeer.pack(obj)


def frame(header, payload=b""):
    h = pack(header)
    return rawpeer.PREFIX.pack(len(h), len(payload)) + h + payload


def say(text):
    print(text, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", required=True,
                    help="profile directory (holds client.json)")
    ap.add_argument("--name", required=True, help="value to pull")
    ap.add_argument("--target", type=int, default=0, help="engine id")
    ap.add_argument("--sleep", type=float, default=20.0,
                    help="seconds to sleep without reading (default 20)")
    ap.add_argument("--rcvbuf", type=int, default=0,
                    help="SO_RCVBUF for the socket (default: the system's)")
    args = ap.parse_args()

    with open(os.path.join(args.profile, "client.json")) as f:
        ci = json.load(f)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(ci["ca"])
    ctx.load_cert_chain(ci["cert"], ci["key"])

    raw = socket.socket(socket.AF_INET6 if ":" in ci["ip"] else
                        socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf > 0:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    raw.settimeout(10)
    raw.connect((ci["ip"], ci["port"]))
    s = ctx.wrap_socket(raw)
    s.sendall(frame({"t": "hello", "v": 1, "role": "client",
                     "pid": os.getpid()}))
    f = rawpeer.read_frame(s, 10)
    if f is None:
        say("refused: connection closed")
        return 1
    h, _ = f
    if h.get("t") != "welcome":
        say("refused: " + str(h.get("message", h)))
        return 1
    say("welcome")
    s.sendall(frame({"t": "request", "id": 1, "op": "pull",
                     "name": args.name, "targets": [args.target]}))
    say("sent")
    time.sleep(args.sleep)
    say("woke")
    s.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ssl.SSLError, struct.error) as e:
        print("slowpull: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
