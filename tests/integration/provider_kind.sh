#!/usr/bin/env bash
# Provider kind through `vgpuenv up/down` against the stand-in kubevirtci
# checkout (kind-1.35-vgpu of kubevirtci 39bd494: kind is
# _ci-configs/$P/.kind, `kind -v 9 create cluster --retain --name=vgpu
# --config --image --kubeconfig`, prepare_config) and the kind stand-in,
# whose cluster is the test harness's real API server (tests/k8s/: kind
# hands out its kubeconfig, and kubectl is the real one). Asserts that
# VGPU_DISPLAY is removed even when the user exported it, the exact
# KUBEVIRT_PROVIDER/KUBEVIRT_NUM_NODES (also from the environment override),
# that no node setup and no webhook deployment happen, the KubeVirt CR patch
# as the API server stored it, an unknown provider refused, and the rollback
# when kind fails.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
[ "$(id -u)" -eq 0 ] || skip "the Kubernetes harness needs root"
. tests/k8s/lib.sh
T=$(mktemp -d /tmp/vgpuenv-kind.XXXXXX)
trap 'rc=$?; k8s_down; rm -rf "$T"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
cp -r tests/fixtures/kubevirtci "$T/kubevirtci"
export PATH="$K8S_BIN:$root/tests/standins:$PATH" KIND_STANDIN_KUBECONFIG=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache CRI_BIN=docker
# A kubevirtci checkout's Makefile fetches the latest tag with curl unless one is set.
export KUBEVIRTCI_TAG=2608191116-eb0b470a
# kind as kubevirtci keeps it: a binary of the provider's version in _ci-configs.
mkdir -p "$T/kubevirtci/_ci-configs/kind-1.35-vgpu"
ln -s "$root/tests/standins/kind" "$T/kubevirtci/_ci-configs/kind-1.35-vgpu/.kind"
K=$T/kubevirtci/_ci-configs/kind-1.35-vgpu
# Never the fake vGPU into this machine's kernel, even when run on its own
# (tests/run.sh sets it too).
export VGPUENV_NO_HOST_KERNEL=1
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
  provider: kind-1.35-vgpu
webhook:
  deploy: url
  url: https://127.0.0.1:8443
YAML
kubeconfig=$K/.kubeconfig

# The user's shell has the display turned on and asks for 2 nodes.
export VGPU_DISPLAY=true KUBEVIRT_NUM_NODES=2 STANDIN_LOG=$T/up.log
build/vgpuenv up -c "$T/kind.yaml" >"$T/up.out" 2>&1 || { cat "$T/up.out"; fail "vgpuenv up failed"; }
version=$(calls kind | head -n1)
argv_is "$version" kind --version || fail "kind's version was not checked first"
create=$(calls kind | sed -n 2p)
argv_is "$create" kind -v 9 create cluster --retain --name=vgpu --config="$K/kind.yaml" \
	--image=kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f \
	--kubeconfig="$kubeconfig" || fail "kind argv"
grep -q "^kubeconfig=$kubeconfig\$" "$K/config-provider-kind-1.35-vgpu.sh" || fail "no provider config written"
env_lacks "$create" VGPU_DISPLAY || fail "VGPU_DISPLAY reached kind: $(grep -z ^VGPU_DISPLAY "$create/env" | tr '\0' ' ')"
env_has "$create" "KUBEVIRT_PROVIDER=kind-1.35-vgpu" || fail "KUBEVIRT_PROVIDER"
env_has "$create" "KUBEVIRT_NUM_NODES=2" || fail "KUBEVIRT_NUM_NODES (environment override)"
[ "$(cat "$create/cwd")" = "$T/kubevirtci" ] || fail "kind ran from $(cat "$create/cwd")"
echo "ok: kind create cluster without VGPU_DISPLAY (user had VGPU_DISPLAY=true), KUBEVIRT_NUM_NODES=2 from the environment"

grep -q "node verdicts" "$T/up.out" && fail "node setup ran on kind"
# The Kind host's vGPU (region by default) would go into this machine's
# kernel: tests/run.sh forbids that, and the step says so.
grep -q "host-vgpu: skipped (VGPUENV_NO_HOST_KERNEL=1: not loading vgpuenv_t4 into this machine's kernel)" "$T/up.out" ||
	fail "up did not reach the Kind host's vGPU step: $(grep -i vgpu "$T/up.out")"
hasnt "$T/up.out" "mesa-injector" || fail "webhook deployed on kind"
[ -z "$(kc get mutatingwebhookconfigurations -o name)" ] || fail "a webhook configuration reached the API server on kind"
cmp -s "$kubeconfig" "$KUBECONFIG_K8S" || fail "the cluster's kubeconfig is not kind's"
[ "$(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')" = \
	'{"developerConfiguration":{"featureGates":["Sidecar"]},"mediatedDevicesConfiguration":{"mediatedDeviceTypes":["nvidia-222"]},"permittedHostDevices":{"mediatedDevices":[{"mdevNameSelector":"GRID T4-1B","resourceName":"nvidia.com/GRID_T4-1B"},{"mdevNameSelector":"GRID T4-2B","resourceName":"nvidia.com/GRID_T4-2B"}]}}' ] ||
	fail "stored KubeVirt CR: $(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')"
echo "ok: no node setup, no webhook in the API server, KubeVirt CR stored with the fake vGPU (Sidecar kept once)"

export STANDIN_LOG=$T/down.log
build/vgpuenv down -c "$T/kind.yaml" >"$T/down.out" 2>&1 || { cat "$T/down.out"; fail "down failed"; }
del=$(calls kind | tail -n1)
argv_is "$del" kind delete cluster --name=vgpu || fail "kind delete argv"
env_lacks "$del" VGPU_DISPLAY || fail "VGPU_DISPLAY reached kind delete"
[ ! -e "$T/state/kind-test" ] || fail "state left after down"
echo "ok: down ran kind delete cluster, state removed"

export STANDIN_LOG=$T/fail.log STANDIN_FAIL_KIND=create
if build/vgpuenv up -c "$T/kind.yaml" >"$T/fail.out" 2>&1; then cat "$T/fail.out"; fail "up succeeded although kind failed"; fi
grep -q "failed to create cluster" "$T/fail.out" || fail "kind's message not shown"
grep -q "make cluster-up" "$T/fail.out" || fail "the failing step is not named"
argv_is "$(calls kind | tail -n1)" kind delete cluster --name=vgpu || fail "no rollback"
echo "ok: failing kind -> non-zero exit, message names make cluster-up, rolled back with make cluster-down"

unset STANDIN_FAIL_KIND
export STANDIN_LOG=$T/unknown.log
if KUBEVIRT_PROVIDER=kind-1.30-vgpu build/vgpuenv up -c "$T/kind.yaml" >"$T/unknown.out" 2>&1; then
	fail "up accepted kind-1.30-vgpu"
fi
grep -q "KUBEVIRT_PROVIDER kind-1.30-vgpu does not exist in $T/kubevirtci" "$T/unknown.out" ||
	{ cat "$T/unknown.out"; fail "unknown provider: no clear message"; }
grep -q "it has: external, k8s-1.34, k8s-1.35, k8s-1.36, kind-1.35-vgpu" "$T/unknown.out" || fail "providers not listed"
[ -z "$(calls kind)" ] || fail "kind ran for an unknown provider"
echo "ok: unknown kind provider refused, the available ones listed"
echo PASS
