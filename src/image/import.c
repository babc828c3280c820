/* import.c: `paddock image import FILE`: an image from a root filesystem
 * tarball, a docker-archive (`docker save`) or an OCI image layout (a
 * directory, or a tar of one).
 *
 *   <state>/images/.import.lock       flock held while sweeping and creating temp dirs
 *   <state>/images/.import-<pid>/     an import in progress (flock held on it), with
 *     rootfs/                         the tree, built layer by layer,
 *     meta.json, ok                   written last; then the directory is renamed to
 *   <state>/images/<name>/            (RENAME_NOREPLACE: an existing name is never replaced)
 *
 * A killed import leaves .import-<pid> unlocked; the next import removes it.
 *
 * Archives are hostile input. libarchive only parses them (nothing goes
 * through archive_write_disk); this file writes every entry itself, through
 * directory fds under the tree's root:
 *
 *  - Paths are normalized ("." and empty components dropped). Absolute paths,
 *    ".." components, components over NAME_MAX, paths over the limit and
 *    nesting deeper than IMPORT_MAX_DEPTH are refused. "./" itself only
 *    gives the root its owner and mode.
 *  - Parents are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
 *    When that meets a symlink, the parent is opened again with
 *    RESOLVE_IN_ROOT: a lower layer's bin -> usr/bin makes a later layer's
 *    bin/sh land in usr/bin (as containerd and umoci do), and the kernel keeps
 *    the result inside the root whatever the symlinks say (absolute targets
 *    and ".." resolve against the root). A path through a symlink the same
 *    layer created ("link -> /etc", then "link/passwd") is refused: a tar of a
 *    real tree never holds both, an attack does.
 *  - The last component is never followed: what is there is removed first and
 *    the entry created with O_CREAT | O_EXCL | O_NOFOLLOW, mkdirat, symlinkat
 *    or linkat (without AT_SYMLINK_FOLLOW). A file is never written in place:
 *    it may be a hardlink of another.
 *  - A hardlink must name an existing non-directory in the tree, by a path
 *    under the same rules.
 *  - Device nodes, fifos and sockets are skipped and counted: the sandbox
 *    brings its own /dev, and the image store is no place for device nodes.
 *  - Kept: the numeric owner (the image's passwd counts, not the host's), the
 *    mode with setuid/setgid/sticky (images carry su; the store is 0700, so no
 *    host user reaches them), the mtime, symlinks, hardlinks.
 *  - Extended attributes: user.* (but user.overlay.*, which overlayfs may
 *    interpret) and security.capability in its v2 form (ping's cap_net_raw)
 *    are kept. The rest is dropped and counted: trusted.* (trusted.overlay.*
 *    would steer the sandbox's overlayfs), security.selinux/ima/evm, v3
 *    capabilities (their root uid names another machine's user namespace).
 *    ACLs and file flags are not restored.
 *  - Whiteouts (.wh.NAME, .wh..wh..opq) remove what lower layers left, never
 *    this layer's own entries, wherever they stand in the layer; they are not
 *    extracted. Other .wh..wh.* names (aufs metadata) are skipped.
 *  - Limits (struct image_import_limits) on bytes, entries, path length,
 *    layers and JSON size; JSON is parsed with jansson.
 *  - Blobs named by a digest are hashed as they are read and compared once
 *    read to their end, before the next layer; a mismatch fails the import and
 *    the tree is removed, so nothing from an unverified blob is ever published.
 *    (Hashing in a first read and applying in a second would check other bytes
 *    than the applied ones if the file changed in between.)
 */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/internal.h"

#define IMPORT_BUF             (64 * 1024)
#define IMPORT_MAX_DEPTH       256   /* directory nesting in the tree (a path: as many dirs + 1) */
#define IMPORT_MAX_MEMBERS     65536 /* members of a docker or OCI archive (not of a layer) */
#define IMPORT_MAX_HOPS        8     /* links followed from one archive member to another */
#define IMPORT_MAX_INDEX_DEPTH 4     /* OCI indexes nested in indexes */
#define IMPORT_NAME_MAX        64    /* an image name: [a-z0-9][a-z0-9._-]{0,63} */
#define IMPORT_QUOTE_MAX       200   /* bytes of an archive path quoted in a message */
#define WH_PREFIX              ".wh."
#define WH_META                ".wh..wh."
#define WH_OPAQUE              ".wh..wh..opq"

/* Parents: first strictly beneath without symlinks, then within the root. */
#define RES_STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define RES_ROOT   (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__i386__)
#define HOST_ARCH "386"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#else
#define HOST_ARCH "amd64"
#endif

const struct image_import_limits image_import_default_limits = {
	.max_bytes = 16ULL << 30,
	.max_entries = 1000000,
	.max_path = PATH_MAX - 1,
	.max_layers = 128,
	.max_json = 4UL << 20,
};

enum import_format {
	FMT_ROOTFS, /* a root filesystem tarball: one layer */
	FMT_DOCKER, /* manifest.json (docker save, podman save, skopeo docker-archive) */
	FMT_OCI,    /* oci-layout + index.json */
};

/* Inode numbers, as an open-addressing hash set (0 marks a free slot; inode 0
 * is stored as UINT64_MAX). */
struct ino_set {
	uint64_t *slot;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

/* A directory whose mtime is set when its layer is done. */
struct dir_time {
	char *path;
	struct timespec mtime;
};

/* A member of a docker or OCI archive (the outer tar). */
struct member {
	char *name; /* normalized */
	char *link; /* symlink target or hardlink name, or NULL */
	mode_t type;
	bool hardlink;
};

/* Reads a file with pread() from its own offset, for libarchive. With md set,
 * every byte read is hashed and nothing is skipped. */
struct file_reader {
	int fd;
	off_t off;
	off_t size;
	EVP_MD_CTX *md;
	unsigned char buf[IMPORT_BUF];
};

/* One blob (a layer, a manifest, a whole tarball) being read and hashed. */
struct blob {
	int fd;                 /* a file (layout directory, or the tarball), or -1 */
	off_t off;              /* next pread() offset in fd */
	struct archive *outer;  /* or: an archive positioned at the member */
	struct file_reader *fr; /* outer's input */
	EVP_MD_CTX *md;         /* SHA-256 of every byte read */
	unsigned long long nread;
	long long max; /* more bytes than this is an error; -1: no bound */
	char what[IMPORT_QUOTE_MAX + 32];
	unsigned char buf[IMPORT_BUF];
};

struct import {
	const struct image_import_limits *lim;
	image_progress_fn progress;
	void *ctx;
	const char *file;
	int src_fd; /* the archive file, or the layout directory */
	bool src_dir;
	off_t src_size;
	enum import_format fmt;
	struct member *members; /* docker or OCI archive: members sorted by name */
	size_t n_members;
	char src_digest[65]; /* SHA-256 of the file (of index.json/manifest.json for a directory) */
	char manifest_digest[65];

	int root_fd; /* the tree being built: O_RDONLY | O_DIRECTORY */
	struct stat root_st;
	bool root_meta; /* the archive gave the root its owner and mode */
	unsigned long long entries, bytes;
	unsigned layer, n_layers;     /* the layer being applied (1-based), of n_layers */
	struct ino_set layer_inos;    /* what the current layer created or set */
	unsigned long layer_symlinks; /* symlinks the current layer created */
	struct dir_time *times;
	size_t n_times, cap_times;
	unsigned long skipped_dev, skipped_fifo, skipped_sock, skipped_meta, dropped_xattrs;
	json_t *layer_digests;
};

static const char *const format_names[] = {
	[FMT_ROOTFS] = "rootfs-tarball",
	[FMT_DOCKER] = "docker-archive",
	[FMT_OCI] = "oci",
};

/* ---- small helpers ------------------------------------------------------ */

static int sys_openat2(int dfd, const char *path, int flags, unsigned long long resolve)
{
	struct open_how how = { .flags = (unsigned long long)flags, .resolve = resolve };
	return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

static void report(const struct import *imp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(const struct import *imp, const char *fmt, ...)
{
	if (!imp->progress)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	imp->progress(imp->ctx, line);
}

/* An archive path for a message: at most IMPORT_QUOTE_MAX bytes, bytes
 * outside 0x20..0x7e (and '\') as \xHH, so a hostile name cannot drive the
 * terminal the error ends up on. Returns out. */
static const char *quote(const char *in, char out[IMPORT_QUOTE_MAX + 8])
{
	size_t n = 0;
	for (const unsigned char *s = (const unsigned char *)(in ? in : ""); *s; s++) {
		if (n + 4 > IMPORT_QUOTE_MAX) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		if (*s < 0x20 || *s > 0x7e || *s == '\\')
			n += (size_t)sprintf(out + n, "\\x%02x", *s);
		else
			out[n++] = (char)*s;
	}
	out[n] = '\0';
	return out;
}

static bool is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the inode set ------------------------------------------------------ */

static size_t ino_hash(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v;
}

static bool ino_set_has(const struct ino_set *s, uint64_t ino)
{
	uint64_t key = ino ? ino : UINT64_MAX;
	if (!s->cap)
		return false;
	for (size_t i = ino_hash(key) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i] == key)
			return true;
		if (s->slot[i] == 0)
			return false;
	}
}

static void ino_set_put(uint64_t *slot, size_t cap, uint64_t key)
{
	size_t i = ino_hash(key) & (cap - 1);
	while (slot[i] != 0 && slot[i] != key)
		i = (i + 1) & (cap - 1);
	slot[i] = key;
}

/* Add ino. Returns 0 or -ENOMEM. */
static int ino_set_add(struct ino_set *s, uint64_t ino)
{
	uint64_t key = ino ? ino : UINT64_MAX;
	if (ino_set_has(s, ino))
		return 0;
	if ((s->count + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *slot = calloc(cap, sizeof *slot);
		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				ino_set_put(slot, cap, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	ino_set_put(s->slot, s->cap, key);
	s->count++;
	return 0;
}

static void ino_set_clear(struct ino_set *s)
{
	if (s->slot)
		memset(s->slot, 0, s->cap * sizeof *s->slot);
	s->count = 0;
}

/* ---- paths -------------------------------------------------------------- */

/* Normalize the archive path in into out (PATH_MAX bytes): split on '/',
 * empty and "." components dropped, joined with '/'; "" is the root.
 * Returns the number of components, or -EINVAL for a missing, empty or
 * absolute path or a ".." component, -ENAMETOOLONG for a path over max bytes
 * or a component over NAME_MAX, -E2BIG for more components than
 * IMPORT_MAX_DEPTH directories and a last one. */
static int path_normalize(const char *in, size_t max, char out[PATH_MAX])
{
	if (!in || !in[0] || in[0] == '/')
		return -EINVAL;
	if (strlen(in) > max || strlen(in) >= PATH_MAX)
		return -ENAMETOOLONG;
	size_t len = 0;
	int n = 0;
	for (const char *s = in; *s;) {
		size_t c = strcspn(s, "/");
		if (c == 2 && s[0] == '.' && s[1] == '.')
			return -EINVAL;
		if (c > NAME_MAX)
			return -ENAMETOOLONG;
		if (c > 0 && !(c == 1 && s[0] == '.')) {
			if (++n > IMPORT_MAX_DEPTH + 1)
				return -E2BIG;
			if (len)
				out[len++] = '/';
			memcpy(out + len, s, c);
			len += c;
		}
		s += c;
		if (*s == '/')
			s++;
	}
	out[len] = '\0';
	return n;
}

/* Why path_normalize() refused a path, for a message. */
static const char *path_refusal(int r)
{
	switch (r) {
	case -ENAMETOOLONG:
		return "the path or one of its components is too long";
	case -E2BIG:
		return "the path is nested too deep";
	default:
		return "the path is empty, absolute or has a '..' component";
	}
}

/* Split a normalized path in place into its parent ("" for the root) and its
 * last component. */
static void path_split(char *path, const char **dir, const char **leaf)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*dir = "";
		*leaf = path;
	} else {
		*slash = '\0';
		*dir = path;
		*leaf = slash + 1;
	}
}

/* ---- removal by fd ------------------------------------------------------ */

/* Remove name in dfd, and for a directory everything below it, without
 * following symlinks or leaving the file system dev. With keep, entries whose
 * inode is in keep stay (with what they contain), and so do directories that
 * still hold some: whiteouts remove only what lower layers left. A missing
 * name is fine. Returns 0 or < 0 with err filled. */
static int tree_remove_at(int dfd, const char *name, const struct ino_set *keep, dev_t dev,
			  unsigned depth, struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8];
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT
			       ? 0
			       : pd_err_errno(err, "image", "cannot stat '%s'", quote(name, q));
	if (st.st_dev != dev)
		return pd_err_set(err, EXDEV, "image", "'%s' is on another file system",
				  quote(name, q));
	bool kept = keep && ino_set_has(keep, st.st_ino);
	if (!S_ISDIR(st.st_mode)) {
		if (kept || unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
			return 0;
		return pd_err_errno(err, "image", "cannot remove '%s'", quote(name, q));
	}
	if (depth > IMPORT_MAX_DEPTH + 2)
		return pd_err_set(err, EINVAL, "image", "cannot remove '%s': nested too deep",
				  quote(name, q));
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, "image", "cannot open '%s'", quote(name, q));
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return pd_err_errno(err, "image", "cannot read '%s'", quote(name, q));
	}
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = tree_remove_at(dirfd(d), e->d_name, keep, dev, depth + 1, err);
		if (r < 0)
			return r;
	}
	if (errno)
		return pd_err_errno(err, "image", "cannot read '%s'", quote(name, q));
	if (kept || unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ||
	    (keep && errno == ENOTEMPTY))
		return 0;
	return pd_err_errno(err, "image", "cannot remove '%s'", quote(name, q));
}

/* ---- the tree: resolving parents ---------------------------------------- */

/* How deep the directory fd (inside the tree) is below the root. Returns the
 * depth or < 0 with err filled. */
static int tree_depth(struct import *imp, int fd, struct pd_err *err)
{
	_cleanup_close_ int cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	for (int depth = 0; cur >= 0; depth++) {
		struct stat st;
		if (fstat(cur, &st) < 0)
			break;
		if (st.st_dev == imp->root_st.st_dev && st.st_ino == imp->root_st.st_ino)
			return depth;
		if (depth >= IMPORT_MAX_DEPTH)
			return pd_err_set(err, EINVAL, "image", "directories nested deeper than %d",
					  IMPORT_MAX_DEPTH);
		int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		cur = up;
	}
	return pd_err_errno(err, "image", "cannot walk up the tree");
}

/* The symlink policy: refuse a path whose prefix (each resolved within the
 * root, its last component not followed) is a symlink the current layer
 * created. Returns 0 or < 0 with err filled. */
static int tree_check_symlinks(struct import *imp, const char *dir, struct pd_err *err)
{
	if (imp->layer_symlinks == 0)
		return 0;
	char buf[PATH_MAX], q[IMPORT_QUOTE_MAX + 8];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *end = buf;; end++) {
		end = strchrnul(end, '/');
		char saved = *end;
		*end = '\0';
		int fd = sys_openat2(imp->root_fd, buf, O_PATH | O_NOFOLLOW | O_CLOEXEC, RES_ROOT);
		if (fd < 0)
			return 0; /* missing or not a directory: the caller's open says */
		struct stat st;
		int r = fstat(fd, &st);
		close(fd);
		if (r == 0 && S_ISLNK(st.st_mode) && ino_set_has(&imp->layer_inos, st.st_ino))
			return pd_err_set(err, EINVAL, "image",
					  "the path goes through '%s', a symlink of the same layer",
					  quote(buf, q));
		*end = saved;
		if (!saved)
			return 0;
	}
}

/* Make the missing directories of dir (0755, root's), resolving what exists
 * within the root. Returns an O_PATH-or-better fd of dir or < 0 with err
 * filled. */
static int tree_mkdirs(struct import *imp, const char *dir, struct pd_err *err)
{
	char buf[PATH_MAX], q[IMPORT_QUOTE_MAX + 8];
	snprintf(buf, sizeof buf, "%s", dir);
	_cleanup_close_ int cur = fcntl(imp->root_fd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return pd_err_errno(err, "image", "dup");
	for (char *comp = buf, *end = buf;; comp = end + 1) {
		end = strchrnul(comp, '/');
		char saved = *end;
		*end = '\0';
		int fd = sys_openat2(imp->root_fd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, RES_ROOT);
		if (fd < 0 && errno != ENOENT)
			return errno == ENOTDIR
				       ? pd_err_set(err, ENOTDIR, "image",
						    "'%s' is not a directory", quote(buf, q))
				       : pd_err_errno(err, "image", "cannot open '%s'",
						      quote(buf, q));
		if (fd < 0) {
			int depth = tree_depth(imp, cur, err);
			if (depth < 0)
				return depth;
			if (depth + 1 > IMPORT_MAX_DEPTH)
				return pd_err_set(err, EINVAL, "image",
						  "directories nested deeper than %d",
						  IMPORT_MAX_DEPTH);
			if (mkdirat(cur, comp, 0700) < 0)
				return errno == EEXIST
					       ? pd_err_set(err, EINVAL, "image",
							    "'%s' is a symlink to nothing",
							    quote(buf, q))
					       : pd_err_errno(err, "image", "cannot create '%s'",
							      quote(buf, q));
			struct stat st;
			fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || fchown(fd, 0, 0) < 0 || fchmod(fd, 0755) < 0 ||
			    fstat(fd, &st) < 0) {
				int r = pd_err_errno(err, "image", "cannot create '%s'",
						     quote(buf, q));
				if (fd >= 0)
					close(fd);
				return r;
			}
			if (ino_set_add(&imp->layer_inos, st.st_ino) < 0) {
				close(fd);
				return pd_err_set(err, ENOMEM, "image", "importing");
			}
		}
		close(cur);
		cur = fd;
		*end = saved;
		if (!saved)
			return steal_fd(&cur);
	}
}

/* Open the directory dir (normalized; "" is the root) of the tree, under the
 * symlink policy at the top of this file. With create, missing components
 * are made (0755, root's). depth, when not NULL, receives its nesting below
 * the root. Returns an fd (O_PATH, or O_RDONLY for the root and for created
 * directories); -ENOENT with err untouched when a component is missing and
 * !create; or < 0 with err filled. */
static int tree_dir(struct import *imp, const char *dir, bool create, int *depth,
		    struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8];
	if (!dir[0]) {
		int fd = fcntl(imp->root_fd, F_DUPFD_CLOEXEC, 3);
		if (depth)
			*depth = 0;
		return fd < 0 ? pd_err_errno(err, "image", "dup") : fd;
	}
	int fd = sys_openat2(imp->root_fd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, RES_STRICT);
	if (fd >= 0) {
		if (depth) {
			*depth = 1;
			for (const char *s = dir; *s; s++)
				*depth += *s == '/';
		}
		return fd;
	}
	if (errno == ENOSYS)
		return pd_err_set(err, ENOSYS, "image",
				  "importing needs openat2() (Linux 5.6 or later)");
	if (errno != ELOOP && errno != ENOENT && errno != ENOTDIR)
		return pd_err_errno(err, "image", "cannot open '%s'", quote(dir, q));
	int r = tree_check_symlinks(imp, dir, err);
	if (r < 0)
		return r;
	fd = sys_openat2(imp->root_fd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, RES_ROOT);
	if (fd < 0 && errno == ENOENT) {
		if (!create)
			return -ENOENT;
		fd = tree_mkdirs(imp, dir, err);
		if (fd < 0)
			return fd;
	} else if (fd < 0) {
		if (errno == ENOTDIR)
			return pd_err_set(err, ENOTDIR, "image", "'%s' is not a directory",
					  quote(dir, q));
		if (errno == ELOOP)
			return pd_err_set(err, ELOOP, "image", "too many symlinks in '%s'",
					  quote(dir, q));
		return pd_err_errno(err, "image", "cannot open '%s'", quote(dir, q));
	}
	if (depth && (*depth = tree_depth(imp, fd, err)) < 0) {
		close(fd);
		return *depth;
	}
	return fd;
}

/* ---- the tree: entries -------------------------------------------------- */

/* Remove what is at leaf in pfd, unless keep_dir and it is a directory.
 * Returns 1 if a directory was kept, 0, or < 0 with err filled. */
static int leaf_clear(struct import *imp, int pfd, const char *leaf, bool keep_dir,
		      struct pd_err *err)
{
	struct stat st;
	if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : pd_err_errno(err, "image", "cannot stat the entry");
	if (S_ISDIR(st.st_mode)) {
		if (keep_dir)
			return 1;
		return tree_remove_at(pfd, leaf, NULL, imp->root_st.st_dev, 0, err);
	}
	if (unlinkat(pfd, leaf, 0) < 0)
		return pd_err_errno(err, "image", "cannot replace the entry");
	return 0;
}

/* Whether an extended attribute is one we keep (see the top of this file). */
static bool xattr_kept(const char *name, const void *value, size_t size)
{
	if (has_prefix(name, "user."))
		return !has_prefix(name, "user.overlay.");
	if (strcmp(name, "security.capability") != 0 || size != XATTR_CAPS_SZ_2)
		return false;
	uint32_t magic;
	memcpy(&magic, value, sizeof magic); /* little-endian on disk */
	magic = le32toh(magic);
	return (magic & VFS_CAP_REVISION_MASK) == VFS_CAP_REVISION_2;
}

/* The entry's owner, checked. Returns 0 or < 0 with err filled. */
static int entry_owner(struct archive_entry *e, uid_t *uid, gid_t *gid, struct pd_err *err)
{
	la_int64_t u = archive_entry_uid(e), g = archive_entry_gid(e);
	if (u < 0 || u >= (la_int64_t)UINT32_MAX || g < 0 || g >= (la_int64_t)UINT32_MAX)
		return pd_err_set(err, EINVAL, "image", "invalid owner %lld:%lld", (long long)u,
				  (long long)g);
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

/* Owner, mode, kept xattrs and (unless a directory: see dir_time) times of the
 * open file or directory fd, in the order that keeps them: chown clears
 * setuid and file capabilities, so it comes first. Returns 0 or < 0 with err
 * filled. */
static int meta_apply(struct import *imp, int fd, struct archive_entry *e, bool is_dir,
		      struct pd_err *err)
{
	uid_t uid;
	gid_t gid;
	int r = entry_owner(e, &uid, &gid, err);
	if (r < 0)
		return r;
	if (fchown(fd, uid, gid) < 0)
		return pd_err_errno(err, "image", "cannot set the owner");
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return pd_err_errno(err, "image", "cannot set the mode");
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !xattr_kept(name, value, size) ||
		    fsetxattr(fd, name, value, size, 0) < 0)
			imp->dropped_xattrs++;
	}
	if (!is_dir && archive_entry_mtime_is_set(e)) {
		struct timespec ts[2] = {
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		};
		if (futimens(fd, ts) < 0)
			return pd_err_errno(err, "image", "cannot set the times");
	}
	return 0;
}

/* Remember the object at fd as this layer's. Returns 0 or < 0 with err filled. */
static int layer_own(struct import *imp, int fd, const char *leaf_or_null, int pfd,
		     struct pd_err *err)
{
	struct stat st;
	int r = leaf_or_null ? fstatat(pfd, leaf_or_null, &st, AT_SYMLINK_NOFOLLOW)
			     : fstat(fd, &st);
	if (r < 0)
		return pd_err_errno(err, "image", "cannot stat the entry");
	if (ino_set_add(&imp->layer_inos, st.st_ino) < 0)
		return pd_err_set(err, ENOMEM, "image", "importing");
	return 0;
}

/* A regular file: created anew, its data written (holes kept), then its
 * metadata. Returns 0 or < 0 with err filled. */
static int apply_file(struct import *imp, struct archive *a, struct archive_entry *e, int pfd,
		      const char *leaf, struct pd_err *err)
{
	la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
	if (size > 0 && (unsigned long long)size > imp->lim->max_bytes - imp->bytes)
		return pd_err_set(err, EFBIG, "image",
				  "the image is larger than the limit of %llu bytes",
				  imp->lim->max_bytes);
	int r = leaf_clear(imp, pfd, leaf, false, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return pd_err_errno(err, "image", "cannot create the file");
	if (size > 0)
		imp->bytes += (unsigned long long)size;
	long long end = 0;
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		r = archive_read_data_block(a, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return pd_err_set(err, archive_errno(a) > 0 ? archive_errno(a) : EIO,
					  "image", "reading the data: %s", archive_error_string(a));
		if (off < 0 || (size >= 0 && (off > size || (la_int64_t)n > size - off)))
			return pd_err_set(err, EINVAL, "image", "data past the file's size");
		if (size < 0) {
			if (n > imp->lim->max_bytes - imp->bytes)
				return pd_err_set(
					err, EFBIG, "image",
					"the image is larger than the limit of %llu bytes",
					imp->lim->max_bytes);
			imp->bytes += n;
		}
		for (size_t done = 0; done < n;) {
			ssize_t w =
				pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return pd_err_errno(err, "image", "cannot write the file");
			done += (size_t)w;
		}
		if (off + (long long)n > end)
			end = off + (long long)n;
	}
	if (size > end && ftruncate(fd, size) < 0)
		return pd_err_errno(err, "image", "cannot write the file");
	if ((r = meta_apply(imp, fd, e, false, err)) < 0)
		return r;
	return layer_own(imp, fd, NULL, -1, err);
}

/* A directory: kept if there is one (its metadata updated), else made. Its
 * mtime is set when the layer is done. Returns 0 or < 0 with err filled. */
static int apply_dir(struct import *imp, struct archive_entry *e, const char *path, int pfd,
		     int pdepth, const char *leaf, struct pd_err *err)
{
	int r = leaf_clear(imp, pfd, leaf, true, err);
	if (r < 0)
		return r;
	if (r == 0) {
		if (pdepth + 1 > IMPORT_MAX_DEPTH)
			return pd_err_set(err, EINVAL, "image", "directories nested deeper than %d",
					  IMPORT_MAX_DEPTH);
		if (mkdirat(pfd, leaf, 0700) < 0)
			return pd_err_errno(err, "image", "cannot create the directory");
	}
	_cleanup_close_ int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, "image", "cannot open the directory");
	if ((r = meta_apply(imp, fd, e, true, err)) < 0 ||
	    (r = layer_own(imp, fd, NULL, -1, err)) < 0)
		return r;
	if (!archive_entry_mtime_is_set(e))
		return 0;
	if (imp->n_times == imp->cap_times) {
		size_t cap = imp->cap_times ? imp->cap_times * 2 : 256;
		struct dir_time *v = realloc(imp->times, cap * sizeof *v);
		if (!v)
			return pd_err_set(err, ENOMEM, "image", "importing");
		imp->times = v;
		imp->cap_times = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return pd_err_set(err, ENOMEM, "image", "importing");
	imp->times[imp->n_times++] =
		(struct dir_time){ copy, { archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
	return 0;
}

/* A symlink, whatever its target: targets are read by the sandbox within its
 * root, and by this file only with RESOLVE_IN_ROOT. Returns 0 or < 0 with err
 * filled. */
static int apply_symlink(struct import *imp, struct archive_entry *e, int pfd, const char *leaf,
			 struct pd_err *err)
{
	const char *target = archive_entry_symlink(e);
	if (!target)
		target = archive_entry_symlink_utf8(e);
	if (!target || !target[0])
		return pd_err_set(err, EINVAL, "image", "a symlink without a target");
	if (strlen(target) > imp->lim->max_path || strlen(target) >= PATH_MAX)
		return pd_err_set(err, ENAMETOOLONG, "image", "the symlink's target is too long");
	uid_t uid;
	gid_t gid;
	int r = entry_owner(e, &uid, &gid, err);
	if (r < 0 || (r = leaf_clear(imp, pfd, leaf, false, err)) < 0)
		return r;
	if (symlinkat(target, pfd, leaf) < 0)
		return pd_err_errno(err, "image", "cannot create the symlink");
	if (fchownat(pfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return pd_err_errno(err, "image", "cannot set the symlink's owner");
	if (archive_entry_mtime_is_set(e)) {
		struct timespec ts[2] = {
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		};
		if (utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(err, "image", "cannot set the symlink's times");
	}
	imp->layer_symlinks++;
	return layer_own(imp, -1, leaf, pfd, err);
}

/* A hardlink to target (as in the archive). Returns 0 or < 0 with err filled. */
static int apply_hardlink(struct import *imp, const char *path, const char *target, int pfd,
			  const char *leaf, struct pd_err *err)
{
	char tpath[PATH_MAX], q[IMPORT_QUOTE_MAX + 8];
	int n = path_normalize(target, imp->lim->max_path, tpath);
	if (n < 0)
		return pd_err_set(err, n == -ENAMETOOLONG ? ENAMETOOLONG : EINVAL, "image",
				  "hardlink to '%s': %s", quote(target, q), path_refusal(n));
	if (n == 0)
		return pd_err_set(err, EINVAL, "image", "a hardlink to the root");
	if (strcmp(tpath, path) == 0)
		return 0;
	const char *tdir, *tleaf;
	path_split(tpath, &tdir, &tleaf);
	_cleanup_close_ int tpfd = tree_dir(imp, tdir, false, NULL, err);
	struct stat st;
	if (tpfd == -ENOENT || (tpfd >= 0 && fstatat(tpfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0))
		return tpfd >= 0 && errno != ENOENT
			       ? pd_err_errno(err, "image", "cannot stat '%s'", quote(target, q))
			       : pd_err_set(err, ENOENT, "image",
					    "hardlink to '%s', which does not exist",
					    quote(target, q));
	if (tpfd < 0)
		return tpfd;
	if (S_ISDIR(st.st_mode))
		return pd_err_set(err, EINVAL, "image", "hardlink to the directory '%s'",
				  quote(target, q));
	int r = leaf_clear(imp, pfd, leaf, false, err);
	if (r < 0)
		return r;
	if (linkat(tpfd, tleaf, pfd, leaf, 0) < 0)
		return pd_err_errno(err, "image", "cannot create the hardlink");
	return layer_own(imp, -1, leaf, pfd, err);
}

/* A whiteout in dir: leaf is ".wh..wh..opq" (empty dir of what lower layers
 * put there) or ".wh.NAME" (remove NAME as lower layers left it). Returns 0
 * or < 0 with err filled. */
static int apply_whiteout(struct import *imp, const char *dir, const char *leaf, struct pd_err *err)
{
	bool opaque = strcmp(leaf, WH_OPAQUE) == 0;
	const char *victim = leaf + strlen(WH_PREFIX);
	if (!opaque && has_prefix(leaf, WH_META)) {
		imp->skipped_meta++;
		return 0;
	}
	if (!opaque && (!victim[0] || !strcmp(victim, ".") || !strcmp(victim, "..")))
		return pd_err_set(err, EINVAL, "image", "a whiteout of '.' or '..'");
	_cleanup_close_ int pfd = tree_dir(imp, dir, false, NULL, err);
	if (pfd == -ENOENT)
		return 0; /* nothing below to hide */
	if (pfd < 0)
		return pfd;
	if (!opaque)
		return tree_remove_at(pfd, victim, &imp->layer_inos, imp->root_st.st_dev, 0, err);
	int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return pd_err_errno(err, "image", "cannot read the opaque directory");
	}
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = tree_remove_at(dirfd(d), e->d_name, &imp->layer_inos, imp->root_st.st_dev,
				       0, err);
		if (r < 0)
			return r;
	}
	return errno ? pd_err_errno(err, "image", "cannot read the opaque directory") : 0;
}

/* The root's own entry ("./"): its owner and mode. Returns 0 or < 0 with err filled. */
static int apply_root(struct import *imp, struct archive_entry *e, struct pd_err *err)
{
	if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
		return pd_err_set(err, EINVAL, "image", "the root is not a directory");
	imp->root_meta = true;
	return meta_apply(imp, imp->root_fd, e, true, err);
}

/* One archive entry of the current layer. Returns 0 or < 0 with err filled. */
static int apply_entry(struct import *imp, struct archive *a, struct archive_entry *e,
		       struct pd_err *err)
{
	char path[PATH_MAX], full[PATH_MAX];
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		raw = archive_entry_pathname_utf8(e);
	int n = path_normalize(raw, imp->lim->max_path, path);
	if (n < 0)
		return pd_err_set(err, n == -ENAMETOOLONG ? ENAMETOOLONG : EINVAL, "image", "%s",
				  path_refusal(n));
	if (n == 0)
		return apply_root(imp, e, err);
	memcpy(full, path, strlen(path) + 1);
	const char *dir, *leaf;
	path_split(path, &dir, &leaf);
	for (const char *s = dir; *s; s = strchrnul(s, '/'), s += !!*s)
		if (has_prefix(s, WH_PREFIX))
			return pd_err_set(err, EINVAL, "image",
					  "a whiteout name used as a directory");
	if (has_prefix(leaf, WH_PREFIX))
		return apply_whiteout(imp, dir, leaf, err);

	const char *hardlink = archive_entry_hardlink(e);
	if (!hardlink)
		hardlink = archive_entry_hardlink_utf8(e);
	mode_t type = archive_entry_filetype(e);
	if (!hardlink) {
		switch (type) {
		case AE_IFCHR:
		case AE_IFBLK:
			imp->skipped_dev++;
			return 0;
		case AE_IFIFO:
			imp->skipped_fifo++;
			return 0;
		case AE_IFSOCK:
			imp->skipped_sock++;
			return 0;
		case AE_IFREG:
		case AE_IFDIR:
		case AE_IFLNK:
			break;
		default:
			return pd_err_set(err, EINVAL, "image", "unknown entry type 0%o",
					  (unsigned)type);
		}
	}
	int pdepth = 0;
	_cleanup_close_ int pfd = tree_dir(imp, dir, true, type == AE_IFDIR ? &pdepth : NULL, err);
	if (pfd < 0)
		return pfd;
	if (hardlink)
		return apply_hardlink(imp, full, hardlink, pfd, leaf, err);
	if (type == AE_IFREG)
		return apply_file(imp, a, e, pfd, leaf, err);
	if (type == AE_IFDIR)
		return apply_dir(imp, e, full, pfd, pdepth, leaf, err);
	return apply_symlink(imp, e, pfd, leaf, err);
}

/* Set the mtimes of the directories the layer listed, now that nothing
 * changes them; best effort (a directory may be gone since). */
static void layer_set_dir_times(struct import *imp)
{
	struct pd_err ignored;
	for (size_t i = 0; i < imp->n_times; i++) {
		const char *dir, *leaf;
		path_split(imp->times[i].path, &dir, &leaf);
		int pfd = tree_dir(imp, dir, false, NULL, &ignored);
		if (pfd >= 0) {
			struct timespec ts[2] = { imp->times[i].mtime, imp->times[i].mtime };
			utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
			close(pfd);
		}
		free(imp->times[i].path);
	}
	imp->n_times = 0;
}

/* ---- reading: files, archive members, blobs ------------------------------ */

static la_ssize_t fr_read(struct archive *a, void *data, const void **buf)
{
	struct file_reader *fr = data;
	ssize_t n;
	do
		n = pread(fr->fd, fr->buf, sizeof fr->buf, fr->off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "read error");
		return -1;
	}
	if (fr->md && EVP_DigestUpdate(fr->md, fr->buf, (size_t)n) != 1) {
		archive_set_error(a, EIO, "SHA-256 failed");
		return -1;
	}
	fr->off += n;
	*buf = fr->buf;
	return n;
}

static la_int64_t fr_skip(struct archive *a, void *data, la_int64_t request)
{
	(void)a;
	struct file_reader *fr = data;
	if (fr->md || request <= 0 || fr->off >= fr->size)
		return 0; /* hashing: every byte must be read */
	if (request > fr->size - fr->off)
		request = fr->size - fr->off;
	fr->off += request;
	return request;
}

/* A tar reader (ustar, pax, GNU) with the decompressors libarchive is linked
 * with. One it is not linked with would run an external program (gzip -d...)
 * on hostile input, so it is not offered. Returns NULL when out of memory. */
static struct archive *tar_reader_new(void)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	archive_read_support_format_tar(a);
	if (archive_zlib_version())
		archive_read_support_filter_gzip(a);
	if (archive_bzlib_version())
		archive_read_support_filter_bzip2(a);
	if (archive_liblzma_version()) {
		archive_read_support_filter_xz(a);
		archive_read_support_filter_lzma(a);
	}
	if (archive_libzstd_version())
		archive_read_support_filter_zstd(a);
	if (archive_liblz4_version())
		archive_read_support_filter_lz4(a);
	return a;
}

static void blob_free(struct blob *b)
{
	if (!b)
		return;
	if (b->outer)
		archive_read_free(b->outer);
	free(b->fr);
	if (b->fd >= 0)
		close(b->fd);
	EVP_MD_CTX_free(b->md);
	free(b);
}

static void blob_freep(struct blob **b)
{
	blob_free(*b);
}
#define _cleanup_blob_ __attribute__((cleanup(blob_freep)))

/* Next bytes of the blob, hashed. Returns their count (0 at the end) with
 * *data pointing at them, or a negative errno with msg filled. */
static ssize_t blob_read(struct blob *b, const void **data, char *msg, size_t msg_len)
{
	size_t n;
	if (b->outer) {
		la_int64_t off;
		int r = archive_read_data_block(b->outer, data, &n, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK) {
			snprintf(msg, msg_len, "reading %s: %s", b->what,
				 archive_error_string(b->outer));
			return -EIO;
		}
		if (off < 0 || (unsigned long long)off != b->nread) {
			snprintf(msg, msg_len, "%s is a sparse archive member", b->what);
			return -EINVAL;
		}
	} else {
		ssize_t r;
		do
			r = pread(b->fd, b->buf, sizeof b->buf, b->off);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			int e = errno;
			snprintf(msg, msg_len, "reading %s: %s", b->what, strerror(e));
			return -e;
		}
		n = (size_t)r;
		b->off += r;
		*data = b->buf;
	}
	b->nread += n;
	if (b->max >= 0 && b->nread > (unsigned long long)b->max) {
		snprintf(msg, msg_len, "%s is larger than %lld bytes", b->what, b->max);
		return -EFBIG;
	}
	if (n && EVP_DigestUpdate(b->md, *data, n) != 1) {
		snprintf(msg, msg_len, "hashing %s failed", b->what);
		return -EIO;
	}
	return (ssize_t)n;
}

/* Read the blob to its end and check its size and SHA-256 (want_size < 0,
 * want_hex NULL: unchecked). got: its digest (65 bytes) or NULL. Returns 0
 * or < 0 with err filled. */
static int blob_finish(struct blob *b, long long want_size, const char *want_hex, char *got,
		       struct pd_err *err)
{
	char msg[512];
	const void *data;
	ssize_t n;
	while ((n = blob_read(b, &data, msg, sizeof msg)) > 0)
		;
	if (n < 0)
		return pd_err_set(err, (int)-n, "image", "%s", msg);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	char hex[65];
	if (EVP_DigestFinal_ex(b->md, md, &len) != 1 || len != 32)
		return pd_err_set(err, EIO, "image", "hashing %s failed", b->what);
	hex_encode(md, 32, hex);
	if (got)
		memcpy(got, hex, sizeof hex);
	if (want_hex && strcmp(hex, want_hex) != 0) {
		pd_err_set(err, EINVAL, "image",
			   "%s does not match its digest: sha256:%s, expected sha256:%s", b->what,
			   hex, want_hex);
		return pd_err_hint(err, "the archive is damaged or has been tampered with");
	}
	if (want_size >= 0 && b->nread != (unsigned long long)want_size)
		return pd_err_set(err, EINVAL, "image", "%s has %llu bytes, the manifest says %lld",
				  b->what, b->nread, want_size);
	return 0;
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->name, ((const struct member *)b)->name);
}

static const struct member *member_find(const struct import *imp, const char *name)
{
	struct member key = { .name = (char *)name };
	return bsearch(&key, imp->members, imp->n_members, sizeof key, member_cmp);
}

/* The regular member that name stands for, following member symlinks (docker
 * save links a layer shared by two images) and hardlinks within the archive.
 * Returns 0 and the member in *out, or < 0 with err filled. */
static int member_resolve(const struct import *imp, const char *name, const struct member **out,
			  struct pd_err *err)
{
	char cur[PATH_MAX], next[2 * PATH_MAX], q[IMPORT_QUOTE_MAX + 8];
	snprintf(cur, sizeof cur, "%s", name);
	for (int hop = 0; hop <= IMPORT_MAX_HOPS; hop++) {
		const struct member *m = member_find(imp, cur);
		if (!m)
			return pd_err_set(err, ENOENT, "image", "the archive has no '%s'",
					  quote(cur, q));
		if (m->type == AE_IFREG && !m->hardlink) {
			*out = m;
			return 0;
		}
		if (!m->link || (!m->hardlink && m->type != AE_IFLNK))
			return pd_err_set(err, EINVAL, "image", "'%s' in the archive is not a file",
					  quote(cur, q));
		if (m->link[0] == '/')
			return pd_err_set(err, EINVAL, "image",
					  "'%s' in the archive links outside it", quote(name, q));
		/* A symlink is relative to its directory; ".." may climb to the
		 * archive's root, not above it. */
		const char *slash = strrchr(cur, '/');
		if (m->hardlink || !slash)
			snprintf(next, sizeof next, "%s", m->link);
		else
			snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, m->link);
		size_t len = 0;
		for (char *save = NULL, *c = strtok_r(next, "/", &save); c;
		     c = strtok_r(NULL, "/", &save)) {
			if (!strcmp(c, "."))
				continue;
			if (!strcmp(c, "..")) {
				if (len == 0)
					return pd_err_set(err, EINVAL, "image",
							  "'%s' in the archive links outside it",
							  quote(name, q));
				while (len > 0 && cur[len - 1] != '/')
					len--;
				len -= len > 0;
				continue;
			}
			if (len + strlen(c) + 2 > sizeof cur)
				return pd_err_set(err, ENAMETOOLONG, "image",
						  "a link in the archive is too long");
			if (len)
				cur[len++] = '/';
			memcpy(cur + len, c, strlen(c));
			len += strlen(c);
		}
		cur[len] = '\0';
	}
	return pd_err_set(err, ELOOP, "image", "too many links from '%s' in the archive",
			  quote(name, q));
}

/* Open the blob at path (normalized) of the source: a file below the layout
 * directory, or a member of the archive. max: more bytes is an error (-1: no
 * bound). Returns 0 and *out, or < 0 with err filled. */
static int blob_open(struct import *imp, const char *path, long long max, struct blob **out,
		     struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8];
	_cleanup_blob_ struct blob *b = calloc(1, sizeof *b);
	if (!b || !(b->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
		return pd_err_set(err, ENOMEM, "image", "reading '%s'", quote(path, q));
	b->fd = -1;
	b->max = max;
	snprintf(b->what, sizeof b->what, "'%s'", quote(path, q));
	if (imp->src_dir) {
		b->fd = sys_openat2(imp->src_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
				    RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
		struct stat st;
		if (b->fd < 0)
			return errno == ENOENT
				       ? pd_err_set(err, ENOENT, "image", "%s does not exist",
						    b->what)
				       : pd_err_errno(err, "image", "cannot open %s", b->what);
		if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode))
			return pd_err_set(err, EINVAL, "image", "%s is not a regular file",
					  b->what);
		*out = steal_ptr(&b);
		return 0;
	}
	const struct member *m = NULL;
	int r = member_resolve(imp, path, &m, err);
	if (r < 0)
		return r;
	if (!(b->fr = calloc(1, sizeof *b->fr)) || !(b->outer = tar_reader_new()))
		return pd_err_set(err, ENOMEM, "image", "reading '%s'", quote(path, q));
	*b->fr = (struct file_reader){ .fd = imp->src_fd, .size = imp->src_size };
	if (archive_read_open2(b->outer, b->fr, NULL, fr_read, fr_skip, NULL) != ARCHIVE_OK)
		return pd_err_set(err, EIO, "image", "reading %s: %s", imp->file,
				  archive_error_string(b->outer));
	char name[PATH_MAX];
	struct archive_entry *e;
	while ((r = archive_read_next_header(b->outer, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *raw = archive_entry_pathname(e);
		if (path_normalize(raw ? raw : archive_entry_pathname_utf8(e), PATH_MAX - 1,
				   name) >= 0 &&
		    strcmp(name, m->name) == 0) {
			*out = steal_ptr(&b);
			return 0;
		}
	}
	return pd_err_set(err, EIO, "image", "'%s' vanished from %s (did the file change?)",
			  quote(m->name, q), imp->file);
}

/* Read the JSON document at path (a blob: want_size and want_hex as in
 * blob_finish). got: its digest (65 bytes) or NULL. Returns 0 and *out, or < 0
 * with err filled. */
static int read_json(struct import *imp, const char *path, long long want_size,
		     const char *want_hex, char *got, json_t **out, struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8], msg[512];
	unsigned long max = imp->lim->max_json;
	if (want_size > (long long)max)
		return pd_err_set(err, EINVAL, "image",
				  "'%s' is larger than the limit of %lu bytes", quote(path, q),
				  max);
	_cleanup_blob_ struct blob *b = NULL;
	int r = blob_open(imp, path, (long long)max, &b, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = malloc(max + 1);
	if (!buf)
		return pd_err_set(err, ENOMEM, "image", "reading '%s'", quote(path, q));
	size_t len = 0;
	const void *data;
	ssize_t n;
	while ((n = blob_read(b, &data, msg, sizeof msg)) > 0) {
		memcpy(buf + len, data, (size_t)n); /* blob_read stops past max */
		len += (size_t)n;
	}
	if (n == -EFBIG)
		return pd_err_set(err, EINVAL, "image",
				  "'%s' is larger than the limit of %lu bytes", quote(path, q),
				  max);
	if (n < 0)
		return pd_err_set(err, (int)-n, "image", "%s", msg);
	if ((r = blob_finish(b, want_size, want_hex, got, err)) < 0)
		return r;
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return pd_err_set(err, EINVAL, "image", "'%s' is not valid JSON: %s (line %d)",
				  quote(path, q), jerr.text, jerr.line);
	*out = j;
	return 0;
}

/* ---- layers ------------------------------------------------------------- */

static la_ssize_t blob_cb_read(struct archive *a, void *data, const void **buf)
{
	char msg[512];
	ssize_t n = blob_read(data, buf, msg, sizeof msg);
	if (n < 0) {
		archive_set_error(a, (int)-n, "%s", msg);
		return -1;
	}
	return n;
}

/* Apply the layer in blob to the tree, then check the blob (want_size,
 * want_hex: see blob_finish); diff_hex, when set, is the SHA-256 of the
 * uncompressed layer (docker's diff_id), checked when the layer is not
 * compressed. got: the blob's digest. Returns 0 or < 0 with err filled. */
static int apply_layer(struct import *imp, struct blob *b, long long want_size,
		       const char *want_hex, const char *diff_hex, char got[65], struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8];
	struct archive *a = tar_reader_new();
	if (!a)
		return pd_err_set(err, ENOMEM, "image", "reading a layer");
	int r = archive_read_open2(a, b, NULL, blob_cb_read, NULL, NULL);
	unsigned long long before = imp->entries;
	bool plain = false;
	struct archive_entry *e;
	while (r == ARCHIVE_OK) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF) {
			r = ARCHIVE_OK;
			break;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			break;
		if (++imp->entries > imp->lim->max_entries) {
			archive_read_free(a);
			return pd_err_set(err, EINVAL, "image", "more than %llu entries",
					  imp->lim->max_entries);
		}
		if ((r = apply_entry(imp, a, e, err)) < 0) {
			const char *raw = archive_entry_pathname(e);
			pd_err_prefix(err, "entry '%s'",
				      quote(raw ? raw : archive_entry_pathname_utf8(e), q));
			if (r == -EINVAL && err && !err->hint[0])
				pd_err_hint(err,
					    "the archive is damaged or crafted to write outside "
					    "the image; nothing was imported");
			archive_read_free(a);
			return r;
		}
	}
	if (r != ARCHIVE_OK) {
		int code = archive_errno(a) > 0 ? archive_errno(a) : EINVAL;
		pd_err_set(err, code, "image", "%s is not a readable tar archive: %s", b->what,
			   archive_error_string(a) ? archive_error_string(a) : "unknown error");
		archive_read_free(a);
		return -code;
	}
	plain = archive_filter_count(a) <= 1 || archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE;
	archive_read_free(a);
	if ((r = blob_finish(b, want_size, want_hex, got, err)) < 0)
		return r;
	if (diff_hex && plain && strcmp(got, diff_hex) != 0) {
		pd_err_set(err, EINVAL, "image", "%s does not match its diff_id sha256:%s", b->what,
			   diff_hex);
		return pd_err_hint(err, "the archive is damaged or has been tampered with");
	}
	layer_set_dir_times(imp);
	ino_set_clear(&imp->layer_inos);
	imp->layer_symlinks = 0;
	report(imp, "I: layer %u/%u: sha256:%.12s, %llu entries", imp->layer, imp->n_layers, got,
	       imp->entries - before);
	json_t *digest = json_sprintf("sha256:%s", got);
	if (!digest || json_array_append_new(imp->layer_digests, digest) < 0)
		return pd_err_set(err, ENOMEM, "image", "importing");
	return 0;
}

/* Open the blob at path and apply it as layer imp->layer. Returns 0 or < 0
 * with err filled (prefixed with the layer). */
static int import_layer(struct import *imp, const char *path, long long want_size,
			const char *want_hex, const char *diff_hex, struct pd_err *err)
{
	_cleanup_blob_ struct blob *b = NULL;
	char got[65];
	int r = blob_open(imp, path, want_size, &b, err);
	if (r >= 0)
		r = apply_layer(imp, b, want_size, want_hex, diff_hex, got, err);
	if (r < 0)
		pd_err_prefix(err, "layer %u of %u", imp->layer, imp->n_layers);
	return r;
}

/* ---- formats ------------------------------------------------------------ */

/* The 64 hex digits of a "sha256:<hex>" digest, or NULL. */
static const char *digest_hex(const char *digest)
{
	if (!digest || !has_prefix(digest, "sha256:") || !is_hex(digest + 7, 64))
		return NULL;
	return digest + 7;
}

/* A plain tarball: the whole file is the one layer, and its digest the source's. */
static int import_rootfs(struct import *imp, struct pd_err *err)
{
	_cleanup_blob_ struct blob *b = calloc(1, sizeof *b);
	if (!b || !(b->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
		return pd_err_set(err, ENOMEM, "image", "importing");
	b->fd = fcntl(imp->src_fd, F_DUPFD_CLOEXEC, 3);
	b->max = -1;
	snprintf(b->what, sizeof b->what, "the archive");
	if (b->fd < 0)
		return pd_err_errno(err, "image", "dup");
	imp->layer = imp->n_layers = 1;
	return apply_layer(imp, b, -1, NULL, NULL, imp->src_digest, err);
}

/* docker save: manifest.json is [{"Config": "<hex>.json", "RepoTags": [...],
 * "Layers": ["<id>/layer.tar", ...]}]. Layers are checked against their names
 * when those are digests (blobs/sha256/<hex>), and against the config's
 * rootfs.diff_ids when uncompressed. */
static int import_docker(struct import *imp, json_t *meta, struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8], path[PATH_MAX];
	json_t *manifest = NULL, *config = NULL;
	int r = read_json(imp, "manifest.json", -1, NULL, imp->src_dir ? imp->src_digest : NULL,
			  &manifest, err);
	if (r < 0)
		return r;
	size_t n = json_array_size(manifest);
	json_t *image = n == 1 ? json_array_get(manifest, 0) : NULL;
	json_t *layers = json_object_get(image, "Layers");
	if (n > 1) {
		pd_err_set(err, EINVAL, "image", "the archive holds %zu images", n);
		r = pd_err_hint(err, "save one image per archive");
		goto out;
	}
	if (!json_is_object(image) || !json_is_array(layers)) {
		r = pd_err_set(err, EINVAL, "image",
			       "manifest.json is not a docker-archive manifest");
		goto out;
	}
	json_t *tags = json_object_get(image, "RepoTags");
	if (json_is_array(tags) && json_object_set(meta, "tags", tags) < 0) {
		r = pd_err_set(err, ENOMEM, "image", "importing");
		goto out;
	}
	if ((n = json_array_size(layers)) > imp->lim->max_layers) {
		r = pd_err_set(err, EINVAL, "image", "the image has %zu layers, more than %u", n,
			       imp->lim->max_layers);
		goto out;
	}

	/* The config, checked against its name ("<hex>.json" or blobs/sha256/<hex>),
	 * for the layers' diff_ids. */
	json_t *diff_ids = NULL;
	const char *config_name = json_string_value(json_object_get(image, "Config"));
	if (config_name) {
		if (path_normalize(config_name, PATH_MAX - 1, path) <= 0) {
			r = pd_err_set(err, EINVAL, "image",
				       "the config '%s' is outside the archive",
				       quote(config_name, q));
			goto out;
		}
		char want[65] = "";
		if (strlen(path) == 69 && strcmp(path + 64, ".json") == 0)
			snprintf(want, sizeof want, "%.64s", path);
		else if (has_prefix(path, "blobs/sha256/"))
			snprintf(want, sizeof want, "%.64s", path + 13);
		bool named = is_hex(want, 64);
		if ((r = read_json(imp, path, -1, named ? want : NULL, NULL, &config, err)) < 0)
			goto out;
		diff_ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
		if (json_array_size(diff_ids) != n)
			diff_ids = NULL;
	}

	imp->n_layers = (unsigned)n;
	for (size_t i = 0; i < n && r >= 0; i++) {
		imp->layer = (unsigned)i + 1;
		const char *name = json_string_value(json_array_get(layers, i));
		if (path_normalize(name, PATH_MAX - 1, path) <= 0) {
			r = pd_err_set(err, EINVAL, "image",
				       "layer %zu '%s' is outside the archive", i + 1,
				       quote(name, q));
			break;
		}
		const char *want = has_prefix(path, "blobs/sha256/") ? path + 13 : NULL;
		const char *diff = digest_hex(json_string_value(json_array_get(diff_ids, i)));
		if (want && !is_hex(want, 64))
			want = NULL;
		if (!want && !diff)
			report(imp, "W: layer %zu (%s) has no digest to check it against", i + 1,
			       quote(path, q));
		r = import_layer(imp, path, -1, want, diff, err);
	}
out:
	json_decref(config);
	json_decref(manifest);
	return r;
}

/* A descriptor {mediaType, digest, size}. Returns 0 or < 0 with err filled. */
static int oci_descriptor(json_t *d, const char **media, const char **hex, long long *size,
			  struct pd_err *err)
{
	*media = json_string_value(json_object_get(d, "mediaType"));
	const char *digest = json_string_value(json_object_get(d, "digest"));
	json_t *sz = json_object_get(d, "size");
	char q[IMPORT_QUOTE_MAX + 8];
	if (!json_is_object(d) || !digest || !json_is_integer(sz) || json_integer_value(sz) < 0)
		return pd_err_set(err, EINVAL, "image", "a descriptor without digest or size");
	if (!(*hex = digest_hex(digest)))
		return pd_err_set(err, EINVAL, "image", "unsupported digest '%s' (sha256 only)",
				  quote(digest, q));
	*size = json_integer_value(sz);
	return 0;
}

static bool oci_is_index(const char *media)
{
	return media && (!strcmp(media, MT_OCI_INDEX) || !strcmp(media, MT_DOCKER_LIST));
}

static bool oci_is_manifest(const char *media)
{
	return media && (!strcmp(media, MT_OCI_MANIFEST) || !strcmp(media, MT_DOCKER_MANIFEST));
}

/* The manifest an index stands for: the only one, or the one for linux on
 * this machine's architecture; nested indexes are followed. Attestations
 * (docker buildx) and unknown media types are ignored. Returns 0 and the
 * parsed manifest in *out, or < 0 with err filled. */
static int oci_pick(struct import *imp, json_t *index, int depth, json_t **out, struct pd_err *err)
{
	char path[128];
	json_t *list = json_object_get(index, "manifests");
	if (!json_is_array(list))
		return pd_err_set(err, EINVAL, "image", "an image index without manifests");
	json_t *pick = NULL, *only = NULL;
	size_t usable = 0;
	size_t i;
	json_t *d;
	json_array_foreach (list, i, d) {
		const char *media = json_string_value(json_object_get(d, "mediaType"));
		const char *ref = json_string_value(json_object_get(
			json_object_get(d, "annotations"), "vnd.docker.reference.type"));
		if ((!oci_is_index(media) && !oci_is_manifest(media)) ||
		    (ref && !strcmp(ref, "attestation-manifest")))
			continue;
		json_t *platform = json_object_get(d, "platform");
		const char *os = json_string_value(json_object_get(platform, "os"));
		const char *arch = json_string_value(json_object_get(platform, "architecture"));
		if (os && !strcmp(os, "unknown"))
			continue;
		usable++;
		only = d;
		if (!pick && os && arch && !strcmp(os, "linux") && !strcmp(arch, HOST_ARCH))
			pick = d;
	}
	if (!pick && usable == 1 && !json_object_get(only, "platform"))
		pick = only;
	if (!pick)
		return pd_err_set(err, ENOENT, "image",
				  "the image index lists %zu images, none for linux/" HOST_ARCH,
				  usable);
	const char *media, *hex;
	long long size;
	int r = oci_descriptor(pick, &media, &hex, &size, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof path, "blobs/sha256/%s", hex);
	json_t *doc = NULL;
	if (oci_is_index(media)) {
		if (depth >= IMPORT_MAX_INDEX_DEPTH)
			return pd_err_set(err, ELOOP, "image", "image indexes nested too deep");
		if ((r = read_json(imp, path, size, hex, NULL, &doc, err)) < 0)
			return r;
		r = oci_pick(imp, doc, depth + 1, out, err);
		json_decref(doc);
		return r;
	}
	if ((r = read_json(imp, path, size, hex, NULL, &doc, err)) < 0)
		return r;
	memcpy(imp->manifest_digest, hex, 65);
	*out = doc;
	return 0;
}

/* Whether a layer media type is one we apply. */
static bool oci_layer_type_ok(const char *media)
{
	static const char *const types[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	};
	for (size_t i = 0; media && i < ARRAY_SIZE(types); i++)
		if (!strcmp(media, types[i]))
			return true;
	return false;
}

/* An OCI image layout: oci-layout, index.json -> manifest -> layers. */
static int import_oci(struct import *imp, struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8], path[128];
	json_t *layout = NULL, *index = NULL, *manifest = NULL;
	int r = read_json(imp, "oci-layout", -1, NULL, NULL, &layout, err);
	if (r < 0)
		return r;
	const char *version = json_string_value(json_object_get(layout, "imageLayoutVersion"));
	bool ok = version && has_prefix(version, "1.");
	json_decref(layout);
	if (!ok)
		return pd_err_set(err, EINVAL, "image",
				  "oci-layout: unsupported imageLayoutVersion");
	if ((r = read_json(imp, "index.json", -1, NULL, imp->src_dir ? imp->src_digest : NULL,
			   &index, err)) < 0)
		return r;
	r = oci_pick(imp, index, 0, &manifest, err);
	json_decref(index);
	if (r < 0)
		return r;
	const char *mt = json_string_value(json_object_get(manifest, "mediaType"));
	json_t *layers = json_object_get(manifest, "layers");
	if ((mt && !oci_is_manifest(mt)) || !json_is_array(layers)) {
		json_decref(manifest);
		return pd_err_set(err, EINVAL, "image", "the manifest has no layers");
	}
	size_t n = json_array_size(layers);
	if (n > imp->lim->max_layers) {
		json_decref(manifest);
		return pd_err_set(err, EINVAL, "image", "the image has %zu layers, more than %u", n,
				  imp->lim->max_layers);
	}
	imp->n_layers = (unsigned)n;
	for (size_t i = 0; i < n && r >= 0; i++) {
		imp->layer = (unsigned)i + 1;
		const char *media, *hex;
		long long size;
		if ((r = oci_descriptor(json_array_get(layers, i), &media, &hex, &size, err)) < 0)
			break;
		if (!oci_layer_type_ok(media)) {
			r = pd_err_set(err, EINVAL, "image",
				       "layer %zu has the unsupported media type '%s'", i + 1,
				       quote(media, q));
			break;
		}
		snprintf(path, sizeof path, "blobs/sha256/%s", hex);
		r = import_layer(imp, path, size, hex, NULL, err);
	}
	json_decref(manifest);
	return r;
}

/* Whether a normalized member name fits a docker or OCI archive: top-level
 * files, the <id>/ directories of docker save, blobs/<alg>/<hex>. A root
 * filesystem has other names (bin, etc...) and is told apart by the first. */
static bool container_member_ok(const char *name)
{
	const char *slash = strchr(name, '/');
	if (!slash)
		return true;
	if (has_prefix(name, "blobs/"))
		return strchr(name + 6, '/') == NULL ||
		       strchr(strchr(name + 6, '/') + 1, '/') == NULL;
	if (slash - name != 64)
		return false;
	for (const char *s = name; s < slash; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return !strcmp(slash, "/layer.tar") || !strcmp(slash, "/json") ||
	       !strcmp(slash, "/VERSION");
}

static void members_free(struct import *imp)
{
	for (size_t i = 0; i < imp->n_members; i++) {
		free(imp->members[i].name);
		free(imp->members[i].link);
	}
	free(imp->members);
	imp->members = NULL;
	imp->n_members = 0;
}

/* Tell the format of an archive file: read its headers until one that no
 * docker or OCI archive has (a root filesystem), or to the end (then the
 * member table is kept and src_digest is the file's). Returns 0 or < 0 with
 * err filled. */
static int scan_archive(struct import *imp, struct pd_err *err)
{
	char name[PATH_MAX];
	_cleanup_free_ struct file_reader *fr = calloc(1, sizeof *fr);
	struct archive *a = tar_reader_new();
	if (!fr || !a || !(fr->md = EVP_MD_CTX_new()) ||
	    EVP_DigestInit_ex(fr->md, EVP_sha256(), NULL) != 1) {
		if (fr)
			EVP_MD_CTX_free(fr->md);
		archive_read_free(a);
		return pd_err_set(err, ENOMEM, "image", "reading %s", imp->file);
	}
	fr->fd = imp->src_fd;
	fr->size = imp->src_size;
	int r = archive_read_open2(a, fr, NULL, fr_read, fr_skip, NULL);
	bool layout = false, index = false, manifest = false, rootfs = false;
	size_t cap = 0;
	struct archive_entry *e;
	while (r == ARCHIVE_OK && !rootfs) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF) {
			r = ARCHIVE_OK;
			break;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			break;
		r = ARCHIVE_OK;
		const char *raw = archive_entry_pathname(e);
		if (!raw)
			raw = archive_entry_pathname_utf8(e);
		if (path_normalize(raw, PATH_MAX - 1, name) < 0 || !container_member_ok(name)) {
			rootfs = true;
			break;
		}
		layout = layout || !strcmp(name, "oci-layout");
		index = index || !strcmp(name, "index.json");
		manifest = manifest || !strcmp(name, "manifest.json");
		if (imp->n_members == IMPORT_MAX_MEMBERS) {
			rootfs = true; /* no image archive has that many: a flat tarball */
			break;
		}
		if (imp->n_members == cap) {
			cap = cap ? cap * 2 : 64;
			struct member *v = realloc(imp->members, cap * sizeof *v);
			if (!v) {
				r = ARCHIVE_FATAL;
				archive_set_error(a, ENOMEM, "out of memory");
				break;
			}
			imp->members = v;
		}
		const char *hl = archive_entry_hardlink(e), *sl = archive_entry_symlink(e);
		struct member *m = &imp->members[imp->n_members++];
		*m = (struct member){ .name = strdup(name),
				      .type = archive_entry_filetype(e),
				      .hardlink = hl != NULL };
		if (hl || sl)
			m->link = strdup(hl ? hl : sl);
		if (!m->name || ((hl || sl) && !m->link)) {
			r = ARCHIVE_FATAL;
			archive_set_error(a, ENOMEM, "out of memory");
		}
	}
	if (r != ARCHIVE_OK) {
		int code = archive_errno(a) > 0 ? archive_errno(a) : EINVAL;
		pd_err_set(err, code, "image", "%s is not a readable tar archive: %s", imp->file,
			   archive_error_string(a) ? archive_error_string(a) : "unknown error");
		if (imp->n_members == 0 && code != ENOMEM)
			pd_err_hint(err, "import a tar (plain, gzip, xz, zstd, bzip2 or lz4), a "
					 "docker-archive or an OCI layout");
		archive_read_free(a);
		EVP_MD_CTX_free(fr->md);
		return -code;
	}
	archive_read_free(a);
	if (!rootfs && (manifest || (layout && index))) {
		/* Read the rest (tar padding) into the digest. */
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;
		ssize_t n;
		while ((n = pread(fr->fd, fr->buf, sizeof fr->buf, fr->off)) > 0 ||
		       (n < 0 && errno == EINTR)) {
			if (n > 0 && EVP_DigestUpdate(fr->md, fr->buf, (size_t)n) != 1)
				break;
			fr->off += n > 0 ? n : 0;
		}
		int ok = n == 0 && EVP_DigestFinal_ex(fr->md, md, &len) == 1 && len == 32;
		EVP_MD_CTX_free(fr->md);
		if (!ok)
			return pd_err_errno(err, "image", "cannot read %s", imp->file);
		hex_encode(md, 32, imp->src_digest);
		qsort(imp->members, imp->n_members, sizeof *imp->members, member_cmp);
		for (size_t i = 1; i < imp->n_members; i++)
			if (!strcmp(imp->members[i - 1].name, imp->members[i].name))
				return pd_err_set(err, EINVAL, "image",
						  "'%s' appears twice in the archive",
						  imp->members[i].name);
		imp->fmt = layout && index ? FMT_OCI : FMT_DOCKER;
		return 0;
	}
	EVP_MD_CTX_free(fr->md);
	members_free(imp);
	imp->fmt = FMT_ROOTFS;
	return 0;
}

/* ---- the image store ---------------------------------------------------- */

/* Whether name is a valid image name ([a-z0-9][a-z0-9._-]{0,63}) that is
 * not reserved: "default", a 64-hex digest (images built from a spec), or
 * "*.lock" (lock files share the directory). */
static bool name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > IMPORT_NAME_MAX ||
	    !(islower((unsigned char)name[0]) || isdigit((unsigned char)name[0])))
		return false;
	for (const char *s = name; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		      strchr("._-", *s)))
			return false;
	if (!strcmp(name, "default") || is_hex(name, 64))
		return false;
	return !(len >= 5 && !strcmp(name + len - 5, ".lock"));
}

/* The default image name for file: its base name without the archive
 * extensions, lower-cased, other characters as '-'. */
static void name_from_file(const char *file, char out[IMPORT_NAME_MAX + 1])
{
	static const char *const exts[] = { ".tar.gz",  ".tar.xz", ".tar.zst", ".tar.bz2",
					    ".tar.lz4", ".tgz",    ".txz",     ".tzst",
					    ".tbz2",    ".tbz",    ".tar",     ".oci" };
	size_t flen = strlen(file);
	while (flen > 1 && file[flen - 1] == '/')
		flen--;
	const char *base = file;
	for (size_t i = 0; i < flen; i++)
		if (file[i] == '/')
			base = file + i + 1;
	size_t len = (size_t)(file + flen - base);
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		size_t el = strlen(exts[i]);
		if (len > el && strncasecmp(base + len - el, exts[i], el) == 0) {
			len -= el;
			break;
		}
	}
	size_t n = 0;
	for (size_t i = 0; i < len && n < IMPORT_NAME_MAX; i++) {
		char c = (char)tolower((unsigned char)base[i]);
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || strchr("._-", c)))
			c = '-';
		if (n == 0 && !(islower((unsigned char)c) || isdigit((unsigned char)c)))
			continue;
		out[n++] = c;
	}
	out[n] = '\0';
	if (!name_ok(out))
		snprintf(out, IMPORT_NAME_MAX + 1, "imported");
}

/* <state>/images, created 0700 if missing; refused unless it is a directory
 * of ours that nobody else can enter (imported images keep setuid files).
 * Returns an fd or < 0 with err filled. */
static int images_open(char **path, struct pd_err *err)
{
	const char *state = image_state_dir();
	if (asprintf(path, "%s/images", state) < 0) {
		*path = NULL;
		return pd_err_set(err, ENOMEM, "image", "importing");
	}
	_cleanup_free_ char *p = strdup(*path);
	if (!p)
		return pd_err_set(err, ENOMEM, "image", "importing");
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return pd_err_errno(err, "image", "cannot create %s", p);
		*s = c;
		if (!c)
			break;
	}
	int fd = open(*path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = pd_err_errno(err, "image", "cannot open %s", *path);
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		pd_err_set(err, EPERM, "image", "%s is open to other users (mode %04o, owner %u)",
			   *path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return pd_err_hint(err, "images hold setuid files: chown root %s && chmod 0700 %s",
				   *path, *path);
	}
	return fd;
}

/* Under the store's import lock: remove the temp dirs of imports that died
 * (no flock on them), then create ours, locked. Returns its fd or < 0 with
 * err filled. */
static int tmp_create(struct import *imp, int images_fd, const char *tmpname, struct pd_err *err)
{
	_cleanup_close_ int lock =
		openat(images_fd, ".import.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0)
		return pd_err_errno(err, "image", "cannot open the import lock");
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return pd_err_errno(err, "image", "cannot take the import lock");
	int dfd = fcntl(images_fd, F_DUPFD_CLOEXEC, 3);
	_cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return pd_err_errno(err, "image", "cannot read the image store");
	}
	struct dirent *e;
	struct stat st;
	if (fstat(images_fd, &st) < 0)
		return pd_err_errno(err, "image", "cannot stat the image store");
	while ((e = readdir(d))) {
		if (!has_prefix(e->d_name, ".import-"))
			continue;
		_cleanup_close_ int fd = openat(images_fd, e->d_name,
						O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue; /* in use */
		struct pd_err e2;
		if (tree_remove_at(images_fd, e->d_name, NULL, st.st_dev, 0, &e2) < 0) {
			char buf[1024];
			report(imp, "W: cannot remove what an interrupted import left: %s",
			       pd_err_format(&e2, buf, sizeof buf));
		}
	}
	if (mkdirat(images_fd, tmpname, 0700) < 0)
		return pd_err_errno(err, "image", "cannot create %s", tmpname);
	int fd = openat(images_fd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = pd_err_errno(err, "image", "cannot lock %s", tmpname);
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

/* Write name in the directory dfd, synced. Returns 0 or < 0 with err filled. */
static int write_small(int dfd, const char *name, const char *text, struct pd_err *err)
{
	_cleanup_close_ int fd =
		openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || image_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		return pd_err_errno(err, "image", "cannot write %s", name);
	return 0;
}

/* meta.json (the keys of a built image's where they mean the same: created,
 * size, entries) and ok in the temp dir. Returns 0 or < 0 with err filled. */
static int write_meta(struct import *imp, int tmp_fd, json_t *meta, const char *name,
		      struct pd_err *err)
{
	char *real = realpath(imp->file, NULL);
	json_t *skipped =
		json_pack("{s:I, s:I, s:I, s:I, s:I}", "devices", (json_int_t)imp->skipped_dev,
			  "fifos", (json_int_t)imp->skipped_fifo, "sockets",
			  (json_int_t)imp->skipped_sock, "aufs_metadata",
			  (json_int_t)imp->skipped_meta, "xattrs", (json_int_t)imp->dropped_xattrs);
	int bad = !skipped;
	bad |= json_object_set_new(meta, "name", json_string(name));
	bad |= json_object_set_new(meta, "source", json_string(real ? real : imp->file));
	bad |= json_object_set_new(meta, "format", json_string(format_names[imp->fmt]));
	bad |= json_object_set_new(meta, "digest", json_sprintf("sha256:%s", imp->src_digest));
	if (imp->manifest_digest[0])
		bad |= json_object_set_new(meta, "manifest",
					   json_sprintf("sha256:%s", imp->manifest_digest));
	bad |= json_object_set(meta, "layers", imp->layer_digests);
	bad |= json_object_set_new(meta, "entries", json_integer((json_int_t)imp->entries));
	bad |= json_object_set_new(meta, "size", json_integer((json_int_t)imp->bytes));
	bad |= json_object_set_new(meta, "skipped", skipped);
	bad |= json_object_set_new(meta, "created", json_integer((json_int_t)time(NULL)));
	free(real);
	_cleanup_free_ char *text = bad ? NULL : json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return pd_err_set(err, ENOMEM, "image", "writing meta.json");
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl)
		return pd_err_set(err, ENOMEM, "image", "writing meta.json");
	text = nl;
	memcpy(text + len, "\n", 2);
	int r = write_small(tmp_fd, "meta.json", text, err);
	if (r < 0)
		return r;
	char marker[256];
	snprintf(marker, sizeof marker, "paddock imported image: %s, sha256:%s\n",
		 format_names[imp->fmt], imp->src_digest);
	return write_small(tmp_fd, "ok", marker, err);
}

/* Open the source: a regular file (an archive) or a directory (a layout).
 * Returns 0 or < 0 with err filled. */
static int source_open(struct import *imp, struct pd_err *err)
{
	imp->src_fd = open(imp->file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (imp->src_fd < 0 || fstat(imp->src_fd, &st) < 0)
		return pd_err_errno(err, "image", "cannot open %s", imp->file);
	imp->src_size = st.st_size;
	if (S_ISREG(st.st_mode))
		return scan_archive(imp, err);
	if (!S_ISDIR(st.st_mode))
		return pd_err_set(err, EINVAL, "image", "%s is neither a file nor a directory",
				  imp->file);
	imp->src_dir = true;
	struct stat s;
	bool layout = fstatat(imp->src_fd, "oci-layout", &s, 0) == 0 &&
		      fstatat(imp->src_fd, "index.json", &s, 0) == 0;
	if (layout) {
		imp->fmt = FMT_OCI;
		return 0;
	}
	if (fstatat(imp->src_fd, "manifest.json", &s, 0) == 0) {
		imp->fmt = FMT_DOCKER;
		return 0;
	}
	pd_err_set(err, EINVAL, "image", "%s is a directory without oci-layout and index.json",
		   imp->file);
	return pd_err_hint(err, "a directory must be an OCI image layout; pack a root "
				"filesystem with tar first");
}

/* Steps 5-7 of image_import_with_limits, in the locked temp dir tmp_fd:
 * build rootfs, write meta.json and ok, sync. Returns 0 or < 0 with err
 * filled. */
static int import_build(struct import *imp, int tmp_fd, const char *name, struct pd_err *err)
{
	if (mkdirat(tmp_fd, "rootfs", 0700) < 0)
		return pd_err_errno(err, "image", "cannot create the rootfs directory");
	imp->root_fd = openat(tmp_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (imp->root_fd < 0 || fstat(imp->root_fd, &imp->root_st) < 0 ||
	    fchown(imp->root_fd, 0, 0) < 0)
		return pd_err_errno(err, "image", "cannot open the rootfs directory");
	json_t *meta = json_object();
	if (!(imp->layer_digests = json_array()) || !meta) {
		json_decref(meta);
		return pd_err_set(err, ENOMEM, "image", "importing");
	}
	int r;
	switch (imp->fmt) {
	case FMT_ROOTFS:
		r = import_rootfs(imp, err);
		break;
	case FMT_DOCKER:
		r = import_docker(imp, meta, err);
		break;
	case FMT_OCI:
		r = import_oci(imp, err);
		break;
	default:
		r = pd_err_set(err, EINVAL, "image", "unknown format");
	}
	if (r >= 0 && imp->entries == 0)
		r = pd_err_set(err, EINVAL, "image", "the archive is empty");
	if (r >= 0 && !imp->root_meta && fchmod(imp->root_fd, 0755) < 0)
		r = pd_err_errno(err, "image", "cannot set the mode of the root");
	if (r >= 0)
		r = write_meta(imp, tmp_fd, meta, name, err);
	json_decref(meta);
	if (r >= 0 && syncfs(imp->root_fd) < 0)
		r = pd_err_errno(err, "image", "cannot sync the image");
	return r;
}

/* Report what was skipped, and whether the image can run. */
static void import_summary(struct import *imp)
{
	if (imp->skipped_dev || imp->skipped_fifo || imp->skipped_sock)
		report(imp,
		       "I: skipped %lu device nodes, %lu fifos and %lu sockets "
		       "(the sandbox has its own /dev)",
		       imp->skipped_dev, imp->skipped_fifo, imp->skipped_sock);
	if (imp->dropped_xattrs)
		report(imp,
		       "I: dropped %lu extended attributes (only user.* and file "
		       "capabilities are kept)",
		       imp->dropped_xattrs);
	int fd = sys_openat2(imp->root_fd, "bin/sh", O_PATH | O_CLOEXEC, RES_ROOT);
	if (fd < 0)
		report(imp, "W: the image has no /bin/sh, which `paddock run` needs");
	else
		close(fd);
}

int image_import_with_limits(const char *file, const char *name,
			     const struct image_import_limits *limits, image_progress_fn progress,
			     void *ctx, char **out, struct pd_err *err)
{
	char q[IMPORT_QUOTE_MAX + 8], derived[IMPORT_NAME_MAX + 1], tmpname[64];
	struct import imp = { .lim = limits ? limits : &image_import_default_limits,
			      .progress = progress,
			      .ctx = ctx,
			      .file = file,
			      .src_fd = -1,
			      .root_fd = -1 };
	struct image_import_limits lim = *imp.lim;
	if (lim.max_path > PATH_MAX - 1)
		lim.max_path = PATH_MAX - 1;
	imp.lim = &lim;

	/* 1. The name, and the rights an import needs. */
	if (!file || !file[0])
		return pd_err_set(err, EINVAL, "image", "no file to import");
	if (!name) {
		name_from_file(file, derived);
		name = derived;
	} else if (!name_ok(name)) {
		pd_err_set(err, EINVAL, "image", "invalid image name '%s'", quote(name, q));
		return pd_err_hint(err, "use [a-z0-9][a-z0-9._-]{0,63}, not \"default\", a 64-hex "
					"digest or *.lock");
	}
	if (geteuid() != 0) {
		pd_err_set(err, EPERM, "image", "importing an image needs root");
		return pd_err_hint(err, "image files keep their owners: run paddock as root");
	}

	/* 2. The store, and the name free in it. */
	_cleanup_free_ char *images = NULL;
	_cleanup_close_ int images_fd = images_open(&images, err);
	if (images_fd < 0)
		return images_fd;
	struct stat st;
	if (fstatat(images_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		pd_err_set(err, EEXIST, "image", "an image named '%s' exists", name);
		return pd_err_hint(
			err, "remove it with `paddock image rm %s`, or pass another --name", name);
	}

	/* 3. The source and its format. */
	_cleanup_close_ int tmp_fd = -1;
	char *path = NULL;
	int r = source_open(&imp, err);
	if (r < 0)
		goto out;
	report(&imp, "I: importing %s (%s) as '%s'", file, format_names[imp.fmt], name);

	/* 4. Our temp dir, locked, with what dead imports left swept. */
	snprintf(tmpname, sizeof tmpname, ".import-%ld", (long)getpid());
	tmp_fd = r = tmp_create(&imp, images_fd, tmpname, err);
	if (r < 0)
		goto out;

	/* 5-7. The tree, meta.json, ok. */
	r = import_build(&imp, tmp_fd, name, err);

	/* 8. Into place, never over an image that appeared meanwhile. */
	if (r >= 0 && renameat2(images_fd, tmpname, images_fd, name, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) {
			pd_err_set(err, EEXIST, "image", "an image named '%s' exists", name);
			r = pd_err_hint(err,
					"remove it with `paddock image rm %s`, or pass another "
					"--name",
					name);
		} else {
			r = pd_err_errno(err, "image", "cannot rename %s to %s", tmpname, name);
		}
	}
	if (r >= 0 && fsync(images_fd) < 0)
		r = pd_err_errno(err, "image", "cannot sync %s", images);
	if (r < 0) {
		struct pd_err e2;
		struct stat ts;
		if (fstat(images_fd, &ts) == 0 &&
		    tree_remove_at(images_fd, tmpname, NULL, ts.st_dev, 0, &e2) < 0)
			pd_err_hint(err, "and %s/%s could not be removed: remove it by hand",
				    images, tmpname);
		goto out;
	}
	import_summary(&imp);
	if (asprintf(&path, "%s/%s/rootfs", images, name) < 0) {
		path = NULL;
		r = pd_err_set(err, ENOMEM, "image", "importing");
	} else {
		report(&imp, "I: imported %s as %s/%s", file, images, name);
		*out = path;
	}
out:
	if (r < 0)
		pd_err_prefix(err, "importing %s", file);
	if (imp.src_fd >= 0)
		close(imp.src_fd);
	if (imp.root_fd >= 0)
		close(imp.root_fd);
	members_free(&imp);
	for (size_t i = 0; i < imp.n_times; i++)
		free(imp.times[i].path);
	free(imp.times);
	free(imp.layer_inos.slot);
	json_decref(imp.layer_digests);
	return r < 0 ? r : 0;
}

int image_import(const char *file, const char *name, image_progress_fn progress, void *ctx,
		 char **out, struct pd_err *err)
{
	return image_import_with_limits(file, name, NULL, progress, ctx, out, err);
}
