/* test_import.c: image_import on archives built here by tests/lib/mkarchive.py:
 * a root filesystem tarball in every compression, docker save with whiteouts,
 * OCI layouts (directory and tar, gzip and zstd layers), and hostile archives,
 * each of which must be refused with nothing written outside the store and
 * no temp dir left. Needs root (owners are kept). Run from the source tree,
 * or set PADDOCK_SRCDIR to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/image.h"

struct fixture {
	char dir[64];        /* scratch directory, removed at the end */
	char state[128];     /* PADDOCK_STATE_DIR */
	char images[160];    /* state/images */
	char canary[128];    /* outside the store: hostile archives aim here */
	char src[PATH_MAX];  /* the source tree */
	char progress[8192]; /* progress lines of the last import */
};

static struct fixture fx;

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

/* fx.dir/name, in a static buffer (one at a time per call site is enough). */
static const char *scratch(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", fx.dir, name);
	return b;
}

/* Build an archive with mkarchive.py: KIND OUT [ARG]. */
static void gen(const char *kind, const char *out, const char *arg)
{
	sh("python3 '%s/tests/lib/mkarchive.py' %s '%s' '%s'", fx.src, kind, out, arg ? arg : "");
}

static void progress(void *ctx, const char *line)
{
	(void)ctx;
	size_t len = strlen(fx.progress);
	snprintf(fx.progress + len, sizeof fx.progress - len, "%s\n", line);
}

/* Import file as name with limits (NULL: the defaults). Returns what
 * image_import_with_limits returns; *out and err as it fills them. */
static int try_import(const char *file, const char *name, const struct image_import_limits *lim,
		      char **out, struct pd_err *err)
{
	fx.progress[0] = '\0';
	*err = (struct pd_err){ 0 };
	return image_import_with_limits(file, name, lim, progress, NULL, out, err);
}

/* Import that must succeed; returns the rootfs path (malloc'd). */
static char *import_ok(const char *file, const char *name)
{
	char *out = NULL, buf[1200];
	struct pd_err err;
	int r = try_import(file, name, NULL, &out, &err);
	if (r < 0)
		fail_msg("import of %s failed: %s", file, pd_err_format(&err, buf, sizeof buf));
	assert_non_null(out);
	return out;
}

/* Nothing left behind: no .import-* in the store, no image called name, and
 * the canary directory holds its one file, unchanged. */
static void assert_clean(const char *name)
{
	DIR *d = opendir(fx.images);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strncmp(e->d_name, ".import-", 8) == 0)
				fail_msg("left behind: %s/%s", fx.images, e->d_name);
		closedir(d);
	}
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", fx.images, name);
	assert_int_equal(lstat(path, &st), -1);
	d = opendir(fx.canary);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	assert_int_equal(n, 1);
	snprintf(path, sizeof path, "%s/file", fx.canary);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[64] = "";
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_string_equal(line, "canary\n");
	assert_int_equal(lstat("/escape", &st), -1);
	assert_int_equal(lstat("/abs", &st), -1);
}

/* Import that must fail with code (0: any) and a message containing needle. */
static void import_refused(const char *file, const char *name,
			   const struct image_import_limits *lim, int code, const char *needle)
{
	char *out = NULL, buf[1200];
	struct pd_err err;
	int r = try_import(file, name, lim, &out, &err);
	pd_err_format(&err, buf, sizeof buf);
	if (r >= 0)
		fail_msg("import of %s (%s) succeeded", file, name);
	assert_null(out);
	if (code && r != -code)
		fail_msg("import of %s: want -%d, got %d: %s", file, code, r, buf);
	if (needle && !strstr(buf, needle))
		fail_msg("import of %s: '%s' not in: %s", file, needle, buf);
	assert_clean(name);
}

/* The content of root/rel, or "" (static buffer). */
static const char *content(const char *root, const char *rel)
{
	static char buf[256];
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static bool exists(const char *root, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static struct stat lstat_ok(const char *root, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", root, rel);
	if (lstat(path, &st) < 0)
		fail_msg("missing: %s", path);
	return st;
}

/* Remove the image name from the store. */
static void remove_image(const char *name)
{
	sh("rm -rf '%s/%s'", fx.images, name);
}

static int setup(void **state)
{
	const char *src = getenv("PADDOCK_SRCDIR");
	if (!realpath(src ? src : ".", fx.src))
		return -1;
	snprintf(fx.dir, sizeof fx.dir, "/tmp/paddock-test-import-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.state, sizeof fx.state, "%s/state", fx.dir);
	snprintf(fx.images, sizeof fx.images, "%s/images", fx.state);
	snprintf(fx.canary, sizeof fx.canary, "%s/canary", fx.dir);
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && echo canary > '%s/file'", fx.canary, fx.canary);
	if (system(cmd) != 0)
		return -1;
	setenv("PADDOCK_STATE_DIR", fx.state, 1);
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[2 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- good archives ------------------------------------------------------ */

/* The root filesystem of mkarchive.py's rootfs kind, as imported. */
static void check_rootfs(const char *root)
{
	assert_string_equal(content(root, "etc/os-release"), "ID=paddock-test\n");
	struct stat st = lstat_ok(root, "etc/os-release"),
		    h = lstat_ok(root, "etc/os-release.hard");
	assert_int_equal(st.st_ino, h.st_ino);
	assert_int_equal(st.st_mtim.tv_sec, 1234567890);
	char target[64] = "";
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/etc/link", root);
	assert_int_equal(readlink(path, target, sizeof target - 1), 10);
	assert_string_equal(target, "os-release");
	assert_string_equal(content(root, "etc/caf\xc3\xa9"), "utf-8 name\n");

	st = lstat_ok(root, "usr/bin/su");
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 0);
	st = lstat_ok(root, "home/user");
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	st = lstat_ok(root, "home/user/notes");
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_mode & 07777, 0600);
	st = lstat_ok(root, ".");
	assert_int_equal(st.st_mode & 07777, 0755);

	/* Device nodes and fifos are skipped, their directories kept. */
	assert_true(exists(root, "dev"));
	assert_false(exists(root, "dev/null"));
	assert_false(exists(root, "run/fifo"));
	assert_string_equal(content(root, "implicit/a/b/file"), "parents not listed\n");
	st = lstat_ok(root, "implicit/a");
	assert_int_equal(st.st_mode & 07777, 0755);

	/* Extended attributes: user.* and a v2 capability kept, the rest not. */
	char val[64];
	snprintf(path, sizeof path, "%s/etc/xattrs", root);
	ssize_t n = lgetxattr(path, "user.test", val, sizeof val);
	if (n >= 0 || errno != ENOTSUP) {
		assert_int_equal(n, 5);
		assert_memory_equal(val, "hello", 5);
	}
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", val, sizeof val), -1);
	assert_int_equal(lgetxattr(path, "user.overlay.redirect", val, sizeof val), -1);
	snprintf(path, sizeof path, "%s/usr/bin/ping", root);
	assert_int_equal(lgetxattr(path, "security.capability", val, sizeof val), 20);
}

static void test_rootfs_targz(void **state)
{
	(void)state;
	const char *file = scratch("rootfs.tar.gz");
	gen("rootfs", file, NULL);
	char *root = import_ok(file, "plain");
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/plain/rootfs", fx.images);
	assert_string_equal(root, want);
	check_rootfs(root);
	assert_non_null(strstr(fx.progress, "skipped 1 device nodes, 1 fifos"));
	assert_non_null(strstr(fx.progress, "dropped 2 extended attributes"));

	/* The store is root's alone; ok and meta.json are there. */
	struct stat st;
	assert_int_equal(stat(fx.images, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_true(exists(fx.images, "plain/ok"));
	char path[PATH_MAX], sum[128];
	snprintf(path, sizeof path, "%s/plain/meta.json", fx.images);
	json_t *meta = json_load_file(path, 0, NULL);
	assert_non_null(meta);
	assert_string_equal(json_string_value(json_object_get(meta, "format")), "rootfs-tarball");
	assert_string_equal(json_string_value(json_object_get(meta, "source")), file);
	assert_string_equal(json_string_value(json_object_get(meta, "name")), "plain");
	assert_int_equal(json_array_size(json_object_get(meta, "layers")), 1);
	assert_true(json_integer_value(json_object_get(meta, "created")) > 1700000000);
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "sha256sum '%s'", file);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%64s", sum + 7), 1);
	pclose(p);
	memcpy(sum, "sha256:", 7);
	assert_string_equal(json_string_value(json_object_get(meta, "digest")), sum);
	assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "layers"), 0)),
			    sum);
	json_decref(meta);
	free(root);
	remove_image("plain");
}

static void test_rootfs_compressions(void **state)
{
	(void)state;
	static const char *const files[] = { "r.tar", "r.tar.xz", "r.tar.bz2", "r.tar.zst" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (strstr(files[i], "zst") && system("command -v zstd >/dev/null") != 0)
			continue;
		const char *file = scratch(files[i]);
		gen("rootfs", file, NULL);
		char *root = import_ok(file, "comp");
		check_rootfs(root);
		free(root);
		remove_image("comp");
	}
}

static void test_default_name(void **state)
{
	(void)state;
	const char *file = scratch("My Image_1.0.TAR.GZ");
	gen("rootfs", file, NULL);
	char *root = import_ok(file, NULL);
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/my-image_1.0/rootfs", fx.images);
	assert_string_equal(root, want);
	free(root);
	remove_image("my-image_1.0");
}

static void test_name_taken(void **state)
{
	(void)state;
	const char *file = scratch("taken.tar");
	gen("rootfs", file, NULL);
	char *root = import_ok(file, "taken2");
	free(root);
	char *out = NULL;
	struct pd_err err;
	assert_int_equal(try_import(file, "taken2", NULL, &out, &err), -EEXIST);
	assert_null(out);
	assert_non_null(strstr(err.hint, "paddock image rm"));
	assert_string_equal(content(fx.images, "taken2/rootfs/etc/os-release"),
			    "ID=paddock-test\n");
	remove_image("taken2");
}

static void test_bad_names(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"Upper",
		"../x",
		"a/b",
		".hidden",
		"-dash",
		"default",
		"x.lock",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"a234567890123456789012345678901234567890123456789012345678901234x"
	};
	const char *file = scratch("bad-names.tar");
	gen("rootfs", file, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *out = NULL;
		struct pd_err err;
		assert_int_equal(try_import(file, bad[i], NULL, &out, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "invalid image name"));
	}
	assert_clean("default");
}

static void check_layers(const char *root)
{
	assert_string_equal(content(root, "etc/keep"), "keep\n");
	assert_false(exists(root, "etc/gone"));
	assert_false(exists(root, "etc/.wh.gone"));
	assert_false(exists(root, "etc/.wh.never-existed"));
	/* Opaque: the lower layer's children gone, this layer's (listed before
	 * the marker) kept. */
	assert_string_equal(content(root, "opq/new"), "new\n");
	assert_false(exists(root, "opq/old1"));
	assert_false(exists(root, "opq/sub"));
	assert_false(exists(root, "opq/.wh..wh..opq"));
	/* A whiteout of a directory. */
	assert_true(exists(root, "wh"));
	assert_false(exists(root, "wh/dir"));
	/* bin -> usr/bin from layer 1 carries layer 2's bin/added. */
	struct stat st = lstat_ok(root, "bin");
	assert_true(S_ISLNK(st.st_mode));
	assert_string_equal(content(root, "usr/bin/added"), "through the lower layer's symlink\n");
	assert_string_equal(content(root, "usr/bin/tool"), "tool\n");
	/* A hardlink to a lower layer's file. */
	assert_int_equal(lstat_ok(root, "etc/keep-link").st_ino, lstat_ok(root, "etc/keep").st_ino);
}

static void test_docker(void **state)
{
	(void)state;
	const char *file = scratch("docker.tar");
	gen("docker", file, NULL);
	char *root = import_ok(file, "docker");
	check_layers(root);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/docker/meta.json", fx.images);
	json_t *meta = json_load_file(path, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(meta, "format")), "docker-archive");
	assert_int_equal(json_array_size(json_object_get(meta, "layers")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "tags"), 0)),
			    "paddock-test:latest");
	json_decref(meta);
	assert_null(strstr(fx.progress, "no digest"));
	free(root);
	remove_image("docker");

	/* docker save | gzip: the members are read through the decompressor. */
	sh("gzip -kf '%s'", file);
	root = import_ok(scratch("docker.tar.gz"), "docker-gz");
	check_layers(root);
	free(root);
	remove_image("docker-gz");
}

static void test_docker_linked(void **state)
{
	(void)state;
	const char *file = scratch("docker-linked.tar");
	gen("docker-linked", file, NULL);
	char *root = import_ok(file, "linked");
	assert_string_equal(content(root, "etc/gone"), "gone\n");
	assert_string_equal(content(root, "opq/sub/old2"), "2\n");
	free(root);
	remove_image("linked");
}

static void test_oci_dir(void **state)
{
	(void)state;
	const char *dir = scratch("oci");
	gen("oci", dir, "");
	char *root = import_ok(dir, "oci");
	check_layers(root);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/oci/meta.json", fx.images);
	json_t *meta = json_load_file(path, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(meta, "format")), "oci");
	assert_non_null(json_string_value(json_object_get(meta, "manifest")));
	json_decref(meta);
	free(root);
	remove_image("oci");
}

static void test_oci_tar(void **state)
{
	(void)state;
	const char *file = scratch("oci.tar");
	gen("oci", file, "tar");
	char *root = import_ok(file, "oci-tar");
	check_layers(root);
	free(root);
	remove_image("oci-tar");
}

/* docker save 25: an OCI layout with a manifest.json too (taken as OCI); and
 * the same without the layout files (docker-archive with blobs/sha256 names,
 * checked by name). */
static void test_docker25(void **state)
{
	(void)state;
	static const struct {
		const char *flags, *format;
	} cases[] = { { "tar,docker", "oci" }, { "tar,docker,nolayout", "docker-archive" } };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *file = scratch("docker25.tar");
		gen("oci", file, cases[i].flags);
		char *root = import_ok(file, "docker25");
		check_layers(root);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/docker25/meta.json", fx.images);
		json_t *meta = json_load_file(path, 0, NULL);
		assert_string_equal(json_string_value(json_object_get(meta, "format")),
				    cases[i].format);
		json_decref(meta);
		assert_null(strstr(fx.progress, "no digest"));
		free(root);
		remove_image("docker25");
	}
	const char *file = scratch("docker25-corrupt.tar");
	gen("oci", file, "tar,docker,nolayout,corrupt");
	import_refused(file, "docker25", NULL, EINVAL, "does not match its digest");
}

static void test_oci_zstd(void **state)
{
	(void)state;
	if (system("command -v zstd >/dev/null") != 0)
		skip();
	const char *dir = scratch("oci-zstd");
	gen("oci", dir, "zstd");
	char *root = import_ok(dir, "oci-zstd");
	check_layers(root);
	free(root);
	remove_image("oci-zstd");
}

/* ---- refused ------------------------------------------------------------ */

static void test_digest_mismatch(void **state)
{
	(void)state;
	const char *dir = scratch("oci-corrupt");
	gen("oci", dir, "corrupt");
	import_refused(dir, "corrupt", NULL, EINVAL, "does not match its digest");
	const char *file = scratch("oci-corrupt.tar");
	gen("oci", file, "tar,corrupt");
	import_refused(file, "corrupt", NULL, EINVAL, "does not match its digest");
	file = scratch("docker-baddiff.tar");
	gen("docker-baddiff", file, NULL);
	import_refused(file, "corrupt", NULL, EINVAL, "does not match its diff_id");
	file = scratch("docker-badconfig.tar");
	gen("docker-badconfig", file, NULL);
	import_refused(file, "corrupt", NULL, EINVAL, "does not match its digest");
}

static void test_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *kind, *needle;
	} cases[] = {
		{ "evil-dotdot", "'..' component" },
		{ "evil-abs", "absolute" },
		{ "evil-symlink", "a symlink of the same layer" },
		{ "evil-symlink-nested", "a symlink of the same layer" },
		{ "evil-hardlink-abs", "hardlink to '/etc/passwd'" },
		{ "evil-hardlink-dotdot", "hardlink to '../x'" },
		{ "evil-hardlink-symlink", "a symlink of the same layer" },
		{ "evil-wh-dot", "a whiteout of '.' or '..'" },
		{ "evil-wh-dotdot", "a whiteout of '.' or '..'" },
		{ "evil-wh-traverse", "'..' component" },
		{ "evil-wh-dir", "whiteout name used as a directory" },
		{ "evil-dotdot-deep", "'..' component" },
		{ "evil-manifest", "outside the archive" },
		{ "evil-member-link", "links outside it" },
		{ "evil-config", "outside the archive" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[64];
		snprintf(name, sizeof name, "%s.tar", cases[i].kind);
		const char *file = scratch(name);
		gen(cases[i].kind, file, fx.canary);
		import_refused(file, "hostile", NULL, EINVAL, cases[i].needle);
	}
}

/* Symlinks from a lower layer are followed for later layers' parents, within
 * the image: an absolute target and a climb of ".." both stay inside. */
static void test_cross_layer_symlinks(void **state)
{
	(void)state;
	const char *file = scratch("escape-layers.tar");
	gen("escape-layers", file, fx.canary);
	char *root = import_ok(file, "confined");
	assert_clean("nothing-else");
	char rel[sizeof fx.canary + 8];
	snprintf(rel, sizeof rel, "%.127s/pwned", fx.canary + 1);
	assert_string_equal(content(root, rel), "x");
	assert_string_equal(content(root, "tmp/pwned2"), "x");
	assert_false(exists("/tmp", "pwned2"));
	free(root);
	remove_image("confined");
}

/* What is at an entry's path is replaced, never written through. */
static void test_replace(void **state)
{
	(void)state;
	const char *file = scratch("replace.tar");
	gen("replace", file, fx.canary);
	char *root = import_ok(file, "replace");
	assert_clean("nothing-else");
	struct stat st = lstat_ok(root, "x");
	assert_true(S_ISREG(st.st_mode));
	assert_string_equal(content(root, "x"), "replaced\n");
	st = lstat_ok(root, "d");
	assert_true(S_ISDIR(st.st_mode));
	assert_string_equal(content(root, "d/f"), "in the new directory\n");
	assert_string_equal(content(root, "y"), "two\n");
	assert_string_equal(content(root, "z"), "one\n");
	free(root);
	remove_image("replace");
}

static void test_limits(void **state)
{
	(void)state;
	struct image_import_limits lim = image_import_default_limits;
	const char *file = scratch("big.tar.gz");
	gen("big", file, "2097152");
	lim.max_bytes = 1 << 20;
	import_refused(file, "limits", &lim, EFBIG, "limit of 1048576 bytes");

	lim = image_import_default_limits;
	lim.max_entries = 100;
	file = scratch("many.tar");
	gen("many", file, "101");
	import_refused(file, "limits", &lim, EINVAL, "more than 100 entries");
	free(import_ok(file, "limits-ok")); /* the defaults take it */
	remove_image("limits-ok");

	lim = image_import_default_limits;
	lim.max_layers = 3;
	file = scratch("layers.tar");
	gen("layers", file, "4");
	import_refused(file, "limits", &lim, EINVAL, "4 layers, more than 3");

	lim = image_import_default_limits;
	lim.max_json = 4096;
	file = scratch("bigjson.tar");
	gen("bigjson", file, "5000");
	import_refused(file, "limits", &lim, EINVAL, "manifest.json' is larger than");

	lim = image_import_default_limits;
	lim.max_path = 200;
	file = scratch("longpath.tar");
	gen("longpath", file, "201");
	import_refused(file, "limits", &lim, ENAMETOOLONG, "too long");
	gen("longpath", file, "200");
	free(import_ok(file, "limits-path"));
	remove_image("limits-path");
	gen("longpath", file, "5000");
	import_refused(file, "limits", NULL, ENAMETOOLONG, "too long");

	/* Nesting: 256 directories deep at most, counted on disk. */
	file = scratch("deep.tar");
	gen("deep", file, "257");
	free(import_ok(file, "limits-deep"));
	remove_image("limits-deep");
	gen("deep", file, "258");
	import_refused(file, "limits", NULL, EINVAL, "nested too deep");
	file = scratch("deep-layers.tar");
	gen("deep-layers", file, NULL);
	import_refused(file, "limits", NULL, EINVAL, "nested deeper than 256");
}

static void test_not_archives(void **state)
{
	(void)state;
	const char *file = scratch("random.bin");
	sh("head -c 100000 /dev/urandom > '%s'", file);
	import_refused(file, "junk", NULL, 0, "not a readable tar archive");
	file = scratch("empty.tar");
	sh("tar -cf '%s' -T /dev/null", file);
	import_refused(file, "junk", NULL, EINVAL, "empty");
	const char *dir = scratch("plain-dir");
	sh("mkdir -p '%s/etc'", dir);
	import_refused(dir, "junk", NULL, EINVAL, "without oci-layout");
	import_refused(scratch("missing.tar"), "junk", NULL, ENOENT, "cannot open");
}

/* What a killed import left is swept by the next one; a store open to other
 * users is refused. */
static void test_store(void **state)
{
	(void)state;
	const char *file = scratch("store.tar");
	gen("rootfs", file, NULL);
	sh("mkdir -p '%s/.import-999999999/rootfs/a/b' && touch "
	   "'%s/.import-999999999/rootfs/a/b/f'",
	   fx.images, fx.images);
	char *root = import_ok(file, "store");
	free(root);
	assert_clean("nothing-else");
	remove_image("store");

	sh("chmod 0755 '%s'", fx.images);
	import_refused(file, "store", NULL, EPERM, "open to other users");
	sh("chmod 0700 '%s'", fx.images);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("test_import: needs root (image files keep their owners); skipped\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rootfs_targz),
		cmocka_unit_test(test_rootfs_compressions),
		cmocka_unit_test(test_default_name),
		cmocka_unit_test(test_name_taken),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_docker),
		cmocka_unit_test(test_docker_linked),
		cmocka_unit_test(test_oci_dir),
		cmocka_unit_test(test_oci_tar),
		cmocka_unit_test(test_docker25),
		cmocka_unit_test(test_oci_zstd),
		cmocka_unit_test(test_digest_mismatch),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_cross_layer_symlinks),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_not_archives),
		cmocka_unit_test(test_store),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
