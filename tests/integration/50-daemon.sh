#!/usr/bin/env bash
# paddockd: named sandboxes (up, exec, sessions, attach, ls, logs, events,
# stop, start, down) through a private daemon, and the daemon started on
# demand by the CLI.
. tests/lib/tap.sh
. tests/lib/daemon.sh
plan 84
trap daemon_cleanup EXIT
RUN=(--image "$ROOTFS" --workspace none --network off)
A=${SBP}a B=${SBP}b
daemon_start || { echo "Bail out! paddockd did not start: $(cat "$DT/paddockd.log")"; exit 1; }

# ---- up and names
out=$(pd up "$A" "${RUN[@]}" 2>&1); rc=$?
expect "up succeeds" 0 $rc
expect "up prints the name" "$A" "$out"
out=$(pd up "$A" "${RUN[@]}" 2>&1); rc=$?
ok $((rc == 0)) "a second up of the same name fails"
contains "... saying it already exists" "already exists" "$out"
for bad in "a/b" ".." "../x" "Upper" "$(printf 'x%.0s' $(seq 41))"; do
	out=$(pd up "$bad" "${RUN[@]}" 2>&1); rc=$?
	ok $((rc == 0 || $(echo "$out" | wc -l) != 1)) "up '$bad' is refused with one line"
	contains "... which says what a name may be" "invalid name" "$out"
done
expect "the refused names made no sandbox" "$A" "$(pd ls | awk 'NR > 1 {print $1}')"

# ---- exec
out=$(pd exec "$A" -- sh -c 'echo to-out; echo to-err >&2; exit 7' 2>"$DT/err"); rc=$?
expect "exec: stdout" "to-out" "$out"
expect "exec: stderr" "to-err" "$(cat "$DT/err")"
expect "exec: the command's exit code" 7 $rc
out=$(printf 'line1\nline2\n' | pd exec "$A" -- sh -c 'read a; cat; echo "first=$a"')
expect "exec: stdin reaches the command, and its end" "line2 first=line1" "$(echo $out)"
out=$(pd exec "$A" -- /no/such/command 2>&1); rc=$?
expect "exec of a missing command exits 127" 127 $rc
contains "... saying so" "No such file" "$out"
out=$(pd exec -e FOO=bar -w /tmp "$A" -- sh -c 'echo $FOO $PWD')
expect "exec -e and -w" "bar /tmp" "$out"

# ---- detached sessions
n=$(pd exec -d "$A" -- sleep 300); rc=$?
ok $((rc != 0)) "exec -d succeeds"
ok $([[ $n =~ ^[0-9]+$ ]] && echo 0 || echo 1) "exec -d prints the session number ($n)"
out=$(pd sessions "$A")
contains "sessions has a header" "SESSION" "$out"
contains "the detached session is listed as running" "$(printf '%-8s %-8s' "$n" running)" "$out"
contains "... with its command" "sleep 300" "$out"
contains "an earlier session is listed as exited with its code" " 7 " "$(echo "$out" | grep exited)"
st=$(pd sessions "$A" --json | jq_py "[s['state'] for s in j if s['session']==$n][0]")
expect "sessions --json: the detached one runs" running "$st"

# ---- two sessions at once, talking through files
rm -f "$DT/a.out"
pd exec "$A" -- sh -c 'i=0; while [ ! -f /workspace/ping ]; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 9; done
	cat /workspace/ping; echo pong > /workspace/pong' >"$DT/a.out" 2>&1 & pa=$!
pd exec "$A" -- sh -c 'echo ping-from-b > /workspace/ping; i=0
	while [ ! -f /workspace/pong ]; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 9; done; cat /workspace/pong' >"$DT/b.out" 2>&1 & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
expect "session A saw what session B wrote (while both ran)" "0 ping-from-b" "$ra $(cat "$DT/a.out")"
expect "session B saw A's answer" "0 pong" "$rb $(cat "$DT/b.out")"
pd exec "$A" -- sh -c 'echo written-by-one > /tmp/shared' >/dev/null
expect "a file written by one command is there for the next of another" written-by-one "$(pd exec "$A" -- cat /tmp/shared)"
n2=$(pd exec -d "$A" -- sh -c 'echo from-detached > /workspace/d')
for i in $(seq 50); do [ -f "$SBDIR/$A/upper/workspace/d" ] && break; sleep 0.1; done
expect "a detached session's file is seen by the next exec" from-detached "$(pd exec "$A" -- cat /workspace/d)"

# ---- attach: a shell with a pty, detach, re-attach with scrollback
out=$(python3 tests/lib/ptyrun.py --send 'echo MARK$((6*7))\r@1.5' --send '\x10@2.5' --send '\x11@2.7' -- "$PADDOCK_BIN" attach "$A")
contains "attach: a shell runs the typed command" "MARK42" "$out"
contains "Ctrl-P Ctrl-Q detaches" "detached from session" "$out"
contains "... and the client exits 0" "[exit 0]" "$out"
sn=$(echo "$out" | sed -n 's/.*detached from session \([0-9]*\).*/\1/p' | head -1)
out=$(pd sessions "$A" --json | jq_py "[(s['state'], s['tty']) for s in j if s['session']==${sn:-0}]")
expect "the shell lives on after the detach (a running tty session)" "[('running', True)]" "$out"
out=$(python3 tests/lib/ptyrun.py --send 'echo SECOND$((1+1))\r@1.5' --send '~@2.5' --send '.@2.7' -- "$PADDOCK_BIN" attach "$A" --session "${sn:-0}")
contains "re-attach replays the scrollback" "MARK42" "$out"
contains "... and the shell still answers" "SECOND2" "$out"
contains "~. (typed as two keys) detaches" "detached from session ${sn:-x}" "$out"
out=$(python3 tests/lib/ptyrun.py --send 'exit 5\r@1.5' -- "$PADDOCK_BIN" attach "$A" --session "${sn:-0}")
contains "exit in the shell ends the attach with its code" "[exit 5]" "$out"
out=$(pd attach "$A" --session 999 2>&1); rc=$?
ok $((rc == 0)) "attach to a session that does not exist fails"
contains "... saying so" "no running session 999" "$out"

# ---- ls
out=$(pd ls)
contains "ls has the columns" "NAME                 STATE      IMAGE             AGE       CPU       MEM SESSIONS" "$out"
row=$(echo "$out" | awk -v n="$A" '$1 == n')
expect "ls: name, state, image, 1 live session" "$A running rootfs 1" "$(echo "$row" | awk '{print $1, $2, $3, $7}')"
ok $([[ $(echo "$row" | awk '{print $4 $5 $6}') =~ ^[0-9]+[smhd][0-9.]+s[0-9.]+M$ ]] && echo 0 || echo 1) "ls: age, cpu, mem look right ($(echo "$row" | awk '{print $4, $5, $6}'))"

# ---- logs: setup output, session exits
mkdir -p "$DT/proj"
printf 'setup: |\n  echo SETUP-SAYS-HI\n  echo setup-to-stderr >&2\n  echo made > /tmp/by-setup\n' > "$DT/proj/paddock.yaml"
out=$(cd "$DT/proj" && pd up "$B" "${RUN[@]}" 2>&1); rc=$?
expect "up with a setup script succeeds after it" "0 $B" "$rc $out"
expect "the setup script ran before up returned" made "$(pd exec "$B" -- cat /tmp/by-setup 2>&1)"
pd exec "$B" -- sh -c 'exit 3'
out=$(pd logs "$B")
contains "logs: the setup's output" "SETUP-SAYS-HI" "$out"
contains "logs: the setup's stderr" "setup-to-stderr" "$out"
contains "logs: a session's exit" "exited with code 3" "$out"
pd logs "$B" -f > "$DT/follow" 2>&1 & pf=$!
sleep 0.5; pd exec "$B" -- sh -c 'exit 4'; sleep 0.5
kill $pf 2>/dev/null; wait $pf 2>/dev/null
contains "logs -f follows new lines" "exited with code 4" "$(cat "$DT/follow")"

# ---- events
out=$(pd events --sandbox "$A")
for k in create running exec session-end; do contains "events record $k" " $k " "$out"; done
not_contains "events --sandbox shows only that sandbox" "$B" "$out"
ev=$(pd events --json)
out=$(echo "$ev" | python3 -c '
import json, sys
kinds = set()
for line in sys.stdin:
    e = json.loads(line)
    assert {"id", "ts_ms", "kind", "detail"} <= set(e), e
    kinds.add(e["kind"])
print("ok" if {"exec", "session-end", "setup"} <= kinds else sorted(kinds))' 2>&1)
expect "events --json: one JSON object a line, with exec, session-end, setup" ok "$out"

# ---- stop, start, down
pid1=$(sb_pid1 "$A"); SB_PIDS="$pid1"
expect "pid 1 is paddock-init" paddock-init "$(cat /proc/"$pid1"/comm 2>&1)"
pd exec "$A" -- sh -c 'echo survives > /workspace/keep'
check "stop succeeds" pd stop "$A"
ok $([ "$(cat /proc/"$pid1"/comm 2>/dev/null)" = paddock-init ] && echo 1 || echo 0) "after stop, its paddock-init is gone"
expect "after stop, no process of it is left (the sleep 300 session's shim)" "" "$(ps -o pid= --ppid "$DPID" | tr -d ' ' | grep -vx "$(sb_pid1 "$B")")"
expect "after stop, its cgroup is gone" "" "$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$A")"
expect "after stop, its files stay on disk" survives "$(cat "$SBDIR/$A/upper/workspace/keep" 2>&1)"
expect "ls says stopped" stopped "$(pd ls | awk -v n="$A" '$1 == n {print $2}')"
out=$(pd exec "$A" -- true 2>&1); rc=$?
ok $((rc == 0)) "exec in a stopped sandbox fails"
contains "... saying it is stopped" "stopped" "$out"
check "start succeeds" pd start "$A"
expect "after start, the files are still there" survives "$(pd exec "$A" -- cat /workspace/keep 2>&1)"
expect "after start, a new pid 1" paddock-init "$(cat /proc/"$(sb_pid1 "$A")"/comm 2>&1)"
check "down succeeds" pd down "$A"
check "down of the other" pd down "$B"
expect "after down: no directory" "" "$(ls -d "$SBDIR/$A" "$SBDIR/$B" 2>/dev/null)"
expect "after down: no cgroup" "" "$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$SBP*")"
expect "after down: paddock ls is empty" "NAME STATE IMAGE AGE CPU MEM SESSIONS" "$(pd ls | tr -s ' ')"
out=$(pd daemon-status | jq_py "(j['rows_sandboxes'], j['rows_sessions'], j['sandboxes'], j['sessions'])")
expect "after down: no rows (sandboxes, sessions), nothing in memory" "(0, 0, 0, 0)" "$out"
expect "events record stop, start, stop and destroy" "stop start stop destroy" "$(pd events --sandbox "$A" | awk '{print $3}' | grep -E '^(stop|start|destroy)$' | xargs)"
no_leftovers "nothing of the sandboxes is left on the host"
daemon_stop TERM
ok $(kill -0 "$DPID" 2>/dev/null && echo 1 || echo 0) "SIGTERM stops the daemon"

# ---- the daemon started on demand
export PADDOCK_STATE_DIR=$DT/state PADDOCK_SOCKET=$DT/ondemand.sock
mkdir -p "$PADDOCK_STATE_DIR"
PADDOCK_BIN=$BUILD_BIN/paddock # the tree's, with paddockd next to it
out=$(pd ls 2>&1); rc=$?
expect "with nothing listening, the CLI starts paddockd and ls works" "0 NAME" "$rc $(echo "$out" | head -1 | awk '{print $1}')"
dp=$(pd daemon-status | jq_py "j['pid']")
expect "a paddockd serves the new socket" paddockd "$(cat /proc/"$dp"/comm 2>&1)"
ok $([ -S "$DT/ondemand.sock" ] && echo 0 || echo 1) "its socket exists"
kill -TERM "$dp"; for i in $(seq 50); do kill -0 "$dp" 2>/dev/null || break; sleep 0.1; done
ok $(kill -0 "$dp" 2>/dev/null && echo 1 || echo 0) "the on-demand daemon stops on SIGTERM"
ok $([ -e "$DT/ondemand.sock" ] && echo 1 || echo 0) "... and removes its socket"
finish
