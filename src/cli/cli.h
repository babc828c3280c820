/* cli.h: the paddock command line. One file per command (cmd-*.c). */
#ifndef PADDOCK_CLI_H
#define PADDOCK_CLI_H

#include <stdbool.h>

#include "common/err.h"

struct spec;

/* Exit codes, following docker. */
#define EXIT_PADDOCK 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_spec(int argc, char **argv);
int cmd_image(int argc, char **argv);
/* cmd-sandbox.c: named sandboxes, through paddockd */
int cmd_up(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_daemon_status(int argc, char **argv);
int cmd_allow(int argc, char **argv);
int cmd_net(int argc, char **argv);
int cmd_secrets(int argc, char **argv);

/* spec-flags.c: the spec a command line describes. */
enum cli_spec_mode {
	CLI_SPEC_RUN,  /* `paddock run`: a command is required */
	CLI_SPEC_SHOW, /* `paddock spec`: the command is optional; --json */
};
/* Fill s (fresh from spec_init) from paddock.yaml (found, --spec FILE, or none
 * with --no-spec), then the flags in argv on top. *json (SHOW only; NULL for
 * RUN) is set by --json. Returns 0, 1 for --help, or < 0 with err filled. */
int cli_parse_spec_flags(int argc, char **argv, enum cli_spec_mode mode, struct spec *s,
			 bool *json, struct pd_err *err);
/* If the spec has a setup script, make argv run it first (in /workspace, in
 * a subshell, with set -e) and then exec the command; a failing setup ends
 * the run with its status. Returns 0 or < 0 with err filled. */
int cli_apply_setup(struct spec *s, struct pd_err *err);

/* Print "paddock: <formatted error>" on one line to stderr. */
void cli_error(const struct pd_err *err);
/* Progress lines of long steps (image builds), to stderr. */
void cli_progress(void *ctx, const char *line);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
