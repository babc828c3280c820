/* test_image.c: image_state_dir, image_resolve, image_mirrors and the
 * default image's fast path. Never builds the real default image: that takes
 * minutes and the network (see image_default's manual check in the report).
 * Run from the source tree, or set PADDOCK_SRCDIR to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/image.h"

struct fixture {
	char dir[64];     /* scratch directory under /tmp, removed at the end */
	char rootfs[128]; /* busybox rootfs made by tests/lib/mkrootfs.sh */
};

/* Run a shell command, failing the test if it does not exit 0. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* Write text to dir/name, creating the parent directory. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	sh("mkdir -p '%s'", path);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	static struct fixture fx;
	const char *src = getenv("PADDOCK_SRCDIR");
	snprintf(fx.dir, sizeof fx.dir, "/tmp/paddock-test-image-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.rootfs, sizeof fx.rootfs, "%s/rootfs", fx.dir);
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "'%s/tests/lib/mkrootfs.sh' '%s'", src ? src : ".", fx.rootfs);
	if (system(cmd) != 0)
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[2 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_state_dir(void **state)
{
	(void)state;
	char *saved = getenv("PADDOCK_STATE_DIR") ? strdup(getenv("PADDOCK_STATE_DIR")) : NULL;
	unsetenv("PADDOCK_STATE_DIR");
	assert_string_equal(image_state_dir(), "/var/lib/paddock");
	setenv("PADDOCK_STATE_DIR", "/tmp/somewhere", 1);
	assert_string_equal(image_state_dir(), "/tmp/somewhere");
	setenv("PADDOCK_STATE_DIR", "relative/dir", 1);
	assert_string_equal(image_state_dir(), "/var/lib/paddock");
	setenv("PADDOCK_STATE_DIR", "", 1);
	assert_string_equal(image_state_dir(), "/var/lib/paddock");
	if (saved)
		setenv("PADDOCK_STATE_DIR", saved, 1);
	else
		unsetenv("PADDOCK_STATE_DIR");
	free(saved);
}

static void test_resolve_rootfs(void **state)
{
	struct fixture *fx = *state;
	struct pd_err err = { 0 };
	char *out = NULL;
	char expect[PATH_MAX];
	assert_non_null(realpath(fx->rootfs, expect));
	assert_int_equal(image_resolve(fx->rootfs, &out, NULL, NULL, &err), 0);
	assert_string_equal(out, expect);
	free(out);

	/* Through a symlink and a trailing slash: the canonical path comes back. */
	char link[PATH_MAX], with_slash[PATH_MAX + 2];
	snprintf(link, sizeof link, "%s/link", fx->dir);
	assert_int_equal(symlink(fx->rootfs, link), 0);
	snprintf(with_slash, sizeof with_slash, "%s/", link);
	out = NULL;
	assert_int_equal(image_resolve(with_slash, &out, NULL, NULL, &err), 0);
	assert_string_equal(out, expect);
	free(out);
	assert_int_equal(unlink(link), 0);
}

static void test_resolve_empty_dir(void **state)
{
	struct fixture *fx = *state;
	char empty[PATH_MAX];
	snprintf(empty, sizeof empty, "%s/empty", fx->dir);
	assert_int_equal(mkdir(empty, 0755), 0);
	struct pd_err err = { 0 };
	char *out = (char *)"untouched";
	assert_true(image_resolve(empty, &out, NULL, NULL, &err) < 0);
	assert_string_equal(out, "untouched");
	assert_string_equal(err.layer, "image");
	assert_non_null(strstr(err.msg, "is not a root filesystem directory (no /bin/sh)"));
	assert_non_null(strstr(err.msg, empty));
	assert_true(err.hint[0] != '\0');
}

static void test_resolve_missing(void **state)
{
	struct fixture *fx = *state;
	char missing[PATH_MAX];
	snprintf(missing, sizeof missing, "%s/does-not-exist", fx->dir);
	struct pd_err err = { 0 };
	char *out = NULL;
	assert_int_equal(image_resolve(missing, &out, NULL, NULL, &err), -ENOENT);
	assert_null(out);
	assert_string_equal(err.layer, "image");
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(err.msg, missing));
}

static void test_resolve_not_dir(void **state)
{
	struct fixture *fx = *state;
	char file[PATH_MAX];
	snprintf(file, sizeof file, "%s/rootfs/etc/passwd", fx->dir);
	struct pd_err err = { 0 };
	char *out = NULL;
	assert_true(image_resolve(file, &out, NULL, NULL, &err) < 0);
	assert_null(out);
	assert_string_equal(err.layer, "image");
}

/* /bin/sh is looked up inside the image: an absolute symlink means the image's
 * file, not the host's. */
static void test_resolve_symlink_in_root(void **state)
{
	struct fixture *fx = *state;
	char root[PATH_MAX], path[PATH_MAX + 32];
	struct pd_err err = { 0 };
	char *out = NULL;

	snprintf(root, sizeof root, "%s/abs", fx->dir);
	write_file(root, "bin/busybox", "not really busybox\n");
	snprintf(path, sizeof path, "%s/bin/sh", root);
	assert_int_equal(symlink("/bin/busybox", path), 0);
	assert_int_equal(image_resolve(root, &out, NULL, NULL, &err), 0);
	free(out);
	out = NULL;

	/* /usr/bin/env exists on the host but not in this image. */
	snprintf(root, sizeof root, "%s/hostlink", fx->dir);
	write_file(root, "bin/.keep", "");
	snprintf(path, sizeof path, "%s/bin/sh", root);
	assert_int_equal(symlink("/usr/bin/env", path), 0);
	assert_true(image_resolve(root, &out, NULL, NULL, &err) < 0);
	assert_null(out);
	assert_string_equal(err.layer, "image");
}

/* A default image that is already complete is returned without building. */
static void test_default_ready(void **state)
{
	struct fixture *fx = *state;
	char stdir[PATH_MAX], expect[PATH_MAX + 64];
	snprintf(stdir, sizeof stdir, "%s/state", fx->dir);
	sh("mkdir -p '%s/images/default/rootfs'", stdir);
	write_file(stdir, "images/default/ok", "ok\n");
	write_file(stdir, "images/default/rootfs/bin/sh", "");
	snprintf(expect, sizeof expect, "%s/images/default/rootfs", stdir);

	char *saved = getenv("PADDOCK_STATE_DIR") ? strdup(getenv("PADDOCK_STATE_DIR")) : NULL;
	setenv("PADDOCK_STATE_DIR", stdir, 1);
	struct pd_err err = { 0 };
	char *path = image_default(NULL, NULL, &err);
	assert_non_null(path);
	assert_string_equal(path, expect);
	free(path);
	char *out = NULL;
	assert_int_equal(image_resolve(NULL, &out, NULL, NULL, &err), 0);
	assert_string_equal(out, expect);
	free(out);
	if (saved)
		setenv("PADDOCK_STATE_DIR", saved, 1);
	else
		unsetenv("PADDOCK_STATE_DIR");
	free(saved);
}

/* Compare a mirror vector with the expected lines. */
static void assert_mirrors(const char *etc_apt, const char *const *expect, size_t n)
{
	_cleanup_strv_ char **v = NULL;
	struct pd_err err = { 0 };
	assert_int_equal(image_mirrors(etc_apt, &v, &err), (int)n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], expect[i]);
	assert_null(v[n]);
}

static void test_mirrors(void **state)
{
	struct fixture *fx = *state;
	char etc[PATH_MAX];
	snprintf(etc, sizeof etc, "%s/apt1", fx->dir);
	write_file(etc, "sources.list",
		   "# comment\n"
		   "deb http://mirror.example/debian bookworm main contrib # trailing\n"
		   "deb-src http://mirror.example/debian bookworm main\n"
		   "deb [arch=amd64 signed-by=/k.gpg] http://opts.example/debian bookworm-updates main\n"
		   "deb [ trusted=yes ] http://spaced.example/debian bookworm-security main\n"
		   "deb http://mirror.example/debian bookworm contrib\n"
		   "deb http://other.example/debian trixie main\n"
		   "deb http://mirror.example/debian bookworm main\n");
	write_file(etc, "sources.list.d/b.sources",
		   "Types: deb deb-src\n"
		   "URIs: http://a.example/debian\n"
		   "  http://b.example/debian\n"
		   "Suites: bookworm bookworm-updates\n"
		   "Components: main non-free-firmware\n"
		   "Signed-By:\n"
		   " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
		   " .\n"
		   " -----END PGP PUBLIC KEY BLOCK-----\n"
		   "\n"
		   "# a disabled one\n"
		   "Types: deb\n"
		   "URIs: http://off.example/debian\n"
		   "Suites: bookworm\n"
		   "Components: main\n"
		   "Enabled: no\n"
		   "\n"
		   "types: deb\n"
		   "uris: http://sec.example/debian-security\n"
		   "suites: bookworm-security\n"
		   "components: main\n");
	write_file(etc, "sources.list.d/a.list", "deb http://first.example/debian bookworm main\n");
	write_file(etc, "sources.list.d/c.list.disabled",
		   "deb http://ignored.example/debian bookworm main\n");
	write_file(etc, "sources.list.d/d.sources.bak",
		   "Types: deb\nURIs: http://ignored.example/\nSuites: bookworm\nComponents: main\n");
	static const char *const expect[] = {
		"deb http://mirror.example/debian bookworm main",
		"deb http://opts.example/debian bookworm-updates main",
		"deb http://spaced.example/debian bookworm-security main",
		"deb http://first.example/debian bookworm main",
		"deb http://a.example/debian bookworm main",
		"deb http://a.example/debian bookworm-updates main",
		"deb http://b.example/debian bookworm main",
		"deb http://b.example/debian bookworm-updates main",
		"deb http://sec.example/debian-security bookworm-security main",
	};
	assert_mirrors(etc, expect, ARRAY_SIZE(expect));
}

static void test_mirrors_fallback(void **state)
{
	struct fixture *fx = *state;
	char etc[PATH_MAX];

	/* Nothing at all: the default mirror. */
	snprintf(etc, sizeof etc, "%s/apt-none", fx->dir);
	static const char *const none[] = { "deb http://deb.debian.org/debian bookworm main" };
	assert_mirrors(etc, none, 1);

	/* Security only: the default mirror first, then what was found. */
	snprintf(etc, sizeof etc, "%s/apt-sec", fx->dir);
	write_file(etc, "sources.list.d/debian.sources",
		   "Types: deb\n"
		   "URIs: http://security.example/debian-security\n"
		   "Suites: bookworm-security\n"
		   "Components: main\n");
	static const char *const sec[] = {
		"deb http://deb.debian.org/debian bookworm main",
		"deb http://security.example/debian-security bookworm-security main",
	};
	assert_mirrors(etc, sec, ARRAY_SIZE(sec));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_resolve_rootfs),
		cmocka_unit_test(test_resolve_empty_dir),
		cmocka_unit_test(test_resolve_missing),
		cmocka_unit_test(test_resolve_not_dir),
		cmocka_unit_test(test_resolve_symlink_in_root),
		cmocka_unit_test(test_default_ready),
		cmocka_unit_test(test_mirrors),
		cmocka_unit_test(test_mirrors_fallback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
