/* strv.h: NULL-terminated vectors of malloc'd strings. */
#ifndef PADDOCK_STRV_H
#define PADDOCK_STRV_H

#include <stddef.h>

/* Number of entries of v (NULL counts as empty). */
size_t strv_len(char *const *v);
/* Append a copy of s to *v (which may be NULL). Returns 0 or -ENOMEM; *v
 * stays valid and NULL-terminated either way. */
int strv_push(char ***v, const char *s);
/* Set "NAME=VALUE" in an environment vector, replacing an entry for the
 * same NAME. Returns 0 or -ENOMEM. */
int strv_env_set(char ***v, const char *kv);
/* Free every string and the vector. NULL-safe. */
void strv_free(char **v);

#endif
