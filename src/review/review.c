/* review.c: the review gate, host side (see review.h).
 *
 * The bundle is untrusted input; the owner's repository is trusted. So:
 *   - the bundle's header is parsed here, by hand, before any git sees it.
 *     Git has no library to call, and its only header checks (`git bundle
 *     verify`, `git bundle list-heads`) need a repository: they would run in
 *     the owner's, on a file nothing has looked at yet. The format is small
 *     (a signature line, v3 capabilities, "-<oid> <comment>" prerequisites,
 *     "<oid> <refname>" refs, an empty line, a pack), so a strict parser that
 *     accepts a subset of what git accepts is short, and nothing it accepts
 *     can mean something else to git (no NUL, no CR, one space, lowercase
 *     hex, check-ref-format names);
 *   - the fetch reads a private copy of the bundle, so the bytes checked are
 *     the bytes fetched;
 *   - `git fetch` from a bundle does not fsck the objects in git 2.39 (the
 *     fsck options are ignored for bundles), so the pack is first indexed
 *     with `index-pack --strict` into a private bare repository that borrows
 *     the owner's objects (objects/info/alternates), and discarded: a bad
 *     object never reaches the owner's repository. A diff needs nothing
 *     more: it runs in that private repository, and the owner's is only read;
 *   - git runs through common/gitrun (fixed env, no hooks, no fsmonitor),
 *     in the owner's repository or the private one, never in the sandbox's. */
#include "review/review.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/cleanup.h"
#include "common/gitrun.h"

#define RV_LAYER "review"
#define RV_TMP_TEMPLATE "/tmp/paddock-review-XXXXXX"
#define RV_BUF ((size_t)128 << 10) /* copy and hash chunk */
#define RV_REFNAME_MAX 1024        /* a ref name in a bundle */
#define RV_QUOTE_MAX 120           /* characters of untrusted text in a message */
#define RV_EXPORT_HINT                                                                 \
	"the sandbox exports with: git bundle create <file> " REVIEW_EXPORT_REF " ^<base>"

static const char *const empty_tree[] = {
	[REVIEW_HASH_SHA1] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
	[REVIEW_HASH_SHA256] = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
};

static size_t hash_hexlen(enum review_hash h)
{
	return h == REVIEW_HASH_SHA256 ? 64 : 40;
}

static const char *hash_name(enum review_hash h)
{
	return h == REVIEW_HASH_SHA256 ? "sha256" : "sha1";
}

/* Fail with a message that carries no errno (the reason is in the text),
 * returning `ret`. */
static int rv_fail(struct pd_err *err, int ret, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int rv_fail(struct pd_err *err, int ret, const char *hint, const char *fmt, ...)
{
	char msg[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pd_err_set(err, 0, RV_LAYER, "%s", msg);
	if (hint)
		pd_err_hint(err, "%s", hint);
	return ret;
}

/* Untrusted bytes made fit for a message: printable ASCII kept, anything
 * else as \xNN, at most RV_QUOTE_MAX characters ("..." after). Returns buf. */
static const char *quote(const char *s, size_t n, char *buf, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o >= RV_QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

static void limits_resolve(const struct review_limits *in, struct review_limits *out)
{
	*out = in ? *in : (struct review_limits){ 0 };
	if (!out->max_bytes)
		out->max_bytes = REVIEW_DEFAULT_MAX_BYTES;
	if (!out->max_header)
		out->max_header = REVIEW_DEFAULT_MAX_HEADER;
	if (!out->max_lines)
		out->max_lines = REVIEW_DEFAULT_MAX_LINES;
}

bool review_name_valid(const char *name)
{
	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-");
	return name[n] == '\0' && n <= REVIEW_NAME_MAX;
}

/* ---- reading the file ---------------------------------------------------- */

/* Open a bundle: no symlink as the last component, no fifo or device (not
 * even opened blocking), a regular file. Returns the fd (>= 0) with *st
 * filled, or a negative errno. */
static int bundle_open(const char *path, struct stat *st, struct pd_err *err)
{
	_cleanup_close_ int fd =
		open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return rv_fail(err, -ELOOP, NULL, "bundle '%s' is a symlink; refused", path);
	if (fd < 0)
		return pd_err_errno(err, RV_LAYER, "cannot open bundle '%s'", path);
	if (fstat(fd, st) < 0)
		return pd_err_errno(err, RV_LAYER, "cannot stat bundle '%s'", path);
	if (!S_ISREG(st->st_mode))
		return rv_fail(err, -EINVAL, NULL, "bundle '%s' is not a regular file; refused",
			       path);
	return steal_fd(&fd);
}

static int too_big(struct pd_err *err, const char *path, uint64_t max)
{
	return rv_fail(err, -EFBIG, "raise the bundle size limit if this much work is expected",
		       "bundle '%s' is larger than the limit of %llu bytes", path,
		       (unsigned long long)max);
}

/* pread exactly len bytes at off, fewer only at end of file. Returns the
 * count or -1 with errno set. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t k = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* ---- the header ------------------------------------------------------------ */

/* git check-ref-format rules, one level allowed: no empty component, none
 * starting with '.' or ending with ".lock", no "..", "@{", control
 * characters, space, ~ ^ : ? * [ \, no trailing '/' or '.', not "@". */
static bool refname_ok(const char *s, size_t n)
{
	if (n == 0 || n > RV_REFNAME_MAX || (n == 1 && s[0] == '@') || s[n - 1] == '.')
		return false;
	size_t comp = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '/') {
			size_t clen = i - comp;
			if (clen == 0 || s[comp] == '.' ||
			    (clen >= 5 && memcmp(s + i - 5, ".lock", 5) == 0))
				return false;
			comp = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || strchr(" ~^:?*[\\", c))
			return false;
		if ((c == '.' && i + 1 < n && s[i + 1] == '.') ||
		    (c == '@' && i + 1 < n && s[i + 1] == '{'))
			return false;
	}
	return true;
}

/* Exactly `hexlen` lowercase hex digits at s (of n bytes), not all zero. */
static bool oid_ok(const char *s, size_t n, size_t hexlen)
{
	if (n < hexlen)
		return false;
	bool nonzero = false;
	for (size_t i = 0; i < hexlen; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		nonzero |= c != '0';
	}
	return nonzero;
}

/* Header parsing state. */
struct hdr {
	const char *buf; /* the first bytes of the bundle */
	size_t len;
	size_t pos;
	size_t lineno;
	bool whole; /* buf holds the whole file */
	size_t max_header;
	struct pd_err *err;
};

/* The next line (without its '\n') into *line, *n. Returns 0, or a negative
 * errno when the buffer ends first (truncated, or the header is too long). */
static int hdr_line(struct hdr *h, const char **line, size_t *n)
{
	const char *s = h->buf + h->pos;
	const char *nl = memchr(s, '\n', h->len - h->pos);
	if (!nl) {
		if (h->whole)
			return rv_fail(h->err, -EINVAL, RV_EXPORT_HINT,
				       "truncated bundle: the header does not end (line %zu)",
				       h->lineno + 1);
		return rv_fail(h->err, -E2BIG, NULL,
			       "bundle header is longer than the limit of %zu bytes",
			       h->max_header);
	}
	*line = s;
	*n = (size_t)(nl - s);
	h->pos += *n + 1;
	h->lineno++;
	if (memchr(s, '\0', *n))
		return rv_fail(h->err, -EINVAL, NULL, "bundle header line %zu has a NUL byte",
			       h->lineno);
	return 0;
}

/* A v3 capability line (after the '@'). Only object-format is accepted: a
 * filter would make a partial bundle, anything else is unknown. */
static int hdr_capability(struct hdr *h, const char *s, size_t n, enum review_hash *hash,
			  bool *seen)
{
	char q[RV_QUOTE_MAX * 4 + 8];
	static const char fmt[] = "object-format=";
	if (n > sizeof fmt - 1 && memcmp(s, fmt, sizeof fmt - 1) == 0 && !*seen) {
		const char *v = s + sizeof fmt - 1;
		size_t vn = n - (sizeof fmt - 1);
		*seen = true;
		if (vn == 4 && memcmp(v, "sha1", 4) == 0) {
			*hash = REVIEW_HASH_SHA1;
			return 0;
		}
		if (vn == 6 && memcmp(v, "sha256", 6) == 0) {
			*hash = REVIEW_HASH_SHA256;
			return 0;
		}
		return rv_fail(h->err, -EINVAL, NULL, "bundle uses an unknown object format '%s'",
			       quote(v, vn, q, sizeof q));
	}
	return rv_fail(h->err, -EINVAL, NULL, "bundle has an unsupported capability '@%s'",
		       quote(s, n, q, sizeof q));
}

/* Parse and judge the header in h (see review_bundle_check). On success
 * info's header fields and pack_offset are filled. */
static int hdr_parse(struct hdr *h, const struct review_limits *lim,
		     struct review_bundle_info *info)
{
	char q[RV_QUOTE_MAX * 4 + 8];
	const char *line = NULL;
	size_t n = 0;
	int r;

	static const char v2[] = "# v2 git bundle", v3[] = "# v3 git bundle";
	const char *nl = memchr(h->buf, '\n', h->len < 64 ? h->len : 64);
	size_t first = nl ? (size_t)(nl - h->buf) : 0;
	if (first == sizeof v2 - 1 && memcmp(h->buf, v2, first) == 0)
		info->version = 2;
	else if (first == sizeof v3 - 1 && memcmp(h->buf, v3, first) == 0)
		info->version = 3;
	else
		return rv_fail(h->err, -EINVAL, RV_EXPORT_HINT,
			       "not a git bundle: the file does not start with "
			       "\"# v2 git bundle\" or \"# v3 git bundle\"");
	h->pos = first + 1;
	h->lineno = 1;

	info->hash = REVIEW_HASH_SHA1;
	bool caps_done = info->version == 2, seen_format = false;
	size_t lines = 0, nrefs = 0, hexlen = 0;
	const char *bad_ref = NULL;
	size_t bad_len = 0;
	for (;;) {
		if ((r = hdr_line(h, &line, &n)) < 0)
			return r;
		if (n == 0)
			break;
		if (line[0] == '@' && !caps_done) {
			r = hdr_capability(h, line + 1, n - 1, &info->hash, &seen_format);
			if (r < 0)
				return r;
			continue;
		}
		if (!caps_done || !hexlen) {
			caps_done = true;
			hexlen = hash_hexlen(info->hash);
			if (info->hash != lim->hash)
				return rv_fail(h->err, -EINVAL, NULL,
					       "bundle uses %s object names, the repository %s",
					       hash_name(info->hash), hash_name(lim->hash));
		}
		if (++lines > lim->max_lines)
			return rv_fail(h->err, -E2BIG, RV_EXPORT_HINT,
				       "bundle header has more than %zu prerequisite and ref lines",
				       lim->max_lines);
		if (line[0] == '-') {
			/* "-<oid>" or "-<oid> <comment>" (the commit's subject). */
			if (!oid_ok(line + 1, n - 1, hexlen) ||
			    (n - 1 > hexlen && line[1 + hexlen] != ' '))
				return rv_fail(h->err, -EINVAL, NULL,
					       "bundle header line %zu: malformed prerequisite",
					       h->lineno);
			if (info->n_prereqs >= REVIEW_MAX_PREREQS)
				return rv_fail(h->err, -E2BIG, NULL,
					       "bundle has more than %d prerequisites",
					       REVIEW_MAX_PREREQS);
			memcpy(info->prereqs[info->n_prereqs], line + 1, hexlen);
			info->prereqs[info->n_prereqs++][hexlen] = '\0';
			continue;
		}
		/* "<oid> <refname>" */
		if (!oid_ok(line, n, hexlen) || n < hexlen + 2 || line[hexlen] != ' ')
			return rv_fail(h->err, -EINVAL, NULL,
				       "bundle header line %zu: malformed ref line", h->lineno);
		const char *ref = line + hexlen + 1;
		size_t rn = n - hexlen - 1;
		if (!refname_ok(ref, rn))
			return rv_fail(h->err, -EINVAL, NULL,
				       "bundle carries an invalid ref name '%s'",
				       quote(ref, rn, q, sizeof q));
		nrefs++;
		if (rn == sizeof REVIEW_EXPORT_REF - 1 && memcmp(ref, REVIEW_EXPORT_REF, rn) == 0) {
			memcpy(info->tip, line, hexlen);
			info->tip[hexlen] = '\0';
		} else if (!bad_ref) {
			bad_ref = ref;
			bad_len = rn;
		}
	}
	if (bad_ref)
		return rv_fail(h->err, -EPERM, RV_EXPORT_HINT,
			       "bundle carries the ref '%s': only " REVIEW_EXPORT_REF
			       " may leave the sandbox",
			       quote(bad_ref, bad_len, q, sizeof q));
	if (nrefs == 0)
		return rv_fail(h->err, -EINVAL, RV_EXPORT_HINT, "bundle carries no ref");
	if (nrefs > 1)
		return rv_fail(h->err, -EPERM, RV_EXPORT_HINT,
			       "bundle carries " REVIEW_EXPORT_REF " %zu times; exactly once is "
			       "allowed",
			       nrefs);
	info->pack_offset = h->pos;
	return 0;
}

/* ---- the pack -------------------------------------------------------------- */

/* The pack after the header: "PACK", version 2 or 3, an object count, and a
 * trailing checksum (sha1 or sha256, as the object format) of everything
 * before it. */
static int pack_check(int fd, uint64_t size, struct review_bundle_info *info,
		      struct pd_err *err)
{
	size_t hlen = info->hash == REVIEW_HASH_SHA256 ? 32 : 20;
	unsigned char head[12], want[32], got[EVP_MAX_MD_SIZE];
	uint64_t off = info->pack_offset;
	if (size < off + sizeof head + hlen)
		return rv_fail(err, -EINVAL, RV_EXPORT_HINT, "truncated bundle: no complete pack");
	if (pread_full(fd, head, sizeof head, off) != (ssize_t)sizeof head)
		return pd_err_errno(err, RV_LAYER, "cannot read the bundle's pack");
	uint32_t ver = (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 |
		       (uint32_t)head[6] << 8 | head[7];
	if (memcmp(head, "PACK", 4) != 0 || (ver != 2 && ver != 3))
		return rv_fail(err, -EINVAL, NULL,
			       "bundle has no valid pack after its header (\"PACK\", version 2 "
			       "or 3)");
	info->pack_objects = (uint32_t)head[8] << 24 | (uint32_t)head[9] << 16 |
			     (uint32_t)head[10] << 8 | head[11];

	_cleanup_free_ unsigned char *buf = malloc(RV_BUF);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = 0;
	if (!buf || !md) {
		r = pd_err_set(err, ENOMEM, RV_LAYER, "pack checksum");
		goto out;
	}
	if (!EVP_DigestInit_ex(md, hlen == 32 ? EVP_sha256() : EVP_sha1(), NULL)) {
		r = pd_err_set(err, EIO, RV_LAYER, "pack checksum: digest init failed");
		goto out;
	}
	uint64_t end = size - hlen;
	for (uint64_t at = off; at < end;) {
		size_t want_n = end - at < RV_BUF ? (size_t)(end - at) : RV_BUF;
		ssize_t k = pread_full(fd, buf, want_n, at);
		if (k < 0) {
			r = pd_err_errno(err, RV_LAYER, "cannot read the bundle's pack");
			goto out;
		}
		if ((size_t)k != want_n) {
			r = rv_fail(err, -EINVAL, NULL, "bundle shrank while it was read");
			goto out;
		}
		if (!EVP_DigestUpdate(md, buf, want_n)) {
			r = pd_err_set(err, EIO, RV_LAYER, "pack checksum: digest failed");
			goto out;
		}
		at += want_n;
	}
	unsigned int glen = 0;
	if (!EVP_DigestFinal_ex(md, got, &glen) || glen != hlen) {
		r = pd_err_set(err, EIO, RV_LAYER, "pack checksum: digest failed");
		goto out;
	}
	if (pread_full(fd, want, hlen, end) != (ssize_t)hlen) {
		r = pd_err_errno(err, RV_LAYER, "cannot read the bundle's pack");
		goto out;
	}
	if (memcmp(want, got, hlen) != 0)
		r = rv_fail(err, -EINVAL, RV_EXPORT_HINT,
			    "bundle's pack checksum does not match: the bundle is truncated or "
			    "corrupt");
out:
	EVP_MD_CTX_free(md);
	return r;
}

/* review_bundle_check on an open regular file of `size` bytes. */
static int check_fd(int fd, uint64_t size, const char *path, const struct review_limits *lim,
		    struct review_bundle_info *info, struct pd_err *err)
{
	if (size > lim->max_bytes)
		return too_big(err, path, lim->max_bytes);
	size_t cap = size < lim->max_header ? (size_t)size : lim->max_header;
	_cleanup_free_ char *buf = malloc(cap ? cap : 1);
	if (!buf)
		return pd_err_set(err, ENOMEM, RV_LAYER, "bundle header");
	ssize_t k = pread_full(fd, buf, cap, 0);
	if (k < 0)
		return pd_err_errno(err, RV_LAYER, "cannot read bundle '%s'", path);
	memset(info, 0, sizeof *info);
	struct hdr h = {
		.buf = buf,
		.len = (size_t)k,
		.whole = (uint64_t)k >= size,
		.max_header = lim->max_header,
		.err = err,
	};
	int r = hdr_parse(&h, lim, info);
	if (r < 0)
		return r;
	info->size = size;
	return pack_check(fd, size, info, err);
}

int review_bundle_check(const char *bundle_path, const struct review_limits *lim,
			struct review_bundle_info *out, struct pd_err *err)
{
	if (!bundle_path || !out)
		return pd_err_set(err, EINVAL, RV_LAYER, "review_bundle_check: bad arguments");
	struct review_limits l;
	limits_resolve(lim, &l);
	struct stat st;
	_cleanup_close_ int fd = bundle_open(bundle_path, &st, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ struct review_bundle_info *info = malloc(sizeof *info);
	if (!info)
		return pd_err_set(err, ENOMEM, RV_LAYER, "bundle info");
	int r = check_fd(fd, (uint64_t)st.st_size, bundle_path, &l, info, err);
	if (r < 0)
		return r;
	*out = *info;
	return 0;
}

/* ---- the export script ------------------------------------------------------ */

/* The text review.h documents, run inside the sandbox. */
static const char export_script[] =
	"# paddock export (see review.h): the work in the current directory, the top\n"
	"# of a git work tree, as a git bundle on stdout, relative to the commit \"$1\".\n"
	"set -fu\n"
	"unset IFS GIT_DIR GIT_WORK_TREE GIT_COMMON_DIR GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \\\n"
	"\tGIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CONFIG GIT_CONFIG_PARAMETERS \\\n"
	"\tGIT_CONFIG_COUNT GIT_CEILING_DIRECTORIES GIT_DISCOVERY_ACROSS_FILESYSTEM\n"
	"export LC_ALL=C GIT_TERMINAL_PROMPT=0 GIT_NO_REPLACE_OBJECTS=1\n"
	"G='-c core.hooksPath=/dev/null -c core.fsmonitor=false -c safe.directory=*\n"
	"   -c gc.auto=0 -c maintenance.auto=false -c commit.gpgSign=false\n"
	"   -c user.name=paddock -c user.email=paddock@localhost'\n"
	"die() { code=$1; shift; echo \"paddock export: $*\" >&2; exit \"$code\"; }\n"
	"base=${1-}\n"
	"case $base in\n"
	"'' | *[!0-9a-f]*) die 2 \"bad base commit '$base'\" ;;\n"
	"esac\n"
	"[ ${#base} -eq 40 ] || [ ${#base} -eq 64 ] || die 2 \"bad base commit '$base'\"\n"
	"top=$(git $G rev-parse --show-toplevel 2>/dev/null) && [ \"$top\" = \"$(pwd -P)\" ] ||\n"
	"\tdie 4 \"$(pwd) is not the top of a git work tree\"\n"
	"git $G cat-file -e \"$base^{commit}\" 2>/dev/null ||\n"
	"\tdie 5 \"base commit $base is not in the repository\"\n"
	"head=$(git $G rev-parse -q --verify 'HEAD^{commit}') || die 1 \"HEAD is not a commit\"\n"
	"# The uncommitted work, through a copy of the index: the agent's index,\n"
	"# HEAD and branch stay as they are.\n"
	"idx=$(git $G rev-parse --path-format=absolute --git-path paddock-export.index) &&\n"
	"\tcur=$(git $G rev-parse --path-format=absolute --git-path index) ||\n"
	"\tdie 1 \"no git directory\"\n"
	"trap 'rm -f \"$idx\"' EXIT\n"
	"trap 'exit 1' HUP INT TERM\n"
	"rm -f \"$idx\"\n"
	"export GIT_INDEX_FILE=\"$idx\"\n"
	"if [ -f \"$cur\" ]; then cp \"$cur\" \"$idx\"; else git $G read-tree \"$head\"; fi ||\n"
	"\tdie 1 \"cannot copy the index\"\n"
	"git $G add -A >/dev/null && tree=$(git $G write-tree) ||\n"
	"\tdie 1 \"cannot record the work tree\"\n"
	"rm -f \"$idx\"\n"
	"unset GIT_INDEX_FILE\n"
	"tip=$head\n"
	"if [ \"$tree\" != \"$(git $G rev-parse \"$head^{tree}\")\" ]; then\n"
	"\ttip=$(git $G commit-tree -m 'paddock: uncommitted work' -p \"$head\" \"$tree\" "
	"</dev/null) ||\n"
	"\t\tdie 1 \"cannot commit the uncommitted work\"\n"
	"fi\n"
	"git $G merge-base --is-ancestor \"$tip\" \"$base\"\n"
	"case $? in\n"
	"0) die 3 \"nothing to export: no work since $base\" ;;\n"
	"1) ;;\n"
	"*) die 1 \"cannot compare with the base commit\" ;;\n"
	"esac\n"
	"git $G update-ref --no-deref -m 'paddock export' refs/heads/paddock-export \"$tip\" &&\n"
	"\tgit $G bundle create -q - refs/heads/paddock-export \"^$base\" ||\n"
	"\tdie 1 \"git bundle create failed\"\n";

const char *review_export_script(void)
{
	return export_script;
}

/* ---- the private repository ------------------------------------------------ */

/* A review in progress: a fetch or a diff. The private directory `tmp` is
 * root's, mode 0710 with the repository owner's group. In it `bundle`, the
 * checked copy (root's, 0440: the owner's git reads it, nobody can change
 * it), and `repo`, a bare repository made here (no hooks, no config of the
 * owner's or the sandbox's) that belongs to the owner, whose
 * objects/info/alternates borrows the owner's objects: the bundle's pack is
 * indexed there with --strict, so it is a quarantine for a fetch and the
 * whole repository of a diff, and goes when the directory goes. */
struct gate {
	struct gitrun g;
	char tmp[sizeof RV_TMP_TEMPLATE]; /* private directory, "" until made */
	int tmp_fd;
	char bundle[sizeof RV_TMP_TEMPLATE + 16];     /* tmp/bundle: the copy */
	char gitdir_env[sizeof RV_TMP_TEMPLATE + 24]; /* GIT_DIR=tmp/repo */
	char *top;                                    /* the owner's work tree */
	char *odb;                                    /* its object directory */
	char *ceiling;                                /* GIT_CEILING_DIRECTORIES=... */
	const char *env[4]; /* g.env_extra: committer, committer email, GIT_DIR or NULL */
	enum review_hash hash;
	char ref[sizeof "refs/heads/" REVIEW_BRANCH_PREFIX + REVIEW_NAME_MAX]; /* fetch only */
	struct pd_err *err;
};

/* Remove everything below the directory open at `dfd` (taken over), never
 * following a symlink: the private repository is written by the
 * repository's owner, who must not be able to point root's removal
 * somewhere else. */
static void rm_below(int dfd, unsigned depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno != EISDIR)
			continue;
		int c = depth < 16 ? openat(dirfd(d), de->d_name,
					    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
				   : -1;
		if (c >= 0)
			rm_below(c, depth + 1);
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void gate_release(struct gate *f)
{
	gitrun_release(&f->g);
	if (f->tmp_fd >= 0) {
		rm_below(f->tmp_fd, 0);
		rmdir(f->tmp);
	}
	free(f->top);
	free(f->odb);
	free(f->ceiling);
}

/* Run git in the owner's repository (priv false) or in the private one
 * (priv true), as gitrun_run, or as gitrun_ok when `ok`. */
static int gate_git(struct gate *f, bool priv, bool ok, const char *const *args, unsigned flags,
		    struct git_res *res)
{
	f->env[2] = priv ? f->gitdir_env : NULL;
	const char *dir = priv ? NULL : f->top;
	int r = ok ? gitrun_ok(&f->g, dir, args, flags, res)
		   : gitrun_run(&f->g, dir, args, flags, res);
	f->env[2] = NULL;
	return r;
}

/* gitrun_ok in the owner's repository. */
static int f_git(struct gate *f, const char *const *args, unsigned flags, struct git_res *res)
{
	return gate_git(f, false, true, args, flags, res);
}

/* gitrun_ok in the private repository. */
static int p_git(struct gate *f, const char *const *args, unsigned flags, struct git_res *res)
{
	return gate_git(f, true, true, args, flags, res);
}

/* write(2) all of buf. Returns 0 or -1 with errno set. */
static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* The first line of git's output as an object name of this repository's
 * format into out (REVIEW_OID_MAX + 1 bytes). */
static int take_oid(struct gate *f, const struct git_res *res, char *out, const char *what)
{
	size_t hexlen = hash_hexlen(f->hash);
	if (!res->out || res->len < hexlen + 1 || !oid_ok(res->out, res->len, hexlen) ||
	    res->out[hexlen] != '\n')
		return rv_fail(f->err, -EIO, NULL, "git printed no object name for %s", what);
	memcpy(out, res->out, hexlen);
	out[hexlen] = '\0';
	return 0;
}

/* Find the owner's repository: repo_dir must be the top of its work tree.
 * Discovery cannot climb above it (GIT_CEILING_DIRECTORIES) and only it is
 * trusted as safe.directory. Learns the object directory and format. */
static int open_repo(struct gate *f, const char *repo_dir)
{
	_cleanup_free_ char *real = realpath(repo_dir, NULL);
	if (!real)
		return pd_err_errno(f->err, RV_LAYER, "cannot resolve '%s'", repo_dir);
	if (strchr(real, '\n'))
		return rv_fail(f->err, -EINVAL, NULL, "repository path '%s' has a newline", real);
	/* Discovery stops at the parent (the list is ':'-separated: without a
	 * ceiling when the path has one; the top check below still holds). */
	_cleanup_free_ char *parent = strdup(real);
	if (!parent)
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "repository path");
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	else
		parent[1] = '\0';
	if (!strchr(parent, ':')) {
		if (asprintf(&f->ceiling, "GIT_CEILING_DIRECTORIES=%s", parent) < 0) {
			f->ceiling = NULL;
			return pd_err_set(f->err, ENOMEM, RV_LAYER, "repository path");
		}
	}
	f->g.env_extra = (const char *const[]){ f->ceiling, NULL };
	int r = gitrun_set_safe(&f->g, (const char *const[]){ real, NULL });
	if (r < 0)
		return r;

	_cleanup_git_res_ struct git_res res = { 0 };
	r = gitrun_ok(&f->g, real,
		      (const char *const[]){ "rev-parse", "--path-format=absolute",
					     "--show-toplevel", "--git-path", "objects",
					     "--show-object-format", "--git-common-dir", NULL },
		      GITRUN_CAPTURE, &res);
	f->g.env_extra = NULL;
	if (r < 0) {
		pd_err_prefix(f->err, "'%s' is not a usable git repository", real);
		return r;
	}
	char *l[4], *p = res.out;
	for (size_t i = 0; i < 4; i++) {
		char *nl = p ? strchr(p, '\n') : NULL;
		if (!nl)
			return rv_fail(f->err, -EIO, NULL, "unexpected output from git rev-parse");
		*nl = '\0';
		l[i] = p;
		p = nl + 1;
	}
	if (strcmp(l[0], real) != 0)
		return rv_fail(f->err, -EINVAL, NULL,
			       "'%s' is not the top of a git work tree (the top is '%s')", real,
			       l[0]);
	if (l[1][0] != '/' || l[3][0] != '/')
		return rv_fail(f->err, -EIO, NULL, "git rev-parse printed a relative path");
	if (strcmp(l[2], "sha1") == 0)
		f->hash = REVIEW_HASH_SHA1;
	else if (strcmp(l[2], "sha256") == 0)
		f->hash = REVIEW_HASH_SHA256;
	else
		return rv_fail(f->err, -EINVAL, NULL, "repository uses an unknown object format");
	/* From here on git runs as the owner of the repository's git directory:
	 * what the fetch writes (pack, ref, reflog) is theirs, and the bundle's
	 * objects are parsed without root. */
	struct stat st;
	if (stat(l[3], &st) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot stat '%s'", l[3]);
	if (st.st_uid != 0) {
		f->g.uid = st.st_uid;
		f->g.gid = st.st_gid;
	}
	f->top = steal_ptr(&real);
	if (!(f->odb = strdup(l[1])))
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "repository path");
	/* Who wrote the reflog entry of refs/heads/paddock/<name>. */
	f->env[0] = "GIT_COMMITTER_NAME=paddock";
	f->env[1] = "GIT_COMMITTER_EMAIL=paddock@localhost";
	f->g.env_extra = f->env;
	return 0;
}

/* Copy the bundle into the private directory (O_NOFOLLOW, at most
 * max_bytes) and return an fd on the copy. */
static int copy_bundle(struct gate *f, const char *path, uint64_t max)
{
	struct stat st;
	_cleanup_close_ int in = bundle_open(path, &st, f->err);
	if (in < 0)
		return in;
	if ((uint64_t)st.st_size > max)
		return too_big(f->err, path, max);
	_cleanup_close_ int out = openat(f->tmp_fd, "bundle",
					 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot create '%s'", f->bundle);
	_cleanup_free_ char *buf = malloc(RV_BUF);
	if (!buf)
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "bundle copy");
	uint64_t total = 0;
	for (;;) {
		ssize_t k = read(in, buf, RV_BUF);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return pd_err_errno(f->err, RV_LAYER, "cannot read bundle '%s'", path);
		if (k == 0)
			break;
		if ((uint64_t)k > max - total)
			return too_big(f->err, path, max);
		total += (uint64_t)k;
		if (write_all(out, buf, (size_t)k) < 0)
			return pd_err_errno(f->err, RV_LAYER, "cannot write '%s'", f->bundle);
	}
	gid_t gid = f->g.gid == (gid_t)-1 ? 0 : f->g.gid;
	if (fchown(out, 0, gid) < 0 || fchmod(out, 0440) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot chown '%s'", f->bundle);
	/* Read-only from here on: this fd becomes git's stdin. */
	int ro = openat(f->tmp_fd, "bundle", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (ro < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot open '%s'", f->bundle);
	return ro;
}

/* The private repository tmp/repo, made by root below the private directory
 * (which only root can write, so the multi-component paths below cannot be
 * redirected), then given to the owner from the leaves up: every chown's
 * parent is still root's when it happens. */
static int private_repo(struct gate *f)
{
	static const char *const dirs[] = { "repo", "repo/refs", "repo/objects",
					     "repo/objects/pack", "repo/objects/info" };
	static const char *const chown_order[] = {
		"repo/objects/info/alternates", "repo/objects/info", "repo/objects/pack",
		"repo/objects", "repo/refs", "repo/config", "repo/HEAD", "repo",
	};
	const char *config =
		f->hash == REVIEW_HASH_SHA256
			? "[core]\n\trepositoryformatversion = 1\n\tbare = true\n"
			  "\tlogAllRefUpdates = false\n[extensions]\n\tobjectFormat = sha256\n"
			: "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"
			  "\tlogAllRefUpdates = false\n";
	_cleanup_free_ char *alt = NULL;
	if (asprintf(&alt, "%s\n", f->odb) < 0) {
		alt = NULL;
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "private repository");
	}
	const struct {
		const char *path, *text;
	} files[] = {
		{ "repo/HEAD", "ref: refs/heads/main\n" },
		{ "repo/config", config },
		{ "repo/objects/info/alternates", alt },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(f->tmp_fd, dirs[i], 0755) < 0)
			return pd_err_errno(f->err, RV_LAYER, "cannot create '%s/%s'", f->tmp,
					    dirs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_close_ int fd =
			openat(f->tmp_fd, files[i].path,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, files[i].text, strlen(files[i].text)) < 0)
			return pd_err_errno(f->err, RV_LAYER, "cannot write '%s/%s'", f->tmp,
					    files[i].path);
	}
	if (f->g.uid != (uid_t)-1)
		for (size_t i = 0; i < ARRAY_SIZE(chown_order); i++)
			if (fchownat(f->tmp_fd, chown_order[i], f->g.uid, f->g.gid,
				     AT_SYMLINK_NOFOLLOW) < 0)
				return pd_err_errno(f->err, RV_LAYER, "cannot chown '%s/%s'",
						    f->tmp, chown_order[i]);
	snprintf(f->gitdir_env, sizeof f->gitdir_env, "GIT_DIR=%s/repo", f->tmp);
	return 0;
}

/* Index the pack (stdin from the copy at the pack) with --strict into the
 * private repository, which borrows the owner's objects: every object is
 * fsck'ed, every link must resolve, thin deltas complete from the owner's
 * objects (what `git bundle unbundle` does, plus the checks). Then the tip
 * must be a commit. */
static int index_bundle(struct gate *f, int bundle_fd, const struct review_bundle_info *info)
{
	if (lseek(bundle_fd, (off_t)info->pack_offset, SEEK_SET) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot seek in the bundle");
	f->g.in_fd = bundle_fd;
	_cleanup_git_res_ struct git_res res = { 0 };
	int r = p_git(f, (const char *const[]){ "index-pack", "--stdin", "--fix-thin", "--strict",
						NULL },
		      GITRUN_CAPTURE, &res);
	f->g.in_fd = -1;
	if (r < 0) {
		pd_err_hint(f->err, "the bundle holds a corrupt or unsafe object; nothing "
				    "was fetched");
		pd_err_prefix(f->err, "bundle refused by fsck");
		return r;
	}
	r = p_git(f, (const char *const[]){ "cat-file", "-t", info->tip, NULL }, GITRUN_CAPTURE,
		  &res);
	if (r < 0)
		return r;
	if (!res.out || strcmp(res.out, "commit\n") != 0)
		return rv_fail(f->err, -EINVAL, NULL,
			       "bundle's " REVIEW_EXPORT_REF " is not a commit");
	return 0;
}

/* Find git and the owner's repository, resolve the limits (in the
 * repository's object format) and check the syntax of `given`, a base ("" for
 * none). */
static int gate_open(struct gate *f, const char *repo_dir, const struct review_limits *lim_in,
		     const char *given, struct review_limits *lim)
{
	limits_resolve(lim_in, lim);
	int r;
	if ((r = gitrun_find(&f->g, "install git on the host")) < 0 ||
	    (r = open_repo(f, repo_dir)) < 0)
		return r;
	lim->hash = f->hash;
	if (given[0] && (strlen(given) != hash_hexlen(f->hash) ||
			 !oid_ok(given, strlen(given), hash_hexlen(f->hash))))
		return rv_fail(f->err, -EINVAL, NULL, "base '%s' is not a full %s object name",
			       given, hash_name(f->hash));
	return 0;
}

/* Steps 2-4 of review_bundle_fetch, shared with review_bundle_diff: the
 * private directory, the checked copy (its info into *info), the
 * prerequisites, the pack indexed strictly into the private repository. */
static int gate_stage(struct gate *f, const char *bundle_path, const struct review_limits *lim,
		      struct review_bundle_info *info)
{
	int r;
	/* 2. A private copy, checked. */
	memcpy(f->tmp, RV_TMP_TEMPLATE, sizeof RV_TMP_TEMPLATE);
	if (!mkdtemp(f->tmp))
		return pd_err_errno(f->err, RV_LAYER, "cannot create a private directory");
	f->tmp_fd = open(f->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->tmp_fd < 0) {
		r = pd_err_errno(f->err, RV_LAYER, "cannot open '%s'", f->tmp);
		rmdir(f->tmp);
		return r;
	}
	if (fchown(f->tmp_fd, 0, f->g.gid == (gid_t)-1 ? 0 : f->g.gid) < 0 ||
	    fchmod(f->tmp_fd, 0710) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot chown '%s'", f->tmp);
	snprintf(f->bundle, sizeof f->bundle, "%s/bundle", f->tmp);
	_cleanup_close_ int fd = copy_bundle(f, bundle_path, lim->max_bytes);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot stat '%s'", f->bundle);
	if ((r = check_fd(fd, (uint64_t)st.st_size, bundle_path, lim, info, f->err)) < 0)
		return r;

	/* 3. The prerequisites are among the owner's objects. */
	if ((r = private_repo(f)) < 0)
		return r;
	_cleanup_git_res_ struct git_res res = { 0 };
	r = p_git(f, (const char *const[]){ "bundle", "verify", f->bundle, NULL }, 0, &res);
	if (r < 0) {
		pd_err_hint(f->err, "the commit the sandbox started from must be in this "
				    "repository");
		return r;
	}

	/* 4. fsck in the private repository. */
	return index_bundle(f, fd, info);
}

/* ---- the summary ------------------------------------------------------------- */

/* `given` (a full object name, or "" for none) as a commit the repository
 * (priv: the private one) has, into out ("" for none). */
static int base_commit(struct gate *f, bool priv, const char *given, char *out)
{
	out[0] = '\0';
	if (!given[0])
		return 0;
	_cleanup_git_res_ struct git_res res = { 0 };
	char spec[REVIEW_OID_MAX + 16];
	snprintf(spec, sizeof spec, "%s^{commit}", given);
	int r = gate_git(f, priv, false,
			 (const char *const[]){ "rev-parse", "-q", "--verify", spec, NULL },
			 GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.status != 0)
		return rv_fail(f->err, -ENOENT, NULL, "base %s is not a commit of the repository",
			       given);
	return take_oid(f, &res, out, "the base");
}

/* The base the summary of a fetch compares against, into s->base ("" for
 * none), and what to show in the review command (a branch name or the base)
 * into shown. `given` is the caller's base or "". */
static int resolve_base(struct gate *f, const char *given, const char *head_ref,
			struct review_summary *s, char *shown, size_t shown_len)
{
	_cleanup_git_res_ struct git_res res = { 0 };
	int r;
	if (given[0]) {
		if ((r = base_commit(f, false, given, s->base)) < 0)
			return r;
		snprintf(shown, shown_len, "%s", s->base);
		return 0;
	}
	s->base[0] = '\0';
	r = gitrun_run(&f->g, f->top,
		       (const char *const[]){ "rev-parse", "-q", "--verify", "HEAD^{commit}",
					      NULL },
		       GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.status != 0) /* unborn HEAD: no common history */
		return 0;
	r = gitrun_run(&f->g, f->top, (const char *const[]){ "merge-base", "HEAD", f->ref, NULL },
		       GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	if (res.status == 1 && res.len == 0) /* unrelated histories */
		return 0;
	if (res.status != 0)
		return rv_fail(f->err, -EIO, NULL, "git merge-base failed (exit %d): %s",
			       res.status, res.errline);
	if ((r = take_oid(f, &res, s->base, "the merge base")) < 0)
		return r;
	/* Show the current branch when its name is plain (the command is meant
	 * to be pasted into a shell), else the base itself. */
	static const char heads[] = "refs/heads/";
	const char *br = strncmp(head_ref, heads, sizeof heads - 1) == 0
				 ? head_ref + sizeof heads - 1
				 : NULL;
	size_t bn = br ? strlen(br) : 0;
	if (bn > 0 && bn < shown_len && br[0] != '-' &&
	    br[strspn(br, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")] ==
		    '\0')
		memcpy(shown, br, bn + 1);
	else
		snprintf(shown, shown_len, "%s", s->base);
	return 0;
}

/* Parse `git diff --shortstat`: " 3 files changed, 10 insertions(+), 2
 * deletions(-)" (parts absent when zero; empty output when no change). */
static int parse_shortstat(struct gate *f, const char *t, struct review_summary *s)
{
	s->files_changed = s->insertions = s->deletions = 0;
	while (t && *t) {
		t += strspn(t, " ,\n");
		if (!*t)
			break;
		char *end;
		errno = 0;
		unsigned long v = strtoul(t, &end, 10);
		if (end == t || errno || *end != ' ')
			return rv_fail(f->err, -EIO, NULL, "unexpected output from git diff");
		t = end + 1;
		if (strncmp(t, "file", 4) == 0)
			s->files_changed = v;
		else if (strncmp(t, "insertion", 9) == 0)
			s->insertions = v;
		else if (strncmp(t, "deletion", 8) == 0)
			s->deletions = v;
		else
			return rv_fail(f->err, -EIO, NULL, "unexpected output from git diff");
		t += strcspn(t, ",\n");
	}
	return 0;
}

/* Commits in s->base..tip (all of tip's history when s->base is ""), and the
 * files, insertions and deletions between them, from the repository `priv`
 * says. */
static int count_work(struct gate *f, bool priv, const char *tip, struct review_summary *s)
{
	char range[REVIEW_OID_MAX + sizeof f->ref + 4];
	if (s->base[0])
		snprintf(range, sizeof range, "%s..%s", s->base, tip);
	else
		snprintf(range, sizeof range, "%s", tip);
	_cleanup_git_res_ struct git_res res = { 0 };
	int r = gate_git(f, priv, true,
			 (const char *const[]){ "rev-list", "--count", range, "--", NULL },
			 GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	char *end;
	s->commits = strtoul(res.out ? res.out : "", &end, 10);
	if (!res.out || end == res.out || *end != '\n')
		return rv_fail(f->err, -EIO, NULL, "unexpected output from git rev-list");

	const char *from = s->base[0] ? s->base : empty_tree[f->hash];
	r = gate_git(f, priv, true,
		     (const char *const[]){ "diff", "--shortstat", "--no-ext-diff", "--no-textconv",
					    "--no-renames", from, tip, "--", NULL },
		     GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	return parse_shortstat(f, res.out, s);
}

/* Commits, files, insertions and deletions of base..ref, and the review
 * command. */
static int summarize(struct gate *f, const char *given, const char *head_ref,
		     struct review_summary *s)
{
	char shown[256] = "";
	int r = resolve_base(f, given, head_ref, s, shown, sizeof shown);
	if (r < 0 || (r = count_work(f, false, f->ref, s)) < 0)
		return r;
	const char *branch = f->ref + strlen("refs/heads/");
	snprintf(s->branch, sizeof s->branch, "%s", branch);
	if (shown[0])
		snprintf(s->review_command, sizeof s->review_command, "git log -p %s..%s", shown,
			 branch);
	else
		snprintf(s->review_command, sizeof s->review_command, "git log -p %s", branch);
	return 0;
}

/* ---- fetching ------------------------------------------------------------------ */

/* The owner's HEAD must not be the branch we write. 1 when HEAD is a branch
 * (its refname in head, `len` bytes), 0 when detached, or a negative errno. */
static int head_branch(struct gate *f, char *head, size_t len)
{
	_cleanup_git_res_ struct git_res res = { 0 };
	int r = gitrun_run(&f->g, f->top,
			   (const char *const[]){ "symbolic-ref", "-q", "HEAD", NULL },
			   GITRUN_CAPTURE, &res);
	if (r < 0)
		return r;
	head[0] = '\0';
	if (res.status != 0 || !res.out)
		return 0;
	size_t n = strcspn(res.out, "\n");
	if (n == 0 || n >= len)
		return 0;
	memcpy(head, res.out, n);
	head[n] = '\0';
	if (strcmp(head, f->ref) == 0)
		return rv_fail(f->err, -EBUSY, "switch the repository to another branch first",
			       "refs/heads/%s is the current branch of '%s'; refusing to fetch "
			       "into it",
			       f->ref + strlen("refs/heads/"), f->top);
	return 1;
}

/* The steps of review_bundle_fetch after the arguments are checked. */
static int fetch_run(struct gate *f, const char *repo_dir, const char *bundle_path,
		     const struct review_limits *lim_in, const char *given,
		     struct review_summary *s)
{
	struct review_limits lim;
	int r;
	if ((r = gate_open(f, repo_dir, lim_in, given, &lim)) < 0)
		return r;

	/* 1. Never the current branch (git fetch also refuses, less clearly). */
	char head_ref[512];
	if ((r = head_branch(f, head_ref, sizeof head_ref)) < 0)
		return r;

	/* 2-4. The checked copy, its prerequisites, fsck. */
	_cleanup_free_ struct review_bundle_info *info = malloc(sizeof *info);
	if (!info)
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "bundle info");
	if ((r = gate_stage(f, bundle_path, &lim, info)) < 0)
		return r;

	/* 5. The fetch, into refs/heads/paddock/<name> only. */
	char refspec[sizeof REVIEW_EXPORT_REF + sizeof f->ref + 2];
	snprintf(refspec, sizeof refspec, "+" REVIEW_EXPORT_REF ":%s", f->ref);
	_cleanup_git_res_ struct git_res res = { 0 };
	r = f_git(f,
		  (const char *const[]){ "-c", "transfer.fsckObjects=true", "-c",
					 "fetch.fsckObjects=true", "-c",
					 "fetch.writeCommitGraph=false", "-c",
					 "fetch.recurseSubmodules=false", "-c",
					 "submodule.recurse=false", "fetch", "-q", "--no-tags",
					 "--no-write-fetch-head", "--no-recurse-submodules",
					 "--no-auto-maintenance", f->bundle, refspec, NULL },
		  0, &res);
	if (r < 0)
		return r;
	r = f_git(f, (const char *const[]){ "rev-parse", "-q", "--verify", f->ref, NULL },
		  GITRUN_CAPTURE, &res);
	if (r < 0 || (r = take_oid(f, &res, s->tip, f->ref)) < 0)
		return r;
	if (strcmp(s->tip, info->tip) != 0)
		return rv_fail(f->err, -EIO, NULL, "%s is %s after the fetch, not the bundle's %s",
			       f->ref, s->tip, info->tip);

	/* 6. The summary. */
	return summarize(f, given, head_ref, s);
}

int review_bundle_fetch(const char *repo_dir, const char *bundle_path, const char *name,
			const struct review_limits *lim, struct review_summary *out,
			struct pd_err *err)
{
	if (!repo_dir || !bundle_path || !out)
		return pd_err_set(err, EINVAL, RV_LAYER, "review_bundle_fetch: bad arguments");
	if (!review_name_valid(name)) {
		char q[RV_QUOTE_MAX * 4 + 8];
		return rv_fail(err, -EINVAL, "use lowercase letters, digits and '-'",
			       "invalid name '%s' for a paddock branch",
			       name ? quote(name, strlen(name), q, sizeof q) : "(null)");
	}
	char given[REVIEW_OID_MAX + 1];
	if (strnlen(out->base, sizeof out->base) == sizeof out->base)
		return rv_fail(err, -EINVAL, NULL, "base is not terminated");
	memcpy(given, out->base, sizeof given);

	__attribute__((cleanup(gate_release))) struct gate f = { .tmp_fd = -1, .err = err };
	gitrun_init(&f.g, RV_LAYER, err);
	snprintf(f.ref, sizeof f.ref, "refs/heads/" REVIEW_BRANCH_PREFIX "%s", name);
	_cleanup_free_ struct review_summary *s = calloc(1, sizeof *s);
	if (!s)
		return pd_err_set(err, ENOMEM, RV_LAYER, "summary");
	int r = fetch_run(&f, repo_dir, bundle_path, lim, given, s);
	if (r < 0)
		return r;
	*out = *s;
	return 0;
}

/* ---- diffing ------------------------------------------------------------------- */

/* The steps of review_bundle_diff after the arguments are checked. */
static int diff_run(struct gate *f, const char *repo_dir, const char *bundle_path,
		    const struct review_limits *lim_in, const char *given, int out_fd,
		    bool stat_only, struct review_summary *s)
{
	struct review_limits lim;
	int r;
	if ((r = gate_open(f, repo_dir, lim_in, given, &lim)) < 0)
		return r;
	_cleanup_free_ struct review_bundle_info *info = malloc(sizeof *info);
	if (!info)
		return pd_err_set(f->err, ENOMEM, RV_LAYER, "bundle info");
	if ((r = gate_stage(f, bundle_path, &lim, info)) < 0)
		return r;

	/* The summary, from the private repository alone. */
	memcpy(s->tip, info->tip, sizeof s->tip);
	if ((r = base_commit(f, true, given, s->base)) < 0 ||
	    (r = count_work(f, true, info->tip, s)) < 0)
		return r;
	if (out_fd < 0)
		return 0;

	/* The diff: no driver, no textconv, no color; attributes come from
	 * nowhere (a bare repository with an unborn HEAD, GIT_ATTR_NOSYSTEM), so
	 * the bundle's .gitattributes cannot hide a change as binary. */
	const char *from = s->base[0] ? s->base : empty_tree[f->hash];
	_cleanup_git_res_ struct git_res res = { 0 };
	r = p_git(f,
		  (const char *const[]){ "diff", stat_only ? "--stat" : "--patch-with-stat",
					 "--no-color", "--no-ext-diff", "--no-textconv",
					 "--no-renames", from, info->tip, "--", NULL },
		  GITRUN_CAPTURE, &res);
	if (r == -E2BIG)
		pd_err_hint(f->err, "ask for the statistics only, or pull the work and review "
				    "it with git log -p");
	if (r < 0)
		return r;
	if (res.len && write_all(out_fd, res.out, res.len) < 0)
		return pd_err_errno(f->err, RV_LAYER, "cannot write the diff");
	return 0;
}

int review_bundle_diff(const char *repo_dir, const char *bundle_path, const char *base,
		       const struct review_limits *lim, int out_fd, bool stat_only,
		       struct review_summary *out, struct pd_err *err)
{
	if (!repo_dir || !bundle_path)
		return pd_err_set(err, EINVAL, RV_LAYER, "review_bundle_diff: bad arguments");
	const char *given = base ? base : "";

	__attribute__((cleanup(gate_release))) struct gate f = { .tmp_fd = -1, .err = err };
	gitrun_init(&f.g, RV_LAYER, err);
	_cleanup_free_ struct review_summary *s = calloc(1, sizeof *s);
	if (!s)
		return pd_err_set(err, ENOMEM, RV_LAYER, "summary");
	int r = diff_run(&f, repo_dir, bundle_path, lim, given, out_fd, stat_only, s);
	if (r < 0)
		return r;
	if (out)
		*out = *s;
	return 0;
}
