# Sourced first by tests/integration/e2e_*.sh: the shell library, the
# repository root as $ROOT and working directory, the vgpuenv binary as $VG,
# a scratch directory $T removed at exit (a script with more to clean sets
# its own EXIT trap, which must remove $T too), and the fixture KubeVirt
# checkout with its four "up" clusters (tests/fixtures/kubevirt/setup-clusters.sh).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
VG=$ROOT/build/vgpuenv
[ -x "$VG" ] || fail "build/vgpuenv missing: run make first"
T=$(mktemp -d "/tmp/$(basename "$0" .sh)-XXXXXX")
trap 'rm -rf "$T"' EXIT
# shellcheck source=../fixtures/kubevirt/setup-clusters.sh
. "$ROOT/tests/fixtures/kubevirt/setup-clusters.sh"

# The failure KubeVirt main's MediatedDevices specs show on Kind with a
# DMABUF fake vGPU: what those matrix cells expect.
OPENGL_FAILURE="vfio-display-dmabuf: opengl not available"

# A matrix file on the fixture checkout, cells given as "NAME CONFIG
# [VGPU_DISPLAY [FAILS_WITH]]" (VGPU_DISPLAY "-": the default; FAILS_WITH:
# the cell is expected to fail with that message) on stdin; an indented
# line is copied as is (another key of the cell above):
#   matrix_file PARALLEL(true|false|"") <<CELLS ... CELLS  > FILE
matrix_file() {
	[ -z "$1" ] || echo "parallel: $1"
	printf 'kubevirt: %s\ncells:\n' "$FIX"
	local line name config display fails
	while IFS= read -r line; do
		case $line in " "*)
			echo "$line"
			continue
			;;
		esac
		read -r name config display fails <<<"$line"
		printf '  - name: %s\n    config: %s\n' "$name" "$config"
		[ -z "$display" ] || [ "$display" = - ] || printf '    vgpu:\n      display: %s\n' "$display"
		[ -z "$fails" ] || printf '    expect:\n      outcome: failed\n      message: "%s"\n' "$fails"
	done
}
