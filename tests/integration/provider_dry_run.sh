#!/usr/bin/env bash
# `vgpuenv up --dry-run` and `down --dry-run` on configs/kcli.yaml,
# configs/kubevirtci.yaml and configs/kind.yaml: each prints a complete plan
# (every command with its environment and working directory, the parameter
# file, the libvirt step, the node setup steps, the kubectl commands and the
# KubeVirt patch) and runs nothing: the stand-ins on PATH record nothing and
# no state directory appears.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || { echo "SKIP: build/vgpuenv not built (run make)"; exit 77; }
T=$(mktemp -d /tmp/vgpuenv-dry.XXXXXX)
trap 'rm -rf "$T"' EXIT
export PATH="$root/tests/standins:$PATH" STANDIN_LOG=$T/standins.log
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache HOME=$T/home
unset KUBEVIRT_PROVIDER KUBEVIRT_NUM_NODES KUBEVIRT_PROVIDER_EXTRA_ARGS
. tests/standins/assert.sh

plan() { # config -> $T/<name>.plan
	local name
	name=$(basename "$1" .yaml)
	build/vgpuenv up --dry-run -c "$1" >"$T/$name.plan" 2>&1 || { cat "$T/$name.plan"; fail "up --dry-run -c $1 failed"; }
	build/vgpuenv down --dry-run -c "$1" >"$T/$name.down" 2>&1 || { cat "$T/$name.down"; fail "down --dry-run -c $1 failed"; }
}
has() { # file fixed-string...
	local f=$1
	shift
	local s
	for s in "$@"; do
		grep -qF -- "$s" "$f" || { cat "$f"; fail "$(basename "$f") lacks: $s"; }
	done
}

plan configs/kcli.yaml
S=$T/state/vgpu-kcli
has "$T/kcli.plan" \
	"write $S/kcli-parameters.yml:" "ctlplanes: 1" "workers: 1" 'image: "centos9stream"' "memory: 8192" \
	"numcpus: 4" "disk_size: 30" \
	"run: [in $S] kcli create kube generic --paramfile $S/kcli-parameters.yml vgpu-kcli" \
	"set <video><model type='virtio'/></video>" "virDomainDefineXML, restart it if running" \
	"kcli ssh NODE" "install the mesa packages that are missing" "/etc/modules-load.d/vgpuenv.conf" \
	"70-vgpuenv-render.rules" "/etc/cdi/vgpuenv.yaml" "vgpuenv-probe --json" \
	"kubectl label node NODE vgpuenv.io/render-node=true --overwrite" \
	"run: $root/build/mesa-injector manifests --url https://192.168.122.1:8443" \
	"kubectl --kubeconfig $HOME/.kcli/clusters/vgpu-kcli/auth/kubeconfig apply -f $S/mesa-injector.yaml" \
	"kubectl --kubeconfig $HOME/.kcli/clusters/vgpu-kcli/auth/kubeconfig patch kubevirt kubevirt -n kubevirt --type merge -p" \
	'"mediatedDeviceTypes":["nvidia-222"]' '"resourceName":"nvidia.com/GRID_T4-2B"' '"featureGates":["Sidecar"]' \
	"wait kubevirt/kubevirt -n kubevirt --for condition=Available --timeout 600s"
has "$T/kcli.down" "kcli delete kube --yes vgpu-kcli" "check that no domain of kcli cluster vgpu-kcli is left"
echo "ok: kcli plan complete"

plan configs/kubevirtci.yaml
D=$root/configs/../kubevirt
has "$T/kubevirtci.plan" \
	"run: [in $D] KUBEVIRT_PROVIDER=k8s-1.30 KUBEVIRT_NUM_NODES=1 KUBEVIRT_MEMORY_SIZE=5120M KUBEVIRT_PROVIDER_EXTRA_ARGS='--qemu-args '\\''-device virtio-gpu-pci'\\''' make cluster-up" \
	"$D/cluster-up/cli.sh ports ssh" "$D/cluster-up/ssh.sh node01 -- 'sudo sh -c" \
	"vgpuenv-probe --json" "kubectl --kubeconfig $D/_ci-configs/k8s-1.30/.kubeconfig patch kubevirt"
has "$T/kubevirtci.down" "make cluster-down"
echo "ok: kubevirtci plan complete"

plan configs/kind.yaml
K=$root/configs/../kubevirtci
has "$T/kind.plan" \
	"run: [in $K] KUBEVIRT_PROVIDER=kind-1.30-vgpu KUBEVIRT_NUM_NODES=1 env -u VGPU_DISPLAY make cluster-up" \
	"webhook: not deployed on kind" "kubectl --kubeconfig $K/_ci-configs/kind-1.30-vgpu/.kubeconfig patch kubevirt"
grep -q "vgpuenv-probe" "$T/kind.plan" && fail "kind plan has node setup"
# The fake vGPU goes into the host's kernel for Kind (region by default).
has "$T/kind.plan" "host: build vgpuenv_t4.ko for this host's kernel (Kind nodes share it), load it with display=region"
has "$T/kind.down" "env -u VGPU_DISPLAY make cluster-down"
echo "ok: kind plan complete"

# the environment overrides reach the plan
KUBEVIRT_NUM_NODES=3 KUBEVIRT_PROVIDER=k8s-1.31 build/vgpuenv up --dry-run -c configs/kubevirtci.yaml >"$T/env.plan" 2>&1 ||
	fail "dry run with overrides"
has "$T/env.plan" "KUBEVIRT_PROVIDER=k8s-1.31 KUBEVIRT_NUM_NODES=3"
echo "ok: KUBEVIRT_PROVIDER/KUBEVIRT_NUM_NODES overrides shown in the plan"

[ ! -e "$STANDIN_LOG" ] || fail "a dry run ran something: $(grep '^===' "$STANDIN_LOG")"
[ ! -e "$T/state" ] || fail "a dry run created $T/state"
echo "ok: nothing ran, nothing created"
echo PASS
