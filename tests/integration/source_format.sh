#!/usr/bin/env bash
# Every C source and header is formatted by the one .clang-format at the
# root (`make format` rewrites them); a file that is not fails the suite.
set -u
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "FAIL: clang-format is missing (make deps)"; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null) || { echo "FAIL: not a git checkout, cannot list the sources"; exit 1; }
[ -n "$files" ] || { echo "FAIL: no C sources found"; exit 1; }
bad=""
n=0
for f in $files; do
	n=$((n + 1))
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
	echo "FAIL: not formatted (run make format):$bad"
	exit 1
fi
echo "PASS: $n files formatted as .clang-format says ($(clang-format --version | head -1))"
