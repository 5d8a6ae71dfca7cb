#!/bin/bash
# vhu-fe net-bench --tso against vhu-net --loopback: TCP/IPv4 GSO frames (HOST_TSO4,
# NEEDS_CSUM) go through the switch's tx path and come back checked by vhu-fe:
#  1. GUEST_TSO4 negotiated (split rings): every frame comes back whole, across mergeable
#     buffers, with its GSO header (vhu-net counts "gso whole");
#  2. --tso-segments (packed rings): GUEST_* not negotiated, so vhu-net segments in software:
#     every segment's checksums, length, IPv4 id, sequence number, flags and bytes checked;
#  3. the same without MRG_RXBUF.
# No frame may be bad or lost, and vhu-net must not refuse a header.
. "$(dirname "$0")/lib.sh"
need python3
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/net.sock
start_bg net "$VHU_NET" --socket-path "$S" --loopback
wait_file "$S" 5 || fail "vhu-net did not listen"
run() { # name want(whole|segments) net-bench args...
	local name=$1 want=$2
	shift 2
	"$VHU_FE" net-bench --socket-path "$S" --mode loop --tso --duration "${FE_SECS:-1}" \
		--json --quiet "$@" >"$T/$name.json" 2>"$T/$name.err"
	local rc=$?
	cat "$T/$name.json" "$T/$name.err"
	python3 - "$T/$name.json" "$want" <<'PY' || fail "$name: net-bench --tso through vhu-net"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["tx_packets"] > 800 and r["bad"] == 0 and r["lost"] == 0, r
assert r["rx_packets"] == r["tx_packets"], r
if sys.argv[2] == "whole":
    assert r["tso_whole"] * 8 == r["rx_packets"] and r["tso_segments"] == 0, r
else:
    assert r["tso_segments"] == r["rx_packets"] and r["tso_whole"] == 0, r
PY
	[ $rc = 0 ] || fail "$name: net-bench exited with $rc"
}
run whole whole
run segments segments --packed --tso-segments
run nomrg segments --tso-segments --no-mrg-rxbuf
kill -TERM "$PID_net"
wait "$PID_net" 2>/dev/null
cat "$T/net.log"
line=$(grep "offloads:" "$T/net.log")
read -r whole segd bad <<<"$(echo "$line" | awk '{print $4, $7, $13}')"
[ "${whole:-0}" -gt 0 ] || fail "vhu-net passed no GSO frame whole"
[ "${segd:-0}" -gt 0 ] || fail "vhu-net segmented no GSO frame"
[ "${bad:-1}" = 0 ] || fail "vhu-net refused $bad headers"
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
echo "PASS: vhu-fe --tso -> vhu-net: whole frames and software segments checked"
