#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/NAME, one directory per harness (the -race
variants read the seeds of their plain twin):
  dispatch  complete split and packed sessions whose rings point into the first 64 KiB of the
            memfd (which the target fills with the input itself), with every protocol feature
            the fuzz device offers: INFLIGHT_SHMFD (GET/SET_INFLIGHT_FD, a ring stopped and
            restarted on its region), memory slots, config, status, reset, packed rings
  ring      split and packed rings: chains, indirect tables, event idx, wrap-around bases,
            popped one at a time or in bursts
  inflight  the same rings with fresh, restorable and mid-push inflight regions
  blkreq    every request type in typical and odd iovec shapes
  net       rx/tx/control rings for each feature set, control commands of every class
  frontend  a well-behaved back-end's replies (split, packed, INFLIGHT_SHMFD, CONFIG, STATUS)
"""
import os, struct, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(name, seed, data):
    """Trailing zeros are dropped: the targets zero-fill memory the input does not reach."""
    data = data.rstrip(b"\0") or b"\0"
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, seed), "wb") as f:
        f.write(data)


# ---- dispatch ----
NEED = 8


def msg(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


def inflight(size, nq, qs):
    return struct.pack("<QQHHI", size, 0, nq, qs, 0)


def session(packed, inflight_fd=True, log=False):
    feats = (1 << 32) | (1 << 30) | (1 << 28) | (1 << 29) | ((1 << 34) if packed else 0)
    pf = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 13) | (1 << 15) | (1 << 16)
    if inflight_fd:
        pf |= 1 << 12
    if log:
        pf |= 1 << 1
    uva = 0x10000000
    m = msg(1) + msg(15) + msg(16, u64(pf)) + msg(2, u64(feats), flags=1 | NEED)
    if inflight_fd:
        region = (32 + 32 * 16 + 63) & ~63
        m += msg(31, inflight(0, 2, 16)) + msg(32, inflight(2 * region, 2, 16), flags=1 | NEED)
    m += msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, uva, 0), flags=1 | NEED)
    base = (1 << 15 | 1 << 31) if packed else 0

    def ring(q):
        b = q * 0x400
        r = msg(8, state(q, 16)) + msg(10, state(q, base))
        r += msg(9, struct.pack("<IIQQQQ", q, 0, uva + b, uva + b + 0x2000, uva + b + 0x1000, 0))
        return r + msg(13, u64(q)) + msg(14, u64(q)) + msg(12, u64(q)) + msg(18, state(q, 1))

    for q in (0, 1):
        m += ring(q)
    if log:
        # Migration: a log (SET_LOG_BASE, SET_LOG_FD), LOG_ALL on, F_LOG on ring 1, then off.
        m += msg(6, struct.pack("<QQ", 32, 0)) + msg(7)
        m += msg(2, u64(feats | 1 << 26), flags=1 | NEED)
        b = 0x400
        m += msg(9, struct.pack("<IIQQQQ", 1, 1, uva + b, uva + b + 0x2000, uva + b + 0x1000, b + 0x1000))
        m += msg(12, u64(1)) + msg(2, u64(feats), flags=1 | NEED)
    m += msg(24, struct.pack("<III", 0, 8, 0) + b"\0" * 8)
    m += msg(25, struct.pack("<III", 0, 4, 0) + b"\1\2\3\4", flags=1 | NEED)
    m += msg(39, u64(15)) + msg(40) + msg(36) + msg(17)
    m += msg(37, u64(0) + struct.pack("<QQQQ", 1 << 20, 4096, uva + (1 << 20), 0))
    m += msg(38, u64(0) + struct.pack("<QQQQ", 1 << 20, 4096, uva + (1 << 20), 0))
    # Stop ring 1 and start it again: with an inflight region, that is a restore.
    m += msg(11, state(1, 0)) + msg(12, u64(1))
    m += msg(18, state(0, 0)) + msg(34)
    return m


put("dispatch", "split", session(False, False))
put("dispatch", "packed", session(True, False))
put("dispatch", "split-inflight", session(False))
put("dispatch", "packed-inflight", session(True))
put("dispatch", "split-log", session(False, False, True))
put("dispatch", "packed-log", session(True, True, True))
put("dispatch", "short", msg(1) + msg(2, u64(1 << 32)))


def iotlb(iova, size, uaddr, perm, typ):
    return msg(22, struct.pack("<QQQBB6x", iova, size, uaddr, perm, typ), flags=1 | NEED)


def iommu_session(packed):
    """ACCESS_PLATFORM: a channel, ring 0 mapped ahead, ring 1 on its miss; buffers at IOVAs;
    invalidations in the middle of a mapping and hostile IOTLB messages."""
    feats = (1 << 32) | (1 << 33) | (1 << 28) | (1 << 29) | ((1 << 34) if packed else 0)
    pf = (1 << 0) | (1 << 3) | (1 << 5) | (1 << 9) | (1 << 15) | (1 << 16)
    uva, iova = 0x10000000, 0x7000000000
    m = msg(1) + msg(15) + msg(16, u64(pf)) + msg(2, u64(feats), flags=1 | NEED) + msg(21)
    m += msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, uva, 0), flags=1 | NEED)
    m += iotlb(iova, 0x400, uva, 1, 2) + iotlb(iova + 0x1000, 0x400, uva + 0x1000, 3, 2)
    m += iotlb(iova + 0x2000, 0x400, uva + 0x2000, 1, 2)
    base = (1 << 15 | 1 << 31) if packed else 0
    for q in (0, 1):
        b = q * 0x400
        m += msg(8, state(q, 16)) + msg(10, state(q, base))
        m += msg(9, struct.pack("<IIQQQQ", q, 0, iova + b, iova + b + 0x2000, iova + b + 0x1000, 0))
        m += msg(13, u64(q)) + msg(14, u64(q)) + msg(12, u64(q)) + msg(18, state(q, 1))
    # Everything else in one read-write mapping (ring 1 starts), then a page taken out of it.
    m += iotlb(iova + 0x3000, (1 << 20) - 0x3000, uva + 0x3000, 3, 2)
    m += iotlb(iova + 0x400, 0xc00, uva + 0x400, 3, 2) + iotlb(iova + 0x2400, 0xc00, uva + 0x2400, 3, 2)
    m += iotlb(iova + 0x8000, 0x1000, 0, 0, 3) + iotlb(iova + 0x9000, 0x1000, uva + 0x9000, 1, 2)
    m += iotlb(0, 0, 0, 3, 2) + iotlb(2**64 - 16, 64, uva, 3, 2) + iotlb(iova, 4096, 1 << 40, 3, 2)
    m += iotlb(iova, 4096, uva, 9, 2) + iotlb(iova, 4096, uva, 3, 7) + iotlb(iova, 0, 0, 0, 3)
    m += msg(12, u64(0)) + msg(12, u64(1))
    m += iotlb(0, 2**64 - 1, 0, 0, 3) + msg(12, u64(0))
    m += msg(18, state(0, 0)) + msg(34)
    return m


put("dispatch", "split-iommu", iommu_session(False))
put("dispatch", "packed-iommu", iommu_session(True))

# ---- rings (tests/fuzz/ring.c layout) ----
AVAIL, USED = 1 << 7, 1 << 15
NEXT, WRITE, INDIRECT = 1, 2, 4


def ring_hdr(flags, qlog, hold=0, restart=0, base=0, key=b"\x01\x00\x00\x00\x00\x00\x00\x00"):
    return struct.pack("<BBBBI", flags, qlog, hold, restart, base) + key


def desc(addr, ln, a, b):
    return struct.pack("<QIHH", addr, ln, a, b)


def split_mem(num=16, avail_idx=4, event=False, used_idx=0, wrapbase=0):
    mem = bytearray(0x9000)
    chains = [  # head: [(addr, len, flags, next)]
        (0, [(0x400, 16, NEXT, 1), (0x480, 0x200, WRITE, 0)]),
        (2, [(0xc00, 48, INDIRECT, 0)]),
        (3, [(0x500, 0x100, WRITE, 0)]),
        (4, [(0x580, 16, NEXT, 5), (0x600, 0x100, NEXT, 6), (0x700, 1, WRITE, 0)]),
    ]
    for head, ds in chains:
        i = head
        for addr, ln, fl, nx in ds:
            mem[i * 16:i * 16 + 16] = desc(addr, ln, fl, nx)
            i = nx
    for k, (addr, ln, fl) in enumerate([(0x780, 16, NEXT), (0x800, 64, NEXT | WRITE),
                                        (0x880, 1, WRITE)]):
        mem[0xc00 + 16 * k:0xc10 + 16 * k] = desc(addr, ln, fl, k + 1)
    heads = [0, 2, 3, 4]
    struct.pack_into("<HH", mem, 0x1000, 0, (wrapbase + avail_idx) & 0xffff)
    for k in range(avail_idx):
        struct.pack_into("<H", mem, 0x1004 + 2 * ((wrapbase + k) % num), heads[k % 4])
    struct.pack_into("<HH", mem, 0x2000, 0, (wrapbase + used_idx) & 0xffff)
    if event:
        struct.pack_into("<H", mem, 0x1004 + 2 * num, 1)
    return bytes(mem)


def packed_mem(num=16):
    mem = bytearray(0x9000)
    f = AVAIL  # driver wrap counter 1: available = AVAIL set, USED clear
    slots = [(0x400, 16, 0, f | NEXT), (0x480, 0x200, 0, f | WRITE),
             (0xc00, 48, 1, f | INDIRECT), (0x500, 0x100, 2, f | WRITE),
             (0x580, 16, 3, f | NEXT), (0x600, 0x100, 3, f | NEXT), (0x700, 1, 3, f | WRITE)]
    for i, (addr, ln, bid, fl) in enumerate(slots):
        mem[i * 16:i * 16 + 16] = desc(addr, ln, bid, fl)
    for k, (addr, ln, fl) in enumerate([(0x780, 16, 0), (0x800, 64, WRITE), (0x880, 1, WRITE)]):
        mem[0xc00 + 16 * k:0xc10 + 16 * k] = desc(addr, ln, 0, fl)
    return bytes(mem)


PBASE = (1 << 15) | (1 << 31)
for name in ("ring", "inflight"):
    # inflight: a fresh (zeroed) region comes first
    r = bytes((32 + 32 * 16 + 63) & ~63) if name == "inflight" else b""
    put(name, "split", ring_hdr(0, 4, 3) + r + split_mem())
    put(name, "split-event", ring_hdr(2 | 4, 4, 1, 1) + r + split_mem(event=True))
    put(name, "split-wrap", ring_hdr(8, 4, 2, 1, 0xfffe) + r + split_mem(wrapbase=0xfffe))
    put(name, "packed", ring_hdr(1, 4, 3, 0, PBASE) + r + packed_mem())
    put(name, "packed-event", ring_hdr(1 | 2 | 4 | 8, 4, 1, 3, PBASE) + r + packed_mem())
    # restart_flags bit 2: popped and pushed in bursts
    put(name, "split-burst", ring_hdr(0, 4, 3, 4) + r + split_mem())
    put(name, "split-wrap-burst", ring_hdr(8, 4, 2, 5, 0xfffe) + r + split_mem(wrapbase=0xfffe))
    put(name, "packed-burst", ring_hdr(1 | 2, 4, 3, 4, PBASE) + r + packed_mem())

# Restorable regions: split with two heads in flight, packed with one buffer in flight and
# one push half done.
sreg = bytearray((32 + 32 * 16 + 63) & ~63)
struct.pack_into("<QHHHH", sreg, 0, 0, 1, 16, 0, 0)
for head, counter in ((0, 5), (2, 3)):
    struct.pack_into("<B5xHQ", sreg, 16 + 16 * head, 1, 0, counter)
put("inflight", "split-restore", ring_hdr(0, 4, 2, 1, 4) + bytes(sreg) + split_mem(avail_idx=4))

def packed_region(mid_push):
    r = bytearray((32 + 32 * 16 + 63) & ~63)
    used, old_used = (1, 0) if mid_push else (0, 0)
    struct.pack_into("<QHHHHHHBB", r, 0, 0, 1, 16, 2, 2, used, old_used, 1, 1)
    for i in range(16):
        struct.pack_into("<xxH", r, 32 + 32 * i, i + 1)
    # buffer id 0: entries 0 and 1 (copies of ring slots 0 and 1)
    struct.pack_into("<BBHHHQHHIQ", r, 32, 1, 0, 1, 1, 2, 1, 0, AVAIL | NEXT, 16, 0x400)
    struct.pack_into("<BBHHHQHHIQ", r, 64, 0, 0, 2, 0, 0, 0, 0, AVAIL | WRITE, 0x200, 0x480)
    return bytes(r)

put("inflight", "packed-restore", ring_hdr(1, 4, 2, 1, PBASE) + packed_region(False) + packed_mem())
put("inflight", "packed-mid-push", ring_hdr(1, 4, 2, 1, PBASE) + packed_region(True) + packed_mem())

# ---- blk requests (tests/fuzz/blkreq.c layout) ----
def blk(out, inn, lens, body, lim=6, sectors=2048, serial=7):
    lens = list(lens) + [0] * (8 - len(lens))
    return struct.pack("<BBBBI8H", out, inn, lim, serial, sectors, *lens) + body


def outhdr(t, sector=0):
    return struct.pack("<IIQ", t, 0, sector)


put("blkreq", "read", blk(1, 2, [16, 4096, 1], outhdr(0, 8)))
put("blkreq", "read-one-iov", blk(1, 1, [16, 4097], outhdr(0, 2040)))
put("blkreq", "write", blk(2, 1, [16, 1024, 1], outhdr(1, 4) + bytes(1024)))
put("blkreq", "write-hdr-and-data", blk(1, 1, [16 + 512, 1], outhdr(1, 0) + bytes(512)))
put("blkreq", "flush", blk(1, 1, [16, 1], outhdr(4)))
put("blkreq", "get-id", blk(1, 1, [16, 21], outhdr(8), serial=20))
put("blkreq", "discard", blk(2, 1, [16, 16, 1], outhdr(11) + struct.pack("<QII", 8, 8, 0)))
put("blkreq", "write-zeroes", blk(2, 1, [16, 16, 1], outhdr(13) + struct.pack("<QII", 8, 8, 1)))
put("blkreq", "split-header", blk(3, 1, [4, 4, 8, 1], outhdr(0, 1)))
put("blkreq", "unsupported", blk(1, 1, [16, 1], outhdr(99)))

# ---- net (tests/fuzz/net.c layout) ----
def net_hdr(flags, qlog=4, frames=(60, 0, 0, 0), proto=0):
    return struct.pack("<BBBB4H", flags, qlog, 0, proto, *frames)


def frame(dst=b"\x02\x76\x68\x75\x00\x00", n=60):
    f = dst + b"\x52\x54\x00\x12\x34\x56" + b"\x08\x00"
    return f + bytes(n - len(f))


def net_rings(packed, ctrl_cmds=(), q_ctrl=2, mrg=False):
    """rx (0): 4 writable buffers; tx (1): one frame with its header; ctrl (q_ctrl): commands."""
    mem = bytearray(0x1c000)

    def split_ring(q, chains):
        b = q * 0x3000
        for i, (addr, ln, fl, nx) in enumerate(chains["descs"]):
            mem[b + 16 * i:b + 16 * i + 16] = desc(addr, ln, fl, nx)
        heads = chains["heads"]
        struct.pack_into("<HH", mem, b + 0x1000, 0, len(heads))
        for k, h in enumerate(heads):
            struct.pack_into("<H", mem, b + 0x1004 + 2 * k, h)

    def packed_ring(q, chains):
        b = q * 0x3000
        for i, (addr, ln, fl, nx) in enumerate(chains["descs"]):
            bid = chains["ids"][i]
            mem[b + 16 * i:b + 16 * i + 16] = desc(addr, ln, bid, (fl & 7) | AVAIL)

    rxbuf = (0x200, 0x800, 0x1200, 0x1800)  # in ring 0's gaps (size 16: little of each part)
    rx = {"descs": [(rxbuf[i], 0x600 if not mrg else 0x40, WRITE, 0) for i in range(4)],
          "heads": [0, 1, 2, 3], "ids": [0, 1, 2, 3]}
    txf = bytes(12) + frame(dst=b"\xff" * 6)
    mem[0x3200:0x3200 + len(txf)] = txf
    tx = {"descs": [(0x3200, len(txf), 0, 0)], "heads": [0], "ids": [0]}
    cdescs, heads, ids, a = [], [], [], q_ctrl * 0x3000 + 0x200
    for k, c in enumerate(ctrl_cmds):
        mem[a:a + len(c)] = c
        heads.append(len(cdescs))
        cdescs += [(a, len(c), NEXT, len(cdescs) + 1), (a + 0x30, 1, WRITE, 0)]
        ids += [k, k]
        a += 0x40
    ctrl = {"descs": cdescs, "heads": heads, "ids": ids}
    for q, r in ((0, rx), (1, tx), (q_ctrl, ctrl)):
        (packed_ring if packed else split_ring)(q, r)
    return bytes(mem)


MAC = b"\x02\x76\x68\x75\x00\x00"
cmds = [
    bytes([0, 0, 1]),  # RX PROMISC off
    bytes([0, 1, 1]),  # RX ALLMULTI on
    bytes([0, 5, 1]),  # RX NOBCAST on
    bytes([1, 0]) + struct.pack("<I", 1) + MAC + struct.pack("<I", 1) + b"\x01\x00\x5e\x00\x00\x01",
    bytes([1, 1]) + MAC,  # MAC ADDR_SET
    bytes([4, 0]) + struct.pack("<H", 1),  # MQ VQ_PAIRS_SET 1
    bytes([9, 9]),  # unknown class
]
for packed in (0, 1):
    p = "packed" if packed else "split"
    put("net", p + "-loopback", net_hdr(packed | 16) + frame() + net_rings(packed))
    put("net", p + "-mrg", net_hdr(packed | 2 | 8, frames=(1514, 60, 0, 0)) + frame(n=1514) +
        frame() + net_rings(packed, mrg=True))
    put("net", p + "-ctrl", net_hdr(packed | 4 | 2, frames=(60, 60, 0, 0)) + frame() +
        frame(dst=b"\x01\x00\x5e\x00\x00\x01") + net_rings(packed, cmds))
    put("net", p + "-mq-ctrl", net_hdr(packed | 4 | 32 | 128) + frame() + net_rings(packed, cmds, q_ctrl=4))
    # Live migration: dirty logging on every ring, then SEND_RARP of the frame's first 6 bytes.
    put("net", p + "-log-rarp", net_hdr(packed | 2 | 128, frames=(1514, 60, 0, 0), proto=3) +
        frame(n=1514) + frame() + net_rings(packed, mrg=True))

# ---- frontend (tests/fuzz/frontend.c layout) ----
def fe_hdr(features, nvqs=1, qlog=4, flags=0):
    return struct.pack("<QBBBB", features, nvqs, qlog, flags, 0)


def ok(payload):
    return bytes([0, len(payload)]) + payload


V1, PF, PACKED, EIDX = 1 << 32, 1 << 30, 1 << 34, 1 << 29


def fe_session(packed, pf, nvqs=2):
    feats = V1 | PF | (PACKED if packed else 0) | EIDX
    s = ok(u64(feats)) + ok(u64(pf))
    if pf & 1:
        s += ok(u64(nvqs))
    if pf & (1 << 15):
        s += ok(u64(32))
    ack = ok(u64(0)) if pf & (1 << 3) else b""
    s += ack  # SET_FEATURES
    if pf & (1 << 12):
        s += bytes([0x20, 24]) + inflight(8192, nvqs, 16)  # GET_INFLIGHT_FD, 2-page memfd
        s += ack
    s += ack  # SET_MEM_TABLE
    s += ack * (5 * nvqs)  # NUM, BASE, ADDR, CALL, KICK
    s += ack * nvqs  # ENABLE
    if pf & (1 << 16):
        s += ack  # SET_STATUS
    if pf & (1 << 9):
        s += ok(struct.pack("<III", 0, 16, 0) + bytes(range(16)))
    for q in range(nvqs):
        s += ok(state(q, 0))
    return fe_hdr(feats, nvqs - 1, 4) + s


ALLPF = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 12) | (1 << 15) | (1 << 16)
put("frontend", "split", fe_session(False, (1 << 0) | (1 << 3)))
put("frontend", "packed-all", fe_session(True, ALLPF))
put("frontend", "split-all", fe_session(False, ALLPF, 1))
put("frontend", "no-ack", fe_session(False, (1 << 9)))
# The back-end channel (BACKEND_REQ): after open, CONFIG_CHANGE_MSG with NEED_REPLY (the
# callback's GET_CONFIG answered), then an IOTLB miss (refused). struct fuzz_hdr is 16 bytes in
# C (its u64 aligns it), fe_hdr() packs 12: 4 bytes of padding here.
BREQ_PF = (1 << 3) | (1 << 5) | (1 << 9)
put("frontend", "backend-req", fe_hdr(V1) + bytes(4) + ok(u64(V1 | PF)) + ok(u64(BREQ_PF)) + ok(u64(0)) +
    bytes([2]) + bytes([0, 12]) + msg(2, b"", 1 | NEED) +
    ok(struct.pack("<III", 0, 16, 0) + bytes(range(16))) +
    bytes([0, 44]) + msg(1, bytes(32), 1 | NEED) + b"\x01")  # (the 1 keeps the zeros)
put("frontend", "hangup", fe_hdr(V1) + ok(u64(V1 | PF)) + ok(u64(1 << 3)) + bytes([4]) +
    ok(u64(V1 | PF)) + ok(u64(0)))
