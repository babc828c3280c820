#!/usr/bin/env bash
# tests/escape/03-processes.sh: see, signal or trace a host process, the
# sandbox's parent or its pid 1; outlive the sandbox.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/lib/escape.sh

# Host processes started by the sandbox's commands, found by their exact
# command line (unique numbers, so nothing else matches).
host_procs() { pgrep -f "^sleep $1\$" || true; }

HOST_SLEEP=
PD_PID=
SHM_ID=
cleanup() {
	[ -n "$HOST_SLEEP" ] && kill "$HOST_SLEEP" 2>/dev/null
	[ -n "$SHM_ID" ] && ipcrm -m "$SHM_ID" 2>/dev/null
	[ -n "$PD_PID" ] && kill -9 "$PD_PID" 2>/dev/null
	for n in 31337 31338 31339; do
		for p in $(host_procs $n); do kill -9 "$p" 2>/dev/null; done
	done
	wait 2>/dev/null
}
trap cleanup EXIT
sleep 300 &
HOST_SLEEP=$!

plan 25

# ---- a host process -------------------------------------------------------------
deny "kill() of a host pid ($HOST_SLEEP) finds no such process (ESRCH)" "blocked: ESRCH" \
	kill "$HOST_SLEEP" 15
deny "ptrace(ATTACH) of a host pid finds no such process (ESRCH)" "blocked: ESRCH" \
	ptrace "$HOST_SLEEP"
pids=$(pdrun -- sh -c 'ls /proc | grep -E "^[0-9]+$"' 2>&1 </dev/null | tr '\n' ' ')
big=$(for p in $pids; do [ "$p" -gt 20 ] && echo "$p"; done)
[ -n "$pids" ] && [ -z "$big" ]
ok $? "escape: /proc inside lists only the sandbox's own few pids"
diag "pids inside: $pids"
out=$(pdrun -- ps -o pid,comm 2>&1 </dev/null)
not_contains "escape: ps inside does not show the host's sleep 300" "sleep" "$out"
pdrun -- sh -c 'kill -9 -1; kill -TERM -1; exit 0' >/dev/null 2>&1 </dev/null
check "escape: kill -9 -1 inside leaves the host's processes alive" kill -0 "$HOST_SLEEP"
leak_check "after the host-process attempts"

# ---- what the host process hands over: environment, fds, IPC ----------------------------
out=$(AWS_SECRET_ACCESS_KEY=TOKEN-host-env pdrun -- env 2>&1 </dev/null)
not_contains "escape: the caller's environment (AWS_SECRET_ACCESS_KEY) does not reach the sandbox" \
	"TOKEN-host-env" "$out"
# Open host fds (a host file and /root itself, as a leaky parent would
# have them) must not be inherited (runc's CVE-2024-21626 leaked one).
out=$(pdrun -- ls /proc/self/fd 7</etc/passwd 8</root 2>&1 </dev/null | tr '\n' ' ')
expect "escape: host fds 7 and 8 of the caller are not inherited" "0 1 2 3 " "$out"
if command -v ipcmk >/dev/null; then
	SHM_ID=$(ipcmk -M 4096 2>/dev/null | awk '{ print $NF }')
	out=$(pdrun -- cat /proc/sysvipc/shm 2>&1 </dev/null | awk 'NR > 1 { print $2 }')
	expect "escape: the host's SysV shared memory (id $SHM_ID) is invisible (ipc namespace)" "" "$out"
	ipcrm -m "$SHM_ID" 2>/dev/null
	SHM_ID=
else
	ok 0 "escape: the host's SysV shared memory is invisible # SKIP no ipcmk"
fi

# ---- the sandbox's parent and its pid 1 -----------------------------------------------
# The parent is the host's paddock process: its pid is $$ of the shell that
# execs it (expanded by that shell, hence the single quotes).
# shellcheck disable=SC2016
attempt "ptrace(ATTACH) of the host paddock process (the parent) finds nothing (ESRCH)" 1 \
	"blocked: ESRCH" bash -c 'exec "$0" run --image "$1" --workspace none -- probe ptrace $$' \
	"$PADDOCK_BIN" "$ROOTFS"
# shellcheck disable=SC2016
attempt "kill() of the host paddock process finds nothing (ESRCH)" 1 "blocked: ESRCH" \
	bash -c 'exec "$0" run --image "$1" --workspace none -- probe kill $$ 9' \
	"$PADDOCK_BIN" "$ROOTFS"
deny "ptrace(ATTACH) of pid 0 finds nothing (ESRCH)" "blocked: ESRCH" ptrace 0
deny "ptrace(ATTACH) of pid 1, the sandbox's init, is refused (EPERM)" "blocked: EPERM" ptrace 1
deny "SIGKILL to pid 1 is refused (EPERM)" "blocked: EPERM" kill 1 9
deny "pidfd_getfd() of pid 1's control socket is refused (EPERM)" "blocked: EPERM" \
	pidfd_getfd 1 3
deny "/proc/1/environ cannot be read (EACCES)" "blocked: EACCES" read /proc/1/environ
deny "/proc/1/mem cannot be read (EACCES)" "blocked: EACCES" read /proc/1/mem
# pid 1 is a clone of the host's paddock process: its command line would
# show the host paths given to paddock (image, mount sources).
out=$(pdrun -- cat /proc/1/cmdline 2>&1 </dev/null | tr '\0' ' ')
not_contains "escape: /proc/1/cmdline does not show the host's paddock command line" \
	"$ROOTFS" "$out"
host_name=$(hostname)
pdrun -- hostname evil-hostname >/dev/null 2>&1 </dev/null
expect "escape: sethostname inside leaves the host's hostname unchanged" "$host_name" "$(hostname)"
leak_check "after the parent and pid 1 attempts"

# ---- outliving the sandbox -------------------------------------------------------------
pdrun -- sh -c 'sleep 31337 & exit 0' >/dev/null 2>&1 </dev/null
sleep 0.3
expect "escape: a background process dies with the sandbox" "" "$(host_procs 31337)"
pdrun -- sh -c '(setsid sleep 31338 &); sleep 0.2; exit 0' >/dev/null 2>&1 </dev/null
sleep 0.3
expect "escape: a setsid, double-forked daemon dies with the sandbox" "" "$(host_procs 31338)"
# Not through pd(): $! must be paddock itself, not a subshell around it.
"$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- sleep 31339 >/dev/null 2>&1 </dev/null &
PD_PID=$!
for _ in $(seq 50); do [ -n "$(host_procs 31339)" ] && break; sleep 0.1; done
[ -n "$(host_procs 31339)" ]
ok $? "the sandbox's sleep 31339 is running"
{ kill -9 "$PD_PID"; wait "$PD_PID"; } 2>/dev/null
PD_PID=
for _ in $(seq 30); do [ -z "$(host_procs 31339)" ] && break; sleep 0.1; done
expect "escape: SIGKILL of paddock mid-run takes the sandbox's processes with it" "" \
	"$(host_procs 31339)"
leak_check "after paddock was killed mid-run"
finish
