#!/bin/bash
# dpdk-testpmd net_virtio_user -> vhu-net --loopback: every frame comes back intact.
#   1. rxonly + "start tx_first" with verbose output: one burst per queue of 64 B, then of
#      1518 B frames; every frame must come back, with MACs swapped, its length unchanged and
#      still parsing as Ethernet/IPv4/UDP; byte counts equal.
#   2. io forwarding for a few seconds: the first burst circulates; TX - RX must stay the
#      burst in flight (nothing lost) while millions of frames go round.
# usage: dpdk-net.sh [packed=0|1] [queues=N] [mrg=0|1] [in_order=0|1]
. "$(dirname "$0")/lib.sh"
need dpdk-testpmd
PACKED=0 QUEUES=1 MRG=1 INORDER=1
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; queues=*) QUEUES=${a#*=} ;; mrg=*) MRG=${a#*=} ;; in_order=*) INORDER=${a#*=} ;; esac; done

S=$T/net.sock
start_bg net "$VHU_NET" --socket-path "$S" --loopback --queues "$QUEUES"
wait_file "$S" 5 || fail "vhu-net did not listen"

PREFIX=vhu-$$
KEEP=${KEEP:-}
{
	echo "set verbose 1"
	echo "set fwd rxonly"
	echo "set txpkts 64"
	echo "start tx_first"
	sleep 1
	echo "stop"
	echo "set txpkts 1518"
	echo "start tx_first"
	sleep 1
	echo "stop"
	echo "set verbose 0"
	echo "set fwd io"
	echo "set txpkts 64"
	echo "start tx_first"
	sleep "${DPDK_SECS:-3}"
	echo "stop"
	sleep 0.5
	echo "quit"
} | timeout 60 stdbuf -o0 -e0 dpdk-testpmd -l 0-1 --no-pci --no-huge -m 256 --file-prefix=$PREFIX \
	--vdev "net_virtio_user0,path=$S,queues=$QUEUES,queue_size=256,mrg_rxbuf=$MRG,in_order=$INORDER,packed_vq=$PACKED" \
	-- -i --nb-cores=1 --rxq="$QUEUES" --txq="$QUEUES" --total-num-mbufs=16384 >"$T/tp.log" 2>&1
rc=$?
[ -n "$KEEP" ] && cp "$T/tp.log" /tmp/t/tp-keep.log
[ $rc = 0 ] || { tail -30 "$T/tp.log"; fail "testpmd exited with $rc"; }
grep -q "Port 0: link state change event\|Port 0: " "$T/tp.log" || fail "testpmd has no port"

# Accumulated blocks, in order: burst 64, burst 1518, io run.
mapfile -t RX < <(grep -A2 "Accumulated forward statistics" "$T/tp.log" | grep -o "RX-packets: *[0-9]*" | awk '{print $2}')
mapfile -t TX < <(grep -A3 "Accumulated forward statistics" "$T/tp.log" | grep -o "TX-packets: *[0-9]*" | awk '{print $2}')
[ ${#RX[@]} = 3 ] && [ ${#TX[@]} = 3 ] || { tail -40 "$T/tp.log"; fail "testpmd statistics missing"; }
# vhu-net's counters (printed as it exits) first: a failure below says where frames stopped.
kill -TERM "$PID_net"
wait "$PID_net"
grep -E "queue|port" "$T/net.log"
BURST=$((32 * QUEUES))
for i in 0 1; do
	[ "${TX[$i]}" = "$BURST" ] || fail "burst $i: testpmd sent ${TX[$i]}, expected $BURST"
	[ "${RX[$i]}" = "${TX[$i]}" ] || {
		# All three runs' statistics: did the frames come back later (a wakeup missed) or
		# never?
		echo "RX ${RX[*]} TX ${TX[*]}"
		grep -c "  src=" "$T/tp.log"
		fail "burst $i: sent ${TX[$i]}, got back ${RX[$i]}"
	}
done
# Every received frame: swapped MACs (testpmd sends to 02:00:00:00:00:00), right length, UDP.
n64=$(grep -c "src=02:00:00:00:00:00 - dst=.*type=0x0800 - length=64 .*L3_IPV4 L4_UDP" "$T/tp.log")
n1518=$(grep -c "src=02:00:00:00:00:00 - dst=.*type=0x0800 - length=1518 .*L3_IPV4 L4_UDP" "$T/tp.log")
nall=$(grep -c "  src=" "$T/tp.log")
echo "frames back intact: $n64 of 64 B, $n1518 of 1518 B ($nall printed)"
[ "$n64" = "$BURST" ] && [ "$n1518" = "$BURST" ] && [ "$nall" = $((2 * BURST)) ] ||
	fail "frames came back altered"
lost=$((TX[2] - RX[2]))
echo "io run: TX ${TX[2]} RX ${RX[2]} in flight $lost"
[ "${RX[2]}" -gt 10000 ] || { tail -20 "$T/tp.log"; fail "io run moved only ${RX[2]} frames"; }
[ "$lost" -ge 0 ] && [ "$lost" -le "$BURST" ] || fail "io run lost $lost frames"
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: dpdk-net packed=$PACKED queues=$QUEUES mrg=$MRG in_order=$INORDER"
