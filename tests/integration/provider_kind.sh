#!/usr/bin/env bash
# Provider kind (the display-off baseline) through `vgpuenv up/down` against
# the stand-in kubevirtci checkout and the kind/kubectl stand-ins. Asserts
# that VGPU_DISPLAY is removed even when the user exported it, the exact
# KUBEVIRT_PROVIDER/KUBEVIRT_NUM_NODES (also from the environment override),
# that no node setup and no webhook deployment happen, the KubeVirt CR patch,
# and the rollback when kind fails.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || { echo "SKIP: build/vgpuenv not built (run make)"; exit 77; }
T=$(mktemp -d /tmp/vgpuenv-kind.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp -r tests/fixtures/kubevirtci "$T/kubevirtci"
export PATH="$root/tests/standins:$PATH"
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache
# Never the fake vGPU into this machine's kernel, even when run on its own
# (tests/run.sh sets it too).
export VGPUENV_NO_HOST_KERNEL=1
. tests/standins/assert.sh
printf '{"spec":{"configuration":{"developerConfiguration":{"featureGates":["Sidecar"]}}}}\n' >"$T/cr.json"
export KUBECTL_STANDIN_CR=$T/cr.json

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
# The Kind host's vGPU (region by default) would go into this machine's
# kernel: tests/run.sh forbids that, and up says so.
grep -q "host: VGPUENV_NO_HOST_KERNEL=1: not loading vgpuenv_t4 into this machine's kernel (vgpu: region)" "$T/up.out" ||
	fail "up did not reach the Kind host's vGPU step: $(grep -i vgpu "$T/up.out")"
grep -q "mesa-injector is not deployed" "$T/up.out" || fail "webhook not skipped"
for k in $(calls kubectl); do argv_of "$k" | grep -qx apply && fail "kubectl apply ran on kind"; done
patch=""
for k in $(calls kubectl); do argv_of "$k" | grep -qx patch && patch=$k; done
argv_is "$patch" kubectl --kubeconfig "$kubeconfig" patch kubevirt kubevirt -n kubevirt --type merge -p \
	'{"spec":{"configuration":{"mediatedDevicesConfiguration":{"mediatedDeviceTypes":["nvidia-222"]},"permittedHostDevices":{"mediatedDevices":[{"mdevNameSelector":"GRID T4-1B","resourceName":"nvidia.com/GRID_T4-1B"},{"mdevNameSelector":"GRID T4-2B","resourceName":"nvidia.com/GRID_T4-2B"}]},"developerConfiguration":{"featureGates":["Sidecar"]}}}}' ||
	fail "kubectl patch"
echo "ok: no node setup, no webhook, KubeVirt CR patched (Sidecar kept once)"

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
