/* deny.c: the built-in deny list of credential files, the matcher, and the
 * bounded scan of a mount source that finds what to mask.
 *
 * Pattern syntax (kept deliberately small, no fnmatch):
 *   - "name"       an exact component name, anywhere in the path;
 *   - "prefix*"    a component that starts with "prefix" (a '*' only at the
 *                  end of a component, nowhere else);
 *   - "a/b"        the components "a" then "b", contiguous, anywhere in the
 *                  path (so ".config/gcloud" matches "x/.config/gcloud/creds").
 * Empty and "." components of a path are ignored.
 *
 * Un-masking is by pattern text only: `--unmask '.env*'` lifts the ".env*"
 * pattern as a whole; naming a concrete file (".env.local") lifts nothing.
 * That keeps the rule simple to state and impossible to widen by accident. */
#include "sandbox/deny.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"

/* clang-format off */
static const char *const deny_builtin[] = {
	".ssh",                /* SSH private keys, agent config, known_hosts */
	".aws",                /* AWS CLI credentials and SSO token cache */
	".config/gcloud",      /* Google Cloud SDK credentials and access tokens */
	".kube",               /* kubeconfig: cluster endpoints and bearer tokens */
	".docker/config.json", /* container registry auth (only that file) */
	".netrc",              /* login/password pairs used by curl, ftp, git */
	".npmrc",              /* npm registry auth tokens */
	".pypirc",             /* PyPI upload tokens */
	".git-credentials",    /* git credential-store, plaintext */
	".env*",               /* dotenv files (.env, .env.local, .envrc); note
				* that a virtualenv named ".env" is masked too */
	"id_rsa*",             /* stray SSH keys (and .pub) outside ~/.ssh */
	"id_ed25519*",         /* same, ed25519 */
	"id_ecdsa*",           /* same, ECDSA */
	".gnupg",              /* GnuPG private keyring and agent sockets */
	NULL,
};
/* clang-format on */

const char *const *deny_patterns(void)
{
	return deny_builtin;
}

/* The next path component at or after s (skipping "/" runs and "."
 * components); its length in *len. NULL at the end of the string. */
static const char *comp_next(const char *s, size_t *len)
{
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			return NULL;
		size_t n = strcspn(s, "/");
		if (!(n == 1 && s[0] == '.')) {
			*len = n;
			return s;
		}
		s += n;
	}
}

/* Does one pattern component match one path component? */
static bool comp_match(const char *pat, size_t plen, const char *name, size_t nlen)
{
	if (plen > 0 && pat[plen - 1] == '*')
		return nlen >= plen - 1 && memcmp(pat, name, plen - 1) == 0;
	return plen == nlen && memcmp(pat, name, plen) == 0;
}

/* Do the components of `pat` match the components of the path starting at
 * `at` (a component start), all of them, contiguously? */
static bool match_from(const char *at, const char *pat)
{
	size_t plen = 0, nlen = 0;
	const char *p = comp_next(pat, &plen);
	const char *n = comp_next(at, &nlen);
	while (p) {
		if (!n || !comp_match(p, plen, n, nlen))
			return false;
		p = comp_next(p + plen, &plen);
		n = comp_next(n + nlen, &nlen);
	}
	return true;
}

/* Is the pattern lifted by an exact --unmask entry? */
static bool is_unmasked(const char *pat, const char *const *unmask)
{
	for (size_t i = 0; unmask && unmask[i]; i++)
		if (strcmp(unmask[i], pat) == 0)
			return true;
	return false;
}

bool deny_match(const char *relpath, const char *const *unmask)
{
	if (!relpath)
		return false;
	size_t len = 0;
	for (const char *c = comp_next(relpath, &len); c; c = comp_next(c + len, &len))
		for (const char *const *p = deny_builtin; *p; p++)
			if (!is_unmasked(*p, unmask) && match_from(c, *p))
				return true;
	return false;
}

void deny_hits_free(struct deny_hits *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].relpath);
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

#define DENY_STR_(x) #x
#define DENY_STR(x) DENY_STR_(x)

/* Room for DENY_MAX_DEPTH directories plus the entry inside the deepest. */
#define SCAN_PATH_MAX ((DENY_MAX_DEPTH + 2) * (NAME_MAX + 1))

struct scan {
	const char *const *unmask;
	struct deny_hits hits;
	size_t cap;
	size_t entries;
	struct pd_err *err;
	char path[SCAN_PATH_MAX];        /* relpath of the entry being looked at */
	size_t offs[DENY_MAX_DEPTH + 2]; /* where each of its components starts */
};

/* deny_match for the scan: only the windows that end at the last component
 * of s->path (`n` components) are tried; every window further up was tried
 * when the parent directories were visited, and none matched (or the scan
 * would not have descended). Same answer, without the quadratic cost. */
static bool scan_match(const struct scan *s, size_t n)
{
	for (const char *const *p = deny_builtin; *p; p++) {
		size_t k = 1;
		for (const char *c = *p; *c; c++)
			k += *c == '/';
		if (k <= n && !is_unmasked(*p, s->unmask) &&
		    match_from(s->path + s->offs[n - k], *p))
			return true;
	}
	return false;
}

/* A limit was exceeded: fail closed. The error carries no errno (so the
 * printed line has no misleading strerror), but the return value is -E2BIG. */
static int scan_limit(struct scan *s, const char *what)
{
	pd_err_set(s->err, 0, "mount", "mount source %s; cannot scan it for credential files",
		   what);
	pd_err_hint(s->err, "mount a narrower directory");
	return -E2BIG;
}

static int scan_add_hit(struct scan *s, bool is_dir)
{
	if (s->hits.n >= DENY_MAX_HITS)
		return scan_limit(s, "has more than " DENY_STR(DENY_MAX_HITS) " credential files");
	if (s->hits.n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct deny_hit *v = realloc(s->hits.v, cap * sizeof *v);
		if (!v)
			return pd_err_set(s->err, ENOMEM, "mount", "scanning for credential files");
		s->hits.v = v;
		s->cap = cap;
	}
	char *rel = strdup(s->path);
	if (!rel)
		return pd_err_set(s->err, ENOMEM, "mount", "scanning for credential files");
	s->hits.v[s->hits.n++] = (struct deny_hit){ .relpath = rel, .is_dir = is_dir };
	return 0;
}

/* Scan the directory open at `fd` (taken over), whose relpath is the first
 * `plen` bytes of s->path and which sits `depth` levels below the root. */
static int scan_dir(struct scan *s, int fd, unsigned depth, size_t plen)
{
	_cleanup_close_ int owned = fd;
	_cleanup_closedir_ DIR *d = fdopendir(owned);
	if (!d)
		return pd_err_errno(s->err, "mount", "cannot read directory '%s'",
				    plen ? s->path : ".");
	owned = -1; /* the DIR owns it now */

	for (;;) {
		s->path[plen] = '\0';
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				return pd_err_errno(s->err, "mount", "cannot read directory '%s'",
						    plen ? s->path : ".");
			return 0;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (++s->entries > DENY_MAX_ENTRIES)
			return scan_limit(s,
					  "has more than " DENY_STR(DENY_MAX_ENTRIES) " entries");

		size_t nlen = strlen(de->d_name);
		size_t need = plen + (plen ? 1 : 0) + nlen + 1;
		if (need > sizeof s->path)
			return scan_limit(s, "has a path that is too long");
		size_t off = plen;
		if (plen)
			s->path[off++] = '/';
		memcpy(s->path + off, de->d_name, nlen + 1);
		s->offs[depth] = off;

		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue; /* vanished meanwhile: nothing to mask */
				return pd_err_errno(s->err, "mount", "cannot stat '%s'", s->path);
			}
			type = S_ISDIR(st.st_mode)    ? DT_DIR
			       : S_ISLNK(st.st_mode)  ? DT_LNK
			       : S_ISSOCK(st.st_mode) ? DT_SOCK
						      : DT_REG;
		}

		int r;
		/* A unix socket (docker.sock, an ssh-agent, a database) is reachable
		 * through a read-only mount: connect() needs no write to the mount.
		 * Every socket is masked unless the user un-masks "sockets". */
		bool sock_hit = type == DT_SOCK && !is_unmasked(DENY_SOCKETS, s->unmask);
		if (sock_hit || scan_match(s, depth + 1)) {
			/* A symlink is reported as itself (is_dir false), never followed. */
			if ((r = scan_add_hit(s, type == DT_DIR)) < 0)
				return r;
		} else if (type == DT_DIR) {
			if (depth + 1 > DENY_MAX_DEPTH)
				return scan_limit(
					s, "is deeper than " DENY_STR(DENY_MAX_DEPTH) " levels");
			int child = openat(dirfd(d), de->d_name,
					   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (child < 0) {
				if (errno == ENOENT)
					continue;
				/* EACCES, ELOOP (swapped for a symlink), ...: fail closed. */
				r = pd_err_errno(s->err, "mount",
						 "cannot open '%s' to scan it for credential files",
						 s->path);
				pd_err_hint(s->err, "mount a narrower directory");
				return r;
			}
			if ((r = scan_dir(s, child, depth + 1, off + nlen)) < 0)
				return r;
		}
	}
}

static int hit_cmp(const void *a, const void *b)
{
	return strcmp(((const struct deny_hit *)a)->relpath, ((const struct deny_hit *)b)->relpath);
}

int deny_scan(int dirfd, const char *const *unmask, struct deny_hits *out, struct pd_err *err)
{
	_cleanup_free_ struct scan *s = calloc(1, sizeof *s);
	if (!s)
		return pd_err_set(err, ENOMEM, "mount", "scanning for credential files");
	s->unmask = unmask;
	s->err = err;

	/* A fresh open file description: the caller's offset is left alone and
	 * an O_PATH dirfd works too. */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pd_err_errno(err, "mount", "cannot open mount source to scan it");
	int r = scan_dir(s, fd, 0, 0);
	if (r < 0) {
		deny_hits_free(&s->hits);
		return r;
	}
	if (s->hits.n > 1)
		qsort(s->hits.v, s->hits.n, sizeof *s->hits.v, hit_cmp);
	*out = s->hits;
	return 0;
}
