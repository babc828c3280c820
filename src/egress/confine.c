/* confine.c: what paddock-egress gives up before it reads untrusted bytes.
 *
 * 1. uid/gid: from root to an unprivileged user (nobody by default), with
 *    no supplementary groups; all capabilities go with uid 0.
 * 2. no_new_privs and not dumpable (no ptrace by other processes of that
 *    user, no core files with traffic in them).
 * 3. Landlock: every filesystem right handled, none granted, so no path can
 *    be opened, created or removed; what is needed is open already. On ABI
 *    6 also scoped: no abstract unix sockets, no signals out.
 * 4. seccomp (libseccomp), a deny list: the gateway never starts processes,
 *    never needs namespaces, mounts, ptrace, BPF, keyrings or io_uring, and
 *    only opens IPv4, IPv6 and (for getifaddrs) netlink sockets. A deny
 *    list rather than an allow list because libevent, glibc and OpenSSL
 *    pick their syscalls by version; what is listed is what an attacker
 *    with code execution would reach for. */
#include "egress/egress.h"

#include <errno.h>
#include <grp.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LAYER "egress-confine"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

#define SOCK_FAMILY_MAX 64 /* above AF_MAX (46 in Linux 6.x) */

struct ll_attr {
	uint64_t handled_access_fs, handled_access_net, scoped;
};

static int drop_ids(unsigned uid, unsigned gid, struct pd_err *err)
{
	if (geteuid() != 0)
		return 0; /* already unprivileged: nothing to drop */
	if (setgroups(0, NULL) < 0)
		return pd_err_errno(err, LAYER, "setgroups");
	if (setresgid(gid, gid, gid) < 0)
		return pd_err_errno(err, LAYER, "setresgid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		return pd_err_errno(err, LAYER, "setresuid %u", uid);
	/* make sure it stuck: root must not be recoverable */
	if (uid != 0 && (setuid(0) == 0 || geteuid() == 0))
		return pd_err_set(err, EPERM, LAYER, "could regain root after dropping it");
	return 0;
}

/* Returns 1 when applied, 0 when the kernel lacks Landlock. */
static int landlock_none(struct pd_err *err)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi <= 0)
		return 0;
	struct ll_attr a = { 0 };
	a.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
			      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
			      LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
			      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
			      LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
			      LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			      LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 6)
		a.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL;
	size_t sz = abi >= 6 ? sizeof a : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
	int fd = (int)syscall(SYS_landlock_create_ruleset, &a, sz, 0);
	if (fd < 0)
		return pd_err_errno(err, LAYER, "landlock_create_ruleset");
	int r = (int)syscall(SYS_landlock_restrict_self, fd, 0);
	close(fd);
	if (r < 0)
		return pd_err_errno(err, LAYER, "landlock_restrict_self");
	return 1;
}

static const char *const denied[] = {
	"execve", "execveat", "fork", "vfork", "clone", "ptrace", "process_vm_readv",
	"process_vm_writev", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr", "bpf",
	"perf_event_open", "keyctl", "add_key", "request_key", "io_uring_setup",
	"io_uring_enter", "io_uring_register", "userfaultfd", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
	"capset", "personality", "swapon", "swapoff", "reboot", "acct", "syslog",
	"socketpair", "memfd_create", "pidfd_open", "pidfd_getfd", "kcmp",
};

static int seccomp_deny(struct pd_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;
	if (!ctx)
		return pd_err_set(err, ENOMEM, LAYER, "seccomp_init");
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		goto out;
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
			goto out;
	}
	/* clone3 takes its flags in memory seccomp cannot read: ENOSYS makes
	 * glibc fall back to clone, denied above. */
	int nr = seccomp_syscall_resolve_name("clone3");
	if (nr != __NR_SCMP_ERROR && (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0)
		goto out;
	/* socket(): only IPv4, IPv6 and netlink (getifaddrs). libseccomp
	 * cannot AND several tests of one argument, so: each other family
	 * below SOCK_FAMILY_MAX, and everything above it. */
	for (int fam = 0; fam <= SOCK_FAMILY_MAX; fam++) {
		if (fam == AF_INET || fam == AF_INET6 || fam == AF_NETLINK)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
					  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam))) < 0)
			goto out;
	}
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				  SCMP_A0(SCMP_CMP_GT, SOCK_FAMILY_MAX))) < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	if (r < 0) {
		errno = -r;
		return pd_err_errno(err, LAYER, "seccomp");
	}
	return 0;
}

int egress_confine(unsigned uid, unsigned gid, const char **warning, struct pd_err *err)
{
	int r;
	*warning = NULL;
	if ((r = drop_ids(uid, gid, err)) < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return pd_err_errno(err, LAYER, "no_new_privs");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return pd_err_errno(err, LAYER, "PR_SET_DUMPABLE");
	if ((r = landlock_none(err)) < 0)
		return r;
	if (r == 0)
		*warning = "the kernel lacks Landlock: the gateway runs without filesystem confinement";
	return seccomp_deny(err);
}
