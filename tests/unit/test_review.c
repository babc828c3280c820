/* test_review.c: the review gate, host side. An owner repository (owned by
 * a non-root user) and a "sandbox" clone in temp directories; the test plays
 * the sandbox by running git in the clone, with a hostile .git/config, hooks
 * and attributes in it, and makes the bundle with review_export_script().
 * review_bundle_fetch must bring the work as paddock/<name>, run nothing of
 * the sandbox's, touch neither HEAD nor the work tree, and refuse every
 * malformed, oversized, corrupt or over-reaching bundle without creating a
 * ref; review_bundle_diff must show the same work and write nothing at all
 * to the owner's repository. Needs root and git. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/cleanup.h"
#include "review/review.h"

#define OWNER_UID 4242

static char gitcfg[64]; /* the test's own global git config */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[16384];
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
	char cmd[16384];
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

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);
	char tmp[65536];
	size_t k;
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
		fwrite(tmp, 1, k, m);
	fclose(f);
	fclose(m);
	*len = n;
	return buf;
}

static void spew(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* How many /tmp/paddock-review-* directories exist (none may be left). */
static size_t review_tmp_count(void)
{
	glob_t g;
	size_t n = 0;
	if (glob("/tmp/paddock-review-*", 0, NULL, &g) == 0)
		n = g.gl_pathc;
	globfree(&g);
	return n;
}

struct fx {
	char dir[64];     /* holds everything below */
	char owner[96];   /* the owner's repository */
	char sb[96];      /* the sandbox's clone */
	char bundle[96];  /* the exported bundle */
	char evil[96];    /* a script that marks that it ran */
	char pwned[64];   /* marker: something of the sandbox ran on the host */
	char sb_ran[96];  /* marker: the sandbox's trap ran (inside, allowed) */
	char base[65];    /* the commit the sandbox started from */
};

static int group_setup(void **state)
{
	(void)state;
	snprintf(gitcfg, sizeof gitcfg, "/tmp/pd-review-gitconfig-%ld", (long)getpid());
	FILE *f = fopen(gitcfg, "w");
	assert_non_null(f);
	fputs("[safe]\n\tdirectory = *\n[user]\n\tname = t\n\temail = t@t\n"
	      "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
	      f);
	fclose(f);
	/* The test's own git calls; the library sets its own environment. */
	setenv("GIT_CONFIG_GLOBAL", gitcfg, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", "/nonexistent", 1);
	unsetenv("PD_SANDBOX_SIDE");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(gitcfg);
	return 0;
}

/* An owner repository with a dirty work tree, owned by OWNER_UID, and a
 * sandbox clone of it (as the workspace would make: no origin). */
static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/pd-review-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0); /* the owner's git must reach in */
	snprintf(f->owner, sizeof f->owner, "%s/owner", f->dir);
	snprintf(f->sb, sizeof f->sb, "%s/sb", f->dir);
	snprintf(f->bundle, sizeof f->bundle, "%s/paddock.bundle", f->dir);
	snprintf(f->evil, sizeof f->evil, "%s/evil.sh", f->dir);
	snprintf(f->pwned, sizeof f->pwned, "/tmp/pwned-%ld", (long)getpid());
	snprintf(f->sb_ran, sizeof f->sb_ran, "%s/sandbox-ran", f->dir);
	unlink(f->pwned);
	SH_OK("mkdir '%s' && cd '%s' && git init -q && printf 'one\\ntwo\\nthree\\n' > a.txt "
	      "&& printf 'b\\n' > b.txt && git add . && git commit -qm init "
	      "&& printf 'owner wip\\n' >> b.txt && printf 'owner\\n' > untracked.txt "
	      "&& git clone -q '%s' '%s' && git -C '%s' remote remove origin "
	      "&& chown -R %d:%d '%s'",
	      f->owner, f->owner, f->owner, f->sb, f->sb, OWNER_UID, OWNER_UID, f->owner);
	_cleanup_free_ char *base = out("git -C '%s' rev-parse HEAD", f->owner);
	assert_int_equal(strlen(base), 40);
	memcpy(f->base, base, 41);
	/* Marks the host when it runs anywhere but in the test's sandbox role
	 * (the library runs git with a fixed environment, without PD_*). */
	FILE *e = fopen(f->evil, "w");
	assert_non_null(e);
	fprintf(e,
		"#!/bin/sh\nif [ -n \"$PD_SANDBOX_SIDE\" ]; then touch '%s'; "
		"else touch '%s'; fi\nexit 0\n",
		f->sb_ran, f->pwned);
	fclose(e);
	assert_int_equal(chmod(f->evil, 0755), 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	sh("rm -rf '%s'", f->dir);
	unlink(f->pwned);
	free(f);
	return 0;
}

/* Run the export script as the daemon does: `sh -c "$script" sh <base>` in
 * `cwd`, stdout into `bundle`, stderr into `errfile` (or /dev/null), with
 * PD_SANDBOX_SIDE set (the traps know they run inside). Returns the exit
 * status, or -1 if the shell did not exit. */
static int run_export(const char *cwd, const char *base, const char *bundle, const char *errfile)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(bundle, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int e = open(errfile ? errfile : "/dev/null",
			     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(cwd) < 0 ||
		    setenv("PD_SANDBOX_SIDE", "1", 1) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", review_export_script(), "sh", base, (char *)NULL);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The sandbox side: the export script in the clone, into `bundle`,
 * relative to `base`. Returns its exit status. */
static int sandbox_export(struct fx *f, const char *bundle, const char *base)
{
	return run_export(f->sb, base, bundle, NULL);
}

/* An agent's work: three commits (one of them .gitattributes naming hostile
 * drivers), then a changed and a new file left uncommitted. Against base:
 * 4 commits once exported; 5 files, 5 insertions, 1 deletion. */
static void agent_work(struct fx *f)
{
	SH_OK("cd '%s' && printf 'one\\nthree\\nfour\\n' > a.txt && git commit -qam 'agent: one' "
	      "&& printf 'c\\n' > c.txt && git add c.txt && git commit -qm 'agent: two' "
	      "&& printf '* filter=evil diff=evil merge=evil\\n' > .gitattributes "
	      "&& git add .gitattributes && git commit -qm 'agent: attributes' "
	      "&& printf 'agent wip\\n' >> b.txt && printf 'd\\n' > d.txt",
	      f->sb);
}

/* What an agent can do to its repository's config: every command git would
 * run from it (on status, add, diff, fetch, gc, ref updates, transports...)
 * runs the marker script. */
static void plant_hostile_config(struct fx *f)
{
	const char *e = f->evil;
	SH_OK("cd '%s' && mkdir -p .git/evil-hooks "
	      "&& for h in pre-commit post-commit post-checkout post-merge reference-transaction "
	      "pre-auto-gc post-rewrite pre-push fsmonitor-watchman; do "
	      "cp '%s' .git/evil-hooks/$h; cp '%s' .git/hooks/$h; done "
	      "&& chmod +x .git/evil-hooks/* .git/hooks/* && git config core.fsmonitor '%s' "
	      "&& git config core.hooksPath \"$PWD/.git/evil-hooks\" "
	      "&& git config filter.evil.clean '%s && cat' "
	      "&& git config filter.evil.smudge '%s && cat' "
	      "&& git config filter.evil.required true "
	      "&& git config diff.evil.textconv '%s' && git config diff.external '%s' "
	      "&& git config merge.evil.driver '%s' && git config core.pager '%s' "
	      "&& git config core.editor '%s' && git config core.sshCommand '%s' "
	      "&& git config core.askPass '%s' && git config credential.helper '!%s' "
	      "&& git config core.alternateRefsCommand '%s' && git config core.gitProxy '%s' "
	      "&& git config uploadpack.packObjectsHook '%s' "
	      "&& git config protocol.ext.allow always "
	      "&& git config remote.origin.url 'ext::%s' "
	      "&& git config remote.origin.uploadpack '%s' "
	      "&& git config remote.origin.receivepack '%s' "
	      "&& git config gc.auto 1 && git config maintenance.auto true",
	      f->sb, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e);
}

/* Everything of the owner's repository the fetch must not change: HEAD, the
 * index, the config, and the work tree's files. */
static char *owner_state(struct fx *f)
{
	return out("cd '%s' && cat .git/HEAD && sha256sum .git/index .git/config "
		   "&& find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z "
		   "| xargs -0 sha256sum && find . -path ./.git -prune -o -printf '%%p %%m %%U\\n' "
		   "| LC_ALL=C sort",
		   f->owner);
}

static int fetch(struct fx *f, const char *bundle, const char *name,
		 const struct review_limits *lim, struct review_summary *s, struct pd_err *err)
{
	memset(err, 0, sizeof *err);
	int r = review_bundle_fetch(f->owner, bundle, name, lim, s, err);
	if (r < 0) {
		char buf[1200];
		fprintf(stderr, "review_bundle_fetch: %s\n", pd_err_format(err, buf, sizeof buf));
	}
	return r;
}

/* No refs/heads/paddock/... exist in the owner's repository. */
static void assert_no_paddock_ref(struct fx *f)
{
	_cleanup_free_ char *refs =
		out("git -C '%s' for-each-ref --format='%%(refname)' refs/heads/paddock/",
		    f->owner);
	assert_string_equal(refs, "");
}

/* A refused fetch: fails, says `what`, creates no ref, leaves no private
 * directory, and the owner's repository does not have `absent` (if given). */
static void assert_refused(struct fx *f, const char *bundle, const char *name,
			   const struct review_limits *lim, const char *what, const char *absent)
{
	struct review_summary s = { 0 };
	struct pd_err err;
	size_t before = review_tmp_count();
	assert_true(fetch(f, bundle, name, lim, &s, &err) < 0);
	char buf[1200];
	pd_err_format(&err, buf, sizeof buf);
	if (!strstr(buf, what))
		fail_msg("error \"%s\" does not say \"%s\"", buf, what);
	assert_string_equal(s.tip, ""); /* untouched */
	assert_no_paddock_ref(f);
	assert_int_equal(review_tmp_count(), before);
	if (absent)
		assert_int_not_equal(
			sh("git -C '%s' cat-file -e '%s' 2>/dev/null", f->owner, absent), 0);
}

/* review_bundle_check refuses, saying `what`. */
static void assert_check_refused(const char *bundle, const struct review_limits *lim,
				 const char *what)
{
	struct review_bundle_info *info = calloc(1, sizeof *info);
	assert_non_null(info);
	struct pd_err err = { 0 };
	assert_true(review_bundle_check(bundle, lim, info, &err) < 0);
	char buf[1200];
	pd_err_format(&err, buf, sizeof buf);
	if (!strstr(buf, what))
		fail_msg("error \"%s\" does not say \"%s\"", buf, what);
	assert_int_equal(info->version, 0); /* untouched */
	free(info);
}

/* A good bundle of the agent's work (no hostile config). */
static void good_bundle(struct fx *f)
{
	agent_work(f);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), 0);
}

/* A bundle file made of `header` and the pack of the good bundle. */
static void craft(struct fx *f, const char *path, const char *header, size_t hlen)
{
	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	size_t len;
	_cleanup_free_ char *data = slurp(f->bundle, &len);
	FILE *o = fopen(path, "wb");
	assert_non_null(o);
	fwrite(header, 1, hlen, o);
	fwrite(data + info->pack_offset, 1, len - info->pack_offset, o);
	fclose(o);
	free(info);
}

/* ---- the gate works --------------------------------------------------- */

static void test_check_good(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	assert_int_equal(info->version, 2);
	assert_int_equal(info->hash, REVIEW_HASH_SHA1);
	assert_string_equal(info->tip, tip);
	assert_int_equal(info->n_prereqs, 1);
	assert_string_equal(info->prereqs[0], f->base);
	assert_true(info->pack_objects > 0);
	assert_true(info->pack_offset > 0 && info->pack_offset < info->size);

	/* v3, with its object-format capability. */
	char v3[128];
	snprintf(v3, sizeof v3, "%s/v3.bundle", f->dir);
	SH_OK("cd '%s' && git bundle create -q --version=3 '%s' refs/heads/paddock-export '^%s'",
	      f->sb, v3, f->base);
	memset(info, 0, sizeof *info);
	assert_int_equal(review_bundle_check(v3, NULL, info, &err), 0);
	assert_int_equal(info->version, 3);
	assert_string_equal(info->tip, tip);
	free(info);
}

static void test_fetch_hostile_sandbox(void **state)
{
	struct fx *f = *state;
	agent_work(f);
	plant_hostile_config(f);
	/* The trap is live: plain git in the sandbox runs it. */
	assert_int_equal(sh("cd '%s' && git status >/dev/null 2>&1", f->sb), 0);
	assert_true(exists(f->pwned));
	unlink(f->pwned);

	assert_int_equal(sandbox_export(f, f->bundle, f->base), 0);
	/* Inside the sandbox its own filter ran on `git add` (allowed there). */
	assert_true(exists(f->sb_ran));
	assert_false(exists(f->pwned));
	_cleanup_free_ char *tip = out("cd '%s' && git rev-parse refs/heads/paddock-export", f->sb);
	/* Last, a config git cannot even parse: any git reading it dies. */
	SH_OK("cd '%s' && printf '[include]\\n\\tpath = /etc/shadow\\n' >> .git/config", f->sb);
	assert_int_not_equal(sh("git -C '%s' status >/dev/null 2>&1", f->sb), 0);

	_cleanup_free_ char *before = owner_state(f);
	_cleanup_free_ char *head = out("git -C '%s' rev-parse HEAD", f->owner);
	struct review_summary s = { 0 };
	struct pd_err err;
	size_t tmp_before = review_tmp_count();
	assert_int_equal(fetch(f, f->bundle, "work", NULL, &s, &err), 0);

	/* Nothing of the sandbox ran on the host. */
	assert_false(exists(f->pwned));
	/* The work is there, as paddock/work, and nothing else changed. */
	_cleanup_free_ char *got = out("git -C '%s' rev-parse refs/heads/paddock/work", f->owner);
	assert_string_equal(got, tip);
	assert_string_equal(s.tip, tip);
	_cleanup_free_ char *subjects =
		out("git -C '%s' log --format=%%s %s..paddock/work | tr '\\n' '|'", f->owner,
		    f->base);
	assert_string_equal(subjects,
			    "paddock: uncommitted work|agent: attributes|agent: two|agent: one|");
	_cleanup_free_ char *b = out("git -C '%s' show paddock/work:b.txt", f->owner);
	assert_string_equal(b, "b\nagent wip");
	_cleanup_free_ char *d = out("git -C '%s' show paddock/work:d.txt", f->owner);
	assert_string_equal(d, "d");
	_cleanup_free_ char *after = owner_state(f);
	assert_string_equal(before, after);
	_cleanup_free_ char *head2 = out("git -C '%s' rev-parse HEAD", f->owner);
	assert_string_equal(head, head2);
	_cleanup_free_ char *branch = out("git -C '%s' symbolic-ref HEAD", f->owner);
	assert_string_equal(branch, "refs/heads/main");
	/* Written by the owner, as the owner: no root-owned file in .git. */
	_cleanup_free_ char *rootfiles = out("find '%s/.git' -uid 0", f->owner);
	assert_string_equal(rootfiles, "");
	assert_int_equal(
		sh("git -C '%s' fsck --no-dangling --no-progress >/dev/null", f->owner), 0);
	assert_int_equal(review_tmp_count(), tmp_before);

	/* The summary. */
	assert_string_equal(s.base, f->base);
	assert_string_equal(s.branch, "paddock/work");
	assert_int_equal(s.commits, 4);
	assert_int_equal(s.files_changed, 5);
	assert_int_equal(s.insertions, 5);
	assert_int_equal(s.deletions, 1);
	assert_string_equal(s.review_command, "git log -p main..paddock/work");
	assert_false(exists(f->pwned));
}

static void test_fetch_explicit_base_and_again(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	/* The owner moves on meanwhile: the merge-base stays the sandbox's base. */
	SH_OK("cd '%s' && printf 'x\\n' > x.txt && git add x.txt && git commit -qm owner "
	      "&& chown -R %d:%d .",
	      f->owner, OWNER_UID, OWNER_UID);
	struct review_summary s = { 0 };
	memcpy(s.base, f->base, sizeof s.base);
	struct pd_err err;
	assert_int_equal(fetch(f, f->bundle, "w-1", NULL, &s, &err), 0);
	assert_string_equal(s.base, f->base);
	assert_int_equal(s.commits, 4);
	assert_int_equal(s.files_changed, 5);
	char want[256];
	snprintf(want, sizeof want, "git log -p %s..paddock/w-1", f->base);
	assert_string_equal(s.review_command, want);

	/* More work, pulled again: the branch moves to the new tip. The export
	 * left the agent's branch alone, so the uncommitted work is again one
	 * commit on the agent's HEAD, not on the previous export (a forced,
	 * non-fast-forward update of paddock/w-1). */
	SH_OK("cd '%s' && printf 'e\\n' > e.txt", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(fetch(f, f->bundle, "w-1", NULL, &s, &err), 0);
	assert_int_equal(s.commits, 4);
	assert_int_equal(s.files_changed, 6);
	assert_string_equal(s.review_command, "git log -p main..paddock/w-1");
	_cleanup_free_ char *e = out("git -C '%s' show paddock/w-1:e.txt", f->owner);
	assert_string_equal(e, "e");
}

/* ---- refusals ----------------------------------------------------------- */

static void test_refuse_second_ref(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	char two[128];
	snprintf(two, sizeof two, "%s/two.bundle", f->dir);
	/* The clone's main has the agent's commits too: both refs travel. */
	SH_OK("cd '%s' && git bundle create -q '%s' refs/heads/paddock-export refs/heads/main "
	      "'^%s'",
	      f->sb, two, f->base);
	assert_check_refused(two, NULL, "refs/heads/main");
	assert_refused(f, two, "work", NULL, "refs/heads/main", NULL);

	SH_OK("cd '%s' && git tag x && git bundle create -q '%s' refs/heads/paddock-export "
	      "refs/tags/x '^%s'",
	      f->sb, two, f->base);
	assert_check_refused(two, NULL, "refs/tags/x");
	assert_refused(f, two, "work", NULL, "refs/tags/x", NULL);
}

static void test_refuse_other_ref(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	char other[128];
	snprintf(other, sizeof other, "%s/other.bundle", f->dir);
	SH_OK("cd '%s' && git bundle create -q '%s' refs/heads/main '^%s'", f->sb, other, f->base);
	assert_refused(f, other, "work", NULL, "'refs/heads/main': only refs/heads/paddock-export",
		       NULL);
	SH_OK("cd '%s' && git bundle create -q '%s' HEAD '^%s'", f->sb, other, f->base);
	assert_refused(f, other, "work", NULL, "'HEAD'", NULL);
	SH_OK("cd '%s' && git update-ref refs/remotes/origin/x HEAD "
	      "&& git bundle create -q '%s' refs/remotes/origin/x '^%s'",
	      f->sb, other, f->base);
	assert_refused(f, other, "work", NULL, "refs/remotes/origin/x", NULL);
}

static void test_refuse_too_big(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	struct review_limits lim = { .max_bytes = 100 };
	assert_check_refused(f->bundle, &lim, "larger than the limit of 100 bytes");
	assert_refused(f, f->bundle, "work", &lim, "larger than the limit", NULL);
	/* A small header limit catches a long header. */
	struct review_limits hl = { .max_header = 50 };
	assert_check_refused(f->bundle, &hl, "header is longer than the limit of 50 bytes");
}

static void test_refuse_truncated(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	size_t len;
	_cleanup_free_ char *data = slurp(f->bundle, &len);
	char cut[128];
	snprintf(cut, sizeof cut, "%s/cut.bundle", f->dir);
	spew(cut, data, len - 30); /* in the pack */
	assert_check_refused(cut, NULL, "truncated or corrupt");
	assert_refused(f, cut, "work", NULL, "truncated or corrupt", tip);
	spew(cut, data, 60); /* in the header */
	assert_refused(f, cut, "work", NULL, "truncated bundle: the header does not end", NULL);
	spew(cut, data, strchr(data, '\n') - data + 1); /* signature only */
	assert_refused(f, cut, "work", NULL, "truncated", NULL);
	spew(cut, "", 0);
	assert_refused(f, cut, "work", NULL, "not a git bundle", NULL);
}

static void test_refuse_garbage(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	char bad[128];
	snprintf(bad, sizeof bad, "%s/bad.bundle", f->dir);
	static const char garbage[] = "root:$6$secret:19000:0:99999:7:::\nmore\n\nPACK";
	spew(bad, garbage, sizeof garbage - 1);
	assert_check_refused(bad, NULL, "not a git bundle");
	/* The refusal does not echo the file. */
	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_true(review_bundle_check(bad, NULL, info, &err) < 0);
	assert_null(strstr(err.msg, "secret"));
	free(info);

	char hdr[512];
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	/* $B: the base, $b: the base less its last digit, $T: the tip. */
	static const struct {
		const char *tmpl, *what;
	} cases[] = {
		{ "# v2 git bundle\n-$B\n$T refs/heads/a..b\n\n",
		  "invalid ref name 'refs/heads/a..b'" },
		{ "# v2 git bundle\n-$B\n$T refs/heads/paddock-export\r\n\n", "invalid ref name" },
		{ "# v2 git bundle\n-$B\n$T  refs/heads/paddock-export\n\n", "invalid ref name" },
		{ "# v2 git bundle\n-$B\n$T refs/heads/x.lock\n\n", "invalid ref name" },
		{ "# v2 git bundle\n-$B\n$T refs/heads/@{x}\n\n", "invalid ref name" },
		{ "# v2 git bundle\n-$B\n$T refs/heads/paddock-export\n"
		  "$T refs/heads/paddock-export\n\n",
		  "2 times" },
		{ "# v2 git bundle\n-$B\n\n", "no ref" },
		{ "# v2 git bundle\n-$b\n$T refs/heads/paddock-export\n\n",
		  "malformed prerequisite" },
		{ "# v2 git bundle\n-$Bx\n$T refs/heads/paddock-export\n\n",
		  "malformed prerequisite" },
		{ "# v2 git bundle\n-$B\n$T\trefs/heads/paddock-export\n\n", "malformed ref line" },
		{ "# v3 git bundle\n@filter=blob:none\n-$B\n$T refs/heads/paddock-export\n\n",
		  "unsupported capability '@filter=blob:none'" },
		{ "# v3 git bundle\n@object-format=sha256\n-$B\n$T refs/heads/paddock-export\n\n",
		  "sha256 object names, the repository sha1" },
		{ "# v2 git bundle\n@object-format=sha1\n-$B\n$T refs/heads/paddock-export\n\n",
		  "malformed ref line" },
		{ "# v4 git bundle\n-$B\n$T refs/heads/paddock-export\n\n", "not a git bundle" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t n = 0;
		for (const char *c = cases[i].tmpl; *c; c++) {
			const char *sub = c;
			size_t sn = 1;
			if (c[0] == '$' && (c[1] == 'B' || c[1] == 'b' || c[1] == 'T')) {
				sub = c[1] == 'T' ? tip : f->base;
				sn = c[1] == 'b' ? 39 : strlen(sub);
				c++;
			}
			assert_true(n + sn < sizeof hdr);
			memcpy(hdr + n, sub, sn);
			n += sn;
		}
		craft(f, bad, hdr, n);
		assert_check_refused(bad, NULL, cases[i].what);
		assert_refused(f, bad, "work", NULL, cases[i].what, NULL);
	}
	/* Upper-case hex, and a NUL byte in a line. */
	_cleanup_free_ char *upper = strdup(tip);
	for (char *c = upper; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	int n = snprintf(hdr, sizeof hdr, "# v2 git bundle\n-%s\n%s refs/heads/paddock-export\n\n",
			 f->base, upper);
	if (strcmp(upper, tip) != 0) {
		craft(f, bad, hdr, (size_t)n);
		assert_check_refused(bad, NULL, "malformed ref line");
	}
	n = snprintf(hdr, sizeof hdr, "# v2 git bundle\n-%s x\n%s refs/heads/paddock-export\n\n",
		     f->base, tip);
	hdr[strlen("# v2 git bundle\n-") + 41] = '\0';
	craft(f, bad, hdr, (size_t)n);
	assert_check_refused(bad, NULL, "NUL byte");
	/* The crafted header that is right passes: the cases above fail for
	 * what they say, not for the crafting. */
	n = snprintf(hdr, sizeof hdr, "# v2 git bundle\n-%s\n%s refs/heads/paddock-export\n\n",
		     f->base, tip);
	craft(f, bad, hdr, (size_t)n);
	struct review_summary s = { 0 };
	assert_int_equal(fetch(f, bad, "crafted", NULL, &s, &err), 0);
	assert_string_equal(s.tip, tip);
}

static void test_refuse_many_refs(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	char *hdr = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&hdr, &len);
	fprintf(m, "# v2 git bundle\n-%s\n%s refs/heads/paddock-export\n", f->base, tip);
	for (int i = 0; i < 2000; i++)
		fprintf(m, "%s refs/heads/b%d\n", tip, i);
	fputc('\n', m);
	fclose(m);
	char many[128];
	snprintf(many, sizeof many, "%s/many.bundle", f->dir);
	craft(f, many, hdr, len);
	free(hdr);
	assert_check_refused(many, NULL, "more than 1000 prerequisite and ref lines");
	assert_refused(f, many, "work", NULL, "more than 1000", NULL);
}

static void test_refuse_not_a_file(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	char link[128], fifo[128];
	snprintf(link, sizeof link, "%s/link.bundle", f->dir);
	snprintf(fifo, sizeof fifo, "%s/fifo.bundle", f->dir);
	assert_int_equal(symlink(f->bundle, link), 0);
	assert_check_refused(link, NULL, "is a symlink");
	assert_refused(f, link, "work", NULL, "is a symlink", NULL);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_refused(f, fifo, "work", NULL, "not a regular file", NULL);
	assert_refused(f, f->dir, "work", NULL, "not a regular file", NULL);
	char missing[128];
	snprintf(missing, sizeof missing, "%s/missing.bundle", f->dir);
	assert_refused(f, missing, "work", NULL, "cannot open bundle", NULL);
}

static void test_refuse_missing_prerequisite(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	/* Exclude a commit only the sandbox has: the bundle needs it. */
	_cleanup_free_ char *mid = out("git -C '%s' rev-parse HEAD~2", f->sb);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse HEAD", f->sb);
	char thin[128];
	snprintf(thin, sizeof thin, "%s/thin.bundle", f->dir);
	SH_OK("cd '%s' && git bundle create -q '%s' refs/heads/paddock-export '^%s'", f->sb, thin,
	      mid);
	assert_refused(f, thin, "work", NULL, "prerequisite", tip);
}

/* Recompute the pack's trailing sha1 after an edit. */
static void fix_trailer(char *data, size_t len, size_t pack_offset)
{
	unsigned int n = 0;
	assert_true(EVP_Digest(data + pack_offset, len - pack_offset - 20,
			       (unsigned char *)data + len - 20, &n, EVP_sha1(), NULL));
	assert_int_equal(n, 20);
}

static void test_refuse_corrupt_object(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	size_t len;
	_cleanup_free_ char *data = slurp(f->bundle, &len);
	char bad[128];
	snprintf(bad, sizeof bad, "%s/bad.bundle", f->dir);

	/* A flipped byte: the checksum says so. */
	size_t at = info->pack_offset + 12 + (len - info->pack_offset - 32) / 2;
	data[at] ^= 0x40;
	spew(bad, data, len);
	assert_refused(f, bad, "work", NULL, "checksum does not match", tip);
	/* The same with a matching checksum: the objects themselves are bad. */
	fix_trailer(data, len, info->pack_offset);
	spew(bad, data, len);
	memset(info, 0, sizeof *info);
	assert_int_equal(review_bundle_check(bad, NULL, info, &err), 0); /* passes the checks */
	assert_refused(f, bad, "work", NULL, "refused by fsck", tip);    /* but not fsck */
	free(info);
}

/* A well-formed pack with an object fsck forbids: a tree with ".git" (it
 * would write into .git on checkout). git 2.39 fetches it from a bundle
 * unchecked; the quarantine's index-pack --strict does not. */
static void test_refuse_fsck_object(void **state)
{
	struct fx *f = *state;
	char bad[128];
	snprintf(bad, sizeof bad, "%s/bad.bundle", f->dir);
	SH_OK("cd '%s' && blob=$(printf 'evil\\n' | git hash-object -w --stdin) "
	      "&& tree=$(printf '100644 blob %%s\\t.git\\n' $blob | git mktree) "
	      "&& c=$(git commit-tree $tree -p HEAD -m evil) "
	      "&& git update-ref refs/heads/paddock-export $c "
	      "&& git bundle create -q '%s' refs/heads/paddock-export '^%s'",
	      f->sb, bad, f->base);
	_cleanup_free_ char *evil = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	assert_refused(f, bad, "work", NULL, "refused by fsck", evil);
}

static void test_refuse_bad_name(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	static const char *const bad[] = {
		"a/b", "..", "../x", "x/../y", "", "A", "-x", "x y", "x.lock", "a\nb",
		"0123456789012345678901234567890123456789012345678901234567890123x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_false(review_name_valid(bad[i]));
		assert_refused(f, f->bundle, bad[i], NULL, "invalid name", NULL);
	}
	assert_refused(f, f->bundle, NULL, NULL, "invalid name", NULL);
	static const char *const good[] = {
		"work", "a", "0-1", "x-",
		"0123456789012345678901234567890123456789012345678901234567890123",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(review_name_valid(good[i]));
}

static void test_refuse_current_branch(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	SH_OK("cd '%s' && git checkout -q -b paddock/work && chown -R %d:%d .", f->owner,
	      OWNER_UID, OWNER_UID);
	struct review_summary s = { 0 };
	struct pd_err err;
	assert_true(fetch(f, f->bundle, "work", NULL, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "current branch"));
	_cleanup_free_ char *ref = out("git -C '%s' rev-parse refs/heads/paddock/work", f->owner);
	assert_string_equal(ref, f->base);
	/* Another name is fine. */
	assert_int_equal(fetch(f, f->bundle, "other", NULL, &s, &err), 0);
	assert_int_equal(s.commits, 4);
	/* HEAD is paddock/work, whose merge-base with the work is the base. */
	assert_string_equal(s.review_command, "git log -p paddock/work..paddock/other");
}

static void test_bad_repository(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	struct review_summary s = { 0 };
	struct pd_err err = { 0 };
	char sub[128];
	snprintf(sub, sizeof sub, "%s/sub", f->owner);
	SH_OK("mkdir '%s'", sub);
	/* A subdirectory: discovery may not climb to the repository. */
	assert_true(review_bundle_fetch(sub, f->bundle, "work", NULL, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "is not a usable git repository"));
	assert_true(review_bundle_fetch(f->dir, f->bundle, "work", NULL, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "not a usable git repository"));
	memcpy(s.base, "0123456789abcdef0123456789abcdef01234567", 41);
	assert_true(fetch(f, f->bundle, "work", NULL, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "is not a commit"));
	memcpy(s.base, "main", 5);
	assert_true(fetch(f, f->bundle, "work", NULL, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "not a full sha1 object name"));
}

/* ---- the export script and the diff ------------------------------------ */

static int diff(struct fx *f, const char *bundle, const char *base, int fd, bool stat_only,
		struct review_summary *s, struct pd_err *err)
{
	memset(err, 0, sizeof *err);
	int r = review_bundle_diff(f->owner, bundle, base, NULL, fd, stat_only, s, err);
	if (r < 0) {
		char buf[1200];
		fprintf(stderr, "review_bundle_diff: %s\n", pd_err_format(err, buf, sizeof buf));
	}
	return r;
}

/* review_bundle_diff into the file `path`; its contents (caller frees). */
static char *diff_text(struct fx *f, const char *bundle, const char *base, bool stat_only,
		       const char *path, struct review_summary *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	struct pd_err err;
	assert_int_equal(diff(f, bundle, base, fd, stat_only, s, &err), 0);
	assert_int_equal(close(fd), 0);
	size_t len;
	char *t = slurp(path, &len);
	assert_int_equal(strlen(t), len); /* no NUL byte: binary files are not shown */
	return t;
}

/* Everything of the owner's git directory: refs, packed-refs, how many
 * objects, and every file's path, type, size, mode, owner and content. */
static char *owner_git_state(struct fx *f)
{
	return out("cd '%s' && git for-each-ref --format='%%(objectname) %%(refname)' "
		   "&& { cat .git/packed-refs 2>/dev/null || true; } "
		   "&& find .git/objects -type f | wc -l && git count-objects -v "
		   "&& find .git -printf '%%P %%y %%s %%m %%U\\n' | LC_ALL=C sort "
		   "&& find .git -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum",
		   f->owner);
}

/* Traps of the brief, each marking f->dir/m-<what> when it runs: core.fsmonitor,
 * the hooks post-checkout and reference-transaction (in .git/hooks, the
 * default hooks path), and a filter driver named by the .gitattributes
 * agent_work commits, whose clean side marks m-filter-sandbox inside the
 * sandbox (allowed: the export's `git add` runs it) and m-filter-host
 * anywhere else. */
static void plant_traps(struct fx *f)
{
	static const char *const simple[] = { "fsmonitor", "post-checkout",
					      "reference-transaction" };
	char path[160];
	for (size_t i = 0; i < ARRAY_SIZE(simple); i++) {
		snprintf(path, sizeof path, "%s/trap-%s", f->dir, simple[i]);
		FILE *t = fopen(path, "w");
		assert_non_null(t);
		fprintf(t, "#!/bin/sh\ntouch '%s/m-%s'\nexit 0\n", f->dir, simple[i]);
		fclose(t);
		assert_int_equal(chmod(path, 0755), 0);
	}
	snprintf(path, sizeof path, "%s/trap-filter", f->dir);
	FILE *t = fopen(path, "w");
	assert_non_null(t);
	fprintf(t,
		"#!/bin/sh\nif [ -n \"$PD_SANDBOX_SIDE\" ]; then touch '%s/m-filter-sandbox'; "
		"else touch '%s/m-filter-host'; fi\nexec cat\n",
		f->dir, f->dir);
	fclose(t);
	assert_int_equal(chmod(path, 0755), 0);
	SH_OK("cd '%s' && cp '%s/trap-post-checkout' .git/hooks/post-checkout "
	      "&& cp '%s/trap-reference-transaction' .git/hooks/reference-transaction "
	      "&& git config core.fsmonitor '%s/trap-fsmonitor' "
	      "&& git config filter.evil.clean '%s/trap-filter' "
	      "&& git config filter.evil.smudge '%s/trap-filter' "
	      "&& git config filter.evil.required true",
	      f->sb, f->dir, f->dir, f->dir, f->dir, f->dir);
}

/* Markers of plant_traps that exist, as "m-a m-b " ("" for none). */
static char *markers(struct fx *f, bool with_sandbox_filter)
{
	return out("cd '%s' && for m in m-*; do [ -e \"$m\" ] || continue; "
		   "[ \"$m\" = m-filter-sandbox ] && [ %d = 0 ] && continue; printf '%%s ' \"$m\"; "
		   "done",
		   f->dir, with_sandbox_filter ? 1 : 0);
}

/* review.h shows the script to the byte. */
static void test_export_script_documented(void **state)
{
	(void)state;
	const char *src = getenv("PADDOCK_SRCDIR");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/src/review/review.h", src ? src : ".");
	size_t len;
	_cleanup_free_ char *h = slurp(path, &len);
	char *want = NULL;
	size_t wlen = 0;
	FILE *m = open_memstream(&want, &wlen);
	assert_non_null(m);
	const char *s = review_export_script();
	assert_true(strlen(s) > 0 && s[strlen(s) - 1] == '\n');
	for (const char *l = s; *l;) {
		const char *nl = strchr(l, '\n');
		fprintf(m, " *   %.*s\n", (int)(nl - l), l);
		l = nl + 1;
	}
	fclose(m);
	if (!strstr(h, want))
		fail_msg("review.h does not show review_export_script() as it is");
	free(want);
	/* And it is a shell script sh can parse. */
	char script[128];
	snprintf(script, sizeof script, "/tmp/pd-review-script-%ld", (long)getpid());
	spew(script, s, strlen(s));
	int r = sh("sh -n '%s'", script);
	unlink(script);
	assert_int_equal(r, 0);
}

/* The script's bundle passes review_bundle_check, carries the export ref at
 * HEAD + uncommitted work and needs the base; the agent's HEAD, branch,
 * index and work tree are as they were. */
static void test_export_bundle_checks(void **state)
{
	struct fx *f = *state;
	agent_work(f);
	_cleanup_free_ char *head = out("git -C '%s' rev-parse HEAD", f->sb);
	_cleanup_free_ char *status = out("git -C '%s' status --porcelain", f->sb);
	_cleanup_free_ char *index = out("sha256sum < '%s/.git/index'", f->sb);
	assert_string_not_equal(status, "");
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);

	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	assert_string_equal(info->tip, tip);
	assert_int_equal(info->n_prereqs, 1);
	assert_string_equal(info->prereqs[0], f->base);
	assert_int_equal(info->version, 2);
	free(info);
	_cleanup_free_ char *parent = out("git -C '%s' rev-parse %s^", f->sb, tip);
	assert_string_equal(parent, head);
	_cleanup_free_ char *subject = out("git -C '%s' log -1 --format='%%an %%s' %s", f->sb, tip);
	assert_string_equal(subject, "paddock paddock: uncommitted work");

	_cleanup_free_ char *head2 = out("git -C '%s' rev-parse HEAD", f->sb);
	_cleanup_free_ char *status2 = out("git -C '%s' status --porcelain", f->sb);
	_cleanup_free_ char *index2 = out("sha256sum < '%s/.git/index'", f->sb);
	assert_string_equal(head2, head);
	assert_string_equal(status2, status);
	assert_string_equal(index2, index);
	char idx[160];
	snprintf(idx, sizeof idx, "%s/.git/paddock-export.index", f->sb);
	assert_false(exists(idx));

	/* Committed work only (a clean tree): the export ref is HEAD itself. */
	SH_OK("cd '%s' && git add -A && git commit -qm 'agent: rest'", f->sb);
	_cleanup_free_ char *head3 = out("git -C '%s' rev-parse HEAD", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);
	info = calloc(1, sizeof *info);
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	assert_string_equal(info->tip, head3);
	free(info);
}

/* No work: exit 3 and nothing on stdout; also when the only change is an
 * ignored file, and when the agent went back before the base. */
static void test_export_nothing(void **state)
{
	struct fx *f = *state;
	char errf[128];
	snprintf(errf, sizeof errf, "%s/export.err", f->dir);
	assert_int_equal(run_export(f->sb, f->base, f->bundle, errf), REVIEW_EXPORT_NOTHING);
	struct stat st;
	assert_int_equal(stat(f->bundle, &st), 0);
	assert_int_equal(st.st_size, 0);
	size_t len;
	_cleanup_free_ char *msg = slurp(errf, &len);
	assert_non_null(strstr(msg, "nothing to export"));

	SH_OK("cd '%s' && echo junk > junk.log && echo '*.log' >> .git/info/exclude", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_NOTHING);
	/* Commits undone: HEAD is an ancestor of the base given. */
	SH_OK("cd '%s' && echo x > x.txt && git add x.txt && git commit -qm x", f->sb);
	_cleanup_free_ char *x = out("git -C '%s' rev-parse HEAD", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);
	SH_OK("cd '%s' && git reset -q --hard HEAD~1", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, x), REVIEW_EXPORT_NOTHING);
	assert_int_equal(stat(f->bundle, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* A deleted file is work. */
	SH_OK("cd '%s' && rm b.txt", f->sb);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);
	_cleanup_free_ char *ls = out("git -C '%s' ls-tree --name-only refs/heads/paddock-export "
				      "| tr '\\n' ' '",
				      f->sb);
	assert_string_equal(ls, "a.txt ");
}

/* Not a git work tree (or not its top): exit 4; a bad or unknown base: 2 and
 * 5. Nothing on stdout. */
static void test_export_not_git(void **state)
{
	struct fx *f = *state;
	char plain[128], errf[128];
	snprintf(plain, sizeof plain, "%s/plain", f->dir);
	snprintf(errf, sizeof errf, "%s/export.err", f->dir);
	SH_OK("mkdir '%s' && echo x > '%s/x'", plain, plain);
	assert_int_equal(run_export(plain, f->base, f->bundle, errf), REVIEW_EXPORT_NOT_GIT);
	size_t len;
	_cleanup_free_ char *msg = slurp(errf, &len);
	assert_non_null(strstr(msg, "is not the top of a git work tree"));
	struct stat st;
	assert_int_equal(stat(f->bundle, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* A subdirectory of the clone is not its top. */
	SH_OK("mkdir '%s/sub' && echo y > '%s/sub/y'", f->sb, f->sb);
	char sub[160];
	snprintf(sub, sizeof sub, "%s/sub", f->sb);
	assert_int_equal(run_export(sub, f->base, f->bundle, NULL), REVIEW_EXPORT_NOT_GIT);

	static const char *const bad[] = { "", "main", "HEAD", "0123456789abcdef",
					   "0123456789ABCDEF0123456789ABCDEF01234567",
					   "-0123456789abcdef0123456789abcdef0123456" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(run_export(f->sb, bad[i], f->bundle, NULL),
				 REVIEW_EXPORT_BAD_BASE);
	assert_int_equal(run_export(f->sb, "0123456789abcdef0123456789abcdef01234567", f->bundle,
				    errf),
			 REVIEW_EXPORT_NO_BASE);
	assert_int_equal(stat(f->bundle, &st), 0);
	assert_int_equal(st.st_size, 0);
}

/* The brief's end-to-end test: an agent commits, plants fsmonitor, hooks and
 * a filter, changes a tracked file without committing; the export runs
 * none of the hooks; review_bundle_diff shows both changes and writes
 * nothing to the owner's repository; review_bundle_fetch brings both as
 * paddock/work; nothing of the sandbox runs on the host. */
static void test_export_diff_fetch_hostile(void **state)
{
	struct fx *f = *state;
	agent_work(f); /* commits a.txt, c.txt, .gitattributes; b.txt changed, d.txt new */
	plant_traps(f);
	/* The traps are live for plain git in the sandbox (the test's git runs
	 * the filter as "host": PD_SANDBOX_SIDE is not set here). */
	SH_OK("cd '%s' && { git status && git update-ref refs/heads/t HEAD "
	      "&& git update-ref -d refs/heads/t && git checkout -q main; } >/dev/null 2>&1",
	      f->sb);
	_cleanup_free_ char *live = markers(f, true);
	assert_string_equal(live,
			    "m-filter-host m-fsmonitor m-post-checkout m-reference-transaction ");
	SH_OK("rm -f '%s'/m-*", f->dir);

	/* The export: only the filter runs, inside. */
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);
	_cleanup_free_ char *after_export = markers(f, true);
	assert_string_equal(after_export, "m-filter-sandbox ");
	SH_OK("rm -f '%s'/m-*", f->dir);
	struct review_bundle_info *info = calloc(1, sizeof *info);
	struct pd_err err = { 0 };
	assert_int_equal(review_bundle_check(f->bundle, NULL, info, &err), 0);
	_cleanup_free_ char *tip = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	assert_string_equal(info->tip, tip);
	free(info);

	/* The diff. */
	_cleanup_free_ char *git_before = owner_git_state(f);
	_cleanup_free_ char *tree_before = owner_state(f);
	size_t tmp_before = review_tmp_count();
	char patch[128];
	snprintf(patch, sizeof patch, "%s/diff.out", f->dir);
	struct review_summary s;
	memset(&s, 0x55, sizeof s); /* every field is set */
	_cleanup_free_ char *text = diff_text(f, f->bundle, f->base, false, patch, &s);
	assert_non_null(strstr(text, " 5 files changed, 5 insertions(+), 1 deletion(-)\n"));
	assert_non_null(strstr(text, "diff --git a/a.txt b/a.txt\n")); /* committed */
	assert_non_null(strstr(text, "\n-two\n"));
	assert_non_null(strstr(text, "\n+four\n"));
	assert_non_null(strstr(text, "diff --git a/b.txt b/b.txt\n")); /* uncommitted */
	assert_non_null(strstr(text, "\n b\n+agent wip\n"));
	assert_non_null(strstr(text, "diff --git a/d.txt b/d.txt\nnew file mode 100644\n"));
	assert_null(strstr(text, "\033[")); /* no color */
	/* The stat comes first. */
	assert_true(strstr(text, "files changed") < strstr(text, "diff --git"));
	assert_string_equal(s.base, f->base);
	assert_string_equal(s.tip, tip);
	assert_string_equal(s.branch, "");
	assert_string_equal(s.review_command, "");
	assert_int_equal(s.commits, 4);
	assert_int_equal(s.files_changed, 5);
	assert_int_equal(s.insertions, 5);
	assert_int_equal(s.deletions, 1);

	/* --stat only; the summary alone (no fd). */
	_cleanup_free_ char *stat = diff_text(f, f->bundle, f->base, true, patch, &s);
	assert_non_null(strstr(stat, " 5 files changed, 5 insertions(+), 1 deletion(-)\n"));
	assert_non_null(strstr(stat, " b.txt"));
	assert_null(strstr(stat, "diff --git"));
	assert_null(strstr(stat, "@@"));
	struct review_summary s2 = { 0 };
	assert_int_equal(diff(f, f->bundle, f->base, -1, false, &s2, &err), 0);
	assert_int_equal(s2.commits, 4);
	assert_int_equal(s2.insertions, 5);
	/* Without a base: everything from the root counts. */
	assert_int_equal(diff(f, f->bundle, NULL, -1, false, &s2, &err), 0);
	assert_string_equal(s2.base, "");
	assert_int_equal(s2.commits, 5);
	assert_int_equal(s2.files_changed, 5); /* a b c d .gitattributes */

	/* The owner's repository: not a byte changed. */
	_cleanup_free_ char *git_after = owner_git_state(f);
	assert_string_equal(git_before, git_after);
	_cleanup_free_ char *tree_after = owner_state(f);
	assert_string_equal(tree_before, tree_after);
	assert_int_not_equal(sh("git -C '%s' cat-file -e %s 2>/dev/null", f->owner, tip), 0);
	assert_int_equal(review_tmp_count(), tmp_before);
	_cleanup_free_ char *none = markers(f, true);
	assert_string_equal(none, "");

	/* The fetch. */
	struct review_summary fs = { 0 };
	assert_int_equal(fetch(f, f->bundle, "work", NULL, &fs, &err), 0);
	_cleanup_free_ char *got = out("git -C '%s' rev-parse refs/heads/paddock/work", f->owner);
	assert_string_equal(got, tip);
	_cleanup_free_ char *a = out("git -C '%s' show paddock/work:a.txt", f->owner);
	assert_string_equal(a, "one\nthree\nfour");
	_cleanup_free_ char *b = out("git -C '%s' show paddock/work:b.txt", f->owner);
	assert_string_equal(b, "b\nagent wip");
	assert_int_equal(fs.commits, s.commits);
	assert_int_equal(fs.files_changed, s.files_changed);
	assert_int_equal(fs.insertions, s.insertions);
	assert_int_equal(fs.deletions, s.deletions);
	/* (The snapshot does see a fetch.) */
	_cleanup_free_ char *git_fetched = owner_git_state(f);
	assert_string_not_equal(git_fetched, git_before);
	_cleanup_free_ char *still_none = markers(f, true);
	assert_string_equal(still_none, "");
	assert_false(exists(f->pwned));
	assert_int_equal(review_tmp_count(), tmp_before);
}

/* What the diff shows is the content: a binary file as "Binary files ...
 * differ", and the bundle's .gitattributes (-diff, a textconv driver) can
 * neither hide a text change as binary nor run anything. */
static void test_diff_binary_and_attributes(void **state)
{
	struct fx *f = *state;
	SH_OK("cd '%s' && printf 'bin\\000ary\\001' > blob.bin "
	      "&& printf '*.txt -diff\\n*.md diff=evil\\n' > .gitattributes "
	      "&& printf 'secret change\\n' >> a.txt && printf 'doc\\n' > r.md "
	      "&& git config diff.evil.textconv '%s' && git config diff.external '%s'",
	      f->sb, f->evil, f->evil);
	assert_int_equal(sandbox_export(f, f->bundle, f->base), REVIEW_EXPORT_OK);
	/* The agent's own attributes do hide it from plain git inside. */
	_cleanup_free_ char *inside =
		out("cd '%s' && git diff --no-ext-diff --no-textconv %s refs/heads/paddock-export "
		    "-- a.txt",
		    f->sb, f->base);
	assert_non_null(strstr(inside, "Binary files"));

	char patch[128];
	snprintf(patch, sizeof patch, "%s/diff.out", f->dir);
	struct review_summary s = { 0 };
	_cleanup_free_ char *text = diff_text(f, f->bundle, f->base, false, patch, &s);
	assert_non_null(strstr(text, "+secret change\n"));
	assert_non_null(strstr(text, "+doc\n"));
	assert_non_null(strstr(text, "Binary files /dev/null and b/blob.bin differ\n"));
	assert_null(strstr(text, "\001")); /* none of the binary content */
	assert_int_equal(s.files_changed, 4);
	assert_false(exists(f->pwned));
	assert_false(exists(f->sb_ran));
}

/* A refused diff: fails saying `what`, writes nothing to the fd, leaves no
 * private directory, and the owner's repository is untouched. */
static void assert_diff_refused(struct fx *f, const char *bundle, const char *base,
				const char *what)
{
	_cleanup_free_ char *before = owner_git_state(f);
	size_t tmp_before = review_tmp_count();
	char path[128];
	snprintf(path, sizeof path, "%s/refused.out", f->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	struct review_summary s = { 0 };
	struct pd_err err;
	assert_true(diff(f, bundle, base, fd, false, &s, &err) < 0);
	close(fd);
	char buf[1200];
	pd_err_format(&err, buf, sizeof buf);
	if (!strstr(buf, what))
		fail_msg("error \"%s\" does not say \"%s\"", buf, what);
	assert_string_equal(s.tip, ""); /* untouched */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(review_tmp_count(), tmp_before);
	_cleanup_free_ char *after = owner_git_state(f);
	assert_string_equal(before, after);
}

static void test_diff_refusals(void **state)
{
	struct fx *f = *state;
	good_bundle(f);
	/* A bad object: fsck refuses it. */
	char bad[128];
	snprintf(bad, sizeof bad, "%s/bad.bundle", f->dir);
	_cleanup_free_ char *good = out("git -C '%s' rev-parse refs/heads/paddock-export", f->sb);
	SH_OK("cd '%s' && blob=$(printf 'evil\\n' | git hash-object -w --stdin) "
	      "&& tree=$(printf '100644 blob %%s\\t.git\\n' $blob | git mktree) "
	      "&& c=$(git commit-tree $tree -p HEAD -m evil) "
	      "&& git update-ref refs/heads/paddock-export $c "
	      "&& git bundle create -q '%s' refs/heads/paddock-export '^%s' "
	      "&& git update-ref refs/heads/paddock-export %s",
	      f->sb, bad, f->base, good);
	assert_diff_refused(f, bad, f->base, "refused by fsck");
	/* A prerequisite the owner lacks. */
	_cleanup_free_ char *mid = out("git -C '%s' rev-parse HEAD~2", f->sb);
	SH_OK("cd '%s' && git bundle create -q '%s' refs/heads/paddock-export '^%s'", f->sb, bad,
	      mid);
	assert_diff_refused(f, bad, f->base, "prerequisite");
	/* Not a bundle; another ref; a bad or unknown base. */
	spew(bad, "hello\n", 6);
	assert_diff_refused(f, bad, f->base, "not a git bundle");
	SH_OK("cd '%s' && git bundle create -q '%s' refs/heads/main '^%s'", f->sb, bad, f->base);
	assert_diff_refused(f, bad, f->base, "only refs/heads/paddock-export");
	assert_diff_refused(f, f->bundle, "main", "not a full sha1 object name");
	assert_diff_refused(f, f->bundle, "0123456789abcdef0123456789abcdef01234567",
			    "is not a commit");
	/* And the good bundle still diffs. */
	struct review_summary s = { 0 };
	struct pd_err err;
	assert_int_equal(diff(f, f->bundle, f->base, -1, false, &s, &err), 0);
	assert_int_equal(s.commits, 4);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_review needs root\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_good, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_hostile_sandbox, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_explicit_base_and_again, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_second_ref, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_other_ref, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_too_big, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_truncated, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_garbage, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_many_refs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_not_a_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_missing_prerequisite, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_corrupt_object, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_fsck_object, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_bad_name, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refuse_current_branch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_repository, fx_setup, fx_teardown),
		cmocka_unit_test(test_export_script_documented),
		cmocka_unit_test_setup_teardown(test_export_bundle_checks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export_nothing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export_not_git, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export_diff_fetch_hostile, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_diff_binary_and_attributes, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_diff_refusals, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
