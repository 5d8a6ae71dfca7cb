#!/bin/bash
# make bench (front-end part): the front-end's packet rate, side by side in one run, one busy
# core each side (sender on CPU 1, back-end on CPU 0), frames of each size, rounds A B C
# interleaved:
#   A: vhu-fe net-bench --mode tx      -> vhu-net --sink --poll
#   B: vhu-fe net-bench --mode tx      -> dpdk-testpmd net_vhost rxonly
#   C: dpdk-testpmd virtio-user txonly -> dpdk-testpmd net_vhost rxonly (DPDK to DPDK)
# Odd rounds run A B C A, even rounds C B A C: a round whose two runs of its first side differ by
# more than BENCH_STEADY (1.2x) saw the placement change, and counts only in the "all" lines. Prints each round's rates and ratios A/C, B/C, then
# (bench/pairs.py) the median of the per-round ratios over all rounds and per host placement (fast /
# slow, told apart by C's rate), never a ratio of medians. Placement measured, as in run.sh:
# bench/xcore probes the CPUs 4 times a second, every per-second reading of each sender (vhu-fe's
# progress lines, testpmd's Tx-pps) is stamped, and pairs.py --placed prints the per-round ratios
# over the readings taken wholly "near" or wholly "far".
# Environment: BENCH_SECS (default 8), BENCH_ROUNDS (default 4), BENCH_SIZES, BENCH_PACKED=1.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-8}
ROUNDS=${BENCH_ROUNDS:-4}
SIZES=${BENCH_SIZES:-"64 1518"}
PACKED=${BENCH_PACKED:-0}
T=$(mktemp -d /tmp/vhu-febench.XXXXXX)
trap 'pkill -9 -P $$ 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"; rm -rf /var/run/dpdk/vhufb-*' EXIT
command -v dpdk-testpmd >/dev/null || { echo "bench: dpdk-testpmd missing (make setup)"; exit 1; }
FEPACKED=()
[ "$PACKED" = 1 ] && FEPACKED=(--packed)
XCORE=$BUILD/bench/xcore
[ -x "$XCORE" ] || { echo "bench: $XCORE missing (make)"; exit 1; }
"$XCORE" --every 250 >"$T/probes" &
XPID=$!
: >"$T/samples"

# testpmd net_vhost rxonly on CPU 0 (its forwarding lcore), socket $1
dpdk_be() {
	rm -f "$1"
	timeout $((SECS + 30)) dpdk-testpmd -l 0-1 --main-lcore 1 --no-pci --no-huge -m 256 \
		--file-prefix=vhufb-be-$$ --vdev "net_vhost0,iface=$1,queues=1" \
		-- -a --nb-cores=1 --forward-mode=rxonly --stats-period=5 \
		--total-num-mbufs=16384 >"$T/be.log" 2>&1 &
	BE=$!
	for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.1; done
}

fe_rate() { # socket size name -> Mpps from vhu-fe's JSON; its per-second readings to samples
	taskset -c 1 "$BUILD/tools/vhu-fe" net-bench --socket-path "$1" --mode tx --size "$2" \
		--duration "$SECS" --json "${FEPACKED[@]}" 2> >(python3 -u "$SRC/bench/stamp.py" >"$T/fe-$3.log") |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["mpps"])' 2>/dev/null || echo 0
	sleep 0.2 # the stamping filter's last lines
	# "TIME  N.Ns  tx R Mpps  rx R Mpps", the first second dropped
	awk -v s="$2" -v r="$ROUND" -v n="$3" '$3 == "tx" && $5 == "Mpps" {print s, r, n, $1, $4 * 1e6}' \
		"$T/fe-$3.log" | tail -n +2 >>"$T/samples"
}

run_a() {
	local s=$T/a.sock
	rm -f "$s"
	taskset -c 0 "$BUILD/tools/vhu-net" --socket-path "$s" --sink --poll >"$T/net.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
	fe_rate "$s" "$1" A
	kill -TERM $pid
	wait $pid 2>/dev/null
}

run_b() {
	dpdk_be "$T/b.sock"
	fe_rate "$T/b.sock" "$1" B
	kill -INT $BE
	wait $BE 2>/dev/null
}

run_c() {
	dpdk_be "$T/c.sock"
	timeout $((SECS + 20)) stdbuf -oL dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 \
		--file-prefix=vhufb-fe-$$ \
		--vdev "net_virtio_user0,path=$T/c.sock,queues=1,queue_size=256,mrg_rxbuf=1,in_order=1,packed_vq=$PACKED" \
		-- -a --nb-cores=1 --forward-mode=txonly --txpkts="$1" --stats-period=1 \
		--total-num-mbufs=16384 > >(python3 -u "$SRC/bench/stamp.py" >"$T/fe.log") 2>&1 &
	local pid=$!
	sleep $((SECS + 3))
	kill -INT $pid
	wait $pid 2>/dev/null
	kill -INT $BE
	wait $BE 2>/dev/null
	sleep 0.2
	# the first reading with frames in it dropped, as below
	awk -v s="$1" -v r="$ROUND" '{for (i = 1; i < NF; i++) if ($i == "Tx-pps:" && $(i + 1) > 0) print s, r, "C", $1, $(i + 1)}' \
		"$T/fe.log" | tail -n +2 >>"$T/samples"
	# per-second readings once it runs (the first, partial one dropped)
	grep -o "Tx-pps: *[0-9]*" "$T/fe.log" | awk '$2 > 0 {print $2}' | tail -n +2 | sort -n |
		awk '{a[NR]=$1} END {if (NR) printf "%.4f\n", a[int((NR+1)/2)]/1e6; else print 0}'
}

echo "vhu bench: front-ends, ${ROUNDS} interleaved rounds of ${SECS}s per size, packed=$PACKED; Mpps"
echo "  (odd rounds run A B C A, even rounds C B A C; ratios per round, then the median of the ratios per placement)"
printf "%-6s %-7s %14s %14s %14s %8s %8s\n" size round "A fe->vhu-net" "B fe->dpdk" "C dpdk->dpdk" "A/C" "B/C"
: >"$T/rows"
for size in $SIZES; do
	for r in $(seq "$ROUNDS"); do
		ROUND=$r
		# The round's first run again at its end: when the two agree, the host kept one
		# placement through the round (bench/pairs.py: "steady").
		if [ $((r % 2)) = 1 ]; then
			a=$(run_a "$size"); b=$(run_b "$size"); c=$(run_c "$size"); a2=$(run_a "$size")
			read -r a st < <(python3 "$SRC/bench/pairs.py" --steady "$a" "$a2")
		else
			c=$(run_c "$size"); b=$(run_b "$size"); a=$(run_a "$size"); c2=$(run_c "$size")
			read -r c st < <(python3 "$SRC/bench/pairs.py" --steady "$c" "$c2")
		fi
		echo "$size $r $a $b $c $st" >>"$T/rows"
		awk -v s="$size" -v r="$r" -v a="$a" -v b="$b" -v c="$c" -v st="$st" 'BEGIN {printf "%-6s %-7s %14.3f %14.3f %14.3f %8.2f %8.2f%s\n", s, r, a, b, c, (c > 0 ? a/c : 0), (c > 0 ? b/c : 0), (st == 1 ? "" : "  (placement changed)")}'
	done
done
python3 "$SRC/bench/pairs.py" A B C <"$T/rows"
kill $XPID
wait $XPID 2>/dev/null
echo "per measured placement (bench/xcore; A fe->vhu-net, B fe->dpdk, C dpdk->dpdk):"
python3 "$SRC/bench/pairs.py" --placed "$T/probes" A B C <"$T/samples"
