#!/usr/bin/env bash
# build/vgpuenv-probe on this host, which has no GPU: the negative paths a
# user meets on a node without a render node or without mesa. Each must end
# in exit 1 (not a crash) with a message that names the cause; --json must be
# valid JSON with "ok": false; bad usage exits 2.
# (The positive path needs a VM with virtio-gpu: tests/integration/probe_vm.sh
# and the up/down test.)
set -u
cd "$(dirname "$0")/../.."

PROBE=build/vgpuenv-probe
if [ ! -x "$PROBE" ]; then
	make -s "$PROBE" >/dev/null || { echo "FAIL: cannot build $PROBE"; exit 1; }
fi
T=$(mktemp -d /tmp/vgpuenv-probe-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

failures=0
ok() { echo "ok   $*"; }
bad() {
	echo "FAIL $*"
	failures=$((failures + 1))
}
check() { # check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then ok "$1"; else
		bad "$1"
		printf '     expected: %q\n     actual:   %q\n' "$2" "$3"
	fi
}
contains() { # contains DESCRIPTION NEEDLE FILE
	if grep -qF -- "$2" "$3"; then ok "$1"; else
		bad "$1: no '$2' in:"
		sed 's/^/     | /' "$3"
	fi
}
json_field() { # json_field FILE PYTHON-EXPR (d is the document)
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# The probe must not link mesa: on a node without it, it still starts.
libs=$(ldd "$PROBE" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux)' | sort | tr '\n' ' ')
case "$libs" in
"libc.so.6 " | "libc.so.6 libdl.so.2 " | "libdl.so.2 libc.so.6 ") ok "links only libc/libdl ($libs)" ;;
*) bad "probe links more than libc/libdl: $libs" ;;
esac

# ---- no render node: the first check fails with the message users see ---------
if ls /dev/dri/renderD* >/dev/null 2>&1; then
	echo "SKIP: this host has a render node; the no-render-node case cannot be tested here"
	exit 77
fi
$PROBE >"$T/out" 2>"$T/err"
check "no render node -> exit 1" 1 $?
check "first line names the check and the cause" \
	"FAIL render-node: no DRM render node under /dev/dri: the node has no GPU device (gpu: none?) or the virtio_gpu module is not loaded" \
	"$(head -n1 "$T/out")"
check "later checks are skipped, not failed" 4 "$(grep -c '^SKIP ' "$T/out")"
check "one line per check" 5 "$(wc -l <"$T/out")"

$PROBE --json >"$T/json" 2>"$T/err"
check "--json exit 1" 1 $?
python3 -m json.tool "$T/json" >/dev/null && ok "--json output parses (python3 -m json.tool)" || bad "--json output is not JSON: $(cat "$T/json")"
check '"ok": false' False "$(json_field "$T/json" 'd["ok"]')"
check "device is null when none was found" None "$(json_field "$T/json" 'd["device"]')"
check "checks in order" "render-node gbm egl-init dmabuf-ext dmabuf-export" \
	"$(json_field "$T/json" '" ".join(c["name"] for c in d["checks"])')"
check "render-node status" "fail False" "$(json_field "$T/json" 'd["checks"][0]["status"], d["checks"][0]["ok"]' | tr -d "(),'")"
check "render-node detail" "no DRM render node under /dev/dri: the node has no GPU device (gpu: none?) or the virtio_gpu module is not loaded" \
	"$(json_field "$T/json" 'd["checks"][0]["detail"]')"

$PROBE --quiet >"$T/out"
check "--quiet exit 1" 1 $?
check "--quiet prints only the failure" 1 "$(wc -l <"$T/out")"

# ---- a device that is not a render node ---------------------------------------
$PROBE --device /dev/null >"$T/out" 2>"$T/err"
check "--device /dev/null -> exit 1 (no crash)" 1 $?
check "non-DRM device named" "FAIL render-node: /dev/null is not a DRM device (DRM_IOCTL_VERSION: Inappropriate ioctl for device)" \
	"$(head -n1 "$T/out")"
$PROBE --device "$T/missing" >"$T/out" 2>"$T/err"
check "missing device -> exit 1" 1 $?
check "missing device named" "FAIL render-node: cannot open $T/missing: No such file or directory" "$(head -n1 "$T/out")"

# Past the DRM check (test-only --any-device), mesa runs on a bogus fd: the
# probe must still end in a clear FAIL and exit 1, never a signal.
if [ -e /usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0 ] || ldconfig -p | grep -q libEGL_mesa.so.0; then
	$PROBE --device /dev/null --any-device --json >"$T/json" 2>"$T/err"
	rc=$?
	check "mesa on /dev/null -> exit 1, not a signal" 1 $rc
	python3 -m json.tool "$T/json" >/dev/null && ok "--json still valid" || bad "--json invalid: $(cat "$T/json")"
	# Which later check gives up depends on the mesa version (mesa 22.3
	# falls back to kms_swrast and fails at the export); exactly one fails.
	check "exactly one later check fails, with a reason" "1 True True" \
		"$(json_field "$T/json" '" ".join(str(x) for x in (len([c for c in d["checks"] if c["status"]=="fail"]), d["checks"][0]["ok"], all(c["detail"] for c in d["checks"] if c["status"]=="fail")))')"
else
	bad "mesa's EGL is not installed on this host (libegl-mesa0): cannot test the mesa paths"
fi

# Hand-written JSON escaping: quotes, backslashes, newlines and control
# characters in a detail must survive.
weird="$T/we\"ird\\name
with-newline$(printf '\001')"
$PROBE --json --device "$weird" >"$T/json" 2>"$T/err"
check "weird device path -> exit 1" 1 $?
check "weird device path round-trips through JSON" "$weird" "$(json_field "$T/json" 'd["device"]')"
check "and inside the detail" "cannot open $weird: No such file or directory" "$(json_field "$T/json" 'd["checks"][0]["detail"]')"

# ---- missing libraries are named, not a loader failure -------------------------
mkdir -p "$T/empty"
LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --gbm-lib libgbm-missing.so.1 >"$T/out" 2>"$T/err"
check "missing libgbm -> exit 1" 1 $?
contains "missing GBM library named" "FAIL gbm: cannot load libgbm-missing.so.1 (libgbm-missing.so.1: cannot open shared object file: No such file or directory): mesa's GBM library is missing (Debian: libgbm1, RHEL: mesa-libgbm)" "$T/out"

LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --egl-lib libEGL-missing.so.1 >"$T/out" 2>"$T/err"
check "missing libEGL -> exit 1" 1 $?
contains "missing EGL library named" "FAIL egl-init: cannot load libEGL-missing.so.1 (libEGL-missing.so.1: cannot open shared object file: No such file or directory)" "$T/out"

LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --gles-lib libGLESv2-missing.so.2 >"$T/out" 2>"$T/err"
check "missing libGLESv2 -> exit 1" 1 $?
contains "missing GLES library named" "FAIL dmabuf-export: cannot load libGLESv2-missing.so.2" "$T/out"

# A library that exists but is not EGL: the missing symbol is named.
$PROBE --device /dev/null --any-device --egl-lib libc.so.6 >"$T/out" 2>"$T/err"
check "wrong library -> exit 1" 1 $?
contains "missing symbol named" "FAIL egl-init: libc.so.6 has no eglGetProcAddress" "$T/out"

# ---- usage ------------------------------------------------------------------------
$PROBE --help >"$T/out"
check "--help exit 0" 0 $?
contains "--help lists --device" "--device PATH" "$T/out"
$PROBE --no-such-option >/dev/null 2>"$T/err"
check "unknown option -> exit 2" 2 $?
$PROBE stray >/dev/null 2>"$T/err"
check "stray argument -> exit 2" 2 $?
contains "stray argument named" "unexpected argument 'stray'" "$T/err"

echo
if [ $failures -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all probe host checks passed"
