"""Stand-in for virt-controller rendering a VMI's virt-launcher pod, the part
of it that concerns hook sidecars; virt-controller itself cannot run here.
Run against the test harness's real API server with its kubectl:

    virt_controller_standin.py KUBECTL KUBECONFIG NAMESPACE VMI NODE COMPUTE_IMAGE

Mirrors kubevirt/kubevirt d923fdb8:
  - pkg/hooks/hooks.go UnmarshalHookSidecarList: the VMI's
    hooks.kubevirt.io/hookSidecars annotation, a JSON list of {image,
    imagePullPolicy, command, args, configMap{name,key,hookPath}, pvc};
  - pkg/virt-controller/services/template.go RenderLaunchManifest: for
    sidecar i, a container hook-sidecar-<i> (sidecarContainerName) from
    newSidecarContainerRenderer: its image (empty: $SIDECAR_SHIM_IMAGE),
    imagePullPolicy, command, args, env CONTAINER_NAME=hook-sidecar-<i>,
    the volume hook-sidecar-sockets mounted at /var/run/kubevirt-hooks with
    subPath hook-sidecar-<i> (sidecarVolumeMount), for a non-root VMI
    runAsUser/runAsGroup 107, runAsNonRoot and every capability dropped
    (WithNonRoot, WithDropALLCapabilities); with a configMap, the ConfigMap
    is read from the VMI's own namespace first
    (virtClient.CoreV1().ConfigMaps(vmi.Namespace).Get) and, when that
    fails, the render fails and no pod is created (the VMI controller then
    reports FailedCreate, pkg/virt-controller/watch/vmi/lifecycle.go); else
    a volume {name: <cm>, configMap: {name, defaultMode: 0755}} mounted at
    hookPath with subPath key (configMapVolumeMount);
  - rendervolumes.go withSidecarVolumes: the emptyDir hook-sidecar-sockets,
    and compute mounts it at /var/run/kubevirt-hooks;
  - the pod: label kubevirt.io=virt-launcher, compute first; virt-launcher
    pods do not mount a service account token.
What the harness needs and virt-controller would not do: spec.nodeName (no
scheduler), hostNetwork (no CNI), and a compute container from
COMPUTE_IMAGE that only sleeps (virt-launcher cannot run here), which
requests what its VMI asks for in resources.
Prints the pod it created as JSON; exit 3 with "FailedCreate: ..." when the
render fails as upstream's does."""

import json
import subprocess
import sys

kubectl, kubeconfig, ns, vmi_name, node, compute_image = sys.argv[1:7]
SOCKETS = "/var/run/kubevirt-hooks"  # pkg/hooks/hooks.go HookSocketsSharedDirectory
NON_ROOT_UID = 107


def kc(*args, stdin=None):
    return subprocess.run([kubectl, "--kubeconfig", kubeconfig] + list(args), input=stdin,
                          capture_output=True, text=True)


r = kc("get", "vmi", vmi_name, "-n", ns, "-o", "json")
if r.returncode != 0:
    sys.exit("cannot read the VMI: " + r.stderr)
vmi = json.loads(r.stdout)
raw = vmi["metadata"].get("annotations", {}).get("hooks.kubevirt.io/hookSidecars")
sidecars = json.loads(raw) if raw else []

volumes = [{"name": "hook-sidecar-sockets", "emptyDir": {}}] if sidecars else []
compute = {
    "name": "compute", "image": compute_image, "imagePullPolicy": "Never",
    "command": ["/bin/sh", "-c", "sleep 3600"],
    "volumeMounts": [{"name": "hook-sidecar-sockets", "mountPath": SOCKETS}] if sidecars else [],
}
containers = [compute]
for i, s in enumerate(sidecars):
    name = "hook-sidecar-%d" % i
    c = {"name": name, "image": s.get("image") or "SIDECAR_SHIM_IMAGE-of-virt-controller",
         "env": [{"name": "CONTAINER_NAME", "value": name}],
         "volumeMounts": [{"name": "hook-sidecar-sockets", "mountPath": SOCKETS, "subPath": name}],
         "securityContext": {"runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID, "runAsNonRoot": True,
                             "capabilities": {"drop": ["ALL"]}}}
    if s.get("imagePullPolicy"):
        c["imagePullPolicy"] = s["imagePullPolicy"]
    if s.get("command"):
        c["command"] = s["command"]
    if s.get("args"):
        c["args"] = s["args"]
    cm = s.get("configMap")
    if cm:
        g = kc("get", "configmap", cm["name"], "-n", ns, "-o", "json")
        if g.returncode != 0:
            print("FailedCreate: " + g.stderr.strip(), flush=True)
            sys.exit(3)
        volumes.append({"name": cm["name"], "configMap": {"name": cm["name"], "defaultMode": 0o755}})
        c["volumeMounts"].append({"name": cm["name"], "mountPath": cm["hookPath"], "subPath": cm["key"]})
    containers.append(c)

pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "virt-launcher-" + vmi_name, "namespace": ns,
                    "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": vmi_name}},
       "spec": {"nodeName": node, "hostNetwork": True, "restartPolicy": "Never",
                "automountServiceAccountToken": False, "volumes": volumes, "containers": containers}}
r = kc("create", "-f", "-", "-o", "json", stdin=json.dumps(pod))
if r.returncode != 0:
    print("FailedCreate: " + r.stderr.strip(), flush=True)
    sys.exit(3)
print(r.stdout)
