#!/usr/bin/env bash
# Link 3 with a real OCI runtime in a real node: a local-provider node (TCG,
# the cached image, a virtio-gpu render node), Debian's runc (the package
# make deps installs here, its binary copied to the node: it needs only libc
# and libseccomp, which the node has) and a root file system made with
# mmdebstrap (libc and busybox; the Mesa libraries come from the node as
# the webhook's read-only hostPath mounts, exactly the ones it patches into
# a virt-launcher pod). virt-launcher's compute container, three times, running
# build/vgpuenv-probe as uid/gid 107:
#   - /dev/dri as a hostPath (what the webhook used to add), default device
#     rules: the node is visible and open() is denied (device cgroup);
#   - the node created as a device but without its cgroup rule (a control):
#     open() is denied;
#   - the device plugin's DeviceSpec (Allocate through the python3-grpcio
#     kubelet peer) turned into a device and its cgroup rule as containerd
#     does (webhook/tests/oci_bundle.py): open() works and EGL on GBM
#     initializes on the render node.
source "$(dirname "$0")/../lib/vm.sh"
need_root_and_libvirt
cd "$ROOT"
MI=${MESA_INJECTOR:-build/mesa-injector}
PY=/usr/bin/python3
for tool in mmdebstrap runc curl; do
	command -v $tool >/dev/null || fail "$tool is missing (make deps)"
done
[ -x build/vgpuenv-probe ] && [ -x "$(dirname "$MI")/mesa-injector-device-plugin" ] || fail "run make first"
"$PY" -c 'import grpc, grpc_tools, jsonpatch' 2>/dev/null || fail "python3-grpcio, python3-grpc-tools, python3-jsonpatch (make deps)"
NAME=devplugin-runc
write_config $NAME 171
started=$(date +%s)
step() { echo "== $1 ($(($(date +%s) - started)) s)"; }

# The node boots while the host prepares the runtime and the bundles. A
# failure meanwhile stops that up first (Ctrl-C: it rolls back), then downs.
up_pid= mi_pid=
stop_all() {
	set +e # best effort: the plugin or up may already be gone
	[ -n "$mi_pid" ] && kill "$mi_pid" 2>/dev/null
	if [ -n "$up_pid" ] && kill -INT "$up_pid" 2>/dev/null; then
		wait "$up_pid" 2>/dev/null
	fi
	cleanup_vms
}
trap stop_all EXIT
"$VGPUENV" up -c "$CFG" >"$TMP/up.log" 2>&1 &
up_pid=$!

RUNC=$(command -v runc)
dpkg -S "$(readlink -f "$RUNC")" 2>/dev/null | grep -q '^runc:' || fail "$RUNC is not Debian's runc package"
mmdebstrap --quiet --variant=extract --include=libc6,busybox --format=tar bookworm "$TMP/rootfs.tar" \
	>"$TMP/mmdebstrap.log" 2>&1 || fail "mmdebstrap: $(tail -n 5 "$TMP/mmdebstrap.log")"
(cd "$TMP" && "$RUNC" spec) || fail "runc spec"
mv "$TMP/config.json" "$TMP/base.json"
step "runc $("$RUNC" --version | head -n1 | awk '{print $3}') and a root file system from mmdebstrap"

# The webhook's pod mutation, applied with python3-jsonpatch: compute's
# library mounts (and the resource the kubelet allocates from the plugin).
"$MI" certs --service mesa-injector --namespace mesa-injector --out "$TMP/certs" --ip 127.0.0.1 2>/dev/null ||
	fail "mesa-injector certs"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MI" serve --listen 127.0.0.1:$port --cert "$TMP/certs/tls.crt" --key "$TMP/certs/tls.key" 2>"$TMP/mi.log" &
mi_pid=$!
for _ in $(seq 100); do curl -sf --cacert "$TMP/certs/ca.crt" https://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.05; done
TOOL="$PY webhook/tests/admission_tool.py"
$TOOL wrap pod webhook/tests/fixtures/pod-virt-launcher.json >"$TMP/req.json"
curl -sf --cacert "$TMP/certs/ca.crt" -H 'Content-Type: application/json' --data-binary @"$TMP/req.json" \
	-o "$TMP/resp.json" https://127.0.0.1:$port/mutate-pods || fail "webhook request"
$TOOL apply "$TMP/req.json" "$TMP/resp.json" --expect patched >"$TMP/pod.json" || fail "webhook answer"
kill $mi_pid
"$PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["spec"]["containers"][0]
assert c["resources"]["limits"]["vgpuenv.io/render"] == "1", c["resources"]
assert not [m for m in c["volumeMounts"] if m["mountPath"].startswith("/dev")]' "$TMP/pod.json" ||
	fail "the mutated pod does not request vgpuenv.io/render or still mounts /dev"

rc=0
wait $up_pid || rc=$?
up_pid=
[ $rc -eq 0 ] || { tail -n 30 "$TMP/up.log"; fail "vgpuenv up failed"; }
step "node up"
on() { "$VGPUENV" ssh -c "$CFG" node1 -- "$@"; }
stat_line=$(on stat -L -c '%F %t %T %a %u %g' /dev/dri/renderD128) || fail "the node has no /dev/dri/renderD128"
echo "    node's render node: $stat_line"

# The DeviceSpec, from the real plugin: on the host, a stand-in node with the
# node's name and numbers under a deviceRoot; the kubelet peer allocates.
mkdir -p "$TMP/hostroot/dev/dri" "$TMP/dp"
read -r _ _ _ major minor _ <<<"$stat_line"
mknod "$TMP/hostroot/dev/dri/renderD128" c $((16#$major)) $((16#$minor))
"$PY" -m grpc_tools.protoc -Iwebhook --python_out="$TMP" --grpc_python_out="$TMP" webhook/device_plugin_api.proto ||
	fail "grpc_tools"
"$PY" webhook/tests/allocate_once.py "$MI" "$TMP" "$TMP/hostroot" "$TMP/dp" renderD128 >"$TMP/alloc.json" \
	2>"$TMP/alloc.err" || fail "Allocate: $(cat "$TMP/alloc.err")"
"$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))
assert a["devices"] == [{"containerPath": "/dev/dri/renderD128", "hostPath": "/dev/dri/renderD128", "permissions": "rw"}], a
assert not a["envs"] and not a["mounts"] and not a["cdiDevices"], a' "$TMP/alloc.json" || fail "Allocate: $(cat "$TMP/alloc.json")"
ok "the device plugin's Allocate: $(cat "$TMP/alloc.json")"

mkdir -p "$TMP/up/bundle-hostpath" "$TMP/up/bundle-deviceplugin" "$TMP/up/bundle-norule"
"$PY" webhook/tests/oci_bundle.py "$TMP/base.json" "$TMP/pod.json" "$TMP/alloc.json" "$stat_line" \
	/var/tmp/vgpuenv-dp/rootfs "$TMP/up" /usr/local/bin/vgpuenv-probe --json || fail "oci_bundle.py"
mv "$TMP/up/config-hostpath.json" "$TMP/up/bundle-hostpath/config.json"
mv "$TMP/up/config-deviceplugin.json" "$TMP/up/bundle-deviceplugin/config.json"
mv "$TMP/up/config-norule.json" "$TMP/up/bundle-norule/config.json"
cp "$RUNC" build/vgpuenv-probe "$TMP/rootfs.tar" "$TMP/up/"
tar -C "$TMP/up" -czf "$TMP/up.tgz" . || fail "tar"
# Over the login shell's stdin (vgpuenv ssh forwards it when no command is
# given): the shell reads its script a byte at a time, so its first line
# hands stdin to base64, which reads the rest in blocks.
{
	echo 'exec base64 -d >/var/tmp/vgpuenv-dp.tgz'
	base64 "$TMP/up.tgz"
} | "$VGPUENV" ssh -c "$CFG" node1 >"$TMP/upload.out" 2>&1 || fail "upload: $(tail -n 5 "$TMP/upload.out")"
on sh -c 'rm -rf /var/tmp/vgpuenv-dp && mkdir -p /var/tmp/vgpuenv-dp/rootfs && cd /var/tmp/vgpuenv-dp &&
	tar -xzf ../vgpuenv-dp.tgz && rm ../vgpuenv-dp.tgz && tar -xf rootfs.tar -C rootfs &&
	install -D -m 0755 vgpuenv-probe rootfs/usr/local/bin/vgpuenv-probe' >"$TMP/unpack.out" 2>&1 ||
	fail "unpacking on the node: $(tail -n 5 "$TMP/unpack.out")"
step "bundles uploaded ($(du -h "$TMP/up.tgz" | cut -f1))"

run_case() { # NAME: the probe's JSON in $TMP/NAME.json
	on sh -c "cd /var/tmp/vgpuenv-dp && ./runc --root /run/vgpuenv-dp-runc run --bundle bundle-$1 dp-$1 2>err-$1; \
		echo \"rc=\$?\" >&2; cat err-$1 >&2" >"$TMP/$1.json" 2>"$TMP/$1.err"
	grep -q '^rc=[01]$' "$TMP/$1.err" || fail "runc run ($1) did not run the probe: $(cat "$TMP/$1.err")"
}
check_probe() { # NAME PYTHON-EXPR (c: checks by name)
	"$PY" - "$TMP/$1.json" "$2" <<'PY' || fail "$1: $(cat "$TMP/$1.json" "$TMP/$1.err")"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in r["checks"]}
for x in r["checks"]:
    print("    %-14s %-5s %s" % (x["name"], x["status"], x["detail"][:100]))
assert eval(sys.argv[2]), sys.argv[2]
PY
}
run_case hostpath
check_probe hostpath 'c["render-node"]["status"] == "fail" and "Operation not permitted" in c["render-node"]["detail"]'
ok "/dev/dri as a hostPath with the default device rules: the node is there, open() is denied (device cgroup)"
run_case norule
check_probe norule 'c["render-node"]["status"] == "fail" and "Operation not permitted" in c["render-node"]["detail"]'
ok "control: the same device node without its cgroup rule: open() denied (the rule is what lets it open)"
run_case deviceplugin
# dmabuf-export is not asked for: with Mesa's kms_swrast on a 2D virtio-gpu
# the probe exports through the primary node (card0), which QEMU's
# egl-headless does not open and the plugin does not hand out.
check_probe deviceplugin 'all(c[k]["status"] == "pass" for k in ("render-node", "gbm", "egl-init", "dmabuf-ext"))'
ok "the plugin's DeviceSpec as containerd applies it: open() works and EGL on GBM initializes, as uid 107"
on rm -rf /var/tmp/vgpuenv-dp /run/vgpuenv-dp-runc
step "done"
echo PASS
