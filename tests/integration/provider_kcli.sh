#!/usr/bin/env bash
# Provider kcli end to end through `vgpuenv up/down` against a real libvirtd:
# the kcli stand-in (tests/standins/kcli) defines real domains the way kcli
# does (metadata kvirt:kube, NAME-ctlplane-N / NAME-worker-N, no video or a
# cirrus/vga one; one started paused), and the provider must give each a
# virtio video device, restart the running one, leave other clusters'
# domains alone, change nothing on a second run, delete exactly the cluster
# on down, and roll back when kcli fails. The domains never boot an OS, so
# the ssh wait is skipped (VGPUENV_NODE_WAIT=0); it is covered separately.
# The cluster's kubeconfig (written by the stand-in) is the test harness's
# (tests/k8s/): cluster setup's kubectl calls reach a real API server, which
# has no KubeVirt.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
scripts/ensure-libvirtd.sh >/dev/null || skip "no libvirtd on qemu:///system"
. tests/standins/assert.sh
. tests/k8s/lib.sh

URI=qemu:///system
A=vgkc$$
B=vgkc$$b
T=$(mktemp -d /tmp/vgpuenv-kcli.XXXXXX)
cleanup() {
	set +e # best effort: a domain may already be gone
	for d in $(virsh -q -c $URI list --all --name | grep -E "^($A|$B)-"); do
		virsh -q -c $URI destroy "$d" >/dev/null 2>&1
		virsh -q -c $URI undefine "$d" >/dev/null 2>&1
	done
	k8s_down
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
export HOME=$T/home PATH="$K8S_BIN:$root/tests/standins:$PATH" KCLI_STANDIN_KUBECONFIG=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache VGPUENV_NODE_WAIT=0
export VGPUENV_SHUTDOWN_TIMEOUT=3 KCLI_STANDIN_URI=$URI
mkdir -p "$HOME"

cat >"$T/a.yaml" <<YAML
name: $A
provider: kcli
nodes:
  count: 3
  ctlplanes: 1
  cpus: 2
  memory: 4096
  disk: 20
kcli:
  image: centos9stream
  version: "1.30"
  uri: $URI
webhook:
  deploy: none
YAML

dump() { virsh -c $URI dumpxml --inactive "$1"; }
video_models() { # domain [--live]: the video model types, sorted, space-terminated
	local x
	if [ "${2:-}" = --live ]; then x=$(virsh -c $URI dumpxml "$1"); else x=$(dump "$1"); fi
	printf '%s' "$x" | python3 -c '
import sys, xml.etree.ElementTree as ET
d = ET.fromstring(sys.stdin.read())
print("".join(t + " " for t in sorted(m.get("type") for m in d.findall("./devices/video/model"))), end="")'
}

# --- other clusters: must stay untouched ---------------------------------------
printf "ctlplanes: 1\nworkers: 0\n" >"$T/b.yml"
STANDIN_LOG=$T/b.log KCLI_STANDIN_VIDEO=cirrus kcli create kube generic --paramfile "$T/b.yml" "$B" >/dev/null ||
	fail "stand-in could not create cluster B"
# named like a node of A, but kcli's metadata says it belongs to B
sed -e "s/<name>.*</<name>$A-worker-9</" -e "/<uuid>/d" \
	<(dump "$B-ctlplane-0") >"$T/trick.xml"
virsh -q -c $URI define "$T/trick.xml" >/dev/null || fail "define trick domain"
# no kcli metadata and not a node name of A
cat >"$T/plain.xml" <<XML
<domain type='qemu'><name>$A-ctlplane-extra</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<video><model type='vga' vram='16384' heads='1'/></video><memballoon model='none'/></devices></domain>
XML
virsh -q -c $URI define "$T/plain.xml" >/dev/null || fail "define plain domain"
others="$B-ctlplane-0 $A-worker-9 $A-ctlplane-extra"
for d in $others; do dump "$d" >"$T/before-$d.xml"; done

# --- first up ------------------------------------------------------------------
export STANDIN_LOG=$T/up1.log KCLI_STANDIN_VIDEO=none,cirrus,vga KCLI_STANDIN_START=$A-worker-1
build/vgpuenv up -c "$T/a.yaml" >"$T/up1.out" 2>&1 || { cat "$T/up1.out"; fail "vgpuenv up failed"; }
unset KCLI_STANDIN_START

k=$(calls kcli | head -n1)
argv_is "$k" kcli create kube generic --paramfile "$T/state/$A/kcli-parameters.yml" "$A" || fail "kcli create argv"
[ "$(cat "$k/cwd")" = "$T/state/$A" ] || fail "kcli ran in $(cat "$k/cwd")"
diff -u - "$T/state/$A/kcli-parameters.yml" <<EOF || fail "parameter file"
# Written by vgpuenv from $T/a.yaml: parameters of \`kcli create kube generic\`.
ctlplanes: 1
workers: 2
image: "centos9stream"
memory: 4096
numcpus: 2
disk_size: 20
version: "1.30"
EOF
echo "ok: kcli create kube generic --paramfile (ctlplanes 1, workers 2, version \"1.30\" as a string)"

nodes="$A-ctlplane-0 $A-worker-0 $A-worker-1"
# before: none, cirrus, vga (as the stand-in defined them)
for d in $nodes; do
	[ "$(video_models "$d")" = "virtio " ] || fail "$d video is [$(video_models "$d")], expected virtio only"
	dump "$d" | grep -q "vram=" && fail "$d still has vram"
done
[ "$(virsh -c $URI domstate "$A-worker-1")" = running ] || fail "$A-worker-1 not running after restart"
[ "$(video_models "$A-worker-1" --live)" = "virtio " ] || fail "$A-worker-1 was not restarted (live video $(video_models "$A-worker-1" --live))"
grep -q "restarted: $A-worker-1" "$T/up1.out" || fail "restart not reported"
grep -q "KubeVirt is not deployed in namespace kubevirt yet" "$T/up1.out" ||
	{ cat "$T/up1.out"; fail "cluster setup did not get the API server's NotFound for the KubeVirt CR"; }
for d in $others; do
	dump "$d" | diff -q - "$T/before-$d.xml" >/dev/null || fail "domain $d of another cluster was changed"
done
echo "ok: $nodes have <video><model type='virtio'/>, the running one was restarted, $others untouched"

# --- second up: nothing changes --------------------------------------------------
for d in $nodes; do dump "$d" >"$T/mid-$d.xml"; done
id=$(virsh -c $URI domid "$A-worker-1")
export STANDIN_LOG=$T/up2.log
build/vgpuenv up -c "$T/a.yaml" >"$T/up2.out" 2>&1 || { cat "$T/up2.out"; fail "second up failed"; }
[ -z "$(calls kcli)" ] || fail "second up ran kcli again: $(argv_of "$(calls kcli | head -n1)" | tr '\n' ' ')"
for d in $nodes; do dump "$d" | diff -q - "$T/mid-$d.xml" >/dev/null || fail "second up changed $d"; done
[ "$(virsh -c $URI domid "$A-worker-1")" = "$id" ] || fail "second up restarted $A-worker-1"
grep -q "restarted: -" "$T/up2.out" || fail "second up reports restarts"
grep -q "already virtio: $A-ctlplane-0 $A-worker-0 $A-worker-1" "$T/up2.out" || { cat "$T/up2.out"; fail "second up report"; }
echo "ok: second up: no kcli call, domain XML identical, $A-worker-1 not restarted (id $id)"

# --- down ---------------------------------------------------------------------------
export STANDIN_LOG=$T/down.log
build/vgpuenv down -c "$T/a.yaml" >"$T/down.out" 2>&1 || { cat "$T/down.out"; fail "down failed"; }
argv_is "$(calls kcli | head -n1)" kcli delete kube --yes "$A" || fail "kcli delete argv"
left=$(virsh -q -c $URI list --all --name | grep -E "^$A-(ctlplane|worker)-[0-9]+$" | grep -v -x "$A-worker-9" || true)
[ -z "$left" ] || fail "domains left after down: $left"
for d in $others; do virsh -q -c $URI dominfo "$d" >/dev/null 2>&1 || fail "down removed $d of another cluster"; done
[ ! -e "$T/state/$A" ] || fail "state left after down"
echo "ok: down ran kcli delete kube --yes $A; no domain of $A left, the others remain"

# --- kcli fails in the middle of create: error, rollback ---------------------------
export STANDIN_LOG=$T/fail.log STANDIN_FAIL_KCLI=create
if build/vgpuenv up -c "$T/a.yaml" >"$T/fail.out" 2>&1; then fail "up succeeded although kcli failed"; fi
unset STANDIN_FAIL_KCLI
grep -q "Hypervisor not compatible" "$T/fail.out" || fail "kcli's message not shown"
grep -q "kcli create kube generic" "$T/fail.out" || { cat "$T/fail.out"; fail "error does not name the step"; }
argv_is "$(calls kcli | tail -n1)" kcli delete kube --yes "$A" || fail "no rollback delete"
[ -z "$(virsh -q -c $URI list --all --name | grep -x "$A-ctlplane-0")" ] || fail "rollback left $A-ctlplane-0"
echo "ok: failing kcli -> non-zero exit with kcli's message, rolled back (kcli delete kube --yes), nothing left"

# --- delete leaves a domain behind: down says so and fails ------------------------
rm -rf "$T/state"
STANDIN_LOG=$T/up3.log build/vgpuenv up -c "$T/a.yaml" >"$T/up3.out" 2>&1 || fail "up (3) failed"
export STANDIN_LOG=$T/down2.log KCLI_STANDIN_LEAVE=$A-worker-0
if build/vgpuenv down -c "$T/a.yaml" >"$T/down2.out" 2>&1; then fail "down succeeded with a leftover domain"; fi
grep -q "left these domains of the cluster: $A-worker-0" "$T/down2.out" || { cat "$T/down2.out"; fail "leftover not named"; }
[ -e "$T/state/$A/state.json" ] || fail "state dropped although a domain is left"
echo "ok: a domain kcli left behind is reported by down (non-zero exit, state kept)"
unset KCLI_STANDIN_LEAVE
for d in $(virsh -q -c $URI list --all --name | grep -E "^$A-(ctlplane|worker)-[0-9]+$" | grep -v -x "$A-worker-9"); do
	virsh -q -c $URI undefine "$d" >/dev/null
done
rm -rf "$T/state" "$HOME/.kcli/clusters/$A"

# --- the ssh wait: nodes that never get an address time out, and roll back ------
sed -i 's/^webhook:/ssh:\n  timeout: 10\nwebhook:/' "$T/a.yaml"
export STANDIN_LOG=$T/wait.log
unset VGPUENV_NODE_WAIT
if build/vgpuenv up -c "$T/a.yaml" >"$T/wait.out" 2>&1; then fail "up succeeded without reachable nodes"; fi
export VGPUENV_NODE_WAIT=0
grep -q "no IPv4 address within 10s" "$T/wait.out" || { cat "$T/wait.out"; fail "no clear timeout message"; }
argv_is "$(calls kcli | tail -n1)" kcli delete kube --yes "$A" || fail "no rollback after the wait timed out"
[ -z "$(virsh -q -c $URI list --all --name | grep -x "$A-ctlplane-0")" ] || fail "rollback left $A-ctlplane-0"
echo "ok: waiting for the nodes' ssh gives up at ssh.timeout with a clear message and rolls back"

# --- Ctrl-C while kcli creates the VMs: rolled back -------------------------------
rm -rf "$T/state"
export STANDIN_LOG=$T/int.log KCLI_STANDIN_SLEEP=60
build/vgpuenv up -c "$T/a.yaml" >"$T/int.out" 2>&1 &
pid=$!
for _ in $(seq 100); do virsh -q -c $URI dominfo "$A-ctlplane-0" >/dev/null 2>&1 && break; sleep 0.1; done
virsh -q -c $URI dominfo "$A-ctlplane-0" >/dev/null 2>&1 || fail "the stand-in never defined $A-ctlplane-0"
kill -INT $pid
rc=0
wait $pid || rc=$?
unset KCLI_STANDIN_SLEEP
[ $rc -ne 0 ] || fail "interrupted up exited 0"
grep -q "interrupted" "$T/int.out" || { cat "$T/int.out"; fail "no interruption message"; }
argv_is "$(calls kcli | tail -n1)" kcli delete kube --yes "$A" || { cat "$T/int.out"; fail "no rollback after Ctrl-C"; }
[ -z "$(virsh -q -c $URI list --all --name | grep -x "$A-ctlplane-0")" ] || fail "Ctrl-C rollback left $A-ctlplane-0"
if [ -f "$T/state/$A/state.json" ] && grep -q kcli-cluster "$T/state/$A/state.json"; then
	fail "state still lists the cluster after the Ctrl-C rollback"
fi
echo "ok: Ctrl-C during kcli create -> exit $rc, rolled back with kcli delete kube --yes, nothing left"

# --- kcli not installed: said so, nothing recorded -------------------------------
rm -rf "$T/state"
sed 's/^kcli:/kcli:\n  binary: kcli-not-installed/' "$T/a.yaml" >"$T/nokcli.yaml"
if build/vgpuenv up -c "$T/nokcli.yaml" >"$T/nokcli.out" 2>&1; then fail "up succeeded without kcli"; fi
grep -q "kcli-not-installed not found (kcli.binary): install kcli" "$T/nokcli.out" || { cat "$T/nokcli.out"; fail "no clear message"; }
[ ! -e "$T/state/$A/state.json" ] || fail "state recorded although nothing was created"
echo "ok: a missing kcli is reported before anything is recorded"
echo PASS
