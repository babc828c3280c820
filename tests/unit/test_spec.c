/* test_spec.c: flag-level parsing and validation of struct spec. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"

static void test_sizes(void **state)
{
	uint64_t v;
	assert_int_equal(spec_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(spec_parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(spec_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(spec_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(spec_parse_size("10k", &v), 0);
	assert_int_equal(v, 10240);
	assert_int_equal(spec_parse_size("", &v), -EINVAL);
	assert_int_equal(spec_parse_size("-1G", &v), -EINVAL);
	assert_int_equal(spec_parse_size("1X", &v), -EINVAL);
	assert_int_equal(spec_parse_size("1GG", &v), -EINVAL);
	assert_int_equal(spec_parse_size("G", &v), -EINVAL);
	assert_int_equal(spec_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(spec_parse_size("99999999999T", &v), -ERANGE);
}

static void test_cpus(void **state)
{
	uint64_t v;
	assert_int_equal(spec_parse_cpus("1", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(spec_parse_cpus("1.5", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(spec_parse_cpus("0.25", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(spec_parse_cpus("0", &v), -ERANGE);
	assert_int_equal(spec_parse_cpus("1.", &v), -EINVAL);
	assert_int_equal(spec_parse_cpus(".5", &v), -EINVAL);
	assert_int_equal(spec_parse_cpus("inf", &v), -EINVAL);
	assert_int_equal(spec_parse_cpus("1e3", &v), -EINVAL);
	assert_int_equal(spec_parse_cpus("1,5", &v), -EINVAL);
	assert_int_equal(spec_parse_cpus("1.2345", &v), -EINVAL);
}

static void test_normalize(void **state)
{
	struct pd_err err;
	struct {
		const char *in, *out;
	} ok[] = { { "/data", "/data" },     { "//data//x/", "/data/x" }, { "/a/./b", "/a/b" },
		   { "/", "/" },	     { "/.", "/" } };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char *n = spec_normalize_target(ok[i].in, &err);
		assert_non_null(n);
		assert_string_equal(n, ok[i].out);
		free(n);
	}
	const char *bad[] = { "data", "", "/a/../../etc", "/..", "/a/..", NULL };
	for (const char **b = bad; *b; b++) {
		assert_null(spec_normalize_target(*b, &err));
		assert_string_equal(err.layer, "spec");
	}
	assert_null(spec_normalize_target(NULL, &err));
}

static void test_mount_arg(void **state)
{
	struct pd_err err;
	struct pd_mount m;
	assert_int_equal(spec_parse_mount("/src:/dst", &m, &err), 0);
	assert_string_equal(m.source, "/src");
	assert_string_equal(m.target, "/dst");
	assert_false(m.writable);
	free(m.source), free(m.target);
	assert_int_equal(spec_parse_mount("./out:/out:rw", &m, &err), 0);
	assert_true(m.writable);
	free(m.source), free(m.target);
	assert_int_equal(spec_parse_mount("a:/b:ro", &m, &err), 0);
	assert_false(m.writable);
	free(m.source), free(m.target);
	assert_true(spec_parse_mount("a", &m, &err) < 0);
	assert_true(spec_parse_mount(":/b", &m, &err) < 0);
	assert_true(spec_parse_mount("a:", &m, &err) < 0);
	assert_true(spec_parse_mount("a:/b:rx", &m, &err) < 0);
	assert_non_null(strstr(err.msg, "unknown mode"));
	assert_true(spec_parse_mount("a:relative", &m, &err) < 0);
	assert_true(spec_parse_mount("a:/x/../../etc", &m, &err) < 0);
	assert_non_null(strstr(err.msg, ".."));
}

static char *argv_true[] = { "true", NULL };

static void with_mount(struct spec *s, const char *src, const char *dst)
{
	s->mounts = realloc(s->mounts, (s->n_mounts + 1) * sizeof *s->mounts);
	s->mounts[s->n_mounts].source = strdup(src);
	s->mounts[s->n_mounts].target = strdup(dst);
	s->mounts[s->n_mounts].writable = false;
	s->n_mounts++;
}

static void test_validate(void **state)
{
	struct pd_err err;
	struct spec s;
	spec_init(&s);
	assert_true(spec_validate(&s, &err) < 0); /* no command */
	assert_non_null(strstr(err.msg, "no command"));
	s.argv = argv_true;
	assert_int_equal(spec_validate(&s, &err), 0);
	/* every network mode is valid (the default is filtered) */
	assert_int_equal(s.network, PD_NET_FILTERED);
	s.network = PD_NET_OPEN;
	assert_int_equal(spec_validate(&s, &err), 0);
	s.network = PD_NET_OFF;
	assert_int_equal(spec_validate(&s, &err), 0);
	const char *reserved[] = { "/proc", "/proc/sys", "/dev", "/dev/x", "/sys", "/", NULL };
	for (const char **r = reserved; *r; r++) {
		with_mount(&s, "/tmp", *r);
		assert_true(spec_validate(&s, &err) < 0);
		assert_non_null(strstr(err.msg, "reserved"));
		free(s.mounts[0].source), free(s.mounts[0].target);
		s.n_mounts = 0;
	}
	with_mount(&s, "/tmp", "/data");
	assert_int_equal(spec_validate(&s, &err), 0);
	with_mount(&s, "/var", "/data");
	assert_true(spec_validate(&s, &err) < 0);
	assert_non_null(strstr(err.msg, "twice"));
	free(s.mounts[1].source), free(s.mounts[1].target);
	s.n_mounts = 1;
	s.memory = 1024;
	assert_true(spec_validate(&s, &err) < 0);
	s.memory = 0;
	s.pids = 2;
	assert_true(spec_validate(&s, &err) < 0);
	s.pids = 0;
	s.hostname = "bad host";
	assert_true(spec_validate(&s, &err) < 0);
	s.hostname = "good-host";
	assert_int_equal(spec_validate(&s, &err), 0);
	s.hostname = NULL;
	char *env_bad[] = { "NOEQUALS", NULL };
	s.env = env_bad;
	assert_true(spec_validate(&s, &err) < 0);
	s.env = NULL;
	s.workdir = "rel";
	assert_true(spec_validate(&s, &err) < 0);
	s.workdir = NULL;
	s.argv = NULL;
	spec_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),	 cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_normalize), cmocka_unit_test(test_mount_arg),
		cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
