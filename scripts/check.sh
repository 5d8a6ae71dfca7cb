#!/bin/bash
# Runs every suite and ends with one line: N passed, N failed, N skipped.
#   build/       the normal build: unit, pair, bad, interop suites
#   build-nouring/ -Dblk=disabled (no liburing): the unit suite
#   build-asan/  ASan+UBSan build: unit, pair and bad suites again, and vduse-net
#   build-tsan/  TSan build: the two-thread ring test
#   build-fuzz/  clang libFuzzer build: the fuzz suite (bounded time)
set -uo pipefail
cd "$(dirname "$0")/.."
WERROR=false
[ "${CI:-}" = true ] && WERROR=true
export MESON_TESTTHREADS=${MESON_TESTTHREADS:-2}
status=0
build_failed=0

setup_dir() { # dir opts...
	local d=$1
	shift
	[ -f "$d/build.ninja" ] || meson setup "$d" -Dwerror=$WERROR "$@" >/dev/null || return 1
	ninja -C "$d" >/dev/null || { ninja -C "$d"; return 1; }
}

run_suites() { # dir suites...
	local d=$1
	shift
	local args=()
	for s in "$@"; do args+=(--suite "$s"); done
	meson test -C "$d" --print-errorlogs "${args[@]}" || status=1
	cp "$d/meson-logs/testlog.json" "out/check-$(basename "$d").json"
}

mkdir -p out
rm -f out/check-*.json
setup_dir build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
run_suites build style unit pair bad interop
# Only vhu-blk needs liburing: the library, the other tools and their tests build without it.
if setup_dir build-nouring -Dblk=disabled; then
	run_suites build-nouring unit
else
	echo "check: the build without liburing failed"
	status=1
	build_failed=$((build_failed + 1))
fi
if setup_dir build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_suites build-asan unit pair bad
	# And one interop test with the sanitized binaries in its guest: vhu-net's VDUSE ports
	# (a device reset, one the kernel gives up on and created again, vhost-vdpa runs).
	meson test -C build-asan --print-errorlogs vduse-net || status=1
	cp build-asan/meson-logs/testlog.json out/check-build-asan-vduse.json
else
	echo "check: the sanitizer build failed"
	status=1
	build_failed=$((build_failed + 1))
fi
# ThreadSanitizer: the two-thread driver/device ring test. TSan does not model fences and gcc
# warns about each one (-Wtsan); the ring code's fences stay, the warning is silenced here only.
if setup_dir build-tsan -Db_sanitize=thread -Db_lundef=false -Dc_args=-Wno-tsan; then
	TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --print-errorlogs drvq iotlb || status=1
	cp build-tsan/meson-logs/testlog.json out/check-build-tsan.json
else
	echo "check: the thread-sanitizer build failed"
	status=1
	build_failed=$((build_failed + 1))
fi
if command -v clang >/dev/null; then
	if CC=clang setup_dir build-fuzz -Dfuzz=true -Dtests=false; then
		run_suites build-fuzz fuzz
	else
		echo "check: the fuzz build failed"
		status=1
		build_failed=$((build_failed + 1))
	fi
fi
BUILD_FAILED=$build_failed python3 - <<'PY'
import glob, json, os
p = s = 0
f = int(os.environ["BUILD_FAILED"])  # a build that fails counts as one failed test
for path in sorted(glob.glob("out/check-*.json")):
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else: f += 1
print(f"{p} passed, {f} failed, {s} skipped")
PY
exit $status
