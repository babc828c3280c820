/* review.h: the review gate, host side. Work leaves a sandbox only as data.
 *
 * Everything inside a sandbox is hostile, its repository included: the host
 * never runs git in the sandbox's /workspace, never reads its .git/config,
 * hooks or attributes. The sandbox produces a git bundle (a file); the host
 * checks that file by hand (review_bundle_check), then the OWNER's
 * repository fetches it into refs/heads/paddock/<name> (review_bundle_fetch):
 * never into the current branch, never pushed anywhere.
 *
 * Producing the bundle, inside the sandbox (run by the daemon as the
 * sandbox's root, cwd /workspace; <base> is the commit the workspace was
 * created from, i.e. HEAD of the clone right after workspace_populate):
 *
 *   G="git -c core.hooksPath=/dev/null -c core.fsmonitor=false"
 *   $G add -A
 *   $G -c user.name=paddock -c user.email=paddock@localhost \
 *      -c commit.gpgSign=false commit -q --no-verify \
 *      -m "paddock: uncommitted work" || true
 *   $G update-ref refs/heads/paddock-export HEAD
 *   $G bundle create /tmp/paddock.bundle refs/heads/paddock-export ^<base>
 *
 * The commit records uncommitted work (it fails harmlessly when there is
 * none). `^<base>` makes the bundle thin: the owner's repository already has
 * <base>, which the bundle names as its prerequisite. `git bundle create`
 * exits non-zero with "Refusing to create empty bundle" when HEAD is still
 * <base>: nothing to pull. The hardening options only keep the agent's
 * hooks from sabotaging the export; running them would be harmless (they
 * run inside the sandbox), and the host trusts none of the result anyway.
 *
 * The daemon then copies /tmp/paddock.bundle out of the sandbox to a host
 * path in a directory the sandbox cannot write (e.g. by reading it through
 * an fd, not by a path into the sandbox's tree) and calls
 * review_bundle_fetch with that path. */
#ifndef PADDOCK_REVIEW_H
#define PADDOCK_REVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define REVIEW_EXPORT_REF "refs/heads/paddock-export" /* the one ref a bundle may carry */
#define REVIEW_BRANCH_PREFIX "paddock/"               /* refs/heads/paddock/<name> */

#define REVIEW_DEFAULT_MAX_BYTES ((uint64_t)256 << 20) /* a whole bundle */
#define REVIEW_DEFAULT_MAX_HEADER ((size_t)1 << 20)    /* header, before the pack */
#define REVIEW_DEFAULT_MAX_LINES 1000                  /* prerequisite + ref lines */
#define REVIEW_MAX_PREREQS 256                         /* prerequisites recorded */
#define REVIEW_OID_MAX 64                              /* hex digits of a sha256 oid */
#define REVIEW_NAME_MAX 64                             /* characters of a name */

enum review_hash {
	REVIEW_HASH_SHA1 = 0, /* 40 hex digits */
	REVIEW_HASH_SHA256,   /* 64 hex digits */
};

/* What a bundle may be. A zero field takes its default; a NULL
 * review_limits takes every default. */
struct review_limits {
	uint64_t max_bytes;    /* size of the bundle file; REVIEW_DEFAULT_MAX_BYTES */
	size_t max_header;     /* bytes before the pack; REVIEW_DEFAULT_MAX_HEADER */
	size_t max_lines;      /* prerequisites + refs; REVIEW_DEFAULT_MAX_LINES */
	enum review_hash hash; /* object format the bundle must use (the host
				* repository's); review_bundle_fetch sets it */
};

/* A checked bundle. */
struct review_bundle_info {
	int version;           /* 2 or 3 */
	enum review_hash hash; /* its object format */
	char tip[REVIEW_OID_MAX + 1]; /* the oid of refs/heads/paddock-export */
	size_t n_prereqs;
	char prereqs[REVIEW_MAX_PREREQS][REVIEW_OID_MAX + 1]; /* commits the host must have */
	uint64_t pack_offset;  /* where "PACK" starts */
	uint32_t pack_objects; /* objects the pack says it holds */
	uint64_t size;         /* bytes of the whole bundle */
};

/* What a fetch brought. `base` is also an input, see review_bundle_fetch. */
struct review_summary {
	char base[REVIEW_OID_MAX + 1]; /* the commit compared against; "" if none */
	char tip[REVIEW_OID_MAX + 1];  /* the fetched commit */
	char branch[sizeof REVIEW_BRANCH_PREFIX + REVIEW_NAME_MAX]; /* "paddock/<name>" */
	unsigned long commits;       /* in base..branch */
	unsigned long files_changed; /* between base and branch, renames not detected */
	unsigned long insertions;
	unsigned long deletions;
	char review_command[512]; /* "git log -p <X>..paddock/<name>", X the current
				   * branch when the base was the merge-base with
				   * it, else the base; "git log -p paddock/<name>"
				   * without a base */
};

/* Check the bundle at `bundle_path` without running anything: opened with
 * O_NOFOLLOW (the last component must not be a symlink; the directories
 * above it must not be writable by the sandbox); a regular file of at most
 * lim->max_bytes; a v2 or v3 header in lim->hash's object format with at
 * most lim->max_lines lines in lim->max_header bytes, every oid and refname
 * well-formed, EXACTLY one ref and that ref refs/heads/paddock-export; then
 * a pack whose header is sane and whose trailing checksum matches (a
 * truncated or altered pack fails here). Objects are not inspected: that is
 * review_bundle_fetch's fsck. Fills *out and returns 0, or returns a
 * negative errno with err filled (*out untouched). */
int review_bundle_check(const char *bundle_path, const struct review_limits *lim,
			struct review_bundle_info *out, struct pd_err *err);

/* Bring the sandbox's work into the owner's repository as the branch
 * refs/heads/paddock/<name>. `repo_dir` is the top of the owner's work tree
 * (trusted: it is the owner's); `name` matches [a-z0-9][a-z0-9-]{0,63}.
 * Steps:
 *   1. refuse when the owner's HEAD is refs/heads/paddock/<name>;
 *   2. copy the bundle (O_NOFOLLOW, bounded) into a private directory and
 *      review_bundle_check the copy: every later step reads the same bytes;
 *   3. `git bundle verify`: the prerequisites exist in the owner's repository;
 *   4. index the pack with `git index-pack --strict --fix-thin` into a
 *      quarantine object directory (borrowing the owner's objects): fsck of
 *      every object and connectivity, nothing written to the owner's
 *      repository if it fails; the tip must be a commit;
 *   5. `git fetch --no-tags --no-write-fetch-head --no-recurse-submodules
 *      <copy> +refs/heads/paddock-export:refs/heads/paddock/<name>`;
 *   6. the summary against the base: out->base if set on entry (an oid the
 *      owner's repository has, e.g. the commit the workspace was created
 *      from), else the merge-base of HEAD and the new branch (none when there
 *      is no common history: everything counts).
 * Git runs as in common/gitrun.h (fixed environment, no hooks, no fsmonitor,
 * no auto gc), and as the owner of the repository's git directory rather
 * than root: what the fetch writes (pack, ref, reflog as "paddock") is
 * theirs, and the bundle's objects are never parsed with root's rights. The
 * private directory is /tmp/paddock-review-XXXXXX, removed before return. A
 * refusal at steps 1-4 creates no ref and leaves no object behind. Fills *out
 * and returns 0, or returns a negative errno with err filled (*out
 * untouched). Not safe to run twice at once for the same repository and
 * name (git's ref lock makes the loser fail). */
int review_bundle_fetch(const char *repo_dir, const char *bundle_path, const char *name,
			const struct review_limits *lim, struct review_summary *out,
			struct pd_err *err);

/* Is `name` a valid sandbox name for a branch: [a-z0-9][a-z0-9-]{0,63}? */
bool review_name_valid(const char *name);

#endif
