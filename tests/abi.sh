#!/bin/bash
# ABI: libvhu.so exports exactly the symbols src/vhu.map lists (nm -D --defined-only), every
# function the installed headers declare is among them, and all carry the map's version; the
# structs that grow by size (abi-structs.txt) only grow at their end.
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

sed 's/@@*/@/' "$tmp/exported" >"$tmp/exported_v"
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
# Each symbol carries the version of the node that lists it (a release adds a node).
sed 's@/\*.*\*/@@' "$map" | awk '/^VHU_[0-9.]+/ { node = $1 }
	/^[[:space:]]+vhu_[a-z0-9_]+;/ { gsub(/[ \t;]/, ""); print $0 "@" node }' |
	sort >"$tmp/map_v"
if ! diff -u "$tmp/map_v" <(sort "$tmp/exported_v") >"$tmp/d3"; then
	echo "FAIL: symbol versions differ from the nodes of $map (- map, + exported):"
	cat "$tmp/d3"
	fail=1
fi
node=$(grep -oE '^VHU_[0-9.]+' "$map" | paste -sd' ')
# Structs that grow by size (tests/abi-structs.txt): the header's struct starts with size_t size
# and keeps every member the list has, same type, same order; new members only at the end.
structs=$(dirname "$0")/abi-structs.txt
if [ -f "$structs" ] && command -v python3 >/dev/null; then
	python3 - "$structs" "$inc"/vhu/*.h <<'PY' || fail=1
import re, sys
src = re.sub(r"/\*.*?\*/", "", "".join(open(h).read() for h in sys.argv[2:]), flags=re.S)
bad = 0
for line in open(sys.argv[1]):
    if line.startswith("#") or ":" not in line:
        continue
    name, decl = line.split(":", 1)
    want = [" ".join(d.split()) for d in decl.split(";") if d.strip()]
    m = re.search(r"struct %s \{(.*?)\};" % re.escape(name), src, re.S)
    if not m:
        print("FAIL: struct %s not in the headers" % name)
        bad = 1
        continue
    have = [" ".join(d.split()) for d in m.group(1).split(";") if d.strip()]
    if have[:1] != ["size_t size"]:
        print("FAIL: struct %s does not start with size_t size" % name)
        bad = 1
    if have[: len(want)] != want:
        for i, w in enumerate(want):
            h = have[i] if i < len(have) else "(missing)"
            if h != w:
                print("FAIL: struct %s member %d is '%s', was '%s' (members are only appended)" % (name, i, h, w))
                break
        bad = 1
    elif len(have) > len(want):
        print("note: struct %s has %d members the list lacks: %s" % (name, len(have) - len(want), have[len(want):]))
if not bad:
    print("ok: growing structs keep their members:", ", ".join(
        l.split(":")[0] for l in open(sys.argv[1]) if ":" in l and not l.startswith("#")))
sys.exit(bad)
PY
fi
n=$(wc -l <"$tmp/map")
[ "$n" -gt 0 ] || { echo "FAIL: empty map"; fail=1; }
[ $fail = 0 ] && echo "ok: $n symbols, each in its node ($node), headers covered"
exit $fail
