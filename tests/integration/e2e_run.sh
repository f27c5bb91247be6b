#!/usr/bin/env bash
# `vgpuenv e2e run` against the fixture KubeVirt checkout (tests/fixtures/
# kubevirt, main d923fdb) and the four clusters of setup-clusters.sh: what
# the suite receives (its provider config, the kubeconfig and images through
# it, the environment), V1 JUnit with filtered specs (3 passed, 1 failed, 36
# filtered is "failed", never "error"), failures + skips + errors, a crash
# with no JUnit, Ctrl-C, the artifacts collected with the kubectl stand-in
# (exact argv and KUBECONFIG), run.json, exit codes and bad usage. Real parts:
# the vgpuenv binary, make, bash, the fixture's own hack/functests.sh.
. "$(dirname "$0")/../lib/e2e.sh"
command -v make >/dev/null || skip "make not installed"
counts() { json "$1" '[d["counts"][k] for k in ("passed","failed","skipped","error","not_selected")]'; }

export FIXTURE_ENV_FILE=$T/env.txt FIXTURE_ARGS_FILE=$T/args.txt FIXTURE_INT_FILE=$T/int.txt
export KUBECONFIG=$T/local.kubeconfig
# Must not leak into make functest: vgpuenv sets or removes them.
export KUBEVIRT_E2E_SKIP=stale-skip VGPU_DISPLAY=stale
printf 'name: e2e-down\nprovider: local\n' >"$T/down.yaml"
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

# ---- 1. all pass on a local cluster (external to KubeVirt's suite) ----------
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-pass"
R=$T/r-pass
PC=$(realpath "$R")/kubevirtci-config/external/config-provider-external.sh
check "env: focus defaults to MediatedDevices" has "$T/env.txt" "KUBEVIRT_E2E_FOCUS=MediatedDevices"
check "env: KUBEVIRT_PROVIDER=external for local" has "$T/env.txt" "KUBEVIRT_PROVIDER=external"
check "env: KUBEVIRTCI_CONFIG_PATH is where the provider config is" has "$T/env.txt" \
	"KUBEVIRTCI_CONFIG_PATH=$(realpath "$R")/kubevirtci-config"
check "env: KUBECONFIG is the user's for local" has "$T/env.txt" "KUBECONFIG=$T/local.kubeconfig"
check "env: DOCKER_PREFIX from the config" has "$T/env.txt" "DOCKER_PREFIX=registry.example:5000/kubevirt"
check "env: DOCKER_TAG from the config" has "$T/env.txt" "DOCKER_TAG=devel"
check "env: ARTIFACTS absolute in the run dir" has "$T/env.txt" "ARTIFACTS=$(realpath "$R")/artifacts"
check "env: a stale KUBEVIRT_E2E_SKIP is removed" hasnt "$T/env.txt" "KUBEVIRT_E2E_SKIP"
check "env: KubeVirt main does not read VGPU_DISPLAY: removed" hasnt "$T/env.txt" "VGPU_DISPLAY"
check "provider config written as kubevirtci's external prepare_config would" test -s "$PC"
check "the suite got the kubeconfig through the provider config" has "$T/args.txt" "-kubeconfig=$T/local.kubeconfig"
check "the suite got the image prefix" has "$T/args.txt" "-container-prefix=registry.example:5000/kubevirt"
check "the suite got the image tag" has "$T/args.txt" "-container-tag=devel"
check "the suite got the focus" has "$T/args.txt" "--focus=MediatedDevices"
check "output streamed" has "$T/out" "Ran 5 of 40 Specs"
check "progress line with total" has "$T/err" "e2e progress: 5/5 specs, 0 failed"
check "summary line" has "$T/err" "5 passed, 0 failed, 0 skipped, 0 errors; 35 not selected"
check "functest.log holds the output" has "$R/functest.log" "Will run 5 of 40 specs"
check "run.json outcome passed" test "$(json "$R/run.json" 'd["outcome"]')" = passed
check "run.json counts (35 not selected)" test "$(counts "$R/run.json")" = "[5, 0, 0, 0, 35]"
check "run.json: which KubeVirt" test "$(json "$R/run.json" 'd["kubevirt"]["ref"], d["display"], d["vgpu_display"]')" = "('main', True, 'dmabuf')"
check "run.json: the provider config" test "$(json "$R/run.json" 'd["suite"]["provider_config"]')" = "$PC"
check "no artifacts collected on success" test ! -e "$R/collected"
check "the suite's namespaces are gone again (AfterSuite)" sh -c "! grep -q kubevirt-test- '$T/cluster/namespaces'"

# The file is what kubevirtci's own prepare_config writes (plus our header).
(cd "$T/kubevirtci" && mkdir -p "$T/upstream/external" && KUBEVIRTCI_CONFIG_PATH=$T/upstream \
	KUBEVIRT_PROVIDER=external KUBECTL="$FIX/bin/kubectl" bash -c \
	'source cluster-up/cluster/external/provider.sh; which() { return 1; }; prepare_config')
check "external provider config: the very lines of upstream's prepare_config" \
	diff -u "$T/upstream/external/config-provider-external.sh" <(grep -v '^#' "$PC")
# The suite sources it and gets the cluster from the exported variables.
check "sourcing it as hack/config.sh does gives the cluster's kubeconfig" test \
	"$(KUBECONFIG=$T/local.kubeconfig DOCKER_PREFIX=p DOCKER_TAG=t bash -c ". '$PC'; echo \$kubeconfig \$docker_prefix")" = "$T/local.kubeconfig p"

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
assert any(l.startswith("\u2022" * 5) for l in lines), [l for l in lines if "\u2022" in l or "e2e]" in l]
assert any(l.startswith("[e2e] 5/5 specs, 0 failed") for l in lines), lines[-5:]
PY
	echo "ok - tty: the screen shows five bullets on one line and the final progress"
else
	echo "note: script(1) missing, terminal rendering not checked"
fi

# ---- 2. issue 12's case on local, kcli and kubevirtci: V1 JUnit with 3
# passed, 1 failed, 36 filtered -> failed, 3 passed, 1 failed ------------------
for c in local kcli kubevirtci; do
	FIXTURE_SCENARIO=onefail run 1 -c "$T/$c.yaml" --kubevirt "$FIX" --run-dir "$T/r-one-$c" \
		--skip 'generic mediated devices' --no-collect
	R=$T/r-one-$c
	check "$c: outcome failed, never error" test "$(json "$R/run.json" 'd["outcome"]')" = failed
	check "$c: 3 passed, 1 failed, 36 not selected" test "$(counts "$R/run.json")" = "[3, 1, 0, 0, 36]"
	check "$c: summary says so" has "$T/err" "3 passed, 1 failed, 0 skipped, 0 errors; 36 not selected"
	check "$c: no problem reported" test "$(json "$R/run.json" 'd["errors"]')" = "[]"
done
check "kubevirtci: KUBEVIRT_PROVIDER is the cluster's" has "$T/env.txt" "KUBEVIRT_PROVIDER=k8s-1.36"
check "kubevirtci: the suite read the cluster's own provider config" has "$T/args.txt" \
	"-kubeconfig=$T/kubevirtci/_ci-configs/k8s-1.36/.kubeconfig"
check "kubevirtci: KUBEVIRTCI_CONFIG_PATH is the checkout's _ci-configs" has "$T/env.txt" \
	"KUBEVIRTCI_CONFIG_PATH=$T/kubevirtci/_ci-configs"
check "kubevirtci: images from the provider config's defaults" has "$T/args.txt" \
	"-container-prefix=registry:5000/kubevirt"
check "kubevirtci: no DOCKER_PREFIX forced on it" hasnt "$T/env.txt" "DOCKER_PREFIX="
check "kcli: kubeconfig from kcli" test "$(json "$T/r-one-kcli/run.json" 'd["suite"]["kubeconfig"]')" = \
	"$T/home/.kcli/clusters/e2e-kcli/auth/kubeconfig"

# ---- 3. failures, a skip and a panic; focus and skip given -------------------
FIXTURE_SCENARIO=mixed run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-fail" \
	--focus 'MediatedDevices|GPU' --skip 'Slow'
R=$T/r-fail
check "env: --focus passed" has "$T/env.txt" "KUBEVIRT_E2E_FOCUS=MediatedDevices|GPU"
check "env: --skip passed" has "$T/env.txt" "KUBEVIRT_E2E_SKIP=Slow"
check "run.json outcome failed" test "$(json "$R/run.json" 'd["outcome"]')" = failed
check "counts passed=2 failed=1 skipped=1 error=1" test "$(counts "$R/run.json")" = "[2, 1, 1, 1, 35]"
check "summary names the failure location" has "$T/err" \
	"at /go/src/kubevirt.io/kubevirt/tests/watcher/watcher.go:148"
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
# The exact kubectl calls of the collection, in order, with the cluster's
# KUBECONFIG (the checks before the suite pass --kubeconfig instead).
cat >"$T/want.log" <<EOF
KUBECONFIG=$T/local.kubeconfig get pods --all-namespaces -l kubevirt.io=virt-launcher -o json
KUBECONFIG=$T/local.kubeconfig logs -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k --all-containers=true
KUBECONFIG=$T/local.kubeconfig get pod -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -o yaml
KUBECONFIG=$T/local.kubeconfig exec -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -c compute -- sh -c \$'for uri in \'qemu+unix:///session?socket=/var/run/libvirt/virtqemud-sock\' \'qemu:///system\'; do\n  doms=\$(virsh -c "\$uri" list --all --name 2>/dev/null) || continue\n  for d in \$doms; do virsh -c "\$uri" dumpxml "\$d"; done\n  exit 0\ndone\necho \'no libvirt connection inside the launcher\' >&2\nexit 1\n'
KUBECONFIG=$T/local.kubeconfig exec -n kubevirt-test-default1 virt-launcher-testvmi-7xk2q-8fj2k -c compute -- sh -c \$'found=0\nfor f in /var/run/kubevirt-private/libvirt/qemu/log/*.log /var/log/libvirt/qemu/*.log; do\n  [ -f "\$f" ] || continue\n  found=1; echo "==> \$f <=="; cat "\$f"\ndone\n[ \$found = 1 ]\n'
KUBECONFIG=$T/local.kubeconfig get vmis --all-namespaces -o yaml
KUBECONFIG=$T/local.kubeconfig get events --all-namespaces --sort-by=.lastTimestamp
KUBECONFIG=$T/local.kubeconfig get pods --all-namespaces -l app.kubernetes.io/name=mesa-injector -o json
KUBECONFIG=$T/local.kubeconfig logs -n vgpuenv-system mesa-injector-5d8f7c9b6-q2x7w --all-containers=true
EOF
grep "^KUBECONFIG=$T/local.kubeconfig " "$KUBECTL_LOG" | grep -v -- ' --kubeconfig ' >"$T/collect.log"
check "kubectl argv and KUBECONFIG of the collection exactly as expected" diff -u "$T/want.log" "$T/collect.log"
check "the checks before the suite went to the suite's kubeconfig" has "$KUBECTL_LOG" \
	"--kubeconfig $T/local.kubeconfig --request-timeout=60s get nodes -l kubevirt.io/schedulable=true"
: >"$KUBECTL_LOG"

# ---- 4. kind: the cluster's provider config; display on (KubeVirt main) ------
FIXTURE_SCENARIO=pass run 0 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-kind"
check "kind: VGPU_DISPLAY removed (main does not read it)" hasnt "$T/env.txt" "VGPU_DISPLAY"
check "kind: KUBEVIRT_PROVIDER from the kind config" has "$T/env.txt" "KUBEVIRT_PROVIDER=kind-1.35-vgpu"
check "kind: the suite got kubevirtci's kubeconfig" has "$T/args.txt" \
	"-kubeconfig=$T/kubevirtci/_ci-configs/kind-1.35-vgpu/.kubeconfig"
check "kind: run.json display true on main" test "$(json "$T/r-kind/run.json" 'd["display"]')" = True
run 2 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-kind-off" --display off
check "display off on KubeVirt main refused with the reason" has "$T/err" "is main-like"
check "nothing created for a refused run" test ! -e "$T/r-kind-off"

# ---- 4b. the branch of kubevirt PR 16712 reads VGPU_DISPLAY ----------------
cp -rL "$FIX" "$T/kv-branch"
echo '// shouldDisableDisplay: os.Getenv("VGPU_DISPLAY") != "true"' >>"$T/kv-branch/tests/mdev_configuration_allocation_test.go"
FIXTURE_SCENARIO=pass run 0 -c "$T/kind.yaml" --kubevirt "$T/kv-branch" --run-dir "$T/r-br-kind"
check "branch, kind: display off by default, VGPU_DISPLAY removed" hasnt "$T/env.txt" "VGPU_DISPLAY"
check "branch, kind: recorded" test "$(json "$T/r-br-kind/run.json" 'd["kubevirt"]["ref"], d["display"]')" = "('vgpu-display-switch', False)"
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$T/kv-branch" --run-dir "$T/r-br-local"
check "branch, VM nodes: VGPU_DISPLAY=true" has "$T/env.txt" "VGPU_DISPLAY=true"

# ---- 5. the suite killed half-way: no JUnit, its namespaces left behind ------
FIXTURE_SCENARIO=crash run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-crash" --no-collect
R=$T/r-crash
check "crash: outcome error" test "$(json "$R/run.json" 'd["outcome"]')" = error
check "crash: make exit recorded" test "$(json "$R/run.json" 'd["make_exit"]')" = 2
check "crash: no JUnit, said so" has "$T/err" "no JUnit results: junit.functest.xml does not exist"
check "crash: --no-collect honoured" test ! -e "$R/collected"
# The next run finds the leftovers first, says how to remove them, and
# creates nothing; asked to, it removes them and runs.
run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-left"
check "leftover namespaces named" has "$T/err" "kubevirt-test-default1 kubevirt-test-alternative1"
check "how to remove them" has "$T/err" "delete namespace kubevirt-test-default1"
check "leftovers: no run directory" test ! -e "$T/r-left"
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-left" --delete-leftover-namespaces
check "leftovers deleted through kubectl" has "$KUBECTL_LOG" "delete namespace kubevirt-test-default1"
check "leftovers deleted, then the run passed" test "$(json "$T/r-left/run.json" 'd["outcome"]')" = passed
FIXTURE_SCENARIO=truncated run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-trunc" --no-collect \
	--delete-leftover-namespaces
check "truncated JUnit named with its line" has "$T/err" "artifacts/junit.functest.xml:"
check "truncated JUnit: not well-formed" has "$T/err" "not well-formed XML"
"$VG" e2e run -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-tidy" --delete-leftover-namespaces \
	>/dev/null 2>&1 || true

# ---- 6. Ctrl-C: the suite writes JUnit with the spec interrupted ------------
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
check "interrupted: 2 passed, 1 interrupted, 2 selected never ran" test "$(counts "$R/run.json")" = "[2, 0, 2, 1, 35]"
check "interrupted: artifacts still collected" test -s "$R/collected/vmis.yaml"

# ---- 6a. Ctrl-C during the collection stops it, run.json is still completed --
: >"$KUBECTL_LOG"
FIXTURE_SCENARIO=mixed KUBECTL_SLEEP=0.4 "$VG" e2e run -c "$T/local.yaml" --kubevirt "$FIX" \
	--run-dir "$T/r-colint" >/dev/null 2>"$T/err" &
pid=$!
for _ in $(seq 200); do grep -q 'get pods --all' "$KUBECTL_LOG" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "collection interrupted: exit 1 (the tests failed)" test "$rc" = 1
check "collection interrupted: said so" has "$T/err" "Artifact collection interrupted"
check "collection interrupted: the rest skipped" has "$T/r-colint/collected/commands.txt" \
	"(interrupted: the remaining commands were skipped)"
check "collection interrupted: run.json finished" test "$(json "$T/r-colint/run.json" 'd["finished"], d["outcome"]')" = "(True, 'failed')"

# ---- 6b. vgpuenv itself killed: run.json says unfinished, reports still work --
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

# ---- 7. no JUnit, and a focus that matches nothing ---------------------------
FIXTURE_SCENARIO=nojunit run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nojunit" --no-collect \
	--delete-leftover-namespaces
check "no JUnit: named clearly" has "$T/err" "r-nojunit/artifacts: no JUnit results"
FIXTURE_SCENARIO=pass run 1 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nothing" --no-collect \
	--focus NoSuchSpec --delete-leftover-namespaces
check "empty focus: said so" has "$T/err" 'no spec ran: focus "NoSuchSpec" matched nothing?'
check "empty focus: all 40 not selected" test "$(counts "$T/r-nothing/run.json")" = "[0, 0, 0, 0, 40]"

# ---- 8. expectations: a failure that was expected is the exit status 0 ------
FIXTURE_SCENARIO=opengl run 0 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-xfail" --no-collect \
	--vgpu-display dmabuf --expect failed --expect-message 'vfio-display-dmabuf: opengl not available'
check "expected failure: as expected" test "$(json "$T/r-xfail/run.json" 'd["outcome"], d["as_expected"]')" = "('failed', True)"
check "expected failure: said so" has "$T/err" 'as expected: failed with "vfio-display-dmabuf: opengl not available"'
FIXTURE_SCENARIO=onefail run 1 -c "$T/kind.yaml" --kubevirt "$FIX" --run-dir "$T/r-xother" --no-collect \
	--expect failed --expect-message 'opengl not available'
check "a failure for another reason is not the expected one" has "$T/err" "NOT as expected: expected every failure to show"
run 2 -c "$T/kind.yaml" --kubevirt "$FIX" --expect-message x
check "--expect-message alone refused" has "$T/err" "--expect-message needs --expect failed"
run 2 -c "$T/kind.yaml" --kubevirt "$FIX" --vgpu-display rgb
check "bad --vgpu-display refused" has "$T/err" '--vgpu-display must be dmabuf, region or none, not "rgb"'

# ---- 9. a run directory is reused cleanly, a foreign one refused -------------
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-fail"
check "reuse: stale collected/ removed" test ! -e "$T/r-fail/collected"
check "reuse: outcome of this run" test "$(json "$T/r-fail/run.json" 'd["outcome"]')" = passed
mkdir -p "$T/foreign" && echo keep >"$T/foreign/notes.txt"
run 2 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/foreign"
check "foreign run dir refused" has "$T/err" "is not empty and holds no run.json"
check "foreign run dir untouched" has "$T/foreign/notes.txt" keep

# ---- 10. bad usage and clusters that are not up -------------------------------
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
env -u KUBECONFIG "$VG" e2e run -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nokc" \
	>"$T/out" 2>"$T/err" && fail "local without KUBECONFIG succeeded"
check "local without KUBECONFIG explained" has "$T/err" "pass --kubeconfig or set KUBECONFIG"
check "local without KUBECONFIG: no run directory" test ! -e "$T/r-nokc"
# ---- 11. what the suite cannot run without: clear message, no run directory --
noted() { # what, message, args... (exit 1; NOTED_RC overrides)
	local what=$1 msg=$2 dir=$T/r-refused
	shift 2
	rm -rf "$dir"
	run "${NOTED_RC:-1}" --kubevirt "$FIX" --run-dir "$dir" "$@"
	check "$what: said so" has "$T/err" "$msg"
	check "$what: no run directory" test ! -e "$dir"
}
printf 'name: e2e-kcli\nprovider: kcli\nkcli:\n  image: centos9stream\nkubevirt:\n  docker_tag: devel\n' >"$T/kcli-noprefix.yaml"
run 2 -c "$T/kcli-noprefix.yaml" --kubevirt "$FIX" --run-dir "$T/r-refused"
check "missing image prefix: which key is missing" has "$T/err" "Missing: kubevirt.docker_prefix."
check "missing image prefix: why it cannot be known" has "$T/err" "takes docker_prefix from \${DOCKER_PREFIX}"
check "missing image prefix: no run directory" test ! -e "$T/r-refused"
printf 'name: e2e-local\nprovider: local\n' >"$T/local-noimages.yaml"
run 2 -c "$T/local-noimages.yaml" --kubevirt "$FIX" --run-dir "$T/r-refused"
check "missing prefix and tag: both named" has "$T/err" "Missing: kubevirt.docker_prefix, kubevirt.docker_tag."
DOCKER_PREFIX=env.example/kubevirt DOCKER_TAG=v1 FIXTURE_SCENARIO=pass run 0 -c "$T/local-noimages.yaml" \
	--kubevirt "$FIX" --run-dir "$T/r-envimages"
check "DOCKER_PREFIX/DOCKER_TAG from the environment do" has "$T/args.txt" "-container-prefix=env.example/kubevirt"
echo node02 >>"$T/cluster/schedulable"
noted "two schedulable nodes" "2 nodes are labelled kubevirt.io/schedulable=true (node01, node02)" -c "$T/local.yaml"
check "two schedulable nodes: the rule's source" has "$T/err" "libnode.GetAllSchedulableNodes ... HaveLen(1)"
FIXTURE_SCENARIO=pass run 0 -c "$T/local.yaml" --kubevirt "$FIX" --run-dir "$T/r-nomdev" --focus VMIlifecycle
check "two schedulable nodes are fine for a focus without MediatedDevices" test \
	"$(json "$T/r-nomdev/run.json" 'd["outcome"]')" = passed
echo node01 >"$T/cluster/schedulable"
echo kubevirt2/kubevirt >>"$T/cluster/kubevirts"
noted "two KubeVirt CRs" "The cluster has 2 KubeVirt CRs (kubevirt/kubevirt, kubevirt2/kubevirt)" -c "$T/local.yaml"
echo kubevirt/kubevirt >"$T/cluster/kubevirts"
NOTED_RC=2 KUBECONFIG=$T/local.kubeconfig:$T/other noted "a KUBECONFIG list" "KubeVirt's suite takes one kubeconfig file" -c "$T/local.yaml"
run 2 -c "$T/kubevirtci.yaml" --kubevirt "$FIX" --run-dir "$T/r-refused" --kubeconfig "$T/local.kubeconfig"
check "--kubeconfig for a kubevirtci cluster: the provider config decides" has "$T/err" \
	"reads the kubeconfig of a kubevirtci cluster from its provider config"
mv "$T/kubevirtci/_ci-configs/kind-1.35-vgpu/config-provider-kind-1.35-vgpu.sh" "$T/pc.sh"
noted "kind without its provider config" "has no provider config $T/kubevirtci/_ci-configs/kind-1.35-vgpu/config-provider-kind-1.35-vgpu.sh" \
	-c "$T/kind.yaml"
mv "$T/pc.sh" "$T/kubevirtci/_ci-configs/kind-1.35-vgpu/config-provider-kind-1.35-vgpu.sh"
"$VG" e2e run --help >"$T/out"
check "run --help" has "$T/out" "Usage: vgpuenv e2e run -c FILE --kubevirt DIR"
echo "all e2e run checks passed"
