-- wrk script for `make bench-webhook`: POST the AdmissionReview named by
-- $BENCH_BODY on every request (keep-alive), to mesa-injector and to nginx
-- alike so both servers read the same bytes. The headers are those the API
-- server's webhook client sends; Accept-Encoding is what Go's http.Transport
-- adds by itself (client-go leaves DisableCompression false), unless
-- $BENCH_ACCEPT_ENCODING says otherwise ("" for none).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, */*"
wrk.headers["User-Agent"] = "kube-apiserver-admission"
local ae = os.getenv("BENCH_ACCEPT_ENCODING")
if ae == nil then ae = "gzip" end
if ae ~= "" then wrk.headers["Accept-Encoding"] = ae end
-- $BENCH_DELAY_MS paces each connection (one request, then that pause):
-- latency under a steady load instead of at saturation.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
	function delay() return pause end
end
