#!/usr/bin/env bash
# mesa-injector keeps serving the API server while another client holds
# connections (issue 11 item 7): any pod can reach the webhook's Service.
# Two sources on one machine, each client binding its own loopback address:
# 127.0.0.2 misbehaves, 127.0.0.3 sends reviews as the API server would.
# - one source flooding idle TCP connections (no TLS hello) keeps at most
#   limits.connectionsPerSource of them; the excess is refused at accept,
#   then its SYNs are dropped by the listeners' filter while it is at its
#   cap, and the ones kept are closed at the handshake deadline; meanwhile the second
#   source's reviews are all answered (one keep-alive connection and new
#   connections alike);
# - TLS connections that go idle after the handshake are closed at the idle
#   deadline, ones that trickle a request at the request deadline;
# - with the table full of another source's never-answered connections, a
#   new source still gets in (one of the biggest holder's is evicted);
# - one source's stalled large bodies take only its share of the body
#   budget;
# - /metrics counts every refusal and cut and shows the limits.
# Behaviour, not timings: deadlines are checked with generous margins; the
# figures are `make bench-webhook-hostile`'s.
source "$(dirname "$0")/../../webhook/tests/lib.sh"
SRC="$PY $ROOT/webhook/tests/sources.py"
HOSTILE=127.0.0.2
API=127.0.0.3
python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2", 0)); s.close()' ||
	fail "cannot bind 127.0.0.2 (the loopback interface must carry 127.0.0.0/8)"

cat >"$WORK/limits.yaml" <<'EOF'
limits:
  connectionLimit: 24
  connectionsPerSource: 8
  handshakeTimeoutSeconds: 1
  connectionTimeoutSeconds: 2
  requestTimeoutSeconds: 3
EOF
start_server "$WORK/limits.yaml"
$TOOL wrap pod "$FIX/pod-virt-launcher.json" --uid hostile-1 >"$WORK/review.json"
metrics() { mcurl --interface "$API" "https://$SNI:$PORT/metrics" >"$WORK/$1"; }
metric() { awk -v k="$2" '$1 == k { print $2 }' "$WORK/$1"; }

# 300 idle connections from one source, for 4 s, each reopened when closed;
# the reviews run meanwhile.
$SRC flood "$PORT" "$HOSTILE" 300 4 >"$WORK/flood.json" &
FLOOD=$!
sleep 0.5
$SRC reviews "$PORT" "$WORK/certs/ca.crt" "$SNI" "$API" "$WORK/review.json" 10 >"$WORK/reviews.json"
# What one source holds, sampled while the flood goes on, and whether the
# listeners drop its SYNs meanwhile.
largest=0 filtered=0
for _ in $(seq 10); do
	metrics m-flood
	n=$(metric m-flood mesa_injector_connections_largest_source)
	[ "${n:-0}" -gt "$largest" ] && largest=$n
	n=$(metric m-flood mesa_injector_sources_filtered)
	[ "${n:-0}" -gt "$filtered" ] && filtered=$n
	sleep 0.2
done
wait "$FLOOD"
metrics m-flood-end
pyassert "$WORK/reviews.json" 'o["good"] == o["of"] == 20 or print(o)'
ok "300 idle connections from $HOSTILE held open: all 20 reviews from $API answered with a patch"
[ "$largest" -ge 1 ] && [ "$largest" -le 8 ] || fail "one source held $largest connections (cap 8)"
refused=$(metric m-flood-end 'mesa_injector_connections_refused_total{reason="per_source"}')
[ "${refused:-0}" -ge 1 ] || fail "no connection refused over the per-source cap"
ok "limits.connectionsPerSource: $HOSTILE held at most $largest, $refused refused at accept"
[ "$filtered" = 1 ] || fail "the flooding source was not filtered (gauge $filtered)"
pyassert "$WORK/flood.json" 'o["waiting_at_end"] > 0 or print(o["opened"], o["never_connected"], o["waiting_at_end"])'
ok "while it is at its cap, the listeners drop the source's SYNs (connections still waiting at the end)"
# Refused at once, or kept until the 1 s handshake deadline; none longer.
pyassert "$WORK/flood.json" '
    len([t for t in o["lifetimes"] if t < 0.5]) >= 1
    and len([t for t in o["lifetimes"] if 0.8 <= t <= 2.5]) >= 8
    and all(t < 0.5 or 0.8 <= t <= 2.5 for t in o["lifetimes"])
    or print(o["opened"], o["lifetimes"])'
hs=$(metric m-flood-end 'mesa_injector_connections_cut_total{reason="handshake_timeout"}')
[ "${hs:-0}" -ge 8 ] || fail "handshake timeouts counted: ${hs:-0}"
ok "connections without a TLS hello closed at the 1 s handshake deadline ($hs counted)"

$SRC tls "$PORT" "$WORK/certs/ca.crt" "$SNI" "$HOSTILE" 4 idle >"$WORK/idle.json" &
IDLE=$!
$SRC tls "$PORT" "$WORK/certs/ca.crt" "$SNI" "$HOSTILE" 4 slow >"$WORK/slow.json"
wait "$IDLE"
pyassert "$WORK/idle.json" 'all(t is not None and 1.7 <= t <= 4.5 for t in o["closed_after"]) or print(o)'
pyassert "$WORK/slow.json" 'all(t is not None and 2.7 <= t <= 5.5 for t in o["closed_after"]) or print(o)'
metrics m-tls
for k in idle_timeout request_timeout; do
	v=$(metric m-tls "mesa_injector_connections_cut_total{reason=\"$k\"}")
	[ "${v:-0}" -ge 4 ] || fail "$k counted ${v:-0} times, want 4"
done
ok "after the handshake: idle connections closed at 2 s (idle deadline), trickled requests at 3 s (request deadline)"
$SRC reviews "$PORT" "$WORK/certs/ca.crt" "$SNI" "$HOSTILE" "$WORK/review.json" 2 >"$WORK/after.json"
pyassert "$WORK/after.json" 'o["good"] == 4 or print(o)'
ok "the flooding source itself is served again once it behaves"

for k in connectionLimit connectionsPerSource handshakeTimeoutSeconds connectionTimeoutSeconds \
	requestTimeoutSeconds connectionMemoryBytes maxBufferedBytes; do
	grep -q "^mesa_injector_limit{limit=\"$k\"} [0-9]" "$WORK/m-tls" || fail "/metrics lacks the limit $k"
done
[ "$(metric m-tls 'mesa_injector_limit{limit="connectionsPerSource"}')" = 8 ] || fail "limit value in /metrics"
[ "$(metric m-tls mesa_injector_connections)" -ge 1 ] || fail "open connections gauge"
ok "/metrics shows every limit with its configured value, and the open connections"

# The table full of two sources' connections stuck before their handshake
# (a long handshake deadline keeps them there): a third source gets in by
# eviction, and the per-source cap still holds for the others.
cat >"$WORK/full.yaml" <<'EOF'
limits:
  connectionLimit: 16
  connectionsPerSource: 8
  handshakeTimeoutSeconds: 30
EOF
start_server "$WORK/full.yaml"
$SRC flood "$PORT" "$HOSTILE" 8 5 >"$WORK/fill1.json" &
F1=$!
$SRC flood "$PORT" 127.0.0.4 8 5 >"$WORK/fill2.json" &
F2=$!
sleep 1
$SRC reviews "$PORT" "$WORK/certs/ca.crt" "$SNI" "$API" "$WORK/review.json" 3 >"$WORK/full-reviews.json"
metrics m-full
wait "$F1" "$F2"
pyassert "$WORK/full-reviews.json" 'o["good"] == o["of"] == 6 or print(o)'
ev=$(metric m-full 'mesa_injector_connections_cut_total{reason="evicted"}')
[ "${ev:-0}" -ge 1 ] || fail "no eviction counted with the table full"
[ "$(metric m-full mesa_injector_connections)" -le 16 ] || fail "more connections open than the limit"
ok "table full of never-answered connections: a new source is served ($ev evicted for it)"
# One source sending large bodies slowly: it may hold only its share of the
# body budget, so the API server's reviews still find room.
cat >"$WORK/bodies.yaml" <<'EOF'
limits:
  maxBufferedBytes: 4194304
  bufferedBytesPerSource: 1048576
EOF
start_server "$WORK/bodies.yaml"
$SRC bodies "$PORT" "$WORK/certs/ca.crt" "$SNI" "$HOSTILE" 10 300000 3 >"$WORK/bodies.json" &
BODIES=$!
sleep 1.5
$SRC reviews "$PORT" "$WORK/certs/ca.crt" "$SNI" "$API" "$WORK/review.json" 3 >"$WORK/bodies-reviews.json"
wait "$BODIES"
metrics m-bodies
pyassert "$WORK/bodies-reviews.json" 'o["good"] == o["of"] == 6 or print(o)'
pyassert "$WORK/bodies.json" 'o["closed"] == 8 or print(o)'
[ "$(metric m-bodies 'mesa_injector_connections_cut_total{reason="source_buffer_budget"}')" = 8 ] ||
	fail "per-source body budget cuts not counted"
ok "10 stalled 300 KB bodies from one source: 2 held (1 MiB share), 8 closed, the other source's reviews answered"
echo "PASS: $CHECKS checks"
