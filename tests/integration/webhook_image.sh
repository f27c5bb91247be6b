#!/usr/bin/env bash
# mesa-injector's image, built with podman from webhook/deploy/Containerfile
# as a user builds it, but offline: its two bases are Debian 12 root file
# systems made by mmdebstrap (with the packages of webhook/deploy/
# packages-build and packages-run) and `podman import`ed, and the build runs
# with --pull=never --network=none, so no registry is involved. Then the
# image's programs run from its root file system with runc, as the cluster
# runs them: the hook sidecar as uid 107 (a non-root VMI's sidecar) on a
# socket directory laid out as virt-controller lays it out, answering
# virt-launcher's hook manager (webhook/tests/hook_launcher_peer.py); the
# webhook as the image's user 65532, answering a VMI admission over TLS; the
# device plugin's and hook-apply's programs start. Cold, the bases take
# minutes (printed); they and the build steps are cached by content.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/oci.sh"
cd "$(dirname "$0")/../.."
oci_need
PY=/usr/bin/python3
"$PY" -c 'import grpc, grpc_tools, yaml' 2>/dev/null || fail "python3-grpcio, python3-grpc-tools, python3-yaml needed"
MI=${MESA_INJECTOR:-build/mesa-injector}
[ -x "$MI" ] || fail "$MI not built (run make)"
T=$(mktemp -d /tmp/webhook-image.XXXXXX)
IMG=localhost/vgpuenv/mesa-injector:test-$$
cleanup() {
	local d
	for d in "$T"/run-*; do
		[ -f "$d/pid" ] && oci_bundle_stop "$d" >/dev/null
		umount "$d/rootfs" 2>/dev/null || true
	done
	oci_podman image unmount "$IMG" >/dev/null 2>&1 || true
	oci_podman rmi "$IMG" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

t0=$(date +%s)
BUILD_BASE=$(oci_debian_base webhook-build webhook/deploy/packages-build)
RUN_BASE=$(oci_debian_base webhook-run webhook/deploy/packages-run)
t1=$(date +%s)
oci_podman build --layers=false --pull=never --network=none --build-arg BUILD_BASE="$BUILD_BASE" \
	--build-arg RUN_BASE="$RUN_BASE" -f webhook/deploy/Containerfile -t "$IMG" . >"$T/build.log" 2>&1 ||
	{ tail -30 "$T/build.log"; fail "podman build of webhook/deploy/Containerfile failed"; }
t2=$(date +%s)
ok "podman build (offline, local bases): bases $((t1 - t0)) s, build $((t2 - t1)) s"

cfg=$(oci_podman image inspect "$IMG" --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{index .Config.Labels "io.vgpuenv.image"}}')
[ "$cfg" = '65532:65532|["/usr/local/bin/mesa-injector"]|mesa-injector' ] || fail "image config: $cfg"
root=$(oci_podman image mount "$IMG")
for p in mesa-injector mesa-injector-hook-apply mesa-injector-device-plugin mesa-injector-hook-sidecar; do
	[ -x "$root/usr/local/bin/$p" ] || fail "/usr/local/bin/$p missing in the image"
done
# What our hookSidecars entry names must be in the image.
grep -q '"/usr/local/bin/mesa-injector-hook-sidecar"' webhook/patch.h || fail "HOOK_SIDECAR_COMMAND moved"
for d in "$root"/usr/bin/gcc "$root"/src "$root"/vgpuenv; do
	[ ! -e "$d" ] || fail "build leftovers in the image: ${d#"$root"}"
done
ok "image: user 65532, entrypoint mesa-injector, the four programs in /usr/local/bin, no compiler or sources"

# ---- the hook sidecar, as a non-root VMI's sidecar runs -----------------------------------
"$PY" -m grpc_tools.protoc -Iwebhook --python_out="$T" --grpc_python_out="$T" \
	webhook/hook_info.proto webhook/hook_callbacks.proto || fail "grpc_tools"
# The pod's hook-sidecar-sockets emptyDir (mode 0777, as the kubelet makes
# it) with the sidecar's subPath directory.
mkdir -p "$T/hooks/hook-sidecar-0"
chmod 0777 "$T/hooks" "$T/hooks/hook-sidecar-0"
oci_bundle_run "$IMG" "$T/run-sidecar" --uid 107 --env CONTAINER_NAME=hook-sidecar-0 \
	--bind "$T/hooks/hook-sidecar-0:/var/run/kubevirt-hooks" --bg -- \
	/usr/local/bin/mesa-injector-hook-sidecar --render-node /dev/dri/renderD128
"$PY" - "$T" webhook/tests/fixtures/domain-vgpu.xml webhook/tests/fixtures/vmi-gpu.json <<'EOF' ||
import os, sys, xml.etree.ElementTree as ET
sys.path.insert(0, "webhook/tests")
import hook_launcher_peer as hp
t, dom, vmi = sys.argv[1:4]
info, cb = hp.load_stubs(t)
m = hp.HookManager(info, cb, t + "/hooks")
m.collect(1, 20)
out = m.on_define_domain(open(dom, "rb").read(), open(vmi, "rb").read())
g = [(x.get("type"), [y.get("rendernode") for y in x]) for x in ET.fromstring(out).find("devices").findall("graphics")]
assert ("egl-headless", ["/dev/dri/renderD128"]) in g, g
st = os.stat(t + "/hooks/hook-sidecar-0/mesa-injector-hook-sidecar-0.sock")
assert st.st_uid == 107, st.st_uid
m.shutdown()
print("sidecar: collected, egl-headless added, socket owned by uid 107, Shutdown sent")
EOF
	{ cat "$T/run-sidecar/out"; fail "the image's hook sidecar did not serve virt-launcher's hook manager"; }
for _ in $(seq 50); do oci_bundle_ended "$T/run-sidecar" && break; sleep 0.1; done
oci_bundle_ended "$T/run-sidecar" || fail "the sidecar still runs after Shutdown"
rc=$(oci_bundle_stop "$T/run-sidecar")
[ "$rc" = 0 ] || fail "the sidecar exited $rc: $(cat "$T/run-sidecar/out")"
[ -z "$(ls "$T/hooks/hook-sidecar-0")" ] || fail "socket left: $(ls "$T/hooks/hook-sidecar-0")"
ok "hook sidecar from the image, uid 107, CONTAINER_NAME=hook-sidecar-0: Collect, OnDefineDomain, Shutdown: exit 0"

# ---- the webhook, as the Deployment runs it (image user, read-only root) -----------------
"$MI" certs --service mesa-injector --namespace mesa-injector --out "$T/tls" >/dev/null 2>&1 || fail "certs"
chmod 0755 "$T/tls" && chmod 0644 "$T/tls/tls.key" # user 65532 reads them, as from a Secret volume
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
oci_bundle_run "$IMG" "$T/run-webhook" --bind "$T/tls:/tls:ro" --bg -- \
	/usr/local/bin/mesa-injector serve --listen "127.0.0.1:$port" --cert /tls/tls.crt --key /tls/tls.key
for _ in $(seq 100); do
	curl -fsS --cacert "$T/tls/ca.crt" --resolve "mesa-injector.mesa-injector.svc:$port:127.0.0.1" \
		"https://mesa-injector.mesa-injector.svc:$port/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$PY" - webhook/tests/fixtures/vmi-gpu.json >"$T/review.json" <<'EOF'
import json, sys
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u1", "operation": "CREATE", "namespace": "kubevirt-test-default1",
                              "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
                              "object": json.load(open(sys.argv[1]))}}))
EOF
curl -fsS --cacert "$T/tls/ca.crt" --resolve "mesa-injector.mesa-injector.svc:$port:127.0.0.1" \
	-H 'Content-Type: application/json' --data-binary @"$T/review.json" \
	"https://mesa-injector.mesa-injector.svc:$port/mutate-vmis" >"$T/answer.json" ||
	{ cat "$T/run-webhook/out"; fail "the image's webhook did not answer"; }
"$PY" - "$T/answer.json" <<'EOF' || fail "the image's webhook answer: $(cat "$T/answer.json")"
import base64, json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["uid"] == "u1" and r["allowed"] is True
ops = json.loads(base64.b64decode(r["patch"]))
v = json.loads(ops[0]["value"]) if isinstance(ops[0]["value"], str) else ops[0]["value"]
v = v if isinstance(v, list) else json.loads(v["hooks.kubevirt.io/hookSidecars"])
assert v[0]["command"] == ["/usr/local/bin/mesa-injector-hook-sidecar"], v
EOF
rc=$(oci_bundle_stop "$T/run-webhook")
[ "$rc" = 0 ] || fail "the webhook exited $rc after SIGTERM: $(cat "$T/run-webhook/out")"
ok "webhook from the image as uid 65532 on a read-only root: TLS admission of a VMI in kubevirt-test-default1 names the image's sidecar; SIGTERM: exit 0"

oci_bundle_run "$IMG" "$T/run-dp" --uid 0 -- /usr/local/bin/mesa-injector device-plugin --help >"$T/dp.out" 2>&1 ||
	fail "device-plugin --help in the image: $(cat "$T/dp.out")"
grep -q 'kubelet device plugin API v1beta1' "$T/dp.out" || fail "device-plugin --help: $(cat "$T/dp.out")"
echo '<domain><devices/></domain>' >"$T/d.xml"
oci_bundle_run "$IMG" "$T/run-apply" --bind "$T/d.xml:/d.xml:ro" -- /bin/sh -c \
	'/usr/local/bin/mesa-injector hook-apply </d.xml' >"$T/apply.out" 2>&1 || fail "hook-apply: $(cat "$T/apply.out")"
grep -q 'egl-headless' "$T/apply.out" || fail "hook-apply in the image: $(cat "$T/apply.out")"
ok "device-plugin and hook-apply run from the image (their libraries are there)"
