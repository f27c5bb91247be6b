#!/usr/bin/env bash
# make bench-device-plugin: Allocate latency (p50/p99) of the device plugin
# against the python3-grpcio kubelet peer; see device_plugin_bench.py.
# Environment: BENCH_CALLS (3000 per measurement). Needs root (mknod).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MI=${MESA_INJECTOR:-$BUILD/mesa-injector}
[ -x "$(dirname "$MI")/mesa-injector-device-plugin" ] || { echo "bench-device-plugin: not built" >&2; exit 1; }
D=$(mktemp -d /tmp/bench-dp.XXXXXX)
trap 'rm -rf "$D"' EXIT
/usr/bin/python3 -m grpc_tools.protoc -Iwebhook --python_out="$D" --grpc_python_out="$D" webhook/device_plugin_api.proto
/usr/bin/python3 webhook/bench/device_plugin_bench.py "$MI" "$D" "$D" "${BENCH_CALLS:-3000}"
