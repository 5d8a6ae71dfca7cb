#!/bin/bash
# The vhost-user JSON descriptors libvirt reads (vhost-user.rst "Backend program conventions"):
# installs the build into a temporary directory, then checks that each installed
# qemu/vhost-user/50-*.json parses, has description, type and binary, that binary is the
# installed program, and that the program's --print-capabilities agrees on the type and lists
# only features the conventions define for it (vhost-user-blk: read-only).
#   BUILD=build SRC=. descriptors.sh
set -uo pipefail
: "${BUILD:?}" "${SRC:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

dest=$tmp/dest
meson install -C "$BUILD" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }
want="vhu-net"
[ -x "$BUILD/tools/vhu-blk" ] && want="$want vhu-blk"
for b in $want; do
	f=$(find "$dest" -path "*/qemu/vhost-user/50-$b.json")
	[ -n "$f" ] || fail "no qemu/vhost-user/50-$b.json installed"
	python3 - "$f" "$dest" "$b" <<'PY' || exit 1
import json, os, subprocess, sys
path, dest, name = sys.argv[1:]
d = json.load(open(path))
def fail(msg):
    print("FAIL: %s: %s" % (path, msg))
    sys.exit(1)
for k in ("description", "type", "binary"):
    if not isinstance(d.get(k), str) or not d[k]:
        fail("no %s" % k)
if not os.path.isabs(d["binary"]) or os.path.basename(d["binary"]) != name:
    fail("binary %s is not the installed %s" % (d["binary"], name))
binary = dest + d["binary"]
if not os.access(binary, os.X_OK):
    fail("binary %s not installed" % d["binary"])
out = subprocess.run([binary, "--print-capabilities"], capture_output=True, text=True,
                     timeout=10)
if out.returncode != 0:
    fail("--print-capabilities: exit %d" % out.returncode)
caps = json.loads(out.stdout)
if caps.get("type") != d["type"]:
    fail("type %s, --print-capabilities says %s" % (d["type"], caps.get("type")))
known = {"block": {"read-only"}, "net": set()}[d["type"]]
feats = caps.get("features")
if not isinstance(feats, list) or not set(feats) <= known:
    fail("features %s: the conventions define %s" % (feats, sorted(known)))
if d["type"] == "block" and "read-only" not in feats:
    fail("vhu-blk takes --read-only, its capabilities must say so")
print("ok: %s -> %s, type %s, features %s" % (os.path.basename(path), d["binary"],
                                                d["type"], feats))
PY
done
