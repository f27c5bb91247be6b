#!/usr/bin/env bash
# `vgpuenv e2e matrix` and `vgpuenv e2e report` on three clusters (kind with
# the display off, kcli and kubevirtci with it on) against the fixture KubeVirt
# checkout: --up/--down ordering (vgpuenv's own up/down replaced through
# VGPUENV_SELF by a recorder that runs everything else for real), one run
# directory per cell, the reports in every format, parallel cells, and
# matrix files that must be refused with file:line:column.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VG=$ROOT/build/vgpuenv
[ -x "$VG" ] || { echo "build/vgpuenv missing: run make first"; exit 1; }
T=$(mktemp -d /tmp/e2e-matrix-XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck source=../fixtures/kubevirt/setup-clusters.sh
. "$ROOT/tests/fixtures/kubevirt/setup-clusters.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {
	local what=$1
	shift
	"$@" || fail "$what"
	echo "ok - $what"
}
has() { grep -qF -- "$2" "$1"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# kind passes, kcli (KUBEVIRT_PROVIDER=external) passes, kubevirtci fails.
export FIXTURE_SCENARIO_kind_1_30_vgpu=pass FIXTURE_SCENARIO_external=pass FIXTURE_SCENARIO_k8s_1_30=fail

cat >"$T/matrix.yaml" <<YAML
parallel: false
kubevirt: $FIX
cells:
  - name: kind-display-off
    config: kind.yaml
    display: false
  - name: kcli-display-on
    config: kcli.yaml
    display: true
  - name: kubevirtci-display-on
    config: kubevirtci.yaml
    display: true
YAML
# Records vgpuenv up/down (real ones would build clusters), runs the rest.
cat >"$T/self.sh" <<SH
#!/bin/sh
echo "\$*" >>"$T/calls.log"
case "\$1" in up|down) exit 0 ;; esac
exec "$VG" "\$@"
SH
chmod +x "$T/self.sh"

rc=0
VGPUENV_SELF=$T/self.sh "$VG" e2e matrix -c "$T/matrix.yaml" --out "$T/m" --up >"$T/out" 2>"$T/err" || rc=$?
check "matrix with a failing cell exits 1" test "$rc" = 1
cat >"$T/want-calls" <<CALLS
up -c $T/kind.yaml
e2e run -c $T/kind.yaml --kubevirt $FIX --run-dir $T/m/kind-display-off --name kind-display-off --display off --focus MediatedDevices
down -c $T/kind.yaml
up -c $T/kcli.yaml
e2e run -c $T/kcli.yaml --kubevirt $FIX --run-dir $T/m/kcli-display-on --name kcli-display-on --display on --focus MediatedDevices
down -c $T/kcli.yaml
up -c $T/kubevirtci.yaml
e2e run -c $T/kubevirtci.yaml --kubevirt $FIX --run-dir $T/m/kubevirtci-display-on --name kubevirtci-display-on --display on --focus MediatedDevices
down -c $T/kubevirtci.yaml
CALLS
check "--up: up, run, down per cell, in order, exact argv" diff -u "$T/want-calls" "$T/calls.log"
for c in kind-display-off kcli-display-on kubevirtci-display-on; do
	check "cell $c has its run directory" test -s "$T/m/$c/run.json" -a -s "$T/m/$c/functest.log"
done
check "report.json outcomes per cell" test \
	"$(json "$T/m/report.json" '[(c["name"], c["provider"], c["display"], c["outcome"]) for c in d["cells"]]')" = \
	"[('kcli-display-on', 'kcli', True, 'passed'), ('kind-display-off', 'kind', False, 'passed'), ('kubevirtci-display-on', 'kubevirtci', True, 'failed')]"
check "report.json totals" test "$(json "$T/m/report.json" '[d["totals"][k] for k in ("passed","failed","skipped","error")]')" = "[11, 2, 1, 1]"
check "report.json not ok" test "$(json "$T/m/report.json" 'd["ok"]')" = False
check "report.json artifact links relative" test "$(json "$T/m/report.json" 'd["cells"][2]["collected"]')" = "kubevirtci-display-on/collected"
check "report.md table row" has "$T/m/report.md" "| kubevirtci-display-on | kubevirtci | on | ❌ failed | 1 | 2 | 1 | 1 |"
check "report.md names the display failure" has "$T/m/report.md" "mdev_configuration_allocation_test.go:236"
python3 - "$T/m/junit.xml" <<'PY' || fail "merged junit.xml"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
assert root.get("tests") == "15" and root.get("failures") == "2" and root.get("errors") == "1", root.attrib
names = [s.get("name") for s in root.findall("testsuite")]
assert names == ["kcli-display-on", "kind-display-off", "kubevirtci-display-on"], names
bad = root.find("testsuite[@name='kubevirtci-display-on']")
fails = [c for c in bad.findall("testcase") if c.find("failure") is not None]
assert len(fails) == 2 and all(c.get("classname") == "kubevirtci-display-on" for c in fails)
assert any("opengl not available" in c.find("failure").get("message") for c in fails)
print("ok - merged junit.xml: 3 suites, 15 tests, 2 failures, 1 error")
PY

# ---- e2e report: formats, stdout, bad input ----------------------------------
"$VG" e2e report --format json "$T/m/kind-display-off" >"$T/one.json"
check "report of one run dir to stdout" test "$(json "$T/one.json" 'len(d["cells"]), d["ok"]')" = "(1, True)"
"$VG" e2e report "$T/m" >"$T/r.md"
check "markdown is the default format" has "$T/r.md" "## vgpuenv e2e: MediatedDevices"
"$VG" e2e report --format junit "$T/m/kind-display-off" >"$T/r.xml"
check "junit to stdout" has "$T/r.xml" '<testsuite name="kind-display-off" tests="5"'
rc=0; "$VG" e2e report --format pdf "$T/m" 2>"$T/err" || rc=$?
check "bad --format exits 2" test "$rc" = 2
check "bad --format explained" has "$T/err" '--format must be markdown, json, junit or html, not "pdf"'
mkdir -p "$T/notarun"
rc=0; "$VG" e2e report "$T/notarun" 2>"$T/err" || rc=$?
check "not a run dir exits 2" test "$rc" = 2
check "not a run dir explained" has "$T/err" "neither an e2e run directory (no run.json) nor a matrix directory"
echo '{"nope": 1}' >"$T/notarun/run.json"
rc=0; "$VG" e2e report "$T/notarun" 2>"$T/err" || rc=$?
check "foreign run.json refused" has "$T/err" "not a vgpuenv run summary"

# ---- parallel cells, output per cell ----------------------------------------
sed -i 's/^parallel: false/parallel: true/' "$T/matrix.yaml"
rc=0
"$VG" e2e matrix -c "$T/matrix.yaml" --out "$T/p" >"$T/out" 2>"$T/err" || rc=$?
check "parallel matrix exits 1 (one failing cell)" test "$rc" = 1
check "parallel: said so" has "$T/err" "3 cells in parallel"
for c in kind-display-off kcli-display-on kubevirtci-display-on; do
	check "parallel: $c output in console.log" has "$T/p/$c/console.log" "Ran 5 of 1612 Specs"
done
check "parallel: same outcomes" test "$(json "$T/p/report.json" '[c["outcome"] for c in d["cells"]]')" = "['passed', 'passed', 'failed']"

# ---- Ctrl-C of a parallel matrix with --up: forwarded once to each run,
# partial results reported, down still runs ------------------------------------
cat >"$T/int.yaml" <<YAML
parallel: true
kubevirt: $FIX
cells:
  - name: kind-display-off
    config: kind.yaml
  - name: kubevirtci-display-on
    config: kubevirtci.yaml
    display: true
YAML
mkdir -p "$T/ready"
rm -f "$T/calls.log"
FIXTURE_SCENARIO_kind_1_30_vgpu=hang FIXTURE_SCENARIO_k8s_1_30=hang FIXTURE_READY_DIR=$T/ready \
	VGPUENV_SELF=$T/self.sh "$VG" e2e matrix -c "$T/int.yaml" --out "$T/i" --up >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 150); do [ "$(ls "$T/ready" | wc -l)" = 2 ] && break; sleep 0.1; done
[ "$(ls "$T/ready" | wc -l)" = 2 ] || fail "the two hanging cells never started"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "interrupted matrix exits 1" test "$rc" = 1
check "interrupted matrix said so" has "$T/err" "matrix: interrupted"
check "both cells interrupted, partial results kept" test \
	"$(json "$T/i/report.json" '[(c["outcome"], c["counts"]["passed"], c["counts"]["error"]) for c in d["cells"]]')" = \
	"[('interrupted', 2, 1), ('interrupted', 2, 1)]"
check "down ran for both cells after the interrupt" test "$(grep -c '^down -c' "$T/calls.log")" = 2

# ---- matrix files that must be refused ----------------------------------------
bad() { # name, expected message, yaml
	printf '%s\n' "$3" >"$T/$1.yaml"
	rc=0
	"$VG" e2e matrix -c "$T/$1.yaml" --out "$T/never" 2>"$T/err" >/dev/null || rc=$?
	check "bad matrix $1 exits 2" test "$rc" = 2
	check "bad matrix $1: $2" has "$T/err" "$2"
}
bad kind-display "$T/kind-display.yaml:5:14: cell \"k\": display must be false on kind" \
	"kubevirt: $FIX
cells:
  - name: k
    config: kind.yaml
    display: true"
bad dup "$T/dup.yaml:6:11: duplicate cell name \"a\"" \
	"kubevirt: $FIX
cells:
  - name: a
    config: kind.yaml
  - config: kcli.yaml
    name: a"
bad no-cells "$T/no-cells.yaml:2:8: cells: the matrix needs at least one cell" \
	"kubevirt: $FIX
cells: []"
bad name "cell name \"Kind/Off\" must be 1-64 characters" \
	"kubevirt: $FIX
cells:
  - name: Kind/Off
    config: kind.yaml"
bad no-kubevirt "$T/no-kubevirt.yaml:2:5: cell \"a\" has no KubeVirt checkout" \
	"cells:
  - name: a
    config: kind.yaml"
bad cell-config "cell \"a\": bad cluster config: $T/missing.yaml" \
	"kubevirt: $FIX
cells:
  - name: a
    config: missing.yaml"
bad unknown-key "$T/unknown-key.yaml:1:1" "paralel: true
cells:
  - name: a
    config: kind.yaml"
check "nothing created for refused matrices" test ! -e "$T/never"
"$VG" e2e matrix --help >"$T/out"
check "matrix --help" has "$T/out" "Usage: vgpuenv e2e matrix -c MATRIX.yaml"
echo "all e2e matrix checks passed"
