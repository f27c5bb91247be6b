# Shared by tests/integration/webhook_*.sh: a scratch directory, a real
# mesa-injector on a loopback port with fresh certificates, and helpers to
# post AdmissionReviews with curl and check answers with python3-jsonpatch.
# Sourced, not run (it lives outside tests/integration/ for that reason).

. "$(dirname "${BASH_SOURCE[0]}")/../../tests/lib/common.sh"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
MI=${MESA_INJECTOR:-$BUILD/mesa-injector}
# Debian's python3 with python3-jsonpatch and python3-yaml (make deps);
# another python3 on PATH only if it has both.
PY=
for cand in /usr/bin/python3 python3; do
	if "$cand" -c 'import jsonpatch, yaml' 2>/dev/null; then
		PY=$cand
		break
	fi
done
[ -n "$PY" ] || { echo "FAIL: python3 with jsonpatch and yaml is needed (make deps: python3-jsonpatch python3-yaml)"; exit 1; }
TOOL="$PY $ROOT/webhook/tests/admission_tool.py"
FIX=$ROOT/webhook/tests/fixtures
SVC=mesa-injector
NS=mesa-injector
SNI=$SVC.$NS.svc

[ -x "$MI" ] || { echo "FAIL: $MI not built (run make)"; exit 1; }
WORK=$(mktemp -d /tmp/webhook-test.XXXXXX)
SERVER_PIDS=()
# Servers must exit 0 on SIGTERM: under `make test-asan` a leak or a
# sanitizer report turns into a non-zero exit, which fails the test here.
cleanup() {
	local rc=$? p st bad=0
	for p in "${SERVER_PIDS[@]}"; do
		if kill "$p" 2>/dev/null; then
			st=0
			wait "$p" 2>/dev/null || st=$?
			if [ $st -ne 0 ]; then
				echo "FAIL: mesa-injector (pid $p) exited $st after SIGTERM"
				bad=1
			fi
		fi
	done
	if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/server*.log 2>/dev/null; then
		grep -h -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/server*.log | head -60
		bad=1
	fi
	rm -rf "$WORK"
	[ $bad -eq 0 ] || exit 1
	exit $rc
}
trap cleanup EXIT

# fail (tests/lib/common.sh) shows the servers' last words first.
on_fail() {
	local f
	for f in "$WORK"/server*.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
	done
	return 0
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_certs DIR: CA + serving pair for $SVC.$NS with 127.0.0.1 as IP SAN.
make_certs() {
	"$MI" certs --service "$SVC" --namespace "$NS" --out "$1" --ip 127.0.0.1 2>/dev/null ||
		fail "mesa-injector certs failed"
}

# start_server [CONFIG]: serve on a free port with the pair in $CERT_DIR
# (default $WORK/certs, whose ca.crt the clients trust); sets PORT, URL,
# SERVER_PID, LOG.
start_server() {
	[ -d "$WORK/certs" ] || make_certs "$WORK/certs"
	local dir=${CERT_DIR:-$WORK/certs}
	PORT=${SERVER_PORT:-$(free_port)} # SERVER_PORT: a given port (a restart)
	URL=https://127.0.0.1:$PORT
	LOG=$WORK/server-$PORT.log
	local cfg=()
	[ $# -ge 1 ] && [ -n "$1" ] && cfg=(--config "$1")
	"$MI" serve --listen "127.0.0.1:$PORT" --cert "$dir/tls.crt" --key "$dir/tls.key" \
		"${cfg[@]}" 2>"$LOG" &
	SERVER_PID=$!
	SERVER_PIDS+=("$SERVER_PID")
	for _ in $(seq 100); do
		curl -sf --cacert "$WORK/certs/ca.crt" "$URL/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited: $(cat "$LOG")"
		sleep 0.05
	done
	fail "server did not answer /healthz within 5s"
}

# curl with the CA and the in-cluster name, like the API server would.
mcurl() {
	curl -sS --cacert "$WORK/certs/ca.crt" --resolve "$SNI:$PORT:127.0.0.1" "$@"
}

# review KIND OBJECT ROUTE EXPECT [NAMESPACE]: wrap, post with curl, check
# and apply; the patched object lands in $WORK/out.json, the ops in
# $WORK/ops.json.
review() {
	local kind=$1 obj=$2 route=$3 expect=$4 ns=${5:-}
	local nsarg=()
	[ -n "$ns" ] && nsarg=(--namespace "$ns")
	$TOOL wrap "$kind" "$obj" "${nsarg[@]}" >"$WORK/req.json"
	local code
	code=$(mcurl -o "$WORK/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary @"$WORK/req.json" "https://$SNI:$PORT$route") || fail "curl $route failed"
	[ "$code" = 200 ] || fail "$route answered $code: $(cat "$WORK/resp.json")"
	rm -f "$WORK/ops.json"
	$TOOL apply "$WORK/req.json" "$WORK/resp.json" --expect "$expect" --ops-out "$WORK/ops.json" \
		>"$WORK/out.json" || fail "response check failed for $obj on $route (expected $expect)"
}

# pyassert FILE EXPR: evaluate a Python expression with o = the JSON in FILE.
pyassert() {
	$PY - "$1" "$2" <<'EOF' || fail "assertion failed: $2"
import json, sys
o = json.load(open(sys.argv[1]))
if not eval("(" + sys.argv[2] + "\n)"):
    sys.exit(1)
EOF
}

# pyedit IN OUT STATEMENTS: OUT is the JSON of IN after the Python
# statements ran on it as p (a variant of a fixture).
pyedit() {
	$PY - "$1" "$3" >"$2" <<'EOF' || fail "cannot derive $2 from $1"
import json, sys
p = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(p, sys.stdout)
EOF
}

# review_variant NAME EDIT EXPECT [ASSERT]: the virt-launcher pod fixture after
# EDIT (as pyedit runs it) in $WORK/NAME.json, reviewed on /mutate-pods with
# the decision EXPECT; then the pyassert ASSERT on $WORK/out.json, if given.
review_variant() {
	pyedit "$FIX/pod-virt-launcher.json" "$WORK/$1.json" "$2"
	review pod "$WORK/$1.json" /mutate-pods "$3"
	[ -z "${4:-}" ] || pyassert "$WORK/out.json" "$4"
}

build_goclient() {
	GOCLIENT=$BUILD/webhook-goclient
	local go=/usr/lib/go-1.19/bin/go
	if [ ! -x "$go" ]; then
		go=$(command -v go || true)
	fi
	[ -n "$go" ] || fail "Go 1.19 is missing (make deps installs golang-1.19-go)"
	if [ ! -x "$GOCLIENT" ] || [ webhook/tests/goclient/main.go -nt "$GOCLIENT" ]; then
		mkdir -p "$BUILD/go"
		GO111MODULE=off GOFLAGS= GOCACHE=$ROOT/$BUILD/go/cache GOPATH=$ROOT/$BUILD/go/path \
			"$go" build -o "$GOCLIENT" webhook/tests/goclient/main.go || fail "go build failed"
	fi
}
