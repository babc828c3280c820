/* cli.h: the paddock command line. One file per command (cmd-*.c). */
#ifndef PADDOCK_CLI_H
#define PADDOCK_CLI_H

#include "common/err.h"

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

/* Print "paddock: <formatted error>" on one line to stderr. */
void cli_error(const struct pd_err *err);
/* Progress lines of long steps (image builds), to stderr. */
void cli_progress(void *ctx, const char *line);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
