#!/usr/bin/env bash
# The test harness's node (tests/k8s/): a real kubelet with containerd + runc
# on this machine, what the device-plugin test builds on.
#  - the kubelet registers the node; its Ready condition is what the kubelet
#    says without a CNI plugin (shown, not hidden), and host-network pods run
#    anyway, from our own image, with no registry;
#  - /dev/dri/renderD128 of the node (this machine's, or the stand-in that
#    k8s_render_node makes in the node's namespace): a pod that only sees it
#    (hostPath /dev/dri) cannot open() it (the device cgroup: EPERM), a
#    privileged one can; so "open() works" in a test means the runtime was
#    told about the device;
#  - the kubelet's device-plugin socket is in the node's mount namespace at
#    the fixed path a device plugin dials, and a kubelet restart makes a new
#    one and the node comes back;
#  - teardown after a crash (kubelet and containerd killed with a pod
#    running) leaves no process, mount, cgroup or directory behind.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/k8s/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root (containerd, kubelet, mounts)"; exit 77; }
k8s_trap
fail() {
	echo "FAIL: $*" >&2
	for l in kubelet containerd; do [ -f "$K8S_ROOT/logs/$l.log" ] && grep -v '^I' "$K8S_ROOT/logs/$l.log" | tail -n 5 >&2; done
	exit 1
}
ok() { echo "ok   $*"; }

k8s_up || exit $?
kc get node "$K8S_NODE_NAME" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}Ready={.status} reason={.reason} message={.message}{end}' |
	sed 's/^/    api server: /'
echo
ok "kubelet registered $K8S_NODE_NAME ($(kc get node "$K8S_NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}, {.status.nodeInfo.containerRuntimeVersion}'))"

k8s_namespace harness-node
real=0
[ -c /dev/dri/renderD128 ] && real=1
echo "    render node: $(k8s_render_node)"
[ $real = 1 ] || [ ! -e /dev/dri/renderD128 ] || fail "the stand-in is visible in the host's /dev/dri"
out=$(k8s_open_in_pod harness-node plain /dev/dri/renderD128 --mount /dev/dri:/dev/dri) || fail "the pod did not run"
echo "    api server: $out"
case "$out" in *"exit=3 "*"Operation not permitted"*) ;; *) fail "a pod that only sees the node opened it: $out" ;; esac
ok "a pod with the stand-in render node in a hostPath cannot open() it (device cgroup: EPERM)"

kc -n harness-node apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  nodeName: $K8S_NODE_NAME
  hostNetwork: true
  restartPolicy: Never
  automountServiceAccountToken: false
  volumes: [{name: dev, hostPath: {path: /dev/dri, type: Directory}}]
  containers:
  - name: open
    image: $K8S_TEST_IMAGE
    imagePullPolicy: Never
    securityContext: {privileged: true}
    volumeMounts: [{name: dev, mountPath: /dev/dri}]
    command: ["/bin/sh", "-c", "if (exec 3<>/dev/dri/renderD128) 2>/dev/termination-log; then echo opened >/dev/termination-log; else exit 3; fi"]
EOF
k8s_wait "$K8S_DEADLINE" "privileged pod" k8s_pod_finished harness-node privileged || fail "privileged pod"
out=$(kc -n harness-node get pod privileged -o jsonpath='exit={.status.containerStatuses[0].state.terminated.exitCode} message={.status.containerStatuses[0].state.terminated.message}')
echo "    api server: $out"
[ "$out" = "exit=0 message=opened" ] || fail "a privileged pod could not open the stand-in: $out"
ok "a privileged pod opens it: open() succeeds exactly when the runtime allows the device"

sock=/var/lib/kubelet/device-plugins/kubelet.sock
k8s_in_node test -S "$sock" || fail "no $sock in the node's mount namespace"
[ -d "$K8S_ROOT/kubelet/device-plugins" ] || fail "the device-plugin directory is not under the harness root"
[ ! -e "$sock" ] || [ "$(stat -c %i "$sock")" != "$(k8s_in_node stat -c %i "$sock")" ] ||
	fail "the host's $sock is the harness's: the node's namespace is not private"
ino1=$(k8s_sock_inode)
ok "kubelet.sock at $sock in the node's namespace ($K8S_ROOT/kubelet/device-plugins)"

k8s_restart_kubelet || fail "kubelet restart"
ino2=$(k8s_sock_inode)
[ "$ino1" != "$ino2" ] || fail "kubelet.sock was not recreated by the restart"
out=$(k8s_open_in_pod harness-node after-restart /dev/null) || fail "no pod after the restart"
[ "$out" = "exit=0 message=opened" ] || fail "pod after restart: $out"
ok "kubelet restarted: a new kubelet.sock (a plugin's cue to register again), pods run"

# --- a crash: the kubelet and containerd die with a pod running -------------------
kc -n harness-node apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  nodeName: $K8S_NODE_NAME
  hostNetwork: true
  automountServiceAccountToken: false
  containers: [{name: s, image: $K8S_TEST_IMAGE, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}]
EOF
k8s_wait "$K8S_DEADLINE" "sleeper running" sh -c "[ \"\$(\"$K8S_BIN/kubectl\" --kubeconfig $KUBECONFIG_K8S -n harness-node get pod sleeper -o jsonpath='{.status.phase}')\" = Running ]" ||
	fail "sleeper did not start"
procs=$(cat /sys/fs/cgroup/pids/$K8S_CGROUP/kubepods/besteffort/pod*/*/cgroup.procs 2>/dev/null | wc -l)
[ "$procs" -gt 0 ] || fail "no container process in the harness's cgroups"
kill -KILL "$(cat "$K8S_ROOT/pids/kubelet")" "$(cat "$K8S_ROOT/pids/containerd")"
root=$K8S_ROOT
k8s_down
left=""
[ ! -e "$root" ] || left+=" $root"
for d in /sys/fs/cgroup/*/"$K8S_CGROUP"; do [ ! -e "$d" ] || left+=" $d"; done
grep -q "$root" /proc/self/mountinfo && left+=" mounts"
# Ours: in the kubelet's cgroup tree (containers), or naming the root (the
# daemons, the shims: containerd passes them its socket under the root).
# Zombies are dead already (their new parent reaps them; they hold nothing
# but a pid).
for p in /proc/[0-9]*; do
	[ "$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || continue
	if grep -q ":/$K8S_CGROUP/" "$p/cgroup" 2>/dev/null || grep -qaF "$root" "$p/cmdline" 2>/dev/null; then
		left+=" pid${p#/proc/}($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-60))"
	fi
done
[ -z "$left" ] || fail "left after teardown of a crashed node:$left"
ok "teardown after killing kubelet and containerd under a running pod: no process, cgroup, mount or directory left"
echo PASS
