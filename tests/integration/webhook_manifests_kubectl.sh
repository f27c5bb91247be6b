#!/usr/bin/env bash
# `mesa-injector manifests` through kubectl (Debian's kubernetes-client):
# `kubectl apply --dry-run=client` maps and accepts every object of the
# output (in-cluster, with a config, URL mode) against a stand-in API
# server whose discovery is generated from upstream's OpenAPI documents
# (webhook/tests/apiserver_standin.py), and every object is valid under
# upstream's OpenAPI v3 schema of its kind, unknown fields refused
# (webhook/tests/schema_check.py, python3-jsonschema). kubectl's own schema
# validation needs the server's OpenAPI, which only a real kube-apiserver
# serves (kubectl 1.20 reads it as protobuf), hence --validate=false and the
# separate schema check. Two broken manifests show both checks can fail.
# The OpenAPI documents come from the k8s.io/kubernetes v1.36.3 module
# (Go module cache, shared with the image cache directory).
source "$(dirname "$0")/../../webhook/tests/lib.sh"

KUBECTL=$(command -v kubectl || true)
[ -n "$KUBECTL" ] || fail "kubectl is missing (make deps: kubernetes-client)"
"$PY" -c 'import jsonschema' 2>/dev/null || fail "python3-jsonschema is missing (make deps)"
go=/usr/lib/go-1.19/bin/go
[ -x "$go" ] || go=$(command -v go || true)
[ -n "$go" ] || fail "Go is missing (make deps: golang-1.19-go)"
export GOMODCACHE=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}/go/mod GOFLAGS=-mod=mod GO111MODULE=on
mkdir -p "$GOMODCACHE"
dir=$(cd "$WORK" && timeout 900 "$go" mod download -json k8s.io/kubernetes@v1.36.3 |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
	fail "go mod download k8s.io/kubernetes@v1.36.3 failed (the Go module proxy must be reachable)"
V3=$dir/api/openapi-spec/v3
[ -f "$V3/apis__apps__v1_openapi.json" ] || fail "no OpenAPI v3 documents in $dir"

"$PY" "$ROOT/webhook/tests/apiserver_standin.py" "$V3" "$WORK/port" "$WORK/requests.log" 2>"$WORK/server-standin.log" &
SERVER_PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || fail "the stand-in API server did not start: $(cat "$WORK/server-standin.log")"
cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: standin, cluster: {server: "http://127.0.0.1:$(cat "$WORK/port")"}}]
users: [{name: nobody, user: {}}]
contexts: [{name: standin, context: {cluster: standin, user: nobody}}]
current-context: standin
EOF
export KUBECONFIG=$WORK/kubeconfig

# dry_run NAME FILE: kubectl accepts every object, writes nothing, and the
# objects pass upstream's schema.
dry_run() {
	local name=$1 file=$2 n
	n=$("$PY" -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$file")
	: >"$WORK/requests.log"
	"$KUBECTL" apply --dry-run=client --validate=false -f "$file" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
		fail "kubectl apply --dry-run=client refused the $name manifests: $(cat "$WORK/$name.err")"
	[ "$(grep -c 'created (dry run)' "$WORK/$name.out")" = "$n" ] ||
		fail "$name: kubectl did not accept all $n objects: $(cat "$WORK/$name.out" "$WORK/$name.err")"
	grep -Eq '^(POST|PUT|PATCH|DELETE) ' "$WORK/requests.log" && fail "$name: a client dry run wrote: $(cat "$WORK/requests.log")"
	[ "$(grep -Ec '^GET /api(s/[^ ]+)?/v1/(namespaces/[^/ ]+/)?[a-z]+/[^/ ]+ 404$' "$WORK/requests.log")" -ge "$n" ] ||
		fail "$name: kubectl did not look each object up: $(cat "$WORK/requests.log")"
	"$PY" "$ROOT/webhook/tests/schema_check.py" "$V3" "$file" >"$WORK/$name.schema" 2>&1 ||
		fail "$name: upstream's schema refuses: $(grep FAIL "$WORK/$name.schema")"
	echo "    $name: $n objects: $(sed 's/ (dry run)//; s/ created//' "$WORK/$name.out" | tr '\n' ' ')"
}

"$MI" manifests >"$WORK/default.yaml" 2>"$WORK/err" || fail "manifests: $(cat "$WORK/err")"
dry_run in-cluster "$WORK/default.yaml"
grep -q '^daemonset.apps/mesa-injector-device-plugin' "$WORK/in-cluster.out" || fail "no DaemonSet among $(cat "$WORK/in-cluster.out")"
# What kubectl would touch: nothing in the suite's kubevirt-test-* namespaces.
grep -E '^GET /api(s/[^ ]+)?/v1/namespaces/kubevirt-test' "$WORK/requests.log" &&
	fail "kubectl looked up objects in kubevirt-test-*"
ok "in-cluster manifests (with the device plugin's DaemonSet): kubectl accepts every object, upstream's schema too; none in kubevirt-test-*"

cat >"$WORK/cfg.yaml" <<'EOF'
failurePolicy: Fail
mode: cdi
deploy: {namespace: gpu-system}
devicePlugin: {nodeSelector: {gpu: "yes"}, sharesPerNode: 8}
EOF
"$MI" manifests --config "$WORK/cfg.yaml" >"$WORK/cfg-out.yaml" 2>"$WORK/err" || fail "manifests --config: $(cat "$WORK/err")"
dry_run config "$WORK/cfg-out.yaml"
"$MI" certs --service "$SVC" --namespace "$NS" --out "$WORK/c" --ip 192.168.171.1 2>/dev/null || fail "certs"
"$MI" manifests --url https://192.168.171.1:9443 --certs "$WORK/c" >"$WORK/url.yaml" 2>"$WORK/err" ||
	fail "manifests --url: $(cat "$WORK/err")"
dry_run url "$WORK/url.yaml"
ok "with a config (its ConfigMap mounted by both), and in URL mode (Namespace, DaemonSet, MWC): accepted"

# The checks can fail: a misspelt field, and a kind no server has.
sed 's/imagePullPolicy:/imagePullPolcy:/' "$WORK/default.yaml" >"$WORK/typo.yaml"
"$PY" "$ROOT/webhook/tests/schema_check.py" "$V3" "$WORK/typo.yaml" >"$WORK/typo.out" 2>&1 &&
	fail "schema check accepted imagePullPolcy"
grep -q "imagePullPolcy" "$WORK/typo.out" || fail "schema check: $(cat "$WORK/typo.out")"
sed 's/^kind: DaemonSet$/kind: DaemonSett/' "$WORK/default.yaml" >"$WORK/kind.yaml"
"$KUBECTL" apply --dry-run=client --validate=false -f "$WORK/kind.yaml" >"$WORK/kind.out" 2>&1 &&
	fail "kubectl accepted kind DaemonSett"
grep -q "DaemonSett" "$WORK/kind.out" || fail "kubectl: $(cat "$WORK/kind.out")"
ok "controls: a misspelt field fails the schema check, an unknown kind fails kubectl"
echo "PASS: $CHECKS checks"
