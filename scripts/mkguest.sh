#!/bin/bash
# Builds a test guest: a Debian kernel plus a busybox-static initramfs with the virtio modules.
#   mkguest.sh        the host's kernel (/boot, Debian 12: 6.1) -> $OUT (default out/guest)
#   mkguest.sh 6.12   Debian 12's 6.12 kernel (linux-image-6.12.*+deb12-amd64-unsigned from
#                     bookworm-security), fetched with `apt-get download` into out/cache612 and
#                     unpacked there with dpkg-deb, never installed -> $OUT (default out/guest612).
#                     It adds vdpa, vhost, vhost_vdpa, vduse, virtio_vdpa, vhost_net and tun.
# Output: $OUT/vmlinuz, $OUT/initramfs.cpio.gz and $OUT/kver.
# The guest's /init loads the modules (in dependency order: the kernel has no modules.dep here),
# brings up lo, then runs /test.sh if a test appended one (tests concatenate a second cpio archive
# holding it) and powers off.
set -euo pipefail
WHICH=${1:-host}
TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$TOP/out/cache612
BB=/bin/busybox
[ -x "$BB" ] && file -L "$BB" 2>/dev/null | grep -q static || BB=$(command -v busybox || true)
if [ ! -x "$BB" ]; then
	echo "mkguest: busybox-static is missing" >&2
	exit 1
fi

# Newest linux-image-6.12.N+deb12-amd64-unsigned that apt can fetch.
pick612() {
	apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' 2>/dev/null |
		awk '{print $1}' | sort -V -r | while read -r p; do
		c=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [ -n "$c" ] && [ "$c" != "(none)" ]; then
			echo "$p"
			break
		fi
	done
}

# Unpacks the 6.12 kernel into $CACHE/root (fetching the .deb when none is cached); prints its version.
fetch612() {
	local deb pkg
	mkdir -p "$CACHE"
	deb=$(ls "$CACHE"/linux-image-6.12.*+deb12-amd64-unsigned_*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$deb" ]; then
		pkg=$(pick612)
		if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
			apt-get update -q >/dev/null 2>&1 || true
			pkg=$(pick612)
		fi
		if [ -z "$pkg" ]; then
			echo "mkguest: no linux-image-6.12.*+deb12-amd64-unsigned in apt (bookworm-security)" >&2
			return 1
		fi
		# apt's _apt user may not write here: download as root without the sandbox.
		if ! (cd "$CACHE" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
			echo "mkguest: apt-get download $pkg failed" >&2
			return 1
		fi
		deb=$(ls "$CACHE"/linux-image-6.12.*+deb12-amd64-unsigned_*.deb | sort -V | tail -1)
	fi
	if [ ! -f "$CACHE/root/.from" ] || [ "$(cat "$CACHE/root/.from")" != "$(basename "$deb")" ]; then
		rm -rf "$CACHE/root"
		mkdir -p "$CACHE/root"
		dpkg-deb -x "$deb" "$CACHE/root" || {
			echo "mkguest: dpkg-deb -x $deb failed" >&2
			return 1
		}
		basename "$deb" >"$CACHE/root/.from"
	fi
	ls "$CACHE/root/lib/modules" | head -1
}

# deps_order MODROOT MOD...: the modules with their dependencies first, each once (modinfo's
# depends field; built-in modules have no file and are left out).
deps_order() {
	local root=$1 m
	shift
	declare -gA SEEN=()
	ORDER=()
	visit() {
		local f d
		[ -n "${SEEN[$1]:-}" ] && return 0
		SEEN[$1]=1
		f=$(find "$root" -name "$1.ko*" -print -quit)
		[ -n "$f" ] || f=$(find "$root" -name "${1//_/-}.ko*" -print -quit)
		[ -n "$f" ] || return 0
		for d in $(modinfo -F depends "$f" | tr ',' ' '); do visit "$d"; done
		ORDER+=("$1")
	}
	for m in "$@"; do visit "$m"; done
}

if [ "$WHICH" = 6.12 ]; then
	OUT=${OUT:-$TOP/out/guest612}
	KVER=$(fetch612) || exit 1
	KSRC=$CACHE/root
	VMLINUZ=$KSRC/boot/vmlinuz-$KVER
	MODROOT=$KSRC/lib/modules/$KVER
	# virtio, virtio_ring and virtio_pci are built in; the rest are modules.
	deps_order "$MODROOT" virtio_blk virtio_net tun vhost_net vdpa vduse vhost_vdpa virtio_vdpa
	MODS="${ORDER[*]}"
	[ -f "$VMLINUZ" ] && [ -n "$MODS" ] || {
		echo "mkguest: $KSRC has no kernel $KVER" >&2
		exit 1
	}
else
	OUT=${OUT:-$TOP/out/guest}
	KVER=$(ls /lib/modules | sort -V | while read -r v; do [ -e "/boot/vmlinuz-$v" ] && echo "$v"; done | tail -1)
	if [ -z "$KVER" ]; then
		echo "mkguest: no kernel with modules under /boot (install linux-image-amd64)" >&2
		exit 1
	fi
	VMLINUZ=/boot/vmlinuz-$KVER
	MODROOT=
	# Modules in load order (dependencies first).
	# vhost-kernel tests: vhost_net with its tap (tun), and a reflecting tap (tc ingress, matchall, mirred).
	MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk vhost_iotlb vhost tap tun vhost_net sch_ingress cls_matchall act_mirred"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -f "$OUT/initramfs.cpio.gz" ] && [ "$OUT/initramfs.cpio.gz" -nt "$0" ] && [ "$(cat "$OUT/kver" 2>/dev/null)" = "$KVER" ]; then
	exit 0
fi
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,mnt,lib/modules,etc}
cp "$BB" "$ROOT/bin/busybox"
for app in $("$ROOT/bin/busybox" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$ROOT/bin/$app"
done
for m in $MODS; do
	if [ -n "$MODROOT" ]; then
		f=$(find "$MODROOT" -name "$m.ko*" -print -quit)
	else
		f=$(modinfo -k "$KVER" -F filename "$m")
	fi
	case "$f" in
	*.ko.xz) xz -dc "$f" >"$ROOT/lib/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$ROOT/lib/modules/$m.ko" ;;
	*) cp "$f" "$ROOT/lib/modules/$m.ko" ;;
	esac
done
cat >"$ROOT/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $MODS; do insmod /lib/modules/\$m.ko 2>/dev/null; done
# The drivers' probes (virtio-net, virtio-blk: the devices' first requests) are done: a guest
# that hangs before this line hangs in the kernel's boot or in a probe.
echo "VHU-GUEST: modules loaded"
ip link set lo up
# let udev-less device nodes appear
sleep 0.3
if [ -x /test.sh ]; then
	echo "VHU-GUEST: running test"
	/test.sh
	echo "VHU-GUEST: test exit \$?"
else
	echo "VHU-GUEST: no test"
fi
sync
poweroff -f
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.cpio.gz"
cp "$VMLINUZ" "$OUT/vmlinuz"
echo "$KVER" >"$OUT/kver"
echo "mkguest: built $OUT (kernel $KVER)"
