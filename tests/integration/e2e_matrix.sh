#!/usr/bin/env bash
# `vgpuenv e2e matrix` and `vgpuenv e2e report` on three clusters (kind with
# the display off, kcli and kubevirtci with it on) against the fixture KubeVirt
# checkout: --up/--down ordering (vgpuenv's own up/down replaced through
# VGPUENV_SELF by a recorder that runs everything else for real), one run
# directory per cell, the reports in every format, parallel cells, and
# matrix files that must be refused with file:line:column.
. "$(dirname "$0")/../lib/e2e.sh"

export KUBECONFIG=$T/local.kubeconfig
# The cells' clusters as the fixture suite plays them: Kind with a DMABUF fake
# vGPU fails the VMI specs with "opengl not available" (KubeVirt main keeps the
# display on), Kind with a region one and VM nodes pass.
export FIXTURE_SCENARIO_kind_dmabuf=opengl FIXTURE_SCENARIO_kind_region=pass FIXTURE_SCENARIO_local_dmabuf=pass

cat >"$T/matrix.yaml" <<YAML
parallel: false
kubevirt: $FIX
cells:
  - name: kind-dmabuf
    config: kind.yaml
    vgpu:
      display: dmabuf
    expect:
      outcome: failed
      message: "vfio-display-dmabuf: opengl not available"
  - name: kind-region
    config: kind.yaml
    vgpu:
      display: region
  - name: local-dmabuf
    config: local.yaml
    vgpu:
      display: dmabuf
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
[ "$rc" = 0 ] || cat "$T/err"
check "matrix whose cells all show their expected result exits 0" test "$rc" = 0
cat >"$T/want-calls" <<CALLS
up -c $T/kind.yaml
e2e run -c $T/kind.yaml --kubevirt $FIX --run-dir $T/m/kind-dmabuf --name kind-dmabuf --display auto --vgpu-display dmabuf --expect failed --expect-message vfio-display-dmabuf: opengl not available --focus MediatedDevices
down -c $T/kind.yaml
up -c $T/kind.yaml
e2e run -c $T/kind.yaml --kubevirt $FIX --run-dir $T/m/kind-region --name kind-region --display auto --vgpu-display region --focus MediatedDevices
down -c $T/kind.yaml
up -c $T/local.yaml
e2e run -c $T/local.yaml --kubevirt $FIX --run-dir $T/m/local-dmabuf --name local-dmabuf --display auto --vgpu-display dmabuf --focus MediatedDevices
down -c $T/local.yaml
CALLS
check "--up: up, run, down per cell, in order, exact argv" diff -u "$T/want-calls" "$T/calls.log"
for c in kind-dmabuf kind-region local-dmabuf; do
	check "cell $c has its run directory" test -s "$T/m/$c/run.json" -a -s "$T/m/$c/functest.log"
done
check "report.json: what each cell ran and showed" test \
	"$(json "$T/m/report.json" '[(c["name"], c["provider"], c["kubevirt"]["ref"], c["vgpu_display"], c["display"], c["outcome"], c["as_expected"]) for c in d["cells"]]')" = \
	"[('kind-dmabuf', 'kind', 'main', 'dmabuf', True, 'failed', True), ('kind-region', 'kind', 'main', 'region', True, 'passed', True), ('local-dmabuf', 'local', 'main', 'dmabuf', True, 'passed', True)]"
check "report.json: the expected failure with its message" test \
	"$(json "$T/m/report.json" 'd["cells"][0]["expect"], d["cells"][0]["verdict"]')" = \
	"({'outcome': 'failed', 'message': 'vfio-display-dmabuf: opengl not available'}, 'failed as expected (vfio-display-dmabuf: opengl not available)')"
check "report.json: counts with the filtered specs apart" test \
	"$(json "$T/m/report.json" '[d["cells"][0]["counts"][k] for k in ("passed","failed","skipped","error","not_selected")]')" = "[3, 2, 0, 0, 35]"
check "report.json totals" test "$(json "$T/m/report.json" '[d["totals"][k] for k in ("passed","failed","skipped","error","not_selected")]')" = "[13, 2, 0, 0, 105]"
check "report.json ok: every cell as expected" test "$(json "$T/m/report.json" 'd["ok"]')" = True
check "report.json artifact links relative" test "$(json "$T/m/report.json" 'd["cells"][0]["collected"]')" = "kind-dmabuf/collected"
check "report.md row of the expected failure" has "$T/m/report.md" \
	"| kind-dmabuf | kind | main | dmabuf | on | ✔️ failed as expected | as expected | 3 | 2 | 0 | 0 | 35 |"
check "report.md row of a pass" has "$T/m/report.md" "| kind-region | kind | main | region | on | ✅ passed | as expected | 5 | 0 | 0 | 0 | 35 |"
check "report.md: the failures marked expected" has "$T/m/report.md" "- **kind-dmabuf** (failed, expected)"
check "report.md names the display failure" has "$T/m/report.md" "vfio-display-dmabuf: opengl not available"
python3 - "$T/m/junit.xml" <<'PY' || fail "merged junit.xml"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
# Not-selected specs are left out: 5 + 5 + 5 that ran or were selected.
assert root.get("tests") == "15" and root.get("failures") == "2" and root.get("errors") == "0", root.attrib
names = [s.get("name") for s in root.findall("testsuite")]
assert names == ["kind-dmabuf", "kind-region", "local-dmabuf"], names
kind = root.find("testsuite[@name='kind-dmabuf']")
props = {p.get("name"): p.get("value") for p in kind.find("properties")}
assert props["kubevirt"] == "main" and props["vgpu_display"] == "dmabuf" and props["display"] == "on", props
assert props["expected"] == "failed: vfio-display-dmabuf: opengl not available", props
assert props["as_expected"] == "true" and props["not_selected"] == "35", props
fails = [c for c in kind.findall("testcase") if c.find("failure") is not None]
assert len(fails) == 2 and all(c.get("classname") == "kind-dmabuf" for c in fails)
assert all("opengl not available" in c.find("failure").get("message") for c in fails)
print("ok - merged junit.xml: 3 suites, 15 tests, 2 expected failures, what each cell ran as properties")
PY

# ---- a cell that fails for another reason: not as expected, exit 1 ----------
cat >"$T/bad-cell.yaml" <<YAML
kubevirt: $FIX
cells:
  - name: kind-dmabuf
    config: kind.yaml
    expect:
      outcome: failed
      message: "vfio-display-dmabuf: opengl not available"
  - name: kubevirtci-dmabuf
    config: kubevirtci.yaml
YAML
rc=0
FIXTURE_SCENARIO_kubevirtci_dmabuf=onefail "$VG" e2e matrix -c "$T/bad-cell.yaml" --out "$T/b" >"$T/out" 2>"$T/err" || rc=$?
check "a cell not as expected fails the matrix" test "$rc" = 1
check "report.json: which cell was not as expected" test \
	"$(json "$T/b/report.json" '[(c["name"], c["as_expected"]) for c in d["cells"]], d["ok"]')" = \
	"([('kind-dmabuf', True), ('kubevirtci-dmabuf', False)], False)"
check "report.md says why" has "$T/b/report.md" "failed, not as expected: expected passed, got failed"

# ---- e2e report: formats, stdout, bad input ----------------------------------
"$VG" e2e report --format json "$T/m/kind-region" >"$T/one.json"
check "report of one run dir to stdout" test "$(json "$T/one.json" 'len(d["cells"]), d["ok"]')" = "(1, True)"
"$VG" e2e report "$T/m" >"$T/r.md"
check "markdown is the default format" has "$T/r.md" "## vgpuenv e2e: MediatedDevices"
"$VG" e2e report --format junit "$T/m/kind-region" >"$T/r.xml"
check "junit to stdout" has "$T/r.xml" '<testsuite name="kind-region" tests="5"'
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
# At once, the cells need clusters of their own (KubeVirt's test namespaces
# would clash): one each, as the fixture suite sees them.
for kc in "$T/kubevirtci/_ci-configs/kind-1.35-vgpu/.kubeconfig" "$T/kubevirtci/_ci-configs/k8s-1.36/.kubeconfig" \
	"$T/local.kubeconfig"; do
	cp -r "$T/cluster" "$kc.cluster"
done
cat >"$T/matrix.yaml" <<YAML
parallel: true
kubevirt: $FIX
cells:
  - name: kind-dmabuf
    config: kind.yaml
    expect:
      outcome: failed
      message: "vfio-display-dmabuf: opengl not available"
  - name: kubevirtci-dmabuf
    config: kubevirtci.yaml
  - name: local-dmabuf
    config: local.yaml
YAML
rc=0
"$VG" e2e matrix -c "$T/matrix.yaml" --out "$T/p" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || { tail -30 "$T/err"; cat "$T/p"/*/console.log | tail -40; }
check "parallel matrix exits 0 (every cell as expected)" test "$rc" = 0
check "parallel: said so" has "$T/err" "3 cells in parallel"
for c in kind-dmabuf kubevirtci-dmabuf local-dmabuf; do
	check "parallel: $c output in console.log" has "$T/p/$c/console.log" "Specs in"
done
check "parallel: same outcomes" test "$(json "$T/p/report.json" '[c["outcome"] for c in d["cells"]]')" = "['failed', 'passed', 'passed']"

# ---- Ctrl-C of a parallel matrix with --up: forwarded once to each run,
# partial results reported, down still runs ------------------------------------
cat >"$T/int.yaml" <<YAML
parallel: true
kubevirt: $FIX
cells:
  - name: kind-region
    config: kind.yaml
    vgpu:
      display: region
  - name: kubevirtci-dmabuf
    config: kubevirtci.yaml
YAML
mkdir -p "$T/ready"
rm -f "$T/calls.log"
FIXTURE_SCENARIO_kind_region=hang FIXTURE_SCENARIO_kubevirtci_dmabuf=hang FIXTURE_READY_DIR=$T/ready \
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
check "the interrupted runs left no test namespaces (AfterSuite ran)" sh -c "! grep -q kubevirt-test- $T/kubevirtci/_ci-configs/*/.kubeconfig.cluster/namespaces"
check "down ran for both cells after the interrupt" test "$(grep -c '^down -c' "$T/calls.log")" = 2

# ---- matrix files that must be refused ----------------------------------------
bad() { # name, expected message, yaml
	printf '%s\n' "$3" >"$T/$1.yaml"
	rc=0
	"$VG" e2e matrix -c "$T/$1.yaml" --out "$T/never" 2>"$T/err" >/dev/null || rc=$?
	check "bad matrix $1 exits 2" test "$rc" = 2
	check "bad matrix $1: $2" has "$T/err" "$2"
}
bad display-off "$T/display-off.yaml:5:14: cell \"k\": display off, but KubeVirt in $FIX is main-like" \
	"kubevirt: $FIX
cells:
  - name: k
    config: kind.yaml
    display: off"
bad same-cluster "$T/same-cluster.yaml:7:13: cells \"a\" and \"b\" would run on the same cluster ($T/kind.yaml) at once" \
	"parallel: true
kubevirt: $FIX
cells:
  - name: a
    config: kind.yaml
  - name: b
    config: kind.yaml"
bad vgpu-display "$T/vgpu-display.yaml:6:16" \
	"kubevirt: $FIX
cells:
  - name: k
    config: kind.yaml
    vgpu:
      display: rgb"
bad expect-message "$T/expect-message.yaml:7:16: cell \"k\": expect.message needs expect.outcome: failed" \
	"kubevirt: $FIX
cells:
  - name: k
    config: kind.yaml
    expect:
      outcome: passed
      message: opengl"
bad no-checkout "cell \"a\": $T/nope is no usable KubeVirt checkout" \
	"kubevirt: $T/nope
cells:
  - name: a
    config: kind.yaml"
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
