# Sourced first by the tests that drive a provider through its stand-ins
# (tests/standins/) against the real libvirtd on qemu:///system and the test
# harness's real API server (tests/k8s/, started with no node): the stand-in
# assertions with the shell library (tests/standins/assert.sh), the
# repository root as $root and working directory, $URI, a scratch directory
# $T holding HOME, state and cache, kubectl and the stand-ins first on PATH,
# the stand-ins' kubeconfig the harness's, no ssh wait.
# Set STANDIN_CLUSTERS ("name1|name2", a regular expression) before sourcing:
# at exit their domains are destroyed and undefined, the harness stopped and
# $T removed.
. "$(dirname "${BASH_SOURCE[0]}")/../standins/assert.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"
[ "$(id -u)" -eq 0 ] || skip "the Kubernetes harness needs root"
. tests/k8s/lib.sh

URI=qemu:///system
T=$(mktemp -d "/tmp/vgpuenv-$(basename "$0" .sh).XXXXXX")
standin_cleanup() {
	set +e # best effort: a domain may already be gone
	for d in $(virsh -q -c $URI list --all --name | grep -E "^(${STANDIN_CLUSTERS:?})-"); do
		virsh -q -c $URI destroy "$d" >/dev/null 2>&1
		virsh -q -c $URI undefine "$d" >/dev/null 2>&1
	done
	k8s_down
	rm -rf "$T"
}
trap standin_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
export HOME=$T/home PATH="$K8S_BIN:$root/tests/standins:$PATH"
export KCLI_STANDIN_KUBECONFIG=$KUBECONFIG_K8S GOCLI_STANDIN_ADMIN_CONF=$KUBECONFIG_K8S
export KIND_STANDIN_KUBECONFIG=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache VGPUENV_NODE_WAIT=0
export VGPUENV_SHUTDOWN_TIMEOUT=3 KCLI_STANDIN_URI=$URI
mkdir -p "$HOME"
