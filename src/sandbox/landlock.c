/* landlock.c: filesystem access control for the command.
 *
 * Everything the command can see is the sandbox's own view, so "/" gets
 * read and execute; only the rw paths get write rights. Network rights are
 * not handled (the network namespace decides that).
 *
 * Raw syscalls: Debian has no Landlock library, and the interface is three
 * syscalls. Debian 12's <linux/landlock.h> stops at ABI 2, so the newer
 * constants and the full ruleset structure are defined here. */
#include "sandbox/fence.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

#define LAYER "landlock"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The kernel's struct landlock_ruleset_attr as of ABI 6. Older kernels
 * accept the longer structure as long as the fields they lack are zero. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define ACCESS_READ \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* The rights that apply to a non-directory; the others are EINVAL on one. */
#define ACCESS_FILE \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define HINT "run on Linux >= 5.13 with landlock in the lsm= list, or drop --strict"

/* Every filesystem right that Landlock ABI `abi` knows. */
static uint64_t handled_fs(int abi)
{
	uint64_t fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		      LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		      LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		      LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		      LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

/* Read the ABI cap from PADDOCK_LANDLOCK_MAX_ABI into *max (INT_MAX when
 * unset). Returns 0, or -EINVAL with err filled if it is not a
 * non-negative integer. */
static int max_abi(int *max, struct pd_err *err)
{
	const char *s = getenv("PADDOCK_LANDLOCK_MAX_ABI");
	char *end;

	*max = INT_MAX;
	if (!s || !*s)
		return 0;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX)
		return pd_err_set(err, EINVAL, LAYER,
				  "PADDOCK_LANDLOCK_MAX_ABI=%s is not a non-negative integer", s);
	*max = (int)v;
	return 0;
}

/* Allow `access` beneath `path`; on a non-directory only the file rights
 * among them. A missing path is skipped when `optional`. Returns 0, or a
 * negative errno with err filled. */
static int allow_path(int ruleset, const char *path, uint64_t access, bool optional,
		      struct pd_err *err)
{
	_cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		if (optional && (errno == ENOENT || errno == ENOTDIR))
			return 0;
		return pd_err_errno(err, LAYER, "cannot open %s", path);
	}
	if (fstat(fd, &st) < 0)
		return pd_err_errno(err, LAYER, "cannot stat %s", path);
	if (!S_ISDIR(st.st_mode))
		access &= ACCESS_FILE;
	struct landlock_path_beneath_attr rule = { .allowed_access = access, .parent_fd = fd };
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		return pd_err_errno(err, LAYER, "cannot add a rule for %s", path);
	return 0;
}

/* Landlock unavailable (errno `code`): an error when strict, else 0 with
 * *abi_out = 0 so the caller can warn. */
static int unavailable(int code, bool capped, bool strict, int *abi_out, struct pd_err *err)
{
	if (strict) {
		pd_err_set(err, code, LAYER, "the kernel lacks Landlock%s",
			   capped ? " (PADDOCK_LANDLOCK_MAX_ABI=0)" : "");
		return pd_err_hint(err, HINT);
	}
	*abi_out = 0;
	return 0;
}

int pd_landlock_abi(struct pd_err *err)
{
	int cap, r;

	if ((r = max_abi(&cap, err)) < 0)
		return r;
	if (cap == 0)
		return 0;
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			       LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		return 0;
	if (abi < 0)
		return pd_err_errno(err, LAYER, "cannot query the Landlock ABI");
	return abi > cap ? cap : abi;
}

/* Restrict the calling process (and what it executes) to read/execute on
 * "/" and full access on rw_paths, with the best ABI the kernel has (capped
 * by PADDOCK_LANDLOCK_MAX_ABI). Returns 0 with *abi_out = the ABI used (0:
 * Landlock unavailable and not strict), or a negative errno with err filled.
 *
 * landlock_restrict_self() requires no_new_privs (or CAP_SYS_ADMIN):
 * pd_caps_apply() sets it and must run first. */
int pd_landlock_apply(const char *const *rw_paths, size_t n_rw, bool strict, int *abi_out,
		      struct pd_err *err)
{
	int cap, r;

	if ((r = max_abi(&cap, err)) < 0)
		return r;
	int abi = pd_landlock_abi(err);
	if (abi < 0)
		return abi;
	if (abi == 0)
		return unavailable(EOPNOTSUPP, cap == 0, strict, abi_out, err);

	struct ruleset_attr attr = { .handled_access_fs = handled_fs(abi) };
	if (abi >= 6)
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	_cleanup_close_ int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr,
						   sizeof attr, 0);
	if (ruleset < 0)
		return pd_err_errno(err, LAYER, "cannot create a ruleset (ABI %d)", abi);

	if ((r = allow_path(ruleset, "/", ACCESS_READ, false, err)) < 0)
		return r;
	for (size_t i = 0; i < n_rw; i++)
		if ((r = allow_path(ruleset, rw_paths[i], attr.handled_access_fs, true, err)) < 0)
			return r;
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		return pd_err_errno(err, LAYER, "cannot enforce the ruleset");
	*abi_out = abi;
	return 0;
}
