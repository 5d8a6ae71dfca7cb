#!/bin/bash
# make bench (migration part): live migration of the same QEMU 7.2 guest (TCG, 2 vCPUs, 256 MiB,
# vhost-user-blk-pci num-queues=2, shared storage) on (A) vhu-blk and on (B) qemu-storage-daemon's
# vhost-user-blk export (which logs dirty pages), while the guest writes and reads back 1 MiB blocks
# with O_DIRECT. One guest per back-end kind, each migrated back and forth between two back-end
# processes on the same image; the migrations interleave in pairs A B B A A B ... (both guests run
# all along: the same load on the machine for both). Prints QEMU's query-migrate total time and downtime of each, and
# the median ratios A/B (below 1: vhu-blk migrates faster). max-bandwidth 1 GiB/s, downtime-limit
# QEMU's default (300 ms).
# Environment: BENCH_MIGRATIONS (per back-end, default 6).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
N=${BENCH_MIGRATIONS:-6}
. "$SRC/tests/interop/lib.sh"
need_guest
need qemu-storage-daemon python3
QMPC="python3 $SRC/tests/interop/qmpc.py"
die() {
	echo "bench: $*"
	for f in "$T"/*.log; do echo "--- $f"; tail -20 "$f"; done
	exit 1
}

# backend KIND SIDE (KIND a = vhu-blk, b = qsd; SIDE 0 or 1): $T/KIND$SIDE.sock on $T/KIND.img.
backend() {
	local s=$T/$1$2.sock
	if [ "$1" = a ]; then
		"$BUILD/tools/vhu-blk" --socket-path "$s" --image "$T/a.img" --queues 2 >>"$T/be$1$2.log" 2>&1 &
	else
		qemu-storage-daemon \
			--blockdev driver=file,node-name=file0,filename="$T/b.img",cache.direct=on,locking=off \
			--blockdev driver=raw,node-name=disk,file=file0 \
			--export type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,addr.path="$s",writable=on,num-queues=2 \
			>>"$T/be$1$2.log" 2>&1 &
	fi
	PIDS+=($!)
	wait_file "$s" 10 || die "back-end $1$2 did not listen"
}

guest_initrd g <<'GUEST'
#!/bin/sh
i=0
while :; do
	off=$((i % 16))
	dd if=/dev/urandom of=/tmp/p bs=1M count=1 2>/dev/null
	dd if=/tmp/p of=/dev/vda bs=1M seek=$off oflag=direct 2>/dev/null
	dd if=/dev/vda bs=1M skip=$off count=1 iflag=direct 2>/dev/null | cmp -s - /tmp/p || echo "VHU-MISMATCH $i"
	[ $i = 3 ] && echo VHU-RUNNING
	i=$((i+1))
done
GUEST

# vm KIND GEN SIDE [-incoming URI]: QEMU instance KIND-GEN on back-end KIND SIDE.
vm() {
	local kind=$1 name=$1$2 side=$3
	shift 3
	cp "$T/g.cpio.gz" "$T/$name.cpio.gz"
	QEMU_TIMEOUT=3000 qemu_start "$name" "$MIG_RAM" 2 -qmp unix:"$T/$name.qmp",server=on,wait=off \
		-chardev socket,id=c1,path="$T/$kind$side.sock",reconnect=1 \
		-device vhost-user-blk-pci,chardev=c1,num-queues=2 "$@"
	wait_file "$T/$name.qmp" 20 || die "QEMU $name did not start"
}

for k in a b; do
	truncate -s 64M "$T/$k.img"
	backend $k 0
	backend $k 1
	vm $k 0 0
	eval "GEN_$k=0"
done
for k in a b; do
	wait_log "$T/${k}0.log" VHU-RUNNING 180 || die "guest $k did not start"
done

# migrate KIND: its guest from generation G (side G%2) to G+1 on the other side; "total downtime"
# in $T/last (not printed: a command substitution would run it in a subshell). A destination that
# is gone after the migration (QEMU 7.2 under TCG, now and then, with either back-end: the guest
# resets and -no-reboot ends QEMU) is counted in $T/lost.KIND, a fresh guest booted, and the
# migration done again.
migrate() {
	local k=$1 g g1 r rc
	for _ in 1 2 3; do
		g=$(eval echo "\$GEN_$k")
		g1=$((g + 1))
		vm "$k" $g1 $((g1 % 2)) -incoming unix:"$T/$k$g1.mig"
		$QMPC "$T/$k$g.qmp" 'migrate-set-parameters={"max-bandwidth": 1073741824}' >/dev/null
		$QMPC "$T/$k$g.qmp" "migrate={\"uri\": \"unix:$T/$k$g1.mig\"}" >/dev/null || die "migrate $k$g"
		r=$($QMPC "$T/$k$g.qmp" wait-migrate:300) || die "migration $k$g -> $k$g1: $r"
		$QMPC "$T/$k$g.qmp" quit >/dev/null
		sleep 1
		grep -q VHU-MISMATCH "$T/$k$g1.log" && die "guest $k read back different data"
		eval "GEN_$k=$g1"
		if $QMPC "$T/$k$g1.qmp" query-status 2>/dev/null | grep -q '"running"'; then
			python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["total-time"], r["downtime"])' "$r" >"$T/last"
			return 0
		fi
		wait "$(eval echo "\$PID_$k$g1")"
		rc=$?
		echo "$k$g1 (exit status $rc: $(tr -d '\r' <"$T/$k$g1.log" | grep -m1 -E "BUG|Oops|panic|fault" | cut -c1-100))" >>"$T/lost.$k"
		g1=$((g1 + 1))
		eval "GEN_$k=$g1"
		vm "$k" $g1 $((g1 % 2))
		wait_log "$T/$k$g1.log" VHU-RUNNING 180 || die "guest $k$g1 did not start"
	done
	die "three migrations of guest $k lost their destination"
}

echo "vhu bench: live migration, vhu-blk (A) against qemu-storage-daemon (B), $N each, interleaved"
printf "%-6s %14s %12s %14s %12s %8s %8s\n" pair "A total ms" "A down ms" "B total ms" "B down ms" total down
: >"$T/ra"
: >"$T/rb"
for p in $(seq "$N"); do
	if [ $((p % 2)) = 1 ]; then
		migrate a && read -r at ad <"$T/last"
		migrate b && read -r bt bd <"$T/last"
	else
		migrate b && read -r bt bd <"$T/last"
		migrate a && read -r at ad <"$T/last"
	fi
	echo "$at $ad" >>"$T/ra"
	echo "$bt $bd" >>"$T/rb"
	awk -v p="$p" -v at="$at" -v ad="$ad" -v bt="$bt" -v bd="$bd" \
		'BEGIN {printf "%-6s %14d %12d %14d %12d %8.2f %8.2f\n", p, at, ad, bt, bd, at/bt, (bd > 0 ? ad/bd : 0)}'
done
med() { sort -n | awk '{l[NR]=$1} END {print (NR % 2 ? l[(NR+1)/2] : (l[NR/2] + l[NR/2+1]) / 2)}'; }
at=$(awk '{print $1}' "$T/ra" | med)
ad=$(awk '{print $2}' "$T/ra" | med)
bt=$(awk '{print $1}' "$T/rb" | med)
bd=$(awk '{print $2}' "$T/rb" | med)
paste "$T/ra" "$T/rb" | awk '{print $1/$3, ($4 > 0 ? $2/$4 : 0)}' >"$T/ratios"
# The ratio columns are the medians of the per-pair ratios, never a ratio of the medians.
rt=$(awk '{print $1}' "$T/ratios" | med)
rd=$(awk '{print $2}' "$T/ratios" | med)
awk -v at="$at" -v ad="$ad" -v bt="$bt" -v bd="$bd" -v rt="$rt" -v rd="$rd" \
	'BEGIN {printf "%-6s %14d %12d %14d %12d %8.2f %8.2f  <- medians; ratios: median of the pair ratios\n", "median", at, ad, bt, bd, rt, rd}'
for k in a b; do
	[ -s "$T/lost.$k" ] && echo "destinations gone after a migration ($k, migrated again): $(tr '\n' ' ' <"$T/lost.$k")"
done
echo "median of the per-pair ratios A/B: total $(awk '{print $1}' "$T/ratios" | med), downtime $(awk '{print $2}' "$T/ratios" | med)"
