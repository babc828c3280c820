/* sandbox.h: the ns backend as a library.
 *
 * No global state, no logging, no exit: a daemon can drive many sandboxes at
 * once from one process. Everything a sandbox is comes from `struct spec`. */
#ifndef PADDOCK_SANDBOX_H
#define PADDOCK_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
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
	/* network mode filtered/open: a network namespace the caller made
	 * (src/egress/netns.h), joined instead of a private one, and the
	 * /etc/resolv.conf written into the sandbox */
	bool join_netns;
	int netns_fd;
	const char *resolv_conf;
	/* secrets: the gateway's certificate authority for this sandbox, added
	 * to its trust store at start (PEM), or NULL */
	const char *ca_pem;
	/* run by the watcher after it removed the cgroups of a sandbox whose
	 * paddock died (e.g. the network plumbing's garbage collection), or NULL */
	void (*abandoned)(void);
};

struct sandbox;

/* Build and start a sandbox for `spec` (spec->image must be set). On success
 * the command is running. On failure nothing is left behind: no process,
 * mount, cgroup or file. */
int sandbox_start(const struct spec *spec, const struct sandbox_io *io, struct sandbox **out,
		  struct pd_err *err);
/* paddock runs as root (rootless is not built): 0, or -EPERM saying so. */
int sandbox_check_root(struct pd_err *err);

/* Named, persistent sandboxes (paddockd). Its pid 1 starts no command (sessions
 * enter with sandbox_exec) and survives the daemon; the writable layer is on
 * disk in dir, so the files outlive stop and start. */
struct sandbox_persist {
	const char *dir;     /* root's 0700 directory with upper/ and work/ */
	const char *cg_name; /* cgroup name, [a-z0-9-] */
	bool populate;       /* first start: create dir and fill /workspace */
	int netns_fd;        /* network namespace to join, or -1 for a private one */
	const char *resolv_conf; /* written to /etc/resolv.conf at start, or NULL */
	const char *ca_pem;      /* added to the trust store at start, or NULL */
};
int sandbox_start_persistent(const struct spec *spec, const struct sandbox_persist *p,
			     struct sandbox **out, struct pd_err *err);
/* Find a running named sandbox again (daemon restart): pid 1 must still have
 * the recorded start time. -ESRCH when it is gone. */
int sandbox_adopt(const struct spec *spec, const struct sandbox_persist *p, pid_t pid,
		  uint64_t start_time, struct sandbox **out, struct pd_err *err);
pid_t sandbox_pid(const struct sandbox *sb);
/* The commit /workspace started from (read by the host right after cloning,
 * before the sandbox ran anything), or "" (no repository). */
const char *sandbox_workspace_head(const struct sandbox *sb);
uint64_t sandbox_start_time(const struct sandbox *sb);
/* Field 22 of /proc/<pid>/stat. 0 or -errno. */
int proc_start_time(pid_t pid, uint64_t *out);
void sandbox_usage(const struct sandbox *sb, uint64_t *mem, uint64_t *cpu_ns);
/* Forget the sandbox without stopping it (the daemon exiting). NULL-safe. */
void sandbox_release(struct sandbox *sb);

/* A process started in a running sandbox: same namespaces, cgroup and fence
 * as its first command. */
struct sandbox_exec {
	char *const *argv;
	char *const *env;     /* extra "K=V" after the spec's, or NULL */
	const char *workdir;  /* NULL: the spec's */
	bool tty;             /* a new pty in the sandbox; else in/out/err */
	unsigned short rows, cols;
	int in, out, err;
};
struct sandbox_proc {
	pid_t pid;  /* the shim: our child; it exits with the command's status */
	int pidfd;  /* readable when it has exited */
	int pty;    /* master when tty, else -1 */
};
/* Returns 0 once the command runs (execve succeeded) or a negative errno
 * with err saying why not (127: not found, 126: cannot execute). */
int sandbox_exec(struct sandbox *sb, const struct sandbox_exec *x, struct sandbox_proc *out,
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
