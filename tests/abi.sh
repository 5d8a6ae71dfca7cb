#!/bin/bash
# ABI: libvhu.so exports exactly the symbols src/vhu.map lists (nm -D --defined-only), every
# function the installed headers declare is among them, and all carry the map's version.
#   abi.sh LIBVHU_SO VHU_MAP INCLUDE_DIR
set -uo pipefail
so=$1 map=$2 inc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

command -v nm >/dev/null || { echo "nm not found"; exit 77; }
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort >"$tmp/exported"
sed 's@/\*.*\*/@@' "$map" | grep -oE '^[[:space:]]+vhu_[a-z0-9_]+;' | tr -d ' \t;' | sort >"$tmp/map"
# Functions declared in the public headers: a name followed by '(' at the start of a
# declaration, not static inline (those have no symbol).
cat "$inc"/vhu/*.h | grep -v 'static inline' |
	grep -oE '^[a-z][a-z0-9_ *]*[ *]vhu_[a-z0-9_]+\(' | grep -oE 'vhu_[a-z0-9_]+\($' | tr -d '(' | sort -u >"$tmp/headers"

versions=$(grep -o '@.*' "$tmp/exported" | tr -d @ | sort -u)
sed -i 's/@.*//' "$tmp/exported"
if ! diff -u "$tmp/map" "$tmp/exported" >"$tmp/d1"; then
	echo "FAIL: exported symbols differ from $map (- map only, + exported only):"
	cat "$tmp/d1"
	fail=1
fi
if ! comm -23 "$tmp/headers" "$tmp/map" >"$tmp/d2" || [ -s "$tmp/d2" ]; then
	echo "FAIL: declared in the headers but not in the map:"
	cat "$tmp/d2"
	fail=1
fi
node=$(grep -oE '^VHU_[0-9.]+' "$map" | tail -1)
if [ "$versions" != "$node" ]; then
	echo "FAIL: symbol versions '$versions', expected $node"
	fail=1
fi
n=$(wc -l <"$tmp/map")
[ "$n" -gt 0 ] || { echo "FAIL: empty map"; fail=1; }
[ $fail = 0 ] && echo "ok: $n symbols, all $node, headers covered"
exit $fail
