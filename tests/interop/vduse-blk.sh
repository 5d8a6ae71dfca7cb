#!/bin/bash
# vhu-blk --vduse in Debian 12's 6.12 kernel (a QEMU TCG guest; the host has no VDUSE):
#   vhu-blk --vduse vb0 --image (tmpfs) --queues 2; `vdpa dev add name vb0 mgmtdev vduse`
#   bound to virtio_vdpa gives /dev/vda with 2 blk-mq queues; O_DIRECT writes at several
#   offsets read back the same (drop_caches between), a verify loop of random 64 KiB blocks
#   from both vCPUs, blkdiscard, an online resize (SIGHUP: the driver sees the new size).
#   Kill -9 and restart: the device must be deleted (vdpa dev del, which waits for the dead
#   device's msg_timeout) and the new vhu-blk destroys the stale VDUSE device and creates it
#   anew; the data written before is there. A second vhu-blk of a name in use fails naming
#   VDUSE_CREATE_DEV and the device. Reference: qemu-storage-daemon's vduse-blk export on the
#   same kernel, same write/read-back. Bound to vhost_vdpa, a bare vhost-vdpa front-end
#   (tests/guest/vdpablk.c) writes and reads back, with an IOTLB update while the queue runs;
#   then shrinks its memfd under the ring: the SIGBUS guard breaks that ring only (vhu-blk
#   lives, says why), and after the reset the device works again. Then it makes a head
#   outside the ring available (the ring breaks), mends that entry into a valid read and maps
#   more memory (UPDATE_IOTLB): the broken ring must not be restarted (no completion), and after
#   the reset the device works again.
#   SIGTERM after `vdpa dev del` leaves no VDUSE device; vhu-blk logged no error.
. "$(dirname "$0")/lib.sh"
need_guest612
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
[ -x "$VHU_BLK" ] || fail "build vhu-blk first"
GUEST_BINS="$VHU_BLK /usr/sbin/vdpa $BUILD/tests/vdpablk"
QSD=$(command -v qemu-storage-daemon || true)
[ -n "$QSD" ] && GUEST_BINS="$GUEST_BINS $QSD"

guest_initrd g <<'GUEST'
#!/bin/sh
ok=1
bad() { echo "BAD: $*"; ok=0; }
mount -t tmpfs tmp /tmp
touch /tmp/blk.log
tail -f /tmp/blk.log &
# Two drivers want vDPA devices; the test binds by hand.
echo 0 > /sys/bus/vdpa/drivers_autoprobe
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ]; }
# start_blk N: vhu-blk's Nth start; ready once it said so (a stale /dev/vduse/vb0 may exist).
start_blk() {
	vhu-blk --vduse vb0 --image /tmp/disk.img --queues 2 >>/tmp/blk.log 2>&1 &
	BLK=$!
	i=0
	while [ "$(grep -c 'queue(s)' /tmp/blk.log)" -lt $1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	wait_for /dev/vduse/vb0 || bad "no /dev/vduse/vb0"
}
add_dev() {
	vdpa dev add name $1 mgmtdev vduse || bad "vdpa dev add $1"
	echo $1 > /sys/bus/vdpa/drivers/virtio_vdpa/bind || bad "bind $1 to virtio_vdpa"
	wait_for /dev/$2 || bad "no /dev/$2"
}
pat() { dd if=/dev/urandom of=/tmp/p$1 bs=64k count=$2 2>/dev/null; }
# write_at DEV N OFF64K: pattern N at the offset (64 KiB units), O_DIRECT
write_at() { dd if=/tmp/p$2 of=/dev/$1 bs=64k seek=$3 oflag=direct conv=fsync,notrunc 2>/dev/null || bad "write $1 $2 @$3"; }
check_at() {
	a=$(md5sum < /tmp/p$2 | cut -d' ' -f1)
	n=$(($(wc -c < /tmp/p$2) / 65536))
	b=$(dd if=/dev/$1 bs=64k skip=$3 count=$n iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	[ "$a" = "$b" ] || bad "read-back $1 pattern $2 @$3: $a vs $b"
}

truncate -s 64M /tmp/disk.img
start_blk 1
add_dev vb0 vda
echo "features: $(cat /sys/bus/virtio/devices/virtio0/features)"
echo "queues: $(ls /sys/block/vda/mq | tr '\n' ' ')"
echo "size: $(cat /sys/block/vda/size)"
echo "step: patterns"
pat 1 16; pat 2 1; pat 3 4
write_at vda 1 0; write_at vda 2 17; write_at vda 3 1000; write_at vda 2 1023
echo 3 > /proc/sys/vm/drop_caches
check_at vda 1 0; check_at vda 2 17; check_at vda 3 1000; check_at vda 2 1023
echo "step: verify loop"
# verify loop: random 64 KiB blocks from both vCPUs at once, each read back
for c in 1 2; do
	(
		for i in 1 2 3 4 5 6 7 8; do
			off=$(( ($(od -An -N2 -tu2 /dev/urandom) % 400) * 2 + 100 + c ))
			dd if=/dev/urandom of=/tmp/v$c bs=64k count=1 2>/dev/null
			taskset $c dd if=/tmp/v$c of=/dev/vda bs=64k seek=$off oflag=direct conv=notrunc 2>/dev/null || echo "BAD: loop write"
			a=$(md5sum < /tmp/v$c | cut -d' ' -f1)
			b=$(taskset $c dd if=/dev/vda bs=64k skip=$off count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
			[ "$a" = "$b" ] || echo "BAD: loop $c/$i @$off"
		done
	) > /tmp/loop$c &
	eval L$c=\$!
done
wait $L1 $L2
cat /tmp/loop1 /tmp/loop2
grep -q BAD /tmp/loop1 /tmp/loop2 && ok=0
blkdiscard -o 33554432 -l 1048576 /dev/vda || bad "blkdiscard"
# Online resize: SIGHUP -> VDUSE_DEV_SET_CONFIG and the config interrupt.
truncate -s 80M /tmp/disk.img
kill -HUP $BLK
i=0
while [ "$(cat /sys/block/vda/size)" != 163840 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "resized: $(cat /sys/block/vda/size)"
[ "$(cat /sys/block/vda/size)" = 163840 ] || bad "the driver did not see the new size"
sync
# A second vhu-blk for the same name: refused with the ioctl and the device named.
vhu-blk --vduse vb0 --null 1M > /tmp/second.log 2>&1 && bad "a second vhu-blk took vb0"
grep -q "VDUSE_CREATE_DEV on VDUSE device vb0" /tmp/second.log || { cat /tmp/second.log; bad "second vhu-blk did not name the ioctl"; }

echo "step: restart"
# Kill and restart: VDUSE keeps the device; its vDPA device must go (the reset the driver
# sends times out after msg_timeout), then a new vhu-blk destroys and recreates it.
echo 2 > /sys/class/vduse/vb0/msg_timeout
kill -9 $BLK
wait $BLK 2>/dev/null
t0=$(date +%s)
vdpa dev del vb0 || bad "vdpa dev del after kill"
echo "dev del after kill: $(( $(date +%s) - t0 )) s"
start_blk 2
grep -q "destroyed and created anew" /tmp/blk.log || bad "restart did not recreate vb0"
add_dev vb0 vda
check_at vda 1 0; check_at vda 3 1000; check_at vda 2 1023
write_at vda 3 900; echo 3 > /proc/sys/vm/drop_caches; check_at vda 3 900

if [ -x /bin/qemu-storage-daemon ]; then
	truncate -s 16M /tmp/q.img
	qemu-storage-daemon --blockdev driver=file,node-name=f,filename=/tmp/q.img \
		--export type=vduse-blk,id=e,node-name=f,name=qsd0,writable=on,num-queues=2 > /tmp/qsd.log 2>&1 &
	QSDP=$!
	if wait_for /dev/vduse/qsd0; then
		add_dev qsd0 vdb
		write_at vdb 1 3; echo 3 > /proc/sys/vm/drop_caches; check_at vdb 1 3
		echo "qsd: $(cat /sys/bus/virtio/devices/virtio1/features)"
		vdpa dev del qsd0
	else
		cat /tmp/qsd.log; bad "qemu-storage-daemon made no VDUSE device"
	fi
	kill $QSDP; wait $QSDP
fi

# Bound to vhost_vdpa: a bare vhost-vdpa front-end (tests/guest/vdpablk.c) writes, maps more
# memory while the queue runs (UPDATE_IOTLB), reads back, and reads the ring base (GET_VQ_STATE).
vdpa dev del vb0 || bad "vdpa dev del"
vdpa dev add name vb0 mgmtdev vduse || bad "vdpa dev add (vhost_vdpa)"
echo vb0 > /sys/bus/vdpa/drivers/vhost_vdpa/bind || bad "bind vb0 to vhost_vdpa"
i=0
while ! ls /dev/vhost-vdpa-* >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
vv=$(ls /dev/vhost-vdpa-* 2>/dev/null | head -1)
[ -n "$vv" ] && timeout 30 vdpablk $vv 65536 || bad "vhost-vdpa front-end on vb0"
# The front-end's memory shrunk under the ring (its ftruncate after VDUSE_IOTLB_GET_FD gave
# vhu-blk the file): the SIGBUS guard breaks that ring only; vhu-blk lives on, and after the
# front-end's reset the device works again.
timeout 30 vdpablk $vv 65536 shrink; r=$?
[ $r = 3 ] || bad "vdpablk shrink: exit status $r, not 3"
kill -0 $BLK 2>/dev/null || bad "vhu-blk died when the memory under its ring shrank"
timeout 30 vdpablk $vv 65536 || bad "vhost-vdpa front-end on vb0 after the shrink"
# A head outside the ring breaks it; an IOTLB update (UPDATE_IOTLB restarts running rings)
# must leave the broken ring stopped until the reset, after which the device works again.
{
	i=0
	while ! grep -q "avail ring names head 19" /tmp/blk.log && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
	echo go
} | timeout 40 vdpablk $vv 65536 broken; r=$?
[ $r = 4 ] || bad "vdpablk broken: exit status $r, not 4"
kill -0 $BLK 2>/dev/null || bad "vhu-blk died on a head outside the ring"
timeout 30 vdpablk $vv 65536 || bad "vhost-vdpa front-end on vb0 after the broken ring"
vdpa dev del vb0 || bad "vdpa dev del (vhost_vdpa)"

# Clean end: vdpa dev del, then SIGTERM: the VDUSE device is destroyed.
kill -TERM $BLK
wait $BLK || bad "vhu-blk exit status $?"
left=$(ls /sys/class/vduse | grep -v '^control$')
[ -z "$left" ] || bad "VDUSE devices left behind: $left"
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST

QEMU_TIMEOUT=${QEMU_TIMEOUT:-150} qemu_start g 512 2
if ! guest_wait g; then
	tr -d '\r' <"$T/g.log" | grep -v "^\[" | tail -80
	fail "vhu-blk over VDUSE in the guest"
fi
tr -d '\r' <"$T/g.log" | grep -E "features|queues|size:|resized|dev del|qsd:|vdpablk"
grep -q "vdpablk: write, map while running, read back, vring base 2: ok" "$T/g.log" ||
	fail "the vhost-vdpa front-end did not report its run"
grep -q "vdpablk: memory shrunk under the ring: no completion, device reset" "$T/g.log" ||
	fail "the shrink run did not report"
grep -q "vdpablk: ring broken by a bad head, IOTLB update, no completion, device reset" "$T/g.log" ||
	fail "the broken-ring run did not report"
grep -E "vhu-blk: .*(error|ERR).*vring 0 broken: avail ring names head 19, ring size 16" "$T/g.log" ||
	fail "vhu-blk did not say why the ring broke"
# The one error the shrink must cause: the ring broken, with the guard's words.
grep -E "vhu-blk: .*(error|ERR).*vring 0 broken: front-end memory shrank under the device: SIGBUS" "$T/g.log" ||
	fail "vhu-blk did not say the memory under its ring shrank"
grep -E "vhu-blk: (error|ERR)" "$T/g.log" | grep -v "VDUSE_CREATE_DEV on VDUSE device vb0" |
	grep -v "front-end memory shrank under the device" |
	grep -v "vring 0 broken: avail ring names head 19, ring size 16" |
	grep -v "a ring is broken: it stays stopped until the driver resets the device" &&
	fail "vhu-blk logged an error"
echo "PASS: vduse-blk"
