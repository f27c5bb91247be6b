#!/usr/bin/env bash
# mesa-injector's hook sidecar over real gRPC: python3-grpcio plays
# virt-launcher's hook manager (webhook/tests/hook_launcher_peer.py, after
# kubevirt's pkg/hooks/manager.go), with stubs that python3-grpc-tools
# generates from our webhook/hook_info.proto and hook_callbacks.proto right
# here, in the socket layout virt-controller gives a virt-launcher pod:
# Collect, Info, OnDefineDomain on each API version, two sidecars, the
# socket-name control, bad requests, Shutdown, SIGTERM, bad command lines.
set -eu
cd "$(dirname "$0")/../.."
MI=${MESA_INJECTOR:-build/mesa-injector}
[ -x "$MI" ] && [ -x "$(dirname "$MI")/mesa-injector-hook-sidecar" ] ||
	{ echo "FAIL: $MI and mesa-injector-hook-sidecar not built (run make)"; exit 1; }
PY=/usr/bin/python3
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null ||
	{ echo "FAIL: python3-grpcio and python3-grpc-tools are needed (make deps)"; exit 1; }
T=$(mktemp -d /tmp/hook-sidecar.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" -m grpc_tools.protoc -Iwebhook --python_out="$T" --grpc_python_out="$T" \
	webhook/hook_info.proto webhook/hook_callbacks.proto ||
	{ echo "FAIL: grpc_tools could not compile our .proto files"; exit 1; }
"$PY" webhook/tests/hook_sidecar_test.py "$MI" "$T" "$T"
