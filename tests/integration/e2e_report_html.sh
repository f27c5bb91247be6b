#!/usr/bin/env bash
# The HTML report opened in headless Chromium: a matrix of kind (display
# off, passes), kcli (display on, passes), kubevirtci (display on, fails)
# and a local run that crashed half-way. The rendered DOM is read back (grid
# outcomes by provider and display, the per-spec table, relative artifact
# links that exist), the cell colours are read as Chromium computes them, and
# the page must load nothing from outside. A screenshot is kept in
# build/test-logs/e2e-report.png for people to look at.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VG=$ROOT/build/vgpuenv
[ -x "$VG" ] || { echo "build/vgpuenv missing: run make first"; exit 1; }
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || { echo "SKIP: chromium not installed (make deps installs it)"; exit 77; }
T=$(mktemp -d /tmp/e2e-html-XXXXXX)
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

export FIXTURE_SCENARIO_kind_1_30_vgpu=pass FIXTURE_SCENARIO_external=pass FIXTURE_SCENARIO_k8s_1_30=fail
cat >"$T/matrix.yaml" <<YAML
kubevirt: $FIX
cells:
  - name: kind-display-off
    config: kind.yaml
  - name: kcli-display-on
    config: kcli.yaml
    display: true
  - name: kubevirtci-display-on
    config: kubevirtci.yaml
    display: true
YAML
"$VG" e2e matrix -c "$T/matrix.yaml" --out "$T/m" >/dev/null 2>"$T/err" || true
check "matrix made three cells" test -s "$T/m/kubevirtci-display-on/run.json"
FIXTURE_SCENARIO_external=crash KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/local.yaml" \
	--kubevirt "$FIX" --run-dir "$T/runs/local-crash" --name local-crash --no-collect \
	>/dev/null 2>>"$T/err" || true
check "crashed local run made" test -s "$T/runs/local-crash/run.json"

# The report lives elsewhere than the runs: links must be relative to it.
mkdir -p "$T/site"
"$VG" e2e report --format html --out "$T/site/report.html" "$T/m" "$T/runs/local-crash" 2>>"$T/err"
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

grid = {r[0][2]: r[1:] for r in p.tables["grid"][1:]}
assert list(grid) == ["kcli", "kind", "kubevirtci", "local"], list(grid)
def slot(provider, display):
    c = grid[provider][display]
    return c[1].get("data-outcome"), c[1].get("data-cell"), c[1].get("class")
assert slot("kind", 0) == ("passed", "kind-display-off", "passed"), slot("kind", 0)
assert slot("kind", 1) == ("none", None, "missing"), slot("kind", 1)
assert slot("kcli", 1) == ("passed", "kcli-display-on", "passed"), slot("kcli", 1)
assert slot("kubevirtci", 1) == ("failed", "kubevirtci-display-on", "failed")
assert slot("local", 1) == ("error", "local-crash", "error"), slot("local", 1)
assert "1 passed, 2 failed, 1 skipped, 1 errors" in grid["kubevirtci"][1][2], grid["kubevirtci"][1][2]
print("ok - grid: kind off passed, kcli on passed, kubevirtci on failed, local on error")

cells = {r[0][2]: [c[2] for c in r] for r in p.tables["cells"][1:]}
assert cells["kubevirtci-display-on"][:8] == ["kubevirtci-display-on", "kubevirtci", "on", "failed", "1", "2", "1", "1"], cells["kubevirtci-display-on"]
assert cells["local-crash"][:8] == ["local-crash", "local", "on", "error", "3", "0", "0", "0"], cells["local-crash"]
assert cells["kind-display-off"][2:4] == ["off", "passed"]
print("ok - cells table: counts and outcomes")

head = [c[2] for c in p.tables["tests"][0]]
assert head == ["Spec", "kcli-display-on", "kind-display-off", "kubevirtci-display-on", "local-crash"], head
rows = {r[0][2]: [(c[1].get("data-status"), c[1].get("class")) for c in r[1:]] for r in p.tables["tests"][1:]}
spec = [n for n in rows if n.endswith("Should successfully passthrough a mediated device [Serial, VGPU, sig-compute]")]
assert len(spec) == 1, spec
assert rows[spec[0]] == [("passed", "passed"), ("passed", "passed"), ("failed", "failed"), ("passed", "passed")], rows[spec[0]]
node = [n for n in rows if "specific node" in n][0]
# The crashed run lost this spec (truncated partial file): shown as missing.
assert rows[node] == [("passed", "passed"), ("passed", "passed"), ("panicked", "error"), ("none", "missing")], rows[node]
print("ok - specs table: statuses per cell, the crashed run's lost spec shown as missing")

assert len(p.hrefs) >= 8, p.hrefs
for h in p.hrefs:
    assert not h.startswith(("/", "http", "file:")), h
    assert os.path.exists(os.path.join(site, h)), h
assert "../m/kubevirtci-display-on/collected" in p.hrefs, p.hrefs
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
grep -q "kind-display-off=" "$T/probe.dom" || { cat "$T/probe.dom"; fail "computed colours not read"; }
check "passed cell is green" grep -q "kind-display-off=rgb(218, 251, 225)" "$T/probe.dom"
check "failed cell is red" grep -q "kubevirtci-display-on=rgb(255, 215, 213)" "$T/probe.dom"
check "error cell is amber" grep -q "local-crash=rgb(255, 241, 194)" "$T/probe.dom"

mkdir -p "$ROOT/build/test-logs"
chromium_run --window-size=1400,1100 --screenshot="$ROOT/build/test-logs/e2e-report.png" \
	"file://$T/site/report.html" >/dev/null
check "screenshot written (build/test-logs/e2e-report.png)" \
	test "$(stat -c %s "$ROOT/build/test-logs/e2e-report.png")" -gt 20000
echo "all e2e HTML report checks passed"
