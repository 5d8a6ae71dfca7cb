#!/bin/bash
# A QEMU guest reaches the host stack through vhu-net --tap: the tap is moved into a network
# namespace this test creates, with the host end's address there; nothing leaves that namespace.
. "$(dirname "$0")/lib.sh"
need_guest
need ip
[ "$(id -u)" = 0 ] || skip "needs root for tap and netns"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
NS=vhu-ns-$$
TAP=vhutap$$
TAP=${TAP:0:15}
ip netns add "$NS" || skip "cannot create a network namespace"
trap 'ip netns del "$NS" 2>/dev/null; cleanup' EXIT
start_bg net "$VHU_NET" --socket-path "$T/g.sock" --tap "$TAP"
wait_file "$T/g.sock" 5 || fail "vhu-net did not listen"
for i in $(seq 1 50); do ip link show "$TAP" >/dev/null 2>&1 && break; sleep 0.1; done
ip link set "$TAP" netns "$NS" || fail "cannot move $TAP into $NS"
ip -n "$NS" link set lo up
ip -n "$NS" link set "$TAP" up
ip -n "$NS" addr add 10.0.0.2/24 dev "$TAP"
start_bg echo ip netns exec "$NS" "$BUILD/tests/udpcheck" echo 7000 60

guest_initrd g <<'GUEST'
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
ok=0
for i in $(seq 1 30); do ping -c 1 -W 1 10.0.0.2 >/dev/null && ok=1 && break; done
[ $ok = 1 ] && ping -c 3 -i 0.2 10.0.0.2 || ok=0
udpcheck send 10.0.0.2 7000 200 1400 || ok=0
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
# shellcheck disable=SC2046
qemu_start g 256 1 $(qemu_net_args "$T/g.sock" 52:54:00:00:00:0c)
if ! guest_wait g; then
	tail -20 "$T/g.log" "$T/net.log"
	fail "guest could not reach the host stack over the tap"
fi
grep -E "udpcheck|packet loss" "$T/g.log"
ip -n "$NS" -s link show "$TAP" | head -6
kill -TERM "$PID_net"
wait "$PID_net"
grep "tap" "$T/net.log"
echo "PASS: guest <-> host stack through vhu-net --tap"
