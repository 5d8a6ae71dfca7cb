#!/bin/bash
# The comparison for online resize (docs/PROTOCOL.md, "Back-end requests"): qemu-storage-daemon
# 7.2's vhost-user-blk export on `block_resize`. vhu-fe probe --watch holds its back-end channel
# (qsd offers BACKEND_REQ) while QMP block_resize grows the disk from 64 to 96 MiB: the file
# grows, but nothing comes on the channel, and a new GET_CONFIG still says 64 MiB, so a guest
# never sees the new size. (vhu-blk: fe-vhu-blk-resize, qemu-blk-resize.) A qsd other than 7.2
# is not judged (skip): newer ones may send the message.
. "$(dirname "$0")/lib.sh"
need qemu-storage-daemon python3
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
qemu-storage-daemon --version | grep -q "version 7\.2\." || skip "qemu-storage-daemon is not 7.2"
S=$T/qsd.sock
IMG=$T/disk.img
truncate -s 64M "$IMG"
start_bg qsd qemu-storage-daemon \
	--blockdev driver=file,node-name=file0,filename="$IMG" \
	--blockdev driver=raw,node-name=disk,file=file0 \
	--export type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,addr.path="$S",writable=on \
	--chardev socket,id=m0,path="$T/qmp.sock",server=on,wait=off --monitor chardev=m0,mode=control
wait_file "$S" 10 || { cat "$T/qsd.log"; fail "qemu-storage-daemon did not listen"; }
start_bg fe "$VHU_FE" probe --socket-path "$S" --watch 3
wait_log "$T/fe.log" "size_max" 10 || { cat "$T/fe.log" "$T/qsd.log"; fail "probe did not print"; }
grep -q "BACKEND_REQ" "$T/fe.log" || fail "qemu-storage-daemon did not offer BACKEND_REQ"
python3 - "$T/qmp.sock" <<'PY' || fail "QMP block_resize"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ({"execute": "qmp_capabilities"},
            {"execute": "block_resize", "arguments": {"node-name": "disk", "size": 96 << 20}}):
    f.write(json.dumps(cmd) + "\n")
    f.flush()
    r = json.loads(f.readline())
    if "return" not in r:
        sys.exit(r)
PY
wait "$PID_fe" || { cat "$T/fe.log"; fail "vhu-fe probe --watch failed"; }
[ "$(stat -c %s "$IMG")" = 100663296 ] || fail "block_resize did not grow the file"
grep -q "config changed" "$T/fe.log" && { cat "$T/fe.log"; fail "qemu-storage-daemon 7.2 sent a config change (docs say it does not)"; }
"$VHU_FE" probe --socket-path "$S" >"$T/fe2.log" 2>&1 || fail "second probe"
grep -q "capacity *131072 sectors" "$T/fe2.log" || { cat "$T/fe2.log"; fail "qemu-storage-daemon's config changed after all"; }
echo "qemu-storage-daemon 7.2: the file grew to 96 MiB; no CONFIG_CHANGE_MSG; GET_CONFIG still 64 MiB"
echo "PASS: fe-qsd-resize"
