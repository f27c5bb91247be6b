#!/usr/bin/env bash
# Every C source and header is formatted by the one .clang-format at the
# root (`make format` rewrites them); a file that is not fails the suite.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || fail "clang-format is missing (make deps)"
files=$(git ls-files '*.c' '*.h' 2>/dev/null) || fail "not a git checkout, cannot list the sources"
[ -n "$files" ] || fail "no C sources found"
bad=""
n=0
for f in $files; do
	n=$((n + 1))
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
[ -z "$bad" ] || fail "not formatted (run make format):$bad"
echo "PASS: $n files formatted as .clang-format says ($(clang-format --version | head -1))"
