/* exec.c: start another process in a running sandbox (a session).
 *
 * The daemon forks a shim that joins the sandbox as its first command did:
 *
 *   1. not dumpable first: while the shim is still host root, nothing in the
 *      sandbox may trace it or open /proc/<shim>/exe (runc's CVE-2019-5736)
 *   2. the sandbox's cgroup (it counts against the pids limit)
 *   3. setns(pidfd of pid 1, every namespace) in one call: user, mount, pid,
 *      ipc, uts, net, cgroup, time; the mount namespace puts root and cwd at
 *      the sandbox's root
 *   4. root of the user namespace, i.e. the sandbox's unprivileged host uid
 *   5. fork: the child is in the sandbox's pid namespace; it makes its pty
 *      (in the sandbox's devpts) and sends us the master, then the same
 *      command_exec as the first command: caps, Landlock, seccomp, execve
 *   6. the shim reports READY once execve succeeded (the error pipe closed)
 *      or the error, then waits and exits with the command's status, so the
 *      daemon learns it from its own child.
 *
 * The shim never runs code from the sandbox; the sandbox cannot see it (it
 * is outside the sandbox's pid namespace). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/wipe.h"
#include "sandbox/cgroup.h"
#include "sandbox/internal.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define NS_ALL (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | \
		CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME)

_Noreturn static void shim_fail(int sock, const struct pd_err *err)
{
	struct msg m = { .type = MSG_ERR, .err = *err };
	msg_send(sock, &m, NULL, 0);
	_exit(125);
}

_Noreturn static void exec_child(const struct sandbox *sb, const struct sandbox_exec *x, int sock,
				 int errpipe)
{
	struct pd_err err = { 0 };
	int slave = -1;
	if (command_reset(true, &err) < 0) /* the shim reset them */
		goto fail;
	if (x->tty) {
		int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		int unlock = 0;
		if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
		    (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			pd_err_errno(&err, "terminal", "allocating a pty in the sandbox");
			goto fail;
		}
		struct winsize ws = { .ws_row = x->rows, .ws_col = x->cols };
		if (ws.ws_row && ws.ws_col)
			ioctl(master, TIOCSWINSZ, &ws);
		struct msg m = { .type = MSG_FDS, .n_fds = 1 };
		if (msg_send(sock, &m, &master, 1) < 0) {
			pd_err_errno(&err, "terminal", "handing the pty over");
			goto fail;
		}
		close(master);
	}
	close(sock);
	int ep = command_stdio(slave, x->in, x->out, x->err, errpipe, &err);
	if (ep < 0)
		goto fail;
	command_exec(sb->plan.spec, x->argv, x->env, x->workdir, ep);
fail:
	(void)!write(errpipe, &err, sizeof err);
	_exit(125);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Close every fd >= 3 but those in keep (sorted in place). A sandbox's pid
 * 1 and a session's shim are forks of the daemon and live on: they must hold
 * nothing of the daemon's (its socket and lock, the database, client
 * connections, other sandboxes' ptys). */
void close_all_except(int *keep, size_t n)
{
	qsort(keep, n, sizeof *keep, cmp_int);
	unsigned lo = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned)keep[i] > lo)
			syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0U, 0);
}

/* Default dispositions for every signal the daemon ignores or catches
 * (SigIgn and SigCgt of /proc/self/status): a handful of calls instead of
 * one per signal, on the path every session takes. Any other signal is at
 * its default already. */
static void reset_signals(void)
{
	char buf[4096];
	unsigned long long mask = 0;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		return;
	}
	buf[n] = '\0';
	static const char *const keys[] = { "\nSigIgn:", "\nSigCgt:" };
	for (size_t k = 0; k < 2; k++) {
		const char *p = strstr(buf, keys[k]);
		if (!p) {
			mask = ~0ULL;
			break;
		}
		mask |= strtoull(p + strlen(keys[k]), NULL, 16);
	}
	for (int sig = 1; sig < NSIG && sig <= 64; sig++)
		if (mask & (1ULL << (sig - 1)))
			signal(sig, SIG_DFL);
}

_Noreturn static void shim_main(const struct sandbox *sb, const struct sandbox_exec *x, int sock,
				const int *cg_fds, size_t n_cg)
{
	struct pd_err err = { 0 };
	/* 1. */
	prctl(PR_SET_DUMPABLE, 0);
	scrub_inherited_strings(); /* the daemon's argv and environment */
	prctl(PR_SET_NAME, "paddock-shim");
	int keep[16];
	size_t nk = 0;
	keep[nk++] = sock;
	keep[nk++] = sb->pidfd;
	for (size_t i = 0; i < n_cg && nk < ARRAY_SIZE(keep) - 3; i++)
		keep[nk++] = cg_fds[i];
	if (!x->tty) {
		keep[nk++] = x->in;
		keep[nk++] = x->out;
		keep[nk++] = x->err;
	}
	close_all_except(keep, nk);
	sigset_t none;
	sigemptyset(&none);
	reset_signals();
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* 2. */
	for (size_t i = 0; i < n_cg; i++) {
		if (write(cg_fds[i], "0", 1) != 1) {
			pd_err_errno(&err, "cgroup", "joining the sandbox's cgroup");
			shim_fail(sock, &err);
		}
		close(cg_fds[i]);
	}
	/* 3. */
	if (setns(sb->pidfd, NS_ALL) < 0) {
		pd_err_errno(&err, "namespaces", "entering the sandbox");
		shim_fail(sock, &err);
	}
	close(sb->pidfd);
	/* 4. */
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		pd_err_errno(&err, "userns", "becoming the sandbox's root");
		shim_fail(sock, &err);
	}
	prctl(PR_SET_DUMPABLE, 0); /* the credential change reset it */
	/* 5. */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		pd_err_errno(&err, "exec", "pipe");
		shim_fail(sock, &err);
	}
	pid_t child = fork();
	if (child < 0) {
		pd_err_errno(&err, "exec", "fork");
		shim_fail(sock, &err);
	}
	if (child == 0) {
		close(ep[0]);
		exec_child(sb, x, sock, ep[1]);
	}
	close(ep[1]);
	if (x->in >= 0)
		close(x->in);
	if (x->out >= 0)
		close(x->out);
	if (x->err >= 0)
		close(x->err);
	/* 6. */
	ssize_t n;
	do
		n = read(ep[0], &err, sizeof err);
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof err) {
		struct msg m = { .type = MSG_ERR, .err = err };
		msg_send(sock, &m, NULL, 0);
	} else {
		struct msg m = { .type = MSG_READY };
		msg_send(sock, &m, NULL, 0);
	}
	close(sock);
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			_exit(125);
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	_exit(128 + WTERMSIG(status));
}

/* The files through which a process joins the sandbox's cgroup by writing
 * "0": cgroup.procs on v2, every leaf's tasks on v1. */
static int open_join_fds(struct sandbox *sb, int *fds, size_t max, size_t *n, struct pd_err *err)
{
	*n = 0;
	bool v2 = pd_cgroup_v2_fd(sb->cg) >= 0;
	for (const char *const *p = pd_cgroup_paths(sb->cg); p && *p; p++) {
		if (*n == max)
			return pd_err_set(err, E2BIG, "cgroup", "too many cgroup hierarchies");
		char f[4096];
		snprintf(f, sizeof f, "%s/%s", *p, v2 ? "cgroup.procs" : "tasks");
		int fd = open(f, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return pd_err_errno(err, "cgroup", "opening %s", f);
		fds[(*n)++] = fd;
		if (v2)
			break;
	}
	return 0;
}

int sandbox_exec(struct sandbox *sb, const struct sandbox_exec *x, struct sandbox_proc *out,
		 struct pd_err *err)
{
	if (!sb || !x || !x->argv || !x->argv[0] || !out)
		return pd_err_set(err, EINVAL, "exec", "sandbox_exec: bad arguments");
	if (sb->reaped || sb->pidfd < 0)
		return pd_err_set(err, ESRCH, "exec", "the sandbox is not running");
	int cg[8];
	size_t n_cg = 0;
	int r = open_join_fds(sb, cg, ARRAY_SIZE(cg), &n_cg, err);
	int sp[2] = { -1, -1 }, pidfd = -1;
	pid_t pid = -1;
	if (r < 0)
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		r = pd_err_errno(err, "exec", "socketpair");
		goto out;
	}
	struct clone_args ca = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd,
				 .exit_signal = SIGCHLD };
	pd_scrub_stack(); /* the shim lives as long as the session */
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0) {
		r = pd_err_errno(err, "exec", "fork");
		goto out;
	}
	if (pid == 0) {
		close(sp[0]);
		shim_main(sb, x, sp[1], cg, n_cg);
	}
	close(sp[1]);
	sp[1] = -1;
	int pty = -1;
	for (;;) {
		struct msg m;
		int fd = -1;
		size_t nfd = 0;
		r = msg_recv(sp[0], &m, &fd, 1, &nfd);
		if (r < 0) {
			r = pd_err_set(err, EIO, "exec", "the session's process died while starting");
			break;
		}
		if (m.type == MSG_FDS && nfd == 1 && x->tty && pty < 0) {
			pty = fd;
			continue;
		}
		if (nfd)
			close(fd);
		if (m.type == MSG_READY && (!x->tty || pty >= 0)) {
			r = 0;
			break;
		}
		if (m.type == MSG_ERR) {
			if (err)
				*err = m.err;
			r = -(m.err.code > 0 ? m.err.code : EIO);
			break;
		}
		r = pd_err_set(err, EPROTO, "exec", "unexpected message from the session's process");
		break;
	}
	if (r < 0) {
		if (pty >= 0)
			close(pty);
		/* After an error report the shim collects its child and exits by
		 * itself: wait for that. Killing it first would orphan the child to
		 * whoever reaps orphans (a subreaper daemon), not to the sandbox.
		 * Only a shim that broke the protocol is killed. */
		if (r == -EPROTO || r == -EIO)
			syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(pidfd);
		goto out;
	}
	out->pid = pid;
	out->pidfd = pidfd;
	out->pty = pty;
out:
	for (size_t i = 0; i < n_cg; i++)
		close(cg[i]);
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	return r;
}
