#!/usr/bin/env bash
# Provider kubevirtci end to end through `vgpuenv up/down`, against the
# stand-in kubevirtci checkout (tests/fixtures/kubevirtci, kubevirtci 39bd494:
# `echo $params` + `eval`, the KUBEVIRTCI_TAG check, prepare_config) and
# a stand-in for docker/gocli whose cluster is the test harness's real API
# server (tests/k8s/): the admin.conf gocli hands out is the harness's, so
# cluster setup's kubectl calls are real. Asserts the exact make environment,
# that --qemu-args with '-device virtio-gpu-pci' reaches gocli as one
# argument after the user's own quoted arguments, the node image chosen
# through --container-registry/-org/-suffix and checked for virtio-gpu-pci
# first, the merge into a user's --qemu-args, the node01 key exchange, the
# KubeVirt CR patch, the one-schedulable-node warning, the rollback when
# gocli fails, and the refusals before anything runs: no KUBEVIRTCI_TAG in a
# standalone checkout, an unknown provider, a node image without the device.
. "$(dirname "$0")/../lib/kubevirtci_standin.sh"
IMG=registry.example:5000/vgpuenv/k8s-1.36:$TAG

cat >"$T/cr.json" <<'JSON'
{"apiVersion":"kubevirt.io/v1","kind":"KubeVirt","metadata":{"name":"kubevirt","namespace":"kubevirt"},
 "spec":{"configuration":{"developerConfiguration":{"featureGates":["LiveMigration","Snapshot"]},
 "permittedHostDevices":{"pciHostDevices":[{"pciVendorSelector":"10de:1eb8","resourceName":"nvidia.com/T4"}]}}}}
JSON
k8s_kubevirt_cr "$T/cr.json"

cat >"$T/kv.yaml" <<YAML
name: kvci-test
provider: kubevirtci
nodes:
  count: 2
  memory: 6144
kubevirtci:
  dir: $T/kubevirtci
  provider: k8s-1.36
  tag: $TAG
  node_image: $IMG
  extra_args: --enable-ceph
ssh:
  key: $T/id
  timeout: 10
webhook:
  deploy: url
  url: https://127.0.0.1:18443
YAML
ssh-keygen -q -t ed25519 -N '' -f "$T/id" -C test

kubeconfig=$T/kubevirtci/_ci-configs/k8s-1.36/.kubeconfig
modules=()
[ -d /lib/modules ] && modules=(-v /lib/modules/:/lib/modules/)

# --- 1: the user's value has quoted arguments with spaces --------------------
export KUBEVIRT_PROVIDER_EXTRA_ARGS="--kernel-args='console=ttyS0 systemd.unified_cgroup_hierarchy=1' --nfs-data \"/srv/my nfs\""
run_up up1 || { cat "$T/up1.out"; fail "vgpuenv up failed"; }
# kubevirtci's common.sh appends --ocp-port 8443 on a developer setup (no JOB_NAME).
want_extra="--kernel-args='console=ttyS0 systemd.unified_cgroup_hierarchy=1' --nfs-data \"/srv/my nfs\" --enable-ceph --qemu-args '-device virtio-gpu-pci' --ocp-port 8443"

# make is real; the environment it got reaches every child, so it is
# checked on the docker (gocli) call, together with the working directory.
run=$(gocli_call run)
[ -n "$run" ] || fail "gocli run was not called"
[ "$(cat "$run/cwd")" = "$T/kubevirtci" ] || fail "gocli did not run from the checkout: $(cat "$run/cwd")"
env_has "$run" "KUBEVIRT_PROVIDER=k8s-1.36" || fail "KUBEVIRT_PROVIDER"
env_has "$run" "KUBEVIRTCI_TAG=$TAG" || fail "KUBEVIRTCI_TAG from kubevirtci.tag"
env_has "$run" "KUBEVIRT_NUM_NODES=2" || fail "KUBEVIRT_NUM_NODES"
env_has "$run" "KUBEVIRT_MEMORY_SIZE=6144M" || fail "KUBEVIRT_MEMORY_SIZE"
env_has "$run" "KUBEVIRT_PROVIDER_EXTRA_ARGS=$want_extra" || {
	grep -z KUBEVIRT_PROVIDER_EXTRA_ARGS "$run/env" | tr '\0' '\n' >&2
	fail "KUBEVIRT_PROVIDER_EXTRA_ARGS is not the user's value + extra_args + --qemu-args"
}
argv_is "$run" docker run --privileged --net=host --rm -v /var/run/docker.sock:/var/run/docker.sock \
	-e KUBEVIRT_PROVIDER=k8s-1.36 -e DOCKER_API_VERSION "${modules[@]}" quay.io/kubevirtci/gocli:$TAG run \
	--flannel --container-suffix=:$TAG --container-org=vgpuenv --container-registry=registry.example:5000 \
	--dns-port 31111 --nodes 2 --memory 6144M --numa 1 --cpu 6 --secondary-nics 0 \
	--random-ports --background --prefix k8s-1.36 k8s-1.36 \
	"--kernel-args=console=ttyS0 systemd.unified_cgroup_hierarchy=1" --nfs-data "/srv/my nfs" \
	--enable-ceph --qemu-args "-device virtio-gpu-pci" --ocp-port 8443 || fail "gocli run argv"
grep -q "Download the image registry.example:5000/vgpuenv/k8s-1.36:$TAG" "$T/up1.runlog" ||
	fail "gocli was not pointed at the node image"
qemu=$(calls docker | head -n1)
argv_is "$qemu" docker run --rm --entrypoint /usr/bin/qemu-kvm "$IMG" -device help || fail "node image check argv"
[ -x "$T/kubevirtci/_ci-configs/k8s-1.36/.kubectl" ] || fail "change_permissions did not run"
grep -q "^kubeconfig=$kubeconfig\$" "$T/kubevirtci/_ci-configs/k8s-1.36/config-provider-k8s-1.36.sh" ||
	fail "prepare_config did not write the provider config"
echo "ok: --qemu-args '-device virtio-gpu-pci' reached gocli as one argument after the user's quoted ones"

# node01: port from gocli ports ssh, key exchange through ssh.sh
# kubevirtci itself asks for the k8s and registry ports; ours is the ssh one.
ports=""
for p in $(gocli_call ports); do [ "$(argv_of "$p" | tail -n1)" = ssh ] && ports=$p; done
[ -n "$ports" ] || fail "gocli ports ssh not called"
[ "$(argv_of "$ports" | tail -n2 | tr '\n' ' ')" = "ports ssh " ] || fail "ports call: $(argv_of "$ports" | tr '\n' ' ')"
# kubevirtci labels the nodes through gocli ssh too; ours is the key exchange.
ssh=""
for s in $(gocli_call ssh); do argv_of "$s" | grep -q "^sudo sh -c " && ssh=$s; done
[ -n "$ssh" ] || fail "no key exchange through gocli ssh"
pub=$(cat "$T/id.pub")
[ "$(argv_of "$ssh" | tail -n4 | head -n3 | tr '\n' ' ')" = "ssh node01 -- " ] || fail "ssh.sh call: $(argv_of "$ssh" | tr '\n' ' ')"
cmd=$(argv_of "$ssh" | tail -n1)
case "$cmd" in "sudo sh -c "*) ;; *) fail "key exchange command: $cmd" ;; esac
# The node's shell parses the command: parse it the same way here.
script=$(eval "set -- $cmd"; printf '%s' "$4")
printf '%s' "$script" | grep -qF "grep -qxF '$pub' /root/.ssh/authorized_keys" || fail "key exchange script: $script"
echo "ok: node01 key exchange through cluster-up/ssh.sh with our public key"
grep -q '"node01_ssh_port":[[:space:]]*32769' "$T/state/kvci-test/state.json" || fail "ssh port not recorded"

# the webhook in url mode: real mesa-injector certs + manifests, applied from
# a file in the state, as the API server stored them
S=$T/state/kvci-test
grep -q "kind: MutatingWebhookConfiguration" "$S/mesa-injector.yaml" || fail "no MutatingWebhookConfiguration in $S/mesa-injector.yaml"
cmp -s "$kubeconfig" "$KUBECONFIG_K8S" || fail "the cluster's kubeconfig is not gocli's admin.conf"
url=$(kc get mutatingwebhookconfiguration mesa-injector -o jsonpath='{.webhooks[*].clientConfig.url}')
[ "$url" = "https://127.0.0.1:18443/mutate-pods https://127.0.0.1:18443/mutate-vmis" ] || fail "stored webhook URLs: $url"
[ "$(kc get mutatingwebhookconfiguration mesa-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" = \
	"$(base64 -w0 <"$S/webhook-certs/ca.crt")" ] || fail "stored caBundle is not the CA of the host's certificate"
grep -q "serve --listen 0.0.0.0:18443 --cert $S/webhook-certs/tls.crt --key $S/webhook-certs/tls.key" "$T/up1.out" ||
	fail "the serve command for the host is not printed"
ca1=$(sha256sum <"$S/webhook-certs/ca.crt")
echo "ok: url mode: certificates for 127.0.0.1, manifests with that caBundle applied, serve command printed"

# KubeVirt CR: existing gates and host devices kept, fake vGPU added, as stored
[ "$(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')" = \
	'{"developerConfiguration":{"featureGates":["LiveMigration","Snapshot","Sidecar"]},"mediatedDevicesConfiguration":{"mediatedDeviceTypes":["nvidia-222"]},"permittedHostDevices":{"mediatedDevices":[{"mdevNameSelector":"GRID T4-1B","resourceName":"nvidia.com/GRID_T4-1B"},{"mdevNameSelector":"GRID T4-2B","resourceName":"nvidia.com/GRID_T4-2B"}],"pciHostDevices":[{"pciVendorSelector":"10de:1eb8","resourceName":"nvidia.com/T4"}]}}' ] ||
	fail "stored KubeVirt CR: $(kc -n kubevirt get kubevirt kubevirt -o jsonpath='{.spec.configuration}')"
grep -q "debug: kubectl wait kubevirt Available: run" "$T/up1.runlog" || fail "no wait for Available"
echo "ok: KubeVirt CR stored with LiveMigration/Snapshot and the PCI device kept, the fake vGPU added; Available seen"

# a second up keeps the certificates (a running `serve` stays valid)
STANDIN_LOG=$T/up1b.log build/vgpuenv up -c "$T/kv.yaml" >"$T/up1b.out" 2>&1 || { cat "$T/up1b.out"; fail "second up failed"; }
[ "$(sha256sum <"$S/webhook-certs/ca.crt")" = "$ca1" ] || fail "second up replaced the webhook CA"
echo "ok: second up kept the webhook certificates"

# down: make cluster-down -> gocli rm, state gone
export STANDIN_LOG=$T/down1.log
build/vgpuenv down -c "$T/kv.yaml" >"$T/down1.out" 2>&1 || { cat "$T/down1.out"; fail "down failed"; }
rm_call=$(gocli_call rm)
[ -n "$rm_call" ] || fail "down did not run gocli rm"
env_has "$rm_call" "KUBEVIRT_PROVIDER=k8s-1.36" || fail "down env"
env_has "$rm_call" "KUBEVIRTCI_TAG=$TAG" || fail "down without the tag: ephemeral-provider-common.sh would die"
[ ! -e "$T/state/kvci-test" ] || fail "state left after down"
echo "ok: down ran make cluster-down and removed the state"

# --- 2: the user already passes --qemu-args: merged, not duplicated ----------
export KUBEVIRT_PROVIDER_EXTRA_ARGS="--qemu-args '-cpu max -smp 2'"
run_up up2 || { cat "$T/up2.out"; fail "vgpuenv up (2) failed"; }
run=$(gocli_call run)
n=$(argv_of "$run" | grep -cx -- --qemu-args)
[ "$n" = 1 ] || fail "--qemu-args appears $n times"
got=$(argv_of "$run" | grep -A1 -x -- --qemu-args | tail -n1)
[ "$got" = "-cpu max -smp 2 -device virtio-gpu-pci" ] || fail "qemu args not merged: [$got]"
echo "ok: a user's --qemu-args '-cpu max -smp 2' became '-cpu max -smp 2 -device virtio-gpu-pci'"
STANDIN_LOG=$T/down2.log build/vgpuenv down -c "$T/kv.yaml" >/dev/null 2>&1 || fail "down (2)"

# --- 3: gocli fails: clear error, rollback, nothing left -----------------------
unset KUBEVIRT_PROVIDER_EXTRA_ARGS
export STANDIN_FAIL_DOCKER=run
if run_up up3; then fail "up succeeded although gocli run failed"; fi
grep -q "make cluster-up" "$T/up3.out" || { cat "$T/up3.out"; fail "error does not name make cluster-up"; }
grep -q "stand-in failure" "$T/up3.out" || fail "gocli's own error was not shown"
[ -n "$(gocli_call rm)" ] || fail "no rollback (gocli rm) after the failure"
if [ -f "$T/state/kvci-test/state.json" ] && grep -q kubevirtci-cluster "$T/state/kvci-test/state.json"; then
	fail "state still lists the cluster after rollback"
fi
echo "ok: failing gocli -> non-zero exit, the message names make cluster-up, rolled back with make cluster-down"
unset STANDIN_FAIL_DOCKER
rm -rf "$T/state"

# --- 4: unterminated quote in the user's value: clear error, nothing run ------
export KUBEVIRT_PROVIDER_EXTRA_ARGS="--kernel-args='oops"
if run_up up4; then fail "up accepted an unterminated quote"; fi
grep -q "unterminated quote" "$T/up4.out" || { cat "$T/up4.out"; fail "no clear message"; }
[ -z "$(calls docker)" ] || fail "something ran despite the bad value"
echo "ok: unterminated quote refused before running anything"
unset KUBEVIRT_PROVIDER_EXTRA_ARGS

refused() { # log-name, message; then nothing ran but the checks
	if run_up "$1"; then fail "up succeeded: $2"; fi
	grep -qF -- "$2" "$T/$1.out" || { cat "$T/$1.out"; fail "no clear message: $2"; }
	[ -z "$(gocli_call run)" ] || fail "$1: gocli ran despite the refusal"
	[ ! -e "$T/state/kvci-test/state.json" ] || fail "$1: state left"
}

# --- 5: a standalone kubevirtci checkout and no KUBEVIRTCI_TAG ----------------
sed -i '/^  tag:/d' "$T/kv.yaml"
refused up5 "KUBEVIRTCI_TAG is not set and $T/kubevirtci pins none"
grep -q 'FATAL: either KUBEVIRTCI_TAG or KUBEVIRTCI_GOCLI_CONTAINER must be set' "$T/up5.out" ||
	fail "the message does not say what kubevirtci would do"
[ -z "$(calls docker)" ] || fail "up5: something ran"
echo "ok: standalone kubevirtci without KUBEVIRTCI_TAG refused before anything"
KUBEVIRTCI_TAG=$TAG run_up up5b || { cat "$T/up5b.out"; fail "KUBEVIRTCI_TAG from the environment"; }
env_has "$(gocli_call run)" "KUBEVIRTCI_TAG=$TAG" || fail "tag from the environment not passed"
STANDIN_LOG=$T/down5.log KUBEVIRTCI_TAG=$TAG build/vgpuenv down -c "$T/kv.yaml" >/dev/null 2>&1 || fail "down (5)"
echo "ok: KUBEVIRTCI_TAG from the environment"

# --- 6: an unknown provider: the ones that exist are listed -------------------
export KUBEVIRTCI_TAG=$TAG
KUBEVIRT_PROVIDER=k8s-1.30 refused up6 "KUBEVIRT_PROVIDER k8s-1.30 does not exist in $T/kubevirtci"
grep -q "it has: external, k8s-1.34, k8s-1.35, k8s-1.36, kind-1.35-vgpu" "$T/up6.out" ||
	{ cat "$T/up6.out"; fail "available providers not listed"; }
echo "ok: unknown provider k8s-1.30 refused, available ones listed"

# --- 7: item 6 of issue 12: kubevirtci's own image has no virtio-gpu-pci ------
sed -i "s#^  node_image: .*#  node_image: quay.io/kubevirtci/k8s-1.36:$TAG#" "$T/kv.yaml"
refused up7 "its QEMU has no virtio-gpu-pci"
grep -q 'name "cirrus-vga", bus PCI' "$T/up7.out" || fail "the evidence (its display devices) is not shown"
grep -q "Install qemu-device-display-virtio-gpu qemu-device-display-virtio-gpu-pci" "$T/up7.out" || fail "no remedy"
sed -i '/^  node_image:/d' "$T/kv.yaml"
refused up7b "kubevirtci.node_image is not set"
grep -q "Fedora 43 with only qemu-kvm-core" "$T/up7b.out" || fail "no evidence without node_image"
grep -q "dnf -y install qemu-device-display-virtio-gpu qemu-device-display-virtio-gpu-pci" "$T/up7b.out" ||
	fail "no remedy without node_image"
echo "ok: a node image without virtio-gpu-pci, or none, refused early with the evidence and the remedy"

# --- 8: a kubevirt checkout: its pinned tag, its kubevirtci/_ci-configs --------
cp -rL "$root/tests/fixtures/kubevirt" "$T/kubevirt"
unset KUBEVIRTCI_TAG
sed -i "s#^  dir: .*#  dir: $T/kubevirt#; s#^kubevirtci:#kubevirtci:\n  node_image: $IMG#" "$T/kv.yaml"
run_up up8 || { cat "$T/up8.out"; fail "up from a kubevirt checkout"; }
run=$(gocli_call run)
env_has "$run" "KUBEVIRTCI_TAG=$TAG" || fail "the kubevirt checkout's pinned tag not passed"
[ -f "$T/kubevirt/kubevirtci/_ci-configs/k8s-1.36/config-provider-k8s-1.36.sh" ] ||
	fail "no provider config in <kubevirt>/kubevirtci/_ci-configs"
echo "ok: a kubevirt checkout: its pinned KUBEVIRTCI_TAG, its kubevirtci/_ci-configs"

# --- 9: up says when the cluster cannot run the MediatedDevices tests ---------
STANDIN_LOG=$T/down8.log build/vgpuenv down -c "$T/kv.yaml" >/dev/null 2>&1 || fail "down (8)"
# Two nodes as virt-handler labels them, stored in the real API server.
for n in node01 node02; do
	printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n  labels: {kubevirt.io/schedulable: "true"}\n' "$n" |
		kc apply -f - >/dev/null
done
run_up up9 || { cat "$T/up9.out"; fail "up (9)"; }
kc delete node node01 node02 >/dev/null
grep -q "2 nodes are labelled kubevirt.io/schedulable=true (node01, node02)" "$T/up9.out" ||
	{ cat "$T/up9.out"; fail "no warning about two schedulable nodes"; }
grep -q "will fail on it as it is" "$T/up9.out" || fail "the warning does not say what it means"
echo "ok: up warns about two schedulable nodes"
echo PASS
