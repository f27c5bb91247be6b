#!/usr/bin/env python3
"""Reads what the harness's API server said (tests/k8s/): its audit log, its
stored objects, its /metrics; and plays a second mutating webhook.

  k8stool.py mutations AUDIT RESOURCE NS NAME
      the admission webhooks that ran on the create of RESOURCE NS/NAME, one
      line each: "round=R index=I webhook=W mutated=true|false", and
      "round=R index=I failed-open webhook=W" for one that failed under
      failurePolicy Ignore
      (the API server's annotations of that request's audit event).
  k8stool.py patch AUDIT RESOURCE NS NAME WEBHOOK ROUND
      the JSON patch WEBHOOK returned in ROUND, as the API server recorded it.
  k8stool.py applied PATCH OBJECT
      checks that OBJECT (stored, as JSON) holds every value PATCH adds or
      replaces (the API server may add defaults, never drop ours); prints one
      line per operation, exits 1 on the first one not found.
  k8stool.py quantiles [--minus BEFORE] METRICS HISTOGRAM LABEL=VALUE... Q...
      count, mean and quantiles of a Prometheus histogram (its growth since
      the BEFORE scrape), interpolated in its buckets as Prometheus'
      histogram_quantile() does, with the bucket each falls in.
  k8stool.py relabel-webhook HOST PORT CERT KEY
      an HTTPS admission webhook that adds the label vgpuenv.io/relabelled to
      what it is sent unless present: the later webhook whose change makes
      the API server call earlier ones with reinvocationPolicy IfNeeded again.
"""
import base64, json, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def audit_event(path, resource, ns, name):
    found = None
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            ref = e.get("objectRef") or {}
            if (e.get("verb") == "create" and e.get("stage") == "ResponseComplete"
                    and ref.get("resource") == resource and ref.get("namespace") == ns
                    and (ref.get("name") == name or
                         ((e.get("responseObject") or {}).get("metadata") or {}).get("name") == name)):
                found = e
    if found is None:
        sys.exit(f"no audit event for the create of {resource} {ns}/{name} in {path}")
    return found


def mutations(args):
    e = audit_event(*args)
    out = []
    for k, v in sorted((e.get("annotations") or {}).items()):
        if k.startswith("mutation.webhook.admission.k8s.io/"):
            r, i = k.split("/")[1].split("_")[1::2]
            d = json.loads(v)
            out.append((int(r), int(i), f"round={r} index={i} webhook={d['webhook']} "
                        f"mutated={str(d['mutated']).lower()}"))
        elif k.startswith("failed-open.mutation.webhook.admission.k8s.io/"):
            r, i = k.split("/")[1].split("_")[1::2]
            out.append((int(r), int(i) + 1000, f"round={r} index={i} failed-open webhook={v}"))
    for _, _, line in sorted(out):
        print(line)


def patch(args):
    e = audit_event(*args[:4])
    webhook, rnd = args[4], args[5]
    for k, v in (e.get("annotations") or {}).items():
        if k.startswith(f"patch.webhook.admission.k8s.io/round_{rnd}_"):
            d = json.loads(v)
            if d.get("webhook") == webhook:
                print(json.dumps(d["patch"]))
                return
    sys.exit(f"no patch of {webhook} in round {rnd} (audit level Request records patches)")


def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def holds(stored, value):
    """stored has every key and element of value (defaults may be added)."""
    if isinstance(value, dict):
        return isinstance(stored, dict) and all(k in stored and holds(stored[k], v) for k, v in value.items())
    if isinstance(value, list):
        return isinstance(stored, list) and len(stored) == len(value) and all(
            holds(s, v) for s, v in zip(stored, value))
    return stored == value


def applied(args):
    ops = json.load(open(args[0]))
    obj = json.load(open(args[1]))
    for op in ops:
        if op["op"] not in ("add", "replace"):
            print(f"{op['op']} {op['path']}: not checked")
            continue
        tokens = [unescape(t) for t in op["path"].split("/")[1:]]
        cur = obj
        for t in tokens[:-1]:
            cur = cur[int(t)] if isinstance(cur, list) else cur.get(t, {})
        last = tokens[-1]
        if isinstance(cur, list):
            ok = any(holds(e, op["value"]) for e in cur) if last == "-" else holds(cur[int(last)], op["value"])
        else:
            ok = last in cur and holds(cur[last], op["value"])
        print(f"{'ok  ' if ok else 'MISSING'} {op['op']} {op['path']}")
        if not ok:
            sys.exit(1)


def histogram(path, name, labels):
    """bucket upper bound -> cumulative count, and the sum, of the series
    matching labels (added up over the others)."""
    buckets, total_sum = {}, 0.0
    for line in open(path).read().splitlines():
        for part, is_bucket in ((name + "_bucket{", True), (name + "_sum{", False)):
            if not line.startswith(part):
                continue
            lab, val = line[len(part):].rsplit("} ", 1)
            kv = {k: v.strip('"') for k, v in (p.split("=", 1) for p in lab.split(","))}
            if not all(kv.get(l.split("=", 1)[0]) == l.split("=", 1)[1] for l in labels):
                continue
            if is_bucket:
                le = float("inf") if kv["le"] == "+Inf" else float(kv["le"])
                buckets[le] = buckets.get(le, 0) + float(val)
            else:
                total_sum += float(val)
    return buckets, total_sum


def quantiles(args):
    minus = None
    if args[0] == "--minus":
        minus, args = args[1], args[2:]
    name = args[1]
    labels = [a for a in args[2:] if "=" in a]
    qs = [float(a) for a in args[2:] if "=" not in a]
    buckets, total_sum = histogram(args[0], name, labels)
    if minus:
        before, before_sum = histogram(minus, name, labels)
        buckets = {le: c - before.get(le, 0) for le, c in buckets.items()}
        total_sum -= before_sum
    if not buckets:
        sys.exit(f"no {name} buckets with {labels}")
    bs = sorted(buckets.items())
    total = bs[-1][1]
    print(f"count={int(total)} mean={total_sum / max(total, 1) * 1000:.2f}ms", end="")
    for q in qs:
        rank, prev_le, prev_c = q * total, 0.0, 0.0
        for le, c in bs:
            if c >= rank:
                v = prev_le if le == float("inf") else prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
                print(f" p{int(q * 100)}={v * 1000:.1f}ms (in ({prev_le * 1000:g}, {le * 1000:g}] ms)", end="")
                break
            prev_le, prev_c = le, c
    print()


class Relabel(BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        labels = (req["object"].get("metadata") or {}).get("labels")
        resp = {"uid": req["uid"], "allowed": True}
        if labels is None:
            ops = [{"op": "add", "path": "/metadata/labels", "value": {"vgpuenv.io/relabelled": "true"}}]
        elif "vgpuenv.io/relabelled" not in labels:
            ops = [{"op": "add", "path": "/metadata/labels/vgpuenv.io~1relabelled", "value": "true"}]
        else:
            ops = []
        if ops:
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def relabel_webhook(args):
    host, port, cert, key = args
    srv = ThreadingHTTPServer((host, int(port)), Relabel)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("serving", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    cmds = {"mutations": mutations, "patch": patch, "applied": applied, "quantiles": quantiles,
            "relabel-webhook": relabel_webhook}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])
