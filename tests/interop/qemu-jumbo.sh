#!/bin/bash
# Jumbo frames between two QEMU guests through vhu-net: both virtio-net devices have
# host_mtu=9000, so QEMU sends NET_SET_MTU 9000 for each port and both guests' eth0 come up at
# MTU 9000; a TCP stream each way (tcpcheck checks every byte, the kernels every checksum).
#  - B has no offload at all (no CSUM, no TSO either way): its TCP segments are plain frames of
#    up to 9014 bytes, and A (split ring) takes them into mergeable receive buffers
#    (MRG_RXBUF: Linux posts buffers of about 1.5 KiB, so a jumbo frame spans several).
#  - A sends TSO; B takes no GSO, so vhu-net cuts A's frames into segments of A's gso_size
#    (A's MSS, about 8.9 KB) and checksums them on their way to B (packed ring, mergeable
#    buffers too).
# Frames longer than 1514 bytes reached each side when bytes/packets of its receive queue (the
# frames vhu-net put there) is above 1514: no guest here can receive a GSO frame (B takes none,
# and A gets only B's plain frames).
. "$(dirname "$0")/lib.sh"
need_guest
BYTES=${TCP_BYTES:-16000000}
tcp_guests_start 9000 9000
NONE=,csum=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off
NONE=$NONE,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off
# shellcheck disable=SC2046
qemu_start a 256 1 $(qemu_net_args "$T/a.sock" 52:54:00:00:00:0a),host_mtu=9000
# shellcheck disable=SC2046
qemu_start b 256 1 $(qemu_net_args "$T/b.sock" 52:54:00:00:00:0b),host_mtu=9000,packed=on$NONE
tcp_guests_wait
grep -E "^port|offloads:|queue 0 rx" "$T/net.log"
# The receive queue (queue 0) of port $1 (1: A, 2: B): "packets P bytes B".
rxq() { grep "queue 0 rx:" "$T/net.log" | sed -n "$1p" | awk '{print $5, $7}'; }
for side in 1:A 2:B; do
	read -r pk by <<<"$(rxq "${side%%:*}")"
	[ "${pk:-0}" -gt 0 ] || fail "nothing reached ${side#*:}"
	echo "to ${side#*:}: $pk frames, $((by / pk)) bytes on average"
	[ $((by / pk)) -gt 1514 ] || fail "no frame longer than 1514 bytes reached ${side#*:}"
done
read -r _ b_seg _ b_bad <<<"$(grep "offloads:" "$T/net.log" | sed -n 2p | awk '{print $4, $7, $10, $13}')"
[ "${b_seg:-0}" -gt 0 ] || fail "no GSO frame from A was segmented for B"
[ "${b_bad:-1}" = 0 ] || fail "vhu-net refused B's header"
for s in a b; do
	grep -q "$s.sock: info: NET_SET_MTU: MTU 9000" "$T/net.log" || fail "no NET_SET_MTU for $s"
done
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: TCP with MTU 9000 between two guests through vhu-net, jumbo frames both ways"
