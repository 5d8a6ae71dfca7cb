#!/bin/bash
# Two QEMU guests on one vhu-net switch exchange a TCP stream each way, every byte checked by
# tcpcheck in the receiving guest. Guest A negotiates every offload; guest B sends with them
# (CSUM, HOST_TSO4/6) but takes none (guest_csum=off, guest_tso4/6=off, guest_ecn=off,
# guest_ufo=off on its virtio-net-pci). So:
#  - B -> A: B's TSO frames cross the switch whole (port A counts "gso whole");
#  - A -> B: A's TSO frames are segmented and checksummed by vhu-net on the way to B (port B
#    counts "gso segmented"); B's kernel checks every TCP checksum (InCsumErrors must stay 0).
# No header may be refused ("bad header" 0). A also has host_mtu=9000: QEMU sends NET_SET_MTU,
# which vhu-net takes for that port, and A's eth0 comes up with MTU 9000.
. "$(dirname "$0")/lib.sh"
need_guest
BYTES=${TCP_BYTES:-16000000}
tcp_guests_start 9000 1500
OFF=,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off
# shellcheck disable=SC2046
qemu_start a 256 1 $(qemu_net_args "$T/a.sock" 52:54:00:00:00:0a),host_mtu=9000
# shellcheck disable=SC2046
qemu_start b 256 1 $(qemu_net_args "$T/b.sock" 52:54:00:00:00:0b)$OFF
tcp_guests_wait
grep -E "^port|offloads:" "$T/net.log"
# "  offloads: gso whole W gso segmented S csum completed C bad header B oversize O", per port
counters() { grep "offloads:" "$T/net.log" | sed -n "$1p" | awk '{print $4, $7, $10, $13}'; }
read -r a_whole a_seg _ a_bad <<<"$(counters 1)"
read -r _ b_seg _ b_bad <<<"$(counters 2)"
[ "${a_whole:-0}" -gt 0 ] || fail "no GSO frame from B reached A whole"
[ "${a_seg:-1}" = 0 ] || fail "frames to A (which takes GSO) were segmented"
[ "${b_seg:-0}" -gt 0 ] || fail "no GSO frame from A was segmented for B"
[ "${a_bad:-1}" = 0 ] && [ "${b_bad:-1}" = 0 ] || fail "vhu-net refused a guest's header"
grep -q "a.sock: info: NET_SET_MTU: MTU 9000" "$T/net.log" || fail "no NET_SET_MTU for A"
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: TCP between two guests through vhu-net, GSO whole to A, segmented in software to B"
