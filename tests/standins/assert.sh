# Assertions for the provider tests that drive stand-ins (tests/standins/):
# find recorded invocations and compare their exact argv and environment.
# Sourced; expects $STANDIN_LOG.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# Directories of the recorded calls of a tool, in call order.
calls() {
	find "$STANDIN_LOG.d" -mindepth 1 -maxdepth 1 -type d -name "*-$1" 2>/dev/null | sort
}

# argv of a recorded call, one element per line (elements have no newlines
# in these tests; exactness is checked with argv_is).
argv_of() {
	tr '\0' '\n' <"$1/argv"
}

# argv_is DIR ARG...: the recorded argv is exactly ARG...
argv_is() {
	local dir=$1
	shift
	local -a got
	mapfile -d '' got <"$dir/argv"
	if [ "${#got[@]}" -ne "$#" ]; then
		echo "argv has ${#got[@]} elements, expected $#:" >&2
		printf '  got: [%s]\n' "${got[@]}" >&2
		printf '  want: [%s]\n' "$@" >&2
		return 1
	fi
	local i=0 a
	for a in "$@"; do
		if [ "${got[$i]}" != "$a" ]; then
			echo "argv[$i] is [${got[$i]}], expected [$a]" >&2
			return 1
		fi
		i=$((i + 1))
	done
}

# env_has DIR KEY=VALUE: the call's environment had exactly that value.
env_has() {
	grep -qzxF -- "$2" "$1/env"
}

# env_lacks DIR KEY: the variable was not in the environment at all.
env_lacks() {
	! grep -qz -- "^$2=" "$1/env"
}

# The recorded gocli call whose subcommand (after --prefix P) is $1.
gocli_call() {
	local d
	for d in $(calls docker); do
		if argv_of "$d" | grep -qx 'quay.io/kubevirtci/gocli:.*'; then
			local sub
			sub=$(argv_of "$d" | sed -n '/quay.io\/kubevirtci\/gocli/{n;p;q}')
			[ "$sub" = --prefix ] && sub=$(argv_of "$d" | sed -n '/quay.io\/kubevirtci\/gocli/{n;n;n;p;q}')
			if [ "$sub" = "$1" ]; then echo "$d"; fi
		fi
	done
	return 0
}
