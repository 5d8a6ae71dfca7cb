#!/bin/bash
# make bench (dirty logging, live migration):
#  1. What logging costs when it is off: vhu-net --sink and vhu-blk --null of this tree against
#     the same daemons built from BENCH_BASE (default 7909017, the tree before dirty logging),
#     driven by this tree's vhu-fe (tx 64-byte frames; 4 KiB randread at iodepth 32), in pairs
#     run in alternating order (A B, B A, ...); prints each pair and the median of the per-pair
#     ratios new/base (1.00 = no cost).
#  2. Logging on against off, this tree: the same runs with vhu-fe --log (the front-end does
#     what a VMM does during a migration: a log, LOG_ALL, VHOST_VRING_F_LOG), new/off ratios.
# Back-end on CPU 0, vhu-fe on CPU 1. Environment: BENCH_SECS (default 4), BENCH_ROUNDS
# (pairs, default 4), BENCH_BASE (a git revision; empty skips part 1).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-4}
ROUNDS=${BENCH_ROUNDS:-4}
BASE=${BENCH_BASE-7909017}
T=$(mktemp -d /tmp/vhu-logbench.XXXXXX)
trap 'pkill -9 -P $$ 2>/dev/null; rm -rf "$T"' EXIT

json() { # key: reads vhu-fe's last JSON line on stdin
	python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1" 2>/dev/null || echo 0
}

wait_sock() { for _ in $(seq 50); do [ -S "$1" ] && return; sleep 0.1; done; }

# net BUILD_DIR [fe-args...] -> Mpps
net() {
	local b=$1 s=$T/n.sock
	shift
	rm -f "$s"
	taskset -c 0 "$b/tools/vhu-net" --socket-path "$s" --sink --poll >"$T/net.log" 2>&1 &
	local pid=$!
	wait_sock "$s"
	taskset -c 1 "$BUILD/tools/vhu-fe" net-bench --socket-path "$s" --mode tx --size 64 \
		--duration "$SECS" --json --quiet "$@" 2>/dev/null | json mpps
	kill -TERM $pid
	wait $pid 2>/dev/null
}

# blk BUILD_DIR [fe-args...] -> IOPS
blk() {
	local b=$1 s=$T/b.sock
	shift
	rm -f "$s"
	taskset -c 0 "$b/tools/vhu-blk" --socket-path "$s" --null 1G >"$T/blk.log" 2>&1 &
	local pid=$!
	wait_sock "$s"
	taskset -c 1 "$BUILD/tools/vhu-fe" blk-bench --socket-path "$s" --rw randread --iodepth 32 \
		--bs 4096 --duration "$SECS" --json --quiet "$@" 2>/dev/null | json iops
	kill -TERM $pid
	wait $pid 2>/dev/null
}

med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# pairs TITLE CMD_A... -- CMD_B...: ROUNDS pairs in alternating order, ratio A/B per pair.
pairs() {
	local title=$1 a=() b=() r x y
	shift
	while [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	: >"$T/ratios"
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then x=$("${a[@]}"); y=$("${b[@]}"); else y=$("${b[@]}"); x=$("${a[@]}"); fi
		awk -v t="$title" -v r="$r" -v x="$x" -v y="$y" 'BEGIN {printf "%-34s %-6s %12.3f %12.3f %7.3f\n", t, r, x, y, (y > 0 ? x/y : 0)}'
		awk -v x="$x" -v y="$y" 'BEGIN {print (y > 0 ? x/y : 0)}' >>"$T/ratios"
	done
	printf "%-34s %-6s %12s %12s %7.3f  <- median of the pair ratios\n" "$title" median "" "" "$(med <"$T/ratios")"
}

echo "vhu bench: dirty logging, ${ROUNDS} pairs of ${SECS}s (net: Mpps, 64 B tx; blk: IOPS, 4 KiB randread qd32)"
printf "%-34s %-6s %12s %12s %7s\n" case pair A B A/B
if [ -n "$BASE" ]; then
	if git -C "$SRC" cat-file -e "$BASE^{commit}" 2>/dev/null; then
		mkdir -p "$T/base"
		git -C "$SRC" archive "$BASE" | tar -x -C "$T/base"
		if meson setup "$T/base/build" "$T/base" -Dtests=false >/dev/null 2>&1 &&
			ninja -C "$T/base/build" tools/vhu-net tools/vhu-blk >/dev/null 2>&1; then
			pairs "net, logging off: new / $BASE" net "$BUILD" -- net "$T/base/build"
			pairs "blk, logging off: new / $BASE" blk "$BUILD" -- blk "$T/base/build"
		else
			echo "bench: cannot build $BASE, part 1 skipped"
		fi
	else
		echo "bench: revision $BASE not in this clone, part 1 skipped"
	fi
fi
if "$BUILD/tools/vhu-fe" net-bench --help 2>&1 | grep -q -- '--log\b'; then
	pairs "net: logging on / off" net "$BUILD" --log -- net "$BUILD"
	pairs "blk: logging on / off" blk "$BUILD" --log -- blk "$BUILD"
fi
