/* replay.c: run every file of the fuzz corpus through the fuzz target, one
 * cmocka test per file, so that the suite keeps what fuzzing found.
 * Corpus: $PADDOCK_FUZZ_CORPUS or tests/fuzz/corpus/spec (from the repo top). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay_one(void **state)
{
	const char *path = *state;
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	/* A little past the loader's 1 MiB limit, so that the limit is replayed. */
	size_t cap = (1u << 20) + 4096, len;
	char *buf = malloc(cap);
	assert_non_null(buf);
	len = fread(buf, 1, cap, f);
	fclose(f);
	LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	free(buf);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct CMUnitTest *)a)->name, ((const struct CMUnitTest *)b)->name);
}

int main(void)
{
	const char *dir = getenv("PADDOCK_FUZZ_CORPUS");
	if (!dir)
		dir = "tests/fuzz/corpus/spec";
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return 1;
	}
	struct CMUnitTest *tests = NULL;
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char *path;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0 ||
		    !(tests = realloc(tests, (n + 1) * sizeof *tests)))
			return 1;
		tests[n++] = (struct CMUnitTest){ .name = path, .test_func = replay_one,
						  .initial_state = path };
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: empty corpus\n", dir);
		return 1;
	}
	qsort(tests, n, sizeof *tests, by_name);
	int r = _cmocka_run_group_tests("fuzz_replay", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free((char *)tests[i].name);
	free(tests);
	return r;
}
