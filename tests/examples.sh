#!/bin/bash
# Builds examples/ as an outside project would and runs them: installs the build into a
# temporary directory (meson install --destdir), compiles each example with
# `cc $(pkg-config --cflags --libs vhu)` against the installed headers, checks it is linked
# to the installed libvhu.so.0 (NEEDED, and resolved there), then runs the example back-end
# with the example front-end (also linked statically with pkg-config --static), and vhu-fe
# probe against it.
#   BUILD=build SRC=. examples.sh
set -uo pipefail
: "${BUILD:?}" "${SRC:?}"
CC=${CC:-cc}
command -v pkg-config >/dev/null || { echo "pkg-config not found"; exit 77; }
command -v "$CC" >/dev/null || { echo "$CC not found"; exit 77; }
tmp=$(mktemp -d)
be=
cleanup() {
	[ -n "$be" ] && kill "$be" 2>/dev/null && wait "$be" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

dest=$tmp/dest
meson install -C "$BUILD" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }
pc=$(find "$dest" -name vhu.pc | head -1)
[ -n "$pc" ] || fail "no vhu.pc installed"
for h in vhu.h backend.h virtq.h frontend.h proto.h net.h blk.h vduse.h; do
	[ -n "$(find "$dest" -path "*/include/vhu/$h")" ] || fail "header vhu/$h not installed"
done
for p in vhu_backend_new vhu_virtq_pop vhu_net_rx vhu_blk_parse vhu_frontend_open vhu_vduse_new; do
	[ -n "$(find "$dest" -path "*/man3/$p.3*")" ] || fail "man page $p(3) not installed"
done
# The .pc file names the final prefix; the sysroot variable points it at the staging copy.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR= # no system .pc files
want=$(meson introspect "$BUILD" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$(pkg-config --modversion vhu)" = "$want" ] || fail "pkg-config --modversion: $(pkg-config --modversion vhu), want $want"
flags=$(pkg-config --cflags --libs vhu) || fail "pkg-config --cflags --libs vhu"
echo "pkg-config: $flags"
libdir=$(pkg-config --libs-only-L vhu | sed 's/^ *-L//; s/ *$//') # sysroot included
[ -e "$libdir/libvhu.so.0" ] || fail "libvhu.so.0 not in $libdir"

for ex in rng rng-fe; do
	# shellcheck disable=SC2086 # the flags are words
	"$CC" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$tmp/$ex" "$SRC/examples/$ex.c" $flags ||
		fail "building examples/$ex.c against the installed library"
	# Whole outputs first: `cmd | grep -q` under pipefail fails when grep quits early and
	# cmd dies of SIGPIPE.
	dyn=$(readelf -d "$tmp/$ex")
	grep -q 'NEEDED.*\[libvhu\.so\.0\]' <<<"$dyn" || fail "$ex: libvhu.so.0 is not NEEDED"
	deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/$ex")
	grep -q "libvhu\.so\.0 => $libdir/" <<<"$deps" ||
		fail "$ex: libvhu.so.0 does not resolve to the installed copy"
done

# Libs.private: the static library links with what `pkg-config --static` adds (when the C
# library has a static variant at all).
static=
if echo 'int main(void){return 0;}' | "$CC" -static -x c -o "$tmp/t" - 2>/dev/null; then
	# shellcheck disable=SC2046
	"$CC" -std=c11 -D_GNU_SOURCE -Wall -Werror -static -o "$tmp/rng-fe-static" \
		"$SRC/examples/rng-fe.c" $(pkg-config --cflags --static --libs vhu) ||
		fail "static build of rng-fe with pkg-config --static"
	static=$tmp/rng-fe-static
fi

export LD_LIBRARY_PATH=$libdir
sock=$tmp/rng.sock
run_backend() {
	"$tmp/rng" --socket-path "$sock" 2>"$tmp/be.log" &
	be=$!
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
	fail "the example back-end did not listen"
}
run_backend
timeout 30 "$tmp/rng-fe" --socket-path "$sock" >"$tmp/fe.log" 2>&1 ||
	{ cat "$tmp/fe.log" "$tmp/be.log"; fail "example front-end against example back-end"; }
cat "$tmp/fe.log"
grep -qx ok "$tmp/fe.log" || fail "front-end output"
wait "$be" || fail "the example back-end exited with $?"
be=
grep -q "after 1024 random bytes" "$tmp/be.log" || { cat "$tmp/be.log"; fail "back-end count"; }

if [ -n "$static" ]; then
	rm -f "$sock"
	run_backend
	if ! timeout 30 "$static" --socket-path "$sock" >"$tmp/fe.log" 2>&1 ||
		! grep -qx ok "$tmp/fe.log"; then
		cat "$tmp/fe.log" "$tmp/be.log"
		fail "statically linked front-end"
	fi
	wait "$be" || fail "the example back-end exited with $?"
	be=
	echo "statically linked front-end: ok"
fi

# A front-end that is not ours: vhu-fe probe sees what the example offers.
if [ -x "$BUILD/tools/vhu-fe" ]; then
	rm -f "$sock"
	run_backend
	timeout 30 "$BUILD/tools/vhu-fe" probe --socket-path "$sock" >"$tmp/probe.log" 2>&1 ||
		{ cat "$tmp/probe.log"; fail "vhu-fe probe"; }
	grep -q VERSION_1 "$tmp/probe.log" || { cat "$tmp/probe.log"; fail "probe output"; }
	wait "$be"
	be=
fi
echo "ok: examples built against the installed libvhu and ran"
