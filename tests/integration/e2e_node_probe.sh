#!/usr/bin/env bash
# Failure artifacts from the nodes: when the cluster's state lists nodes,
# `e2e run` probes each one over ssh (a real OpenSSH sshd on 127.0.0.1 with a
# pinned host key) and saves the render node, modules and mdev types next to
# the kubectl artifacts. A node whose host key does not match the pinned one
# is refused, recorded in commands.txt, and does not stop the collection.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VG=$ROOT/build/vgpuenv
SSHD=/usr/sbin/sshd
[ -x "$VG" ] || { echo "build/vgpuenv missing: run make first"; exit 1; }
[ -x "$SSHD" ] || { echo "SKIP: $SSHD not installed (package openssh-server, see make deps)"; exit 77; }
command -v ssh-keygen >/dev/null || { echo "SKIP: ssh-keygen not installed"; exit 77; }
T=$(mktemp -d /tmp/e2e-probe-XXXXXX)
SSHD_PID=
cleanup() {
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=../fixtures/kubevirt/setup-clusters.sh
. "$ROOT/tests/fixtures/kubevirt/setup-clusters.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {
	local what=$1
	shift
	"$@" || fail "$what"
	echo "ok - $what"
}
has() { grep -qF -- "$2" "$1"; }

ssh-keygen -q -t ed25519 -N '' -f "$T/host" -C host
ssh-keygen -q -t ed25519 -N '' -f "$T/other-host" -C other
ssh-keygen -q -t ed25519 -N '' -f "$T/user" -C user
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$T/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $T/host
AuthorizedKeysFile $T/user.pub
PidFile $T/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
mkdir -p /run/sshd
"$SSHD" -D -e -f "$T/sshd_config" >"$T/sshd.log" 2>&1 &
SSHD_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# Two nodes on the same sshd: node1 with the right pinned key, node2 with
# another one (a replaced or impostor machine).
python3 - "$T" "$port" <<'PY'
import json, sys
t, port = sys.argv[1], int(sys.argv[2])
key = lambda f: " ".join(open(f).read().split()[:2])
node = lambda name, hk: {"name": name, "address": "127.0.0.1", "port": port, "user": "root",
                         "identity": t + "/user", "host_key": key(t + "/" + hk), "family": "debian"}
json.dump({"cluster": "e2e-local", "provider": "local", "resources": [],
           "nodes": [node("e2e-local-node1", "host.pub"), node("e2e-local-node2", "other-host.pub")]},
          open(t + "/state/e2e-local/state.json", "w"))
PY

rc=0
FIXTURE_SCENARIO=fail KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/local.yaml" \
	--kubevirt "$FIX" --run-dir "$T/run" >"$T/out" 2>"$T/err" || rc=$?
check "failing run exits 1" test "$rc" = 1
P=$T/run/collected/nodes/e2e-local-node1.probe.txt
check "node1 probed over ssh" test -s "$P"
for section in "## /dev/dri" "## modules" "## mdev types" "## mdev devices" "## vgpuenv-probe"; do
	check "probe has '$section'" has "$P" "$section"
done
check "commands.txt records the probe" has "$T/run/collected/commands.txt" \
	"ssh e2e-local-node1: probe"
check "node2 with a wrong host key refused" has "$T/run/collected/commands.txt" \
	"ssh e2e-local-node2: probe"
check "node2 refusal says why" has "$T/run/collected/commands.txt" \
	"cannot connect: host key does not match the pinned one"
check "no probe file for the refused node" test ! -e "$T/run/collected/nodes/e2e-local-node2.probe.txt"
check "the host-key mismatch is explained with fingerprints" has "$T/err" "SHA256:"
check "kubectl artifacts still collected" test -s "$T/run/collected/vmis.yaml"
echo "all e2e node probe checks passed"
