#!/bin/bash
# A guest that sends with another guest's MAC, on the vhu-net switch. Guest B (port 1) pings
# guest A (port 0), then sets its own MAC to A's, sends a few frames with it, takes its own
# MAC back and pings A again. Both know each other's MAC for good (static neighbour entries,
# IPv6 off), so A sends nothing but answers: the switch learns A's MAC only from those answers.
#   lock=1 (vhu-net --mac-lock): B's frames with A's MAC are dropped and logged, A's MAC stays
#          on port 0 and B reaches A again at once.
#   lock=0 (the switch as it learns by default): B's frames move A's MAC to port 1, and B's
#          pings to A go nowhere afterwards: the hijack the lock is there to stop.
# usage: qemu-mac-lock.sh [lock=0|1]
. "$(dirname "$0")/lib.sh"
need_guest
LOCK=1
for a in "$@"; do case $a in lock=*) LOCK=${a#*=} ;; esac; done
MAC_A=52:54:00:00:00:0a MAC_B=52:54:00:00:00:0b
args=()
[ "$LOCK" = 1 ] && args=(--mac-lock)
start_bg net "$VHU_NET" --socket-path "$T/a.sock" --socket-path "$T/b.sock" "${args[@]}"
wait_file "$T/b.sock" 5 || fail "vhu-net did not listen"

{
	guest_static_net 10.0.0.1 10.0.0.2 $MAC_B
	cat <<GUEST
while ! read -t 5 line || [ "\$line" != done ]; do :; done
echo "VHU-HEARD done"
echo VHU-PASS
GUEST
} | guest_initrd a
{
	guest_static_net 10.0.0.2 10.0.0.1 $MAC_A
	cat <<GUEST
ok=0
for i in \$(seq 1 60); do ping -c 1 -W 1 10.0.0.1 >/dev/null && ok=1 && break; done
[ \$ok = 1 ] || { echo VHU-FAIL before; exit 0; }
echo VHU-REACHED
# A new address flushes the neighbour entries: set again each time, so that B never asks
# for A by ARP (A's answer would teach the switch where A is).
ip link set eth0 address $MAC_A
arp -i eth0 -s 10.0.0.1 $MAC_A
ping -c 3 -i 0.2 -W 1 10.0.0.1 >/dev/null
ip link set eth0 address $MAC_B
arp -i eth0 -s 10.0.0.1 $MAC_A
n=0
for i in 1 2 3 4 5; do
	ping -c 1 -W 1 10.0.0.1 >/dev/null && { n=\$((n + 1)); echo "VHU-AFTER \$i ok"; } || echo "VHU-AFTER \$i fail"
done
echo "VHU-AFTER-OK \$n"
echo VHU-PASS
GUEST
} | guest_initrd b
mkfifo "$T/a.in"
exec 7<>"$T/a.in"
# shellcheck disable=SC2046
STDIN=$T/a.in qemu_start a 256 1 $(qemu_net_args "$T/a.sock" $MAC_A)
# shellcheck disable=SC2046
qemu_start b 256 1 $(qemu_net_args "$T/b.sock" $MAC_B)
dump() {
	for f in a b net; do
		[ -f "$T/$f.log" ] && echo "--- $f" && tail -20 "$T/$f.log"
	done
	fail "$@"
}
guest_wait b || dump "guest B did not finish"
grep -q VHU-REACHED "$T/b.log" || dump "B never reached A"
console_say "$T/a.log" 7 done || dump "guest A never read \"done\""
guest_wait a || dump "guest A"
grep -a "VHU-AFTER" "$T/b.log" | tr -d '\r'
after=$(grep -a "VHU-AFTER-OK" "$T/b.log" | tr -d '\r' | awk '{print $2}')
kill -TERM "$PID_net"
wait "$PID_net"
grep -E "mac-lock" "$T/net.log"
if [ "$LOCK" = 1 ]; then
	[ "$after" = 5 ] || dump "with --mac-lock, B reached A only $after times of 5 after sending as A"
	grep -q "b.sock: warning: --mac-lock: [0-9]* frames refused ([1-9][0-9]* with a source MAC held by another port.*the last from $MAC_A" \
		"$T/net.log" || dump "vhu-net did not log the refused frames"
	grep -A3 "^port 1 " "$T/net.log" | grep -q "mac-lock: MACs [0-9]*, refused: source held by another port [1-9]" ||
		dump "port 1's counters do not show the refused frames"
	echo "PASS: --mac-lock kept A's MAC on A's port; B reached A $after of 5 times after sending as A"
else
	[ "$after" = 0 ] || dump "without --mac-lock B still reached A $after times: the test shows nothing"
	echo "PASS: without --mac-lock, B's frames as A took A's MAC ($after of 5 pings reached A after)"
fi
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
exit 0
