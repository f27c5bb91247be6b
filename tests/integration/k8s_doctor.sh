#!/usr/bin/env bash
# `vgpuenv doctor --kubeconfig` on the test harness's real Kubernetes
# (tests/k8s/, with its node): which of the display chain's five links is
# missing, each from a real query, then each link put in place and seen:
#  - bare cluster: all five fail, each with its fix (links 1-2: no node
#    reachable over ssh here, which stays so: the harness node is this
#    machine, not a vgpuenv node);
#  - link 3: mesa-injector's DaemonSet (from its manifests, the pod its
#    controller would make, run by the real kubelet from mesa-injector's
#    podman-built image) registers the device plugin: the node's allocatable;
#  - link 4: the vmis webhook stored, KubeVirt's Sidecar gate, the hook
#    image running (the device plugin's pod);
#  - link 5: doctor's probe pod runs virt-controller's --launcher-image on
#    the node: the stock launcher stand-in's QEMU lists no egl-headless
#    (fail, with the fix), the recipe's image (images/launcher/) does.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
T=
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok   $*"; }
. tests/k8s/lib.sh
. tests/lib/oci.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root (containerd, kubelet, mounts)"; exit 77; }
[ -x build/vgpuenv ] && [ -x build/mesa-injector ] || { echo "SKIP: build/vgpuenv not built (run make)"; exit 77; }
oci_need
T=$(mktemp -d /tmp/vgpuenv-k8s-doctor.XXXXXX)
WIMG=vgpuenv.local/mesa-injector:doctor-test
STOCK=vgpuenv.local/virt-launcher:stock-doctor
GL=vgpuenv.local/virt-launcher-gl:doctor
cleanup() {
	local rc=$?
	k8s_down
	oci_podman rmi "$WIMG" "$GL" "$STOCK" >/dev/null 2>&1 || true
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

oci_webhook_image "$WIMG" "$T/webhook-build.log" || { tail -20 "$T/webhook-build.log"; fail "mesa-injector's image"; }
oci_launcher_images "$STOCK" "$GL" "$T/launcher-build.log" || { tail -20 "$T/launcher-build.log"; fail "the launcher images"; }
for i in "$WIMG" "$STOCK" "$GL"; do
	oci_podman save --format docker-archive -o "$T/img.tar" "$i" >/dev/null || fail "podman save $i"
	mv "$T/img.tar" "$T/$(echo "$i" | tr '/:' '__').tar"
done
k8s_up || exit $?
for f in "$T"/*.tar; do k8s_ctr images import "$f" >/dev/null || fail "ctr import $f"; done
echo "    node: imported $WIMG, $STOCK, $GL"

cat >"$T/cfg.yaml" <<EOF
name: h6-doctor
provider: local
network: {subnet: 192.168.183.0/24}
EOF
export VGPUENV_STATE_DIR=$T/state
doctor() { # name: doctor's links as JSON into $T/NAME.json
	build/vgpuenv doctor -c "$T/cfg.yaml" --json --kubeconfig "$KUBECONFIG_K8S" >"$T/$1.json" 2>"$T/$1.err" || true
	/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print("    doctor: %d %-36s %-4s %s%s" % (l["link"], l["check"], l["status"], l["detail"][:110], ("\n            fix: " + l["fix"]) if l["fix"] else "")) for l in d["links"]]' "$T/$1.json" ||
		fail "doctor printed no links: $(cat "$T/$1.err" "$T/$1.json")"
}
status() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(l["status"] for l in d["links"]))' "$T/$1.json"; }
has_fix() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=[x for x in d["links"] if x["link"]==int(sys.argv[2])][0]; sys.exit(0 if sys.argv[3] in l["fix"] else 1)' "$T/$1.json" "$2" "$3"; }

doctor bare
[ "$(status bare)" = "fail fail fail fail fail" ] || fail "bare cluster: $(status bare)"
has_fix bare 1 "vgpuenv up" && has_fix bare 3 "mesa-injector-device-plugin" && has_fix bare 4 "mesa-injector manifests" &&
	has_fix bare 5 "make cluster-sync" || fail "bare cluster: a fix line is missing"
ok "bare cluster: all five links missing, each with its fix"

# --- link 3: the DaemonSet's pod on the node ---------------------------------------------
echo "    render node: $(k8s_render_node)"
kc label node "$K8S_NODE_NAME" vgpuenv.io/render-node=true >/dev/null
build/mesa-injector certs --service mesa-injector --namespace mesa-injector --out "$T/certs" --ip "$K8S_ADDR" >/dev/null
build/mesa-injector manifests --url "https://$K8S_ADDR:17463" --certs "$T/certs" --image "$WIMG" >"$T/manifests.yaml"
kc apply -f "$T/manifests.yaml" >/dev/null
k8s_namespace mesa-injector
# What the DaemonSet controller would create on the node (the harness has no
# kube-controller-manager): its pod template, on the node, host network.
kc -n mesa-injector get daemonset mesa-injector-device-plugin -o json | /usr/bin/python3 -c '
import json, sys
ds = json.load(sys.stdin)
t = ds["spec"]["template"]
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": dict(t["metadata"], name="mesa-injector-device-plugin-node", namespace="mesa-injector"),
       "spec": dict(t["spec"], nodeName=sys.argv[1], hostNetwork=True)}
print(json.dumps(pod))' "$K8S_NODE_NAME" | kc create -f - >/dev/null
advertised() { local n; n=$(kc get node "$K8S_NODE_NAME" -o jsonpath='{.status.allocatable.vgpuenv\.io/render}') && [ -n "$n" ] && [ "$n" -gt 0 ]; }
k8s_wait 90 "the DaemonSet's device plugin registering" advertised ||
	fail "the device plugin pod did not register: $(kc -n mesa-injector get pod mesa-injector-device-plugin-node -o jsonpath='{.status}')"
echo "    api server: the device plugin pod from $WIMG runs; allocatable vgpuenv.io/render=$(kc get node "$K8S_NODE_NAME" -o jsonpath='{.status.allocatable.vgpuenv\.io/render}')"

# --- link 4 needs the gate; link 5 the launcher ----------------------------------------------
cat >"$T/cr.json" <<'JSON'
{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kubevirt","namespace":"kubevirt"},
 "spec":{"configuration":{"developerConfiguration":{"featureGates":["Sidecar"]}}}}
JSON
k8s_kubevirt_cr "$T/cr.json"
sed "s|registry:5000/kubevirt/virt-launcher:devel|$STOCK|" tests/k8s/fixtures/kubevirt-components.yaml | kc apply -f - >/dev/null
doctor stock
[ "$(status stock)" = "fail fail ok ok fail" ] || fail "with the stock launcher: $(status stock)"
has_fix stock 5 "kubevirt.launcher_gl: true" || fail "link 5's fix"
grep -q "lists no egl-headless" "$T/stock.json" || fail "link 5's detail: $(cat "$T/stock.json")"
ok "device plugin, webhook, Sidecar gate and hook image in place: links 3 and 4 ok; link 5 fails for the stock launcher (its QEMU, run by doctor's probe pod, lists no egl-headless)"

kc -n kubevirt patch deployment virt-controller --type json -p \
	"[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/args/1\",\"value\":\"$GL\"}]" >/dev/null
doctor gl
[ "$(status gl)" = "fail fail ok ok ok" ] || fail "with the recipe's launcher: $(status gl)"
grep -q "lists egl-headless" "$T/gl.json" || fail "link 5's detail: $(cat "$T/gl.json")"
[ -z "$(kc -n mesa-injector get pods -l app.kubernetes.io/part-of=vgpuenv -o name | grep doctor || true)" ] ||
	fail "doctor left its probe pod"
ok "virt-controller on the recipe's launcher: link 5 ok (its QEMU lists egl-headless); the probe pods are gone"
