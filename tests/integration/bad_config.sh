#!/usr/bin/env bash
# Every bad-config class through the real CLI.
#
# Each tests/fixtures/bad-configs/*.yaml carries "# expect: LINE:COL: message" on its
# first line (@CONFIGDIR@ = their absolute directory). For each file, `vgpuenv up`
# must exit 2, print exactly FILE:LINE:COL: message, and create nothing: no
# state directory, and no new libvirt domain, network or pool (checked
# against a real libvirtd when one is reachable).
set -u
cd "$(dirname "$0")/../.."
BIN=build/vgpuenv
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
T=$(mktemp -d /tmp/vgpuenv-badcfg.XXXXXX)
trap 'rm -rf "$T"' EXIT
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache
unset KUBEVIRT_NUM_NODES KUBEVIRT_PROVIDER
have_virsh=0
if scripts/ensure-libvirtd.sh >/dev/null 2>&1 && virsh -c qemu:///system list >/dev/null 2>&1; then
	have_virsh=1
fi
snapshot() {
	[ $have_virsh = 1 ] || return 0
	{ virsh -c qemu:///system list --all --name; virsh -c qemu:///system net-list --all --name
	  virsh -c qemu:///system pool-list --all --name; } | sort
}
fail=0 n=0
before=$(snapshot)
for f in tests/fixtures/bad-configs/*.yaml; do
	n=$((n + 1))
	exp=$(head -1 "$f" | sed "s/^# expect: //; s|@CONFIGDIR@|$PWD/tests/fixtures/bad-configs|")
	for cmd in "up" "up --dry-run"; do
		out=$("$BIN" $cmd -c "$f" 2>&1 >/dev/null); rc=$?
		if [ $rc -ne 2 ]; then echo "FAIL: $cmd $f: exit $rc, want 2"; fail=1; fi
		if ! grep -qxF -- "vgpuenv: error: $f:$exp" <<<"$out"; then
			echo "FAIL: $cmd $f: want '$f:$exp'"; echo "  got: $out"; fail=1
		fi
	done
	if [ -e "$T/state" ]; then echo "FAIL: $f: state directory created"; fail=1; fi
done
after=$(snapshot)
if [ "$before" != "$after" ]; then echo "FAIL: libvirt objects changed:"; diff <(echo "$before") <(echo "$after"); fail=1; fi
[ $have_virsh = 1 ] || echo "note: no libvirtd reachable, libvirt objects not compared"
[ $n -ge 10 ] || { echo "FAIL: only $n bad configs found"; fail=1; }
[ $fail = 0 ] && echo "ok: $n bad configs refused with file:line:column, exit 2, nothing created"
exit $fail
