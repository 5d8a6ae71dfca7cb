#!/bin/bash
# vhu-fe net-bench --tso against vhu-net --loopback: TCP/IPv4 GSO frames (HOST_TSO4,
# NEEDS_CSUM) go through the switch's tx path and come back checked by vhu-fe:
#  1. GUEST_TSO4 negotiated (split rings): every frame comes back whole, across mergeable
#     buffers, with its GSO header (vhu-net counts "gso whole");
#  2. --tso-segments (packed rings): GUEST_* not negotiated, so vhu-net segments in software:
#     every segment's checksums, length, IPv4 id, sequence number, flags and bytes checked;
#  3. the same without MRG_RXBUF.
# No frame may be bad or lost, and vhu-net must not refuse a header.
# Then jumbo frames and USO through a two-port switch (vhu-net --mtu 9000), vhu-fe sending on
# port 0 and checking on port 1 (--peer):
#  4. 9014-byte frames, split and packed rings, with MRG_RXBUF (each frame in several 2 KiB
#     buffers: num_buffers, full buffers but the last, every byte) and without (big buffers),
#     sent as one buffer or in parts (--tx-parts); MTU 9000 negotiated;
#  5. 9019-byte frames (over MTU + 18: Ethernet and a VLAN tag): none delivered, each counted
#     by vhu-net as "oversize" and an rx drop of port 1;
#  6. --uso: UDP/IPv4 GSO frames (HOST_USO) whole to a receiver with GUEST_USO4, and segmented
#     by vhu-net for one without (--tso-segments): UDP lengths, checksums and bytes checked;
#     the same over IPv6 (GUEST_USO6; segments without MRG_RXBUF). vhu-net's "gso whole" and
#     "gso segmented" counters of port 1 must match the frames sent;
#  7. --tso --ipv6: TCP/IPv6 GSO frames (HOST_TSO6) whole to a receiver with GUEST_TSO6, and
#     segmented for one without: payload lengths, checksums, sequence numbers and bytes
#     checked, and counted in the same two counters.
. "$(dirname "$0")/lib.sh"
need python3
VHU_FE=${VHU_FE:-$BUILD/tools/vhu-fe}
S=$T/net.sock
start_bg net "$VHU_NET" --socket-path "$S" --loopback
start_bg sw "$VHU_NET" --socket-path "$T/p0.sock" --socket-path "$T/p1.sock" --mtu 9000
wait_file "$S" 5 || fail "vhu-net did not listen"
wait_file "$T/p1.sock" 5 || fail "vhu-net (switch) did not listen"
# run name want(whole|segments|merged|single|oversize) net-bench args...
run() {
	local name=$1 want=$2
	shift 2
	"$VHU_FE" net-bench --mode loop --duration "${FE_SECS:-1}" --json --quiet "$@" \
		>"$T/$name.json" 2>"$T/$name.err"
	local rc=$?
	cat "$T/$name.json" "$T/$name.err"
	python3 - "$T/$name.json" "$want" <<'PY' || fail "$name: net-bench through vhu-net"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
want = sys.argv[2]
if want == "oversize":
    # Nothing may come back: the window's worth of frames sent, all lost, none bad.
    assert r["tx_packets"] > 0 and r["rx_packets"] == 0 and r["bad"] == 0, r
    assert r["lost"] == r["tx_packets"] and r["mtu"] == 9000, r
    sys.exit(0)
assert r["tx_packets"] > 800 and r["bad"] == 0 and r["lost"] == 0, r
assert r["rx_packets"] == r["tx_packets"], r
if want == "whole":
    assert r["tso_whole"] * 8 == r["rx_packets"] and r["tso_segments"] == 0, r
elif want == "segments":
    assert r["tso_segments"] == r["rx_packets"] and r["tso_whole"] == 0, r
elif want == "merged":  # every 9014-byte frame in several buffers
    assert r["rx_merged"] == r["rx_packets"] and r["mtu"] == 9000, r
elif want == "single":  # one big buffer each
    assert r["rx_merged"] == 0 and r["mtu"] == 9000, r
PY
	# A run whose frames must all be dropped ends with them lost: exit status 1.
	[ "$want" = oversize ] && { [ $rc = 1 ] || fail "$name: net-bench exited with $rc"; }
	[ "$want" = oversize ] || [ $rc = 0 ] || fail "$name: net-bench exited with $rc"
}
run whole whole --socket-path "$S" --tso
run segments segments --socket-path "$S" --tso --packed --tso-segments
run nomrg segments --socket-path "$S" --tso --tso-segments --no-mrg-rxbuf
SW=(--socket-path "$T/p0.sock" --peer "$T/p1.sock")
FE_SECS=${FE_SECS:-0.5} # tens of thousands of frames: enough, and cheap
run jumbo-split merged "${SW[@]}" --size 9014
run jumbo-packed-parts merged "${SW[@]}" --size 9014 --packed --tx-parts 4
run jumbo-nomrg-parts single "${SW[@]}" --size 9014 --no-mrg-rxbuf --tx-parts 3
run jumbo-nomrg-packed single "${SW[@]}" --size 9014 --no-mrg-rxbuf --packed
FE_SECS=0.3 run oversize oversize "${SW[@]}" --size 9019
run uso-whole whole "${SW[@]}" --uso
run uso-segments segments "${SW[@]}" --uso --tso-segments --packed
run uso6-whole whole "${SW[@]}" --uso --ipv6 --packed
run uso6-segments segments "${SW[@]}" --uso --ipv6 --tso-segments --no-mrg-rxbuf
run tso6-whole whole "${SW[@]}" --tso --ipv6
run tso6-segments segments "${SW[@]}" --tso --ipv6 --tso-segments --packed
kill -TERM "$PID_net" "$PID_sw"
wait "$PID_net" "$PID_sw" 2>/dev/null
cat "$T/net.log"
line=$(grep "offloads:" "$T/net.log")
read -r whole segd bad <<<"$(echo "$line" | awk '{print $4, $7, $13}')"
[ "${whole:-0}" -gt 0 ] || fail "vhu-net passed no GSO frame whole"
[ "${segd:-0}" -gt 0 ] || fail "vhu-net segmented no GSO frame"
[ "${bad:-1}" = 0 ] || fail "vhu-net refused $bad headers"
grep -q "error" "$T/net.log" && fail "vhu-net logged an error"
cat "$T/sw.log"
python3 - "$T" <<'PY' || fail "vhu-net (switch) counters"
import json, re, sys
t = sys.argv[1]
def js(name):
    return json.loads(open(f"{t}/{name}.json").read().strip().splitlines()[-1])
log = open(f"{t}/sw.log").read()
ports = {}
for m in re.finditer(r"^port (\d) .*\n  offloads: gso whole (\d+) gso segmented (\d+) csum "
                     r"completed (\d+) bad header (\d+) oversize (\d+)\n"
                     r"  queue 0 rx: packets (\d+) bytes \d+ drops (\d+)", log, re.M):
    ports[int(m[1])] = [int(x) for x in m.groups()[1:]]
assert set(ports) == {0, 1}, ports
gw, gs, cc, bad, over, rxp, drops = ports[1]
sent_over = js("oversize")["tx_packets"]
assert over == sent_over and drops == sent_over, (ports, sent_over)
frames = lambda *runs: sum(js(r)["tx_packets"] // 8 for r in runs)
assert gw == frames("uso-whole", "uso6-whole", "tso6-whole"), (ports, "gso whole")
assert gs == frames("uso-segments", "uso6-segments", "tso6-segments"), (ports, "gso segmented")
assert bad == 0 and cc == 0 and ports[0][3] == 0 and ports[0][6] == 0, ports
print("switch port 1:", ports[1])
PY
grep -q "error" "$T/sw.log" && fail "vhu-net (switch) logged an error"
echo "PASS: vhu-fe --tso -> vhu-net: whole frames and software segments checked;" \
	"jumbo frames (MTU 9000, merged and big buffers), oversize drops, USO and TCP/IPv6 GSO through the switch"
