#!/usr/bin/env bash
# The HTML report opened in headless Chromium: a matrix on KubeVirt main of
# kind with a DMABUF fake vGPU (fails with "opengl not available", as
# expected), kind with a region one (passes), local (passes), kubevirtci
# (fails for another reason: not as expected) and a kcli run that crashed.
# The rendered DOM is read back (grid by provider and fake-vGPU display,
# what each cell ran, verdicts, the per-spec table without the filtered
# specs, relative artifact links that exist), the cell colours are read as
# Chromium computes them, and the page must load nothing from outside. A screenshot is kept in
# build/test-logs/e2e-report.png for people to look at.
. "$(dirname "$0")/../lib/e2e.sh"
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || skip "chromium not installed (make deps installs it)"

export KUBECONFIG=$T/local.kubeconfig
export FIXTURE_SCENARIO_kind_dmabuf=opengl FIXTURE_SCENARIO_kind_region=pass FIXTURE_SCENARIO_local_dmabuf=pass \
	FIXTURE_SCENARIO_kubevirtci_dmabuf=onefail
cat >"$T/matrix.yaml" <<YAML
kubevirt: $FIX
cells:
  - name: kind-dmabuf
    config: kind.yaml
    expect:
      outcome: failed
      message: "vfio-display-dmabuf: opengl not available"
  - name: kind-region
    config: kind.yaml
    vgpu:
      display: region
  - name: kubevirtci-dmabuf
    config: kubevirtci.yaml
    skip: generic mediated devices
  - name: local-dmabuf
    config: local.yaml
YAML
"$VG" e2e matrix -c "$T/matrix.yaml" --out "$T/m" >/dev/null 2>"$T/err" || true
check "matrix made four cells" test -s "$T/m/local-dmabuf/run.json"
FIXTURE_SCENARIO=crash "$VG" e2e run -c "$T/kcli.yaml" --kubevirt "$FIX" --run-dir "$T/runs/kcli-crash" \
	--name kcli-crash --vgpu-display none --no-collect >/dev/null 2>>"$T/err" || true
check "crashed kcli run made" test -s "$T/runs/kcli-crash/run.json"

# The report lives elsewhere than the runs: links must be relative to it.
mkdir -p "$T/site"
"$VG" e2e report --format html --out "$T/site/report.html" "$T/m" "$T/runs/kcli-crash" 2>>"$T/err"
check "self-contained: no scripts, stylesheets or remote URLs" \
	sh -c "! grep -Eiq '<script|<link|<img|src=|https?://' '$T/site/report.html'"

chromium_run() {
	timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$(mktemp -d "$T/profile-XXXXXX")" "$@" 2>>"$T/chromium.log"
}

chromium_run --dump-dom "file://$T/site/report.html" >"$T/dom.html"
check "Chromium rendered the page" grep -q '<table id="grid">' "$T/dom.html"
python3 - "$T/dom.html" "$T/site" <<'PY' || fail "report DOM as rendered by Chromium"
import os, sys
from html.parser import HTMLParser

class Tables(HTMLParser):
    """Rows of every table by id: lists of (tag, attrs, text) cells."""
    def __init__(self):
        super().__init__()
        self.tables, self.cur, self.row, self.cell, self.hrefs = {}, None, None, None, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.cur = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self.cur is not None:
            self.row = []
            self.cur.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = [tag, a, ""]
            self.row.append(self.cell)
        elif tag == "a":
            self.hrefs.append(a["href"])
    def handle_endtag(self, tag):
        if tag == "table":
            self.cur = None
        elif tag in ("td", "th"):
            self.cell = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell[2] += data

p = Tables()
p.feed(open(sys.argv[1], encoding="utf-8").read())
site = sys.argv[2]

head = [(c[1].get("data-vgpu"), c[2]) for c in p.tables["grid"][0]]
assert head == [(None, "Provider"), ("dmabuf", "dmabuf fake vGPU"), ("region", "region fake vGPU"),
                ("none", "none fake vGPU")], head
grid = {r[0][2]: r[1:] for r in p.tables["grid"][1:]}
assert list(grid) == ["kind", "kubevirtci", "local", "kcli"], list(grid)
def slot(provider, col):
    c = grid[provider][col][1]
    return c.get("data-cell"), c.get("class"), c.get("data-outcome"), c.get("data-verdict"), c.get("data-kubevirt")
assert slot("kind", 0) == ("kind-dmabuf", "xfail", "failed", "as-expected", "main"), slot("kind", 0)
assert "failed as expected (vfio-display-dmabuf: opengl not available)" in grid["kind"][0][2], grid["kind"][0][2]
assert "display on" in grid["kind"][0][2], grid["kind"][0][2]
assert slot("kind", 1) == ("kind-region", "passed", "passed", "as-expected", "main"), slot("kind", 1)
assert slot("kubevirtci", 0) == ("kubevirtci-dmabuf", "failed", "failed", "unexpected", "main"), slot("kubevirtci", 0)
assert slot("local", 0) == ("local-dmabuf", "passed", "passed", "as-expected", "main"), slot("local", 0)
assert slot("kcli", 2) == ("kcli-crash", "error", "error", "unexpected", "main"), slot("kcli", 2)
assert grid["kind"][2][1].get("class") == "missing", grid["kind"][2]
print("ok - grid: kind dmabuf failed as expected, kind region passed, kubevirtci not as expected, local passed, kcli error")

cells = {r[0][2]: [c[2] for c in r] for r in p.tables["cells"][1:]}
assert cells["kind-dmabuf"][:12] == ["kind-dmabuf", "kind", "main", "dmabuf", "on", "failed", "as expected",
                                     "3", "2", "0", "0", "35"], cells["kind-dmabuf"]
# Issue 12's case: 3 passed, 1 failed, 36 filtered out.
assert cells["kubevirtci-dmabuf"][5:12] == ["failed", "failed, not as expected: expected passed, got failed",
                                           "3", "1", "0", "0", "36"], cells["kubevirtci-dmabuf"]
assert cells["kcli-crash"][:7] == ["kcli-crash", "kcli", "main", "none", "on", "error",
                                   "error, not as expected: expected passed, got error"], cells["kcli-crash"]
print("ok - cells table: what each cell ran, outcomes, verdicts, counts with not selected")

head = [c[2] for c in p.tables["tests"][0]]
assert head == ["Spec", "kind-dmabuf", "kind-region", "kubevirtci-dmabuf", "local-dmabuf", "kcli-crash"], head
rows = {r[0][2]: [(c[1].get("data-status"), c[1].get("class")) for c in r[1:]] for r in p.tables["tests"][1:]}
# Only the specs that ran somewhere: the 35 filtered ones are not rows.
assert len(rows) == 5 and all("MediatedDevices" in n for n in rows), list(rows)
spec = [n for n in rows if n.endswith("Should successfully passthrough a mediated device")]
assert len(spec) == 1, spec
assert rows[spec[0]] == [("failed", "failed"), ("passed", "passed"), ("failed", "failed"), ("passed", "passed"),
                         ("none", "missing")], rows[spec[0]]
generic = [n for n in rows if "generic" in n][0]
assert rows[generic][2] == ("not selected", "notselected"), rows[generic]
print("ok - specs table: statuses per cell, filtered specs left out, the crashed run's specs missing")

assert len(p.hrefs) >= 8, p.hrefs
for h in p.hrefs:
    assert not h.startswith(("/", "http", "file:")), h
    assert os.path.exists(os.path.join(site, h)), h
assert "../m/kubevirtci-dmabuf/collected" in p.hrefs, p.hrefs
print("ok - %d artifact links, all relative and existing" % len(p.hrefs))
PY

# Colours as Chromium computes them: a test page reads the report through an
# iframe (same origin only with --allow-file-access-from-files).
cat >"$T/site/probe.html" <<'HTML'
<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="f" src="report.html"></iframe>
<script>
document.getElementById("f").onload = function () {
  var d = this.contentDocument, lines = [];
  d.querySelectorAll("#grid td[data-cell]").forEach(function (td) {
    lines.push(td.getAttribute("data-cell") + "=" + getComputedStyle(td).backgroundColor);
  });
  document.getElementById("out").textContent = lines.join("\n");
};
</script></body></html>
HTML
chromium_run --allow-file-access-from-files --virtual-time-budget=5000 --dump-dom \
	"file://$T/site/probe.html" >"$T/probe.dom"
grep -q "kind-dmabuf=" "$T/probe.dom" || { cat "$T/probe.dom"; fail "computed colours not read"; }
check "passed cell is green" grep -q "kind-region=rgb(218, 251, 225)" "$T/probe.dom"
check "expected failure is lilac, not red" grep -q "kind-dmabuf=rgb(239, 226, 255)" "$T/probe.dom"
check "unexpected failure is red" grep -q "kubevirtci-dmabuf=rgb(255, 215, 213)" "$T/probe.dom"
check "error cell is amber" grep -q "kcli-crash=rgb(255, 241, 194)" "$T/probe.dom"

mkdir -p "$ROOT/build/test-logs"
chromium_run --window-size=1400,1100 --screenshot="$ROOT/build/test-logs/e2e-report.png" \
	"file://$T/site/report.html" >/dev/null
check "screenshot written (build/test-logs/e2e-report.png)" \
	test "$(stat -c %s "$ROOT/build/test-logs/e2e-report.png")" -gt 20000
echo "all e2e HTML report checks passed"
