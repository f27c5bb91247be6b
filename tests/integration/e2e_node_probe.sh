#!/usr/bin/env bash
# e2e run and the nodes, over ssh to a real OpenSSH sshd on 127.0.0.1 with
# pinned host keys:
# - the webhook is proven from the first node before the suite starts: curl
#   (with the CA vgpuenv made) against a real mesa-injector serving
#   WEBHOOK/healthz lets the run go on; a webhook.url nobody answers stops it
#   with curl's message and nothing created (failurePolicy: Ignore would let
#   every pod through unmutated);
# - failure artifacts: each node of the state is probed and the render node,
#   modules and mdev types saved next to the kubectl artifacts; a node whose
#   host key does not match the pinned one is refused, recorded in
#   commands.txt, and does not stop the collection.
. "$(dirname "$0")/../lib/e2e.sh"
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || skip "$SSHD not installed (package openssh-server, see make deps)"
command -v ssh-keygen >/dev/null || skip "ssh-keygen not installed"
SSHD_PID= HOOK_PID=
cleanup() {
	set +e # best effort: whatever is left goes
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	[ -n "$HOOK_PID" ] && kill "$HOOK_PID" 2>/dev/null && wait "$HOOK_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
command -v curl >/dev/null || skip "curl not installed (make deps installs it)"
# ---- the webhook, proven from node1 -------------------------------------------
hook_port=$(free_port)
dead_port=$(free_port)
with_webhook() { # url -> $T/hook.yaml
	cp "$T/local.yaml" "$T/hook.yaml"
	printf 'webhook:\n  deploy: url\n  url: %s\n' "$1" >>"$T/hook.yaml"
}
with_webhook "https://127.0.0.1:$dead_port"
rc=0
KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/hook.yaml" --kubevirt "$FIX" --run-dir "$T/run-nohook" \
	>"$T/out" 2>"$T/err" || rc=$?
check "a webhook nobody answers stops the run" test "$rc" = 1
check "it says so, from which node" has "$T/err" "The webhook https://127.0.0.1:$dead_port does not answer from node e2e-local-node1"
check "with curl's own message" has "$T/err" "curl: (7)"
check "and what it would mean" has "$T/err" "admitted without mesa"
check "no run directory" test ! -e "$T/run-nohook"
# A real mesa-injector with the certificates vgpuenv makes for url mode; the
# node checks the very CA the API server gets.
C=$T/state/e2e-local/webhook-certs
"$ROOT/build/mesa-injector" certs --service mesa-injector --namespace mesa-injector --out "$C" --ip 127.0.0.1 >/dev/null
"$ROOT/build/mesa-injector" serve --listen "127.0.0.1:$hook_port" --cert "$C/tls.crt" --key "$C/tls.key" \
	>"$T/hook.log" 2>&1 &
HOOK_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$hook_port") 2>/dev/null && break; sleep 0.05; done
with_webhook "https://127.0.0.1:$hook_port"
rc=0
FIXTURE_SCENARIO=pass KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/hook.yaml" --kubevirt "$FIX" \
	--run-dir "$T/run-hook" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || cat "$T/err"
check "a webhook that answers: the run goes on" test "$rc" = 0
check "it says so" has "$T/err" "Webhook https://127.0.0.1:$hook_port answers from node e2e-local-node1"
# The node checks the certificate against the CA vgpuenv made: another CA fails.
"$ROOT/build/mesa-injector" certs --service x --namespace x --out "$T/other-ca" --ip 127.0.0.1 >/dev/null
cp "$T/other-ca/ca.crt" "$C/ca.crt"
rc=0
KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/hook.yaml" --kubevirt "$FIX" --run-dir "$T/run-badca" \
	>"$T/out" 2>"$T/err" || rc=$?
check "a webhook whose certificate is not from vgpuenv's CA stops the run" test "$rc" = 1
check "with curl's certificate error" has "$T/err" "curl: (60)"
kill "$HOOK_PID" && wait "$HOOK_PID" 2>/dev/null
HOOK_PID=

# ---- failure artifacts from the nodes ----------------------------------------
rc=0
FIXTURE_SCENARIO=mixed KUBECONFIG=$T/local.kubeconfig "$VG" e2e run -c "$T/local.yaml" \
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
