# Shared helpers for the interop tests (sourced). A test exits 0 pass, 1 fail, 77 skip.
# Under CI=true a missing peer is a failure, never a skip.
set -u
SRC=${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$SRC/build}
VHU_NET=${VHU_NET:-$BUILD/tools/vhu-net}
GUEST=${GUEST:-$SRC/out/guest}
T=$(mktemp -d /tmp/vhu-test.XXXXXX)
PIDS=()

cleanup() {
	# A QEMU runs under timeout(1): its child goes first, or it outlives the test.
	for p in "${PIDS[@]}"; do
		pkill -9 -P "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "${VHU_KEEP:-}" ] && cp -r "$T" "$VHU_KEEP"
	rm -rf "$T" /var/run/dpdk/vhu-* 2>/dev/null
}
trap cleanup EXIT

skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL (would skip, but CI=true): $*"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*"
	exit 1
}

need() {
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed"; done
}

need_guest() {
	need qemu-system-x86_64 cpio
	[ -f "$GUEST/initramfs.cpio.gz" ] || OUT=$GUEST "$SRC/scripts/mkguest.sh" >/dev/null ||
		skip "cannot build the guest (linux-image-amd64, busybox-static)"
}

# need_guest612: the tests that follow boot Debian 12's 6.12 kernel (vdpa, vduse, vhost_vdpa,
# virtio_vdpa, vhost_net, tun), which scripts/setup.sh fetches (mkguest.sh 6.12).
need_guest612() {
	need qemu-system-x86_64 cpio
	GUEST=${GUEST612:-$SRC/out/guest612}
	[ -f "$GUEST/initramfs.cpio.gz" ] || OUT=$GUEST "$SRC/scripts/mkguest.sh" 6.12 >/dev/null ||
		skip "no 6.12 guest (scripts/setup.sh fetches linux-image-6.12.*+deb12-amd64-unsigned)"
}

# check_user NAME PID UID GID: the daemon started with --user runs as UID:GID (real, effective,
# saved, filesystem ids), without capabilities and with no_new_privs, in every thread.
check_user() {
	local st n=0
	[ -d "/proc/$2/task" ] || fail "$1 is not running"
	for st in /proc/"$2"/task/*/status; do
		grep -qP "^Uid:\t$3\t$3\t$3\t$3$" "$st" || fail "$1 ($st) runs as $(grep ^Uid: "$st"), not uid $3"
		grep -qP "^Gid:\t$4\t$4\t$4\t$4$" "$st" || fail "$1 ($st) runs as $(grep ^Gid: "$st"), not gid $4"
		grep -qP "^CapEff:\t0+$" "$st" || fail "$1 ($st) kept capabilities: $(grep ^CapEff: "$st")"
		grep -qP "^CapPrm:\t0+$" "$st" || fail "$1 ($st) kept capabilities: $(grep ^CapPrm: "$st")"
		grep -qP "^CapAmb:\t0+$" "$st" || fail "$1 ($st) kept capabilities: $(grep ^CapAmb: "$st")"
		grep -qP "^NoNewPrivs:\t1$" "$st" || fail "$1 ($st) has no no_new_privs"
		n=$((n + 1))
	done
	echo "$1 runs as uid $3 gid $4, no capabilities, no_new_privs, in all $n threads"
}

# Waits until a file exists (a socket), up to $2 seconds.
wait_file() {
	local i
	for i in $(seq 1 $((${2:-10} * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Waits until a log file has a line matching $2, up to $3 seconds.
wait_log() {
	local i
	for i in $(seq 1 $((${3:-30} * 10))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_bg NAME CMD...: runs CMD in the background with its output in $T/NAME.log, its input
# from $STDIN (a fifo the test holds open, to type on a guest's console) or /dev/null.
start_bg() {
	local name=$1
	shift
	"$@" <"${STDIN:-/dev/null}" >"$T/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}

# guest_bin DIR PROG...: copies each program into DIR/bin with the shared libraries ldd names
# (at the same paths, the dynamic loader included), for the guest's busybox-only root. A
# PROG named *.so* is a shared object: copied at its own path, with its libraries.
guest_bin() {
	local d=$1 p l
	shift
	for p in "$@"; do
		if [[ $(basename "$p") =~ \.so(\.[0-9]+)*$ ]]; then
			# A shared object (a DPDK PMD the program dlopen()s): at its own path.
			[ -f "$p" ] || fail "guest_bin: no file $p"
			mkdir -p "$d$(dirname "$p")"
			cp -L "$p" "$d$p" || fail "guest_bin: cannot copy $p"
		else
			[ -x "$p" ] || fail "guest_bin: no program $p"
			cp "$p" "$d/bin/" || fail "guest_bin: cannot copy $p"
		fi
		for l in $(ldd "$p" 2>/dev/null | grep -o '/[^ ]*'); do
			[ -e "$d$l" ] && continue
			mkdir -p "$d$(dirname "$l")"
			cp -L "$l" "$d$l" || fail "guest_bin: cannot copy $l for $p"
		done
	done
}

# Makes $T/NAME.cpio.gz: the guest initramfs plus /test.sh from stdin. GUEST_BINS: more programs
# (paths) to put in the guest's /bin with their shared libraries (guest_bin).
guest_initrd() {
	local name=$1 d
	d=$(mktemp -d "$T/rd.XXXX")
	cat >"$d/test.sh"
	chmod +x "$d/test.sh"
	mkdir -p "$d/bin"
	for p in udpcheck blkzero tcpcheck; do
		cp "$BUILD/tests/$p" "$d/bin/$p" || fail "build tests/$p first"
	done
	# shellcheck disable=SC2086
	[ -z "${GUEST_BINS:-}" ] || guest_bin "$d" $GUEST_BINS
	(cd "$d" && find . -mindepth 1 | cpio -o -H newc --quiet | gzip -1) >"$T/$name.extra.gz"
	cat "$GUEST/initramfs.cpio.gz" "$T/$name.extra.gz" >"$T/$name.cpio.gz"
}

# Guest RAM for a test that migrates: 256 MiB less 8 KiB. QEMU before 9.0 under TCG loses guest
# CPU stores during a migration when a RAM block's size is a multiple of 64 pages (256 KiB): its
# fast path that syncs the dirty bitmap 64 pages at a time clears the bits without resetting the
# vCPUs' TLB dirty state, so later stores to those pages are not tracked (QEMU commit 03bfc2188f,
# "physmem: Fix migration dirty bitmap coherency with TCG memory access"). With a size off that
# multiple QEMU 7.2 takes the page-by-page path, which resets the TLB. docs/TESTING.md.
MIG_RAM=$((256 * 1024 - 8))k
MIG_RAM_BYTES=$(((256 * 1024 - 8) * 1024))

# qemu_start NAME MEM SMP DEVICE-ARGS... (MEM: MiB, or a size with a k suffix): prints nothing; runs QEMU (TCG) in the background,
# console in $T/NAME.log. Guest RAM is a shared memfd, as vhost-user needs. GUEST_APPEND: more
# kernel parameters.
qemu_start() {
	local name=$1 mem=$2 smp=$3
	shift 3
	[[ $mem =~ ^[0-9]+$ ]] && mem=${mem}M
	start_bg "$name" timeout "${QEMU_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -nographic \
		-no-reboot -m "$mem" -smp "$smp" -cpu max \
		-object memory-backend-memfd,id=mem0,size="$mem",share=on -numa node,memdev=mem0 \
		-kernel "$GUEST/vmlinuz" -initrd "$T/$name.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3${GUEST_APPEND:+ $GUEST_APPEND}" \
		-serial mon:stdio -display none "$@"
}

# guest_static_net MY-IP PEER-IP PEER-MAC: the start of a guest's /test.sh (stdout) that sends
# nothing by itself: IPv6 off, eth0 up with MY-IP/24, the peer's MAC fixed (no ARP).
guest_static_net() {
	cat <<GUEST
#!/bin/sh
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
ip link set eth0 up
ip addr add $1/24 dev eth0
arp -i eth0 -s $2 $3
GUEST
}

# console_say LOG FD TEXT: types TEXT on a guest's console (FD, the fifo its QEMU reads) until
# the guest logs "VHU-HEARD TEXT", at most 10 times 3 s. A line typed once was lost once
# (qemu-migrate-switch: no echo on the guest's console, the guest kept waiting for it).
console_say() {
	local i
	for i in $(seq 1 10); do
		echo "$3" >&"$2"
		wait_log "$1" "VHU-HEARD $3" 3 && return 0
	done
	return 1
}

# Waits for the guest to finish its test; returns 0 when it printed VHU-PASS.
guest_wait() {
	local name=$1 pid
	pid=$(eval echo "\$PID_$name")
	wait "$pid" 2>/dev/null
	grep -q "VHU-PASS" "$T/$name.log"
}

# qemu_net_args SOCKET MAC [chardev-opts]: the -chardev/-netdev/-device arguments for one
# virtio-net-pci on vhost-user. vectors=0: QEMU 7.2 TCG segfaults on vhost-user net MSI-X.
qemu_net_args() {
	echo "-chardev socket,id=c0,path=$1${3:+,$3} -netdev vhost-user,id=n0,chardev=c0" \
		"-device virtio-net-pci,netdev=n0,vectors=0,mac=$2"
}

# tcp_guest_script MY-IP PEER-IP MTU: a guest /test.sh (stdout) for a pair of guests on one
# switch: eth0 must have come up at MTU (the device's host_mtu), then a TCP stream of BYTES
# (the caller's variable) each way, every byte checked by tcpcheck, and the kernel's InCsumErrors must stay 0.
tcp_guest_script() {
	cat <<GUEST
#!/bin/sh
mtu=\$(cat /sys/class/net/eth0/mtu)
echo "eth0 mtu \$mtu"
ok=1
[ "\$mtu" = $3 ] || ok=0
ip link set eth0 up
ip addr add $1/24 dev eth0
tcpcheck serve 7001 $BYTES 40 &
srv=\$!
tcpcheck send $2 7001 $BYTES 30 || ok=0
wait \$srv || ok=0
cs=\$(awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if (\$i == "InCsumErrors") c = i; h = 1 } else print \$c }' /proc/net/snmp)
echo "tcp checksum errors: \$cs"
[ "\$cs" = 0 ] || ok=0
[ \$ok = 1 ] && echo VHU-PASS || echo VHU-FAIL
GUEST
}

# tcp_guests_wait: waits for guests a and b (tcp_guest_script), shows what tcpcheck said, fails
# unless both passed, then stops vhu-net (started as "net"), which prints its counters.
tcp_guests_wait() {
	local ra=0 rb=0
	guest_wait a || ra=1
	guest_wait b || rb=1
	grep -hE "tcpcheck|checksum errors|eth0 mtu" "$T/a.log" "$T/b.log"
	if [ $ra = 1 ] || [ $rb = 1 ]; then
		tail -n 20 "$T/a.log" "$T/b.log" "$T/net.log"
		fail "the TCP streams between the guests did not get through intact"
	fi
	kill -TERM "$PID_net"
	wait "$PID_net"
}

# tcp_guests_start MTU-A MTU-B: vhu-net as a switch with ports a and b (started as "net"), and
# the initrds of guests a (10.0.0.1) and b (10.0.0.2) running tcp_guest_script, which expects
# eth0 at those MTUs. BYTES: the caller's stream length.
tcp_guests_start() {
	start_bg net "$VHU_NET" --socket-path "$T/a.sock" --socket-path "$T/b.sock"
	wait_file "$T/b.sock" 5 || fail "vhu-net did not listen"
	tcp_guest_script 10.0.0.1 10.0.0.2 "$1" | guest_initrd a
	tcp_guest_script 10.0.0.2 10.0.0.1 "$2" | guest_initrd b
}
