#!/bin/bash
# QEMU 7.2 guest (TCG), virtio-net-pci on a vhost-user netdev through vhu-net --loopback:
# ping and UDP payloads come back intact. Variants: split/packed, 1/2 queue pairs, mrg_rxbuf.
# usage: qemu-net.sh [packed=on|off] [queues=1|2] [mrg=on|off]
. "$(dirname "$0")/lib.sh"
need_guest
PACKED=off QUEUES=1 MRG=on
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; queues=*) QUEUES=${a#*=} ;; mrg=*) MRG=${a#*=} ;; esac; done

S=$T/net.sock
NETV=${NETV:-}
start_bg net "$VHU_NET" --socket-path "$S" --loopback --queues "$QUEUES" $NETV
wait_file "$S" 5 || fail "vhu-net did not listen"

guest_initrd g <<GUEST
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
ethtool -l eth0 2>/dev/null
echo "features: \$(cat /sys/class/net/eth0/device/features)"
echo "queues: \$(ls /sys/class/net/eth0/queues | tr '\n' ' ')"
ok=1
ping -c 5 -i 0.2 -W 2 -s 1400 10.0.0.2 || ok=0
ping -c 3 -i 0.2 -W 2 10.0.0.2 || ok=0
# UDP: the reflector swaps addresses and ports, so a connected socket gets its datagram back.
udpcheck send 10.0.0.2 7777 200 64 || ok=0
udpcheck send 10.0.0.2 7777 100 1472 || ok=0
udpcheck send 10.0.0.2 7777 20 8000 || ok=0
# With 2 vCPUs and mq, each CPU transmits on its own queue pair.
if [ $QUEUES -gt 1 ]; then
	taskset 1 udpcheck send 10.0.0.2 7001 100 200 || ok=0
	taskset 2 udpcheck send 10.0.0.2 7002 100 200 || ok=0
fi
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST

NETDEV="vhost-user,id=n0,chardev=c0"
DEV="virtio-net-pci,netdev=n0,vectors=0,mac=52:54:00:12:34:56,packed=$PACKED,mrg_rxbuf=$MRG"
[ "$QUEUES" -gt 1 ] && NETDEV="$NETDEV,queues=$QUEUES" && DEV="$DEV,mq=on"
qemu_start g 256 "$QUEUES" -chardev socket,id=c0,path="$S" -netdev "$NETDEV" -device "$DEV"
if ! guest_wait g; then
	cat "$T/g.log"
	echo "--- vhu-net"
	cat "$T/net.log"
	fail "guest traffic through vhu-net (packed=$PACKED queues=$QUEUES mrg=$MRG)"
fi
grep -E "features|queues|udpcheck|packet loss" "$T/g.log"
# Check the guest negotiated what was asked for.
feat=$(grep "features:" "$T/g.log" | tr -d '\r' | awk '{print $2}')
bit() { [ "${feat:$1:1}" = 1 ]; }
[ "$PACKED" = on ] && ! bit 34 && fail "guest did not negotiate RING_PACKED"
[ "$PACKED" = off ] && bit 34 && fail "guest negotiated RING_PACKED unasked"
[ "$MRG" = on ] && ! bit 15 && fail "guest did not negotiate MRG_RXBUF"
[ "$MRG" = off ] && bit 15 && fail "guest negotiated MRG_RXBUF unasked"
kill -TERM "$PID_net"
wait "$PID_net" 2>/dev/null
if [ "$QUEUES" -gt 1 ]; then
	grep -q "rx-1" "$T/g.log" || fail "guest has one queue pair, expected $QUEUES"
	for q in 1 3; do
		n=$(grep "queue $q tx" "$T/net.log" | awk '{print $5}')
		[ "${n:-0}" -gt 0 ] || fail "no traffic on tx queue $q"
	done
fi
cat "$T/net.log" | grep -E "queue|error" | head -20
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: qemu-net packed=$PACKED queues=$QUEUES mrg=$MRG"
