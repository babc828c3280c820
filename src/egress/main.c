/* paddock-egress: the gateway process (see egress.h).
 *
 *   paddock-egress --control-fd N [--dns-upstream ADDR[:PORT]] [--user USER]
 *                  [--upstream-ca FILE]
 *   paddock-egress --sandbox NAME --mode filtered|open [--allow PAT]...
 *                  [--deny PAT]... --proxy ADDR:PORT [--transparent ADDR:PORT]
 *                  [--dns ADDR:PORT] [--dns-upstream ADDR[:PORT]]
 *                  [--events FILE|-] [--user USER] [--upstream-ca FILE]
 *                  [--secret NAME=PLACEHOLDER:VALUE@HOST[,HOST..]]...
 *                  [--ca-out FILE]
 *
 * --upstream-ca FILE: trust only the CAs in FILE (PEM) for the upstream TLS
 * of intercepted connections, instead of EGRESS_TRUST_STORE (tests). Both
 * modes.
 * --secret (standalone, TESTS ONLY): a secret as the control channel's
 * "secrets" would give it. The value is on the command line, where other
 * processes of the host can read it (/proc/PID/cmdline) until it is
 * overwritten at start: never use it with a real secret.
 * --ca-out FILE: write the sandbox's CA certificate (PEM) there, for the
 * test's clients to trust.
 *
 * The second form (standalone, for tests and benchmarks) binds the sockets
 * itself and adds one sandbox through the same function as the control
 * channel's "add". Exit status: 0 after the control channel closes or on
 * SIGTERM/SIGINT, 1 on a runtime failure, 2 on a usage error. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress/egress.h"
#include "egress/secrets.h"

#define NOBODY 65534

static void usage_error(const char *flag, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void usage_error(const char *flag, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "paddock-egress: %s: ", flag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void fail(const struct pd_err *err) __attribute__((noreturn));
static void fail(const struct pd_err *err)
{
	char buf[1200];
	fprintf(stderr, "paddock-egress: %s\n", pd_err_format(err, buf, sizeof buf));
	exit(1);
}

struct opts {
	int control_fd;
	const char *sandbox, *mode, *proxy, *transparent, *dns, *upstream, *events, *user;
	const char *upstream_ca, *ca_out;
	const char **allow, **deny;
	size_t n_allow, n_deny;
	char **secret;
	size_t n_secret;
};

static void push(const char ***v, size_t *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv) {
		fputs("paddock-egress: out of memory\n", stderr);
		exit(1);
	}
	nv[(*n)++] = s;
	*v = nv;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "control-fd", required_argument, NULL, 'c' }, { "sandbox", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },       { "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'd' },       { "proxy", required_argument, NULL, 'p' },
		{ "transparent", required_argument, NULL, 't' }, { "dns", required_argument, NULL, 'n' },
		{ "dns-upstream", required_argument, NULL, 'u' }, { "events", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'U' },       { "help", no_argument, NULL, 'h' },
		{ "upstream-ca", required_argument, NULL, 'C' }, { "secret", required_argument, NULL, 'S' },
		{ "ca-out", required_argument, NULL, 'O' },
		{ 0 }
	};
	int c;
	*o = (struct opts){ .control_fd = -1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (c) {
		case 'c': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || *end || v < 3 || v > 1 << 20)
				usage_error("--control-fd", "\"%s\" is not a file descriptor number", optarg);
			o->control_fd = (int)v;
			break;
		}
		case 's': o->sandbox = optarg; break;
		case 'm': o->mode = optarg; break;
		case 'a': push(&o->allow, &o->n_allow, optarg); break;
		case 'd': push(&o->deny, &o->n_deny, optarg); break;
		case 'p': o->proxy = optarg; break;
		case 't': o->transparent = optarg; break;
		case 'n': o->dns = optarg; break;
		case 'u': o->upstream = optarg; break;
		case 'e': o->events = optarg; break;
		case 'U': o->user = optarg; break;
		case 'C': o->upstream_ca = optarg; break;
		case 'O': o->ca_out = optarg; break;
		case 'S': push((const char ***)&o->secret, &o->n_secret, optarg); break;
		case 'h':
			puts("usage: paddock-egress --control-fd N [--dns-upstream ADDR[:PORT]] [--user USER]\n"
			     "       paddock-egress --sandbox NAME --mode filtered|open [--allow PAT]...\n"
			     "              [--deny PAT]... --proxy ADDR:PORT [--transparent ADDR:PORT]\n"
			     "              [--dns ADDR:PORT] [--dns-upstream ADDR[:PORT]] [--events FILE|-]\n"
			     "              [--user USER] [--upstream-ca FILE] [--ca-out FILE]\n"
			     "              [--secret NAME=PLACEHOLDER:VALUE@HOST[,HOST..]]...  (tests only:\n"
			     "              the value is visible on the command line)");
			exit(0);
		case ':':
			usage_error(argv[optind - 1], "needs a value");
		default:
			usage_error(optopt ? (char[]){ '-', (char)optopt, 0 } : argv[optind - 1],
				    "unknown option (see --help)");
		}
	}
	if (optind < argc)
		usage_error(argv[optind], "unexpected argument");
	if (o->control_fd >= 0) {
		if (o->sandbox || o->proxy || o->transparent || o->dns || o->n_allow || o->n_deny || o->mode ||
		    o->n_secret || o->ca_out)
			usage_error("--control-fd", "sandboxes come from the control channel; drop the standalone flags");
		return;
	}
	if (!o->sandbox)
		usage_error("--sandbox", "required (or --control-fd)");
	if (!o->mode)
		usage_error("--mode", "required: filtered or open");
	if (!o->proxy)
		usage_error("--proxy", "required: ADDR:PORT");
}

/* A socket bound to spec ("ADDR:PORT"), listening when type is TCP. */
static int bind_spec(const char *flag, const char *spec, int type)
{
	struct sockaddr_storage sa;
	struct pd_err err = { 0 };
	if (egress_parse_sockaddr(spec, 0, &sa, &err) < 0)
		usage_error(flag, "%s", err.msg);
	int fd = socket(sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	socklen_t sl = sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sl) < 0 ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)) {
		fprintf(stderr, "paddock-egress: %s %s: %s\n", flag, spec, strerror(errno));
		exit(1);
	}
	return fd;
}

/* --secret NAME=PLACEHOLDER:VALUE@HOST[,HOST..] (all of them) -> a set.
 * The values are then overwritten in argv (they stay in the locked set). */
static struct secret_set *parse_secrets(char **args, size_t n)
{
	struct secret_spec *specs = calloc(n ? n : 1, sizeof *specs);
	char **copies = calloc(n ? n : 1, sizeof *copies);
	struct secret_set *set = NULL;
	struct pd_err err = { 0 };
	if (!specs || !copies)
		usage_error("--secret", "out of memory");
	for (size_t i = 0; i < n; i++) {
		char *a = copies[i] = strdup(args[i]), *eq, *colon, *at;
		if (!a || !(eq = strchr(a, '=')) || !(colon = strchr(eq + 1, ':')) ||
		    !(at = strrchr(colon + 1, '@')))
			usage_error("--secret", "NAME=PLACEHOLDER:VALUE@HOST[,HOST..] expected");
		*eq = *colon = *at = '\0';
		specs[i].name = a;
		specs[i].placeholder = eq + 1;
		specs[i].value = colon + 1;
		specs[i].value_len = (size_t)(at - colon - 1);
		const char **hosts = NULL;
		size_t nh = 0;
		for (char *sv, *h = strtok_r(at + 1, ",", &sv); h; h = strtok_r(NULL, ",", &sv))
			push(&hosts, &nh, h);
		specs[i].hosts = hosts;
		specs[i].n_hosts = nh;
	}
	if (secret_set_new(specs, n, &set, &err) < 0)
		usage_error("--secret", "%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		explicit_bzero(args[i], strlen(args[i]));
		explicit_bzero(copies[i], strlen(args[i]) + 1);
		free(copies[i]);
		free((void *)specs[i].hosts);
	}
	free(copies);
	free(specs);
	return set;
}

static void write_ca(const char *path, const char *pem)
{
	FILE *f = pem ? fopen(path, "we") : NULL;
	if (!f || fputs(pem, f) < 0 || fclose(f) != 0)
		usage_error("--ca-out", "%s: %s", path, pem ? strerror(errno) : "no CA (no --secret)");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* libevent and evdns log to stderr by default, which in `paddock run` is
 * the user's terminal: their news (a nameserver answering REFUSED to an
 * AAAA question, say) is ours to report, as events. */
static void quiet_log(int severity, const char *msg)
{
	(void)severity;
	(void)msg;
}

int main(int argc, char **argv)
{
	event_set_log_callback(quiet_log);
	evdns_set_log_fn(quiet_log);
	struct opts o;
	struct pd_err err = { 0 };
	char upstream[64];
	unsigned uid = NOBODY, gid = NOBODY;
	FILE *events = NULL;
	int fds[EGRESS_N_LISTENERS] = { -1, -1, -1, -1 };
	struct egress_policy pol;
	enum egress_mode mode = EGRESS_FILTERED;

	/* No core file, no ptrace by the same user: secrets may come. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	parse(argc, argv, &o);
	struct secret_set *secrets = o.n_secret ? parse_secrets(o.secret, o.n_secret) : NULL;
	if (o.mode && egress_mode_parse(o.mode, &mode) < 0)
		usage_error("--mode", "\"%s\" is not filtered or open", o.mode);
	if (o.user) {
		struct passwd *pw = getpwnam(o.user);
		char *end;
		unsigned long v = strtoul(o.user, &end, 10);
		if (pw)
			uid = pw->pw_uid, gid = pw->pw_gid;
		else if (*o.user && !*end && v < 0xffffffffUL)
			uid = gid = (unsigned)v;
		else
			usage_error("--user", "no user \"%s\"", o.user);
	} else {
		struct passwd *pw = getpwnam("nobody");
		if (pw)
			uid = pw->pw_uid, gid = pw->pw_gid;
	}
	/* Everything from the filesystem is read now: Landlock closes it. */
	if (o.upstream) {
		snprintf(upstream, sizeof upstream, "%s", o.upstream);
	} else if (egress_resolv_conf_upstream("/etc/resolv.conf", upstream, sizeof upstream, &err) < 0) {
		pd_err_hint(&err, "pass --dns-upstream ADDR");
		fail(&err);
	}
	if (o.events) {
		if (strcmp(o.events, "-") == 0) {
			events = stdout;
		} else {
			int fd = open(o.events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
			if (fd < 0 || !(events = fdopen(fd, "a")))
				usage_error("--events", "%s: %s", o.events, strerror(errno));
		}
	}
	if (o.control_fd < 0) {
		if (egress_policy_init(&pol, mode, o.allow, o.n_allow, o.deny, o.n_deny, &err) < 0)
			usage_error(strstr(err.msg, "deny") == err.msg ? "--deny" : "--allow", "%s", err.msg);
		fds[EGRESS_PROXY] = bind_spec("--proxy", o.proxy, SOCK_STREAM);
		if (o.transparent)
			fds[EGRESS_TRANSPARENT] = bind_spec("--transparent", o.transparent, SOCK_STREAM);
		if (o.dns) {
			fds[EGRESS_DNS_UDP] = bind_spec("--dns", o.dns, SOCK_DGRAM);
			fds[EGRESS_DNS_TCP] = bind_spec("--dns", o.dns, SOCK_STREAM);
		}
	}
	signal(SIGPIPE, SIG_IGN); /* splice(2) has no MSG_NOSIGNAL */

	struct event_base *base = event_base_new();
	struct egress *eg = NULL;
	struct egress_config cfg = { .dns_upstream = upstream, .events = events,
				     .control_fd = o.control_fd, .upstream_ca = o.upstream_ca };
	if (!base) {
		fputs("paddock-egress: cannot create the event loop\n", stderr);
		return 1;
	}
	if (egress_new(base, &cfg, &eg, &err) < 0)
		fail(&err);
	if (o.control_fd < 0 && egress_sandbox_add(eg, o.sandbox, &pol, fds, &err) < 0)
		fail(&err);
	if (secrets || o.ca_out) {
		const char *pem = NULL;
		if (egress_sandbox_set_secrets(eg, o.sandbox, &secrets, &pem, &err) < 0)
			fail(&err);
		if (o.ca_out)
			write_ca(o.ca_out, pem);
	}
	const char *warning;
	if (egress_confine(uid, gid, &warning, &err) < 0)
		fail(&err);
	if (warning)
		fprintf(stderr, "paddock-egress: warning: %s\n", warning);
	struct event *sigs[] = { evsignal_new(base, SIGTERM, on_signal, base),
				 evsignal_new(base, SIGINT, on_signal, base) };
	for (size_t i = 0; i < 2; i++)
		if (sigs[i])
			event_add(sigs[i], NULL);
	if (o.control_fd < 0)
		fprintf(stderr, "paddock-egress: serving %s (%s mode), DNS upstream %s\n", o.sandbox,
			egress_mode_name(mode), upstream);
	event_base_dispatch(base);
	egress_free(eg);
	for (size_t i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	event_base_free(base);
	if (events && events != stdout)
		fclose(events);
	free(o.allow);
	free(o.deny);
	free(o.secret);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer cannot run in a confined process (it needs clone,
	 * ptrace and /proc, which seccomp and Landlock took away): leave without
	 * its exit check. The same code's leaks are checked by the unit tests,
	 * which run it unconfined. */
	fflush(NULL);
	_exit(0);
#endif
	return 0;
}
