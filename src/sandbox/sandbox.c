/* sandbox.c: the parent side of the ns backend.
 *
 * The parent is privileged (root on the host). It prepares everything that
 * needs host privileges as detached mounts held by file descriptors, so that
 * nothing is ever attached to the host's mount tree and everything vanishes
 * with the process, even on SIGKILL:
 *
 *   1. resolve mount sources safely and scan them for credential files
 *   2. scratch: a tmpfs (size = --disk) holding the overlay's upper and work
 *      directories and the workspace clone
 *   3. cgroup with the limits, and a watcher that removes it if we die
 *   4. clone3 the child into new user, mount, pid, ipc, uts, net and time
 *      namespaces; it waits for us
 *   5. write its uid/gid maps (root inside = an unprivileged host range)
 *   6. build the root: the image as an idmapped read-only mount, overlayfs on
 *      top of it with the scratch upper; bind mounts idmapped so the source
 *      owner is root inside; send all of them to the child
 *   7. wait for the child to report READY (or an error, which we return)
 *
 * The child side is init.c (pid 1) and rootfs.c (mount assembly). */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/image.h"
#include "sandbox/cgroup.h"
#include "sandbox/fence.h"
#include "sandbox/internal.h"
#include "sandbox/mountapi.h"
#include "sandbox/workspace.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif


/* ---- messages ---------------------------------------------------------- */

int msg_send(int sock, const struct msg *m, const int *fds, size_t n_fds)
{
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof *m };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n_fds > FDS_PER_MSG)
		return -E2BIG;
	if (n_fds) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	ssize_t r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == (ssize_t)sizeof *m ? 0 : -EIO;
}

int msg_recv(int sock, struct msg *m, int *fds, size_t max_fds, size_t *n_fds)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof u.buf };
	if (n_fds)
		*n_fds = 0;
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -EPIPE;
	size_t got = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *in = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			if (got < max_fds)
				fds[got++] = in[i];
			else
				close(in[i]); /* more than we asked for: drop */
		}
	}
	if (n_fds)
		*n_fds = got;
	else
		for (size_t i = 0; i < got; i++)
			close(fds[i]);
	if (r != (ssize_t)sizeof *m || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return -EBADMSG;
	m->err.layer[sizeof m->err.layer - 1] = '\0';
	m->err.msg[sizeof m->err.msg - 1] = '\0';
	m->err.hint[sizeof m->err.hint - 1] = '\0';
	return 0;
}

/* ---- small helpers ----------------------------------------------------- */

static int write_file_at(const char *path, const char *data, struct pd_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, "userns", "opening %s", path);
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n)
		return pd_err_errno(err, "userns", "writing %s", path);
	return 0;
}

/* A user namespace whose only mapping is inside `from` -> host `to`, for an
 * idmapped mount: a file owned by `from` on disk appears owned by host uid
 * `to` (the sandbox's root). Made by a short-lived child that we discard. */
static int userns_single_map(uid_t from_uid, gid_t from_gid, uid_t to, struct pd_err *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return pd_err_errno(err, "mount", "pipe");
	struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return pd_err_errno(err, "userns", "creating a user namespace for an idmapped mount");
	}
	if (pid == 0) {
		char c;
		close(pfd[1]);
		(void)!read(pfd[0], &c, 1);
		_exit(0);
	}
	close(pfd[0]);
	int r = 0, fd = -1;
	char path[64], map[64];
	snprintf(map, sizeof map, "%u %u 1\n", from_uid, to);
	snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
	if ((r = write_file_at(path, map, err)) < 0)
		goto out;
	snprintf(map, sizeof map, "%u %u 1\n", from_gid, to);
	snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
	if ((r = write_file_at(path, map, err)) < 0)
		goto out;
	snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = pd_err_errno(err, "userns", "opening %s", path);
out:
	close(pfd[1]);
	waitpid(pid, NULL, 0);
	return r < 0 ? r : fd;
}

/* Open a mount source with one resolution, by the kernel, refusing a
 * symlink anywhere on the way: the object opened is the object mounted and
 * the one checked against the deny list (by the path the kernel reports for
 * the fd). Resolving a path twice (realpath, then open) would let a
 * concurrent swap of a component for a symlink redirect the mount. */
static int open_source(const struct pd_mount *m, struct plan_mount *pm,
		       const char *const *unmask, struct pd_err *err)
{
	int fd = sys_openat2(AT_FDCWD, m->source, O_PATH | O_CLOEXEC,
			     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd < 0 && errno == ELOOP) {
		_cleanup_free_ char *real = realpath(m->source, NULL);
		pd_err_set(err, ELOOP, "mount", "--mount %s:%s: the source path goes through a "
						"symlink", m->source, m->target);
		return pd_err_hint(err, "give the real path%s%s; symlinks are not followed",
				   real ? ", " : "", real ? real : "");
	}
	if (fd < 0)
		return pd_err_errno(err, "mount", "--mount %s:%s: opening the source", m->source,
				    m->target);
	_cleanup_close_ int owned = fd;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pd_err_errno(err, "mount", "stat %s", m->source);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return pd_err_set(err, EINVAL, "mount",
				  "--mount %s:%s: the source is neither a directory nor a file",
				  m->source, m->target);
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return pd_err_errno(err, "mount", "--mount %s: reading the opened path", m->source);
	path[n] = '\0';
	if (deny_match(path[1] ? path + 1 : path, unmask)) {
		pd_err_set(err, EACCES, "mount",
			   "--mount %s:%s: the source is a credential path on the deny list",
			   m->source, m->target);
		return pd_err_hint(err, "if you really mean it, add --unmask with the name");
	}
	pm->src_fd = steal_fd(&owned);
	pm->is_dir = S_ISDIR(st.st_mode);
	pm->owner_uid = st.st_uid;
	pm->owner_gid = st.st_gid;
	return 0;
}

/* v1 cgroups: open each leaf's `tasks` file for the child, which joins by
 * writing "0" itself. A task moving itself does not take the threadgroup
 * rwsem, so it avoids the RCU grace period (~10 ms here) that writing
 * another pid to cgroup.procs costs; the permission check uses the
 * credentials of whoever opened the file (us). */
static int open_cgroup_tasks(struct plan *p, struct pd_cgroup *cg, struct pd_err *err)
{
	for (const char *const *path = pd_cgroup_paths(cg); path && *path; path++) {
		if (p->n_cg_tasks >= ARRAY_SIZE(p->cg_tasks))
			return pd_err_set(err, E2BIG, "cgroup", "too many cgroup hierarchies");
		char f[PATH_MAX];
		snprintf(f, sizeof f, "%s/tasks", *path);
		int fd = open(f, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return pd_err_errno(err, "cgroup", "opening %s", f);
		p->cg_tasks[p->n_cg_tasks++] = fd;
	}
	return 0;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n_cg_tasks; i++)
		close(p->cg_tasks[i]);
	p->n_cg_tasks = 0;
	for (size_t i = 0; i < p->n_mounts; i++) {
		if (p->mounts[i].src_fd >= 0)
			close(p->mounts[i].src_fd);
		deny_hits_free(&p->mounts[i].hits);
	}
	free(p->mounts);
	p->mounts = NULL;
	p->n_mounts = 0;
}

static int plan_mounts(struct plan *p, const struct spec *s, struct pd_err *err)
{
	p->mounts = calloc(s->n_mounts ? s->n_mounts : 1, sizeof *p->mounts);
	if (!p->mounts)
		return pd_err_set(err, ENOMEM, "mount", "out of memory");
	for (size_t i = 0; i < s->n_mounts; i++) {
		struct plan_mount *pm = &p->mounts[p->n_mounts++];
		pm->src_fd = -1;
		pm->m = &s->mounts[i];
		int r = open_source(pm->m, pm, (const char *const *)s->unmask, err);
		if (r < 0)
			return r;
		if (pm->is_dir) {
			_cleanup_close_ int dfd =
				openat(pm->src_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd < 0)
				return pd_err_errno(err, "mount", "opening %s", pm->m->source);
			r = deny_scan(dfd, (const char *const *)s->unmask, &pm->hits, err);
			if (r < 0) {
				pd_err_prefix(err, "--mount %s", pm->m->source);
				return r;
			}
		}
	}
	return 0;
}

/* ---- detached mounts built by the parent ------------------------------- */

/* The scratch tmpfs: upper/, work/ and upper/workspace, owned by the
 * sandbox's root on the host. */
static int make_scratch(const struct spec *s, struct pd_err *err)
{
	char size[32];
	snprintf(size, sizeof size, "%llu", (unsigned long long)s->disk);
	const char *opts[] = { "size", size, "mode", "0700", NULL };
	int fd = mount_fs_new("tmpfs", opts, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, err);
	if (fd < 0) {
		pd_err_prefix(err, "writable layer");
		return fd;
	}
	uid_t u = s->uid_base;
	/* upper/workspace stays root's until it is populated (git refuses a
	 * directory owned by someone else); sandbox_start hands it over. */
	if (mkdirat(fd, "upper", 0755) < 0 || mkdirat(fd, "work", 0700) < 0 ||
	    mkdirat(fd, "upper/workspace", 0755) < 0 || fchownat(fd, "upper", u, u, 0) < 0) {
		int r = pd_err_errno(err, "mount", "preparing the writable layer");
		close(fd);
		return r;
	}
	return fd;
}

/* Empty, unreadable objects to mask credential files and /proc entries: a
 * directory and a file, mode 000, owned by host root, which is not mapped
 * inside, so even root in the sandbox cannot read them. */
static int make_maskfs(struct pd_err *err)
{
	const char *opts[] = { "size", "16k", "mode", "0755", NULL };
	int fd = mount_fs_new("tmpfs", opts, 0, err);
	if (fd < 0)
		return fd;
	int f;
	if (mkdirat(fd, "d", 0) < 0 || (f = openat(fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0)) < 0) {
		int r = pd_err_errno(err, "mount", "preparing the mask filesystem");
		close(fd);
		return r;
	}
	close(f);
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
	if (sys_mount_setattr(fd, "", AT_EMPTY_PATH, &a) < 0) {
		int r = pd_err_errno(err, "mount", "making the mask filesystem read-only");
		close(fd);
		return r;
	}
	return fd;
}

/* Clone `src` (recursively) as a detached mount with the given attributes,
 * idmapped through userns_fd unless it is -1. */
static int clone_idmapped(int src_fd, int userns_fd, unsigned attrs, const char *what,
			  struct pd_err *err)
{
	int fd = sys_open_tree(src_fd, "",
			       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (fd < 0)
		return pd_err_errno(err, "mount", "cloning %s", what);
	struct mount_attr a = { .attr_set = attrs };
	if (userns_fd >= 0) {
		a.attr_set |= MOUNT_ATTR_IDMAP;
		a.userns_fd = (unsigned long long)userns_fd;
	}
	if (sys_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a) < 0) {
		int r = pd_err_errno(err, "mount", "idmapping %s", what);
		pd_err_hint(err, "paddock needs idmapped mounts (Linux >= 5.12, and >= 6.3 "
				 "for tmpfs); the filesystem may not support them");
		close(fd);
		return r;
	}
	return fd;
}

/* The root: overlayfs over the idmapped image. *lower_out receives the
 * detached lower mount, which the caller closes once the sandbox runs: its
 * teardown waits for an RCU grace period, which need not delay the start. */
static int make_root(const struct spec *s, int scratch, int userns_fd, int *lower_out,
		     struct pd_err *err)
{
	_cleanup_close_ int img = open(s->image, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (img < 0)
		return pd_err_errno(err, "image", "opening image %s", s->image);
	if (s->rootfs_writable) /* image build: the tree itself, writable */
		return clone_idmapped(img, userns_fd, MOUNT_ATTR_NODEV, "the image", err);
	_cleanup_close_ int lower =
		clone_idmapped(img, userns_fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV, "the image",
			       err);
	if (lower < 0)
		return lower;
	char lowerp[64], upperp[64], workp[64];
	snprintf(lowerp, sizeof lowerp, "/proc/self/fd/%d", lower);
	snprintf(upperp, sizeof upperp, "/proc/self/fd/%d/upper", scratch);
	snprintf(workp, sizeof workp, "/proc/self/fd/%d/work", scratch);
	const char *opts[] = { "lowerdir", lowerp, "upperdir", upperp, "workdir", workp, NULL };
	int fd = mount_fs_new("overlay", opts, MOUNT_ATTR_NODEV, err);
	if (fd < 0)
		pd_err_prefix(err, "root filesystem");
	else
		*lower_out = steal_fd(&lower);
	return fd;
}

/* ---- workspace ---------------------------------------------------------- */

/* git needs a real path for the clone (it resolves /proc/self/fd links), and
 * the scratch tmpfs has none: it is a detached mount. So a short-lived child
 * enters a private mount namespace, attaches a clone of the scratch mount at
 * <state>/mnt there (invisible to the host, gone when the child exits) and
 * populates the workspace through that path. */
struct populate_result {
	struct pd_err err;
	char warning[256];
	char head[65]; /* the workspace's HEAD after populating, or "" */
};

/* Credential files the repository itself tracks came with the clone: they
 * are in its history, so masking the working copy would hide nothing. Name
 * them in a warning instead. */
static void tracked_credentials(int ws, const char *const *unmask, char *out, size_t len)
{
	struct deny_hits hits = { 0 };
	struct pd_err e;
	out[0] = '\0';
	if (deny_scan(ws, unmask, &hits, &e) < 0 || hits.n == 0) {
		deny_hits_free(&hits);
		return;
	}
	int n = snprintf(out, len, "the repository tracks credential files, which are in "
				   "/workspace and its history:");
	for (size_t i = 0; i < hits.n && n > 0 && (size_t)n < len; i++)
		n += snprintf(out + n, len - (size_t)n, "%s %s", i ? "," : "", hits.v[i].relpath);
	deny_hits_free(&hits);
}

static int populate_workspace(const struct spec *s, int scratch, char *warning, size_t wlen,
			      char head[65], struct pd_err *err)
{
	char mnt[PATH_MAX], dest[PATH_MAX + 32];
	snprintf(mnt, sizeof mnt, "%s", image_state_dir());
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		return pd_err_errno(err, "workspace", "creating %s", mnt);
	strncat(mnt, "/mnt", sizeof mnt - strlen(mnt) - 1);
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		return pd_err_errno(err, "workspace", "creating %s", mnt);
	snprintf(dest, sizeof dest, "%s/upper/workspace", mnt);
	_cleanup_close_ int view = sys_open_tree(scratch, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
							  AT_EMPTY_PATH);
	if (view < 0)
		return pd_err_errno(err, "workspace", "cloning the writable layer");
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return pd_err_errno(err, "workspace", "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return pd_err_errno(err, "workspace", "fork");
	}
	if (pid == 0) {
		struct populate_result res = { 0 };
		struct pd_err *e = &res.err;
		int r;
		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    sys_move_mount(view, "", AT_FDCWD, mnt, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
			r = pd_err_errno(e, "workspace", "attaching the writable layer privately");
		} else {
			int d = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			r = d < 0 ? pd_err_errno(e, "workspace", "opening %s", dest)
				  : workspace_populate(s->workspace_src, d, dest, s->uid_base,
						       s->uid_base, (const char *const *)s->unmask,
						       e);
			if (r == 0)
				tracked_credentials(d, (const char *const *)s->unmask, res.warning,
						    sizeof res.warning);
			if (r == 0)
				r = workspace_head(dest, res.head, e);
		}
		(void)!write(pfd[1], &res, sizeof res);
		_exit(r < 0 ? 1 : 0);
	}
	close(pfd[1]);
	struct populate_result res;
	ssize_t n;
	do
		n = read(pfd[0], &res, sizeof res);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (n != (ssize_t)sizeof res)
		return ok ? pd_err_set(err, EIO, "workspace", "no report from the workspace step")
			  : pd_err_set(err, EIO, "workspace", "preparing the workspace failed");
	struct pd_err *e = &res.err;
	e->layer[sizeof e->layer - 1] = e->msg[sizeof e->msg - 1] = e->hint[sizeof e->hint - 1] = 0;
	res.warning[sizeof res.warning - 1] = '\0';
	if (!ok) {
		if (err)
			*err = *e;
		return -(e->code > 0 ? e->code : EIO);
	}
	snprintf(warning, wlen, "%s", res.warning);
	res.head[sizeof res.head - 1] = '\0';
	snprintf(head, 65, "%s", res.head);
	return 0;
}

/* ---- watcher ------------------------------------------------------------ */

/* A small process in its own session that outlives us if we are killed: when
 * its pipe reaches end of file without the 'done' byte, it removes the
 * sandbox's cgroups. Mounts and the scratch tmpfs need no such help: they
 * are held only by file descriptors and namespaces that die with us. */
static pid_t start_watcher(struct pd_cgroup *cg, void (*abandoned)(void), int *wfd_out,
			   struct pd_err *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return pd_err_errno(err, "cgroup", "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return pd_err_errno(err, "cgroup", "fork");
	}
	if (pid == 0) {
		close(pfd[1]);
		setsid();
		if (chdir("/") < 0)
			_exit(1);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		/* Collect cgroups left by paddocks killed earlier: here, in
		 * parallel with the sandbox's start, not on its critical path. */
		pd_cgroup_gc();
		char c = 0;
		ssize_t n;
		do
			n = read(pfd[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && c == 'd')
			_exit(0);
		pd_cgroup_remove_paths(pd_cgroup_paths(cg));
		if (abandoned)
			abandoned();
		_exit(0);
	}
	close(pfd[0]);
	*wfd_out = pfd[1];
	return pid;
}

/* ---- start -------------------------------------------------------------- */

static int send_fds(int sock, const int *fds, size_t n)
{
	for (size_t off = 0; off < n; off += FDS_PER_MSG) {
		size_t k = n - off < FDS_PER_MSG ? n - off : FDS_PER_MSG;
		struct msg m = { .type = MSG_FDS, .n_fds = (uint32_t)k };
		int r = msg_send(sock, &m, fds + off, k);
		if (r < 0)
			return r;
	}
	return 0;
}

static int setup_child(struct sandbox *sb, const struct spec *s, int scratch, int maskfs,
		       struct pd_err *err)
{
	char path[64], map[64];
	int r;
	snprintf(map, sizeof map, "0 %u %u\n", s->uid_base, PD_UID_RANGE);
	snprintf(path, sizeof path, "/proc/%d/uid_map", sb->pid);
	if ((r = write_file_at(path, map, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/proc/%d/gid_map", sb->pid);
	if ((r = write_file_at(path, map, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/proc/%d/ns/user", sb->pid);
	_cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return pd_err_errno(err, "userns", "opening %s", path);

	size_t n = FD_MOUNT0 + sb->plan.n_mounts;
	_cleanup_free_ int *fds = calloc(n, sizeof *fds);
	if (!fds)
		return pd_err_set(err, ENOMEM, "mount", "out of memory");
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	fds[FD_MASKFS] = maskfs;
	r = fds[FD_ROOT] = make_root(s, scratch, userns, &sb->lower, err);
	for (size_t i = 0; r >= 0 && i < sb->plan.n_mounts; i++) {
		struct plan_mount *pm = &sb->plan.mounts[i];
		/* The source's owner becomes root inside, so the owner's files are
		 * usable and what the sandbox writes belongs to the owner. Never
		 * for a source owned by host root: writes would create host-root
		 * files; such a source is mounted unmapped (its files show as
		 * nobody, and the sandbox writes as its own unprivileged uid). */
		_cleanup_close_ int map_ns = -1;
		if (pm->owner_uid != 0 && pm->owner_gid != 0) {
			map_ns = userns_single_map(pm->owner_uid, pm->owner_gid, s->uid_base, err);
			if (map_ns < 0) {
				r = map_ns;
				break;
			}
		}
		unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
		if (!pm->m->writable)
			attrs |= MOUNT_ATTR_RDONLY;
		r = fds[FD_MOUNT0 + i] = clone_idmapped(pm->src_fd, map_ns, attrs, pm->m->source, err);
	}
	if (r >= 0) {
		r = send_fds(sb->sock, fds, n);
		if (r < 0)
			pd_err_set(err, -r, "sandbox", "sending mounts to the sandbox");
	}
	for (size_t i = 0; i < n; i++)
		if (i != FD_MASKFS && fds[i] >= 0)
			close(fds[i]);
	if (r < 0)
		return r;
	struct msg go = { .type = MSG_GO };
	if ((r = msg_send(sb->sock, &go, NULL, 0)) < 0)
		return pd_err_set(err, -r, "sandbox", "starting the sandbox");
	return 0;
}

static int wait_ready(struct sandbox *sb, const struct spec *s, struct pd_err *err)
{
	struct msg m;
	int fd = -1;
	size_t nfd = 0;
	int r = msg_recv(sb->sock, &m, &fd, 1, &nfd);
	if (r < 0)
		return pd_err_set(err, r == -EPIPE ? ECHILD : -r, "sandbox",
				  "the sandbox exited during setup");
	if (m.type == MSG_ERR) {
		if (nfd)
			close(fd);
		if (err)
			*err = m.err;
		if (!m.err.msg[0])
			pd_err_set(err, EIO, "sandbox", "setup failed");
		return -(m.err.code > 0 ? m.err.code : EIO);
	}
	if (m.type != MSG_READY || (s->tty && nfd != 1) || (!s->tty && nfd != 0)) {
		if (nfd)
			close(fd);
		return pd_err_set(err, EPROTO, "sandbox", "unexpected message from the sandbox");
	}
	sb->pty = s->tty ? fd : -1;
	if (m.landlock_abi == 0) {
		size_t n = strlen(sb->warning);
		snprintf(sb->warning + n, sizeof sb->warning - n, "%s%s", n ? "; " : "",
			 "Landlock is not available on this kernel: the sandbox runs without it "
			 "(use --strict to refuse)");
	}
	return 0;
}

static void make_name(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, len, "run-%d-%lx%lx", getpid(), (unsigned long)ts.tv_sec & 0xffff,
		 (unsigned long)ts.tv_nsec);
}

int sandbox_check_root(struct pd_err *err)
{
	if (geteuid() == 0)
		return 0;
	pd_err_set(err, EPERM, "privileges",
		   "paddock must run as root: it maps the sandbox's root to an unprivileged "
		   "uid range and builds idmapped mounts");
	return pd_err_hint(err, "run it with sudo");
}

/* A named sandbox's directory: <dir>/upper and <dir>/work on the host's disk
 * (the files outlive stop and start). <dir> is root's, 0700: nothing of the
 * sandbox (setuid files of its uid range included) is reachable by host
 * users. Created on the first start. */
static int open_persist_dir(const struct spec *s, const struct sandbox_persist *p,
			    struct pd_err *err)
{
	if (p->populate && mkdir(p->dir, 0700) < 0 && errno != EEXIST)
		return pd_err_errno(err, "sandbox", "creating %s", p->dir);
	_cleanup_close_ int fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, "sandbox", "opening %s", p->dir);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077))
		return pd_err_set(err, EPERM, "sandbox", "%s must be a directory of root's, mode 0700",
				  p->dir);
	if (p->populate) {
		uid_t u = s->uid_base;
		if ((mkdirat(fd, "upper", 0755) < 0 && errno != EEXIST) ||
		    (mkdirat(fd, "work", 0700) < 0 && errno != EEXIST) ||
		    (mkdirat(fd, "upper/workspace", 0755) < 0 && errno != EEXIST) ||
		    fchownat(fd, "upper", u, u, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(err, "sandbox", "preparing %s", p->dir);
	} else if (faccessat(fd, "upper", F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
		   faccessat(fd, "work", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		return pd_err_errno(err, "sandbox", "%s has no upper/ or work/", p->dir);
	}
	return steal_fd(&fd);
}

static int start_impl(const struct spec *s, const struct sandbox_io *io,
		      const struct sandbox_persist *persist, struct sandbox **out,
		      struct pd_err *err)
{
	int r = spec_validate(s, err);
	if (r < 0)
		return r;
	if (!s->image)
		return pd_err_set(err, EINVAL, "image", "no image given");
	if ((r = sandbox_check_root(err)) < 0)
		return r;
	struct sandbox *sb = calloc(1, sizeof *sb);
	if (!sb)
		return pd_err_set(err, ENOMEM, "sandbox", "out of memory");
	sb->pid = -1;
	sb->pidfd = sb->sock = sb->pty = sb->watch_fd = sb->lower = -1;
	sb->watcher = -1;
	sb->plan.spec = s;
	sb->plan.io = *io;
	sb->plan.persistent = sb->plan.idle = persist != NULL;
	sb->plan.resolv_conf = persist ? persist->resolv_conf : io->resolv_conf;
	sb->plan.ca_pem = persist ? persist->ca_pem : io->ca_pem;
	_cleanup_close_ int scratch = -1, maskfs = -1, ownnet = -1;
	int sp[2] = { -1, -1 };
	bool populate = persist ? persist->populate : true;

	/* the seccomp filter, compiled once here for pid 1 and the command */
	if ((r = pd_seccomp_prepare(err)) < 0)
		goto fail;
	/* 1. mount sources and their credential files */
	if ((r = plan_mounts(&sb->plan, s, err)) < 0)
		goto fail;
	/* 2. the writable layer and the workspace */
	if ((r = scratch = persist ? open_persist_dir(s, persist, err) : make_scratch(s, err)) < 0)
		goto fail;
	if ((r = maskfs = make_maskfs(err)) < 0)
		goto fail;
	if (populate && s->workspace == PD_WS_AUTO && s->workspace_src &&
	    (r = populate_workspace(s, scratch, sb->warning, sizeof sb->warning, sb->ws_head,
				    err)) < 0)
		goto fail;
	if (populate &&
	    fchownat(scratch, "upper/workspace", s->uid_base, s->uid_base, AT_SYMLINK_NOFOLLOW) < 0) {
		r = pd_err_errno(err, "workspace", "handing the workspace to the sandbox");
		goto fail;
	}
	/* 3. cgroup and its watcher (a named sandbox has none: the daemon
	 * reconciles after a crash) */
	char name[64];
	if (persist)
		snprintf(name, sizeof name, "%s", persist->cg_name);
	else
		make_name(name, sizeof name);
	struct pd_limits lim = { .memory = s->memory, .pids = s->pids, .cpus_milli = s->cpus_milli };
	if ((r = pd_cgroup_create(name, &lim, &sb->cg, err)) < 0)
		goto fail;
	if (!persist && (r = sb->watcher = start_watcher(sb->cg, io->abandoned, &sb->watch_fd, err)) < 0)
		goto fail;
	/* 4. the child, in its new namespaces */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		r = pd_err_errno(err, "sandbox", "socketpair");
		goto fail;
	}
	sb->sock = sp[0];
	sb->plan.sock = sp[1];
	sb->plan.watch_fd = sb->watch_fd;
	struct clone_args ca = {
		.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
			 CLONE_NEWUTS | CLONE_NEWTIME | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&sb->pidfd,
		.exit_signal = SIGCHLD,
	};
	/* A network namespace paddock made (egress) is joined, not created:
	 * it belongs to the host's user namespace, so the sandbox's root cannot
	 * change its routes or firewall. setns affects only this thread and is
	 * undone right after the clone. */
	int netns = persist ? persist->netns_fd : io->join_netns ? io->netns_fd : -1;
	sb->plan.joined_netns = netns >= 0;
	if (netns >= 0) {
		ownnet = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ownnet < 0 || setns(netns, CLONE_NEWNET) < 0) {
			r = pd_err_errno(err, "network", "joining the sandbox's network namespace");
			goto fail;
		}
	} else if (s->network != PD_NET_HOST_BUILD) {
		ca.flags |= CLONE_NEWNET;
	}
	int cgfd = pd_cgroup_v2_fd(sb->cg);
	if (cgfd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cgfd;
	} else if ((r = open_cgroup_tasks(&sb->plan, sb->cg, err)) < 0) {
		goto fail;
	}
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	int clone_errno = errno;
	if (pid != 0 && ownnet >= 0 && setns(ownnet, CLONE_NEWNET) < 0)
		abort(); /* cannot happen; a daemon left in a sandbox's netns must not go on */
	errno = clone_errno;
	if (pid < 0) {
		r = pd_err_errno(err, "namespaces", "creating the sandbox's namespaces");
		pd_err_hint(err, "paddock needs user namespaces (kernel.unprivileged_userns_clone, "
				 "user.max_user_namespaces) and time namespaces (Linux >= 5.6)");
		goto fail;
	}
	if (pid == 0) {
		close(sp[0]);
		sandbox_child(&sb->plan); /* never returns */
	}
	sb->pid = pid;
	for (size_t i = 0; i < sb->plan.n_cg_tasks; i++)
		close(sb->plan.cg_tasks[i]);
	sb->plan.n_cg_tasks = 0;
	close(sp[1]);
	sp[1] = -1;
	sb->plan.sock = -1;
	/* 5-6. maps, cgroup, root and mounts */
	if ((r = setup_child(sb, s, scratch, maskfs, err)) < 0)
		goto fail;
	/* 7. the fence is up and the command started, or we learn why not */
	if ((r = wait_ready(sb, s, err)) < 0)
		goto fail;
	plan_free(&sb->plan);
	if (sb->lower >= 0)
		close(steal_fd(&sb->lower));
	if (proc_start_time(sb->pid, &sb->start_time) < 0) {
		r = pd_err_errno(err, "sandbox", "reading the start time of pid %d", sb->pid);
		goto fail;
	}
	*out = sb;
	return 0;
fail:
	if (sp[1] >= 0)
		close(sp[1]);
	sandbox_free(sb);
	return r < 0 ? r : -EIO;
}

int sandbox_start(const struct spec *s, const struct sandbox_io *io, struct sandbox **out,
		  struct pd_err *err)
{
	return start_impl(s, io, NULL, out, err);
}

int sandbox_start_persistent(const struct spec *s, const struct sandbox_persist *p,
			     struct sandbox **out, struct pd_err *err)
{
	static const struct sandbox_io none = { .in = -1, .out = -1, .err = -1 };
	if (!p || !p->dir || !p->cg_name)
		return pd_err_set(err, EINVAL, "sandbox", "sandbox_start_persistent: bad arguments");
	return start_impl(s, &none, p, out, err);
}

int proc_start_time(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* p ends field 2; field 22 is starttime */
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
		if (++field == 22) {
			*out = strtoull(tok, NULL, 10);
			return 0;
		}
	return -EIO;
}

/* Exited but not yet reaped: /proc still shows it, with its start time. */
static bool proc_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (n <= 0)
		return true;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x';
}

int sandbox_adopt(const struct spec *s, const struct sandbox_persist *p, pid_t pid,
		  uint64_t start_time, struct sandbox **out, struct pd_err *err)
{
	uint64_t st = 0;
	if (pid <= 0 || proc_start_time(pid, &st) < 0 || st != start_time || proc_zombie(pid))
		return pd_err_set(err, ESRCH, "sandbox", "pid %d is gone", (int)pid);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return pd_err_errno(err, "sandbox", "pidfd_open %d", (int)pid);
	/* the pid may have been reused between the check and the open */
	if (proc_start_time(pid, &st) < 0 || st != start_time) {
		close(pidfd);
		return pd_err_set(err, ESRCH, "sandbox", "pid %d is gone", (int)pid);
	}
	struct sandbox *sb = calloc(1, sizeof *sb);
	if (!sb) {
		close(pidfd);
		return pd_err_set(err, ENOMEM, "sandbox", "out of memory");
	}
	sb->pid = pid;
	sb->pidfd = pidfd;
	sb->sock = sb->pty = sb->watch_fd = sb->lower = -1;
	sb->watcher = -1;
	sb->adopted = true;
	sb->start_time = start_time;
	sb->plan.spec = s;
	sb->plan.persistent = sb->plan.idle = true;
	int r = pd_cgroup_open(p->cg_name, &sb->cg, err);
	if (r < 0) {
		sandbox_free(sb);
		return r;
	}
	*out = sb;
	return 0;
}

pid_t sandbox_pid(const struct sandbox *sb) { return sb->pid; }
const char *sandbox_workspace_head(const struct sandbox *sb) { return sb->ws_head; }
uint64_t sandbox_start_time(const struct sandbox *sb) { return sb->start_time; }
void sandbox_usage(const struct sandbox *sb, uint64_t *mem, uint64_t *cpu_ns)
{
	pd_cgroup_usage(sb->cg, mem, cpu_ns);
}

void sandbox_release(struct sandbox *sb)
{
	if (!sb)
		return;
	if (sb->pty >= 0)
		close(sb->pty);
	if (sb->sock >= 0)
		close(sb->sock);
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	if (sb->lower >= 0)
		close(sb->lower);
	pd_cgroup_release(sb->cg);
	plan_free(&sb->plan);
	free(sb);
}

int sandbox_pty(const struct sandbox *sb) { return sb->pty; }
int sandbox_pidfd(const struct sandbox *sb) { return sb->pidfd; }
const char *sandbox_warning(const struct sandbox *sb)
{
	return sb->warning[0] ? sb->warning : NULL;
}

int sandbox_signal(struct sandbox *sb, int sig)
{
	if (sb->pidfd < 0 || sb->reaped)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, sb->pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

static int reap(struct sandbox *sb)
{
	if (sb->reaped || sb->pid <= 0)
		return 0;
	if (sb->adopted) { /* maybe not our child: wait for its pidfd */
		struct pollfd p = { .fd = sb->pidfd, .events = POLLIN };
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		sb->reaped = true;
		sb->code = 137;
		/* a subreaper (paddockd) inherited it: collect the zombie */
		siginfo_t si = { 0 };
		if (waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid)
			sb->code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
		return 0;
	}
	siginfo_t si = { 0 };
	int r;
	do
		r = waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	sb->reaped = true;
	if (si.si_code == CLD_EXITED)
		sb->code = si.si_status;
	else
		sb->code = 128 + si.si_status;
	return 0;
}

int sandbox_wait(struct sandbox *sb, int *code, struct pd_err *err)
{
	/* pid 1 reports an exec failure before it exits; anything else on the
	 * socket after READY is ignored. */
	struct msg m;
	bool exec_err = false;
	for (;;) {
		int r = msg_recv(sb->sock, &m, NULL, 0, NULL);
		if (r < 0)
			break;
		if (m.type == MSG_ERR) {
			if (err)
				*err = m.err;
			exec_err = true;
		}
	}
	int r = reap(sb);
	if (r < 0)
		return pd_err_set(err, -r, "sandbox", "waiting for the sandbox");
	*code = sb->code;
	if (!exec_err && err)
		err->msg[0] = '\0';
	if (sb->cg && pd_cgroup_oom_killed(sb->cg) > 0 && err && !exec_err)
		snprintf(err->msg, sizeof err->msg,
			 "the sandbox ran out of memory (limit %llu bytes); raise --memory",
			 (unsigned long long)sb->plan.spec->memory);
	return 0;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	if (sb->pid > 0 && !sb->reaped) {
		sandbox_signal(sb, SIGKILL);
		reap(sb);
	}
	if (sb->pty >= 0)
		close(sb->pty);
	if (sb->sock >= 0)
		close(sb->sock);
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	if (sb->lower >= 0)
		close(sb->lower);
	pd_cgroup_destroy(sb->cg);
	if (sb->watch_fd >= 0) {
		(void)!write(sb->watch_fd, "d", 1);
		close(sb->watch_fd);
	}
	if (sb->watcher > 0)
		waitpid(sb->watcher, NULL, 0);
	plan_free(&sb->plan);
	free(sb);
}
