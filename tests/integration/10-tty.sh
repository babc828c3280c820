#!/usr/bin/env bash
# Layer 11: terminals. -t gives the sandbox its own pty; the caller's
# terminal never enters; size and signals are forwarded.
. tests/lib/tap.sh
plan 10
PTY="python3 tests/lib/ptyrun.py"
out=$($PTY -- "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- sh -c 'tty; readlink /proc/self/fd/0')
contains "-t: the command has a pty of the sandbox's own devpts" "/dev/pts/0" "$out"
out=$($PTY -- "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- sh -c 'tty; ls -l /proc/self/fd/0')
contains "without -t the caller's terminal is not handed in" "not a tty" "$out"
contains "... stdin is a pipe relayed by paddock" "pipe:" "$out"
out=$($PTY --cols 123 --rows 45 -- "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- stty size)
contains "window size is copied at start" "45 123" "$out"
out=$($PTY --resize 100x30@1.0 -- "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- sh -c 'sleep 2; stty size')
contains "SIGWINCH: a resize is forwarded" "30 100" "$out"
out=$($PTY --send '\x03@1.0' -- "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- sh -c 'trap "echo got-INT; exit 7" INT; sleep 5 & wait')
contains "Ctrl-C reaches the command as SIGINT" "got-INT" "$out"
contains "... and its exit status comes back" "[exit 7]" "$out"
out=$($PTY --send 'echo typed-$((6*7))\r@0.8' --send 'exit 5\r@1.5' -- "$PADDOCK_BIN" run -t --image "$ROOTFS" --workspace none -- sh)
contains "an interactive shell reads what is typed" "typed-42" "$out"
"$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- sh -c 'trap "echo term; exit 9" TERM; sleep 5 & wait' > "${TMPDIR:-/tmp}/pd-term.$$" &
p=$!; sleep 1; kill -TERM $p; wait $p; rc=$?
expect "SIGTERM to paddock is forwarded to the command" "term 9" "$(cat "${TMPDIR:-/tmp}/pd-term.$$") $rc"
rm -f "${TMPDIR:-/tmp}/pd-term.$$"
leak_check "after terminal tests"
finish
