#!/bin/bash
# make demo: vhu-net --loopback, a QEMU 7.2 guest (TCG) on it, pings going through, and
# vhu-net's per-queue counters; everything is stopped cleanly at the end.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
GUEST=${GUEST:-$SRC/out/guest}
T=$(mktemp -d /tmp/vhu-demo.XXXXXX)
trap 'kill -9 $QPID $NPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
QPID= NPID=

for c in qemu-system-x86_64 cpio gzip; do
	command -v $c >/dev/null || { echo "demo: $c is missing (run make setup as root)"; exit 1; }
done
[ -f "$GUEST/initramfs.cpio.gz" ] || OUT=$GUEST "$SRC/scripts/mkguest.sh" ||
	{ echo "demo: cannot build the guest (linux-image-amd64, busybox-static)"; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting vhu-net: one port on $T/net.sock, loopback (answers ARP and ping for any address)"
echo "\$ vhu-net --socket-path $T/net.sock --loopback"
"$BUILD/tools/vhu-net" --socket-path "$T/net.sock" --loopback >"$T/net.out" 2>"$T/net.err" &
NPID=$!
for _ in $(seq 50); do [ -S "$T/net.sock" ] && break; sleep 0.1; done
[ -S "$T/net.sock" ] || { cat "$T/net.err"; echo "demo: vhu-net did not start"; exit 1; }

# The guest's script: bring eth0 up and ping a made-up neighbour that vhu-net impersonates.
mkdir -p "$T/rd"
cat >"$T/rd/test.sh" <<'GUEST'
#!/bin/sh
ip link set eth0 up
ip addr add 10.0.0.1/24 dev eth0
echo "guest: eth0 $(cat /sys/class/net/eth0/address), pinging 10.0.0.2 through vhu-net"
ping -c 5 -i 0.5 10.0.0.2
ping -c 3 -s 1400 -i 0.5 10.0.0.2 | tail -2
GUEST
chmod +x "$T/rd/test.sh"
(cd "$T/rd" && echo test.sh | cpio -o -H newc --quiet | gzip -1) >"$T/extra.gz"
cat "$GUEST/initramfs.cpio.gz" "$T/extra.gz" >"$T/initrd.gz"

step "booting a QEMU guest (TCG, 256 MiB shared memfd RAM) with virtio-net on vhost-user"
cat <<CMD
\$ qemu-system-x86_64 -accel tcg -m 256 -nographic \\
    -object memory-backend-memfd,id=mem0,size=256M,share=on -numa node,memdev=mem0 \\
    -chardev socket,id=c0,path=$T/net.sock \\
    -netdev vhost-user,id=n0,chardev=c0 \\
    -device virtio-net-pci,netdev=n0,vectors=0 -kernel ... -initrd ...
CMD
timeout 180 qemu-system-x86_64 -accel tcg -nographic -no-reboot -m 256 -cpu max \
	-object memory-backend-memfd,id=mem0,size=256M,share=on -numa node,memdev=mem0 \
	-chardev socket,id=c0,path="$T/net.sock" -netdev vhost-user,id=n0,chardev=c0 \
	-device virtio-net-pci,netdev=n0,vectors=0,mac=52:54:00:12:34:56 \
	-kernel "$GUEST/vmlinuz" -initrd "$T/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3" -serial mon:stdio -display none \
	>"$T/guest.log" 2>&1 &
QPID=$!
# Show the guest's console lines as they come, until it powers off.
tail -n +1 -f "$T/guest.log" --pid=$QPID 2>/dev/null | sed -u 's/\r//' |
	grep --line-buffered -E "^guest:|bytes from|packets|round-trip" &
TPID=$!
for _ in $(seq 40); do
	grep -q "packet loss" "$T/guest.log" && break
	sleep 0.5
done
step "vhu-net counters while the guest runs (SIGUSR1)"
kill -USR1 $NPID
sleep 0.5
cat "$T/net.out"
seen=$(wc -l <"$T/net.out")
wait $QPID
rc=$?
QPID=
wait $TPID 2>/dev/null

step "guest powered off; stopping vhu-net (SIGTERM), which prints its final counters"
kill -TERM $NPID
wait $NPID
nrc=$?
NPID=
tail -n +$((seen + 1)) "$T/net.out"
grep -v "front-end connected\|connection closed" "$T/net.err" | sed 's/^/  log: /'
if grep -q " 0% packet loss" "$T/guest.log" && [ $rc = 0 ] && [ $nrc = 0 ]; then
	step "demo done: the guest's pings went through vhu-net and everything exited cleanly"
	exit 0
fi
echo "demo: something went wrong; guest console:"
tr -d '\r' <"$T/guest.log" | tail -30
exit 1
