"""Run mesa-injector's device plugin against kubelet_peer.Kubelet and print,
as JSON, the ContainerAllocateResponse the kubelet would get for one share
of RENDER_NODE (e.g. renderD128): what the OCI-runtime test turns into a
container's devices the way containerd does.

    allocate_once.py MESA_INJECTOR GEN_DIR DEVICE_ROOT SOCKET_DIR RENDER_NODE"""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubelet_peer as kp  # noqa: E402

MI, GEN, ROOT, SOCKDIR, NODE = sys.argv[1:6]
pb, pbg = kp.load_stubs(GEN)
kubelet = kp.Kubelet(pb, pbg, SOCKDIR)
plugin_proc = subprocess.Popen([MI, "device-plugin", "--socket-dir", SOCKDIR, "--device-root", ROOT],
                               stdout=subprocess.DEVNULL)
try:
    req, plugin = kubelet.next_registration()
    devices = plugin.next_update()
    assert devices.get(NODE + "-0") == "Healthy", devices
    r = plugin.stub.Allocate(pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=[NODE + "-0"])]), timeout=10)
    c = r.container_responses[0]
    json.dump({"resource": req.resource_name,
               "devices": [{"containerPath": d.container_path, "hostPath": d.host_path,
                            "permissions": d.permissions} for d in c.devices],
               "envs": dict(c.envs), "mounts": len(c.mounts), "annotations": dict(c.annotations),
               "cdiDevices": [d.name for d in c.cdi_devices]}, sys.stdout)
    plugin.close()
finally:
    plugin_proc.send_signal(signal.SIGTERM)
    rc = plugin_proc.wait(timeout=10)
    kubelet.stop()
sys.exit(rc)
