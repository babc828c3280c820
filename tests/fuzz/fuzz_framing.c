/* fuzz_framing.c: libFuzzer target for what an intercepted connection
 * parses (mitm.c): the request head (up to HTTP_HEAD_MAX_INTERCEPT), its
 * body framing (http_body_init, http_body_walk) and the placeholder
 * rewrite (secret_scan_head).
 *
 * Checks, beyond the sanitizers: the walker consumes the same bytes and
 * ends at the same place whether the body comes at once or in slices of
 * any size (the first input byte picks the slice size), never more than it
 * is given; a rewritten head parses again with the same host and the same
 * framing, and holds the value where the placeholder was (no placeholder
 * of an injected secret is left in header values).
 *
 * Built by hand (the Makefile's fuzz rules list their sources):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu17 -D_GNU_SOURCE -Isrc \
 *     tests/fuzz/fuzz_framing.c src/egress/http.c src/egress/secrets.c \
 *     src/egress/policy.c src/common/err.c -lcrypto -o build/fuzz/fuzz_framing
 * and replayed by build/tests/test_fuzz_framing_replay (make that target:
 * tests/fuzz/replay.c + corpus/framing). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress/http.h"
#include "egress/secrets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef PADDOCK_REPLAY_CORPUS
__attribute__((constructor)) static void replay_corpus(void)
{
	setenv("PADDOCK_FUZZ_CORPUS", PADDOCK_REPLAY_CORPUS, 0);
}
#endif

#define PH_A "paddock-secret-0123456789abcdef0123456789abcdef"
#define PH_B "paddock-secret-fedcba9876543210fedcba9876543210"

static void die(const char *what)
{
	fprintf(stderr, "fuzz_framing: %s\n", what);
	abort();
}

static struct secret_set *the_set(void)
{
	static struct secret_set *set;
	if (!set) {
		static const char *const ha[] = { "a.test" }, *const hb[] = { "*.b.test" };
		struct secret_spec sp[] = {
			{ "A", PH_A, "VALUE-A", 7, ha, 1 },
			{ "B", PH_B, "value b with spaces", 19, hb, 1 },
		};
		struct pd_err err = { 0 };
		if (secret_set_new(sp, 2, &set, &err) < 0)
			die(err.msg);
	}
	return set;
}

static void walk_both(const struct http_body *b0, const char *body, size_t len, size_t slice)
{
	struct http_body a = *b0, s = *b0;
	long na = http_body_walk(&a, body, len);
	size_t ns = 0;
	bool failed = false;
	if (na > (long)len)
		die("walked past the input");
	while (ns < len && !s.done) {
		size_t k = len - ns < slice ? len - ns : slice;
		long r = http_body_walk(&s, body + ns, k);
		if (r < 0) {
			failed = true;
			break;
		}
		if ((size_t)r > k)
			die("walked past a slice");
		ns += (size_t)r;
		if ((size_t)r < k && !s.done)
			die("stopped inside a slice without being done");
	}
	if ((na < 0) != failed)
		die("bulk and sliced walks disagree on an error");
	if (na >= 0 && ((size_t)na != ns || a.done != s.done))
		die("bulk and sliced walks disagree on the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head h, h2;
	struct http_body b, b2;
	struct secret_scan sc;
	if (size < 1)
		return 0;
	size_t slice = (size_t)data[0] % 17 + 1;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	int r = http_parse_head_max(buf, len, HTTP_HEAD_MAX_INTERCEPT, &h);
	if (r <= 0)
		return 0;
	if (h.head_len > len)
		die("head past the input");
	if (http_body_init(buf, &h, &b) < 0) {
		if (!b.error)
			die("framing refused without a reason");
		return 0;
	}
	walk_both(&b, buf + h.head_len, len - h.head_len, slice);
	/* the rewrite, for a host of each secret and for another */
	static const char *const hosts[] = { "a.test", "x.b.test", "c.test" };
	for (size_t i = 0; i < 3; i++) {
		int s = secret_scan_head(the_set(), hosts[i], buf, h.head_len, &sc);
		if (s < 0)
			continue;
		if (s == 1) {
			if (!sc.blocked || !sc.where || sc.out)
				die("blocked without a secret, a place, or with an output");
			continue;
		}
		if (!sc.out)
			continue;
		if (!sc.injected)
			die("an output without an injection");
		if (http_parse_head_max(sc.out, sc.out_len, HTTP_HEAD_MAX_INTERCEPT * 2, &h2) != 1 ||
		    h2.head_len != sc.out_len) {
			/* only the size limit may stop a rewritten head */
			if (sc.out_len < HTTP_HEAD_MAX_INTERCEPT)
				die("rewritten head does not parse");
		} else {
			if (strcasecmp(h2.host, h.host) != 0 || h2.port != h.port || h2.form != h.form)
				die("rewritten head names another host");
			if (http_body_init(sc.out, &h2, &b2) < 0 || b2.kind != b.kind ||
			    b2.remaining != b.remaining || b2.upgrade != b.upgrade)
				die("rewritten head frames its body differently");
		}
		secret_scan_done(&sc);
	}
	return 0;
}
