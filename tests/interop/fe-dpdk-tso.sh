#!/bin/bash
# vhu-fe net-bench --tso (loop mode) through dpdk-testpmd's net_vhost (DPDK 22.11), tso=1,
# io forwarding (one port forwards to itself): TCP/IPv4 GSO frames (HOST_TSO4, NEEDS_CSUM)
# with GUEST_CSUM/GUEST_TSO4 negotiated. What DPDK does (docs/PROTOCOL.md): every frame comes
# back whole, its TCP checksum completed in software by the vhost PMD, but with an empty
# virtio-net header (no GSO type, no NEEDS_CSUM): the dequeue turns the header into mbuf RX
# flags (LRO, L4 checksum none), which io forwarding does not turn into TX flags, so the
# enqueue has nothing to write. vhu-fe checks every such frame whole (checksums, lengths,
# sequence, bytes) and counts it as tso_nohdr; the test asserts all came back that way.
# usage: fe-dpdk-tso.sh [packed=0|1]
. "$(dirname "$0")/lib.sh"
need dpdk-testpmd python3
PACKED=0
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; esac; done
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/be.sock
start_bg tp timeout 60 stdbuf -oL dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 --file-prefix=vhu-fe-$$ \
	--vdev "net_vhost0,iface=$S,queues=1,tso=1" -- -a --nb-cores=1 --rxq=1 --txq=1 \
	--forward-mode=io --port-topology=loop --stats-period=1 --total-num-mbufs=16384
wait_file "$S" 20 || { cat "$T/tp.log"; fail "testpmd did not create $S"; }
args=(--socket-path "$S" --mode loop --tso --duration "${FE_SECS:-3}" --json --quiet)
[ "$PACKED" = 1 ] && args+=(--packed)
"$VHU_FE" net-bench "${args[@]}" >"$T/bench.json" 2>"$T/bench.err"
rc=$?
cat "$T/bench.json" "$T/bench.err"
python3 - "$T/bench.json" <<'PY' || fail "net-bench --tso through testpmd net_vhost tso=1"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["tx_packets"] > 800 and r["bad"] == 0 and r["lost"] == 0, r
assert r["rx_packets"] == r["tx_packets"], r
# Whole frames (8 segments each), none with a GSO header, none segmented.
assert r["tso_nohdr"] * 8 == r["rx_packets"], r
assert r["tso_whole"] == 0 and r["tso_segments"] == 0, r
PY
[ $rc = 0 ] || fail "net-bench exited with $rc"
kill -INT "$PID_tp"
wait "$PID_tp" 2>/dev/null
# testpmd's own view: it forwarded whole frames (one mbuf chain each), as many as vhu-fe sent.
n=$(grep -A2 "Accumulated forward statistics" "$T/tp.log" | grep -o "TX-packets: *[0-9]*" | awk '{print $2}' | tail -1)
want=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(r["tx_packets"]//8)' "$T/bench.json")
[ "${n:-0}" = "$want" ] || fail "testpmd forwarded ${n:-0} frames, vhu-fe sent $want"
echo "PASS: vhu-fe --tso -> testpmd net_vhost tso=1 (io): frames back whole, without a GSO header, checked"
