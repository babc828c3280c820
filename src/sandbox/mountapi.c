/* mountapi.c: creating a filesystem as a detached mount, shared by the
 * parent (scratch, mask, overlay) and the child (proc, sysfs, devpts). */
#include "sandbox/mountapi.h"

#include <errno.h>
#include <string.h>

#include "common/cleanup.h"

/* fsopen + fsconfig(opts: key/value pairs, a NULL value sets a flag) +
 * fsmount with `attrs`. Returns the mount fd, or a negative errno with err
 * filled, quoting the kernel's own reason when it gives one. */
int mount_fs_new(const char *type, const char *const *opts, unsigned attrs, struct pd_err *err)
{
	_cleanup_close_ int fs = sys_fsopen(type, FSOPEN_CLOEXEC);
	if (fs < 0)
		return pd_err_errno(err, "mount", "fsopen(%s)", type);
	for (const char *const *o = opts; o && *o; o += 2) {
		int r = o[1] ? sys_fsconfig(fs, FSCONFIG_SET_STRING, o[0], o[1], 0)
			     : sys_fsconfig(fs, FSCONFIG_SET_FLAG, o[0], NULL, 0);
		if (r < 0)
			return pd_err_errno(err, "mount", "%s option %s", type, o[0]);
	}
	if (sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int e = errno;
		char log[256] = "";
		ssize_t n = read(fs, log, sizeof log - 1); /* the kernel's own reason */
		if (n > 0) {
			log[n] = '\0';
			log[strcspn(log, "\n")] = '\0';
			return pd_err_set(err, e, "mount", "creating %s (kernel says: %s)", type, log);
		}
		return pd_err_set(err, e, "mount", "creating %s", type);
	}
	int m = sys_fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	if (m < 0)
		return pd_err_errno(err, "mount", "fsmount(%s)", type);
	return m;
}

