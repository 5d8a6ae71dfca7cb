#!/bin/bash
# Live migration on the vhu-net switch, and the RARP: guest B (port 0) pings guest A (port 1)
# in rounds, all along; A migrates to a destination QEMU on port 2. A does not negotiate
# GUEST_ANNOUNCE, so QEMU sends SEND_RARP on the destination. Both guests know each other's
# MAC for good (static neighbour entries, IPv6 off): B only ever sends unicast frames to A, and
# A sends nothing but answers. Without the RARP, the switch would keep sending B's pings to
# port 1 (the stopped source) and A would never answer again. With it, vhu-net moves A's MAC
# to port 2 before A sent anything there (its log says so) and B's pings resume at once.
. "$(dirname "$0")/lib.sh"
need_guest
need python3
QMP="python3 $SRC/tests/interop/qmpc.py"
MAC_A=52:54:00:00:00:0a MAC_B=52:54:00:00:00:0b

# lock=1: vhu-net --mac-lock. A's MAC is held by port 1 (A's source, still connected), and
# SEND_RARP moves it only because QEMU stopped the source's device before the destination ran.
LOCK=0
for a in "$@"; do case $a in lock=*) LOCK=${a#*=} ;; esac; done
args=()
[ "$LOCK" = 1 ] && args=(--mac-lock)
start_bg net "$VHU_NET" --socket-path "$T/b.sock" --socket-path "$T/a.sock" \
	--socket-path "$T/a2.sock" "${args[@]}"
wait_file "$T/a2.sock" 5 || fail "vhu-net did not listen"

# guest_script MY-IP PEER-IP PEER-MAC PINGER: B (PINGER=1) pings in rounds until the host
# types "done" on its console; A answers, then checks UDP through B's echo server.
guest_script() {
	guest_static_net "$1" "$2" "$3"
	cat <<GUEST
echo "features: \$(cat /sys/class/net/eth0/device/features)"
if [ $4 = 1 ]; then
	udpcheck echo 7000 120 &
	n=0
	while :; do
		n=\$((n + 1))
		ping -c 1 -W 1 $2 >/dev/null && echo "VHU-ROUND \$n ok" || echo "VHU-ROUND \$n fail"
		read -t 0.2 line && [ "\$line" = done ] && break
	done
	echo "VHU-HEARD done"
	echo VHU-PASS
else
	while ! read -t 5 line || [ "\$line" != done ]; do :; done
	echo "VHU-HEARD done"
	udpcheck send $2 7000 100 1000 && echo VHU-PASS || echo VHU-FAIL
fi
GUEST
}
guest_script 10.0.0.2 10.0.0.1 $MAC_A 1 | guest_initrd b
guest_script 10.0.0.1 10.0.0.2 $MAC_B 0 | guest_initrd a
cp "$T/a.cpio.gz" "$T/a2.cpio.gz"
mkfifo "$T/b.in" "$T/a2.in"
exec 7<>"$T/b.in" 8<>"$T/a2.in"

# qemu NAME SOCKET MAC [ARGS...]
qemu() {
	local name=$1 sock=$2 mac=$3
	shift 3
	STDIN=${STDIN:-} qemu_start "$name" "$MIG_RAM" 1 -chardev socket,id=c0,path="$sock" \
		-netdev vhost-user,id=n0,chardev=c0 \
		-device virtio-net-pci,netdev=n0,vectors=0,mac="$mac",guest_announce=off \
		-qmp unix:"$T/$name.qmp",server=on,wait=off "$@"
}
rounds() { grep -c "VHU-ROUND" "$T/$1.log"; }
dump() {
	for f in b a a2 net; do
		[ -f "$T/$f.log" ] && echo "--- $f" && tail -25 "$T/$f.log"
	done
	fail "$@"
}

STDIN=$T/b.in qemu b "$T/b.sock" $MAC_B
qemu a "$T/a.sock" $MAC_A
STDIN=$T/a2.in qemu a2 "$T/a2.sock" $MAC_A -incoming unix:"$T/mig.sock"
wait_log "$T/b.log" "VHU-ROUND .* ok" 90 || dump "B cannot reach A before the migration"
echo "t=${SECONDS}s: B reaches A"
sleep 1
$QMP "$T/a.qmp" "migrate={\"uri\": \"unix:$T/mig.sock\"}" wait:completed:60 >"$T/mig.out" 2>&1 ||
	{ cat "$T/mig.out"; dump "migration"; }
at=$(rounds b)
echo "t=${SECONDS}s: $(grep status= "$T/mig.out")"
# B's rounds after the switch-over: the first ones may have been in flight during it.
for _ in $(seq 1 100); do [ "$(rounds b)" -ge $((at + 5)) ] && break; sleep 0.1; done
end=$(rounds b) # A stops answering once it is done
console_say "$T/a2.log" 8 done || dump "guest A on the destination never read \"done\""
guest_wait a2 || dump "guest A on the destination"
echo "t=${SECONDS}s: A passed its checks on the destination"
console_say "$T/b.log" 7 done || dump "guest B never read \"done\""
guest_wait b || dump "guest B"
echo "t=${SECONDS}s: B is done"
$QMP "$T/a.qmp" quit >/dev/null
after=$(grep -a VHU-ROUND "$T/b.log" | tr -d '\r' | awk -v a="$at" -v e="$end" '$2 > a && $2 <= e')
echo "B's rounds from the switch-over on: $(echo "$after" | awk '{print $3}' | tr '\n' ' ')"
first=$(echo "$after" | grep -n " ok" | head -1 | cut -d: -f1)
[ -n "$first" ] && [ "$first" -le 3 ] || dump "B did not reach A right after the switch-over"
echo "$after" | tail -3 | grep -q fail && dump "B lost A again"
grep -E "udpcheck" "$T/a2.log"
# The MAC moved on the RARP, while A had sent nothing on its new port.
grep "SEND_RARP" "$T/net.log" | head -2
grep -q "a2.sock: info: SEND_RARP $MAC_A: RARP broadcast from this port (learned on port 1 before, 0 frames" \
	"$T/net.log" || dump "vhu-net did not move A's MAC on SEND_RARP before A sent anything"
kill -TERM "$PID_net"
wait "$PID_net"
grep -q "error" "$T/net.log" && dump "vhu-net logged an error"
echo "PASS: migration on the vhu-net switch, B reached A in round $first after it ($(grep status= "$T/mig.out"))"
