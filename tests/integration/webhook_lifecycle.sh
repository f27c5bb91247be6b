#!/usr/bin/env bash
# mesa-injector's process lifecycle: one instance per port; SIGTERM stops
# accepting connections but
# lets an in-flight request finish (the client is mid-body when the signal
# arrives); bad configs and unusable certificates end with a clear message
# and exit code 2/1 before anything listens.
source "$(dirname "$0")/../../webhook/tests/lib.sh"
RAW="$PY $ROOT/webhook/tests/rawclient.py"

start_server
# Listeners use SO_REUSEPORT (one per thread); a second instance must still
# be refused the port rather than silently share its connections.
rc=0
timeout 10 "$MI" serve --listen "127.0.0.1:$PORT" --cert "$WORK/certs/tls.crt" --key "$WORK/certs/tls.key" \
	2>"$WORK/dup.err" || rc=$?
[ $rc -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$PORT: address in use" "$WORK/dup.err" ||
	fail "second instance on the same port: rc=$rc $(cat "$WORK/dup.err")"
ok "a second instance on the same port is refused: address in use"
$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid term-1 >"$WORK/req.json"
$RAW slowpost "$PORT" "$WORK/certs/ca.crt" "$SNI" "$WORK/req.json" >"$WORK/slow.out" 2>&1 &
SLOW=$!
for _ in $(seq 50); do grep -q sent-half "$WORK/slow.out" && break; sleep 0.05; done
grep -q sent-half "$WORK/slow.out" || fail "slow client did not start: $(cat "$WORK/slow.out")"
kill -TERM "$SERVER_PID"
sleep 0.5
if curl -s -o /dev/null --max-time 2 --cacert "$WORK/certs/ca.crt" "$URL/healthz"; then
	fail "a new connection was accepted after SIGTERM"
fi
ok "after SIGTERM new connections are refused"
wait "$SLOW"
grep -q '^HTTP/1.1 200' "$WORK/slow.out" || fail "in-flight request did not complete: $(cat "$WORK/slow.out")"
ok "the request in flight at SIGTERM completed with 200"
rc=0
wait "$SERVER_PID" || rc=$?
[ $rc -eq 0 ] || fail "server exited $rc after SIGTERM"
grep -q 'finishing in-flight requests' "$LOG" && grep -q 'stopped' "$LOG" || fail "shutdown log: $(cat "$LOG")"
grep -q '"uid":"term-1".*"decision":"patched"' "$LOG" || fail "in-flight request not logged as patched"
ok "server exited 0 after draining"
# A restart on the same port right after the old instance stopped: the
# "address in use" probe must only see listeners.
SERVER_PORT=$PORT start_server
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "restarted server did not exit 0"
ok "a restart on the same port right away serves"

# Bad configuration: exit 2, file:line:column, nothing listening.
printf 'mode: hostpath\nhostPaths:\n  - path: /etc/ssl/private/key.pem\n' >"$WORK/bad.yaml"
P=$(free_port)
rc=0
"$MI" serve --listen "127.0.0.1:$P" --cert "$WORK/certs/tls.crt" --key "$WORK/certs/tls.key" \
	--config "$WORK/bad.yaml" 2>"$WORK/bad.err" || rc=$?
[ $rc -eq 2 ] || fail "bad config exit code $rc"
grep -q "$WORK/bad.yaml:3:11: hostPaths\[0\].path '/etc/ssl/private/key.pem' is not under allowedHostPathPrefixes" \
	"$WORK/bad.err" || fail "bad config message: $(cat "$WORK/bad.err")"
ok "a hostPath outside the allowlist: exit 2 with file:line:column"
printf 'limits:\n  threads: 0\n' >"$WORK/bad2.yaml"
rc=0
"$MI" serve --listen "127.0.0.1:$P" --cert "$WORK/certs/tls.crt" --key "$WORK/certs/tls.key" \
	--config "$WORK/bad2.yaml" 2>"$WORK/bad2.err" || rc=$?
[ $rc -eq 2 ] && grep -q "bad2.yaml:2:12" "$WORK/bad2.err" || fail "out-of-range value: rc=$rc $(cat "$WORK/bad2.err")"
ok "an out-of-range limit: exit 2 with file:line:column"

# Unusable certificates: exit 1 naming the problem.
rc=0
"$MI" serve --listen "127.0.0.1:$P" --cert "$WORK/certs/tls.crt" --key "$WORK/certs/ca.key" 2>"$WORK/key.err" || rc=$?
[ $rc -eq 1 ] && grep -q 'key does not match the certificate' "$WORK/key.err" || fail "mismatched key: rc=$rc $(cat "$WORK/key.err")"
rc=0
"$MI" serve --listen "127.0.0.1:$P" --cert "$WORK/nope.crt" --key "$WORK/certs/tls.key" 2>"$WORK/nf.err" || rc=$?
[ $rc -eq 1 ] && grep -q 'cannot read certificate file' "$WORK/nf.err" || fail "missing cert: rc=$rc $(cat "$WORK/nf.err")"
rc=0
"$MI" serve --listen "localhost:$P" --cert "$WORK/certs/tls.crt" --key "$WORK/certs/tls.key" 2>"$WORK/l.err" || rc=$?
[ $rc -eq 2 ] && grep -q 'ADDR:PORT' "$WORK/l.err" || fail "bad --listen: rc=$rc $(cat "$WORK/l.err")"
rc=0
"$MI" serve --cert x 2>"$WORK/u.err" || rc=$?
[ $rc -eq 2 ] || fail "missing --listen: rc=$rc"
ok "mismatched key, missing cert, bad --listen, missing flags: clear messages and exit codes"
echo "PASS: $CHECKS checks"
