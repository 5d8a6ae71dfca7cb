#!/bin/bash
# vhu-blk killed with SIGKILL at least 5 times while a QEMU 7.2 guest writes and verifies
# in a loop; restarted each time on the same socket, with the chardev's reconnect=1. Every
# round must verify, and afterwards the image holds what the guest last wrote to each slot.
# vhu-blk offers INFLIGHT_SHMFD: QEMU keeps the inflight buffer and each new vhu-blk
# resubmits what the killed one had in flight. usage: qemu-blk-reconnect.sh [packed=on|off]
. "$(dirname "$0")/lib.sh"
need_guest
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
S=$T/blk.sock
IMG=$T/disk.img
KILLS=${KILLS:-5}
PACKED=off
for a in "$@"; do case $a in packed=*) PACKED=${a#*=} ;; esac; done
truncate -s 64M "$IMG"
blk() {
	"$VHU_BLK" --socket-path "$S" --image "$IMG" --queues 2 ${BLK_ARGS:-} >>"$T/blk.log" 2>&1 &
	BPID=$!
	PIDS+=($BPID)
}
blk
wait_file "$S" 5 || fail "vhu-blk did not listen"
guest_initrd g <<'GUEST'
#!/bin/sh
ok=1
i=0
while [ $i -lt 40 ]; do
	dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null
	off=$(( (i % 4) * 2 ))
	a=$(md5sum < /tmp/p | cut -d' ' -f1)
	dd if=/tmp/p of=/dev/vda bs=1M seek=$off oflag=direct conv=fsync 2>/dev/null || { echo "write $i failed"; ok=0; }
	b=$(dd if=/dev/vda bs=1M skip=$off count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	if [ "$a" = "$b" ]; then echo "round $i ok"; else echo "round $i MISMATCH"; ok=0; fi
	echo "last $off $a"
	i=$((i+1))
done
[ $ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
QEMU_TIMEOUT=300 qemu_start g 256 2 -chardev socket,id=c1,path="$S",reconnect=1 \
	-device vhost-user-blk-pci,chardev=c1,num-queues=2,packed=$PACKED
wait_log "$T/g.log" "round 0 ok" 120 || { cat "$T/g.log"; fail "guest did not start its loop"; }
for k in $(seq "$KILLS"); do
	# Kill only once QEMU is back on the current instance and the guest's I/O runs on it.
	for _ in $(seq 100); do
		[ "$(grep -c "front-end connected" "$T/blk.log")" -ge "$k" ] && break
		sleep 0.1
	done
	sleep 0.5
	kill -9 "$BPID"
	wait "$BPID" 2>/dev/null
	blk
done
guest_wait g || { cat "$T/g.log"; echo "--- vhu-blk"; cat "$T/blk.log"; fail "guest I/O across vhu-blk restarts"; }
rounds=$(grep -c "round .* ok" "$T/g.log")
connects=$(grep -c "front-end connected" "$T/blk.log")
echo "guest: $rounds rounds verified; vhu-blk started $((KILLS + 1)) times, front-end connected $connects times"
[ "$rounds" = 40 ] || fail "only $rounds of 40 rounds verified"
[ "$connects" -ge $((KILLS + 1)) ] || fail "QEMU reconnected only $connects times"
# The image: each slot holds the last data written to it.
tr -d '\r' <"$T/g.log" | grep "^last " | awk '{last[$2]=$3} END {for (o in last) print o, last[o]}' |
	while read -r off sum; do
		got=$(dd if="$IMG" bs=1M skip="$off" count=2 status=none | md5sum | awk '{print $1}')
		[ "$got" = "$sum" ] || { echo "slot at $off MiB: $got, guest wrote $sum"; exit 1; }
	done || fail "image content after the restarts"
grep "resubmitting" "$T/blk.log" | head -5
[ -n "${KEEP_LOG:-}" ] && cp "$T/blk.log" "$KEEP_LOG"
echo "PASS: qemu-blk-reconnect ($KILLS x kill -9, packed=$PACKED)"
