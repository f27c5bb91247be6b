# The real-Kubernetes test harness (docs/k8s-harness.md): etcd, kube-apiserver
# and, with a node, containerd + runc and a kubelet, all on this machine,
# built from the versions tests/k8s/go.mod pins. Sourced by tests/k8s/harness
# (make k8s-up / k8s-down) and by tests/integration/k8s_*.sh.
#
# Everything lives under one private root ($K8S_ROOT, default
# /tmp/vgpuenv-k8s): data, certificates, sockets, logs, pid files. containerd
# and the kubelet run in a mount namespace of their own (held by a keeper
# process) in which $K8S_ROOT/kubelet is /var/lib/kubelet (the kubelet's
# device-plugin socket path is fixed there) and /run/containerd is a tmpfs
# (the runc shims keep their sockets there), so nothing of ours appears in the
# host's system directories and their mounts vanish with the namespace.
# Addresses: 127.0.17.1 with ports no default install uses, so a developer's
# own cluster on this machine is never touched. One harness per machine at a
# time: k8s_up takes a lock that the keeper holds until k8s_down.
#
# There is no kube-controller-manager and no kube-scheduler: k8s_namespace
# creates what their controllers would (the namespace's default
# ServiceAccount, the kube-root-ca.crt ConfigMap), and pods that must run set
# spec.nodeName themselves.
set -u
K8S_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_ROOT=${VGPUENV_K8S_ROOT:-/tmp/vgpuenv-k8s}
K8S_ADDR=127.0.17.1
K8S_APISERVER_PORT=16443
K8S_ETCD_PORT=12379
K8S_ETCD_PEER_PORT=12380
K8S_KUBELET_PORT=10350
K8S_KUBELET_HEALTHZ_PORT=10348
K8S_NODE_NAME=vgpuenv-k8s-node
K8S_CGROUP=vgpuenv-k8s
K8S_PAUSE_IMAGE=vgpuenv.local/pause:harness
K8S_TEST_IMAGE=vgpuenv.local/busybox:harness
K8S_DEADLINE=${K8S_DEADLINE:-120}
KUBECONFIG_K8S=$K8S_ROOT/admin.kubeconfig
K8S_LOCK=/tmp/vgpuenv-k8s.lock

k8s_log() { echo "k8s harness: $*" >&2; }
k8s_die() {
	echo "FAIL: k8s harness: $*" >&2
	return 1
}

# kubectl of the same build, as the cluster admin.
kc() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_K8S" "$@"; }

# k8s_wait SECONDS WHAT CMD...: poll CMD until it succeeds or the deadline.
k8s_wait() {
	local secs=$1 what=$2 end
	shift 2
	end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || {
			k8s_die "$what: not ready after ${secs}s"
			return 1
		}
		sleep 0.2
	done
}

k8s_pid_alive() { [ -f "$K8S_ROOT/pids/$1" ] && kill -0 "$(cat "$K8S_ROOT/pids/$1")" 2>/dev/null; }

# k8s_spawn NAME CMD...: start a daemon in the background, its output in
# logs/NAME.log, its pid in pids/NAME. It inherits the harness lock: while
# anything of ours runs, no other harness starts on this machine.
k8s_spawn() {
	local name=$1
	shift
	setsid "$@" >>"$K8S_ROOT/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$K8S_ROOT/pids/$name"
	disown $! # stopped by pid, not by the shell's job table
}

# K8S_BIN: the programs; VGPUENV_K8S_BIN points at other builds of them.
k8s_build() {
	if [ -n "${VGPUENV_K8S_BIN:-}" ]; then
		K8S_BIN=$VGPUENV_K8S_BIN
	else
		K8S_BIN=$("$K8S_HERE/build.sh") || return $?
	fi
	export K8S_BIN
}

# ---- certificates -----------------------------------------------------------
# k8s_cert NAME SUBJECT EXT: a P-256 key and a certificate signed by our CA.
k8s_cert() {
	local d=$K8S_ROOT/pki name=$1 subj=$2 ext=$3
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/$name.key" 2>/dev/null
	openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
}

k8s_certs() {
	local d=$K8S_ROOT/pki
	mkdir -p "$d"
	chmod 0700 "$d"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$d/ca.key" -subj "/CN=vgpuenv-k8s-ca" -days 2 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$d/ca.crt" 2>/dev/null
	local usage="keyUsage=critical,digitalSignature,keyEncipherment"
	# The names kubeadm gives the API server's serving certificate, plus ours.
	k8s_cert apiserver "/CN=kube-apiserver" "$usage
extendedKeyUsage=serverAuth
subjectAltName=IP:$K8S_ADDR,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	# system:masters, as kubeadm's super-admin.conf: the harness has no
	# controller that would bind kubeadm:cluster-admins.
	k8s_cert admin "/O=system:masters/CN=kubernetes-super-admin" "$usage
extendedKeyUsage=clientAuth"
	# The Node authorizer and NodeRestriction know a kubelet by this name.
	k8s_cert kubelet "/O=system:nodes/CN=system:node:$K8S_NODE_NAME" "$usage
extendedKeyUsage=clientAuth"
	k8s_cert apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" "$usage
extendedKeyUsage=clientAuth"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/sa.key" 2>/dev/null
	openssl ec -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
	rm -f "$d"/*.csr "$d"/*.ext
}

# k8s_kubeconfig FILE CERTNAME: named as kubeadm names admin.conf's entries
# (cluster "kubernetes"), so scripts that edit a kubeadm kubeconfig (e.g.
# kubevirtci's `kubectl config set-cluster kubernetes`) edit this one.
k8s_kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: https://$K8S_ADDR:$K8S_APISERVER_PORT
    certificate-authority: $K8S_ROOT/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $K8S_ROOT/pki/$2.crt
    client-key: $K8S_ROOT/pki/$2.key
contexts:
- name: $2@kubernetes
  context: {cluster: kubernetes, user: $2}
current-context: $2@kubernetes
EOF
	chmod 0600 "$1"
}

# ---- control plane ----------------------------------------------------------
k8s_start_etcd() {
	k8s_spawn etcd "$K8S_BIN/etcd" --name vgpuenv-k8s --data-dir "$K8S_ROOT/etcd" \
		--listen-client-urls "http://$K8S_ADDR:$K8S_ETCD_PORT" \
		--advertise-client-urls "http://$K8S_ADDR:$K8S_ETCD_PORT" \
		--listen-peer-urls "http://$K8S_ADDR:$K8S_ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://$K8S_ADDR:$K8S_ETCD_PEER_PORT" \
		--initial-cluster "vgpuenv-k8s=http://$K8S_ADDR:$K8S_ETCD_PEER_PORT" \
		--unsafe-no-fsync --quota-backend-bytes 1073741824
	k8s_wait "$K8S_DEADLINE" etcd curl -fsS "http://$K8S_ADDR:$K8S_ETCD_PORT/health"
}

# The flags kubeadm 1.36 gives kube-apiserver (cmd/kubeadm/app/phases/
# controlplane/manifests.go, getAPIServerCommand): admission plugins are the
# defaults plus NodeRestriction, authorization Node,RBAC, a service-account
# key pair. Not taken: bootstrap tokens, the front proxy (no aggregated API
# servers here); etcd is on loopback over plain http. Added: an audit log
# (logs/audit.log) at level Request for what tests create, so a test reads the
# API server's own record of each admission webhook call and its patch.
k8s_start_apiserver() {
	local p=$K8S_ROOT/pki
	cat >"$K8S_ROOT/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Request
  verbs: [create, update, patch]
  resources:
  - {group: "", resources: [pods, nodes]}
  - {group: kubevirt.io, resources: [virtualmachineinstances, kubevirts]}
- level: None
EOF
	k8s_spawn kube-apiserver "$K8S_BIN/kube-apiserver" \
		--advertise-address "$K8S_ADDR" --bind-address "$K8S_ADDR" --secure-port "$K8S_APISERVER_PORT" \
		--etcd-servers "http://$K8S_ADDR:$K8S_ETCD_PORT" \
		--enable-admission-plugins NodeRestriction --authorization-mode Node,RBAC \
		--allow-privileged=true --service-cluster-ip-range 10.96.0.0/12 \
		--client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
		--kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
		--kubelet-client-key "$p/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types InternalIP,ExternalIP,Hostname \
		--service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--audit-policy-file "$K8S_ROOT/audit-policy.yaml" --audit-log-path "$K8S_ROOT/logs/audit.log" \
		--audit-log-format json --audit-log-mode blocking \
		--endpoint-reconciler-type none --profiling=false --cert-dir "$K8S_ROOT/apiserver"
	k8s_wait "$K8S_DEADLINE" kube-apiserver kc get --raw /readyz
}

# What kube-controller-manager would create for a namespace: the default
# ServiceAccount (the ServiceAccount admission plugin refuses pods without
# it) and the kube-root-ca.crt ConfigMap (projected token volumes read it).
k8s_namespace() {
	local ns=$1
	kc get namespace "$ns" >/dev/null 2>&1 || kc create namespace "$ns" >/dev/null || return 1
	kc -n "$ns" get serviceaccount default >/dev/null 2>&1 ||
		kc -n "$ns" create serviceaccount default >/dev/null || return 1
	kc -n "$ns" get configmap kube-root-ca.crt >/dev/null 2>&1 ||
		kc -n "$ns" create configmap kube-root-ca.crt --from-file=ca.crt="$K8S_ROOT/pki/ca.crt" >/dev/null
}

# k8s_kubevirt_cr FILE: KubeVirt as virt-operator leaves it, without
# virt-operator: our minimal CRDs (tests/k8s/fixtures/kubevirt-crds.yaml),
# the kubevirt namespace, the KubeVirt CR of FILE (JSON or YAML, as an admin
# configured it) and the status conditions of UpdateConditionsAvailable
# (kubevirt d923fdb815, pkg/virt-operator/util/client.go).
k8s_kubevirt_cr() {
	local msg='"reason":"AllComponentsReady","message":"All components are ready."'
	kc apply -f "$K8S_HERE/fixtures/kubevirt-crds.yaml" >/dev/null &&
		kc wait --for condition=Established --timeout 60s crd/kubevirts.kubevirt.io >/dev/null &&
		k8s_namespace kubevirt && kc create -f "$1" >/dev/null &&
		kc -n kubevirt patch kubevirt kubevirt --subresource=status --type merge -p \
			"{\"status\":{\"phase\":\"Deployed\",\"conditions\":[{\"type\":\"Available\",\"status\":\"True\",$msg},
{\"type\":\"Progressing\",\"status\":\"False\",$msg},{\"type\":\"Degraded\",\"status\":\"False\",$msg}]}}" >/dev/null
}

# ---- node -------------------------------------------------------------------
k8s_images() {
	local dir=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}/k8s/images key
	mkdir -p "$dir"
	key=$(cat "$K8S_HERE/images/pause.c" "$K8S_HERE/images/mkimage.py" /bin/busybox | sha256sum | cut -c1-16)
	K8S_IMAGES=$dir/$key
	[ -f "$K8S_IMAGES/busybox.tar" ] && return 0
	mkdir -p "$K8S_IMAGES"
	cc -static -O2 -o "$K8S_IMAGES/pause" "$K8S_HERE/images/pause.c" || return 1
	python3 "$K8S_HERE/images/mkimage.py" --tag "$K8S_PAUSE_IMAGE" --out "$K8S_IMAGES/pause.tar" \
		--entrypoint /pause --file "$K8S_IMAGES/pause:/pause" || return 1
	local links=() a
	for a in sh cat ls echo sleep test head mount grep stat; do links+=(--link "/bin/$a:busybox"); done
	python3 "$K8S_HERE/images/mkimage.py" --tag "$K8S_TEST_IMAGE" --out "$K8S_IMAGES/busybox.tar" \
		--entrypoint /bin/sh --file /bin/busybox:/bin/busybox "${links[@]}" --dir /dev --dir /proc \
		--dir /sys --dir /tmp --dir /etc
}

# restrict_oom_score_adj: the CRI gives pod sandboxes an oom_score_adj of
# -998, and this machine refuses negative values even to root (EPERM; runc
# then fails with "can't get final child's PID from pipe"): no lower than
# containerd's own. base_runtime_spec: containerd's default spec without
# process.rlimits (ENVIRONMENT.md: runc's prlimit on the container's init is
# refused here too, and podman fails on it).
k8s_containerd_config() {
	local c=$K8S_ROOT/containerd
	ctr oci spec | python3 -c 'import json, sys; s = json.load(sys.stdin); s["process"].pop("rlimits", None); json.dump(s, sys.stdout)' \
		>"$c/base-spec.json" || return 1
	cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
plugin_dir = "$c/plugins"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = "$c/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "$K8S_ADDR"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      base_runtime_spec = "$c/base-spec.json"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$K8S_ROOT/cni/bin"
    conf_dir = "$K8S_ROOT/cni/net.d"
EOF
}

# The kubelet's configuration: cgroupfs (no systemd here), cgroup v1 allowed
# (failCgroupV1 defaults to true since 1.35), its own cgroup root so teardown
# knows which cgroups are ours, eviction thresholds a developer's full disk
# does not trip, certificates from our CA.
k8s_kubelet_config() {
	cat >"$K8S_ROOT/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $K8S_ADDR
port: $K8S_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $K8S_ADDR
healthzPort: $K8S_KUBELET_HEALTHZ_PORT
cgroupDriver: cgroupfs
cgroupRoot: /$K8S_CGROUP
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$K8S_ROOT/containerd/containerd.sock
podLogsDirectory: $K8S_ROOT/logs/pods
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $K8S_ROOT/pki/ca.crt}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
registerNode: true
EOF
}

# The keeper: the process whose mount namespace containerd, its shims and the
# kubelet share. It holds the lock until k8s_down kills it.
k8s_start_keeper() {
	local created=$K8S_ROOT/created-dirs d
	for d in /var/lib/kubelet /run/containerd; do
		[ -d "$d" ] || { mkdir -p "$d" && echo "$d" >>"$created"; }
	done
	mkdir -p "$K8S_ROOT/kubelet"
	setsid unshare --mount --propagation slave sh -c '
		mount --bind "$1/kubelet" /var/lib/kubelet && mount --make-rshared /var/lib/kubelet &&
		mount -t tmpfs -o mode=0711 vgpuenv-k8s-run /run/containerd && touch "$1/keeper.ready" &&
		exec sleep infinity' keeper "$K8S_ROOT" >>"$K8S_ROOT/logs/keeper.log" 2>&1 </dev/null &
	echo $! >"$K8S_ROOT/pids/keeper"
	disown $!
	k8s_wait 10 "mount namespace" test -f "$K8S_ROOT/keeper.ready"
}

# k8s_in_node CMD...: run CMD in the node's mount namespace, where the kubelet
# sees /var/lib/kubelet (a device plugin must run here to find kubelet.sock).
k8s_in_node() { nsenter --mount="/proc/$(cat "$K8S_ROOT/pids/keeper")/ns/mnt" -- "$@"; }

# k8s_spawn_in_node NAME CMD...: a daemon in the node's mount namespace (a
# device plugin), with pids/NAME and logs/NAME.log like the harness's own;
# k8s_stop_pid NAME stops it, k8s_down kills it with the rest of the node.
k8s_spawn_in_node() {
	local name=$1
	shift
	k8s_spawn "$name" nsenter --mount="/proc/$(cat "$K8S_ROOT/pids/keeper")/ns/mnt" -- "$@"
}

# ctr inside the node's namespace: its fifos live in the private /run/containerd.
k8s_ctr() { k8s_in_node ctr --address "$K8S_ROOT/containerd/containerd.sock" -n k8s.io "$@"; }

k8s_start_containerd() {
	mkdir -p "$K8S_ROOT/containerd" "$K8S_ROOT/cni/bin" "$K8S_ROOT/cni/net.d"
	k8s_containerd_config || return 1
	k8s_spawn containerd nsenter --mount="/proc/$(cat "$K8S_ROOT/pids/keeper")/ns/mnt" -- \
		containerd --config "$K8S_ROOT/containerd/config.toml"
	k8s_wait "$K8S_DEADLINE" containerd k8s_ctr version || return 1
	k8s_images || return 1
	k8s_ctr images import "$K8S_IMAGES/pause.tar" >/dev/null &&
		k8s_ctr images import "$K8S_IMAGES/busybox.tar" >/dev/null
}

k8s_start_kubelet() {
	k8s_make_cgroups || return 1
	k8s_kubelet_config
	k8s_kubeconfig "$K8S_ROOT/kubelet.kubeconfig" kubelet
	mkdir -p "$K8S_ROOT/logs/pods"
	k8s_spawn kubelet nsenter --mount="/proc/$(cat "$K8S_ROOT/pids/keeper")/ns/mnt" -- \
		"$K8S_BIN/kubelet" --config "$K8S_ROOT/kubelet.yaml" --kubeconfig "$K8S_ROOT/kubelet.kubeconfig" \
		--root-dir /var/lib/kubelet --cert-dir "$K8S_ROOT/kubelet-pki" --hostname-override "$K8S_NODE_NAME" \
		--node-labels vgpuenv.io/harness=true
	k8s_wait "$K8S_DEADLINE" "kubelet (node $K8S_NODE_NAME registered)" kc get node "$K8S_NODE_NAME" &&
		k8s_wait "$K8S_DEADLINE" "kubelet healthz" curl -fsS "http://$K8S_ADDR:$K8S_KUBELET_HEALTHZ_PORT/healthz"
}

K8S_KUBELET_SOCK=/var/lib/kubelet/device-plugins/kubelet.sock

# Which kubelet.sock: its inode and change time (the file system may hand a
# new socket the inode the old one just freed).
k8s_sock_inode() { k8s_in_node stat -c '%i %z' "$K8S_KUBELET_SOCK" 2>/dev/null; }
k8s_sock_renewed() { local i; i=$(k8s_sock_inode) && [ "$i" != "$1" ]; }

# k8s_restart_kubelet: stop the kubelet and start it again with the same
# state; returns once the new kubelet has made a new kubelet.sock (in the
# node's namespace), the cue on which a device plugin registers again.
k8s_restart_kubelet() {
	local old
	old=$(k8s_sock_inode) || old=none
	k8s_stop_pid kubelet
	k8s_start_kubelet &&
		k8s_wait "$K8S_DEADLINE" "a new $K8S_KUBELET_SOCK" k8s_sock_renewed "$old"
}

# ---- up / down --------------------------------------------------------------
k8s_lock() {
	# Held already by this shell (a second k8s_up after k8s_down): a new open
	# of the file would be another lock, and wait for ourselves.
	[ -n "${K8S_LOCK_FD:-}" ] && [ -e "/proc/$$/fd/$K8S_LOCK_FD" ] && return 0
	exec {K8S_LOCK_FD}>>"$K8S_LOCK"
	if ! flock -n "$K8S_LOCK_FD"; then
		k8s_log "another harness is running on this machine ($K8S_LOCK): waiting up to 20 min"
		flock -w 1200 "$K8S_LOCK_FD" || {
			k8s_die "the harness lock is still held; if nothing runs, \`make k8s-down\` clears a crashed one"
			return 1
		}
	fi
}

# k8s_up [--no-node]: everything, or only etcd and the API server.
k8s_up() {
	local node=1 t0
	[ "${1:-}" = --no-node ] && node=0
	t0=$(date +%s.%N)
	k8s_build || return $?
	k8s_lock || return 1
	k8s_down_quiet
	mkdir -p "$K8S_ROOT/pids" "$K8S_ROOT/logs"
	chmod 0700 "$K8S_ROOT"
	k8s_certs && k8s_kubeconfig "$KUBECONFIG_K8S" admin || return 1
	if [ $node = 1 ]; then k8s_start_keeper || return 1; fi
	k8s_start_etcd && k8s_start_apiserver || return 1
	k8s_namespace default || return 1
	if [ $node = 1 ]; then k8s_start_containerd && k8s_start_kubelet || return 1; fi
	K8S_UP_SECONDS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	k8s_log "up in ${K8S_UP_SECONDS}s: KUBECONFIG=$KUBECONFIG_K8S ($K8S_BIN)"
}

# k8s_stop_pid NAME: SIGTERM, then SIGKILL after 10 s.
k8s_stop_pid() {
	local f=$K8S_ROOT/pids/$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

# k8s_wait_gone PID...: until each has exited (a zombie counts as gone:
# its parent reaps it), at most 5 s.
k8s_wait_gone() {
	local p i st
	for p in "$@"; do
		for i in $(seq 50); do
			st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || break
			st=${st%% *}
			[ "$st" = Z ] && break
			sleep 0.1
		done
	done
	return 0
}

# Every process in the node's mount namespace (shims and what containers
# left behind), found by the namespace, not by name.
k8s_kill_namespace() {
	local keeper ns p
	[ -f "$K8S_ROOT/pids/keeper" ] || return 0
	keeper=$(cat "$K8S_ROOT/pids/keeper")
	ns=$(readlink "/proc/$keeper/ns/mnt" 2>/dev/null) || return 0
	[ "$ns" != "$(readlink /proc/self/ns/mnt)" ] || return 0
	local killed=()
	for p in /proc/[0-9]*; do
		if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && [ "${p#/proc/}" != "$keeper" ]; then
			kill -KILL "${p#/proc/}" 2>/dev/null && killed+=("${p#/proc/}")
		fi
	done
	k8s_wait_gone "${killed[@]}"
}

# The kubelet's cgroupRoot in every hierarchy (cgroup v1: one per
# controller); cpuset needs its CPUs and memory nodes before tasks can join.
k8s_cgroup_dirs() {
	local m
	for m in /sys/fs/cgroup/*/; do
		[ -e "$m/cgroup.procs" ] && echo "$m$K8S_CGROUP"
	done
	[ -e /sys/fs/cgroup/cgroup.procs ] && echo "/sys/fs/cgroup/$K8S_CGROUP"
	return 0
}

k8s_make_cgroups() {
	local d
	for d in $(k8s_cgroup_dirs); do
		mkdir -p "$d" || return 1
		if [ -e "$d/cpuset.cpus" ]; then
			cat "$d/../cpuset.cpus" >"$d/cpuset.cpus" && cat "$d/../cpuset.mems" >"$d/cpuset.mems" || return 1
		fi
	done
}

# Every process in our cgroup tree (the containers), then the cgroups.
k8s_remove_cgroups() {
	local d p left killed=()
	for d in $(k8s_cgroup_dirs); do
		[ -d "$d" ] || continue
		for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null && killed+=("$p")
		done
	done
	k8s_wait_gone "${killed[@]}"
	for d in $(k8s_cgroup_dirs); do
		[ -d "$d" ] || continue
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[ -d "$d" ] || break
			sleep 0.2
		done
		[ -d "$d" ] && left="$left $d"
	done
	[ -z "${left:-}" ] || k8s_log "warning: cgroups still there:$left"
	return 0
}

# k8s_down: stops and removes everything k8s_up made, also after a crashed or
# interrupted up (it works from the pid files and the root, not from memory).
k8s_down() {
	# Teardown goes on past any failure, also when called from a trap of a
	# `set -e` script (the options come back on return).
	local -
	set +e
	[ -d "$K8S_ROOT" ] || return 0
	local n d
	# Pods first, through containerd, so their processes get SIGTERM.
	if k8s_pid_alive containerd; then
		for n in $(k8s_ctr tasks ls -q 2>/dev/null); do k8s_ctr tasks kill -s KILL "$n" >/dev/null 2>&1 || true; done
	fi
	for n in kubelet kube-apiserver containerd etcd; do k8s_stop_pid "$n"; done
	k8s_kill_namespace
	k8s_remove_cgroups
	k8s_stop_pid keeper
	# With the keeper gone the namespace and its mounts are gone; nothing of
	# ours is mounted in the host's namespace, but check rather than trust.
	for d in $(awk -v r="$K8S_ROOT" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$d" 2>/dev/null || true
	done
	if [ -f "$K8S_ROOT/created-dirs" ]; then
		for d in $(cat "$K8S_ROOT/created-dirs"); do rmdir "$d" 2>/dev/null || true; done
	fi
	rm -rf "$K8S_ROOT"
}

k8s_down_quiet() { k8s_down >/dev/null 2>&1 || true; }

# ---- helpers for tests ------------------------------------------------------
# k8s_trap: tests call it right after sourcing; teardown runs on any exit.
k8s_trap() {
	trap 'rc=$?; k8s_down; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# k8s_render_node: /dev/dri/renderD128 as the node's containers and a device
# plugin see it, and prints what it is. A real render node on this machine
# (a node VM with virtio-gpu) is used as it is. Otherwise a stand-in is made
# in the node's mount namespace only, on a tmpfs over /dev/dri there (the
# host's /dev/dri is untouched; an empty one is made and removed when the
# host has none): a character device with /dev/kvm's numbers (10:232), which
# has a driver behind it and which no runtime allows by default, so open()
# in a container succeeds exactly when the runtime was told about the device
# (a device plugin's DeviceSpec, privileged) and fails with EPERM from the
# device cgroup otherwise. Without /dev/kvm it is 226:128, the render node's
# own numbers, and "allowed" shows as ENXIO (no DRM driver) against EPERM.
k8s_render_node() {
	local mm="226 128"
	if [ -c /dev/dri/renderD128 ]; then
		echo "/dev/dri/renderD128 (this machine's, $(stat -c '%t:%T' /dev/dri/renderD128))"
		return 0
	fi
	[ -c /dev/kvm ] && mm="$(stat -c '%t %T' /dev/kvm | { read -r a b; echo "$((16#$a)) $((16#$b))"; })"
	if [ ! -d /dev/dri ]; then
		mkdir /dev/dri && echo /dev/dri >>"$K8S_ROOT/created-dirs" || return 1
	fi
	k8s_in_node sh -c "mountpoint -q /dev/dri || mount -t tmpfs -o mode=0755,size=64k vgpuenv-k8s-dri /dev/dri" &&
		k8s_in_node sh -c "[ -c /dev/dri/renderD128 ] || mknod -m 0666 /dev/dri/renderD128 c $mm" || return 1
	echo "/dev/dri/renderD128 (stand-in $mm in the node's namespace)"
}

# k8s_open_in_pod NS NAME DEVICE [--limit RESOURCE] [--mount HOSTDIR:DIR]: run
# a pod on the node whose container opens DEVICE read-write and reports the
# result in its termination message. --limit requests RESOURCE (1), as a pod
# asking a device plugin for the device does; --mount makes HOSTDIR a hostPath
# volume at DIR (the node visible, but no device-cgroup rule for it). Prints
# the API server's record of how the container ended: "exit=N message=...",
# or "exit= message=REASON" when the kubelet refused the pod.
k8s_open_in_pod() {
	local ns=$1 name=$2 dev=$3 limits="" mounts="" volumes=""
	shift 3
	while [ $# -gt 0 ]; do
		case "$1" in
		--limit) limits="resources: {limits: {\"$2\": \"1\"}}" ;;
		--mount)
			volumes="volumes: [{name: dev, hostPath: {path: \"${2%%:*}\", type: Directory}}]"
			mounts="volumeMounts: [{name: dev, mountPath: \"${2#*:}\"}]"
			;;
		*) k8s_die "k8s_open_in_pod: unknown option $1"; return 1 ;;
		esac
		shift 2
	done
	kc -n "$ns" apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  nodeName: $K8S_NODE_NAME
  hostNetwork: true
  restartPolicy: Never
  automountServiceAccountToken: false
  $volumes
  containers:
  - name: open
    image: $K8S_TEST_IMAGE
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "if (exec 3<>$dev) 2>/dev/termination-log; then echo opened >/dev/termination-log; else exit 3; fi"]
    $limits
    $mounts
EOF
	k8s_wait "$K8S_DEADLINE" "pod $ns/$name to finish" k8s_pod_finished "$ns" "$name" || return 1
	kc -n "$ns" get pod "$name" -o jsonpath='exit={.status.containerStatuses[0].state.terminated.exitCode} message={.status.containerStatuses[0].state.terminated.message}{.status.reason}'
	echo
}

# The container ended, or the kubelet refused the pod (phase Failed with a
# reason such as UnexpectedAdmissionError, no container ever ran).
k8s_pod_finished() {
	local s
	s=$(kc -n "$1" get pod "$2" -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}/{.status.phase}/{.status.reason}') || return 1
	case "$s" in [0-9]*/* | */Failed/?*) return 0 ;; *) return 1 ;; esac
}
