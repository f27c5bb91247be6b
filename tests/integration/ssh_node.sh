#!/usr/bin/env bash
# provision/base/ssh_*.c against a real OpenSSH sshd on 127.0.0.1, through the
# build/tests/ssh-tool driver: keys made by our ssh_keygen (checked against
# ssh-keygen), byte-exact quoting of tricky argv, exit codes and signals,
# SFTP upload/download with modes, parallel connections, a PTY shell, waiting
# for a late sshd, the deadline, a changed host key and a wrong user key.
#
# SSH_TOOL_WRAP="valgrind -q --leak-check=full --error-exitcode=42" runs every
# client under valgrind.
. "$(dirname "$0")/../lib/common.sh"
cd "$(dirname "$0")/../.."

SSHD=/usr/sbin/sshd
if [ ! -x "$SSHD" ]; then
	echo "SKIP: $SSHD not installed (package openssh-server, see make deps)"
	exit 77
fi
TOOL=build/tests/ssh-tool
if [ ! -x "$TOOL" ]; then
	make -s "$TOOL" >/dev/null || { echo "FAIL: cannot build $TOOL"; exit 1; }
fi
WRAP=${SSH_TOOL_WRAP:-}

T=$(mktemp -d /tmp/vgpuenv-ssh-test.XXXXXX)
SSHD_PID=
stop_sshd() {
	if [ -n "$SSHD_PID" ]; then
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
	fi
}
cleanup() {
	set +e # best effort: whatever is left goes
	stop_sshd
	rm -rf "$T"
}
trap cleanup EXIT

on_fail() {
	echo "sshd log:"
	sed 's/^/  | /' "$T/sshd.log" 2>/dev/null
}
contains() { # contains DESCRIPTION NEEDLE FILE
	grep -qF -- "$2" "$3" && { ok "$1"; return 0; }
	sed 's/^/     | /' "$3" >&2
	fail "$1: no '$2' in the output above"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_sshd() { # start_sshd HOSTKEY PORT
	cat >"$T/sshd_config" <<EOF
Port $2
ListenAddress 127.0.0.1
HostKey $1
AuthorizedKeysFile $T/user.pub
PidFile $T/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
	mkdir -p /run/sshd
	"$SSHD" -D -e -f "$T/sshd_config" >>"$T/sshd.log" 2>&1 &
	SSHD_PID=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "FAIL: sshd did not start on port $2:"
	cat "$T/sshd.log"
	exit 1
}

# ---- keys: ours must be what OpenSSH reads and prints -------------------------
$TOOL keygen "$T/host" "vgpuenv host key" >"$T/host.line" || { echo "FAIL: keygen"; exit 1; }
$TOOL keygen "$T/host2" >/dev/null || exit 1
$TOOL keygen "$T/user" "vgpuenv@test" >/dev/null || exit 1
$TOOL keygen "$T/stranger" >/dev/null || exit 1
check_eq "private key mode is 0600" "600" "$(stat -c %a "$T/host")"
check_eq "keygen prints the .pub line" "$(cat "$T/host.pub")" "$(cat "$T/host.line")"
check_eq "ssh-keygen -y derives our public key from our private key" \
	"$(cut -d' ' -f1,2 "$T/host.pub")" "$(ssh-keygen -y -f "$T/host" | cut -d' ' -f1,2)"
for k in host host2 user; do
	check_eq "fingerprint of $k equals ssh-keygen -lf" \
		"$(ssh-keygen -lf "$T/$k.pub" | cut -d' ' -f2)" "$($TOOL fingerprint "$T/$k.pub")"
done
FP1=$($TOOL fingerprint "$T/host.pub")
FP2=$($TOOL fingerprint "$T/host2.pub")

PORT=$(free_port)
start_sshd "$T/host" "$PORT"
C="$WRAP $TOOL -p $PORT -i $T/user -k $T/host.pub -t 10"

# ---- quoting: every byte of every argument survives the remote shell ---------
args=('a b' "it's" '"dq"' '$HOME' '`id`' '$(echo injected)' $'line1\nline2' '' '*' ';' '|' '\' $'tab\there' '  lead' 'trail  ' '#')
expected=$(printf '[%s]' "${args[@]}")
actual=$($C run printf '[%s]' "${args[@]}")
check_eq "tricky argv comes back byte-exact" "$expected" "$actual"

# ---- exit codes, signals, stderr ---------------------------------------------
rc=0
$C run sh -c 'exit 7' || rc=$?
check_eq "remote exit 7 -> 7" 7 "$rc"
rc=0
$C run sh -c 'kill -TERM $$' || rc=$?
check_eq "remote SIGTERM -> 128+15" 143 "$rc"
rc=0
$C script 'echo to-out; echo to-err >&2; exit 3' >"$T/out" 2>"$T/err" || rc=$?
check_eq "script exit code" 3 $rc
check_eq "script stdout captured" "to-out" "$(cat "$T/out")"
check_eq "script stderr captured separately" "to-err" "$(cat "$T/err")"
check_eq "remote stdin is at EOF for run" "" "$(echo should-not-arrive | $C run cat)"
rc=0
out=$(echo fed | $C stream sh -c 'cat; echo streamed; exit 4') || rc=$?
check_eq "streaming exit code" 4 $rc
check_eq "streaming output, our stdin forwarded as ssh(1) does" "fed
streamed" "$out"
head -c 600000 /dev/urandom >"$T/big"
rc=0
$C stream sh -c 'cat > '"$T"'/big.copy' <"$T/big" || rc=$?
check_eq "600 KB of stdin through a streamed command" 0 "$rc"
cmp -s "$T/big" "$T/big.copy" && ok "stdin arrived whole" || fail "stdin arrived cut or changed"

rc=0
out=$(printf 'echo from-stdin-$((2+3))\nexit 6\n' | $C stream) || rc=$?
check_eq "no command: login shell fed from stdin, exit code" 6 $rc
check_eq "no command: shell ran our stdin" "from-stdin-5" "$out"

# ---- SFTP: atomic upload with mode, replace, download with mode ----------------
head -c 300000 /dev/urandom >"$T/blob"
rc=0
$C upload "$T/blob" "$T/remote.bin" 0750 || rc=$?
check_eq "upload exit" 0 "$rc"
check_eq "uploaded file mode" 750 "$(stat -c %a "$T/remote.bin")"
cmp -s "$T/blob" "$T/remote.bin" && ok "uploaded bytes identical" || fail "uploaded bytes differ"
head -c 70000 /dev/urandom >"$T/blob2"
rc=0
$C upload "$T/blob2" "$T/remote.bin" 0640 || rc=$?
check_eq "upload replacing an existing file" 0 "$rc"
check_eq "replaced file mode" 640 "$(stat -c %a "$T/remote.bin")"
check_eq "no temporary file left behind" "" "$(ls "$T" | grep -F tmp)"
rc=0
$C download "$T/remote.bin" "$T/back.bin" || rc=$?
check_eq "download exit" 0 "$rc"
cmp -s "$T/blob2" "$T/back.bin" && ok "downloaded bytes identical" || fail "downloaded bytes differ"
check_eq "downloaded file keeps the remote mode" 640 "$(stat -c %a "$T/back.bin")"
printf 'small\0data\n' | $C upload-data "$T/data.bin" 0600
check_eq "upload_data mode" 600 "$(stat -c %a "$T/data.bin")"
check_eq "upload_data bytes" "$(printf 'small\0data\n' | od -c)" "$(od -c <"$T/data.bin")"
rc=0
$C download "$T/does-not-exist" "$T/x" 2>"$T/err" || rc=$?
check_eq "download of a missing file fails" 99 "$rc"
contains "missing remote file named" "cannot open $T/does-not-exist on node: no such file" "$T/err"

# ---- several nodes from several threads --------------------------------------
rc=0
$C parallel 4 sh -c 'echo thread-ok' >"$T/par" || rc=$?
check_eq "4 parallel connections from 4 threads" 0 "$rc"
check_eq "each thread got its own output" 4 "$(grep -c ' 0 thread-ok$' "$T/par")"

# ---- interactive: PTY, raw stdin forwarded, exit code --------------------------
if command -v script >/dev/null; then
	rc=0
	(sleep 1; printf 'tty; echo pty-$((6*7))\n'; sleep 1; printf 'exit 5\n') |
		timeout 30 script -qec "$C shell" /dev/null >"$T/pty" 2>&1 || rc=$?
	check_eq "interactive shell exit code" 5 $rc
	contains "remote side has a PTY" "/dev/pts/" "$T/pty"
	contains "keystrokes reach the remote shell" "pty-42" "$T/pty"
else
	fail "script(1) missing: cannot test the PTY path"
fi

# ---- a key the node does not authorize --------------------------------------
rc=0
$WRAP $TOOL -p "$PORT" -i "$T/stranger" -k "$T/host.pub" -t 10 connect 2>"$T/err" || rc=$?
check_eq "wrong user key exit" 99 "$rc"
contains "auth failure message" "ssh authentication as $(id -un) on node (127.0.0.1:$PORT) failed: the server refused key $T/stranger" "$T/err"

# ---- the deadline, when nothing listens ---------------------------------------
PORT2=$(free_port)
start=$(date +%s.%N)
rc=0
$WRAP $TOOL -p "$PORT2" -i "$T/user" -k "$T/host.pub" -t 2 connect 2>"$T/err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
check_eq "nothing listening -> failure" 99 $rc
contains "timeout message" "ssh on node (127.0.0.1:$PORT2) did not come up within 2s (last error: Connection refused)" "$T/err"
contains "-ETIMEDOUT" "failed: Connection timed out" "$T/err"
awk -v d="$dt" 'BEGIN{exit !(d >= 1.9 && d < 4)}' && ok "gave up at the deadline (${dt}s)" || fail "gave up after ${dt}s, deadline 2s"

# ---- a command's deadline (-T) and Ctrl-C (-C) stop a hung command ------------
start=$(date +%s.%N)
rc=0
$C -T 1 run sleep 60 2>"$T/err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
check_eq "a command past its deadline fails" 99 $rc
contains "deadline message names the command" "node: stopped 'sleep 60': the -T deadline ran out of time" "$T/err"
awk -v d="$dt" 'BEGIN{exit !(d < 4)}' && ok "command stopped at its deadline (${dt}s)" || fail "stopped after ${dt}s, deadline 1s"
start=$(date +%s.%N)
rc=0
$C -C 1 run sleep 60 2>"$T/err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
check_eq "an interrupted command fails" 99 $rc
contains "interrupted command" "node: stopped 'sleep 60': interrupted" "$T/err"
awk -v d="$dt" 'BEGIN{exit !(d < 4)}' && ok "Ctrl-C honoured in ${dt}s" || fail "Ctrl-C took ${dt}s"

# ---- Ctrl-C while waiting: the cancel flag stops the wait promptly -------------
start=$(date +%s.%N)
rc=0
$WRAP $TOOL -p "$PORT2" -i "$T/user" -k "$T/host.pub" -t 30 -C 1 connect 2>"$T/err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
check_eq "cancelled wait fails" 99 $rc
contains "-ECANCELED" "failed: Operation canceled" "$T/err"
awk -v d="$dt" 'BEGIN{exit !(d < 3)}' && ok "cancel honoured in ${dt}s (deadline 30s)" || fail "cancel took ${dt}s"

# ---- waiting for an sshd that starts late -------------------------------------
stop_sshd
$C run echo late-sshd-ok >"$T/late" 2>"$T/late.err" &
client=$!
sleep 2
start_sshd "$T/host" "$PORT"
rc=0
wait $client || rc=$?
check_eq "client started 2s before sshd connects" 0 "$rc"
check_eq "and runs its command" "late-sshd-ok" "$(cat "$T/late")"

# ---- a changed host key is refused at once, naming both keys ---------------------
stop_sshd
start_sshd "$T/host2" "$PORT"
start=$(date +%s.%N)
rc=0
$WRAP $TOOL -p "$PORT" -i "$T/user" -k "$T/host.pub" -t 20 run echo must-not-run >"$T/out" 2>"$T/err" || rc=$?
dt=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
check_eq "changed host key exit" 99 $rc
contains "changed host key message" "host key of node (127.0.0.1:$PORT) changed: expected $FP1, got $FP2 — refusing to connect" "$T/err"
check_eq "nothing ran" "" "$(cat "$T/out")"
awk -v d="$dt" 'BEGIN{exit !(d < 5)}' && ok "mismatch not retried (${dt}s of a 20s deadline)" || fail "mismatch took ${dt}s"

stop_sshd
echo
echo "all ssh checks passed"
