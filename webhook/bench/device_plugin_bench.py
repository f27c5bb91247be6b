"""make bench-device-plugin: Allocate latency of mesa-injector's device plugin
as the kubelet sees it, from the python3-grpcio kubelet peer
(webhook/tests/kubelet_peer.py) over the plugin's unix socket: one share,
then four shares of two render nodes, each call on its own with a 5 s
deadline, as the kubelet's device manager makes them. Prints p50/p99/max
and calls per second; the peer's own cost (Python, protobuf, grpcio) is in
the figure, so a floor is printed too: the same client calling
GetDevicePluginOptions, which the plugin answers without any work, and
the plugin's own CPU time per call (from /proc, all its threads), which the
machine's load does not blur. A benchmark: it reports, it does not fail on
a target.

    device_plugin_bench.py MESA_INJECTOR GEN_DIR WORK_DIR [CALLS]"""

import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import kubelet_peer as kp  # noqa: E402

MI, GEN, WORK = sys.argv[1:4]
CALLS = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
pb, pbg = kp.load_stubs(GEN)
dri = os.path.join(WORK, "root/dev/dri")
os.makedirs(dri)
for n in ("renderD128", "renderD129"):
    os.mknod(os.path.join(dri, n), 0o666 | 0o020000, os.makedev(1, 3))
kubelet = kp.Kubelet(pb, pbg, os.path.join(WORK, "device-plugins"))
plugin_proc = subprocess.Popen([MI, "device-plugin", "--socket-dir", os.path.join(WORK, "device-plugins"),
                                "--device-root", os.path.join(WORK, "root")], stderr=subprocess.DEVNULL)
try:
    req, plugin = kubelet.next_registration()
    plugin.next_update()

    def cpu_seconds():
        with open("/proc/%d/stat" % plugin_proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def measure(name, fn):
        for _ in range(200):  # warm up: connection, allocator, caches
            fn()
        lat = []
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        for _ in range(CALLS):
            t = time.perf_counter()
            fn()
            lat.append((time.perf_counter() - t) * 1e6)
        total = time.perf_counter() - t0
        cpu = (cpu_seconds() - cpu0) / CALLS * 1e6
        lat.sort()
        print("%-34s p50 %6.0f us  p99 %6.0f us  max %6.0f us  %6.0f calls/s  plugin CPU %4.0f us/call" % (
            name, statistics.median(lat), lat[int(len(lat) * 0.99) - 1], lat[-1], CALLS / total, cpu))

    one = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=["renderD128-7"])])
    four = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(
        devices_ids=["renderD128-1", "renderD128-2", "renderD129-1", "renderD129-2"])])
    measure("Allocate, 1 device", lambda: plugin.stub.Allocate(one, timeout=5))
    measure("Allocate, 4 devices on 2 nodes", lambda: plugin.stub.Allocate(four, timeout=5))
    measure("floor: GetDevicePluginOptions", lambda: plugin.stub.GetDevicePluginOptions(pb.Empty(), timeout=5))
    with open("/proc/%d/status" % plugin_proc.pid) as f:
        rss = [line.split()[1] for line in f if line.startswith("VmHWM")][0]
    print("device plugin peak RSS (VmHWM): %.1f MiB; %d calls per line" % (int(rss) / 1024, CALLS))
    plugin.close()
finally:
    plugin_proc.send_signal(signal.SIGTERM)
    plugin_proc.wait(timeout=10)
    kubelet.stop()
