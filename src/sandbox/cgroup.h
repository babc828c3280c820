/* cgroup.h: resource limits, on cgroup v2 where its controllers are available
 * and on the v1 hierarchies otherwise (hybrid hosts have both). */
#ifndef PADDOCK_CGROUP_H
#define PADDOCK_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct pd_limits {
	uint64_t memory;     /* bytes, 0 = none */
	uint64_t pids;       /* 0 = none */
	uint64_t cpus_milli; /* 0 = none */
};

struct pd_cgroup; /* opaque */

/* Create the cgroup(s) for sandbox `name` (unique, [a-z0-9-]) and apply the
 * limits. A limit that cannot be applied is an error. */
int pd_cgroup_create(const char *name, const struct pd_limits *lim, struct pd_cgroup **out,
		     struct pd_err *err);
/* Move pid into the cgroup(s). */
int pd_cgroup_attach(struct pd_cgroup *cg, pid_t pid, struct pd_err *err);
/* A directory fd for clone3(CLONE_INTO_CGROUP), or -1 when not on pure v2. */
int pd_cgroup_v2_fd(struct pd_cgroup *cg);
/* Paths of the created cgroup directories, NULL-terminated (for a watcher
 * process that removes them if paddock dies). */
const char *const *pd_cgroup_paths(struct pd_cgroup *cg);
/* Was the OOM killer triggered in this cgroup? */
int pd_cgroup_oom_killed(struct pd_cgroup *cg);
/* Kill every process left, remove the directories, free. Safe on NULL. */
void pd_cgroup_destroy(struct pd_cgroup *cg);
/* Remove the given cgroup directories: kill what is in them, wait briefly
 * for them to empty, rmdir. Used by the destroy path and the watcher. */
int pd_cgroup_remove_paths(const char *const *paths);
/* Find the existing cgroup(s) of `name` (a daemon adopting a running
 * sandbox, or removing a stale one). -ENOENT when there is none. */
int pd_cgroup_open(const char *name, struct pd_cgroup **out, struct pd_err *err);
/* Memory in use (bytes) and CPU time used (ns); unreadable values are 0. */
void pd_cgroup_usage(struct pd_cgroup *cg, uint64_t *mem, uint64_t *cpu_ns);
/* Free the handle, leaving the cgroup in place. NULL-safe. */
void pd_cgroup_release(struct pd_cgroup *cg);
/* Remove stale paddock cgroups left by dead processes (best effort). */
void pd_cgroup_gc(void);

#endif
