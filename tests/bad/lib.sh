# Shell helpers of the bad suite's scripts, sourced after ../interop/lib.sh.

# start_on_fd SOCK LOG BIN ARGS...: runs BIN --fd 3 ARGS in the background, fd 3 a listening
# socket bound at SOCK by someone else and inherited (the way a management layer starts a
# back-end), its output in LOG; its pid in $PID (and in PIDS).
start_on_fd() {
	local sock=$1 log=$2
	shift 2
	python3 - "$sock" "$log" "$@" <<'PY' &
import os, socket, sys
path, log, binary = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(4)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(fd, 1)
os.dup2(fd, 2)
os.execv(binary, [binary, "--fd", "3"] + sys.argv[4:])
PY
	PID=$!
	PIDS+=("$PID")
}

# stop_ok PID NAME [LOG]: SIGTERM; the daemon must exit 0 within 5 s (LOG shown when not 0).
stop_ok() {
	kill -TERM "$1"
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && fail "$2: still running 5 s after SIGTERM"
	wait "$1"
	local rc=$?
	[ $rc = 0 ] || fail "$2: exit status $rc after SIGTERM${3:+: $(cat "$3")}"
}
