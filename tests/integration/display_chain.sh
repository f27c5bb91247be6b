#!/usr/bin/env bash
# The display-chain proof end to end, on a real node of the local provider
# (configs/display.yaml, or $DISPLAY_CONFIG): `vgpuenv up` with the display
# image profile, then `vgpuenv verify-display` must show, from libvirt's and
# QEMU's own output inside the node:
#   - KubeVirt's VNC-only domain with an mbochs vGPU (display='on' ramfb='on')
#     failing with "vfio-display-dmabuf: opengl not available";
#   - the same domain after webhook/hook/onDefineDomain starting with
#     -display egl-headless,rendernode=/dev/dri/renderD128 and a vGPU console
#     with something drawn on it;
#   - mesa hidden -> "Couldn't open libGL.so.1"; render node gone -> libvirt
#     names /dev/dri/renderD128 as missing.
# --mdev-parent must use an existing parent and leave it loaded (that run
# prints the table); a later run must reuse the cached mbochs.ko; a run
# stopped with Ctrl-C must still leave the node clean (no mdev, no domain, no bind mount, the
# render node back). Bad options end with exit 2. Step times are printed,
# because `make check-display` is a CI step with a budget.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"
command -v python3 >/dev/null || skip "python3 missing (make deps)"

cfg=${DISPLAY_CONFIG:-configs/display.yaml}
# One run at a time per machine: two runs share the cluster name, its state
# and its subnet, and one's `down` would pull the node from under the other.
exec 9>/tmp/vgpuenv-display-chain.lock
if ! flock -n 9; then
	echo "another display_chain run holds /tmp/vgpuenv-display-chain.lock: waiting for it"
	flock 9
fi
T=$(mktemp -d /tmp/vgpuenv-display.XXXXXX)
V=build/vgpuenv
started=$(date +%s)

# step NAME: prints the time since the previous step.
last=$started
step() {
	local now
	now=$(date +%s)
	printf '== step %-44s %4ss (total %ss)\n' "$1" $((now - last)) $((now - started))
	last=$now
}
cleanup() {
	set +e # best effort: whatever is left goes
	$V down -c "$cfg" >"$T/down.out" 2>&1 || { echo "down failed:"; cat "$T/down.out"; }
	step "down"
	rm -rf "$T"
}
trap cleanup EXIT

# Bad input first: nothing is created, exit 2, a clear message.
$V verify-display -c "$cfg" --mdev-parent ../x >"$T/bad.out" 2>&1
[ $? -eq 2 ] || fail "a path as --mdev-parent must be exit 2: $(cat "$T/bad.out")"
grep -q "not a path" "$T/bad.out" || fail "message for --mdev-parent ../x: $(cat "$T/bad.out")"
$V verify-display -c "$cfg" node1 node2 >"$T/bad.out" 2>&1
[ $? -eq 2 ] || fail "two nodes must be exit 2"

$V up -c "$cfg" 2>&1 | tee "$T/up.out" | grep -E '<==|is up|error'
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && ! grep -q "node verdicts" "$T/up.out"; then
	# libvirtd is here, so a node that does not come up is a real failure
	# (local_up_down.sh says more about it), as in node_setup_local.sh.
	tail -n 30 "$T/up.out"
	fail "the local provider could not bring a node up: $(grep -m1 'vgpuenv: error' "$T/up.out" || tail -n1 "$T/up.out")"
fi
[ "$rc" -eq 0 ] || { tail -n 30 "$T/up.out"; fail "vgpuenv up -c $cfg failed at node setup or probe"; }
step "up ($cfg)"

on() { $V ssh -c "$cfg" node1 -- "$@"; }

# --- first run: JSON, every row asserted -----------------------------------
rc=0
$V verify-display -c "$cfg" --json --artifacts "$T/art" >"$T/v1.json" 2>"$T/v1.err" || rc=$?
sed 's/^/    /' "$T/v1.err" | grep -E '<==|mbochs|libvirt' || true
step "verify-display --json (first run)"
[ $rc -eq 0 ] || { cat "$T/v1.err" "$T/v1.json"; fail "verify-display exited $rc"; }
python3 - "$T/v1.json" "$T/art/screendump.ppm" <<'EOF' || fail "verify-display's observations"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in r["checks"]}
def need(cid, *subs):
    x = c[cid]
    assert x["result"] == "pass", f"{cid}: {x['result']}: {x['observed']}"
    for s in subs:
        assert s in x["observed"], f"{cid}: {s!r} not in {x['observed']!r}"
    print(f"ok: {cid:24} {x['observed'][:110]}")
need("render-node", "/dev/dri/renderD128")
need("mesa-egl", "dmabuf export yes")
need("mdev", r["mdev"]["uuid"], "of type mbochs-", "/dev/vfio/")
need("hook-not-applied", "vfio-display-dmabuf: opengl not available", r["mdev"]["uuid"])
need("hook", '<graphics type="egl-headless"><gl rendernode="/dev/dri/renderD128"/></graphics>')
need("hook-applied", "started (paused)", "-display egl-headless,rendernode=/dev/dri/renderD128")
need("display-live", "paused 640x480, running 1024x768 after", "display egl-headless")
need("control-no-mesa", "Couldn't open libGL.so.1")
need("control-no-render-node", "/dev/dri/renderD128", "No such file or directory")
assert r["ok"] is True and len(c) == 9, r
assert r["mdev"]["parent"] == "mbochs"
# The screendump is a real image of the vGPU console, fetched from the node.
d = open(sys.argv[2], "rb").read()
assert d.startswith(b"P6\n1024 768\n255\n"), d[:20]
px = d[len(b"P6\n1024 768\n255\n"):]
assert len(px) == 1024 * 768 * 3
assert len(set(px[i:i + 3] for i in range(0, len(px), 3))) > 1, "blank console"
print("ok: screendump.ppm 1024x768 with the firmware's text on the vGPU console")
EOF

# Nothing of the run is left on the node.
check_clean() {
	[ -z "$(on ls /sys/bus/mdev/devices)" ] || fail "$1: mdev instance left: $(on ls /sys/bus/mdev/devices)"
	[ -z "$(on virsh -q -c qemu:///system list --all --name)" ] || fail "$1: domain left on the node"
	on sh -c '! findmnt -rn | grep -q "libGL\|libOpenGL"' || fail "$1: a libGL bind mount is left"
	on test -e /dev/dri/renderD128 || fail "$1: the render node did not come back"
	[ "$(on stat -c %a /dev/dri/renderD128)" = 666 ] || fail "$1: render node mode changed"
	on test ! -e /var/lib/vgpuenv-display || fail "$1: /var/lib/vgpuenv-display left"
	on test ! -d /sys/module/mbochs || fail "$1: mbochs still loaded"
	echo "ok: $1: node clean (no mdev, domain, bind mount; render node 0666; mbochs unloaded)"
}
check_clean "after the first run"

# --- an existing parent (--mdev-parent): used, not unloaded ------------------
# mbochs loaded by hand stands in for a vGPU driver the node already has.
ko=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}/mbochs/$(on uname -r)/mbochs.ko
[ -f "$ko" ] || fail "no cached module at $ko"
{
	echo 'set -e'
	echo 'base64 -d >/tmp/mbochs.ko <<"B64"'
	base64 "$ko"
	echo 'B64'
	echo 'modprobe -a vfio vfio_iommu_type1 mdev'
	echo 'insmod /tmp/mbochs.ko'
	echo 'rm /tmp/mbochs.ko'
} | $V ssh -c "$cfg" node1 >"$T/insmod.out" 2>&1 || fail "loading mbochs by hand: $(cat "$T/insmod.out")"
on test -d /sys/class/mdev_bus/mbochs || fail "mbochs loaded by hand offers no mdev parent"
$V verify-display -c "$cfg" --mdev-parent mbochs --mdev-type nope --json >"$T/v4.json" 2>"$T/v4.err"
[ $? -eq 1 ] || fail "an unknown --mdev-type must fail with 1"
python3 - "$T/v4.json" <<'PY' || fail "unknown --mdev-type"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in r["checks"]}
assert c["mdev"]["result"] == "fail", c["mdev"]
assert "parent mbochs has no type 'nope' (types: mbochs-large mbochs-medium mbochs-small" in c["mdev"]["observed"], c["mdev"]
assert all(c[i]["result"] == "skipped" for i in ("hook-not-applied", "hook-applied", "control-no-mesa")), c
assert r["ok"] is False
print("ok: unknown --mdev-type: " + c["mdev"]["observed"])
PY
# This run prints the table (the first one printed JSON).
rc=0
$V verify-display -c "$cfg" --mdev-parent mbochs --mdev-type mbochs-small >"$T/v5.out" 2>"$T/v5.err" || rc=$?
step "verify-display --mdev-parent (twice)"
[ $rc -eq 0 ] || { cat "$T/v5.err" "$T/v5.out"; fail "--mdev-parent mbochs run exited $rc"; }
cat "$T/v5.out"
grep -q "mbochs: \|apt-get" "$T/v5.err" && fail "--mdev-parent must not build or load mbochs"
grep -q "), mdev mbochs/mbochs-small " "$T/v5.out" || fail "the table does not name mbochs/mbochs-small"
grep -qx "verdict: PASS" "$T/v5.out" || fail "no PASS verdict"
[ "$(grep -c '^PASS ' "$T/v5.out")" = 9 ] || fail "the table has not 9 PASS rows"
grep -q "^    observed: qemu-system-x86_64: vfio .*: vfio-display-dmabuf: opengl not available$" "$T/v5.out" ||
	fail "the table does not quote QEMU's error in full"
echo "ok: --mdev-parent mbochs --mdev-type mbochs-small: table with 9 PASS rows"
on test -d /sys/module/mbochs || fail "a parent given with --mdev-parent must stay loaded"
[ -z "$(on ls /sys/bus/mdev/devices)" ] || fail "--mdev-parent run left its mdev instance"
on rmmod mbochs || fail "rmmod mbochs"
echo "ok: the existing parent stays loaded, our instance is gone"

# --- Ctrl-C in the middle: the node is cleaned up all the same ---------------
$V verify-display -c "$cfg" >"$T/v3.out" 2>"$T/v3.err" &
pid=$!
for _ in $(seq 1200); do
	grep -q "node: libvirt" "$T/v3.err" && break
	sleep 0.1
done
grep -q "node: libvirt" "$T/v3.err" || { kill $pid; fail "the interrupted run never reached libvirtd"; }
kill -INT $pid
rc=0
wait $pid || rc=$?
step "verify-display interrupted"
[ $rc -eq 130 ] || fail "Ctrl-C must end with 130, got $rc: $(tail -n 5 "$T/v3.err")"
grep -q "node cleaned up" "$T/v3.err" || fail "no cleanup after Ctrl-C: $(tail -n 5 "$T/v3.err")"
# This run found the module of the first one in the cache.
grep -q "mbochs: cached .*/mbochs/$(on uname -r)/mbochs.ko" "$T/v3.err" || fail "mbochs.ko was not taken from the cache: $(grep mbochs "$T/v3.err")"
grep -q "compiling mbochs.ko" "$T/v3.err" && fail "mbochs.ko was rebuilt"
echo "ok: mbochs.ko came from the cache"
check_clean "after Ctrl-C"
echo PASS
