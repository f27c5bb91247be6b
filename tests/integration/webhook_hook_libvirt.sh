#!/usr/bin/env bash
# The onDefineDomain hook (webhook/hook/onDefineDomain) on KubeVirt-shaped
# domain XML: an mdev hostdev with display='on' ramfb='on' and VNC graphics,
# as virt-launcher defines it. Run the way KubeVirt's sidecar-shim runs it
# (found on PATH, --vmi JSON --domain XML, stdout is the new domain), under
# dash, bash and busybox sh; then real libvirt (qemu:///system) must turn the
# result into `-display egl-headless,rendernode=/dev/dri/renderD128` next to
# the VNC display, with the vfio-pci device still display=on. The script the
# ConfigMap ships must be this file, byte for byte.
source "$(dirname "$0")/../../webhook/tests/lib.sh"

DOM=$FIX/domain-vgpu.xml
mkdir -p "$WORK/bin"
cp webhook/hook/onDefineDomain "$WORK/bin/onDefineDomain"
[ -x "$WORK/bin/onDefineDomain" ] || fail "the hook is not executable in git (chmod +x)"
VMI=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$FIX/vmi-gpu.json")
EXPECT='    <graphics type="egl-headless"><gl rendernode="/dev/dri/renderD128"/></graphics>'

# As the shim does: exec.Command("onDefineDomain", "--vmi", vmi, "--domain", xml)
PATH=$WORK/bin:$PATH onDefineDomain --vmi "$VMI" --domain "$(cat "$DOM")" >"$WORK/out.xml" 2>"$WORK/hook.err" ||
	fail "hook failed: $(cat "$WORK/hook.err")"
[ ! -s "$WORK/hook.err" ] || fail "hook wrote to stderr: $(cat "$WORK/hook.err")"
diff "$DOM" "$WORK/out.xml" >"$WORK/diff" && fail "hook changed nothing"
[ "$(grep -c '^[<>]' "$WORK/diff")" = 1 ] || fail "hook changed more than one line: $(cat "$WORK/diff")"
grep -qxF "> $EXPECT" "$WORK/diff" || fail "unexpected change: $(cat "$WORK/diff")"
$PY - "$WORK/out.xml" <<'EOF' || fail "egl-headless is not a child of <devices>"
import sys, xml.etree.ElementTree as ET
d = ET.parse(sys.argv[1]).getroot().find("devices")
g = [e for e in d.findall("graphics") if e.get("type") == "egl-headless"]
assert len(g) == 1 and g[0].find("gl").get("rendernode") == "/dev/dri/renderD128"
assert [e.get("type") for e in d.findall("graphics")] == ["vnc", "egl-headless"]
EOF
wellformed() {
	$PY -c 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])' "$1"
}
wellformed "$WORK/out.xml" || fail "output is not well-formed XML"
ok "shim-style call: exactly one line added, egl-headless inside <devices>, well-formed"

for sh in dash bash busybox; do
	command -v "$sh" >/dev/null || continue
	args=("$sh")
	[ "$sh" = busybox ] && args=(busybox sh)
	[ "$sh" = bash ] && args=(bash --posix)
	"${args[@]}" webhook/hook/onDefineDomain --vmi '{}' --domain "$(cat "$DOM")" >"$WORK/out-$sh.xml" ||
		fail "hook under $sh failed"
	cmp -s "$WORK/out.xml" "$WORK/out-$sh.xml" || fail "hook output differs under $sh"
	"${args[@]}" webhook/hook/onDefineDomain --vmi '{}' --domain "$(cat "$WORK/out.xml")" >"$WORK/again-$sh.xml"
	cmp -s "$WORK/out.xml" "$WORK/again-$sh.xml" || fail "hook not idempotent under $sh"
done
webhook/hook/onDefineDomain <"$DOM" | cmp -s - "$WORK/out.xml" || fail "stdin mode differs"
ok "same output under dash, bash --posix and busybox sh, from argv or stdin; idempotent"

# Shapes: single-quoted existing display, one-line document, <devices/>, no devices.
sed "s#</devices>#<graphics type='egl-headless'><gl rendernode='/dev/dri/renderD129'/></graphics></devices>#" "$DOM" >"$WORK/has.xml"
webhook/hook/onDefineDomain <"$WORK/has.xml" | cmp -s - "$WORK/has.xml" || fail "an existing egl-headless display was touched"
tr -d '\n' <"$DOM" >"$WORK/oneline.xml"
webhook/hook/onDefineDomain <"$WORK/oneline.xml" >"$WORK/oneline.out"
grep -qF '<graphics type="egl-headless"><gl rendernode="/dev/dri/renderD128"/></graphics></devices>' "$WORK/oneline.out" ||
	fail "one-line document"
wellformed "$WORK/oneline.out" || fail "one-line output malformed"
printf '<domain type="qemu"><name>x</name><devices/></domain>' | webhook/hook/onDefineDomain >"$WORK/empty.out"
grep -qF '<devices><graphics type="egl-headless"><gl rendernode="/dev/dri/renderD128"/></graphics></devices>' "$WORK/empty.out" ||
	fail "<devices/>: $(cat "$WORK/empty.out")"
printf '<domain type="qemu"><name>x</name></domain>' | webhook/hook/onDefineDomain >"$WORK/nodev.out"
$PY -c 'import sys, xml.etree.ElementTree as ET
d = ET.parse(sys.argv[1]).getroot()
assert len([g for g in d.findall("devices/graphics") if g.get("type") == "egl-headless"]) == 1' "$WORK/nodev.out" ||
	fail "no <devices>: $(cat "$WORK/nodev.out")"
rc=0
echo 'not xml' | webhook/hook/onDefineDomain >/dev/null 2>"$WORK/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'not a libvirt domain' "$WORK/err" || fail "garbage input: rc=$rc $(cat "$WORK/err")"
rc=0
webhook/hook/onDefineDomain --render-node '/dev/dri/x"><evil' <"$DOM" >/dev/null 2>"$WORK/err" || rc=$?
[ $rc -eq 1 ] || fail "an XML-breaking render node was accepted"
ok "existing egl-headless kept as is; one-line, <devices/>, no-devices shapes; bad input exits 1 with a message"

# The script's text surgery equals the same rule applied with libxml2
# (`mesa-injector hook-apply`, webhook/domain_hook.c), compared as
# canonical XML, on every shape above.
printf '<domain type="qemu"><name>x</name><devices/></domain>' >"$WORK/empty.xml"
printf '<domain type="qemu"><name>x</name></domain>' >"$WORK/nodev.xml"
for f in "$DOM" "$WORK/has.xml" "$WORK/oneline.xml" "$WORK/empty.xml" "$WORK/nodev.xml"; do
	webhook/hook/onDefineDomain <"$f" >"$WORK/sh.xml" || fail "hook on $f"
	"$MI" hook-apply <"$f" >"$WORK/c.xml" || fail "hook-apply on $f"
	$PY - "$WORK/sh.xml" "$WORK/c.xml" <<'EOF' || fail "script and libxml2 disagree on $(basename "$f")"
import sys, xml.etree.ElementTree as ET
a, b = (ET.canonicalize(from_file=p, strip_text=True) for p in sys.argv[1:3])
sys.exit(a != b)
EOF
done
rc=0
echo '<pool/>' | "$MI" hook-apply >/dev/null 2>"$WORK/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'not a libvirt domain' "$WORK/err" || fail "hook-apply on a non-domain: rc=$rc"
ok "the script's output equals libxml2's (mesa-injector hook-apply) on all five shapes"

# The ConfigMap (vmiHook.source configMap) carries this very file.
"$MI" manifests --certs "$WORK/nocerts" --url https://127.0.0.1:9443 >/dev/null 2>&1 && fail "manifests without certs dir"
make_certs "$WORK/certs"
printf 'vmiHook:\n  source: configMap\n  namespaces: [default, lab, team-a]\n' >"$WORK/cm.yaml"
"$MI" manifests --url https://127.0.0.1:9443 --certs "$WORK/certs" --config "$WORK/cm.yaml" >"$WORK/m.yaml" ||
	fail "manifests"
$PY - "$WORK/m.yaml" webhook/hook/onDefineDomain <<'EOF' || fail "ConfigMap script differs from webhook/hook/onDefineDomain"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "mesa-injector-hook"]
assert len(cms) == 3, len(cms)
for cm in cms:
    assert cm["data"]["onDefineDomain"] == open(sys.argv[2]).read()
EOF
ok "the hook ConfigMap holds webhook/hook/onDefineDomain byte for byte"

# ---- real libvirt ---------------------------------------------------------------
if ! scripts/ensure-libvirtd.sh >"$WORK/libvirtd.log" 2>&1; then
	echo "SKIP: libvirtd not reachable on qemu:///system: $(cat "$WORK/libvirtd.log")"
	exit 77
fi
virsh -c qemu:///system domxml-to-native qemu-argv "$DOM" >"$WORK/before.argv" 2>"$WORK/virsh.err" ||
	fail "domxml-to-native of the original domain: $(cat "$WORK/virsh.err")"
grep -q -- '-display egl-headless' "$WORK/before.argv" && fail "libvirt added egl-headless by itself"
grep -q -- '-vnc vnc=unix:' "$WORK/before.argv" || fail "control: no VNC display"
ok "control: without the hook libvirt gives QEMU only the VNC display"
virsh -c qemu:///system domxml-to-native qemu-argv "$WORK/out.xml" >"$WORK/after.argv" 2>"$WORK/virsh.err" ||
	fail "domxml-to-native of the hooked domain: $(cat "$WORK/virsh.err")"
grep -qE -- '-vnc vnc=unix:[^ ]+ -display egl-headless,rendernode=/dev/dri/renderD128 ' "$WORK/after.argv" ||
	fail "no '-display egl-headless,rendernode=/dev/dri/renderD128' next to -vnc: $(cat "$WORK/after.argv")"
grep -qE -- '"driver":"vfio-pci-nohotplug","id":"ua-gpu-gpu1","sysfsdev":"/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01","display":"on","ramfb":true' \
	"$WORK/after.argv" || fail "vfio-pci device lost display=on/ramfb: $(grep -o 'vfio[^ ]*' "$WORK/after.argv")"
ok "libvirt: -display egl-headless,rendernode=/dev/dri/renderD128 next to -vnc; vfio-pci-nohotplug display=on ramfb=on"

# The whole domain survives a define/dumpxml round trip (test driver).
virsh -c test:///default "define $WORK/out.xml ; dumpxml kubevirt-test-default_testvmi-gpu" >"$WORK/dump.xml" 2>&1 ||
	fail "test driver define: $(cat "$WORK/dump.xml")"
grep -q "<graphics type='egl-headless'>" "$WORK/dump.xml" && grep -q "<gl rendernode='/dev/dri/renderD128'/>" "$WORK/dump.xml" ||
	fail "dumpxml lost the display: $(grep -A2 graphics "$WORK/dump.xml")"
ok "libvirt's parser keeps <graphics type='egl-headless'><gl rendernode=.../> through define/dumpxml"
echo "PASS: $CHECKS checks"
