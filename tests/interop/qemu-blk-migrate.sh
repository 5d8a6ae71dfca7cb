#!/bin/bash
# Live migration of a QEMU 7.2 guest (TCG, 2 vCPUs) on vhost-user-blk-pci, num-queues=2, with shared
# storage: the destination's back-end runs on the same image file as the source's.
#   (a) two write/verify loops (one per vCPU, so both queues) run in the guest across every migration:
#       2 MiB of random data written with O_DIRECT, read back and compared; at the end the guest
#       re-reads every slot on the last host and the host finds each slot's last data in the image.
#   (b) during each migration (slowed with max-bandwidth until then) the guest reads 16 MiB of known
#       content into its page cache; on the destination it checksums the cached copy, without
#       reading the disk again (the disk's read counter must not move): a page the back-end wrote
#       but did not log arrives stale, and the checksum differs.
# kill=1: right after the first migration the destination's vhu-blk is killed with SIGKILL and
#   restarted, twice: QEMU reconnects (reconnect=1) with its inflight buffer, and the guest's I/O
#   goes on.
# back=1: a second migration back to the first host's back-end (A -> B -> A), also with (b).
# cancel=1: then a last migration is cancelled half-way (migrate_cancel): the source guest carries
#   on, its I/O still verifies, and its vhu-blk logs "LOG_ALL on" and then "LOG_ALL off".
# diff=1 (default): after each migration the destination's RAM as it arrived is compared with the
#   source's as it was at the stop, page by page (ramdiff); diff=0 skips it.
# Guest RAM is $MIG_RAM (lib.sh): QEMU 7.2 under TCG loses guest stores during a migration otherwise.
# usage: qemu-blk-migrate.sh [packed=on|off] [cancel=1] [kill=1] [back=1] [peer=vhu-blk|qsd] [diff=0|1]
. "$(dirname "$0")/lib.sh"
need_guest
need python3
PACKED=off CANCEL=0 KILL=0 BACK=0 PEER=vhu-blk DIFF=1
for a in "$@"; do
	case $a in
	packed=*) PACKED=${a#*=} ;; cancel=*) CANCEL=${a#*=} ;; kill=*) KILL=${a#*=} ;;
	back=*) BACK=${a#*=} ;; peer=*) PEER=${a#*=} ;; diff=*) DIFF=${a#*=} ;;
	esac
done
[ "$PEER" = qsd ] && need qemu-storage-daemon
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
QMPC="python3 $SRC/tests/interop/qmpc.py"
IMG=$T/disk.img
MIB=1048576
truncate -s 96M "$IMG"
# Known content for (b): region 1 at 32 MiB, region 2 at 64 MiB, 16 MiB each.
for r in 1 2; do
	head -c $((16 * MIB)) /dev/urandom >"$T/pat$r"
	dd if="$T/pat$r" of="$IMG" bs=1M seek=$((r * 32)) conv=notrunc status=none
	eval "PAT$r=$(md5sum <"$T/pat$r" | awk '{print $1}')"
done

# back-end SIDE (A or B): the source's and the destination's, on the same image.
backend() {
	local side=$1
	rm -f "$T/$side.sock"
	if [ "$PEER" = qsd ]; then
		# Shared storage: both daemons have the image open, so no image locking.
		qemu-storage-daemon \
			--blockdev driver=file,node-name=file0,filename="$IMG",cache.direct=on,locking=off \
			--blockdev driver=raw,node-name=disk,file=file0 \
			--export type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,addr.path="$T/$side.sock",writable=on,num-queues=2 \
			>>"$T/be$side.log" 2>&1 &
	else
		"$VHU_BLK" --socket-path "$T/$side.sock" --image "$IMG" --queues 2 --verbose \
			>>"$T/be$side.log" 2>&1 &
	fi
	PIDS+=($!)
	eval "BE_$side=$!"
	wait_file "$T/$side.sock" 10 || { cat "$T/be$side.log"; fail "back-end $side did not listen"; }
}

guest_initrd g <<GUEST
#!/bin/sh
stty -F /dev/ttyS1 -echo
exec 3</dev/ttyS1
# Held open all along: the kernel drops a block device's page cache when its last opener closes it.
exec 4</dev/vda
echo "features: \$(cat /sys/bus/virtio/devices/virtio0/features)"
echo "queues: \$(ls /sys/block/vda/mq | tr '\n' ' ')"
# loop CPU FIRST-SLOT: 2 MiB slots FIRST..FIRST+3 (of 0..7, the first 16 MiB); stops at /tmp/stop.
loop() {
	i=0 bad=0
	while [ ! -e /tmp/stop ]; do
		while [ -e /tmp/pause ]; do touch /tmp/paused\$1; sleep 0.1; done
		rm -f /tmp/paused\$1
		off=\$(( (\$2 + i % 4) * 2 ))
		dd if=/dev/urandom of=/tmp/p\$1 bs=1M count=2 2>/dev/null
		a=\$(md5sum < /tmp/p\$1 | cut -d' ' -f1)
		taskset \$1 dd if=/tmp/p\$1 of=/dev/vda bs=1M seek=\$off oflag=direct conv=fsync 2>/dev/null || { echo "write \$1/\$i failed"; bad=1; }
		b=\$(taskset \$1 dd if=/dev/vda bs=1M skip=\$off count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
		if [ "\$a" = "\$b" ]; then echo "round \$1/\$i ok"; else echo "round \$1/\$i MISMATCH"; bad=1; fi
		echo "\$a" > /tmp/slot\$off
		i=\$((i+1))
	done
	echo \$bad > /tmp/bad\$1
}
loop 1 0 &
loop 2 4 &
echo VHU-READY
while read -r cmd arg <&3; do
	echo "VHU-CMD \$cmd \$arg"
	case \$cmd in
	cache)
		dd if=/dev/vda bs=1M skip=\$((arg * 32)) count=16 of=/dev/null 2>/dev/null
		echo "VHU-CACHED \$arg" ;;
	verify)
		# The loops paused, so the disk's read counter counts this read alone.
		touch /tmp/pause
		while [ ! -e /tmp/paused1 ] || [ ! -e /tmp/paused2 ]; do sleep 0.1; done
		r0=\$(awk '{print \$3}' /sys/block/vda/stat)
		s=\$(dd if=/dev/vda bs=1M skip=\$((arg * 32)) count=16 2>/dev/null | md5sum | cut -d' ' -f1)
		r1=\$(awk '{print \$3}' /sys/block/vda/stat)
		rm /tmp/pause
		echo "VHU-VERIFY \$arg \$s \$((r1 - r0))" ;;
	stop)
		touch /tmp/stop
		wait
		ok=1
		[ "\$(cat /tmp/bad1 /tmp/bad2)" = "\$(printf '0\n0')" ] || ok=0
		for off in 0 2 4 6 8 10 12 14; do
			[ -e /tmp/slot\$off ] || continue
			a=\$(cat /tmp/slot\$off)
			b=\$(dd if=/dev/vda bs=1M skip=\$off count=2 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
			echo "last \$off \$a"
			[ "\$a" = "\$b" ] || { echo "slot \$off: \$b, wrote \$a"; ok=0; }
		done
		[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
		break ;;
	esac
done
GUEST

# vm NAME SIDE [-incoming URI]: a QEMU on back-end SIDE, QMP on $T/NAME.qmp, its second serial port
# (the guest's command line, /dev/ttyS1) read from the FIFO $T/NAME.ctl.in.
vm() {
	local name=$1 side=$2
	shift 2
	[ -e "$T/$name.cpio.gz" ] || cp "$T/g.cpio.gz" "$T/$name.cpio.gz"
	mkfifo "$T/$name.ctl.in"
	: >"$T/$name.ctl.out"
	# init_on_alloc=0: the kernel does not zero a page cache page before the device writes it (a
	# write of the CPU would mark the page dirty and hide a page the back-end did not log).
	GUEST_APPEND="init_on_alloc=0 ${MIGRATE_APPEND:-}" QEMU_TIMEOUT=${QEMU_TIMEOUT:-300} qemu_start "$name" "$MIG_RAM" 2 \
		-qmp unix:"$T/$name.qmp",server=on,wait=off \
		-chardev pipe,id=ctl,path="$T/$name.ctl" -serial chardev:ctl \
		-chardev socket,id=c1,path="$T/$side.sock",reconnect=1 \
		-device vhost-user-blk-pci,chardev=c1,num-queues=2,packed=$PACKED "$@"
	wait_file "$T/$name.qmp" 20 || fail "QEMU $name did not start"
}

dump() {
	for f in "$T"/*.log; do
		echo "--- $(basename "$f")"
		tr -d '\r' <"$f" | grep -v "^vhu-blk: debug" | tail -40
	done
}

# say VM TEXT: a command line to the guest, which acknowledges it on its console.
say() {
	echo "$2" >"$T/$1.ctl.in"
	wait_log "$T/$1.log" "VHU-CMD $2" 30 || { dump; fail "guest on $1 did not take '$2'"; }
}

qmp() {
	$QMPC "$T/$1.qmp" "${@:2}" || { dump; fail "QMP $2 on $1"; }
}

rounds() { tr -d '\r' <"$T/$1.log" | grep -c "^round .* ok"; }

# crashed VM: says whether the guest's kernel crashed on VM, or its I/O stopped without a data error.
crashed() {
	local l
	l=$(tr -d '\r' <"$T/$1.log" | grep -m1 -E "BUG:|Oops|general protection|Kernel panic|kernel BUG")
	if [ -n "$l" ]; then
		echo "the guest's kernel crashed on $1: $l"
	elif ! tr -d '\r' <"$T/$1.log" | grep -q "MISMATCH\|^write .* failed"; then
		echo "the guest on $1 stopped making progress without a data error (hang)"
	fi
}

# wait_rounds VM N: until the guest's console on VM shows N more verified rounds.
wait_rounds() {
	local n0
	n0=$(rounds "$1")
	for _ in $(seq 600); do
		[ "$(rounds "$1")" -ge $((n0 + $2)) ] && return 0
		grep -q "MISMATCH\|^write .* failed" "$T/$1.log" && break
		sleep 0.1
	done
	dump
	crashed "$1"
	fail "the guest's I/O on $1 did not go on"
}

# ramdiff SRC DST: DST (started with -S) holds the guest's RAM as it arrived, SRC (postmigrate) as
# it was when the guest stopped: every page must be equal. A page that differs was written on SRC
# after its last transfer and not marked dirty: by the back-end (a write it did not log) or by
# QEMU itself. Then DST runs on.
ramdiff() {
	local src=$1 dst=$2 st
	for _ in $(seq 100); do
		st=$($QMPC "$T/$dst.qmp" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
		[ "$st" = inmigrate ] || break
		sleep 0.1
	done
	qmp "$src" "pmemsave={\"val\": 0, \"size\": $MIG_RAM_BYTES, \"filename\": \"$T/$src.ram\"}" >/dev/null
	qmp "$dst" "pmemsave={\"val\": 0, \"size\": $MIG_RAM_BYTES, \"filename\": \"$T/$dst.ram\"}" >/dev/null
	python3 - "$T/$src.ram" "$T/$dst.ram" <<'PY' || { dump; fail "guest RAM differs after the migration $src -> $dst"; }
import sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
bad = []
off = 0
while True:
    x, y = a.read(1 << 20), b.read(1 << 20)
    if not x:
        break
    if x != y and off >= 1 << 20:  # below 1 MiB: legacy VGA/BIOS areas
        for p in range(0, len(x), 4096):
            if x[p:p + 4096] != y[p:p + 4096]:
                bad.append(off + p)
    off += len(x)
def diff(g):  # how many bytes of the page differ, and where the first one is
    a.seek(g); b.seek(g)
    x, y = a.read(4096), b.read(4096)
    d = [i for i in range(4096) if x[i] != y[i]]
    return "%#x(%d bytes from +%#x)" % (g, len(d), d[0])
print("RAM compared: %d MiB, %d page(s) differ%s" % (off >> 20, len(bad), (": " + " ".join(diff(g) for g in bad[:16])) if bad else ""))
sys.exit(1 if bad else 0)
PY
	rm -f "$T/$src.ram" "$T/$dst.ram"
	qmp "$dst" cont >/dev/null
}

# migrate SRC DST REGION [KILL]: SRC's guest migrates to DST (started with -incoming); the migration
# runs slowly until a third of RAM is left, then the guest reads REGION into its page cache (the
# migration must still be running after it), then the bandwidth is lifted; on DST the guest checksums its cached copy. Prints total and downtime.
# KILL=1: DST's back-end is killed with SIGKILL as soon as the migration completes, and restarted.
migrate() {
	local src=$1 dst=$2 region=$3 kill=${4:-0} r st sum reads want side n
	qmp "$src" 'migrate-set-parameters={"max-bandwidth": 16777216}' >/dev/null
	qmp "$src" "migrate={\"uri\": \"unix:$T/$dst.mig\"}" >/dev/null
	$QMPC "$T/$src.qmp" wait-migrate:120:0.33 >/dev/null || { dump; fail "migration $src -> $dst"; }
	say "$src" "cache $region"
	wait_log "$T/$src.log" "VHU-CACHED $region" 60 || { dump; fail "guest did not read region $region"; }
	st=$($QMPC "$T/$src.qmp" query-migrate | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
	[ "$st" = active ] || fail "migration $src -> $dst was $st before the guest's read ended (too fast to test logging)"
	qmp "$src" 'migrate-set-parameters={"max-bandwidth": 4294967296}' >/dev/null
	r=$($QMPC "$T/$src.qmp" wait-migrate:120) || { echo "$r"; dump; fail "migration $src -> $dst did not complete"; }
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("'"[${SECONDS}s] $src -> $dst "'migrated: total %d ms, downtime %d ms, %d MiB" % (r["total-time"], r["downtime"], r["ram"]["transferred"] >> 20))' "$r"
	if [ "$DIFF" = 1 ]; then ramdiff "$src" "$dst"; fi
	$QMPC "$T/$dst.qmp" query-status 2>/dev/null | grep -q '"running"' ||
		{ dump; crashed "$dst"; fail "$dst is not running after the migration"; }
	[ "$PEER" = vhu-blk ] && ! grep -q "LOG_ALL on" "$T/be${src:0:1}.log" && fail "the source's vhu-blk did not log"
	if [ "$kill" = 1 ]; then
		# Twice, each time once the guest's I/O runs on the destination (QEMU 7.2 restarts the
		# rings from the used index; what was in flight is popped again or resubmitted).
		side=${dst:0:1}
		for _ in 1 2; do
			wait_rounds "$dst" 1
			sleep "0.$((RANDOM % 10))"
			kill -9 "$(eval echo "\$BE_$side")"
			wait "$(eval echo "\$BE_$side")" 2>/dev/null
			n=$(grep -c "front-end connected" "$T/be$side.log")
			backend $side
			for _ in $(seq 150); do
				[ "$(grep -c "front-end connected" "$T/be$side.log")" -gt "$n" ] && break
				sleep 0.1
			done
		done
		echo "$dst's back-end killed with SIGKILL right after the migration and restarted, twice"
	fi
	qmp "$src" quit >/dev/null
	say "$dst" "verify $region"
	wait_log "$T/$dst.log" "VHU-VERIFY $region" 60 || { dump; crashed "$dst"; fail "guest on $dst did not verify"; }
	read -r sum reads <<<"$(tr -d '\r' <"$T/$dst.log" | grep "^VHU-VERIFY $region" | awk '{print $3, $4}')"
	want=$(eval echo "\$PAT$region")
	echo "region $region on $dst: cached copy $sum (expected $want), $reads sectors read from the disk"
	[ "$reads" -lt 64 ] || fail "the verify read came from the disk, not the page cache"
	[ "$sum" = "$want" ] || fail "the guest's cached copy of region $region differs on $dst: pages the back-end wrote were not logged"
	wait_rounds "$dst" 2
}

backend A
backend B
vm A A
wait_log "$T/A.log" "VHU-READY" 120 || { dump; fail "guest did not boot"; }
wait_rounds A 1
echo "[${SECONDS}s] guest up on A"
feat=$(tr -d '\r' <"$T/A.log" | grep "features:" | awk '{print $2}')
[ "$PACKED" = on ] && [ "${feat:34:1}" != 1 ] && fail "guest did not negotiate RING_PACKED"
[ "$PACKED" = off ] && [ "${feat:34:1}" = 1 ] && fail "guest negotiated RING_PACKED unasked"
n=$(tr -d '\r' <"$T/A.log" | grep "queues:" | wc -w)
[ "$n" -gt 2 ] || fail "guest has one blk-mq queue, expected 2"

vm B B -incoming unix:"$T/B.mig" $([ "$DIFF" = 1 ] && echo -S)
migrate A B 1 "$KILL"
last=B
if [ "$BACK" = 1 ]; then
	vm A2 A -incoming unix:"$T/A2.mig" $([ "$DIFF" = 1 ] && echo -S)
	migrate B A2 2
	last=A2
fi

# The cancel comes last: its guest stays on the source, and the test ends there.
if [ "$CANCEL" = 1 ]; then
	[ $last = B ] && side=A || side=B
	vm C "$side" -incoming unix:"$T/C.mig"
	qmp $last 'migrate-set-parameters={"max-bandwidth": 16777216}' >/dev/null
	qmp $last "migrate={\"uri\": \"unix:$T/C.mig\"}" >/dev/null
	$QMPC "$T/$last.qmp" wait-migrate:120:0.5 >/dev/null || { dump; fail "migration $last -> C"; }
	qmp $last migrate_cancel >/dev/null
	r=$($QMPC "$T/$last.qmp" wait:cancelled:30 2>&1) || { echo "$r"; fail "migrate_cancel did not cancel"; }
	echo "[${SECONDS}s] migration $last -> C cancelled half-way"
	qmp $last query-status | grep -q '"running"' || fail "$last is not running after migrate_cancel"
	wait "$PID_C" 2>/dev/null
	wait_rounds $last 2
	if [ "$PEER" = vhu-blk ]; then
		# The source's vhu-blk: LOG_ALL went on for the migration and off at the cancel.
		l=$(grep -o "LOG_ALL o[nf]*" "$T/be${last:0:1}.log" | tail -2 | tr '\n' ' ')
		echo "source vhu-blk: $l"
		[ "$l" = "LOG_ALL on LOG_ALL off " ] || fail "the source's vhu-blk did not drop LOG_ALL at migrate_cancel"
	fi
fi

echo "stop" >"$T/$last.ctl.in"
# The guest ends its loops and powers off; a hung one is stopped after 60 s (not QEMU's timeout).
pid=$(eval echo "\$PID_$last")
for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null # timeout(1) passes it on to QEMU
guest_wait "$last" || { dump; crashed "$last"; fail "guest I/O across the migration"; }
[ "$KILL" = 1 ] && echo "requests resubmitted after the kill: $(grep -c resubmitting "$T/beB.log")"
echo "rounds verified: $(for v in A B A2; do [ -e "$T/$v.log" ] && printf "%s %s  " $v "$(rounds $v)"; done)"
# The image: each slot holds the last data the guest wrote to it.
tr -d '\r' <"$T/$last.log" | grep "^last " | while read -r _ off sum; do
	got=$(dd if="$IMG" bs=1M skip="$off" count=2 status=none | md5sum | awk '{print $1}')
	[ "$got" = "$sum" ] || { echo "slot at $off MiB: $got, guest wrote $sum"; exit 1; }
done || fail "image content after the migration"
grep -i "error" "$T"/be*.log && fail "a back-end logged an error"
echo "PASS: qemu-blk-migrate packed=$PACKED cancel=$CANCEL kill=$KILL back=$BACK peer=$PEER"
