#!/usr/bin/env bash
# Node setup for real over libssh, on a Debian node of the local provider:
# `vgpuenv up` must leave virtio-gpu loaded and listed for boot, the udev
# rule applied (render node mode 0666 for uid/gid 107), the CDI spec of the
# webhook's cdi mode, the probe installed and passing; a second `up` must
# rewrite nothing (same mtimes); a node that drifted (rule deleted, render
# node chmod 600) is repaired by the next `up`.
# RHEL-family package names cannot be exercised here (only Debian's mirror
# is reachable); their commands are asserted in tests/unit/test_node_setup.c.
set -u
cd "$(dirname "$0")/../.."
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
[ -x build/vgpuenv-probe ] || skip "build/vgpuenv-probe not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"
. tests/standins/assert.sh
# One run at a time per subnet (tests/lib/vm.sh's lock_subnet, inline: that
# file's private state dir does not suit this test).
exec 8>/tmp/vgpuenv-subnet-131.lock
flock -n 8 || { echo "subnet 131 in use by another test run: waiting"; flock 8; }

T=$(mktemp -d /tmp/vgpuenv-nsl.XXXXXX)
name=nsl$$
cfg=$T/local.yaml
# The default state directory: libvirt's qemu user must reach the disks in it.
cleanup() {
	set +e # best effort: whatever is left goes
	build/vgpuenv down -c "$cfg" >"$T/down.out" 2>&1 || cat "$T/down.out" >&2
	rm -rf "$T"
}
# The image cache is shared with other runs on purpose: the base image is
# the slow part and is content-addressed.
cat >"$cfg" <<YAML
name: $name
provider: local
nodes:
  count: 1
  memory: 1536
network:
  subnet: 192.168.131.0/24   # the node-setup subnet of tests/lib/vm.sh's list
ssh:
  timeout: 600           # TCG on a shared 2-core machine boots slowly
YAML

trap cleanup EXIT
build/vgpuenv up -c "$cfg" >"$T/up1.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && ! grep -q "node verdicts" "$T/up1.out"; then
	# libvirtd is here, so a node that does not come up is a real failure
	# (local_up_down.sh says more about it), not a reason to skip.
	cat "$T/up1.out"
	fail "the local provider could not bring a node up: $(grep -m1 'error' "$T/up1.out" || tail -n1 "$T/up1.out")"
fi
[ $rc -eq 0 ] || { cat "$T/up1.out"; fail "vgpuenv up failed at node setup or probe"; }
grep -q "verdict *PASS" "$T/up1.out" || { cat "$T/up1.out"; fail "no PASS verdict printed"; }
sed -n '/node verdicts/,/verdict/p' "$T/up1.out"
node=$name-node1
on() { build/vgpuenv ssh -c "$cfg" "$node" -- "$@"; }

on grep -qx virtio-gpu /etc/modules-load.d/vgpuenv.conf || fail "modules-load.d entry"
on test -d /sys/module/virtio_gpu || fail "virtio_gpu not loaded"
[ "$(on stat -c %a /dev/dri/renderD128)" = 666 ] || fail "render node mode is not 0666"
on grep -q 'KERNEL=="renderD\*", MODE="0666"' /etc/udev/rules.d/70-vgpuenv-render.rules || fail "udev rule"
on cat /etc/cdi/vgpuenv.yaml >"$T/cdi.yaml" || fail "no CDI spec"
grep -qx "kind: vgpuenv.io/render" "$T/cdi.yaml" || fail "CDI kind"
grep -qx "  - name: renderD128" "$T/cdi.yaml" || fail "CDI device"
grep -q "hostPath: /usr/lib/x86_64-linux-gnu/libEGL.so.1" "$T/cdi.yaml" || fail "CDI mounts: $(cat "$T/cdi.yaml")"
on /usr/local/bin/vgpuenv-probe --json | grep -q '"ok": true' || fail "probe on the node"
echo "ok: first up: module, udev rule (mode 0666), CDI spec, probe PASS"

files="/etc/modules-load.d/vgpuenv.conf /etc/udev/rules.d/70-vgpuenv-render.rules /etc/cdi/vgpuenv.yaml /usr/local/bin/vgpuenv-probe"
before=$(on stat -c '%n %Y %i' $files) || fail "stat"
build/vgpuenv up -c "$cfg" >"$T/up2.out" 2>&1 || { cat "$T/up2.out"; fail "second up failed"; }
after=$(on stat -c '%n %Y %i' $files)
[ "$before" = "$after" ] || fail "second up rewrote files:
$before
---
$after"
echo "ok: second up rewrote nothing"

on rm /etc/udev/rules.d/70-vgpuenv-render.rules || fail "tamper"
on chmod 600 /dev/dri/renderD128 || fail "tamper"
build/vgpuenv up -c "$cfg" >"$T/up3.out" 2>&1 || { cat "$T/up3.out"; fail "third up failed"; }
on test -f /etc/udev/rules.d/70-vgpuenv-render.rules || fail "rule not restored"
[ "$(on stat -c %a /dev/dri/renderD128)" = 666 ] || fail "render node mode not repaired"
echo "ok: drift (rule deleted, chmod 600) repaired by the next up"
echo PASS
