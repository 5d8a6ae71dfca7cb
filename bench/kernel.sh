#!/bin/bash
# make bench (vhost-kernel part): inside one boot of the 6.1 test guest (the host has no
# /dev/vhost-net), two front-ends of /dev/vhost-net side by side on the same reflecting tap (vt0,
# multi_queue vnet_hdr; tc ingress matchall mirred egress redirect back to itself), one queue pair:
#   A: vhu-fe net-bench --path /dev/vhost-net --iface vt0 --mode tx --size S
#   B: dpdk-testpmd --vdev net_virtio_user0,path=/dev/vhost-net,iface=vt0,queues=1, txonly
#      --txpkts=S (--no-huge -m 256 --no-pci)
# Both send from vCPU 1 (vhu-fe pinned there, testpmd's forwarding lcore 1), through the kernel's
# vhost worker into the tap, which sends them back; neither side reads its receive ring (vhu-fe
# posts none in tx mode, testpmd's txonly never polls its 256), so the kernel drops the reflected
# frames in both runs alike. Odd rounds run A B,
# even rounds B A; the guest prints each round's rates (Mpps), and bench/pairs.py the median of the
# per-round ratios A/B. testpmd and the PMDs it needs (net_virtio, mempool_ring, with their ldd
# libraries) are copied into the test's cpio; DPDK loads PMDs from its pmds-23.0 dir.
# The guest runs under TCG: absolute rates are far below hardware, only the ratio means anything.
# Environment: BENCH_SECS (default 3), BENCH_ROUNDS (default 4), BENCH_SIZES (default "64 1518"),
# BENCH_EAL_ARGS (more EAL options for testpmd, e.g. --log-level=pmd.net.virtio.*:debug).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
SECS=${BENCH_SECS:-3}
ROUNDS=${BENCH_ROUNDS:-4}
SIZES=${BENCH_SIZES:-"64 1518"}
. "$SRC/tests/interop/lib.sh"
need_guest
need ip tc dpdk-testpmd python3
OUT=$GUEST "$SRC/scripts/mkguest.sh" >/dev/null || skip "cannot rebuild the guest"
TESTPMD=$(command -v dpdk-testpmd)
# The PMD directory the EAL scans (RTE_EAL_PMD_PATH), from where testpmd's own PMDs live.
PMDDIR=$(ldd "$TESTPMD" | grep -o '/[^ ]*/pmds-[0-9.]*/' | head -1)
[ -n "$PMDDIR" ] || PMDDIR=$(ls -d /usr/lib/x86_64-linux-gnu/dpdk/pmds-* 2>/dev/null | head -1)/
# The EAL dlopen()s every *.so there; testpmd links bus_vdev (and others) itself, which the
# loader finds by soname (*.so.23, not scanned), so only the PMDs it does not link go in as *.so.
PMDS=""
for p in bus_vdev net_virtio mempool_ring; do
	ldd "$TESTPMD" | grep -q "librte_$p\.so" && continue
	[ -e "${PMDDIR}librte_$p.so" ] || skip "no DPDK PMD $p in $PMDDIR"
	PMDS="$PMDS ${PMDDIR}librte_$p.so"
done
# libgcc_s: glibc dlopen()s it for pthread_cancel at testpmd's exit.
GCCS=$(ldconfig -p | grep -o '/[^ ]*/libgcc_s.so.1$' | head -1)
GUEST_BINS="$BUILD/tools/vhu-fe $(command -v ip) $(command -v tc) $TESTPMD$PMDS $GCCS"

guest_initrd g <<GUEST
#!/bin/sh
IP=/bin/ip TC=/bin/tc
mkdir -p /var/run /tmp
[ -c /dev/vhost-net ] || echo "VHU-BENCH-ERROR no /dev/vhost-net in the guest"
\$IP tuntap add dev vt0 mode tap vnet_hdr multi_queue
\$IP link set vt0 up
\$TC qdisc add dev vt0 ingress
\$TC filter add dev vt0 parent ffff: matchall action mirred egress redirect dev vt0
a() { # size -> Mpps
	taskset -c 1 vhu-fe net-bench --path /dev/vhost-net --iface vt0 --mode tx --size \$1 --duration $SECS \\
		--quiet --json 2>/tmp/a.err | tr -d '\n' | sed 's/.*"mpps": *\([0-9.e+-]*\).*/\1/' | grep . ||
		{ echo "VHU-BENCH-ERROR vhu-fe: \$(tail -3 /tmp/a.err | tr '\n' ' ')" >&2; echo 0; }
}
b() { # size -> Mpps: the median of testpmd's per-second Tx-pps, the first (partial) one dropped
	dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 --file-prefix=vhukb ${BENCH_EAL_ARGS:-} \\
		--vdev net_virtio_user0,path=/dev/vhost-net,iface=vt0,queues=1,queue_size=256 \\
		-- -a --nb-cores=1 --forward-mode=txonly --txpkts=\$1 --stats-period=1 \\
		--total-num-mbufs=8192 >/tmp/b.log 2>&1 &
	pid=\$!
	# Under TCG the EAL takes seconds to start: time the run from the forwarding's start.
	for i in \$(seq 1 600); do grep -aq "Press enter to exit\\|packet forwarding - ports" /tmp/b.log && break
		kill -0 \$pid 2>/dev/null || break; sleep 0.1; done
	sleep \$(($SECS + 2))
	kill -INT \$pid
	for i in \$(seq 1 30); do kill -0 \$pid 2>/dev/null || break; sleep 0.1; done
	kill -9 \$pid 2>/dev/null
	wait \$pid 2>/dev/null
	r=\$(grep -ao "Tx-pps: *[0-9]*" /tmp/b.log | awk '\$2 > 0 {v[++n]=\$2} END {for (i = (n > 1) + 1; i <= n; i++) print v[i]}' | sort -n |
		awk '{a[NR]=\$1} END {if (NR) printf "%.4f\n", a[int((NR+1)/2)]/1e6}')
	if [ -z "\$r" ]; then
		echo "VHU-BENCH-ERROR testpmd: \$(grep -iE 'error|fail|cannot|EAL:' /tmp/b.log | head -5 | tr '\n' ' ')" >&2
		r=0
	fi
	echo \$r
}
for s in $SIZES; do
	for r in \$(seq 1 $ROUNDS); do
		if [ \$((r % 2)) = 1 ]; then x=\$(a \$s); y=\$(b \$s); else y=\$(b \$s); x=\$(a \$s); fi
		echo "VHU-ROW \$s \$r \$x \$y"
	done
done
echo "--- testpmd's last log"
grep -av "^ *\(Rx\|Tx\)-pps\|^ *\(RX\|TX\)-\(packets\|errors\)\|^ *Throughput\|^ *#*$\|statistics for port" /tmp/b.log | head -${BENCH_LOG_LINES:-60}
echo "--- the guest kernel's last words"
dmesg | tail -${BENCH_DMESG_LINES:-10}
echo VHU-PASS
GUEST
n=$(echo $SIZES | wc -w)
QEMU_TIMEOUT=${QEMU_TIMEOUT:-$((120 + n * ROUNDS * (2 * SECS + 30)))} qemu_start g 1024 2
guest_wait g
pass=$?
echo "vhu bench: vhost-kernel in the 6.1 guest (TCG), ${ROUNDS} interleaved rounds of ${SECS}s per size, one pair; Mpps"
echo "  A: vhu-fe net-bench --mode tx, B: dpdk-testpmd net_virtio_user txonly; same reflecting tap vt0"
grep -E "VHU-BENCH-ERROR" "$T/g.log" | sort | uniq -c | cut -c1-400
printf "%-6s %-7s %12s %12s %8s\n" size round "A vhu-fe" "B testpmd" "A/B"
grep -o "VHU-ROW .*" "$T/g.log" | tr -d '\r' | sed 's/^VHU-ROW //' >"$T/rows"
awk '{printf "%-6s %-7s %12.4f %12.4f %8.2f\n", $1, $2, $3, $4, ($4 > 0 ? $3/$4 : 0)}' "$T/rows"
[ $pass = 0 ] && [ -s "$T/rows" ] || { tail -40 "$T/g.log"; fail "the guest did not finish the bench"; }
if ! awk '$4 > 0 {ok=1} END {exit !ok}' "$T/rows"; then
	echo "testpmd gave no rate in the guest; its log:"
	sed -n '/--- testpmd/,/VHU-PASS/p' "$T/g.log" | head -40
	fail "dpdk-testpmd could not run over vhost-kernel in the guest (see above; docs/TESTING.md)"
fi
python3 "$SRC/bench/pairs.py" vhu-fe testpmd <"$T/rows"
