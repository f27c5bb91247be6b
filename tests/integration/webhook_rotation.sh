#!/usr/bin/env bash
# Certificate rotation under load: while a Go crypto/tls client (half its
# workers on fresh connections, so handshakes keep happening) posts
# AdmissionReviews, the serving pair is replaced three ways: rewritten in
# place by `mesa-injector certs`, rotated halfway (new cert, key a second
# later), and swapped like a Kubernetes Secret volume (the ..data symlink).
# Zero requests may fail and new handshakes must see the new certificates.
source "$(dirname "$0")/../../webhook/tests/lib.sh"
build_goclient

make_certs "$WORK/certs"
# Secret-volume layout: live/tls.crt -> ..data/tls.crt, ..data -> ..v1
mkdir -p "$WORK/live/..v1"
cp "$WORK/certs/"* "$WORK/live/..v1/"
ln -s ..v1 "$WORK/live/..data"
ln -s ..data/tls.crt "$WORK/live/tls.crt"
ln -s ..data/tls.key "$WORK/live/tls.key"
printf 'limits:\n  certPollMilliseconds: 100\n' >"$WORK/rot.yaml"
CERT_DIR=$WORK/live start_server "$WORK/rot.yaml"

# new_pair DIR: a fresh serving pair from the same CA.
new_pair() {
	mkdir -p "$1"
	cp "$WORK/certs/ca.crt" "$WORK/certs/ca.key" "$1/"
	"$MI" certs --service "$SVC" --namespace "$NS" --out "$1" --ip 127.0.0.1 2>/dev/null || fail "certs"
}

$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid rot-1 >"$WORK/req.json"
"$GOCLIENT" load -url "https://127.0.0.1:$PORT/mutate-pods" -ca "$WORK/certs/ca.crt" -servername "$SNI" \
	-body "$WORK/req.json" -duration 7s -concurrency 6 >"$WORK/load.json" 2>&1 &
LOAD=$!

sleep 1
# 1: in place (the CA in ..v1 is reused, so clients keep trusting it)
"$MI" certs --service "$SVC" --namespace "$NS" --out "$WORK/live/..v1" --ip 127.0.0.1 2>/dev/null || fail "certs 1"
sleep 1.5
# 2: halfway: the certificate arrives a second before its key
new_pair "$WORK/stage2"
cp "$WORK/stage2/tls.crt" "$WORK/live/..v1/tls.crt.new" && mv "$WORK/live/..v1/tls.crt.new" "$WORK/live/..v1/tls.crt"
sleep 1
cp "$WORK/stage2/tls.key" "$WORK/live/..v1/tls.key.new" && mv "$WORK/live/..v1/tls.key.new" "$WORK/live/..v1/tls.key"
sleep 1.5
# 3: Secret-volume swap
new_pair "$WORK/live/..v2"
ln -s ..v2 "$WORK/live/..data_tmp" && mv -T "$WORK/live/..data_tmp" "$WORK/live/..data"

wait "$LOAD" || fail "requests failed during rotation: $(cat "$WORK/load.json")"
cat "$WORK/load.json"
$PY - "$WORK/load.json" <<'PY' || fail "load result: $(cat "$WORK/load.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["failed"] == 0 and r["bad_status"] == 0, r
assert r["ok"] > 200, r
assert r["distinct_certs"] >= 3, r
PY
ok "zero failed requests across three rotations ($(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["ok"])' "$WORK/load.json") ok)"

grep -q 'loaded new certificate (generation 4)' "$LOG" || fail "server did not install 3 new pairs: $(grep TLS "$LOG")"
grep -q 'key does not match the certificate; still serving the previous certificate' "$LOG" ||
	fail "the half rotation was not held back"
ok "three reloads; the half-rotated pair was held back until its key arrived"

# New handshakes now present the ..v2 certificate.
served=$(echo | openssl s_client -connect "127.0.0.1:$PORT" -servername "$SNI" 2>/dev/null | openssl x509 -noout -serial)
want=$(openssl x509 -noout -serial -in "$WORK/live/..v2/tls.crt")
[ "$served" = "$want" ] || fail "served $served, expected $want"
ok "a new handshake gets the certificate from the swapped Secret volume"
metrics=$(mcurl "https://$SNI:$PORT/metrics") # whole first: grep -q would cut curl off
grep -q 'mesa_injector_cert_reloads_total{result="ok"} 3' <<<"$metrics" || fail "reload metric"
ok "cert reloads counted in /metrics"
echo "PASS: $CHECKS checks"
