#!/usr/bin/env bash
# paddockd killed at any step: on restart it adopts what runs, marks stopped
# what died, and removes what was half created or half destroyed; nothing
# leaks (directory, cgroup, mount, process, row).
#
# Windows: (b) "during create" is the create job copying a workspace with a
# 400 MB file (about a second with the row in state creating; the test waits
# until ls says busy); (c) "during down" is the job removing a writable layer
# of 40000 files (ls says busy). Each time the test checks it hit the window.
. tests/lib/tap.sh
. tests/lib/daemon.sh
plan 45
trap daemon_cleanup EXIT
RUN=(--image "$ROOTFS" --workspace none --network off)
A=${SBP}adopt C=${SBP}create D=${SBP}down K=${SBP}kill T=${SBP}term
state_of() { pd ls --json | jq_py "([s['state'] for s in j if s['name']=='$1'] or ['none'])[0]"; }
wait_state() { # NAME STATE: poll (20 ms) until ls says STATE, up to 10 s
	local i
	for i in $(seq 500); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.02; done
	return 1
}
kill9() { kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=; }
rows() { pd daemon-status | jq_py "(j['rows_sandboxes'], j['sandboxes'])"; }
gone() { # NAME: no directory, cgroup, mount, row or ls entry of it
	local what=
	[ -e "$SBDIR/$1" ] && what="$what directory"
	[ -n "$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$1")" ] && what="$what cgroup"
	grep -qF "$SBDIR/$1" /proc/self/mountinfo && what="$what mount"
	[ "$(state_of "$1")" != none ] && what="$what ls-entry"
	echo "${what:-gone}"
}
daemon_start || { echo "Bail out! paddockd did not start"; exit 1; }

# ---- (a) kill -9 right after up, with sessions running
pd up "$A" "${RUN[@]}" >/dev/null
pid1=$(sb_pid1 "$A"); SB_PIDS=$pid1
n=$(pd exec -d "$A" -- sh -c 'while :; do date > /tmp/tick; sleep 0.2; done')
pd exec "$A" -- sh -c 'echo started; sleep 60' > "$DT/exec.out" 2>"$DT/exec.err" & ex=$!
for i in $(seq 50); do grep -q started "$DT/exec.out" && break; sleep 0.1; done
kill9
wait $ex; rc=$?
ok $((rc == 0)) "an exec whose daemon dies ends (code $rc)"
contains "... and says it lost paddockd" "paddockd" "$(cat "$DT/exec.err")"
expect "pid 1 survives the daemon's death" paddock-init "$(cat /proc/"$pid1"/comm 2>&1)"
check "the daemon restarts" daemon_start
expect "the sandbox is adopted: running, same pid 1" "running $pid1" "$(state_of "$A") $(sb_pid1 "$A")"
expect "exec works in it" alive "$(pd exec "$A" -- echo alive 2>&1)"
contains "events say reconcile adopted" '"result":"adopted"' "$(pd events --sandbox "$A" | grep reconcile)"
st=$(pd sessions "$A" --json | jq_py "' '.join(s['state'] for s in j if s['session'] in ($n, $n + 1))")
expect "the sessions that ran at the crash are marked lost" "lost lost" "$st"
out=$(pd logs "$A"); contains "the log says it was adopted" "adopted by a restarted daemon" "$out"
check "down works after adoption" pd down "$A"
expect "... and removes it all" gone "$(gone "$A")"
ok $(init_alive "$pid1" && echo 1 || echo 0) "... its adopted pid 1 included"

# ---- (b) kill -9 during create
R=$DT/repo; mkdir -p "$R"; git init -q "$R"
git -C "$R" -c user.name=o -c user.email=o@o commit -q --allow-empty -m i
head -c 400M /dev/zero > "$R/big"
(cd "$R" && pd up "$C" --image "$ROOTFS" --network off) > "$DT/up.out" 2>&1 & up=$!
wait_state "$C" busy; hit=$?
ok $hit "the create job is running (ls: busy)"
sleep 0.2
ok $([ -d "$SBDIR/$C" ] && echo 0 || echo 1) "... and has made the directory"
kill9
wait $up; rc=$?
ok $((rc == 0)) "the waiting up fails (code $rc: $(head -c 100 "$DT/up.out"))"
check "the daemon restarts" daemon_start
expect "the half-created sandbox is removed (directory, cgroup, mount, row)" gone "$(gone "$C")"
contains "events say why" "half-created: removed" "$(pd events --sandbox "$C" | grep reconcile)"
expect "rows: none" "(0, 0)" "$(rows)"
rm -f "$R/big"
out=$(pd up "$C" "${RUN[@]}" 2>&1)
expect "the name can be used again" "$C" "$out"
check "... and taken down" pd down "$C"

# ---- (c) kill -9 during down
pd up "$D" "${RUN[@]}" >/dev/null
pd exec "$D" -- sh -c 'mkdir -p /workspace/many && cd /workspace/many && seq 1 40000 | xargs touch'
expect "the writable layer has 40000 files" 40000 "$(ls "$SBDIR/$D/upper/workspace/many" 2>/dev/null | wc -l)"
pid1=$(sb_pid1 "$D"); SB_PIDS="$SB_PIDS $pid1"
pd down "$D" > "$DT/down.out" 2>&1 & dn=$!
wait_state "$D" busy; hit=$?
ok $hit "the destroy job is running (ls: busy)"
kill9
wait $dn
ok $([ -d "$SBDIR/$D" ] && echo 0 || echo 1) "the kill came before the directory was gone"
check "the daemon restarts" daemon_start
expect "the half-destroyed sandbox is removed" gone "$(gone "$D")"
contains "events say why" "half-destroyed: removed" "$(pd events --sandbox "$D" | grep reconcile)"
ok $(init_alive "$pid1" && echo 1 || echo 0) "its pid 1 is gone"

# ---- (d) pid 1 killed from outside
pd up "$K" "${RUN[@]}" >/dev/null
pd exec "$K" -- sh -c 'echo kept > /workspace/f'
pid1=$(sb_pid1 "$K"); SB_PIDS="$SB_PIDS $pid1"
kill -KILL "$pid1"
wait_state "$K" stopped; ok $? "pid 1 killed from outside: the daemon marks it stopped"
contains "events say pid 1 exited" '"reason":"pid 1 exited"' "$(pd events --sandbox "$K" | grep ' stop ')"
expect "its cgroup is gone" "" "$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$K")"
out=$(pd exec "$K" -- true 2>&1); contains "exec says it is stopped" "stopped" "$out"
check "start brings it back" pd start "$K"
expect "... with its files" kept "$(pd exec "$K" -- cat /workspace/f 2>&1)"
# and while the daemon is down
pid1=$(sb_pid1 "$K"); SB_PIDS="$SB_PIDS $pid1"
kill9
kill -KILL "$pid1"; sleep 0.2
check "the daemon restarts" daemon_start
expect "pid 1 that died while the daemon was down: marked stopped" stopped "$(state_of "$K")"
# (reconcile says "gone: marked stopped"; where the host's init is slow to reap
# the dead pid 1, a zombie, it is adopted and at once seen to exit)
out=$(pd events --sandbox "$K" | sed -n '/reconcile/,$p' | tr -s ' ' | cut -d' ' -f3-)
case $out in
*"gone: marked stopped"* | *'"adopted"}'*'stop {"reason":"pid 1 exited"}'*) ok 0 "events say it was found dead" ;;
*) ok 1 "events say it was found dead"; diag "$out" ;;
esac
check "down" pd down "$K"

# ---- SIGTERM with a running sandbox
pd up "$T" "${RUN[@]}" >/dev/null
pid1=$(sb_pid1 "$T"); SB_PIDS="$SB_PIDS $pid1"
daemon_stop TERM
expect "after SIGTERM, the sandbox runs on" paddock-init "$(cat /proc/"$pid1"/comm 2>&1)"
check "the daemon restarts" daemon_start
expect "the sandbox is adopted" "running $pid1" "$(state_of "$T") $(sb_pid1 "$T")"
expect "exec works" ok "$(pd exec "$T" -- echo ok 2>&1)"
check "down" pd down "$T"

expect "rows: none, nothing in memory" "(0, 0)" "$(rows)"
no_leftovers "nothing of ours is left: no directory, cgroup, mount, paddock-init or shim"
finish
