#!/usr/bin/env python3
"""Test helper for mesa-injector: wraps objects into AdmissionReviews, and
checks and applies the webhook's answers with python3-jsonpatch, an RFC 6902
implementation independent of ours.

  wrap KIND OBJECT.json [--uid U] [--namespace NS] [--operation OP]
        print an admission.k8s.io/v1 AdmissionReview for the object
        (KIND: pod or vmi)
  apply REQUEST.json RESPONSE.json [--expect patched|unchanged|denied]
        check the response against the request (uid echoed, apiVersion,
        kind, patchType), apply the patch to the request's object and print
        the result

Tests chain: wrap | curl POST | apply.
"""
import argparse
import base64
import json
import sys
import uuid

KINDS = {
    "pod": {"group": "", "version": "v1", "kind": "Pod"},
    "vmi": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
}
RESOURCES = {
    "pod": {"group": "", "version": "v1", "resource": "pods"},
    "vmi": {"group": "kubevirt.io", "version": "v1", "resource": "virtualmachineinstances"},
}


def fail(msg):
    print("admission_tool: " + msg, file=sys.stderr)
    sys.exit(1)


def wrap(args):
    obj = json.load(open(args.object))
    ns = args.namespace or obj.get("metadata", {}).get("namespace", "default")
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": args.uid or str(uuid.uuid4()),
            "kind": KINDS[args.kind],
            "resource": RESOURCES[args.kind],
            "requestKind": KINDS[args.kind],
            "requestResource": RESOURCES[args.kind],
            "name": obj.get("metadata", {}).get("name", ""),
            "namespace": ns,
            "operation": args.operation,
            "userInfo": {"username": "system:serviceaccount:kubevirt:kubevirt-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    # Compact, as the API server's encoding/json writes it.
    json.dump(review, sys.stdout, separators=(",", ":"))


def apply(args):
    req = json.load(open(args.request))
    try:
        resp = json.load(open(args.response))
    except ValueError as e:
        fail("response is not JSON: %s" % e)
    if resp.get("apiVersion") != "admission.k8s.io/v1" or resp.get("kind") != "AdmissionReview":
        fail("response is not an admission.k8s.io/v1 AdmissionReview: %r" % resp)
    r = resp.get("response") or fail("no response object")
    if r.get("uid") != req["request"]["uid"]:
        fail("uid not echoed: %r != %r" % (r.get("uid"), req["request"]["uid"]))
    obj = req["request"]["object"]
    if args.expect == "denied":
        if r.get("allowed") is not False:
            fail("expected a denial, got %r" % r)
        if not r.get("status", {}).get("message"):
            fail("denial without status.message")
        print(json.dumps(r["status"]))
        return
    if r.get("allowed") is not True:
        fail("not allowed: %r" % r)
    if "patch" not in r:
        if args.expect == "patched":
            fail("expected a patch, got none: %r" % r)
        json.dump(obj, sys.stdout, indent=1, sort_keys=True)
        return
    if args.expect == "unchanged":
        fail("expected no patch, got %s" % base64.b64decode(r["patch"]).decode())
    if r.get("patchType") != "JSONPatch":
        fail("patchType is %r" % r.get("patchType"))
    ops = json.loads(base64.b64decode(r["patch"], validate=True))
    if not isinstance(ops, list) or not ops:
        fail("patch is not a non-empty list: %r" % ops)
    if args.ops_out:
        json.dump(ops, open(args.ops_out, "w"), indent=1)
    import jsonpatch  # python3-jsonpatch; only needed here

    # Independent RFC 6902 application; raises on a bad pointer, a missing
    # parent or an "add" to an index past the end.
    result = jsonpatch.JsonPatch(ops).apply(obj)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wrap")
    w.add_argument("kind", choices=KINDS)
    w.add_argument("object")
    w.add_argument("--uid")
    w.add_argument("--namespace")
    w.add_argument("--operation", default="CREATE")
    a = sub.add_parser("apply")
    a.add_argument("request")
    a.add_argument("response")
    a.add_argument("--expect", choices=["patched", "unchanged", "denied", "any"], default="any")
    a.add_argument("--ops-out")
    args = p.parse_args()
    {"wrap": wrap, "apply": apply}[args.cmd](args)


if __name__ == "__main__":
    main()
