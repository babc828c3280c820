/* sni.c: a bounded parser for the server_name of a TLS ClientHello.
 *
 * Hand-written because OpenSSL has no API to parse a ClientHello without
 * becoming the TLS server for the connection (SSL_client_hello_get0_ext
 * only works inside a handshake that then has to be completed or failed),
 * and the gateway must pass the client's bytes through untouched to the
 * real server. The grammar needed is small (RFC 8446 4.1.2, RFC 6066 3):
 * every length is checked against the bytes that enclose it, and anything
 * inconsistent is SNI_MALFORMED, which the caller refuses. */
#include "egress/sni.h"

#include <stdbool.h>
#include <string.h>

#define REC_HANDSHAKE 22
#define REC_MAX 16384         /* TLSPlaintext.length limit */
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define EXT_ECH 0xfe0d        /* encrypted_client_hello */
#define SNI_HOST_NAME 0

struct cur {
	const uint8_t *p;
	size_t n;
};

static bool take(struct cur *c, size_t k, struct cur *out)
{
	if (c->n < k)
		return false;
	if (out)
		*out = (struct cur){ c->p, k };
	c->p += k;
	c->n -= k;
	return true;
}

static bool u8(struct cur *c, size_t *v)
{
	if (c->n < 1)
		return false;
	*v = c->p[0];
	return take(c, 1, NULL);
}

static bool u16(struct cur *c, size_t *v)
{
	if (c->n < 2)
		return false;
	*v = (size_t)c->p[0] << 8 | c->p[1];
	return take(c, 2, NULL);
}

/* A vector with a 1- or 2-byte length prefix. */
static bool vec(struct cur *c, int lenbytes, struct cur *out)
{
	size_t l;
	if (!(lenbytes == 1 ? u8(c, &l) : u16(c, &l)))
		return false;
	return take(c, l, out);
}

static enum sni_result server_name_ext(struct cur e, char *name, size_t namecap)
{
	struct cur list, host;
	size_t type;
	if (!vec(&e, 2, &list) || e.n != 0 || list.n == 0)
		return SNI_MALFORMED;
	while (list.n > 0) {
		if (!u8(&list, &type) || !vec(&list, 2, &host))
			return SNI_MALFORMED;
		if (type != SNI_HOST_NAME)
			continue;
		if (host.n == 0 || host.n >= namecap || memchr(host.p, '\0', host.n))
			return SNI_MALFORMED;
		memcpy(name, host.p, host.n);
		name[host.n] = '\0';
		return SNI_OK;
	}
	return SNI_NO_NAME;
}

static enum sni_result client_hello(struct cur h, char *name, size_t namecap)
{
	struct cur exts, e;
	size_t v, type;
	bool seen_sni = false, seen_ech = false;
	enum sni_result r = SNI_NO_NAME;
	/* legacy_version, random, session id, cipher suites, compression */
	if (!u16(&h, &v) || (v >> 8) != 3 || !take(&h, 32, NULL) || !vec(&h, 1, &e) || e.n > 32 ||
	    !vec(&h, 2, &e) || e.n < 2 || e.n % 2 || !vec(&h, 1, &e) || e.n < 1)
		return SNI_MALFORMED;
	if (h.n == 0)
		return SNI_NO_NAME; /* no extensions at all */
	if (!vec(&h, 2, &exts) || h.n != 0)
		return SNI_MALFORMED;
	while (exts.n > 0) {
		if (!u16(&exts, &type) || !vec(&exts, 2, &e))
			return SNI_MALFORMED;
		if (type == EXT_SERVER_NAME) {
			if (seen_sni) /* RFC 8446 4.2: at most one of each */
				return SNI_MALFORMED;
			seen_sni = true;
			r = server_name_ext(e, name, namecap);
			if (r == SNI_MALFORMED)
				return r;
		} else if (type == EXT_ECH) {
			seen_ech = true;
		}
	}
	return seen_ech ? SNI_ECH : r;
}

enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t namecap)
{
	/* The handshake message may span several records: gather it. */
	uint8_t hs[SNI_MAX_HELLO];
	size_t hn = 0, off = 0;
	if (len == 0)
		return SNI_NEED_MORE;
	if (buf[0] != REC_HANDSHAKE || (len > 1 && buf[1] != 3))
		return SNI_NOT_TLS;
	if (len > 2 && buf[2] > 4) /* record versions are 3.0 to 3.4 */
		return SNI_NOT_TLS;
	for (;;) {
		if (hn >= 4) {
			size_t mlen = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
			if (hs[0] != HS_CLIENT_HELLO)
				return SNI_MALFORMED;
			if (mlen + 4 > sizeof hs)
				return SNI_TOO_LARGE;
			if (hn >= mlen + 4)
				return client_hello((struct cur){ hs + 4, mlen }, name, namecap);
		}
		if (len - off < 5)
			return SNI_NEED_MORE; /* the caller bounds what it buffers */
		const uint8_t *rec = buf + off;
		size_t rlen = (size_t)rec[3] << 8 | rec[4];
		if (rec[0] != REC_HANDSHAKE || rec[1] != 3 || rlen == 0 || rlen > REC_MAX)
			return SNI_MALFORMED;
		if (hn + rlen > sizeof hs)
			return SNI_TOO_LARGE;
		if (len - off - 5 < rlen) {
			/* Partial record: its bytes so far may already hold an
			 * inconsistent header, but wait for the whole record. */
			return SNI_NEED_MORE;
		}
		memcpy(hs + hn, rec + 5, rlen);
		hn += rlen;
		off += 5 + rlen;
	}
}

const char *sni_result_str(enum sni_result r)
{
	switch (r) {
	case SNI_OK: return "ok";
	case SNI_NEED_MORE: return "incomplete ClientHello";
	case SNI_NOT_TLS: return "not TLS";
	case SNI_NO_NAME: return "ClientHello without SNI";
	case SNI_ECH: return "ClientHello with encrypted_client_hello";
	case SNI_MALFORMED: return "malformed ClientHello";
	case SNI_TOO_LARGE: return "ClientHello too large";
	}
	return "?";
}
