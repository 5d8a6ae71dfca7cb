#!/bin/bash
# make fuzz: every libFuzzer harness for FUZZ_SECONDS (default 600) each, one at a time, on
# the build-fuzz tree (clang). Inputs found go to build-fuzz/tests/fuzz/corpus-work/NAME, the
# seeds in tests/fuzz/corpus are only read; crashes are written as build-fuzz/tests/fuzz/NAME-crash-*.
# Prints, per harness, its execution count (libFuzzer's stat::number_of_executed_units).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-600}
B=build-fuzz
[ -f $B/build.ninja ] || CC=clang meson setup $B -Dfuzz=true -Dtests=false >/dev/null || exit 1
ninja -C $B >/dev/null || { ninja -C $B; exit 1; }
export UBSAN_OPTIONS=print_stacktrace=1
status=0
summary=()
for exe in $B/tests/fuzz/fuzz-*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	name=${exe##*/fuzz-}
	seeds=tests/fuzz/corpus/${name%-race}
	work=$B/tests/fuzz/corpus-work/$name
	log=$B/tests/fuzz/$name.log
	mkdir -p "$work"
	echo "fuzz-$name: ${SECS}s"
	"$exe" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
		-close_fd_mask=2 -artifact_prefix="$B/tests/fuzz/$name-" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		status=1
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5
		summary+=("$(printf '%-16s FAILED (rc %d) after %s executions, %s; see %s' "$name" $rc "${execs:-?}" "$cov" "$log")")
	else
		summary+=("$(printf '%-16s %12s executions  %s' "$name" "${execs:-?}" "$cov")")
	fi
done
printf '%s\n' "${summary[@]}"
exit $status
