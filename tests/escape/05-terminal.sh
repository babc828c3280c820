#!/usr/bin/env bash
# tests/escape/05-terminal.sh: push input into the caller's terminal
# (TIOCSTI), the console ioctl (TIOCLINUX), reach the caller's tty. paddock
# runs under `script`, so the caller has a real terminal; after paddock
# returns, the caller's shell reads its terminal for one second: anything
# there was injected from inside.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

command -v script >/dev/null || { echo "1..0 # SKIP script(1) is not installed"; exit 0; }

# in_term CMD...: run CMD under a fresh terminal; prints CMD's output, then
# "[rc=N]" (CMD's exit status), then CLEAN or INJECTED:<char>
# (tests/lib/term-injected.sh). (script(1) sends a NUL at the end of its
# stdin; the pty echoes it as "^@": dropped.)
in_term() {
	local cmd
	cmd=$(printf '%q ' "$@")
	timeout 60 script -qec "$cmd; echo \"[rc=\$?]\"; bash tests/lib/term-injected.sh" \
		/dev/null </dev/null 2>&1 | tr -d '\r\000' | sed 's/^\^@//'
}
# term_attempt DESC WANT TTYFLAGS PROBE-ARGS...: the probe, in a sandbox run
# from a terminal, prints WANT (a glob, " (detail)" allowed) and exits 1.
term_attempt() {
	local desc=$1 want=$2 flags=$3 out line
	shift 3
	# shellcheck disable=SC2086 # flags is a word list
	out=$(in_term "$PADDOCK_BIN" run $flags --image "$ROOTFS" --workspace none -- probe "$@")
	line=$(printf '%s\n' "$out" | grep -m1 -E '^(ok|blocked)')
	# shellcheck disable=SC2053 # $want is a pattern
	if [[ $line == $want || $line == $want" ("* ]] && [[ $out == *"[rc=1]"* ]]; then
		ok 0 "escape: $desc"
	else
		ok 1 "escape: $desc"
		diag "want: exit 1, '$want'"
		diag " got: $(printf %q "$out" | head -c 400)"
	fi
	LAST_OUT=$out
}

plan 17

# ---- without -t: the sandbox gets pipes, never the caller's terminal ----------
out=$(in_term "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- tty)
contains "escape: without -t, stdin inside is not a terminal (tty: not a tty)" "not a tty" "$out"
term_attempt "without -t, TIOCSTI on fd 0 is refused (EPERM)" "blocked: EPERM" "" tiocsti 0
contains "escape: ... and nothing reached the caller's terminal" "CLEAN" "$LAST_OUT"
term_attempt "without -t, /dev/tty cannot be opened (no controlling terminal: ENXIO)" \
	"blocked: ENXIO" "" tiocsti /dev/tty
contains "escape: ... and nothing reached the caller's terminal" "CLEAN" "$LAST_OUT"
term_attempt "TIOCSTI with bit 32 of the command set is refused too (EPERM)" "blocked: EPERM" \
	"" tiocsti 0 hi
term_attempt "without -t, TIOCLINUX on fd 0 is refused (EPERM)" "blocked: EPERM" "" tioclinux 0
leak_check "after the terminal attempts without -t"

# ---- with -t: the sandbox's own pty, in a new session -------------------------------
out=$(in_term "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- sh -c 'tty; ls -1 /dev/pts')
contains "with -t, stdin inside is the sandbox's own pty" "/dev/pts/0" "$out"
contains "escape: with -t, the sandbox's /dev/pts holds only its own pty" "$(printf '0\nptmx')" "$out"
term_attempt "with -t, TIOCSTI on fd 0 is refused by seccomp (EPERM)" "blocked: EPERM" -t tiocsti 0
contains "escape: ... and nothing reached the caller's terminal" "CLEAN" "$LAST_OUT"
term_attempt "with -t, TIOCSTI on /dev/tty is refused by seccomp (EPERM)" "blocked: EPERM" -t \
	tiocsti /dev/tty
contains "escape: ... and nothing reached the caller's terminal" "CLEAN" "$LAST_OUT"
term_attempt "with -t, TIOCLINUX on /dev/tty is refused (EPERM)" "blocked: EPERM" -t \
	tioclinux /dev/tty
# The detector works: TIOCSTI from the host itself (no sandbox) is seen.
if [ "$(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null)" = 0 ]; then
	ok 0 "the injection detector sees TIOCSTI done outside a sandbox # SKIP legacy_tiocsti=0"
else
	out=$(in_term "$ROOTFS/usr/local/bin/probe" tiocsti /dev/tty)
	contains "the injection detector sees TIOCSTI done outside a sandbox" "INJECTED:#" "$out"
fi
leak_check "after the terminal attempts with -t"
finish
