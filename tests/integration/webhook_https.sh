#!/usr/bin/env bash
# mesa-injector over real HTTPS on loopback: curl and a Go crypto/tls client
# (verifying like the API server), every patch applied with python3-jsonpatch
# to realistic virt-launcher pod and VMI JSON, re-application yields no
# patch, and the patch-shape rules (whole arrays, ~1 escaping, clashes).
# The render node comes from the device plugin: compute gets its resource
# (vgpuenv.io/render) in limits and requests, never a /dev hostPath or a
# cdi.k8s.io pod annotation.
source "$(dirname "$0")/../../webhook/tests/lib.sh"

start_server

# ---- probes and TLS ----------------------------------------------------------
[ "$(mcurl "https://$SNI:$PORT/healthz")" = ok ] || fail "/healthz"
[ "$(mcurl "https://$SNI:$PORT/readyz")" = ok ] || fail "/readyz"
ok "healthz and readyz over TLS with the CA and the service name"
if curl -sS -o /dev/null --cacert "$WORK/certs/ca.crt" --resolve "wrong.$NS.svc:$PORT:127.0.0.1" \
	"https://wrong.$NS.svc:$PORT/healthz" 2>/dev/null; then
	fail "a name outside the certificate's SANs was accepted"
fi
ok "curl refuses a name the certificate does not carry"
if curl -sS -o /dev/null -k --tls-max 1.1 "$URL/healthz" 2>/dev/null; then
	fail "TLS 1.1 was accepted"
fi
ok "TLS 1.1 refused"
v=$(mcurl -o /dev/null -w '%{ssl_verify_result}' --tlsv1.2 --tls-max 1.2 "https://$SNI:$PORT/healthz")
[ "$v" = 0 ] || fail "TLS 1.2 handshake did not verify ($v)"
ok "TLS 1.2 accepted"

# ---- pods --------------------------------------------------------------------
review pod "$FIX/pod-virt-launcher.json" /mutate-pods patched
cp "$WORK/out.json" "$WORK/pod1.json"
pyassert "$WORK/pod1.json" '
[c for c in o["spec"]["containers"] if c["name"] == "compute"][0]["volumeMounts"][:7] ==
  json.load(open("'"$FIX"'/pod-virt-launcher.json"))["spec"]["containers"][0]["volumeMounts"]'
pyassert "$WORK/pod1.json" '
all(m["readOnly"] is True for m in o["spec"]["containers"][0]["volumeMounts"][7:])'
pyassert "$WORK/pod1.json" '
{m["mountPath"] for m in o["spec"]["containers"][0]["volumeMounts"]} >= {
  "/usr/lib/x86_64-linux-gnu/libGL.so.1", "/usr/lib/x86_64-linux-gnu/libEGL.so.1",
  "/usr/lib/x86_64-linux-gnu/libGLESv2.so.2", "/usr/lib/x86_64-linux-gnu/libGLX.so.0",
  "/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0", "/usr/lib/x86_64-linux-gnu/libGLX_mesa.so.0",
  "/usr/lib/x86_64-linux-gnu/libgbm.so.1", "/usr/lib/x86_64-linux-gnu/libglapi.so.0",
  "/usr/lib/x86_64-linux-gnu/libdrm.so.2", "/usr/lib/x86_64-linux-gnu/dri",
  "/usr/share/glvnd/egl_vendor.d"}'
pyassert "$WORK/pod1.json" '
all(v["hostPath"]["path"] == m["mountPath"] for v in o["spec"]["volumes"] if "hostPath" in v
    for m in o["spec"]["containers"][0]["volumeMounts"] if m["name"] == v["name"])'
pyassert "$WORK/pod1.json" '
not [v for v in o["spec"]["volumes"] if v.get("hostPath", {}).get("path", "").startswith("/dev")] and
not [m for m in o["spec"]["containers"][0]["volumeMounts"] if m["mountPath"].startswith("/dev/dri")]'
pyassert "$WORK/pod1.json" '
not [k for k in o["metadata"]["annotations"] if k.startswith("cdi.k8s.io/")]'
# Exactly one new extended resource, in limits and in requests (which the
# fixture has); the rest of resources untouched.
pyassert "$WORK/pod1.json" '
(lambda r, r0: r["limits"] == dict(r0["limits"], **{"vgpuenv.io/render": "1"}) and
               r["requests"] == dict(r0["requests"], **{"vgpuenv.io/render": "1"}))(
  o["spec"]["containers"][0]["resources"],
  json.load(open("'"$FIX"'/pod-virt-launcher.json"))["spec"]["containers"][0]["resources"])'
pyassert "$WORK/pod1.json" '
o["spec"]["containers"][1:] == json.load(open("'"$FIX"'/pod-virt-launcher.json"))["spec"]["containers"][1:]'
pyassert "$WORK/pod1.json" 'o["metadata"]["annotations"]["mesa-injector.vgpuenv.io/injected"] == "hostpath"'
pyassert "$WORK/ops.json" 'all(op["op"] == "add" for op in o)'
pyassert "$WORK/ops.json" '"/metadata/annotations/mesa-injector.vgpuenv.io~1injected" in [op["path"] for op in o]'
pyassert "$WORK/ops.json" '[op["path"] for op in o if "/resources" in op["path"]] == [
  "/spec/containers/0/resources/limits/vgpuenv.io~1render", "/spec/containers/0/resources/requests/vgpuenv.io~1render"]'
ok "virt-launcher pod: read-only library mounts and one vgpuenv.io/render limit (and request) in compute only; no /dev/dri, no cdi.k8s.io annotation; other containers untouched (jsonpatch applied)"

review pod "$WORK/pod1.json" /mutate-pods unchanged
ok "re-applying the webhook to its own output yields no patch"

# A second pod of the same shape is answered from the patch cache: the
# patch must apply and give the same result.
review pod "$FIX/pod-virt-launcher.json" /mutate-pods patched
cmp -s "$WORK/out.json" "$WORK/pod1.json" || fail "cached patch gives a different pod"
ok "a second pod of the same shape (cached patch) ends up identical"

# A pod with no volumes, no mounts and no annotations: arrays/maps added whole.
review_variant bare 'del p["spec"]["volumes"]; del p["metadata"]["annotations"]
c = p["spec"]["containers"][0]; del c["volumeMounts"]; del c["resources"]' patched
pyassert "$WORK/ops.json" '[op["path"] for op in o] == ["/spec/volumes", "/spec/containers/0/volumeMounts", "/spec/containers/0/resources", "/metadata/annotations"]'
pyassert "$WORK/out.json" 'o["spec"]["containers"][0]["resources"] == {"limits": {"vgpuenv.io/render": "1"}}'
cp "$WORK/out.json" "$WORK/bare1.json"
review pod "$WORK/bare1.json" /mutate-pods unchanged
ok "missing volumes/volumeMounts/resources/annotations are created whole (limits only: no requests to match); idempotent afterwards"

# compute not first: the pointer must index the right container.
review_variant order 'p["spec"]["containers"].reverse()' patched \
	'len(o["spec"]["containers"][2]["volumeMounts"]) > 7 and len(o["spec"]["containers"][0]["volumeMounts"]) == 1'
ok "compute found at index 2"

# A clash: our volume name bound to another source.
review_variant clash 'p["spec"]["volumes"].append({"name": "mesa-usr-share-glvnd-egl-vendor-d", "emptyDir": {}})' denied \
	'o["code"] == 409 and "mesa-usr-share-glvnd-egl-vendor-d" in o["message"]'
review_variant clash2 'p["spec"]["containers"][0]["resources"]["limits"]["vgpuenv.io/render"] = "2"' denied \
	'o["code"] == 409 and "vgpuenv.io/render" in o["message"]'
ok "a volume name clash and another quantity of our resource are reported (409), not overwritten"

# Not selected: no label, or an excluded namespace.
review_variant plain 'p["metadata"]["labels"] = {"app": "nginx"}' unchanged
review pod "$FIX/pod-virt-launcher.json" /mutate-pods unchanged kube-system
ok "non-matching pods (labels, kube-system) are allowed without a patch"

# ---- gzip: the same AdmissionReview, a tenth of the bytes ---------------------
$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid gz-1 >"$WORK/gzreq.json"
for enc in identity gzip; do
	ae=()
	[ $enc = gzip ] && ae=(-H 'Accept-Encoding: gzip')
	curl -s --cacert "$WORK/certs/ca.crt" --resolve "$SNI:$PORT:127.0.0.1" -H 'Content-Type: application/json' \
		"${ae[@]}" -D "$WORK/h-$enc" -o "$WORK/b-$enc" \
		--data-binary @"$WORK/gzreq.json" "https://$SNI:$PORT/mutate-pods" || fail "curl $enc"
done
grep -qi '^content-encoding: gzip' "$WORK/h-gzip" || fail "no gzip answer to Accept-Encoding: gzip: $(cat "$WORK/h-gzip")"
grep -qi '^content-encoding' "$WORK/h-identity" && fail "gzip answer to a client that did not ask"
grep -qi '^vary: accept-encoding' "$WORK/h-gzip" || fail "no Vary: Accept-Encoding"
python3 - "$WORK/b-identity" "$WORK/b-gzip" <<'PY' || fail "gzip answer differs from the identity answer"
import gzip, sys
plain, gz = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert gzip.decompress(gz) == plain, "different JSON"
assert len(gz) * 5 < len(plain), (len(gz), len(plain))
print("identity %d bytes, gzip %d bytes" % (len(plain), len(gz)), file=sys.stderr)
PY
$TOOL apply "$WORK/gzreq.json" "$WORK/b-identity" --expect patched >/dev/null || fail "identity answer"
build_goclient
"$GOCLIENT" review -url "https://127.0.0.1:$PORT/mutate-pods" -ca "$WORK/certs/ca.crt" -servername "$SNI" \
	-body "$WORK/gzreq.json" >"$WORK/gzgo.json" 2>"$WORK/gzgo.err" || fail "Go client: $(cat "$WORK/gzgo.err")"
grep -q "gzip true" "$WORK/gzgo.err" || fail "Go's net/http did not get a gzip answer: $(cat "$WORK/gzgo.err")"
cmp -s "$WORK/gzgo.json" "$WORK/b-identity" || fail "Go client's decoded answer differs from the identity answer"
ok "Accept-Encoding: gzip gets the same review as gzip (Python's gzip and Go's net/http decode it), others get identity"
# Every record of an answer but the last leaves with MSG_MORE, and whatever
# is still held when libmicrohttpd is done is pushed: a record left held
# would wait for Linux's 200 ms timer. Three shapes: a gzip answer (head +
# one body record), an identity answer (head + two body records) and HEAD
# answers (a head only, fewer records than counted: the push-out path).
keepalive_20() { # what, curl args...; sets KA_TOTAL (seconds for all 20)
	local what=$1 t
	shift
	t=$(curl -s --cacert "$WORK/certs/ca.crt" --resolve "$SNI:$PORT:127.0.0.1" \
		-w '%{http_code} %{num_connects} %{time_total}\n' "$@")
	[ "$(echo "$t" | grep -c '^200 ')" = 20 ] || fail "$what keep-alive answers: $t"
	[ "$(echo "$t" | awk '{c += $2} END {print c}')" = 1 ] || fail "20 $what requests did not share one connection: $t"
	KA_TOTAL=$(echo "$t" | awk '{s += $3} END {printf "%.3f", s}')
	awk -v s="$KA_TOTAL" 'BEGIN {exit !(s < 2)}' ||
		fail "20 $what keep-alive answers took ${KA_TOTAL}s (a record left held?)"
}
urls=()
for _ in $(seq 20); do urls+=(-o /dev/null "https://$SNI:$PORT/mutate-pods"); done
keepalive_20 gzip -H 'Content-Type: application/json' -H 'Accept-Encoding: gzip' \
	--data-binary @"$WORK/gzreq.json" "${urls[@]}"
tg=$KA_TOTAL
keepalive_20 identity -H 'Content-Type: application/json' --data-binary @"$WORK/gzreq.json" "${urls[@]}"
ti=$KA_TOTAL
urls=()
for _ in $(seq 20); do urls+=(-o /dev/null "https://$SNI:$PORT/healthz"); done
keepalive_20 HEAD -I "${urls[@]}"
th=$KA_TOTAL
ok "20 answers on one keep-alive connection: gzip ${tg}s, identity ${ti}s, HEAD ${th}s: no answer held back"

# Requests cut into many TLS records that arrive together, two pipelined
# per round: the server reads records ahead of GnuTLS, and what it holds
# must be read without waiting for another packet. Also with a 200 KB body
# (records of 16 KB).
r=$($PY "$ROOT/webhook/tests/rawclient.py" records "$PORT" "$WORK/certs/ca.crt" "$SNI" "$WORK/gzreq.json" 20 2>&1) ||
	fail "pipelined multi-record requests: $r"
python3 - "$WORK/gzreq.json" >"$WORK/bigreq.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["request"]["object"]["metadata"].setdefault("annotations", {})["padding"] = "x" * 200000
print(json.dumps(d, separators=(",", ":")))
PY
r=$($PY "$ROOT/webhook/tests/rawclient.py" records "$PORT" "$WORK/certs/ca.crt" "$SNI" "$WORK/bigreq.json" 5 2>&1) ||
	fail "pipelined 200 KB requests: $r"
ok "pipelined requests in many TLS records, 5 KB and 200 KB: every answer arrives"

# A client that sends 2000 pipelined reviews and reads nothing for 3 s: its
# answers back up until the socket refuses more, and the server must wait
# for it without blocking anyone else, then deliver every answer.
$PY "$ROOT/webhook/tests/rawclient.py" unread "$PORT" "$WORK/certs/ca.crt" "$SNI" "$WORK/gzreq.json" 2000 \
	>"$WORK/unread.out" 2>&1 &
unread=$!
sleep 1.5
t=$(mcurl -o /dev/null -w '%{time_total}' "https://$SNI:$PORT/healthz")
awk -v s="$t" 'BEGIN {exit !(s < 1)}' || fail "healthz took ${t}s while a client left its answers unread"
wait $unread || fail "unread client: $(cat "$WORK/unread.out")"
grep -qx 'answers 2000' "$WORK/unread.out" || fail "unread client: $(cat "$WORK/unread.out")"
ok "a client that leaves 2000 answers unread for 3 s blocks no one (healthz in ${t}s) and then gets them all"

# ---- VMIs --------------------------------------------------------------------
review vmi "$FIX/vmi-gpu.json" /mutate-vmis patched
cp "$WORK/out.json" "$WORK/vmi1.json"
pyassert "$WORK/vmi1.json" '
json.loads(o["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"]) == [{
  "image": "localhost/vgpuenv/mesa-injector:latest", "imagePullPolicy": "IfNotPresent",
  "command": ["/usr/local/bin/mesa-injector-hook-sidecar"], "args": ["--render-node", "/dev/dri/renderD128"]}]'
pyassert "$WORK/vmi1.json" 'o["spec"] == json.load(open("'"$FIX"'/vmi-gpu.json"))["spec"]'
review vmi "$WORK/vmi1.json" /mutate-vmis unchanged
ok "VMI with a GPU gets the hook-sidecar annotation (our image, no ConfigMap); idempotent"

$PY - "$FIX/vmi-gpu.json" >"$WORK/vmi-other.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
v["metadata"]["annotations"] = {"hooks.kubevirt.io/hookSidecars": '[{"args": ["--version", "v1alpha2"], "image": "registry:5000/kubevirt/example-hook-sidecar:devel"}]'}
json.dump(v, sys.stdout)
EOF
review vmi "$WORK/vmi-other.json" /mutate-vmis patched
pyassert "$WORK/ops.json" 'o[0]["op"] == "replace" and o[0]["path"] == "/metadata/annotations/hooks.kubevirt.io~1hookSidecars"'
pyassert "$WORK/out.json" '
[(s["image"], s.get("command")) for s in json.loads(o["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"])]
  == [("registry:5000/kubevirt/example-hook-sidecar:devel", None),
      ("localhost/vgpuenv/mesa-injector:latest", ["/usr/local/bin/mesa-injector-hook-sidecar"])]'
ok "an existing sidecar request is kept and ours appended (replace, ~1 escaped)"

$PY - "$FIX/vmi-gpu.json" >"$WORK/vmi-nodisplay.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
v["spec"]["domain"]["devices"]["gpus"][0]["virtualGPUOptions"] = {"display": {"enabled": False}}
json.dump(v, sys.stdout)
EOF
review vmi "$WORK/vmi-nodisplay.json" /mutate-vmis unchanged
$PY - "$FIX/vmi-gpu.json" >"$WORK/vmi-nogpu.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
del v["spec"]["domain"]["devices"]["gpus"]
json.dump(v, sys.stdout)
EOF
review vmi "$WORK/vmi-nogpu.json" /mutate-vmis unchanged
review vmi "$FIX/vmi-gpu.json" /mutate-vmis unchanged some-other-namespace
ok "VMIs without GPUs, with display disabled, or outside vmiHook.namespaces: no patch"

# ---- cdi mode ------------------------------------------------------------------
cat >"$WORK/cdi.yaml" <<'EOF'
mode: cdi
selector:
  namespaces: ["kubevirt-test-*"]
EOF
start_server "$WORK/cdi.yaml"
review pod "$FIX/pod-virt-launcher.json" /mutate-pods patched
pyassert "$WORK/ops.json" '[op["path"] for op in o] == ["/spec/containers/0/resources/limits/vgpuenv.io~1render",
  "/spec/containers/0/resources/requests/vgpuenv.io~1render", "/metadata/annotations/mesa-injector.vgpuenv.io~1injected"]'
pyassert "$WORK/out.json" 'not [k for k in o["metadata"]["annotations"] if k.startswith("cdi.k8s.io/")]'
pyassert "$WORK/out.json" 'o["metadata"]["annotations"]["mesa-injector.vgpuenv.io/injected"] == "cdi"'
pyassert "$WORK/out.json" '
(lambda a, b: [c.pop("resources") for c in a["containers"] + b["containers"]] and a == b)(
  o["spec"], json.load(open("'"$FIX"'/pod-virt-launcher.json"))["spec"])'
cp "$WORK/out.json" "$WORK/cdi1.json"
review pod "$WORK/cdi1.json" /mutate-pods unchanged
review pod "$FIX/pod-virt-launcher.json" /mutate-pods unchanged default
ok "cdi mode: only the resource (the plugin names the CDI device), no volumes, no cdi.k8s.io annotation; idempotent, namespace glob honoured"

# ---- the Go client, verifying like the API server ------------------------------
build_goclient
$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid go-uid-1 >"$WORK/goreq.json"
"$GOCLIENT" review -url "https://127.0.0.1:$PORT/mutate-pods" -ca "$WORK/certs/ca.crt" -servername "$SNI" \
	-body "$WORK/goreq.json" >"$WORK/goresp.json" 2>"$WORK/go.err" || fail "Go client: $(cat "$WORK/go.err")"
$TOOL apply "$WORK/goreq.json" "$WORK/goresp.json" --expect patched >/dev/null || fail "Go client response"
grep -q "TLS 0x0304" "$WORK/go.err" || fail "Go client did not negotiate TLS 1.3: $(cat "$WORK/go.err")"
ok "Go crypto/tls client: ServerName $SNI verified against ca.crt, TLS 1.3, patch applies"
"$GOCLIENT" expect-fail -url "https://127.0.0.1:$PORT/healthz" -ca "$WORK/certs/ca.crt" \
	-servername "other.$NS.svc" >/dev/null || fail "Go client accepted a wrong ServerName"
"$GOCLIENT" expect-fail -url "https://127.0.0.1:$PORT/healthz" -ca "$WORK/certs/ca.crt" \
	-servername "$SNI" -maxtls 1.1 >/dev/null || fail "Go client got a TLS 1.1 session"
make_certs "$WORK/otherca"
"$GOCLIENT" expect-fail -url "https://127.0.0.1:$PORT/healthz" -ca "$WORK/otherca/ca.crt" \
	-servername "$SNI" >/dev/null || fail "Go client accepted a certificate from another CA"
ok "Go client refuses a wrong ServerName, another CA, and TLS 1.1"

# ---- metrics and the log line --------------------------------------------------
mcurl "https://$SNI:$PORT/metrics" >"$WORK/metrics.txt"
grep -q 'mesa_injector_requests_total{route="/mutate-pods",outcome="patched"} 2' "$WORK/metrics.txt" ||
	fail "metrics: $(grep requests_total "$WORK/metrics.txt")"
grep -q 'mesa_injector_requests_total{route="/mutate-pods",outcome="unchanged"} 1' "$WORK/metrics.txt" ||
	fail "metrics unchanged count"
grep -q 'mesa_injector_requests_total{route="/mutate-pods",outcome="skipped"} 1' "$WORK/metrics.txt" ||
	fail "metrics skipped count"
grep -q '^mesa_injector_patches_total 2$' "$WORK/metrics.txt" || fail "patches_total"
grep -q 'mesa_injector_request_duration_seconds_bucket{route="/mutate-pods",le="+Inf"} 4$' "$WORK/metrics.txt" ||
	fail "histogram"
ok "Prometheus metrics: requests by route and outcome, patches, latency histogram"
# The log is written in batches (a few ms behind the answer): wait for it.
line='"msg":"admission","route":"/mutate-pods","uid":"go-uid-1","kind":"v1/Pod","namespace":"kubevirt-test-default","name":"virt-launcher-testvmi-gpu-","decision":"patched"'
for _ in $(seq 50); do grep -qF "$line" "$LOG" && break; sleep 0.05; done
grep -qF "$line" "$LOG" || fail "structured log line: $(grep go-uid-1 "$LOG")"
ok "one structured log line per admission"

echo "PASS: $CHECKS checks"
