# Sourced first by the tests that drive a provider through its stand-ins
# (tests/standins/) against the real libvirtd on qemu:///system: the stand-in
# assertions with the shell library (tests/standins/assert.sh), the
# repository root as $root and working directory, $URI, a scratch directory
# $T holding HOME, state and cache, the stand-ins first on PATH, no ssh wait.
# Set STANDIN_CLUSTERS ("name1|name2", a regular expression) before sourcing:
# at exit their domains are destroyed and undefined, and $T removed.
. "$(dirname "${BASH_SOURCE[0]}")/../standins/assert.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"

URI=qemu:///system
T=$(mktemp -d "/tmp/vgpuenv-$(basename "$0" .sh).XXXXXX")
standin_cleanup() {
	set +e # best effort: a domain may already be gone
	for d in $(virsh -q -c $URI list --all --name | grep -E "^(${STANDIN_CLUSTERS:?})-"); do
		virsh -q -c $URI destroy "$d" >/dev/null 2>&1
		virsh -q -c $URI undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap standin_cleanup EXIT
export HOME=$T/home PATH="$root/tests/standins:$PATH"
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache VGPUENV_NODE_WAIT=0
export VGPUENV_SHUTDOWN_TIMEOUT=3 KCLI_STANDIN_URI=$URI
mkdir -p "$HOME"
