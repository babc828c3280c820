/* test_deny.c: the credential deny list: pattern matching, un-masking, and
 * the bounded scan of a directory tree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/deny.h"

struct match_case {
	const char *path;
	bool hit;
};

static void test_match_table(void **state)
{
	(void)state;
	static const struct match_case cases[] = {
		{ ".ssh", true },
		{ "a/b/.ssh", true },
		{ "a/.ssh/x", true },
		{ ".sshx", false },
		{ "x.ssh", false },
		{ ".env", true },
		{ ".env.local", true },
		{ "src/.envrc", true },
		{ "my.env", false },
		{ "env", false },
		{ "id_rsa", true },
		{ "id_rsa.pub", true },
		{ "keys/id_ed25519", true },
		{ "id_ecdsa_sk", true },
		{ "my_id_rsa", false },
		{ ".docker/config.json", true },
		{ "x/.docker/config.json", true },
		{ ".docker/other", false },
		{ ".docker", false },
		{ "config.json", false },
		{ ".config/gcloud", true },
		{ ".config/gcloud/creds", true },
		{ ".config/other", false },
		{ "gcloud", false },
		{ ".aws/credentials", true },
		{ ".kube", true },
		{ ".netrc", true },
		{ ".npmrc", true },
		{ ".pypirc", true },
		{ ".git-credentials", true },
		{ ".gnupg/private-keys-v1.d", true },
		{ "./.ssh", true },
		{ "a//.netrc", true },
		{ "src/main.c", false },
		{ ".gitignore", false },
		{ "", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool got = deny_match(cases[i].path, NULL);
		if (got != cases[i].hit)
			fail_msg("deny_match(\"%s\") = %d, want %d", cases[i].path, got,
				 cases[i].hit);
	}
}

static void test_unmask(void **state)
{
	(void)state;
	const char *const npmrc[] = { ".npmrc", NULL };
	assert_false(deny_match(".npmrc", npmrc));
	assert_false(deny_match("pkg/.npmrc", npmrc));
	assert_true(deny_match(".netrc", npmrc));
	assert_true(deny_match(".pypirc", npmrc));
	assert_true(deny_match(".env", npmrc));

	const char *const env[] = { ".env*", NULL };
	assert_false(deny_match(".env.local", env));
	assert_false(deny_match(".env", env));
	assert_true(deny_match(".ssh", env));

	/* A concrete name lifts nothing: unmask is by pattern text only. */
	const char *const concrete[] = { ".env.local", "id_rsa", NULL };
	assert_true(deny_match(".env.local", concrete));
	assert_true(deny_match("id_rsa", concrete));

	/* A multi-component pattern is lifted by its full text. */
	const char *const docker[] = { ".docker/config.json", NULL };
	assert_false(deny_match(".docker/config.json", docker));
}

static void test_patterns_list(void **state)
{
	(void)state;
	const char *const *p = deny_patterns();
	bool gnupg = false, ecdsa = false;
	size_t n = 0;
	for (; p[n]; n++) {
		gnupg |= strcmp(p[n], ".gnupg") == 0;
		ecdsa |= strcmp(p[n], "id_ecdsa*") == 0;
	}
	assert_true(gnupg);
	assert_true(ecdsa);
	assert_int_equal(n, 14);
}

/* ---- scan ---------------------------------------------------------------- */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st != 0)
		fail_msg("command failed (%d): %s", st, cmd);
}

struct tree {
	char root[64];
	char outside[64];
};

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof *t);
	assert_non_null(t);
	snprintf(t->root, sizeof t->root, "/tmp/pd-deny-XXXXXX");
	snprintf(t->outside, sizeof t->outside, "/tmp/pd-deny-out-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	assert_non_null(mkdtemp(t->outside));
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	sh("rm -rf '%s' '%s'", t->root, t->outside);
	free(t);
	return 0;
}

static const struct deny_hit *find_hit(const struct deny_hits *h, const char *rel)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].relpath, rel) == 0)
			return &h->v[i];
	return NULL;
}

static void test_scan_tree(void **state)
{
	struct tree *t = *state;
	sh("cd '%s' && mkdir -p a/.ssh b/.docker c d src && touch a/.ssh/id_rsa a/.ssh/config "
	   "&& touch .env b/.docker/config.json b/.docker/other src/main.c src/id_rsa.pub "
	   "&& ln -s ../a c/.ssh && mkdir -p '%s/.aws' && touch '%s/.aws/credentials' "
	   "&& ln -s '%s' d/out && ln -s /nonexistent d/dangling "
	   "&& mkdir -p x/.config/gcloud y/.config/other && touch x/.config/gcloud/creds",
	   t->root, t->outside, t->outside, t->outside);

	_cleanup_close_ int fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct deny_hits h = { 0 };
	struct pd_err err = { 0 };
	int r = deny_scan(fd, NULL, &h, &err);
	if (r < 0)
		fail_msg("deny_scan: %s", err.msg);

	const struct deny_hit *x;
	assert_non_null(x = find_hit(&h, "a/.ssh"));
	assert_true(x->is_dir);
	assert_non_null(x = find_hit(&h, ".env"));
	assert_false(x->is_dir);
	assert_non_null(x = find_hit(&h, "b/.docker/config.json"));
	assert_false(x->is_dir);
	assert_non_null(x = find_hit(&h, "c/.ssh"));
	assert_false(x->is_dir); /* a symlink is a hit as itself */
	assert_non_null(x = find_hit(&h, "src/id_rsa.pub"));
	assert_non_null(x = find_hit(&h, "x/.config/gcloud"));
	assert_true(x->is_dir);
	/* Every hit agrees with deny_match. */
	for (size_t i = 0; i < h.n; i++)
		assert_true(deny_match(h.v[i].relpath, NULL));
	/* Not descended into a matched directory, no symlink followed. */
	assert_null(find_hit(&h, "a/.ssh/id_rsa"));
	assert_null(find_hit(&h, "a/.ssh/config"));
	assert_null(find_hit(&h, "d/out/.aws"));
	assert_null(find_hit(&h, "b/.docker/other"));
	assert_null(find_hit(&h, "y/.config/other"));
	assert_int_equal(h.n, 6);
	/* Sorted, relative, no leading '/'. */
	for (size_t i = 0; i < h.n; i++) {
		assert_true(h.v[i].relpath[0] != '/');
		if (i)
			assert_true(strcmp(h.v[i - 1].relpath, h.v[i].relpath) < 0);
	}
	deny_hits_free(&h);
	assert_null(h.v);
	assert_int_equal(h.n, 0);

	/* With ".env*" un-masked, .env is no longer reported. */
	const char *const unmask[] = { ".env*", NULL };
	r = deny_scan(fd, unmask, &h, &err);
	assert_int_equal(r, 0);
	assert_null(find_hit(&h, ".env"));
	assert_int_equal(h.n, 5);
	deny_hits_free(&h);

	/* The caller's dirfd still works and was not consumed. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

/* Make `levels` nested directories "d/d/d..." below root. */
static void make_deep(const char *root, int levels)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < levels; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		int next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		close(fd);
		fd = next;
	}
	assert_int_equal(mkdirat(fd, ".kube", 0755), 0);
	close(fd);
}

static void test_scan_depth_ok(void **state)
{
	struct tree *t = *state;
	make_deep(t->root, DENY_MAX_DEPTH);
	_cleanup_close_ int fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct deny_hits h = { 0 };
	struct pd_err err = { 0 };
	int r = deny_scan(fd, NULL, &h, &err);
	if (r < 0)
		fail_msg("deny_scan: %s", err.msg);
	assert_int_equal(h.n, 1);
	assert_true(h.v[0].is_dir);
	assert_int_equal(strlen(h.v[0].relpath), 2 * DENY_MAX_DEPTH + strlen(".kube"));
	deny_hits_free(&h);
}

static void test_scan_too_deep(void **state)
{
	struct tree *t = *state;
	make_deep(t->root, DENY_MAX_DEPTH + 1);
	_cleanup_close_ int fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct deny_hits h = { .v = (struct deny_hit *)&h, .n = 77 };
	struct pd_err err = { 0 };
	int r = deny_scan(fd, NULL, &h, &err);
	assert_true(r < 0);
	assert_string_equal(err.layer, "mount");
	assert_non_null(strstr(err.msg, "deeper than 64 levels"));
	assert_non_null(strstr(err.msg, "cannot scan it for credential files"));
	assert_string_equal(err.hint, "mount a narrower directory");
	/* Output untouched on failure. */
	assert_ptr_equal(h.v, (struct deny_hit *)&h);
	assert_int_equal(h.n, 77);
}

static void test_scan_too_many_hits(void **state)
{
	struct tree *t = *state;
	_cleanup_close_ int fd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i <= DENY_MAX_HITS; i++) {
		char name[32];
		snprintf(name, sizeof name, ".env%d", i);
		int f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(f >= 0);
		close(f);
	}
	struct deny_hits h = { 0 };
	struct pd_err err = { 0 };
	int r = deny_scan(fd, NULL, &h, &err);
	assert_true(r < 0);
	assert_string_equal(err.layer, "mount");
	assert_non_null(strstr(err.msg, "more than 4096"));
	assert_null(h.v);
}

static void test_scan_not_a_dir(void **state)
{
	(void)state;
	_cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct deny_hits h = { 0 };
	struct pd_err err = { 0 };
	assert_true(deny_scan(fd, NULL, &h, &err) < 0);
	assert_string_equal(err.layer, "mount");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_unmask),
		cmocka_unit_test(test_patterns_list),
		cmocka_unit_test_setup_teardown(test_scan_tree, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan_depth_ok, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan_too_deep, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan_too_many_hits, tree_setup, tree_teardown),
		cmocka_unit_test(test_scan_not_a_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
