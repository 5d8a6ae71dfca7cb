#!/bin/bash
# SIGHUP never ends vhu-blk, in any mode: listening with --image and with --null, --client
# with no front-end there yet (connecting once a second), --fd with an inherited listening
# socket. (main() blocks SIGHUP first thing, so one that comes before the loop waits for it;
# a test cannot aim a signal between exec and main().) Each gets SIGHUP three times, must still
# be running, and then exit 0 on SIGTERM. With --image and no front-end the new size is taken
# (logged); with --null the size stays.
source "$(dirname "$0")/../interop/lib.sh"
source "$(dirname "$0")/lib.sh"
VHU_BLK=$BUILD/tools/vhu-blk
[ -x "$VHU_BLK" ] || skip "vhu-blk not built"

# hup PID NAME LOG: three SIGHUPs; still alive; SIGTERM ends it with status 0 within 5 s.
hup() {
	for _ in 1 2 3; do
		kill -HUP "$1" 2>/dev/null || fail "$2: gone before SIGHUP: $(cat "$3")"
		sleep 0.1
	done
	sleep 0.2
	kill -0 "$1" 2>/dev/null || fail "$2: SIGHUP ended it: $(cat "$3")"
	stop_ok "$1" "$2" "$3"
	echo "ok: $2"
}

truncate -s 4M "$T/disk.img"
"$VHU_BLK" --socket-path "$T/a.sock" --image "$T/disk.img" >"$T/a.log" 2>&1 &
a=$!
PIDS+=("$a")
wait_file "$T/a.sock" 5 || fail "vhu-blk --image did not listen: $(cat "$T/a.log")"
truncate -s 8M "$T/disk.img"
hup "$a" "vhu-blk --image (listening)" "$T/a.log"
grep -q "capacity 8192 -> 16384 sectors" "$T/a.log" || fail "the new size was not taken: $(cat "$T/a.log")"

"$VHU_BLK" --socket-path "$T/b.sock" --null 1M >"$T/b.log" 2>&1 &
b=$!
PIDS+=("$b")
wait_file "$T/b.sock" 5 || fail "vhu-blk --null did not listen: $(cat "$T/b.log")"
hup "$b" "vhu-blk --null" "$T/b.log"
grep -q "keeps its size" "$T/b.log" || fail "vhu-blk --null: $(cat "$T/b.log")"

"$VHU_BLK" --client --socket-path "$T/nobody.sock" --null 1M >"$T/c.log" 2>&1 &
c=$!
PIDS+=("$c")
sleep 0.3
hup "$c" "vhu-blk --client (no front-end yet)" "$T/c.log"

start_on_fd "$T/d.sock" "$T/d.log" "$VHU_BLK" --null 1M
d=$PID
wait_log "$T/d.log" "queue(s)" 5 || fail "vhu-blk --fd did not start: $(cat "$T/d.log")"
hup "$d" "vhu-blk --fd (listening)" "$T/d.log"

echo "PASS: sighup"
