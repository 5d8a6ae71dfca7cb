#!/bin/bash
# QEMU 7.2 guest (TCG) with vhost-user-blk-pci on vhu-blk and a raw image:
#   the guest writes 8 MiB of random data with O_DIRECT and fsync, drops its caches, reads it
#   back (checksums match); with 2 queues both vCPUs write at once; blkdiscard and BLKZEROOUT
#   (WRITE_ZEROES) succeed and the zeroed range reads back as zeroes; after the guest exits
#   the host finds the same data in the image. ro=1: writes fail with an I/O error and the
#   image is unchanged.
# usage: qemu-blk.sh [queues=N] [packed=on|off] [ro=0|1]
. "$(dirname "$0")/lib.sh"
need_guest
QUEUES=1 PACKED=off RO=0
for a in "$@"; do case $a in queues=*) QUEUES=${a#*=} ;; packed=*) PACKED=${a#*=} ;; ro=*) RO=${a#*=} ;; esac; done
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
S=$T/blk.sock
IMG=$T/disk.img
truncate -s 64M "$IMG"
# A recognisable first MiB, to prove a read-only disk stays as it was.
head -c 1048576 /dev/urandom >"$T/first"
dd if="$T/first" of="$IMG" conv=notrunc status=none
extra=()
[ "$RO" = 1 ] && extra+=(--read-only)
start_bg blk "$VHU_BLK" --socket-path "$S" --image "$IMG" --queues "$QUEUES" "${extra[@]}"
wait_file "$S" 5 || { cat "$T/blk.log"; fail "vhu-blk did not listen"; }

guest_initrd g <<GUEST
#!/bin/sh
ok=1
echo "features: \$(cat /sys/bus/virtio/devices/virtio0/features)"
echo "queues: \$(ls /sys/block/vda/mq | tr '\n' ' ')"
if [ $RO = 1 ]; then
	echo "ro: \$(cat /sys/block/vda/ro)"
	dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null && ok=0
	echo "first: \$(dd if=/dev/vda bs=1M count=1 iflag=direct 2>/dev/null | md5sum)"
else
	dd if=/dev/urandom of=/tmp/p bs=1M count=8 2>/dev/null
	echo "pattern: \$(md5sum < /tmp/p)"
	dd if=/tmp/p of=/dev/vda bs=1M oflag=direct conv=fsync 2>/dev/null || ok=0
	echo 3 > /proc/sys/vm/drop_caches
	echo "readback: \$(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum)"
	if [ $QUEUES -gt 1 ]; then
		taskset 1 dd if=/tmp/p of=/dev/vda bs=64k seek=256 oflag=direct conv=fsync 2>/dev/null &
		taskset 2 dd if=/tmp/p of=/dev/vda bs=64k seek=512 oflag=direct conv=fsync 2>/dev/null &
		wait
		a=\$(dd if=/dev/vda bs=1M skip=16 count=8 iflag=direct 2>/dev/null | md5sum)
		b=\$(dd if=/dev/vda bs=1M skip=32 count=8 iflag=direct 2>/dev/null | md5sum)
		[ "\$a" = "\$(md5sum < /tmp/p)" ] && [ "\$b" = "\$a" ] || { echo "parallel write mismatch"; ok=0; }
	fi
	blkdiscard -o 50331648 -l 4194304 /dev/vda || { echo "blkdiscard failed"; ok=0; }
	blkzero /dev/vda 58720256 4194304 || ok=0
	sync
fi
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST

DEV="vhost-user-blk-pci,chardev=c1,num-queues=$QUEUES,packed=$PACKED"
qemu_start g 256 "$QUEUES" -chardev socket,id=c1,path="$S" -device "$DEV"
if ! guest_wait g; then
	cat "$T/g.log"
	echo "--- vhu-blk"
	cat "$T/blk.log"
	fail "guest I/O through vhu-blk (queues=$QUEUES packed=$PACKED ro=$RO)"
fi
tr -d '\r' <"$T/g.log" | grep -E "features|queues|pattern|readback|blkzero|ro:|first" 
feat=$(grep "features:" "$T/g.log" | tr -d '\r' | awk '{print $2}')
[ "$PACKED" = on ] && [ "${feat:34:1}" != 1 ] && fail "guest did not negotiate RING_PACKED"
[ "$PACKED" = off ] && [ "${feat:34:1}" = 1 ] && fail "guest negotiated RING_PACKED unasked"
if [ "$QUEUES" -gt 1 ]; then
	n=$(grep "queues:" "$T/g.log" | tr -d '\r' | wc -w)
	[ "$n" -gt 2 ] || fail "guest has one blk-mq queue, expected $QUEUES"
fi
kill -TERM "$PID_blk"
wait "$PID_blk" 2>/dev/null
if [ "$RO" = 1 ]; then
	grep -q "ro: 1" "$T/g.log" || fail "guest did not see a read-only disk"
	want=$(md5sum <"$T/first" | awk '{print $1}')
	got=$(head -c 1048576 "$IMG" | md5sum | awk '{print $1}')
	[ "$want" = "$got" ] || fail "read-only image changed"
	grep "first:" "$T/g.log" | grep -q "$want" || fail "guest read different data from the read-only disk"
else
	pat=$(grep "pattern:" "$T/g.log" | tr -d '\r' | awk '{print $2}')
	back=$(grep "readback:" "$T/g.log" | tr -d '\r' | awk '{print $2}')
	[ -n "$pat" ] && [ "$pat" = "$back" ] || fail "guest read back different data ($pat vs $back)"
	host=$(head -c 8388608 "$IMG" | md5sum | awk '{print $1}')
	[ "$host" = "$pat" ] || fail "the image holds different data than the guest wrote"
	cmp -s <(head -c 4194304 /dev/zero) <(dd if="$IMG" bs=1M skip=56 count=4 status=none) ||
		fail "the zeroed range is not zero in the image"
fi
grep -qi "error" "$T/blk.log" && { cat "$T/blk.log"; fail "vhu-blk logged an error"; }
echo "PASS: qemu-blk queues=$QUEUES packed=$PACKED ro=$RO"
