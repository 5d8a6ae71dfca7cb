#!/bin/bash
# vhu-fe over vhost-kernel, inside a QEMU guest (the host has no /dev/vhost-net): net-bench
# --mode loop through a reflecting tap (tc ingress, matchall, mirred egress redirect back to the
# same tap), 1 and 2 queue pairs, 64 and 1518 B frames, every frame checked; then what must not
# work fails cleanly: a second user of a single-queue tap gets the failing ioctl named with its
# device, and a tap vhu-fe created is gone when it exits. All in one guest boot; the tap lives
# inside the guest, so the host's network is never used.
. "$(dirname "$0")/lib.sh"
need_guest
need ip tc
# A guest built before the vhost modules were in it is rebuilt (mkguest.sh is a no-op when current).
OUT=$GUEST "$SRC/scripts/mkguest.sh" >/dev/null || skip "cannot rebuild the guest"
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
GUEST_BINS="$VHU_FE $(command -v ip) $(command -v tc)"
DUR=${DUR:-1}

guest_initrd g <<GUEST
#!/bin/sh
ok=1
[ -c /dev/vhost-net ] || { echo "no /dev/vhost-net in the guest"; ok=0; }
IP=/bin/ip TC=/bin/tc
# iproute2 (busybox ash would run its own ip applet for a bare "ip")
\$IP -V || ok=0
\$IP tuntap add dev vt0 mode tap vnet_hdr multi_queue || ok=0
\$IP link set vt0 up || ok=0
\$TC qdisc add dev vt0 ingress || ok=0
\$TC filter add dev vt0 parent ffff: matchall action mirred egress redirect dev vt0 || ok=0
r=\$(vhu-fe probe --path /dev/vhost-net --json | tr -d '\n') || { echo "probe failed"; ok=0; }
echo "VHU-PROBE \$r"
for q in 1 2; do
	for s in 64 1518; do
		r=\$(vhu-fe net-bench --path /dev/vhost-net --iface vt0 --mode loop --queues \$q \\
			--size \$s --duration $DUR --quiet --json) || { echo "net-bench q\$q s\$s failed"; ok=0; }
		echo "VHU-RESULT \$r"
	done
done
# A single-queue tap taken by one vhu-fe: a second one fails, naming the ioctl and the device.
\$IP tuntap add dev vs0 mode tap vnet_hdr || ok=0
\$IP link set vs0 up
vhu-fe net-bench --path /dev/vhost-net --iface vs0 --mode tx --duration 3 --quiet >/dev/null 2>&1 &
sleep 1
if vhu-fe net-bench --path /dev/vhost-net --iface vs0 --mode tx --duration 1 --quiet 2>/tmp/e; then
	echo "a second user of vs0 was let in"; ok=0
fi
cat /tmp/e
grep -q "TUNSETIFF on /dev/net/tun" /tmp/e || { echo "the failing ioctl is not named"; ok=0; }
wait
# A tap vhu-fe creates lives as long as vhu-fe.
r=\$(vhu-fe net-bench --path /dev/vhost-net --iface vhunew --mode tx --duration 1 --quiet --json) ||
	{ echo "net-bench on a created tap failed"; ok=0; }
echo "VHU-CREATED \$r"
if \$IP link show vhunew >/dev/null 2>&1; then echo "vhunew outlived vhu-fe"; ok=0; fi
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120} qemu_start g 512 2
guest_wait g
pass=$?
grep -E "VHU-|net-bench|TUNSETIFF|vhu-fe" "$T/g.log" | grep -v "^VHU-GUEST" | cut -c1-400
[ $pass = 0 ] || { tail -30 "$T/g.log"; fail "the guest's checks failed"; }
# Every run: frames went out and came back, none bad, none missing.
grep -o "VHU-RESULT {.*}" "$T/g.log" | sed 's/^VHU-RESULT //' | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 4, "expected 4 loop runs, got %d" % len(rows)
for r in rows:
    what = "queues %(queues)d size %(size)d" % r
    assert r["mode"] == "loop" and r["tx_packets"] > 0, what + ": nothing sent"
    assert r["bad"] == 0 and r["lost"] == 0, what + ": %(bad)d bad, %(lost)d lost" % r
    assert r["rx_packets"] - r["foreign"] == r["tx_packets"], what + ": rx %(rx_packets)d tx %(tx_packets)d" % r
    print("ok: %s: %d frames out and back, %.4f Mpps" % (what, r["tx_packets"], r["mpps"]))
' || fail "a loop run lost or damaged frames"
grep -o "VHU-PROBE {.*}" "$T/g.log" | sed 's/^VHU-PROBE //' | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
assert p["transport"] == "vhost-kernel" and p["type"] == "net" and "MQ" in p["features"], p
print("ok: probe: vhost-kernel, net, %d queue pairs" % p["queues"])
' || fail "probe of /dev/vhost-net said the wrong thing"
grep -o "VHU-CREATED {.*}" "$T/g.log" | grep -q '"tx_packets": [1-9]' || fail "nothing sent on the created tap"
echo "PASS: vhu-fe over vhost-kernel: loop through a reflecting tap, 1 and 2 pairs, 64 and 1518 B"
