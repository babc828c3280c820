/* sandbox.h: the ns backend as a library.
 *
 * No global state, no logging, no exit: a daemon can drive many sandboxes at
 * once from one process. Everything a sandbox is comes from `struct spec`. */
#ifndef PADDOCK_SANDBOX_H
#define PADDOCK_SANDBOX_H

#include <sys/types.h>

#include "common/err.h"
#include "spec/spec.h"

/* The command's stdio when spec->tty is false. The caller must not pass a
 * terminal here (see cli/cmd-run.c: a terminal is relayed through a pipe so
 * that the sandbox never holds the caller's tty). */
struct sandbox_io {
	int in, out, err;
	/* spec->tty: the pty's size from the start (0: leave it unset), set
	 * before the command runs so that it never sees a 0x0 terminal. */
	unsigned short rows, cols;
};

struct sandbox;

/* Build and start a sandbox for `spec` (spec->image must be set). On success
 * the command is running. On failure nothing is left behind: no process,
 * mount, cgroup or file. */
int sandbox_start(const struct spec *spec, const struct sandbox_io *io, struct sandbox **out,
		  struct pd_err *err);
/* The pty master when spec->tty, else -1. Owned by the sandbox. */
int sandbox_pty(const struct sandbox *sb);
/* A pidfd of the sandbox's pid 1: readable (POLLIN) when the sandbox ended. */
int sandbox_pidfd(const struct sandbox *sb);
/* A warning from setup (e.g. Landlock unavailable), or NULL. */
const char *sandbox_warning(const struct sandbox *sb);
/* Deliver a signal to the command (pid 1 forwards it). */
int sandbox_signal(struct sandbox *sb, int sig);
/* Wait for the sandbox to end. *code follows docker: the command's exit
 * status, 128+N when killed by signal N, 126 when the command cannot be
 * executed, 127 when not found (err then says why), 125 when paddock failed. */
int sandbox_wait(struct sandbox *sb, int *code, struct pd_err *err);
/* Kill whatever is left, remove the cgroup, release everything. NULL-safe. */
void sandbox_free(struct sandbox *sb);

#endif
