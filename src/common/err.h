/* err.h: typed errors for library code.
 *
 * Library code (src/sandbox, src/spec, src/image, ...) never prints and never
 * exits. A function that can fail takes `struct pd_err *err` last, returns a
 * negative errno-style value on failure and fills `err` with the layer that
 * failed, what happened, and (when we know it) what the user can do. Only the
 * CLI prints, once, at the top. */
#ifndef PADDOCK_ERR_H
#define PADDOCK_ERR_H

#include <stdarg.h>
#include <stddef.h>

struct pd_err {
	int code;        /* errno value, 0 if none applies */
	char layer[32];  /* "userns", "mount", "seccomp", "spec", ... */
	char msg[768];   /* what failed and where */
	char hint[256];  /* what to do about it; may be empty */
};

/* Fill err (if non-NULL) and return -code (or -EINVAL when code is 0). */
int pd_err_set(struct pd_err *err, int code, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Same, with errno as code. */
int pd_err_errno(struct pd_err *err, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Set the hint of an already filled error. Returns -err->code or -EINVAL. */
int pd_err_hint(struct pd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context: "ctx: old message". */
void pd_err_prefix(struct pd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Format as one line: "layer: msg: strerror (hint)". Returns buf. */
const char *pd_err_format(const struct pd_err *err, char *buf, size_t len);

#endif
