#!/bin/bash
# vhu-fe blk-bench --verify against vhu-blk on an image (both ends ours, two processes):
# GET_ID, FLUSH, WRITE_ZEROES, DISCARD once, then random reads and writes with every read of a
# written block compared; 0 errors, 0 verify errors; the image holds what was written.
# iommu=1: vhu-fe --iommu (ACCESS_PLATFORM, IOVAs, mapped ahead); iommu=strict: --iommu-strict
# (every page mapped on an IOTLB miss, every completed request invalidated).
# user=NAME: vhu-blk runs with --user NAME (after opening the image and the socket, as root):
# it must run as NAME without capabilities, its socket must be NAME's, and all of the above
# still hold.
# usage: fe-vhu-blk.sh [queues=N] [packed=0|1] [null=0|1] [iommu=0|1|strict] [user=NAME]
. "$(dirname "$0")/lib.sh"
need python3
QUEUES=1 PACKED=0 NULL=0 IOMMU=0 MIN_IOS=1000 USER_=
for a in "$@"; do case $a in queues=*) QUEUES=${a#*=} ;; packed=*) PACKED=${a#*=} ;; null=*) NULL=${a#*=} ;; iommu=*) IOMMU=${a#*=} ;; user=*) USER_=${a#*=} ;; esac; done
UARGS=()
if [ -n "$USER_" ]; then
	[ "$(id -u)" = 0 ] || skip "user=: needs root"
	id "$USER_" >/dev/null 2>&1 || skip "no user $USER_"
	UARGS=(--user "$USER_")
fi
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
S=$T/blk.sock
IMG=$T/disk.img
truncate -s 64M "$IMG"
if [ "$NULL" = 1 ]; then
	start_bg blk "$VHU_BLK" --socket-path "$S" --null 64M --queues "$QUEUES" "${UARGS[@]}"
else
	start_bg blk "$VHU_BLK" --socket-path "$S" --image "$IMG" --queues "$QUEUES" "${UARGS[@]}"
fi
wait_file "$S" 5 || { cat "$T/blk.log"; fail "vhu-blk did not listen"; }
if [ -n "$USER_" ]; then
	wait_log "$T/blk.log" "running as uid" 5 || { cat "$T/blk.log"; fail "vhu-blk did not say it dropped root"; }
	check_user vhu-blk "$PID_blk" "$(id -u "$USER_")" "$(id -g "$USER_")"
	[ "$(stat -c %U "$S")" = "$USER_" ] || fail "the socket is $(stat -c %U "$S")'s, not $USER_'s"
fi
args=(--socket-path "$S" --rw randrw --iodepth 16 --queues "$QUEUES" --duration "${FE_SECS:-2}" --json --quiet)
[ "$PACKED" = 1 ] && args+=(--packed)
[ "$IOMMU" = 1 ] && args+=(--iommu)
[ "$IOMMU" = strict ] && { args+=(--iommu-strict); MIN_IOS=100; }
[ "$NULL" = 1 ] || args+=(--verify --dump-state "$T/state.txt")
"$VHU_FE" blk-bench "${args[@]}" >"$T/bench.json" 2>"$T/bench.err"
rc=$?
cat "$T/bench.json" "$T/bench.err"
python3 - "$T/bench.json" "$NULL" "$MIN_IOS" <<'PY' || fail "blk-bench against vhu-blk"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["ios"] > int(sys.argv[3]) and r["errors"] == 0 and r["verify_errors"] == 0, r
assert sys.argv[2] == "1" or r["reads_verified"] > 0, r
PY
[ $rc = 0 ] || fail "blk-bench exited with $rc"
kill -TERM "$PID_blk"
wait "$PID_blk"
rc=$?
# 0, also after --user: under ASan+UBSan a report or a leak (LeakSanitizer) fails here.
[ $rc = 0 ] || { tail -20 "$T/blk.log"; fail "vhu-blk exited with status $rc on SIGTERM"; }
if [ "$NULL" != 1 ]; then
	python3 - "$IMG" "$T/state.txt" <<'PY' || fail "image content"
import struct, sys
img = open(sys.argv[1], "rb")
lines = open(sys.argv[2]).read().splitlines()
bs = int(lines[0].split()[2])
n = 0
for line in lines[1:]:
    blk, gen = map(int, line.split())
    img.seek(blk * bs)
    w = struct.unpack("<3Q", img.read(24))
    assert w[0] == 0x564855424c4b0000 | (blk & 0xffff) and w[1] == blk and w[2] == gen, (blk, gen, w)
    n += 1
assert n > 0
print("image: %d blocks as last written" % n)
PY
fi
grep -qi "error" "$T/blk.log" && { cat "$T/blk.log"; fail "vhu-blk logged an error"; }
echo "PASS: vhu-fe -> vhu-blk queues=$QUEUES packed=$PACKED null=$NULL"
