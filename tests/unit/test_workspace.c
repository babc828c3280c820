/* test_workspace.c: /workspace from a git repository (clone + uncommitted
 * changes, source left untouched, hostile config not run), from a repository
 * without commits, and from a plain directory. Needs root (chown) and git. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/workspace.h"

#define OWNER 12345
#define SRC_OWNER 4242

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define SH_OK(...)                                                               \
	do {                                                                     \
		if (sh(__VA_ARGS__) != 0)                                        \
			fail_msg("command failed at %s:%d", __FILE__, __LINE__); \
	} while (0)

/* stdout of a shell command, trailing newlines removed (caller frees). */
static char *out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *out(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	char tmp[4096];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, p)) > 0)
		fwrite(tmp, 1, k, m);
	pclose(p);
	fclose(m);
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return buf;
}

static char *slurp(const char *dir, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 4096);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 4095, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *dir, const char *rel)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static void assert_file(const char *dir, const char *rel, const char *content)
{
	_cleanup_free_ char *got = slurp(dir, rel);
	if (!got)
		fail_msg("%s/%s is missing", dir, rel);
	if (strcmp(got, content) != 0)
		fail_msg("%s/%s: got \"%s\", want \"%s\"", dir, rel, got, content);
}

static int owner_bad;
static int check_owner_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag;
	(void)f;
	if (st->st_uid != OWNER || st->st_gid != OWNER) {
		fprintf(stderr, "not owned by %d: %s (%u:%u)\n", OWNER, path, (unsigned)st->st_uid,
			(unsigned)st->st_gid);
		owner_bad++;
	}
	return 0;
}

static void assert_owned(const char *dir)
{
	owner_bad = 0;
	assert_int_equal(nftw(dir, check_owner_cb, 32, FTW_PHYS), 0);
	assert_int_equal(owner_bad, 0);
}

struct fx {
	char src[64];
	char dest[64];
	int dest_fd;
	char dest_path[64]; /* /proc/<pid>/fd/<n>, as the sandbox passes it */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->src, sizeof f->src, "/tmp/pd-ws-src-XXXXXX");
	snprintf(f->dest, sizeof f->dest, "/tmp/pd-ws-dest-XXXXXX");
	assert_non_null(mkdtemp(f->src));
	assert_non_null(mkdtemp(f->dest));
	f->dest_fd = open(f->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dest_fd >= 0);
	snprintf(f->dest_path, sizeof f->dest_path, "/proc/%ld/fd/%d", (long)getpid(), f->dest_fd);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	close(f->dest_fd);
	sh("rm -rf '%s' '%s'", f->src, f->dest);
	free(f);
	return 0;
}

static int populate(struct fx *f, const char *src, const char *const *unmask, struct pd_err *err)
{
	memset(err, 0, sizeof *err);
	int r = workspace_populate(src, f->dest_fd, f->dest_path, OWNER, OWNER, unmask, err);
	if (r < 0) {
		char buf[1200];
		fprintf(stderr, "workspace_populate: %s\n", pd_err_format(err, buf, sizeof buf));
	}
	return r;
}

/* Everything about the source's .git that a write would change: names,
 * sizes, modes, owners, mtimes, and the content of every file. */
static char *snapshot(const char *repo)
{
	return out("cd '%s' && find .git -printf '%%p|%%y|%%s|%%m|%%U|%%G|%%T@\\n' | LC_ALL=C sort "
		   "&& find .git -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum "
		   "&& stat -c '%%Y %%y' .git/index && ls -laR --full-time .git",
		   repo);
}

static void test_git_repo(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q -b main && printf 'keep\\n' > mod && printf 'gone\\n' > del "
	      "&& printf 'one\\n' > tracked && printf 'ignored.txt\\nbuild/\\n' > .gitignore "
	      "&& mkdir dir && printf 'in dir\\n' > dir/f && git add . && git commit -qm init "
	      "&& printf 'changed\\n' > mod && rm del && printf 'new\\n' > untracked "
	      "&& printf 'ign\\n' > ignored.txt && mkdir build && printf 'b\\n' > build/out "
	      "&& printf 'staged\\n' > staged && git add staged && printf 'SECRET=1\\n' > .env "
	      "&& mkdir -p sub/.ssh && printf 'deep\\n' > sub/file && printf 'k\\n' > sub/.ssh/id "
	      "&& ln -s tracked link && chmod 755 tracked && rm -rf dir && ln -s /etc dir "
	      "&& mkfifo fifo && printf 'same\\n' > same && git add same && git commit -qm same "
	      "&& touch -d 2001-01-01 same && git config core.untrackedCache true "
	      "&& git update-index --untracked-cache "
	      "&& chown -R %d:%d .",
	      f->src, SRC_OWNER, SRC_OWNER);
	_cleanup_free_ char *head = out("git -C '%s' rev-parse HEAD", f->src);
	_cleanup_free_ char *before = snapshot(f->src);
	assert_true(strlen(head) == 40);

	/* A subdirectory of the work tree: the whole repository is used. */
	char sub[128];
	snprintf(sub, sizeof sub, "%s/sub", f->src);
	struct pd_err err;
	assert_int_equal(populate(f, sub, NULL, &err), 0);
	assert_owned(f->dest); /* first: the checks below run git in dest as root */

	_cleanup_free_ char *after = snapshot(f->src);
	assert_string_equal(before, after);

	const char *d = f->dest;
	_cleanup_free_ char *msg = out("git -C '%s' log -1 --format=%%s", d);
	assert_string_equal(msg, "paddock: uncommitted changes");
	_cleanup_free_ char *parent = out("git -C '%s' rev-parse HEAD^", d);
	assert_string_equal(parent, head);
	_cleanup_free_ char *count = out("git -C '%s' rev-list --count HEAD", d);
	assert_string_equal(count, "3");
	_cleanup_free_ char *remotes = out("git -C '%s' remote", d);
	assert_string_equal(remotes, "");
	_cleanup_free_ char *status = out("git -C '%s' status --porcelain", d);
	assert_string_equal(status, "");
	_cleanup_free_ char *branch = out("git -C '%s' symbolic-ref --short HEAD", d);
	assert_string_equal(branch, "main");

	assert_file(d, "mod", "changed\n");
	assert_file(d, "untracked", "new\n");
	assert_file(d, "staged", "staged\n");
	assert_file(d, "sub/file", "deep\n");
	assert_file(d, "tracked", "one\n");
	assert_file(d, "same", "same\n");
	assert_false(exists(d, "ignored.txt"));
	assert_false(exists(d, "build"));
	assert_false(exists(d, ".env"));
	assert_false(exists(d, "sub/.ssh"));
	assert_false(exists(d, "del"));
	assert_false(exists(d, "fifo"));

	/* Symlinks stay symlinks; the directory that became a symlink to /etc
	 * was not read through. */
	char target[256];
	char path[256];
	snprintf(path, sizeof path, "%s/link", d);
	ssize_t n = readlink(path, target, sizeof target - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "tracked");
	snprintf(path, sizeof path, "%s/dir", d);
	n = readlink(path, target, sizeof target - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/etc");

	/* Mode change carried over and committed. */
	struct stat st;
	snprintf(path, sizeof path, "%s/tracked", d);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	_cleanup_free_ char *mode = out("git -C '%s' ls-files -s tracked | cut -c1-6", d);
	assert_string_equal(mode, "100755");

	/* The host path appears nowhere in the clone's metadata. */
	assert_int_equal(sh("grep -rqF -- '%s' '%s/.git'", f->src, d), 1);
}

/* Names, types, sizes, modes and contents of .git, and the index mtime. */
#define SPLIT_SNAP                                                              \
	"cd '%s' && find .git -printf '%%p|%%y|%%s|%%m\\n' | LC_ALL=C sort "    \
	"&& find .git -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum " \
	"&& stat -c '%%Y' .git/index"

/* Split-index repositories: git freshens the mtime of the shared index file
 * on every read (no option turns that off), but nothing is written. */
static void test_git_split_index(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q && printf 'x\\n' > a && printf 's\\n' > b && git add . "
	      "&& git commit -qm one && git config core.splitIndex true "
	      "&& git update-index --split-index && printf 'y\\n' > a && printf 'u\\n' > u",
	      f->src);
	_cleanup_free_ char *before = out(SPLIT_SNAP, f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	_cleanup_free_ char *after = out(SPLIT_SNAP, f->src);
	assert_string_equal(before, after);
	assert_file(f->dest, "a", "y\n");
	assert_file(f->dest, "u", "u\n");
}

static void test_git_clean_repo_no_extra_commit(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q -b dev && printf 'x\\n' > a && git add a "
	      "&& git commit -qm first && printf 'y\\n' > a && git commit -qam second",
	      f->src);
	_cleanup_free_ char *head = out("git -C '%s' rev-parse HEAD", f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	assert_owned(f->dest);
	_cleanup_free_ char *dhead = out("git -C '%s' rev-parse HEAD", f->dest);
	assert_string_equal(dhead, head);
	_cleanup_free_ char *branch = out("git -C '%s' symbolic-ref --short HEAD", f->dest);
	assert_string_equal(branch, "dev");
	assert_file(f->dest, "a", "y\n");
}

static void test_git_borrowed_objects(void **state)
{
	/* A clone --shared source: the workspace gets its own objects, no
	 * alternates file pointing at a host path. */
	struct fx *f = *state;
	char base[128];
	snprintf(base, sizeof base, "%s/base", f->src);
	SH_OK("cd '%s' && mkdir base && cd base && git init -q && printf '1\\n' > a && git add a "
	      "&& git commit -qm one && printf '2\\n' > a && git commit -qam two && cd .. "
	      "&& git clone -q --shared base alt && printf 'w\\n' > alt/w",
	      f->src);
	char alt[128];
	snprintf(alt, sizeof alt, "%s/alt", f->src);
	struct pd_err err;
	assert_int_equal(populate(f, alt, NULL, &err), 0);
	assert_owned(f->dest);
	assert_false(exists(f->dest, ".git/objects/info/alternates"));
	assert_int_equal(sh("grep -rqF -- '%s' '%s/.git'", f->src, f->dest), 1);
	SH_OK("rm -rf '%s'", base);
	assert_int_equal(
		sh("git -C '%s' fsck --no-dangling --no-progress >/dev/null 2>&1", f->dest), 0);
	_cleanup_free_ char *count = out("git -C '%s' rev-list --count HEAD", f->dest);
	assert_string_equal(count, "3");
	assert_file(f->dest, "w", "w\n");
}

static void test_git_detached_head(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q -b main && printf '1\\n' > a && git add a && git commit -qm "
	      "one "
	      "&& printf '2\\n' > a && git commit -qam two && git checkout -q --detach HEAD~1 "
	      "&& printf 'wip\\n' > b",
	      f->src);
	_cleanup_free_ char *head = out("git -C '%s' rev-parse HEAD", f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	_cleanup_free_ char *parent = out("git -C '%s' rev-parse HEAD^", f->dest);
	assert_string_equal(parent, head);
	assert_file(f->dest, "a", "1\n");
	assert_file(f->dest, "b", "wip\n");
}

static void test_git_unmask(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q && printf 'x\\n' > a && git add a && git commit -qm one "
	      "&& printf 'E\\n' > .env.local && printf 'N\\n' > .npmrc",
	      f->src);
	const char *const unmask[] = { ".env*", NULL };
	struct pd_err err;
	assert_int_equal(populate(f, f->src, unmask, &err), 0);
	assert_file(f->dest, ".env.local", "E\n");
	assert_false(exists(f->dest, ".npmrc"));
}

static void test_hostile_config(void **state)
{
	struct fx *f = *state;
	char marker[64], hook_marker[64];
	snprintf(marker, sizeof marker, "/tmp/pwned-%ld", (long)getpid());
	snprintf(hook_marker, sizeof hook_marker, "/tmp/pwned-hook-%ld", (long)getpid());
	unlink(marker);
	unlink(hook_marker);
	SH_OK("cd '%s' && git init -q && printf 'x\\n' > a && git add a && git commit -qm one "
	      "&& printf 'y\\n' > a && printf 'u\\n' > u "
	      "&& git config core.fsmonitor 'touch %s; false' "
	      "&& git config diff.external 'touch %s' && git config core.pager 'touch %s' "
	      "&& git config core.sshCommand 'touch %s' "
	      "&& printf '#!/bin/sh\\ntouch %s\\n' > .git/hooks/post-checkout "
	      "&& cp .git/hooks/post-checkout .git/hooks/pre-commit "
	      "&& cp .git/hooks/post-checkout .git/hooks/reference-transaction "
	      "&& chmod +x .git/hooks/*",
	      f->src, marker, marker, marker, marker, hook_marker);
	/* The trap is live: plain git in that repository runs it. */
	assert_int_equal(sh("git -C '%s' status >/dev/null 2>&1", f->src), 0);
	assert_true(access(marker, F_OK) == 0);
	unlink(marker);

	_cleanup_free_ char *before = snapshot(f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	_cleanup_free_ char *after = snapshot(f->src);
	assert_string_equal(before, after);
	assert_true(access(marker, F_OK) != 0);
	assert_true(access(hook_marker, F_OK) != 0);
	assert_file(f->dest, "a", "y\n");
	assert_file(f->dest, "u", "u\n");
	unlink(marker);
	unlink(hook_marker);
}

static void test_unborn_repo(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q -b trunk && printf 'x\\n' > .gitignore && printf 'a\\n' > a "
	      "&& printf 'x\\n' > x && printf 's\\n' > s && git add s && printf 'S=1\\n' > .env "
	      "&& mkdir d && printf 'f\\n' > d/f && chown -R %d:%d .",
	      f->src, SRC_OWNER, SRC_OWNER);
	_cleanup_free_ char *before = snapshot(f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	assert_owned(f->dest);
	_cleanup_free_ char *after = snapshot(f->src);
	assert_string_equal(before, after);

	_cleanup_free_ char *branch = out("git -C '%s' symbolic-ref --short HEAD", f->dest);
	assert_string_equal(branch, "trunk");
	_cleanup_free_ char *count = out("git -C '%s' rev-list --count HEAD", f->dest);
	assert_string_equal(count, "1");
	_cleanup_free_ char *msg = out("git -C '%s' log -1 --format=%%s", f->dest);
	assert_string_equal(msg, "paddock: uncommitted changes");
	assert_file(f->dest, "a", "a\n");
	assert_file(f->dest, "s", "s\n");
	assert_file(f->dest, "d/f", "f\n");
	assert_file(f->dest, ".gitignore", "x\n");
	assert_false(exists(f->dest, "x"));
	assert_false(exists(f->dest, ".env"));
}

static void test_plain_dir(void **state)
{
	struct fx *f = *state;
	char outside[64];
	snprintf(outside, sizeof outside, "/tmp/pd-ws-out-XXXXXX");
	assert_non_null(mkdtemp(outside));
	SH_OK("cd '%s' && printf 'a\\n' > a && mkdir -p sub/.ssh sub/deep && printf 'b\\n' > sub/b "
	      "&& printf 'k\\n' > sub/.ssh/id && printf 'E\\n' > .env && printf 'x\\n' > id_rsa "
	      "&& chmod 750 sub && chmod 4755 a && ln -s a link && ln -s '%s' outlink "
	      "&& printf 'o\\n' > '%s/secret' && mkfifo fifo && printf 'z\\n' > sub/deep/z",
	      f->src, outside, outside);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	const char *d = f->dest;
	assert_file(d, "a", "a\n");
	assert_file(d, "sub/b", "b\n");
	assert_file(d, "sub/deep/z", "z\n");
	assert_false(exists(d, ".env"));
	assert_false(exists(d, "id_rsa"));
	assert_false(exists(d, "sub/.ssh"));
	assert_false(exists(d, "fifo"));
	assert_false(exists(d, ".git"));

	char path[256], target[256];
	struct stat st;
	snprintf(path, sizeof path, "%s/outlink", d);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	ssize_t n = readlink(path, target, sizeof target - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, outside);
	snprintf(path, sizeof path, "%s/link", d);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	snprintf(path, sizeof path, "%s/sub", d);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(path, sizeof path, "%s/a", d);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* setuid dropped */
	assert_owned(d);
	sh("rm -rf '%s'", outside);
}

static void test_plain_dir_symlink_root_entries(void **state)
{
	/* The walk must not go through a symlinked directory, even one whose
	 * target holds lots of files. */
	struct fx *f = *state;
	SH_OK("cd '%s' && ln -s / root && ln -s /proc proc", f->src);
	struct pd_err err;
	assert_int_equal(populate(f, f->src, NULL, &err), 0);
	_cleanup_free_ char *listing =
		out("cd '%s' && find . | LC_ALL=C sort | tr '\\n' ' '", f->dest);
	assert_string_equal(listing, ". ./proc ./root ");
}

static void test_plain_dir_too_big(void **state)
{
	/* A sparse 9 GiB file: refused from its size, before any copying. */
	struct fx *f = *state;
	SH_OK("cd '%s' && printf 'a\\n' > a && truncate -s 9G big", f->src);
	struct pd_err err = { 0 };
	assert_true(workspace_populate(f->src, f->dest_fd, f->dest_path, OWNER, OWNER, NULL, &err) <
		    0);
	assert_string_equal(err.layer, "workspace");
	assert_non_null(strstr(err.msg, "8 GiB"));
	assert_non_null(strstr(err.hint, "--workspace none"));
	assert_non_null(strstr(err.hint, "--workspace-mount"));
}

static void test_plain_dir_too_deep(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && for i in $(seq 300); do mkdir d && cd d || exit 1; done", f->src);
	struct pd_err err = { 0 };
	assert_true(workspace_populate(f->src, f->dest_fd, f->dest_path, OWNER, OWNER, NULL, &err) <
		    0);
	assert_string_equal(err.layer, "workspace");
	assert_non_null(strstr(err.msg, "directory levels"));
}

static void test_dest_not_empty(void **state)
{
	struct fx *f = *state;
	SH_OK("touch '%s/stale' && touch '%s/a'", f->dest, f->src);
	struct pd_err err = { 0 };
	assert_true(workspace_populate(f->src, f->dest_fd, f->dest_path, OWNER, OWNER, NULL, &err) <
		    0);
	assert_string_equal(err.layer, "workspace");
	assert_non_null(strstr(err.msg, "not empty"));
}

static void test_foreign_repo_refused(void **state)
{
	/* A repository owned by someone else around a directory of ours is not
	 * taken as the workspace (think of a planted /tmp/.git). */
	struct fx *f = *state;
	SH_OK("cd '%s' && git init -q && printf 'x\\n' > a && git add a && git commit -qm one "
	      "&& mkdir mine && chown -R %d:%d . && chown %d mine",
	      f->src, SRC_OWNER, SRC_OWNER, SRC_OWNER + 1);
	char mine[128];
	snprintf(mine, sizeof mine, "%s/mine", f->src);
	struct pd_err err = { 0 };
	assert_true(workspace_populate(mine, f->dest_fd, f->dest_path, OWNER, OWNER, NULL, &err) <
		    0);
	assert_string_equal(err.layer, "workspace");
	assert_non_null(strstr(err.msg, "owned by uid"));
}

static void test_missing_source(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	assert_true(workspace_populate("/nonexistent/pd", f->dest_fd, f->dest_path, OWNER, OWNER,
				       NULL, &err) < 0);
	assert_string_equal(err.layer, "workspace");
	assert_int_equal(err.code, ENOENT);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_workspace: needs root (chown); skipped\n");
		return 77;
	}
	/* The test's own git calls: no user config; the fixtures are owned by
	 * other uids on purpose. */
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_CONFIG_COUNT", "1", 1);
	setenv("GIT_CONFIG_KEY_0", "safe.directory", 1);
	setenv("GIT_CONFIG_VALUE_0", "*", 1);
	setenv("GIT_AUTHOR_NAME", "t", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@example.invalid", 1);
	setenv("GIT_COMMITTER_NAME", "t", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@example.invalid", 1);
	setenv("LC_ALL", "C", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_git_repo, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_split_index, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_clean_repo_no_extra_commit, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_detached_head, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_borrowed_objects, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_unmask, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_config, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unborn_repo, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plain_dir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plain_dir_symlink_root_entries, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_plain_dir_too_big, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plain_dir_too_deep, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dest_not_empty, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_repo_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_missing_source, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
