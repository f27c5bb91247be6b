"""virt-launcher's side of KubeVirt's hook sidecar API, played with an
independent gRPC implementation (python3-grpcio) and stubs that grpc_tools
generates from webhook/hook_info.proto and webhook/hook_callbacks.proto at
test time.

Mirrors kubevirt/kubevirt d923fdb8 pkg/hooks/manager.go:
  - Collect(n, timeout) / collectSideCarSockets: every 300 ms, read
    /var/run/kubevirt-hooks; for each *directory* in it (one per sidecar
    container: virt-controller mounts the shared emptyDir into each sidecar
    with subPath = its container name), for each non-directory entry whose
    *file name* was not processed yet: dial it (grpcutil.DialSocketWithTimeout,
    1 s; a failed dial is "not ready yet", tried again), call Info with a 1 s
    deadline (an error fails Collect), take the first of v1alpha3, v1alpha2,
    v1alpha1 that Info lists (none: Collect fails), file the socket under each
    hook point it names; until n sockets are processed or the timeout
    passes;
  - sortCallbacksPerHookPoint: by priority, higher first, then by name;
  - OnDefineDomain: for each callback of "OnDefineDomain", a new connection,
    /kubevirt.hooks.<version>.Callbacks/OnDefineDomain with the domain XML
    and the VMI JSON, deadline one minute; the result is the next input;
  - Shutdown: for each callback of "Shutdown" whose version is v1alpha3,
    /kubevirt.hooks.v1alpha3.Callbacks/Shutdown.
"""

import os
import sys
import time

import grpc

SUPPORTED_VERSIONS = ("v1alpha3", "v1alpha2", "v1alpha1")


def load_stubs(gen_dir):
    sys.path.insert(0, gen_dir)
    import hook_callbacks_pb2 as cb
    import hook_info_pb2 as info
    return info, cb


class CollectError(Exception):
    pass


class Callback:
    def __init__(self, socket, version, hook_points):
        self.socket, self.version, self.hook_points = socket, version, hook_points


class HookManager:
    def __init__(self, info, cb, base_dir, supported=SUPPORTED_VERSIONS):
        self.info, self.cb, self.base_dir, self.supported = info, cb, base_dir, supported
        self.callbacks = {}

    def _dial(self, path):
        ch = grpc.insecure_channel("unix:" + path)
        try:
            grpc.channel_ready_future(ch).result(timeout=1)
        except grpc.FutureTimeoutError:
            ch.close()
            return None
        return ch

    def _process(self, path):
        ch = self._dial(path)
        if ch is None:
            return None  # "Sidecar server might not be ready yet"
        try:
            call = ch.unary_unary("/kubevirt.hooks.info.Info/Info",
                                  request_serializer=self.info.InfoParams.SerializeToString,
                                  response_deserializer=self.info.InfoResult.FromString)
            res = call(self.info.InfoParams(), timeout=1)
        finally:
            ch.close()
        for v in self.supported:
            if v in res.versions:
                return Callback(path, v, list(res.hookPoints)), res
        raise CollectError("Hook sidecar does not expose a supported version. Exposed "
                           "versions: %s, supported versions: %s" % (list(res.versions),
                                                                     list(self.supported)))

    def collect(self, n, timeout):
        processed, per_point, infos = set(), {}, []
        deadline = time.monotonic() + timeout
        while len(processed) < n:
            for entry in sorted(os.listdir(self.base_dir)):
                sub = os.path.join(self.base_dir, entry)
                if not os.path.isdir(sub):
                    continue
                for name in sorted(os.listdir(sub)):
                    path = os.path.join(sub, name)
                    if os.path.isdir(path) or name in processed:
                        continue  # keyed by the file name only, as upstream
                    got = self._process(path)
                    if got is None:
                        continue
                    cbk, res = got
                    infos.append(res)
                    for hp in cbk.hook_points:
                        per_point.setdefault(hp.name, []).append(cbk)
                    processed.add(name)
            if time.monotonic() > deadline:
                raise CollectError("Failed to collect all expected sidecar hook sockets "
                                   "within given timeout")
            if len(processed) < n:
                time.sleep(0.3)
        for cbs in per_point.values():
            for c in cbs:
                c.hook_points.sort(key=lambda hp: (-hp.priority, hp.name))
        self.callbacks = per_point
        return infos

    def _callback(self, c, method, req, resp_type):
        ch = self._dial(c.socket)
        if ch is None:
            raise grpc.RpcError("Failed to Dial hook socket: " + c.socket)
        try:
            call = ch.unary_unary("/kubevirt.hooks.%s.Callbacks/%s" % (c.version, method),
                                  request_serializer=type(req).SerializeToString,
                                  response_deserializer=resp_type.FromString)
            return call(req, timeout=60)
        finally:
            ch.close()

    def on_define_domain(self, domain_xml, vmi_json):
        for c in self.callbacks.get("OnDefineDomain", []):
            res = self._callback(c, "OnDefineDomain",
                                 self.cb.OnDefineDomainParams(domainXML=domain_xml, vmi=vmi_json),
                                 self.cb.OnDefineDomainResult)
            domain_xml = res.domainXML
        return domain_xml

    def shutdown(self):
        for c in self.callbacks.get("Shutdown", []):
            if c.version == "v1alpha3":
                self._callback(c, "Shutdown", self.cb.ShutdownParams(), self.cb.ShutdownResult)
