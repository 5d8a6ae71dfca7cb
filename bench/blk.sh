#!/bin/bash
# make bench (block part): vhu-fe blk-bench, 4 KiB random reads and writes at iodepth 1 and 32
# on one queue, against (A) vhu-blk --null and (B) qemu-storage-daemon on a null-co block node,
# interleaved (odd rounds A B, even rounds B A); the sender (vhu-fe) on CPU 1, the back-end on
# CPU 0. Prints IOPS and p50/p99 latency of each round and its IOPS ratio A/B, then (bench/pairs.py)
# the median of the per-round ratios, overall and per host placement, never a ratio of medians.
# Environment: BENCH_SECS (default 4), BENCH_ROUNDS (default 3).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-4}
ROUNDS=${BENCH_ROUNDS:-3}
T=$(mktemp -d /tmp/vhu-blkbench.XXXXXX)
trap 'pkill -9 -P $$ 2>/dev/null; rm -rf "$T"' EXIT
command -v qemu-storage-daemon >/dev/null || { echo "bench: qemu-storage-daemon missing (make setup)"; exit 1; }

fe() { # socket rw depth -> "iops p50 p99"
	taskset -c 1 "$BUILD/tools/vhu-fe" blk-bench --socket-path "$1" --rw "$2" --iodepth "$3" \
		--bs 4096 --duration "$SECS" --json --quiet 2>/dev/null |
		python3 -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(r["iops"], r["lat_p50_us"], r["lat_p99_us"])' 2>/dev/null ||
		echo "0 0 0"
}

run_a() {
	local s=$T/a.sock
	rm -f "$s"
	taskset -c 0 "$BUILD/tools/vhu-blk" --socket-path "$s" --null 1G >"$T/a.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
	fe "$s" "$1" "$2"
	kill -TERM $pid
	wait $pid 2>/dev/null
}

run_b() {
	local s=$T/b.sock
	rm -f "$s"
	# qsd at its best: an iothread, which busy-polls for up to 32 us before it sleeps.
	taskset -c 0 qemu-storage-daemon --object iothread,id=io0 \
		--blockdev driver=null-co,node-name=n,size=1073741824 \
		--export type=vhost-user-blk,id=e,node-name=n,addr.type=unix,addr.path="$s",writable=on,iothread=io0 \
		>"$T/b.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
	fe "$s" "$1" "$2"
	kill -TERM $pid
	wait $pid 2>/dev/null
}

echo "vhu bench: vhu-fe blk-bench 4 KiB, one queue, ${ROUNDS} interleaved rounds of ${SECS}s"
printf "%-10s %-6s %-6s %12s %9s %9s %12s %9s %9s %7s\n" rw depth round "vhu-blk IOPS" p50us p99us "qsd IOPS" p50us p99us ratio
: >"$T/rows"
for rw in randread randwrite; do
	for depth in 1 32; do
		for r in $(seq "$ROUNDS"); do
			if [ $((r % 2)) = 1 ]; then
				read -r ai ap5 ap9 <<<"$(run_a "$rw" "$depth")"
				read -r bi bp5 bp9 <<<"$(run_b "$rw" "$depth")"
			else
				read -r bi bp5 bp9 <<<"$(run_b "$rw" "$depth")"
				read -r ai ap5 ap9 <<<"$(run_a "$rw" "$depth")"
			fi
			echo "$rw-qd$depth $r $ai $bi" >>"$T/rows"
			awk -v w="$rw" -v d="$depth" -v r="$r" -v a="$ai" -v a5="$ap5" -v a9="$ap9" -v b="$bi" -v b5="$bp5" -v b9="$bp9" \
				'BEGIN {printf "%-10s %-6s %-6s %12.0f %9.1f %9.1f %12.0f %9.1f %9.1f %7.2f\n", w, d, r, a, a5, a9, b, b5, b9, (b > 0 ? a/b : 0)}'
		done
	done
done
python3 "$SRC/bench/pairs.py" vhu-blk qsd <"$T/rows"
