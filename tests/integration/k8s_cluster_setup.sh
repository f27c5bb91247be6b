#!/usr/bin/env bash
# Cluster setup (provision/cluster_setup.c) against the real kube-apiserver of
# the test harness (tests/k8s/), through build/tests/cluster-setup-tool, which
# calls it as `vgpuenv up` does after the nodes are up. Its kubectl calls are
# real: what is checked is what the API server then stores.
#  - nodes whose render-node probe passed get vgpuenv.io/render-node=true under
#    the name Kubernetes knows (a kubelet may register the FQDN), the others
#    not;
#  - url mode: the MutatingWebhookConfiguration from `mesa-injector manifests`
#    is stored with the host URL and the CA of the certificates cluster setup
#    made;
#  - the KubeVirt CR (under our minimal CRD, tests/k8s/fixtures) is merge-
#    patched keeping what it had, and a second run changes nothing (same
#    resourceVersion); `kubectl wait` sees the Available condition that
#    virt-operator would set (set here: there are no KubeVirt controllers);
#  - a missing KubeVirt CR is a notice, not an error;
#  - a kubeconfig whose user may do nothing: cluster setup fails with the API
#    server's Forbidden, it does not pass silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/k8s/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root"; exit 77; }
TOOL=build/tests/cluster-setup-tool
[ -x "$TOOL" ] && [ -x build/mesa-injector ] || { echo "SKIP: $TOOL or build/mesa-injector not built (make test-tools)"; exit 77; }
T=$(mktemp -d /tmp/vgpuenv-k8s-setup.XXXXXX)
trap 'rc=$?; k8s_down; rm -rf "$T"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export VGPUENV_STATE_DIR=$T/state
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok   $*"; }

k8s_up --no-node || exit $?

# Nodes as kcli's kubelets register them (the control plane with its domain).
for n in c-ctlplane-0.karmalabs.corp c-worker-0 c-worker-1; do
	kc create -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata: {name: $n, labels: {kubernetes.io/hostname: $n}}
EOF
done
printf '%s\n' '{"nodes":[{"name":"c-ctlplane-0","probe_ok":true},{"name":"c-worker-0","probe_ok":false},{"name":"c-worker-1","probe_ok":true}]}' >"$T/state.json"

# KubeVirt as virt-operator leaves it, with what an admin configured.
cat >"$T/cr.yaml" <<'EOF'
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata: {name: kubevirt, namespace: kubevirt}
spec:
  configuration:
    developerConfiguration: {featureGates: [LiveMigration, Snapshot]}
    permittedHostDevices:
      pciHostDevices: [{pciVendorSelector: "10de:1eb8", resourceName: nvidia.com/T4}]
EOF
k8s_kubevirt_cr "$T/cr.yaml"

# mesa-injector's default configuration: its manifests create nothing in
# namespaces that do not exist yet (the hook is an image sidecar; KubeVirt's
# functional tests create kubevirt-test-default<N> themselves at the start
# of a run and fail if it exists: kubevirt tests/testsuite/namespace.go).
cat >"$T/cfg.yaml" <<EOF
name: harness-setup
provider: kcli
webhook:
  deploy: url
  url: https://$K8S_ADDR:17443
EOF
run_setup() { "$TOOL" "$T/cfg.yaml" "$T/state.json" "$1" "$root/build"; }

run_setup "$KUBECONFIG_K8S" >"$T/setup1.out" 2>&1 || { cat "$T/setup1.out"; fail "cluster setup failed against the real API server"; }

# --- labels, as stored ---------------------------------------------------------
kc get nodes -L vgpuenv.io/render-node | sed 's/^/    api server: /'
label() { kc get node "$1" -o jsonpath='{.metadata.labels.vgpuenv\.io/render-node}'; }
[ "$(label c-ctlplane-0.karmalabs.corp)" = true ] || fail "the control plane (registered with its FQDN) is not labelled"
[ "$(label c-worker-1)" = true ] || fail "c-worker-1 is not labelled"
[ -z "$(label c-worker-0)" ] || fail "c-worker-0, whose probe failed, was labelled"
ok "labels: the nodes whose probe passed, under their Kubernetes names; not the one that failed"

# --- the webhook configuration, as stored ----------------------------------------
S=$VGPUENV_STATE_DIR/harness-setup
url=$(kc get mutatingwebhookconfiguration mesa-injector -o jsonpath='{.webhooks[0].clientConfig.url}')
bundle=$(kc get mutatingwebhookconfiguration mesa-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
echo "    api server: mesa-injector webhook url $url"
[ "$url" = "https://$K8S_ADDR:17443/mutate-pods" ] || fail "stored webhook URL is $url"
[ "$bundle" = "$(base64 -w0 <"$S/webhook-certs/ca.crt")" ] || fail "stored caBundle is not the CA of the certificates cluster setup made"
ok "url mode: MutatingWebhookConfiguration stored with the host URL and the CA of $S/webhook-certs"

# --- the KubeVirt CR, as stored ----------------------------------------------------
cr() { kc -n kubevirt get kubevirt kubevirt -o json; }
cr >"$T/cr1.json"
python3 - "$T/cr1.json" <<'EOF' | sed 's/^/    /'
import json, sys
c = json.load(open(sys.argv[1]))["spec"]["configuration"]
print("api server: featureGates", c["developerConfiguration"]["featureGates"])
print("api server: mediatedDeviceTypes", c["mediatedDevicesConfiguration"]["mediatedDeviceTypes"])
print("api server: permittedHostDevices", json.dumps(c["permittedHostDevices"]))
assert c["developerConfiguration"]["featureGates"] == ["LiveMigration", "Snapshot", "Sidecar"], "feature gates"
assert "nvidia-222" in c["mediatedDevicesConfiguration"]["mediatedDeviceTypes"], "mediated device type"
sel = [d["mdevNameSelector"] for d in c["permittedHostDevices"]["mediatedDevices"]]
assert sel == ["GRID T4-1B", "GRID T4-2B"], sel
assert c["permittedHostDevices"]["pciHostDevices"] == [{"pciVendorSelector": "10de:1eb8", "resourceName": "nvidia.com/T4"}], "pci devices lost"
EOF
grep -q "patched KubeVirt CR kubevirt/kubevirt" "$T/setup1.out" || fail "no patch reported"
ok "KubeVirt CR: Sidecar, nvidia-222 and the GRID T4 devices added; LiveMigration, Snapshot and the PCI device kept"

rv1=$(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.metadata.resourceVersion}')
run_setup "$KUBECONFIG_K8S" >"$T/setup2.out" 2>&1 || { cat "$T/setup2.out"; fail "second cluster setup failed"; }
rv2=$(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.metadata.resourceVersion}')
[ "$rv1" = "$rv2" ] || { diff <(python3 -m json.tool "$T/cr1.json") <(cr | python3 -m json.tool) || true; fail "the second run changed the CR ($rv1 -> $rv2)"; }
ok "second run: the API server kept the CR unchanged (resourceVersion $rv1)"

# --- no KubeVirt yet ---------------------------------------------------------------
kc -n kubevirt delete kubevirt kubevirt --wait=true >/dev/null
run_setup "$KUBECONFIG_K8S" >"$T/setup3.out" 2>&1 || { cat "$T/setup3.out"; fail "cluster setup failed without a KubeVirt CR"; }
grep -q "KubeVirt is not deployed in namespace kubevirt yet" "$T/setup3.out" || { cat "$T/setup3.out"; fail "no notice about the missing CR"; }
ok "no KubeVirt CR: the API server's NotFound becomes a notice, setup goes on"
k8s_kubevirt_cr "$T/cr.yaml"

# --- a user the API server gives no rights ------------------------------------------
k8s_cert nobody "/CN=vgpuenv-nobody" "keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
k8s_kubeconfig "$T/nobody.kubeconfig" nobody
if run_setup "$T/nobody.kubeconfig" >"$T/setup4.out" 2>&1; then
	cat "$T/setup4.out"
	fail "cluster setup succeeded for a user without rights"
fi
grep -m1 Forbidden "$T/setup4.out" | sed 's/^/    api server: /'
grep -q "Forbidden" "$T/setup4.out" || { cat "$T/setup4.out"; fail "the API server's Forbidden was not shown"; }
ok "a user without rights: cluster setup fails with the API server's Forbidden"
echo PASS
