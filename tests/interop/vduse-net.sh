#!/bin/bash
# vhu-net --vduse in Debian 12's 6.12 kernel (a QEMU TCG guest; the host has no VDUSE):
#   1. vhu-net --vduse vn0 --vduse vn1 --mac-lock, a switch of two VDUSE ports; `vdpa dev add` of each
#      bound to virtio_vdpa gives two kernel virtio-net interfaces, moved into network
#      namespaces a (10.0.0.1) and b (10.0.0.2). ping both ways, then a TCP stream of BYTES
#      each way, every byte checked by tcpcheck, with the offloads the kernel's driver
#      negotiates (CSUM, TSO4/6 both ways: its GSO frames cross the switch whole, which
#      vhu-net's counters must show; packed rings) and no TCP checksum error at either end.
#      Then vn0's driver is unbound (a reset: under --mac-lock its port's MAC is forgotten) and
#      bound again (a new DRIVER_OK): a new interface, which pings b again. Then vn1's device
#      dies (the kernel gives up on a request vhu-net, stopped, does not answer in time): vhu-net
#      says so, lives on, and vn0 still reaches a tap port (vt0, 10.0.0.3); after `vdpa dev
#      del vn1` vhu-net creates vn1 again, and a new `vdpa dev add` gives b its interface
#      back (a pings b). vn1's MAC is the
#      one --vduse vn1,mac= gave; vn0's is derived from its name.
#   2. vhu-net --loopback --vduse vl0 --mtu 9000 --user 65534:65534 (root only to create the
#      device: it must then run as 65534 without capabilities; not in the ASan+UBSan run, whose
#      LeakSanitizer cannot read /proc/PID/task of a process that dropped root in this guest, so
#      that run checks this part for leaks as root) bound to vhost_vdpa: vhu-fe probe on
#      /dev/vhost-vdpa-N reads the config space (MAC, MTU 9000, one pair, LINK_UP); net-bench
#      --mode loop with split and packed rings, 8000-byte frames (several receive buffers
#      each) and --tso (GSO frames back whole), every frame back intact (vhu-fe's vhost-vdpa
#      transport with a net device; the kernel's vDPA bus between the two).
#   vhu-net ends on SIGTERM with status 0 after `vdpa dev del`, leaves no VDUSE device and
#   logs no error.
. "$(dirname "$0")/lib.sh"
need_guest612
need vdpa ip
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
# iproute2's ip as ip2 (network namespaces): the guest's /bin/ip is busybox's.
cp "$(command -v ip)" "$T/ip2"
GUEST_BINS="$VHU_NET $VHU_FE $(command -v vdpa) $T/ip2"
BYTES=${BYTES:-8000000}
DUR=${DUR:-2}
USER_ARGS="--user 65534:65534"
grep -q __asan_init "$VHU_NET" && USER_ARGS=

guest_initrd g <<GUEST
#!/bin/sh
ok=1
bad() { echo "BAD: \$*"; ok=0; }
mount -t tmpfs tmp /tmp
mkdir -p /run /var/run && mount -t tmpfs run /run
touch /tmp/net.log
tail -f /tmp/net.log &
[ -c /dev/vduse/control ] || bad "no /dev/vduse/control in the guest"
# Two drivers want vDPA devices; the test binds by hand.
echo 0 > /sys/bus/vdpa/drivers_autoprobe
wait_for() { i=0; while [ ! -e "\$1" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done; [ -e "\$1" ]; }
# ifname DEV: the kernel interface virtio_vdpa made of vDPA device DEV
ifname() { ls /sys/bus/vdpa/devices/\$1/virtio*/net 2>/dev/null | head -1; }
add_net() {
	vdpa dev add name \$1 mgmtdev vduse || bad "vdpa dev add \$1"
	echo \$1 > /sys/bus/vdpa/drivers/virtio_vdpa/bind || bad "bind \$1 to virtio_vdpa"
	i=0; while [ -z "\$(ifname \$1)" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
	[ -n "\$(ifname \$1)" ] || bad "no interface for \$1"
}

# 1. Two kernel virtio-net interfaces on a vhu-net switch.
vhu-net --vduse vn0 --vduse vn1,mac=02:00:00:00:01:01 --tap vt0 --mac-lock >>/tmp/net.log 2>&1 &
NET=\$!
wait_for /dev/vduse/vn0 && wait_for /dev/vduse/vn1 || bad "no /dev/vduse/vn0 and vn1"
add_net vn0
add_net vn1
A=\$(ifname vn0)
B=\$(ifname vn1)
echo "interfaces: vn0 \$A, vn1 \$B, mtu \$(cat /sys/class/net/\$A/mtu)"
echo "macs: vn0 \$(cat /sys/class/net/\$A/address), vn1 \$(cat /sys/class/net/\$B/address)"
echo "features vn0: \$(cat /sys/bus/vdpa/devices/vn0/virtio*/features)"
ip2 netns add a && ip2 netns add b || bad "ip2 netns add"
ip2 link set \$A netns a && ip2 link set \$B netns b || bad "ip2 link set netns"
ip2 -n a link set \$A up && ip2 -n a addr add 10.0.0.1/24 dev \$A || bad "set up \$A"
ip2 -n b link set \$B up && ip2 -n b addr add 10.0.0.2/24 dev \$B || bad "set up \$B"
ip2 -n a link set lo up; ip2 -n b link set lo up
ip2 netns exec a ping -c 3 -W 5 10.0.0.2 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping a -> b"; }
grep -E "packets transmitted" /tmp/ping
ip2 netns exec b ping -c 3 -W 5 10.0.0.1 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping b -> a"; }
ip2 netns exec b tcpcheck serve 7001 $BYTES 60 &
srv=\$!
sleep 0.3
ip2 netns exec a tcpcheck send 10.0.0.2 7001 $BYTES 50 || bad "tcp a -> b"
wait \$srv || bad "tcp a -> b (receiver)"
ip2 netns exec a tcpcheck serve 7002 $BYTES 60 &
srv=\$!
sleep 0.3
ip2 netns exec b tcpcheck send 10.0.0.1 7002 $BYTES 50 || bad "tcp b -> a"
wait \$srv || bad "tcp b -> a (receiver)"
for ns in a b; do
	cs=\$(ip2 netns exec \$ns awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if (\$i == "InCsumErrors") c = i; h = 1 } else print \$c }' /proc/net/snmp)
	echo "tcp checksum errors in \$ns: \$cs"
	[ "\$cs" = 0 ] || bad "checksum errors in \$ns"
done
kill -USR1 \$NET; sleep 0.5
# --mac-lock: vn0's MAC is its port's while its driver runs; a reset (unbind) forgets it, and
# a new driver (bind again: a new DRIVER_OK) gets the port, and the MAC, back.
macs0() { kill -USR1 \$NET; sleep 0.5; grep -A3 "^port 0 vduse:vn0" /tmp/net.log | grep -o "MACs [0-9]*" | tail -1; }
m=\$(macs0); echo "vn0 bound: \$m"; [ "\$m" = "MACs 1" ] || bad "vn0 bound: \$m, not MACs 1"
echo vn0 > /sys/bus/vdpa/drivers/virtio_vdpa/unbind || bad "unbind vn0"
m=\$(macs0); echo "vn0 unbound: \$m"; [ "\$m" = "MACs 0" ] || bad "vn0 unbound: \$m, not MACs 0"
echo vn0 > /sys/bus/vdpa/drivers/virtio_vdpa/bind || bad "bind vn0 again"
i=0; while [ -z "\$(ifname vn0)" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
A=\$(ifname vn0)
echo "vn0 bound again: \$A"
ip2 link set \$A netns a && ip2 -n a link set \$A up && ip2 -n a addr add 10.0.0.1/24 dev \$A || bad "set up \$A again"
ip2 netns exec a ping -c 3 -W 5 10.0.0.2 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping a -> b after the rebind"; }
m=\$(macs0); echo "vn0 after the rebind: \$m"; [ "\$m" = "MACs 1" ] || bad "vn0 after the rebind: \$m, not MACs 1"
# One port's device dies (vhu-net stopped while the kernel waits on vn1's reset: after
# msg_timeout the kernel gives up on vn1); vhu-net lives on and vn0 still reaches the tap.
ip2 addr add 10.0.0.3/24 dev vt0 || bad "address on vt0"
ip2 netns exec a ping -c 2 -W 5 10.0.0.3 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping a -> tap"; }
echo 2 > /sys/class/vduse/vn1/msg_timeout
kill -STOP \$NET
echo vn1 > /sys/bus/vdpa/drivers/virtio_vdpa/unbind &
UNB=\$!
sleep 3
kill -CONT \$NET
wait \$UNB
sleep 0.5
grep -q "vduse:vn1: error: the kernel gave up on the VDUSE device" /tmp/net.log || bad "vhu-net did not see vn1 die"
kill -0 \$NET 2>/dev/null || bad "vhu-net died with vn1"
ip2 netns exec a ping -c 3 -W 5 10.0.0.3 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping a -> tap after vn1 died"; }
grep -E "packets transmitted" /tmp/ping
kill -USR1 \$NET; sleep 0.5
grep "^port 1 vduse:vn1" /tmp/net.log | tail -1
# vdpa dev del lets the dead device go: vhu-net creates vn1 again, and a new vdpa dev add
# brings the port back (b reachable from a again).
vdpa dev del vn1 || bad "vdpa dev del vn1 (dead)"
i=0; while ! grep -q "vduse:vn1: info: VDUSE device created again" /tmp/net.log && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
grep -q "vduse:vn1: info: VDUSE device created again" /tmp/net.log || bad "vn1 not created again"
add_net vn1
B=\$(ifname vn1)
echo "vn1 created again: \$B"
ip2 link set \$B netns b && ip2 -n b link set \$B up && ip2 -n b addr add 10.0.0.2/24 dev \$B || bad "set up \$B again"
ip2 netns exec a ping -c 3 -W 5 10.0.0.2 >/tmp/ping 2>&1 || { cat /tmp/ping; bad "ping a -> b after vn1 came back"; }
grep -E "packets transmitted" /tmp/ping
vdpa dev del vn0 || bad "vdpa dev del vn0"
vdpa dev del vn1 || bad "vdpa dev del vn1"
kill -TERM \$NET
wait \$NET || bad "vhu-net (switch) exit status \$?"

# 2. vhu-fe over vhost-vdpa against vhu-net --loopback on VDUSE.
vhu-net --loopback --vduse vl0,mac=02:00:00:00:02:02 --mtu 9000 $USER_ARGS >>/tmp/net.log 2>&1 &
NET=\$!
wait_for /dev/vduse/vl0 || bad "no /dev/vduse/vl0"
# After the drop (--user), or the start line (without it).
i=0
while ! grep -q "mode loopback" /tmp/net.log && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
# Every thread's ids, capabilities and no_new_privs, one line per distinct value.
cat /proc/\$NET/task/*/status | grep -E '^(Uid|Gid|CapEff|CapPrm|CapAmb|NoNewPrivs):' | tr -s '\t ' '  ' | sort -u | sed 's/^/VHU-CREDS /'
vdpa dev add name vl0 mgmtdev vduse || bad "vdpa dev add vl0"
echo vl0 > /sys/bus/vdpa/drivers/vhost_vdpa/bind || bad "bind vl0 to vhost_vdpa"
i=0
while ! ls /dev/vhost-vdpa-* >/dev/null 2>&1 && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
vv=\$(ls /dev/vhost-vdpa-* 2>/dev/null | head -1)
r=\$(vhu-fe probe --path \$vv --json | tr -d '\n') || bad "probe"
echo "VHU-PROBE \$r"
for run in split: packed:--packed jumbo:"--size 8000 --packed" tso:--tso; do
	r=\$(vhu-fe net-bench --path \$vv --mode loop \${run#*:} --duration $DUR --json) || bad "net-bench \$run"
	echo "VHU-RESULT-\${run%%:*} \$r"
done
vdpa dev del vl0 || bad "vdpa dev del vl0"
kill -TERM \$NET
wait \$NET || bad "vhu-net (loopback) exit status \$?"
left=\$(ls /sys/class/vduse | grep -v '^control\$')
[ -z "\$left" ] || bad "VDUSE devices left behind: \$left"
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST

QEMU_TIMEOUT=${QEMU_TIMEOUT:-200} qemu_start g 512 2
if ! guest_wait g; then
	tr -d '\r' <"$T/g.log" | grep -v "^\[" | tail -80
	fail "vhu-net over VDUSE in the guest"
fi
log=$(tr -d '\r' <"$T/g.log")
echo "$log" | grep -E "interfaces:|features vn0|packets transmitted|tcpcheck|checksum errors|VHU-RESULT|VHU-PROBE|gso whole|^port|^vn0 |^vn1 |^macs:|gave up|created again"
# Both streams were checked byte by byte in the guest; the offloads must have been in use:
# the kernel's TSO frames crossed the switch whole to the other port.
# The driver's features (a string of bits, 0 first): CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7,
# HOST_TSO4 11, MRG_RXBUF 15, RING_PACKED 34 (6.12's virtio_vdpa takes packed rings).
feat=$(echo "$log" | sed -n 's/^features vn0: //p' | head -1)
for b in 0 1 7 11 15 34; do
	[ "${feat:$b:1}" = 1 ] || fail "the kernel's driver did not negotiate feature bit $b (features $feat)"
done
macs=$(echo "$log" | sed -n 's/^macs: //p' | head -1)
[ "$macs" = "vn0 02:76:64:$(python3 -c '
h = 2166136261
for c in b"vn0":
    h = ((h ^ c) * 16777619) & 0xffffffff
print("%02x:%02x:%02x" % (h >> 16 & 255, h >> 8 & 255, h & 255))'), vn1 02:00:00:00:01:01" ] ||
	fail "the VDUSE ports' MACs: $macs"
whole=$(echo "$log" | grep -A1 "^port 1 vduse:vn1" | grep -o "gso whole [0-9]*" | grep -o "[0-9]*$" | head -1)
[ "${whole:-0}" -gt 0 ] || fail "no GSO frame crossed the switch whole (gso whole: ${whole:-none})"
creds=$(echo "$log" | sed -n 's/^VHU-CREDS //p' | sed 's/ *$//' | tr '\n' '|')
want="CapAmb: 0000000000000000|CapEff: 0000000000000000|CapPrm: 0000000000000000|Gid: 65534 65534 65534 65534|NoNewPrivs: 1|Uid: 65534 65534 65534 65534|"
if [ -n "$USER_ARGS" ]; then
	[ "$creds" = "$want" ] || fail "vhu-net $USER_ARGS runs as (all threads): $creds"
	echo "vhu-net --user in the guest (all threads): $creds"
fi
p=$(echo "$log" | sed -n 's/^VHU-PROBE //p' | head -1)
python3 - "$p" <<'EOF' || fail "vhu-fe probe over vhost-vdpa said the wrong thing: $p"
import json, sys
p = json.loads(sys.argv[1])
assert p["transport"] == "vhost-vdpa" and p["device_id"] == 1 and p["type"] == "net", p
c = p["config"]
assert c["mtu"] == 9000 and c["max_virtqueue_pairs"] == 1 and c["status"] == 1, c
assert c["mac"] == "02:00:00:00:02:02", c
print("probe over vhost-vdpa: net, mac %s, mtu %d, %d pair" % (c["mac"], c["mtu"], c["max_virtqueue_pairs"]))
EOF
for run in split packed jumbo tso; do
	r=$(echo "$log" | sed -n "s/^VHU-RESULT-$run //p" | head -1)
	[ -n "$r" ] || fail "no net-bench result ($run)"
	python3 - "$r" "$run" <<'EOF' || fail "net-bench over vhost-vdpa ($run): frames lost or damaged"
import json, sys
r, run = json.loads(sys.argv[1]), sys.argv[2]
print("net-bench over vhost-vdpa (%s): %d sent, %d back, %.3f Mpps, bad %d, lost %d, mtu %d" %
      (run, r["tx_packets"], r["rx_packets"], r["mpps"], r["bad"], r["lost"], r["mtu"]))
assert r["rx_packets"] > 0 and r["bad"] == 0 and r["lost"] == 0 and r["mtu"] == 9000, r
assert r["packed"] == (run in ("packed", "jumbo")), r
if run == "jumbo":  # 8000-byte frames, several receive buffers each (MRG_RXBUF)
    assert r["size"] == 8000 and r["rx_merged"] == r["rx_packets"], r
if run == "tso":  # GSO frames of 8 segments back whole (GUEST_TSO4)
    assert r["tso_whole"] * 8 == r["rx_packets"] and r["tso_segments"] == 0, r
EOF
done
# The errors vn1's death must cause, and no other.
echo "$log" | grep -q "vduse:vn1: error: the kernel gave up on the VDUSE device" ||
	fail "vhu-net did not report vn1's device gone"
echo "$log" | grep -E "vhu-net: .*: (error|ERR)" |
	grep -vE "vduse:vn1: error: (the kernel gave up on the VDUSE device|VDUSE device vn1: the kernel marked it broken|VDUSE_DESTROY_DEV on VDUSE device vn1: Device or resource busy)" &&
	fail "vhu-net logged an error"
echo "PASS: vduse-net"
