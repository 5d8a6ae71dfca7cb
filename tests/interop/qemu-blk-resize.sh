#!/bin/bash
# Online resize with QEMU 7.2 (TCG): the guest boots on a 64 MiB image served by vhu-blk; the
# host grows the image to 96 MiB (truncate) and sends vhu-blk SIGHUP, which sends
# BACKEND_CONFIG_CHANGE_MSG; QEMU re-reads the config (GET_CONFIG) and interrupts the guest,
# whose /sys/block/vda/size must show the new capacity without a reboot, and whose read of
# the new last MiB succeeds. Then a SIGHUP with the size unchanged changes nothing, and a
# shrink to 32 MiB reaches the guest too; the image is still 32 MiB when the guest is done.
# usage: qemu-blk-resize.sh [packed=on|off]
. "$(dirname "$0")/lib.sh"
need_guest
PACKED=off
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; esac; done
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
S=$T/blk.sock
IMG=$T/disk.img
truncate -s 64M "$IMG"
start_bg blk "$VHU_BLK" --socket-path "$S" --image "$IMG"
wait_file "$S" 5 || { cat "$T/blk.log"; fail "vhu-blk did not listen"; }

guest_initrd g <<'GUEST'
#!/bin/sh
# Waits up to 30 s for /sys/block/vda/size to differ from $1; prints it.
changed() {
	i=0
	while [ $i -lt 30 ]; do
		s=$(cat /sys/block/vda/size)
		[ "$s" != "$1" ] && break
		sleep 1
		i=$((i + 1))
	done
	echo "$s"
}
ok=1
s0=$(cat /sys/block/vda/size)
echo "size0: $s0"
s1=$(changed "$s0")
echo "size1: $s1"
[ "$s1" = 196608 ] || ok=0
dd if=/dev/vda bs=1M skip=95 count=1 iflag=direct of=/dev/null 2>/dev/null && echo "tail: ok" || ok=0
echo "grown-seen"
s2=$(changed "$s1")
echo "size2: $s2"
[ "$s2" = 65536 ] || ok=0
dd if=/dev/vda bs=1M skip=31 count=1 iflag=direct of=/dev/null 2>/dev/null || ok=0
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST

DEV="vhost-user-blk-pci,chardev=c1,num-queues=1,packed=$PACKED"
qemu_start g 256 1 -chardev socket,id=c1,path="$S" -device "$DEV"
wait_log "$T/g.log" "size0:" 120 || { cat "$T/g.log" "$T/blk.log"; fail "the guest did not boot"; }
truncate -s 96M "$IMG"
kill -HUP "$PID_blk"
wait_log "$T/g.log" "grown-seen" 40 || true
kill -HUP "$PID_blk"
wait_log "$T/blk.log" "size unchanged" 5 || fail "vhu-blk did not see the same size again"
truncate -s 32M "$IMG"
kill -HUP "$PID_blk"
if ! guest_wait g; then
	cat "$T/g.log"
	echo "--- vhu-blk"
	cat "$T/blk.log"
	fail "the guest did not see the new capacity (packed=$PACKED)"
fi
tr -d '\r' <"$T/g.log" | grep -E "^size|tail"
kill -0 "$PID_blk" 2>/dev/null || fail "vhu-blk died"
kill -TERM "$PID_blk"
wait "$PID_blk" 2>/dev/null
[ "$(stat -c %s "$IMG")" = 33554432 ] || fail "the image is no longer 32 MiB: $(stat -c %s "$IMG")"
[ "$(grep -c "front-end told" "$T/blk.log")" = 2 ] || { cat "$T/blk.log"; fail "vhu-blk did not send two config changes"; }
grep -qi "error" "$T/blk.log" && { cat "$T/blk.log"; fail "vhu-blk logged an error"; }
echo "PASS: qemu-blk-resize packed=$PACKED"
