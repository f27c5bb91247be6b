"""Stand-in for the controllers that act when virt-operator's
VIRT_LAUNCHER_IMAGE changes; none of them runs in the test harness (no
KubeVirt, no kube-controller-manager). Polls the KubeVirt namespace through
the harness's real API server with its kubectl, until killed:

    kubevirt_controllers_standin.py KUBECTL KUBECONFIG NAMESPACE

Mirrors:
  - virt-operator, kubevirt d923fdb8: it reads VIRT_LAUNCHER_IMAGE from its
    own environment (pkg/virt-operator/util/config.go,
    VirtLauncherImageEnvName), so it acts once its Deployment's new pod runs
    (here: once that Deployment's status observed the new generation); then
    virt-controller's container args carry `--launcher-image IMAGE`
    (resource/generate/components/deployments.go NewControllerDeployment)
    and virt-handler's DaemonSet the launcher image in its virt-launcher
    init container (daemonsets.go); unset, the default
    REGISTRY/virt-launcher:TAG;
  - kube-controller-manager's deployment and daemonset controllers, the
    status fields `kubectl rollout status` reads (kubectl
    pkg/polymorphichelpers/rollout_status.go: a Deployment is rolled out
    when observedGeneration >= generation and updated/available replicas
    equal spec.replicas; a DaemonSet when updatedNumberScheduled and
    numberAvailable reach desiredNumberScheduled), set one second after a
    change, as a rollout takes time.
Each change it makes is printed, so the test shows what happened."""

import json
import subprocess
import sys
import time

kubectl, kubeconfig, ns = sys.argv[1:4]
LAG = 1.0
seen = {}  # (kind, name) -> (generation, first seen at)


def kc(*args, stdin=None):
    r = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "-n", ns] + list(args), input=stdin,
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def env_of(dep, name):
    for c in dep["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env", []):
            if e["name"] == name:
                return e.get("value", "")
    return None


def rolled_out(o):
    return o.get("status", {}).get("observedGeneration", 0) >= o["metadata"]["generation"]


def status_for(o):
    gen = o["metadata"]["generation"]
    if o["kind"] == "Deployment":
        n = o["spec"].get("replicas", 1)
        return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                "availableReplicas": n,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    return {"observedGeneration": gen, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
            "updatedNumberScheduled": 1, "numberReady": 1, "numberAvailable": 1, "numberMisscheduled": 0}


def controllers(objs):
    now = time.monotonic()
    for o in objs:
        key = (o["kind"], o["metadata"]["name"])
        gen = o["metadata"]["generation"]
        if rolled_out(o):
            continue
        if seen.get(key, (None,))[0] != gen:
            seen[key] = (gen, now)
        elif now - seen[key][1] >= LAG:
            kind = "deployment" if o["kind"] == "Deployment" else "daemonset"
            kc("patch", kind, key[1], "--subresource=status", "--type", "merge", "-p",
               json.dumps({"status": status_for(o)}))
            print("rollout: %s/%s generation %d done" % (kind, key[1], gen), flush=True)


def operator(objs):
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    op = by.get(("Deployment", "virt-operator"))
    ctl = by.get(("Deployment", "virt-controller"))
    handler = by.get(("DaemonSet", "virt-handler"))
    if not op or not ctl or not rolled_out(op):
        return
    want = env_of(op, "VIRT_LAUNCHER_IMAGE") or op["metadata"]["annotations"]["standin/default-launcher"]
    args = ctl["spec"]["template"]["spec"]["containers"][0]["args"]
    i = args.index("--launcher-image")
    if args[i + 1] != want:
        args[i + 1] = want
        kc("patch", "deployment", "virt-controller", "--type", "json", "-p",
           json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]))
        print("virt-operator: virt-controller --launcher-image %s" % want, flush=True)
    if handler:
        inits = handler["spec"]["template"]["spec"].get("initContainers", [])
        for j, c in enumerate(inits):
            if c["name"] == "virt-launcher" and c["image"] != want:
                kc("patch", "daemonset", "virt-handler", "--type", "json", "-p",
                   json.dumps([{"op": "replace", "path": "/spec/template/spec/initContainers/%d/image" % j,
                                "value": want}]))
                print("virt-operator: virt-handler's virt-launcher image %s" % want, flush=True)


while True:
    out = kc("get", "deployments,daemonsets", "-o", "json")
    if out:
        items = json.loads(out)["items"]
        operator(items)
        controllers(items)
    time.sleep(0.3)
