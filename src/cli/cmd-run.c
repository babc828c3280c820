/* cmd-run.c: `paddock run [OPTIONS] -- CMD [ARGS...]`.
 *
 * Parses flags into a spec, resolves the image, starts the sandbox and
 * relays the terminal or the standard streams until the command ends. The
 * caller's terminal is never handed to the sandbox: with -t the sandbox gets
 * its own pty; without, a terminal on stdin/stdout/stderr is replaced by a
 * pipe that we relay. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
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
	      "      --network MODE      off (only mode in this build)\n"
	      "      --hostname NAME     hostname inside (default paddock)\n"
	      "      --strict            refuse to start if any fence layer is unavailable\n"
	      "  -h, --help              this help\n",
	      f);
}

enum {
	OPT_RM = 256, OPT_IMAGE, OPT_MOUNT, OPT_UNMASK, OPT_WORKSPACE, OPT_WORKSPACE_MOUNT,
	OPT_MEMORY, OPT_PIDS, OPT_CPUS, OPT_DISK, OPT_NETWORK, OPT_HOSTNAME, OPT_STRICT,
};

static const struct option run_opts[] = {
	{ "tty", no_argument, NULL, 't' },
	{ "interactive", no_argument, NULL, 'i' },
	{ "rm", no_argument, NULL, OPT_RM },
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "mount", required_argument, NULL, OPT_MOUNT },
	{ "unmask", required_argument, NULL, OPT_UNMASK },
	{ "workspace", required_argument, NULL, OPT_WORKSPACE },
	{ "workspace-mount", no_argument, NULL, OPT_WORKSPACE_MOUNT },
	{ "workdir", required_argument, NULL, 'w' },
	{ "env", required_argument, NULL, 'e' },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "pids", required_argument, NULL, OPT_PIDS },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int strv_push(char ***v, const char *s)
{
	size_t n = 0;
	if (*v)
		while ((*v)[n])
			n++;
	char **nv = realloc(*v, (n + 2) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[n] = strdup(s)))
		return -ENOMEM;
	nv[n + 1] = NULL;
	return 0;
}

static int add_mount(struct spec *s, const char *arg, struct pd_err *err)
{
	struct pd_mount m;
	int r = spec_parse_mount(arg, &m, err);
	if (r < 0)
		return r;
	struct pd_mount *nv = realloc(s->mounts, (s->n_mounts + 1) * sizeof *nv);
	if (!nv) {
		free(m.source);
		free(m.target);
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	}
	s->mounts = nv;
	s->mounts[s->n_mounts++] = m;
	return 0;
}

static int size_opt(const char *flag, const char *v, uint64_t *out, struct pd_err *err)
{
	if (spec_parse_size(v, out) < 0)
		return pd_err_set(err, EINVAL, "spec", "%s '%s': expected a size like 512M or 2G",
				  flag, v);
	return 0;
}

/* Parse argv into s. Returns 0, 1 for --help, or negative with err. */
static int parse_run(int argc, char **argv, struct spec *s, struct pd_err *err)
{
	int c, r = 0;
	bool ws_mount = false;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+tihw:e:", run_opts, NULL)) != -1) {
		switch (c) {
		case 't': s->tty = true; break;
		case 'i': case OPT_RM: break;
		case OPT_IMAGE: free(s->image); s->image = strdup(optarg); break;
		case OPT_MOUNT: r = add_mount(s, optarg, err); break;
		case OPT_UNMASK: r = strv_push(&s->unmask, optarg); break;
		case OPT_WORKSPACE:
			if (!strcmp(optarg, "none"))
				s->workspace = PD_WS_NONE;
			else if (!strcmp(optarg, "auto"))
				s->workspace = PD_WS_AUTO;
			else
				r = pd_err_set(err, EINVAL, "spec",
					       "--workspace '%s': expected auto or none", optarg);
			break;
		case OPT_WORKSPACE_MOUNT: ws_mount = true; break;
		case 'w': free(s->workdir); s->workdir = strdup(optarg); break;
		case 'e': r = strv_push(&s->env, optarg); break;
		case OPT_MEMORY: r = size_opt("--memory", optarg, &s->memory, err); break;
		case OPT_DISK: r = size_opt("--disk", optarg, &s->disk, err); break;
		case OPT_PIDS: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-')
				r = pd_err_set(err, EINVAL, "spec", "--pids '%s': expected a number",
					       optarg);
			s->pids = v;
			break;
		}
		case OPT_CPUS:
			if (spec_parse_cpus(optarg, &s->cpus_milli) < 0)
				r = pd_err_set(err, EINVAL, "spec",
					       "--cpus '%s': expected a number like 1 or 1.5", optarg);
			break;
		case OPT_NETWORK:
			if (!strcmp(optarg, "off"))
				s->network = PD_NET_OFF;
			else if (!strcmp(optarg, "filtered"))
				s->network = PD_NET_FILTERED;
			else if (!strcmp(optarg, "open"))
				s->network = PD_NET_OPEN;
			else
				r = pd_err_set(err, EINVAL, "spec",
					       "--network '%s': expected off, filtered or open",
					       optarg);
			break;
		case OPT_HOSTNAME: free(s->hostname); s->hostname = strdup(optarg); break;
		case OPT_STRICT: s->strict = true; break;
		case 'h': return 1;
		case '?':
		default:
			if (optopt)
				return pd_err_set(err, EINVAL, "run", "unknown option '-%c'", optopt),
				       pd_err_hint(err, "see paddock run --help");
			return pd_err_set(err, EINVAL, "run", "unknown option '%s'",
					  argv[optind - 1]),
			       pd_err_hint(err, "see paddock run --help");
		}
		if (r < 0)
			return r == -ENOMEM ? pd_err_set(err, ENOMEM, "spec", "out of memory") : r;
	}
	if (optind >= argc)
		return pd_err_set(err, EINVAL, "run", "no command given"),
		       pd_err_hint(err, "usage: paddock run [OPTIONS] -- CMD [ARGS...]");
	for (int i = optind; i < argc; i++)
		if (strv_push(&s->argv, argv[i]) < 0)
			return pd_err_set(err, ENOMEM, "spec", "out of memory");
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd))
		return pd_err_errno(err, "workspace", "getcwd");
	if (ws_mount) {
		if (s->workspace == PD_WS_NONE)
			return pd_err_set(err, EINVAL, "spec",
					  "--workspace none and --workspace-mount exclude each other");
		s->workspace = PD_WS_MOUNT;
		char arg[4200];
		snprintf(arg, sizeof arg, "%s:/workspace:rw", cwd);
		if ((r = add_mount(s, arg, err)) < 0)
			return r;
	} else if (s->workspace == PD_WS_AUTO) {
		s->workspace_src = strdup(cwd);
	}
	if (s->tty) {
		const char *term = getenv("TERM");
		if (term && *term) {
			char kv[256];
			snprintf(kv, sizeof kv, "TERM=%s", term);
			strv_push(&s->env, kv);
		}
	}
	return 0;
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

	int r = parse_run(argc, argv, &s, &err);
	if (r == 1) {
		run_usage(stdout);
		rc = 0;
		goto out;
	}
	if (r < 0 || spec_validate(&s, &err) < 0)
		goto fail;
	char *image = NULL;
	if (image_resolve(s.image, &image, cli_progress, NULL, &err) < 0)
		goto fail;
	free(s.image);
	s.image = image;

	/* The sandbox never gets the caller's terminal. */
	struct sandbox_io io = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };
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
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (pipes[i][j] >= 0)
				close(pipes[i][j]);
	if (sigfd >= 0)
		close(sigfd);
	spec_free(&s);
	return rc;
}
