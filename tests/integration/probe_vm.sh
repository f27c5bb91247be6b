#!/usr/bin/env bash
# The positive path of build/vgpuenv-probe: a throwaway QEMU (TCG) guest with
# a plain 2D virtio-gpu device, the Debian kernel, an initramfs of static
# busybox + the virtio/drm/9p modules, and this host's root file system shared
# read-only over virtio-9p, so the probe runs against the host's mesa without
# copying 150 MB of libraries. Asserts every check passes on the real
# /dev/dri/renderD128 of the virtio_gpu driver, in text and --json.
# A guest without the GPU device is not booted here: probe_host.sh covers the
# no-render-node message on this GPU-less host.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
REPO=$(pwd)

skip() {
	echo "SKIP: $*"
	exit 77
}
PROBE=build/vgpuenv-probe
if [ ! -x "$PROBE" ]; then
	make -s "$PROBE" >/dev/null || { echo "FAIL: cannot build $PROBE"; exit 1; }
fi
QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not installed (package qemu-system-x86)"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && { ldd "$BUSYBOX" 2>&1 || true; } | grep -q 'not a dynamic' ||
	skip "no static $BUSYBOX (package busybox-static)"
KVER=
for d in /lib/modules/*; do
	k=$(basename "$d")
	[ -f "/boot/vmlinuz-$k" ] && KVER=$k
done
[ -n "$KVER" ] || skip "no /boot/vmlinuz-* with matching /lib/modules (package linux-image-amd64)"
for lib in libgbm.so.1 libEGL.so.1 libEGL_mesa.so.0 libGLESv2.so.2; do
	ldconfig -p | grep -c "$lib" >/dev/null || skip "$lib not installed on this host (libgbm1 libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)"
done

T=$(mktemp -d /tmp/vgpuenv-probe-vm.XXXXXX)
trap 'rm -rf "$T"' EXIT
R=$T/root
mkdir -p "$R/bin" "$R/dev" "$R/proc" "$R/sys" "$R/host" "$R/mods"
cp "$BUSYBOX" "$R/bin/busybox"
# The probe travels in the initramfs: the checkout may live under /tmp, which
# the guest covers with its own tmpfs.
cp "$REPO/$PROBE" "$R/vgpuenv-probe"

# Modules in dependency order, each once.
: >"$R/mods/order"
for m in virtio_pci virtio_gpu 9pnet_virtio 9p; do
	modprobe --show-depends -S "$KVER" "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$R/mods/"
	basename "$ko" >>"$R/mods/order"
done
grep -q virtio-gpu "$R/mods/order" || skip "virtio-gpu module not found for kernel $KVER"

cat >"$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in \$(cat /mods/order); do insmod /mods/\$m 2>/dev/null || echo "insmod \$m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose host /host || echo "=== 9p mount failed"
mount -t devtmpfs dev /host/dev
mount -o bind /proc /host/proc || echo "=== proc mount failed"
mount -o bind /sys /host/sys || echo "=== sys mount failed"
mount -t tmpfs tmp /host/tmp
cp /vgpuenv-probe /host/tmp/vgpuenv-probe
for i in \$(seq 50); do [ -e /dev/dri/renderD128 ] && break; sleep 0.1; done
echo "=== text"
chroot /host /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp MESA_SHADER_CACHE_DISABLE=true /tmp/vgpuenv-probe 2>&1
echo "=== text exit \$?"
echo "=== json"
chroot /host /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp MESA_SHADER_CACHE_DISABLE=true /tmp/vgpuenv-probe --json 2>/dev/null
echo "=== json exit \$?"
echo "=== render-node-only"
chroot /host /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp MESA_SHADER_CACHE_DISABLE=true /tmp/vgpuenv-probe --render-node-only 2>/dev/null
echo "=== render-node-only exit \$?"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet) >"$T/initrd.cpio" || { echo "FAIL: cpio"; exit 1; }

echo "booting $KVER under TCG with virtio-gpu-pci (2D)..."
start=$(date +%s)
rc=0
timeout 240 nice "$QEMU" -accel tcg -m 1024 -smp 1 -nodefaults -display none -serial stdio -no-reboot \
	-kernel "/boot/vmlinuz-$KVER" -initrd "$T/initrd.cpio" \
	-append "console=ttyS0 quiet panic=-1 rdinit=/init" \
	-device virtio-gpu-pci \
	-fsdev local,id=hostfs,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostfs,mount_tag=host >"$T/console" 2>&1 || rc=$?
echo "guest ran $(($(date +%s) - start))s (qemu exit $rc)"
tr -d '\r' <"$T/console" >"$T/log"

on_fail() {
	echo "guest console:"
	sed 's/^/  | /' "$T/log" | tail -n 60
}
# An empty section is judged below, with the console shown.
sed -n '/^=== text$/,/^=== text exit/p' "$T/log" | { grep -E '^(PASS|FAIL|SKIP) ' || true; } >"$T/text"
sed -n '/^=== json$/,/^=== json exit/p' "$T/log" | sed '1d;$d' >"$T/json"
cat "$T/text"

grep -q '^=== text exit 0$' "$T/log" && ok "probe exit 0 in the guest" || fail "probe exit: $(grep '^=== text exit' "$T/log")"
[ "$(grep -c '^PASS ' "$T/text")" = 5 ] && ok "5 checks passed" || fail "not all 5 checks passed"
grep -q '^PASS render-node /dev/dri/renderD128 (kernel driver virtio_gpu)$' "$T/text" &&
	ok "render node of the virtio_gpu driver" || fail "render-node line"
grep -q '^PASS dmabuf-export .*exported.*: fourcc AR24 .*, fd /dmabuf:' "$T/text" && ok "a dmabuf was exported (fd is a /dmabuf:)" || fail "no dmabuf exported"
grep -q '^=== json exit 0$' "$T/log" && ok "--json exit 0" || fail "--json exit: $(grep '^=== json exit' "$T/log")"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] is True and all(c["ok"] for c in d["checks"]) and len(d["checks"]) == 5 else 1)' "$T/json"; then
	ok '--json: "ok": true and every check ok'
else
	fail "--json verdict: $(cat "$T/json")"
fi

# On a 2D virtio-gpu, mesa 22.3 (kms_swrast) cannot allocate on the render
# node; without the primary-node fallback the export check must say so.
sed -n '/^=== render-node-only$/,/^=== render-node-only exit/p' "$T/log" >"$T/ronly"
if grep -q 'driver kms_swrast' "$T/text"; then
	grep -q '^=== render-node-only exit 1$' "$T/ronly" && ok "--render-node-only exit 1 with kms_swrast" ||
		fail "--render-node-only: $(grep exit "$T/ronly")"
	grep -q '^FAIL dmabuf-export: no dmabuf could be exported from /dev/dri/renderD128: GL texture: .*; GBM bo: gbm_bo_create(64x64 ARGB8888) failed: Permission denied$' "$T/ronly" &&
		ok "--render-node-only names why the render node cannot export" || fail "--render-node-only message: $(grep FAIL "$T/ronly")"
fi

echo "probe passes in a virtio-gpu guest"
