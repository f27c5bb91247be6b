#!/usr/bin/env bash
# make bench-webhook: wrk over TLS keep-alive against mesa-injector (POST of
# a realistic virt-launcher AdmissionReview to /mutate-pods) and against
# nginx returning a fixed 200 over TLS with the same certificate, in the same
# run, on the same loopback. Prints req/s of each, the ratio, p99 latency and
# mesa-injector's peak RSS (VmHWM). A benchmark: it reports whether the
# targets are met (ratio >= 0.5, p99 < 2 ms, RSS < 10 MiB), it does not fail
# on them. The two servers are measured alternately for BENCH_ROUNDS rounds
# and the medians reported, because the 2 cores are shared with whatever
# else runs (a single round swings by 2x on a busy machine); a last
# single-connection round gives the latency without queueing.
# Requests carry the API server's headers, including the Accept-Encoding:
# gzip that Go's HTTP client adds; one round without it shows the
# uncompressed answer. Latency is reported twice: at saturation (the
# throughput rounds, where the load generator and the server fight for the
# same 2 cores and both servers' tails are scheduler noise) and under a
# steady load (every connection pauses BENCH_PACE_MS between requests),
# which is what the p99 target is read against.
# Environment: BENCH_DURATION (5s per round), BENCH_ROUNDS (5),
# BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_PACE_MS (1).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MI=${MESA_INJECTOR:-$BUILD/mesa-injector}
DUR=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-5}
CONN=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
PACE=${BENCH_PACE_MS:-1}
for p in wrk nginx python3; do
	command -v "$p" >/dev/null || { echo "bench-webhook: $p is missing (make deps)" >&2; exit 1; }
done
[ -x "$MI" ] || { echo "bench-webhook: $MI not built" >&2; exit 1; }

D=$(mktemp -d /tmp/bench-webhook.XXXXXX)
MI_PID= NGINX_PID=
cleanup() {
	[ -n "$MI_PID" ] && kill "$MI_PID" 2>/dev/null && wait "$MI_PID" 2>/dev/null
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$MI" certs --service mesa-injector --namespace mesa-injector --out "$D/certs" --ip 127.0.0.1 2>/dev/null
# Compact JSON and a UUID uid, as the API server sends them.
UID_=0d6f4f3e-6a4b-4a53-9d5c-6f1f0f4b2c1a
python3 webhook/tests/admission_tool.py wrap pod webhook/tests/fixtures/pod-virt-launcher.json --uid $UID_ >"$D/review.json"
python3 webhook/tests/admission_tool.py wrap pod webhook/tests/fixtures/pod-virt-launcher.json --uid $UID_ \
	--namespace kube-system >"$D/review-skip.json"
export BENCH_BODY=$D/review.json

MI_PORT=$(port)
"$MI" serve --listen "127.0.0.1:$MI_PORT" --cert "$D/certs/tls.crt" --key "$D/certs/tls.key" 2>"$D/mi.log" &
MI_PID=$!

NGINX_PORT=$(port)
mkdir -p "$D/nginx"
# reuseport: each worker its own listening socket, as mesa-injector's
# threads have; without it wrk's 16 connections often land on one worker
# and nginx's rate halves from round to round (45k-75k measured).
cat >"$D/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $D/nginx/nginx.pid;
error_log $D/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $D/nginx;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGINX_PORT ssl reuseport;
		ssl_certificate $D/certs/tls.crt;
		ssl_certificate_key $D/certs/tls.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location / {
			default_type application/json;
			return 200 '{"ok":true}';
		}
	}
}
NGINX
nginx -p "$D/nginx" -c "$D/nginx/nginx.conf" -g 'daemon off;' 2>"$D/nginx/stderr" &
NGINX_PID=$!

for url in "https://127.0.0.1:$MI_PORT/healthz" "https://127.0.0.1:$NGINX_PORT/"; do
	for _ in $(seq 100); do
		curl -sf --cacert "$D/certs/ca.crt" "$url" >/dev/null 2>&1 && break
		sleep 0.05
	done
	curl -sf --cacert "$D/certs/ca.crt" "$url" >/dev/null || { echo "bench-webhook: $url not up" >&2; exit 1; }
done
# The answer must be a real mutation, not an error page, in both encodings
# (the first answer of a pod shape fills the cache; the second is gzip).
for enc in identity gzip; do
	curl -sf --compressed -D "$D/headers-$enc" --cacert "$D/certs/ca.crt" -H 'Content-Type: application/json' \
		--data-binary @"$D/review.json" "https://127.0.0.1:$MI_PORT/mutate-pods" | grep -q '"patchType":"JSONPatch"' ||
		{ echo "bench-webhook: /mutate-pods did not patch" >&2; exit 1; }
done
grep -qi '^content-encoding: gzip' "$D/headers-gzip" ||
	{ echo "bench-webhook: /mutate-pods did not answer gzip to Accept-Encoding: gzip" >&2; exit 1; }

run_wrk() {
	wrk -t"$THREADS" -c"$CONN" -d"$DUR" --latency -s webhook/bench/post.lua "$1" >"$2" 2>&1
}
# One after the other on the 2 cores (concurrently they would steal each
# other's CPU and measure the scheduler), alternating.
for r in $(seq "$ROUNDS"); do
	run_wrk "https://127.0.0.1:$MI_PORT/mutate-pods" "$D/wrk-mi-$r.txt"
	run_wrk "https://127.0.0.1:$NGINX_PORT/" "$D/wrk-nginx-$r.txt"
done
wrk -t1 -c1 -d"$DUR" --latency -s webhook/bench/post.lua "https://127.0.0.1:$MI_PORT/mutate-pods" >"$D/wrk-mi-c1.txt" 2>&1
BENCH_DELAY_MS=$PACE run_wrk "https://127.0.0.1:$MI_PORT/mutate-pods" "$D/wrk-mi-paced.txt"
BENCH_DELAY_MS=$PACE run_wrk "https://127.0.0.1:$NGINX_PORT/" "$D/wrk-nginx-paced.txt"
BENCH_ACCEPT_ENCODING= run_wrk "https://127.0.0.1:$MI_PORT/mutate-pods" "$D/wrk-mi-identity.txt"
# The same request in an excluded namespace: parsed and answered, but no
# 37 KB patch to encode, encrypt and send; shows what the payload costs.
BENCH_BODY=$D/review-skip.json run_wrk "https://127.0.0.1:$MI_PORT/mutate-pods" "$D/wrk-mi-skip.txt"
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$MI_PID/status")

python3 - "$D" "$ROUNDS" "$HWM" "$DUR" "$CONN" "$THREADS" "$(stat -c %s "$D/review.json")" "$PACE" <<'PY'
import re, statistics, sys
d, rounds, hwm_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def ms(m):
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
def parse(path):
    t = open(path).read()
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
            "p50": ms(re.search(r"50%\s+([\d.]+)(us|ms|s)\b", t)),
            "p99": ms(re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)),
            "non2xx": int(errs.group(1)) if errs else 0,
            "sock": sock.group(1) if sock else "none"}
mi = [parse("%s/wrk-mi-%d.txt" % (d, r)) for r in range(1, rounds + 1)]
ng = [parse("%s/wrk-nginx-%d.txt" % (d, r)) for r in range(1, rounds + 1)]
c1 = parse(d + "/wrk-mi-c1.txt")
skip = parse(d + "/wrk-mi-skip.txt")
paced = parse(d + "/wrk-mi-paced.txt")
paced_ng = parse(d + "/wrk-nginx-paced.txt")
ident = parse(d + "/wrk-mi-identity.txt")
med = lambda l, k: statistics.median(x[k] for x in l)
print("bench-webhook: wrk -t%s -c%s, %d rounds of %s each, TLS keep-alive, POST of a %s-byte virt-launcher AdmissionReview"
      % (sys.argv[6], sys.argv[5], rounds, sys.argv[4], sys.argv[7]))
print("request headers as the API server sends them: Content-Type/Accept application/json, Accept-Encoding: gzip")
print("%-30s %10s %9s %9s %8s %s" % ("server (median of rounds)", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"))
for name, l in (("mesa-injector /mutate-pods", mi), ("nginx fixed 200", ng)):
    print("%-30s %10.0f %9.3f %9.3f %8d %s" % (name, med(l, "rps"), med(l, "p50"), med(l, "p99"),
                                             sum(x["non2xx"] for x in l), "; ".join(sorted({x["sock"] for x in l}))))
print("rounds, req/s mesa-injector: %s" % ", ".join("%.0f" % x["rps"] for x in mi))
print("rounds, req/s nginx:         %s" % ", ".join("%.0f" % x["rps"] for x in ng))
# Each mesa-injector round runs right before its nginx round: the ratio of a
# pair is the least disturbed by the machine's speed drifting over the run.
print("rounds, ratio (pairs):       %s" % ", ".join("%.2f" % (a["rps"] / b["rps"]) for a, b in zip(mi, ng)))
print("mesa-injector alone on 1 connection: %.0f req/s, p50 %.3f ms, p99 %.3f ms" % (c1["rps"], c1["p50"], c1["p99"]))
print("mesa-injector, same pod in an excluded namespace (no patch): %.0f req/s (%.2f of nginx), p99 %.3f ms"
      % (skip["rps"], skip["rps"] / med(ng, "rps"), skip["p99"]))
print("mesa-injector without Accept-Encoding (28 KB answers): %.0f req/s (%.2f of nginx), p99 %.3f ms"
      % (ident["rps"], ident["rps"] / med(ng, "rps"), ident["p99"]))
print("steady load (%s connections, %s ms pause after each answer): mesa-injector %.0f req/s p99 %.3f ms; nginx %.0f req/s p99 %.3f ms"
      % (sys.argv[5], sys.argv[8], paced["rps"], paced["p99"], paced_ng["rps"], paced_ng["p99"]))
ratio = med(mi, "rps") / med(ng, "rps")
p99 = paced["p99"]
print("ratio mesa-injector/nginx: %.2f   (target >= 0.5: %s)" % (ratio, "met" if ratio >= 0.5 else "NOT met"))
print("mesa-injector p99 under steady load (%.0f req/s, %.0f%% of its maximum): %.3f ms (target < 2 ms: %s)"
      % (paced["rps"], 100 * paced["rps"] / med(mi, "rps"), p99, "met" if p99 < 2 else "NOT met"))
print("mesa-injector p99 at saturation: %.3f ms (median of rounds; nginx's own: %.3f ms)" % (med(mi, "p99"), med(ng, "p99")))
print("mesa-injector peak RSS (VmHWM): %.1f MiB (target < 10 MiB: %s)"
      % (hwm_kib / 1024, "met" if hwm_kib < 10 * 1024 else "NOT met"))
PY
