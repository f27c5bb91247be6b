-- wrk script for `make bench-webhook`: POST the AdmissionReview named by
-- $BENCH_BODY on every request (keep-alive), to mesa-injector and to nginx
-- alike so both servers read the same bytes.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
