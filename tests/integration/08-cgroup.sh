#!/usr/bin/env bash
# Layer 9: cgroup limits. Fork bomb and memory hog are contained.
. tests/lib/tap.sh
plan 9
out=$(pdrun --pids 32 -- sh -c 'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done 2>&1 | head -1' 2>&1)
contains "--pids: forks beyond the limit fail" "Resource temporarily unavailable" "$out"
pdrun --memory 64M -- sh -c 'x=$(head -c 400000000 /dev/zero | tr "\0" a); echo survived' >/dev/null 2>&1; rc=$?
expect "--memory: a memory hog is killed (137)" 137 $rc
check "the host is healthy after the hog" sh -c 'echo ok >/dev/null'
out=$(pdrun --memory 64M -- sh -c 'x=$(head -c 400000000 /dev/zero | tr "\0" a)' 2>&1); contains "paddock says the sandbox ran out of memory" "out of memory" "$out"
# The limits are on the sandbox's cgroup: read them from the host while it runs.
"$PADDOCK_BIN" run --image "$ROOTFS" --workspace none --memory 96M --pids 77 --cpus 0.5 -- sleep 3 &
pid=$!
sleep 1.2
mem=$(cat /sys/fs/cgroup/memory/paddock/run-$pid-*/memory.limit_in_bytes /sys/fs/cgroup/unified/paddock/run-$pid-*/memory.max /sys/fs/cgroup/paddock/run-$pid-*/memory.max 2>/dev/null | head -1)
pids=$(cat /sys/fs/cgroup/pids/paddock/run-$pid-*/pids.max /sys/fs/cgroup/paddock/run-$pid-*/pids.max 2>/dev/null | head -1)
cpu=$(cat /sys/fs/cgroup/cpu/paddock/run-$pid-*/cpu.cfs_quota_us /sys/fs/cgroup/cpu,cpuacct/paddock/run-$pid-*/cpu.cfs_quota_us 2>/dev/null | head -1)
[ -z "$cpu" ] && cpu=$(cut -d' ' -f1 /sys/fs/cgroup/paddock/run-$pid-*/cpu.max 2>/dev/null | head -1)
wait $pid
expect "memory limit applied" $((96 * 1024 * 1024)) "$mem"
expect "pids limit applied" 77 "$pids"
expect "cpu quota applied (0.5 CPU of a 100 ms period)" 50000 "$cpu"
pdrun -- true; expect "default limits let a plain command run" 0 $?
leak_check "after cgroup tests"
finish
