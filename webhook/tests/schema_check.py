"""Every object of a multi-document YAML file checked against upstream's
OpenAPI v3 schema of its kind (kubernetes v1.36.3, api/openapi-spec/v3),
with python3-jsonschema; strict like `kubectl --validate=strict`: a field
the schema does not know is an error (objects that declare properties get
additionalProperties: false unless they preserve unknown fields).

    schema_check.py OPENAPI_V3_DIR FILE.yaml"""

import copy
import json
import os
import sys

import jsonschema
import yaml

V3, FILE = sys.argv[1:3]


def doc_for(api_version):
    group, _, version = api_version.rpartition("/")
    name = "api__v1_openapi.json" if not group else "apis__%s__%s_openapi.json" % (group, version)
    return json.load(open(os.path.join(V3, name)))


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and \
                not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)


errors = 0
for obj in yaml.safe_load_all(open(FILE)):
    if not obj:
        continue
    doc = doc_for(obj["apiVersion"])
    group, _, version = obj["apiVersion"].rpartition("/")
    schemas = doc["components"]["schemas"]
    names = [n for n, s in schemas.items() for g in s.get("x-kubernetes-group-version-kind", [])
             if (g["group"], g["version"], g["kind"]) == (group, version, obj["kind"])]
    if not names:
        print("FAIL: no upstream schema for %s %s" % (obj["apiVersion"], obj["kind"]))
        errors += 1
        continue
    root = copy.deepcopy(doc)
    strict(root["components"])
    schema = dict(root["components"]["schemas"][names[0]], components=root["components"])
    v = jsonschema.Draft202012Validator(schema)
    what = "%s %s/%s" % (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    for e in v.iter_errors(obj):
        print("FAIL: %s: %s: %s" % (what, "/".join(str(p) for p in e.absolute_path), e.message[:300]))
        errors += 1
    print("schema ok: %s (%s)" % (what, names[0]))
sys.exit(1 if errors else 0)
