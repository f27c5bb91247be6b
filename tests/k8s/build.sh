#!/usr/bin/env bash
# Builds (or finds in the cache) the Kubernetes programs the test harness runs:
# kube-apiserver, kubelet, kubectl and etcd, from the versions tests/k8s/go.mod
# pins, in one `go build` so the packages they share are compiled once.
# Prints the directory that holds them on stdout; progress goes to stderr.
#
# Cache: $VGPUENV_CACHE_DIR (default /var/cache/vgpuenv)/k8s/<key>/bin, where
# the key hashes go.mod, go.sum and the Go version: a warm start finds the
# binaries and builds nothing. Go's module and build caches live under
# $VGPUENV_CACHE_DIR/go, so a rebuild after a version change compiles only
# what changed. A cold build prints how long it took.
#
# Exit 77 (with SKIP:) when no Go toolchain new enough for Kubernetes exists.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}

# The toolchain: $GO, then the one Go's own installer puts in /usr/local/go,
# then PATH. Kubernetes states its minimum in its go.mod (go 1.26.0 for 1.36).
find_go() {
	local g
	for g in ${GO:-} /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
		[ -n "$g" ] && [ -x "$g" ] || continue
		if "$g" version 2>/dev/null | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
			echo "$g"
			return 0
		fi
	done
	return 1
}
GO_BIN=$(find_go) || {
	echo "SKIP: the Kubernetes test harness needs Go >= 1.26 (set GO=/path/to/go); found: $(go version 2>/dev/null || echo none)"
	exit 77
}

# -mod=readonly: exactly what go.mod and go.sum pin (pin.sh changes them).
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOFLAGS=-mod=readonly GOTOOLCHAIN=local
export CGO_ENABLED=0 GOPATH=$cache/go/path
version=$(sed -n "s|^\tk8s.io/kubernetes \(v[0-9.]*\).*|\1|p" "$here/go.mod")
[ -n "$version" ] || {
	echo "k8s harness: no k8s.io/kubernetes version in $here/go.mod" >&2
	exit 1
}
# What `kubectl version` and the API server's /version report: Kubernetes'
# own build stamps these (hack/lib/version.sh, kube::version::ldflags).
major=${version#v}
minor=${major#*.}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=${major%%.*} -X $p.gitMinor=${minor%%.*}"
	ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
key=$({
	cat "$here/go.mod" "$here/go.sum" "$0"
	"$GO_BIN" version
} | sha256sum | cut -c1-16)
dir=$cache/k8s/$version-$key
bins=(kube-apiserver kubelet kubectl etcd)

have_all() {
	local b
	for b in "${bins[@]}"; do [ -x "$dir/bin/$b" ] || return 1; done
}
if have_all; then
	echo "$dir/bin"
	exit 0
fi

mkdir -p "$cache/k8s" "$GOMODCACHE" "$GOCACHE"
# Two builds at once (two checkouts) would race on the output directory.
exec 8>"$cache/k8s/.build.lock"
flock 8
if have_all; then
	echo "$dir/bin"
	exit 0
fi
echo "k8s harness: building Kubernetes $version (${bins[*]}) with $("$GO_BIN" version | cut -d' ' -f3); cold, this takes minutes" >&2
start=$(date +%s)
# Cold means Go's build cache was empty: a relink after a flag change is not.
if [ -n "$(ls -A "$GOCACHE" 2>/dev/null)" ]; then warmth="Go build cache warm"; else warmth=cold; fi
tmp=$(mktemp -d "$cache/k8s/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The packages come from go.mod's tool directives, so this list and go.mod
# cannot disagree. -trimpath and -s -w: smaller binaries, no local paths.

log=$cache/k8s/build-$version-$key.log
if ! (cd "$here" && "$GO_BIN" build -trimpath -ldflags="$ldflags" -o "$tmp/" tool) >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "k8s harness: go build failed (whole log: $log)" >&2
	exit 1
fi
# etcd's main package is the module root go.etcd.io/etcd/server/v3: go build
# names it after the path element before the major version.
[ -x "$tmp/server" ] && mv "$tmp/server" "$tmp/etcd"
for b in "${bins[@]}"; do
	[ -x "$tmp/$b" ] || {
		echo "k8s harness: go build made no $b" >&2
		exit 1
	}
done
chmod 0755 "$tmp"
mkdir -p "$dir"
rm -rf "$dir/bin"
mv "$tmp" "$dir/bin"
trap - EXIT
secs=$(($(date +%s) - start))
# Kept for make bench-k8s, with how warm the Go caches were.
echo "$secs $(date -u +%FT%TZ) $(nproc) $warmth" >"$dir/build-seconds"
echo "k8s harness: build of Kubernetes $version ($warmth) took $secs s" >&2
echo "$dir/bin"
