#!/usr/bin/env bash
# `mesa-injector certs`, `manifests` and `cdi-spec`: certificates made with
# GnuTLS checked by openssl (SANs, CA chain, key modes), and the deployment
# YAML parsed with python3-yaml with its key fields asserted, in-cluster and
# in URL mode, with defaults and with a config file; the device plugin's
# DaemonSet (hostPaths, node selector, no RBAC, no token) in both modes.
source "$(dirname "$0")/../../webhook/tests/lib.sh"

# ---- certs ------------------------------------------------------------------------
"$MI" certs --service "$SVC" --namespace "$NS" --out "$WORK/c" --ip 192.168.122.1 --ip ::1 2>/dev/null ||
	fail "certs"
[ "$(stat -c %a "$WORK/c/tls.key")" = 600 ] && [ "$(stat -c %a "$WORK/c/ca.key")" = 600 ] || fail "key modes"
[ "$(stat -c %a "$WORK/c/tls.crt")" = 644 ] || fail "cert mode"
for name in "$SVC" "$SVC.$NS" "$SVC.$NS.svc"; do
	openssl verify -CAfile "$WORK/c/ca.crt" -verify_hostname "$name" -purpose sslserver "$WORK/c/tls.crt" >/dev/null 2>&1 ||
		fail "certificate does not verify for $name"
done
openssl verify -CAfile "$WORK/c/ca.crt" -verify_ip 192.168.122.1 "$WORK/c/tls.crt" >/dev/null 2>&1 || fail "IP SAN"
openssl verify -CAfile "$WORK/c/ca.crt" -verify_ip ::1 "$WORK/c/tls.crt" >/dev/null 2>&1 || fail "IPv6 SAN"
openssl verify -CAfile "$WORK/c/ca.crt" -verify_hostname "evil.$NS.svc" "$WORK/c/tls.crt" >/dev/null 2>&1 &&
	fail "certificate verifies for a name it should not carry"
openssl x509 -in "$WORK/c/ca.crt" -noout -ext basicConstraints | grep -q 'CA:TRUE' || fail "CA basicConstraints"
openssl x509 -in "$WORK/c/tls.crt" -noout -ext basicConstraints | grep -q 'CA:FALSE' || fail "leaf basicConstraints"
ok "certs: SANs <svc>, <svc>.<ns>, <svc>.<ns>.svc and IPs verify against ca.crt; keys 0600"
cp "$WORK/c/ca.crt" "$WORK/ca.before"
cp "$WORK/c/tls.crt" "$WORK/tls.before"
"$MI" certs --service "$SVC" --namespace "$NS" --out "$WORK/c" 2>/dev/null || fail "certs again"
cmp -s "$WORK/ca.before" "$WORK/c/ca.crt" || fail "CA was replaced on the second run"
cmp -s "$WORK/tls.before" "$WORK/c/tls.crt" && fail "serving certificate not renewed"
openssl verify -CAfile "$WORK/c/ca.crt" "$WORK/c/tls.crt" >/dev/null 2>&1 || fail "renewed cert does not chain"
ok "running certs again keeps the CA (caBundle stays valid) and renews the serving pair"
rc=0
"$MI" certs --service "$SVC" --namespace "$NS" --out "$WORK/d" --ip 300.1.1.1 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q '300.1.1.1' "$WORK/err" || fail "bad --ip: rc=$rc $(cat "$WORK/err")"
rc=0
"$MI" certs --service "$SVC" --out "$WORK/d" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] || fail "certs without --namespace: rc=$rc"
ok "bad --ip and missing flags: exit 2"

# ---- manifests, in-cluster defaults ---------------------------------------------------
"$MI" manifests >"$WORK/default.yaml" 2>"$WORK/err" || fail "manifests: $(cat "$WORK/err")"
$PY - "$WORK/default.yaml" "$WORK" <<'EOF' || fail "default manifests"
import base64, json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["Namespace", "ServiceAccount", "Secret", "Deployment", "Service",
                 "ServiceAccount", "DaemonSet", "MutatingWebhookConfiguration"], kinds
by = {d["kind"]: d for d in docs}
assert by["Namespace"]["metadata"]["name"] == "mesa-injector"
dep = by["Deployment"]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
assert c["securityContext"]["readOnlyRootFilesystem"] is True
assert c["securityContext"]["allowPrivilegeEscalation"] is False
assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]
assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["args"][:3] == ["serve", "--listen", "0.0.0.0:8443"] and "--config" not in c["args"]
assert pod["volumes"][0]["secret"]["secretName"] == by["Secret"]["metadata"]["name"]
svc = by["Service"]
assert svc["spec"]["ports"][0]["port"] == 443 and svc["spec"]["ports"][0]["targetPort"] == "https"
assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "mesa-injector"
# The hook is our image's sidecar: nothing goes into the VMIs' namespaces,
# least of all the kubevirt-test-* ones KubeVirt's suite creates itself.
assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} <= {"mesa-injector", None}
assert not [d for d in docs if "kubevirt-test" in d["metadata"].get("namespace", "") + d["metadata"]["name"]]
mwc = by["MutatingWebhookConfiguration"]
hooks = {w["name"]: w for w in mwc["webhooks"]}
assert set(hooks) == {"pods.mesa-injector.vgpuenv.io", "vmis.mesa-injector.vgpuenv.io"}
for w in hooks.values():
    assert w["failurePolicy"] == "Ignore" and w["sideEffects"] == "None" and w["timeoutSeconds"] == 5
    assert w["admissionReviewVersions"] == ["v1"] and w["reinvocationPolicy"] == "IfNeeded"
    ex = w["namespaceSelector"]["matchExpressions"][0]
    assert ex["key"] == "kubernetes.io/metadata.name" and ex["operator"] == "NotIn"
    assert "kube-system" in ex["values"] and "mesa-injector" in ex["values"]
    assert w["clientConfig"]["service"]["namespace"] == "mesa-injector"
    assert w["clientConfig"]["service"]["port"] == 443
p, v = hooks["pods.mesa-injector.vgpuenv.io"], hooks["vmis.mesa-injector.vgpuenv.io"]
assert p["objectSelector"] == {"matchLabels": {"kubevirt.io": "virt-launcher"}}
assert p["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}]
assert p["clientConfig"]["service"]["path"] == "/mutate-pods" and v["clientConfig"]["service"]["path"] == "/mutate-vmis"
assert v["rules"][0]["apiGroups"] == ["kubevirt.io"] and v["rules"][0]["resources"] == ["virtualmachineinstances"]
# The device plugin: on our nodes, root without capabilities, read-only
# root, the kubelet's directory and /dev/dri as hostPaths, no token, no RBAC.
ds = by["DaemonSet"]
assert ds["metadata"]["namespace"] == "mesa-injector"
dpod = ds["spec"]["template"]["spec"]
assert \
    ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
assert dpod["nodeSelector"] == {"vgpuenv.io/render-node": "true"}
assert dpod["automountServiceAccountToken"] is False
sa = [x for x in docs if x["kind"] == "ServiceAccount" and x["metadata"]["name"] == dpod["serviceAccountName"]]
assert sa and sa[0]["automountServiceAccountToken"] is False
assert not [x for x in docs if x["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]
dc = dpod["containers"][0]
assert dc["args"] == ["device-plugin"] and dc["image"] == c["image"]
assert dc["securityContext"] == {"runAsUser": 0, "readOnlyRootFilesystem": True,
                                 "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
assert "privileged" not in json.dumps(dpod)
vols = {v["name"]: v for v in dpod["volumes"]}
mnts = {m["name"]: m for m in dc["volumeMounts"]}
assert vols[mnts["device-plugins"]["name"]]["hostPath"] == {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"}
assert mnts["device-plugins"]["mountPath"] == "/var/lib/kubelet/device-plugins"
assert vols["render-nodes"]["hostPath"] == {"path": "/dev/dri", "type": "Directory"}
assert mnts["render-nodes"] == {"name": "render-nodes", "mountPath": "/dev/dri", "readOnly": True}
assert dc["resources"]["limits"]["memory"]
d = sys.argv[2]
open(d + "/bundle.crt", "wb").write(base64.b64decode(p["clientConfig"]["caBundle"]))
open(d + "/secret.crt", "wb").write(base64.b64decode(by["Secret"]["data"]["tls.crt"]))
open(d + "/secret.key", "wb").write(base64.b64decode(by["Secret"]["data"]["tls.key"]))
assert by["Secret"]["type"] == "kubernetes.io/tls"
EOF
openssl verify -CAfile "$WORK/bundle.crt" -verify_hostname "$SVC.$NS.svc" "$WORK/secret.crt" >/dev/null 2>&1 ||
	fail "the Secret's certificate does not verify against the caBundle for $SVC.$NS.svc"
[ "$(openssl x509 -in "$WORK/secret.crt" -noout -pubkey)" = "$(openssl pkey -in "$WORK/secret.key" -pubout)" ] ||
	fail "Secret key does not match its certificate"
ok "in-cluster manifests: Namespace, SA, Secret, Deployment (non-root, RO rootfs, limits, probes), Service, device plugin DaemonSet (hostPaths, node selector, no token, no RBAC), MWC, nothing outside mesa-injector (no kubevirt-test-*); caBundle verifies the Secret"

# ---- manifests with a config -----------------------------------------------------------
cat >"$WORK/cfg.yaml" <<'EOF'
failurePolicy: Fail
mode: cdi
deploy:
  namespace: gpu-system
  image: registry.example/mesa-injector:1.0
vmiHook:
  source: configMap
  namespaces: [lab, team-a]
  configMap: egl-hook
devicePlugin:
  nodeSelector: {gpu: "yes"}
  socketDir: /var/lib/k0s/kubelet/device-plugins
  deviceRoot: /host
EOF
"$MI" manifests --config "$WORK/cfg.yaml" >"$WORK/cfg-out.yaml" 2>"$WORK/err" || fail "manifests --config: $(cat "$WORK/err")"
$PY - "$WORK/cfg-out.yaml" "$WORK/cfg.yaml" <<'EOF' || fail "configured manifests"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
mwc = by["MutatingWebhookConfiguration"][0]
assert all(w["failurePolicy"] == "Fail" for w in mwc["webhooks"])
assert all(w["clientConfig"]["service"]["namespace"] == "gpu-system" for w in mwc["webhooks"])
assert "gpu-system" in mwc["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
cms = {(c["metadata"]["name"], c["metadata"]["namespace"]) for c in by["ConfigMap"]}
assert cms == {("mesa-injector-config", "gpu-system"), ("egl-hook", "lab"), ("egl-hook", "team-a")}, cms
cfg = [c for c in by["ConfigMap"] if c["metadata"]["name"] == "mesa-injector-config"][0]
assert cfg["data"]["config.yaml"] == open(sys.argv[2]).read()
c = by["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
assert c["image"] == "registry.example/mesa-injector:1.0"
assert c["args"][-2:] == ["--config", "/config/config.yaml"]
ds = by["DaemonSet"][0]
assert ds["metadata"]["namespace"] == "gpu-system"
dc = ds["spec"]["template"]["spec"]["containers"][0]
assert dc["args"] == ["device-plugin", "--config", "/config/config.yaml"]
assert {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}["config"]["configMap"]["name"] == "mesa-injector-config"
assert ds["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "yes"}
mnts = {m["name"]: m["mountPath"] for m in dc["volumeMounts"]}
assert mnts["device-plugins"] == "/var/lib/k0s/kubelet/device-plugins" and mnts["render-nodes"] == "/host/dev/dri", mnts
hp = {v["name"]: v.get("hostPath", {}).get("path") for v in ds["spec"]["template"]["spec"]["volumes"]}
assert hp["device-plugins"] == "/var/lib/k0s/kubelet/device-plugins" and hp["render-nodes"] == "/dev/dri", hp
EOF
ok "--config: failurePolicy Fail, own namespace, config shipped in a ConfigMap, vmiHook.source configMap: the hook ConfigMap in each of its namespaces"
printf 'vmiHook:\n  source: configMap\n  namespaces: [lab, "kubevirt-test-*"]\n' >"$WORK/cmglob.yaml"
rc=0
"$MI" manifests --config "$WORK/cmglob.yaml" >"$WORK/cmglob.out" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q "cmglob.yaml:3:" "$WORK/err" && grep -q "source: image" "$WORK/err" && [ ! -s "$WORK/cmglob.out" ] ||
	fail "configMap source with kubevirt-test-*: rc=$rc $(cat "$WORK/err")"
ok "vmiHook.source configMap with kubevirt-test-*: exit 2 at file:line, nothing printed, the image source named"

# ---- --image and --library-profile (what vgpuenv up passes) --------------------------------
"$MI" manifests --image registry:5000/vgpuenv/mesa-injector:0123abcd --library-profile none >"$WORK/img.yaml" 2>"$WORK/err" ||
	fail "manifests --image: $(cat "$WORK/err")"
$PY - "$WORK/img.yaml" <<'EOF' || fail "--image/--library-profile manifests"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {d["kind"]: d for d in docs}
c = by["Deployment"]["spec"]["template"]["spec"]["containers"][0]
assert c["image"] == "registry:5000/vgpuenv/mesa-injector:0123abcd", c["image"]
assert c["args"][-4:] == ["--image", "registry:5000/vgpuenv/mesa-injector:0123abcd", "--library-profile", "none"], c["args"]
assert by["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["image"] == c["image"]
EOF
rc=0
"$MI" manifests --library-profile fedora >/dev/null 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q 'debian, rhel or none' "$WORK/err" || fail "--library-profile fedora: rc=$rc"
ok "--image and --library-profile: both workloads run that image, the webhook's serve gets both; a bad profile: exit 2"

# ---- URL mode ---------------------------------------------------------------------------
"$MI" manifests --url https://192.168.122.1:9443 --certs "$WORK/c" >"$WORK/url.yaml" 2>"$WORK/err" ||
	fail "manifests --url: $(cat "$WORK/err")"
$PY - "$WORK/url.yaml" "$WORK/c/ca.crt" <<'EOF' || fail "URL-mode manifests"
import base64, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = [d["kind"] for d in docs]
assert "Deployment" not in kinds and "Service" not in kinds and "Secret" not in kinds, kinds
# The device plugin runs on the nodes wherever the webhook runs.
assert kinds[:3] == ["Namespace", "ServiceAccount", "DaemonSet"], kinds
mwc = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"][0]
urls = [w["clientConfig"]["url"] for w in mwc["webhooks"]]
assert urls == ["https://192.168.122.1:9443/mutate-pods", "https://192.168.122.1:9443/mutate-vmis"], urls
assert all("service" not in w["clientConfig"] for w in mwc["webhooks"])
assert all(base64.b64decode(w["clientConfig"]["caBundle"]) == open(sys.argv[2], "rb").read() for w in mwc["webhooks"])
EOF
ok "URL mode: clientConfig.url to the host webhook, caBundle = --certs ca.crt, no in-cluster webhook objects; the device plugin's DaemonSet and its Namespace"
printf 'devicePlugin:\n  enabled: false\n' >"$WORK/nodp.yaml"
"$MI" manifests --config "$WORK/nodp.yaml" | grep -q '^kind: DaemonSet' && fail "devicePlugin.enabled false still prints the DaemonSet"
printf 'devicePlugin:\n  daemonSet: false\n' >"$WORK/nods.yaml"
"$MI" manifests --config "$WORK/nods.yaml" | grep -q '^kind: DaemonSet' && fail "devicePlugin.daemonSet false still prints the DaemonSet"
ok "devicePlugin.enabled: false or daemonSet: false: no DaemonSet"
for bad in "http://192.168.122.1:9443" "https://"; do
	rc=0
	"$MI" manifests --url "$bad" --certs "$WORK/c" >/dev/null 2>"$WORK/err" || rc=$?
	[ $rc -eq 2 ] && grep -q 'https://' "$WORK/err" || fail "--url $bad: rc=$rc $(cat "$WORK/err")"
done
rc=0
"$MI" manifests --url https://192.168.122.1:9443 >/dev/null 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- '--certs' "$WORK/err" || fail "--url without --certs: rc=$rc"
printf 'hostPaths:\n  - path: /root/.ssh/id_rsa\n' >"$WORK/bad.yaml"
rc=0
"$MI" manifests --config "$WORK/bad.yaml" >"$WORK/bad.out" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q "bad.yaml:2:11:" "$WORK/err" && [ ! -s "$WORK/bad.out" ] ||
	fail "bad config: rc=$rc $(cat "$WORK/err")"
ok "bad --url, --url without --certs, a hostPath outside the allowlist: exit 2, nothing printed"

# ---- CDI spec -----------------------------------------------------------------------------
"$MI" cdi-spec >"$WORK/cdi.yaml" || fail "cdi-spec"
$PY - "$WORK/cdi.yaml" <<'EOF' || fail "CDI spec"
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))
assert s["cdiVersion"] == "0.5.0" and s["kind"] == "vgpuenv.io/render"
d = s["devices"][0]
assert d["name"] == "renderD128"
n = d["containerEdits"]["deviceNodes"][0]
assert n["path"] == "/dev/dri/renderD128" and n["type"] == "c" and n["uid"] == 107 and n["gid"] == 107
assert n["fileMode"] == 0o666
mounts = {m["containerPath"]: m for m in d["containerEdits"]["mounts"]}
assert "/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0" in mounts and "/usr/share/glvnd/egl_vendor.d" in mounts
assert all("ro" in m["options"] for m in mounts.values())
assert "/dev/dri" not in mounts  # the device comes from deviceNodes in cdi mode
EOF
ok "cdi-spec: render node for uid/gid 107, libraries read-only, matches provision/cdi_contract.h names"
echo "PASS: $CHECKS checks"
