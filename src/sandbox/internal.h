/* internal.h: what the parent (sandbox.c) and the sandbox's pid 1 (init.c,
 * rootfs.c) share. The child is a clone of the parent, so it reads the plan
 * from its own copy of memory; only file descriptors created after the clone
 * travel over the socket. Messages from the child are untrusted by the
 * parent: fixed size, validated. */
#ifndef PADDOCK_SANDBOX_INTERNAL_H
#define PADDOCK_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "sandbox/deny.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"

struct plan_mount {
	const struct pd_mount *m; /* from the spec */
	int src_fd;               /* O_PATH fd of the source, opened safely */
	bool is_dir;
	uid_t owner_uid;          /* source owner: mapped to root inside */
	gid_t owner_gid;
	struct deny_hits hits;    /* credential files to mask inside it */
};

struct plan {
	const struct spec *spec;
	struct plan_mount *mounts;
	size_t n_mounts;
	struct sandbox_io io;
	int sock;                 /* child's end of the control socket */
	int cg_tasks[8];          /* v1: <leaf>/tasks, opened by the parent */
	size_t n_cg_tasks;
	int watch_fd;             /* write end of the watcher pipe (closed in child) */
	bool persistent;          /* named sandbox: pid 1 survives the daemon */
	bool idle;                /* pid 1 starts no command (sessions come by exec) */
	const char *resolv_conf;  /* written to /etc/resolv.conf, or NULL */
	const char *ca_pem;       /* trusted inside (secrets interception), or NULL */
	bool joined_netns;        /* in a netns paddock made (not its own) */
};

enum {
	MSG_FDS = 1,   /* parent -> child: a batch of mount fds */
	MSG_GO,        /* parent -> child: maps written, cgroup joined, all fds sent */
	MSG_READY,     /* child -> parent: fence built, command started (+ pty fd) */
	MSG_ERR,       /* child -> parent: setup or exec failed */
};

struct msg {
	uint32_t type;
	int32_t landlock_abi; /* READY: ABI the kernel offers (0: none) */
	uint32_t n_fds;       /* FDS: number of fds attached */
	struct pd_err err;    /* ERR */
};

/* Fds sent to the child, in this order. */
enum { FD_ROOT = 0, FD_MASKFS, FD_MOUNT0 };
#define FDS_PER_MSG 200

/* Send/receive one message with optional fds (SCM_RIGHTS). */
int msg_send(int sock, const struct msg *m, const int *fds, size_t n_fds);
/* Receives into m; up to max_fds fds into fds, *n_fds set. Returns 0,
 * -EPIPE at end of stream, or a negative errno. */
int msg_recv(int sock, struct msg *m, int *fds, size_t max_fds, size_t *n_fds);

/* The child's whole life: build the root, start the command, act as pid 1.
 * Never returns. */
_Noreturn void sandbox_child(struct plan *plan);

/* Wipe the argument and environment strings inherited from the caller and
 * keep only PADDOCK_* variables (init.c; pid 1 and every session's shim). */
void scrub_inherited_strings(void);

/* Close every fd >= 3 not in keep (exec.c). */
void close_all_except(int *keep, size_t n);

/* The command's last steps (init.c), shared with exec.c. */
int command_reset(bool signals_done, struct pd_err *err);
int command_stdio(int slave, int in, int out, int er, int errpipe, struct pd_err *err);
_Noreturn void command_exec(const struct spec *s, char *const *argv, char *const *extra_env,
			    const char *workdir, int errpipe);

struct pd_cgroup;
struct sandbox {
	pid_t pid;
	int pidfd;
	int sock;
	int pty;
	int watch_fd;   /* write end of the watcher's pipe */
	int lower;      /* the image's detached mount, closed after READY */
	pid_t watcher;
	struct pd_cgroup *cg;
	struct plan plan;
	bool reaped;
	bool adopted;   /* not our child: found again after a daemon restart */
	int code;
	uint64_t start_time; /* pid 1's start time, /proc/<pid>/stat field 22 */
	char ws_head[65];    /* the workspace's first commit, "" if none */
	char warning[512];
};

/* Inside the child, before pivot_root: assemble the root at the attached
 * overlay (rootfd) from the received fds. */
int rootfs_build(struct plan *plan, int rootfd, const int *fds, struct pd_err *err);
/* pivot_root into rootfd and drop the old root. */
int rootfs_pivot(int rootfd, struct pd_err *err);

#endif
