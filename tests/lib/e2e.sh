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
