#!/usr/bin/env bash
# The onDefineDomain hook where KubeVirt's functional suite puts its VMIs, in
# the suite's order, on the test harness's real Kubernetes (tests/k8s/):
# mesa-injector is deployed first, with its default configuration, and the
# namespaces come later, at test time, as the suite creates them
# (kubevirt-test-default1, kubevirt-test-alternative1, then
# kubevirt-test-default2 for a second parallel process: tests/testsuite
# CalculateNamespaces appends GinkgoParallelProcess()).
#  - `kubectl apply` of `mesa-injector manifests` succeeds before any of them
#    exists and creates nothing in them;
#  - a GPU VMI created in each is stored with our hook sidecar (our image,
#    no ConfigMap);
#  - virt-controller's rendering of the launcher pod (a stand-in,
#    tests/k8s/virt_controller_standin.py, mirroring template.go) succeeds
#    there; the real kubelet runs the pod: compute with the device plugin's
#    render node, and the hook sidecar from mesa-injector's image (built
#    with podman from webhook/deploy/Containerfile, imported into the node's
#    containerd), which virt-launcher's hook manager (python3-grpcio,
#    webhook/tests/hook_launcher_peer.py, reading the pod's emptyDir as
#    compute sees it) collects and calls: the domain gets egl-headless; after
#    Shutdown the sidecar container ends with exit 0;
#  - the control: the ConfigMap hook mesa-injector used to add makes the
#    same rendering fail in a namespace the suite creates (no ConfigMap
#    there), as upstream's does: no pod.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
T=
PY=/usr/bin/python3 # Debian's, with python3-grpcio (another python3 may lead PATH)
fail() {
	echo "FAIL: $*" >&2
	[ -n "$T" ] && [ -f "$T/injector.log" ] && tail -n 5 "$T/injector.log" >&2
	exit 1
}
ok() { echo "ok   $*"; }
. tests/k8s/lib.sh
. tests/lib/oci.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root (containerd, kubelet, mounts)"; exit 77; }
for p in mesa-injector mesa-injector-device-plugin mesa-injector-hook-sidecar; do
	[ -x "build/$p" ] || { echo "SKIP: build/$p not built (run make)"; exit 77; }
done
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null || fail "python3-grpcio and python3-grpc-tools are needed (make deps)"
oci_need
T=$(mktemp -d /tmp/vgpuenv-k8s-suite.XXXXXX)
PIDS=()
IMG=vgpuenv.local/mesa-injector:suite-test
cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	k8s_down
	oci_podman rmi "$IMG" >/dev/null 2>&1 || true
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
PORT=17453

# --- mesa-injector's image, as the nodes would pull it -----------------------------
oci_webhook_image "$IMG" "$T/build.log" || { tail -20 "$T/build.log"; fail "podman build of webhook/deploy/Containerfile"; }
oci_podman save --format docker-archive -o "$T/image.tar" "$IMG" >/dev/null || fail "podman save"

k8s_up || exit $?
k8s_ctr images import "$T/image.tar" >/dev/null || fail "ctr images import of the image"
k8s_ctr images ls -q >"$T/images"
grep -qxF "$IMG" "$T/images" || fail "the node has no $IMG: $(cat "$T/images")"
echo "    node: $IMG imported into containerd"

# --- the device plugin on the node and the webhook on the host, default config ------
echo "    render node: $(k8s_render_node)"
k8s_spawn_in_node device-plugin "$root/build/mesa-injector" device-plugin
allocatable() { kc get node "$K8S_NODE_NAME" -o jsonpath='{.status.allocatable.vgpuenv\.io/render}'; }
advertised() { local n; n=$(allocatable) && [ -n "$n" ] && [ "$n" -gt 0 ]; }
k8s_wait 60 "the node advertising vgpuenv.io/render" advertised || fail "the device plugin did not register"
build/mesa-injector certs --service mesa-injector --namespace mesa-injector --out "$T/certs" --ip "$K8S_ADDR" >/dev/null
build/mesa-injector serve --listen "$K8S_ADDR:$PORT" --cert "$T/certs/tls.crt" --key "$T/certs/tls.key" \
	--image "$IMG" 2>>"$T/injector.log" &
PIDS+=($!)
k8s_wait 20 mesa-injector curl -fsS --cacert "$T/certs/ca.crt" "https://$K8S_ADDR:$PORT/healthz" || fail "serve"
kc apply -f tests/k8s/fixtures/kubevirt-crds.yaml >/dev/null
kc wait --for condition=Established --timeout 60s crd/virtualmachineinstances.kubevirt.io >/dev/null
build/mesa-injector manifests --url "https://$K8S_ADDR:$PORT" --certs "$T/certs" --image "$IMG" >"$T/manifests.yaml"
kc apply -f "$T/manifests.yaml" >"$T/apply.out" 2>&1 || { cat "$T/apply.out"; fail "kubectl apply of the default manifests"; }
sed 's/^/    api server: /' "$T/apply.out"
kc get namespaces -o name >"$T/ns"
grep -q 'kubevirt-test' "$T/ns" && fail "applying the manifests made a kubevirt-test-* namespace"
ok "default manifests applied before any kubevirt-test-* namespace exists; none made"

# --- the suite's order: the namespace at test time, then the VMI -------------------
vmi() { # NS NAME
	"$PY" - "$1" "$2" webhook/tests/fixtures/vmi-gpu.json <<'EOF'
import json, sys
v = json.load(open(sys.argv[3]))
v["metadata"].update({"namespace": sys.argv[1], "name": sys.argv[2]})
print(json.dumps(v))
EOF
}
# The API server picks up webhook configurations from its watch: a
# server-side dry run in "default" shows when ours is called.
webhook_active() { vmi default probe | kc create --dry-run=server -f - -o json 2>/dev/null | grep -q hook-sidecar; }
k8s_wait 30 "the API server calling mesa-injector" webhook_active || fail "the webhook is not called"
for ns in kubevirt-test-default1 kubevirt-test-alternative1 kubevirt-test-default2; do
	k8s_namespace "$ns"
	vmi "$ns" testvmi-gpu | kc create -f - -o json >"$T/$ns.vmi.json" || fail "creating the VMI in $ns"
	"$PY" - "$T/$ns.vmi.json" "$IMG" <<'EOF' || fail "the VMI in $ns as stored: $(cat "$T/$ns.vmi.json")"
import json, sys
v = json.load(open(sys.argv[1]))
hooks = json.loads(v["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"])
assert hooks == [{"image": sys.argv[2], "imagePullPolicy": "IfNotPresent",
                  "command": ["/usr/local/bin/mesa-injector-hook-sidecar"],
                  "args": ["--render-node", "/dev/dri/renderD128"]}], hooks
EOF
	[ "$(kc -n "$ns" get configmaps -o name)" = "configmap/kube-root-ca.crt" ] ||
		fail "$ns holds more than the controllers' ConfigMap: $(kc -n "$ns" get configmaps -o name)"
	echo "    api server: $ns/testvmi-gpu stored with hook sidecar image $IMG; no ConfigMap of ours there"
done
ok "namespaces created at test time (kubevirt-test-default1, -alternative1, -default2): each GPU VMI gets the image hook"

# --- virt-controller renders the pod, the kubelet runs it, virt-launcher's hook manager calls it ----
NS=kubevirt-test-default1
"$PY" tests/k8s/virt_controller_standin.py "$K8S_BIN/kubectl" "$KUBECONFIG_K8S" "$NS" testvmi-gpu \
	"$K8S_NODE_NAME" "$K8S_TEST_IMAGE" >"$T/pod.json" || fail "the virt-controller stand-in: $(cat "$T/pod.json")"
uid=$("$PY" -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["metadata"]["uid"])' "$T/pod.json")
"$PY" - "$T/pod.json" <<'EOF' || fail "the stored pod: our pod webhook did not add the render node resource"
import json, sys
p = json.load(open(sys.argv[1]))
c = [x for x in p["spec"]["containers"] if x["name"] == "compute"][0]
assert c["resources"]["limits"]["vgpuenv.io/render"] == "1", c.get("resources")
assert [x["name"] for x in p["spec"]["containers"]] == ["compute", "hook-sidecar-0"]
EOF
sockdir=$K8S_ROOT/kubelet/pods/$uid/volumes/kubernetes.io~empty-dir/hook-sidecar-sockets
k8s_wait 120 "the hook sidecar's socket" test -S "$sockdir/hook-sidecar-0/mesa-injector-hook-sidecar-0.sock" ||
	fail "no socket: $(kc -n "$NS" get pod virt-launcher-testvmi-gpu -o jsonpath='{.status}')"
echo "    kubelet: pod $NS/virt-launcher-testvmi-gpu running; sidecar socket in its emptyDir"
"$PY" -m grpc_tools.protoc -Iwebhook --python_out="$T" --grpc_python_out="$T" \
	webhook/hook_info.proto webhook/hook_callbacks.proto
# compute's /var/run/kubevirt-hooks, by a path short enough for a unix
# socket's address (108 bytes with the NUL).
ln -s "$sockdir" "$T/hooks"
"$PY" - "$T" "$T/hooks" <<'EOF' || fail "virt-launcher's hook manager against the pod's sidecar"
import sys, xml.etree.ElementTree as ET
sys.path.insert(0, "webhook/tests")
import hook_launcher_peer as hp
info, cb = hp.load_stubs(sys.argv[1])
m = hp.HookManager(info, cb, sys.argv[2])
m.collect(1, 30)
out = m.on_define_domain(open("webhook/tests/fixtures/domain-vgpu.xml", "rb").read(),
                         open("webhook/tests/fixtures/vmi-gpu.json", "rb").read())
g = [(x.get("type"), [y.get("rendernode") for y in x]) for x in ET.fromstring(out).find("devices").findall("graphics")]
assert ("egl-headless", ["/dev/dri/renderD128"]) in g, g
m.shutdown()
print("    hook manager: collected hook-sidecar-0, OnDefineDomain added egl-headless, Shutdown sent")
EOF
sidecar_exit() { kc -n "$NS" get pod virt-launcher-testvmi-gpu -o jsonpath='{.status.containerStatuses[?(@.name=="hook-sidecar-0")].state.terminated.exitCode}'; }
sidecar_ended() { [ -n "$(sidecar_exit)" ]; }
k8s_wait 60 "the sidecar container to end" sidecar_ended || true
[ "$(sidecar_exit)" = 0 ] || fail "the sidecar container did not end with 0 after Shutdown: '$(sidecar_exit)'"
ok "the rendered pod ran: compute with vgpuenv.io/render, the image's sidecar collected and called (egl-headless added), exit 0 after Shutdown"

# --- control: a ConfigMap hook in a namespace the suite created ---------------------
NS=kubevirt-test-alternative1
kc -n "$NS" annotate vmi testvmi-gpu --overwrite \
	'hooks.kubevirt.io/hookSidecars=[{"args":["--version","v1alpha2"],"configMap":{"name":"mesa-injector-hook","key":"onDefineDomain","hookPath":"/usr/bin/onDefineDomain"}}]' >/dev/null
rc=0
"$PY" tests/k8s/virt_controller_standin.py "$K8S_BIN/kubectl" "$KUBECONFIG_K8S" "$NS" testvmi-gpu \
	"$K8S_NODE_NAME" "$K8S_TEST_IMAGE" >"$T/cm.out" 2>&1 || rc=$?
[ $rc -eq 3 ] && grep -q 'FailedCreate: .*configmaps "mesa-injector-hook" not found' "$T/cm.out" ||
	fail "control: rc=$rc $(cat "$T/cm.out")"
[ -z "$(kc -n "$NS" get pods -o name)" ] || fail "control: a pod was created"
echo "    api server: $(cat "$T/cm.out")"
ok "control: the ConfigMap hook (mesa-injector's old one) makes virt-controller's render fail in $NS: no pod"
