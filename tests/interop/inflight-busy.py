#!/usr/bin/env python3
"""Count the requests a stopped back-end holds in flight, from its INFLIGHT_SHMFD region.

usage: inflight-busy.py PID split|packed

PID must be stopped (SIGSTOP) first: this waits until every thread of it is, so that no
request completes while the region is read. The region is the memfd the back-end created for
GET_INFLIGHT_FD (named "vhu-inflight") and maps after SET_INFLIGHT_FD, one 64-aligned block of 32 + 32 * desc_num bytes per
queue; each block starts with the header of vhost-user.rst's "Inflight I/O tracking"
(features u64, version u16, desc_num u16, ...), its descriptors follow (split: 16-byte header,
16-byte entries; packed: 32 and 32), and an entry's first byte is its inflight flag.

Prints "queue Q: N in flight" per queue with a version-1 header, and exits 0 when some request
is in flight, 1 when none is, 2 when the region cannot be found or read.
"""
import os
import struct
import sys
import time


def all_stopped(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


def region(pid):
    # The back-end keeps a mapping of the region, not its fd.
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5].startswith("/memfd:vhu-inflight"):
                with open(f"/proc/{pid}/map_files/{fields[0]}", "rb") as m:
                    return m.read()
    return None


def main():
    pid, layout = int(sys.argv[1]), sys.argv[2]
    hdr, ent = (16, 16) if layout == "split" else (32, 32)
    deadline = time.monotonic() + 2
    while not all_stopped(pid):
        if time.monotonic() > deadline:
            print(f"inflight-busy: {pid} did not stop", file=sys.stderr)
            return 2
        time.sleep(0.001)
    buf = region(pid)
    if buf is None:
        print(f"inflight-busy: {pid} maps no vhu-inflight memfd", file=sys.stderr)
        return 2
    total, off, q = 0, 0, 0
    while off + hdr <= len(buf):
        version, num = struct.unpack_from("<HH", buf, off + 8)
        if version != 1 or num == 0:
            break
        busy = sum(1 for i in range(num) if buf[off + hdr + i * ent] == 1)
        print(f"queue {q}: {busy} in flight")
        total += busy
        off += (32 + 32 * num + 63) & ~63
        q += 1
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
