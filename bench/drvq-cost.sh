#!/bin/bash
# Instructions per packet of the driver side (drv_add + drv_reap) and the device side (dev) of
# bench/drvq_cost.c under callgrind, single-element API and bursts, for split and packed rings
# with IN_ORDER, device-readable (tx) and device-writable (rx) buffers. Deterministic: the
# measure to judge ring changes by on a loaded machine (rates swing, counts do not).
# Needs valgrind and a built tree (BUILD, default build/).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
T=$(mktemp -d /tmp/vhu-drvq-cost.XXXXXX)
trap 'rm -rf "$T"' EXIT
ar rcs "$T/lib.a" "$BUILD"/libvhu_internal.a.p/*.o
for api in single burst; do
	def=()
	[ $api = burst ] && def=(-DBURST)
	gcc -O2 -std=gnu11 -D_GNU_SOURCE "${def[@]}" -I"$SRC/tests/unit" -I"$SRC/tests" \
		-I"$SRC/src" -I"$SRC/include" "$SRC/bench/drvq_cost.c" "$T/lib.a" -lpthread -o "$T/cost"
	for lay in split packed; do
		for rw in t r; do
			line="$api $lay in_order $([ $rw = t ] && echo tx || echo rx):"
			for part in drv dev; do
				tg=(--toggle-collect=dev)
				[ $part = drv ] && tg=(--toggle-collect=drv_add --toggle-collect=drv_reap)
				valgrind --tool=callgrind --callgrind-out-file="$T/out" "${tg[@]}" \
					"$T/cost" $lay 1 $rw >/dev/null 2>&1
				ir=$(callgrind_annotate "$T/out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
				line="$line $part $(python3 -c "print('%.1f' % ($ir / 128000))")"
			done
			echo "$line Ir/packet"
		done
	done
done
