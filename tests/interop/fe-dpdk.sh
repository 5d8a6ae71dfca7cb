#!/bin/bash
# vhu-fe (our front-end) against dpdk-testpmd's net_vhost back-end (DPDK 22.11):
#   probe: testpmd's offer is printed by name and parses as JSON;
#   net-bench --mode loop: testpmd forwards every frame back (5tswap, macswap or io); every
#   frame must come back intact (bad 0, lost 0), on every queue pair.
#   server=1: vhu-fe listens and testpmd connects to it (net_vhost client=1), as DPDK's
#   virtio-user server mode. testpmd is started first: DPDK 22.11's vhost PMD does not
#   forward when the connection completes while its port is still being configured.
#   iommu=1: ACCESS_PLATFORM, testpmd with iommu-support=1 and vhu-fe --iommu, which maps its
#   whole memory ahead: testpmd must never miss (its IOTLB is per ring, and an update sent
#   before the rings exist was lost there: every page missed; docs/PROTOCOL.md).
# usage: fe-dpdk.sh [packed=0|1] [queues=N] [fwd=5tswap|macswap|io] [size=BYTES] [server=1] [iommu=1]
. "$(dirname "$0")/lib.sh"
need dpdk-testpmd python3
PACKED=0 QUEUES=1 FWD=5tswap SIZE=64 SERVER=0 IOMMU=0
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; queues=*) QUEUES=${a#*=} ;; fwd=*) FWD=${a#*=} ;; size=*) SIZE=${a#*=} ;; server=*) SERVER=${a#*=} ;; iommu=*) IOMMU=${a#*=} ;; esac; done
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/be.sock
PREFIX=vhu-fe-$$
start_bg tp timeout 120 stdbuf -oL dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 --file-prefix=$PREFIX \
	--vdev "net_vhost0,iface=$S,queues=$QUEUES$([ "$SERVER" = 1 ] && echo ,client=1)$([ "$IOMMU" = 1 ] && echo ,iommu-support=1)" -- -a --nb-cores=1 --rxq="$QUEUES" --txq="$QUEUES" \
	--forward-mode="$FWD" --port-topology=loop --stats-period=1 --total-num-mbufs=16384
if [ "$SERVER" = 1 ]; then
	wait_log "$T/tp.log" "start packet forwarding" 30 || { cat "$T/tp.log"; fail "testpmd did not start"; }
else
	wait_file "$S" 20 || { cat "$T/tp.log"; fail "testpmd did not create $S"; }
	"$VHU_FE" probe --socket-path "$S" --json >"$T/probe.json" || fail "probe failed"
	python3 - "$T/probe.json" <<'PY' || fail "probe output"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["type"] == "net", p["type"]
for f in ("VERSION_1", "MRG_RXBUF", "PROTOCOL_FEATURES"):
    assert f in p["features"], f
assert "REPLY_ACK" in p["protocol_features"]
assert p["queues"] >= 1
print("probe: %d features, %d protocol features, %d queues" % (len(p["features"]), len(p["protocol_features"]), p["queues"]))
PY
fi

args=(--socket-path "$S" --mode loop --duration "${FE_SECS:-3}" --queues "$QUEUES" --size "$SIZE" --json --quiet)
[ "$PACKED" = 1 ] && args+=(--packed)
[ "$SERVER" = 1 ] && args+=(--server)
[ "$IOMMU" = 1 ] && args+=(--iommu -v) # -v: the misses it answers are logged
"$VHU_FE" net-bench "${args[@]}" >"$T/bench.json" 2>"$T/bench.err"
rc=$?
cat "$T/bench.json"; grep -v "debug:" "$T/bench.err"
python3 - "$T/bench.json" "$QUEUES" <<'PY' || fail "net-bench through testpmd $FWD"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["tx_packets"] > 10000, r
assert r["bad"] == 0 and r["lost"] == 0, r
assert r["rx_packets"] == r["tx_packets"], r
PY
[ $rc = 0 ] || fail "net-bench exited with $rc"
if [ "$IOMMU" = 1 ]; then
	n=$(grep -c "IOTLB miss at" "$T/bench.err")
	[ "$n" = 0 ] || fail "testpmd missed $n times on memory vhu-fe had mapped ahead"
fi
kill -INT "$PID_tp"
wait "$PID_tp" 2>/dev/null
# testpmd's own view: frames went through every queue pair.
for q in $(seq 0 $((QUEUES - 1))); do
	n=$(grep -A1 "Forward Stats for RX Port= 0/Queue= *$q " "$T/tp.log" | grep -o "RX-packets: *[0-9]*" | awk '{print $2}' | tail -1)
	[ "$QUEUES" = 1 ] || [ "${n:-0}" -gt 0 ] || fail "testpmd shows no traffic on queue $q"
done
echo "PASS: vhu-fe -> testpmd net_vhost ($FWD) packed=$PACKED queues=$QUEUES size=$SIZE server=$SERVER iommu=$IOMMU"
