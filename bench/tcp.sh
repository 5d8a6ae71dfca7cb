#!/bin/bash
# make bench (guest-to-guest TCP): two QEMU guests (TCG, 1 vCPU, 256 MiB, vectors=0) on one
# back-end, one TCP stream A -> B of BENCH_TCP_MB MB (default 16) that tcpcheck checks byte by
# byte in B; A's tcpcheck times it (connect to B's 'K') and prints MB/s. Three set-ups, a fresh
# pair of guests for each run, in alternating order from round to round (1 2 3, then 3 2 1):
#   1 offload:   vhu-net switch, every offload QEMU offers negotiated (the default);
#   2 nooffload: vhu-net switch, offloads off on both virtio-net-pci (csum, gso, guest_*, host_*);
#   3 testpmd:   dpdk-testpmd, two net_vhost ports (tso=1, so the guests' TSO frames are carried
#                whole), io forwarding port 0 <-> port 1, --no-huge -m 256 --no-pci; guests as in 1.
# Prints each round's MB/s and bench/pairs.py's medians of the per-round ratios 1/3 and 2/3.
# Under TCG the guests' CPUs are the bottleneck and testpmd's forwarding lcore spins on one of the
# host's CPUs: only the ratios mean anything. A testpmd run without a rate is reported with its
# reason (testpmd's and the guests' last words).
# Environment: BENCH_ROUNDS (default 3), BENCH_TCP_MB (default 16), BENCH_EAL_ARGS.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
ROUNDS=${BENCH_ROUNDS:-3}
MB=${BENCH_TCP_MB:-16}
BYTES=$((MB * 1000000))
. "$SRC/tests/interop/lib.sh"
need_guest
need dpdk-testpmd python3
[ -x "$BUILD/tests/tcpcheck" ] || fail "build tests/tcpcheck first (ninja -C $BUILD)"

guest_initrd a <<GUEST
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
tcpcheck send 10.0.0.2 7001 $BYTES 90 && echo VHU-PASS || echo VHU-FAIL
GUEST
guest_initrd b <<GUEST
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.2/24 dev eth0
tcpcheck serve 7001 $BYTES 120 && echo VHU-PASS || echo VHU-FAIL
GUEST
OFF=,csum=off,gso=off,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off
OFF=$OFF,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off
NAMES=(x offload nooffload testpmd)

# run SETUP ROUND: boots the two guests on that back-end; puts A's MB/s in $T/rate, or 0 and the
# reason on stderr.
run() {
	local s=$1 r=$2 off="" rate ok=1
	rm -f "$T/a.sock" "$T/b.sock"
	if [ "$s" = 3 ]; then
		start_bg be stdbuf -o0 dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 \
			--file-prefix="tcpbench-$$-$r" ${BENCH_EAL_ARGS:-} \
			--vdev "net_vhost0,iface=$T/a.sock,queues=1,tso=1" \
			--vdev "net_vhost1,iface=$T/b.sock,queues=1,tso=1" \
			-- --nb-cores=1 --forward-mode=io --stats-period=1 --total-num-mbufs=16384
	else
		start_bg be "$VHU_NET" --socket-path "$T/a.sock" --socket-path "$T/b.sock"
		[ "$s" = 2 ] && off=$OFF
	fi
	wait_file "$T/b.sock" 60 || {
		echo "round $r ${NAMES[$s]}: the back-end did not listen: $(tail -3 "$T/be.log" | tr '\n' ' ')" >&2
		kill -9 "$PID_be" 2>/dev/null
		wait "$PID_be" 2>/dev/null
		PIDS=()
		echo 0 >"$T/rate"
		return
	}
	# shellcheck disable=SC2046
	QEMU_TIMEOUT=${QEMU_TIMEOUT:-240} qemu_start b 256 1 $(qemu_net_args "$T/b.sock" 52:54:00:00:00:0b)$off
	# shellcheck disable=SC2046
	QEMU_TIMEOUT=${QEMU_TIMEOUT:-240} qemu_start a 256 1 $(qemu_net_args "$T/a.sock" 52:54:00:00:00:0a)$off
	guest_wait a || ok=0
	guest_wait b || ok=0
	rate=$(grep -ao "tcpcheck: sent .* (\([0-9.]*\) MB/s), confirmed" "$T/a.log" | sed 's/.*(\([0-9.]*\) MB.*/\1/')
	kill -"$([ "$s" = 3 ] && echo INT || echo TERM)" "$PID_be"
	for _ in $(seq 1 50); do kill -0 "$PID_be" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$PID_be" 2>/dev/null
	wait "$PID_be" 2>/dev/null
	# All of this run's processes are reaped: lib.sh's cleanup must not kill their ids, reused by now.
	PIDS=()
	# Not vhu-*: lib.sh's cleanup in other tests (other sessions too) removes /var/run/dpdk/vhu-*,
	# the likely cause of one testpmd start that failed with "Cannot clear runtime directory".
	rm -rf "/var/run/dpdk/tcpbench-$$-$r"
	if [ "$s" = 3 ]; then
		# testpmd's forward statistics of port 0 (guest A's side) at its exit: A's BYTES over that
		# many frames; more than the 1448 B an MTU-sized segment holds means whole TSO frames.
		awk '/Forward statistics for port 0/ {p = 1; next} /statistics for/ {p = 0}
			p && /RX-packets/ {n = $2} END {if (n) printf "round %d testpmd: port 0 received %d frames from A, %.0f B of stream each on average\n", R, n, B / n}' \
			R="$r" B="$BYTES" "$T/be.log" >&2
	fi
	if [ $ok = 0 ] || [ -z "$rate" ]; then
		{
			echo "round $r ${NAMES[$s]}: no rate; guest A, guest B, back-end last words:"
			grep -ah "tcpcheck\|VHU-\|virtio\|eth0" "$T/a.log" "$T/b.log" | tail -8
			grep -aiv "pps\|packets\|errors\|throughput\|^ *#*$\|statistics" "$T/be.log" | tail -12
		} | sed 's/^/  /' >&2
		rate=0
	fi
	echo "$rate" >"$T/rate"
}

echo "vhu bench: guest-to-guest TCP, ${MB} MB A -> B per run, two QEMU 7.2 guests (TCG, 1 vCPU each), ${ROUNDS} rounds; MB/s"
echo "  offload: vhu-net switch, offloads negotiated; nooffload: vhu-net switch, offloads off;"
echo "  testpmd: dpdk-testpmd net_vhost x2 (tso=1) io forwarding"
printf "%-6s %-7s %10s %10s %10s %8s %8s\n" MB round offload nooffload testpmd "1/3" "2/3"
: >"$T/rows"
for r in $(seq 1 "$ROUNDS"); do
	declare -A v=()
	if [ $((r % 2)) = 1 ]; then order="1 2 3"; else order="3 2 1"; fi
	for s in $order; do
		run "$s" "$r"
		v[$s]=$(cat "$T/rate")
	done
	echo "$MB $r ${v[1]} ${v[2]} ${v[3]}" >>"$T/rows"
	awk '{printf "%-6s %-7s %10.2f %10.2f %10.2f %8.2f %8.2f\n", $1, $2, $3, $4, $5,
		($5 > 0 ? $3/$5 : 0), ($5 > 0 ? $4/$5 : 0)}' <<<"$MB $r ${v[1]} ${v[2]} ${v[3]}"
	unset v
done
if ! awk '$5 > 0 {ok=1} END {exit !ok}' "$T/rows"; then
	echo "testpmd carried no stream in any round (reasons above; docs/TESTING.md)"
fi
# A round with a run that gave no rate would skew the medians: only complete rounds go in.
n=$(awk '$3 > 0 && $4 > 0 && $5 > 0' "$T/rows" | wc -l)
[ "$n" = "$ROUNDS" ] || echo "$((ROUNDS - n)) of $ROUNDS rounds left out of the medians (a run without a rate)"
awk '$3 > 0 && $4 > 0 && $5 > 0' "$T/rows" | python3 "$SRC/bench/pairs.py" offload nooffload testpmd
