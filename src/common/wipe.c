/* wipe.c: see wipe.h. */
#include "common/wipe.h"

#include <string.h>

__attribute__((noinline)) void pd_scrub_stack(void)
{
	char area[64 << 10];
	explicit_bzero(area, sizeof area);
	/* keep the compiler from treating the zeroing as dead */
	__asm__ __volatile__("" : : "r"(area) : "memory");
}
