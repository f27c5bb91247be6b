#!/usr/bin/env bash
# The display-chain proof end to end, on a real node of the local provider
# (configs/display.yaml, or $DISPLAY_CONFIG): `vgpuenv up` with the display
# image profile (node setup loads the fake NVIDIA T4, vgpu: dmabuf), then
# `vgpuenv verify-display` must show, from libvirt's and QEMU's own output
# inside the node:
#   - KubeVirt's VNC-only domain with an nvidia-222 vGPU (display='on'
#     ramfb='on') failing with "vfio-display-dmabuf: opengl not available";
#   - the vGPU's DMABUF plane: a real dma-buf of its framebuffer with the
#     module's test pattern (read as QEMU gets it, checked pixel by pixel);
#   - the same domain after webhook/hook/onDefineDomain starting with
#     -display egl-headless,rendernode=/dev/dri/renderD128, its console
#     showing the firmware on the ramfb, and QEMU taking the plane's dma-buf
#     once the plane is on; egl-headless showing it is N/A on this machine
#     (mesa's software driver imports no foreign dma-buf: QEMU says
#     "eglCreateImageKHR failed"), or passes with the pattern on a GPU;
#   - mesa hidden -> "Couldn't open libGL.so.1"; render node gone -> libvirt
#     names /dev/dri/renderD128 as missing.
# Then the region table (--display region): KubeVirt's VNC-only domain
# starting with no GL at all (mesa hidden, no render node) and the region
# plane live on the console (the pattern). --mdev-parent with a type the
# parent lacks fails clearly; a run stopped with Ctrl-C (the kernel's mbochs,
# --mbochs) must still leave the node clean (no mdev, no domain, no bind
# mount, the render node back, mbochs unloaded, the fake T4 as node setup
# left it). Bad options end with exit 2. Step times are printed, because
# `make check-display` is a CI step with a budget.
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
. tests/lib/steps.sh
steps_start 44
cleanup() {
	set +e # best effort: whatever is left goes
	$V down -c "$cfg" >"$T/down.out" 2>&1 || { echo "down failed:"; cat "$T/down.out"; }
	step "down"
	rm -rf "$T"
}
trap cleanup EXIT

# Bad input first: nothing is created, exit 2, a clear message.
rc=0
$V verify-display -c "$cfg" --mdev-parent ../x >"$T/bad.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "a path as --mdev-parent must be exit 2: $(cat "$T/bad.out")"
grep -q "not a path" "$T/bad.out" || fail "message for --mdev-parent ../x: $(cat "$T/bad.out")"
rc=0
$V verify-display -c "$cfg" node1 node2 >"$T/bad.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "two nodes must be exit 2"

set +e # up's own status, not the filter's
$V up -c "$cfg" 2>&1 | tee "$T/up.out" | grep -E '<==|is up|error'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ] && ! grep -q "node verdicts" "$T/up.out"; then
	# libvirtd is here, so a node that does not come up is a real failure
	# (local_up_down.sh says more about it), as in node_setup_local.sh.
	tail -n 30 "$T/up.out"
	fail "the local provider could not bring a node up: $(grep -m1 'vgpuenv: error' "$T/up.out" || tail -n1 "$T/up.out")"
fi
[ "$rc" -eq 0 ] || { tail -n 30 "$T/up.out"; fail "vgpuenv up -c $cfg failed at node setup or probe"; }
step "up ($cfg)"

on() { $V ssh -c "$cfg" node1 -- "$@"; }

# --- first run: the fake T4 in dmabuf mode, JSON, every row asserted --------
rc=0
$V verify-display -c "$cfg" --json --artifacts "$T/art" >"$T/v1.json" 2>"$T/v1.err" || rc=$?
sed 's/^/    /' "$T/v1.err" | grep -E '<==|fake T4|libvirt' || true
step "verify-display --json (fake T4, dmabuf)"
[ $rc -eq 0 ] || { cat "$T/v1.err" "$T/v1.json"; fail "verify-display exited $rc"; }
python3 - "$T/v1.json" "$T/art" <<'PY' || fail "verify-display's observations"
import json, sys
r = json.load(open(sys.argv[1]))
art = sys.argv[2]
c = {x["id"]: x for x in r["checks"]}
def need(cid, *subs, result="pass"):
    x = c[cid]
    assert x["result"] == result, f"{cid}: {x['result']}: {x['observed']}"
    for s in subs:
        assert s in x["observed"], f"{cid}: {s!r} not in {x['observed']!r}"
    print(f"ok: {cid:24} {x['result']:4} {x['observed'][:110]}")
need("render-node", "/dev/dri/renderD128")
need("mesa-egl", "dmabuf export yes")
need("mdev", r["mdev"]["uuid"], "of type nvidia-222 (GRID_T4-1B)", "/dev/vfio/", "display dmabuf")
need("vgpu-plane", "VFIO_DEVICE_GET_GFX_DMABUF gave a dma-buf of 1024x768 XR24 (stride 4096)",
     "test pattern at 16 of 16 points")
need("hook-not-applied", "vfio-display-dmabuf: opengl not available", r["mdev"]["uuid"])
need("hook", '<graphics type="egl-headless"><gl rendernode="/dev/dri/renderD128"/></graphics>')
need("hook-applied", "started (paused)", "-display egl-headless,rendernode=/dev/dri/renderD128")
need("display-live", "paused 640x480, ramfb after", "dma-buf(s) of the vGPU (VFIO_DEVICE_GET_GFX_DMABUF)",
     "display egl-headless")
shown = c["dmabuf-shown"]
if shown["result"] == "pass":
    need("dmabuf-shown", "the vGPU's DMABUF plane after", "test pattern at 16 of 16 points")
else:
    # This machine's GL is mesa's software driver on a 2D virtio-gpu.
    need("dmabuf-shown", "eglCreateImageKHR failed", "kms_swrast on virtio-gpu", result="n/a")
    assert "driver kms_swrast" in c["mesa-egl"]["observed"]
need("control-no-mesa", "Couldn't open libGL.so.1")
need("control-no-render-node", "/dev/dri/renderD128", "No such file or directory")
assert r["ok"] is True and len(c) == 11, r
assert r["mdev"]["display"] == "dmabuf", r["mdev"]
assert r["mdev"]["parent"].startswith("0000:") and r["mdev"]["parent"].endswith(":00.0"), r["mdev"]

def ppm(path):
    d = open(path, "rb").read()
    head = b"P6\n1024 768\n255\n"
    assert d.startswith(head), (path, d[:20])
    px = d[len(head):]
    assert len(px) == 1024 * 768 * 3
    return px
# The dma-buf's own pixels, checked here independently of verify-display:
# the module's eight bars over a grey ramp (vt4_pattern_pixel).
def pattern(px):
    bars = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000]
    for y in (10, 300, 500):
        for x in range(0, 1024, 37):
            want = bars[x * 8 // 1024]
            got = px[(y * 1024 + x) * 3:(y * 1024 + x) * 3 + 3]
            assert all(abs(got[i] - ((want >> (16 - 8 * i)) & 255)) <= 3 for i in range(3)), (x, y, got)
    for x in range(0, 1024, 37):
        v = x * 255 // 1023
        got = px[(700 * 1024 + x) * 3:(700 * 1024 + x) * 3 + 3]
        assert all(abs(g - v) <= 3 for g in got), (x, got)
plane = ppm(f"{art}/vgpu-plane.ppm")
pattern(plane)
# The console at boot: the firmware's text on the ramfb, not the pattern.
rf = ppm(f"{art}/screendump-ramfb.ppm")
assert len(set(rf[i:i + 3] for i in range(0, len(rf), 3))) > 1, "blank ramfb"
assert rf != plane
if shown["result"] == "pass":
    pattern(ppm(f"{art}/screendump.ppm"))
print("ok: vgpu-plane.ppm is the vGPU's dma-buf (bars and ramp), screendump-ramfb.ppm the firmware")
PY

# Nothing of the run is left on the node; the fake T4 is as node setup left it.
check_clean() {
	[ -z "$(on ls /sys/bus/mdev/devices)" ] || fail "$1: mdev instance left: $(on ls /sys/bus/mdev/devices)"
	[ -z "$(on virsh -q -c qemu:///system list --all --name)" ] || fail "$1: domain left on the node"
	on sh -c '! findmnt -rn | grep -q "libGL\|libOpenGL"' || fail "$1: a libGL bind mount is left"
	on test -e /dev/dri/renderD128 || fail "$1: the render node did not come back"
	[ "$(on stat -c %a /dev/dri/renderD128)" = 666 ] || fail "$1: render node mode changed"
	on test ! -e /var/lib/vgpuenv-display || fail "$1: /var/lib/vgpuenv-display left"
	on test ! -d /sys/module/mbochs || fail "$1: mbochs still loaded"
	[ "$(on cat /sys/module/vgpuenv_t4/parameters/display)" = dmabuf ] ||
		fail "$1: the fake T4's display is not node setup's dmabuf"
	echo "ok: $1: node clean (no mdev, domain, bind mount; render node 0666; no mbochs; fake T4 dmabuf)"
}
check_clean "after the first run"

# --- the region table: no GL at all -------------------------------------------
rc=0
$V verify-display -c "$cfg" --display region --artifacts "$T/art-region" >"$T/v2.out" 2>"$T/v2.err" || rc=$?
step "verify-display --display region"
cat "$T/v2.out"
[ $rc -eq 0 ] || { cat "$T/v2.err"; fail "the region run exited $rc"; }
grep -q "), mdev 0000:[0-9a-f:]*00\.0/nvidia-222 .*, display region (fake T4)$" "$T/v2.out" ||
	fail "the region table's header"
[ "$(grep -c '^PASS ' "$T/v2.out")" = 3 ] || fail "the region table has not 3 PASS rows"
grep -q "observed: started (paused), no -display option; mesa hidden (.*libGL\.so\.1.*), virtio-gpu virtio[0-9]* unbound: no render node" "$T/v2.out" ||
	fail "the no-GL observation"
grep -q "then the vGPU's region plane after [0-9]*s: 1024x768, test pattern at 16 of 16 points" "$T/v2.out" ||
	fail "the region plane was not seen"
grep -qx "verdict: PASS" "$T/v2.out" || fail "no PASS verdict"
check_clean "after the region run"

# --- an existing parent (--mdev-parent) with a type it does not have -------
parent=$(on sh -c 'basename "$(ls -d /sys/class/mdev_bus/0000* | head -1)"')
rc=0
$V verify-display -c "$cfg" --mdev-parent "$parent" --mdev-type nope --json >"$T/v4.json" 2>"$T/v4.err" || rc=$?
[ $rc -eq 1 ] || fail "an unknown --mdev-type must fail with 1"
python3 - "$T/v4.json" "$parent" <<'PY' || fail "unknown --mdev-type"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["id"]: x for x in r["checks"]}
assert c["mdev"]["result"] == "fail", c["mdev"]
assert f"parent {sys.argv[2]} has no type 'nope' (types: nvidia-222 nvidia-223 )" in c["mdev"]["observed"], c["mdev"]
assert all(c[i]["result"] == "skipped" for i in ("hook-not-applied", "hook-applied", "control-no-mesa")), c
assert r["ok"] is False
print("ok: unknown --mdev-type: " + c["mdev"]["observed"])
PY
on test -d /sys/module/vgpuenv_t4 || fail "a parent given with --mdev-parent must stay loaded"
check_clean "after the unknown type"

# --- Ctrl-C in the middle (the kernel's mbochs): the node is cleaned up ------
$V verify-display -c "$cfg" --mbochs >"$T/v3.out" 2>"$T/v3.err" &
pid=$!
for _ in $(seq 3000); do
	grep -q "node: libvirt" "$T/v3.err" && break
	sleep 0.1
done
grep -q "node: libvirt" "$T/v3.err" || { kill $pid; fail "the interrupted run never reached libvirtd: $(tail -n 5 "$T/v3.err")"; }
kill -INT $pid
rc=0
wait $pid || rc=$?
step "verify-display --mbochs interrupted"
[ $rc -eq 130 ] || fail "Ctrl-C must end with 130, got $rc: $(tail -n 5 "$T/v3.err")"
grep -q "node cleaned up" "$T/v3.err" || fail "no cleanup after Ctrl-C: $(tail -n 5 "$T/v3.err")"
grep -q "unloaded=mbochs" "$T/v3.err" || fail "mbochs was not unloaded: $(grep 'cleaned up' "$T/v3.err")"
[ -f "${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}/mbochs/$(on uname -r)/mbochs.ko" ] || fail "mbochs.ko is not in the cache"
check_clean "after Ctrl-C"
echo PASS
