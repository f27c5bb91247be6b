#!/usr/bin/env bash
# mesa-injector's device plugin registered with the real kubelet of the test
# harness (tests/k8s/), against the render node of this machine: the real
# /dev/dri/renderD128 when there is one (a node VM with virtio-gpu), else the
# harness's stand-in (k8s_render_node: a character device in the node's
# mount namespace that no runtime allows by default).
#  - the plugin, run in the node's mount namespace where the kubelet's
#    device-plugin directory is, registers: the node's allocatable, as the
#    API server stores it, shows the resource;
#  - a pod that requests the resource is admitted by the kubelet and its
#    container open()s /dev/dri/renderD128; a pod that sees the node through
#    a hostPath but does not request it cannot (EPERM, the device cgroup);
#  - a kubelet restart makes the plugin register again (allocatable back,
#    a new pod with the resource opens the device).
# The resource name is the one this test configures the plugin with (dp_config
# below, the one place); the plugin's own flags are those of its usage line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/common.sh
. tests/k8s/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the harness needs root (containerd, kubelet, mounts)"; exit 77; }
[ -x build/mesa-injector-device-plugin ] || {
	echo "SKIP: build/mesa-injector-device-plugin is not built (mesa-injector device-plugin is not in this tree yet)"
	exit 77
}
T=$(mktemp -d /tmp/vgpuenv-k8s-dp.XXXXXX)
trap 'rc=$?; k8s_down; rm -rf "$T"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A failure shows the plugin's last words (fail: tests/lib/common.sh).
on_fail() { [ -f "$K8S_ROOT/logs/device-plugin.log" ] && tail -n 10 "$K8S_ROOT/logs/device-plugin.log"; }

RES=vgpuenv.io/render
dp_config() {
	cat <<EOF
devicePlugin:
  resourceName: $RES
  deviceGlob: /dev/dri/renderD*
EOF
}
dp_config >"$T/dp.yaml"

k8s_up || exit $?
echo "    render node: $(k8s_render_node)"
k8s_namespace dp-test
allocatable() { kc get node "$K8S_NODE_NAME" -o jsonpath="{.status.allocatable.${RES//./\\.}}"; }
advertised() { local n; n=$(allocatable) && [ -n "$n" ] && [ "$n" -gt 0 ]; }

# The plugin where the kubelet is: /var/lib/kubelet/device-plugins of the
# node's mount namespace (the kubelet's fixed path) and its /dev/dri.
k8s_spawn_in_node device-plugin "$PWD/build/mesa-injector" device-plugin --config "$T/dp.yaml"
k8s_wait 60 "the node advertising $RES" advertised || fail "the plugin did not register"
echo "    api server: allocatable $RES=$(allocatable), capacity $(kc get node "$K8S_NODE_NAME" -o jsonpath="{.status.capacity.${RES//./\\.}}")"
ok "the kubelet registered the plugin: the node advertises $RES"

out=$(k8s_open_in_pod dp-test with-resource /dev/dri/renderD128 --limit "$RES") || fail "the pod requesting $RES did not run"
echo "    api server: $out"
[ "$out" = "exit=0 message=opened" ] || fail "a pod requesting $RES could not open the render node: $out"
ok "a pod requesting $RES opens /dev/dri/renderD128"

out=$(k8s_open_in_pod dp-test without-resource /dev/dri/renderD128 --mount /dev/dri:/dev/dri) || fail "the pod without the request did not run"
echo "    api server: $out"
case "$out" in *"exit=3 "*"Operation not permitted"*) ;; *) fail "a pod without the request opened the render node: $out" ;; esac
ok "a pod that only mounts /dev/dri cannot open it (EPERM)"

k8s_restart_kubelet || fail "kubelet restart"
# Until the plugin registers with the new kubelet, the kubelet refuses pods
# that request the resource (UnexpectedAdmissionError): try for a minute.
end=$(($(date +%s) + 60)) i=0
while :; do
	i=$((i + 1))
	out=$(k8s_open_in_pod dp-test "after-restart-$i" /dev/dri/renderD128 --limit "$RES") || fail "no pod after the restart"
	echo "    api server: $out"
	[ "$out" = "exit=0 message=opened" ] && break
	case "$out" in "exit= message="*) ;; *) fail "after the restart: $out" ;; esac
	[ "$(date +%s)" -lt "$end" ] || fail "the plugin did not register again within 60 s"
	sleep 2
done
ok "after a kubelet restart the plugin registered again and pods get the device"
echo PASS
