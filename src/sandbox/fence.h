/* fence.h: the in-process layers applied by the sandbox's command process,
 * in this order, just before execve(): capabilities + no_new_privs, Landlock,
 * seccomp (last). None of them logs; each returns 0 or a negative errno with
 * err filled (err->layer names the layer). */
#ifndef PADDOCK_FENCE_H
#define PADDOCK_FENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Capabilities: bound to what a container root needs (Docker's default set
 * minus NET_RAW), clear ambient, set no_new_privs. */
int pd_caps_apply(struct pd_err *err);
/* The capability numbers kept, for tests. */
const int *pd_caps_kept(size_t *n);

/* Landlock. `rw_paths` are the paths (inside the sandbox, after pivot_root)
 * where writes are allowed; everything else is read/execute only. Uses the
 * best ABI the kernel has. If Landlock is unavailable: with strict, fail;
 * otherwise return 0 and set *abi_out = 0 so the caller can warn.
 * The environment variable PADDOCK_LANDLOCK_MAX_ABI caps the ABI used
 * (0 acts as a kernel without Landlock) so the degraded path can be tested. */
/* The ABI pd_landlock_apply would use: the kernel's, capped by
 * PADDOCK_LANDLOCK_MAX_ABI; 0 when unavailable. Negative errno (err filled)
 * when the variable is malformed. */
int pd_landlock_abi(struct pd_err *err);
int pd_landlock_apply(const char *const *rw_paths, size_t n_rw, bool strict, int *abi_out,
		      struct pd_err *err);

/* seccomp (libseccomp): deny list, errno EPERM (clone3: ENOSYS). */
struct pd_seccomp_rule {
	const char *name;  /* syscall name */
	int err;           /* errno returned */
	int arg;           /* -1: unconditional; else index of argument tested */
	unsigned long long mask, value; /* rule applies when (arg & mask) == value */
	const char *why;
};
const struct pd_seccomp_rule *pd_seccomp_rules(size_t *n);
/* Compile the filter once (the first apply does it otherwise); a forked
 * child then loads the cached program. */
int pd_seccomp_prepare(struct pd_err *err);
int pd_seccomp_apply(struct pd_err *err);

#endif
