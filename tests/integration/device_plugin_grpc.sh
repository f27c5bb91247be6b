#!/usr/bin/env bash
# mesa-injector's kubelet device plugin over real gRPC: python3-grpcio plays
# the kubelet (webhook/tests/kubelet_peer.py, after the kubelet's device
# manager), with stubs that python3-grpc-tools generates from our
# webhook/device_plugin_api.proto right here. Registration, ListAndWatch and
# its updates as a stand-in render node (a character device under a
# temporary deviceRoot) comes and goes, Allocate for one and several
# devices, preferred allocation, a kubelet restart, a kubelet that is late,
# refuses or hangs, malformed and unknown requests, SIGTERM.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
MI=${MESA_INJECTOR:-build/mesa-injector}
[ -x "$MI" ] && [ -x "$(dirname "$MI")/mesa-injector-device-plugin" ] ||
	fail "$MI and mesa-injector-device-plugin not built (run make)"
PY=/usr/bin/python3
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null ||
	fail "python3-grpcio and python3-grpc-tools are needed (make deps)"
[ "$(id -u)" -eq 0 ] || skip "needs root (mknod for the stand-in render node)"
T=$(mktemp -d /tmp/dp-grpc.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" -m grpc_tools.protoc -Iwebhook --python_out="$T" --grpc_python_out="$T" \
	webhook/device_plugin_api.proto || fail "grpc_tools could not compile our .proto"
"$PY" webhook/tests/device_plugin_test.py "$MI" "$T" "$T"
