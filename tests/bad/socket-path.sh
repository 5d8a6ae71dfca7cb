#!/bin/bash
# Socket paths (issue 8, section 6): a second vhu-net or vhu-blk on a live path is refused and
# the first keeps serving; a socket file left by kill -9 is reused; the socket's mode is 0600
# whatever the umask, or what --socket-mode / --socket-group ask for; SIGHUP does not end them.
source "$(dirname "$0")/../interop/lib.sh"
VHU_BLK=$BUILD/tools/vhu-blk
VHU_FE=$BUILD/tools/vhu-fe
umask 000 # a wide umask: the modes below must not come from it

mode_of() { stat -c %a "$1"; }

# start NAME LOG ARGS...: starts a daemon, waits for its socket ($S), records its pid in $PID.
start() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	PID=$!
	PIDS+=("$PID")
	wait_log "$log" "port(s)\|MiB" 10 || fail "$* did not start: $(cat "$log")"
}

probe() { timeout 10 "$VHU_FE" probe --socket-path "$1" >/dev/null 2>&1; }

for dev in net blk; do
	S=$T/$dev.sock
	if [ $dev = net ]; then
		cmd=("$VHU_NET" --loopback --socket-path "$S")
	else
		cmd=("$VHU_BLK" --null 1M --socket-path "$S")
	fi
	start "$T/$dev-1.log" "${cmd[@]}"
	first=$PID
	[ "$(mode_of "$S")" = 600 ] || fail "$dev: socket mode $(mode_of "$S"), want 600 (umask 000)"
	ino=$(stat -c %i "$S")

	# A second instance on the live path: refused, non-zero, the first untouched.
	timeout 10 "${cmd[@]}" >"$T/$dev-2.log" 2>&1
	rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$dev: second instance exited $rc: $(cat "$T/$dev-2.log")"
	grep -q "another back-end is listening on $S" "$T/$dev-2.log" ||
		fail "$dev: no clear error: $(cat "$T/$dev-2.log")"
	kill -0 $first || fail "$dev: the first instance died"
	[ "$(stat -c %i "$S")" = "$ino" ] || fail "$dev: the socket file was replaced"
	probe "$S" || fail "$dev: the first instance no longer answers on $S"

	# kill -9 leaves the socket file behind; the next start reuses it.
	kill -9 $first
	wait $first 2>/dev/null
	[ -S "$S" ] || fail "$dev: kill -9 removed the socket file (test assumption)"
	start "$T/$dev-3.log" "${cmd[@]}"
	probe "$S" || fail "$dev: the restarted instance does not answer on the stale path"
	# SIGHUP is not fatal: a daemon started from a terminal outlives it.
	kill -HUP $PID
	sleep 0.2
	kill -0 $PID 2>/dev/null || fail "$dev: SIGHUP ended it"
	probe "$S" || fail "$dev: no answer after SIGHUP"
	kill $PID
	wait $PID 2>/dev/null
	[ -e "$S" ] && fail "$dev: SIGTERM left the socket file"

	# --socket-mode, and --socket-group (here our own group) with its default 0660.
	start "$T/$dev-4.log" "${cmd[@]}" --socket-mode 0640
	[ "$(mode_of "$S")" = 640 ] || fail "$dev: --socket-mode 0640 gave $(mode_of "$S")"
	kill $PID
	wait $PID 2>/dev/null
	start "$T/$dev-5.log" "${cmd[@]}" --socket-group "$(id -g)"
	[ "$(mode_of "$S")" = 660 ] || fail "$dev: --socket-group gave mode $(mode_of "$S")"
	[ "$(stat -c %g "$S")" = "$(id -g)" ] || fail "$dev: --socket-group gave gid $(stat -c %g "$S")"
	probe "$S" || fail "$dev: no answer with --socket-group"
	kill $PID
	wait $PID 2>/dev/null

	# A path that is not a socket is never removed.
	echo keep >"$S"
	timeout 10 "${cmd[@]}" >"$T/$dev-6.log" 2>&1 && fail "$dev: started over a regular file"
	[ "$(cat "$S")" = keep ] || fail "$dev: a regular file at the socket path was removed"
	rm -f "$S"
	echo "ok: $dev"
done
echo PASS
