#!/usr/bin/env bash
# `vgpuenv e2e run` against the fixture KubeVirt checkout
# (tests/fixtures/kubevirt): passes, failures + skips + errors, a crash
# half-way, Ctrl-C, missing JUnit, a focus that matches nothing; the
# environment make functest got (local and kind), the artifacts collected
# with the kubectl stand-in (exact argv and KUBECONFIG), run.json and the
# exit codes, and bad usage. Real parts: the vgpuenv binary, make, bash.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VG=$ROOT/build/vgpuenv
FIX=$ROOT/tests/fixtures/kubevirt
[ -x "$VG" ] || { echo "build/vgpuenv missing: run make first"; exit 1; }
command -v make >/dev/null || { echo "SKIP: make not installed"; exit 77; }

T=$(mktemp -d /tmp/e2e-run-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
check() { # description, then a command that must succeed
	local what=$1
	shift
	"$@" || fail "$what"
	echo "ok - $what"
}
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# ---- clusters: a local one (user's KUBECONFIG) and a kind one --------------
export VGPUENV_STATE_DIR=$T/state VGPUENV_CACHE_DIR=$T/cache
unset KUBEVIRT_PROVIDER KUBEVIRTCI_CONFIG_PATH KUBEVIRT_NUM_NODES
mkdir -p "$T/state/e2e-local" "$T/state/e2e-kind" "$T/kubevirtci/cluster-up" \
	"$T/kubevirtci/_ci-configs/kind-1.30-vgpu"
printf 'name: e2e-local\nprovider: local\n' >"$T/local.yaml"
printf 'name: e2e-kind\nprovider: kind\ngpu: none\nkind:\n  dir: %s/kubevirtci\n  provider: kind-1.30-vgpu\nwebhook:\n  deploy: none\n' "$T" >"$T/kind.yaml"
printf 'name: e2e-down\nprovider: local\n' >"$T/down.yaml"
echo '{"cluster":"e2e-local","provider":"local","resources":[],"nodes":[]}' >"$T/state/e2e-local/state.json"
echo '{"cluster":"e2e-kind","provider":"kind","resources":[],"nodes":[]}' >"$T/state/e2e-kind/state.json"
echo 'apiVersion: v1 # local' >"$T/kubeconfig"
echo 'apiVersion: v1 # kind' >"$T/kubevirtci/_ci-configs/kind-1.30-vgpu/.kubeconfig"

export PATH=$FIX/bin:$PATH KUBECTL_LOG=$T/kubectl.log FIXTURE_ENV_FILE=$T/env.txt
export KUBECONFIG=$T/kubeconfig FIXTURE_INT_FILE=$T/int.txt
# Must not leak into make functest: vgpuenv sets or removes them.
export KUBEVIRT_E2E_SKIP=stale-skip VGPU_DISPLAY=stale
: >"$KUBECTL_LOG"

run() { # expected-exit, args... ; output in $T/out, $T/err
	local want=$1 rc=0
	shift
	"$VG" e2e run "$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		cat "$T/err" >&2
		fail "e2e run $* exited $rc, expected $want"
	fi
}

# ---- 1. all pass on a VM provider -------------------------------------------
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-pass"
R=$T/r-pass
check "env: focus defaults to MediatedDevices" has "$T/env.txt" "KUBEVIRT_E2E_FOCUS=MediatedDevices"
check "env: VGPU_DISPLAY=true on local" has "$T/env.txt" "VGPU_DISPLAY=true"
check "env: KUBECONFIG is the user's for local" has "$T/env.txt" "KUBECONFIG=$T/kubeconfig"
check "env: KUBEVIRT_PROVIDER=external for local" has "$T/env.txt" "KUBEVIRT_PROVIDER=external"
check "env: ARTIFACTS absolute in the run dir" has "$T/env.txt" "ARTIFACTS=$(realpath "$R")/artifacts"
check "env: a stale KUBEVIRT_E2E_SKIP is removed" hasnt "$T/env.txt" "KUBEVIRT_E2E_SKIP"
check "output streamed" has "$T/out" "Ran 5 of 1612 Specs"
check "progress line with total" has "$T/err" "e2e progress: 5/5 specs, 0 failed"
check "summary line" has "$T/err" "5 passed, 0 failed, 0 skipped, 0 errors"
check "functest.log holds the output" has "$R/functest.log" "Will run 5 of 1612 specs"
check "run.json outcome passed" test "$(json "$R/run.json" 'd["outcome"]')" = passed
check "run.json counts" test "$(json "$R/run.json" 'd["counts"]["passed"]')" = 5
check "no artifacts collected on success" test ! -e "$R/collected"
check "kubectl not called on success" test ! -s "$KUBECTL_LOG"

# ---- 1b. on a terminal: the progress is redrawn in place, also behind an open
# "•••" line, and never erases output --------------------------------------
if command -v script >/dev/null; then
	FIXTURE_SPEC_DELAY=0.2 script -qec "'$VG' e2e run -c '$T/local.yaml' --kubevirt '$FIX' --run-dir '$T/r-tty'" \
		/dev/null >"$T/tty.raw" </dev/null
	check "tty: progress drawn behind the bullets (saved/restored cursor)" \
		grep -qaF "$(printf '\0337  [e2e] 3/5 specs, 0 failed')" "$T/tty.raw"
	python3 - "$T/tty.raw" <<'PY' || fail "tty: the bullets line is not intact once progress is erased"
import sys
# A small terminal: \r, \n, ESC[K (erase to end of line), ESC 7 / ESC 8
# (save / restore cursor); what is left on screen is what a user sees.
raw = open(sys.argv[1], "rb").read().decode()
lines, line, cur, saved, i = [], [], 0, 0, 0
while i < len(raw):
    ch = raw[i]
    if raw.startswith("\x1b[K", i):
        del line[cur:]; i += 3; continue
    if raw.startswith("\x1b7", i):
        saved = cur; i += 2; continue
    if raw.startswith("\x1b8", i):
        cur = saved; i += 2; continue
    if ch == "\r":
        cur = 0
    elif ch == "\n":
        lines.append("".join(line)); line, cur = [], 0
    else:
        if cur < len(line):
            line[cur] = ch
        else:
            line.append(ch)
        cur += 1
    i += 1
assert "\u2022" * 5 in lines, [l for l in lines if "\u2022" in l or "e2e]" in l]
assert any(l.startswith("[e2e] 5/5 specs, 0 failed") for l in lines), lines[-5:]
PY
	echo "ok - tty: the screen shows five bullets on one line and the final progress"
else
	echo "note: script(1) missing, terminal rendering not checked"
fi

# ---- 2. failures, a skip and a panic; focus and skip given -------------------
FIXTURE_SCENARIO=fail run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-fail" \
	--focus 'MediatedDevices|GPU' --skip 'Slow'
R=$T/r-fail
check "env: --focus passed" has "$T/env.txt" "KUBEVIRT_E2E_FOCUS=MediatedDevices|GPU"
check "env: --skip passed" has "$T/env.txt" "KUBEVIRT_E2E_SKIP=Slow"
check "run.json outcome failed" test "$(json "$R/run.json" 'd["outcome"]')" = failed
check "counts failed=2 error=1 skipped=1 passed=1" test \
	"$(json "$R/run.json" '[d["counts"][k] for k in ("passed","failed","skipped","error")]')" = "[1, 2, 1, 1]"
check "summary names the display failure location" has "$T/err" \
	"at /go/src/kubevirt.io/kubevirt/tests/mdev_configuration_allocation_test.go:236"
check "summary shows the panic" has "$T/err" "[panicked]"
C=$R/collected
P=kubevirt-test-default1_virt-launcher-testvmi-7xk2q-8fj2k
check "launcher log collected" has "$C/pods/$P.log" "vfio-display-dmabuf: opengl not available"
check "launcher pod spec collected" has "$C/pods/$P.yaml" "nvidia.com/GRID_T4-1B"
check "domain XML collected" has "$C/pods/$P.domain.xml" "display='on' ramfb='on'"
check "QEMU log collected" has "$C/pods/$P.qemu.log" "opengl not available"
check "VMIs collected" has "$C/vmis.yaml" "phase: Failed"
check "events collected" has "$C/events.txt" "SyncFailed"
check "webhook log collected" has "$C/webhook/vgpuenv-system_mesa-injector-5d8f7c9b6-q2x7w.log" "added 3 hostPath mounts"
check "commands.txt lists the exec" has "$C/commands.txt" "-> exit 0, saved to pods/$P.domain.xml"
# The exact kubectl calls, in order, each with the cluster's KUBECONFIG.
cat >"$T/want.log" <<EOF
KUBECONFIG=$T/kubeconfig get pods --all-namespaces -l kubevirt.io=virt-launcher -o json
KUBECONFIG=$T/kubeconfig logs -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k --all-containers=true
KUBECONFIG=$T/kubeconfig get pod -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -o yaml
KUBECONFIG=$T/kubeconfig exec -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -c compute -- sh -c \$'for uri in \'qemu+unix:///session?socket=/var/run/libvirt/virtqemud-sock\' \'qemu:///system\'; do\n  doms=\$(virsh -c "\$uri" list --all --name 2>/dev/null) || continue\n  for d in \$doms; do virsh -c "\$uri" dumpxml "\$d"; done\n  exit 0\ndone\necho \'no libvirt connection inside the launcher\' >&2\nexit 1\n'
KUBECONFIG=$T/kubeconfig exec -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -c compute -- sh -c \$'found=0\nfor f in /var/run/kubevirt-private/libvirt/qemu/log/*.log /var/log/libvirt/qemu/*.log; do\n  [ -f "\$f" ] || continue\n  found=1; echo "==> \$f <=="; cat "\$f"\ndone\n[ \$found = 1 ]\n'
KUBECONFIG=$T/kubeconfig get vmis --all-namespaces -o yaml
KUBECONFIG=$T/kubeconfig get events --all-namespaces --sort-by=.lastTimestamp
KUBECONFIG=$T/kubeconfig get pods --all-namespaces -l app.kubernetes.io/name=mesa-injector -o json
KUBECONFIG=$T/kubeconfig logs -n vgpuenv-system mesa-injector-5d8f7c9b6-q2x7w --all-containers=true
EOF
check "kubectl argv and KUBECONFIG exactly as expected" diff -u "$T/want.log" "$KUBECTL_LOG"
: >"$KUBECTL_LOG"

# ---- 3. kind: display off, kubeconfig and provider from kubevirtci ----------
FIXTURE_SCENARIO=pass run 0 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-kind"
check "env: VGPU_DISPLAY removed on kind" hasnt "$T/env.txt" "VGPU_DISPLAY"
check "env: KUBEVIRT_PROVIDER from the kind config" has "$T/env.txt" "KUBEVIRT_PROVIDER=kind-1.30-vgpu"
check "env: KUBECONFIG from kubevirtci's _ci-configs" has "$T/env.txt" \
	"KUBECONFIG=$T/kubevirtci/_ci-configs/kind-1.30-vgpu/.kubeconfig"
check "run.json display false" test "$(json "$T/r-kind/run.json" 'd["display"]')" = False
run 2 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-kind-on" --display on
check "display on kind refused with the reason" has "$T/err" "vfio-display-dmabuf: opengl not available"
check "nothing created for a refused run" test ! -e "$T/r-kind-on"

# ---- 4. crash half-way (parallel mode, make killed) -------------------------
FIXTURE_SCENARIO=crash run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-crash" --no-collect
R=$T/r-crash
check "crash: outcome error" test "$(json "$R/run.json" 'd["outcome"]')" = error
check "crash: make exit recorded" test "$(json "$R/run.json" 'd["make_exit"]')" = 2
check "crash: the good partial file counts" test "$(json "$R/run.json" 'd["counts"]["passed"]')" = 3
check "crash: the truncated partial is named with its line" has "$T/err" \
	"artifacts/partial.junit.functest.2.xml:4: not well-formed XML: Premature end of data"
check "crash: --no-collect honoured" test ! -e "$R/collected"

# ---- 5. Ctrl-C: ginkgo writes JUnit with the spec interrupted ---------------
rm -f "$T/ready" "$T/int.txt"
FIXTURE_SCENARIO=hang FIXTURE_READY_FILE=$T/ready "$VG" e2e run -c "$T/local.yaml" \
	--kubevirt "$FIX" --run-dir "$T/r-int" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.1; done
[ -f "$T/ready" ] || fail "the hang scenario never started"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "interrupted run exits 1" test "$rc" = 1
check "the tests got SIGINT (forwarded once)" has "$T/int.txt" interrupted
R=$T/r-int
check "interrupted: outcome" test "$(json "$R/run.json" 'd["outcome"]')" = interrupted
check "interrupted: partial counts" test "$(json "$R/run.json" '[d["counts"]["passed"], d["counts"]["error"]]')" = "[2, 1]"
check "interrupted: artifacts still collected" test -s "$R/collected/vmis.yaml"

# ---- 5a. Ctrl-C during the collection stops it, run.json is still completed --
: >"$KUBECTL_LOG"
FIXTURE_SCENARIO=fail KUBECTL_SLEEP=0.4 "$VG" e2e run -c "$T/local.yaml" --kubevirt "$FIX" \
	--run-dir "$T/r-colint" >/dev/null 2>"$T/err" &
pid=$!
for _ in $(seq 100); do [ -s "$KUBECTL_LOG" ] && break; sleep 0.05; done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "collection interrupted: exit 1 (the tests failed)" test "$rc" = 1
check "collection interrupted: said so" has "$T/err" "Artifact collection interrupted"
check "collection interrupted: the rest skipped" has "$T/r-colint/collected/commands.txt" \
	"(interrupted: the remaining commands were skipped)"
check "collection interrupted: not every call made" test "$(wc -l <"$KUBECTL_LOG")" -lt 9
check "collection interrupted: run.json finished" test "$(json "$T/r-colint/run.json" 'd["finished"], d["outcome"]')" = "(True, 'failed')"

# ---- 5b. vgpuenv itself killed: run.json says unfinished, reports still work --
rm -f "$T/ready"
FIXTURE_SCENARIO=hang FIXTURE_READY_FILE=$T/ready "$VG" e2e run -c "$T/local.yaml" \
	--kubevirt "$FIX" --run-dir "$T/r-killed" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.1; done
child=$(pgrep -P "$pid" | head -1)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
[ -n "$child" ] && kill -KILL -- "-$child" 2>/dev/null || true
"$VG" e2e report --format json "$T/r-killed" >"$T/killed.json"
check "killed vgpuenv: the report says unfinished" test "$(json "$T/killed.json" 'd["cells"][0]["outcome"]')" = unfinished
check "killed vgpuenv: and why" test "$(json "$T/killed.json" '"the run never finished" in " ".join(d["cells"][0]["errors"])')" = True

# ---- 6. no JUnit, and a focus that matches nothing ---------------------------
FIXTURE_SCENARIO=nojunit run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nojunit" --no-collect
check "no JUnit: named clearly" has "$T/err" "r-nojunit/artifacts: no JUnit results: neither junit.functest.xml nor partial.*.xml exists"
FIXTURE_SCENARIO=nothing run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nothing" --no-collect --focus NoSuchSpec
check "empty focus: said so" has "$T/err" 'no spec ran: focus "NoSuchSpec" matched nothing?'

# ---- 7. a run directory is reused cleanly, a foreign one refused -------------
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-fail"
check "reuse: stale collected/ removed" test ! -e "$T/r-fail/collected"
check "reuse: outcome of this run" test "$(json "$T/r-fail/run.json" 'd["outcome"]')" = passed
mkdir -p "$T/foreign" && echo keep >"$T/foreign/notes.txt"
run 2 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/foreign"
check "foreign run dir refused" has "$T/err" "is not empty and holds no run.json"
check "foreign run dir untouched" has "$T/foreign/notes.txt" keep

# ---- 8. bad usage and clusters that are not up -------------------------------
run 2 -c "$T/local.yaml"
check "missing --kubevirt" has "$T/err" "--kubevirt DIR is required"
run 2 -c "$T/local.yaml" --kubevirt "$T/nope"
check "missing checkout" has "$T/err" "--kubevirt $T/nope: no such directory"
run 2 -c "$T/local.yaml" --kubevirt "$T"
check "not a checkout" has "$T/err" "not a KubeVirt checkout"
run 2 -c "$T/local.yaml" --kubevirt "$FIX" --display maybe
check "bad --display" has "$T/err" '--display must be auto, on or off, not "maybe"'
run 1 -c "$T/down.yaml" --kubevirt "$FIX" --run-dir "$T/r-down"
check "cluster not up" has "$T/err" "Cluster e2e-down is not up"
printf 'name: e2e-local\nprovider: nosuch\n' >"$T/bad.yaml"
run 2 -c "$T/bad.yaml" --kubevirt "$FIX"
check "bad config: file:line:column" has "$T/err" "$T/bad.yaml:2:"
rm "$T/kubevirtci/_ci-configs/kind-1.30-vgpu/.kubeconfig"
run 1 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-kind-down"
check "kind without kubeconfig: no fallback to KUBECONFIG" has "$T/err" "has no kubeconfig: is it up?"
env -u KUBECONFIG "$VG" e2e run -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nokc" \
	>"$T/out" 2>"$T/err" && fail "local without KUBECONFIG succeeded"
check "local without KUBECONFIG explained" has "$T/err" "pass --kubeconfig or set KUBECONFIG"
"$VG" e2e run --help >"$T/out"
check "run --help" has "$T/out" "Usage: vgpuenv e2e run -c FILE --kubevirt DIR"
echo "all e2e run checks passed"
