#!/bin/bash
# kill -9 vhu-net under guest traffic and start it again on the same socket: with the
# chardev's reconnect=1, QEMU re-negotiates and the guest's traffic resumes.
. "$(dirname "$0")/lib.sh"
need_guest
S=$T/net.sock
start_bg net "$VHU_NET" --socket-path "$S" --loopback
wait_file "$S" 5 || fail "vhu-net did not listen"
guest_initrd g <<'GUEST'
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
udpcheck send 10.0.0.2 7000 50 500 || { echo VHU-FAIL; exit 1; }
ping -q -i 0.05 -c 160 10.0.0.2 > /tmp/bg.log 2>&1 &
echo "PHASE1-DONE"
sleep 4
# The back-end came back: traffic must flow again.
ok=0
for i in $(seq 1 40); do ping -c 1 -W 1 10.0.0.2 >/dev/null && ok=1 && break; done
echo "resumed after $i tries"
udpcheck send 10.0.0.2 7000 100 500 || ok=0
wait
cat /tmp/bg.log
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
# shellcheck disable=SC2046
qemu_start g 256 1 $(qemu_net_args "$S" 52:54:00:00:00:0d reconnect=1)
wait_log "$T/g.log" "PHASE1-DONE" 60 || { cat "$T/g.log"; fail "guest did not start"; }
sleep 0.5
kill -9 "$PID_net"
wait "$PID_net" 2>/dev/null
sleep 1
start_bg net2 "$VHU_NET" --socket-path "$S" --loopback
if ! guest_wait g; then
	tail -30 "$T/g.log" "$T/net2.log"
	fail "guest traffic did not resume after vhu-net was killed and restarted"
fi
grep -E "udpcheck|resumed|packet loss" "$T/g.log"
kill -TERM "$PID_net2"
wait "$PID_net2"
grep -E "queue" "$T/net2.log"
echo "PASS: traffic resumed after kill -9 and restart"
