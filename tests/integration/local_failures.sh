#!/usr/bin/env bash
# Failure paths of `up` on the local provider, each against real libvirt: a
# failure injected after the domains are defined, one after the nodes are up,
# Ctrl-C while a node boots, and a node without a GPU device. Each must end
# non-zero with a clear message; the first three must leave nothing behind.
source "$(dirname "$0")/../lib/vm.sh"
need_root_and_libvirt
NAME=itest-fail
write_config $NAME 152
cfg=$CFG

# 1. Failure injected mid-up.
VGPUENV_TEST_FAIL_AFTER_DEFINE=1 "$VGPUENV" up -c "$cfg" >"$TMP/inject.log" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$TMP/inject.log"; fail "injected failure: exit $rc, want 1"; }
grep -q "failure injected" "$TMP/inject.log" || fail "no message for the injected failure"
grep -q "removed domain vgpuenv-$NAME-node1" "$TMP/inject.log" || fail "rollback did not report the domain"
[ -z "$(objects_of $NAME)" ] || fail "left behind after injected failure: $(objects_of $NAME)"
[ ! -e "$VGPUENV_STATE_DIR/$NAME" ] || fail "state dir left after a rolled-back first run"
ok "failure injected after define: exit 1, rolled back, nothing left"

# 2. Failure after the nodes are up (node setup, cluster setup): the nodes
#    this run made go too.
VGPUENV_TEST_FAIL_AFTER_UP=1 "$VGPUENV" up -c "$cfg" >"$TMP/after.log" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$TMP/after.log"; fail "failure after up: exit $rc, want 1"; }
grep -q "failure injected after the nodes came up" "$TMP/after.log" || fail "no message for the late failure"
grep -q "removed domain vgpuenv-$NAME-node1" "$TMP/after.log" || { cat "$TMP/after.log"; fail "late failure: domain not rolled back"; }
[ -z "$(objects_of $NAME)" ] || fail "left behind after a late failure: $(objects_of $NAME)"
[ ! -e "$VGPUENV_STATE_DIR/$NAME" ] || fail "state dir left after a late failure"
ok "failure after the nodes came up: exit 1, rolled back, nothing left"

# 3. Ctrl-C while the node boots.
"$VGPUENV" up -c "$cfg" >"$TMP/int.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	[ "$(virsh_q domstate vgpuenv-$NAME-node1 2>/dev/null)" = "running" ] && break
	sleep 0.5
done
kill -INT $pid
wait $pid
rc=$?
[ $rc = 130 ] || { cat "$TMP/int.log"; fail "Ctrl-C: exit $rc, want 130"; }
grep -q "interrupted" "$TMP/int.log" || fail "no interrupted message"
[ -z "$(objects_of $NAME)" ] || fail "left behind after Ctrl-C: $(objects_of $NAME)"
ok "Ctrl-C during boot: exit 130, rolled back, nothing left"

# 4. gpu: none -> the probe fails and says why; the node stays for inspection.
write_config itest-nogpu 153 "gpu: none"
cfg2=$CFG
"$VGPUENV" up -c "$cfg2" >"$TMP/nogpu.log" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$TMP/nogpu.log"; fail "gpu none: exit $rc, want 1"; }
grep -Eq "render-node +FAIL +no DRM render node under /dev/dri: the node has no GPU device" "$TMP/nogpu.log" ||
	{ cat "$TMP/nogpu.log"; fail "gpu none: no clear render-node message"; }
grep -q "the render-node probe failed" "$TMP/nogpu.log" || fail "gpu none: up did not summarize the failure"
"$VGPUENV" down -c "$cfg2" >/dev/null 2>&1 || fail "down after gpu none"
[ -z "$(objects_of itest-nogpu)" ] || fail "left behind: $(objects_of itest-nogpu)"
ok "gpu none: probe fails with 'no DRM render node', exit 1; down cleans up"
echo "all local failure checks passed"
