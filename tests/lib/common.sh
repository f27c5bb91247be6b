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
#   check_eq WHAT WANT GOT  ok WHAT when GOT is WANT, else fail WHAT showing both
#   has FILE STRING         FILE contains STRING (fixed string)
#   hasnt FILE STRING       it does not
#   json FILE EXPR          print the Python expression EXPR of the JSON
#                           document in FILE (d is the document)
# A script that defines on_fail gets it called before a failure exits (to
# show a console, a server's log).
set -Eeuo pipefail
# Strict mode must never fail silently: say which command stopped the test.
# ERR fires with errexit off too (a cleanup's best-effort commands): only
# failures that stop the test are reported.
trap 'rc=$?; [[ $- != *e* || $BASH_COMMAND == exit* ]] ||
	echo "FAIL: ${BASH_SOURCE[0]}:$LINENO: \"$BASH_COMMAND\" exited with $rc" >&2' ERR

fail() {
	echo "FAIL: $*" >&2
	if declare -F on_fail >/dev/null; then on_fail >&2 || true; fi
	exit 1
}
CHECKS=0
ok() {
	CHECKS=$((CHECKS + 1))
	echo "ok   $*"
}
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
check_eq() {
	[ "$2" == "$3" ] && { ok "$1"; return 0; }
	printf '     want: %q\n     got:  %q\n' "$2" "$3" >&2
	fail "$1"
}
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
