#!/usr/bin/env bash
# A plan is data: for the kcli, kubevirtci and kind providers (their
# stand-ins: tests/standins, tests/fixtures/kubevirtci), `up --dry-run`
# prints exactly the steps that `up -v` then runs, in the same order, and
# the same for `down`; the dry run runs and creates nothing. The local
# provider's comparison is in local_up_down.sh (it boots a real VM). Also:
# a second `up` of a cluster whose lock another run holds waits
# deadlines.lock seconds and names the holder. The clusters' API server is
# the test harness's real one (tests/k8s/), handed out by the stand-ins.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"
[ "$(id -u)" -eq 0 ] || skip "the Kubernetes harness needs root"
. tests/standins/assert.sh
. tests/k8s/lib.sh

URI=qemu:///system
A=vgpm$$
T=$(mktemp -d /tmp/vgpuenv-planrun.XXXXXX)
cleanup() {
	set +e # best effort: a domain may already be gone
	for d in $(virsh -q -c $URI list --all --name | grep -E "^$A-" || true); do
		virsh -q -c $URI destroy "$d" >/dev/null 2>&1 || true
		virsh -q -c $URI undefine "$d" >/dev/null 2>&1 || true
	done
	k8s_down
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
cp -r tests/fixtures/kubevirtci "$T/kubevirtci"
export HOME=$T/home PATH="$K8S_BIN:$root/tests/standins:$PATH"
export KCLI_STANDIN_KUBECONFIG=$KUBECONFIG_K8S GOCLI_STANDIN_ADMIN_CONF=$KUBECONFIG_K8S
export KIND_STANDIN_KUBECONFIG=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache VGPUENV_NODE_WAIT=0
export VGPUENV_SHUTDOWN_TIMEOUT=3 KCLI_STANDIN_URI=$URI
mkdir -p "$HOME"
unset KUBEVIRT_PROVIDER KUBEVIRT_NUM_NODES KUBEVIRT_PROVIDER_EXTRA_ARGS VGPU_DISPLAY KUBEVIRTCI_TAG JOB_NAME
# As provider_kind.sh: docker as the CRI, a tag so the kubevirtci Makefile
# does not fetch one with curl, and kind where kubevirtci keeps it.
export CRI_BIN=docker KUBEVIRTCI_RUNTIME=docker KUBEVIRTCI_TAG=2608191116-eb0b470a
mkdir -p "$T/kubevirtci/_ci-configs/kind-1.35-vgpu"
ln -s "$root/tests/standins/kind" "$T/kubevirtci/_ci-configs/kind-1.35-vgpu/.kind"
printf '{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kubevirt","namespace":"kubevirt"},"spec":{"configuration":{}}}\n' >"$T/cr.json"
k8s_kubevirt_cr "$T/cr.json"

cat >"$T/kcli.yaml" <<YAML
name: $A
provider: kcli
nodes: {count: 2, ctlplanes: 1}
kcli: {uri: $URI}
webhook: {deploy: none}
YAML
cat >"$T/kubevirtci.yaml" <<YAML
name: planrun-kvci
provider: kubevirtci
nodes: {count: 1}
kubevirtci: {dir: $T/kubevirtci, provider: k8s-1.36, tag: 2608191116-eb0b470a, node_image: registry.example:5000/vgpuenv/k8s-1.36:2608191116-eb0b470a}
webhook: {deploy: none}
YAML
cat >"$T/kind.yaml" <<YAML
name: planrun-kind
provider: kind
gpu: none
kind: {dir: $T/kubevirtci, provider: kind-1.35-vgpu}
YAML

compare() { # provider verb
	local cfg=$T/$1.yaml
	STANDIN_LOG=$T/$1-$2-dry.log build/vgpuenv "$2" --dry-run -c "$cfg" >"$T/$1-$2.plan" 2>&1 ||
		{ cat "$T/$1-$2.plan"; fail "$1: $2 --dry-run failed"; }
	[ ! -e "$T/$1-$2-dry.log" ] || fail "$1: $2 --dry-run ran $(grep '^===' "$T/$1-$2-dry.log")"
	STANDIN_LOG=$T/$1-$2.log build/vgpuenv "$2" -v -c "$cfg" >"$T/$1-$2.run" 2>&1 ||
		{ cat "$T/$1-$2.run"; fail "$1: $2 -v failed"; }
	python3 tests/lib/plan_steps.py "$T/$1-$2.plan" "$T/$1-$2.run" ||
		{ cat "$T/$1-$2.plan" "$T/$1-$2.run"; fail "$1: $2 ran other steps than it planned"; }
	ok "$1: $2 ran exactly the steps --dry-run printed, in order"
}

for p in kcli kubevirtci kind; do
	compare "$p" up
	[ -f "$T/state/$(sed -n 's/^name: //p' "$T/$p.yaml")/state.json" ] || fail "$p: no state after up"
	compare "$p" down
done
[ -z "$(virsh -q -c $URI list --all --name | grep -E "^$A-" || true)" ] || fail "kcli domains left"

# The lock: a down waits for an up of the same cluster that holds it, and
# says who that is when its wait (deadlines.lock) runs out.
cat >>"$T/kcli.yaml" <<YAML
deadlines: {lock: 2}
YAML
STANDIN_LOG=$T/hold.log KCLI_STANDIN_SLEEP=30 build/vgpuenv up -c "$T/kcli.yaml" >"$T/hold.out" 2>&1 &
holder=$!
for _ in $(seq 1 100); do grep -q "kcli create kube" "$T/hold.log" 2>/dev/null && break; sleep 0.1; done
rc=0
build/vgpuenv down -c "$T/kcli.yaml" >"$T/busy.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$T/busy.out"; fail "down of a locked cluster: exit $rc, want 1"; }
grep -q "cluster $A is busy: pid $holder (vgpuenv up, since " "$T/busy.out" ||
	{ cat "$T/busy.out"; fail "the holder is not named"; }
ok "a second run waited for the lock, then named its holder (pid $holder, vgpuenv up)"
kill -INT $holder
wait $holder || true
grep -q "rolling back" "$T/hold.out" || { cat "$T/hold.out"; fail "the interrupted up did not roll back"; }
build/vgpuenv down -c "$T/kcli.yaml" >"$T/down.out" 2>&1 || { cat "$T/down.out"; fail "down after the lock test"; }
echo PASS
