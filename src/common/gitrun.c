/* gitrun.c: run the host's git safely (see gitrun.h). Moved out of
 * sandbox/workspace.c so that the review gate runs git the same way. */
#include "common/gitrun.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

/* Where git may come from: root-owned directories only, never the caller's
 * PATH (we run as root). */
static const char *const git_dirs[] = { "/usr/local/bin", "/usr/bin", "/bin", NULL };
#define GIT_PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"
#define GIT_ENV_MAX 32 /* entries of the child's environment, extras included */

/* Options before the subcommand on every call. Command-line config beats the
 * repository's .git/config, so a hostile repository cannot turn these on. */
/* clang-format off */
static const char *const git_hardening[] = {
	"-c", "core.fsmonitor=false",
	"-c", "core.hooksPath=/dev/null",
	"-c", "protocol.file.allow=always",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
	NULL,
};
/* clang-format on */

/* Fail with a message that carries no errno (the reason is in the text),
 * returning `ret`. */
static int gr_fail(struct gitrun *g, int ret, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int gr_fail(struct gitrun *g, int ret, const char *hint, const char *fmt, ...)
{
	char msg[sizeof g->err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pd_err_set(g->err, 0, g->layer, "%s", msg);
	if (hint)
		pd_err_hint(g->err, "%s", hint);
	return ret;
}

void gitrun_init(struct gitrun *g, const char *layer, struct pd_err *err)
{
	memset(g, 0, sizeof *g);
	g->in_fd = -1;
	g->uid = (uid_t)-1;
	g->gid = (gid_t)-1;
	g->layer = layer;
	g->err = err;
}

void gitrun_release(struct gitrun *g)
{
	pd_strvfreep(&g->safe);
	g->safe = NULL;
}

int gitrun_find(struct gitrun *g, const char *hint)
{
	for (size_t i = 0; git_dirs[i]; i++) {
		snprintf(g->git, sizeof g->git, "%s/git", git_dirs[i]);
		if (access(g->git, X_OK) == 0)
			return 0;
	}
	g->git[0] = '\0';
	return gr_fail(g, -ENOENT, hint, "git not found in /usr/local/bin, /usr/bin or /bin");
}

int gitrun_set_safe(struct gitrun *g, const char *const *paths)
{
	pd_strvfreep(&g->safe);
	g->safe = NULL;
	size_t n = 0;
	while (paths[n])
		n++;
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return pd_err_set(g->err, ENOMEM, g->layer, "safe.directory list");
	g->safe = v;
	for (size_t i = 0; i < n; i++)
		if (asprintf(&v[i], "safe.directory=%s", paths[i]) < 0) {
			v[i] = NULL;
			return pd_err_set(g->err, ENOMEM, g->layer, "safe.directory list");
		}
	return 0;
}

/* Remember a line of git's stderr: the first one, unless a later one is the
 * "fatal:" line that says what actually went wrong. */
static void errline_take(struct git_res *res, const char *line)
{
	if (!line[0])
		return;
	if (res->errline[0] &&
	    (strncmp(res->errline, "fatal:", 6) == 0 || strncmp(line, "fatal:", 6) != 0))
		return;
	snprintf(res->errline, sizeof res->errline, "%s", line);
	/* It ends up in a message printed to a terminal, and may quote text
	 * from the repository or a bundle: no control characters. */
	for (char *c = res->errline; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* Read the child's stdout (if outfd >= 0, into res->out, at most
 * GITRUN_OUT_MAX bytes) and its stderr (keeping one line, see errline_take)
 * until both close. Returns 0, or a negative errno with g->err filled. */
static int git_collect(struct gitrun *g, int outfd, int errfd, struct git_res *res)
{
	struct pollfd p[2] = { { .fd = outfd, .events = POLLIN },
			       { .fd = errfd, .events = POLLIN } };
	size_t cap = 0, llen = 0;
	char line[sizeof res->errline], tmp[4096];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return pd_err_errno(g->err, g->layer, "poll on git's output");
		}
		if (p[0].fd >= 0 && p[0].revents) {
			ssize_t k;
			if (cap - res->len <= 1 && res->len >= GITRUN_OUT_MAX) {
				/* Full: only end of file is acceptable now. */
				k = read(p[0].fd, tmp, 1);
				if (k > 0)
					return gr_fail(g, -E2BIG, NULL,
						       "git printed more than %zu MiB",
						       GITRUN_OUT_MAX >> 20);
			} else {
				if (cap - res->len <= 1) {
					size_t ncap = cap ? cap * 2 : 64 * 1024;
					if (ncap > GITRUN_OUT_MAX + 1)
						ncap = GITRUN_OUT_MAX + 1;
					char *n = realloc(res->out, ncap);
					if (!n)
						return pd_err_set(g->err, ENOMEM, g->layer,
								  "git output");
					res->out = n;
					cap = ncap;
				}
				k = read(p[0].fd, res->out + res->len, cap - res->len - 1);
				if (k > 0)
					res->len += (size_t)k;
				res->out[res->len] = '\0';
			}
			if (k < 0 && errno != EINTR)
				return pd_err_errno(g->err, g->layer, "reading git's output");
			if (k == 0)
				p[0].fd = -1;
		}
		if (p[1].fd >= 0 && p[1].revents) {
			ssize_t k = read(p[1].fd, tmp, sizeof tmp);
			if (k < 0 && errno != EINTR)
				return pd_err_errno(g->err, g->layer, "reading git's errors");
			for (ssize_t i = 0; i < k; i++) {
				if (tmp[i] == '\n') {
					line[llen] = '\0';
					errline_take(res, line);
					llen = 0;
				} else if (llen + 1 < sizeof line) {
					line[llen++] = tmp[i];
				}
			}
			if (k == 0) {
				line[llen] = '\0';
				errline_take(res, line);
				p[1].fd = -1;
			}
		}
	}
	return 0;
}

/* pipe2(O_CLOEXEC) whose ends are both >= 3, so the child's dup2 onto
 * 0..2 cannot clobber one with the other even if our stdio is closed. */
static int pipe_high(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 3)
			continue;
		int hi = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
		if (hi < 0) {
			int saved = errno;
			close(p[0]);
			close(p[1]);
			errno = saved;
			return -1;
		}
		close(p[i]);
		p[i] = hi;
	}
	return 0;
}

/* Start g->git with argv and env: stdin in_fd (or /dev/null when in_fd < 0;
 * in_fd must be >= 3), stdout to out_w (or /dev/null when out_w < 0), stderr
 * to err_w, no other fd inherited, cwd "/", signals unblocked and at their
 * defaults. Returns 0 with *pid set. */
static int git_spawn(struct gitrun *g, const char *const *argv, const char *const *env, int in_fd,
		     int out_w, int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	int r = posix_spawn_file_actions_init(&fa);
	if (r != 0)
		return pd_err_set(g->err, r, g->layer, "cannot run %s", g->git);
	if ((r = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return pd_err_set(g->err, r, g->layer, "cannot run %s", g->git);
	}
	if ((r = in_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, in_fd, 0)
			    : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) !=
		    0 ||
	    (r = out_w >= 0 ? posix_spawn_file_actions_adddup2(&fa, out_w, 1)
			    : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) !=
		    0 ||
	    (r = posix_spawn_file_actions_adddup2(&fa, err_w, 2)) != 0 ||
	    (r = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
	    (r = posix_spawn_file_actions_addchdir_np(&fa, "/")) != 0 ||
	    (r = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
	    (r = posix_spawnattr_setsigdefault(&at, &all)) != 0 ||
	    (r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) !=
		    0)
		goto out;
	r = posix_spawn(pid, g->git, &fa, &at, (char *const *)argv, (char *const *)env);
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0)
		return pd_err_set(g->err, r, g->layer, "cannot run %s", g->git);
	return 0;
}

/* In the child of git_spawn_as: stdio, ids, signals, exec. Only
 * async-signal-safe calls (the parent may have threads); the ids change
 * with raw syscalls, so glibc does not try to reach other threads. Returns
 * only on failure, with errno set. */
static void child_exec(struct gitrun *g, const char *const *argv, const char *const *env,
		       int in_fd, int out_w, int err_w)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* SIGKILL and glibc's own fail: fine */
	int nul = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
	if (nul < 0 || dup2(nul, 0) < 0)
		return;
	nul = out_w >= 0 ? out_w : open("/dev/null", O_WRONLY);
	if (nul < 0 || dup2(nul, 1) < 0 || dup2(err_w, 2) < 0)
		return;
	/* Everything else closes at exec: the error pipe stays open until then. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0 || chdir("/") < 0)
		return;
	if (syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, g->gid, g->gid, g->gid) < 0 ||
	    syscall(SYS_setresuid, g->uid, g->uid, g->uid) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return;
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		return;
	execve(g->git, (char *const *)argv, (char *const *)env);
}

/* git_spawn as g->uid/g->gid, which posix_spawn cannot do: fork, and the
 * child reports a failure before exec through a close-on-exec pipe. All
 * signals stay blocked across the fork so that no handler of ours runs in
 * the child. */
static int git_spawn_as(struct gitrun *g, const char *const *argv, const char *const *env,
			int in_fd, int out_w, int err_w, pid_t *pid)
{
	int ep[2];
	if (pipe_high(ep) < 0)
		return pd_err_errno(g->err, g->layer, "pipe for git");
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t p = fork();
	if (p == 0) {
		close(ep[0]);
		child_exec(g, argv, env, in_fd, out_w, err_w);
		int e = errno;
		ssize_t k = write(ep[1], &e, sizeof e);
		(void)k;
		_exit(127);
	}
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	_cleanup_close_ int er = ep[0];
	if (p < 0) {
		errno = saved;
		return pd_err_errno(g->err, g->layer, "cannot fork for git");
	}
	int ce = 0;
	ssize_t k;
	while ((k = read(er, &ce, sizeof ce)) < 0 && errno == EINTR)
		;
	if (k == (ssize_t)sizeof ce) {
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		return pd_err_set(g->err, ce, g->layer, "cannot run %s as uid %u", g->git,
				  (unsigned)g->uid);
	}
	*pid = p;
	return 0;
}

/* The child's environment: the fixed entries, then g->env_extra. */
static int git_env(struct gitrun *g, unsigned flags, const char **env)
{
	size_t n = 0;
	env[n++] = GIT_PATH_ENV;
	env[n++] = "HOME=/nonexistent";
	env[n++] = "GIT_CONFIG_NOSYSTEM=1";
	env[n++] = (flags & GITRUN_GLOBAL_CFG) ? g->global_cfg_env : "GIT_CONFIG_GLOBAL=/dev/null";
	env[n++] = "GIT_ATTR_NOSYSTEM=1";
	env[n++] = "GIT_OPTIONAL_LOCKS=0";
	env[n++] = "GIT_TERMINAL_PROMPT=0";
	env[n++] = "LC_ALL=C";
	for (size_t i = 0; g->env_extra && g->env_extra[i]; i++) {
		if (n + 1 >= GIT_ENV_MAX)
			return gr_fail(g, -E2BIG, NULL, "too many environment variables for git");
		env[n++] = g->env_extra[i];
	}
	env[n] = NULL;
	return 0;
}

int gitrun_run(struct gitrun *g, const char *dir, const char *const *args, unsigned flags,
	       struct git_res *res)
{
	git_res_freep(res);
	memset(res, 0, sizeof *res);
	if (!g->git[0])
		return gr_fail(g, -ENOENT, NULL, "git was not looked for (gitrun_find)");
	if ((g->uid == (uid_t)-1) != (g->gid == (gid_t)-1))
		return gr_fail(g, -EINVAL, NULL, "gitrun: uid and gid must be set together");
	size_t n = 1 + ARRAY_SIZE(git_hardening) + 3;
	for (size_t i = 0; g->safe && g->safe[i]; i++)
		n += 2;
	for (size_t i = 0; args[i]; i++)
		n++;
	_cleanup_free_ const char **argv = calloc(n, sizeof *argv);
	if (!argv)
		return pd_err_set(g->err, ENOMEM, g->layer, "running git");
	size_t a = 0;
	argv[a++] = "git";
	for (size_t i = 0; git_hardening[i]; i++)
		argv[a++] = git_hardening[i];
	for (size_t i = 0; g->safe && g->safe[i]; i++) {
		argv[a++] = "-c";
		argv[a++] = g->safe[i];
	}
	if (dir) {
		argv[a++] = "-C";
		argv[a++] = dir;
	}
	for (size_t i = 0; args[i]; i++)
		argv[a++] = args[i];
	argv[a] = NULL;

	const char *env[GIT_ENV_MAX];
	int r = git_env(g, flags, env);
	if (r < 0)
		return r;

	/* The child's stdin must not be 0..2 here, or the dup2 onto 1 or 2
	 * below would clobber it. */
	_cleanup_close_ int in_hi = -1;
	int in_fd = g->in_fd;
	if (in_fd >= 0 && in_fd < 3) {
		if ((in_hi = fcntl(in_fd, F_DUPFD_CLOEXEC, 3)) < 0)
			return pd_err_errno(g->err, g->layer, "stdin for git");
		in_fd = in_hi;
	}

	int errp[2], outp[2] = { -1, -1 };
	if (pipe_high(errp) < 0)
		return pd_err_errno(g->err, g->layer, "pipe for git");
	_cleanup_close_ int err_r = errp[0], err_w = errp[1];
	if ((flags & GITRUN_CAPTURE) && pipe_high(outp) < 0)
		return pd_err_errno(g->err, g->layer, "pipe for git");
	_cleanup_close_ int out_r = outp[0], out_w = outp[1];

	pid_t pid;
	if (g->uid != (uid_t)-1 && (g->uid != geteuid() || g->gid != getegid()))
		r = git_spawn_as(g, argv, env, in_fd, out_w, err_w, &pid);
	else
		r = git_spawn(g, argv, env, in_fd, out_w, err_w, &pid);
	if (r < 0)
		return r;
	/* Our copies of the write ends must go, or we never see end of file. */
	pd_closep(&err_w);
	err_w = -1;
	pd_closep(&out_w);
	out_w = -1;

	r = git_collect(g, out_r, err_r, res);
	if (r < 0)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return r < 0 ? r : pd_err_errno(g->err, g->layer, "waiting for git");
	if (r < 0)
		return r;
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

int gitrun_ok(struct gitrun *g, const char *dir, const char *const *args, unsigned flags,
	      struct git_res *res)
{
	int r = gitrun_run(g, dir, args, flags, res);
	if (r < 0)
		return r;
	if (res->status != 0) {
		const char *sub = args[0];
		for (size_t i = 0; args[i]; i++) {
			if (strcmp(args[i], "-c") == 0 && args[i + 1]) {
				i++;
				continue;
			}
			sub = args[i];
			break;
		}
		return gr_fail(g, -EIO, NULL, "git %s failed (exit %d): %s", sub, res->status,
			       res->errline[0] ? res->errline : "no message");
	}
	return 0;
}
