#!/bin/bash
# Online resize through our own front-end: vhu-fe probe --watch on vhu-blk (BACKEND_REQ, CONFIG,
# REPLY_ACK negotiated, the channel served by vhu_frontend_channel_dispatch). The image grows
# from 16 to 48 MiB, then shrinks to 8 MiB, each time with SIGHUP: vhu-fe must print
# "config changed" with the new capacity each time (it reads it with GET_CONFIG from its
# callback, before acking), and vhu-blk must log no error (every ack came).
. "$(dirname "$0")/lib.sh"
VHU_BLK=${VHU_BLK:-$BUILD/tools/vhu-blk}
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/blk.sock
IMG=$T/disk.img
truncate -s 16M "$IMG"
start_bg blk "$VHU_BLK" --socket-path "$S" --image "$IMG"
wait_file "$S" 5 || { cat "$T/blk.log"; fail "vhu-blk did not listen"; }
start_bg fe "$VHU_FE" probe --socket-path "$S" --watch 20
wait_log "$T/fe.log" "size_max" 10 || { cat "$T/fe.log" "$T/blk.log"; fail "probe did not print"; }
truncate -s 48M "$IMG"
kill -HUP "$PID_blk"
wait_log "$T/fe.log" "config changed (1)" 10 || { cat "$T/fe.log" "$T/blk.log"; fail "no config change seen"; }
wait_log "$T/fe.log" "98304 sectors" 5 || { cat "$T/fe.log"; fail "the new capacity was not printed"; }
truncate -s 8M "$IMG"
kill -HUP "$PID_blk"
wait_log "$T/fe.log" "config changed (2)" 10 || { cat "$T/fe.log" "$T/blk.log"; fail "no second config change"; }
wait_log "$T/fe.log" "16384 sectors" 5 || { cat "$T/fe.log"; fail "the shrunk capacity was not printed"; }
sleep 0.3
kill -TERM "$PID_fe"
kill -TERM "$PID_blk"
wait "$PID_blk" 2>/dev/null
grep -E "capacity|config changed" "$T/fe.log"
grep -qi "error" "$T/blk.log" && { cat "$T/blk.log"; fail "vhu-blk logged an error"; }
[ "$(grep -c "front-end told" "$T/blk.log")" = 2 ] || { cat "$T/blk.log"; fail "vhu-blk did not send two config changes"; }
echo "PASS: fe-vhu-blk-resize"
