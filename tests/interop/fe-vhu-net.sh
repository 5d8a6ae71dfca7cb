#!/bin/bash
# vhu-fe against vhu-net --loopback (both ends ours, two processes): probe, then
# net-bench --mode loop: every frame comes back intact and in order, on every queue pair.
# huge=1: vhu-fe's shared memory on hugetlbfs (reserves 2 MiB pages and mounts a hugetlbfs in
# the test's directory; needs root).
# iommu=1: vhu-fe --iommu (ACCESS_PLATFORM, IOVAs, mapped ahead); iommu=strict: --iommu-strict
# (transmit pages mapped on IOTLB misses, every completed buffer invalidated).
# mix=BYTES: net-bench --mix (every fourth transmit buffer sends frames of BYTES): vhu-net copies
# frames of up to 256 bytes out of a batch first, frames of up to 2 KiB one at a time into slots
# of their own, both delivered at the batch's end, and longer ones into one buffer, delivered at
# once; it must still deliver each queue's frames in the order they were sent.
# mtu=N: vhu-net --mtu N (the config's mtu, which net-bench takes), for a mix past 1500 bytes.
# usage: fe-vhu-net.sh [packed=0|1] [queues=N] [size=BYTES] [poll=0|1] [huge=0|1] [iommu=0|1|strict]
#        [mix=BYTES] [mtu=N]
. "$(dirname "$0")/lib.sh"
need python3
PACKED=0 QUEUES=1 SIZE=64 POLL=0 HUGE=0 IOMMU=0 MIX=0 MTU=0 MIN_TX=10000
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; queues=*) QUEUES=${a#*=} ;; size=*) SIZE=${a#*=} ;; poll=*) POLL=${a#*=} ;; huge=*) HUGE=${a#*=} ;; iommu=*) IOMMU=${a#*=} ;; mix=*) MIX=${a#*=} ;; mtu=*) MTU=${a#*=} ;; esac; done
fe_extra=()
[ "$MIX" != 0 ] && fe_extra+=(--mix "$MIX")
if [ "$HUGE" = 1 ]; then
	[ "$(id -u)" = 0 ] || skip "hugepages need root"
	free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
	if [ "${free:-0}" -lt 16 ]; then
		total=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
		echo $((total + 16)) >/proc/sys/vm/nr_hugepages
		RESTORE_HP=$total
	fi
	mkdir -p "$T/hp"
	mount -t hugetlbfs none "$T/hp" || skip "cannot mount hugetlbfs"
	trap 'umount "$T/hp" 2>/dev/null; [ -n "${RESTORE_HP:-}" ] && echo "$RESTORE_HP" >/proc/sys/vm/nr_hugepages; cleanup' EXIT
	fe_extra+=(--hugepages "$T/hp")
fi
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/net.sock
extra=()
[ "$POLL" = 1 ] && extra+=(--poll)
[ "$MTU" != 0 ] && extra+=(--mtu "$MTU")
start_bg net "$VHU_NET" --socket-path "$S" --loopback --queues "$QUEUES" "${extra[@]}"
wait_file "$S" 5 || fail "vhu-net did not listen"
"$VHU_FE" probe --socket-path "$S" --json >"$T/probe.json" || fail "probe failed"
python3 - "$T/probe.json" "$QUEUES" <<'PY' || { cat "$T/probe.json"; fail "probe output"; }
import json, sys
p = json.load(open(sys.argv[1]))
assert p["type"] == "net"
for f in ("VERSION_1", "MRG_RXBUF", "RING_PACKED", "EVENT_IDX", "IN_ORDER", "CTRL_VQ", "MQ"):
    assert f in p["features"], f
for f in ("MQ", "REPLY_ACK", "CONFIG", "CONFIGURE_MEM_SLOTS", "STATUS"):
    assert f in p["protocol_features"], f
assert p["queues"] == int(sys.argv[2]) and p["max_mem_slots"] == 509
assert p["config"]["max_virtqueue_pairs"] == int(sys.argv[2])
PY
args=(--socket-path "$S" --mode loop --duration "${FE_SECS:-2}" --queues "$QUEUES" --size "$SIZE" --json --quiet "${fe_extra[@]}")
[ "$PACKED" = 1 ] && args+=(--packed)
[ "$IOMMU" = 1 ] && args+=(--iommu)
[ "$IOMMU" = strict ] && { args+=(--iommu-strict); MIN_TX=100; }
"$VHU_FE" net-bench "${args[@]}" >"$T/bench.json" 2>"$T/bench.err"
rc=$?
cat "$T/bench.json" "$T/bench.err"
python3 - "$T/bench.json" "$MIN_TX" <<'PY' || fail "net-bench through vhu-net"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["tx_packets"] > int(sys.argv[2]) and r["bad"] == 0 and r["lost"] == 0, r
assert r["rx_packets"] == r["tx_packets"], r
assert r["reordered"] == 0, r
PY
[ $rc = 0 ] || fail "net-bench exited with $rc"
kill -TERM "$PID_net"
wait "$PID_net" 2>/dev/null
for q in $(seq 1 2 $((2 * QUEUES - 1))); do
	n=$(grep "queue $q tx" "$T/net.log" | awk '{print $5}')
	[ "${n:-0}" -gt 0 ] || { cat "$T/net.log"; fail "no traffic on tx queue $q"; }
done
grep -q "error" "$T/net.log" && { cat "$T/net.log"; fail "vhu-net logged an error"; }
echo "PASS: vhu-fe -> vhu-net packed=$PACKED queues=$QUEUES size=$SIZE poll=$POLL huge=$HUGE iommu=$IOMMU mix=$MIX mtu=$MTU"
