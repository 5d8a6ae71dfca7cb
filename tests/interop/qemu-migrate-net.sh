#!/bin/bash
# Live migration of a QEMU 7.2 guest on vhu-net --loopback: the source and the destination QEMU
# are two ports of one vhu-net. The guest pings and sends checked UDP through the reflector in
# rounds, all along. First a migration is cancelled half-way (slowed down by max-bandwidth):
# the source guest carries on and vhu-net's log shows that dirty logging stopped (LOG_ALL
# dropped). Then a migration to a second destination completes, and the rounds resume there.
# The guest negotiates GUEST_ANNOUNCE, so QEMU announces it itself and sends no SEND_RARP.
# usage: qemu-migrate-net.sh [packed=on]
. "$(dirname "$0")/lib.sh"
need_guest
need python3
QMP="python3 $SRC/tests/interop/qmpc.py"
MAC=52:54:00:12:34:56
PACKED=off
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; esac; done

start_bg net "$VHU_NET" --loopback --verbose --socket-path "$T/src.sock" --socket-path "$T/dst.sock"
wait_file "$T/dst.sock" 5 || fail "vhu-net did not listen"

# Rounds until the host types "done" on the console (of whichever QEMU runs the guest then).
guest_initrd g <<GUEST
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
echo "features: \$(cat /sys/class/net/eth0/device/features)"
n=0
while :; do
	n=\$((n + 1))
	if ping -c 1 -W 1 10.0.0.2 >/dev/null && udpcheck send 10.0.0.2 7777 5 200 >/dev/null; then
		echo "VHU-ROUND \$n ok"
	else
		echo "VHU-ROUND \$n fail"
	fi
	read -t 0.2 line && [ "\$line" = done ] && break
done
echo "VHU-HEARD done"
ok=1
ping -c 3 -i 0.2 -W 2 10.0.0.2 || ok=0
udpcheck send 10.0.0.2 7777 100 1400 || ok=0
udpcheck send 10.0.0.2 7777 20 8000 || ok=0
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
for q in src dst1 dst2; do cp "$T/g.cpio.gz" "$T/$q.cpio.gz"; done
mkfifo "$T/src.in" "$T/dst2.in"
exec 7<>"$T/src.in" 8<>"$T/dst2.in"

# qemu NAME SOCKET [ARGS...]: the same machine on every side, QMP on $T/NAME.qmp.
qemu() {
	local name=$1 sock=$2
	shift 2
	STDIN=${STDIN:-} qemu_start "$name" "$MIG_RAM" 1 -chardev socket,id=c0,path="$sock" \
		-netdev vhost-user,id=n0,chardev=c0 \
		-device virtio-net-pci,netdev=n0,vectors=0,mac=$MAC,packed="$PACKED" \
		-qmp unix:"$T/$name.qmp",server=on,wait=off "$@"
}
rounds() { grep -c "VHU-ROUND .* ok" "$T/$1.log"; }
# wait_rounds NAME N SECONDS: until the guest on QEMU NAME has N good rounds.
wait_rounds() {
	local _
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(rounds "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
dump() {
	for f in src dst1 dst2 net; do
		[ -f "$T/$f.log" ] && echo "--- $f" && tail -25 "$T/$f.log"
	done
	fail "$@"
}

STDIN=$T/src.in qemu src "$T/src.sock"
wait_rounds src 3 60 || dump "no traffic through vhu-net before the migration"
echo "t=${SECONDS}s: the guest's traffic flows"

# 1. Cancelled half-way: 20 MB/s, cancelled after 40 MB (of some 90 MB to send).
qemu dst1 "$T/dst.sock" -incoming unix:"$T/mig1.sock"
wait_file "$T/dst1.qmp" 10 || dump "destination 1 did not start"
$QMP "$T/src.qmp" 'migrate-set-parameters={"max-bandwidth": 20000000}' \
	"migrate={\"uri\": \"unix:$T/mig1.sock\"}" wait-ram:40000000:30 migrate_cancel \
	wait:cancelled:10 >"$T/cancel.out" 2>&1 || { cat "$T/cancel.out"; dump "migrate_cancel"; }
echo "t=${SECONDS}s: cancelled: $(grep status= "$T/cancel.out" | head -1)"
wait "$PID_dst1" 2>/dev/null # its incoming migration failed: it exits
wait_rounds src $(($(rounds src) + 3)) 20 ||
	dump "the source guest did not carry on after migrate_cancel"
echo "t=${SECONDS}s: the source guest carries on"
# vhu-net saw logging start on the source port, then stop when the migration was cancelled:
# LOG_ALL dropped, and the rings' used-ring logging off.
src_log() { grep "src.sock: " "$T/net.log" | grep -n "$1" | tail -1 | cut -d: -f1; }
on=$(src_log "LOG_ALL on: dirty logging started") off=$(src_log "LOG_ALL off: dirty logging stopped")
[ -n "$on" ] || dump "vhu-net did not log LOG_ALL on for the source"
[ -n "$off" ] && [ "$off" -gt "$on" ] || dump "vhu-net did not drop LOG_ALL after migrate_cancel"
for v in 0 1; do
	l=$(src_log "vring $v: used ring logging off")
	[ -n "$l" ] && [ "$l" -gt "$on" ] || dump "vring $v still logs its used ring after migrate_cancel"
done

# 2. Completed, to a second destination on the same vhu-net port.
STDIN=$T/dst2.in qemu dst2 "$T/dst.sock" -incoming unix:"$T/mig2.sock"
wait_file "$T/dst2.qmp" 10 || dump "destination 2 did not start"
$QMP "$T/src.qmp" 'migrate-set-parameters={"max-bandwidth": 10000000000}' \
	"migrate={\"uri\": \"unix:$T/mig2.sock\"}" wait:completed:60 >"$T/mig.out" 2>&1 ||
	{ cat "$T/mig.out"; dump "migration"; }
echo "t=${SECONDS}s: $(grep status= "$T/mig.out")"
$QMP "$T/src.qmp" query-status | grep -q postmigrate || dump "source not in postmigrate"
wait_rounds dst2 3 20 || dump "no traffic on the destination"
console_say "$T/dst2.log" 8 done || dump "the guest never read \"done\""
guest_wait dst2 || dump "the guest's final checks on the destination"
echo "t=${SECONDS}s: the guest passed its checks on the destination"
$QMP "$T/src.qmp" quit >/dev/null
wait "$PID_src" 2>/dev/null
grep -E "udpcheck|packet loss" "$T/dst2.log"
lost=$(grep -c "VHU-ROUND .* fail" "$T/dst2.log")
echo "rounds on the destination: $(rounds dst2) ok, $lost failed"
[ "$lost" -le 1 ] || dump "$lost rounds failed on the destination"

feat=$(grep "features:" "$T/src.log" | tr -d '\r' | awk '{print $2}')
[ "${feat:21:1}" = 1 ] || dump "the guest did not negotiate GUEST_ANNOUNCE"
[ "$PACKED" = on ] && [ "${feat:34:1}" != 1 ] && dump "the guest did not negotiate RING_PACKED"
grep -q "SEND_RARP" "$T/net.log" && dump "SEND_RARP although the guest announces itself"
kill -TERM "$PID_net"
wait "$PID_net"
grep -q "error" "$T/net.log" && dump "vhu-net logged an error"
echo "PASS: migration on vhu-net --loopback, packed=$PACKED ($(grep status= "$T/mig.out"))"
