#!/usr/bin/env bash
# Runs test binaries (cmocka) and integration scripts, one after the other,
# and prints one line per test with its time, then "N passed, N failed".
# An integration script that cannot run here exits 77 after printing why; it
# is reported as SKIPPED with that reason, never silently. A test that runs
# past TEST_TIMEOUT seconds (1800) is stopped and reported as FAILED: a
# hang must not eat CI's whole budget.
set -u
limit=${TEST_TIMEOUT:-1800}
# No test loads a kernel module into this machine's own kernel (the Kind
# provider's host vGPU, provision/vgpu/): a module bug must not take the
# test machine down. Tests load modules inside VM nodes only.
export VGPUENV_NO_HOST_KERNEL=1
passed=0 failed=0 skipped=0
failed_names=()
logdir=${TEST_LOG_DIR:-build/test-logs}
mkdir -p "$logdir"
for t in "$@"; do
	name=${t#./}
	log="$logdir/$(echo "$name" | tr '/' '_').log"
	start=$(date +%s.%N)
	case "$t" in
	*.sh) timeout -k 30 "$limit" bash "$t" >"$log" 2>&1 ;;
	*) timeout -k 30 "$limit" "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	[ $rc -eq 124 ] && echo "FAIL: stopped after ${limit}s (TEST_TIMEOUT)" >>"$log"
	dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-55s %6ss\n' "$name" "$dt"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf 'SKIP  %-55s %6ss  reason: %s\n' "$name" "$dt" "$(grep -m1 'SKIP:' "$log" | sed 's/.*SKIP: //')"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		printf 'FAIL  %-55s %6ss  (exit %d, log %s)\n' "$name" "$dt" "$rc" "$log"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
done
echo
[ ${#failed_names[@]} -gt 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
