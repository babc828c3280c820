#!/usr/bin/env bash
# Layers 6-8: capabilities + no_new_privs, Landlock, seccomp (the fine
# detail of each denied call is in tests/escape/).
. tests/lib/tap.sh
plan 11
status=$(pdrun -- cat /proc/self/status)
# Docker's default set minus NET_RAW: chown dac_override fowner fsetid kill setgid setuid
# setpcap net_bind_service sys_chroot mknod audit_write setfcap = 0xa80425fb & ~(1<<13)
expect "bounding set is the container set" "00000000a80405fb" "$(echo "$status" | awk '/^CapBnd/{print $2}')"
expect "effective set is the same" "00000000a80405fb" "$(echo "$status" | awk '/^CapEff/{print $2}')"
expect "no_new_privs is set" 1 "$(echo "$status" | awk '/^NoNewPrivs/{print $2}')"
expect "seccomp filter is installed (mode 2)" 2 "$(echo "$status" | awk '/^Seccomp:/{print $2}')"
# Landlock: writes only under the overlay's own directories and rw mounts.
out=$(pdrun -- sh -c 'touch /tmp/a && echo tmp-ok; touch /new-at-root 2>&1') 
contains "writing under /tmp works" tmp-ok "$out"
contains "creating a file directly in / is refused by Landlock" "Permission denied" "$out"
out=$(PADDOCK_LANDLOCK_MAX_ABI=0 pdrun -- sh -c 'touch /new-at-root && echo made' 2>&1)
contains "without Landlock the same write succeeds (so Landlock is what refused it)" made "$out"
contains "... and paddock warns that Landlock is missing" "warning: Landlock is not available" "$out"
err=$(PADDOCK_LANDLOCK_MAX_ABI=0 pdrun --strict -- true 2>&1); rc=$?
expect "--strict without Landlock refuses to start" 125 $rc
contains "... naming the layer" "landlock" "$err"
leak_check "after privilege tests"
finish
