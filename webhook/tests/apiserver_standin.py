"""A stand-in for the parts of kube-apiserver that `kubectl apply
--dry-run=client --validate=false` reads: legacy discovery (/api, /apis and
each group version's APIResourceList) and GETs of the objects it would
create, answered 404 (nothing exists yet). Discovery is generated from
upstream's OpenAPI v3 documents (kubernetes v1.36.3,
api/openapi-spec/v3/*.json): each collection path gives a resource, its
scope, its kind (x-kubernetes-group-version-kind) and its verbs
(x-kubernetes-action), as the real server's discovery describes them.
Any write is answered 405 and recorded: a client dry run must not write.

    apiserver_standin.py OPENAPI_V3_DIR PORT_FILE REQUEST_LOG"""

import json
import os
import re
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

V3, PORT_FILE, LOG = sys.argv[1:4]
ACTION_VERB = {"list": "list", "post": "create", "deletecollection": "deletecollection",
               "get": "get", "put": "update", "patch": "patch", "delete": "delete", "watch": "watch"}


def group_versions():
    """{(group, version): openapi document} for every served group version."""
    out = {}
    for f in os.listdir(V3):
        m = re.fullmatch(r"api__v1_openapi\.json|apis__(.+)__(v[0-9a-z]+)_openapi\.json", f)
        if m:
            out[(m.group(1) or "", m.group(2) or "v1")] = os.path.join(V3, f)
    return out


def resources(group, version, path):
    doc = json.load(open(path))
    prefix = "/api/v1" if not group else "/apis/%s/%s" % (group, version)
    found = {}
    for p, ops in doc["paths"].items():
        m = re.fullmatch(re.escape(prefix) + r"(/namespaces/\{namespace\})?/([a-z0-9]+)(/\{name\})?", p)
        if not m or m.group(2) == "namespaces" and m.group(1):
            continue
        namespaced, name = m.group(1) is not None, m.group(2)
        for op in ops.values():
            if not isinstance(op, dict) or "x-kubernetes-action" not in op:
                continue
            gvk = op.get("x-kubernetes-group-version-kind", {})
            r = found.setdefault(name, {"name": name, "singularName": "", "namespaced": namespaced,
                                        "kind": gvk.get("kind", ""), "verbs": []})
            verb = ACTION_VERB.get(op["x-kubernetes-action"])
            if verb and verb not in r["verbs"]:
                r["verbs"].append(verb)
            r["singularName"] = r["kind"].lower()
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": group + "/" + version if group else version,
            "resources": sorted(found.values(), key=lambda r: r["name"])}


GV = group_versions()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def record(self, code):
        with open(LOG, "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path.split("?")[0], code))

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.record(code)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/version":
            return self.send(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.3"})
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = {}
            for g, v in sorted(GV):
                if g:
                    groups.setdefault(g, []).append({"groupVersion": g + "/" + v, "version": v})
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[0]} for g, vs in groups.items()]})
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if m:
            key = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            if key in GV:
                return self.send(200, resources(key[0], key[1], GV[key]))
        self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                        "code": 404, "message": "the server could not find the requested resource"})

    def refuse(self):
        self.send(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405,
                        "reason": "MethodNotAllowed", "message": "this stand-in takes no writes"})

    do_POST = do_PUT = do_PATCH = do_DELETE = refuse


# Stopped with SIGTERM by the tests' cleanup, which wants exit 0.
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
