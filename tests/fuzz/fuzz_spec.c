/* fuzz_spec.c: libFuzzer target for the paddock.yaml loader and dumper.
 *
 * Beyond what the sanitizers catch (crashes, leaks, undefined behaviour), it
 * checks two properties and aborts when one fails:
 *   - an error is one line, in layer "spec", that starts with the file name;
 *   - a spec that loads prints as YAML that loads back and prints the same
 *     (a fixed point), and prints as JSON.
 * Built by `make fuzz` (clang) and, with tests/fuzz/replay.c instead of
 * libFuzzer's main, as the unit test that replays the corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "spec/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const struct pd_err *err)
{
	if (strcmp(err->layer, "spec") != 0 || strncmp(err->msg, "fuzz.yaml:", 10) != 0 ||
	    strchr(err->msg, '\n') || strchr(err->hint, '\n')) {
		fprintf(stderr, "bad error: [%s] %s (%s)\n", err->layer, err->msg, err->hint);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spec s, t;
	struct pd_err err = { 0 };
	spec_init(&s);
	spec_init(&t);
	if (spec_load_yaml_buffer("fuzz.yaml", (const char *)data, size, "/fuzz", &s, &err) < 0) {
		check_error(&err);
		spec_free(&s);
		return 0;
	}
	char *yaml = spec_to_yaml(&s, &err), *json = spec_to_json(&s, &err), *again = NULL;
	if (!yaml || !json) {
		fprintf(stderr, "cannot print a loaded spec: %s\n", err.msg);
		abort();
	}
	if (spec_load_yaml_buffer("dump.yaml", yaml, strlen(yaml), "/fuzz", &t, &err) < 0) {
		fprintf(stderr, "printed spec does not load: %s\n--\n%s--\n", err.msg, yaml);
		abort();
	}
	if (!(again = spec_to_yaml(&t, &err)) || strcmp(yaml, again) != 0) {
		fprintf(stderr, "round trip differs:\n%s--\n%s--\n", yaml, again ? again : "");
		abort();
	}
	free(yaml);
	free(json);
	free(again);
	spec_free(&s);
	spec_free(&t);
	return 0;
}
