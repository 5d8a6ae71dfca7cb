#!/bin/bash
# make bench (IOTLB, ACCESS_PLATFORM): vhu-fe net-bench --mode tx (64-byte frames) into
#   A: vhu-net --sink --poll, vhu-fe --iommu (every buffer address an IOVA, translated by vhu's IOTLB)
#   B: vhu-net --sink --poll, no IOMMU
#   C: dpdk-testpmd net_vhost iommu-support=1 rxonly, vhu-fe --iommu
# in pairs run in alternating order (A B, B A, ...), median of the per-pair ratios A/B (target
# >= 0.8) and C's rate for comparison. Back-end on CPU 0, vhu-fe on CPU 1.
# Environment: BENCH_SECS (default 4), BENCH_ROUNDS (pairs, default 4).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-4}
ROUNDS=${BENCH_ROUNDS:-4}
T=$(mktemp -d /tmp/vhu-iommubench.XXXXXX)
trap 'pkill -9 -P $$ 2>/dev/null; rm -rf "$T" /var/run/dpdk/vhuib-*' EXIT

rate() { # socket [fe-args] -> Mpps (vhu-fe's messages in $T/fe.err)
	local s=$1
	shift
	taskset -c 1 "$BUILD/tools/vhu-fe" net-bench --socket-path "$s" --mode tx --size 64 \
		--duration "$SECS" --json --quiet "$@" 2>"$T/fe.err" |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["mpps"])' 2>/dev/null || echo 0
}

vhu() { # [fe-args]
	local s=$T/n.sock
	rm -f "$s"
	taskset -c 0 "$BUILD/tools/vhu-net" --socket-path "$s" --sink --poll >"$T/net.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
	rate "$s" "$@"
	kill -TERM $pid
	wait $pid 2>/dev/null
}

# testpmd's rate; when it is 0, why (from testpmd's log and vhu-fe's) goes to $T/why.
# --stats-period: without it testpmd waits for a key press on stdin, which is /dev/null for a
# background job, and exits at once (the 0 Mpps of earlier runs).
dpdk() {
	local s=$T/d.sock r
	command -v dpdk-testpmd >/dev/null || { echo 0; echo "no dpdk-testpmd installed" >"$T/why"; return; }
	rm -f "$s"
	timeout $((SECS + 30)) dpdk-testpmd -l 0-1 --main-lcore 1 --no-pci --no-huge -m 256 \
		--file-prefix=vhuib-$$ --vdev "net_vhost0,iface=$s,queues=1,iommu-support=1" \
		-- -a --nb-cores=1 --forward-mode=rxonly --total-num-mbufs=16384 --stats-period=5 \
		</dev/null >"$T/be.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do [ -S "$s" ] && break; sleep 0.1; done
	r=$(rate "$s" --iommu)
	echo "$r"
	if ! kill -0 $pid 2>/dev/null; then
		echo "testpmd had exited before the end of the run: $(grep -v '^ *$' "$T/be.log" | tail -1)" >"$T/why"
	elif awk -v r="$r" 'BEGIN {exit !(r == 0)}'; then
		echo "no frames: vhu-fe: $(tail -1 "$T/fe.err"); testpmd: $(grep -E 'failed|error|Error' "$T/be.log" | tail -1)" >"$T/why"
	fi
	kill -INT $pid 2>/dev/null
	wait $pid 2>/dev/null
}

med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "vhu bench: IOTLB (ACCESS_PLATFORM), ${ROUNDS} pairs of ${SECS}s, Mpps, 64 B tx"
printf "%-6s %14s %14s %8s %18s\n" pair "vhu --iommu" "vhu plain" "A/B" "testpmd --iommu"
: >"$T/r"
: >"$T/c"
: >"$T/notes"
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then a=$(vhu --iommu); b=$(vhu); else b=$(vhu); a=$(vhu --iommu); fi
	rm -f "$T/why"
	c=$(dpdk)
	[ -s "$T/why" ] && echo "pair $r: testpmd: $(cat "$T/why")" >>"$T/notes"
	awk -v a="$a" -v b="$b" 'BEGIN {print (b > 0 ? a/b : 0)}' >>"$T/r"
	echo "$c" >>"$T/c"
	awk -v r="$r" -v a="$a" -v b="$b" -v c="$c" 'BEGIN {printf "%-6s %14.3f %14.3f %8.3f %18.3f\n", r, a, b, (b > 0 ? a/b : 0), c}'
done
printf "%-6s %14s %14s %8.3f %18.3f  <- medians (A/B: of the pair ratios)\n" median "" "" "$(med <"$T/r")" "$(med <"$T/c")"
cat "$T/notes"
