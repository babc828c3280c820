/* cmd-sandbox.c: the commands for named sandboxes, all served by paddockd:
 * up, exec, attach, sessions, ls, logs, diff, pull, stop, start, down,
 * events. The daemon is started on demand (like tmux's server) when its
 * socket does not answer and we are root. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "daemon/proto.h"
#include "egress/client.h"
#include "spec/spec.h"
#include "spec/yaml.h"

/* ---- the connection ---------------------------------------------------- */

static const char *sock_path(void)
{
	const char *p = getenv("PADDOCK_SOCKET");
	return p && p[0] == '/' ? p : PD_SOCKET_DEFAULT;
}

static int try_connect(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path());
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Start paddockd (next to this binary) detached from us, and wait for it. */
static int start_daemon(struct pd_err *err)
{
	char self[PATH_MAX], exe[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return pd_err_errno(err, "daemon", "finding paddockd");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(exe, sizeof exe, "%s/paddockd", self);
	if (access(exe, X_OK) < 0)
		return pd_err_errno(err, "daemon", "%s", exe);
	pid_t pid = fork();
	if (pid < 0)
		return pd_err_errno(err, "daemon", "fork");
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		int nul = open("/dev/null", O_RDWR);
		char logp[PATH_MAX];
		const char *state = getenv("PADDOCK_STATE_DIR");
		snprintf(logp, sizeof logp, "%s/paddockd.log",
			 state && state[0] == '/' ? state : "/var/lib/paddock");
		int log = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		dup2(nul, 0);
		dup2(log >= 0 ? log : nul, 1);
		dup2(log >= 0 ? log : nul, 2);
		if (chdir("/") < 0)
			_exit(1);
		/* The daemon does not inherit our environment (it may hold an API
		 * key the shell exported): a fixed PATH and paddock's own settings. */
		extern char **environ;
		char *env[64];
		size_t ne = 0;
		env[ne++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		for (char **e = environ; e && *e && ne < ARRAY_SIZE(env) - 1; e++)
			if (!strncmp(*e, "PADDOCK_", 8))
				env[ne++] = *e;
		env[ne] = NULL;
		execle(exe, "paddockd", "--socket", sock_path(), (char *)NULL, env);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	for (int i = 0; i < 500; i++) { /* 5 s */
		int fd = try_connect();
		if (fd >= 0)
			return fd;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return pd_err_set(err, ETIMEDOUT, "daemon", "paddockd did not come up on %s", sock_path());
}

static int daemon_connect(struct pd_err *err)
{
	int fd = try_connect();
	if (fd >= 0)
		return fd;
	if ((fd == -ENOENT || fd == -ECONNREFUSED) && geteuid() == 0)
		return start_daemon(err);
	pd_err_set(err, -fd, "daemon", "cannot reach paddockd at %s", sock_path());
	return pd_err_hint(err, fd == -EACCES ? "join the paddock group, or use sudo"
					      : "start it (sudo paddockd, or paddockd.service)");
}

/* Send req (stolen) and read the JSON answer. Returns the answer, or NULL
 * after printing why. *fd_out keeps the connection when non-NULL. */
static json_t *request(json_t *req, int *fd_out, int *rc)
{
	struct pd_err err = { 0 };
	*rc = EXIT_PADDOCK;
	/* a daemon that closes on us (too many clients, a restart) is an
	 * error to report, not a SIGPIPE that kills us without a word */
	signal(SIGPIPE, SIG_IGN);
	int fd = daemon_connect(&err);
	if (fd < 0) {
		json_decref(req);
		cli_error(&err);
		return NULL;
	}
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int type;
	char *data = NULL;
	size_t len;
	int r = s ? pd_frame_write(fd, PD_FR_JSON, s, strlen(s)) : -ENOMEM;
	if (s)
		explicit_bzero(s, strlen(s)); /* it may carry secret values */
	free(s);
	/* a daemon that refuses us may have closed before reading the
	 * request, leaving its reason to read */
	if (r == 0 || r == -EPIPE || r == -ECONNRESET) {
		int r2 = pd_frame_read(fd, &type, &data, &len);
		if (r == 0 || r2 == 0)
			r = r2;
	}
	if (r < 0 || type != PD_FR_JSON) {
		if (r == -EPIPE || r == -ECONNRESET || r == -EIO)
			cli_errorf("daemon: paddockd closed the connection without an answer (did it "
				   "stop? its log says why)");
		else
			cli_errorf("daemon: %s", r < 0 ? strerror(-r) : "unexpected answer");
		free(data);
		close(fd);
		return NULL;
	}
	json_t *ans = json_loadb(data, len, 0, NULL);
	free(data);
	if (!json_is_object(ans)) {
		json_decref(ans);
		cli_errorf("daemon: malformed answer");
		close(fd);
		return NULL;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		json_t *e = json_object_get(ans, "error");
		cli_errorf("%s", json_is_string(e) ? json_string_value(e) : "failed");
		json_int_t code = json_integer_value(json_object_get(ans, "code"));
		*rc = code > 0 && code < 256 ? (int)code : 1;
		if (!fd_out) {
			json_decref(ans);
			close(fd);
			return NULL;
		}
	} else {
		*rc = 0;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return ans;
}

/* Output from the sandbox shown in a terminal: control characters but
 * newline and tab become '?', so a log cannot drive the owner's terminal. */
static void write_out(int fd, const char *data, size_t len, bool sanitize)
{
	char buf[PD_FRAME_MAX_DATA];
	if (sanitize) {
		for (size_t i = 0; i < len && i < sizeof buf; i++) {
			unsigned char ch = (unsigned char)data[i];
			buf[i] = (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
		}
		data = buf;
	}
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* Relay a session: our stdin -> 'I' frames, 'O'/'E' -> stdout/stderr,
 * until 'X'. With tty, the terminal is raw and Ctrl-P Ctrl-Q, or "~." at the
 * start of a line, detach (the session lives on). Returns the exit code. */
static int stream(int fd, bool tty, bool input, bool sanitize, const char *name,
		  long long session)
{
	signal(SIGPIPE, SIG_IGN);
	struct termios saved;
	bool raw = false;
	int code = EXIT_PADDOCK;
	bool in_open = input, detached = false;
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGWINCH);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	int prev = '\r'; /* for ~. */
	bool tilde = false, held = false;
	for (;;) {
		struct pollfd p[3] = { { .fd = fd, .events = POLLIN },
				       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			struct winsize ws;
			if (read(sfd, &si, sizeof si) > 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
				uint8_t w[4] = { (uint8_t)(ws.ws_row >> 8), (uint8_t)ws.ws_row,
						 (uint8_t)(ws.ws_col >> 8), (uint8_t)ws.ws_col };
				pd_frame_write(fd, PD_FR_WINCH, w, 4);
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			char buf[4096];
			ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
			if (n <= 0) {
				in_open = false;
				if (!tty)
					pd_frame_write(fd, PD_FR_IN, NULL, 0);
			} else {
				size_t send = (size_t)n;
				bool was_held = held;
				ssize_t i = 0;
				held = false;
				if (tty) {
					/* keystrokes usually come one read each: a "~"
					 * at the start of a line is held back until the
					 * next key says whether it is "~." */
					for (; i < n; i++) {
						int ch = (unsigned char)buf[i];
						if ((prev == 0x10 && ch == 0x11) || (tilde && ch == '.')) {
							detached = true;
							send = (size_t)(i > 0 ? i - 1 : 0);
							break;
						}
						tilde = ch == '~' && (prev == '\r' || prev == '\n');
						prev = ch;
					}
					if (!detached && tilde) {
						held = true;
						send = (size_t)n - 1;
					}
				}
				if (was_held && !(detached && i == 0))
					pd_frame_write(fd, PD_FR_IN, "~", 1);
				if (send)
					pd_frame_write(fd, PD_FR_IN, buf, send);
				if (detached)
					break;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			int type;
			char *data = NULL;
			size_t len;
			if (pd_frame_read(fd, &type, &data, &len) < 0) {
				/* no exit frame: the daemon went away (the session may
				 * live on: paddock sessions shows it) */
				if (raw) {
					tcsetattr(STDIN_FILENO, TCSANOW, &saved);
					raw = false;
				}
				cli_errorf("lost the connection to paddockd before the session "
					   "ended");
				break;
			}
			if (type == PD_FR_OUT)
				write_out(STDOUT_FILENO, data, len, sanitize);
			else if (type == PD_FR_ERR)
				write_out(STDERR_FILENO, data, len, sanitize);
			else if (type == PD_FR_EXIT) {
				json_t *x = json_loadb(data, len, 0, NULL);
				code = (int)json_integer_value(json_object_get(x, "code"));
				json_decref(x);
				free(data);
				break;
			}
			free(data);
		}
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	if (detached) {
		fprintf(stderr, "\r\npaddock: detached from session %lld; paddock attach %s "
				"--session %lld re-attaches\n", session, name, session);
		return 0;
	}
	return code;
}

/* --json output: the value indented, or `fallback` when it cannot be printed. */
static void print_json(json_t *v, const char *fallback)
{
	char *t = json_dumps(v, JSON_INDENT(2));
	puts(t ? t : fallback);
	free(t);
}

static int simple(json_t *req)
{
	int rc;
	json_t *ans = request(req, NULL, &rc);
	json_decref(ans);
	return rc;
}

static bool name_arg(int argc, char **argv, int i, const char *cmd)
{
	if (i >= argc || argv[i][0] == '-') {
		cli_errorf("%s: missing the sandbox's name (usage: paddock %s NAME)", cmd, cmd);
		return false;
	}
	if (!pd_name_valid(argv[i])) {
		cli_errorf("%s: invalid name '%s': want 1 to 40 of [a-z0-9-], starting with "
			   "a letter or digit", cmd, argv[i]);
		return false;
	}
	return true;
}

static bool want_help(int argc, char **argv)
{
	return argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
}

/* ---- commands -------------------------------------------------------------- */

/* "NAME" -> value for every secret of s, read from its source. */
static json_t *read_secret_values(const struct spec *s, struct pd_err *err)
{
	struct pd_secrets sec;
	if (pd_secrets_read(s, NULL, &sec, err) < 0)
		return NULL;
	json_t *o = json_object();
	for (size_t i = 0; i < sec.n; i++)
		json_object_set_new(o, sec.v[i].name, json_stringn(sec.v[i].value, sec.v[i].len));
	pd_secrets_wipe(&sec);
	return o;
}

/* The values of a named sandbox's secrets, read from the sources its spec
 * names (asked from the daemon); override: one value given by hand. */
static json_t *read_sandbox_secrets(const char *name, const char *override_name,
				    const char *override_value, int *rc)
{
	json_t *ans = request(json_pack("{s:s, s:s}", "op", "secret-sources", "name", name), NULL, rc);
	if (!ans)
		return NULL;
	json_t *list = json_object_get(ans, "secrets"), *x;
	size_t i, n = json_array_size(list);
	if (override_name) {
		bool known = false;
		json_array_foreach(list, i, x) {
			const char *nm = json_string_value(json_object_get(x, "name"));
			known |= nm && !strcmp(nm, override_name);
		}
		if (!known) {
			cli_errorf("secrets set: sandbox '%s' has no secret named '%s' (paddock "
				   "secrets %s lists them)", name, override_name, name);
			json_decref(ans);
			*rc = 1;
			return NULL;
		}
	}
	struct spec tmp;
	spec_init(&tmp);
	tmp.secrets = calloc(n + 1, sizeof *tmp.secrets);
	json_array_foreach(list, i, x) {
		const char *nm = json_string_value(json_object_get(x, "name"));
		const char *from = json_string_value(json_object_get(x, "from"));
		if (!nm || !from || (override_name && !strcmp(nm, override_name)))
			continue;
		tmp.secrets[tmp.n_secrets].name = strdup(nm);
		tmp.secrets[tmp.n_secrets].from = strdup(from);
		tmp.n_secrets++;
	}
	json_decref(ans);
	struct pd_err err = { 0 };
	json_t *values = read_secret_values(&tmp, &err);
	spec_free(&tmp);
	if (!values) {
		cli_error(&err);
		*rc = EXIT_PADDOCK;
		return NULL;
	}
	if (override_name)
		json_object_set_new(values, override_name, json_string(override_value));
	return values;
}

int cmd_up(int argc, char **argv)
{
	if (want_help(argc, argv)) {
		puts("usage: paddock up NAME [OPTIONS] [-- CMD...]\n\n"
		     "Create and start the named sandbox from ./paddock.yaml and the same options as\n"
		     "paddock run; CMD is what paddock attach runs (default: a login shell).\n"
		     "Prints the name when the sandbox is ready (after its setup script).");
		return 0;
	}
	if (!name_arg(argc, argv, 1, "up"))
		return 2;
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	int r = cli_parse_spec_flags(argc - 1, argv + 1, CLI_SPEC_SHOW, &s, NULL, &err);
	if (r != 0) { /* the daemon validates (after its defaults) */
		if (r == 1)
			return spec_free(&s), 0;
		cli_error(&err);
		spec_free(&s);
		return 2;
	}
	char *yaml = spec_to_yaml(&s, &err);
	if (!yaml) {
		cli_error(&err);
		spec_free(&s);
		return EXIT_PADDOCK;
	}
	json_t *req = json_pack("{s:s, s:s, s:s?, s:s?}", "op", "up", "name", argv[1], "spec", yaml,
				"image", s.image);
	/* Secret values are read here, with our rights and environment, and
	 * travel to the daemon, which hands them to the gateway. */
	if (s.n_secrets) {
		json_t *values = read_secret_values(&s, &err);
		if (!values) {
			cli_error(&err);
			json_decref(req);
			free(yaml);
			spec_free(&s);
			return EXIT_PADDOCK;
		}
		json_object_set_new(req, "secrets", values);
	}
	if (s.workspace == PD_WS_AUTO && s.workspace_src)
		json_object_set_new(req, "cwd", json_string(s.workspace_src));
	free(yaml);
	spec_free(&s);
	int rc;
	json_t *ans = request(req, NULL, &rc);
	if (ans) {
		json_t *w = json_object_get(ans, "warning");
		if (json_is_string(w))
			cli_errorf("warning: %s", json_string_value(w));
		printf("%s\n", argv[1]);
	}
	json_decref(ans);
	return rc;
}

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tty", no_argument, NULL, 't' },     { "interactive", no_argument, NULL, 'i' },
		{ "detach", no_argument, NULL, 'd' },  { "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool tty = false, detach = false;
	json_t *env = json_array();
	const char *wd = NULL;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+tide:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': tty = true; break;
		case 'i': break;
		case 'd': detach = true; break;
		case 'e': json_array_append_new(env, json_string(optarg)); break;
		case 'w': wd = optarg; break;
		case 'h':
			puts("usage: paddock exec [-t] [-d] [-e NAME=VALUE] [-w DIR] NAME -- CMD...");
			json_decref(env);
			return 0;
		default:
			cli_errorf("exec: unknown option '%s'", argv[optind - 1]);
			json_decref(env);
			return 2;
		}
	}
	if (!name_arg(argc, argv, optind, "exec")) {
		json_decref(env);
		return 2;
	}
	const char *name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		cli_errorf("exec: no command given (usage: paddock exec NAME -- CMD...)");
		json_decref(env);
		return 2;
	}
	json_t *a = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	struct winsize ws = { 0 };
	if (tty)
		ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
	json_t *req = json_pack("{s:s, s:s, s:o, s:o, s:b, s:b, s:i, s:i, s:s?}", "op", "exec", "name",
				name, "argv", a, "env", env, "tty", tty, "detach", detach, "rows",
				ws.ws_row, "cols", ws.ws_col, "workdir", wd);
	int fd = -1, rc;
	json_t *ans = request(req, detach ? NULL : &fd, &rc);
	if (!ans)
		return rc;
	long long num = json_integer_value(json_object_get(ans, "session"));
	bool ok = json_is_true(json_object_get(ans, "ok"));
	json_decref(ans);
	if (detach) {
		printf("%lld\n", num);
		return rc;
	}
	if (!ok) {
		close(fd);
		return rc;
	}
	rc = stream(fd, tty, true, false, name, num);
	close(fd);
	return rc;
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "session", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	long long session = -1;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		if (c == 's') {
			char *end;
			session = strtoll(optarg, &end, 10);
			if (*end || session <= 0) {
				cli_errorf("attach: --session '%s': expected a number", optarg);
				return 2;
			}
		} else if (c == 'h') {
			puts("usage: paddock attach NAME [--session N]\n\n"
			     "A new shell in the sandbox, or session N again (its recent output is\n"
			     "replayed). Ctrl-P Ctrl-Q, or ~. at the start of a line, detaches.");
			return 0;
		} else {
			cli_errorf("attach: unknown option '%s'", argv[optind - 1]);
			return 2;
		}
	}
	if (!name_arg(argc, argv, optind, "attach"))
		return 2;
	const char *name = argv[optind];
	/* options may also follow the name */
	for (int i = optind + 1; i < argc; i++) {
		if (!strcmp(argv[i], "--session") && i + 1 < argc)
			session = strtoll(argv[++i], NULL, 10);
		else {
			cli_errorf("attach: unexpected argument '%s'", argv[i]);
			return 2;
		}
	}
	struct winsize ws = { 0 };
	ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
	json_t *req = json_pack("{s:s, s:s, s:i, s:i}", "op", "attach", "name", name, "rows",
				ws.ws_row, "cols", ws.ws_col);
	if (session > 0)
		json_object_set_new(req, "session", json_integer(session));
	int fd = -1, rc;
	json_t *ans = request(req, &fd, &rc);
	if (!ans)
		return rc;
	bool ok = json_is_true(json_object_get(ans, "ok"));
	long long num = json_integer_value(json_object_get(ans, "session"));
	bool tty = json_is_true(json_object_get(ans, "tty"));
	json_decref(ans);
	if (!ok) {
		close(fd);
		return rc;
	}
	rc = stream(fd, tty, true, false, name, num);
	close(fd);
	return rc;
}

static void fmt_age(int64_t since, char *buf, size_t len)
{
	int64_t d = time(NULL) - since;
	if (d < 120)
		snprintf(buf, len, "%llds", (long long)d);
	else if (d < 7200)
		snprintf(buf, len, "%lldm", (long long)d / 60);
	else if (d < 172800)
		snprintf(buf, len, "%lldh", (long long)d / 3600);
	else
		snprintf(buf, len, "%lldd", (long long)d / 86400);
}

static bool json_flag(int argc, char **argv, int from, const char *flag)
{
	for (int i = from; i < argc; i++)
		if (!strcmp(argv[i], flag))
			return true;
	return false;
}

int cmd_ls(int argc, char **argv)
{
	bool js = json_flag(argc, argv, 1, "--json"), images = json_flag(argc, argv, 1, "--images");
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") && strcmp(argv[i], "--images")) {
			cli_errorf("ls: unknown option '%s' (usage: paddock ls [--images] [--json])",
				   argv[i]);
			return 2;
		}
	int rc;
	if (images) { /* the images named sandboxes were made from (the daemon's record) */
		json_t *ans = request(json_pack("{s:s}", "op", "images"), NULL, &rc);
		if (!ans)
			return rc;
		json_t *a = json_object_get(ans, "images"), *x;
		size_t i;
		if (js) {
			print_json(a, "[]");
		} else {
			printf("%-6s %8s  %s\n", "USES", "LAST", "IMAGE");
			json_array_foreach(a, i, x) {
				char age[24];
				fmt_age(json_integer_value(json_object_get(x, "last_used")), age, sizeof age);
				printf("%-6lld %8s  %s\n",
				       (long long)json_integer_value(json_object_get(x, "uses")), age,
				       json_string_value(json_object_get(x, "path")));
			}
		}
		json_decref(ans);
		return 0;
	}
	json_t *ans = request(json_pack("{s:s}", "op", "ls"), NULL, &rc);
	if (!ans)
		return rc;
	json_t *a = json_object_get(ans, "sandboxes"), *x;
	size_t i;
	if (js) {
		print_json(a, "[]");
	} else {
		printf("%-20s %-10s %-14s %6s %9s %9s %s\n", "NAME", "STATE", "IMAGE", "AGE", "CPU",
		       "MEM", "SESSIONS");
		json_array_foreach(a, i, x) {
			const char *img = json_string_value(json_object_get(x, "image"));
			const char *base = img ? strrchr(img, '/') : NULL;
			char age[24], cpu[32], mem[32];
			fmt_age(json_integer_value(json_object_get(x, "created_at")), age, sizeof age);
			snprintf(cpu, sizeof cpu, "%.1fs",
				 (double)json_integer_value(json_object_get(x, "cpu_ns")) / 1e9);
			snprintf(mem, sizeof mem, "%.1fM",
				 (double)json_integer_value(json_object_get(x, "mem")) / 1048576.0);
			printf("%-20s %-10s %-14.14s %6s %9s %9s %lld\n",
			       json_string_value(json_object_get(x, "name")),
			       json_string_value(json_object_get(x, "state")),
			       base ? base + 1 : img ? img : "-", age, cpu, mem,
			       (long long)json_integer_value(json_object_get(x, "sessions")));
		}
	}
	json_decref(ans);
	return 0;
}

int cmd_sessions(int argc, char **argv)
{
	if (!name_arg(argc, argv, 1, "sessions"))
		return 2;
	bool js = json_flag(argc, argv, 2, "--json");
	int rc;
	json_t *ans = request(json_pack("{s:s, s:s}", "op", "sessions", "name", argv[1]), NULL, &rc);
	if (!ans)
		return rc;
	json_t *a = json_object_get(ans, "sessions"), *x;
	size_t i;
	if (js) {
		print_json(a, "[]");
	} else {
		printf("%-8s %-8s %-5s %6s %s\n", "SESSION", "STATE", "CODE", "SINCE", "COMMAND");
		json_array_foreach(a, i, x) {
			char age[24], code[24] = "-", cmd[256] = "";
			fmt_age(json_integer_value(json_object_get(x, "started_at")), age, sizeof age);
			const char *st = json_string_value(json_object_get(x, "state"));
			if (st && !strcmp(st, "exited"))
				snprintf(code, sizeof code, "%lld",
					 (long long)json_integer_value(json_object_get(x, "code")));
			size_t j;
			json_t *arg;
			json_array_foreach(json_object_get(x, "argv"), j, arg) {
				size_t l = strlen(cmd);
				snprintf(cmd + l, sizeof cmd - l, "%s%s", j ? " " : "",
					 json_string_value(arg));
			}
			for (char *p = cmd; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
			printf("%-8lld %-8s %-5s %6s %s\n",
			       (long long)json_integer_value(json_object_get(x, "session")), st, code,
			       age, cmd);
		}
	}
	json_decref(ans);
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	if (!name_arg(argc, argv, 1, "logs"))
		return 2;
	bool follow = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else {
			cli_errorf("logs: unknown option '%s' (usage: paddock logs NAME [-f])",
				   argv[i]);
			return 2;
		}
	}
	int fd = -1, rc;
	json_t *ans = request(json_pack("{s:s, s:s, s:b}", "op", "logs", "name", argv[1], "follow",
					follow),
			      &fd, &rc);
	if (!ans)
		return rc;
	bool ok = json_is_true(json_object_get(ans, "ok"));
	json_decref(ans);
	if (!ok) {
		close(fd);
		return rc;
	}
	rc = stream(fd, false, false, isatty(STDOUT_FILENO), argv[1], 0);
	close(fd);
	return rc;
}

static int review_cmd(int argc, char **argv, bool pull)
{
	const char *cmd = pull ? "pull" : "diff";
	if (!name_arg(argc, argv, 1, cmd))
		return 2;
	json_t *req = json_pack("{s:s, s:s}", "op", cmd, "name", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (!pull && !strcmp(argv[i], "--stat")) {
			json_object_set_new(req, "stat", json_true());
		} else if (!strcmp(argv[i], "--max-bytes") && i + 1 < argc) {
			uint64_t v;
			if (spec_parse_size(argv[++i], &v) < 0 || !v) {
				cli_errorf("%s: --max-bytes '%s': expected a size like 512M", cmd,
					   argv[i]);
				json_decref(req);
				return 2;
			}
			json_object_set_new(req, "max_bytes", json_integer((json_int_t)v));
		} else {
			cli_errorf("%s: unknown option '%s'", cmd, argv[i]);
			json_decref(req);
			return 2;
		}
	}
	int fd = -1, rc;
	json_t *ans = request(req, &fd, &rc);
	if (!ans)
		return rc;
	json_t *sum = json_object_get(ans, "summary");
	bool ok = json_is_true(json_object_get(ans, "ok"));
	if (ok && pull) {
		printf("paddock: %s: %lld commit(s), %lld file(s) changed, %lld insertion(s), %lld "
		       "deletion(s)\nreview: %s\n",
		       json_string_value(json_object_get(sum, "branch")),
		       (long long)json_integer_value(json_object_get(sum, "commits")),
		       (long long)json_integer_value(json_object_get(sum, "files")),
		       (long long)json_integer_value(json_object_get(sum, "insertions")),
		       (long long)json_integer_value(json_object_get(sum, "deletions")),
		       json_string_value(json_object_get(sum, "review")));
		fflush(stdout);
	}
	json_decref(ans);
	if (ok)
		rc = stream(fd, false, false, isatty(STDOUT_FILENO), argv[1], 0);
	close(fd);
	return rc;
}

int cmd_diff(int argc, char **argv) { return review_cmd(argc, argv, false); }
int cmd_pull(int argc, char **argv) { return review_cmd(argc, argv, true); }

static int lifecycle(int argc, char **argv, const char *op)
{
	if (!name_arg(argc, argv, 1, op))
		return 2;
	if (argc > 2) {
		cli_errorf("%s: unexpected argument '%s'", op, argv[2]);
		return 2;
	}
	return simple(json_pack("{s:s, s:s}", "op", op, "name", argv[1]));
}

int cmd_stop(int argc, char **argv) { return lifecycle(argc, argv, "stop"); }
int cmd_start(int argc, char **argv)
{
	if (!name_arg(argc, argv, 1, "start"))
		return 2;
	if (argc > 2) {
		cli_errorf("start: unexpected argument '%s'", argv[2]);
		return 2;
	}
	int rc;
	json_t *values = read_sandbox_secrets(argv[1], NULL, NULL, &rc);
	if (!values)
		return rc;
	json_t *req = json_pack("{s:s, s:s}", "op", "start", "name", argv[1]);
	if (json_object_size(values))
		json_object_set(req, "secrets", values);
	json_decref(values);
	return simple(req);
}

/* paddock secrets NAME: names, hosts, injections; never values.
 * paddock secrets set NAME SECRET: a new value for SECRET from stdin (the
 * others are read again from their sources); no restart. */
int cmd_secrets(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "set")) {
		if (argc != 4 || !name_arg(argc, argv, 2, "secrets set")) {
			cli_errorf("secrets set: usage: paddock secrets set NAME SECRET  (value on stdin)");
			return 2;
		}
		char buf[65536];
		size_t n = fread(buf, 1, sizeof buf - 1, stdin);
		buf[n] = '\0';
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (!n) {
			cli_errorf("secrets set: no value on stdin");
			return 2;
		}
		int rc;
		json_t *values = read_sandbox_secrets(argv[2], argv[3], buf, &rc);
		explicit_bzero(buf, sizeof buf);
		if (!values)
			return rc;
		return simple(json_pack("{s:s, s:s, s:o}", "op", "secrets-set", "name", argv[2],
					"secrets", values));
	}
	if (!name_arg(argc, argv, 1, "secrets"))
		return 2;
	bool js = json_flag(argc, argv, 2, "--json");
	int rc;
	json_t *ans = request(json_pack("{s:s, s:s}", "op", "secrets", "name", argv[1]), NULL, &rc);
	if (!ans)
		return rc;
	json_t *a = json_object_get(ans, "secrets"), *x;
	size_t i;
	if (js) {
		print_json(a, "[]");
	} else {
		printf("%-24s %-10s %-28s %s\n", "SECRET", "INJECTED", "FROM", "HOSTS");
		json_array_foreach(a, i, x) {
			char *hosts = json_dumps(json_object_get(x, "hosts"), JSON_COMPACT);
			json_int_t inj = json_integer_value(json_object_get(x, "injections"));
			char injs[24];
			snprintf(injs, sizeof injs, inj < 0 ? "-" : "%lld", (long long)inj);
			printf("%-24s %-10s %-28s %s\n", json_string_value(json_object_get(x, "name")),
			       injs, json_string_value(json_object_get(x, "from")), hosts ? hosts : "[]");
			free(hosts);
		}
	}
	json_decref(ans);
	return 0;
}
int cmd_down(int argc, char **argv) { return lifecycle(argc, argv, "down"); }

int cmd_events(int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "op", "events");
	bool js = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			js = true;
		else if (!strcmp(argv[i], "--sandbox") && i + 1 < argc)
			json_object_set_new(req, "name", json_string(argv[++i]));
		else {
			cli_errorf("events: unknown option '%s' (usage: paddock events "
				   "[--sandbox NAME] [--json])", argv[i]);
			json_decref(req);
			return 2;
		}
	}
	int rc;
	json_t *ans = request(req, NULL, &rc);
	if (!ans)
		return rc;
	json_t *a = json_object_get(ans, "events"), *x;
	size_t i;
	json_array_foreach(a, i, x) {
		if (js) {
			char *s = json_dumps(x, JSON_COMPACT);
			puts(s ? s : "{}");
			free(s);
			continue;
		}
		char ts[32], *detail = json_dumps(json_object_get(x, "detail"), JSON_COMPACT);
		time_t t = (time_t)(json_integer_value(json_object_get(x, "ts_ms")) / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		const char *sb = json_string_value(json_object_get(x, "sandbox"));
		printf("%s %-12s %-14s %s\n", ts, sb ? sb : "-",
		       json_string_value(json_object_get(x, "kind")), detail ? detail : "");
		free(detail);
	}
	json_decref(ans);
	return 0;
}

int cmd_daemon_status(int argc, char **argv)
{
	int rc;
	json_t *ans = request(json_pack("{s:s}", "op", "status"), NULL, &rc);
	if (!ans)
		return rc;
	json_object_del(ans, "ok");
	char *s = json_dumps(ans, JSON_COMPACT);
	puts(s ? s : "{}");
	free(s);
	json_decref(ans);
	return 0;
}

/* paddock allow NAME HOST... [--deny]: change a running sandbox's allowlist
 * (or denylist) without restarting it; remembered for its next start. */
int cmd_allow(int argc, char **argv)
{
	if (want_help(argc, argv)) {
		puts("usage: paddock allow NAME HOST... [--deny]\n\n"
		     "Add host names (or *.domain) to the sandbox's network allowlist, or with\n"
		     "--deny to its denylist (deny wins). Takes effect for new connections.");
		return 0;
	}
	if (!name_arg(argc, argv, 1, "allow"))
		return 2;
	json_t *hosts = json_array();
	bool deny = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--deny"))
			deny = true;
		else if (argv[i][0] == '-') {
			cli_errorf("allow: unknown option '%s'", argv[i]);
			json_decref(hosts);
			return 2;
		} else
			json_array_append_new(hosts, json_string(argv[i]));
	}
	if (!json_array_size(hosts)) {
		cli_errorf("allow: no host given (usage: paddock allow NAME HOST...)");
		json_decref(hosts);
		return 2;
	}
	return simple(json_pack("{s:s, s:s, s:o, s:b}", "op", "allow", "name", argv[1], "hosts",
				hosts, "deny", deny));
}

/* paddock net NAME [--json]: the sandbox's network: mode, lists, addresses,
 * the gateway's counters, and its latest connections from the audit log. */
int cmd_net(int argc, char **argv)
{
	if (!name_arg(argc, argv, 1, "net"))
		return 2;
	bool js = json_flag(argc, argv, 2, "--json");
	int rc;
	json_t *ans = request(json_pack("{s:s, s:s}", "op", "net", "name", argv[1]), NULL, &rc);
	if (!ans)
		return rc;
	json_object_del(ans, "ok");
	if (js) {
		print_json(ans, "{}");
		json_decref(ans);
		return 0;
	}
	char *allow = json_dumps(json_object_get(ans, "allow"), JSON_COMPACT);
	char *deny = json_dumps(json_object_get(ans, "deny"), JSON_COMPACT);
	char *stats = json_dumps(json_object_get(ans, "stats"), JSON_COMPACT);
	printf("mode:      %s\nallow:     %s\ndeny:      %s\ninterface: %s (gateway %s, sandbox %s)\n"
	       "gateway:   %s\n",
	       json_string_value(json_object_get(ans, "mode")), allow ? allow : "[]",
	       deny ? deny : "[]", json_string_value(json_object_get(ans, "interface")),
	       json_string_value(json_object_get(ans, "gateway")),
	       json_string_value(json_object_get(ans, "address")), stats ? stats : "{}");
	free(allow);
	free(deny);
	free(stats);
	json_decref(ans);
	/* the latest connections and DNS answers */
	json_t *ev = request(json_pack("{s:s, s:s}", "op", "events", "name", argv[1]), NULL, &rc);
	json_t *a = json_object_get(ev, "events"), *x;
	size_t i, n = json_array_size(a), shown = 0;
	puts("recent:");
	for (i = n; i-- > 0 && shown < 20;) {
		x = json_array_get(a, i);
		const char *k = json_string_value(json_object_get(x, "kind"));
		if (!k || (strcmp(k, "connect") && strcmp(k, "dns")))
			continue;
		json_t *d = json_object_get(x, "detail");
		printf("  %-7s %-5s %-40s %s\n", k,
		       json_string_value(json_object_get(d, "verdict")),
		       json_string_value(json_object_get(d, "name")) ?: "-",
		       json_string_value(json_object_get(d, "reason")) ?: "");
		shown++;
	}
	json_decref(ev);
	return 0;
}
