#!/usr/bin/env bash
# mesa-injector admitted by a real kube-apiserver (tests/k8s/, 1.36): the
# webhook is deployed from `mesa-injector manifests --url` and served on the
# host; a virt-launcher-shaped pod (webhook/tests/fixtures, the shape of
# kubevirt's pkg/virt-controller/services/template.go) and a GPU VMI under our
# minimal VirtualMachineInstance CRD are created with kubectl in a namespace
# made here. What is checked is what the API server says: the objects it
# stored, its audit record of every webhook call and patch (round by round),
# its error messages and its metrics.
#  - the API server calls the webhook, applies the patch and validates the
#    result against the real Pod schema: every operation of the patch it
#    recorded is in the stored pod (a patch it rejects fails the create, and
#    this test with it);
#  - reinvocationPolicy IfNeeded: a later webhook (k8stool.py relabel) changes
#    the object, the API server calls mesa-injector again, and that call
#    changes nothing;
#  - failurePolicy: with the webhook down, Fail refuses the pod and the VMI,
#    Ignore admits them unmodified (and the API server records the fail-open).
# The expected additions are not listed here: they are whatever mesa-injector
# (configured in injector_config below, the one place to change) answered,
# as the API server recorded it.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/lib/common.sh
. tests/k8s/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root (containerd, kubelet, mounts)"; exit 77; }
[ -x build/mesa-injector ] || { echo "SKIP: build/mesa-injector not built (run make)"; exit 77; }
T=$(mktemp -d /tmp/vgpuenv-k8s-webhook.XXXXXX)
PIDS=()
cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	k8s_down
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A failure shows mesa-injector's last words (fail: tests/lib/common.sh).
on_fail() { [ -f "$T/injector.log" ] && tail -n 5 "$T/injector.log"; }
tool() { python3 "$root/tests/k8s/k8stool.py" "$@"; }

NS=kubevirt-test-default1
PORT=17443 RELABEL_PORT=17444
# mesa-injector's configuration for this test; the assertions follow from it.
injector_config() { # failurePolicy
	cat <<EOF
failurePolicy: $1
allowedHostPathPrefixes: [/usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/share/glvnd, /usr/share/drirc.d, /dev/dri]
vmiHook:
  namespaces: [$NS]
EOF
}
injector_config Fail >"$T/injector.yaml"

k8s_up --no-node || exit $?
AUDIT=$K8S_ROOT/logs/audit.log

# --- the webhook on the host, deployed from its own manifests ----------------
build/mesa-injector certs --service mesa-injector --namespace mesa-injector --out "$T/certs" \
	--ip "$K8S_ADDR" >/dev/null
start_injector() {
	build/mesa-injector serve --listen "$K8S_ADDR:$PORT" --cert "$T/certs/tls.crt" \
		--key "$T/certs/tls.key" --config "$T/injector.yaml" 2>>"$T/injector.log" &
	INJECTOR=$!
	PIDS+=("$INJECTOR")
	k8s_wait 20 mesa-injector curl -fsS --cacert "$T/certs/ca.crt" "https://$K8S_ADDR:$PORT/healthz"
}
start_injector
python3 tests/k8s/k8stool.py relabel-webhook "$K8S_ADDR" "$RELABEL_PORT" "$T/certs/tls.crt" \
	"$T/certs/tls.key" >"$T/relabel.log" 2>&1 &
PIDS+=($!)
k8s_wait 20 "relabel webhook" curl -fsS --cacert "$T/certs/ca.crt" -o /dev/null -X POST \
	-H 'Content-Type: application/json' -d '{"request":{"uid":"x","object":{"metadata":{}}}}' \
	"https://$K8S_ADDR:$RELABEL_PORT/"

k8s_namespace "$NS"
kc apply -f tests/k8s/fixtures/kubevirt-crds.yaml >/dev/null
kc wait --for condition=Established --timeout 60s crd/virtualmachineinstances.kubevirt.io >/dev/null
deploy() {
	build/mesa-injector manifests --url "https://$K8S_ADDR:$PORT" --certs "$T/certs" \
		--config "$T/injector.yaml" >"$T/manifests.yaml"
	kc apply -f "$T/manifests.yaml"
}
deploy | sed 's/^/    api server: /'
ok "manifests --url applied: the API server accepted the MutatingWebhookConfiguration"
# A second webhook, after ours in the API server's order (configurations
# sorted by name), that changes what it is sent.
ca=$(base64 -w0 <"$T/certs/ca.crt")
kc apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: vgpuenv-test-relabel}
webhooks:
- name: relabel.vgpuenv-test.io
  clientConfig: {url: "https://$K8S_ADDR:$RELABEL_PORT/relabel", caBundle: "$ca"}
  rules:
  - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods], scope: Namespaced}
  - {operations: [CREATE], apiGroups: [kubevirt.io], apiVersions: [v1], resources: [virtualmachineinstances], scope: Namespaced}
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $NS}}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  reinvocationPolicy: Never
  timeoutSeconds: 5
EOF

# The objects, from the webhook tests' fixtures, into our namespace, named.
python3 - "$NS" webhook/tests/fixtures/pod-virt-launcher.json "$T/pod.json" webhook/tests/fixtures/vmi-gpu.json "$T/vmi.json" <<'EOF'
import json, sys
ns = sys.argv[1]
for src, dst, name in ((sys.argv[2], sys.argv[3], "virt-launcher-testvmi-gpu-abcde"), (sys.argv[4], sys.argv[5], "testvmi-gpu")):
    o = json.load(open(src))
    o["metadata"].pop("generateName", None)
    o["metadata"]["name"], o["metadata"]["namespace"] = name, ns
    json.dump(o, open(dst, "w"))
EOF
# pod_named FILE NAME: the pod (or VMI) of FILE under another name.
named() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); o["metadata"]["name"]=sys.argv[2]; print(json.dumps(o))' "$1" "$2"; }

# The API server picks up webhook configurations from its watch: wait until
# a server-side dry run (webhooks run, nothing is stored) shows ours.
webhook_active() { named "$T/pod.json" dry-run | kc create --dry-run=server -f - -o json | grep -q '"mesa-injector.vgpuenv.io/injected"'; }
k8s_wait 30 "the API server calling mesa-injector" webhook_active

# --- 1: a virt-launcher pod, patched, validated and stored ---------------------
if ! kc create -f "$T/pod.json" -o json >"$T/stored-pod.json" 2>"$T/create.err"; then
	cat "$T/create.err" >&2
	fail "the API server refused the virt-launcher pod (above: its answer)"
fi
POD=virt-launcher-testvmi-gpu-abcde
tool mutations "$AUDIT" pods "$NS" "$POD" | tee "$T/pod-rounds" | sed 's/^/    audit: /'
grep -qE "^round=0 index=[0-9]+ webhook=pods.mesa-injector.vgpuenv.io mutated=true$" "$T/pod-rounds" ||
	fail "the API server did not record a mutating call of mesa-injector in round 0"
tool patch "$AUDIT" pods "$NS" "$POD" pods.mesa-injector.vgpuenv.io 0 >"$T/pod-patch.json"
echo "    the API server recorded mesa-injector's patch: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/pod-patch.json") operations"
tool applied "$T/pod-patch.json" "$T/stored-pod.json" >"$T/applied" || { tail -n 3 "$T/applied"; fail "an operation of the patch is not in the stored pod"; }
ok "every one of the $(grep -c '^ok' "$T/applied") operations of the recorded patch is in the pod the API server stored"

# What the stored pod has, as the API server answers (not our prediction).
python3 - "$T/pod.json" "$T/stored-pod.json" "$T/injector.yaml" <<'EOF' | sed 's/^/    /'
import json, sys, yaml
sent, stored = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
cfg = yaml.safe_load(open(sys.argv[3])) or {}
def by_name(pod):
    return {c["name"]: c for c in pod["spec"]["containers"]}
s, t = by_name(sent), by_name(stored)
target = cfg.get("targetContainer", "compute")
added = [m for m in t[target].get("volumeMounts", []) if m not in s[target].get("volumeMounts", [])]
print(f"stored {target}: {len(added)} mounts added, e.g. {added[0]['mountPath'] if added else '-'}")
lim_s, lim_t = s[target].get("resources", {}).get("limits", {}), t[target].get("resources", {}).get("limits", {})
print(f"stored {target} limits added: {sorted(set(lim_t) - set(lim_s)) or 'none'}")
ann = {k: v for k, v in stored["metadata"].get("annotations", {}).items() if k not in sent["metadata"].get("annotations", {})}
print(f"stored annotations added: {ann}")
mode = cfg.get("mode", "hostpath")
if ann.get("mesa-injector.vgpuenv.io/injected") != mode:
    sys.exit(f"FAIL: mesa-injector.vgpuenv.io/injected is {ann.get('mesa-injector.vgpuenv.io/injected')!r}, config mode is {mode}")
for name, c in t.items():
    if name == target:
        continue
    sm = s[name].get("volumeMounts", [])
    if c.get("volumeMounts", []) != sm or c.get("resources", {}).get("limits") != s[name].get("resources", {}).get("limits"):
        sys.exit(f"FAIL: container {name} changed: only {target} may be")
prefixes = cfg["allowedHostPathPrefixes"]
for v in stored["spec"]["volumes"]:
    hp = v.get("hostPath", {}).get("path")
    if hp and not any(hp == p or hp.startswith(p.rstrip("/") + "/") for p in prefixes):
        sys.exit(f"FAIL: hostPath {hp} is outside allowedHostPathPrefixes")
if not added and not (set(lim_t) - set(lim_s)):
    sys.exit(f"FAIL: mesa-injector added neither mounts nor a resource limit to {target}")
print(f"only {target} changed; every hostPath is under allowedHostPathPrefixes")
EOF
ok "stored pod: what mesa-injector added is in compute only, annotation injected=$(kc -n "$NS" get pod "$POD" -o jsonpath='{.metadata.annotations.mesa-injector\.vgpuenv\.io/injected}')"

# --- 2: reinvocation changes nothing ---------------------------------------------
grep -qE "^round=0 index=[0-9]+ webhook=relabel.vgpuenv-test.io mutated=true$" "$T/pod-rounds" ||
	fail "the relabel webhook did not change the pod after mesa-injector"
grep -qE "^round=1 index=[0-9]+ webhook=pods.mesa-injector.vgpuenv.io mutated=false$" "$T/pod-rounds" ||
	fail "reinvocation: the API server did not call mesa-injector again, or its second answer changed the pod"
grep -F "\"name\":\"$POD\"" "$T/injector.log" | grep -o '"decision":"[a-z]*"' | tr '\n' ' ' | sed 's/^/    mesa-injector log: /'
echo
ok "reinvocationPolicy IfNeeded: called again after the relabel webhook, mesa-injector changed nothing"

# --- 3: a GPU VMI gets the hook annotation ----------------------------------------
kc create -f "$T/vmi.json" -o json >"$T/stored-vmi.json" 2>"$T/create.err" || {
	cat "$T/create.err" >&2
	fail "the API server refused the VMI"
}
tool mutations "$AUDIT" virtualmachineinstances "$NS" testvmi-gpu | tee "$T/vmi-rounds" | sed 's/^/    audit: /'
grep -qE "^round=0 index=[0-9]+ webhook=vmis.mesa-injector.vgpuenv.io mutated=true$" "$T/vmi-rounds" || fail "VMI: no mutating call"
grep -qE "^round=1 index=[0-9]+ webhook=vmis.mesa-injector.vgpuenv.io mutated=false$" "$T/vmi-rounds" || fail "VMI: reinvocation changed it"
tool patch "$AUDIT" virtualmachineinstances "$NS" testvmi-gpu vmis.mesa-injector.vgpuenv.io 0 >"$T/vmi-patch.json"
tool applied "$T/vmi-patch.json" "$T/stored-vmi.json" | sed 's/^/    /' || fail "VMI patch not in the stored VMI"
sidecars=$(kc -n "$NS" get vmi testvmi-gpu -o jsonpath='{.metadata.annotations.hooks\.kubevirt\.io/hookSidecars}')
echo "    stored VMI: hooks.kubevirt.io/hookSidecars=$sidecars"
[ -n "$sidecars" ] || fail "the stored VMI has no hook annotation"
# The image source: our sidecar program in mesa-injector's image, nothing
# that has to exist in the VMI's namespace.
/usr/bin/python3 -c 'import json, sys; h = json.loads(sys.argv[1]); assert len(h) == 1 and "configMap" not in h[0] and h[0]["command"] == ["/usr/local/bin/mesa-injector-hook-sidecar"], h' "$sidecars" ||
	fail "the hook annotation is not our image's sidecar: $sidecars"
ok "VMI: hook annotation stored (our image's sidecar, no ConfigMap needed in $NS), reinvocation changed nothing"

# --- 4: failurePolicy with the webhook down ----------------------------------------
kill -TERM "$INJECTOR"
wait "$INJECTOR" || fail "mesa-injector did not exit 0 on SIGTERM"
if named "$T/pod.json" down-fail | kc create -f - >/dev/null 2>"$T/fail.err"; then
	fail "failurePolicy Fail: the API server admitted a virt-launcher pod while the webhook was down"
fi
sed 's/^/    api server: /' "$T/fail.err"
grep -q 'failed calling webhook "pods.mesa-injector.vgpuenv.io"' "$T/fail.err" || fail "not refused for the webhook"
if named "$T/vmi.json" vmi-down-fail | kc create -f - >/dev/null 2>"$T/fail.err"; then
	fail "failurePolicy Fail: a GPU VMI was admitted while the webhook was down"
fi
grep -q 'failed calling webhook "vmis.mesa-injector.vgpuenv.io"' "$T/fail.err" || fail "VMI not refused for the webhook"
kc get --raw /metrics | grep '^apiserver_admission_webhook_rejection_count.*mesa-injector' | sed 's/^/    metrics: /'
ok "failurePolicy Fail: pod and VMI refused while the webhook is down"

injector_config Ignore >"$T/injector.yaml"
deploy >/dev/null
ignore_active() { named "$T/pod.json" dry-run-ignore | kc create --dry-run=server -f - >/dev/null 2>&1; }
k8s_wait 30 "the API server using failurePolicy Ignore" ignore_active
named "$T/pod.json" down-ignore | kc create -f - -o json >"$T/ignored.json" || fail "failurePolicy Ignore: pod refused"
grep -q '"mesa-injector.vgpuenv.io/injected"' "$T/ignored.json" && fail "a pod admitted without the webhook carries its annotation"
tool mutations "$AUDIT" pods "$NS" down-ignore | tee "$T/ignore-rounds" | sed 's/^/    audit: /'
grep -qE "^round=0 index=[0-9]+ failed-open webhook=pods.mesa-injector.vgpuenv.io$" "$T/ignore-rounds" || fail "the API server did not record the fail-open"
ok "failurePolicy Ignore: admitted unmodified, the API server recorded the webhook as failed open"

# --- and back: the webhook up again is called again ---------------------------------
start_injector
k8s_wait 30 "mesa-injector called again" webhook_active
ok "webhook back: pods are mutated again"
echo PASS
