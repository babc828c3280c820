/* main.c: dispatch to one command. */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "egress/client.h"
#include "common/cleanup.h"

#ifdef PADDOCK_LEAN
/* `paddock` itself is lean: the commands for named sandboxes only talk to
 * the daemon, and loading libcrypto and libnftables would double their
 * start-up (exec's latency is measured in milliseconds). run, spec and image
 * live in paddock-run, next to this binary, which we become. */
static int cmd_full(int argc, char **argv)
{
	char self[4096], exe[4096 + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		cli_errorf("cannot find paddock-run: %s", strerror(errno));
		return EXIT_PADDOCK;
	}
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(exe, sizeof exe, "%s/paddock-run", self);
	execv(exe, argv - 1);
	cli_errorf("cannot run %s: %s", exe, strerror(errno));
	return EXIT_PADDOCK;
}
#define cmd_run cmd_full
#define cmd_spec cmd_full
#define cmd_image cmd_full
#endif

static const struct cli_command commands[] = {
	{ "run", cmd_run, "run a command in a fresh, disposable sandbox" },
	{ "spec", cmd_spec, "print the effective spec (paddock.yaml + flags + defaults)" },
	{ "image", cmd_image, "build, list and remove images (paddock image --help)" },
	{ "up", cmd_up, "create and start a named, persistent sandbox" },
	{ "exec", cmd_exec, "run a command in a named sandbox (-d: detached)" },
	{ "attach", cmd_attach, "a shell in a named sandbox, or re-attach to a session" },
	{ "sessions", cmd_sessions, "list a sandbox's sessions" },
	{ "ls", cmd_ls, "list named sandboxes" },
	{ "logs", cmd_logs, "setup output and session exits of a sandbox (-f follows)" },
	{ "diff", cmd_diff, "what changed in /workspace since the sandbox was created" },
	{ "pull", cmd_pull, "bring the sandbox's work in as branch paddock/NAME" },
	{ "stop", cmd_stop, "stop a sandbox's processes; its files stay" },
	{ "start", cmd_start, "start a stopped sandbox again" },
	{ "down", cmd_down, "destroy a sandbox: nothing of it remains" },
	{ "allow", cmd_allow, "allow (or --deny) host names for a running sandbox" },
	{ "secrets", cmd_secrets, "a sandbox's secrets (names, hosts, injections); secrets set" },
	{ "net", cmd_net, "a sandbox's network: policy, gateway counters, recent connections" },
	{ "events", cmd_events, "the audit log (--sandbox NAME, --json)" },
	{ "daemon-status", cmd_daemon_status, "paddockd's counters (for tests and debugging)" },
};

void cli_error(const struct pd_err *err)
{
	char buf[1400];
	fprintf(stderr, "paddock: %s\n", pd_err_format(err, buf, sizeof buf));
}

void cli_errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("paddock: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void cli_progress(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "paddock: %s\n", line);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: paddock COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nrun 'paddock COMMAND --help' for a command's options\n");
}

int main(int argc, char **argv)
{
	pd_json_wipe_on_free(); /* secret values pass through JSON */
	if (argc < 2) {
		usage(stderr);
		return EXIT_PADDOCK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("paddock 0.1.0");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	cli_errorf("unknown command '%s' (see paddock --help)", argv[1]);
	return EXIT_PADDOCK;
}
