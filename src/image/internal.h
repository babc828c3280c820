/* internal.h: what image.c (the default image) shares with build.c (images
 * built from a spec): the cache layout, the build lock, mmdebstrap under its
 * supervisor, the output tail and tree removal. Not part of the library's
 * interface. */
#ifndef PADDOCK_IMAGE_INTERNAL_H
#define PADDOCK_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "image/image.h"

#define IMAGE_SUITE "bookworm"
#define IMAGE_INCLUDE "git,ca-certificates,curl,bash,procps,less"
#define IMAGE_EPOCH "1700000000" /* SOURCE_DATE_EPOCH: same mirror, same tree */
#define IMAGE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define IMAGE_MAX_MIRRORS 32
#define IMAGE_TAIL 20        /* output lines kept for the error message */
#define IMAGE_LINE_MAX 1024  /* longer output lines are cut */

/* One cached image: <state>/images/<name>/{rootfs,ok,build.log} and the lock
 * <state>/images/<name>.lock. */
struct image_paths {
	char *dir;    /* <state>/images/<name> */
	char *rootfs; /* dir/rootfs */
	char *marker; /* dir/ok */
	char *log;    /* dir/build.log */
	char *lock;   /* <state>/images/<name>.lock */
};

/* The last lines of a build step's output, and the line being read. */
struct image_tail {
	char lines[IMAGE_TAIL][IMAGE_LINE_MAX];
	size_t next;  /* slot for the next line */
	size_t count; /* lines held, <= IMAGE_TAIL */
	char cur[IMAGE_LINE_MAX];
	size_t len;
	bool cut;       /* cur overflowed: drop bytes up to the next newline */
	bool all_lines; /* report every line to progress, not only I:/W:/E: ones */
};

/* "a/b" in a malloc'd string, or NULL when out of memory. */
char *image_path_join(const char *a, const char *b);
/* Call the progress callback, if any. */
void image_report(image_progress_fn progress, void *ctx, const char *line);
/* Create dir and its missing parents (mode 0700). Returns 0 or < 0 with err filled. */
int image_mkdir_p(const char *dir, struct pd_err *err);
/* Take the exclusive lock at path (created if missing), waiting for its holder
 * when wait is set (after telling progress that we wait for `what`), else
 * failing with -EWOULDBLOCK. A lock file unlinked or replaced while we waited
 * is not a lock: we retry on the one now at path. Returns the lock fd
 * (O_CLOEXEC; closing it releases the lock) or < 0 with err filled. */
int image_lock(const char *path, bool wait, const char *what, image_progress_fn progress,
	       void *ctx, struct pd_err *err);
/* Fill p for the image <state>/images/<name>. Returns 0 or < 0 with err filled. */
int image_paths_init(struct image_paths *p, const char *name, struct pd_err *err);
void image_paths_free(struct image_paths *p);
/* Whether the image is complete: the marker is written last. */
bool image_ready(const struct image_paths *p);
/* With the lock held: remove the .tmp-* entries an interrupted build left in
 * p->dir. Returns 0 or < 0 with err filled. */
int image_clean_tmp(const struct image_paths *p, struct pd_err *err);
/* With the lock held: image_clean_tmp(), and a rootfs or a marker without the
 * other. Returns 0 or < 0 with err filled. */
int image_clean_stale(const struct image_paths *p, struct pd_err *err);
/* Remove path and everything below it, never following symlinks and never
 * descending into another file system, after detaching whatever is mounted
 * below it. A missing path is fine. Returns 0 or < 0 with err filled. */
int image_remove_tree(const char *path, struct pd_err *err);
/* Full path of an executable found in IMAGE_PATH, malloc'd, or NULL. */
char *image_find_exe(const char *name);
/* Run exe under the build supervisor (own process group, private mount
 * namespace, lock_fd kept until the whole group is gone, stopped if paddock
 * dies): output to progress (see image_tail.all_lines), to the tail and to
 * log_fd (best effort). Returns its exit status (>= 0; 128 + signal if
 * killed) or < 0 with err filled. */
int image_run(const char *exe, char *const argv[], char *const envp[], int lock_fd, int log_fd,
	      struct image_tail *tail, image_progress_fn progress, void *ctx,
	      struct pd_err *err);
/* Feed a chunk of output to the tail, split into lines. */
void image_tail_feed(struct image_tail *t, const char *buf, size_t n, image_progress_fn progress,
		     void *ctx);
/* End of output: a last line without a newline counts. */
void image_tail_flush(struct image_tail *t, image_progress_fn progress, void *ctx);
/* The line that best says why a step failed: the first E: line, else the
 * last non-empty one, else "no output". */
const char *image_tail_reason(const struct image_tail *t);
/* The i-th of the last n lines held (0 = oldest of them), or NULL. */
const char *image_tail_line(const struct image_tail *t, size_t n, size_t i);
/* Write all of buf to fd. Returns 0 or -1 with errno set. */
int image_write_all(int fd, const void *buf, size_t n);
/* Find mmdebstrap (error naming `what` it builds if missing) and read the
 * mirror lines. Returns the number of mirrors, or < 0 with err filled and
 * nothing allocated. */
int image_mmdebstrap(char **exe, char ***mirrors, const char *what, struct pd_err *err);
/* Write path through a synced temporary file renamed into place. Returns 0 or
 * < 0 with err filled. */
int image_write_file(const char *path, const char *text, size_t len, struct pd_err *err);
/* Finish a successful build in dir: add /workspace, flush the tree to disk,
 * rename it to p->rootfs and write the marker with marker_text. Returns 0 or
 * < 0 with err filled. */
int image_publish(const struct image_paths *p, const char *dir, const char *marker_text,
		  struct pd_err *err);

/* ---- trees (tree.c): walked by fd, never following a symlink ----------- *
 * An image tree is written by code run in a build sandbox (npm packages'
 * install scripts, the spec's run: steps), so the host side reads and changes
 * it only through directory fds: no symlink is followed, nothing outside the
 * tree is reached, and a mount or device boundary inside it is an error. */

#define TREE_MAX_DEPTH 256 /* directory nesting walked; deeper is an error */

/* Open the directory rel (relative, "" or "." for the root) under rootfd
 * without following any symlink. Returns an fd or -errno. */
int tree_open_dir(int rootfd, const char *rel);
enum tree_clear_mode {
	TREE_CLEAR_ALL,   /* remove every entry */
	TREE_CLEAR_FILES, /* remove the non-directories; the directory structure stays */
	TREE_CLEAR_EMPTY, /* remove nothing; empty the regular files (a file with
			   * other hard links is removed instead, not emptied) */
};
/* Clear what is below the directory dfd (see the modes). Returns 0 or < 0
 * with err filled (what names the directory in messages). */
int tree_clear(int dfd, enum tree_clear_mode mode, const char *what, struct pd_err *err);
/* Set the access and modification times of every entry below dfd, and of dfd
 * itself, to min(its mtime, epoch). Returns 0 or < 0 with err filled. */
int tree_clamp_mtimes(int dfd, long long epoch, struct pd_err *err);
/* The manifest of the tree at rootfd: one line per entry in walk order
 * (directories sorted by name, a directory before its contents),
 * "PATH TYPE MODE UID GID SIZE DATA" with PATH escaped (bytes outside
 * 0x21..0x7e and '\' as \xHH), TYPE one of f d l c b p s, DATA the SHA-256 of
 * a file's content, a symlink's target (escaped), a device's major:minor, or
 * "-". A directory's size is written as 0 (it depends on the file system's
 * history, not on the tree). Returns 0 with a malloc'd NUL-terminated text in
 * *out, its length, the number of entries and the total size of files and
 * symlinks, or < 0 with err filled. */
int tree_manifest(int rootfd, char **out, size_t *len, size_t *entries, unsigned long long *bytes,
		  struct pd_err *err);
/* SHA-256 of buf as 64 hex characters and a NUL. Returns 0 or < 0 with err filled. */
int tree_sha256_hex(const void *buf, size_t len, char out[65], struct pd_err *err);
/* Compare two manifests by path. Returns the number of entries that differ
 * and, when report is not NULL, a malloc'd text of at most max_lines lines
 * ("+ PATH" only in b, "- PATH" only in a, "~ PATH: what") plus a final
 * "... N more" line when cut; NULL when they are the same. */
size_t tree_manifest_diff(const char *a, const char *b, size_t max_lines, char **report);

#endif
