#!/usr/bin/env bash
# The local provider end to end against a real libvirtd, the real libguestfs
# appliance and a real TCG VM:
#   up killed with SIGKILL mid-boot -> up again resumes and every probe check
#   passes -> a third up converges without launching the appliance -> status,
#   ssh (quoting, exit codes) -> a changed host key is refused -> down leaves
#   nothing, while objects of others are untouched.
source "$(dirname "$0")/../lib/vm.sh"
need_root_and_libvirt
NAME=itest-updown
write_config $NAME 151
cfg=$CFG
DOM=vgpuenv-$NAME-node1

# Someone else's domain with a look-alike name and no ownership mark.
cat >"$TMP/foreign.xml" <<XML
<domain type='qemu'><name>vgpuenv-$NAME-node9</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
virsh_q define "$TMP/foreign.xml" >/dev/null || fail "defining the foreign domain"
trap 'virsh_q undefine vgpuenv-$NAME-node9 >/dev/null 2>&1; cleanup_vms' EXIT

# 1. kill -9 while the node boots.
"$VGPUENV" up -c "$cfg" >"$TMP/up1.log" 2>&1 &
pid=$!
for _ in $(seq 1 900); do
	[ "$(virsh_q domstate $DOM 2>/dev/null)" = "running" ] && break
	kill -0 $pid 2>/dev/null || { cat "$TMP/up1.log"; fail "up exited before the domain ran"; }
	sleep 1
done
[ "$(virsh_q domstate $DOM 2>/dev/null)" = "running" ] || fail "domain never ran"
kill -9 $pid
wait $pid 2>/dev/null || true
grep -q "\"$DOM\"" "$VGPUENV_STATE_DIR/$NAME/state.json" || fail "state does not list the domain after SIGKILL"
ok "up killed with SIGKILL while $DOM booted; the state lists it"

# 2. Resume, and a plan is data: what --dry-run prints is what up -v runs.
"$VGPUENV" up --dry-run -c "$cfg" >"$TMP/up2.plan" 2>&1 || { cat "$TMP/up2.plan"; fail "up --dry-run failed"; }
"$VGPUENV" up -v -c "$cfg" >"$TMP/up2.log" 2>&1 || { cat "$TMP/up2.log"; fail "resumed up failed"; }
python3 "$ROOT/tests/lib/plan_steps.py" "$TMP/up2.plan" "$TMP/up2.log" ||
	{ cat "$TMP/up2.plan"; fail "up -v ran other steps than up --dry-run printed"; }
for check in render-node gbm egl-init dmabuf-ext dmabuf-export; do
	grep -Eq "^$NAME-node1 +$check +ok" "$TMP/up2.log" || { cat "$TMP/up2.log"; fail "probe check $check did not pass"; }
done
grep -Eq "^$NAME-node1 +verdict +PASS" "$TMP/up2.log" || fail "no PASS verdict"
grep -q "EGL_MESA_image_dma_buf_export" "$TMP/up2.log" || fail "dma_buf_export extension not reported"
[ "$(virsh_q list --all --name | grep -c "^$DOM\$")" = 1 ] || fail "resume made a second domain"
ok "resumed up: every probe check passed (render node, GBM, EGL, dmabuf export)"

# 3. Converge: nothing rebuilt, nothing launched.
"$VGPUENV" up -c "$cfg" >"$TMP/up3.log" 2>&1 || { cat "$TMP/up3.log"; fail "third up failed"; }
grep -q "no appliance launch" "$TMP/up3.log" || fail "third up did not use the cached image"
hasnt "$TMP/up3.log" "launching the libguestfs appliance" || fail "third up launched the appliance"
hasnt "$TMP/up3.log" "started (" || fail "third up restarted the node"
ok "third up converged: cached image, node untouched"

# 4. status --json.
"$VGPUENV" status -c "$cfg" --json >"$TMP/status.json" || fail "status failed"
python3 - "$TMP/status.json" <<'PY' || fail "status --json is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["up"] is True, s
assert s["nodes"][0]["address"] == "192.168.151.10", s["nodes"]
assert any(d["state"] == "running" for d in s["domains"]), s["domains"]
kinds = sorted(r["kind"] for r in s["resources"])
assert kinds == ["domain", "network", "pool", "volume"], kinds
PY
ok "status --json: up, node address, running domain, 4 owned objects"

# 5. ssh: arguments arrive intact, exit codes come back.
out=$("$VGPUENV" ssh -c "$cfg" node1 -- printf '%s|' 'a b' '$HOME' "it's" '`x`') || fail "ssh printf failed"
[ "$out" = "a b|\$HOME|it's|\`x\`|" ] || fail "ssh quoting: got '$out'"
rc=0
"$VGPUENV" ssh -c "$cfg" node1 -- sh -c 'exit 7' || rc=$?
[ $rc = 7 ] || fail "remote exit code not propagated (got $rc)"
"$VGPUENV" ssh -c "$cfg" node1 -- sh -c 'test -c /dev/dri/renderD128 && grep -q "^virtio_gpu " /proc/modules' ||
	fail "no render node from a loaded virtio_gpu module"
ok "ssh: quoting, exit status, render node driven by virtio_gpu"

# Standard input reaches the command, as with ssh(1); -n gives it EOF.
head -c 524288 /dev/urandom >"$TMP/blob"
"$VGPUENV" ssh -c "$cfg" node1 -- sh -c 'cat > /tmp/blob' <"$TMP/blob" || fail "ssh with stdin failed"
remote=$("$VGPUENV" ssh -n -c "$cfg" node1 -- sha256sum /tmp/blob | cut -d' ' -f1)
[ "$remote" = "$(sha256sum "$TMP/blob" | cut -d' ' -f1)" ] || fail "stdin did not arrive whole (sha256 $remote)"
got=$(echo hello | "$VGPUENV" ssh -n -c "$cfg" node1 -- cat) || fail "ssh -n failed"
[ -z "$got" ] || fail "ssh -n forwarded stdin: '$got'"
ok "ssh: 512 KiB of stdin arrive whole (sha256 matches); -n reads EOF"

# 6. A changed host key is refused.
"$VGPUENV" ssh -c "$cfg" node1 -- sh -c 'rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key && (sleep 1; systemctl restart ssh) >/dev/null 2>&1 &' ||
	fail "could not change the node's host key"
sleep 4
if "$VGPUENV" ssh -n -c "$cfg" node1 -- true 2>"$TMP/ssh.err"; then
	fail "ssh accepted a changed host key"
fi
grep -q "changed" "$TMP/ssh.err" && grep -q "refusing" "$TMP/ssh.err" || { cat "$TMP/ssh.err"; fail "no clear host-key message"; }
ok "changed host key refused: $(grep -o 'host key of.*changed' "$TMP/ssh.err")"

# 7. down removes exactly what up made.
"$VGPUENV" down -c "$cfg" >"$TMP/down.log" 2>&1 || { cat "$TMP/down.log"; fail "down failed"; }
left=$(objects_of "$NAME" | grep -v -- "-node9\$" || true)
[ -z "$left" ] || fail "left behind: $left"
[ ! -e "$VGPUENV_STATE_DIR/$NAME" ] || fail "state dir left behind"
virsh_q dominfo vgpuenv-$NAME-node9 >/dev/null 2>&1 || fail "down removed a domain that was not ours"
ok "down: no domain, volume, pool, network or state left; the foreign domain survived"
echo "all local up/down checks passed"
