# Sourced by the tests that talk to a real OpenSSH sshd on 127.0.0.1, after
# tests/lib/common.sh (or e2e.sh); the functions use the scratch directory $T:
#   free_port               print a TCP port nothing listens on
#   start_sshd HOSTKEY PORT sshd with that host key, accepting $T/user.pub
#                           (no passwords, no PAM), SFTP on, log appended to
#                           $T/sshd.log; returns once it listens
#   stop_sshd               stop it (an EXIT trap must call it too)
# Skips the test when sshd is not installed.
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || skip "$SSHD not installed (package openssh-server, see make deps)"
SSHD_PID=

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_sshd() {
	cat >"$T/sshd_config" <<CONFIG
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
CONFIG
	mkdir -p /run/sshd
	"$SSHD" -D -e -f "$T/sshd_config" >>"$T/sshd.log" 2>&1 &
	SSHD_PID=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$T/sshd.log" >&2
	fail "sshd did not start on port $2 (its log above)"
}

stop_sshd() {
	if [ -n "$SSHD_PID" ]; then
		kill "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
		SSHD_PID=
	fi
}
