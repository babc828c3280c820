/* caps.c: bound the command's capabilities to what a container's root needs.
 *
 * The command runs as uid 0 inside its user namespace and then calls
 * execve(). For root, the permitted set after execve() is the bounding set,
 * so the bounding set is what counts; inheritable, permitted and effective
 * are set to the same kept set so that nothing in between holds more.
 *
 * No libcap: the whole job is three syscalls (prctl, capget, capset) on a
 * two-word structure, not worth a dependency. */
#include "sandbox/fence.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

#define LAYER "capabilities"

/* Docker's default set minus CAP_NET_RAW (raw sockets: packet spoofing). */
static const int kept[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_SETGID, CAP_SETUID,
	CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

/* The kept capability numbers; *n is set to how many. */
const int *pd_caps_kept(size_t *n)
{
	*n = ARRAY_SIZE(kept);
	return kept;
}

/* The kept set as a bit mask (bit n = capability n). */
static uint64_t kept_mask(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		m |= 1ULL << kept[i];
	return m;
}

/* The highest capability number the kernel knows. When /proc cannot tell,
 * 63 (the most a capability set holds); the drop loop then stops at the
 * first EINVAL. */
static int last_cap(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last;
	if (!f || fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
		return 63;
	return last;
}

/* Drop every capability outside the kept set from the bounding set. */
static int drop_bounding(uint64_t keep, struct pd_err *err)
{
	int last = last_cap();
	for (int cap = 0; cap <= last; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* beyond the kernel's last capability */
				break;
			return pd_err_errno(err, LAYER,
					    "cannot drop capability %d from the bounding set", cap);
		}
	}
	return 0;
}

/* Set inheritable, permitted and effective to the kept set. A kept
 * capability the process does not hold is left out rather than failing:
 * capset() cannot raise it, and keeping less is safe. */
static int set_sets(uint64_t keep, struct pd_err *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return pd_err_errno(err, LAYER, "cannot read the capability sets");
	for (size_t i = 0; i < ARRAY_SIZE(data); i++) {
		uint32_t m = (uint32_t)(keep >> (32 * i)) & data[i].permitted;
		data[i].inheritable = data[i].permitted = data[i].effective = m;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return pd_err_errno(err, LAYER, "cannot set the capability sets");
	return 0;
}

/* Bound the bounding set, clear ambient, set the process's sets, then set
 * no_new_privs (which Landlock and seccomp, applied next, rely on).
 * Returns 0, or a negative errno with err filled. */
int pd_caps_apply(struct pd_err *err)
{
	uint64_t keep = kept_mask();
	int r;

	if ((r = drop_bounding(keep, err)) < 0)
		return r;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return pd_err_errno(err, LAYER, "cannot clear the ambient capabilities");
	if ((r = set_sets(keep, err)) < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return pd_err_errno(err, LAYER, "cannot set no_new_privs");
	return 0;
}
