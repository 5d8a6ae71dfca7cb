#!/bin/bash
# A QEMU guest reaches the host stack through vhu-net --tap: the tap is moved into a network
# namespace this test creates, with the host end's address there; nothing leaves that namespace.
# Then a TCP stream each way (tcpcheck, every byte checked): with IFF_VNET_HDR and the guest's
# offloads, GSO frames cross the tap whole in both directions.
# user=NAME: vhu-net runs with --user NAME once its socket and tap are set up (as in make
# check): it must run as NAME without capabilities, its socket must be NAME's.
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
USER_=
for a in "$@"; do case $a in user=*) USER_=${a#*=} ;; esac; done
UARGS=()
if [ -n "$USER_" ]; then
	id "$USER_" >/dev/null 2>&1 || skip "no user $USER_"
	UARGS=(--user "$USER_")
fi
start_bg net "$VHU_NET" --socket-path "$T/g.sock" --tap "$TAP" "${UARGS[@]}"
wait_file "$T/g.sock" 5 || fail "vhu-net did not listen"
if [ -n "$USER_" ]; then
	wait_log "$T/net.log" "running as uid" 5 || { cat "$T/net.log"; fail "vhu-net did not say it dropped root"; }
	check_user vhu-net "$PID_net" "$(id -u "$USER_")" "$(id -g "$USER_")"
	[ "$(stat -c %U "$T/g.sock")" = "$USER_" ] || fail "the socket is not $USER_'s"
fi
for i in $(seq 1 50); do ip link show "$TAP" >/dev/null 2>&1 && break; sleep 0.1; done
ip link set "$TAP" netns "$NS" || fail "cannot move $TAP into $NS"
ip -n "$NS" link set lo up
ip -n "$NS" link set "$TAP" up
ip -n "$NS" addr add 10.0.0.2/24 dev "$TAP"
start_bg echo ip netns exec "$NS" "$BUILD/tests/udpcheck" echo 7000 60
TCP_BYTES=${TCP_BYTES:-8000000}
start_bg tcpserve ip netns exec "$NS" "$BUILD/tests/tcpcheck" serve 7001 "$TCP_BYTES" 60

sed "s/TCP_BYTES/$TCP_BYTES/g" <<'GUEST' | guest_initrd g
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
ok=0
for i in $(seq 1 30); do ping -c 1 -W 1 10.0.0.2 >/dev/null && ok=1 && break; done
[ $ok = 1 ] && ping -c 3 -i 0.2 10.0.0.2 || ok=0
udpcheck send 10.0.0.2 7000 200 1400 || ok=0
tcpcheck send 10.0.0.2 7001 TCP_BYTES 30 || ok=0
tcpcheck serve 7002 TCP_BYTES 40 || ok=0
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
# shellcheck disable=SC2046
qemu_start g 256 1 $(qemu_net_args "$T/g.sock" 52:54:00:00:00:0c)
# The host's stream to the guest, once the guest's server listens.
start_bg tcpsend ip netns exec "$NS" "$BUILD/tests/tcpcheck" send 10.0.0.1 7002 "$TCP_BYTES" 150
if ! guest_wait g; then
	tail -20 "$T/g.log" "$T/net.log"
	fail "guest could not reach the host stack over the tap"
fi
grep -E "udpcheck|tcpcheck|packet loss" "$T/g.log"
wait "$PID_tcpserve" || fail "the guest's TCP stream did not reach the host intact"
wait "$PID_tcpsend" || fail "the host's TCP stream did not reach the guest intact"
cat "$T/tcpserve.log" "$T/tcpsend.log"
ip -n "$NS" -s link show "$TAP" | head -6
kill -TERM "$PID_net"
wait "$PID_net" || fail "vhu-net exited with status $? on SIGTERM"
grep -E "tap|offloads:" "$T/net.log"
# GSO frames crossed whole both ways: host stack -> guest (port 0), guest -> tap (port 1).
for port in 1 2; do
	w=$(grep "offloads:" "$T/net.log" | sed -n "${port}p" | awk '{print $4, $13}')
	read -r whole bad <<<"$w"
	[ "${whole:-0}" -gt 0 ] || fail "no GSO frame crossed whole to port $((port - 1))"
	[ "${bad:-1}" = 0 ] || fail "vhu-net refused a header"
done
echo "PASS: guest <-> host stack through vhu-net --tap"
