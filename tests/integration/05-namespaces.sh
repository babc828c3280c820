#!/usr/bin/env bash
# Layer 4: pid, ipc, uts, cgroup, time and net namespaces.
. tests/lib/tap.sh
plan 12
sleep 300 & hostpid=$!; trap 'kill $hostpid 2>/dev/null' EXIT
out=$(pdrun -- sh -c 'echo $$'); expect "the command is pid 2 (pid 1 is paddock's init)" 2 "$out"
out=$(pdrun -- sh -c 'ls /proc | grep -c "^[0-9]"'); ok $(( out > 4 )) "only the sandbox's processes are in /proc ($out)"
out=$(pdrun -- sh -c "test -d /proc/$hostpid && echo visible || echo invisible"); expect "a host pid is invisible" invisible "$out"
out=$(pdrun -- hostname); expect "own hostname" paddock "$out"
out=$(pdrun --hostname box1 -- hostname); expect "--hostname" box1 "$out"
out=$(pdrun -- cat /proc/self/cgroup); not_contains "cgroup namespace hides the host's cgroup paths" "paddock" "$out"
expect "ipc namespace differs" 1 "$(( $(pdrun -- readlink /proc/self/ns/ipc | tr -dc 0-9) != $(readlink /proc/self/ns/ipc | tr -dc 0-9) ))"
expect "time namespace differs" 1 "$(( $(pdrun -- readlink /proc/self/ns/time | tr -dc 0-9) != $(readlink /proc/self/ns/time | tr -dc 0-9) ))"
out=$(pdrun --network off -- ls /sys/class/net); expect "network off: only loopback" lo "$out"
out=$(pdrun -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '")
expect "network filtered (the default): loopback and eth0 to the gateway" "eth0 lo " "$out"
leak_check "after namespace tests"
ok 0 "host process still alive: $(kill -0 $hostpid && echo yes)"
finish
