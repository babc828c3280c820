/* review.h: the review gate, host side. Work leaves a sandbox only as data.
 *
 * Everything inside a sandbox is hostile, its repository included: the host
 * never runs git in the sandbox's /workspace, never reads its .git/config,
 * hooks or attributes. The sandbox produces a git bundle (a file); the host
 * checks that file by hand (review_bundle_check), then the OWNER's
 * repository fetches it into refs/heads/paddock/<name> (review_bundle_fetch):
 * never into the current branch, never pushed anywhere.
 *
 * Producing the bundle, inside the sandbox: review_export_script() is this
 * POSIX sh script, run by the daemon as the sandbox's root with cwd
 * /workspace as `sh -c "$script" sh <base>`, <base> the full object name of
 * the commit the workspace was created from (HEAD of the clone right after
 * workspace_populate). The bundle goes to stdout, which the daemon captures
 * into a host file it owns, with a size limit (never a path in the
 * sandbox's tree); messages go to stderr:
 *
 *   # paddock export (see review.h): the work in the current directory, the top
 *   # of a git work tree, as a git bundle on stdout, relative to the commit "$1".
 *   set -fu
 *   unset IFS GIT_DIR GIT_WORK_TREE GIT_COMMON_DIR GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
 *   	GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CONFIG GIT_CONFIG_PARAMETERS \
 *   	GIT_CONFIG_COUNT GIT_CEILING_DIRECTORIES GIT_DISCOVERY_ACROSS_FILESYSTEM
 *   export LC_ALL=C GIT_TERMINAL_PROMPT=0 GIT_NO_REPLACE_OBJECTS=1
 *   G='-c core.hooksPath=/dev/null -c core.fsmonitor=false -c safe.directory=*
 *      -c gc.auto=0 -c maintenance.auto=false -c commit.gpgSign=false
 *      -c user.name=paddock -c user.email=paddock@localhost'
 *   die() { code=$1; shift; echo "paddock export: $*" >&2; exit "$code"; }
 *   base=${1-}
 *   case $base in
 *   '' | *[!0-9a-f]*) die 2 "bad base commit '$base'" ;;
 *   esac
 *   [ ${#base} -eq 40 ] || [ ${#base} -eq 64 ] || die 2 "bad base commit '$base'"
 *   top=$(git $G rev-parse --show-toplevel 2>/dev/null) && [ "$top" = "$(pwd -P)" ] ||
 *   	die 4 "$(pwd) is not the top of a git work tree"
 *   git $G cat-file -e "$base^{commit}" 2>/dev/null ||
 *   	die 5 "base commit $base is not in the repository"
 *   head=$(git $G rev-parse -q --verify 'HEAD^{commit}') || die 1 "HEAD is not a commit"
 *   # The uncommitted work, through a copy of the index: the agent's index,
 *   # HEAD and branch stay as they are.
 *   idx=$(git $G rev-parse --path-format=absolute --git-path paddock-export.index) &&
 *   	cur=$(git $G rev-parse --path-format=absolute --git-path index) ||
 *   	die 1 "no git directory"
 *   trap 'rm -f "$idx"' EXIT
 *   trap 'exit 1' HUP INT TERM
 *   rm -f "$idx"
 *   export GIT_INDEX_FILE="$idx"
 *   if [ -f "$cur" ]; then cp "$cur" "$idx"; else git $G read-tree "$head"; fi ||
 *   	die 1 "cannot copy the index"
 *   git $G add -A >/dev/null && tree=$(git $G write-tree) ||
 *   	die 1 "cannot record the work tree"
 *   rm -f "$idx"
 *   unset GIT_INDEX_FILE
 *   tip=$head
 *   if [ "$tree" != "$(git $G rev-parse "$head^{tree}")" ]; then
 *   	tip=$(git $G commit-tree -m 'paddock: uncommitted work' -p "$head" "$tree" </dev/null) ||
 *   		die 1 "cannot commit the uncommitted work"
 *   fi
 *   git $G merge-base --is-ancestor "$tip" "$base"
 *   case $? in
 *   0) die 3 "nothing to export: no work since $base" ;;
 *   1) ;;
 *   *) die 1 "cannot compare with the base commit" ;;
 *   esac
 *   git $G update-ref --no-deref -m 'paddock export' refs/heads/paddock-export "$tip" &&
 *   	git $G bundle create -q - refs/heads/paddock-export "^$base" ||
 *   	die 1 "git bundle create failed"
 *
 * Exit status (enum review_export_status): 0 the bundle is on stdout; 1 a
 * git step failed; 2 bad base argument; 3 nothing to export (HEAD plus the
 * uncommitted work is the base or an ancestor of it; stdout is empty); 4 the
 * cwd is not the top of a git work tree; 5 the base commit is not in the
 * repository (history rewritten and pruned). The script above is
 * review_export_script() to the byte, less the " *   " in front of each
 * line (test_review checks it).
 *
 * Uncommitted work (changed, new and deleted files; ignored files are left
 * out) becomes one commit on top of HEAD made through a copy of the index:
 * the agent's index, HEAD and branches are not changed, only the ref
 * refs/heads/paddock-export (and objects) are written. `^<base>` makes the
 * bundle thin: the owner's repository already has <base>, which the bundle
 * names as its prerequisite. The hardening options only keep the agent's
 * hooks and fsmonitor from running or sabotaging the export; the agent's
 * filter drivers still run on `git add` (inside the sandbox, harmless), and
 * the host trusts none of the result anyway.
 *
 * The daemon then calls review_bundle_diff (paddock diff) or
 * review_bundle_fetch (paddock pull) with the captured file's path. */
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

/* What a fetch brought, or a diff shows. `base` is also an input of
 * review_bundle_fetch. */
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
 *   3. `git bundle verify`: the prerequisites exist among the owner's
 *      objects (checked in a private bare repository whose
 *      objects/info/alternates borrows them);
 *   4. index the pack with `git index-pack --strict --fix-thin` into that
 *      private repository, a quarantine: fsck of every object and
 *      connectivity, nothing written to the owner's repository if it fails;
 *      the tip must be a commit;
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

/* Show the sandbox's work without taking it: steps 2-4 of
 * review_bundle_fetch (private copy, review_bundle_check, prerequisites,
 * index-pack --strict), then `git diff --stat` and, unless stat_only, the
 * patch, `git diff <base> <tip>`, written to out_fd (nothing when out_fd < 0).
 * The patch has no color, runs no external diff driver and no textconv, and
 * shows binary files as "Binary files ... differ"; no attribute of the
 * bundle's applies. `base` is a full object name the owner's repository has
 * (NULL or "": compare with nothing, everything counts). Nothing is written
 * to the owner's repository (no ref, object, reflog or FETCH_HEAD): the pack
 * goes into a private bare repository /tmp/paddock-review-XXXXXX/repo whose
 * objects/info/alternates borrows the owner's objects, removed before
 * return. Git runs as the owner of the repository's git directory, as in
 * review_bundle_fetch. Fills *out (if non-NULL: base, tip, commits,
 * files_changed, insertions, deletions; branch and review_command empty)
 * and returns 0, or returns a negative errno with err filled (*out
 * untouched; part of the output may have been written). A patch over
 * GITRUN_OUT_MAX (64 MiB) is refused (-E2BIG). The caller ignores SIGPIPE
 * if out_fd is a pipe or socket whose reader may leave. The patch is the
 * sandbox's text: escape it before it reaches a terminal. */
int review_bundle_diff(const char *repo_dir, const char *bundle_path, const char *base,
		       const struct review_limits *lim, int out_fd, bool stat_only,
		       struct review_summary *out, struct pd_err *err);

/* The export script (see the top of this file), a constant string. */
const char *review_export_script(void);

/* Exit statuses of the export script. */
enum review_export_status {
	REVIEW_EXPORT_OK = 0,         /* the bundle is on stdout */
	REVIEW_EXPORT_FAILED = 1,     /* a git step failed (stderr says which) */
	REVIEW_EXPORT_BAD_BASE = 2,   /* "$1" is not a full object name */
	REVIEW_EXPORT_NOTHING = 3,    /* no work since the base */
	REVIEW_EXPORT_NOT_GIT = 4,    /* cwd is not the top of a git work tree */
	REVIEW_EXPORT_NO_BASE = 5,    /* the base commit is not in the repository */
};

/* Is `name` a valid sandbox name for a branch: [a-z0-9][a-z0-9-]{0,63}? */
bool review_name_valid(const char *name);

#endif
