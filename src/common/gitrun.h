/* gitrun.h: run the host's git as root without letting a repository, the
 * caller's environment or an inherited fd steer it.
 *
 * Every call runs `git <hardening> <safe.directory...> [-C dir] args...`:
 *   - git from a root-owned directory (/usr/local/bin, /usr/bin, /bin), never
 *     from the caller's PATH;
 *   - a fixed environment: no system or global config (unless the caller
 *     supplies a global config for one call), no attributes from /etc,
 *     GIT_OPTIONAL_LOCKS=0, no terminal prompt, LC_ALL=C, plus the caller's
 *     extra variables;
 *   - fsmonitor and hooks off, auto gc and maintenance off, on the command
 *     line, which beats any repository config;
 *   - stdin /dev/null (or the caller's fd), stdout captured up to 64 MiB or
 *     discarded, the first meaningful line of stderr kept for the error,
 *     no other fd inherited, cwd "/";
 *   - as root, or as another user (no supplementary groups, no capabilities,
 *     no_new_privs) when the caller asks, e.g. to write into a repository
 *     that user owns without leaving root-owned files in it.
 * Used by the workspace (copying the owner's repository into a sandbox) and
 * the review gate (fetching a sandbox's bundle into the owner's repository). */
#ifndef PADDOCK_GITRUN_H
#define PADDOCK_GITRUN_H

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>

#include "common/err.h"

#define GITRUN_OUT_MAX ((size_t)64 << 20) /* stdout kept of one git command */

enum {
	GITRUN_CAPTURE = 1 << 0,    /* keep stdout (bounded) in res->out */
	GITRUN_GLOBAL_CFG = 1 << 1, /* use g->global_cfg_env instead of no global config */
};

/* What one git call did. */
struct git_res {
	char *out; /* captured stdout, NUL-terminated, or NULL */
	size_t len;
	int status;        /* exit status; 128 + signal number if killed */
	char errline[256]; /* first line of stderr, or the "fatal:" line */
};

static inline void git_res_freep(struct git_res *r)
{
	free(r->out);
	r->out = NULL;
}
#define _cleanup_git_res_ __attribute__((cleanup(git_res_freep)))

/* A git runner. Set up with gitrun_init, found with gitrun_find, released
 * with gitrun_release. The fields after `safe` may be changed between calls. */
struct gitrun {
	char git[PATH_MAX]; /* absolute path of the git binary */
	char **safe;        /* "safe.directory=<path>" strings, strv, or NULL */
	char global_cfg_env[96];      /* "GIT_CONFIG_GLOBAL=...", for GITRUN_GLOBAL_CFG */
	const char *const *env_extra; /* more "NAME=value" entries, NULL-terminated, or NULL */
	int in_fd;                    /* the child's stdin; -1 for /dev/null */
	uid_t uid;                    /* run as this uid and gid (both or neither); */
	gid_t gid;                    /* (uid_t)-1 and (gid_t)-1: stay who we are */
	const char *layer;            /* pd_err layer of errors */
	struct pd_err *err;           /* where errors go */
};

/* Prepare g (no allocation; cannot fail). */
void gitrun_init(struct gitrun *g, const char *layer, struct pd_err *err);
/* Free what g holds. Safe on an initialised or zeroed g. */
void gitrun_release(struct gitrun *g);
/* Find git in the fixed directories. Returns 0 or -ENOENT with err filled
 * (and `hint` as its hint, if non-NULL). */
int gitrun_find(struct gitrun *g, const char *hint);
/* Replace the safe.directory list with `paths` (NULL-terminated). Returns 0
 * or -ENOMEM. */
int gitrun_set_safe(struct gitrun *g, const char *const *paths);
/* Run git with `args` (NULL-terminated, without "git") in `dir` (-C; NULL
 * for none). Fills res (stdout only with GITRUN_CAPTURE) and returns 0
 * whatever git's exit status; a negative errno only if git could not be run
 * or read. res is released first, so it may be reused. */
int gitrun_run(struct gitrun *g, const char *dir, const char *const *args, unsigned flags,
	       struct git_res *res);
/* gitrun_run, and a non-zero exit is an error (-EIO) naming the subcommand
 * and quoting git's line of stderr. */
int gitrun_ok(struct gitrun *g, const char *dir, const char *const *args, unsigned flags,
	      struct git_res *res);

#endif
