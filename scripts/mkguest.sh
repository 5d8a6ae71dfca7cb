#!/bin/bash
# Builds the test guest: a Debian kernel plus a busybox-static initramfs with the virtio modules.
# Output: $OUT/vmlinuz and $OUT/initramfs.cpio.gz (OUT defaults to out/guest).
# The guest's /init loads the modules, brings up lo, then runs /test.sh if a test appended one
# (tests concatenate a second cpio archive holding it) and powers off.
set -euo pipefail
OUT=${OUT:-$(dirname "$0")/../out/guest}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
KVER=$(ls /lib/modules | sort -V | while read -r v; do [ -e "/boot/vmlinuz-$v" ] && echo "$v"; done | tail -1)
if [ -z "$KVER" ]; then
	echo "mkguest: no kernel with modules under /boot (install linux-image-amd64)" >&2
	exit 1
fi
BB=/bin/busybox
[ -x "$BB" ] && file -L "$BB" 2>/dev/null | grep -q static || BB=$(command -v busybox || true)
if [ ! -x "$BB" ]; then
	echo "mkguest: busybox-static is missing" >&2
	exit 1
fi
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
# Modules in load order (dependencies first).
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk"
for m in $MODS; do
	f=$(modinfo -k "$KVER" -F filename "$m")
	case "$f" in
	*.ko.xz) xz -dc "$f" > "$ROOT/lib/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "$f" > "$ROOT/lib/modules/$m.ko" ;;
	*) cp "$f" "$ROOT/lib/modules/$m.ko" ;;
	esac
done
cat > "$ROOT/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $MODS; do insmod /lib/modules/\$m.ko 2>/dev/null; done
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
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initramfs.cpio.gz"
cp "/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kver"
echo "mkguest: built $OUT (kernel $KVER)"
