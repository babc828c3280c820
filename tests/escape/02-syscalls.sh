#!/usr/bin/env bash
# tests/escape/02-syscalls.sh: kernel interfaces a sandbox has no business
# with. Each attempt runs tests/lib/probe.c in a fresh sandbox and checks the
# exact refusal: seccomp's EPERM (ENOSYS for clone3), a missing capability's
# EPERM, or a kill by SIGSYS for a foreign-ABI syscall.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/lib/escape.sh

# deny DESC WANT PROBE-ARGS...: the probe, in a plain sandbox, is refused.

plan 48

# Kernel keyrings are not namespaced: the host's keys would be reachable.
deny "keyctl() inside the sandbox is refused (EPERM)" "blocked: EPERM" keyctl
deny "add_key() is refused (EPERM)" "blocked: EPERM" add_key
deny "request_key() is refused (EPERM)" "blocked: EPERM" request_key
# Loading code into the kernel.
deny "bpf(BPF_MAP_CREATE) is refused (EPERM)" "blocked: EPERM" bpf
deny "perf_event_open() on ourselves is refused (EPERM)" "blocked: EPERM" perf_event_open
deny "kexec_load() is refused (EPERM)" "blocked: EPERM" kexec_load
deny "init_module() is refused (EPERM)" "blocked: EPERM" init_module
deny "finit_module() is refused (EPERM)" "blocked: EPERM" finit_module
deny "delete_module() is refused (EPERM)" "blocked: EPERM" delete_module
# "shocker": open a file by handle, past the mount view.
deny "open_by_handle_at() on / is refused (EPERM)" "blocked: EPERM" open_by_handle_at /
deny "userfaultfd(UFFD_USER_MODE_ONLY) is refused (EPERM)" "blocked: EPERM" userfaultfd
deny "io_uring_setup() is refused (EPERM)" "blocked: EPERM" io_uring_setup
leak_check "after the kernel-interface attempts"

# A nested user namespace gives back every capability.
deny "unshare(CLONE_NEWUSER) is refused (EPERM)" "blocked: EPERM" unshare_user
deny "raw clone(CLONE_NEWUSER) is refused (EPERM)" "blocked: EPERM" clone_newuser
deny "clone3() answers ENOSYS" "blocked: ENOSYS" clone3
deny "clone3(CLONE_NEWUSER) answers ENOSYS" "blocked: ENOSYS" clone3 newuser
deny "unshare(CLONE_NEWNS) is refused (EPERM)" "blocked: EPERM" unshare_mount
deny "unshare(CLONE_NEWNET) is refused (EPERM)" "blocked: EPERM" unshare net
deny "NS_GET_PARENT on our user namespace (the host's) is refused (EPERM)" \
	"blocked: EPERM" ns_get_parent
deny "setns() into the sandbox's own mount namespace is refused (EPERM)" \
	"blocked: EPERM" setns /proc/self/ns/mnt
deny "setns() through /proc/1/ns/mnt cannot even open it (pid 1 is not dumpable: EACCES)" \
	"blocked: EACCES" setns /proc/1/ns/mnt
leak_check "after the namespace attempts"

# Mounts: the command never changes its mount view.
deny "mount(tmpfs) is refused (EPERM)" "blocked: EPERM" mount_tmpfs /mnt
deny "mount(proc) is refused (EPERM)" "blocked: EPERM" mount_proc /mnt
deny "umount(/proc) is refused (EPERM)" "blocked: EPERM" umount /proc
deny "pivot_root() is refused (EPERM)" "blocked: EPERM" pivot_root
deny "fsopen() is refused (EPERM)" "blocked: EPERM" fsopen
deny "open_tree(OPEN_TREE_CLONE) of / is refused (EPERM)" "blocked: EPERM" open_tree /
deny "move_mount() of /proc is refused (EPERM)" "blocked: EPERM" move_mount /proc /mnt
deny "mounting a cgroup hierarchy (v2, v1 memory, v1 pids) is refused (EPERM)" \
	"blocked: EPERM" cgroup_escape
leak_check "after the mount attempts"

# Host-wide state.
deny "swapon() is refused (EPERM)" "blocked: EPERM" swapon /tmp/swapfile
deny "reboot(RB_DISABLE_CAD) is refused (EPERM)" "blocked: EPERM" reboot
deny "settimeofday() is refused (EPERM)" "blocked: EPERM" settimeofday
deny "clock_settime(CLOCK_REALTIME) is refused (EPERM)" "blocked: EPERM" clock_settime
deny "acct() is refused (EPERM)" "blocked: EPERM" acct /tmp/acct
deny "syslog(READ_ALL) of the kernel log is refused (EPERM)" "blocked: EPERM" syslog
deny "personality(ADDR_NO_RANDOMIZE) is refused (EPERM)" "blocked: EPERM" personality 0040000
deny "mknod of a char device (1:1, /dev/mem) is refused (EPERM)" "blocked: EPERM" mknod /tmp/mem
deny "mknod of the host's disk (254:0) is refused (EPERM)" "blocked: EPERM" \
	mknod /tmp/vda b 254 0
leak_check "after the host-state attempts"

# Foreign ABIs: their syscall numbers mean other calls; the filter kills.
attempt "int 0x80 (i386 getpid) kills the process with SIGSYS (exit 159)" 159 "" \
	pdrun -- probe int80
attempt "an x32 syscall kills the process with SIGSYS (exit 159)" 159 "" pdrun -- probe x32

# Privileges left to the command.
deny "CAP_SYS_ADMIN is not in the effective set" "blocked: CapEff * lacks bit 21" cap_sys_admin
deny "no_new_privs is set" "blocked: no_new_privs=1" nnp
deny "root inside (setuid(0)) maps to host uid 1879048192, not 0" \
	"blocked: root inside is host uid 1879048192" setuid_host
leak_check "after the ABI and privilege attempts"
finish
