# Sourced by every stand-in: records one invocation so tests can assert the
# exact argv, working directory, environment and stdin we passed.
#
# STANDIN_LOG=FILE: a readable line log (one "=== tool" block per call) and,
# next to it, FILE.d/NNN-tool/ with argv and env NUL-separated (exact
# values, for tests to compare), cwd, and stdin when the caller gave any.
standin_record() {
	local tool=$1
	shift
	[ -n "${STANDIN_LOG:-}" ] || return 0
	local d="$STANDIN_LOG.d" n
	mkdir -p "$d"
	# A lock keeps concurrent stand-ins (parallel node threads) apart.
	exec 9>>"$d/.lock"
	flock 9
	n=$(printf '%03d' "$(find "$d" -mindepth 1 -maxdepth 1 -type d | wc -l)")
	local dir="$d/$n-$tool"
	mkdir -p "$dir"
	printf '%s\0' "$tool" "$@" >"$dir/argv"
	env -0 | sort -z >"$dir/env"
	pwd >"$dir/cwd"
	if [ ! -t 0 ] && [ "${STANDIN_NO_STDIN:-}" != 1 ]; then
		timeout 2 cat >"$dir/stdin" 2>/dev/null || true
	fi
	{
		echo "=== $tool ($n)"
		echo "cwd: $(pwd)"
		local a
		for a in "$tool" "$@"; do printf 'arg: %s\n' "$a"; done
		env | sort | sed 's/^/env: /'
	} >>"$STANDIN_LOG"
	flock -u 9
	exec 9>&-
	STANDIN_DIR=$dir
}

# STANDIN_FAIL_<TOOL>=<word>: fail when <word> is one of the arguments.
standin_should_fail() {
	local var=$1 word
	shift
	word=${!var:-}
	[ -n "$word" ] || return 1
	local a
	for a in "$@"; do [ "$a" = "$word" ] && return 0; done
	return 1
}
