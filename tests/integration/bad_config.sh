#!/usr/bin/env bash
# Every bad-config class through the real CLI.
#
# Each tests/fixtures/bad-configs/*.yaml carries "# expect: LINE:COL: message" on its
# first line (@CONFIGDIR@ = their absolute directory). For each file, `vgpuenv up`
# must exit 2, print exactly FILE:LINE:COL: message, and create nothing: no
# state directory, and no new libvirt domain, network or pool of theirs
# (checked against a real libvirtd when one is reachable).
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
BIN=build/vgpuenv
[ -x "$BIN" ] || fail "$BIN not built (run make)"
T=$(mktemp -d /tmp/vgpuenv-badcfg.XXXXXX)
trap 'rm -rf "$T"' EXIT
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache
unset KUBEVIRT_NUM_NODES KUBEVIRT_PROVIDER
have_virsh=0
if scripts/ensure-libvirtd.sh >/dev/null 2>&1 && virsh -c qemu:///system list >/dev/null 2>&1; then
	have_virsh=1
fi
# Only the objects these configs could make (vgpuenv-NAME, vgpuenv-NAME-nodeN
# for their names and the default one): other tests may be creating their
# own clusters on this machine at the same time.
names=$(sed -n 's/^name: *//p' tests/fixtures/bad-configs/*.yaml | sort -u | paste -sd'|')
ours="^vgpuenv-(vgpuenv|${names})(-node[0-9]+)?\$"
snapshot() {
	[ $have_virsh = 1 ] || return 0
	{ virsh -c qemu:///system list --all --name; virsh -c qemu:///system net-list --all --name
	  virsh -c qemu:///system pool-list --all --name; } | sed 's/[[:space:]]*$//' | grep -E -- "$ours" | sort || true
}
n=0
before=$(snapshot)
for f in tests/fixtures/bad-configs/*.yaml; do
	n=$((n + 1))
	exp=$(head -1 "$f" | sed "s/^# expect: //; s|@CONFIGDIR@|$PWD/tests/fixtures/bad-configs|")
	for cmd in "up" "up --dry-run"; do
		rc=0
		out=$("$BIN" $cmd -c "$f" 2>&1 >/dev/null) || rc=$?
		[ $rc -eq 2 ] || fail "$cmd $f: exit $rc, want 2"
		grep -qxF -- "vgpuenv: error: $f:$exp" <<<"$out" ||
			{ echo "  got: $out" >&2; fail "$cmd $f: want '$f:$exp'"; }
	done
	[ ! -e "$T/state" ] || fail "$f: state directory created"
done
after=$(snapshot)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "libvirt objects changed"; }
[ $have_virsh = 1 ] || echo "note: no libvirtd reachable, libvirt objects not compared"
[ $n -ge 10 ] || fail "only $n bad configs found"
ok "$n bad configs refused with file:line:column, exit 2, nothing created"
