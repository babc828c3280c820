/* workspace.h: build /workspace as a copy of the owner's directory.
 *
 * In a git repository: a fresh clone of HEAD plus the uncommitted changes
 * (staged, unstaged, untracked-not-ignored) as one extra commit; the original
 * repository is only read, never written (no objects, no index refresh, no
 * hooks or fsmonitor run). Outside a repository: a copy of the directory.
 * Files matching the deny list are left out of the copy. Everything created
 * is owned by uid/gid (the sandbox's root on the host). */
#ifndef PADDOCK_WORKSPACE_H
#define PADDOCK_WORKSPACE_H

#include <sys/types.h>

#include "common/err.h"

/* Populate the existing, empty directory `dest_dirfd` from `src_dir`.
 * `dest_path` is a path to the same directory usable by child processes (git).
 * Returns 0 or negative errno with err filled. */
int workspace_populate(const char *src_dir, int dest_dirfd, const char *dest_path, uid_t uid,
		       gid_t gid, const char *const *unmask, struct pd_err *err);

/* The commit the populated workspace starts from (its HEAD: the owner's
 * HEAD plus, when there were any, the uncommitted changes as one commit),
 * read right after populating, before any sandbox code ran. "" when the
 * workspace is not a repository with commits. 0 or negative errno. */
int workspace_head(const char *dest_path, char out[65], struct pd_err *err);

#endif
