#!/usr/bin/env bash
# pin.sh VERSION (e.g. v1.36.3): moves the harness to another Kubernetes
# release in tests/k8s/go.mod, the one place the version lives: k8s.io/
# kubernetes at VERSION and every k8s.io staging module at the matching v0.x,
# then go mod tidy (which also moves etcd to what that release requires).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
v=${1:?usage: pin.sh vMAJOR.MINOR.PATCH}
[[ $v =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "pin.sh: $v is not v1.MINOR.PATCH" >&2; exit 2; }
staging=v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
sed -i -E "s|^(\tk8s.io/kubernetes) v[0-9.]+|\1 $v|; s|^(\tk8s.io/[a-z-]+ => k8s.io/[a-z-]+) v[0-9.]+$|\1 $staging|" "$here/go.mod"
cache=${VGPUENV_CACHE_DIR:-/var/cache/vgpuenv}
cd "$here"
GOMODCACHE=$cache/go/mod GOFLAGS=-mod=mod GOTOOLCHAIN=local "${GO:-/usr/local/go/bin/go}" mod tidy
grep -nE "k8s.io/kubernetes v|=> k8s.io/api " go.mod
