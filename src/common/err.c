#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0)))
static int err_vset(struct pd_err *err, int code, const char *layer, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		snprintf(err->layer, sizeof err->layer, "%s", layer ? layer : "");
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		err->hint[0] = '\0';
	}
	return code > 0 ? -code : -EINVAL;
}

int pd_err_set(struct pd_err *err, int code, const char *layer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, code, layer, fmt, ap);
	va_end(ap);
	return r;
}

int pd_err_errno(struct pd_err *err, const char *layer, const char *fmt, ...)
{
	int code = errno ? errno : EIO;
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, code, layer, fmt, ap);
	va_end(ap);
	return r;
}

int pd_err_hint(struct pd_err *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof err->hint, fmt, ap);
	va_end(ap);
	return err->code > 0 ? -err->code : -EINVAL;
}

void pd_err_prefix(struct pd_err *err, const char *fmt, ...)
{
	if (!err)
		return;
	char pre[256], old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	/* Truncation is acceptable: the message stays a bounded single line. */
	size_t n = strnlen(pre, sizeof pre);
	if (n > sizeof err->msg - 3)
		n = sizeof err->msg - 3;
	memcpy(err->msg, pre, n);
	memcpy(err->msg + n, ": ", 2);
	size_t room = sizeof err->msg - n - 3;
	size_t m = strnlen(old, room);
	memcpy(err->msg + n + 2, old, m);
	err->msg[n + 2 + m] = '\0';
}

const char *pd_err_format(const struct pd_err *err, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s%s", err->layer, err->layer[0] ? ": " : "", err->msg);
	/* EINVAL says nothing the message does not: input errors omit it. */
	if (n >= 0 && (size_t)n < len && err->code > 0 && err->code != EINVAL)
		n += snprintf(buf + n, len - n, ": %s", strerror(err->code));
	if (n >= 0 && (size_t)n < len && err->hint[0])
		snprintf(buf + n, len - n, " (%s)", err->hint);
	return buf;
}
