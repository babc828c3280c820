/* fuzz_http.c: libFuzzer target for the HTTP request head parser (http.c).
 *
 * Checks, beyond the sanitizers: a complete head lies within the input and
 * the size limit; an error carries a reason and a 4xx/5xx status; an
 * absolute-form request rewrites (within HTTP_REWRITE_MAX) to an
 * origin-form head that parses again, for the same host and port (what the
 * gateway decided on is what the origin server is told). Built by
 * `make fuzz` and, with tests/fuzz/replay.c, as
 * build/tests/test_fuzz_http_replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef PADDOCK_REPLAY_CORPUS
__attribute__((constructor)) static void replay_corpus(void)
{
	setenv("PADDOCK_FUZZ_CORPUS", PADDOCK_REPLAY_CORPUS, 0);
}
#endif

static void die(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head h, o;
	const char *buf = (const char *)data;
	int r = http_parse_head(buf, size, &h);
	if (r < 0) {
		if (!h.error || -r < 400 || -r > 599)
			die("an error without a reason or status");
		return 0;
	}
	if (r == 0) {
		if (size >= HTTP_HEAD_MAX)
			die("need more at the size limit");
		return 0;
	}
	if (h.head_len > size || h.head_len > HTTP_HEAD_MAX || h.host[0] == '\0' || h.port == 0)
		die("bad complete head");
	if (h.form != HTTP_ABSOLUTE)
		return 0;
	char *out = malloc(HTTP_REWRITE_MAX);
	if (!out)
		return 0;
	int n = http_rewrite_forward(buf, &h, out, HTTP_REWRITE_MAX);
	if (n < 0)
		die("rewrite does not fit HTTP_REWRITE_MAX");
	/* The rewrite adds a Host and a Connection line, so it may go past
	 * the parser's limits (431) where the original was just within them;
	 * anything else must parse. */
	int r2 = http_parse_head(out, (size_t)n, &o);
	if (r2 != -431) {
		if (r2 != 1)
			die("rewritten head does not parse");
		if (o.form != HTTP_ORIGIN || strcasecmp(o.host, h.host) != 0 || o.port != h.port ||
		    (size_t)n != o.head_len)
			die("rewritten head names another host");
	}
	free(out);
	return 0;
}
