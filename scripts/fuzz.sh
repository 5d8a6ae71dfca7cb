#!/bin/bash
# make fuzz: every libFuzzer harness for FUZZ_SECONDS (default 600) each on the build-fuzz tree
# (clang), FUZZ_JOBS (default 1) harnesses at a time. Inputs found go to
# build-fuzz/tests/fuzz/corpus-work/NAME, the seeds in tests/fuzz/corpus are only read; crashes
# are written as build-fuzz/tests/fuzz/NAME-crash-*. Prints, per harness, its execution count
# (libFuzzer's stat::number_of_executed_units) and final coverage.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-1}
B=build-fuzz
[ -f $B/build.ninja ] || CC=clang meson setup $B -Dfuzz=true -Dtests=false >/dev/null || exit 1
ninja -C $B >/dev/null || { ninja -C $B; exit 1; }
export UBSAN_OPTIONS=print_stacktrace=1 SECS B

run_one() { # exe: runs one harness, prints its summary line; exit status 1 on a finding
	local exe=$1 name=${1##*/fuzz-}
	local seeds=tests/fuzz/corpus/${name%-race}
	local work=$B/tests/fuzz/corpus-work/$name log=$B/tests/fuzz/$name.log
	local dirs=("$work")
	[ -d "$seeds" ] && dirs+=("$seeds")
	mkdir -p "$work"
	"$exe" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
		-close_fd_mask=2 -artifact_prefix="$B/tests/fuzz/$name-" "${dirs[@]}" >"$log" 2>&1
	local rc=$?
	local execs cov
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5 >&2
		printf '%-16s FAILED (rc %d) after %s executions, %s; see %s\n' "$name" $rc \
			"${execs:-?}" "$cov" "$log"
		return 1
	fi
	printf '%-16s %12s executions in %ss  %s\n' "$name" "${execs:-?}" "$SECS" "$cov"
}
export -f run_one

echo "fuzz: every harness for ${SECS}s, $JOBS at a time"
ls $B/tests/fuzz/fuzz-* | while read -r exe; do [ -f "$exe" ] && [ -x "$exe" ] && echo "$exe"; done |
	xargs -P "$JOBS" -I{} bash -c 'run_one {}' >$B/tests/fuzz/summary.txt
status=$?
sort $B/tests/fuzz/summary.txt
[ $status -eq 0 ]
