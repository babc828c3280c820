/* workspace.c: build /workspace as a copy of the owner's directory.
 *
 * Git repository (HEAD exists):
 *   1. `git clone --no-hardlinks` of the top level into dest, drop "origin"
 *      (the host path and push rights stay outside), detach at the source
 *      HEAD if the clone checked out something else;
 *   2. list what differs from HEAD (`git diff-index HEAD`: staged, unstaged,
 *      deleted) and what is untracked and not ignored (`git ls-files
 *      --others --exclude-standard`); delete in dest what is gone from the
 *      work tree, copy the rest (regular files and symlinks) unless the deny
 *      list names it;
 *   3. `git add -A` and one commit "paddock: uncommitted changes" in dest.
 * Repository without commits: `git init` dest, copy the non-ignored files,
 * commit. Not a repository: a bounded recursive copy. Last, chown everything
 * in dest to the sandbox's root.
 *
 * The source repository is only read: every git call there is read-only
 * plumbing (rev-parse, ls-files, diff-index, symbolic-ref; no status, no add,
 * no stash), with GIT_OPTIONAL_LOCKS=0, no system or global config, and
 * fsmonitor and hooks forced off on the command line, which beats the
 * repository's own config. Git runs (common/gitrun.c) from a fixed PATH with
 * a fixed environment, stdin from /dev/null, no inherited fds, cwd "/".
 *
 * Every path is resolved component by component with openat(O_NOFOLLOW) on
 * both sides, so a symlink in the source (or planted in dest by a checkout)
 * never redirects a read or a write. */
#include "sandbox/workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/gitrun.h"
#include "sandbox/deny.h"

#define WS_LAYER "workspace"
#define WS_HINT "use --workspace none or --workspace-mount"
#define WS_COMMIT_MSG "paddock: uncommitted changes"

#define WS_MAX_ENTRIES 200000             /* files, dirs, links copied */
#define WS_MAX_BYTES ((uint64_t)8 << 30)  /* bytes of file content copied */
#define WS_MAX_DEPTH 256                  /* directory levels walked */
#define WS_COPY_BUF ((size_t)128 << 10)
#define WS_REL_MAX ((WS_MAX_DEPTH + 2) * (NAME_MAX + 1))

#define WS_STR_(x) #x
#define WS_STR(x) WS_STR_(x)

struct ws {
	struct gitrun g;        /* git runner: safe.directory list, clone config */
	int clone_cfg_fd;       /* memfd with [safe] directory = ... for clone */
	const char *const *unmask;
	size_t entries; /* copy budget used */
	uint64_t bytes;
	char *buf; /* WS_COPY_BUF bytes for file copies */
	char *rel; /* WS_REL_MAX bytes: relpath during walks */
	struct pd_err *err;
};

static void ws_freep(struct ws **pw)
{
	struct ws *w = *pw;
	if (!w)
		return;
	gitrun_release(&w->g);
	if (w->clone_cfg_fd >= 0)
		close(w->clone_cfg_fd);
	free(w->buf);
	free(w->rel);
	free(w);
}

/* Fail with a message that carries no errno (the reason is in the text),
 * returning `ret`. */
static int ws_fail(struct ws *ws, int ret, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int ws_fail(struct ws *ws, int ret, const char *hint, const char *fmt, ...)
{
	char msg[sizeof ws->err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pd_err_set(ws->err, 0, WS_LAYER, "%s", msg);
	if (hint)
		pd_err_hint(ws->err, "%s", hint);
	return ret;
}

/* ---- running git ------------------------------------------------------ */

/* The shared runner (common/gitrun.c) with this workspace's safe.directory
 * list and clone config; see gitrun_run and gitrun_ok. */
static int git_run(struct ws *ws, const char *dir, const char *const *args, unsigned flags,
		   struct git_res *res)
{
	return gitrun_run(&ws->g, dir, args, flags, res);
}

static int git_ok(struct ws *ws, const char *dir, const char *const *args, unsigned flags,
		  struct git_res *res)
{
	return gitrun_ok(&ws->g, dir, args, flags, res);
}

/* Replace the safe.directory list with the given paths (NULL-terminated). */
static int ws_set_safe(struct ws *ws, const char *const *paths)
{
	return gitrun_set_safe(&ws->g, paths);
}

/* Trust every ancestor of `real` (an absolute canonical path) and itself for
 * the discovery call: the repository top is one of them, not known yet. */
static int ws_safe_ancestors(struct ws *ws, const char *real)
{
	_cleanup_free_ char *copy = strdup(real);
	size_t n = 2;
	for (const char *c = real; *c; c++)
		n += *c == '/';
	_cleanup_free_ const char **v = calloc(n + 1, sizeof *v);
	_cleanup_strv_ char **owned = calloc(n + 1, sizeof *owned);
	if (!copy || !v || !owned)
		return pd_err_set(ws->err, ENOMEM, WS_LAYER, "safe.directory list");
	size_t k = 0;
	for (;;) {
		if (!(owned[k] = strdup(copy)))
			return pd_err_set(ws->err, ENOMEM, WS_LAYER, "safe.directory list");
		v[k] = owned[k];
		k++;
		char *slash = strrchr(copy, '/');
		if (!slash || strcmp(copy, "/") == 0)
			break;
		if (slash == copy)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	return ws_set_safe(ws, v);
}

/* Split git's "\n"-terminated output into exactly `n` lines. */
static int split_lines(struct ws *ws, char *out, char **lines, size_t n)
{
	char *p = out;
	for (size_t i = 0; i < n; i++) {
		char *nl = p ? strchr(p, '\n') : NULL;
		if (!nl)
			return ws_fail(ws, -EIO, NULL, "unexpected output from git rev-parse");
		*nl = '\0';
		lines[i] = p;
		p = nl + 1;
	}
	if (*p)
		return ws_fail(ws, -EIO, NULL,
			       "unexpected output from git rev-parse (newline in a path?)");
	return 0;
}

/* Quote a path as a git config value: in double quotes, '\' and '"'
 * escaped. Newlines cannot be represented: -EINVAL. */
static int cfg_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\n')
			return -EINVAL;
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
	return 0;
}

/* The clone spawns git-upload-pack in the source repository with the -c
 * options stripped (git does that for local transports), so the ownership
 * check there only sees the global config: give the clone a global config in
 * a memfd that trusts exactly these directories. Nothing touches disk. */
static int ws_clone_cfg(struct ws *ws, const char *const *dirs)
{
	_cleanup_close_ int fd = memfd_create("paddock-gitconfig", MFD_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(ws->err, WS_LAYER, "memfd for git config");
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	_cleanup_fclose_ FILE *f = open_memstream(&text, &len);
	if (!f)
		return pd_err_errno(ws->err, WS_LAYER, "git config");
	fputs("[safe]\n", f);
	for (size_t i = 0; dirs[i]; i++) {
		fputs("\tdirectory = ", f);
		if (cfg_quote(f, dirs[i]) < 0)
			return ws_fail(ws, -EINVAL, WS_HINT, "repository path has a newline");
		fputc('\n', f);
	}
	if (fflush(f) != 0)
		return pd_err_errno(ws->err, WS_LAYER, "git config");
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fd, text + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return pd_err_errno(ws->err, WS_LAYER, "writing git config memfd");
		off += (size_t)k;
	}
	snprintf(ws->g.global_cfg_env, sizeof ws->g.global_cfg_env,
		 "GIT_CONFIG_GLOBAL=/proc/%ld/fd/%d", (long)getpid(), fd);
	ws->clone_cfg_fd = steal_fd(&fd);
	return 0;
}

/* ---- paths and copies ------------------------------------------------- */

/* Is `p`, a path printed by git, a plain relative path inside the work tree?
 * Rejects "", absolute paths, empty, "." and ".." components, and any ".git"
 * component (any case): writing into dest/.git would hand the next git call
 * our config and hooks. */
static bool path_ok(const char *p, size_t len)
{
	if (len == 0 || len >= PATH_MAX || p[0] == '/')
		return false;
	size_t depth = 0;
	for (const char *c = p; c < p + len;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && memcmp(c, "..", 2) == 0) ||
		    (n == 4 && strncasecmp(c, ".git", 4) == 0))
			return false;
		if (++depth > WS_MAX_DEPTH)
			return false;
		c += n;
		if (*c == '/')
			c++;
		else
			break;
	}
	return p[len - 1] != '/';
}

/* Open the parent directory of `rel` below `root` without following any
 * symlink; *name points at the last component of rel. In the source (create
 * false) a missing or non-directory component gives 1 ("not there"); in dest
 * (create true) missing directories are made, and a file or symlink where a
 * directory is needed is replaced. Returns 0 with *out an owned fd, 1, or a
 * negative errno with err filled. */
static int open_parent(struct ws *ws, int root, const char *rel, bool create, int *out,
		       const char **name)
{
	_cleanup_close_ int cur = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return pd_err_errno(ws->err, WS_LAYER, "open directory");
	const char *c = rel;
	char comp[NAME_MAX + 1];
	for (;;) {
		size_t n = strcspn(c, "/");
		if (c[n] == '\0') {
			*name = c;
			*out = steal_fd(&cur);
			return 0;
		}
		if (n > NAME_MAX)
			return ws_fail(ws, -ENAMETOOLONG, NULL, "path component too long in '%s'",
				       rel);
		memcpy(comp, c, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && create && (errno == ENOTDIR || errno == ELOOP)) {
			if (unlinkat(cur, comp, 0) < 0)
				return pd_err_errno(ws->err, WS_LAYER,
						    "cannot replace '%s' in '%s'", comp, rel);
			errno = ENOENT;
		}
		if (next < 0 && create && errno == ENOENT) {
			if (mkdirat(cur, comp, 0755) < 0)
				return pd_err_errno(ws->err, WS_LAYER,
						    "cannot create directory for '%s'", rel);
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (!create && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
				return 1;
			return pd_err_errno(ws->err, WS_LAYER, "cannot open directory for '%s'",
					    rel);
		}
		pd_closep(&cur);
		cur = next;
		c += n + 1;
	}
}

/* Remove whatever is at `name` in `dir` (a file, a symlink, or an empty
 * directory); nothing there is fine. */
static int remove_at(struct ws *ws, int dir, const char *name, const char *rel)
{
	if (unlinkat(dir, name, 0) == 0 || errno == ENOENT)
		return 0;
	if ((errno == EISDIR || errno == EPERM) && unlinkat(dir, name, AT_REMOVEDIR) == 0)
		return 0;
	return pd_err_errno(ws->err, WS_LAYER, "cannot replace '%s' in the workspace", rel);
}

static int budget_fail(struct ws *ws, const char *what)
{
	return ws_fail(ws, -E2BIG, WS_HINT, "workspace source has more than %s; too large to copy",
		       what);
}

/* Count one more entry against the budget. */
static int budget_entry(struct ws *ws)
{
	if (++ws->entries > WS_MAX_ENTRIES)
		return budget_fail(ws, WS_STR(WS_MAX_ENTRIES) " entries");
	return 0;
}

/* Copy the regular file `sname` in `sdir` (lstat'ed as *st) to `dname` in
 * `ddir`, mode bits kept minus setuid/setgid. */
static int copy_file(struct ws *ws, int sdir, const char *sname, const struct stat *st, int ddir,
		     const char *dname, const char *rel)
{
	if ((uint64_t)st->st_size > WS_MAX_BYTES - ws->bytes)
		return budget_fail(ws, "8 GiB of files");
	_cleanup_close_ int in =
		openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0) {
		if (errno == ENOENT)
			return 0; /* vanished meanwhile */
		return pd_err_errno(ws->err, WS_LAYER, "cannot open '%s'", rel);
	}
	struct stat now;
	if (fstat(in, &now) < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot stat '%s'", rel);
	if (!S_ISREG(now.st_mode) || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		return 0; /* swapped for something else meanwhile: leave it out */

	int r = remove_at(ws, ddir, dname, rel);
	if (r < 0)
		return r;
	_cleanup_close_ int out =
		openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot create '%s' in the workspace", rel);
	for (;;) {
		ssize_t k = read(in, ws->buf, WS_COPY_BUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pd_err_errno(ws->err, WS_LAYER, "cannot read '%s'", rel);
		if (k == 0)
			break;
		if ((uint64_t)k > WS_MAX_BYTES - ws->bytes)
			return budget_fail(ws, "8 GiB of files");
		ws->bytes += (uint64_t)k;
		for (ssize_t off = 0; off < k;) {
			ssize_t w = write(out, ws->buf + off, (size_t)(k - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return pd_err_errno(ws->err, WS_LAYER, "cannot write '%s'", rel);
			off += w;
		}
	}
	if (fchmod(out, now.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID)) < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot chmod '%s'", rel);
	return 0;
}

/* Recreate the symlink `sname` in `sdir` as `dname` in `ddir`, target
 * unchanged (it is never followed here). */
static int copy_symlink(struct ws *ws, int sdir, const char *sname, int ddir, const char *dname,
			const char *rel)
{
	char target[PATH_MAX];
	ssize_t k = readlinkat(sdir, sname, target, sizeof target);
	if (k < 0) {
		if (errno == ENOENT || errno == EINVAL)
			return 0; /* vanished or no longer a symlink */
		return pd_err_errno(ws->err, WS_LAYER, "cannot read symlink '%s'", rel);
	}
	if ((size_t)k >= sizeof target)
		return ws_fail(ws, -ENAMETOOLONG, NULL,
			       "symlink '%s' has a target that is too long", rel);
	target[k] = '\0';
	int r = remove_at(ws, ddir, dname, rel);
	if (r < 0)
		return r;
	if (symlinkat(target, ddir, dname) < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot create symlink '%s'", rel);
	return 0;
}

/* Copy one non-directory entry: regular files and symlinks; devices, fifos
 * and sockets are skipped. */
static int copy_entry(struct ws *ws, int sdir, const char *name, const struct stat *st, int ddir,
		      const char *rel)
{
	if (S_ISREG(st->st_mode))
		return copy_file(ws, sdir, name, st, ddir, name, rel);
	if (S_ISLNK(st->st_mode))
		return copy_symlink(ws, sdir, name, ddir, name, rel);
	return 0;
}

/* ---- git mode ----------------------------------------------------------- */

/* Bring one path reported by git into dest: copy it if the work tree has it
 * (and the deny list allows), delete it from dest if the work tree lost it.
 * `deletions` selects the pass: all deletions run before any copy, so a
 * directory that became a symlink (or back) is emptied before it is
 * replaced. */
static int sync_path(struct ws *ws, int src, int dest, const char *rel, bool deletions)
{
	_cleanup_close_ int sdir = -1;
	const char *name;
	int r = open_parent(ws, src, rel, false, &sdir, &name);
	if (r < 0)
		return r;
	struct stat st;
	bool present = r == 0;
	if (present && fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return pd_err_errno(ws->err, WS_LAYER, "cannot stat '%s'", rel);
		present = false;
	}

	if (deletions) {
		if (present)
			return 0;
		_cleanup_close_ int ddir = -1;
		const char *dname;
		if ((r = open_parent(ws, dest, rel, false, &ddir, &dname)) != 0)
			return r < 0 ? r : 0;
		if (unlinkat(ddir, dname, 0) < 0 && errno != ENOENT && errno != EISDIR)
			return pd_err_errno(ws->err, WS_LAYER,
					    "cannot delete '%s' in the workspace", rel);
		return 0;
	}

	if (!present || (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)))
		return 0; /* gone, or a directory (submodule), device, fifo, socket */
	if (deny_match(rel, ws->unmask))
		return 0;
	if ((r = budget_entry(ws)) < 0)
		return r;
	_cleanup_close_ int ddir = -1;
	const char *dname;
	if ((r = open_parent(ws, dest, rel, true, &ddir, &dname)) < 0)
		return r;
	return copy_entry(ws, sdir, name, &st, ddir, rel);
}

/* Apply a NUL-separated list of paths printed by git (one pass). Paths
 * ending in '/' (untracked nested repositories) are skipped; any other path
 * that is not plainly relative is an error. */
static int sync_list(struct ws *ws, int src, int dest, const char *list, size_t len, bool deletions)
{
	for (size_t off = 0; off < len;) {
		const char *p = list + off;
		size_t n = strnlen(p, len - off);
		off += n + 1;
		if (n == 0)
			continue;
		if (p[n - 1] == '/')
			continue;
		if (p[n] != '\0' || !path_ok(p, n))
			return ws_fail(ws, -EINVAL, NULL, "git printed an unsafe path: '%.*s'",
				       (int)(n > 200 ? 200 : n), p);
		int r = sync_path(ws, src, dest, p, deletions);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Stage everything in dest and commit it if anything changed. */
static int commit_dest(struct ws *ws, const char *dest_path)
{
	_cleanup_git_res_ struct git_res res = { 0 };
	int r = git_ok(ws, dest_path, (const char *const[]){ "add", "-A", NULL }, 0, &res);
	if (r < 0)
		return r;
	git_res_freep(&res);
	r = git_ok(ws, dest_path,
		   (const char *const[]){ "status", "--porcelain", "-z", "--untracked-files=all",
					  NULL },
		   GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.len == 0)
		return 0;
	git_res_freep(&res);
	return git_ok(ws, dest_path,
		      (const char *const[]){ "-c", "user.name=paddock", "-c",
					     "user.email=paddock@localhost", "-c",
					     "commit.gpgSign=false", "commit", "-q", "--no-verify",
					     "-m", WS_COMMIT_MSG, NULL },
		      0, &res);
}

/* The branch HEAD points at in the source, for `git init` of an unborn
 * repository; "main" when detached or odd. */
static int unborn_branch(struct ws *ws, const char *top, char *out, size_t len)
{
	_cleanup_git_res_ struct git_res res = { 0 };
	int r = git_run(ws, top,
			(const char *const[]){ "symbolic-ref", "-q", "--short", "HEAD", NULL },
			GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	snprintf(out, len, "main");
	if (res.status == 0 && res.out) {
		size_t n = strcspn(res.out, "\n");
		if (n > 0 && n < len && res.out[n] == '\n' && res.out[n + 1] == '\0' &&
		    res.out[0] != '-') {
			memcpy(out, res.out, n);
			out[n] = '\0';
		}
	}
	return 0;
}

/* A source that borrows objects (clone --shared or --reference) hands its
 * alternates file to the clone: a host path, meaningless inside the
 * sandbox. Pack everything reachable into the clone and drop the file. */
static int drop_alternates(struct ws *ws, int dest, const char *dest_path)
{
	_cleanup_close_ int info = -1;
	const char *name;
	int r = open_parent(ws, dest, ".git/objects/info/alternates", false, &info, &name);
	if (r != 0)
		return r < 0 ? r : 0;
	struct stat st;
	if (fstatat(info, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : pd_err_errno(ws->err, WS_LAYER, "cannot stat alternates");
	_cleanup_git_res_ struct git_res res = { 0 };
	if ((r = git_ok(ws, dest_path, (const char *const[]){ "repack", "-a", "-d", "-q", NULL }, 0,
			&res)) < 0)
		return r;
	if (unlinkat(info, name, 0) < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot remove the clone's alternates");
	return 0;
}

/* Repository with commits: clone, overlay the uncommitted changes, commit. */
static int populate_clone(struct ws *ws, const char *top, const char *head, int src, int dest,
			  const char *dest_path)
{
	_cleanup_git_res_ struct git_res res = { 0 };
	int r;

	/* 1. Clone. No reflog: it would record "clone: from <host path>". */
	r = git_ok(ws, NULL,
		   (const char *const[]){ "-c", "core.logAllRefUpdates=false", "clone",
					  "--template=", "--no-hardlinks", "--quiet", "--", top,
					  dest_path, NULL },
		   GITRUN_GLOBAL_CFG, &res);
	if (r < 0)
		return r;
	if ((r = git_ok(ws, dest_path, (const char *const[]){ "remote", "remove", "origin", NULL },
			0, &res)) < 0 ||
	    (r = drop_alternates(ws, dest, dest_path)) < 0)
		return r;
	git_res_freep(&res);
	r = git_ok(ws, dest_path,
		   (const char *const[]){ "rev-parse", "--verify", "-q", "HEAD", NULL },
		   GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (strncmp(res.out ? res.out : "", head, strlen(head)) != 0) {
		/* The source is detached (the clone took the default branch). */
		git_res_freep(&res);
		r = git_ok(ws, dest_path,
			   (const char *const[]){ "checkout", "-q", "--detach", head, "--", NULL },
			   0, &res);
		if (r < 0)
			return r;
	}

	/* 2. What differs from HEAD, then what is untracked; read-only in the
	 * source (diff-index does not refresh or write the index). */
	_cleanup_git_res_ struct git_res changed = { 0 }, untracked = { 0 };
	r = git_ok(ws, top,
		   (const char *const[]){ "diff-index", "-z", "--name-only", "--no-renames",
					  "--ignore-submodules=all", head, "--", NULL },
		   GITRUN_CAPTURE, &changed);
	if (r < 0)
		return r;
	r = git_ok(
		ws, top,
		(const char *const[]){ "ls-files", "-z", "--others", "--exclude-standard", NULL },
		GITRUN_CAPTURE, &untracked);
	if (r < 0)
		return r;
	if ((r = sync_list(ws, src, dest, changed.out, changed.len, true)) < 0 ||
	    (r = sync_list(ws, src, dest, changed.out, changed.len, false)) < 0 ||
	    (r = sync_list(ws, src, dest, untracked.out, untracked.len, false)) < 0)
		return r;

	/* 3. One commit on top of the source HEAD. */
	return commit_dest(ws, dest_path);
}

/* Repository without commits: a fresh repository with the same initial
 * branch, holding the tracked and untracked-not-ignored files. */
static int populate_unborn(struct ws *ws, const char *top, int src, int dest, const char *dest_path)
{
	char branch[256];
	int r = unborn_branch(ws, top, branch, sizeof branch);
	if (r < 0)
		return r;
	_cleanup_free_ char *opt = NULL;
	if (asprintf(&opt, "--initial-branch=%s", branch) < 0)
		return pd_err_set(ws->err, ENOMEM, WS_LAYER, "git init");
	_cleanup_git_res_ struct git_res res = { 0 };
	r = git_ok(ws, NULL,
		   (const char *const[]){ "init", "-q", "--template=", opt, "--", dest_path, NULL },
		   0, &res);
	if (r < 0)
		return r;
	_cleanup_git_res_ struct git_res files = { 0 };
	r = git_ok(ws, top,
		   (const char *const[]){ "ls-files", "-z", "--cached", "--others",
					  "--exclude-standard", NULL },
		   GITRUN_CAPTURE, &files);
	if (r < 0)
		return r;
	if ((r = sync_list(ws, src, dest, files.out, files.len, false)) < 0)
		return r;
	return commit_dest(ws, dest_path);
}

/* Refuse a repository owned by someone other than the owner of the directory
 * asked for (or root): every ancestor was trusted for discovery, so a
 * /tmp/.git planted by another user must not become the workspace. */
static int check_owner(struct ws *ws, const char *path, uid_t owner)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot stat '%s'", path);
	if (st.st_uid != owner && st.st_uid != 0)
		return ws_fail(ws, -EPERM, WS_HINT,
			       "git repository '%s' is owned by uid %u, not by the owner (uid %u) "
			       "of the workspace directory",
			       path, (unsigned)st.st_uid, (unsigned)owner);
	return 0;
}

/* Find the repository around real_src. *top gets the work tree top (owned),
 * or NULL when real_src is not inside a repository. */
static int discover(struct ws *ws, const char *real_src, uid_t owner, char **top, char **gitdir,
		    char **common)
{
	*top = *gitdir = *common = NULL;
	int r = ws_safe_ancestors(ws, real_src);
	if (r < 0)
		return r;
	_cleanup_git_res_ struct git_res res = { 0 };
	r = git_run(ws, real_src,
		    (const char *const[]){ "rev-parse", "--path-format=absolute", "--show-toplevel",
					   "--absolute-git-dir", "--git-common-dir", NULL },
		    GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.status != 0) {
		if (strstr(res.errline, "not a git repository"))
			return 0;
		return ws_fail(ws, -EIO, WS_HINT, "git rev-parse in '%s' failed (exit %d): %s",
			       real_src, res.status, res.errline);
	}
	char *l[3];
	if ((r = split_lines(ws, res.out, l, 3)) < 0)
		return r;
	for (size_t i = 0; i < 3; i++)
		if (l[i][0] != '/')
			return ws_fail(ws, -EIO, NULL, "git rev-parse printed a relative path");
	if ((r = check_owner(ws, l[0], owner)) < 0 || (r = check_owner(ws, l[1], owner)) < 0 ||
	    (r = check_owner(ws, l[2], owner)) < 0)
		return r;
	*top = strdup(l[0]);
	*gitdir = strdup(l[1]);
	*common = strdup(l[2]);
	if (!*top || !*gitdir || !*common) {
		free(*top);
		free(*gitdir);
		free(*common);
		*top = *gitdir = *common = NULL;
		return pd_err_set(ws->err, ENOMEM, WS_LAYER, "git rev-parse");
	}
	return 0;
}

/* Git mode, given the discovered top. */
static int populate_git(struct ws *ws, const char *top, const char *gitdir, const char *common,
			int dest, const char *dest_path)
{
	int r = ws_set_safe(ws, (const char *const[]){ top, NULL });
	if (r < 0)
		return r;
	_cleanup_close_ int src = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot open '%s'", top);

	_cleanup_git_res_ struct git_res res = { 0 };
	r = git_run(ws, top, (const char *const[]){ "rev-parse", "-q", "--verify", "HEAD", NULL },
		    GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.status == 1 && res.len == 0)
		return populate_unborn(ws, top, src, dest, dest_path);
	if (res.status != 0 || !res.out)
		return ws_fail(ws, -EIO, NULL, "git rev-parse HEAD failed (exit %d): %s",
			       res.status, res.errline);
	char head[80];
	size_t n = strcspn(res.out, "\n");
	if (n < 40 || n >= sizeof head || strspn(res.out, "0123456789abcdef") != n)
		return ws_fail(ws, -EIO, NULL, "git rev-parse HEAD printed no object name");
	memcpy(head, res.out, n);
	head[n] = '\0';

	if ((r = ws_clone_cfg(ws, (const char *const[]){ top, gitdir, common, NULL })) < 0)
		return r;
	return populate_clone(ws, top, head, src, dest, dest_path);
}

/* ---- plain directory mode ----------------------------------------------- */

/* Copy the directory open at `sfd` into the one at `dfd` (both taken over);
 * ws->rel holds the relpath (`rlen` bytes). */
/* The next entry of dir (not "." or ".."), appended to ws->rel after its
 * first rlen bytes. Returns 1 with *de and *off (where the name starts in
 * ws->rel), 0 at the end, or a negative errno with err filled. */
static int next_entry(struct ws *ws, DIR *dir, size_t rlen, struct dirent **de, size_t *off)
{
	for (;;) {
		ws->rel[rlen] = '\0';
		errno = 0;
		struct dirent *e = readdir(dir);
		if (!e) {
			if (errno)
				return pd_err_errno(ws->err, WS_LAYER, "cannot read '%s'",
						    rlen ? ws->rel : ".");
			return 0;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		size_t nlen = strlen(e->d_name), o = rlen + (rlen ? 1 : 0);
		if (o + nlen + 1 > WS_REL_MAX)
			return ws_fail(ws, -ENAMETOOLONG, NULL, "workspace path too long");
		if (rlen)
			ws->rel[rlen] = '/';
		memcpy(ws->rel + o, e->d_name, nlen + 1);
		*de = e;
		*off = o;
		return 1;
	}
}

static int copy_tree(struct ws *ws, int sfd, int dfd, size_t rlen, unsigned depth)
{
	_cleanup_close_ int sowned = sfd, d = dfd;
	_cleanup_closedir_ DIR *dir = fdopendir(sowned);
	if (!dir)
		return pd_err_errno(ws->err, WS_LAYER, "cannot read '%s'", rlen ? ws->rel : ".");
	sowned = -1;
	for (;;) {
		struct dirent *de;
		size_t off;
		int r = next_entry(ws, dir, rlen, &de, &off);
		if (r <= 0)
			return r;
		const char *name = de->d_name;
		size_t nlen = strlen(name);
		if ((r = budget_entry(ws)) < 0)
			return r;
		if (deny_match(ws->rel, ws->unmask))
			continue;

		struct stat st;
		if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return pd_err_errno(ws->err, WS_LAYER, "cannot stat '%s'", ws->rel);
		}
		if (!S_ISDIR(st.st_mode)) {
			if ((r = copy_entry(ws, dirfd(dir), name, &st, d, ws->rel)) < 0)
				return r;
			continue;
		}
		if (depth + 1 > WS_MAX_DEPTH)
			return budget_fail(ws, WS_STR(WS_MAX_DEPTH) " directory levels");
		int cs = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cs < 0) {
			if (errno == ENOENT)
				continue;
			return pd_err_errno(ws->err, WS_LAYER, "cannot open '%s'", ws->rel);
		}
		if (mkdirat(d, name, 0700) < 0) {
			close(cs);
			return pd_err_errno(ws->err, WS_LAYER,
					    "cannot create '%s' in the workspace", ws->rel);
		}
		int cd = openat(d, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cd < 0) {
			close(cs);
			return pd_err_errno(ws->err, WS_LAYER, "cannot open '%s' in the workspace",
					    ws->rel);
		}
		if ((r = copy_tree(ws, cs, cd, off + nlen, depth + 1)) < 0)
			return r;
		/* Mode last, once the directory is filled (a 0555 source stays
		 * copyable). `name` is still valid: no readdir on `dir` since. */
		mode_t mode = st.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
		if (fchmodat(d, name, mode, 0) < 0)
			return pd_err_errno(ws->err, WS_LAYER, "cannot chmod '%s'", ws->rel);
	}
}

/* ---- ownership ----------------------------------------------------------- */

/* chown every entry below the directory open at `fd` (taken over), never
 * following a symlink. */
static int chown_tree(struct ws *ws, int fd, uid_t uid, gid_t gid, size_t rlen, unsigned depth)
{
	_cleanup_close_ int owned = fd;
	_cleanup_closedir_ DIR *dir = fdopendir(owned);
	if (!dir)
		return pd_err_errno(ws->err, WS_LAYER, "cannot read '%s'", rlen ? ws->rel : ".");
	owned = -1;
	for (;;) {
		struct dirent *de;
		size_t off;
		int r = next_entry(ws, dir, rlen, &de, &off);
		if (r <= 0)
			return r;
		const char *name = de->d_name;
		size_t nlen = strlen(name);
		if (fchownat(dirfd(dir), name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(ws->err, WS_LAYER, "cannot chown '%s'", ws->rel);
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return pd_err_errno(ws->err, WS_LAYER, "cannot stat '%s'", ws->rel);
			type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (type != DT_DIR)
			continue;
		if (depth + 1 > WS_MAX_DEPTH)
			return ws_fail(ws, -E2BIG, WS_HINT, "workspace is deeper than %d levels",
				       WS_MAX_DEPTH);
		int c = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (c < 0)
			return pd_err_errno(ws->err, WS_LAYER, "cannot open '%s'", ws->rel);
		if ((r = chown_tree(ws, c, uid, gid, off + nlen, depth + 1)) < 0)
			return r;
	}
}

/* ---- entry point ----------------------------------------------------------- */

/* Is the directory open at `fd` empty? 1 yes, 0 no, or a negative errno. */
static int dir_is_empty(struct ws *ws, int fd)
{
	int c = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c < 0)
		return pd_err_errno(ws->err, WS_LAYER, "cannot open the workspace directory");
	_cleanup_closedir_ DIR *d = fdopendir(c);
	if (!d) {
		close(c);
		return pd_err_errno(ws->err, WS_LAYER, "cannot read the workspace directory");
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return 0;
	return 1;
}

int workspace_populate(const char *src_dir, int dest_dirfd, const char *dest_path, uid_t uid,
		       gid_t gid, const char *const *unmask, struct pd_err *err)
{
	if (!src_dir || !dest_path || dest_dirfd < 0)
		return pd_err_set(err, EINVAL, WS_LAYER, "workspace_populate: bad arguments");
	__attribute__((cleanup(ws_freep))) struct ws *ws = calloc(1, sizeof *ws);
	if (!ws)
		return pd_err_set(err, ENOMEM, WS_LAYER, "workspace");
	gitrun_init(&ws->g, WS_LAYER, err);
	ws->clone_cfg_fd = -1;
	ws->unmask = unmask;
	ws->err = err;
	ws->buf = malloc(WS_COPY_BUF);
	ws->rel = calloc(1, WS_REL_MAX);
	if (!ws->buf || !ws->rel)
		return pd_err_set(err, ENOMEM, WS_LAYER, "workspace");

	int r = dir_is_empty(ws, dest_dirfd);
	if (r < 0)
		return r;
	if (r == 0)
		return ws_fail(ws, -ENOTEMPTY, NULL, "the workspace directory is not empty");

	_cleanup_free_ char *real = realpath(src_dir, NULL);
	if (!real)
		return pd_err_errno(err, WS_LAYER, "cannot resolve '%s'", src_dir);
	_cleanup_close_ int src = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0)
		return pd_err_errno(err, WS_LAYER, "cannot open '%s'", real);
	struct stat sst;
	if (fstat(src, &sst) < 0)
		return pd_err_errno(err, WS_LAYER, "cannot stat '%s'", real);

	if ((r = gitrun_find(&ws->g, "install git, or " WS_HINT)) < 0)
		return r;
	_cleanup_free_ char *top = NULL, *gitdir = NULL, *common = NULL;
	if ((r = discover(ws, real, sst.st_uid, &top, &gitdir, &common)) < 0)
		return r;
	if (top) {
		r = populate_git(ws, top, gitdir, common, dest_dirfd, dest_path);
	} else {
		int d = openat(dest_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d < 0)
			return pd_err_errno(err, WS_LAYER, "cannot open the workspace directory");
		r = copy_tree(ws, steal_fd(&src), d, 0, 0);
	}
	if (r < 0)
		return r;

	/* Last: everything, dest itself included, belongs to the sandbox root. */
	if (fchownat(dest_dirfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return pd_err_errno(err, WS_LAYER, "cannot chown the workspace directory");
	int d = openat(dest_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return pd_err_errno(err, WS_LAYER, "cannot open the workspace directory");
	return chown_tree(ws, d, uid, gid, 0, 0);
}

int workspace_head(const char *dest_path, char out[65], struct pd_err *err)
{
	struct gitrun g;
	_cleanup_git_res_ struct git_res res = { 0 };
	const char *safe[] = { dest_path, NULL };
	const char *args[] = { "rev-parse", "--verify", "-q", "HEAD^{commit}", NULL };
	out[0] = '\0';
	gitrun_init(&g, WS_LAYER, err);
	int r = gitrun_find(&g, NULL);
	if (r == 0 && (r = gitrun_set_safe(&g, safe)) < 0)
		r = pd_err_set(err, ENOMEM, WS_LAYER, "out of memory");
	if (r == 0)
		r = gitrun_run(&g, dest_path, args, GITRUN_CAPTURE, &res);
	gitrun_release(&g);
	if (r < 0)
		return r;
	if (res.status != 0 || !res.out)
		return 0; /* no commit (not a repository, or unborn): nothing to record */
	size_t n = strspn(res.out, "0123456789abcdef");
	if ((n != 40 && n != 64) || (res.out[n] != '\n' && res.out[n] != '\0'))
		return pd_err_set(err, EIO, WS_LAYER, "unexpected output from git rev-parse HEAD");
	memcpy(out, res.out, n);
	out[n] = '\0';
	return 0;
}
