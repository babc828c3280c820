#!/usr/bin/env bash
# Layer 5: minimal /dev, read-only /sys, masked /proc.
. tests/lib/tap.sh
plan 9
out=$(pdrun -- ls /dev | tr '\n' ' '); expect "/dev holds only the minimal set" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " "$out"
out=$(pdrun -- sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c'); expect "/dev/null and /dev/zero work" 4 "$(echo $out)"
out=$(pdrun -- sh -c 'touch /sys/x 2>&1; echo 1 > /sys/kernel/uevent_helper 2>&1'); contains "/sys is read-only" "Read-only file system" "$out"
out=$(pdrun -- sh -c 'cat /proc/kcore >/dev/null 2>&1 && echo readable || echo unreadable'); expect "/proc/kcore unreadable (masked, or absent on this kernel)" unreadable "$out"
out=$(pdrun -- sh -c 'echo h > /proc/sysrq-trigger' 2>&1); ok $(( $? == 0 )) "/proc/sysrq-trigger not writable"
out=$(pdrun -- sh -c 'cat /proc/keys 2>&1'); contains "/proc/keys masked" "Permission denied" "$out"
out=$(pdrun -- sh -c 'cat /proc/timer_list 2>&1 | head -1'); contains "/proc/timer_list masked" "Permission denied" "$out"
out=$(pdrun -- sh -c 'echo 1 > /proc/sys/kernel/core_pattern' 2>&1); ok $(( $? == 0 )) "/proc/sys read-only"
leak_check "after /dev /proc /sys tests"
finish
