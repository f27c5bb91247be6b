#!/usr/bin/env bash
# make bench-webhook: wrk over TLS keep-alive against mesa-injector (POST of
# a realistic virt-launcher AdmissionReview to /mutate-pods) and against
# nginx returning a fixed 200 over TLS with the same certificate, in the same
# run, on the same loopback. Prints req/s of each, the ratio, p99 latency and
# mesa-injector's peak RSS (VmHWM). A benchmark: it reports whether the
# targets are met (ratio >= 0.5, p99 < 2 ms, RSS < 10 MiB), it does not fail
# on them. Environment: BENCH_DURATION (10s), BENCH_CONNECTIONS (16),
# BENCH_THREADS (2).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MI=${MESA_INJECTOR:-$BUILD/mesa-injector}
DUR=${BENCH_DURATION:-10s}
CONN=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
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
python3 webhook/tests/admission_tool.py wrap pod webhook/tests/fixtures/pod-virt-launcher.json --uid bench >"$D/review.json"
export BENCH_BODY=$D/review.json

MI_PORT=$(port)
"$MI" serve --listen "127.0.0.1:$MI_PORT" --cert "$D/certs/tls.crt" --key "$D/certs/tls.key" 2>"$D/mi.log" &
MI_PID=$!

NGINX_PORT=$(port)
mkdir -p "$D/nginx"
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
		listen 127.0.0.1:$NGINX_PORT ssl;
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
# The answer must be a real mutation, not an error page.
curl -sf --cacert "$D/certs/ca.crt" -H 'Content-Type: application/json' --data-binary @"$D/review.json" \
	"https://127.0.0.1:$MI_PORT/mutate-pods" | grep -q '"patchType":"JSONPatch"' ||
	{ echo "bench-webhook: /mutate-pods did not patch" >&2; exit 1; }

run_wrk() {
	wrk -t"$THREADS" -c"$CONN" -d"$DUR" --latency -s webhook/bench/post.lua "$1" >"$2" 2>&1
}
# Same run, one after the other on the 2 cores (concurrently they would
# steal each other's CPU and measure the scheduler).
run_wrk "https://127.0.0.1:$MI_PORT/mutate-pods" "$D/wrk-mi.txt"
run_wrk "https://127.0.0.1:$NGINX_PORT/" "$D/wrk-nginx.txt"
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$MI_PID/status")

python3 - "$D/wrk-mi.txt" "$D/wrk-nginx.txt" "$HWM" "$DUR" "$CONN" "$THREADS" "$(stat -c %s "$D/review.json")" <<'PY'
import re, sys
def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", t)
    p50 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    reqs = int(re.search(r"(\d+) requests in", t).group(1))
    return rps, p50, p99, int(errs.group(1)) if errs else 0, sock.group(1) if sock else "none", reqs
mi, ng = parse(sys.argv[1]), parse(sys.argv[2])
hwm_kib = int(sys.argv[3])
ratio = mi[0] / ng[0]
print("bench-webhook: wrk -t%s -c%s -d%s, TLS keep-alive, POST of a %s-byte virt-launcher AdmissionReview"
      % (sys.argv[6], sys.argv[5], sys.argv[4], sys.argv[7]))
print("%-28s %12s %10s %10s %8s %s" % ("server", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"))
print("%-28s %12.0f %10.3f %10.3f %8d %s" % ("mesa-injector /mutate-pods", mi[0], mi[1], mi[2], mi[3], mi[4]))
print("%-28s %12.0f %10.3f %10.3f %8d %s" % ("nginx fixed 200", ng[0], ng[1], ng[2], ng[3], ng[4]))
print("ratio mesa-injector/nginx: %.2f   (target >= 0.5: %s)" % (ratio, "met" if ratio >= 0.5 else "NOT met"))
print("mesa-injector p99: %.3f ms      (target < 2 ms: %s)" % (mi[2], "met" if mi[2] < 2 else "NOT met"))
print("mesa-injector peak RSS (VmHWM): %.1f MiB (target < 10 MiB: %s)"
      % (hwm_kib / 1024, "met" if hwm_kib < 10 * 1024 else "NOT met"))
PY
