/* image.c: root filesystem images.
 *
 * The default image is Debian 12 (minbase plus the tools an agent expects),
 * built once per machine with mmdebstrap:
 *
 *   <state>/images/default.lock        flock held by whoever builds
 *   <state>/images/default/rootfs      the tree, renamed into place when complete
 *   <state>/images/default/ok          completion marker, written last
 *   <state>/images/default/build.log   mmdebstrap's stderr from the last build
 *   <state>/images/default/.tmp-*      a build in progress (or a killed one)
 *
 * mmdebstrap runs under a small supervisor process (image_supervise) that keeps
 * the lock until every process of the build is gone, gives the build a private
 * mount namespace so the proc/sys/dev mounts that root mode makes in the target
 * die with it, and stops the build when paddock dies. Whatever a killed build
 * still leaves behind is removed by the next builder, under the lock
 * (image_clean_stale), mounts included. */
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/internal.h"

#define IMAGE_STATE_DEFAULT "/var/lib/paddock"
#define IMAGE_FALLBACK_MIRROR "deb http://deb.debian.org/debian " IMAGE_SUITE " main"
#define IMAGE_MAX_SOURCES_SIZE (1 << 20) /* larger apt sources files are skipped */
#define IMAGE_TERM_GRACE_MS 30000        /* between SIGTERM and SIGKILL to a build */
#define IMAGE_EXIT_SUPERVISOR 125        /* the supervisor itself failed */

const char *image_state_dir(void)
{
	const char *dir = getenv("PADDOCK_STATE_DIR");
	return dir && dir[0] == '/' ? dir : IMAGE_STATE_DEFAULT;
}

char *image_path_join(const char *a, const char *b)
{
	char *p;
	return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* Append str (taken over; freed on failure) to the NULL-terminated vector *v
 * of *n strings. Returns 0 or -ENOMEM. */
static int strv_push(char ***v, size_t *n, char *str)
{
	char **nv = str ? realloc(*v, (*n + 2) * sizeof *nv) : NULL;
	if (!nv) {
		free(str);
		return -ENOMEM;
	}
	nv[(*n)++] = str;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* Whether the whitespace-separated list words contains word. */
static bool words_contain(const char *words, const char *word)
{
	size_t len = strlen(word);
	for (const char *s = words; s && *s;) {
		s += strspn(s, " \t");
		size_t n = strcspn(s, " \t");
		if (n == len && strncmp(s, word, len) == 0)
			return true;
		s += n;
	}
	return false;
}

/* Add "deb URI SUITE main" to the mirror list when the suite is one the
 * default image is built from, the line is new and the list is not full.
 * Returns 0 or -ENOMEM. */
static int mirror_add(char ***v, size_t *n, const char *uri, const char *suite)
{
	static const char *const suites[] = { IMAGE_SUITE, IMAGE_SUITE "-updates",
					      IMAGE_SUITE "-security" };
	bool wanted = false;
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++)
		wanted = wanted || strcmp(suite, suites[i]) == 0;
	if (!wanted || *n >= IMAGE_MAX_MIRRORS)
		return 0;
	char *line;
	if (asprintf(&line, "deb %s %s main", uri, suite) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], line) == 0) {
			free(line);
			return 0;
		}
	return strv_push(v, n, line);
}

/* One line in apt's one-line format: "deb [options] URI SUITE COMPONENT...".
 * Returns 0 or -ENOMEM. */
static int mirror_parse_oneline(char *line, char ***v, size_t *n)
{
	static const char ws[] = " \t\r\n";
	char *save = NULL;
	line[strcspn(line, "#")] = '\0';
	char *type = strtok_r(line, ws, &save);
	if (!type || strcmp(type, "deb") != 0)
		return 0;
	char *tok = strtok_r(NULL, ws, &save);
	if (tok && tok[0] == '[') {
		while (tok && !strchr(tok, ']'))
			tok = strtok_r(NULL, ws, &save);
		tok = tok ? strtok_r(NULL, ws, &save) : NULL;
	}
	char *uri = tok;
	char *suite = uri ? strtok_r(NULL, ws, &save) : NULL;
	bool main = false;
	for (char *c = suite ? strtok_r(NULL, ws, &save) : NULL; c; c = strtok_r(NULL, ws, &save))
		main = main || strcmp(c, "main") == 0;
	return main ? mirror_add(v, n, uri, suite) : 0;
}

/* A deb822 stanza being read; only the fields that decide which mirror lines
 * it contributes are kept. */
struct deb822_stanza {
	char *types, *uris, *suites, *components;
	bool disabled;
	char **field; /* the field continuation lines extend, or NULL */
};

static void deb822_reset(struct deb822_stanza *s)
{
	free(s->types);
	free(s->uris);
	free(s->suites);
	free(s->components);
	*s = (struct deb822_stanza){ 0 };
}

/* Set (or, for a continuation line, extend) a field value. Returns 0 or -ENOMEM. */
static int deb822_set(char **field, const char *value, bool extend)
{
	char *nv;
	if (extend && *field) {
		if (asprintf(&nv, "%s %s", *field, value) < 0)
			return -ENOMEM;
	} else if (!(nv = strdup(value))) {
		return -ENOMEM;
	}
	free(*field);
	*field = nv;
	return 0;
}

/* The mirror lines a finished stanza contributes. Returns 0 or -ENOMEM. */
static int deb822_emit(const struct deb822_stanza *s, char ***v, size_t *n)
{
	if (s->disabled || !s->uris || !s->suites || !words_contain(s->types, "deb") ||
	    !words_contain(s->components, "main"))
		return 0;
	_cleanup_free_ char *uris = strdup(s->uris);
	if (!uris)
		return -ENOMEM;
	char *save_u = NULL;
	for (char *u = strtok_r(uris, " \t", &save_u); u; u = strtok_r(NULL, " \t", &save_u)) {
		_cleanup_free_ char *suites = strdup(s->suites);
		if (!suites)
			return -ENOMEM;
		char *save_s = NULL;
		for (char *st = strtok_r(suites, " \t", &save_s); st;
		     st = strtok_r(NULL, " \t", &save_s)) {
			int r = mirror_add(v, n, u, st);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* One line of a deb822 .sources file, with the stanza it belongs to. A blank
 * line ends the stanza. Returns 0 or -ENOMEM. */
static int deb822_line(char *line, struct deb822_stanza *s, char ***v, size_t *n)
{
	line[strcspn(line, "\r\n")] = '\0';
	if (line[strspn(line, " \t")] == '\0') {
		int r = deb822_emit(s, v, n);
		deb822_reset(s);
		return r;
	}
	if (line[0] == '#')
		return 0;
	if (line[0] == ' ' || line[0] == '\t')
		return s->field ? deb822_set(s->field, line + strspn(line, " \t"), true) : 0;
	char *colon = strchr(line, ':');
	s->field = NULL;
	if (!colon)
		return 0;
	*colon = '\0';
	char *value = colon + 1 + strspn(colon + 1, " \t");
	for (size_t end = strlen(value); end > 0 && strchr(" \t", value[end - 1]); end--)
		value[end - 1] = '\0';
	if (strcasecmp(line, "Enabled") == 0) {
		s->disabled = !strcasecmp(value, "no") || !strcasecmp(value, "false") ||
			      !strcmp(value, "0");
		return 0;
	}
	if (strcasecmp(line, "Types") == 0)
		s->field = &s->types;
	else if (strcasecmp(line, "URIs") == 0)
		s->field = &s->uris;
	else if (strcasecmp(line, "Suites") == 0)
		s->field = &s->suites;
	else if (strcasecmp(line, "Components") == 0)
		s->field = &s->components;
	return s->field ? deb822_set(s->field, value, false) : 0;
}

/* Read one apt sources file (deb822 when deb822 is set) into the mirror list.
 * Files that cannot be read or are implausibly large are skipped: the host's
 * apt configuration is only a hint for where the mirror is. Returns 0 or
 * -ENOMEM. */
static int mirror_read_file(const char *path, bool deb822, char ***v, size_t *n)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct stat st;
	if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > IMAGE_MAX_SOURCES_SIZE)
		return 0;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	struct deb822_stanza s = { 0 };
	int r = 0;
	while (r == 0 && getline(&line, &cap, f) >= 0)
		r = deb822 ? deb822_line(line, &s, v, n) : mirror_parse_oneline(line, v, n);
	if (r == 0 && deb822)
		r = deb822_emit(&s, v, n);
	deb822_reset(&s);
	return r;
}

/* apt's rule for the files it reads from sources.list.d: [A-Za-z0-9_.-] only. */
static int sources_name_ok(const struct dirent *e)
{
	const char *name = e->d_name;
	if (name[0] == '.' || name[strspn(name, "abcdefghijklmnopqrstuvwxyz"
					      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")] != '\0')
		return 0;
	size_t len = strlen(name);
	return (len > 5 && strcmp(name + len - 5, ".list") == 0) ||
	       (len > 8 && strcmp(name + len - 8, ".sources") == 0);
}

int image_mirrors(const char *etc_apt, char ***out, struct pd_err *err)
{
	_cleanup_strv_ char **v = NULL;
	size_t n = 0;
	_cleanup_free_ char *list = image_path_join(etc_apt, "sources.list");
	_cleanup_free_ char *dir = image_path_join(etc_apt, "sources.list.d");
	if (!list || !dir || mirror_read_file(list, false, &v, &n) < 0)
		return pd_err_set(err, ENOMEM, "image", "reading the apt sources in %s", etc_apt);

	struct dirent **ents = NULL;
	int count = scandir(dir, &ents, sources_name_ok, alphasort);
	int r = 0;
	for (int i = 0; i < count; i++) {
		const char *name = ents[i]->d_name;
		_cleanup_free_ char *path = image_path_join(dir, name);
		bool deb822 = strlen(name) > 8 && strcmp(name + strlen(name) - 8, ".sources") == 0;
		if (r == 0 && (!path || mirror_read_file(path, deb822, &v, &n) < 0))
			r = -ENOMEM;
		free(ents[i]);
	}
	free(ents);
	if (r < 0)
		return pd_err_set(err, ENOMEM, "image", "reading the apt sources in %s", dir);

	/* Updates and security alone cannot bootstrap: put the main archive first. */
	static const char base[] = " " IMAGE_SUITE " main";
	bool have_base = false;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]), blen = sizeof base - 1;
		have_base = have_base || (len > blen && strcmp(v[i] + len - blen, base) == 0);
	}
	if (!have_base) {
		if (strv_push(&v, &n, strdup(IMAGE_FALLBACK_MIRROR)) < 0)
			return pd_err_set(err, ENOMEM, "image", "reading the apt sources");
		char *fallback = v[n - 1];
		memmove(v + 1, v, (n - 1) * sizeof *v);
		v[0] = fallback;
	}
	*out = steal_ptr(&v);
	return (int)n;
}

/* Decode the octal escapes (\040 for a space...) of a /proc/self/mountinfo field. */
static void mountinfo_unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Detach every mount at or below root (a canonical path), last mounted first.
 * A root-mode mmdebstrap that was killed outside a private mount namespace
 * leaves its proc, sys and dev mounts in the target. Returns 0 or < 0 with err
 * filled. */
static int image_umount_under(const char *root, struct pd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return pd_err_errno(err, "image", "cannot read /proc/self/mountinfo");
	_cleanup_strv_ char **mounts = NULL;
	size_t n = 0, len = strlen(root);
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) >= 0) {
		/* Fields: id parent major:minor root mount-point options ... */
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		mountinfo_unescape(field);
		if (strncmp(field, root, len) != 0 || (field[len] != '/' && field[len] != '\0'))
			continue;
		if (strv_push(&mounts, &n, strdup(field)) < 0)
			return pd_err_set(err, ENOMEM, "image", "reading /proc/self/mountinfo");
	}
	for (size_t i = n; i-- > 0;)
		if (umount2(mounts[i], MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL &&
		    errno != ENOENT)
			return pd_err_errno(err, "image", "cannot unmount %s", mounts[i]);
	return 0;
}

/* nftw callback: remove one entry; directories come after their contents. */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = type == FTW_DP || type == FTW_DNR ? rmdir(path) : unlink(path);
	return r < 0 ? (errno ? errno : EIO) : 0;
}

/* Device nodes are just unlinked; see internal.h. */
int image_remove_tree(const char *path, struct pd_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : pd_err_errno(err, "image", "cannot stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? pd_err_errno(err, "image", "cannot remove %s", path) : 0;
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real)
		return pd_err_errno(err, "image", "cannot resolve %s", path);
	int r = image_umount_under(real, err);
	if (r < 0)
		return r;
	r = nftw(real, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r != 0)
		return pd_err_set(err, r > 0 ? r : (errno ? errno : EIO), "image",
				  "cannot remove %s", real);
	return 0;
}

void image_report(image_progress_fn progress, void *ctx, const char *line)
{
	if (progress)
		progress(ctx, line);
}

int image_mkdir_p(const char *dir, struct pd_err *err)
{
	_cleanup_free_ char *p = strdup(dir);
	if (!p)
		return pd_err_set(err, ENOMEM, "image", "creating %s", dir);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return pd_err_errno(err, "image", "cannot create %s", p);
		*s = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return pd_err_set(err, ENOTDIR, "image", "cannot use %s", dir);
	return 0;
}

int image_lock(const char *path, bool wait, const char *what, image_progress_fn progress,
	       void *ctx, struct pd_err *err)
{
	bool told = false;
	for (;;) {
		_cleanup_close_ int fd =
			open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return pd_err_errno(err, "image", "cannot open the lock %s", path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				return pd_err_errno(err, "image", "cannot lock %s", path);
			if (!wait) {
				pd_err_set(err, EWOULDBLOCK, "image", "%s is busy: another paddock "
								      "is building it", what);
				return -EWOULDBLOCK;
			}
			if (!told) {
				char line[256];
				snprintf(line, sizeof line,
					 "I: waiting for another paddock to finish building %s", what);
				image_report(progress, ctx, line);
				told = true;
			}
			while (flock(fd, LOCK_EX) < 0)
				if (errno != EINTR)
					return pd_err_errno(err, "image", "cannot lock %s", path);
		}
		/* Whoever removes an image unlinks its lock with the lock held: a
		 * lock on a file no longer at path protects nothing. */
		struct stat held, now;
		if (fstat(fd, &held) < 0)
			return pd_err_errno(err, "image", "cannot stat the lock %s", path);
		if (lstat(path, &now) == 0 && now.st_dev == held.st_dev && now.st_ino == held.st_ino)
			return steal_fd(&fd);
	}
}

void image_paths_free(struct image_paths *p)
{
	free(p->dir);
	free(p->rootfs);
	free(p->marker);
	free(p->log);
	free(p->lock);
}

int image_paths_init(struct image_paths *p, const char *name, struct pd_err *err)
{
	const char *state = image_state_dir();
	if (asprintf(&p->dir, "%s/images/%s", state, name) < 0)
		p->dir = NULL;
	if (asprintf(&p->lock, "%s/images/%s.lock", state, name) < 0)
		p->lock = NULL;
	if (p->dir) {
		p->rootfs = image_path_join(p->dir, "rootfs");
		p->marker = image_path_join(p->dir, "ok");
		p->log = image_path_join(p->dir, "build.log");
	}
	if (!p->dir || !p->lock || !p->rootfs || !p->marker || !p->log)
		return pd_err_set(err, ENOMEM, "image", "locating image %s", name);
	return 0;
}

bool image_ready(const struct image_paths *p)
{
	struct stat st;
	return lstat(p->marker, &st) == 0 && S_ISREG(st.st_mode) && lstat(p->rootfs, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

int image_clean_tmp(const struct image_paths *p, struct pd_err *err)
{
	_cleanup_closedir_ DIR *d = opendir(p->dir);
	if (!d)
		return pd_err_errno(err, "image", "cannot read %s", p->dir);
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (strncmp(e->d_name, ".tmp-", 5) != 0)
			continue;
		_cleanup_free_ char *path = image_path_join(p->dir, e->d_name);
		if (!path)
			return pd_err_set(err, ENOMEM, "image", "cleaning %s", p->dir);
		int r = image_remove_tree(path, err);
		if (r < 0) {
			pd_err_prefix(err, "removing what an interrupted build left");
			return r;
		}
	}
	if (errno)
		return pd_err_errno(err, "image", "cannot read %s", p->dir);
	return 0;
}

int image_clean_stale(const struct image_paths *p, struct pd_err *err)
{
	int r = image_clean_tmp(p, err);
	if (r < 0)
		return r;
	if (unlink(p->marker) < 0 && errno != ENOENT)
		return pd_err_errno(err, "image", "cannot remove %s", p->marker);
	return image_remove_tree(p->rootfs, err);
}

char *image_find_exe(const char *name)
{
	_cleanup_free_ char *path = strdup(IMAGE_PATH);
	char *save = NULL;
	for (char *dir = path ? strtok_r(path, ":", &save) : NULL; dir;
	     dir = strtok_r(NULL, ":", &save)) {
		char *exe = image_path_join(dir, name);
		struct stat st;
		if (exe && stat(exe, &st) == 0 && S_ISREG(st.st_mode) && access(exe, X_OK) == 0)
			return exe;
		free(exe);
	}
	return NULL;
}

/* In the forked supervisor; only async-signal-safe calls from here on, as the
 * caller may have threads. Starts exe as the leader of a new process group in
 * a private mount namespace, stderr to err_w, and waits for it. Keeps lock_fd
 * open (and with it the build lock) until the whole group is gone. If paddock
 * dies (life_r reads EOF) it stops the group with SIGTERM, and SIGKILL after
 * a grace period, so mmdebstrap can unmount what it mounted. Exits with the
 * command's exit status, or 128 + the signal that ended it. */
static _Noreturn void image_supervise(const char *exe, char *const argv[], char *const envp[],
				      int nul, int err_w, int life_r, int lock_fd)
{
	enum { FD_ERR = 3, FD_LIFE, FD_LOCK, FD_FIRST_UNUSED };
	/* 1. fds: stdio on /dev/null, the three we keep at 3..5, nothing else. */
	int keep[] = { nul, err_w, life_r, lock_fd };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if ((keep[i] = fcntl(keep[i], F_DUPFD, 10)) < 0)
			_exit(IMAGE_EXIT_SUPERVISOR);
	if (dup2(keep[0], 0) < 0 || dup2(keep[0], 1) < 0 || dup2(keep[0], 2) < 0 ||
	    dup2(keep[1], FD_ERR) < 0 || dup2(keep[2], FD_LIFE) < 0 || dup2(keep[3], FD_LOCK) < 0 ||
	    close_range(FD_FIRST_UNUSED, ~0U, 0) < 0)
		_exit(IMAGE_EXIT_SUPERVISOR);

	/* 2. Signals: default handlers, but the terminal's signals reach paddock,
	 * and paddock's death is what stops the build (step 5). */
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	static const int ignored[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
		sigaction(ignored[i], &ign, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* 3. Best effort: a private mount namespace, so the mounts mmdebstrap makes
	 * in the target end with the build. Without one, image_umount_under()
	 * cleans up after a killed build. */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

	/* 4. The command, leading its own process group. */
	pid_t child = fork();
	if (child < 0)
		_exit(IMAGE_EXIT_SUPERVISOR);
	if (child == 0) {
		static const char msg[] = "E: paddock: cannot execute mmdebstrap\n";
		for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
			sigaction(ignored[i], &dfl, NULL);
		setpgid(0, 0);
		umask(022); /* the tree's modes must not depend on the caller's umask */
		if (dup2(FD_ERR, 2) < 0 || close_range(FD_ERR, ~0U, 0) < 0)
			_exit(127);
		execve(exe, argv, envp);
		(void)!write(2, msg, sizeof msg - 1);
		_exit(127);
	}
	setpgid(child, child);
	close(FD_ERR);

	/* 5. Wait for the command to end, or for paddock to go away. */
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	struct pollfd pfd[2] = { { pidfd, POLLIN, 0 }, { FD_LIFE, POLLIN, 0 } };
	while (pidfd >= 0) {
		int r = poll(pfd, 2, -1);
		if ((r < 0 && errno != EINTR) || (r > 0 && pfd[0].revents))
			break;
		if (r > 0 && pfd[1].revents) {
			kill(-child, SIGTERM);
			while (poll(pfd, 1, IMAGE_TERM_GRACE_MS) < 0 && errno == EINTR)
				;
			break;
		}
	}
	/* 6. The leader is gone (a zombie, so its pid cannot be reused yet), or the
	 * grace period is over: nothing in its group may outlive it. */
	int status = 0;
	if (pidfd >= 0)
		kill(-child, SIGKILL);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			_exit(IMAGE_EXIT_SUPERVISOR);
	if (pidfd < 0)
		kill(-child, SIGKILL);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Start exe under image_supervise() with its stderr into a pipe. Returns the
 * supervisor's pid, the pipe's read end in *out_r and the life pipe's write end
 * in *life_w (close it to stop the build), or < 0 with err filled. */
static pid_t image_spawn(const char *exe, char *const argv[], char *const envp[], int lock_fd,
			 int *out_r, int *life_w, struct pd_err *err)
{
	int out[2], life[2];
	_cleanup_close_ int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0)
		return pd_err_errno(err, "image", "cannot open /dev/null");
	if (pipe2(out, O_CLOEXEC) < 0)
		return pd_err_errno(err, "image", "pipe");
	if (pipe2(life, O_CLOEXEC) < 0) {
		int r = pd_err_errno(err, "image", "pipe");
		close(out[0]);
		close(out[1]);
		return r;
	}
	/* No handler of ours may run in the child before it resets them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		image_supervise(exe, argv, envp, nul, out[1], life[0], lock_fd);
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(out[1]);
	close(life[0]);
	if (pid < 0) {
		close(out[0]);
		close(life[1]);
		errno = saved;
		return pd_err_errno(err, "image", "cannot start mmdebstrap: fork");
	}
	*out_r = out[0];
	*life_w = life[1];
	return pid;
}

/* One complete output line: to progress if it is an I:, W: or E: line (any
 * line with t->all_lines), and into the tail. */
static void tail_line(struct image_tail *t, image_progress_fn progress, void *ctx)
{
	if (t->len > 0 && t->cur[t->len - 1] == '\r')
		t->len--;
	t->cur[t->len] = '\0';
	if (t->all_lines ||
	    ((t->cur[0] == 'I' || t->cur[0] == 'W' || t->cur[0] == 'E') && t->cur[1] == ':'))
		image_report(progress, ctx, t->cur);
	memcpy(t->lines[t->next], t->cur, t->len + 1);
	t->next = (t->next + 1) % IMAGE_TAIL;
	if (t->count < IMAGE_TAIL)
		t->count++;
	t->len = 0;
}

/* A line longer than IMAGE_LINE_MAX is cut. */
void image_tail_feed(struct image_tail *t, const char *buf, size_t n, image_progress_fn progress,
		      void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			if (!t->cut)
				tail_line(t, progress, ctx);
			t->cut = false;
		} else if (!t->cut) {
			t->cur[t->len++] = buf[i];
			if (t->len == IMAGE_LINE_MAX - 1) {
				tail_line(t, progress, ctx);
				t->cut = true;
			}
		}
	}
}

void image_tail_flush(struct image_tail *t, image_progress_fn progress, void *ctx)
{
	if (t->len > 0 && !t->cut)
		tail_line(t, progress, ctx);
	t->len = 0;
	t->cut = false;
}

const char *image_tail_line(const struct image_tail *t, size_t n, size_t i)
{
	if (n > t->count)
		n = t->count;
	if (i >= n)
		return NULL;
	return t->lines[(t->next + IMAGE_TAIL - n + i) % IMAGE_TAIL];
}

/* mmdebstrap prints apt's own error before its generic "E: ... failed" and
 * "E: mmdebstrap failed to run": the first E: line says why. */
const char *image_tail_reason(const struct image_tail *t)
{
	const char *last = NULL;
	for (size_t i = 0; i < t->count; i++) {
		const char *l = t->lines[(t->next + IMAGE_TAIL - t->count + i) % IMAGE_TAIL];
		if (strncmp(l, "E:", 2) == 0)
			return l;
		if (l[strspn(l, " \t")])
			last = l;
	}
	return last ? last : "no output";
}

int image_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int image_mmdebstrap(char **exe, char ***mirrors, const char *what, struct pd_err *err)
{
	*exe = image_find_exe("mmdebstrap");
	if (!*exe) {
		pd_err_set(err, ENOENT, "image", "mmdebstrap, which builds %s, is not installed",
			   what);
		return pd_err_hint(err, "apt-get install mmdebstrap");
	}
	int n = image_mirrors("/etc/apt", mirrors, err);
	if (n < 0) {
		free(*exe);
		*exe = NULL;
	}
	return n;
}

int image_run(const char *exe, char *const argv[], char *const envp[], int lock_fd,
		     int log_fd, struct image_tail *tail, image_progress_fn progress, void *ctx,
		     struct pd_err *err)
{
	int out = -1;
	_cleanup_close_ int life = -1;
	pid_t pid = image_spawn(exe, argv, envp, lock_fd, &out, &life, err);
	if (pid < 0)
		return (int)pid;
	char buf[4096];
	bool log_ok = log_fd >= 0;
	for (;;) {
		ssize_t n = read(out, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (log_ok && image_write_all(log_fd, buf, (size_t)n) < 0)
			log_ok = false;
		image_tail_feed(tail, buf, (size_t)n, progress, ctx);
	}
	image_tail_flush(tail, progress, ctx);
	close(out); /* a read error must not leave the build blocked on a full pipe */
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return pd_err_errno(err, "image", "waiting for mmdebstrap");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int image_write_file(const char *path, const char *text, size_t len, struct pd_err *err)
{
	/* The temporary name starts with .tmp- so that a stale one is swept. */
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_free_ char *tmp = NULL;
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (!slash)
		return pd_err_set(err, ENOMEM, "image", "writing %s", path);
	*slash = '\0';
	if (asprintf(&tmp, "%s/.tmp-%s-%ld", dir, slash + 1, (long)getpid()) < 0)
		return pd_err_set(err, ENOMEM, "image", "writing %s", path);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				      0600);
	if (fd < 0 || image_write_all(fd, text, len) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
		int r = pd_err_errno(err, "image", "cannot write %s", path);
		unlink(tmp);
		return r;
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return pd_err_errno(err, "image", "cannot sync %s", dir);
	return 0;
}

/* The marker is written last, through a synced temporary file, so it exists
 * only once the tree it vouches for is on disk. */
int image_publish(const struct image_paths *p, const char *dir, const char *marker_text,
		  struct pd_err *err)
{
	_cleanup_free_ char *ws = image_path_join(dir, "workspace");
	if (!ws)
		return pd_err_set(err, ENOMEM, "image", "finishing image %s", p->dir);
	struct stat st;
	if (mkdir(ws, 0755) < 0 && (errno != EEXIST || lstat(ws, &st) < 0 || !S_ISDIR(st.st_mode)))
		return pd_err_errno(err, "image", "cannot create %s", ws);
	if (chmod(ws, 0755) < 0 || chmod(dir, 0755) < 0)
		return pd_err_errno(err, "image", "cannot set the mode of %s", ws);
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0)
		return pd_err_errno(err, "image", "cannot sync %s", dir);
	if (rename(dir, p->rootfs) < 0)
		return pd_err_errno(err, "image", "cannot rename %s to %s", dir, p->rootfs);
	return image_write_file(p->marker, marker_text, strlen(marker_text), err);
}

/* The error for a failed mmdebstrap run. Returns -EIO. */
static int image_build_failed(const struct image_paths *p, int status,
			      const struct image_tail *tail, struct pd_err *err)
{
	pd_err_set(err, 0, "image",
		   "building the default image with mmdebstrap failed (exit %d): %s", status,
		   image_tail_reason(tail));
	pd_err_hint(err, "check that the Debian mirror is reachable; the full log is in %s",
		    p->log);
	return -EIO;
}

static const char default_marker[] = "paddock default image: Debian " IMAGE_SUITE
				     " minbase + " IMAGE_INCLUDE
				     ", mmdebstrap, SOURCE_DATE_EPOCH=" IMAGE_EPOCH "\n";

/* Build the default image with the lock held (lock_fd) and nothing stale left.
 * Returns 0 or < 0 with err filled; a failed build leaves no tree behind. */
static int default_build(const struct image_paths *p, int lock_fd, image_progress_fn progress,
		       void *ctx, struct pd_err *err)
{
	if (geteuid() != 0) {
		pd_err_set(err, EPERM, "image", "building the default image needs root");
		return pd_err_hint(err, "run paddock once as root to build it, "
					"or pass an image directory");
	}
	_cleanup_free_ char *exe = NULL;
	_cleanup_strv_ char **mirrors = NULL;
	int n = image_mmdebstrap(&exe, &mirrors, "the default image", err);
	if (n < 0)
		return n;

	char name[64], tmpname[64];
	snprintf(name, sizeof name, ".tmp-%ld", (long)getpid());
	snprintf(tmpname, sizeof tmpname, ".tmp-%ld-tmpdir", (long)getpid());
	_cleanup_free_ char *dir = image_path_join(p->dir, name);
	_cleanup_free_ char *tmpdir = image_path_join(p->dir, tmpname);
	_cleanup_free_ char *tmpenv = NULL;
	if (!dir || !tmpdir || asprintf(&tmpenv, "TMPDIR=%s", tmpdir) < 0)
		return pd_err_set(err, ENOMEM, "image", "building the default image");
	if (mkdir(dir, 0755) < 0)
		return pd_err_errno(err, "image", "cannot create %s", dir);
	if (mkdir(tmpdir, 0700) < 0)
		return pd_err_errno(err, "image", "cannot create %s", tmpdir);

	const char *argv[16 + IMAGE_MAX_MIRRORS] = {
		"mmdebstrap", "--mode=root", "--variant=minbase", "--include=" IMAGE_INCLUDE,
		"--format=directory", "--aptopt=Acquire::Retries \"3\"", "--", IMAGE_SUITE, dir,
	};
	size_t argc = 9;
	for (int i = 0; i < n; i++)
		argv[argc++] = mirrors[i];
	const char *envp[] = {
		"PATH=" IMAGE_PATH, "LC_ALL=C", "SOURCE_DATE_EPOCH=" IMAGE_EPOCH,
		"DEBIAN_FRONTEND=noninteractive", tmpenv, NULL,
	};

	_cleanup_free_ struct image_tail *tail = calloc(1, sizeof *tail);
	if (!tail)
		return pd_err_set(err, ENOMEM, "image", "building the default image");
	_cleanup_close_ int log_fd =
		open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	image_report(progress, ctx, "I: building the default image (Debian 12) with mmdebstrap; "
				    "this happens once");
	int status = image_run(exe, (char *const *)argv, (char *const *)envp, lock_fd, log_fd, tail,
			       progress, ctx, err);
	/* Best effort, and the error released: the next build sweeps .tmp-* anyway. */
	struct pd_err ignored;
	image_remove_tree(tmpdir, &ignored);
	int r = status;
	if (status == 0)
		r = image_publish(p, dir, default_marker, err);
	else if (status > 0)
		r = image_build_failed(p, status, tail, err);
	if (r < 0)
		image_remove_tree(dir, &ignored);
	return r;
}

/* image_default() with an errno-style result: 0 and a malloc'd path in *out,
 * or < 0 with err filled. */
static int image_default_path(image_progress_fn progress, void *ctx, char **out,
			      struct pd_err *err)
{
	__attribute__((cleanup(image_paths_free))) struct image_paths p = { 0 };
	int r = image_paths_init(&p, "default", err);
	if (r < 0)
		return r;
	if (!image_ready(&p)) {
		_cleanup_free_ char *images = strdup(p.dir);
		if (!images)
			return pd_err_set(err, ENOMEM, "image", "locating the default image");
		*strrchr(images, '/') = '\0';
		if ((r = image_mkdir_p(images, err)) < 0)
			return r;
		_cleanup_close_ int lock =
			image_lock(p.lock, true, "the default image", progress, ctx, err);
		if (lock < 0)
			return lock;
		/* Another paddock may have built it while we waited for the lock. */
		if (!image_ready(&p) &&
		    ((r = image_mkdir_p(p.dir, err)) < 0 || (r = image_clean_stale(&p, err)) < 0 ||
		     (r = default_build(&p, lock, progress, ctx, err)) < 0))
			return r;
	}
	char *path = strdup(p.rootfs);
	if (!path)
		return pd_err_set(err, ENOMEM, "image", "locating the default image");
	*out = path;
	return 0;
}

char *image_default(image_progress_fn progress, void *ctx, struct pd_err *err)
{
	char *path = NULL;
	return image_default_path(progress, ctx, &path, err) < 0 ? NULL : path;
}

/* Whether the directory dfd holds a root filesystem: bin/sh resolves inside
 * it (symlinks taken relative to it, as in the sandbox) to a non-directory.
 * Kernels without openat2() get the weaker check for bin or usr/bin. */
static bool image_has_shell(int dfd)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dfd, "bin/sh", &how, sizeof how);
	if (fd < 0 && errno == ENOSYS) {
		struct stat st;
		if (fstatat(dfd, "bin", &st, AT_SYMLINK_NOFOLLOW) == 0)
			return true;
		return fstatat(dfd, "usr/bin", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		       S_ISDIR(st.st_mode);
	}
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode);
	if (fd >= 0)
		close(fd);
	return ok;
}

int image_resolve(const char *path_or_null, char **out, image_progress_fn progress, void *ctx,
		  struct pd_err *err)
{
	if (!path_or_null)
		return image_default_path(progress, ctx, out, err);
	_cleanup_free_ char *real = realpath(path_or_null, NULL);
	if (!real) {
		if (errno == ENOENT)
			pd_err_set(err, ENOENT, "image", "image '%s' does not exist", path_or_null);
		else
			pd_err_errno(err, "image", "cannot resolve image '%s'", path_or_null);
		return pd_err_hint(err, "pass a directory holding a root filesystem, "
					"or none for the default Debian 12 image");
	}
	_cleanup_close_ int dfd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !image_has_shell(dfd)) {
		pd_err_set(err, 0, "image", "image '%s' is not a root filesystem directory (no /bin/sh)",
			   path_or_null);
		return pd_err_hint(err, "pass a directory holding an unpacked root filesystem, "
					"or none for the default Debian 12 image");
	}
	*out = steal_ptr(&real);
	return 0;
}
