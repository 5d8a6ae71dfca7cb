#!/bin/bash
# Two QEMU guests on two vhu-net ports (the L2 learning switch) ping each other and exchange
# UDP datagrams, which come back intact from the other guest's echo server.
. "$(dirname "$0")/lib.sh"
need_guest
start_bg net "$VHU_NET" --socket-path "$T/a.sock" --socket-path "$T/b.sock"
wait_file "$T/b.sock" 5 || fail "vhu-net did not listen"

guest_script() { # my-ip peer-ip
	cat <<GUEST
#!/bin/sh
ip link set eth0 up
ip addr add $1/24 dev eth0
udpcheck echo 7000 40 &
ok=0
for i in \$(seq 1 60); do ping -c 1 -W 1 $2 >/dev/null && ok=1 && break; done
[ \$ok = 1 ] && ping -c 3 -i 0.2 $2 || ok=0
udpcheck send $2 7000 100 1000 || ok=0
# keep answering until the peer is done too
sleep 6
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
}
guest_script 10.0.0.1 10.0.0.2 | guest_initrd a
guest_script 10.0.0.2 10.0.0.1 | guest_initrd b
# shellcheck disable=SC2046
qemu_start a 256 1 $(qemu_net_args "$T/a.sock" 52:54:00:00:00:0a)
# shellcheck disable=SC2046
qemu_start b 256 1 $(qemu_net_args "$T/b.sock" 52:54:00:00:00:0b)
ra=0 rb=0
guest_wait a || ra=1
guest_wait b || rb=1
grep -E "udpcheck|packet loss" "$T/a.log" "$T/b.log"
if [ $ra = 1 ] || [ $rb = 1 ]; then
	tail -20 "$T/a.log" "$T/b.log" "$T/net.log"
	fail "guests could not reach each other through the switch"
fi
kill -TERM "$PID_net"
wait "$PID_net"
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: two guests through the vhu-net switch"
