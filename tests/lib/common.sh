# The shell library every test script sources first (directly or through
# tests/lib/vm.sh, tests/standins/assert.sh, webhook/tests/lib.sh): strict
# mode and the one contract for assertions.
#
#   fail MESSAGE            print "FAIL: MESSAGE" on stderr, exit 1
#   ok MESSAGE              print "ok   MESSAGE"
#   skip REASON             print "SKIP: REASON", exit 77 (tests/run.sh
#                           reports it loudly, with the reason)
#   check WHAT COMMAND...   run COMMAND; ok WHAT when it succeeds, else fail
#                           WHAT (COMMAND's own output stays visible)
#   has FILE STRING         FILE contains STRING (fixed string)
#   hasnt FILE STRING       it does not
set -Eeuo pipefail
# Strict mode must never fail silently: say which command stopped the test.
# ERR fires with errexit off too (a cleanup's best-effort commands): only
# failures that stop the test are reported.
trap 'rc=$?; [[ $- != *e* || $BASH_COMMAND == exit* ]] ||
	echo "FAIL: ${BASH_SOURCE[0]}:$LINENO: \"$BASH_COMMAND\" exited with $rc" >&2' ERR

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok   $*"; }
skip() {
	echo "SKIP: $*"
	exit 77
}
check() {
	local what=$1
	shift
	"$@" || fail "$what"
	ok "$what"
}
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }
