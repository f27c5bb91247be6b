"""mesa-injector's hook sidecar against hook_launcher_peer.HookManager
(python3-grpcio playing virt-launcher's hook manager, stubs generated from
our .proto files at test time), in the directory layout virt-controller
gives a virt-launcher pod (kubevirt d923fdb8 services/template.go: the
hook-sidecar-sockets emptyDir, mounted into sidecar N at
/var/run/kubevirt-hooks with subPath hook-sidecar-N, CONTAINER_NAME set).
Run by tests/integration/hook_sidecar_grpc.sh:
    hook_sidecar_test.py MESA_INJECTOR GEN_DIR WORK_DIR"""

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hook_launcher_peer as hp  # noqa: E402
from checks import Checks  # noqa: E402

MI, GEN, WORK = sys.argv[1:4]
info, cb = hp.load_stubs(GEN)
HOOKS = os.path.join(WORK, "kubevirt-hooks")  # compute's /var/run/kubevirt-hooks
DOMAIN = open("webhook/tests/fixtures/domain-vgpu.xml", "rb").read()
VMI = open("webhook/tests/fixtures/vmi-gpu.json", "rb").read()
RN = "/dev/dri/renderD128"
T = Checks("sidecar")
ok, fail, check, procs = T.ok, T.fail, T.check, T.procs


def start(container, *args, env_name=True):
    """A sidecar as virt-controller runs it: its own subPath directory."""
    d = os.path.join(HOOKS, container)
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ)
    env.pop("CONTAINER_NAME", None)
    if env_name:
        env["CONTAINER_NAME"] = container
    log = os.path.join(WORK, container + ".log")
    p = subprocess.Popen([MI, "hook-sidecar", "--socket-dir", d] + list(args), env=env,
                         stdout=open(log, "w"), stderr=subprocess.STDOUT)
    procs.append((p, log))
    return p, log, d


def wait_socket(d, within=10):
    end = time.time() + within
    while time.time() < end:
        if any(n.endswith(".sock") for n in os.listdir(d)):
            return
        time.sleep(0.05)
    fail("no socket in %s after %ds" % (d, within))


def graphics(xml):
    root = ET.fromstring(xml)
    return [(g.get("type"), [gl.get("rendernode") for gl in g.findall("gl")])
            for g in root.find("devices").findall("graphics")]


def exited(p, within):
    try:
        return p.wait(timeout=within)
    except subprocess.TimeoutExpired:
        fail("the sidecar did not exit within %ds" % within)


# ---- one sidecar: Collect, Info, OnDefineDomain, Shutdown -------------------------------------------
p, log, d = start("hook-sidecar-0")
wait_socket(d)
check(os.listdir(d) == ["mesa-injector-hook-sidecar-0.sock"], "socket name: %s" % os.listdir(d))
ok("the socket is mesa-injector-$CONTAINER_NAME.sock in the sidecar's own directory")

m = hp.HookManager(info, cb, HOOKS)
infos = m.collect(1, 10)
check([i.name for i in infos] == ["mesa-injector"], "Info name: %s" % infos)
check(list(infos[0].versions) == ["v1alpha3", "v1alpha2", "v1alpha1"], "versions %s" % infos[0].versions)
check(sorted(m.callbacks) == ["OnDefineDomain", "Shutdown"], "hook points %s" % sorted(m.callbacks))
check(m.callbacks["OnDefineDomain"][0].version == "v1alpha3", "the manager did not pick v1alpha3")
ok("Collect: Info names v1alpha3..1 and OnDefineDomain + Shutdown; the manager takes v1alpha3")

before = graphics(DOMAIN)
out = m.on_define_domain(DOMAIN, VMI)
after = graphics(out)
check(("egl-headless", [RN]) in after, "no egl-headless display on %s: %s" % (RN, after))
check(after == before + [("egl-headless", [RN])], "other graphics changed: %s -> %s" % (before, after))
root = ET.fromstring(out)
hd = root.find("devices").find("hostdev")
check(hd is not None and hd.get("display") == "on" and hd.get("ramfb") == "on",
      "the vGPU hostdev lost display=on/ramfb=on")
again = m.on_define_domain(out, VMI)
check(graphics(again) == after, "a second OnDefineDomain changed the display: %s" % graphics(again))
ok("OnDefineDomain (v1alpha3): egl-headless on %s added once, VNC and the vGPU's display=on/ramfb=on "
   "kept (ElementTree reads the result), idempotent" % RN)

# Older launchers: the newest version they know.
for versions, want in [(("v1alpha2", "v1alpha1"), "v1alpha2"), (("v1alpha1",), "v1alpha1")]:
    old = hp.HookManager(info, cb, HOOKS, supported=versions)
    old.collect(1, 10)
    c = old.callbacks["OnDefineDomain"][0]
    check(c.version == want, "a launcher knowing %s picked %s" % (versions, c.version))
    check(("egl-headless", [RN]) in graphics(old.on_define_domain(DOMAIN, VMI)), want)
ok("a launcher that knows only v1alpha2 / v1alpha1 gets OnDefineDomain on that version's path")

# Bad input: a clear status, and the sidecar keeps serving.
ch = grpc.insecure_channel("unix:" + os.path.join(d, "mesa-injector-hook-sidecar-0.sock"))
define = ch.unary_unary("/kubevirt.hooks.v1alpha3.Callbacks/OnDefineDomain",
                        request_serializer=cb.OnDefineDomainParams.SerializeToString,
                        response_deserializer=cb.OnDefineDomainResult.FromString)
for bad in [b"", b"<network/>", b"<domain><devices>"]:
    try:
        define(cb.OnDefineDomainParams(domainXML=bad, vmi=VMI), timeout=5)
        fail("a domainXML of %r was answered OK" % bad)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "domainXML" in e.details(),
              "%r: %s %s" % (bad, e.code(), e.details()))
raw = ch.unary_unary("/kubevirt.hooks.v1alpha3.Callbacks/OnDefineDomain")
for body in [b"\x0a\x64x", b"\xff\xff\xff"]:
    try:
        raw(body, timeout=5)
        fail("garbage %r answered OK" % body)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "%r: %s" % (body, e.code()))
for path in ["/kubevirt.hooks.v1alpha3.Callbacks/PreCloudInitIso", "/kubevirt.hooks.v1alpha2.Callbacks/Shutdown",
             "/v1beta1.DevicePlugin/Allocate"]:
    try:
        ch.unary_unary(path)(b"", timeout=5)
        fail(path + " answered OK")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "%s: %s" % (path, e.code()))
try:
    raw(b"\x0a\x80\x80\x80\x09" + b"x" * (18 << 20), timeout=20)
    fail("an 18 MiB request was answered OK")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "18 MiB: %s" % e.code())
check(("egl-headless", [RN]) in graphics(m.on_define_domain(DOMAIN, VMI)), "not serving after bad calls")
ch.close()
ok("bad domains and bodies: INVALID_ARGUMENT naming domainXML; PreCloudInitIso, v1alpha2 Shutdown and "
   "foreign methods: UNIMPLEMENTED; 18 MiB: RESOURCE_EXHAUSTED; still serving")

m.shutdown()
rc = exited(p, 5)
check(rc == 0, "exit %d after Shutdown" % rc)
check(os.listdir(d) == [], "socket left after Shutdown: %s" % os.listdir(d))
check("Shutdown" in open(log).read(), "Shutdown not logged")
ok("Shutdown (v1alpha3): the sidecar exits 0 and removes its socket, as KubeVirt's shim does")

# ---- two sidecars in one pod: the names must differ -------------------------------------------------
for f in os.listdir(HOOKS):
    os.rmdir(os.path.join(HOOKS, f))
a = start("hook-sidecar-0")
b = start("hook-sidecar-1")
wait_socket(a[2])
wait_socket(b[2])
m2 = hp.HookManager(info, cb, HOOKS)
m2.collect(2, 10)
check(len(m2.callbacks["OnDefineDomain"]) == 2, "two sidecars: %s" % m2.callbacks)
out = m2.on_define_domain(DOMAIN, VMI)
check([g for g in graphics(out) if g[0] == "egl-headless"] == [("egl-headless", [RN])],
      "two of ours made %s" % graphics(out))
ok("two sidecars (hook-sidecar-0, -1): both collected by their distinct names; one egl-headless display")
for p, _, _ in (a, b):
    p.send_signal(signal.SIGTERM)
    check(exited(p, 5) == 0, "SIGTERM: non-zero exit")
check(os.listdir(a[2]) == [] and os.listdir(b[2]) == [], "sockets left after SIGTERM")
ok("SIGTERM: exit 0, sockets removed")

# The control: the same file name in two directories is collected once
# (the manager keys processed sockets by name), so Collect(2) times out.
a = start("hook-sidecar-0", "--socket", "same.sock")
b = start("hook-sidecar-1", "--socket", "same.sock")
wait_socket(a[2])
wait_socket(b[2])
t0 = time.time()
try:
    hp.HookManager(info, cb, HOOKS).collect(2, 3)
    fail("two sockets named same.sock were both collected: the peer does not mirror manager.go")
except hp.CollectError as e:
    check("within given timeout" in str(e), str(e))
ok("control: two sidecars with one socket name: Collect(2) times out after %.1fs, as upstream's would"
   % (time.time() - t0))
for p, _, _ in (a, b):
    p.send_signal(signal.SIGTERM)
    exited(p, 5)

# ---- bad command lines: exit 2 or 1, a clear message --------------------------------------------------
for args, rc, words in [(["--render-node", "dri/renderD128"], 2, "under /dev"),
                        (["--render-node", "/dev/dri/render D128"], 2, "letters"),
                        (["--socket", "a/b"], 2, "file name"),
                        (["--bogus"], 2, "usage"),
                        (["--socket-dir", os.path.join(WORK, "missing")], 1, "not a directory")]:
    r = subprocess.run([MI, "hook-sidecar"] + args, capture_output=True, text=True, timeout=10)
    check(r.returncode == rc and words in r.stderr, "%s: rc %d %s" % (args, r.returncode, r.stderr))
ok("bad --render-node, --socket, option, a missing socket directory: exit 2/1 with the reason")
T.passed()
