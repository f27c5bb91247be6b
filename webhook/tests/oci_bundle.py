"""The OCI config.json a Kubernetes node's runtime would give virt-launcher's
compute container, for runc, in two variants:

  hostpath      the old way: /dev/dri as a hostPath volume (a bind mount),
                default device rules;
  norule        a control: the device node without its cgroup rule;
  deviceplugin  the device plugin's DeviceSpec turned into a device the way
                containerd does it (containerd main, internal/cri/opts/
                spec_linux_opts.go WithDevices -> pkg/oci/spec_opts_linux.go
                WithDevices and utils_unix.go DeviceFromPath): the host path
                with symlinks resolved, lstat()ed; linux.devices gets
                {type, path: containerPath, major, minor, fileMode: the
                permission bits, uid, gid of the host node} and
                linux.resources.devices an allow rule {type, major, minor,
                access: permissions}.

Both carry the webhook's library mounts from the mutated pod (hostPath
volumes of compute as read-only bind mounts, rbind + rprivate as containerd
makes them) and run PROBE as uid/gid 107 (virt-launcher's QEMU user).

    oci_bundle.py BASE_CONFIG POD_JSON ALLOCATE_JSON NODE_STAT ROOTFS OUT_DIR PROBE...
NODE_STAT: "type major minor mode uid gid" of the DeviceSpec's host path on
the node (stat -L -c '%F %t %T %a %u %g', major/minor in hex)."""

import copy
import json
import os
import sys

base_file, pod_file, alloc_file, node_stat, rootfs, out = sys.argv[1:7]
probe = sys.argv[7:]
base = json.load(open(base_file))
pod = json.load(open(pod_file))
alloc = json.load(open(alloc_file))

compute = [c for c in pod["spec"]["containers"] if c["name"] == "compute"][0]
host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["spec"].get("volumes", []) if "hostPath" in v}
library_mounts = [{"destination": m["mountPath"], "type": "bind", "source": host_paths[m["name"]],
                   "options": ["rbind", "rprivate", "ro" if m.get("readOnly") else "rw"]}
                  for m in compute.get("volumeMounts", []) if m["name"] in host_paths]


def container(extra_mounts):
    c = copy.deepcopy(base)
    c["root"] = {"path": rootfs, "readonly": True}
    c["process"].update({"terminal": False, "args": probe, "cwd": "/", "user": {"uid": 107, "gid": 107}})
    c["process"].pop("rlimits", None)  # see ../shared/ENVIRONMENT.md: runc here refuses them
    c["hostname"] = "compute"
    c["mounts"] = c["mounts"] + library_mounts + extra_mounts
    return c


os.makedirs(out, exist_ok=True)
# The old webhook's hostPath of the render node's directory.
old = container([{"destination": "/dev/dri", "type": "bind", "source": "/dev/dri",
                  "options": ["rbind", "rprivate", "ro"]}])
json.dump(old, open(os.path.join(out, "config-hostpath.json"), "w"), indent=1)

parts = node_stat.split()
kind, (major, minor, mode, uid, gid) = " ".join(parts[:-5]), parts[-5:]
assert kind == "character special file", node_stat
new = container([])
linux = new["linux"]
for d in alloc["devices"]:
    linux.setdefault("devices", []).append({
        "type": "c", "path": d["containerPath"], "major": int(major, 16), "minor": int(minor, 16),
        "fileMode": int(mode, 8), "uid": int(uid), "gid": int(gid)})
    linux["resources"]["devices"].append({"allow": True, "type": "c", "major": int(major, 16),
                                          "minor": int(minor, 16), "access": d["permissions"]})
json.dump(new, open(os.path.join(out, "config-deviceplugin.json"), "w"), indent=1)
# A control: the node created in the container, but no cgroup rule for it.
norule = copy.deepcopy(new)
norule["linux"]["resources"]["devices"] = base["linux"]["resources"]["devices"]
json.dump(norule, open(os.path.join(out, "config-norule.json"), "w"), indent=1)
print("library mounts: %d, device rules: %s" % (len(library_mounts), json.dumps(linux["resources"]["devices"])))
