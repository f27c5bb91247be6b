#!/usr/bin/env bash
# make bench-k8s: the figures of the test harness (docs/k8s-harness.md).
#  - build: the time of the last cold build of the Kubernetes programs (as
#    build.sh recorded it), or, with BENCH_K8S_COLD=1, a cold build now in an
#    empty cache (module downloads and compilation; minutes);
#  - start: warm `k8s_up` (binaries cached) with and without the node;
#  - webhook: BENCH_PODS (200) virt-launcher pods created through the real
#    API server with mesa-injector (served on the host, deployed from
#    `mesa-injector manifests --url`) and the webhook's latency as the API
#    server measures it: apiserver_admission_webhook_admission_duration_seconds
#    from its /metrics (buckets 5, 25, 100 ms...: quantiles are interpolated
#    inside them, the mean is exact), beside mesa-injector's own histogram.
# It prints figures; it does not fail on targets.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/k8s/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "bench-k8s: needs root" >&2; exit 1; }
N=${BENCH_PODS:-200}
T=$(mktemp -d /tmp/vgpuenv-bench-k8s.XXXXXX)
INJ=""
trap 'rc=$?; [ -z "$INJ" ] || kill "$INJ" 2>/dev/null || true; k8s_down; rm -rf "$T"; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${BENCH_K8S_COLD:-0}" = 1 ]; then
	cold=$T/cold-cache
	start=$(date +%s.%N)
	VGPUENV_CACHE_DIR=$cold tests/k8s/build.sh >/dev/null 2>"$T/cold.log" || { tail "$T/cold.log"; exit 1; }
	printf 'cold build (empty module and build cache, now):  %6.1f s\n' "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
	rm -rf "$cold"
fi
k8s_build
if [ -f "$K8S_BIN/../build-seconds" ]; then
	read -r secs when cores warmth <"$K8S_BIN/../build-seconds"
	printf 'build of these binaries (recorded):               %6d s  (%s, %s cores, %s)\n' "$secs" "$when" "$cores" "$warmth"
fi
k8s_up --no-node >/dev/null 2>&1
printf 'warm start, control plane (etcd, kube-apiserver): %6.1f s\n' "$K8S_UP_SECONDS"
k8s_down
k8s_up >/dev/null 2>&1
printf 'warm start, with the node (containerd, kubelet):  %6.1f s\n' "$K8S_UP_SECONDS"

# --- the webhook under the real API server -----------------------------------------
NS=kubevirt-test-default1 PORT=17443
build/mesa-injector certs --service mesa-injector --namespace mesa-injector --out "$T/certs" --ip "$K8S_ADDR" >/dev/null
printf 'vmiHook:\n  namespaces: [%s]\n' "$NS" >"$T/injector.yaml"
build/mesa-injector serve --listen "$K8S_ADDR:$PORT" --cert "$T/certs/tls.crt" --key "$T/certs/tls.key" \
	--config "$T/injector.yaml" 2>"$T/injector.log" &
INJ=$!
k8s_wait 20 mesa-injector curl -fsS --cacert "$T/certs/ca.crt" "https://$K8S_ADDR:$PORT/healthz"
k8s_namespace "$NS"
build/mesa-injector manifests --url "https://$K8S_ADDR:$PORT" --certs "$T/certs" --config "$T/injector.yaml" | kc apply -f - >/dev/null
python3 - "$N" "$NS" webhook/tests/fixtures/pod-virt-launcher.json "$T" <<'PYEOF2'
import json, sys
n, ns, src, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pod = json.load(open(src))
pod["metadata"].pop("generateName", None)
pod["metadata"]["namespace"] = ns
def items(names):
    l = []
    for name in names:
        p = json.loads(json.dumps(pod))
        p["metadata"]["name"] = name
        l.append(p)
    return {"apiVersion": "v1", "kind": "List", "items": l}
json.dump(items(["probe"]), open(f"{out}/probe.json", "w"))
json.dump(items([f"virt-launcher-bench-{i:04d}" for i in range(n)]), open(f"{out}/pods.json", "w"))
PYEOF2
active() { kc create --dry-run=server -f "$T/probe.json" -o json | grep -q '"mesa-injector.vgpuenv.io/injected"'; }
k8s_wait 30 "the API server calling mesa-injector" active
kc get --raw /metrics >"$T/before.prom"
curl -fsS --cacert "$T/certs/ca.crt" "https://$K8S_ADDR:$PORT/metrics" >"$T/inj-before.prom"
start=$(date +%s.%N)
kc create -f "$T/pods.json" >/dev/null
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
kc get --raw /metrics >"$T/after.prom"
curl -fsS --cacert "$T/certs/ca.crt" "https://$K8S_ADDR:$PORT/metrics" >"$T/inj-after.prom"
stored=$(kc -n "$NS" get pods -o json | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if (p["metadata"].get("annotations") or {}).get("mesa-injector.vgpuenv.io/injected")))')
echo "pods created: $N in ${wall}s by one kubectl create; stored with the webhook's annotation: $stored"
printf 'webhook latency, API server (apiserver_admission_webhook_admission_duration_seconds):\n  '
python3 tests/k8s/k8stool.py quantiles --minus "$T/before.prom" "$T/after.prom" \
	apiserver_admission_webhook_admission_duration_seconds name=pods.mesa-injector.vgpuenv.io type=admit 0.5 0.99
printf 'pod create, whole request (apiserver_request_duration_seconds, POST pods):\n  '
python3 tests/k8s/k8stool.py quantiles --minus "$T/before.prom" "$T/after.prom" \
	apiserver_request_duration_seconds verb=POST resource=pods 0.5 0.99
printf 'mesa-injector, its own histogram (mesa_injector_request_duration_seconds):\n  '
python3 tests/k8s/k8stool.py quantiles --minus "$T/inj-before.prom" "$T/inj-after.prom" \
	mesa_injector_request_duration_seconds route=/mutate-pods 0.5 0.99
