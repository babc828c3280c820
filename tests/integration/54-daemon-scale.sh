#!/usr/bin/env bash
# paddockd at scale: 50 sandboxes running at once, an exec in each, all taken
# down; then 100 up/down cycles. Nothing may leak: the daemon's fds, rows,
# cgroups, directories, mounts, paddock-init and paddock-shim processes.
. tests/lib/tap.sh
. tests/lib/daemon.sh
plan 15
trap daemon_cleanup EXIT
RUN=(--image "$ROOTFS" --workspace none --network off)
daemon_start || { echo "Bail out! paddockd did not start"; exit 1; }
status() { pd daemon-status | jq_py "$1"; }
rss() { awk '/^VmRSS/ {print $2}' /proc/"$DPID"/status; }
now() { date +%s.%N; }
secs() { python3 -c "print(round($2 - $1, 1))"; }
fds0=$(status "j['fds']") rss0=$(rss)
diag "daemon at start: $fds0 fds, RSS $rss0 kB"

# ---- 50 at once
t0=$(now) n=0
for i in $(seq 50); do pd up "${SBP}$i" "${RUN[@]}" >/dev/null 2>"$DT/up.err" && n=$((n + 1)); done
t1=$(now)
expect "50 ups succeed" 50 "$n"
[ "$n" = 50 ] || diag "$(cat "$DT/up.err")"
expect "50 sandboxes run at once (ls)" 50 "$(pd ls | awk -v p="$SBP" 'index($1, p) == 1 && $2 == "running"' | wc -l)"
inits=$(for i in $(seq 50); do sb_pid1 "${SBP}$i"; done | sort -u | while read -r p; do init_alive "$p" && echo "$p"; done | wc -l)
expect "50 distinct live paddock-init processes" 50 "$inits"
diag "daemon with 50 sandboxes: $(status "j['fds']") fds, RSS $(rss) kB (+$(( $(rss) - rss0 )) kB)"
n=0
for i in $(seq 50); do [ "$(pd exec "${SBP}$i" -- sh -c "echo \$(hostname)-$i" 2>&1)" = "paddock-$i" ] && n=$((n + 1)); done
t2=$(now)
expect "an exec in each answers" 50 "$n"
# all 50 busy at once: a detached session in each, then one exec in each sees its file
for i in $(seq 50); do pd exec -d "${SBP}$i" -- sh -c "echo $i > /tmp/mine; sleep 600" >/dev/null; done
expect "50 detached sessions run at once" 50 "$(status "j['sessions']")"
n=0
for i in $(seq 50); do [ "$(pd exec "${SBP}$i" -- cat /tmp/mine 2>&1)" = "$i" ] && n=$((n + 1)); done
expect "each sandbox has its own files" 50 "$n"
t3=$(now)
n=0
for i in $(seq 50); do pd down "${SBP}$i" >/dev/null 2>&1 && n=$((n + 1)); done
t4=$(now)
expect "50 downs succeed" 50 "$n"
diag "50 ups $(secs "$t0" "$t1") s, 50 execs $(secs "$t1" "$t2") s, 50 downs $(secs "$t3" "$t4") s"
no_leftovers "after 50 at once: no cgroup, directory, mount or process left"

# ---- 100 cycles
t5=$(now) n=0
for i in $(seq 100); do
	pd up "${SBP}c" "${RUN[@]}" >/dev/null 2>"$DT/up.err" &&
		pd exec "${SBP}c" -- true 2>>"$DT/up.err" &&
		pd down "${SBP}c" 2>>"$DT/up.err" && n=$((n + 1))
done
t6=$(now)
expect "100 up/exec/down cycles succeed" 100 "$n"
[ "$n" = 100 ] || diag "$(tail -3 "$DT/up.err")"
diag "100 cycles $(secs "$t5" "$t6") s"

# ---- nothing leaked
expect "the daemon's fds are back to where they started" "$fds0" "$(status "j['fds']")"
expect "no sandbox or session rows" "0 0" "$(status "'%d %d' % (j['rows_sandboxes'], j['rows_sessions'])")"
expect "nothing in the daemon's memory (sandboxes, sessions, clients)" "0 0 1" "$(status "'%d %d %d' % (j['sandboxes'], j['sessions'], j['clients'])")"
expect "no sb-* cgroup of ours in any hierarchy" "" "$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$SBP*")"
expect "no child process of the daemon, not even a zombie" "" "$(ps -o pid=,stat=,comm= --ppid "$DPID")"
no_leftovers "after 100 cycles: nothing left"
diag "daemon at the end: $(status "j['fds']") fds, RSS $(rss) kB (+$(( $(rss) - rss0 )) kB)"
finish
