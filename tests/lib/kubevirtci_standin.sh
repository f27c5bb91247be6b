# Sourced first by the tests that drive the kubevirtci provider through the
# stand-in kubevirtci checkout (tests/fixtures/kubevirtci) and its docker/gocli
# stand-in, whose cluster is the test harness's real API server (tests/k8s/,
# started with no node): the stand-in assertions (tests/standins/assert.sh),
# the repository root as $root and working directory, a scratch $T with the
# checkout copied to $T/kubevirtci, state and cache, kubectl and the
# stand-ins first on PATH, gocli's admin.conf the harness's, none of
# kubevirtci's own variables from the caller's environment, $TAG the tag the
# checkout carries, and run_up. At exit the processes in STANDIN_PIDS are killed, the
# harness stopped and $T removed (kept with KEEP_T=1).
. "$(dirname "${BASH_SOURCE[0]}")/../standins/assert.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
[ -x build/vgpuenv ] || skip "build/vgpuenv not built (run make)"
[ -x build/mesa-injector ] || skip "build/mesa-injector not built (run make)"
[ "$(id -u)" -eq 0 ] || skip "the Kubernetes harness needs root"
. tests/k8s/lib.sh
T=$(mktemp -d "/tmp/vgpuenv-$(basename "$0" .sh).XXXXXX")
STANDIN_PIDS=()
kubevirtci_standin_cleanup() {
	local rc=$? p
	for p in "${STANDIN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	k8s_down
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
	exit $rc
}
trap kubevirtci_standin_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k8s_up --no-node || exit $?
cp -r tests/fixtures/kubevirtci "$T/kubevirtci"
export PATH="$K8S_BIN:$root/tests/standins:$PATH" GOCLI_STANDIN_ADMIN_CONF=$KUBECONFIG_K8S
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache VGPUENV_NODE_WAIT=0
export KUBEVIRTCI_RUNTIME=docker
unset KUBEVIRTCI_TAG JOB_NAME KUBEVIRT_PROVIDER KUBEVIRT_PROVIDER_EXTRA_ARGS
TAG=2608191116-eb0b470a

# run_up NAME: `vgpuenv up` with the config the test wrote to $T/kv.yaml; its
# output in $T/NAME.out, the stand-ins' log in $T/NAME.log, the run's log
# (what the programs printed) in $T/NAME.runlog; up's exit status.
run_up() {
	local rc=0
	export STANDIN_LOG=$T/$1.log
	build/vgpuenv up -c "$T/kv.yaml" >"$T/$1.out" 2>&1 || rc=$?
	cat "$(ls -t "$T"/state/logs/*-up-*.log | head -n1)" >"$T/$1.runlog" 2>/dev/null || true
	return $rc
}
