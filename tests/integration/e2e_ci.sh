#!/usr/bin/env bash
# The CI wrappers around `vgpuenv e2e`: `make e2e` and `make functest` run for
# real against the fixture KubeVirt checkout (env, run directory, reports,
# $GITHUB_STEP_SUMMARY, exit status), configs/ci/run-e2e.sh drives make in
# the right order with cluster-down always (make replaced by a recorder),
# and the GitHub Actions workflow has the Kind-vs-VM matrix and calls only
# targets that exist.
. "$(dirname "$0")/../lib/e2e.sh"
export FIXTURE_ENV_FILE=$T/env.txt
# Nested make: no jobserver or flags from an outer `make test`.
unset MAKEFLAGS MFLAGS MAKELEVEL

# ---- make e2e, for real --------------------------------------------------------
rc=0
FIXTURE_SCENARIO=opengl GITHUB_STEP_SUMMARY=$T/summary.md make -s e2e CONFIG="$T/kind.yaml" \
	KUBEVIRT_DIR="$FIX" E2E_RUN_DIR="$T/run-kind" E2E_NAME=kind-dmabuf FOCUS=MediatedDevices \
	E2E_VGPU_DISPLAY=dmabuf E2E_EXPECT=failed E2E_EXPECT_MESSAGE='vfio-display-dmabuf: opengl not available' \
	>"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T/err"; fail "make e2e exited $rc"; }
check "make e2e: run directory" test -s "$T/run-kind/run.json"
check "make e2e: --name reached the run" has "$T/run-kind/run.json" '"name":	"kind-dmabuf"'
check "make e2e: the fake vGPU's display recorded" has "$T/run-kind/run.json" '"vgpu_display":	"dmabuf"'
check "make e2e: the expected failure is exit 0" has "$T/run-kind/run.json" '"as_expected":	true'
check "make e2e: report.md" has "$T/run-kind/report.md" "| kind-dmabuf | kind | main | dmabuf | on | ✔️ failed as expected |"
check "make e2e: report.html" has "$T/run-kind/report.html" '<table id="grid">'
check "make e2e: step summary appended" has "$T/summary.md" "## vgpuenv e2e: MediatedDevices"

rc=0
FIXTURE_SCENARIO=mixed KUBEVIRT_E2E_FOCUS='MediatedDevices|vGPU' KUBEVIRT_E2E_SKIP=Slow \
	make -s functest CONFIG="$T/kubevirtci.yaml" KUBEVIRT_DIR="$FIX" E2E_RUN_DIR="$T/run-kv" \
	>"$T/out" 2>"$T/err" || rc=$?
check "make functest: exit status is the tests' (2 = make's failure)" test "$rc" = 2
check "make functest: KubeVirt's focus variable used" has "$T/env.txt" "KUBEVIRT_E2E_FOCUS=MediatedDevices|vGPU"
check "make functest: skip used" has "$T/env.txt" "KUBEVIRT_E2E_SKIP=Slow"
check "make functest: the cluster's own provider config" has "$T/env.txt" "KUBEVIRTCI_CONFIG_PATH=$T/kubevirtci/_ci-configs"
check "make functest: report of the failure" has "$T/run-kv/report.md" "❌ failed"
rc=0
make -s e2e CONFIG="$T/kind.yaml" >"$T/out" 2>"$T/err" || rc=$?
check "make e2e without KUBEVIRT_DIR refused" has "$T/err" "set KUBEVIRT_DIR"

# ---- run-e2e.sh: order of steps, cluster-down always ---------------------------
cat >"$T/make" <<SH
#!/bin/sh
echo "\$*" >>"$T/make.log"
case "\$1" in
cluster-up) exit \${REC_UP_RC:-0} ;;
e2e)
	for a in "\$@"; do case "\$a" in E2E_RUN_DIR=*) d=\${a#E2E_RUN_DIR=} ;; esac; done
	mkdir -p "\$d" && echo "| cell | report |" >"\$d/report.md"
	exit \${REC_E2E_RC:-0} ;;
esac
exit 0
SH
chmod +x "$T/make"
rc=0
(cd "$T" && MAKE=$T/make KUBEVIRT_DIR=/src/kubevirt E2E_OUT=$T/out-ci CI_SUMMARY_FILE=$T/ci-summary.md \
	REC_E2E_RC=1 "$ROOT/configs/ci/run-e2e.sh" kind) >"$T/out" 2>&1 || rc=$?
check "run-e2e.sh: the tests' status" test "$rc" = 1
cat >"$T/want" <<EOF
deps
cluster-up PROVIDER=kind
e2e PROVIDER=kind KUBEVIRT_DIR=/src/kubevirt E2E_RUN_DIR=$T/out-ci/kind-dmabuf E2E_NAME=kind-dmabuf E2E_EXPECT=failed E2E_EXPECT_MESSAGE=vfio-display-dmabuf: opengl not available
cluster-down PROVIDER=kind
EOF
check "run-e2e.sh: deps, up, e2e, down with exact arguments" diff -u "$T/want" "$T/make.log"
check "run-e2e.sh: summary appended" has "$T/ci-summary.md" "| cell | report |"
rm -f "$T/make.log"
rc=0
MAKE=$T/make KUBEVIRT_DIR=/src/kubevirt SKIP_DEPS=1 REC_UP_RC=3 "$ROOT/configs/ci/run-e2e.sh" kcli \
	>"$T/out" 2>&1 || rc=$?
check "run-e2e.sh: failed cluster-up fails the job" test "$rc" = 3
printf 'cluster-up PROVIDER=kcli\ncluster-down PROVIDER=kcli\n' >"$T/want"
check "run-e2e.sh: cluster-down after a failed up, no e2e, deps skipped" diff -u "$T/want" "$T/make.log"
rm -f "$T/make.log"
MAKE=$T/make KUBEVIRT_DIR=/src/kubevirt SKIP_DEPS=1 "$ROOT/configs/ci/run-e2e.sh" --matrix configs/matrix.yaml >"$T/out" 2>&1
check "run-e2e.sh --matrix: e2e-matrix with --up" has "$T/make.log" \
	"e2e-matrix MATRIX=configs/matrix.yaml KUBEVIRT_DIR=/src/kubevirt E2E_UP=1"
rc=0; MAKE=$T/make "$ROOT/configs/ci/run-e2e.sh" kind >"$T/out" 2>&1 || rc=$?
check "run-e2e.sh: KUBEVIRT_DIR required" test "$rc" = 2
rc=0; MAKE=$T/make KUBEVIRT_DIR=/x "$ROOT/configs/ci/run-e2e.sh" docker >"$T/out" 2>&1 || rc=$?
check "run-e2e.sh: unknown provider refused" test "$rc" = 2

# ---- the GitHub Actions workflow --------------------------------------------------
python3 - "$ROOT/configs/ci/github-actions.yml" <<'PY' || fail "github-actions.yml"
import re, sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
jobs = wf["jobs"]
cells = [(c["name"], c["provider"], c["expect"]) for c in jobs["e2e"]["strategy"]["matrix"]["include"]]
assert cells == [("kind-dmabuf", "kind", "failed"), ("kcli-dmabuf", "kcli", "passed"),
                 ("kubevirtci-dmabuf", "kubevirtci", "passed")], cells
assert "opengl not available" in jobs["e2e"]["strategy"]["matrix"]["include"][0]["expect_message"]
steps = jobs["e2e"]["steps"]
runs = " ".join(s.get("run", "") for s in steps)
for target in ("make deps", "make cluster-up PROVIDER=", "make e2e PROVIDER=", "make cluster-down PROVIDER="):
    assert target in runs, target
down = [s for s in steps if "cluster-down" in s.get("run", "")][0]
up = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")][0]
assert down.get("if") == "always()" and up.get("if") == "always()"
assert jobs["e2e"]["strategy"]["fail-fast"] is False
assert "GITHUB_STEP_SUMMARY" in " ".join(s.get("run", "") for s in jobs["report"]["steps"])
assert "E2E_EXPECT=${{ matrix.expect }}" in runs, runs
print("ok - workflow: 3 cells with their expected results, deps/up/e2e/down, down and upload always, summary")
PY
for t in deps cluster-up cluster-down e2e functest e2e-matrix; do
	make -n "$t" KUBEVIRT_DIR=/x >"$T/n.out" 2>&1 || true
	check "make target $t exists" sh -c "! grep -q 'No rule to make target' '$T/n.out'"
done
echo "all e2e CI checks passed"
