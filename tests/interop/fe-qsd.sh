#!/bin/bash
# vhu-fe against qemu-storage-daemon's vhost-user-blk export (QEMU 7.2) on a raw image:
#   probe: the config (capacity, block size, queues) reads back as exported;
#   blk-bench --verify: GET_ID, FLUSH, WRITE_ZEROES, DISCARD checked once, then random reads
#   and writes with every read of a written block compared: 0 errors, 0 verify errors;
#   afterwards the host reads the image and finds every block as blk-bench last wrote it.
# usage: fe-qsd.sh [queues=N] [rw=randrw|randwrite|...] [iodepth=N] [bs=BYTES]
. "$(dirname "$0")/lib.sh"
need qemu-storage-daemon python3
QUEUES=1 RW=randrw DEPTH=16 BS=4096
for a in "$@"; do case $a in queues=*) QUEUES=${a#*=} ;; rw=*) RW=${a#*=} ;; iodepth=*) DEPTH=${a#*=} ;; bs=*) BS=${a#*=} ;; esac; done
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/blk.sock
IMG=$T/disk.img
truncate -s 64M "$IMG"
start_bg qsd qemu-storage-daemon \
	--blockdev driver=file,node-name=file0,filename="$IMG",cache.direct=on,aio=native \
	--blockdev driver=raw,node-name=disk,file=file0 \
	--export type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,addr.path="$S",writable=on,num-queues="$QUEUES"
wait_file "$S" 10 || { cat "$T/qsd.log"; fail "qemu-storage-daemon did not listen"; }

"$VHU_FE" probe --socket-path "$S" --json >"$T/probe.json" || fail "probe failed"
python3 - "$T/probe.json" "$QUEUES" <<'PY' || { cat "$T/probe.json"; fail "probe output"; }
import json, sys
p = json.load(open(sys.argv[1]))
assert p["type"] == "blk", p["type"]
assert "VERSION_1" in p["features"] and "CONFIG" in p["protocol_features"]
c = p["config"]
assert c["capacity"] == 64 * 2048, c
assert c["num_queues"] == int(sys.argv[2]), c
assert c["blk_size"] >= 512, c
print("probe: capacity %d sectors, blk_size %d, %d queue(s)" % (c["capacity"], c["blk_size"], c["num_queues"]))
PY

"$VHU_FE" blk-bench --socket-path "$S" --rw "$RW" --iodepth "$DEPTH" --bs "$BS" --queues "$QUEUES" \
	--duration "${FE_SECS:-3}" --verify --dump-state "$T/state.txt" --json --quiet >"$T/bench.json" 2>"$T/bench.err"
rc=$?
cat "$T/bench.json" "$T/bench.err"
python3 - "$T/bench.json" <<'PY' || fail "blk-bench against qemu-storage-daemon"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["ios"] > 1000, r
assert r["errors"] == 0 and r["verify_errors"] == 0, r
assert r["reads_verified"] > 0, r
PY
[ $rc = 0 ] || fail "blk-bench exited with $rc"
kill -TERM "$PID_qsd"
wait "$PID_qsd" 2>/dev/null
# The host's view of the image: every block blk-bench wrote last holds that generation.
python3 - "$IMG" "$T/state.txt" <<'PY' || fail "image content"
import struct, sys
img = open(sys.argv[1], "rb")
lines = open(sys.argv[2]).read().splitlines()
bs = int(lines[0].split()[2])
MAGIC = 0x564855424c4b0000
n = 0
for line in lines[1:]:
    blk, gen = map(int, line.split())
    img.seek(blk * bs)
    d = img.read(bs)
    w = struct.unpack("<%dQ" % (bs // 8), d)
    assert w[0] == MAGIC | (blk & 0xffff) and w[1] == blk and w[2] == gen, (blk, gen, w[:3])
    for i in range(3, bs // 8):
        assert w[i] == ((blk << 32 | gen) ^ ((i * 0x9E3779B97F4A7C15) & (2**64 - 1))) & (2**64 - 1), (blk, i)
    n += 1
assert n > 0
print("image: %d blocks as last written" % n)
PY
echo "PASS: vhu-fe -> qemu-storage-daemon queues=$QUEUES rw=$RW iodepth=$DEPTH bs=$BS"
