#!/usr/bin/env bash
# Failure paths of `up` on the local provider, against real libvirt, the real
# libguestfs appliance and a real TCG VM:
#   1. a failure injected at every step of the plan (VGPUENV_TEST_FAIL_AT)
#      rolls back exactly the steps before it, last first; nothing is left in
#      libvirt, in the image cache (no half-made entry) or in the state;
#   2. Ctrl-C while the node boots: exit 130, rolled back;
#   3. Ctrl-C while the libguestfs appliance launches: it stops within
#      seconds, exit 130, no appliance QEMU and no work dir left;
#   4. an appliance launch deadline of 1 s: the step fails naming what it
#      waited for and the log, the appliance is stopped, nothing left;
#   5. gpu: none: the probe fails and says why; the node stays for
#      inspection (no rollback), and down removes it.
source "$(dirname "$0")/../lib/vm.sh"
need_root_and_libvirt
NAME=itest-fail
write_config $NAME 152
cfg=$CFG
cache=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}

nothing_left() { # what
	[ -z "$(objects_of $NAME)" ] || fail "$1: left in libvirt: $(objects_of $NAME)"
	[ ! -e "$VGPUENV_STATE_DIR/$NAME" ] || fail "$1: the state dir is left"
	local tmp
	tmp=$(find "$cache/base" "$cache/images" -maxdepth 1 -name "*.tmp-$2" 2>/dev/null || true)
	[ -z "$tmp" ] || fail "$1: half-made cache entries left: $tmp"
}

# The steps, their order and which have an undo, from the plan itself.
"$VGPUENV" up --dry-run -c "$cfg" >"$TMP/plan" || fail "up --dry-run"
python3 - "$TMP/plan" >"$TMP/steps" <<'PY'
import re, sys
name = None
for line in open(sys.argv[1]):
    m = re.match(r"^\s*(\d+)\. (?:\[[^\]]+\] )?(.+)$", line)
    if m:
        name = (m.group(1), m.group(2))
    m = re.match(r"^\s+undo:\s+(.*)$", line)
    if m and name:
        undo = not m.group(1).startswith("nothing")
        print(f"{name[0]}\t{name[1]}\t{int(undo)}")
        name = None
PY
[ "$(wc -l <"$TMP/steps")" -ge 10 ] || { cat "$TMP/plan"; fail "the plan has too few steps"; }

# 1. A failure at every step, from the last to the first (the early steps
#    are cheap, the later ones boot the node each time).
tac "$TMP/steps" | while IFS=$'\t' read -r n step _; do
	log=$TMP/fail-$n.log
	rc=0
	VGPUENV_TEST_FAIL_AT=$step "$VGPUENV" up -v -c "$cfg" >"$log" 2>&1 || rc=$?
	[ $rc = 1 ] || { cat "$log"; fail "failure at '$step': exit $rc, want 1"; }
	grep -q "failure injected at step '$step'" "$log" || { cat "$log"; fail "no injected failure at '$step'"; }
	pid=$(sed -n 's/.*-up-\([0-9]*\)\.log$/\1/p' "$log" | head -n1)
	# undone: exactly the steps before it that have an undo, last first
	want=$(awk -F'\t' -v n="$n" '$1 < n && $3 == 1 {print $1 " " $2}' "$TMP/steps" | sort -rn)
	got=$(sed -n 's/^vgpuenv: \[undo \([0-9]*\)\] \(.*\): .*/\1 \2/p' "$log")
	[ "$got" = "$want" ] || { cat "$log"; fail "failure at '$step': undid [$got], want [$want]"; }
	nothing_left "failure at '$step'" "$pid"
	ok "failure at step $n '$step': undid $(echo "$want" | grep -c . || true) step(s) in reverse, nothing left"
done

# 2. Ctrl-C while the node boots.
"$VGPUENV" up -c "$cfg" >"$TMP/int.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	[ "$(virsh_q domstate vgpuenv-$NAME-node1 2>/dev/null)" = "running" ] && break
	sleep 0.5
done
kill -INT $pid
rc=0
wait $pid || rc=$?
[ $rc = 130 ] || { cat "$TMP/int.log"; fail "Ctrl-C: exit $rc, want 130"; }
grep -q "interrupted" "$TMP/int.log" || fail "no interrupted message"
grep -q "\[undo [0-9]*\] domain $NAME-node1" "$TMP/int.log" || { cat "$TMP/int.log"; fail "domain not undone"; }
nothing_left "Ctrl-C during boot" $pid
ok "Ctrl-C during boot: exit 130, rolled back, nothing left"

# 3 and 4 need an appliance launch: a package set no cached image has. They
# run with the QEMU stand-in of a lying KVM on PATH (tests/standins): the
# appliance launches only because it is forced onto TCG.
write_config itest-appl 153 "image: {extra_packages: [hello]}" "deadlines: {kvm_probe: 5}" \
	"mesa: {packages: [libgbm1, vgpuenv-test-$$]}"
cfg3=$CFG
appliance_qemu() { pgrep -f "qemu-system-x86_64.*$cache/images/.*tmp-$1" || true; }
export QEMU_STANDIN_LOG=$TMP/qemu.log
PATH="$ROOT/tests/standins:$PATH" "$VGPUENV" up -v -c "$cfg3" >"$TMP/appl.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
	grep -q "launching the libguestfs appliance" "$TMP/appl.log" && [ -n "$(appliance_qemu $pid)" ] && break
	kill -0 $pid 2>/dev/null || { cat "$TMP/appl.log"; fail "up ended before the appliance launched"; }
	sleep 0.2
done
[ -n "$(appliance_qemu $pid)" ] || { cat "$TMP/appl.log"; fail "no appliance QEMU seen"; }
sleep 1
t0=$(date +%s.%N)
kill -INT $pid
rc=0
wait $pid || rc=$?
dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
[ $rc = 130 ] || { cat "$TMP/appl.log"; fail "Ctrl-C in the appliance: exit $rc, want 130"; }
awk -v d="$dt" 'BEGIN{exit !(d < 5)}' || fail "Ctrl-C in the appliance took ${dt}s"
grep -q "stopping the libguestfs appliance: interrupted" "$TMP/appl.log" || { cat "$TMP/appl.log"; fail "appliance not stopped"; }
[ -z "$(appliance_qemu $pid)" ] || fail "the appliance QEMU survived Ctrl-C"
NAME=itest-appl nothing_left "Ctrl-C in the appliance" $pid
grep -q "accel=tcg" "$TMP/qemu.log" || { cat "$TMP/qemu.log"; fail "the appliance was not forced onto TCG"; }
grep "tmp-$pid" "$TMP/qemu.log" | grep -q "accel=kvm" && fail "the appliance asked for KVM"
ok "Ctrl-C during the appliance launch (forced onto TCG under the lying KVM): stopped in ${dt}s, exit 130, no QEMU, no work dir"

sed -i 's/^deadlines: {kvm_probe: 5}$/deadlines: {kvm_probe: 5, appliance_launch: 1}/' "$cfg3"
grep -q "appliance_launch: 1" "$cfg3" || fail "could not set deadlines.appliance_launch in $cfg3"
rc=0
PATH="$ROOT/tests/standins:$PATH" "$VGPUENV" up -c "$cfg3" >"$TMP/deadline.log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$TMP/deadline.log"; fail "appliance deadline: exit $rc, want 1"; }
grep -q "step 'node-image' stopped after .*: a deadline passed waiting for the libguestfs appliance launch (deadlines.appliance_launch), at most 1 s; its log: " "$TMP/deadline.log" ||
	{ cat "$TMP/deadline.log"; fail "the deadline message does not name the step, the wait and the log"; }
pid=$(sed -n 's/.*-up-\([0-9]*\)\.log$/\1/p' "$TMP/deadline.log" | head -n1)
[ -z "$(appliance_qemu "$pid")" ] || fail "the appliance QEMU survived its deadline"
NAME=itest-appl nothing_left "appliance deadline" "$pid"
ok "appliance launch deadline 1s: $(grep -o "step 'node-image' stopped after [0-9.]*s" "$TMP/deadline.log"), nothing left"

# 5. gpu: none -> the probe fails and says why; the node stays for inspection.
write_config itest-nogpu 154 "gpu: none"
cfg2=$CFG
rc=0
"$VGPUENV" up -c "$cfg2" >"$TMP/nogpu.log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$TMP/nogpu.log"; fail "gpu none: exit $rc, want 1"; }
grep -Eq "render-node +FAIL +no DRM render node under /dev/dri: the node has no GPU device" "$TMP/nogpu.log" ||
	{ cat "$TMP/nogpu.log"; fail "gpu none: no clear render-node message"; }
grep -q "the render-node probe failed on itest-nogpu-node1" "$TMP/nogpu.log" || fail "gpu none: up did not summarize the failure"
grep -q "rolling back" "$TMP/nogpu.log" && fail "gpu none: a failed probe rolled back the node"
[ "$(virsh_q domstate vgpuenv-itest-nogpu-node1 2>/dev/null)" = "running" ] || fail "gpu none: the node did not stay up"
"$VGPUENV" down -c "$cfg2" >/dev/null 2>&1 || fail "down after gpu none"
[ -z "$(objects_of itest-nogpu)" ] || fail "left behind: $(objects_of itest-nogpu)"
ok "gpu none: probe fails with 'no DRM render node', exit 1, node kept; down cleans up"
echo "all local failure checks passed"
