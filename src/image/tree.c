/* tree.c: walking an image tree from the host, by directory fd.
 *
 * Used after a build's sandboxed steps, on a tree their code wrote: cleaning
 * what makes builds differ, clamping mtimes to SOURCE_DATE_EPOCH, and the
 * manifest whose SHA-256 is the image's tree digest (`image build --verify`
 * compares two of them). Every entry is opened relative to its directory's fd
 * with O_NOFOLLOW, so a symlink in the tree is only ever an entry, never a way
 * out; an entry on another device (a mount) stops the walk with an error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/internal.h"

#define TREE_READ_BUF (1 << 20) /* bytes read at a time when hashing a file */

int tree_open_dir(int rootfd, const char *rel)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, rel && *rel ? rel : ".", &how, sizeof how);
	return fd < 0 ? -errno : fd;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory dfd (without . and ..), sorted bytewise: a
 * NULL-terminated malloc'd vector in *out and the count in *n. Reading them
 * all first lets the caller change the directory while going through them.
 * Returns 0 or -errno. */
static int dir_names(int dfd, char ***out, size_t *n)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	_cleanup_strv_ char **v = calloc(1, sizeof *v);
	size_t count = 0, cap = 1;
	if (!v)
		return -ENOMEM;
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (count + 1 >= cap) {
			char **nv = realloc(v, cap * 2 * sizeof *nv);
			if (!nv)
				return -ENOMEM;
			v = nv;
			cap *= 2;
		}
		if (!(v[count] = strdup(e->d_name)))
			return -ENOMEM;
		v[++count] = NULL;
	}
	if (errno)
		return -errno;
	qsort(v, count, sizeof *v, cmp_names);
	*n = count;
	*out = steal_ptr(&v);
	return 0;
}

/* Open the subdirectory name of dfd (st: its lstat) for a walk at depth,
 * refusing another device and too deep a tree. Returns an fd or < 0 with err
 * filled. */
static int walk_enter(int dfd, const char *name, const struct stat *st, dev_t dev, int depth,
		      struct pd_err *err)
{
	if (st->st_dev != dev)
		return pd_err_set(err, EXDEV, "image",
				  "unexpected mount point in the image tree: %s", name);
	if (depth >= TREE_MAX_DEPTH)
		return pd_err_set(err, ELOOP, "image",
				  "the image tree is nested more than %d directories deep (at %s)",
				  TREE_MAX_DEPTH, name);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? pd_err_errno(err, "image", "cannot open %s in the image tree", name) : fd;
}

/* One non-directory of a directory being cleared. Returns 0 or < 0 with err
 * filled. */
static int clear_entry(int dfd, const char *name, const struct stat *st,
		       enum tree_clear_mode mode, const char *what, struct pd_err *err)
{
	if (mode == TREE_CLEAR_EMPTY) {
		if (!S_ISREG(st->st_mode) || st->st_size == 0)
			return 0;
		if (st->st_nlink == 1) {
			_cleanup_close_ int fd =
				openat(dfd, name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK |
							  O_NOCTTY | O_CLOEXEC);
			if (fd < 0)
				return pd_err_errno(err, "image", "cannot empty %s/%s", what, name);
			return 0;
		}
	}
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return pd_err_errno(err, "image", "cannot remove %s/%s", what, name);
	return 0;
}

static int clear_at(int dfd, dev_t dev, enum tree_clear_mode mode, int depth, const char *what,
		    struct pd_err *err)
{
	_cleanup_strv_ char **names = NULL;
	size_t n = 0;
	int r = dir_names(dfd, &names, &n);
	if (r < 0) {
		errno = -r;
		return pd_err_errno(err, "image", "cannot read %s", what);
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return pd_err_errno(err, "image", "cannot stat %s/%s", what, names[i]);
		}
		if (!S_ISDIR(st.st_mode)) {
			if ((r = clear_entry(dfd, names[i], &st, mode, what, err)) < 0)
				return r;
			continue;
		}
		_cleanup_close_ int sub = walk_enter(dfd, names[i], &st, dev, depth, err);
		if (sub < 0)
			return sub;
		if ((r = clear_at(sub, dev, mode, depth + 1, what, err)) < 0)
			return r;
		if (mode == TREE_CLEAR_ALL && unlinkat(dfd, names[i], AT_REMOVEDIR) < 0 &&
		    errno != ENOENT)
			return pd_err_errno(err, "image", "cannot remove %s/%s", what, names[i]);
	}
	return 0;
}

int tree_clear(int dfd, enum tree_clear_mode mode, const char *what, struct pd_err *err)
{
	struct stat st;
	if (fstat(dfd, &st) < 0)
		return pd_err_errno(err, "image", "cannot stat %s", what);
	return clear_at(dfd, st.st_dev, mode, 0, what, err);
}

/* The times that clamp st's mtime to epoch (atime the same). */
static void clamp_times(const struct stat *st, long long epoch, struct timespec ts[2])
{
	ts[1] = st->st_mtim;
	if ((long long)st->st_mtim.tv_sec > epoch ||
	    ((long long)st->st_mtim.tv_sec == epoch && st->st_mtim.tv_nsec > 0))
		ts[1] = (struct timespec){ .tv_sec = (time_t)epoch, .tv_nsec = 0 };
	ts[0] = ts[1];
}

static int clamp_at(int dfd, dev_t dev, long long epoch, int depth, struct pd_err *err)
{
	_cleanup_strv_ char **names = NULL;
	size_t n = 0;
	int r = dir_names(dfd, &names, &n);
	if (r < 0) {
		errno = -r;
		return pd_err_errno(err, "image", "cannot read a directory of the image tree");
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(err, "image", "cannot stat %s in the image tree",
					    names[i]);
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = walk_enter(dfd, names[i], &st, dev, depth, err);
			if (sub < 0)
				return sub;
			if ((r = clamp_at(sub, dev, epoch, depth + 1, err)) < 0)
				return r;
		}
		struct timespec ts[2];
		clamp_times(&st, epoch, ts);
		if (utimensat(dfd, names[i], ts, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(err, "image", "cannot set the times of %s", names[i]);
	}
	return 0;
}

int tree_clamp_mtimes(int dfd, long long epoch, struct pd_err *err)
{
	struct stat st;
	if (fstat(dfd, &st) < 0)
		return pd_err_errno(err, "image", "cannot stat the image tree");
	int r = clamp_at(dfd, st.st_dev, epoch, 0, err);
	if (r < 0)
		return r;
	/* The root last: nothing below changes its times any more. */
	if (fstat(dfd, &st) < 0)
		return pd_err_errno(err, "image", "cannot stat the image tree");
	struct timespec ts[2];
	clamp_times(&st, epoch, ts);
	if (futimens(dfd, ts) < 0)
		return pd_err_errno(err, "image", "cannot set the times of the image tree");
	return 0;
}

/* ---- manifest ----------------------------------------------------------- */

struct manifest {
	FILE *out;
	EVP_MD_CTX *md;
	unsigned char *buf; /* TREE_READ_BUF bytes */
	dev_t dev;
	size_t entries;
	unsigned long long bytes;
	char path[8192]; /* the entry's path inside the image, "/..." */
};

/* Write s (n bytes) escaped: bytes outside 0x21..0x7e and the backslash as \xHH. */
static void put_escaped(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			putc(c, f);
	}
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256 of the regular file name in dfd (st: its lstat) as hex. Returns 0
 * or < 0 with err filled. */
static int hash_file(struct manifest *m, int dfd, const char *name, const struct stat *st,
		     char hex[65], struct pd_err *err)
{
	_cleanup_close_ int fd =
		openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct stat now;
	if (fd < 0 || fstat(fd, &now) < 0)
		return pd_err_errno(err, "image", "cannot read %s", m->path);
	if (!S_ISREG(now.st_mode) || now.st_ino != st->st_ino || now.st_dev != st->st_dev)
		return pd_err_set(err, EAGAIN, "image", "%s changed while it was read", m->path);
	if (!EVP_DigestInit_ex(m->md, EVP_sha256(), NULL))
		return pd_err_set(err, EIO, "image", "SHA-256 is not available");
	for (;;) {
		ssize_t n = read(fd, m->buf, TREE_READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pd_err_errno(err, "image", "cannot read %s", m->path);
		if (n == 0)
			break;
		if (!EVP_DigestUpdate(m->md, m->buf, (size_t)n))
			return pd_err_set(err, EIO, "image", "hashing %s", m->path);
	}
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (!EVP_DigestFinal_ex(m->md, d, &dlen) || dlen != 32)
		return pd_err_set(err, EIO, "image", "hashing %s", m->path);
	hex_of(d, dlen, hex);
	return 0;
}

/* The manifest line of one entry (m->path names it). Returns 0 or < 0 with
 * err filled. */
static int manifest_line(struct manifest *m, int dfd, const char *name, const struct stat *st,
			 struct pd_err *err)
{
	char type = '?';
	unsigned long long size = 0;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG: type = 'f'; size = (unsigned long long)st->st_size; break;
	case S_IFDIR: type = 'd'; break;
	case S_IFLNK: type = 'l'; size = (unsigned long long)st->st_size; break;
	case S_IFCHR: type = 'c'; break;
	case S_IFBLK: type = 'b'; break;
	case S_IFIFO: type = 'p'; break;
	case S_IFSOCK: type = 's'; break;
	default: break;
	}
	put_escaped(m->out, m->path, strlen(m->path));
	fprintf(m->out, " %c %04o %u %u %llu ", type, (unsigned)(st->st_mode & 07777),
		(unsigned)st->st_uid, (unsigned)st->st_gid, size);
	m->entries++;
	if (type == 'f' || type == 'l')
		m->bytes += size;
	if (type == 'f') {
		char hex[65];
		int r = hash_file(m, dfd, name, st, hex, err);
		if (r < 0)
			return r;
		fputs(hex, m->out);
	} else if (type == 'l') {
		char target[4096];
		ssize_t n = readlinkat(dfd, name, target, sizeof target);
		if (n < 0 || n == (ssize_t)sizeof target)
			return pd_err_errno(err, "image", "cannot read the symlink %s", m->path);
		put_escaped(m->out, target, (size_t)n);
	} else if (type == 'c' || type == 'b') {
		fprintf(m->out, "%u:%u", major(st->st_rdev), minor(st->st_rdev));
	} else {
		putc('-', m->out);
	}
	putc('\n', m->out);
	return 0;
}

static int manifest_at(struct manifest *m, int dfd, int depth, struct pd_err *err)
{
	_cleanup_strv_ char **names = NULL;
	size_t n = 0;
	int r = dir_names(dfd, &names, &n);
	if (r < 0) {
		errno = -r;
		return pd_err_errno(err, "image", "cannot read %s", m->path);
	}
	size_t base = strlen(m->path);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		if (base + 1 + len >= sizeof m->path)
			return pd_err_set(err, ENAMETOOLONG, "image",
					  "a path in the image tree is too long (under %s)",
					  m->path);
		snprintf(m->path + base, sizeof m->path - base, "%s%s", base == 1 ? "" : "/",
			 names[i]);
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return pd_err_errno(err, "image", "cannot stat %s", m->path);
		if ((r = manifest_line(m, dfd, names[i], &st, err)) < 0)
			return r;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
				walk_enter(dfd, names[i], &st, m->dev, depth, err);
			if (sub < 0)
				return sub;
			if ((r = manifest_at(m, sub, depth + 1, err)) < 0)
				return r;
		}
		m->path[base] = '\0';
	}
	return 0;
}

int tree_manifest(int rootfd, char **out, size_t *len, size_t *entries, unsigned long long *bytes,
		  struct pd_err *err)
{
	struct manifest m = { .md = EVP_MD_CTX_new(), .buf = malloc(TREE_READ_BUF) };
	char *text = NULL;
	size_t size = 0;
	m.out = open_memstream(&text, &size);
	int r = 0;
	struct stat st;
	if (!m.md || !m.buf || !m.out) {
		r = pd_err_set(err, ENOMEM, "image", "computing the tree digest");
		goto out;
	}
	if (fstat(rootfd, &st) < 0) {
		r = pd_err_errno(err, "image", "cannot stat the image tree");
		goto out;
	}
	m.dev = st.st_dev;
	strcpy(m.path, "/");
	if ((r = manifest_line(&m, rootfd, ".", &st, err)) < 0 ||
	    (r = manifest_at(&m, rootfd, 0, err)) < 0)
		goto out;
	if (ferror(m.out))
		r = pd_err_set(err, ENOMEM, "image", "computing the tree digest");
out:
	if (m.out && fclose(m.out) != 0 && r == 0)
		r = pd_err_set(err, ENOMEM, "image", "computing the tree digest");
	EVP_MD_CTX_free(m.md);
	free(m.buf);
	if (r < 0) {
		free(text);
		return r;
	}
	*out = text;
	*len = size;
	*entries = m.entries;
	*bytes = m.bytes;
	return 0;
}

int tree_sha256_hex(const void *buf, size_t len, char out[65], struct pd_err *err)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (!EVP_Digest(buf, len, d, &dlen, EVP_sha256(), NULL) || dlen != 32)
		return pd_err_set(err, EIO, "image", "SHA-256 is not available");
	hex_of(d, dlen, out);
	return 0;
}

/* ---- comparing manifests ------------------------------------------------ */

/* Compare two escaped paths in walk order: component by component, so that
 * "/a/b" sorts before "/a.c" as the walk visits them. ('/' sorts before
 * every byte an escaped path can hold, which are all > 0x20.) */
static int path_cmp(const char *a, size_t na, const char *b, size_t nb)
{
	for (size_t i = 0;; i++) {
		int ca = i < na ? (a[i] == '/' ? 1 : (unsigned char)a[i]) : 0;
		int cb = i < nb ? (b[i] == '/' ? 1 : (unsigned char)b[i]) : 0;
		if (ca != cb)
			return ca - cb;
		if (ca == 0)
			return 0;
	}
}

/* One manifest line being compared: the path and up to 6 fields. */
struct mline {
	const char *path;
	size_t path_len;
	const char *f[6];
	size_t flen[6];
	const char *next; /* the following line, or NULL at the end */
};

/* Parse the line at s (NULL or at the end: false). */
static bool mline_parse(const char *s, struct mline *l)
{
	if (!s || !*s)
		return false;
	const char *end = strchrnul(s, '\n');
	l->path = s;
	l->path_len = strcspn(s, " \n");
	const char *p = s + l->path_len;
	for (int i = 0; i < 6; i++) {
		if (p < end && *p == ' ')
			p++;
		l->f[i] = p;
		l->flen[i] = (size_t)(strcspn(p, " \n"));
		p += l->flen[i];
	}
	l->next = *end ? end + 1 : NULL;
	return true;
}

static bool field_eq(const struct mline *a, const struct mline *b, int i)
{
	return a->flen[i] == b->flen[i] && !memcmp(a->f[i], b->f[i], a->flen[i]);
}

/* What differs between two entries of the same path, into f. */
static void describe_change(FILE *f, const struct mline *a, const struct mline *b)
{
	static const char *const names[] = { "type", "mode", "uid", "gid", "size", "content" };
	const char *sep = ": ";
	for (int i = 0; i < 6; i++) {
		if (field_eq(a, b, i))
			continue;
		const char *name = i == 5 && a->f[0][0] == 'l' ? "target" : names[i];
		if (i == 5 && a->f[0][0] == 'f')
			fprintf(f, "%scontent", sep);
		else
			fprintf(f, "%s%s %.*s -> %.*s", sep, name, (int)a->flen[i], a->f[i],
				(int)b->flen[i], b->f[i]);
		sep = ", ";
		if (i == 0)
			break; /* another type: the rest says nothing more */
	}
}

size_t tree_manifest_diff(const char *a, const char *b, size_t max_lines, char **report)
{
	char *text = NULL;
	size_t size = 0, count = 0;
	FILE *f = report ? open_memstream(&text, &size) : NULL;
	struct mline la, lb;
	bool ha = mline_parse(a, &la), hb = mline_parse(b, &lb);
	while (ha || hb) {
		int c = !ha ? 1 : !hb ? -1 : path_cmp(la.path, la.path_len, lb.path, lb.path_len);
		bool same = c == 0;
		for (int i = 0; same && i < 6; i++)
			same = field_eq(&la, &lb, i);
		if (!same) {
			count++;
			if (f && count <= max_lines) {
				const struct mline *l = c > 0 ? &lb : &la;
				char mark = c < 0 ? '-' : c > 0 ? '+' : '~';
				fprintf(f, "%c %.*s", mark, (int)l->path_len, l->path);
				if (c == 0)
					describe_change(f, &la, &lb);
				putc('\n', f);
			}
		}
		if (c <= 0)
			ha = mline_parse(la.next, &la);
		if (c >= 0)
			hb = mline_parse(lb.next, &lb);
	}
	if (f && count > max_lines)
		fprintf(f, "... %zu more\n", count - max_lines);
	if (f && fclose(f) == 0 && count > 0) {
		*report = text;
		return count;
	}
	free(text);
	if (report)
		*report = NULL;
	return count;
}
