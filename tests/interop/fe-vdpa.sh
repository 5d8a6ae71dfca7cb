#!/bin/bash
# vhu-fe over vhost-vdpa, inside a QEMU guest with Debian 12's 6.12 kernel (vdpa, vduse,
# vhost_vdpa): qemu-storage-daemon exports a disk as a VDUSE virtio-blk device, `vdpa dev add`
# makes it a vDPA device bound to vhost_vdpa, and vhu-fe probes it and runs blk-bench --verify
# on /dev/vhost-vdpa-N (memory given by IOTLB updates, status handshake, config space); then
# the same against vhu-blk --vduse bound to vhost_vdpa (probe, blk-bench --verify, 2 queues):
# vhu on both sides of vhost-vdpa, and vhu-blk logs no error.
. "$(dirname "$0")/lib.sh"
need_guest612
need qemu-storage-daemon vdpa
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
[ -x "$VHU_BLK" ] || skip "no vhu-blk (meson option blk)"
GUEST_BINS="$VHU_FE $VHU_BLK $(command -v qemu-storage-daemon) $(command -v vdpa)"
DUR=${DUR:-2}

guest_initrd g <<GUEST
#!/bin/sh
ok=1
[ -c /dev/vduse/control ] || { echo "no /dev/vduse/control in the guest"; ok=0; }
dd if=/dev/zero of=/tmp/disk.img bs=1M count=32 2>/dev/null
qemu-storage-daemon --blockdev driver=file,node-name=f0,filename=/tmp/disk.img \\
	--export type=vduse-blk,id=e0,node-name=f0,name=vb0,writable=on,num-queues=2,queue-size=256 \\
	>/tmp/qsd.log 2>&1 &
for i in \$(seq 1 100); do [ -e /dev/vduse/vb0 ] && break; sleep 0.1; done
[ -e /dev/vduse/vb0 ] || { echo "qemu-storage-daemon made no VDUSE device"; cat /tmp/qsd.log; ok=0; }
/bin/vdpa dev add name vb0 mgmtdev vduse || ok=0
# vhost_vdpa, not virtio_vdpa, drives it.
[ -e /sys/bus/vdpa/drivers/virtio_vdpa/vb0 ] && echo vb0 >/sys/bus/vdpa/drivers/virtio_vdpa/unbind
[ -e /sys/bus/vdpa/drivers/vhost_vdpa/vb0 ] || echo vb0 >/sys/bus/vdpa/drivers/vhost_vdpa/bind
for i in \$(seq 1 50); do [ -c /dev/vhost-vdpa-0 ] && break; sleep 0.1; done
ls -l /dev/vhost-vdpa-* || ok=0
r=\$(vhu-fe probe --path /dev/vhost-vdpa-0 --json | tr -d '\n') || { echo "probe failed"; ok=0; }
echo "VHU-PROBE \$r"
for q in 1 2; do
	r=\$(vhu-fe blk-bench --path /dev/vhost-vdpa-0 --queues \$q --iodepth 4 --rw randrw --verify \\
		--duration $DUR --json) || { echo "blk-bench q\$q failed"; ok=0; }
	echo "VHU-RESULT \$r"
done
/bin/vdpa dev del vb0
kill %1 2>/dev/null
# vhu-blk --vduse bound to vhost_vdpa, driven by vhu-fe: vhu on both sides of vhost-vdpa.
mkdir -p /tmp/vb && mount -t tmpfs vb /tmp/vb
dd if=/dev/zero of=/tmp/vb/vb1.img bs=1M count=16 2>/dev/null
vhu-blk --vduse vb1 --image /tmp/vb/vb1.img --queues 2 >/tmp/blk.log 2>&1 &
BLK=\$!
for i in \$(seq 1 100); do [ -e /dev/vduse/vb1 ] && break; sleep 0.1; done
[ -e /dev/vduse/vb1 ] || { echo "vhu-blk made no VDUSE device"; cat /tmp/blk.log; ok=0; }
/bin/vdpa dev add name vb1 mgmtdev vduse || ok=0
[ -e /sys/bus/vdpa/drivers/virtio_vdpa/vb1 ] && echo vb1 >/sys/bus/vdpa/drivers/virtio_vdpa/unbind
[ -e /sys/bus/vdpa/drivers/vhost_vdpa/vb1 ] || echo vb1 >/sys/bus/vdpa/drivers/vhost_vdpa/bind
for i in \$(seq 1 50); do ls -d /sys/bus/vdpa/devices/vb1/vhost-vdpa-* >/dev/null 2>&1 && break; sleep 0.1; done
d=/dev/\$(basename \$(ls -d /sys/bus/vdpa/devices/vb1/vhost-vdpa-* | head -1))
for i in \$(seq 1 50); do [ -c \$d ] && break; sleep 0.1; done
r=\$(vhu-fe probe --path \$d --json | tr -d '\n') || { echo "probe of vhu-blk failed"; ok=0; }
echo "VHU-BLKPROBE \$r"
r=\$(vhu-fe blk-bench --path \$d --queues 2 --iodepth 4 --rw randrw --verify \\
	--duration $DUR --json) || { echo "blk-bench on vhu-blk failed"; ok=0; }
echo "VHU-BLKRESULT \$r"
/bin/vdpa dev del vb1
kill \$BLK
wait \$BLK
grep -i "error" /tmp/blk.log && { echo "vhu-blk logged an error"; ok=0; }
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
QEMU_TIMEOUT=${QEMU_TIMEOUT:-150} qemu_start g 1024 2
guest_wait g
pass=$?
grep -E "VHU-|blk-bench|vhu-fe|qemu-storage|vhost-vdpa" "$T/g.log" | grep -v "^VHU-GUEST" | cut -c1-600
[ $pass = 0 ] || { tail -30 "$T/g.log"; fail "the guest's checks failed"; }
grep -o "VHU-PROBE {.*}" "$T/g.log" | sed 's/^VHU-PROBE //' | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
assert p["transport"] == "vhost-vdpa" and p["device_id"] == 2 and p["type"] == "blk", p
assert p["config"]["capacity"] == 32 * 2048, p["config"]
print("ok: probe: %s, %d sectors, %d queues" % (p["type"], p["config"]["capacity"], p["queues"]))
' || fail "probe said the wrong thing"
grep -o "VHU-RESULT {.*}" "$T/g.log" | sed 's/^VHU-RESULT //' | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 2, "expected 2 runs, got %d" % len(rows)
for r in rows:
    assert r["ios"] > 0 and r["verify_errors"] == 0, r
    print("ok: %d queue(s): %d I/Os verified" % (r["queues"], r["ios"]))
' || fail "blk-bench over vhost-vdpa failed"
grep -o "VHU-BLKPROBE {.*}" "$T/g.log" | sed 's/^VHU-BLKPROBE //' | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
assert p["transport"] == "vhost-vdpa" and p["device_id"] == 2 and p["queues"] == 2, p
assert p["config"]["capacity"] == 16 * 2048, p["config"]
print("ok: probe of vhu-blk --vduse: %d sectors, %d queues" % (p["config"]["capacity"], p["queues"]))
' || fail "probe of vhu-blk --vduse said the wrong thing"
grep -o "VHU-BLKRESULT {.*}" "$T/g.log" | sed 's/^VHU-BLKRESULT //' | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["ios"] > 0 and r["verify_errors"] == 0 and r["queues"] == 2, r
print("ok: vhu-blk --vduse, 2 queues: %d I/Os verified" % r["ios"])
' || fail "blk-bench over vhost-vdpa on vhu-blk --vduse failed"
echo "PASS: vhu-fe over vhost-vdpa against qemu-storage-daemon's VDUSE export and vhu-blk --vduse"
