#include "common/strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	char **nv = realloc(*v, (n + 2) * sizeof *nv);
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int strv_env_set(char ***v, const char *kv)
{
	size_t klen = strcspn(kv, "=") + 1;
	for (size_t i = 0; *v && (*v)[i]; i++)
		if (!strncmp((*v)[i], kv, klen)) {
			char *d = strdup(kv);
			if (!d)
				return -ENOMEM;
			free((*v)[i]);
			(*v)[i] = d;
			return 0;
		}
	return strv_push(v, kv);
}
