"""The kubelet's side of the device plugin API v1beta1, played with an
independent gRPC implementation (python3-grpcio) and stubs that grpc_tools
generates from webhook/device_plugin_api.proto at test time.

Mirrors kubernetes v1.36.3 pkg/kubelet/cm/devicemanager:
  - plugin/v1beta1/server.go Start: CleanupPluginDirectory (manager.go:
    every socket in the directory is removed, directories and other files
    kept), then serve Registration on kubelet.sock;
  - server.go Register: the version must be one of SupportedVersions
    ("v1beta1"), the resource an extended resource name, then
    handler.go connectClient dials <dir>/<endpoint> (client.go dial: 10 s,
    blocking) and manager.go PluginConnected calls GetDevicePluginOptions
    before Register answers; client.go Run then reads ListAndWatch;
  - a restart is Stop + Start: the plugin's socket is gone and kubelet.sock
    is new.
Only what the tests need is kept: no checkpoint, no topology."""

import os
import queue
import stat
import threading
import time
from concurrent import futures

import grpc

SUPPORTED_VERSIONS = ("v1beta1",)


def load_stubs(gen_dir):
    import sys
    sys.path.insert(0, gen_dir)
    import device_plugin_api_pb2 as pb
    import device_plugin_api_pb2_grpc as pbg
    return pb, pbg


def is_extended_resource_name(name):
    # pkg/apis/core/v1/helper/helpers.go IsExtendedResourceName, enough of it.
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    domain, _, rest = name.partition("/")
    return bool(domain) and bool(rest) and "/" not in rest


class Plugin:
    """One registered plugin: its channel, options and ListAndWatch updates."""

    def __init__(self, pb, pbg, sock, resource):
        self.pb, self.resource, self.sock = pb, resource, sock
        # A connection of its own: grpcio shares connections between channels
        # to the same address, and a restarted kubelet is a new process that
        # has none of its predecessor's (it must reach the plugin's new socket).
        self.channel = grpc.insecure_channel("unix:" + sock, options=[
            ("grpc.default_authority", "localhost"), ("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.stub = pbg.DevicePluginStub(self.channel)
        self.options = self.stub.GetDevicePluginOptions(pb.Empty(), timeout=10)
        self.updates = queue.Queue()
        self.stream_end = None
        self._stream = self.stub.ListAndWatch(pb.Empty())
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for resp in self._stream:
                self.updates.put({d.ID: d.health for d in resp.devices})
            self.stream_end = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.stream_end = e.code()
        self.updates.put(None)

    def next_update(self, timeout=10):
        return self.updates.get(timeout=timeout)

    def close(self):
        self._stream.cancel()
        self.channel.close()




class Kubelet:
    """kubelet.sock in dir, serving Registration like the device manager."""

    def __init__(self, pb, pbg, dir, refuse=None, hang=0, listen_delay=0):
        """refuse: answer Register with this error; hang: seconds Register
        waits before answering; listen_delay: seconds between cleaning the
        directory and creating kubelet.sock (a slow kubelet start)."""
        self.pb, self.pbg, self.dir = pb, pbg, dir
        self.refuse, self.hang, self.listen_delay = refuse, hang, listen_delay
        self.listening_since = None
        self.stopped = threading.Event()  # ends a hanging Register
        self.registrations = queue.Queue()
        self.plugins = []
        self.server = None
        self.start()

    def start(self):
        self.stopped.clear()
        os.makedirs(self.dir, mode=0o750, exist_ok=True)
        self.cleanup_plugin_directory()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        outer = self

        class Registration(self.pbg.RegistrationServicer):
            def Register(self, request, context):
                return outer._register(request, context)

        self.pbg.add_RegistrationServicer_to_server(Registration(), self.server)
        if self.listen_delay:
            time.sleep(self.listen_delay)
        self.server.add_insecure_port("unix:" + os.path.join(self.dir, "kubelet.sock"))
        self.server.start()
        self.listening_since = time.time()

    def cleanup_plugin_directory(self):
        for name in os.listdir(self.dir):
            p = os.path.join(self.dir, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or not stat.S_ISSOCK(st.st_mode):
                continue
            os.unlink(p)

    def _register(self, request, context):
        if self.hang and self.stopped.wait(self.hang):
            context.abort(grpc.StatusCode.UNAVAILABLE, "kubelet stopping")
        if self.refuse:
            context.abort(grpc.StatusCode.UNKNOWN, self.refuse)
        if request.version not in SUPPORTED_VERSIONS:
            context.abort(grpc.StatusCode.UNKNOWN,
                          'requested API version "%s" is not supported by kubelet' % request.version)
        if not is_extended_resource_name(request.resource_name):
            context.abort(grpc.StatusCode.UNKNOWN, 'the ResourceName "%s" is invalid' % request.resource_name)
        try:
            plugin = Plugin(self.pb, self.pbg, os.path.join(self.dir, request.endpoint), request.resource_name)
        except Exception as e:  # the kubelet answers a failed dial with an error
            context.abort(grpc.StatusCode.UNKNOWN, "failed to dial device plugin: %s" % e)
        self.plugins.append(plugin)
        self.registrations.put((request, plugin))
        return self.pb.Empty()

    def next_registration(self, timeout=15):
        """(RegisterRequest, Plugin); raises TimeoutError naming the wait."""
        try:
            return self.registrations.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no Register on %s/kubelet.sock within %ss" % (self.dir, timeout)) from None

    def stop(self):
        """server.go Stop: disconnect every plugin, stop serving."""
        self.stopped.set()
        for p in self.plugins:
            p.close()
        self.plugins = []
        if self.server:
            self.server.stop(grace=0).wait()
            self.server = None

    def restart(self):
        self.stop()
        self.start()
