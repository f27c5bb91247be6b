#!/usr/bin/env bash
# `vgpuenv up`'s image steps on a kubevirtci cluster, against the test
# harness's real API server (tests/k8s/) and stand-ins for what cannot run
# here, each mirroring upstream (named at their tops): gocli (kubevirtci's
# cluster-up, `ports registry`), podman (build and push: there is no
# registry), KubeVirt's controllers (virt-operator re-rendering
# virt-controller and virt-handler from its VIRT_LAUNCHER_IMAGE, and the
# rollout status kube-controller-manager would set).
#  - registry: localhost:$(cli.sh ports registry) to push, registry:5000 for
#    the nodes (kubevirtci's cluster-sync convention);
#  - webhook-image: podman build of webhook/deploy/Containerfile from the
#    source tree, pushed by image ID; the manifests the API server stored
#    run registry:5000/vgpuenv/mesa-injector:<ID12>;
#  - launcher-image: built FROM virt-controller's --launcher-image as this
#    host reaches it (registry:5000/... -> localhost:PORT/...), pushed;
#  - virt-launcher-image: virt-operator's VIRT_LAUNCHER_IMAGE as stored,
#    virt-controller's --launcher-image and virt-handler's launcher image
#    follow, `kubectl rollout status` of all three ran and returned;
#  - a second up changes nothing (same tags, virt-operator's generation
#    unchanged); a failure after the last step rolls VIRT_LAUNCHER_IMAGE
#    back to what it was (unset);
#  - the mesa-injector config: --library-profile none (the launcher has its
#    own GL libraries).
. "$(dirname "$0")/../lib/kubevirtci_standin.sh"

printf '{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kubevirt","namespace":"kubevirt"},"spec":{}}' >"$T/cr.json"
k8s_kubevirt_cr "$T/cr.json"
kc apply -f tests/k8s/fixtures/kubevirt-components.yaml >/dev/null
/usr/bin/python3 tests/k8s/kubevirt_controllers_standin.py "$K8S_BIN/kubectl" "$KUBECONFIG_K8S" kubevirt \
	>"$T/controllers.log" 2>&1 &
STANDIN_PIDS+=($!)

cat >"$T/kv.yaml" <<YAML
name: wiring-test
provider: kubevirtci
kubevirtci:
  dir: $T/kubevirtci
  provider: k8s-1.36
  tag: $TAG
  node_image: registry.example:5000/vgpuenv/k8s-1.36:$TAG
ssh:
  key: $T/id
  timeout: 10
webhook:
  deploy: url
  url: https://127.0.0.1:18443
  build_image: true
registry:
  push: auto
kubevirt:
  launcher_gl: true
deadlines:
  rollout: 60
YAML
ssh-keygen -q -t ed25519 -N '' -f "$T/id" -C test

run_up up1 || { cat "$T/up1.out"; fail "vgpuenv up failed"; }
sed 's/^/    controllers: /' "$T/controllers.log"

# --- registry and the two builds -----------------------------------------------------
port=""
for p in $(gocli_call ports); do [ "$(argv_of "$p" | tail -n1)" = registry ] && port=$p; done
[ -n "$port" ] || fail "gocli ports registry not called"
mapfile -t builds < <(for d in $(calls podman); do [ "$(argv_of "$d" | sed -n 2p)" = build ] && echo "$d"; done)
mapfile -t pushes < <(for d in $(calls podman); do [ "$(argv_of "$d" | sed -n 2p)" = push ] && echo "$d"; done)
[ ${#builds[@]} -eq 2 ] && [ ${#pushes[@]} -eq 2 ] || fail "podman calls: ${#builds[@]} builds, ${#pushes[@]} pushes"
S=$T/state/wiring-test
id1=$(cat "$S/vgpuenv-mesa-injector.iid") id2=$(cat "$S/vgpuenv-virt-launcher-gl.iid")
argv_is "${builds[0]}" podman build --tls-verify=false "--iidfile=$S/vgpuenv-mesa-injector.iid" \
	-f "$root/webhook/deploy/Containerfile" -t localhost/vgpuenv-mesa-injector:latest "$root" || fail "webhook image build argv"
[ "$(cat "${builds[0]}/cwd")" = "$root" ] || fail "podman build did not run in the source tree"
argv_is "${pushes[0]}" podman push --tls-verify=false "$id1" "docker://localhost:32771/vgpuenv/mesa-injector:${id1:7:12}" ||
	fail "webhook image push argv"
argv_is "${builds[1]}" podman build --tls-verify=false "--iidfile=$S/vgpuenv-virt-launcher-gl.iid" \
	--build-arg LAUNCHER_IMAGE=localhost:32771/kubevirt/virt-launcher:devel \
	--build-arg GL_BUILDER_IMAGE=quay.io/centos/centos:stream9 -f "$root/images/launcher/Containerfile" \
	-t localhost/vgpuenv-virt-launcher-gl:latest "$root" || fail "launcher build argv"
argv_is "${pushes[1]}" podman push --tls-verify=false "$id2" "docker://localhost:32771/vgpuenv/virt-launcher-gl:${id2:7:12}" ||
	fail "launcher push argv"
WIMG=registry:5000/vgpuenv/mesa-injector:${id1:7:12}
LIMG=registry:5000/vgpuenv/virt-launcher-gl:${id2:7:12}
echo "ok   registry from gocli ports registry (push localhost:32771, nodes registry:5000); both images built in the source tree and pushed by image ID; the launcher FROM virt-controller's launcher as this host pulls it"

# --- what the API server stored -----------------------------------------------------
ds=$(kc -n mesa-injector get daemonset mesa-injector-device-plugin -o jsonpath='{.spec.template.spec.containers[0].image}')
[ "$ds" = "$WIMG" ] || fail "the device plugin DaemonSet runs $ds, not $WIMG"
grep -q -- "--image $WIMG --library-profile none" "$T/up1.out" || fail "the serve command lacks --image/--library-profile: $(grep serve "$T/up1.out")"
env=$(kc -n kubevirt get deployment virt-operator -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="VIRT_LAUNCHER_IMAGE")].value}')
[ "$env" = "$LIMG" ] || fail "virt-operator's VIRT_LAUNCHER_IMAGE is '$env'"
args=$(kc -n kubevirt get deployment virt-controller -o jsonpath='{.spec.template.spec.containers[0].args}')
[[ $args == *"\"--launcher-image\",\"$LIMG\""* ]] || fail "virt-controller args: $args"
[ "$(kc -n kubevirt get daemonset virt-handler -o jsonpath='{.spec.template.spec.initContainers[0].image}')" = "$LIMG" ] ||
	fail "virt-handler's launcher image"
for w in deployment/virt-operator deployment/virt-controller daemonset/virt-handler; do
	grep -q "kubectl rollout status $w" "$T/up1.runlog" || fail "no rollout status of $w in the run's log"
	grep -q "successfully rolled out" "$T/up1.runlog" || fail "rollout status did not report success"
done
echo "    api server: virt-operator VIRT_LAUNCHER_IMAGE=$env; virt-controller --launcher-image and virt-handler follow"
echo "ok   stored: the DaemonSet runs $WIMG; virt-operator's VIRT_LAUNCHER_IMAGE is the GL launcher; the rollouts were waited for"

# --- again: nothing changes -------------------------------------------------------------
gen=$(kc -n kubevirt get deployment virt-operator -o jsonpath='{.metadata.generation}')
run_up up2 || { cat "$T/up2.out"; fail "the second vgpuenv up failed"; }
[ "$(kc -n kubevirt get deployment virt-operator -o jsonpath='{.metadata.generation}')" = "$gen" ] ||
	fail "the second up changed virt-operator"
grep -q "set env" "$T/up2.runlog" && fail "the second up set the environment again"
last=$(calls podman | tail -n1)
argv_is "$last" podman push --tls-verify=false "$id2" "docker://localhost:32771/vgpuenv/virt-launcher-gl:${id2:7:12}" ||
	fail "the second up built another launcher tag"
echo "ok   a second up: the same tags, virt-operator untouched (generation $gen)"

# --- rollback: virt-operator gets its old value back ------------------------------------
kc -n kubevirt set env deployment/virt-operator VIRT_LAUNCHER_IMAGE- >/dev/null
rm -f "$S/state.json.bak"
python3 - "$S/state.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s.get("images", {}).pop("virt-operator-env-before", None)
json.dump(s, open(sys.argv[1], "w"))
EOF
export VGPUENV_TEST_FAIL_AFTER=virt-launcher-image
run_up up3 && fail "up with a failure injected after virt-launcher-image succeeded"
unset VGPUENV_TEST_FAIL_AFTER
grep -q "set env deployment/virt-operator" "$T/up3.runlog" || fail "up3 did not set VIRT_LAUNCHER_IMAGE"
env=$(kc -n kubevirt get deployment virt-operator -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="VIRT_LAUNCHER_IMAGE")].value}')
[ -z "$env" ] || fail "the rollback left VIRT_LAUNCHER_IMAGE=$env"
echo "ok   a failure after virt-launcher-image: the undo gives virt-operator back its unset VIRT_LAUNCHER_IMAGE"
echo PASS
