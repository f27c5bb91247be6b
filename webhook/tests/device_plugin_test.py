"""mesa-injector's device plugin against kubelet_peer.Kubelet (python3-grpcio
playing the kubelet, stubs generated from our .proto at test time).
Run by tests/integration/device_plugin_grpc.sh:
    device_plugin_test.py MESA_INJECTOR GEN_DIR WORK_DIR"""

import os
import signal
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubelet_peer as kp  # noqa: E402
from checks import Checks  # noqa: E402

MI, GEN, WORK = sys.argv[1:4]
pb, pbg = kp.load_stubs(GEN)
ROOT = os.path.join(WORK, "root")  # stands in for the host's / (devicePlugin.deviceRoot)
DRI = os.path.join(ROOT, "dev/dri")
SOCKDIR = os.path.join(WORK, "device-plugins")
SHARES = 4
T = Checks("plugin")
ok, fail, check, procs = T.ok, T.fail, T.check, T.procs


def node(name, present=True):
    p = os.path.join(DRI, name)
    if present:
        os.mknod(p, 0o666 | 0o020000, os.makedev(1, 3))  # a character device stands in
    else:
        os.unlink(p)


def start_plugin(name, config, *extra):
    cfg = os.path.join(WORK, name + ".yaml")
    open(cfg, "w").write(config)
    log = os.path.join(WORK, name + ".log")
    p = subprocess.Popen([MI, "device-plugin", "--config", cfg, "--socket-dir", SOCKDIR,
                          "--device-root", ROOT] + list(extra),
                         stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append((p, log))
    return p, log


def stop_plugin(p, log, within=5, sig=signal.SIGTERM):
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=within)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the plugin did not stop within %ss of SIGTERM" % within)
    text = open(log).read()
    check(rc == 0, "the plugin exited %d after SIGTERM (sanitizer report or error?):\n%s" % (rc, text[-2000:]))
    check("Sanitizer" not in text and "runtime error" not in text, "sanitizer report:\n" + text[-3000:])


def registered(kubelet, timeout, what):
    try:
        return kubelet.next_registration(timeout=timeout)
    except TimeoutError as e:
        fail("%s: %s" % (what, e))


def healthy(update):
    return sorted(k for k, v in update.items() if v == "Healthy")


def ids(n, *nodes):
    return ["%s-%d" % (name, i) for name in nodes for i in range(n)]


def allocate(plugin, *containers):
    return plugin.stub.Allocate(pb.AllocateRequest(container_requests=[
        pb.ContainerAllocateRequest(devices_ids=list(c)) for c in containers]), timeout=5)


def expect_status(code, fn, what):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "%s: status %s (%s), expected %s" % (what, e.code(), e.details(), code))
        return e.details()
    fail("%s: no error, expected %s" % (what, code))


def raw_call(plugin, method, payload):
    return plugin.channel.unary_unary(method, request_serializer=None, response_deserializer=None)(
        payload, timeout=5)


CONFIG = "devicePlugin:\n  sharesPerNode: %d\n" % SHARES

# ---- registration and the first list ----------------------------------------------
os.makedirs(DRI)
node("renderD128")
open(os.path.join(DRI, "card0"), "w").close()  # not a render node: never listed
kubelet = kp.Kubelet(pb, pbg, SOCKDIR)
p, log = start_plugin("main", CONFIG)
req, plugin = registered(kubelet, 15, "first registration")
check(req.version == "v1beta1" and req.endpoint == "vgpuenv-render.sock" and
      req.resource_name == "vgpuenv.io/render", "RegisterRequest: %s" % req)
check(req.options.get_preferred_allocation_available and not req.options.pre_start_required,
      "RegisterRequest options: %s" % req.options)
check(plugin.options.get_preferred_allocation_available and not plugin.options.pre_start_required,
      "GetDevicePluginOptions: %s" % plugin.options)
ok("Register: v1beta1, endpoint vgpuenv-render.sock, vgpuenv.io/render; the kubelet dialled back and read the options")
first = plugin.next_update()
check(healthy(first) == ids(SHARES, "renderD128") and len(first) == SHARES, "first list: %s" % first)
ok("ListAndWatch: renderD128 as %d Healthy devices renderD128-0..%d (card0 ignored)" % (SHARES, SHARES - 1))

# ---- health follows the nodes ----------------------------------------------------------
node("renderD129")
u = plugin.next_update()
check(healthy(u) == ids(SHARES, "renderD128", "renderD129"), "after renderD129 appeared: %s" % u)
node("renderD128", present=False)
u = plugin.next_update()
check(healthy(u) == ids(SHARES, "renderD129") and
      all(u["renderD128-%d" % i] == "Unhealthy" for i in range(SHARES)), "after renderD128 went: %s" % u)
ok("a new render node adds %d Healthy devices; a node that disappears turns its devices Unhealthy" % SHARES)
details = expect_status(grpc.StatusCode.FAILED_PRECONDITION, lambda: allocate(plugin, ["renderD128-0"]),
                        "Allocate of a gone node")
check("/dev/dri/renderD128" in details, details)
node("renderD128")
u = plugin.next_update()
check(healthy(u) == ids(SHARES, "renderD128", "renderD129"), "after renderD128 came back: %s" % u)
ok("Allocate on a gone node: FAILED_PRECONDITION naming it; the node back: Healthy again")

# ---- Allocate --------------------------------------------------------------------------------
r = allocate(plugin, ["renderD128-0"])
check(len(r.container_responses) == 1, str(r))
c = r.container_responses[0]
check([(d.container_path, d.host_path, d.permissions) for d in c.devices] ==
      [("/dev/dri/renderD128", "/dev/dri/renderD128", "rw")], str(c))
check(not c.envs and not c.mounts and not c.annotations and not c.cdi_devices, str(c))
ok("Allocate one device: one DeviceSpec /dev/dri/renderD128 (host path as the runtime sees it) rw; no env, mount, annotation")
r = allocate(plugin, ["renderD128-1", "renderD128-3"], ["renderD128-2", "renderD129-0"])
a, b = r.container_responses
check([d.host_path for d in a.devices] == ["/dev/dri/renderD128"], str(a))
check(sorted(d.host_path for d in b.devices) == ["/dev/dri/renderD128", "/dev/dri/renderD129"], str(b))
ok("Allocate several: two shares of one node give it once; shares of two nodes give both; one answer per container")

# ---- GetPreferredAllocation / PreStartContainer -------------------------------------------------
pr = plugin.stub.GetPreferredAllocation(pb.PreferredAllocationRequest(container_requests=[
    pb.ContainerPreferredAllocationRequest(available_deviceIDs=ids(SHARES, "renderD128", "renderD129"),
                                           must_include_deviceIDs=["renderD129-2"], allocation_size=3),
    pb.ContainerPreferredAllocationRequest(available_deviceIDs=["renderD128-0", "renderD129-0", "renderD129-1"],
                                           allocation_size=2)]), timeout=5)
got = [list(x.deviceIDs) for x in pr.container_responses]
check(len(got[0]) == 3 and "renderD129-2" in got[0] and all(i.startswith("renderD129-") for i in got[0]), str(got))
check(sorted(got[1]) == ["renderD129-0", "renderD129-1"], str(got))
ok("GetPreferredAllocation: must-include first, then shares of the same render node, else the node with most free")
plugin.stub.PreStartContainer(pb.PreStartContainerRequest(devices_ids=["renderD128-0"]), timeout=5)
ok("PreStartContainer (not required by the options) answers OK for our devices")

# ---- bad requests: a clear status, the plugin keeps serving -------------------------------------
bad = [
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: raw_call(plugin, "/v1beta1.DevicePlugin/Allocate", b"\xff\xff\xff"),
     "AllocateRequest"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: allocate(plugin), "no container requests"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: allocate(plugin, []), "names no device"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: allocate(plugin, ["renderD128-%d" % SHARES]), "unknown device ID"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: allocate(plugin, ["renderD128-01"]), "unknown device ID"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: allocate(plugin, ["nvidia0-0"]), "unknown device ID"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: plugin.stub.PreStartContainer(
        pb.PreStartContainerRequest(devices_ids=["x"]), timeout=5), "unknown device ID"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: plugin.stub.GetPreferredAllocation(pb.PreferredAllocationRequest(
        container_requests=[pb.ContainerPreferredAllocationRequest(available_deviceIDs=["renderD128-0"],
                                                                   allocation_size=2)]), timeout=5),
     "allocation_size"),
    (grpc.StatusCode.INVALID_ARGUMENT, lambda: raw_call(plugin, "/v1beta1.DevicePlugin/GetDevicePluginOptions",
                                                        b"\x0a\x05ab"), "Empty"),
    (grpc.StatusCode.UNIMPLEMENTED, lambda: raw_call(plugin, "/v1beta1.DevicePlugin/Nope", b""), "unknown method"),
    (grpc.StatusCode.UNIMPLEMENTED, lambda: raw_call(plugin, "/v1beta1.Registration/Register", b""),
     "unknown method"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, lambda: raw_call(plugin, "/v1beta1.DevicePlugin/Allocate",
                                                          b"\x0a" * (2 << 20)), "Received message larger"),
]
for code, fn, words in bad:
    d = expect_status(code, fn, words)
    check(words in (d or ""), "status message %r does not say %r" % (d, words))
    check(p.poll() is None, "the plugin died on a bad request (%s)" % words)
check(len(allocate(plugin, ["renderD129-1"]).container_responses[0].devices) == 1, "Allocate after bad requests")
# A client that opens a stream and vanishes, and one that sends garbage to ListAndWatch.
s = plugin.stub.ListAndWatch(pb.Empty())
next(s)
s.cancel()
expect_status(grpc.StatusCode.INVALID_ARGUMENT,
              lambda: next(iter(plugin.channel.unary_stream("/v1beta1.DevicePlugin/ListAndWatch")(b"\xff", timeout=5))),
              "ListAndWatch with a malformed Empty")
check(p.poll() is None, "the plugin died")
ok("malformed, unknown, oversized and wrong requests get INVALID_ARGUMENT / UNIMPLEMENTED / RESOURCE_EXHAUSTED "
   "with a message; the plugin keeps serving")

# ---- the kubelet restarts: socket removed, kubelet.sock recreated --------------------------------
t0 = time.time()
kubelet.restart()
req2, plugin2 = registered(kubelet, 15, "after the kubelet restart")
check(req2.resource_name == "vgpuenv.io/render", str(req2))
u = plugin2.next_update()
check(healthy(u) == ids(SHARES, "renderD128", "renderD129"), "list after re-registration: %s" % u)
check(len(allocate(plugin2, ["renderD128-0"]).container_responses[0].devices) == 1, "Allocate after restart")
ok("kubelet restart (directory cleaned, kubelet.sock new): the plugin serves a new socket and registers again "
   "in %.1fs" % (time.time() - t0))
plugin.close()

# ---- SIGTERM: an empty list, status OK, socket removed, exit 0 ----------------------------------
t0 = time.time()
stop_plugin(p, log)
u = plugin2.next_update()
while u is not None and u != {}:
    u = plugin2.next_update()
check(u == {}, "no empty list before the stream ended: %s" % u)
check(plugin2.next_update() is None and plugin2.stream_end == grpc.StatusCode.OK,
      "stream end: %s" % plugin2.stream_end)
check(not os.path.exists(os.path.join(SOCKDIR, "vgpuenv-render.sock")), "the socket is left")
check(os.path.exists(os.path.join(SOCKDIR, "kubelet.sock")), "the plugin removed kubelet.sock")
ok("SIGTERM: ListAndWatch gets an empty list and status OK, the socket is removed, exit 0 in %.1fs" % (time.time() - t0))
plugin2.close()
kubelet.stop()

# ---- no kubelet yet: registers as soon as kubelet.sock appears --------------------------------------
for f in os.listdir(SOCKDIR):
    os.unlink(os.path.join(SOCKDIR, f))
p, log = start_plugin("late", CONFIG)
time.sleep(3.5)  # a few failed attempts: the backoff is now 4 s
check(p.poll() is None, "the plugin gave up without a kubelet")
# The kubelet starts slowly: our socket is removed (the plugin serves again
# and its Register fails: no kubelet.sock yet, next try in 1 s, then 2 s),
# and kubelet.sock comes 1.5 s later: Register must follow it at once.
kubelet = kp.Kubelet(pb, pbg, SOCKDIR, listen_delay=1.5)
req, plugin = registered(kubelet, 10, "the late kubelet")
dt = time.time() - kubelet.listening_since
check(dt < 0.8, "registered %.1fs after kubelet.sock appeared (waited for the backoff?)" % dt)
ok("started before the kubelet: retries with backoff, and registers %.2fs after kubelet.sock appears" % dt)
plugin.close()
stop_plugin(p, log, sig=signal.SIGINT)
check(not os.path.exists(os.path.join(SOCKDIR, "vgpuenv-render.sock")), "the socket is left after SIGINT")
ok("Ctrl-C (SIGINT): the same clean stop, socket removed, exit 0")
kubelet.stop()

# ---- a kubelet that refuses, and one that never answers -------------------------------------------
for f in os.listdir(SOCKDIR):
    os.unlink(os.path.join(SOCKDIR, f))
kubelet = kp.Kubelet(pb, pbg, SOCKDIR, refuse="the ResourceName is taken")
p, log = start_plugin("refused", CONFIG)
time.sleep(2)
check(p.poll() is None, "the plugin died when the kubelet refused it")
check("the ResourceName is taken" in open(log).read(), "the kubelet's reason is not logged")
stop_plugin(p, log)
kubelet.stop()
ok("a Register the kubelet refuses: its reason logged, retried, the plugin alive")
for f in os.listdir(SOCKDIR):
    os.unlink(os.path.join(SOCKDIR, f))
kubelet = kp.Kubelet(pb, pbg, SOCKDIR, hang=30)
p, log = start_plugin("hang", CONFIG + "  registerTimeoutSeconds: 1\n")
time.sleep(2.5)
check("status 4" in open(log).read(), "no DEADLINE_EXCEEDED (4) after registerTimeoutSeconds: 1:\n" + open(log).read())
t0 = time.time()
stop_plugin(p, log, within=3)
ok("a kubelet that never answers Register: the deadline (1 s) ends the call; SIGTERM during the next one "
   "stops in %.1fs" % (time.time() - t0))
kubelet.stop()

# ---- bad command lines and configs: exit 2, a clear message -------------------------------------------
for args, words in [(["--device-glob", "relative/renderD*"], "absolute"),
                    (["--device-glob", "/dev/*/renderD128"], "last component"),
                    (["--socket-dir", "/" + "x" * 120], "too long"),
                    (["--bogus"], "usage")]:
    r = subprocess.run([MI, "device-plugin"] + args, capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and words in r.stderr, "%s: rc %d %s" % (args, r.returncode, r.stderr))
open(os.path.join(WORK, "bad.yaml"), "w").write("devicePlugin:\n  resourceName: nvidia.com/render\n")
r = subprocess.run([MI, "device-plugin", "--config", os.path.join(WORK, "bad.yaml")], capture_output=True,
                   text=True, timeout=10)
check(r.returncode == 2 and "bad.yaml:2:17:" in r.stderr and "nvidia.com" in r.stderr, r.stderr)
ok("bad --device-glob, --socket-dir, option, and a nvidia.com/ resourceName (file:line:col): exit 2")
T.passed()
