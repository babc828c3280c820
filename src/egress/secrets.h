/* secrets.h: a sandbox's secrets inside the gateway (see secrets.c).
 *
 * Pure functions and locked memory; no sockets, no events, no logging. */
#ifndef PADDOCK_EGRESS_SECRETS_H
#define PADDOCK_EGRESS_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SECRET_PREFIX "paddock-secret-"
#define SECRET_PREFIX_LEN 15
#define SECRET_HEX_LEN 32
#define SECRET_PLACEHOLDER_LEN (SECRET_PREFIX_LEN + SECRET_HEX_LEN)
#define SECRETS_MAX 64         /* secrets of one sandbox (a bit each in a uint64_t) */
#define SECRET_HOSTS_MAX 64    /* hosts of one secret */
#define SECRET_NAME_MAX 128
#define SECRET_VALUE_MAX 8192
#define SECRETS_BODY_SCAN 65536 /* bytes of each request body searched for placeholders */

/* What the daemon sends for one secret (borrowed strings). */
struct secret_spec {
	const char *name;        /* [A-Za-z_][A-Za-z0-9_]*, at most SECRET_NAME_MAX */
	const char *placeholder; /* "paddock-secret-" + 32 lower-case hex digits */
	const char *value;       /* 1..SECRET_VALUE_MAX bytes, each a visible ASCII
				  * character, space or tab: it goes into header values */
	size_t value_len;
	const char *const *hosts; /* host names or "*.suffix", 1..SECRET_HOSTS_MAX */
	size_t n_hosts;
};

struct secret {
	char name[SECRET_NAME_MAX + 1];
	char placeholder[SECRET_PLACEHOLDER_LEN + 1];
	char **hosts;            /* normalized */
	size_t n_hosts;
	const char *value;       /* in the set's locked pages */
	size_t value_len;
	uint64_t injections, blocked;
};

/* Locked memory: whole pages, mlock(2)ed (never swapped), MADV_DONTDUMP
 * (never in a core dump), MADV_WIPEONFORK; wiped before being unmapped. */
struct secmem {
	unsigned char *p;
	size_t len;
};
int secmem_alloc(struct secmem *m, size_t len, struct pd_err *err);
void secmem_wipe(struct secmem *m);
void secmem_free(struct secmem *m); /* wipes, unlocks, unmaps; idempotent */

struct secret_set {
	struct secret *v;
	size_t n;
	struct secmem mem;       /* every value */
	uint64_t generation;     /* set by the gateway at each replacement */
};

/* Validate specs and build a set (values copied into locked memory).
 * Refused with err naming the secret: a bad name, placeholder, value or
 * host, a duplicate name or placeholder, more than SECRETS_MAX. */
int secret_set_new(const struct secret_spec *specs, size_t n, struct secret_set **out,
		   struct pd_err *err);
/* Wipe and free; NULL is fine. */
void secret_set_free(struct secret_set *s);
/* Keep the counters of the secrets of old that new has by name. */
void secret_set_carry_counts(struct secret_set *new, const struct secret_set *old);

/* May s be sent to host (normalized)? */
bool secret_host_allowed(const struct secret *s, const char *host);
/* Is host in any secret's hosts (is it intercepted)? */
bool secret_set_intercepts(const struct secret_set *set, const char *host);
/* Is there a secret host may not receive (must its bodies be searched)? */
bool secret_set_guards(const struct secret_set *set, const char *host);

/* The first placeholder of set in buf[0..len) at or after *pos, in any
 * letter case. Returns its secret and sets *pos to its offset, or NULL. */
struct secret *secret_find(const struct secret_set *set, const char *buf, size_t len,
			   size_t *pos);
/* A DNS name carrying a placeholder's random part (any case, across
 * labels: the dots are ignored). */
struct secret *secret_find_dns(const struct secret_set *set, const char *name);

/* The verdict on one request head for host. */
struct secret_scan {
	struct secret *blocked;  /* a placeholder host may not receive */
	const char *where;       /* "url" or "header" */
	uint64_t injected;       /* bit i: set->v[i] was injected */
	char *out;               /* the head with the values in (when injected) */
	size_t out_len;
};
/* Look at a complete request head buf[0..len) bound for host: each
 * placeholder in a header value (also inside "Basic" credentials) whose
 * secret allows host is replaced by the value; any placeholder whose secret
 * does not allow host, anywhere in the head, blocks the request. Returns 0
 * (sc->out is malloc'd when something was injected, NULL otherwise: the
 * head goes as it is), 1 when blocked, -ENOMEM. Free sc->out with
 * secret_scan_done, which wipes it. */
int secret_scan_head(const struct secret_set *set, const char *host, const char *buf, size_t len,
		     struct secret_scan *sc);
void secret_scan_done(struct secret_scan *sc);

/* free() after explicit_bzero of what malloc gave (malloc_usable_size). */
void secret_wipe_free(void *p);

#endif
