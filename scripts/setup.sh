#!/bin/bash
# Installs what the build and the tests need (Debian 12, as root) and prepares the test guest.
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev liburing-dev qemu-system-x86
qemu-utils busybox-static linux-image-amd64 dpdk dpdk-dev valgrind cpio iproute2 kmod python3
procps"
missing=()
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "setup: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "setup: missing packages (run as root to install): ${missing[*]}" >&2
	fi
fi
if [ -d /boot ] && ls /boot/vmlinuz-* >/dev/null 2>&1 && command -v cpio >/dev/null; then
	./scripts/mkguest.sh
fi
# The 6.12 guest (vdpa, vduse, vhost_vdpa, virtio_vdpa): its kernel comes from bookworm-security
# with `apt-get download`; a failure here is loud, since the tests that need it fail under CI.
if command -v cpio >/dev/null && command -v apt-get >/dev/null; then
	./scripts/mkguest.sh 6.12 || {
		echo "setup: FAILED to fetch or build the 6.12 test guest (out/guest612)" >&2
		exit 1
	}
fi
