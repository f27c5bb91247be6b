#!/usr/bin/env bash
# build/vgpuenv-probe on this host, which has no GPU: the negative paths a
# user meets on a node without a render node or without mesa. Each must end
# in exit 1 (not a crash) with a message that names the cause; --json must be
# valid JSON with "ok": false; bad usage exits 2.
# (The positive path needs a VM with virtio-gpu: tests/integration/probe_vm.sh
# and the up/down test.)
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."

PROBE=build/vgpuenv-probe
if [ ! -x "$PROBE" ]; then
	make -s "$PROBE" >/dev/null || { echo "FAIL: cannot build $PROBE"; exit 1; }
fi
T=$(mktemp -d /tmp/vgpuenv-probe-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

contains() { # contains DESCRIPTION NEEDLE FILE
	grep -qF -- "$2" "$3" && { ok "$1"; return 0; }
	sed 's/^/     | /' "$3" >&2
	fail "$1: no '$2' in the output above"
}
json_field() { # json_field FILE PYTHON-EXPR (d is the document)
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# The probe must not link mesa: on a node without it, it still starts.
libs=$(ldd "$PROBE" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux)' | sort | tr '\n' ' ')
case "$libs" in
"libc.so.6 " | "libc.so.6 libdl.so.2 " | "libdl.so.2 libc.so.6 ") ok "links only libc/libdl ($libs)" ;;
*) fail "probe links more than libc/libdl: $libs" ;;
esac

# ---- no render node: the first check fails with the message users see ---------
if ls /dev/dri/renderD* >/dev/null 2>&1; then
	echo "SKIP: this host has a render node; the no-render-node case cannot be tested here"
	exit 77
fi
rc=0
$PROBE >"$T/out" 2>"$T/err" || rc=$?
check_eq "no render node -> exit 1" 1 "$rc"
check_eq "first line names the check and the cause" \
	"FAIL render-node: no DRM render node under /dev/dri: the node has no GPU device (gpu: none?) or the virtio_gpu module is not loaded" \
	"$(head -n1 "$T/out")"
check_eq "later checks are skipped, not failed" 4 "$(grep -c '^SKIP ' "$T/out")"
check_eq "one line per check" 5 "$(wc -l <"$T/out")"

rc=0
$PROBE --json >"$T/json" 2>"$T/err" || rc=$?
check_eq "--json exit 1" 1 "$rc"
python3 -m json.tool "$T/json" >/dev/null && ok "--json output parses (python3 -m json.tool)" || fail "--json output is not JSON: $(cat "$T/json")"
check_eq '"ok": false' False "$(json_field "$T/json" 'd["ok"]')"
check_eq "device is null when none was found" None "$(json_field "$T/json" 'd["device"]')"
check_eq "checks in order" "render-node gbm egl-init dmabuf-ext dmabuf-export" \
	"$(json_field "$T/json" '" ".join(c["name"] for c in d["checks"])')"
check_eq "render-node status" "fail False" "$(json_field "$T/json" 'd["checks"][0]["status"], d["checks"][0]["ok"]' | tr -d "(),'")"
check_eq "render-node detail" "no DRM render node under /dev/dri: the node has no GPU device (gpu: none?) or the virtio_gpu module is not loaded" \
	"$(json_field "$T/json" 'd["checks"][0]["detail"]')"

rc=0
$PROBE --quiet >"$T/out" || rc=$?
check_eq "--quiet exit 1" 1 "$rc"
check_eq "--quiet prints only the failure" 1 "$(wc -l <"$T/out")"

# ---- a device that is not a render node ---------------------------------------
rc=0
$PROBE --device /dev/null >"$T/out" 2>"$T/err" || rc=$?
check_eq "--device /dev/null -> exit 1 (no crash)" 1 "$rc"
check_eq "non-DRM device named" "FAIL render-node: /dev/null is not a DRM device (DRM_IOCTL_VERSION: Inappropriate ioctl for device)" \
	"$(head -n1 "$T/out")"
rc=0
$PROBE --device "$T/missing" >"$T/out" 2>"$T/err" || rc=$?
check_eq "missing device -> exit 1" 1 "$rc"
check_eq "missing device named" "FAIL render-node: cannot open $T/missing: No such file or directory" "$(head -n1 "$T/out")"

# Past the DRM check (test-only --any-device), mesa runs on a bogus fd: the
# probe must still end in a clear FAIL and exit 1, never a signal.
if [ -e /usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0 ] || ldconfig -p | grep -c libEGL_mesa.so.0 >/dev/null; then # -c reads it all: no SIGPIPE under pipefail
	rc=0
	$PROBE --device /dev/null --any-device --json >"$T/json" 2>"$T/err" || rc=$?
	check_eq "mesa on /dev/null -> exit 1, not a signal" 1 $rc
	python3 -m json.tool "$T/json" >/dev/null && ok "--json still valid" || fail "--json invalid: $(cat "$T/json")"
	# Which later check gives up depends on the mesa version (mesa 22.3
	# falls back to kms_swrast and fails at the export); exactly one fails.
	check_eq "exactly one later check fails, with a reason" "1 True True" \
		"$(json_field "$T/json" '" ".join(str(x) for x in (len([c for c in d["checks"] if c["status"]=="fail"]), d["checks"][0]["ok"], all(c["detail"] for c in d["checks"] if c["status"]=="fail")))')"
else
	fail "mesa's EGL is not installed on this host (libegl-mesa0): cannot test the mesa paths"
fi

# Hand-written JSON escaping: quotes, backslashes, newlines and control
# characters in a detail must survive.
weird="$T/we\"ird\\name
with-newline$(printf '\001')"
rc=0
$PROBE --json --device "$weird" >"$T/json" 2>"$T/err" || rc=$?
check_eq "weird device path -> exit 1" 1 "$rc"
check_eq "weird device path round-trips through JSON" "$weird" "$(json_field "$T/json" 'd["device"]')"
check_eq "and inside the detail" "cannot open $weird: No such file or directory" "$(json_field "$T/json" 'd["checks"][0]["detail"]')"

# ---- missing libraries are named, not a loader failure -------------------------
mkdir -p "$T/empty"
rc=0
LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --gbm-lib libgbm-missing.so.1 >"$T/out" 2>"$T/err" || rc=$?
check_eq "missing libgbm -> exit 1" 1 "$rc"
contains "missing GBM library named" "FAIL gbm: cannot load libgbm-missing.so.1 (libgbm-missing.so.1: cannot open shared object file: No such file or directory): mesa's GBM library is missing (Debian: libgbm1, RHEL: mesa-libgbm)" "$T/out"

rc=0
LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --egl-lib libEGL-missing.so.1 >"$T/out" 2>"$T/err" || rc=$?
check_eq "missing libEGL -> exit 1" 1 "$rc"
contains "missing EGL library named" "FAIL egl-init: cannot load libEGL-missing.so.1 (libEGL-missing.so.1: cannot open shared object file: No such file or directory)" "$T/out"

rc=0
LD_LIBRARY_PATH="$T/empty" $PROBE --device /dev/null --any-device --gles-lib libGLESv2-missing.so.2 >"$T/out" 2>"$T/err" || rc=$?
check_eq "missing libGLESv2 -> exit 1" 1 "$rc"
contains "missing GLES library named" "FAIL dmabuf-export: cannot load libGLESv2-missing.so.2" "$T/out"

# A library that exists but is not EGL: the missing symbol is named.
rc=0
$PROBE --device /dev/null --any-device --egl-lib libc.so.6 >"$T/out" 2>"$T/err" || rc=$?
check_eq "wrong library -> exit 1" 1 "$rc"
contains "missing symbol named" "FAIL egl-init: libc.so.6 has no eglGetProcAddress" "$T/out"

# ---- usage ------------------------------------------------------------------------
rc=0
$PROBE --help >"$T/out" || rc=$?
check_eq "--help exit 0" 0 "$rc"
contains "--help lists --device" "--device PATH" "$T/out"
rc=0
$PROBE --no-such-option >/dev/null 2>"$T/err" || rc=$?
check_eq "unknown option -> exit 2" 2 "$rc"
rc=0
$PROBE stray >/dev/null 2>"$T/err" || rc=$?
check_eq "stray argument -> exit 2" 2 "$rc"
contains "stray argument named" "unexpected argument 'stray'" "$T/err"

echo
echo "all probe host checks passed"
