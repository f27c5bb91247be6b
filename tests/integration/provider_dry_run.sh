#!/usr/bin/env bash
# `vgpuenv up --dry-run` and `down --dry-run` on configs/kcli.yaml,
# configs/kubevirtci.yaml and configs/kind.yaml: each prints the complete
# plan (every step with what it acts on, its deadline and undo, and the exact
# commands: the parameter file, kcli, make with its environment, the node
# setup steps, the kubectl commands with the KubeVirt patch) and runs
# nothing: the stand-ins on PATH record nothing and no state directory
# appears. That the plan is the very list `up` then runs is
# plan_matches_run.sh.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
T=$(mktemp -d /tmp/vgpuenv-dry.XXXXXX)
trap 'rm -rf "$T"' EXIT
export PATH="$root/tests/standins:$PATH" STANDIN_LOG=$T/standins.log
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache HOME=$T/home
unset KUBEVIRT_PROVIDER KUBEVIRT_NUM_NODES KUBEVIRT_PROVIDER_EXTRA_ARGS KUBEVIRTCI_TAG JOB_NAME
# configs/kubevirtci.yaml points at a checkout that does not exist here, so no
# pinned tag can be read from it: the exported one is used.
export KUBEVIRTCI_TAG=2608191116-eb0b470a

plan() { # config -> $T/<name>.plan
	local name
	name=$(basename "$1" .yaml)
	build/vgpuenv up --dry-run -c "$1" >"$T/$name.plan" 2>&1 || { cat "$T/$name.plan"; fail "up --dry-run -c $1 failed"; }
	build/vgpuenv down --dry-run -c "$1" >"$T/$name.down" 2>&1 || { cat "$T/$name.down"; fail "down --dry-run -c $1 failed"; }
}
want() { # file fixed-string...
	local f=$1 s
	shift
	for s in "$@"; do
		has "$f" "$s" || { cat "$f"; fail "$(basename "$f") lacks: $s"; }
	done
}

plan configs/kcli.yaml
S=$T/state/vgpu-kcli
KC=$HOME/.kcli/clusters/vgpu-kcli/auth/kubeconfig
want "$T/kcli.plan" \
	"up cluster 'vgpu-kcli' (provider kcli, 2 node(s), gpu virtio), from configs/kcli.yaml: 24 steps" \
	"write $S/kcli-parameters.yml:" "ctlplanes: 1" "workers: 1" 'image: "centos9stream"' "memory: 8192" \
	"numcpus: 4" "disk_size: 30" \
	"run: [in $S] kcli create kube generic --paramfile $S/kcli-parameters.yml vgpu-kcli" \
	"undo:     kcli delete kube vgpu-kcli, if this run created it" \
	"virtio video on the nodes (libxml2, virDomainDefineXML, restart when running)" \
	"[vgpu-kcli-ctlplane-0] boot vgpu-kcli-ctlplane-0" "[vgpu-kcli-worker-0] boot vgpu-kcli-worker-0" \
	"keys through \`kcli ssh\`" "mesa packages: install those missing" "/etc/modules-load.d/vgpuenv.conf" \
	"70-vgpuenv-render.rules" "/etc/cdi/vgpuenv.yaml" "run it --json" " 19. verdicts" " 24. mdev-rules" \
	"[vgpu-kcli-worker-0] vgpu vgpu-kcli-worker-0" "fake NVIDIA T4 vGPU vgpuenv_t4: built for the node's kernel" \
	"vgpu-node.sh load dmabuf VIRTUAL-PARENTS" \
	"run: kubectl --kubeconfig $KC label node NODE vgpuenv.io/render-node=true --overwrite" \
	"manifests --url https://192.168.122.1:8443 --certs $S/webhook-certs > $S/mesa-injector.yaml" \
	"run: kubectl --kubeconfig $KC apply -f $S/mesa-injector.yaml" \
	"run: kubectl --kubeconfig $KC patch kubevirt kubevirt -n kubevirt --type merge -p" \
	'"mediatedDeviceTypes":["nvidia-222"]' '"resourceName":"nvidia.com/GRID_T4-2B"' '"featureGates":["Sidecar"]' \
	"wait kubevirt/kubevirt -n kubevirt --for condition=Available --timeout 600s"
want "$T/kcli.down" "0 steps (nothing to do)" "the state lists no kcli cluster vgpu-kcli"
ok "kcli plan complete"

plan configs/kubevirtci.yaml
D=$root/configs/../kubevirt
want "$T/kubevirtci.plan" \
	"run: [in $D] KUBEVIRT_PROVIDER=k8s-1.36 KUBEVIRT_NUM_NODES=1 KUBEVIRT_MEMORY_SIZE=5120M KUBEVIRT_PROVIDER_EXTRA_ARGS='--qemu-args '\\''-device virtio-gpu-pci'\\''' KUBEVIRTCI_TAG=2608191116-eb0b470a KUBEVIRTCI_CONTAINER_REGISTRY=localhost:5000 KUBEVIRTCI_CONTAINER_ORG=vgpuenv KUBEVIRTCI_CONTAINER_SUFFIX=2608191116-eb0b470a make cluster-up" \
	"check: $D/cluster-up/cluster/k8s-1.36/provider.sh exists" \
	"run: docker run --rm --entrypoint /usr/bin/qemu-kvm localhost:5000/vgpuenv/k8s-1.36:2608191116-eb0b470a -device help" \
	"get nodes -l kubevirt.io/schedulable=true" \
	"undo:     make cluster-down, if this run started the cluster" \
	"exchanging keys with node01 (ssh.sh)" "[node01] vgpu node01" "[node01] probe node01" \
	"run: kubectl --kubeconfig $D/_ci-configs/k8s-1.36/.kubeconfig patch kubevirt" \
	" 13. registry" "run: [in $D] $D/cluster-up/cli.sh ports registry   (push to localhost:PORT; the nodes pull from registry:5000)" \
	" 14. webhook-image" "podman build --tls-verify=false --iidfile=$T/state/vgpu-kubevirtci/vgpuenv-mesa-injector.iid -f SRC/webhook/deploy/Containerfile" \
	"podman push --tls-verify=false IMAGE-ID docker://localhost:PORT/vgpuenv/mesa-injector:ID12" \
	" --image <the image webhook-image pushed> --library-profile none" \
	" 20. launcher-image" "--build-arg LAUNCHER_IMAGE=BASE --build-arg GL_BUILDER_IMAGE=quay.io/centos/centos:stream9 -f SRC/images/launcher/Containerfile" \
	" 21. virt-launcher-image" \
	"run: kubectl --kubeconfig $D/_ci-configs/k8s-1.36/.kubeconfig set env deployment/virt-operator -n kubevirt VIRT_LAUNCHER_IMAGE=IMAGE" \
	"rollout status deployment/virt-operator -n kubevirt --timeout=900s" \
	"undo:     give virt-operator back its VIRT_LAUNCHER_IMAGE when this run changed it"
ok "kubevirtci plan complete (in-cluster webhook from the image it builds, kubevirtci's registry, the GL launcher)"

plan configs/kind.yaml
K=$root/configs/../kubevirtci
want "$T/kind.plan" \
	"run: [in $K] KUBEVIRT_PROVIDER=kind-1.35-vgpu KUBEVIRT_NUM_NODES=1 env -u VGPU_DISPLAY make cluster-up" \
	"run: kubectl --kubeconfig $K/_ci-configs/kind-1.35-vgpu/.kubeconfig patch kubevirt"
hasnt "$T/kind.plan" "probe" || fail "kind plan has node setup"
hasnt "$T/kind.plan" "mesa-injector" || fail "kind plan deploys the webhook"
# The fake vGPU goes into the host's kernel, which Kind's nodes share
# (region by default), before the cluster; down takes out only what up loaded.
want "$T/kind.plan" "  1. host-vgpu" "  2. kind-record" \
	"build vgpuenv_t4.ko for this host's kernel (Kind nodes share it), load it with display=region" \
	"undo:     unload and uninstall vgpuenv_t4, if this run loaded it"
hasnt "$T/kind.down" "host-vgpu-remove" || fail "kind's down plan removes a module no up loaded"
# A state whose up made the cluster and loaded the module: down takes the
# cluster down, then the module (the state file is this test's, removed).
mkdir -p "$T/state/vgpu-kind"
printf '{"cluster":"vgpu-kind","provider":"kind","resources":[%s,%s],"nodes":[]}\n' \
	'{"kind":"kind-cluster","name":"kind-1.35-vgpu","run":"r1"}' \
	'{"kind":"host-kernel-module","name":"vgpuenv_t4","run":"r1"}' >"$T/state/vgpu-kind/state.json"
build/vgpuenv down --dry-run -c configs/kind.yaml >"$T/kind.down2" 2>&1 || { cat "$T/kind.down2"; fail "down --dry-run with a loaded module"; }
want "$T/kind.down2" "3 steps" "  1. kind-down" "  2. kind-forget" "  3. host-vgpu-remove" \
	"sh /usr/local/lib/vgpuenv/vgpu-node.sh remove"
rm -rf "$T/state"
ok "kind plan complete: no node setup, no webhook, the host's fake vGPU first; down removes it last"

# the environment overrides reach the plan
KUBEVIRT_NUM_NODES=3 KUBEVIRT_PROVIDER=k8s-1.36 build/vgpuenv up --dry-run -c configs/kubevirtci.yaml >"$T/env.plan" 2>&1 ||
	fail "dry run with overrides"
want "$T/env.plan" "KUBEVIRT_PROVIDER=k8s-1.36 KUBEVIRT_NUM_NODES=3"
ok "KUBEVIRT_PROVIDER/KUBEVIRT_NUM_NODES overrides shown in the plan"
# Another provider needs its own node image: refused before anything.
KUBEVIRT_PROVIDER=k8s-1.35 build/vgpuenv up --dry-run -c configs/kubevirtci.yaml >"$T/other.plan" 2>&1 &&
	fail "k8s-1.35 with a k8s-1.36 node image accepted"
want "$T/other.plan" "kubevirtci.node_image localhost:5000/vgpuenv/k8s-1.36:2608191116-eb0b470a is not REGISTRY/ORG/k8s-1.35:TAG"
hasnt "$T/other.plan" "make cluster-up" || fail "the plan went on after the refusal"
ok "a node image of another provider refused before anything"

[ ! -e "$STANDIN_LOG" ] || fail "a dry run ran something: $(grep '^===' "$STANDIN_LOG")"
[ ! -e "$T/state" ] || fail "a dry run created $T/state"
ok "nothing ran, nothing created"
echo PASS
