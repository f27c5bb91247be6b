# Shared helpers for integration tests that bring up real libvirt VMs with
# build/vgpuenv. Source it; it sets ROOT, VGPUENV, a private state dir and a
# cleanup trap that runs `vgpuenv down` for every config a test registered.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VGPUENV=${VGPUENV:-$ROOT/build/vgpuenv}
TMP=$(mktemp -d /tmp/vgpuenv-itest.XXXXXX)
chmod 0711 "$TMP"
export VGPUENV_STATE_DIR=$TMP/state
CONFIGS_TO_DOWN=()

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok   $*"; }

cleanup_vms() {
	local c
	for c in "${CONFIGS_TO_DOWN[@]}"; do
		"$VGPUENV" down -c "$c" >/dev/null 2>&1 || echo "warning: down -c $c failed" >&2
	done
	rm -rf "$TMP"
}
trap cleanup_vms EXIT

need_root_and_libvirt() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root to start libvirtd and create libvirt networks"
		exit 77
	fi
	"$ROOT/scripts/ensure-libvirtd.sh" || fail "libvirtd could not be started"
}

# lock_subnet OCTET: one test at a time per subnet on this machine. Two runs
# of one test (two checkouts, two developers) share its cluster name and
# subnet, and one's `down` would pull the nodes from under the other; the
# lock is held until the script exits.
lock_subnet() {
	local f=/tmp/vgpuenv-subnet-$1.lock fd
	exec {fd}>"$f"
	if ! flock -n "$fd"; then
		echo "subnet 192.168.$1.0/24 is in use by another test run ($f): waiting for it"
		flock "$fd"
	fi
}

# write_config NAME SUBNET_THIRD_OCTET [extra yaml lines...]: sets CFG and
# registers it for `down` on exit (so call it directly, not in $(...)).
# Subnets in use by tests (keep them distinct so tests can run side by side):
# 124 display chain, 131 node setup, 151-153 local provider, 161-162 bench,
# 176 fake vGPU (175-180 are the vGPU work's).
# NODE_MEMORY (MiB, default 1024) sizes the node; SSH_TIMEOUT (s, default 240)
# is how long `up` waits for it.
write_config() {
	local name=$1 octet=$2 f=$TMP/$1.yaml
	shift 2
	lock_subnet "$octet"
	{
		echo "name: $name"
		echo "nodes: {count: 1, cpus: 1, memory: ${NODE_MEMORY:-1024}}"
		echo "network: {subnet: 192.168.$octet.0/24}"
		echo "ssh: {timeout: ${SSH_TIMEOUT:-240}}"
		for l in "$@"; do echo "$l"; done
	} >"$f"
	CONFIGS_TO_DOWN+=("$f")
	CFG=$f
}

virsh_q() { virsh -c qemu:///system "$@"; }

# Everything libvirt has whose name mentions the cluster.
objects_of() {
	{
		virsh_q list --all --name
		virsh_q net-list --all --name
		virsh_q pool-list --all --name
	} | grep -F -- "vgpuenv-$1" || true
}
