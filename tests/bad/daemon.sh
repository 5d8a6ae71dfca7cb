#!/bin/bash
# The daemon skeleton's connection modes that no other test drives (tools/common/daemon.c):
# vhu-blk --client (on --blk-file) connecting to a listening front-end (vhu-fe blk-bench
# --server) for a verified run, and
# vhu-net --fd with an inherited listening socket (the way a management layer starts it),
# each serving a checked run; then SIGTERM ends each cleanly (exit 0). And vhost-user.rst's
# conventions: --socket-path and --fd are incompatible (refused, exit 2); --print-capabilities
# ignores the other options and exits 0.
source "$(dirname "$0")/../interop/lib.sh"
source "$(dirname "$0")/lib.sh"
VHU_BLK=$BUILD/tools/vhu-blk
VHU_FE=$BUILD/tools/vhu-fe

for b in "$VHU_NET" "$VHU_BLK"; do
	[ -x "$b" ] || continue
	dev=(--loopback)
	[ "$b" = "$VHU_BLK" ] && dev=(--null 1M)
	"$b" --socket-path "$T/x.sock" --fd 0 "${dev[@]}" >"$T/both.log" 2>&1
	[ $? = 2 ] && grep -q "one of --socket-path or --fd" "$T/both.log" ||
		fail "$b took --socket-path with --fd: $(cat "$T/both.log")"
	"$b" --no-such-option --print-capabilities extra >"$T/caps.json" 2>&1 ||
		fail "$b --print-capabilities with other options: $(cat "$T/caps.json")"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/caps.json" ||
		fail "$b --print-capabilities: not JSON: $(cat "$T/caps.json")"
done
echo "ok: --socket-path with --fd refused, --print-capabilities ignores the rest"

if [ -x "$VHU_BLK" ]; then
	S=$T/blk.sock
	"$VHU_FE" blk-bench --server --socket-path "$S" --rw randrw --verify --duration 1 --quiet \
		>"$T/fe-blk.out" 2>&1 &
	fe=$!
	PIDS+=("$fe")
	wait_file "$S" 5 || fail "vhu-fe blk-bench --server did not listen"
	truncate -s 64M "$T/disk.img"
	"$VHU_BLK" --client --socket-path "$S" --blk-file "$T/disk.img" >"$T/blk.log" 2>&1 &
	blk=$!
	PIDS+=("$blk")
	wait "$fe" || fail "blk-bench against vhu-blk --client: $(cat "$T/fe-blk.out" "$T/blk.log")"
	grep -q "connected to front-end" "$T/blk.log" || fail "vhu-blk --client: $(cat "$T/blk.log")"
	stop_ok "$blk" "vhu-blk --client" "$T/blk.log"
	echo "ok: vhu-blk --client"
fi

S=$T/net.sock
# A listening socket made by someone else, inherited as fd 3.
start_on_fd "$S" "$T/net.log" "$VHU_NET" --loopback
net=$PID
wait_log "$T/net.log" "port(s)" 5 || fail "vhu-net --fd did not start: $(cat "$T/net.log")"
"$VHU_FE" net-bench --socket-path "$S" --mode loop --duration 1 --quiet >"$T/fe-net.out" 2>&1 ||
	fail "net-bench against vhu-net --fd (listening): $(cat "$T/fe-net.out" "$T/net.log")"
stop_ok "$net" "vhu-net --fd" "$T/net.log"
echo "ok: vhu-net --fd (listening)"
