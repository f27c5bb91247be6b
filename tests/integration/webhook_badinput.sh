#!/usr/bin/env bash
# mesa-injector against bad input, one class per check: malformed JSON, wrong
# content type, wrong method, unknown route, unknown apiVersion/kind, a
# misrouted kind, missing request.uid, bodies over 3 MiB (Content-Length and
# chunked), slow clients (idle, trickled headers, stalled body) and the
# connection limit. Each gets a clear 4xx or an AdmissionReview with a
# message; the server never crashes or hangs (checked after every class).
source "$(dirname "$0")/../../webhook/tests/lib.sh"

cat >"$WORK/limits.yaml" <<'EOF'
limits:
  connectionTimeoutSeconds: 2
  requestTimeoutSeconds: 3
  connectionLimit: 6
EOF
start_server "$WORK/limits.yaml"
RAW="$PY $ROOT/webhook/tests/rawclient.py"

alive() {
	kill -0 "$SERVER_PID" 2>/dev/null || fail "server died after: $1"
	[ "$(mcurl --max-time 5 "https://$SNI:$PORT/healthz")" = ok ] || fail "server stopped answering after: $1"
}

# post ROUTE BODYFILE [CONTENT-TYPE HEADER]: prints the status code; body in $WORK/r.
post() {
	mcurl --max-time 20 -o "$WORK/r" -w '%{http_code}' -H "${3:-Content-Type: application/json}" \
		--data-binary @"$2" "https://$SNI:$PORT$1"
}

printf '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {' >"$WORK/malformed.json"
[ "$(post /mutate-pods "$WORK/malformed.json")" = 400 ] || fail "malformed JSON: $(cat "$WORK/r")"
grep -q 'malformed JSON' "$WORK/r" || fail "malformed JSON message: $(cat "$WORK/r")"
alive "malformed JSON"
ok "malformed JSON -> 400 with a message"

$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid bad-1 >"$WORK/good.json"
[ "$(post /mutate-pods "$WORK/good.json" 'Content-Type: text/plain')" = 415 ] || fail "text/plain accepted"
grep -q 'application/json' "$WORK/r" || fail "415 message"
[ "$(post /mutate-pods "$WORK/good.json" 'Content-Type:')" = 415 ] || fail "missing content type accepted"
[ "$(post /mutate-pods "$WORK/good.json" 'Content-Type: application/json; charset=utf-8')" = 200 ] ||
	fail "application/json with charset refused"
alive "content type"
ok "wrong or missing content type -> 415; charset parameter accepted"

code=$(mcurl -o /dev/null -D "$WORK/h" -w '%{http_code}' "https://$SNI:$PORT/mutate-pods")
[ "$code" = 405 ] || fail "GET /mutate-pods -> $code"
grep -qi '^allow: POST' "$WORK/h" || fail "405 without Allow: POST"
code=$(mcurl -o /dev/null -w '%{http_code}' -X PUT --data '{}' "https://$SNI:$PORT/mutate-vmis")
[ "$code" = 405 ] || fail "PUT /mutate-vmis -> $code"
code=$(mcurl -o /dev/null -w '%{http_code}' -X POST --data '{}' "https://$SNI:$PORT/healthz")
[ "$code" = 405 ] || fail "POST /healthz -> $code"
alive "methods"
ok "wrong method -> 405 with Allow"

code=$(post /mutate-deployments "$WORK/good.json")
[ "$code" = 404 ] || fail "unknown route -> $code"
ok "unknown route -> 404"

$PY - "$WORK/good.json" "$WORK" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
d = sys.argv[2]
v = dict(r, apiVersion="admission.k8s.io/v1beta1"); json.dump(v, open(d + "/beta.json", "w"))
k = dict(r, kind="Pod"); json.dump(k, open(d + "/kind.json", "w"))
n = json.loads(json.dumps(r)); del n["request"]["uid"]; json.dump(n, open(d + "/nouid.json", "w"))
e = json.loads(json.dumps(r)); e["request"]["uid"] = ""; json.dump(e, open(d + "/emptyuid.json", "w"))
a = [1, 2, 3]; json.dump(a, open(d + "/array.json", "w"))
EOF
[ "$(post /mutate-pods "$WORK/beta.json")" = 400 ] || fail "v1beta1 accepted"
grep -q 'admission.k8s.io/v1beta1' "$WORK/r" || fail "apiVersion message: $(cat "$WORK/r")"
[ "$(post /mutate-pods "$WORK/kind.json")" = 400 ] || fail "kind Pod accepted as review"
grep -q "unsupported kind 'Pod'" "$WORK/r" || fail "kind message: $(cat "$WORK/r")"
[ "$(post /mutate-pods "$WORK/array.json")" = 400 ] || fail "JSON array accepted"
alive "apiVersion/kind"
ok "unknown apiVersion or kind -> 400 naming what was received"

[ "$(post /mutate-pods "$WORK/nouid.json")" = 400 ] || fail "missing uid accepted"
grep -q 'request.uid' "$WORK/r" || fail "uid message"
[ "$(post /mutate-pods "$WORK/emptyuid.json")" = 400 ] || fail "empty uid accepted"
ok "missing or empty request.uid -> 400"

[ "$(post /mutate-vmis "$WORK/good.json")" = 200 ] || fail "misrouted review"
$PY - "$WORK/r" <<'EOF' || fail "misrouted kind answer: $(cat "$WORK/r")"
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["uid"] == "bad-1" and r["allowed"] is True and "patch" not in r
assert "unexpected kind v1/Pod on /mutate-vmis" in r["warnings"][0]
EOF
ok "a Pod sent to /mutate-vmis -> AdmissionReview allowed, no patch, warning says why"

# A NUL escaped into the selector's label value: cJSON's strings end at
# the NUL, and "virt-launcher\u0000x" once compared equal to virt-launcher.
$PY - "$WORK/good.json" "$WORK/nul.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["request"]["object"]["metadata"]["labels"]["kubevirt.io"] = "virt-launcher\x00x"
json.dump(r, open(sys.argv[2], "w"))  # the NUL written as \u0000, as Go's encoding/json does
EOF
grep -q 'virt-launcher\\u0000x' "$WORK/nul.json" || fail "the review does not carry an escaped NUL"
[ "$(post /mutate-pods "$WORK/nul.json")" = 200 ] || fail "review with a NUL in a label: $(cat "$WORK/r")"
$PY - "$WORK/r" <<'EOF' || fail "pod with a NUL in its selector label: $(head -c 300 "$WORK/r")"
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["allowed"] is True and "patch" not in r, r
assert "NUL character" in r["warnings"][0], r
EOF
ok "a selector label value with an escaped NUL does not match: allowed, not patched, warned"

python3 -c 'import sys; sys.stdout.write("{\"pad\":\"" + "x" * (3 * 1024 * 1024) + "\"}")' >"$WORK/big.json"
[ "$(post /mutate-pods "$WORK/big.json")" = 413 ] || fail "3 MiB + body with Content-Length: $(cat "$WORK/r")"
python3 -c 'import sys; sys.stdout.write("{\"pad\":\"" + "x" * (3 * 1024 * 1024 - 20) + "\"}")' >"$WORK/under.json"
[ "$(post /mutate-pods "$WORK/under.json")" = 400 ] || fail "body just under the limit was not read: $(head -c 200 "$WORK/r")"
grep -q 'request.uid\|AdmissionReview' "$WORK/r" || fail "body under the limit: $(head -c 200 "$WORK/r")"
res=$($RAW chunked "$PORT" "$WORK/certs/ca.crt" "$SNI" $((3 * 1024 * 1024 + 500000)))
case $res in
"HTTP/1.1 413"*) ;;
*) fail "chunked body over the limit: $res" ;;
esac
res=$($RAW chunked "$PORT" "$WORK/certs/ca.crt" "$SNI" $((20 * 1024 * 1024)))
case $res in
closed*) ;;
*) fail "a 20 MiB chunked body was not cut off: $res" ;;
esac
alive "large bodies"
ok "bodies over 3 MiB -> 413 (Content-Length and chunked); far over -> connection closed"

t=$($RAW idle "$PORT" "$WORK/certs/ca.crt" "$SNI")
python3 -c "import sys; sys.exit(not (1.5 <= $t <= 6))" || fail "idle connection closed after ${t}s (want ~2-3s)"
ok "idle connection closed after ${t}s"
t=$($RAW trickle "$PORT" "$WORK/certs/ca.crt" "$SNI")
python3 -c "import sys; sys.exit(not (2.5 <= $t <= 6))" || fail "trickled headers ran ${t}s (want ~3s)"
ok "headers trickled one byte per 0.5s: cut after ${t}s (request timeout 3s)"
t=$($RAW partial "$PORT" "$WORK/certs/ca.crt" "$SNI")
python3 -c "import sys; sys.exit(not (1.5 <= $t <= 6))" || fail "stalled body ran ${t}s"
alive "slow clients"
ok "stalled body: closed after ${t}s"

mcurl "https://$SNI:$PORT/metrics" >"$WORK/m"
for o in bad_request unsupported_media_type method_not_allowed not_found too_large; do
	grep -q "outcome=\"$o\"" "$WORK/m" || fail "metrics lack outcome $o"
done
grep -q 'route="other",outcome="timeout"' "$WORK/m" || fail "metrics lack timeouts"
ok "every rejection is counted in /metrics"

# The connection limit, on a server whose timeouts do not close the held
# connections first.
cat >"$WORK/connlimit.yaml" <<'EOF'
limits:
  connectionLimit: 6
  connectionTimeoutSeconds: 60
  requestTimeoutSeconds: 60
EOF
start_server "$WORK/connlimit.yaml"
res=$($RAW hold "$PORT" "$WORK/certs/ca.crt" "$SNI" 6)
[ "$res" = refused ] || fail "connection over the limit of 6 was $res"
sleep 0.3
alive "connection limit"
res=$($RAW hold "$PORT" "$WORK/certs/ca.crt" "$SNI" 4)
[ "$res" = served ] || fail "connection under the limit was $res"
ok "connection limit: the 7th concurrent connection is not served, service resumes after"
# The budget for bodies held at once: one 100 KB body exceeds a 64 KiB
# budget and its connection is closed; small reviews still pass.
printf 'limits:\n  maxBufferedBytes: 65536\n' >"$WORK/budget.yaml"
start_server "$WORK/budget.yaml"
$PY -c 'import sys; sys.stdout.write("{\"pad\":\"" + "x" * 100000 + "\"}")' >"$WORK/100k.json"
if mcurl --max-time 10 -o /dev/null -H 'Content-Type: application/json' --data-binary @"$WORK/100k.json" \
	"https://$SNI:$PORT/mutate-pods" 2>/dev/null; then
	fail "a body over limits.maxBufferedBytes was answered"
fi
# Logged in the summary of refused and closed connections, once a second.
for _ in $(seq 30); do
	grep -q 'exceed limits.maxBufferedBytes' "$LOG" && break
	sleep 0.1
done
grep -q 'exceed limits.maxBufferedBytes' "$LOG" || fail "budget overrun not logged"
[ "$(post /mutate-pods "$WORK/good.json")" = 200 ] || fail "a normal review after the overrun"
alive "buffer budget"
ok "limits.maxBufferedBytes: over budget the connection is closed, normal reviews keep working"
echo "PASS: $CHECKS checks"
