#!/usr/bin/env bash
# paddock run: streams, exit codes, errors, environment.
. tests/lib/tap.sh
plan 26

out=$(pdrun -- sh -c 'echo out; echo err >&2' 2>/dev/null); expect "stdout is streamed" out "$out"
err=$(pdrun -- sh -c 'echo out; echo err >&2' 2>&1 >/dev/null); expect "stderr is streamed" err "$err"
out=$(printf 'a\nb\n' | pdrun -- sh -c 'wc -l'); expect "stdin is streamed" 2 "$(echo $out)"
pdrun -- sh -c 'exit 3'; expect "exit status of the command" 3 $?
pdrun -- sh -c 'kill -TERM $$'; expect "killed by SIGTERM: 128+15" 143 $?
pdrun -- sh -c 'kill -KILL $$'; expect "killed by SIGKILL: 128+9" 137 $?
err=$(pdrun -- no-such-command 2>&1); rc=$?
expect "command not found: 127" 127 $rc
contains "not found says what" "cannot run 'no-such-command'" "$err"
pdrun -- /etc/passwd 2>/dev/null; expect "not executable: 126" 126 $?
err=$(pd run --bogus -- true 2>&1); rc=$?
expect "unknown flag: 125" 125 $rc
expect "unknown flag: one line naming it" "paddock: run: unknown option '--bogus' (see paddock run --help)" "$err"
err=$(pd run --image /nonexistent-image -- true 2>&1); rc=$?
expect "missing image: 125" 125 $rc
contains "missing image named" "/nonexistent-image" "$err"
err=$(pd run --image "$ROOTFS" 2>&1); expect "no command: 125" 125 $?
err=$(pd run --image "$ROOTFS" --memory lots -- true 2>&1); rc=$?
expect "bad size: 125" 125 $rc
contains "bad size explained" "--memory 'lots'" "$err"
err=$(pd run --image "$ROOTFS" --network fitlered -- true 2>&1); rc=$?
expect "an unknown network mode: 125" 125 $rc
contains "an unknown network mode is named" "expected off, filtered or open" "$err"
out=$(pdrun -- sh -c 'echo $IS_SANDBOX $HOME $USER'); expect "environment: IS_SANDBOX, HOME, USER" "1 /root root" "$out"
out=$(pdrun -e FOO=bar -e HOME=/tmp -- sh -c 'echo $FOO $HOME'); expect "--env sets and overrides" "bar /tmp" "$out"
out=$(pdrun -- sh -c 'env | grep -c SSH_AUTH_SOCK'); expect "the caller's environment does not leak in" 0 "$out"
out=$(pdrun -w /tmp -- pwd); expect "--workdir" /tmp "$out"
err=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- true 2>&1); rc=$?
expect "not root: 125" 125 $rc
contains "not root: says it must run as root" "must run as root" "$err"
out=$(pd run --help); contains "--help lists options" "--mount SRC:DST" "$out"
leak_check "after run basics"
finish
