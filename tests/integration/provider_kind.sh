#!/usr/bin/env bash
# Provider kind (the display-off baseline) through `vgpuenv up/down` against
# the stand-in kubevirtci checkout and the kind stand-in, whose cluster is the
# test harness's real API server (tests/k8s/: `kind get kubeconfig` hands out
# its kubeconfig, and kubectl is the real one). Asserts
# that VGPU_DISPLAY is removed even when the user exported it, the exact
# KUBEVIRT_PROVIDER/KUBEVIRT_NUM_NODES (also from the environment override),
# that no node setup and no webhook deployment happen, the KubeVirt CR patch,
# as the API server stored it, and the rollback when kind fails.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || { echo "SKIP: build/vgpuenv not built (run make)"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the Kubernetes harness needs root"; exit 77; }
. tests/k8s/lib.sh
T=$(mktemp -d /tmp/vgpuenv-kind.XXXXXX)
trap 'rc=$?; k8s_down; rm -rf "$T"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
cp -r tests/fixtures/kubevirtci "$T/kubevirtci"
export PATH="$K8S_BIN:$root/tests/standins:$PATH" KIND_STANDIN_KUBECONFIG=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache
. tests/standins/assert.sh
printf '{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kubevirt","namespace":"kubevirt"},"spec":{"configuration":{"developerConfiguration":{"featureGates":["Sidecar"]}}}}\n' >"$T/cr.json"
k8s_kubevirt_cr "$T/cr.json"

cat >"$T/kind.yaml" <<YAML
name: kind-test
provider: kind
gpu: none
nodes:
  count: 1
kind:
  dir: $T/kubevirtci
  provider: kind-1.30-vgpu
webhook:
  deploy: url
  url: https://127.0.0.1:8443
YAML
kubeconfig=$T/kubevirtci/_ci-configs/kind-1.30-vgpu/.kubeconfig

# The user's shell has the display turned on and asks for 2 nodes.
export VGPU_DISPLAY=true KUBEVIRT_NUM_NODES=2 STANDIN_LOG=$T/up.log
build/vgpuenv up -c "$T/kind.yaml" >"$T/up.out" 2>&1 || { cat "$T/up.out"; fail "vgpuenv up failed"; }
create=$(calls kind | head -n1)
argv_is "$create" kind create cluster --name vgpu --retain || fail "kind argv"
env_lacks "$create" VGPU_DISPLAY || fail "VGPU_DISPLAY reached kind: $(grep -z ^VGPU_DISPLAY "$create/env" | tr '\0' ' ')"
env_has "$create" "KUBEVIRT_PROVIDER=kind-1.30-vgpu" || fail "KUBEVIRT_PROVIDER"
env_has "$create" "KUBEVIRT_NUM_NODES=2" || fail "KUBEVIRT_NUM_NODES (environment override)"
[ "$(cat "$create/cwd")" = "$T/kubevirtci" ] || fail "kind ran from $(cat "$create/cwd")"
grep -q "installing mesa" "$T/up.out" && fail "the provider saw VGPU_DISPLAY=true"
echo "ok: kind create cluster without VGPU_DISPLAY (user had VGPU_DISPLAY=true), KUBEVIRT_NUM_NODES=2 from the environment"

grep -q "node verdicts" "$T/up.out" && fail "node setup ran on kind"
grep -q "mesa-injector is not deployed" "$T/up.out" || fail "webhook not skipped"
[ -z "$(kc get mutatingwebhookconfigurations -o name)" ] || fail "a webhook configuration reached the API server on kind"
cmp -s "$kubeconfig" "$KUBECONFIG_K8S" || fail "the cluster's kubeconfig is not kind's"
[ "$(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')" = \
	'{"developerConfiguration":{"featureGates":["Sidecar"]},"mediatedDevicesConfiguration":{"mediatedDeviceTypes":["nvidia-222"]},"permittedHostDevices":{"mediatedDevices":[{"mdevNameSelector":"GRID T4-1B","resourceName":"nvidia.com/GRID_T4-1B"},{"mdevNameSelector":"GRID T4-2B","resourceName":"nvidia.com/GRID_T4-2B"}]}}' ] ||
	fail "stored KubeVirt CR: $(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')"
echo "ok: no node setup, no webhook in the API server, KubeVirt CR stored with the fake vGPU (Sidecar kept once)"

export STANDIN_LOG=$T/down.log
build/vgpuenv down -c "$T/kind.yaml" >"$T/down.out" 2>&1 || { cat "$T/down.out"; fail "down failed"; }
del=$(calls kind | head -n1)
argv_is "$del" kind delete cluster --name vgpu || fail "kind delete argv"
env_lacks "$del" VGPU_DISPLAY || fail "VGPU_DISPLAY reached kind delete"
[ ! -e "$T/state/kind-test" ] || fail "state left after down"
echo "ok: down ran kind delete cluster, state removed"

export STANDIN_LOG=$T/fail.log STANDIN_FAIL_KIND=create
if build/vgpuenv up -c "$T/kind.yaml" >"$T/fail.out" 2>&1; then fail "up succeeded although kind failed"; fi
grep -q "failed to create cluster" "$T/fail.out" || fail "kind's message not shown"
grep -q "make cluster-up" "$T/fail.out" || fail "the failing step is not named"
argv_is "$(calls kind | tail -n1)" kind delete cluster --name vgpu || fail "no rollback"
echo "ok: failing kind -> non-zero exit, message names make cluster-up, rolled back with make cluster-down"
echo PASS
