/* seccomp.c: the last fence before execve().
 *
 * A default-allow filter, built with libseccomp, that makes the kernel
 * interfaces a container has no business with fail with EPERM, in the
 * spirit of Docker's default profile. Denied calls return an error and never
 * kill, so a program probing an interface sees an ordinary failure. Only
 * syscalls of a foreign ABI kill (see pd_seccomp_apply). */
#include "sandbox/fence.h"

#include <errno.h>
#include <sys/mman.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

#define LAYER "seccomp"

#define DENY(n, w) { .name = n, .err = EPERM, .arg = -1, .why = w }
/* Deny when (argument a & mask m) == value v. */
#define DENY_IF(n, a, m, v, w) \
	{ .name = n, .err = EPERM, .arg = a, .mask = m, .value = v, .why = w }

#define WHY_KEYS "kernel keyrings are not namespaced: the host user's keys would be reachable"
#define WHY_MODULE "loads or unloads kernel code"
#define WHY_CLOCK "the clock is not namespaced: this would set the host's time"
#define WHY_MOUNT "paddock builds the mount view; the command does not change it"
#define WHY_IO_URING "a large kernel surface with a history of escapes; seccomp cannot see its ops"
#define WHY_NEWUSER "in a new user namespace every capability, and the code behind it, is back"
#define WHY_OLD "obsolete interface, no use in a container"

/* ioctl(2) compares only the low 32 bits of its command, so must we. */
#define CMD_MASK 0xffffffffULL

static const struct pd_seccomp_rule rules[] = {
	DENY("keyctl", WHY_KEYS),
	DENY("add_key", WHY_KEYS),
	DENY("request_key", WHY_KEYS),
	DENY("bpf", "loads programs into the kernel; a large attack surface"),
	DENY("perf_event_open", "performance counters leak kernel addresses and host activity"),
	DENY("kexec_load", "replaces the running kernel"),
	DENY("kexec_file_load", "replaces the running kernel"),
	DENY("init_module", WHY_MODULE),
	DENY("finit_module", WHY_MODULE),
	DENY("delete_module", WHY_MODULE),
	DENY("create_module", WHY_MODULE),
	DENY("get_kernel_syms", WHY_OLD),
	DENY("query_module", WHY_OLD),
	DENY("open_by_handle_at", "opens any file on a filesystem by handle, past the mount view"),
	DENY("name_to_handle_at", "makes the handles open_by_handle_at takes"),
	DENY("userfaultfd", "stalls the kernel in the middle of a copy: an exploit race helper"),
	DENY("io_uring_setup", WHY_IO_URING),
	DENY("io_uring_enter", WHY_IO_URING),
	DENY("io_uring_register", WHY_IO_URING),
	DENY("swapon", "host memory management"),
	DENY("swapoff", "host memory management"),
	DENY("reboot", "reboots (or, in a pid namespace, kills everything)"),
	DENY("settimeofday", WHY_CLOCK),
	DENY("clock_settime", WHY_CLOCK),
	DENY("clock_adjtime", WHY_CLOCK),
	DENY("adjtimex", WHY_CLOCK " (reading it is rarely needed)"),
	DENY("acct", "process accounting writes host-wide records"),
	DENY("quotactl", "manages the host's filesystem quotas"),
	DENY("quotactl_fd", "manages the host's filesystem quotas"),
	DENY("lookup_dcookie", "profiling interface that reveals kernel paths"),
	DENY("nfsservctl", WHY_OLD),
	DENY("syslog", "the kernel log leaks addresses and host activity"),
	DENY("vhangup", "hangs up the terminal, which belongs to the host side"),
	DENY("uselib", WHY_OLD),
	DENY("ustat", WHY_OLD),
	DENY("sysfs", WHY_OLD),
	DENY("_sysctl", WHY_OLD),
	DENY("mount", WHY_MOUNT),
	DENY("umount2", WHY_MOUNT),
	DENY("pivot_root", WHY_MOUNT),
	DENY("move_mount", WHY_MOUNT),
	DENY("open_tree", WHY_MOUNT),
	DENY("fsopen", WHY_MOUNT),
	DENY("fsconfig", WHY_MOUNT),
	DENY("fsmount", WHY_MOUNT),
	DENY("fspick", WHY_MOUNT),
	DENY("mount_setattr", WHY_MOUNT),
	DENY("setns", "joins another namespace"),
	DENY("iopl", "direct access to I/O ports"),
	DENY("ioperm", "direct access to I/O ports"),
	{ .name = "clone3", .err = ENOSYS, .arg = -1,
	  .why = "its flags are in memory, out of seccomp's sight; ENOSYS makes libc fall back "
		 "to clone, whose flags are checked" },
	/* clone's flags are argument 0 on x86_64 and arm64 (argument 1 on s390). */
	DENY_IF("clone", 0, CLONE_NEWUSER, CLONE_NEWUSER, WHY_NEWUSER),
	DENY_IF("unshare", 0, CLONE_NEWUSER, CLONE_NEWUSER, WHY_NEWUSER),
	DENY_IF("ioctl", 1, CMD_MASK, TIOCSTI,
		"pushes input into the terminal, which is read outside the sandbox"),
	DENY_IF("ioctl", 1, CMD_MASK, TIOCLINUX,
		"its selection subcodes paste input into the console, like TIOCSTI"),
	DENY_IF("socket", 0, 0xffffffffULL, 40 /* AF_VSOCK */,
		"vsock is not isolated by network namespaces: it reaches the hypervisor and "
		"the host's vsock services"),
	/* personality(2) is filtered by persona_load(): see there. */
};

/* The deny list; *n is set to its length. */
const struct pd_seccomp_rule *pd_seccomp_rules(size_t *n)
{
	*n = ARRAY_SIZE(rules);
	return rules;
}

/* For _cleanup_ctx_: release a libseccomp context if there is one. */
static void ctx_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}
#define _cleanup_ctx_ __attribute__((cleanup(ctx_releasep)))

/* Add the rules to ctx, skipping syscalls this libseccomp or arch lacks.
 * Returns 0 or a negative errno with err filled. */
static int add_rules(scmp_filter_ctx ctx, struct pd_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		const struct pd_seccomp_rule *rule = &rules[i];
		int nr = seccomp_syscall_resolve_name(rule->name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		struct scmp_arg_cmp cmp = {
			.arg = (unsigned)rule->arg,
			.op = SCMP_CMP_MASKED_EQ,
			.datum_a = rule->mask,
			.datum_b = rule->value,
		};
		int r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(rule->err), nr,
					       rule->arg < 0 ? 0 : 1, &cmp);
		if (r < 0)
			return pd_err_set(err, -r, LAYER, "cannot add the rule for %s", rule->name);
	}
	return 0;
}

/* Load a second, hand-written filter that lets personality(2) through only
 * for PER_LINUX, PER_LINUX32, PER_LINUX32 | UNAME26 and the query
 * 0xffffffff, as Docker does; other personas turn off address randomisation
 * or turn on READ_IMPLIES_EXEC, for example. Returns 0 or a negative errno
 * with err filled. Needs no_new_privs, which seccomp_load() has set.
 *
 * Not libseccomp: it compares an argument once per rule and ORs rules, so a
 * default-allow filter cannot say "unless the argument is one of these".
 * Classic BPF can, in eleven instructions. The kernel runs every filter and
 * keeps the strictest answer, so this one only has to allow the rest.
 * Like the kernel, it reads the low 32 bits of the argument. */
static int persona_load(struct pd_err *err)
{
	int nr = seccomp_syscall_resolve_name("personality");
	if (nr < 0)
		return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint32_t arg0_lo = offsetof(struct seccomp_data, args[0]);
#else
	const uint32_t arg0_lo = offsetof(struct seccomp_data, args[0]) + 4;
#endif
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native(), 0, 7),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0_lo),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX32, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PER_LINUX32 | UNAME26, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(code), .filter = code };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog) < 0 &&
	    (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0))
		return pd_err_errno(err, LAYER, "cannot load the personality filter");
	return 0;
}

/* The filter, compiled once per process (libseccomp's compilation costs
 * about a millisecond; a daemon starting sessions pays it once) and kept
 * as classic BPF. */
static struct sock_filter *cached_code;
static unsigned short cached_len;

int pd_seccomp_prepare(struct pd_err *err)
{
	if (cached_code)
		return 0;
	_cleanup_ctx_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return pd_err_set(err, ENOMEM, LAYER, "cannot create a filter");
	/* Only the native ABI is in the filter (libseccomp's default), so a
	 * syscall made through another one (int 0x80, x32 on x86_64), whose
	 * numbers mean other calls, is never checked against the rules: it has
	 * to kill, the whole process so no thread keeps running half-fenced. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		return pd_err_set(err, -r, LAYER, "cannot make foreign-ABI syscalls fatal");
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if ((r = add_rules(ctx, err)) < 0)
		return r;
	/* libseccomp 2.5 exports only to an fd */
	_cleanup_close_ int fd = memfd_create("paddock-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, LAYER, "memfd_create");
	if ((r = seccomp_export_bpf(ctx, fd)) < 0)
		return pd_err_set(err, -r, LAYER, "cannot compile the filter");
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
	    size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		return pd_err_set(err, EIO, LAYER, "the compiled filter has a bad size");
	struct sock_filter *code = malloc((size_t)size);
	if (!code)
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	if (pread(fd, code, (size_t)size, 0) != size) {
		free(code);
		return pd_err_errno(err, LAYER, "reading the compiled filter");
	}
	cached_code = code;
	cached_len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	return 0;
}

/* Load the filter into the calling process (and what it executes).
 * no_new_privs must be set (pd_caps_apply does). Returns 0, or a negative
 * errno with err filled. */
int pd_seccomp_apply(struct pd_err *err)
{
	int r = pd_seccomp_prepare(err);
	if (r < 0)
		return r;
	struct sock_fprog prog = { .len = cached_len, .filter = cached_code };
	/* Denials show in the audit log when the kernel supports it. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog) < 0 &&
	    (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0))
		return pd_err_errno(err, LAYER, "cannot load the filter");
	return persona_load(err);
}
