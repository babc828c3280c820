/* cleanup.h: scope-bound ownership, in the style of bubblewrap and systemd.
 * `_cleanup_free_ char *p` is freed when p leaves scope; steal_ptr() hands
 * ownership on and leaves NULL behind. */
#ifndef PADDOCK_CLEANUP_H
#define PADDOCK_CLEANUP_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>
#include <stdio.h>

static inline void pd_freep(void *p) { free(*(void **)p); }
static inline void pd_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void pd_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void pd_closedirp(DIR **d) { if (*d) closedir(*d); }
static inline void pd_strvfreep(char ***v)
{
	if (*v) {
		for (char **p = *v; *p; p++)
			free(*p);
		free(*v);
	}
}

#define _cleanup_free_ __attribute__((cleanup(pd_freep)))
#define _cleanup_close_ __attribute__((cleanup(pd_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(pd_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(pd_closedirp)))
#define _cleanup_strv_ __attribute__((cleanup(pd_strvfreep)))

#define steal_ptr(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
