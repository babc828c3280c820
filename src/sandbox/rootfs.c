/* rootfs.c: assemble the sandbox's root inside its own mount namespace.
 *
 * Runs in the child, as root of the new user namespace, with the overlay
 * root attached (privately) and the old root still present: /proc and /sys
 * can only be mounted while a fully visible instance exists in the
 * namespace, and the host device nodes are bound from the old root. Every
 * path inside the new root is resolved with openat2(RESOLVE_IN_ROOT), so a
 * symlink in the image cannot send a mount outside the root. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/internal.h"
#include "sandbox/mountapi.h"

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Open (creating as needed) `path` under rootfd: intermediate components as
 * directories; the last as a directory when is_dir, else an empty file.
 * Returns an O_PATH fd or a negative errno. */
static int mkpath_at(int rootfd, const char *path, bool is_dir, mode_t mode)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	char *p = buf;
	while (*p == '/')
		p++;
	if (!*p) {
		int fd = sys_openat2(rootfd, ".", O_PATH | O_CLOEXEC, RESOLVE_ROOT);
		return fd < 0 ? -errno : fd;
	}
	for (char *slash = p;; slash++) {
		slash = strchrnul(slash, '/');
		bool last = *slash == '\0';
		char saved = *slash;
		*slash = '\0';
		int fd = sys_openat2(rootfd, p, O_PATH | O_CLOEXEC, RESOLVE_ROOT);
		if (fd < 0 && errno == ENOENT) {
			char *base = strrchr(p, '/');
			_cleanup_close_ int parent = -1;
			if (base) {
				*base = '\0';
				parent = sys_openat2(rootfd, p, O_PATH | O_DIRECTORY | O_CLOEXEC,
						     RESOLVE_ROOT);
				*base = '/';
				base++;
			} else {
				parent = sys_openat2(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC,
						     RESOLVE_ROOT);
				base = p;
			}
			if (parent < 0)
				return -errno;
			if (!last || is_dir) {
				if (mkdirat(parent, base, last ? mode : 0755) < 0 && errno != EEXIST)
					return -errno;
			} else {
				int f = openat(parent, base,
					       O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
					       mode);
				if (f < 0 && errno != EEXIST)
					return -errno;
				if (f >= 0)
					close(f);
			}
			fd = sys_openat2(rootfd, p, O_PATH | O_CLOEXEC, RESOLVE_ROOT);
		}
		if (fd < 0)
			return -errno;
		*slash = saved;
		if (last)
			return fd;
		close(fd);
	}
}

/* Attach the detached mount `mfd` at `path` under rootfd. */
static int attach_at(int mfd, int rootfd, const char *path, bool is_dir, struct pd_err *err)
{
	_cleanup_close_ int t = mkpath_at(rootfd, path, is_dir, is_dir ? 0755 : 0644);
	if (t < 0) {
		errno = -t;
		return pd_err_errno(err, "mount", "creating mount point %s", path);
	}
	if (sys_move_mount(mfd, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return pd_err_errno(err, "mount", "mounting on %s", path);
	return 0;
}

static int mount_new(int rootfd, const char *path, const char *type, const char *const *opts,
		     unsigned attrs, struct pd_err *err)
{
	_cleanup_close_ int m = mount_fs_new(type, opts, attrs, err);
	if (m < 0)
		return m;
	return attach_at(m, rootfd, path, true, err);
}

/* Bind a host object (from the old root, still visible) at path. */
static int bind_host(int rootfd, const char *host, const char *path, bool is_dir,
		     struct pd_err *err)
{
	_cleanup_close_ int m = sys_open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (m < 0)
		return pd_err_errno(err, "dev", "binding %s", host);
	return attach_at(m, rootfd, path, is_dir, err);
}

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty",
					 NULL };

static int build_dev(int rootfd, struct pd_err *err)
{
	static const char *const tmpfs_opts[] = { "mode", "0755", "size", "1m", NULL };
	int r = mount_new(rootfd, "/dev", "tmpfs", tmpfs_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
			  err);
	if (r < 0)
		return r;
	for (const char *const *n = dev_nodes; *n; n++) {
		char host[64], in[64];
		snprintf(host, sizeof host, "/dev/%s", *n);
		snprintf(in, sizeof in, "/dev/%s", *n);
		if ((r = bind_host(rootfd, host, in, false, err)) < 0)
			return r;
	}
	static const char *const pts_opts[] = { "newinstance", NULL, "ptmxmode", "0666",
						"mode", "0620", "gid", "5", NULL };
	if ((r = mount_new(rootfd, "/dev/pts", "devpts", pts_opts,
			   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err)) < 0)
		return r;
	/* 64M as Docker's default: bounded even with --memory 0. */
	static const char *const shm_opts[] = { "mode", "1777", "size", "64m", NULL };
	if ((r = mount_new(rootfd, "/dev/shm", "tmpfs", shm_opts,
			   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err)) < 0)
		return r;
	_cleanup_close_ int dev = sys_openat2(rootfd, "dev", O_PATH | O_DIRECTORY | O_CLOEXEC,
					      RESOLVE_ROOT);
	if (dev < 0)
		return pd_err_errno(err, "dev", "opening /dev");
	static const char *const links[][2] = {
		{ "ptmx", "pts/ptmx" },		 { "fd", "/proc/self/fd" },
		{ "stdin", "/proc/self/fd/0" },	 { "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][1], dev, links[i][0]) < 0)
			return pd_err_errno(err, "dev", "creating /dev/%s", links[i][0]);
	return 0;
}

/* Sensitive /proc entries: masked with the unreadable file or directory. */
static const char *const proc_mask_files[] = {
	"kcore",	  "sysrq-trigger", "keys",    "key-users",  "timer_list", "sched_debug",
	"latency_stats", "kallsyms",	  "kmsg",    "config.gz",  "vmcore",	 "kpagecount",
	"kpageflags",	  "kpagecgroup",   "pagetypeinfo", NULL,
};
static const char *const proc_mask_dirs[] = { "acpi", "scsi", "asound", "driver", NULL };
static const char *const proc_ro[] = { "sys", "irq", "bus", "fs", NULL };

/* Mount a clone of maskfs's "f" or "d" over the object at fd. */
static int mask_one(int maskfs, int target_fd, bool is_dir, const char *what, struct pd_err *err)
{
	_cleanup_close_ int m = sys_open_tree(maskfs, is_dir ? "d" : "f",
					      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (m < 0)
		return pd_err_errno(err, "mask", "cloning the mask for %s", what);
	if (sys_move_mount(m, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
	    0)
		return pd_err_errno(err, "mask", "masking %s", what);
	return 0;
}

static int build_proc(int rootfd, int maskfs, struct pd_err *err)
{
	static const char *const opts[] = { NULL };
	int r = mount_new(rootfd, "/proc", "proc", opts,
			  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
	if (r < 0)
		return r;
	_cleanup_close_ int proc = sys_openat2(rootfd, "proc", O_PATH | O_DIRECTORY | O_CLOEXEC,
					       RESOLVE_ROOT);
	if (proc < 0)
		return pd_err_errno(err, "proc", "opening /proc");
	for (const char *const *n = proc_ro; *n; n++) {
		_cleanup_close_ int m = sys_open_tree(proc, *n, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
								      AT_RECURSIVE);
		if (m < 0) {
			if (errno == ENOENT)
				continue;
			return pd_err_errno(err, "proc", "cloning /proc/%s", *n);
		}
		struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
		if (sys_mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &a) < 0 ||
		    sys_move_mount(m, "", proc, *n, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return pd_err_errno(err, "proc", "making /proc/%s read-only", *n);
	}
	for (int pass = 0; pass < 2; pass++) {
		const char *const *list = pass ? proc_mask_dirs : proc_mask_files;
		for (const char *const *n = list; *n; n++) {
			_cleanup_close_ int t = openat(proc, *n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (t < 0)
				continue; /* not on this kernel */
			char what[64];
			snprintf(what, sizeof what, "/proc/%s", *n);
			if ((r = mask_one(maskfs, t, pass == 1, what, err)) < 0)
				return r;
		}
	}
	return 0;
}

static int build_sys(int rootfd, const struct plan *plan, const struct spec *s, struct pd_err *err)
{
	static const char *const opts[] = { NULL };
	static const char *const empty[] = { "mode", "0555", "size", "4k", NULL };
	const unsigned attrs =
		MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
	/* sysfs needs a network namespace owned by our user namespace; an image
	 * build shares the host's and a sandbox behind the egress gateway joins
	 * one paddock made (owned by the host, so that its root cannot change
	 * routes or firewall): both get an empty, read-only /sys instead. */
	if (s->network == PD_NET_HOST_BUILD || plan->joined_netns)
		return mount_new(rootfd, "/sys", "tmpfs", empty, attrs, err);
	return mount_new(rootfd, "/sys", "sysfs", opts, attrs, err);
}

/* A credential name that is a symlink (dotfile managers make .aws ->
 * dotfiles/aws): mask what it resolves to inside the sandbox, once every
 * mount is attached. A target that does not resolve inside the sandbox is
 * unreachable there; any other failure refuses to start. */
static int mask_symlink_hit(int rootfd, int maskfs, const char *target, const char *rel,
			    struct pd_err *err)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", target, rel) >= (int)sizeof path)
		return pd_err_set(err, ENAMETOOLONG, "mask", "%s/%s", target, rel);
	_cleanup_close_ int t = sys_openat2(rootfd, path, O_PATH | O_CLOEXEC, RESOLVE_ROOT);
	if (t < 0 && errno == ENOENT)
		return 0;
	if (t < 0)
		return pd_err_errno(err, "mask", "resolving the credential symlink %s", path);
	struct stat st;
	if (fstat(t, &st) < 0)
		return pd_err_errno(err, "mask", "stat %s", path);
	return mask_one(maskfs, t, S_ISDIR(st.st_mode), path, err);
}

static int build_mounts(struct plan *plan, int rootfd, int maskfs, const int *fds,
			struct pd_err *err)
{
	for (size_t i = 0; i < plan->n_mounts; i++) {
		struct plan_mount *pm = &plan->mounts[i];
		int mfd = fds[FD_MOUNT0 + i];
		int r = attach_at(mfd, rootfd, pm->m->target, pm->is_dir, err);
		if (r < 0)
			return r;
		/* mfd now names the attached mount's root: resolve hits beneath it,
		 * never through a symlink and never out of it. */
		for (size_t h = 0; h < pm->hits.n; h++) {
			const struct deny_hit *hit = &pm->hits.v[h];
			_cleanup_close_ int t = sys_openat2(
				mfd, hit->relpath, O_PATH | O_NOFOLLOW | O_CLOEXEC,
				RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
			if (t < 0) {
				if (errno == ENOENT)
					continue; /* gone since the scan: nothing to hide */
				if (errno == ELOOP)
					continue; /* a symlink: second pass below */
				return pd_err_errno(err, "mask", "%s/%s", pm->m->target,
						    hit->relpath);
			}
			char what[512];
			snprintf(what, sizeof what, "%s/%s", pm->m->target, hit->relpath);
			struct stat st;
			if (fstat(t, &st) < 0)
				return pd_err_errno(err, "mask", "stat %s", what);
			if (S_ISLNK(st.st_mode))
				continue;
			if ((r = mask_one(maskfs, t, S_ISDIR(st.st_mode), what, err)) < 0)
				return r;
		}
	}
	for (size_t i = 0; i < plan->n_mounts; i++) {
		struct plan_mount *pm = &plan->mounts[i];
		for (size_t h = 0; h < pm->hits.n; h++) {
			const struct deny_hit *hit = &pm->hits.v[h];
			struct stat st;
			if (fstatat(fds[FD_MOUNT0 + i], hit->relpath, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISLNK(st.st_mode))
				continue;
			int r = mask_symlink_hit(rootfd, maskfs, pm->m->target, hit->relpath, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int rootfs_build(struct plan *plan, int rootfd, const int *fds, struct pd_err *err)
{
	int r;
	if ((r = build_proc(rootfd, fds[FD_MASKFS], err)) < 0 ||
	    (r = build_sys(rootfd, plan, plan->spec, err)) < 0 || (r = build_dev(rootfd, err)) < 0 ||
	    (r = build_mounts(plan, rootfd, fds[FD_MASKFS], fds, err)) < 0)
		return r;
	if (plan->spec->workspace == PD_WS_NONE) {
		_cleanup_close_ int ws = mkpath_at(rootfd, "/workspace", true, 0755);
		(void)ws;
	}
	return 0;
}

int rootfs_pivot(int rootfd, struct pd_err *err)
{
	if (fchdir(rootfd) < 0)
		return pd_err_errno(err, "pivot_root", "entering the new root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return pd_err_errno(err, "pivot_root", "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return pd_err_errno(err, "pivot_root", "detaching the host's root");
	if (chdir("/") < 0)
		return pd_err_errno(err, "pivot_root", "chdir /");
	return 0;
}
