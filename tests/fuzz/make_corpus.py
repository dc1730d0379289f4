#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""make_corpus.py - write the seed corpora of the libFuzzer targets.

    /usr/bin/python3 tests/fuzz/make_corpus.py [CORPUS_DIR]

Writes corpus/frame/, corpus/proto/ and corpus/value/ next to this script
(or under CORPUS_DIR), replacing the files it owns. msgpack is encoded by
hand below (no msgpack module needed); the .npy seeds are written by numpy.
The output is deterministic, so the committed corpus can be regenerated.
"""
import io
import math
import os
import shutil
import struct
import sys

import numpy as np

EXT_NDARRAY = 1  # COHORT_EXT_NDARRAY in include/cohort/kernel.h


# ---- a small msgpack encoder ---------------------------------------------

class Ext:
    def __init__(self, code, data):
        self.code, self.data = code, data


class F32(float):
    """A float packed as float32."""


class Raw:
    """Bytes inserted as they are (hand-made encodings)."""

    def __init__(self, data):
        self.data = data


def pack_len(n, fix_base, fix_max, codes):
    if fix_base is not None and n <= fix_max:
        return bytes([fix_base | n])
    for code, fmt, limit in codes:
        if n < limit:
            return bytes([code]) + (struct.pack(fmt, n) if fmt else b"")
    raise ValueError("too long")


def pack(v):
    if isinstance(v, Raw):
        return v.data
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7f:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if v >= 0:
            for code, fmt, limit in ((0xcc, ">B", 1 << 8),
                                     (0xcd, ">H", 1 << 16),
                                     (0xce, ">I", 1 << 32),
                                     (0xcf, ">Q", 1 << 64)):
                if v < limit:
                    return bytes([code]) + struct.pack(fmt, v)
        for code, fmt, bits in ((0xd0, ">b", 8), (0xd1, ">h", 16),
                                (0xd2, ">i", 32), (0xd3, ">q", 64)):
            if v >= -(1 << (bits - 1)):
                return bytes([code]) + struct.pack(fmt, v)
        raise ValueError(v)
    if isinstance(v, F32):
        return b"\xca" + struct.pack(">f", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return pack_len(len(b), 0xa0, 31, ((0xd9, ">B", 1 << 8),
                                            (0xda, ">H", 1 << 16),
                                            (0xdb, ">I", 1 << 32))) + b
    if isinstance(v, (bytes, bytearray)):
        return pack_len(len(v), None, 0, ((0xc4, ">B", 1 << 8),
                                           (0xc5, ">H", 1 << 16),
                                           (0xc6, ">I", 1 << 32))) + bytes(v)
    if isinstance(v, (list, tuple)):
        return pack_len(len(v), 0x90, 15, ((0xdc, ">H", 1 << 16),
                                           (0xdd, ">I", 1 << 32))) + \
            b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return pack_len(len(v), 0x80, 15, ((0xde, ">H", 1 << 16),
                                           (0xdf, ">I", 1 << 32))) + \
            b"".join(pack(k) + pack(x) for k, x in v.items())
    if isinstance(v, Ext):
        n = len(v.data)
        fix = {1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}
        if n in fix:
            head = bytes([fix[n]])
        else:
            head = pack_len(n, None, 0, ((0xc7, ">B", 1 << 8),
                                         (0xc8, ">H", 1 << 16),
                                         (0xc9, ">I", 1 << 32)))
        return head + struct.pack(">b", v.code) + v.data
    raise TypeError(type(v))


def ndarray(a):
    """A numpy array as Cohort's ndarray extension value."""
    a = np.array(a, order="C")  # keeps a 0-d array 0-d
    descr = a.dtype.newbyteorder("<").str if a.dtype.itemsize > 1 \
        else a.dtype.str
    head = pack([descr, list(a.shape)])
    return Ext(EXT_NDARRAY, head + a.astype(descr).tobytes())


def ndarray_raw(descr, shape, data):
    return Ext(EXT_NDARRAY, pack([descr, shape]) + data)


# ---- protocol headers ----------------------------------------------------

ENGINE_A = {"id": 0, "rank": 0, "size": 2, "pid": 4242, "host": "node1",
            "kernel": "python", "job": "job-7f3a", "state": "idle",
            "uptime": 12.5}
ENGINE_B = {"id": 1, "rank": 1, "size": 2, "pid": 4243, "host": "node2",
            "kernel": "python", "job": "job-7f3a", "state": "busy",
            "uptime": 12.25}

JOB_A = {"jobid": 3, "ntargets": 4, "ndone": 2, "nfailed": 0,
         "op": "execute", "code": "import time; time.sleep(60)",
         "state": "running", "targets": "all", "age": 5.5, "elapsed": 5.5}
JOB_B = {"jobid": 4, "ntargets": 2, "ndone": 0, "nfailed": 0, "op": "pull",
         "code": "", "state": "running", "targets": "0,2", "age": 0.25,
         "elapsed": 0.25}

HEADERS = {
    "hello-engine": {"t": "hello", "v": 1, "role": "engine", "rank": 0,
                     "size": 4, "pid": 31337, "host": "node1",
                     "kernel": "python", "job": "job-7f3a"},
    "hello-client": {"t": "hello", "v": 1, "role": "client"},
    "welcome-engine": {"t": "welcome", "v": 1, "engine": 3},
    "welcome-client": {"t": "welcome", "v": 1},
    "welcome-heartbeat": {"t": "welcome", "v": 1, "engine": 0,
                          "heartbeat": 1.0, "tolerance": 3},
    "request-execute": {"t": "request", "id": 7, "op": "execute",
                        "code": "import numpy as np\nx = np.arange(4)\nx",
                        "targets": [0, 2, 3], "timeout": 5.0},
    "request-push": {"t": "request", "id": 8, "op": "push", "name": "a",
                     "targets": [1]},
    "request-pull": {"t": "request", "id": 9, "op": "pull", "name": "a"},
    "request-engines": {"t": "request", "id": 10, "op": "engines"},
    "request-stream": {"t": "request", "id": 15, "op": "execute",
                       "code": "for i in range(3): print(i)",
                       "timeout": 2.0, "on_timeout": "interrupt",
                       "stream": 1, "nonblock": 1},
    "request-chunked": {"t": "request", "id": 16, "op": "push",
                        "name": "big", "chunked": 8388608},
    "request-interrupt": {"t": "request", "id": 17, "op": "interrupt",
                          "targets": [0, 1]},
    "request-result": {"t": "request", "id": 18, "op": "result",
                       "jobid": 3},
    "request-jobs": {"t": "request", "id": 19, "op": "jobs"},
    "request-scatter": {"t": "request", "id": 11, "op": "push", "name": "x",
                        "targets": [0, 1, 2], "parts": [24, 24, 16]},
    "task": {"t": "task", "id": 12, "op": "execute", "code": "print(1)",
             "engine": 0, "timeout": 0.5},
    "reply-all": {"t": "reply", "id": 7, "status": "ok", "engine": 2,
                  "rank": 2, "stdout": "hello\n", "stderr": "warn\n",
                  "result": "array([0, 1, 2, 3])", "count": 3,
                  "elapsed": 0.0125, "ename": "", "evalue": "",
                  "traceback": ""},
    "reply-error": {"t": "reply", "id": 7, "status": "error", "engine": 1,
                    "ename": "ZeroDivisionError",
                    "evalue": "division by zero",
                    "traceback": "Traceback (most recent call last):\n"
                                 "  File \"<px>\", line 1\nZeroDivisionError",
                    "count": 4, "elapsed": 0.001},
    "reply-dead": {"t": "reply", "id": 7, "status": "dead", "engine": 3,
                   "message": "engine 3 died"},
    "done": {"t": "done", "id": 7, "ntargets": 4, "nfailed": 1},
    "done-job": {"t": "done", "id": 15, "jobid": 3, "state": "running"},
    "chunk": {"t": "chunk", "id": 16},
    "chunk-last": {"t": "chunk", "id": 16, "engine": 1, "last": 1},
    "chunk-abort": {"t": "chunk", "id": 16, "status": "abort"},
    "interrupt": {"t": "interrupt"},
    "stream": {"t": "stream", "id": 15, "name": "stdout",
               "text": "0\n1\n", "engine": 2},
    "reply-chunked": {"t": "reply", "id": 9, "status": "ok",
                      "chunked": 10485760},
    "engines-jobs": {"t": "engines", "id": 20, "engines": [],
                     "jobs": [JOB_A, JOB_B]},
    "error": {"t": "error", "id": 7, "message": "no such engine: 9"},
    "error-connection": {"t": "error", "message": "protocol version 2 "
                         "is not supported"},
    "engines": {"t": "engines", "id": 13, "engines": [ENGINE_A, ENGINE_B],
                "uptime": 99.0},
    "engines-empty": {"t": "engines", "id": 14, "engines": []},
    "ping": {"t": "ping"},
    "pong": {"t": "pong", "id": 1},
    # every field at once, each with its type
    "every-field": {"t": "reply", "v": 1, "id": 1, "role": "engine",
                    "op": "execute", "code": "x", "name": "n",
                    "targets": [0], "timeout": F32(1.5), "engine": 0,
                    "rank": 0, "size": 1, "pid": 2, "host": "h",
                    "kernel": "python", "job": "j", "state": "idle",
                    "status": "ok", "stdout": "o", "stderr": "e",
                    "result": "r", "ename": "E", "evalue": "v",
                    "traceback": "t", "count": 1, "elapsed": 2,
                    "message": "m", "ntargets": 1, "nfailed": 0,
                    "engines": [ENGINE_A], "uptime": 3.0, "parts": [8],
                    "chunked": 9, "last": 1, "stream": 1, "text": "x",
                    "heartbeat": 0.5, "tolerance": 2,
                    "on_timeout": "interrupt", "jobid": 4, "nonblock": 1,
                    "jobs": [JOB_B]},
    # odd but valid: unknown keys, wide encodings, extreme numbers
    "unknown-keys": {"t": "ping", "future": [1, {"x": None}], 7: "seven",
                     "id": 2},
    "extreme-ints": {"t": "done", "id": (1 << 63) - 1,
                     "ntargets": 0, "nfailed": -(1 << 63)},
    "nan-timeout": {"t": "request", "id": 1, "op": "execute", "code": "",
                    "timeout": float("nan")},
    "utf8-code": {"t": "task", "id": 3, "op": "execute",
                  "code": "a\0b\u00e9\u20ac\U0001F600"},
    "long-code": {"t": "task", "id": 4, "op": "execute",
                  "code": "x = 1\n" * 60},
    # invalid: each fails one check of msg_decode
    "bad-no-type": {"id": 1},
    "bad-unknown-type": {"t": "frobnicate", "id": 1},
    "bad-type-not-str": {"t": 3},
    "bad-missing-field": {"t": "request", "id": 1},
    "bad-wrong-type": {"t": "reply", "id": "1", "status": "ok"},
    "bad-negative-target": {"t": "request", "id": 1, "op": "pull",
                            "targets": [0, -1]},
    "bad-engine-not-map": {"t": "engines", "id": 1, "engines": [1]},
    "bad-engine-field": {"t": "engines", "id": 1,
                         "engines": [{"id": "x"}]},
    "bad-uint64-id": {"t": "done", "id": (1 << 64) - 1},
    "bad-job-field": {"t": "engines", "id": 1, "engines": [],
                      "jobs": [{"age": "old"}]},
    "bad-stream-no-text": {"t": "stream", "id": 1, "name": "stdout"},
}

RAW_HEADERS = {
    "bad-not-map": pack([1, 2, 3]),
    "bad-trailing": pack({"t": "ping"}) + b"\xc0",
    "bad-truncated": pack({"t": "hello", "v": 1, "role": "client"})[:-3],
    # map16 / str8 / array16 encodings of an ordinary request
    "wide-encodings": b"\xde\x00\x04" + b"\xd9\x01t" + b"\xd9\x07request" +
                      b"\xd9\x02id" + b"\xd3" + struct.pack(">q", 5) +
                      b"\xda\x00\x02op" + b"\xdb\x00\x00\x00\x04pull" +
                      b"\xa7targets" + b"\xdc\x00\x02\x00\x01",
    # a key given twice: the last one counts
    "duplicate-key": b"\x85" + pack("t") + pack("request") + pack("id") +
                     pack(1) + pack("op") + pack("pull") + pack("targets") +
                     pack([1, 2]) + pack("targets") + pack([3]),
}


def frame(header, payload=b"", payload_len=None):
    n = len(payload) if payload_len is None else payload_len
    return struct.pack(">IQ", len(header), n) + header + payload


# ---- values --------------------------------------------------------------

def value_seeds():
    v = {}
    v["nil"] = None
    v["true"] = True
    v["ints"] = [0, 127, -1, -32, -33, 255, -128, 65535, -32768, 1 << 31,
                 -(1 << 31), (1 << 63) - 1, -(1 << 63), 1 << 63,
                 (1 << 64) - 1]
    v["floats"] = [0.0, -0.0, 2.5, 1e-5, 1e16, 123456789.125, 0.1,
                   float("nan"), float("inf"), -float("inf"), F32(0.1),
                   F32(3.0), 5e-324, 1.7976931348623157e308]
    v["str"] = "text with 'quotes' and \"double\" \\ \n\t\r \x01 \u00e9\u20ac"
    v["str-long"] = "abcdefghij" * 30
    v["bytes"] = bytes(range(0, 256, 7))
    v["bin16"] = bytes(300)
    v["list-long"] = list(range(20))
    v["map"] = {"a": 1, "b": [1, 2.5, "x"], "c": {"d": None}}
    v["map-nonstr-key"] = {1: "one", None: False}
    v["nested"] = {"data": [ndarray(np.arange(6, dtype=np.int32)
                                    .reshape(2, 3)),
                            {"inner": [[1, 2], [3, {"k": b"\x00\xff"}]]}],
                   "meta": {"shape": [2, 3], "name": "m"}}
    v["list-of-arrays"] = [ndarray(np.arange(3.0)), ndarray(np.ones(2))]
    deep = 0
    for _ in range(63):
        deep = [deep]
    v["deep-63"] = deep
    v["too-deep-65"] = [[deep]]
    v["ext-other"] = Ext(5, b"abcd")
    v["ext-negative"] = Ext(-1, b"\x00" * 12)

    rng = np.random.RandomState(7)
    v["nd-bool"] = ndarray(np.array([True, False, True]))
    v["nd-int8"] = ndarray(np.array([-128, 0, 127], dtype=np.int8))
    v["nd-uint8-2d"] = ndarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    v["nd-int16"] = ndarray(np.array([-32768, 1, 32767], dtype=np.int16))
    v["nd-uint16"] = ndarray(np.array([0, 65535], dtype=np.uint16))
    v["nd-int32-3d"] = ndarray(np.arange(24, dtype=np.int32)
                               .reshape(2, 3, 4))
    v["nd-uint32"] = ndarray(np.array([0, 1 << 31, (1 << 32) - 1],
                                      dtype=np.uint32))
    v["nd-int64"] = ndarray(np.array([-(1 << 63), 0, (1 << 63) - 1],
                                     dtype=np.int64))
    v["nd-uint64"] = ndarray(np.array([0, (1 << 64) - 1], dtype=np.uint64))
    v["nd-float32"] = ndarray(np.array([0.1, -2.5, np.nan, np.inf],
                                       dtype=np.float32))
    v["nd-float64-long"] = ndarray(np.linspace(0, 1, 100))
    v["nd-float64-2d"] = ndarray(rng.standard_normal((4, 5)))
    v["nd-complex64"] = ndarray(np.array([1 + 2j, -0.5 - 1j, np.nan],
                                         dtype=np.complex64))
    v["nd-complex128"] = ndarray(np.array([[1j, 2], [3 - 4j, -0.0]]))
    v["nd-0d"] = ndarray(np.array(3.5))
    v["nd-empty"] = ndarray(np.zeros((0, 3)))
    v["nd-empty-wide"] = ndarray(np.zeros((5, 0, 7), dtype=np.int16))
    v["nd-rows-7"] = ndarray(np.arange(14, dtype=np.int64).reshape(7, 2))
    v["nd-bad-dtype"] = ndarray_raw(">f8", [1], b"\x00" * 8)
    v["nd-bad-size"] = ndarray_raw("<i4", [3], b"\x00" * 8)
    v["nd-bad-shape"] = ndarray_raw("<i4", [-1], b"")
    v["nd-huge-shape"] = ndarray_raw("<f8", [1 << 40, 1 << 40], b"")
    v["nd-zero-huge"] = ndarray_raw("<f8", [0, 1 << 62], b"")
    v["nd-zero-big"] = ndarray_raw("<c8", [3, 0, 1 << 40], b"")
    v["nd-empty-too-many-lists"] = ndarray_raw("|u1", [1 << 21, 0], b"")
    return v


def npy_bytes(a, version=None, fortran=False):
    f = io.BytesIO()
    if version is None:
        np.save(f, np.asfortranarray(a) if fortran else a)
    else:
        np.lib.format.write_array(
            f, np.asfortranarray(a) if fortran else a, version=version)
    return f.getvalue()


def npy_seeds():
    s = {}
    s["float64"] = npy_bytes(np.linspace(-1, 1, 7))
    s["int32-2d"] = npy_bytes(np.arange(12, dtype=np.int32).reshape(3, 4))
    s["bool"] = npy_bytes(np.array([True, False]))
    s["uint8"] = npy_bytes(np.arange(10, dtype=np.uint8))
    s["complex128"] = npy_bytes(np.array([1 + 1j, -2j]))
    s["big-endian-int64"] = npy_bytes(np.arange(4, dtype=">i8"))
    s["big-endian-c8"] = npy_bytes(np.array([1 - 1j], dtype=">c8"))
    s["fortran-3d"] = npy_bytes(np.arange(24, dtype=np.float32)
                                .reshape(2, 3, 4), fortran=True)
    s["version2"] = npy_bytes(np.arange(3, dtype=np.int16), version=(2, 0))
    s["0d"] = npy_bytes(np.array(7, dtype=np.uint32))
    s["empty"] = npy_bytes(np.zeros((0, 4)))
    s["structured"] = npy_bytes(np.zeros(2, dtype=[("a", "<i4"),
                                                   ("b", "<f8")]))
    s["object"] = b"\x93NUMPY\x01\x00v\x00{'descr': '|O', " \
        b"'fortran_order': False, 'shape': (1,), }" + b" " * 70 + b"\n"
    s["truncated"] = npy_bytes(np.arange(5.0))[:-3]
    return s


JSON_SEEDS = [
    b"3", b"-2.5e10", b'"text"', b"[1, 2, [3, {\"a\": null}]]",
    b'{"a": 1, "b": [true, false], "c": {"d": "\\u00e9\\u0000"}}',
    b"[" * 70 + b"]" * 70, b"18446744073709551615", b"[1,", b"abc",
]


# ---- writing -------------------------------------------------------------

def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    dirs = {k: os.path.join(root, k) for k in ("frame", "proto", "value")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)

    headers = {k: pack(v) for k, v in HEADERS.items()}
    headers.update(RAW_HEADERS)
    for name, h in headers.items():
        write(dirs["proto"], name, h)

    fr = dirs["frame"]
    for name in ("hello-engine", "hello-client", "welcome-engine",
                 "request-execute", "request-scatter", "task", "reply-all",
                 "done", "error", "engines", "ping", "pong", "every-field",
                 "unknown-keys", "utf8-code", "bad-missing-field",
                 "bad-trailing", "welcome-heartbeat", "request-stream",
                 "request-chunked", "chunk-last", "interrupt", "stream",
                 "engines-jobs", "done-job"):
        write(fr, name, frame(headers[name]))
    val = pack(ndarray(np.arange(6, dtype=np.float64)))
    write(fr, "request-push-payload", frame(headers["request-push"], val))
    write(fr, "reply-pull-payload",
          frame(pack({"t": "reply", "id": 9, "status": "ok", "engine": 0}),
                val))
    write(fr, "scatter-payload",
          frame(headers["request-scatter"], bytes(64)))
    write(fr, "chunk-payload", frame(headers["chunk"], bytes(range(48))))
    write(fr, "payload-not-present",
          frame(headers["ping"], b"", payload_len=1 << 20))
    write(fr, "bad-empty-header", struct.pack(">IQ", 0, 0))
    write(fr, "bad-header-too-large",
          struct.pack(">IQ", (16 << 20) + 1, 0) + headers["ping"])
    write(fr, "bad-payload-too-large",
          struct.pack(">IQ", len(headers["ping"]), (4 << 30) + 1) +
          headers["ping"])
    write(fr, "bad-short-header",
          struct.pack(">IQ", 100, 0) + headers["ping"])

    vd = dirs["value"]
    for name, v in value_seeds().items():
        write(vd, "mp-" + name, b"\x00" + pack(v))
    for name, data in npy_seeds().items():
        write(vd, "npy-" + name, b"\x01" + data)
    for i, data in enumerate(JSON_SEEDS):
        write(vd, "json-%d" % i, b"\x02" + data)

    for k, d in dirs.items():
        files = os.listdir(d)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        print("%s: %d files, %d bytes" % (d, len(files), size))


if __name__ == "__main__":
    main()
