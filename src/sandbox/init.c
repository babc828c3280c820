/* init.c: the sandbox's pid 1 and the command it starts.
 *
 * Sequence (child of clone3, already in its new namespaces):
 *   1. wait for the parent: mount fds, then GO (uid map written, cgroup joined)
 *   2. become root of the user namespace; enter a new cgroup namespace
 *   3. attach the overlay root privately, build /proc /sys /dev and the
 *      mounts, pivot_root into it
 *   4. hostname, loopback
 *   5. fork the command: new session (its own pty with -t), then
 *      capabilities + no_new_privs, Landlock, seccomp last, execve
 *   6. report READY; drop our own privileges; reap and forward signals until
 *      the command exits, then exit with its status (the kernel then kills
 *      whatever is left in the pid namespace) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/fence.h"
#include "sandbox/internal.h"
#include "sandbox/mountapi.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

extern char **environ;

_Noreturn static void child_fail(int sock, const struct pd_err *err)
{
	struct msg m = { .type = MSG_ERR, .err = *err };
	msg_send(sock, &m, NULL, 0);
	_exit(125);
}

/* Receive every mount fd, then GO. */
static int recv_setup(struct plan *plan, int *fds, size_t n, struct pd_err *err)
{
	size_t have = 0;
	for (;;) {
		struct msg m;
		size_t got = 0;
		int r = msg_recv(plan->sock, &m, fds + have, n - have, &got);
		if (r < 0)
			return pd_err_set(err, -r, "sandbox", "waiting for the parent");
		have += got;
		if (m.type == MSG_GO)
			break;
		if (m.type != MSG_FDS)
			return pd_err_set(err, EPROTO, "sandbox", "unexpected message");
	}
	if (have != n)
		return pd_err_set(err, EPROTO, "sandbox", "expected %zu fds, got %zu", n, have);
	return 0;
}

/* The gateway is the sandbox's resolver. Written as the sandbox's root into
 * its own upper layer; a symlink there (systemd-resolved images) is replaced. */
static int write_resolv_conf(const char *text, struct pd_err *err)
{
	if (unlink("/etc/resolv.conf") < 0 && errno != ENOENT)
		return pd_err_errno(err, "network", "replacing /etc/resolv.conf");
	_cleanup_close_ int fd =
		open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		return pd_err_errno(err, "network", "writing /etc/resolv.conf");
	return 0;
}

/* The gateway's per-sandbox CA (secrets): its own file, referenced by
 * NODE_EXTRA_CA_CERTS, and appended to the system bundle that OpenSSL,
 * curl, git and Python read (SSL_CERT_FILE and friends point there too).
 * Written after pivot_root, as the sandbox's root, into its own layer. */
static int install_ca(const char *pem, struct pd_err *err)
{
	static const char *const dirs[] = { "/etc", "/etc/ssl", "/etc/ssl/certs", "/usr",
					     "/usr/local", "/usr/local/share",
					     "/usr/local/share/ca-certificates", NULL };
	for (const char *const *d = dirs; *d; d++)
		if (mkdir(*d, 0755) < 0 && errno != EEXIST)
			return pd_err_errno(err, "secrets", "creating %s", *d);
	size_t n = strlen(pem);
	static const char *const own[] = { "/etc/ssl/certs/paddock-ca.crt",
					    "/usr/local/share/ca-certificates/paddock.crt", NULL };
	for (const char *const *f = own; *f; f++) {
		if (unlink(*f) < 0 && errno != ENOENT)
			return pd_err_errno(err, "secrets", "replacing %s", *f);
		_cleanup_close_ int fd =
			open(*f, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, pem, n) != (ssize_t)n)
			return pd_err_errno(err, "secrets", "writing %s", *f);
	}
	_cleanup_close_ int b = open("/etc/ssl/certs/ca-certificates.crt",
				     O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (b < 0 || write(b, "\n", 1) != 1 || write(b, pem, n) != (ssize_t)n)
		return pd_err_errno(err, "secrets", "adding the CA to /etc/ssl/certs/ca-certificates.crt");
	return 0;
}

static int loopback_up(struct pd_err *err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return pd_err_errno(err, "network", "socket");
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return pd_err_errno(err, "network", "reading lo flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return pd_err_errno(err, "network", "bringing lo up");
	return 0;
}

/* Paths where the command may write: the overlay's own top-level
 * directories (not /proc, /sys, /dev, nor other mounts), the device nodes a
 * shell needs, and the writable mounts. */
static size_t rw_paths(const struct spec *s, char **out, size_t max)
{
	size_t n = 0;
	static const char *const dev[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
					   "/dev/ptmx", "/dev/pts", "/dev/shm", "/dev/random",
					   "/dev/urandom", NULL };
	for (const char *const *d = dev; *d && n < max; d++)
		out[n++] = strdup(*d);
	struct stat root;
	_cleanup_closedir_ DIR *dir = opendir("/");
	if (dir && stat("/", &root) == 0) {
		struct dirent *e;
		while ((e = readdir(dir)) && n < max) {
			if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
				continue;
			if (!strcmp(e->d_name, "proc") || !strcmp(e->d_name, "sys") ||
			    !strcmp(e->d_name, "dev"))
				continue;
			struct stat st;
			if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(st.st_mode) || st.st_dev != root.st_dev)
				continue; /* another mount, or not a directory */
			char *p = malloc(strlen(e->d_name) + 2);
			if (!p)
				break;
			sprintf(p, "/%s", e->d_name);
			out[n++] = p;
		}
	}
	for (size_t i = 0; i < s->n_mounts && n < max; i++)
		if (s->mounts[i].writable)
			out[n++] = strdup(s->mounts[i].target);
	return n;
}

static char **build_env(const struct spec *s, char *const *extra)
{
	static const char *const base[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/sh", "LANG=C.UTF-8",
		"IS_SANDBOX=1", "PADDOCK=1", NULL,
	};
	size_t n = 0, ne = 0, nx = 0;
	while (base[n])
		n++;
	if (s->env)
		while (s->env[ne])
			ne++;
	while (extra && extra[nx])
		nx++;
	char **env = calloc(n + ne + nx + 3, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *b = base[i];
		size_t klen = strcspn(b, "=") + 1;
		bool overridden = false;
		for (size_t j = 0; j < ne; j++)
			if (strncmp(s->env[j], b, klen) == 0)
				overridden = true;
		for (size_t j = 0; j < nx; j++)
			if (strncmp(extra[j], b, klen) == 0)
				overridden = true;
		if (!overridden)
			env[k++] = (char *)b;
	}
	/* The spec's variables, unless the exec request overrides them. */
	for (size_t j = 0; j < ne; j++) {
		size_t klen = strcspn(s->env[j], "=") + 1;
		bool overridden = false;
		for (size_t i = 0; i < nx; i++)
			if (strncmp(extra[i], s->env[j], klen) == 0)
				overridden = true;
		if (!overridden)
			env[k++] = s->env[j];
	}
	for (size_t j = 0; j < nx; j++)
		env[k++] = extra[j];
	char *host = NULL;
	if (asprintf(&host, "HOSTNAME=%s", s->hostname ? s->hostname : "paddock") < 0) {
		free(env);
		return NULL;
	}
	env[k++] = host; /* lives until execve, in this process only */
	if (s->tty && !getenv("TERM")) {
		bool has_term = false;
		for (size_t j = 0; j < ne; j++)
			if (!strncmp(s->env[j], "TERM=", 5))
				has_term = true;
		for (size_t j = 0; j < nx; j++)
			if (!strncmp(extra[j], "TERM=", 5))
				has_term = true;
		if (!has_term)
			env[k++] = "TERM=xterm";
	}
	env[k] = NULL;
	return env;
}

/* Move fd to >= 3 if it is 0-2, so dup2 into 0-2 cannot clobber a source. */
static int lift_fd(int fd)
{
	if (fd >= 0 && fd < 3)
		return fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return fd;
}

/* The command's last steps, shared by the sandbox's first command and by
 * every exec (exec.c): stdio and the controlling terminal are in place;
 * errpipe is fd 3 and close-on-exec. Enter the workdir, then capabilities +
 * no_new_privs, Landlock, seccomp last, execve. A failure is written to
 * errpipe as a struct pd_err. */
_Noreturn void command_exec(const struct spec *s, char *const *argv, char *const *extra_env,
			    const char *workdir, int errpipe)
{
	struct pd_err err = { 0 };
	const char *wd = workdir ? workdir : s->workdir ? s->workdir : "/workspace";
	if (chdir(wd) < 0) {
		pd_err_errno(&err, "workdir", "cannot enter %s", wd);
		goto fail;
	}
	char **env = build_env(s, extra_env);
	char *rw[128];
	size_t n_rw = rw_paths(s, rw, ARRAY_SIZE(rw));
	if (!env) {
		pd_err_set(&err, ENOMEM, "exec", "out of memory");
		goto fail;
	}
	int abi = 0;
	if (pd_caps_apply(&err) < 0 ||
	    pd_landlock_apply((const char *const *)rw, n_rw, s->strict, &abi, &err) < 0 ||
	    pd_seccomp_apply(&err) < 0)
		goto fail;
	environ = env;
	execvp(argv[0], argv);
	int e = errno;
	pd_err_set(&err, e, "exec", "cannot run '%s'", argv[0]);
	if (e == ENOENT)
		pd_err_hint(&err, "no such command in the image");
	(void)!write(errpipe, &err, sizeof err);
	_exit(e == ENOENT ? 127 : 126);
fail:
	(void)!write(errpipe, &err, sizeof err);
	_exit(125);
}

/* Default signal dispositions (unless the caller already reset them),
 * nothing blocked, a new session. */
int command_reset(bool signals_done, struct pd_err *err)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; !signals_done && sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	if (setsid() < 0)
		return pd_err_errno(err, "terminal", "setsid");
	return 0;
}

/* Make `slave` the controlling terminal and stdio, or dup in/out/err onto
 * 0-2; then move errpipe to fd 3 and close everything above it. Returns the
 * new errpipe (3) or a negative errno. */
int command_stdio(int slave, int in, int out, int er, int errpipe, struct pd_err *err)
{
	if (slave >= 0) {
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			return pd_err_errno(err, "terminal", "acquiring the pty");
		if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
			return pd_err_errno(err, "terminal", "dup2");
	} else {
		in = lift_fd(in), out = lift_fd(out), er = lift_fd(er);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(er, 2) < 0)
			return pd_err_errno(err, "stdio", "dup2");
	}
	errpipe = fcntl(errpipe, F_DUPFD_CLOEXEC, 3);
	if (errpipe < 0 || (errpipe != 3 && dup3(errpipe, 3, O_CLOEXEC) < 0))
		return pd_err_errno(err, "exec", "moving the error pipe");
	syscall(SYS_close_range, 4, ~0U, 0);
	return 3;
}

_Noreturn static void command_main(struct plan *plan, int slave, int errpipe)
{
	struct pd_err err = { 0 };
	int ep;
	if (command_reset(false, &err) < 0 ||
	    (ep = command_stdio(slave, plan->io.in, plan->io.out, plan->io.err, errpipe, &err)) < 0) {
		(void)!write(errpipe, &err, sizeof err);
		_exit(125);
	}
	command_exec(plan->spec, plan->spec->argv, NULL, NULL, ep);
}

/* Forward signals to the command and reap everything; exit with the
 * command's status, docker-style. */
_Noreturn static void pid1_loop(struct plan *plan, pid_t cmd, int errpipe)
{
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	struct pd_err err;
	/* An exec failure is written to the pipe; success closes it. */
	ssize_t n;
	do
		n = read(errpipe, &err, sizeof err);
	while (n < 0 && errno == EINTR);
	close(errpipe);
	if (n == (ssize_t)sizeof err) {
		struct msg m = { .type = MSG_ERR, .err = err };
		msg_send(plan->sock, &m, NULL, 0);
	}
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t k = read(sfd, &si, sizeof si);
		if (k != (ssize_t)sizeof si) {
			if (k < 0 && errno == EINTR)
				continue;
			_exit(125);
		}
		if (si.ssi_signo != SIGCHLD) {
			kill(cmd, (int)si.ssi_signo);
			continue;
		}
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != cmd)
				continue;
			if (WIFEXITED(status))
				_exit(WEXITSTATUS(status));
			_exit(128 + WTERMSIG(status));
		}
	}
}

/* A named sandbox's pid 1 runs no command of its own: sessions are entered
 * by exec (exec.c) and become its children when their shim exits. It reaps
 * them and exits on SIGTERM (the kernel then kills the rest). */
_Noreturn static void idle_main(struct plan *plan)
{
	struct pd_err err;
	struct msg ready = { .type = MSG_READY, .landlock_abi = pd_landlock_abi(&err) };
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0 || msg_send(plan->sock, &ready, NULL, 0) < 0)
		_exit(125);
	close(plan->sock);
	for (int fd = 0; fd < 3; fd++) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0 && nul != fd) {
			dup2(nul, fd);
			close(nul);
		}
	}
	prctl(PR_SET_DUMPABLE, 0);
	if (pd_caps_apply(&err) < 0 || pd_seccomp_apply(&err) < 0)
		_exit(125);
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t k = read(sfd, &si, sizeof si);
		if (k != (ssize_t)sizeof si) {
			if (k < 0 && errno == EINTR)
				continue;
			_exit(125);
		}
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			_exit(0);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

/* pid 1 is a fork of the caller: its argument and environment strings (the
 * host command line, the caller's environment, which may hold secrets) are
 * still in its memory, and /proc/1/cmdline shows the first. Move the
 * environment to the heap and wipe both regions. */
void scrub_inherited_strings(void)
{
	char buf[2048];
	_cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may contain spaces */
	if (!p)
		return;
	/* fields 48-51 (1-based): arg_start arg_end env_start env_end; p is at
	 * the end of field 2 */
	unsigned long v[4];
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field >= 48 && field <= 51)
			v[field - 48] = strtoul(tok, NULL, 10);
	}
	if (field < 51 || v[1] < v[0] || v[3] < v[2])
		return;
	/* Only paddock's own settings are kept (test hooks such as
	 * PADDOCK_LANDLOCK_MAX_ABI): whatever else the caller's environment
	 * held (an API key exported in the shell that started the daemon) must
	 * not be copied into a process that lives in the sandbox. */
	size_t ne = 0, nk = 0;
	while (environ && environ[ne])
		ne++;
	char **copy = calloc(ne + 1, sizeof *copy);
	if (!copy)
		return;
	for (size_t i = 0; i < ne; i++)
		if (!strncmp(environ[i], "PADDOCK_", 8) && !(copy[nk++] = strdup(environ[i])))
			return;
	environ = copy;
	memset((void *)v[0], 0, v[1] - v[0]);
	memset((void *)v[2], 0, v[3] - v[2]);
	static const char name[] = "paddock-init";
	if (v[1] - v[0] > sizeof name)
		memcpy((void *)v[0], name, sizeof name);
	/* and its comm, so that `pkill paddockd` never hits a sandbox */
	prctl(PR_SET_NAME, name);
}

_Noreturn void sandbox_child(struct plan *plan)
{
	struct pd_err err = { 0 };
	int sock = plan->sock;
	scrub_inherited_strings();
	/* A named sandbox outlives its daemon (a restarted daemon adopts it). */
	if (!plan->persistent)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (plan->watch_fd >= 0)
		close(plan->watch_fd);
	plan->watch_fd = -1;
	{
		int keep[16];
		size_t nk = 0;
		keep[nk++] = sock;
		keep[nk++] = plan->io.in;
		keep[nk++] = plan->io.out;
		keep[nk++] = plan->io.err;
		for (size_t i = 0; i < plan->n_cg_tasks && nk < ARRAY_SIZE(keep); i++)
			keep[nk++] = plan->cg_tasks[i];
		close_all_except(keep, nk);
	}
	size_t nfds = FD_MOUNT0 + plan->n_mounts;
	int *fds = calloc(nfds, sizeof *fds);
	if (!fds)
		_exit(125);
	/* 1. */
	if (recv_setup(plan, fds, nfds, &err) < 0)
		child_fail(sock, &err);
	/* 2. join the cgroups (v1; on v2 clone3 placed us already) */
	for (size_t i = 0; i < plan->n_cg_tasks; i++) {
		if (write(plan->cg_tasks[i], "0", 1) != 1) {
			pd_err_errno(&err, "cgroup", "joining the sandbox's cgroup");
			child_fail(sock, &err);
		}
		close(plan->cg_tasks[i]);
	}
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || setgroups(0, NULL) < 0) {
		pd_err_errno(&err, "userns", "becoming root in the user namespace");
		child_fail(sock, &err);
	}
	/* The credential change above cleared the parent-death signal. */
	if (!plan->persistent)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWCGROUP) < 0) {
		pd_err_errno(&err, "cgroupns", "creating the cgroup namespace");
		child_fail(sock, &err);
	}
	/* 3. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		pd_err_errno(&err, "mount", "making the mount namespace private");
		child_fail(sock, &err);
	}
	/* The overlay is attached at /tmp of the (private copy of the) host tree
	 * only until pivot_root: nothing of it is visible on the host. */
	if (sys_move_mount(fds[FD_ROOT], "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		pd_err_errno(&err, "mount", "attaching the root filesystem");
		child_fail(sock, &err);
	}
	if (rootfs_build(plan, fds[FD_ROOT], fds, &err) < 0 || rootfs_pivot(fds[FD_ROOT], &err) < 0)
		child_fail(sock, &err);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	free(fds);
	/* After pivot_root: a symlink at /etc/resolv.conf resolves inside. */
	if (plan->resolv_conf && write_resolv_conf(plan->resolv_conf, &err) < 0)
		child_fail(sock, &err);
	if (plan->ca_pem && install_ca(plan->ca_pem, &err) < 0)
		child_fail(sock, &err);
	/* 4. */
	const struct spec *s = plan->spec;
	const char *hn = s->hostname ? s->hostname : "paddock";
	if (sethostname(hn, strlen(hn)) < 0) {
		pd_err_errno(&err, "uts", "sethostname");
		child_fail(sock, &err);
	}
	/* a joined netns (egress) is the host's: its lo is already up, and not
	 * ours to change */
	if (s->network != PD_NET_HOST_BUILD && !plan->joined_netns && loopback_up(&err) < 0)
		child_fail(sock, &err);
	int abi = pd_landlock_abi(&err);
	if (abi < 0)
		child_fail(sock, &err);
	if (abi == 0 && s->strict) {
		pd_err_set(&err, EOPNOTSUPP, "landlock", "the kernel offers no Landlock and --strict "
							 "was given");
		pd_err_hint(&err, "run on Linux >= 5.13 with landlock in lsm=, or drop --strict");
		child_fail(sock, &err);
	}
	if (plan->idle)
		idle_main(plan);
	/* 5. */
	int master = -1, slave = -1;
	if (s->tty) {
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		int unlock = 0;
		if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
		    (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			pd_err_errno(&err, "terminal", "allocating a pty in the sandbox");
			child_fail(sock, &err);
		}
		struct winsize ws = { .ws_row = plan->io.rows, .ws_col = plan->io.cols };
		if (ws.ws_row && ws.ws_col && ioctl(master, TIOCSWINSZ, &ws) < 0) {
			pd_err_errno(&err, "terminal", "setting the pty's size");
			child_fail(sock, &err);
		}
	}
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		pd_err_errno(&err, "exec", "pipe");
		child_fail(sock, &err);
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t cmd = fork();
	if (cmd < 0) {
		pd_err_errno(&err, "exec", "fork");
		child_fail(sock, &err);
	}
	if (cmd == 0) {
		close(ep[0]);
		close(sock);
		if (master >= 0)
			close(master);
		command_main(plan, slave, ep[1]);
	}
	close(ep[1]);
	if (slave >= 0)
		close(slave);
	/* 6. */
	struct msg ready = { .type = MSG_READY, .landlock_abi = abi };
	if (msg_send(sock, &ready, master >= 0 ? &master : NULL, master >= 0 ? 1 : 0) < 0)
		_exit(125);
	if (master >= 0)
		close(master);
	for (int fd = 0; fd < 3; fd++) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0 && nul != fd) {
			dup2(nul, fd);
			close(nul);
		}
	}
	/* pid 1 keeps no power the command lacks: not traceable, same caps and
	 * seccomp filter. */
	prctl(PR_SET_DUMPABLE, 0);
	if (pd_caps_apply(&err) < 0 || pd_seccomp_apply(&err) < 0)
		_exit(125);
	pid1_loop(plan, cmd, ep[0]);
}
