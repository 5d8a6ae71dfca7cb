#!/bin/bash
# The front-end survives its back-end being killed with SIGKILL and started again:
#   peer=qsd      client mode: qemu-storage-daemon is killed 3 times under
#                 blk-bench --verify (random reads and writes, 2 queues) and restarted on the
#                 same socket; the run completes with 0 errors and 0 verify errors.
#   peer=vhu-blk  the same against vhu-blk, which offers INFLIGHT_SHMFD: the front-end keeps
#                 the inflight buffer and hands it to each new vhu-blk, which resubmits what
#                 the killed one had in flight (split rings; packed=1 runs packed rings).
#                 Each kill is sure to find requests in flight: vhu-blk is stopped
#                 (SIGSTOP) and killed only when its inflight region holds some
#                 (inflight-busy.py), else let go on for 20 ms and tried again; every
#                 restarted vhu-blk must then resubmit.
#   peer=vhu-net  server mode: vhu-fe listens, vhu-net --client --loopback connects; vhu-net is
#                 killed twice under net-bench --mode loop and started again; it reconnects,
#                 the traffic resumes, nothing beyond the frames it held is lost, none is bad.
# log=1: with --log-check (dirty logging on, given again to each new back-end): every page
#   written across the restarts must be marked, log_missing 0.
# usage: fe-reconnect.sh peer=qsd|vhu-blk|vhu-net [packed=0|1] [log=0|1]
. "$(dirname "$0")/lib.sh"
need python3
PEER=qsd PACKED=0 LOG=0
for a in "$@"; do case $a in peer=*) PEER=${a#*=} ;; packed=*) PACKED=${a#*=} ;; log=*) LOG=${a#*=} ;; esac; done
logargs=()
[ "$LOG" = 1 ] && logargs+=(--log-check)
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/be.sock

if [ "$PEER" = qsd ] || [ "$PEER" = vhu-blk ]; then
	[ "$PEER" = qsd ] && need qemu-storage-daemon
	IMG=$T/disk.img
	truncate -s 64M "$IMG"
	N=0
	qsd() {
		N=$((N + 1))
		if [ "$PEER" = vhu-blk ]; then
			# Writethrough (every write stable before it completes) keeps requests in
			# flight longer, so that kill_busy seldom has to try twice.
			"${VHU_BLK:-$BUILD/tools/vhu-blk}" --socket-path "$S" --image "$IMG" --queues 2 \
				--writethrough >"$T/qsd.$N.log" 2>&1 &
			QPID=$!
			PIDS+=($QPID)
			return
		fi
		qemu-storage-daemon \
			--blockdev driver=file,node-name=file0,filename="$IMG",cache.direct=on,aio=native \
			--blockdev driver=raw,node-name=disk,file=file0 \
			--export type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,addr.path="$S",writable=on,num-queues=2 \
			>>"$T/qsd.log" 2>&1 &
		QPID=$!
		PIDS+=($QPID)
	}
	layout=split
	[ "$PACKED" = 1 ] && layout=packed
	# SIGKILL the back-end; vhu-blk only at a moment it holds requests in flight.
	kill_busy() {
		if [ "$PEER" = vhu-blk ]; then
			for try in $(seq 100); do
				kill -STOP "$QPID"
				python3 "$(dirname "$0")/inflight-busy.py" "$QPID" "$layout" \
					>"$T/busy.out" 2>&1 && break
				kill -CONT "$QPID"
				sleep 0.02
			done
			echo "kill $i (try $try): $(tr '\n' ' ' <"$T/busy.out")"
		fi
		kill -9 "$QPID"
	}
	qsd
	wait_file "$S" 10 || fail "qemu-storage-daemon did not listen"
	bargs=()
	[ "$PACKED" = 1 ] && bargs+=(--packed)
	"$VHU_FE" blk-bench --socket-path "$S" --rw randrw --iodepth 16 --queues 2 --duration 9 \
		--verify --json --quiet "${bargs[@]}" "${logargs[@]}" >"$T/bench.json" 2>"$T/bench.err" &
	BPID=$!
	for i in 1 2 3; do
		sleep 2
		kill_busy
		wait "$QPID" 2>/dev/null
		sleep 0.2
		qsd
	done
	wait $BPID
	rc=$?
	cat "$T/bench.json" "$T/bench.err"
	[ "$PEER" = vhu-blk ] && cat "$T"/qsd.*.log >"$T/qsd.log"
	python3 - "$T/bench.json" <<'PY' || { cat "$T/qsd.log"; fail "blk-bench across $PEER restarts"; }
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["reconnects"] == 3, r
assert r["errors"] == 0 and r["verify_errors"] == 0 and r["reads_verified"] > 0, r
assert r.get("log_missing", 0) == 0 and r.get("log_written", 1) > 0, r
PY
	[ $rc = 0 ] || fail "blk-bench exited with $rc"
	if [ "$PEER" = vhu-blk ]; then
		grep "resubmitting" "$T/qsd.log"
		for n in 2 3 4; do
			grep -q "resubmitting [1-9]" "$T/qsd.$n.log" ||
				{ cat "$T/qsd.$n.log"; fail "vhu-blk started after kill $((n - 1)) resubmitted nothing"; }
		done
	fi
	echo "PASS: vhu-fe blk-bench survives 3 x kill -9 of $PEER (client mode, packed=$PACKED)"
	exit 0
fi

# peer=vhu-net: vhu-fe is the server.
args=(--socket-path "$S" --server --mode loop --duration 8 --json --quiet "${logargs[@]}")
[ "$PACKED" = 1 ] && args+=(--packed)
"$VHU_FE" net-bench "${args[@]}" >"$T/bench.json" 2>"$T/bench.err" &
BPID=$!
wait_file "$S" 5 || fail "vhu-fe did not listen"
net() {
	"$VHU_NET" --socket-path "$S" --client --loopback >>"$T/net.log" 2>&1 &
	NPID=$!
	PIDS+=($NPID)
}
net
for i in 1 2; do
	sleep 2
	kill -9 "$NPID"
	wait "$NPID" 2>/dev/null
	sleep 0.3
	net
done
wait $BPID
rc=$?
cat "$T/bench.json" "$T/bench.err"
python3 - "$T/bench.json" <<'PY' || fail "net-bench across vhu-net restarts"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["reconnects"] == 2, r
assert r["bad"] == 0 and r["lost"] <= r["lost_allowed"], r
assert r["rx_since_reconnect"] > 10000, r
assert r.get("log_missing", 0) == 0 and r.get("log_written", 1) > 0, r
PY
[ $rc = 0 ] || fail "net-bench exited with $rc"
echo "PASS: vhu-fe net-bench (server mode) survives 2 x kill -9 of vhu-net --client (packed=$PACKED)"
