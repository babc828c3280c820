/* cmd-run.c: `paddock run [OPTIONS] -- CMD [ARGS...]`.
 *
 * Reads paddock.yaml and the flags into a spec (spec-flags.c), resolves the
 * image, runs the setup script before the command, starts the sandbox and
 * relays the terminal or the standard streams until the command ends. The
 * caller's terminal is never handed to the sandbox: with -t the sandbox gets
 * its own pty; without, a terminal on stdin/stdout/stderr is replaced by a
 * pipe that we relay. */
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "egress/client.h"
#include "image/image.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"

static void run_usage(FILE *f)
{
	fputs("usage: paddock run [OPTIONS] -- CMD [ARGS...]\n"
	      "\n"
	      "Run CMD as root in a fresh, disposable sandbox; nothing of it remains after.\n"
	      "\n"
	      "  -t, --tty               allocate a pty inside the sandbox\n"
	      "  -i, --interactive       keep stdin open (always on; accepted for docker users)\n"
	      "      --rm                remove the sandbox at exit (always on for run)\n"
	      "      --image PATH        root filesystem directory (default: Debian 12 image)\n"
	      "      --mount SRC:DST[:rw] bind SRC at DST, read-only unless :rw\n"
	      "      --unmask NAME       do not mask this deny-list entry (e.g. .npmrc)\n"
	      "      --workspace MODE    auto (clone/copy of the current directory) | none\n"
	      "      --workspace-mount   bind the current directory read-write (weaker)\n"
	      "  -w, --workdir DIR       working directory inside (default /workspace)\n"
	      "  -e, --env NAME=VALUE    set an environment variable\n"
	      "      --memory SIZE       memory limit (default 4G; 0 = none)\n"
	      "      --pids N            process limit (default 4096; 0 = none)\n"
	      "      --cpus N            CPU limit, e.g. 1.5 (default none)\n"
	      "      --disk SIZE         size of the writable layer (default 4G)\n"
	      "      --network MODE      filtered (default: allowlisted names only), open\n"
	      "                          (any public address) or off (loopback only)\n"
	      "      --allow NAME        allow a host name (or *.domain) in filtered mode\n"
	      "      --deny NAME         refuse a host name (wins over --allow)\n"
	      "      --hostname NAME     hostname inside (default paddock)\n"
	      "      --strict            refuse to start if any fence layer is unavailable\n"
	      "  -f, --spec FILE         read FILE instead of ./paddock.yaml (or the one at\n"
	      "                          the top of the git work tree)\n"
	      "      --no-spec           ignore paddock.yaml\n"
	      "  -h, --help              this help\n",
	      f);
}

/* ---- relay -------------------------------------------------------------- */

struct pipe_buf {
	int from, to;
	char buf[65536];
	size_t len, off;
	bool eof;
};

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Move bytes from->to through b. Returns false when the direction is done. */
static bool pump(struct pipe_buf *b, short rev_from, short rev_to)
{
	if (b->len == 0 && !b->eof && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(b->from, b->buf, sizeof b->buf);
		if (n > 0) {
			b->len = (size_t)n;
			b->off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			b->eof = true;
		}
	}
	if (b->len && (rev_to & POLLOUT || true)) {
		ssize_t n = write(b->to, b->buf + b->off, b->len);
		if (n > 0) {
			b->off += (size_t)n;
			b->len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			b->len = 0; /* reader gone: drop */
			b->eof = true;
		}
	}
	return !(b->eof && b->len == 0);
}

static void winsize_copy(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) == 0)
		ioctl(to, TIOCSWINSZ, &ws);
}

/* Relay until the sandbox ends and its output is drained. */
static void relay(struct sandbox *sb, struct pipe_buf *bufs, size_t nb, int sigfd, bool tty)
{
	int pidfd = sandbox_pidfd(sb);
	bool ended = false;
	for (;;) {
		struct pollfd p[8];
		size_t np = 0;
		p[np++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = ended ? -1 : pidfd, .events = POLLIN };
		size_t base = np;
		bool active = false;
		for (size_t i = 0; i < nb; i++) {
			struct pipe_buf *b = &bufs[i];
			bool live = !(b->eof && b->len == 0);
			p[np++] = (struct pollfd){ .fd = live && !b->len && !b->eof ? b->from : -1,
						   .events = POLLIN };
			p[np++] = (struct pollfd){ .fd = live && b->len ? b->to : -1,
						   .events = POLLOUT };
			if (live && i > 0)
				active = true; /* output directions */
		}
		if (ended && !active)
			return;
		int r = poll(p, np, ended ? 200 : -1);
		if (r < 0 && errno != EINTR)
			return;
		if (r == 0 && ended)
			return; /* output quiet after the end: done */
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGWINCH && tty)
					winsize_copy(STDIN_FILENO, sandbox_pty(sb));
				else if (si.ssi_signo != SIGWINCH)
					sandbox_signal(sb, (int)si.ssi_signo);
			}
		}
		if (p[1].revents & POLLIN)
			ended = true;
		for (size_t i = 0; i < nb; i++) {
			short rf = p[base + 2 * i].revents, rt = p[base + 2 * i + 1].revents;
			if (rf || rt)
				pump(&bufs[i], rf, rt);
			if (i == 0 && bufs[0].eof && bufs[0].len == 0 && bufs[0].to >= 0 && !tty) {
				close(bufs[0].to); /* stdin ended: let the command see EOF */
				bufs[0].to = -1;
			}
		}
	}
}

/* What the gateway refused, told once on stderr: the sandbox's program may
 * only say "connection refused". */
static void run_event(json_t *ev, void *ctx)
{
	const char *verdict = json_string_value(json_object_get(ev, "verdict"));
	const char *name = json_string_value(json_object_get(ev, "name"));
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	static char told[16][128];
	static size_t n_told;
	if (!verdict || strcmp(verdict, "deny"))
		return;
	/* the resolver's trouble or a query type not served is not a policy
	 * refusal: the name may well work (an AAAA question refused upstream
	 * while A answers) */
	if (reason && (!strncmp(reason, "upstream", 8) || !strcmp(reason, "query type not served")))
		return;
	for (size_t i = 0; name && i < n_told; i++)
		if (!strcmp(told[i], name))
			return; /* once per name: A, AAAA and the connection all say it */
	if (name && n_told < 16)
		snprintf(told[n_told++], sizeof told[0], "%s", name);
	if (reason && !strcmp(reason, "not in allowlist"))
		cli_errorf("network: blocked %s: not in the allowlist (add --allow %s, or "
			   "network.allow in paddock.yaml)", name ? name : "?", name ? name : "NAME");
	else
		cli_errorf("network: blocked %s: %s", name ? name : "a connection",
			   reason ? reason : "refused");
}

static char run_if[16]; /* our veth's host end, for the watcher */

/* In the sandbox's watcher, once this process died without cleaning up
 * (SIGKILL): the sandbox is gone, so is its veth; its nft rules are not. */
static void run_abandoned(void)
{
	/* pid 1 owns the plumbing: until it has exited (its last moments may
	 * outlast the cgroup's emptying) gc must keep it. A few passes. */
	for (int i = 0; i < 10; i++) {
		pd_netns_gc(NULL);
		if (!run_if[0] || if_nametoindex(run_if) == 0)
			break;
		usleep(100 * 1000);
	}
	pd_netns_gc(NULL); /* the rules of a veth that went away on its own */
}

/* The network plumbing (veth, nft rules) exists from pd_net_up on, before
 * the sandbox's watcher does: a small process started first removes it if
 * we die before cleaning up ourselves (SIGKILL during setup). It holds
 * nothing but its pipe; EOF without the 'd' byte means we died. Returns the
 * pipe's write end, or -1 with errno set. */
static int start_net_guard(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int keep = p[0];
		if (keep != 3 && dup2(keep, 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		if (fork() != 0) /* the guard is not our child: nobody waits for it */
			_exit(0);
		char c = 0;
		ssize_t n;
		do
			n = read(3, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && c == 'd')
			_exit(0);
		for (int i = 0; i < 10; i++) { /* the sandbox's watcher may still be at work */
			pd_netns_gc(NULL);
			usleep(100 * 1000);
		}
		_exit(0);
	}
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return p[1];
}

int cmd_run(int argc, char **argv)
{
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	int rc = EXIT_PADDOCK;
	struct sandbox *sb = NULL;
	struct termios saved;
	bool raw = false;
	int pipes[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int sigfd = -1;
	struct pd_egress eg = { .sock = -1 };
	char *ca_pem = NULL;
	int guard_fd = -1;
	struct pd_net net = { .ns = { .fd = -1 } };
	bool net_up = false;

	int r = cli_parse_spec_flags(argc, argv, CLI_SPEC_RUN, &s, NULL, &err);
	if (r == 1) {
		run_usage(stdout);
		rc = 0;
		goto out;
	}
	if (r < 0 || spec_validate(&s, &err) < 0)
		goto fail;
	if (cli_apply_setup(&s, &err) < 0 || sandbox_check_root(&err) < 0)
		goto fail;
	/* paddock.yaml's image: section (unless --image overrides it): the image
	 * built from it, from the cache when it was built before. */
	char *image = NULL;
	if (!s.image && (s.image_spec.base || s.image_spec.packages || s.image_spec.agents ||
			 s.image_spec.run)) {
		if (image_build(&s.image_spec, false, cli_progress, NULL, &image, &err) < 0)
			goto fail;
	} else if (image_resolve(s.image, &image, cli_progress, NULL, &err) < 0) {
		goto fail;
	}
	free(s.image);
	s.image = image;

	/* The sandbox never gets the caller's terminal. */
	struct sandbox_io io = { .in = STDIN_FILENO, .out = STDOUT_FILENO, .err = STDERR_FILENO };
	/* Network filtered/open: the sandbox's own netns behind the gateway. */
	char resolv[128];
	if (s.network == PD_NET_FILTERED || s.network == PD_NET_OPEN) {
		char id[24];
		snprintf(id, sizeof id, "r%d", (int)getpid());
		/* before anything is made: the guard must hold none of it */
		if ((guard_fd = start_net_guard()) < 0) {
			pd_err_errno(&err, "network", "starting the plumbing's guard");
			goto fail;
		}
		if (pd_egress_spawn(NULL, NULL, &eg, &err) < 0)
			goto fail;
		eg.on_event = run_event;
		if (pd_net_up(&eg, id, &s, &net, &err) < 0)
			goto fail;
		net_up = true;
		snprintf(run_if, sizeof run_if, "%s", net.ns.host_if);
		if (pd_net_env(&net, &s.env) < 0) {
			pd_err_set(&err, ENOMEM, "network", "out of memory");
			goto fail;
		}
		pd_net_resolv_conf(&net, resolv, sizeof resolv);
		if (s.n_secrets) {
			struct pd_secrets sec;
			int sr = pd_secrets_read(&s, NULL, &sec, &err);
			if (sr == 0) {
				sr = pd_net_secrets(&eg, net.name, &sec, &ca_pem, &err);
				if (sr == 0 && (pd_secrets_env(&sec, &s.env) < 0 || pd_net_ca_env(&s.env) < 0))
					sr = pd_err_set(&err, ENOMEM, "secrets", "out of memory");
				pd_secrets_wipe(&sec);
			}
			if (sr < 0)
				goto fail;
			io.ca_pem = ca_pem;
		}
		io.abandoned = run_abandoned;
		io.join_netns = true;
		io.netns_fd = net.ns.fd;
		io.resolv_conf = resolv;
	}
	struct winsize ws;
	if (s.tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
		io.rows = ws.ws_row;
		io.cols = ws.ws_col;
	}
	int *iov[3] = { &io.in, &io.out, &io.err };
	if (!s.tty)
		for (int fd = 0; fd < 3; fd++) {
			if (!isatty(fd))
				continue;
			if (pipe2(pipes[fd], O_CLOEXEC) < 0) {
				pd_err_errno(&err, "stdio", "pipe");
				goto fail;
			}
			*iov[fd] = fd == 0 ? pipes[fd][0] : pipes[fd][1];
		}
	sigset_t sigs;
	sigemptyset(&sigs);
	int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
		sigaddset(&sigs, fwd[i]);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	if (sandbox_start(&s, &io, &sb, &err) < 0)
		goto fail;
	if (net_up && pd_net_owner(&net, sandbox_pid(sb), &err) < 0)
		goto fail;
	if (sandbox_warning(sb))
		cli_errorf("warning: %s", sandbox_warning(sb));

	struct pipe_buf *bufs = calloc(3, sizeof *bufs);
	size_t nb = 0;
	if (!bufs) {
		pd_err_set(&err, ENOMEM, "run", "out of memory");
		goto fail;
	}
	if (s.tty) {
		int m = sandbox_pty(sb);
		if (isatty(STDIN_FILENO)) {
			winsize_copy(STDIN_FILENO, m);
			if (tcgetattr(STDIN_FILENO, &saved) == 0) {
				struct termios t = saved;
				cfmakeraw(&t);
				raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
			}
		}
		set_nonblock(m);
		bufs[nb++] = (struct pipe_buf){ .from = STDIN_FILENO, .to = m };
		bufs[nb++] = (struct pipe_buf){ .from = m, .to = STDOUT_FILENO };
	} else {
		/* Our copies of the sandbox's ends must go, or EOF never comes. */
		if (pipes[0][0] >= 0) { close(pipes[0][0]); pipes[0][0] = -1; }
		if (pipes[1][1] >= 0) { close(pipes[1][1]); pipes[1][1] = -1; }
		if (pipes[2][1] >= 0) { close(pipes[2][1]); pipes[2][1] = -1; }
		bufs[nb++] = (struct pipe_buf){ .from = pipes[0][1] >= 0 ? STDIN_FILENO : -1,
						.to = pipes[0][1], .eof = pipes[0][1] < 0 };
		if (pipes[1][0] >= 0)
			bufs[nb++] = (struct pipe_buf){ .from = pipes[1][0], .to = STDOUT_FILENO };
		if (pipes[2][0] >= 0)
			bufs[nb++] = (struct pipe_buf){ .from = pipes[2][0], .to = STDERR_FILENO };
		for (size_t i = 0; i < nb; i++)
			if (bufs[i].to >= 0)
				set_nonblock(bufs[i].to);
	}
	relay(sb, bufs, nb, sigfd, s.tty);
	free(bufs);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw = false;
	int code = EXIT_PADDOCK;
	err.msg[0] = '\0';
	if (sandbox_wait(sb, &code, &err) < 0)
		goto fail;
	if (err.msg[0])
		cli_error(&err);
	rc = code;
	goto out;
fail:
	cli_error(&err);
	rc = EXIT_PADDOCK;
out:
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	sandbox_free(sb);
	if (eg.sock >= 0) {
		json_t *ev;
		while (pd_egress_read_event(&eg, &ev) > 0) {
			run_event(ev, NULL);
			json_decref(ev);
		}
	}
	if (net_up)
		pd_net_down(&eg, &net);
	if (eg.pid > 0)
		pd_egress_stop(&eg);
	if (guard_fd >= 0) { /* cleaned up: the guard has nothing to do */
		(void)!write(guard_fd, "d", 1);
		close(guard_fd);
	}
	free(ca_pem);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (pipes[i][j] >= 0)
				close(pipes[i][j]);
	if (sigfd >= 0)
		close(sigfd);
	spec_free(&s);
	return rc;
}
