#!/bin/bash
# make bench (vhost-vdpa part): inside one boot of the 6.12 test guest (the host has no VDUSE),
# vhu-fe blk-bench against vhu-blk over two transports, side by side:
#   A: vhu-fe --path /dev/vhost-vdpa-N  ->  vhu-blk --vduse vb0 --null SIZE, bound to vhost_vdpa
#      (the kernel's vhost-vdpa and VDUSE between them: IOTLB, VDUSE_INJECT_IRQ, eventfds)
#   B: vhu-fe --path /tmp/u.sock        ->  vhu-blk --socket-path /tmp/u.sock --null SIZE
#      (vhost-user: shared memory, the rings between the two processes)
# Same vhu-blk build, same --null device (no storage: the transport is what differs), one queue,
# randread at each block size; the daemons on vCPU 0, vhu-fe on vCPU 1. Odd rounds run A B, even rounds B A; the guest prints each
# round's IOPS and bench/pairs.py the median of the per-round ratios A/B. The guest runs under
# TCG: absolute rates are far below hardware, only the ratio means anything.
# Environment: BENCH_SECS (default 3), BENCH_ROUNDS (default 4), BENCH_BS (default "4096 65536"),
# BENCH_IODEPTH (default 8), BENCH_POLL_US (vhu-blk --poll-us of both daemons, default 2000: with
# vhu-blk's default 50 the rounds are bimodal, about 1 k or 100 k IOPS whichever the transport).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-3}
ROUNDS=${BENCH_ROUNDS:-4}
BSS=${BENCH_BS:-"4096 65536"}
DEPTH=${BENCH_IODEPTH:-8}
POLL=${BENCH_POLL_US:-2000}
. "$SRC/tests/interop/lib.sh"
need_guest612
need vdpa python3
[ -x "$BUILD/tools/vhu-blk" ] || skip "no vhu-blk (meson option blk)"
GUEST_BINS="$BUILD/tools/vhu-fe $BUILD/tools/vhu-blk $(command -v vdpa)"

guest_initrd g <<GUEST
#!/bin/sh
mount -t tmpfs tmp /tmp
taskset -c 0 vhu-blk --vduse vb0 --null 64M --poll-us $POLL >/tmp/a.log 2>&1 &
for i in \$(seq 1 100); do [ -e /dev/vduse/vb0 ] && break; sleep 0.1; done
/bin/vdpa dev add name vb0 mgmtdev vduse || echo "VHU-BENCH-ERROR vdpa dev add"
[ -e /sys/bus/vdpa/drivers/virtio_vdpa/vb0 ] && echo vb0 >/sys/bus/vdpa/drivers/virtio_vdpa/unbind
[ -e /sys/bus/vdpa/drivers/vhost_vdpa/vb0 ] || echo vb0 >/sys/bus/vdpa/drivers/vhost_vdpa/bind
for i in \$(seq 1 50); do ls -d /sys/bus/vdpa/devices/vb0/vhost-vdpa-* >/dev/null 2>&1 && break; sleep 0.1; done
d=/dev/\$(basename \$(ls -d /sys/bus/vdpa/devices/vb0/vhost-vdpa-* | head -1))
for i in \$(seq 1 50); do [ -c \$d ] && break; sleep 0.1; done
taskset -c 0 vhu-blk --socket-path /tmp/u.sock --null 64M --poll-us $POLL >/tmp/b.log 2>&1 &
for i in \$(seq 1 100); do [ -S /tmp/u.sock ] && break; sleep 0.1; done
run() { # path bs -> IOPS
	taskset -c 1 vhu-fe blk-bench --path \$1 --rw randread --bs \$2 --iodepth $DEPTH --duration $SECS --quiet \\
		--json 2>/tmp/e | tr -d '\n' | sed 's/.*"iops": *\([0-9.e+-]*\).*/\1/' | grep . ||
		{ echo "VHU-BENCH-ERROR \$1: \$(tail -2 /tmp/e | tr '\n' ' ')" >&2; echo 0; }
}
for bs in $BSS; do
	for r in \$(seq 1 $ROUNDS); do
		if [ \$((r % 2)) = 1 ]; then a=\$(run \$d \$bs); b=\$(run /tmp/u.sock \$bs)
		else b=\$(run /tmp/u.sock \$bs); a=\$(run \$d \$bs); fi
		echo "VHU-ROW \$bs \$r \$a \$b"
	done
done
/bin/vdpa dev del vb0
kill %1 %2
wait
cat /tmp/a.log /tmp/b.log | grep -i error | sed 's/^/VHU-BENCH-ERROR vhu-blk: /'
echo VHU-PASS
GUEST
n=$(echo $BSS | wc -w)
QEMU_TIMEOUT=${QEMU_TIMEOUT:-$((120 + n * ROUNDS * (2 * SECS + 10)))} qemu_start g 1024 2
guest_wait g
pass=$?
echo "vhu bench: vhu-fe blk-bench on vhu-blk --null in the 6.12 guest (TCG), ${ROUNDS} interleaved rounds of ${SECS}s per block size, randread, 1 queue, iodepth $DEPTH, vhu-blk --poll-us $POLL; IOPS"
echo "  A: over vhost-vdpa (vhu-blk --vduse bound to vhost_vdpa), B: over vhost-user (vhu-blk --socket-path)"
grep -a "VHU-BENCH-ERROR" "$T/g.log" | sort | uniq -c | cut -c1-300
printf "%-6s %-7s %12s %12s %8s\n" bs round "A vdpa" "B user" "A/B"
grep -ao "VHU-ROW .*" "$T/g.log" | tr -d '\r' | sed 's/^VHU-ROW //' >"$T/rows"
awk '{printf "%-6s %-7s %12.0f %12.0f %8.2f\n", $1, $2, $3, $4, ($4 > 0 ? $3/$4 : 0)}' "$T/rows"
[ $pass = 0 ] && [ -s "$T/rows" ] || { tail -30 "$T/g.log"; fail "the guest did not finish the bench"; }
python3 "$SRC/bench/pairs.py" vdpa user <"$T/rows"
