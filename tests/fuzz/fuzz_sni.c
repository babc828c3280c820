/* fuzz_sni.c: libFuzzer target for the TLS ClientHello parser (sni.c).
 *
 * Beyond the sanitizers it checks: a name comes back only with SNI_OK and
 * is a NUL-terminated string shorter than the buffer; a verdict other than
 * NEED_MORE does not change when more bytes follow (the gateway decides
 * on what it has; the bytes after must not matter), except that
 * NEED_MORE may become anything. Built by `make fuzz` and, with
 * tests/fuzz/replay.c, as build/tests/test_fuzz_sni_replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef PADDOCK_REPLAY_CORPUS
/* replay.c reads its corpus from $PADDOCK_FUZZ_CORPUS (default: spec's). */
__attribute__((constructor)) static void replay_corpus(void)
{
	setenv("PADDOCK_FUZZ_CORPUS", PADDOCK_REPLAY_CORPUS, 0);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256], again[256];
	memset(name, 0x5a, sizeof name);
	enum sni_result r = sni_parse(data, size, name, sizeof name);
	if (r == SNI_OK && (!memchr(name, '\0', sizeof name) || name[0] == '\0')) {
		fprintf(stderr, "SNI_OK without a proper name\n");
		abort();
	}
	if (r != SNI_NEED_MORE && size > 0) {
		uint8_t *more = malloc(size + 7);
		if (!more)
			return 0;
		memcpy(more, data, size);
		memcpy(more + size, "\x17\x03\x03\x00\x01zz", 7);
		enum sni_result r2 = sni_parse(more, size + 7, again, sizeof again);
		free(more);
		if (r2 != r || (r == SNI_OK && strcmp(name, again) != 0)) {
			fprintf(stderr, "verdict changed with trailing bytes: %s -> %s\n",
				sni_result_str(r), sni_result_str(r2));
			abort();
		}
	}
	return 0;
}
