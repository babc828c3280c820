/* test_build.c: images built from a spec, without building one (that takes
 * the network and minutes: tests/integration/30-image.sh and 31-agents.sh do).
 * The spec digest, what a build refuses before touching anything, the cache
 * fast path, ls/rm/prune on a fake state directory, and the tree walks that
 * make builds reproducible (manifest, diff, clearing, mtime clamping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/image.h"
#include "image/internal.h"
#include "spec/spec.h"

struct fixture {
	char dir[64];    /* scratch directory under /tmp, removed at the end */
	char state[128]; /* dir/state: PADDOCK_STATE_DIR for the cache tests */
};

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

/* Write text to dir/name, creating the parent directories. */
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

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static int setup(void **state)
{
	static struct fixture fx;
	snprintf(fx.dir, sizeof fx.dir, "/tmp/paddock-test-build-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.state, sizeof fx.state, "%s/state", fx.dir);
	setenv("PADDOCK_STATE_DIR", fx.state, 1);
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

/* The digest of a spec given as literals (lists NULL-terminated). */
static int digest_of(const char *base, const char *const *packages, const char *const *agents,
		     const char *run, char out[65], struct pd_err *err)
{
	struct pd_image_spec is = { .base = (char *)base, .packages = (char **)packages,
				    .agents = (char **)agents, .run = (char *)run };
	return image_spec_digest(&is, out, err);
}

static void digest_ok(const char *base, const char *const *packages, const char *const *agents,
		      const char *run, char out[65])
{
	struct pd_err err = { 0 };
	assert_int_equal(digest_of(base, packages, agents, run, out, &err), 0);
	assert_int_equal(strlen(out), 64);
	assert_int_equal(strspn(out, "0123456789abcdef"), 64);
}

static void test_digest_order_insensitive(void **state)
{
	(void)state;
	char a[65], b[65];
	static const char *const p1[] = { "jq", "hello", "python3", NULL };
	static const char *const p2[] = { "python3", "hello", "jq", "hello", NULL };
	static const char *const a1[] = { "opencode", "claude", "codex", NULL };
	static const char *const a2[] = { "codex", "claude", "opencode", "claude", NULL };
	digest_ok("debian:bookworm", p1, a1, "echo hi\n", a);
	digest_ok("debian:bookworm", p2, a2, "echo hi\n", b);
	assert_string_equal(a, b);
}

static void test_digest_sensitive(void **state)
{
	(void)state;
	char ref[65], d[65];
	static const char *const pkgs[] = { "hello", NULL };
	static const char *const more[] = { "hello", "jq", NULL };
	static const char *const agents[] = { "claude", NULL };
	digest_ok("debian:bookworm", pkgs, NULL, "echo a", ref);
	digest_ok("debian:bookworm", pkgs, NULL, "echo b", d);
	assert_string_not_equal(ref, d); /* run text */
	digest_ok("debian:bookworm", pkgs, NULL, "echo a ", d);
	assert_string_not_equal(ref, d); /* even whitespace */
	digest_ok("debian:bookworm", pkgs, NULL, NULL, d);
	assert_string_not_equal(ref, d); /* no run at all */
	digest_ok("debian:trixie", pkgs, NULL, "echo a", d);
	assert_string_not_equal(ref, d); /* base */
	digest_ok("debian:bookworm", more, NULL, "echo a", d);
	assert_string_not_equal(ref, d); /* a package more */
	digest_ok("debian:bookworm", pkgs, agents, "echo a", d);
	assert_string_not_equal(ref, d); /* an agent */
}

/* Spellings of one input give one digest: the digest names what is built. */
static void test_digest_canonical(void **state)
{
	(void)state;
	char a[65], b[65];
	static const char *const none[] = { NULL };
	static const char *const git[] = { "git", "curl", NULL };
	static const char *const nodejs[] = { "nodejs", NULL };
	static const char *const claude[] = { "claude", NULL };
	digest_ok("debian:bookworm", NULL, NULL, NULL, a);
	digest_ok("debian:12", none, none, "", b);
	assert_string_equal(a, b);
	digest_ok(NULL, NULL, NULL, NULL, b);
	assert_string_equal(a, b);
	digest_ok("", NULL, NULL, NULL, b);
	assert_string_equal(a, b);
	/* Packages every image has anyway, and those the agents bring. */
	digest_ok("debian:bookworm", git, NULL, NULL, b);
	assert_string_equal(a, b);
	digest_ok("debian:bookworm", NULL, claude, NULL, a);
	digest_ok("debian:bookworm", nodejs, claude, NULL, b);
	assert_string_equal(a, b);
}

/* A fixed spec has a fixed digest: changing what the digest covers, or how,
 * must be deliberate (and bump BUILD_RECIPE, which rebuilds every image). */
static void test_digest_golden(void **state)
{
	(void)state;
	char d[65];
	static const char *const pkgs[] = { "hello", NULL };
	digest_ok("debian:bookworm", pkgs, NULL, NULL, d);
	assert_string_equal(d, "c607de88eb6f7efcde7cdc12ae4806d9d896af516dc9d1e718d5c5b8a2d140a4");
}

static void test_unknown_agent(void **state)
{
	(void)state;
	char d[65] = "untouched";
	struct pd_err err = { 0 };
	static const char *const agents[] = { "claude", "aider", NULL };
	assert_true(digest_of("debian:bookworm", NULL, agents, NULL, d, &err) < 0);
	assert_string_equal(d, "untouched");
	assert_string_equal(err.layer, "image");
	assert_non_null(strstr(err.msg, "unknown agent 'aider'"));
	assert_non_null(strstr(err.hint, "claude, codex, opencode"));
	assert_null(image_agent_package("aider"));
	assert_non_null(strstr(image_agent_package("claude"), "@anthropic-ai/claude-code@"));
	assert_non_null(strstr(image_agent_package("codex"), "@openai/codex@"));
	assert_non_null(strstr(image_agent_package("opencode"), "opencode-ai@"));
}

static void test_bad_package(void **state)
{
	(void)state;
	static const char *const bad[] = { "a,b", "-x", "Hello", "x", "a b", "hello=", "h=-1",
					   "", NULL };
	for (const char *const *p = bad; *p; p++) {
		const char *pkgs[] = { *p, NULL };
		char d[65];
		struct pd_err err = { 0 };
		assert_true(digest_of(NULL, pkgs, NULL, NULL, d, &err) < 0);
		assert_non_null(strstr(err.msg, "is not a Debian package name"));
	}
	static const char *const good[] = { "g++", "libc6-dev", "python3.11", "hello=2.10-3", NULL };
	char d[65];
	digest_ok(NULL, good, NULL, NULL, d);
}

static void test_bad_base(void **state)
{
	struct fixture *fx = *state;
	static const char *const malformed[] = { "debian", "Debian:12", "debian:", ":12",
						  "debian:bookworm slim", NULL };
	for (const char *const *b = malformed; *b; b++) {
		char d[65];
		struct pd_err err = { 0 };
		assert_true(digest_of(*b, NULL, NULL, NULL, d, &err) < 0);
		assert_string_equal(err.layer, "image");
		assert_non_null(strstr(err.msg, "is not of the form NAME:TAG"));
	}
	/* Well-formed but not buildable: refused before anything is touched. */
	static const char *const unsupported[] = { "debian:trixie", "ubuntu:24.04", NULL };
	for (const char *const *b = unsupported; *b; b++) {
		struct pd_image_spec is = { .base = (char *)*b };
		struct pd_err err = { 0 };
		char *out = NULL;
		assert_int_equal(image_build(&is, false, NULL, NULL, &out, &err), -ENOTSUP);
		assert_null(out);
		assert_string_equal(err.layer, "image");
		assert_non_null(strstr(err.msg, "is not supported"));
		assert_non_null(strstr(err.hint, "debian:bookworm"));
		assert_false(exists(fx->state, "images"));
	}
}

/* A complete image in the cache comes back without a build (and without the
 * root or mmdebstrap a build needs). */
static void test_cache_hit(void **state)
{
	struct fixture *fx = *state;
	static const char *const pkgs[] = { "hello", NULL };
	struct pd_image_spec is = { .packages = (char **)pkgs };
	char d[65], img[512], sub[600];
	digest_ok(NULL, pkgs, NULL, NULL, d);
	snprintf(img, sizeof img, "%s/images/%s", fx->state, d);
	write_file(img, "rootfs/bin/sh", "");
	write_file(img, "ok", "ok\n");
	write_file(img, "tree.sha256", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");

	struct image_build_opts o = { 0 };
	struct image_build_result res;
	struct pd_err err = { 0 };
	assert_int_equal(image_build_ex(&is, &o, &res, &err), 0);
	snprintf(sub, sizeof sub, "%s/rootfs", img);
	assert_string_equal(res.rootfs, sub);
	assert_string_equal(res.digest, d);
	assert_true(res.cache_hit);
	assert_string_equal(res.tree, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	image_build_result_free(&res);
	char *out = NULL;
	assert_int_equal(image_build(&is, false, NULL, NULL, &out, &err), 0);
	assert_string_equal(out, sub);
	free(out);
	sh("rm -rf '%s'", fx->state);
}

/* A fake built image: images/<digest>/{ok,rootfs,meta.json}. */
static void fake_image(const char *state, const char *digest, const char *meta, bool complete)
{
	char img[512];
	snprintf(img, sizeof img, "%s/images/%s", state, digest);
	write_file(img, "rootfs/bin/sh", "");
	if (meta)
		write_file(img, "meta.json", meta);
	if (complete)
		write_file(img, "ok", "ok\n");
}

#define D1 "ab12000000000000000000000000000000000000000000000000000000000001"
#define D2 "ab34000000000000000000000000000000000000000000000000000000000002"
#define D3 "cd00000000000000000000000000000000000000000000000000000000000003"

static void test_list(void **state)
{
	struct fixture *fx = *state;
	fake_image(fx->state, D1,
		   "{\"base\": \"debian:bookworm\", \"packages\": [\"hello\"], \"agents\": "
		   "[\"claude\"], \"run\": \"true\", \"size\": 1234, \"created\": 1700000100}",
		   true);
	fake_image(fx->state, D2, NULL, false);
	write_file(fx->state, "images/default/rootfs/bin/sh", "");
	write_file(fx->state, "images/default/ok", "ok\n");
	write_file(fx->state, "images/myimport/rootfs/bin/sh", "");
	write_file(fx->state, "images/myimport/ok", "ok\n");
	write_file(fx->state, "images/" D1 ".lock", "");
	write_file(fx->state, "images/.import-123/rootfs/bin/sh", "");

	struct image_entry *v = NULL;
	struct pd_err err = { 0 };
	int n = image_list(&v, &err);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].name, "default");
	assert_int_equal(v[0].kind, IMAGE_DEFAULT);
	assert_true(v[0].complete);
	bool seen1 = false, seen2 = false, seen_import = false;
	for (int i = 1; i < n; i++) {
		if (!strcmp(v[i].name, D1)) {
			seen1 = true;
			assert_int_equal(v[i].kind, IMAGE_BUILT);
			assert_true(v[i].complete);
			assert_string_equal(v[i].base, "debian:bookworm");
			assert_string_equal(v[i].packages[0], "hello");
			assert_null(v[i].packages[1]);
			assert_string_equal(v[i].agents[0], "claude");
			assert_true(v[i].has_run);
			assert_int_equal(v[i].size, 1234);
			assert_int_equal(v[i].created, 1700000100);
		} else if (!strcmp(v[i].name, D2)) {
			seen2 = true;
			assert_false(v[i].complete);
		} else if (!strcmp(v[i].name, "myimport")) {
			seen_import = true;
			assert_int_equal(v[i].kind, IMAGE_IMPORTED);
		}
	}
	assert_true(seen1 && seen2 && seen_import);
	image_list_free(v, (size_t)n);
	sh("rm -rf '%s'", fx->state);
}

static void test_remove(void **state)
{
	struct fixture *fx = *state;
	char images[256], removed[65] = "";
	snprintf(images, sizeof images, "%s/images", fx->state);
	fake_image(fx->state, D1, NULL, true);
	fake_image(fx->state, D2, NULL, true);
	write_file(images, D1 ".lock", "");
	struct pd_err err = { 0 };

	assert_int_equal(image_remove("ab", removed, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "ambiguous: 2 images"));
	assert_int_equal(image_remove("ff", removed, &err), -ENOENT);
	assert_true(image_remove("xyz", removed, &err) < 0);
	assert_non_null(strstr(err.msg, "not an image digest"));
	assert_true(image_remove("", removed, &err) < 0);
	assert_string_equal(removed, "");

	assert_int_equal(image_remove("ab1", removed, &err), 0);
	assert_string_equal(removed, D1);
	assert_false(exists(images, D1));
	assert_false(exists(images, D1 ".lock"));
	assert_true(exists(images, D2));

	/* An image being built is not removed. */
	char lock[512];
	snprintf(lock, sizeof lock, "%s/%s.lock", images, D2);
	int fd = image_lock(lock, false, "test", NULL, NULL, &err);
	assert_true(fd >= 0);
	assert_int_equal(image_remove(D2, removed, &err), -EWOULDBLOCK);
	assert_true(exists(images, D2));
	close(fd);
	assert_int_equal(image_remove(D2, removed, &err), 0);
	sh("rm -rf '%s'", fx->state);
}

static void test_prune(void **state)
{
	struct fixture *fx = *state;
	char images[256];
	snprintf(images, sizeof images, "%s/images", fx->state);
	fake_image(fx->state, D1, "{\"size\": 1000}", true);
	fake_image(fx->state, D2, "{\"size\": 24}", false); /* a failed build */
	write_file(images, D3 ".lock", "");		 /* a lock without its image */
	write_file(images, "default/rootfs/bin/sh", "");
	write_file(images, "default/ok", "ok\n");
	write_file(images, "default/.tmp-99/etc/passwd", ""); /* an interrupted default build */
	write_file(images, "myimport/rootfs/bin/sh", "");

	unsigned long long freed = 0;
	struct pd_err err = { 0 };
	assert_int_equal(image_prune(NULL, NULL, &freed, &err), 2);
	assert_int_equal(freed, 1024);
	assert_false(exists(images, D1));
	assert_false(exists(images, D2));
	assert_false(exists(images, D3 ".lock"));
	assert_false(exists(images, "default/.tmp-99"));
	assert_true(exists(images, "default/rootfs/bin/sh"));
	assert_true(exists(images, "myimport/rootfs/bin/sh"));
	assert_int_equal(image_prune(NULL, NULL, &freed, &err), 0);
	sh("rm -rf '%s'", fx->state);
}

/* ---- trees -------------------------------------------------------------- */

static int open_dir(const char *dir, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* The manifest of dir/name (malloc'd). */
static char *manifest_of(const char *dir, const char *name)
{
	_cleanup_close_ int fd = open_dir(dir, name);
	char *text = NULL;
	size_t len = 0, entries = 0;
	unsigned long long bytes = 0;
	struct pd_err err = { 0 };
	assert_int_equal(tree_manifest(fd, &text, &len, &entries, &bytes, &err), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_tree_manifest(void **state)
{
	struct fixture *fx = *state;
	char t[256];
	snprintf(t, sizeof t, "%s/t1", fx->dir);
	write_file(t, "a/b", "hello\n");
	write_file(t, "a.c", "");
	sh("cd '%s' && chmod 0755 . a && chmod 0640 a/b && chmod 0644 a.c && "
	   "ln -s /etc/passwd link && mkfifo fifo && chmod 0600 fifo && touch 'sp ace' && "
	   "chmod 0644 'sp ace' && chown 12:34 a.c", t);
	_cleanup_free_ char *m = manifest_of(fx->dir, "t1");
	/* Walk order: "a" and everything in it before "a.c". */
	assert_string_equal(
		m, "/ d 0755 0 0 0 -\n"
		   "/a d 0755 0 0 0 -\n"
		   "/a/b f 0640 0 0 6 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n"
		   "/a.c f 0644 12 34 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "/fifo p 0600 0 0 0 -\n"
		   "/link l 0777 0 0 11 /etc/passwd\n"
		   "/sp\\x20ace f 0644 0 0 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");

	/* The same tree elsewhere has the same manifest; a change shows in the diff. */
	char t2[256];
	snprintf(t2, sizeof t2, "%s/t2", fx->dir);
	sh("cp -a '%s' '%s'", t, t2);
	_cleanup_free_ char *same = manifest_of(fx->dir, "t2");
	assert_string_equal(m, same);
	char *report = (char *)"untouched";
	assert_int_equal(tree_manifest_diff(m, same, 10, &report), 0);
	assert_null(report);
	sh("cd '%s' && echo changed > a/b && chmod 0600 a.c && rm fifo && mkdir new && "
	   "rm link && ln -s /etc/shadow link", t2);
	_cleanup_free_ char *changed = manifest_of(fx->dir, "t2");
	assert_int_equal(tree_manifest_diff(m, changed, 10, &report), 5);
	assert_string_equal(report, "~ /a/b: size 6 -> 8, content\n"
				    "~ /a.c: mode 0644 -> 0600\n"
				    "- /fifo\n"
				    "~ /link: target /etc/passwd -> /etc/shadow\n"
				    "+ /new\n");
	free(report);
	assert_int_equal(tree_manifest_diff(m, changed, 2, &report), 5);
	assert_non_null(strstr(report, "... 3 more\n"));
	free(report);

	char d1[65], d2[65];
	struct pd_err err = { 0 };
	assert_int_equal(tree_sha256_hex(m, strlen(m), d1, &err), 0);
	assert_int_equal(tree_sha256_hex(changed, strlen(changed), d2, &err), 0);
	assert_string_not_equal(d1, d2);
}

/* Clearing never follows a symlink out of the tree; tree_open_dir refuses
 * to go through one. */
static void test_tree_clear(void **state)
{
	struct fixture *fx = *state;
	char t[256], outside[256];
	snprintf(t, sizeof t, "%s/t3", fx->dir);
	snprintf(outside, sizeof outside, "%s/outside", fx->dir);
	write_file(outside, "keep", "precious\n");
	write_file(t, "var/log/apt/history.log", "x");
	write_file(t, "var/log/dpkg.log", "x");
	write_file(t, "var/log/linked.log", "x");
	write_file(t, "var/cache/apt/archives/x.deb", "x");
	write_file(t, "tmp/sub/file", "x");
	sh("ln -s '%s' '%s/var/log/evil' && ln -s '%s' '%s/tmp/evil' && ln -s '%s' '%s/linked' && "
	   "ln -s '%s/keep' '%s/var/log/keep.log' && ln '%s/var/log/linked.log' '%s/hardlink'",
	   outside, t, outside, t, outside, t, outside, t, t, t);
	_cleanup_close_ int root = open_dir(fx->dir, "t3");
	struct pd_err err = { 0 };

	/* Logs are emptied; a symlink is left alone, a hard link removed. */
	int log = tree_open_dir(root, "var/log");
	assert_true(log >= 0);
	assert_int_equal(tree_clear(log, TREE_CLEAR_EMPTY, "var/log", &err), 0);
	close(log);
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/var/log/apt/history.log", t);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	snprintf(path, sizeof path, "%s/var/log/dpkg.log", t);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_true(exists(t, "var/log/evil"));
	assert_false(exists(t, "var/log/linked.log"));
	snprintf(path, sizeof path, "%s/hardlink", t);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1);
	snprintf(path, sizeof path, "%s/keep", outside);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 9);

	/* apt's cache: the files go, the directories stay. */
	int apt = tree_open_dir(root, "var/cache/apt");
	assert_true(apt >= 0);
	assert_int_equal(tree_clear(apt, TREE_CLEAR_FILES, "var/cache/apt", &err), 0);
	close(apt);
	assert_true(exists(t, "var/cache/apt/archives"));
	assert_false(exists(t, "var/cache/apt/archives/x.deb"));

	int tmp = tree_open_dir(root, "tmp");
	assert_true(tmp >= 0);
	assert_int_equal(tree_clear(tmp, TREE_CLEAR_ALL, "tmp", &err), 0);
	close(tmp);
	assert_true(exists(t, "tmp"));
	assert_false(exists(t, "tmp/sub"));
	assert_true(exists(outside, "keep"));

	int r = tree_open_dir(root, "linked");
	assert_true(r == -ELOOP || r == -ENOTDIR);
	assert_int_equal(tree_open_dir(root, "linked/keep"), -ELOOP);
	assert_int_equal(tree_open_dir(root, "missing"), -ENOENT);
}

static void test_tree_clamp(void **state)
{
	struct fixture *fx = *state;
	char t[256];
	snprintf(t, sizeof t, "%s/t4", fx->dir);
	write_file(t, "new/file", "x");
	write_file(t, "old", "x");
	sh("cd '%s' && ln -s old link && touch -h -d @1800000000 link && "
	   "touch -d @1600000000.5 old && touch -d @1900000000 new/file", t);
	_cleanup_close_ int root = open_dir(fx->dir, "t4");
	struct pd_err err = { 0 };
	assert_int_equal(tree_clamp_mtimes(root, 1700000000, &err), 0);
	static const struct {
		const char *name;
		long long sec, nsec;
	} want[] = {
		{ ".", 1700000000, 0 },	     { "new", 1700000000, 0 },
		{ "new/file", 1700000000, 0 }, { "old", 1600000000, 500000000 },
		{ "link", 1700000000, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", t, want[i].name);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_mtim.tv_sec, want[i].sec);
		assert_int_equal(st.st_mtim.tv_nsec, want[i].nsec);
		assert_int_equal(st.st_atim.tv_sec, want[i].sec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_order_insensitive),
		cmocka_unit_test(test_digest_sensitive),
		cmocka_unit_test(test_digest_canonical),
		cmocka_unit_test(test_digest_golden),
		cmocka_unit_test(test_unknown_agent),
		cmocka_unit_test(test_bad_package),
		cmocka_unit_test(test_bad_base),
		cmocka_unit_test(test_cache_hit),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_tree_manifest),
		cmocka_unit_test(test_tree_clear),
		cmocka_unit_test(test_tree_clamp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
