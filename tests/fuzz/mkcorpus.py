#!/usr/bin/env python3
"""Writes the seed corpus for fuzz-dispatch: complete split and packed handshakes whose rings
point into the first 64 KiB of the memfd (which the target fills with the input itself)."""
import os, struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "dispatch")
os.makedirs(out, exist_ok=True)
NEED = 8

def msg(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload

def u64(v):
    return struct.pack("<Q", v)

def state(i, n):
    return struct.pack("<II", i, n)

def session(packed):
    feats = (1 << 32) | (1 << 30) | (1 << 28) | (1 << 29) | ((1 << 34) if packed else 0)
    pf = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 13) | (1 << 15) | (1 << 16)
    uva = 0x10000000
    m = msg(1) + msg(15) + msg(16, u64(pf)) + msg(2, u64(feats), flags=1 | NEED)
    m += msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, uva, 0), flags=1 | NEED)
    for q in (0, 1):
        base = q * 0x4000
        m += msg(8, state(q, 16)) + msg(10, state(q, (1 << 15 | 1 << 31) if packed else 0))
        m += msg(9, struct.pack("<IIQQQQ", q, 0, uva + base, uva + base + 0x2000,
                                uva + base + 0x1000, 0))
        m += msg(13, u64(q)) + msg(12, u64(q)) + msg(18, state(q, 1))
    m += msg(24, struct.pack("<III", 0, 8, 0) + b"\0" * 8)
    m += msg(39, u64(15)) + msg(40) + msg(36) + msg(17)
    m += msg(37, u64(0) + struct.pack("<QQQQ", 1 << 20, 4096, uva + (1 << 20), 0))
    m += msg(38, u64(0) + struct.pack("<QQQQ", 1 << 20, 4096, uva + (1 << 20), 0))
    m += msg(11, state(1, 0)) + msg(34)
    return m

for name, data in (("split", session(False)), ("packed", session(True)),
                   ("short", msg(1) + msg(2, u64(1 << 32)))):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
