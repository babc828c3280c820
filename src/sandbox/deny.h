/* deny.h: the default deny list of credential files.
 *
 * Names like ".ssh", ".aws", ".env*", "id_rsa*" are masked (empty and
 * unreadable) inside every mount, even when the user mounts a parent
 * directory, unless the user un-masks them by name. */
#ifndef PADDOCK_DENY_H
#define PADDOCK_DENY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* One hit found under a mount source. */
struct deny_hit {
	char *relpath; /* relative to the scanned root, no leading "/" */
	bool is_dir;
};

struct deny_hits {
	struct deny_hit *v;
	size_t n;
};

/* Limits of a scan; exceeding them is an error (fail closed). */
#define DENY_MAX_ENTRIES 500000
#define DENY_MAX_DEPTH 64
#define DENY_MAX_HITS 4096

/* The --unmask name that lets unix sockets inside mounts through. */
#define DENY_SOCKETS "sockets"

/* The built-in list, NULL-terminated (patterns, see deny_match). */
const char *const *deny_patterns(void);
/* Does `relpath` (relative path inside a mount, components separated by '/')
 * match the deny list? Matching is per path suffix: ".ssh" matches any
 * component named .ssh; ".docker/config.json" matches that two-component
 * tail; "id_rsa*" and ".env*" are prefix globs on one component. A pattern
 * named in `unmask` (NULL-terminated, may be NULL) is skipped. */
bool deny_match(const char *relpath, const char *const *unmask);
/* Walk the directory tree at dirfd (not following symlinks, bounded by the
 * limits above) and collect every entry that matches. Matched directories are
 * not descended into. Returns 0 or negative errno with err filled. */
int deny_scan(int dirfd, const char *const *unmask, struct deny_hits *out, struct pd_err *err);
void deny_hits_free(struct deny_hits *h);

#endif
