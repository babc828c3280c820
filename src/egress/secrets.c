/* secrets.c: secrets that never enter the sandbox.
 *
 * THE IDEA. The sandbox holds placeholders ("paddock-secret-" + 32 random
 * hex digits, made by the daemon, one per sandbox and secret); the real
 * values live only here, in the gateway. For a host in a secret's hosts the
 * gateway terminates the sandbox's TLS with a per-sandbox CA (mitm.c),
 * replaces the placeholder in request headers by the value and re-encrypts
 * to the real host, whose certificate it verifies. A placeholder bound for a
 * host not in its secret's hosts is an exfiltration attempt: refused with a
 * 403 that names the secret and the host, and an "exfiltration" event.
 *
 * WHERE PLACEHOLDERS ARE LOOKED FOR
 *   - intercepted connections (TLS to a host in any secret's hosts): every
 *     request head (request line: "url"; header lines: "header", also
 *     inside decoded "Basic" credentials of Authorization and
 *     Proxy-Authorization, which is how git sends a token) and the first
 *     SECRETS_BODY_SCAN bytes of every body ("body"), with an overlap so a
 *     placeholder across two reads is found. Heads are acted on only when
 *     complete, so a placeholder split across TCP segments is whole by then.
 *   - plaintext the gateway parses anyway: the CONNECT head, the first head
 *     of a plain HTTP request (explicit or transparent port 80) and the body
 *     bytes that came with it. A placeholder there for a host in its hosts
 *     is refused too (secrets are injected only over TLS, never in clear).
 *   - DNS questions: a name containing a placeholder's 32 hex digits (any
 *     case, dots ignored) is REFUSED and never leaves ("dns").
 *   TLS to hosts without secrets is spliced untouched, as before: what it
 *   carries is not seen. Matching is case-insensitive on the literal text;
 *   a sandbox that re-encodes a placeholder (base64, reversed) can smuggle
 *   it out, which gains nothing: a placeholder is worthless outside paddock.
 *   Detection is for mistakes and naive leaks; the protection is that the
 *   value is never inside.
 *
 * INJECTION happens only in header values (never Host), only for the connection's host
 * (the CONNECT target or the SNI, which the gateway resolved and whose
 * certificate it verified), and only when the request's Host equals that
 * host (mitm.c refuses a different Host: domain fronting would otherwise
 * hand the value to another tenant of the same front). Values are checked
 * at "secrets" time to be header-safe (visible ASCII, space, tab: no CR/LF
 * to inject headers with). URLs and bodies are never rewritten.
 *
 * MEMORY. A set's values live in one mapping of whole pages, mlock'd,
 * MADV_DONTDUMP and MADV_WIPEONFORK, explicit_bzero'd before it is unmapped
 * (replacement, sandbox removal, gateway exit). The rewritten head that
 * carries a value is wiped when sent (secret_wipe_free). jansson's
 * allocations (the control message holding the values) are wiped on free
 * (control.c), and so is the control read buffer. Not covered: transient
 * copies inside OpenSSL's record layer and the kernel's socket buffers. The
 * process is not dumpable (confine.c, and main.c from the start).
 *
 * LIMITS: SECRETS_MAX secrets per sandbox, SECRET_HOSTS_MAX hosts each,
 * values of at most SECRET_VALUE_MAX bytes. */
#include "egress/secrets.h"

#include <errno.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "egress/policy.h"

#define LAYER "egress-secrets"

/* --- locked memory --- */

int secmem_alloc(struct secmem *m, size_t len, struct pd_err *err)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t l = (len + pg - 1) / pg * pg;
	if (l == 0)
		l = pg;
	void *p = mmap(NULL, l, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return pd_err_errno(err, LAYER, "cannot map memory for secrets");
	if (mlock(p, l) < 0) {
		int e = errno;
		munmap(p, l);
		errno = e;
		return pd_err_errno(err, LAYER, "cannot lock memory for secrets (RLIMIT_MEMLOCK?)");
	}
	/* DONTDUMP is what keeps values out of core files: required. */
	if (madvise(p, l, MADV_DONTDUMP) < 0) {
		int e = errno;
		munlock(p, l);
		munmap(p, l);
		errno = e;
		return pd_err_errno(err, LAYER, "madvise(MADV_DONTDUMP)");
	}
#ifdef MADV_WIPEONFORK
	(void)madvise(p, l, MADV_WIPEONFORK); /* the gateway never forks; belt and braces */
#endif
	m->p = p;
	m->len = l;
	return 0;
}

void secmem_wipe(struct secmem *m)
{
	if (m->p)
		explicit_bzero(m->p, m->len);
}

void secmem_free(struct secmem *m)
{
	if (!m->p)
		return;
	explicit_bzero(m->p, m->len);
	munlock(m->p, m->len);
	munmap(m->p, m->len);
	m->p = NULL;
	m->len = 0;
}

void secret_wipe_free(void *p)
{
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* --- the set --- */

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SECRET_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static bool placeholder_ok(const char *s)
{
	return strlen(s) == SECRET_PLACEHOLDER_LEN &&
	       memcmp(s, SECRET_PREFIX, SECRET_PREFIX_LEN) == 0 &&
	       strspn(s + SECRET_PREFIX_LEN, "0123456789abcdef") == SECRET_HEX_LEN;
}

static bool value_ok(const char *v, size_t n)
{
	if (n == 0 || n > SECRET_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}

static void secret_free_hosts(struct secret *s)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		free(s->hosts[i]);
	free(s->hosts);
	s->hosts = NULL;
	s->n_hosts = 0;
}

void secret_set_free(struct secret_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		secret_free_hosts(&s->v[i]);
	secmem_free(&s->mem);
	free(s->v);
	free(s);
}

static int set_hosts(struct secret *s, const struct secret_spec *sp, struct pd_err *err)
{
	if (sp->n_hosts == 0 || sp->n_hosts > SECRET_HOSTS_MAX)
		return pd_err_set(err, EINVAL, LAYER, "secret %s: 1 to %d hosts", sp->name,
				  SECRET_HOSTS_MAX);
	if (!(s->hosts = calloc(sp->n_hosts, sizeof *s->hosts)))
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	for (size_t i = 0; i < sp->n_hosts; i++) {
		const char *h = sp->hosts[i];
		char norm[EGRESS_NAME_MAX + 3];
		bool wild = h && strncmp(h, "*.", 2) == 0;
		if (!h || egress_name_normalize(wild ? h + 2 : h, norm + (wild ? 2 : 0),
						sizeof norm - 2) < 0)
			return pd_err_set(err, EINVAL, LAYER, "secret %s: \"%.80s\" is not a host name",
					  sp->name, h ? h : "(null)");
		if (wild)
			memcpy(norm, "*.", 2);
		if (!(s->hosts[i] = strdup(norm)))
			return pd_err_set(err, ENOMEM, LAYER, "out of memory");
		s->n_hosts++;
	}
	return 0;
}

int secret_set_new(const struct secret_spec *specs, size_t n, struct secret_set **out,
		   struct pd_err *err)
{
	struct secret_set *s;
	size_t total = 0;
	int r;
	if (n > SECRETS_MAX)
		return pd_err_set(err, EINVAL, LAYER, "at most %d secrets", SECRETS_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct secret_spec *sp = &specs[i];
		if (!sp->name || !name_ok(sp->name))
			return pd_err_set(err, EINVAL, LAYER,
					  "secret name \"%.80s\" is not [A-Za-z_][A-Za-z0-9_]*",
					  sp->name ? sp->name : "(null)");
		if (!sp->placeholder || !placeholder_ok(sp->placeholder))
			return pd_err_set(err, EINVAL, LAYER,
					  "secret %s: the placeholder must be \"%s\" and 32 lower-case "
					  "hex digits", sp->name, SECRET_PREFIX);
		/* never print a value, not even a bad one */
		if (!sp->value || !value_ok(sp->value, sp->value_len))
			return pd_err_set(err, EINVAL, LAYER,
					  "secret %s: the value must be 1 to %d visible ASCII characters "
					  "(no line breaks)", sp->name, SECRET_VALUE_MAX);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(specs[j].name, sp->name) == 0)
				return pd_err_set(err, EINVAL, LAYER, "secret %s given twice", sp->name);
			if (strcmp(specs[j].placeholder, sp->placeholder) == 0)
				return pd_err_set(err, EINVAL, LAYER, "secrets %s and %s share a placeholder",
						  specs[j].name, sp->name);
		}
		total += sp->value_len + 1;
	}
	if (!(s = calloc(1, sizeof *s)) || (n && !(s->v = calloc(n, sizeof *s->v)))) {
		free(s);
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	}
	if ((r = secmem_alloc(&s->mem, total, err)) < 0)
		goto fail;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		struct secret *x = &s->v[i];
		const struct secret_spec *sp = &specs[i];
		s->n++;
		snprintf(x->name, sizeof x->name, "%s", sp->name);
		snprintf(x->placeholder, sizeof x->placeholder, "%s", sp->placeholder);
		if ((r = set_hosts(x, sp, err)) < 0)
			goto fail;
		memcpy(s->mem.p + off, sp->value, sp->value_len);
		x->value = (const char *)s->mem.p + off;
		x->value_len = sp->value_len;
		off += sp->value_len + 1;
	}
	*out = s;
	return 0;
fail:
	secret_set_free(s);
	return r;
}

void secret_set_carry_counts(struct secret_set *new, const struct secret_set *old)
{
	if (!new || !old)
		return;
	for (size_t i = 0; i < new->n; i++)
		for (size_t j = 0; j < old->n; j++)
			if (strcmp(new->v[i].name, old->v[j].name) == 0) {
				new->v[i].injections = old->v[j].injections;
				new->v[i].blocked = old->v[j].blocked;
			}
}

bool secret_host_allowed(const struct secret *s, const char *host)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (egress_pattern_match(s->hosts[i], host))
			return true;
	return false;
}

bool secret_set_intercepts(const struct secret_set *set, const char *host)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (secret_host_allowed(&set->v[i], host))
			return true;
	return false;
}

bool secret_set_guards(const struct secret_set *set, const char *host)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (!secret_host_allowed(&set->v[i], host))
			return true;
	return false;
}

/* --- finding placeholders --- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

struct secret *secret_find(const struct secret_set *set, const char *buf, size_t len, size_t *pos)
{
	if (!set || set->n == 0 || len < SECRET_PLACEHOLDER_LEN)
		return NULL;
	for (size_t i = *pos; i + SECRET_PLACEHOLDER_LEN <= len; i++) {
		if (lower((unsigned char)buf[i]) != 'p' ||
		    strncasecmp(buf + i, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
			continue;
		char hex[SECRET_HEX_LEN];
		for (size_t k = 0; k < SECRET_HEX_LEN; k++)
			hex[k] = (char)lower((unsigned char)buf[i + SECRET_PREFIX_LEN + k]);
		for (size_t j = 0; j < set->n; j++)
			if (memcmp(hex, set->v[j].placeholder + SECRET_PREFIX_LEN, SECRET_HEX_LEN) == 0) {
				*pos = i;
				return &set->v[j];
			}
	}
	return NULL;
}

struct secret *secret_find_dns(const struct secret_set *set, const char *name)
{
	char flat[256];
	size_t n = 0;
	if (!set || set->n == 0)
		return NULL;
	for (const char *p = name; *p && n < sizeof flat; p++)
		if (*p != '.')
			flat[n++] = (char)lower((unsigned char)*p);
	for (size_t j = 0; j < set->n; j++)
		if (memmem(flat, n, set->v[j].placeholder + SECRET_PREFIX_LEN, SECRET_HEX_LEN))
			return &set->v[j];
	return NULL;
}

/* --- rewriting a head --- */

/* A growing output that wipes what it leaves behind. */
struct obuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void ob_put(struct obuf *o, const void *s, size_t n)
{
	if (o->oom)
		return;
	if (o->cap - o->len < n) {
		size_t nc = o->cap ? o->cap : 4096;
		while (nc - o->len < n)
			nc *= 2;
		char *np = malloc(nc);
		if (!np) {
			o->oom = true;
			return;
		}
		if (o->len)
			memcpy(np, o->p, o->len);
		secret_wipe_free(o->p);
		o->p = np;
		o->cap = nc;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* Copy s[0..n) to o (o may be NULL: only judge), replacing placeholders
 * whose secret allows host; the first one that does not blocks. */
static bool put_replaced(const struct secret_set *set, const char *host, const char *s, size_t n,
			 struct obuf *o, struct secret_scan *sc)
{
	size_t at = 0, pos = 0;
	struct secret *x;
	while ((x = secret_find(set, s, n, &pos))) {
		if (!secret_host_allowed(x, host)) {
			sc->blocked = x;
			return false;
		}
		if (o) {
			ob_put(o, s + at, pos - at);
			ob_put(o, x->value, x->value_len);
		}
		sc->injected |= 1ULL << (size_t)(x - set->v);
		pos += SECRET_PLACEHOLDER_LEN;
		at = pos;
	}
	if (o)
		ob_put(o, s + at, n - at);
	return true;
}

static bool has_placeholder(const struct secret_set *set, const char *s, size_t n)
{
	size_t pos = 0;
	return secret_find(set, s, n, &pos) != NULL;
}

/* "Basic <base64>" credentials: decoded, replaced, encoded again. Returns
 * false when blocked; true otherwise (written to o). */
static bool put_basic(const struct secret_set *set, const char *host, const char *tok, size_t n,
		      struct obuf *o, struct secret_scan *sc)
{
	bool ok = true;
	if (n == 0 || n % 4 != 0 || n > 4 * ((SECRET_VALUE_MAX * 2 + 4096) / 3)) {
		ob_put(o, tok, n);
		return true;
	}
	unsigned char *dec = malloc(n / 4 * 3 + 1);
	struct obuf d = { 0 };
	if (!dec) {
		o->oom = true;
		return true;
	}
	int dl = EVP_DecodeBlock(dec, (const unsigned char *)tok, (int)n);
	if (dl < 0 || !has_placeholder(set, (char *)dec, (size_t)dl)) {
		ob_put(o, tok, n); /* not base64, or nothing of ours in it */
		goto out;
	}
	dl -= (tok[n - 1] == '=') + (tok[n - 2] == '=');
	if (!(ok = put_replaced(set, host, (char *)dec, (size_t)dl, &d, sc)) || d.oom) {
		o->oom = d.oom;
		goto out;
	}
	unsigned char *enc = malloc(4 * ((d.len + 2) / 3) + 1);
	if (!enc) {
		o->oom = true;
		goto out;
	}
	int el = EVP_EncodeBlock(enc, (unsigned char *)d.p, (int)d.len);
	ob_put(o, enc, (size_t)el);
	secret_wipe_free(enc);
out:
	secret_wipe_free(d.p);
	secret_wipe_free(dec);
	return ok;
}

static bool is_credentials(const char *line, size_t len, size_t *tok)
{
	static const char *const names[] = { "authorization:", "proxy-authorization:" };
	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(names[i]), v = n;
		if (len <= n || strncasecmp(line, names[i], n) != 0)
			continue;
		while (v < len && (line[v] == ' ' || line[v] == '\t'))
			v++;
		if (len - v > 6 && strncasecmp(line + v, "basic ", 6) == 0) {
			v += 6;
			while (v < len && line[v] == ' ')
				v++;
			*tok = v;
			return true;
		}
	}
	return false;
}

int secret_scan_head(const struct secret_set *set, const char *host, const char *buf, size_t len,
		     struct secret_scan *sc)
{
	struct obuf o = { 0 };
	const char *eol = memchr(buf, '\r', len);
	memset(sc, 0, sizeof *sc);
	if (!set || set->n == 0 || !eol)
		return 0;
	/* The request line: never rewritten, only judged. */
	if (!put_replaced(set, host, buf, (size_t)(eol - buf), NULL, sc)) {
		sc->where = "url";
		return 1;
	}
	sc->injected = 0; /* a placeholder in the URL of its own host stays as it is */
	ob_put(&o, buf, (size_t)(eol - buf) + 2);
	for (const char *p = eol + 2; p < buf + len;) {
		const char *e = memchr(p, '\r', (size_t)(buf + len - p));
		size_t ll = e ? (size_t)(e - p) : (size_t)(buf + len - p), tok;
		const char *colon = memchr(p, ':', ll);
		size_t name_len = colon ? (size_t)(colon - p) : ll;
		/* a placeholder in a header's name is not injected, only judged */
		uint64_t before = sc->injected;
		if (!put_replaced(set, host, p, name_len, NULL, sc))
			goto blocked;
		sc->injected = before;
		ob_put(&o, p, name_len);
		if (name_len == 4 && strncasecmp(p, "host", 4) == 0) {
			/* routing, not credentials: judged, never rewritten */
			before = sc->injected;
			if (!put_replaced(set, host, p + name_len, ll - name_len, NULL, sc))
				goto blocked;
			sc->injected = before;
			ob_put(&o, p + name_len, ll - name_len);
		} else if (is_credentials(p, ll, &tok)) {
			size_t te = tok;
			while (te < ll && p[te] != ' ' && p[te] != '\t')
				te++;
			if (!put_replaced(set, host, p + name_len, tok - name_len, &o, sc) ||
			    !put_basic(set, host, p + tok, te - tok, &o, sc) ||
			    !put_replaced(set, host, p + te, ll - te, &o, sc))
				goto blocked;
		} else if (!put_replaced(set, host, p + name_len, ll - name_len, &o, sc)) {
			goto blocked;
		}
		if (!e)
			break;
		ob_put(&o, "\r\n", 2);
		p = e + 2;
	}
	if (o.oom) {
		secret_wipe_free(o.p);
		memset(sc, 0, sizeof *sc);
		return -ENOMEM;
	}
	if (sc->injected) {
		sc->out = o.p;
		sc->out_len = o.len;
	} else {
		secret_wipe_free(o.p);
	}
	return 0;
blocked:
	secret_wipe_free(o.p);
	sc->where = "header";
	sc->injected = 0;
	return 1;
}

void secret_scan_done(struct secret_scan *sc)
{
	secret_wipe_free(sc->out);
	sc->out = NULL;
	sc->out_len = 0;
}
