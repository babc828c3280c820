/* mountapi.h: thin wrappers over the new mount API (fsopen, fsmount,
 * open_tree, move_mount, mount_setattr) and openat2. glibc 2.36 has no
 * wrappers for all of them; these are one syscall each. */
#ifndef PADDOCK_MOUNTAPI_H
#define PADDOCK_MOUNTAPI_H

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int sys_fsopen(const char *fs, unsigned flags)
{
	return (int)syscall(SYS_fsopen, fs, flags);
}
static inline int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *val, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, val, aux);
}
static inline int sys_fsmount(int fd, unsigned flags, unsigned attr)
{
	return (int)syscall(SYS_fsmount, fd, flags, attr);
}
static inline int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}
static inline int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
				 unsigned flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
static inline int sys_mount_setattr(int dfd, const char *path, unsigned flags,
				    struct mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof *attr);
}
static inline int sys_openat2(int dfd, const char *path, int oflags, unsigned long long resolve)
{
	struct open_how how = { .flags = (unsigned long long)oflags, .resolve = resolve };
	return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

#include "common/err.h"

int mount_fs_new(const char *type, const char *const *opts, unsigned attrs, struct pd_err *err);

#endif
