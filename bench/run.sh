#!/bin/bash
# make bench: the back-end's packet rate, side by side in one run.
#   A: dpdk-testpmd net_virtio_user txonly -> vhu-net --sink --poll
#   B: dpdk-testpmd net_virtio_user txonly -> dpdk-testpmd net_vhost rxonly
# BENCH_LOOP=1: both directions, the back-end's receive path (copies into the front-end's
# receive buffers) as well as its transmit path:
#   A: dpdk-testpmd net_virtio_user flowgen (sends, and takes back and frees what comes in)
#      <-> vhu-net --loopback --poll
#   B: the same <-> dpdk-testpmd net_vhost, 5tswap forwarding with --port-topology=loop
#   and the rate is the frames that came back (the sender's Rx-pps). 5tswap, because it does
#   what vhu-net --loopback does to each frame (MACs, IPv4 addresses and L4 ports swapped, in
#   a private copy): the same work on both sides. BENCH_DPDK_FWD=io gives net_vhost less work
#   than vhu-net (frames sent back untouched), a stricter reference that make bench runs too.
# One busy core each side (sender's forwarding lcore on CPU 1, back-end on CPU 0). Runs are
# interleaved A B A B ... for each frame size; the rate is the sender's steady Tx-pps (Rx-pps
# with BENCH_LOOP=1: the median of its per-second readings, the first ones dropped), identical
# tooling for both back-ends.
# The host flips between a fast and a slow cross-CPU regime from run to run (see PROTOCOL-NOTES),
# so each size prints the per-round ratios, then (bench/pairs.py) the median of the per-round ratios
# over all rounds and per placement (fast / slow, told apart by net_vhost's rate, the DPDK to DPDK
# reference), never a ratio of medians.
# Each round ends with its first run again; a round whose two runs of that side differ by more
# than BENCH_STEADY (1.2x) saw the placement change and counts only in the "all" lines, the
# others also in the "steady" ones (the rate of the repeated side: the mean of its two runs).
# Placement measured: bench/xcore probes the CPUs' cache-line round trip 4 times a second all
# through the run, every reading of the sender is stamped with its time, and pairs.py --placed
# prints the per-round ratios over the readings taken wholly "near" or wholly "far" (the host
# moves the CPUs several times a minute, inside runs too).
# Environment: BENCH_SECS (per run, default 8), BENCH_ROUNDS (default 6), BENCH_SIZES,
# BENCH_PACKED=1 for packed rings, BENCH_LOOP=1 both directions, BENCH_VHU_ARGS more vhu-net options,
# BENCH_KEEP=DIR keeps the probes and stamped readings there.
# Who holds the rate: testpmd counts a frame its tx burst could not place (the ring full of
# buffers the back-end has not handed back) as TX-dropped; the last lines give, per side, the
# median share of such refused attempts over its runs. A back-end that keeps up leaves few (the
# sender's own cost sets the rate); one that does not leaves many (its own rate sets it).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-8}
ROUNDS=${BENCH_ROUNDS:-6}
SIZES=${BENCH_SIZES:-"64 1518"}
PACKED=${BENCH_PACKED:-0}
LOOP=${BENCH_LOOP:-0}
if [ "$LOOP" = 1 ]; then
	S_FWD=flowgen RATE=Rx-pps: VHU_MODE=--loopback B_FWD="${BENCH_DPDK_FWD:-5tswap} --port-topology=loop"
else
	S_FWD=txonly RATE=Tx-pps: VHU_MODE=--sink B_FWD=rxonly
fi
T=$(mktemp -d /tmp/vhu-bench.XXXXXX)
trap 'pkill -9 -P $$ 2>/dev/null; rm -rf "$T" /var/run/dpdk/vhub-*' EXIT
command -v dpdk-testpmd >/dev/null || { echo "bench: dpdk-testpmd missing (make setup)"; exit 1; }

XCORE=$BUILD/bench/xcore
[ -x "$XCORE" ] || { echo "bench: $XCORE missing (make)"; exit 1; }
"$XCORE" --every 250 >"$T/probes" &
XPID=$!
: >"$T/samples"
: >"$T/refused"

# sender SOCKET SIZE LOG NAME: txonly (flowgen) for SECS seconds; prints the median Tx-pps
# (Rx-pps). Its readings, stamped, go to $T/samples as "SIZE ROUND NAME TIME RATE" (ROUND from
# the caller).
sender() {
	timeout $((SECS + 20)) stdbuf -oL dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 \
		--file-prefix=vhub-fe-$$ \
		--vdev "net_virtio_user0,path=$1,queues=1,queue_size=256,mrg_rxbuf=1,in_order=1,packed_vq=$PACKED" \
		-- -a --nb-cores=1 --forward-mode=$S_FWD --txpkts="$2" --stats-period=1 \
		--total-num-mbufs=16384 > >(python3 -u "$SRC/bench/stamp.py" >"$3") 2>&1 &
	local pid=$!
	sleep $((SECS + 2))
	kill -INT $pid
	wait $pid 2>/dev/null
	sleep 0.2 # the stamping filter's last lines
	grep -m1 "TX-dropped:" "$3" | awk -v s="$2" -v n="$4" '{for (i = 1; i < NF; i++) {
		if ($i == "TX-dropped:") d = $(i + 1); if ($i == "TX-total:") t = $(i + 1) }
		if (t > 0) print s, n, d / t}' >>"$T/refused"
	# Each reading once: stamped into samples, and the run's median from the same lines.
	local rd
	rd=$(grep "$RATE" "$3" | tail -n +3 |
		awk -v s="$2" -v r="$ROUND" -v n="$4" -v k="$RATE" '{for (i = 1; i < NF; i++) if ($i == k) print s, r, n, $1, $(i + 1)}')
	[ -n "$rd" ] && echo "$rd" >>"$T/samples"
	awk '{print $5}' <<<"$rd" | sort -n |
		awk '$1 != "" {a[++n]=$1} END {if (n) print a[int((n+1)/2)]; else print 0}'
}

run_vhu() { # size
	local s=$T/vhu.sock
	rm -f "$s"
	taskset -c 0 "$BUILD/tools/vhu-net" --socket-path "$s" $VHU_MODE --poll ${BENCH_VHU_ARGS:-} >"$T/vhu.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do [ -S "$s" ] && break; sleep 0.1; done
	sender "$s" "$1" "$T/fe-a.log" A
	kill -TERM $pid
	wait $pid 2>/dev/null
}

run_dpdk() { # size
	local s=$T/dpdk.sock
	rm -f "$s"
	timeout $((SECS + 30)) dpdk-testpmd -l 0-1 --main-lcore 1 --no-pci --no-huge -m 256 \
		--file-prefix=vhub-be-$$ --vdev "net_vhost0,iface=$s,queues=1" \
		-- -a --nb-cores=1 --forward-mode=$B_FWD --stats-period=5 \
		--total-num-mbufs=16384 >"$T/be.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do [ -S "$s" ] && break; sleep 0.1; done
	sender "$s" "$1" "$T/fe-b.log" B
	kill -INT $pid
	wait $pid 2>/dev/null
}

if [ "$LOOP" = 1 ]; then
	echo "vhu bench: testpmd virtio-user flowgen through vhu-net --loopback vs through testpmd net_vhost (${B_FWD%% *}, loop); frames back"
else
	echo "vhu bench: testpmd virtio-user txonly into vhu-net vs into testpmd net_vhost"
fi
echo "  ${ROUNDS} interleaved rounds of ${SECS}s per size (odd rounds A B A, even B A B), packed_vq=$PACKED; Mpps"
printf "%-8s %-7s %12s %12s %8s\n" size round "A vhu-net" "B dpdk-vhost" "A/B"
: >"$T/rows"
for size in $SIZES; do
	for r in $(seq "$ROUNDS"); do
		ROUND=$r
		# The round's first run again at its end: when the two agree, the host kept one
		# placement through the round (bench/pairs.py: "steady").
		if [ $((r % 2)) = 1 ]; then
			a=$(run_vhu "$size"); b=$(run_dpdk "$size"); a2=$(run_vhu "$size")
			read -r a st < <(python3 "$SRC/bench/pairs.py" --steady "$a" "$a2")
		else
			b=$(run_dpdk "$size"); a=$(run_vhu "$size"); b2=$(run_dpdk "$size")
			read -r b st < <(python3 "$SRC/bench/pairs.py" --steady "$b" "$b2")
		fi
		echo "$size $r $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f %.4f", a/1e6, b/1e6}') $st" >>"$T/rows"
		awk -v s="$size" -v r="$r" -v a="$a" -v b="$b" -v st="$st" 'BEGIN {printf "%-8s %-7s %12.3f %12.3f %8.2f%s\n", s, r, a/1e6, b/1e6, (b > 0 ? a/b : 0), (st == 1 ? "" : "  (placement changed)")}'
	done
done
python3 "$SRC/bench/pairs.py" A B <"$T/rows"
kill $XPID
wait $XPID 2>/dev/null
echo "per measured placement (bench/xcore; A vhu-net, B dpdk-vhost):"
python3 "$SRC/bench/pairs.py" --placed "$T/probes" A B <"$T/samples"
echo "sender's tx attempts refused by a full ring (testpmd TX-dropped / TX-total), median over runs:"
sort -k1,1n -k2,2 -k3,3g "$T/refused" | awk '
	function out() { if (n) printf "  size %-6s %-2s %5.1f %% (%d runs)\n", k1, k2, 100 * v[int((n + 1) / 2)], n }
	$1 != k1 || $2 != k2 { out(); k1 = $1; k2 = $2; n = 0 }
	{ v[++n] = $3 }
	END { out() }'
# (an if: a last command that fails would stop make bench's other benchmarks)
if [ -n "${BENCH_KEEP:-}" ]; then
	# make bench's second run (BENCH_LOOP=1) keeps its files next to the first's.
	k=$BENCH_KEEP
	[ "$LOOP" = 1 ] && k=$BENCH_KEEP/loop
	mkdir -p "$k" && cp "$T/probes" "$T/samples" "$T/refused" "$k"/
fi
