# Shared helpers for integration tests that bring up real libvirt VMs with
# build/vgpuenv. Source it; it sets ROOT, VGPUENV, a private state dir and a
# cleanup trap that runs `vgpuenv down` for every config a test registered.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VGPUENV=${VGPUENV:-$ROOT/build/vgpuenv}
TMP=$(mktemp -d /tmp/vgpuenv-itest.XXXXXX)
chmod 0711 "$TMP"
export VGPUENV_STATE_DIR=$TMP/state
CONFIGS_TO_DOWN=()

cleanup_vms() {
	set +e # best effort: whatever is left goes
	local c
	for c in "${CONFIGS_TO_DOWN[@]}"; do
		"$VGPUENV" down -c "$c" >/dev/null 2>&1 || echo "warning: down -c $c failed" >&2
	done
	rm -rf "$TMP"
}
trap cleanup_vms EXIT

need_root_and_libvirt() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to start libvirtd and create libvirt networks"
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

# remove_leftovers NAME: what a killed run of this test left in libvirt (its
# state dir went with its $TMP, so no `down` knows it). Called with the
# subnet lock held: no live run owns these names. Said aloud, then removed.
# names_matching REGEX: the names on stdin that match, one per line (virsh
# pads pool-list's names with blanks, which an anchored pattern must not see).
names_matching() { sed 's/[[:space:]]*$//' | grep -E -- "$1" || true; }

remove_leftovers() {
	local exact="^vgpuenv-$1(-node[0-9]+)?\$" left o kind
	leftovers() {
		{ virsh_q list --all --name; virsh_q net-list --all --name; virsh_q pool-list --all --name; } |
			names_matching "$exact"
	}
	left=$(leftovers)
	[ -n "$left" ] || return 0
	echo "removing what an earlier, killed run left in libvirt: $(echo $left)"
	# Each kind: how it is listed, stopped and removed (a domain's nvram too).
	for kind in "list destroy undefine --nvram" "net-list net-destroy net-undefine" \
		"pool-list pool-destroy pool-undefine"; do
		set -- $kind
		for o in $(virsh_q "$1" --all --name | names_matching "$exact"); do
			virsh_q "$2" "$o" >/dev/null 2>&1 || true
			virsh_q "$3" "${@:4}" "$o" >/dev/null 2>&1 || virsh_q "$3" "$o" >/dev/null 2>&1 || true
		done
	done
	left=$(leftovers)
	[ -z "$left" ] || fail "could not remove an earlier run's $(echo $left)"
}

# write_config NAME SUBNET_THIRD_OCTET [extra yaml lines...]: sets CFG and
# registers it for `down` on exit (so call it directly, not in $(...)).
# Subnets in use by tests (keep them distinct so tests can run side by side):
# 124 display chain, 131 node setup, 151-154 local provider, 161-162 bench,
# 171-174 device plugin, 175-180 fake vGPU, 186-189 lead, 191-194 e2e.
# NODE_MEMORY (MiB, default 1024) sizes the node; SSH_TIMEOUT (s, default 240)
# is how long `up` waits for it.
write_config() {
	local name=$1 octet=$2 f=$TMP/$1.yaml
	shift 2
	lock_subnet "$octet"
	remove_leftovers "$name"
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
