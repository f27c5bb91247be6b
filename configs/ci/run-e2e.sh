#!/usr/bin/env bash
# CI entry point for systems other than GitHub Actions (GitLab, Jenkins,
# Prow, a cron job): one cell of the Kind-vs-VM matrix, or the whole matrix.
#
#   KUBEVIRT_DIR=/src/kubevirt configs/ci/run-e2e.sh kind        # expected: opengl not available
#   KUBEVIRT_DIR=/src/kubevirt configs/ci/run-e2e.sh kcli        # expected: passed
#   KUBEVIRT_DIR=/src/kubevirt configs/ci/run-e2e.sh --matrix configs/matrix.yaml
#
# Steps: make deps (skip with SKIP_DEPS=1), make cluster-up PROVIDER=...,
# make e2e, and make cluster-down whatever happened (also on Ctrl-C or a
# killed job). Results: $E2E_OUT/<name>/ (run.json, functest.log,
# artifacts/, collected/, report.md, report.html); archive that directory.
# $CI_SUMMARY_FILE, when set, gets the Markdown report appended (what
# $GITHUB_STEP_SUMMARY is on GitHub). Exit status: the tests'.
set -euo pipefail
cd "$(dirname "$0")/../.."

MAKE=${MAKE:-make}
E2E_OUT=${E2E_OUT:-_e2e}
usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ $# -ge 1 ] || usage
[ -n "${KUBEVIRT_DIR:-}" ] || { echo "run-e2e.sh: set KUBEVIRT_DIR to a KubeVirt checkout" >&2; exit 2; }

if [ "${SKIP_DEPS:-}" != 1 ]; then
	$MAKE deps
fi

if [ "$1" = --matrix ]; then
	[ $# -eq 2 ] || usage
	# The matrix brings every cell's cluster up and down itself (--up).
	rc=0
	$MAKE e2e-matrix MATRIX="$2" KUBEVIRT_DIR="$KUBEVIRT_DIR" E2E_UP=1 || rc=$?
	exit "$rc"
fi

case "$1" in
kind | kcli | kubevirtci | local) provider=$1 ;;
*) echo "run-e2e.sh: unknown provider '$1' (kind, kcli, kubevirtci, local)" >&2; exit 2 ;;
esac
name=${2:-$provider-dmabuf}
# KubeVirt main keeps the vGPU display on: with a DMABUF fake vGPU, Kind's
# nodes (containers, no render node) show the failure this project exists
# for, VM nodes pass.
expect=()
if [ "$provider" = kind ]; then
	expect=(E2E_EXPECT=failed "E2E_EXPECT_MESSAGE=vfio-display-dmabuf: opengl not available")
fi
run_dir=$E2E_OUT/$name

down() {
	# Always: a cluster left behind costs the next job its host.
	$MAKE cluster-down PROVIDER="$provider" || echo "run-e2e.sh: cluster-down failed" >&2
}
trap down EXIT
trap 'exit 130' INT TERM

$MAKE cluster-up PROVIDER="$provider"
rc=0
$MAKE e2e PROVIDER="$provider" KUBEVIRT_DIR="$KUBEVIRT_DIR" E2E_RUN_DIR="$run_dir" \
	E2E_NAME="$name" "${expect[@]}" || rc=$?
if [ -n "${CI_SUMMARY_FILE:-}" ] && [ -f "$run_dir/report.md" ]; then
	cat "$run_dir/report.md" >>"$CI_SUMMARY_FILE"
fi
echo "run-e2e.sh: $name: exit $rc, results in $run_dir"
exit "$rc"
