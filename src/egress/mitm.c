/* mitm.c: terminating a sandbox's TLS to inject its secrets (secrets.c).
 *
 * CA. Each sandbox with secrets gets a CA (EC P-256, EGRESS_CA_DAYS) made
 * here when its first "secrets" arrive; the key never leaves this process
 * (and lives only as long as it: a restarted gateway has a new CA, which
 * the daemon installs again from the "ca_pem" of its "secrets" reply).
 * Leaves are minted on demand per host name (SAN = the name, one EC key per
 * sandbox, LEAF_DAYS of validity, re-minted a day before they expire),
 * cached per sandbox, at most LEAVES_MAX.
 *
 * UPSTREAM TLS verifies the real host's certificate chain and name against
 * the system trust store (EGRESS_TRUST_STORE), or against --upstream-ca FILE
 * only (tests), loaded into memory at start since Landlock closes the
 * filesystem; sends SNI, offers ALPN http/1.1 only, TLS >= 1.2.
 *
 * A CONNECTION (the proxy hands over the client and upstream fds and the
 * ClientHello it already read):
 *   1. TLS with the client, as the host, with the sandbox's leaf; ALPN
 *      http/1.1 only. A client that does not trust the CA fails here: the
 *      upstream has only seen a TCP connect, nothing is forwarded.
 *   2. TLS with the upstream, verified; a failure is answered 502.
 *   3. Requests: each complete head (up to HTTP_HEAD_MAX_INTERCEPT, within
 *      EGRESS_HEAD_TIMEOUT from its first byte) is parsed, its Host must be
 *      the connection's host (421 otherwise: no domain fronting with a
 *      secret), placeholders are replaced or the request blocked
 *      (secret_scan_head), then the body is walked by its framing
 *      (http_body_walk: Content-Length or chunked) and passed through as
 *      is, its first SECRETS_BODY_SCAN bytes searched for placeholders of
 *      secrets the host may not receive. While they are searched, the head
 *      and those bytes are held back (at most SECRETS_BODY_SCAN plus one
 *      read), so a blocked request never reaches the upstream at all;
 *      except with "Expect: 100-continue", where the client waits for the
 *      upstream's answer to the head before sending the body: that head
 *      goes at once. The next head follows: keep-alive
 *      and pipelining work. After a request with Upgrade the rest of the
 *      client's stream is passed through unparsed.
 *   4. Responses are relayed as a byte stream, unparsed: nothing in them is
 *      rewritten, and request boundaries are all that injection needs
 *      (a response cannot carry a request). So a 100 Continue, a 101 or an
 *      interim response passes as it is.
 *   A refusal (403 exfiltration, 400, 421, 431, 408, 502) is answered and
 *   the connection closed; the upstream connection is dropped first, so
 *   nothing of the refused request goes on. Responses to earlier pipelined
 *   requests that had not arrived yet are lost with it.
 *
 * PLAIN MODE (egress_mitm_start_plain): the same request processing for
 * plain HTTP, transparent port 80, the explicit proxy's absolute-URI
 * requests ("forward": each head rewritten to origin form by
 * http_rewrite_forward) and plain HTTP inside a CONNECT tunnel; plain
 * sockets on both sides, no handshakes. Every head must name the host the
 * connection was decided for (421 and a "connect" deny event otherwise:
 * no fronting of a denied name at an allowed one's address), the explicit
 * proxy's also its port. Secrets are never injected in clear: a
 * placeholder in a head or in the first SECRETS_BODY_SCAN bytes of a body
 * is refused, as exfiltration when the host is not one of its hosts, and
 * even to its own host (403, "use https"). Heads up to HTTP_HEAD_MAX. An
 * Upgrade is honoured only on the connection's first request (so that the
 * upstream's first answer is its answer), never for the explicit proxy:
 * the client's next bytes wait until the upstream answered; a 101 to a
 * websocket upgrade makes the rest opaque, any other final answer resumes
 * parsing, a 101 to another protocol (h2c: requests for any host) is
 * answered 502. A client's half-close is passed on once its requests are
 * out.
 *
 * EVENTS: "exfiltration" for each blocked request; "inject" once per
 * connection and secret (the first request that carried it: a keep-alive
 * connection with 1000 requests is one event), while secrets-stats counts
 * every injection. The proxy's "connect" event at close says
 * "intercept":true and, when the interception failed, "intercept_error". */
#include "egress/internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egress/http.h"
#include "egress/secrets.h"

#define LAYER "egress-tls"
#define LEAF_DAYS 3
#define LEAVES_MAX 256
#define MITM_OUT_HWM (256 * 1024) /* queued towards one side before the other stops being read */
#define MITM_LINGER_MS 2000       /* to flush an answer before closing */
#define MITM_IN_HWM (HTTP_HEAD_MAX_INTERCEPT + 16384)

struct leaf {
	struct leaf *next;
	char host[EGRESS_NAME_MAX + 1];
	X509 *cert;
	time_t renew; /* mint again from then on */
};

struct egress_ca {
	EVP_PKEY *key, *leaf_key;
	X509 *cert;
	char *pem;
	struct leaf *leaves;
	size_t n_leaves;
};

/* --- contexts --- */

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, h11, sizeof h11 - 1, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = o;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK; /* no ALPN: HTTP/1.1 all the same */
}

int egress_tls_init(struct egress *eg, const char *upstream_ca, struct pd_err *err)
{
	static const unsigned char h11[] = "\x08http/1.1";
	const char *store = upstream_ca ? upstream_ca : EGRESS_TRUST_STORE;
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL);
	eg->tls_server = SSL_CTX_new(TLS_server_method());
	eg->tls_client = SSL_CTX_new(TLS_client_method());
	if (!eg->tls_server || !eg->tls_client)
		return pd_err_set(err, ENOMEM, LAYER, "cannot create TLS contexts");
	SSL_CTX_set_min_proto_version(eg->tls_server, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(eg->tls_client, TLS1_2_VERSION);
	SSL_CTX_set_options(eg->tls_server, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
						    SSL_OP_NO_TICKET);
	SSL_CTX_set_options(eg->tls_client, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(eg->tls_server, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_mode(eg->tls_client, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(eg->tls_server, alpn_select, NULL);
	SSL_CTX_set_verify(eg->tls_client, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(eg->tls_client),
					X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_CTX_set_alpn_protos(eg->tls_client, h11, sizeof h11 - 1) != 0)
		return pd_err_set(err, ENOMEM, LAYER, "cannot set ALPN");
	/* A file, read now: a directory would be read lazily, after Landlock. */
	if (SSL_CTX_load_verify_locations(eg->tls_client, store, NULL) != 1) {
		ERR_clear_error();
		if (upstream_ca)
			return pd_err_set(err, EINVAL, LAYER, "--upstream-ca %s: no certificate read",
					  upstream_ca);
		/* no system store: every upstream fails verification (closed) */
	}
	return 0;
}

void egress_tls_free(struct egress *eg)
{
	SSL_CTX_free(eg->tls_server);
	SSL_CTX_free(eg->tls_client);
	eg->tls_server = eg->tls_client = NULL;
}

/* --- the CA and its leaves --- */

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	bool ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for key pub, signed by sign (issuer NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *pub, EVP_PKEY *sign, X509 *issuer, const char *cn,
		       const char *dns, long days)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	X509_NAME *name = X509_NAME_new();
	bool ok = x && bn && name && X509_set_version(x, 2) &&
		  BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
		  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
		  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"paddock",
					     -1, -1, 0) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
					     -1, -1, 0) &&
		  X509_set_subject_name(x, name) &&
		  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		  X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) &&
		  X509_set_pubkey(x, pub);
	if (ok && !issuer) {
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(x, x, NID_subject_key_identifier, "hash");
	} else if (ok) {
		char san[EGRESS_NAME_MAX + 8];
		snprintf(san, sizeof san, "DNS:%s", dns);
		ok = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") &&
		     add_ext(x, issuer, NID_ext_key_usage, "serverAuth") &&
		     add_ext(x, issuer, NID_subject_alt_name, san) &&
		     add_ext(x, issuer, NID_authority_key_identifier, "keyid");
	}
	ok = ok && X509_sign(x, sign, EVP_sha256()) > 0;
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

void egress_ca_free(struct egress_ca *ca)
{
	if (!ca)
		return;
	while (ca->leaves) {
		struct leaf *l = ca->leaves;
		ca->leaves = l->next;
		X509_free(l->cert);
		free(l);
	}
	EVP_PKEY_free(ca->key);
	EVP_PKEY_free(ca->leaf_key);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca);
}

int egress_ca_ensure(struct sandbox *sb, struct pd_err *err)
{
	char cn[128];
	struct egress_ca *ca;
	BIO *bio = NULL;
	BUF_MEM *mem;
	if (sb->ca)
		return 0;
	if (!(ca = calloc(1, sizeof *ca)))
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	snprintf(cn, sizeof cn, "paddock sandbox %s CA", sb->name);
	if (!(ca->key = EVP_EC_gen("P-256")) || !(ca->leaf_key = EVP_EC_gen("P-256")) ||
	    !(ca->cert = make_cert(ca->key, ca->key, NULL, cn, NULL, EGRESS_CA_DAYS)) ||
	    !(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(bio, ca->cert)) {
		BIO_free(bio);
		egress_ca_free(ca);
		ERR_clear_error();
		return pd_err_set(err, EIO, LAYER, "cannot make the CA of %s", sb->name);
	}
	BIO_get_mem_ptr(bio, &mem);
	ca->pem = strndup(mem->data, mem->length);
	BIO_free(bio);
	if (!ca->pem) {
		egress_ca_free(ca);
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	}
	sb->ca = ca;
	return 0;
}

const char *egress_ca_pem(const struct sandbox *sb)
{
	return sb->ca ? sb->ca->pem : NULL;
}

static X509 *leaf_for(struct egress_ca *ca, const char *host)
{
	time_t now = time(NULL);
	struct leaf **pp, *l;
	for (pp = &ca->leaves; (l = *pp); pp = &l->next) {
		if (strcmp(l->host, host) != 0)
			continue;
		if (now < l->renew)
			return l->cert;
		*pp = l->next; /* stale: mint again */
		X509_free(l->cert);
		free(l);
		ca->n_leaves--;
		break;
	}
	if (ca->n_leaves >= LEAVES_MAX) { /* drop the oldest (the list's tail) */
		for (pp = &ca->leaves; (*pp)->next; pp = &(*pp)->next)
			;
		X509_free((*pp)->cert);
		free(*pp);
		*pp = NULL;
		ca->n_leaves--;
	}
	if (!(l = calloc(1, sizeof *l)))
		return NULL;
	snprintf(l->host, sizeof l->host, "%s", host);
	if (!(l->cert = make_cert(ca->leaf_key, ca->key, ca->cert, host, host, LEAF_DAYS))) {
		free(l);
		ERR_clear_error();
		return NULL;
	}
	l->renew = now + (LEAF_DAYS - 1) * 86400;
	l->next = ca->leaves;
	ca->leaves = l;
	ca->n_leaves++;
	return l->cert;
}

/* --- events --- */

void egress_secret_blocked(struct sandbox *sb, struct secret *s, const char *host,
			   const char *where)
{
	s->blocked++;
	egress_emit(sb->eg, json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "exfiltration",
				      "sandbox", sb->name, "secret", s->name, "host", host,
				      "where", where));
}

int egress_secret_blocked_body(const struct secret *s, const char *host, char *buf, size_t len)
{
	char hosts[400];
	size_t o = 0;
	hosts[0] = '\0';
	for (size_t i = 0; i < s->n_hosts && o < sizeof hosts; i++)
		o += (size_t)snprintf(hosts + o, sizeof hosts - o, "%s%s", i ? ", " : "", s->hosts[i]);
	return snprintf(buf, len,
			"paddock: blocked: this request carries the placeholder of secret %s, which "
			"is only sent to %s; %s is not one of its hosts (logged as exfiltration)\n",
			s->name, hosts, host);
}

/* --- the connection --- */

enum mstate { M_HS_CLIENT, M_HS_UPSTREAM, M_HEAD, M_BODY, M_OPAQUE, M_UPGRADE, M_CLOSING };

struct mitm {
	struct sandbox *sb;
	char host[EGRESS_NAME_MAX + 1];
	uint16_t port;
	bool plain, forward;         /* plain mode; the explicit proxy's requests */
	const char *via;             /* plain mode: for events */
	size_t head_max;
	uint64_t requests;           /* heads forwarded */
	bool websocket;              /* M_UPGRADE: the request asked for websocket */
	bool cl_eof, up_shut;        /* plain mode: the client half-closed; passed on */
	int ufd;
	struct bufferevent *cl, *up; /* plaintext sides: client, upstream */
	enum mstate st;
	struct http_body body;
	uint64_t scan_left;          /* body bytes still to search */
	char *held;                  /* a head held back while its body is searched */
	size_t held_len;
	uint64_t held_mask;          /* the secrets injected into it */
	struct evbuffer *hold;       /* the body bytes searched so far, held too */
	bool holding;
	char carry[SECRET_PLACEHOLDER_LEN - 1];
	size_t carry_len;
	uint64_t reported, reported_gen; /* secrets with an "inject" event here */
	struct event *timer;
	uint64_t phase_t0, last_active;
	bool in_head, paused_cl, paused_up;
	void (*closed)(void *);
	void *arg;
	uint64_t bytes_up, bytes_down;
	char error[200];
};

static void arm(struct mitm *m, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(m->timer, &tv);
}

static void finish(struct mitm *m)
{
	m->closed(m->arg); /* frees m */
}

__attribute__((format(printf, 2, 3)))
static void set_error(struct mitm *m, const char *fmt, ...)
{
	va_list ap;
	if (m->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(m->error, sizeof m->error, fmt, ap);
	va_end(ap);
}

static const char *ssl_error(struct bufferevent *bev)
{
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
	const char *s = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return s ? s : "connection closed";
}

static void close_upstream(struct mitm *m)
{
	if (m->up) {
		bufferevent_free(m->up);
		m->up = NULL;
	} else if (m->ufd >= 0) {
		close(m->ufd);
	}
	m->ufd = -1;
}

/* Answer the client, drop the upstream, close once the answer is out. */
__attribute__((format(printf, 4, 5)))
static void answer(struct mitm *m, int status, const char *text, const char *fmt, ...)
{
	char body[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	close_upstream(m);
	evbuffer_add_printf(bufferevent_get_output(m->cl),
			    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			    status, text, strlen(body), body);
	/* keep reading (and dropping) what the client sends meanwhile: closing
	 * with unread bytes would reset the answer away */
	evbuffer_drain(bufferevent_get_input(m->cl), evbuffer_get_length(bufferevent_get_input(m->cl)));
	bufferevent_enable(m->cl, EV_READ);
	m->st = M_CLOSING;
	m->phase_t0 = egress_now_ms();
	arm(m, 20);
}

static void drop_held(struct mitm *m);

static void block(struct mitm *m, struct secret *s, const char *where)
{
	char body[768];
	set_error(m, "exfiltration of %s blocked (%s)", s->name, where);
	drop_held(m);
	egress_secret_blocked(m->sb, s, m->host, where);
	egress_secret_blocked_body(s, m->host, body, sizeof body);
	answer(m, 403, "Forbidden", "%s", body);
}

static void injected(struct mitm *m, uint64_t mask)
{
	struct secret_set *set = m->sb->secrets;
	if (!mask || !set)
		return;
	if (m->reported_gen != set->generation) {
		m->reported_gen = set->generation;
		m->reported = 0;
	}
	for (size_t i = 0; i < set->n; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		set->v[i].injections++;
		if (m->reported & (1ULL << i))
			continue;
		m->reported |= 1ULL << i;
		egress_emit(m->sb->eg, json_pack("{s:s, s:s, s:s, s:s}", "event", "inject", "sandbox",
						 m->sb->name, "secret", set->v[i].name, "host",
						 m->host));
	}
}

static void wipe_cleanup(const void *data, size_t len, void *extra)
{
	secret_wipe_free((void *)data);
}

/* A placeholder, in buf, of a secret m->host may not receive; in plain
 * mode, else any placeholder (none goes in clear). *at: its offset. */
static struct secret *find_bad(struct mitm *m, const char *buf, size_t len, size_t *at)
{
	size_t pos = 0, any_at = 0;
	struct secret *x, *any = NULL;
	while ((x = secret_find(m->sb->secrets, buf, len, &pos))) {
		if (!secret_host_allowed(x, m->host)) {
			*at = pos;
			return x;
		}
		if (m->plain && !any)
			any = x, any_at = pos;
		pos++;
	}
	*at = any_at;
	return any;
}

/* A "connect" deny event for one request of a plain connection. */
static void deny_event(struct mitm *m, const char *name, uint16_t port, const char *reason)
{
	if (!m->via)
		return;
	egress_emit(m->sb->eg,
		    json_pack("{s:s, s:s, s:s, s:n, s:i, s:s, s:s, s:s, s:i, s:i, s:i}", "event",
			      "connect", "sandbox", m->sb->name, "name", name, "addr", "port",
			      (int)port, "via", m->via, "verdict", "deny", "reason", reason,
			      "bytes_up", 0, "bytes_down", 0, "ms", 0));
}

/* Refuse a request that carries the placeholder of x. */
static void refuse_secret(struct mitm *m, struct secret *x, const char *where)
{
	if (!secret_host_allowed(x, m->host)) {
		block(m, x, where);
		return;
	}
	set_error(m, "secret placeholder over plain http");
	drop_held(m);
	deny_event(m, m->host, m->port, "secret placeholder over plain http");
	answer(m, 403, "Forbidden",
	       "paddock: the placeholder of secret %s is only replaced over https; use https://%s\n",
	       x->name, m->host);
}

/* Is raw (a request's host as written) the connection's host? */
static bool host_is(const struct mitm *m, const char *raw)
{
	char n[EGRESS_NAME_MAX + 1];
	struct sockaddr_storage a, b;
	if (egress_ip_literal(m->host, &a)) {
		if (!egress_ip_literal(raw, &b) || a.ss_family != b.ss_family)
			return false;
		if (a.ss_family == AF_INET)
			return memcmp(&((struct sockaddr_in *)&a)->sin_addr,
				      &((struct sockaddr_in *)&b)->sin_addr, 4) == 0;
		return memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
			      &((struct sockaddr_in6 *)&b)->sin6_addr, 16) == 0;
	}
	return egress_name_normalize(raw, n, sizeof n) == 0 && strcmp(n, m->host) == 0;
}

/* 421: a request for another host (or port) than the connection's. */
static void misdirected(struct mitm *m, const struct http_head *h)
{
	const char *asked = !host_is(m, h->host) || m->forward ? h->host : h->host_header;
	uint16_t port = m->forward ? h->port : m->port;
	char n[sizeof h->host];
	const char *reason = "misdirected request";
	if (egress_name_normalize(asked, n, sizeof n) == 0) {
		const char *why;
		if (!egress_ip_literal(n, &(struct sockaddr_storage){ 0 }) &&
		    egress_policy_check(&m->sb->policy, n, &why) != EGRESS_ALLOW)
			reason = why;
	} else {
		snprintf(n, sizeof n, "%s", asked);
	}
	set_error(m, "request for another host than %s", m->host);
	deny_event(m, n, port, reason);
	if (m->forward && port != m->port)
		answer(m, 421, "Misdirected Request",
		       "paddock: this connection is for %s port %u; a request for %s port %u cannot "
		       "use it\n", m->host, m->port, asked, port);
	else
		answer(m, 421, "Misdirected Request",
		       "paddock: this connection is for %s; a request for %s cannot use it\n", m->host,
		       asked);
}

/* Returns false when m is closing (blocked). */
static bool scan_body(struct mitm *m, const char *p, size_t n)
{
	char win[2 * sizeof m->carry];
	size_t k = n < m->scan_left ? n : (size_t)m->scan_left;
	size_t head = k < sizeof m->carry ? k : sizeof m->carry;
	struct secret *x;
	memcpy(win, m->carry, m->carry_len);
	memcpy(win + m->carry_len, p, head);
	size_t at;
	if ((x = find_bad(m, win, m->carry_len + head, &at)) || (x = find_bad(m, p, k, &at))) {
		refuse_secret(m, x, "body");
		return false;
	}
	/* keep the last bytes seen for a placeholder across reads */
	if (k >= sizeof m->carry) {
		memcpy(m->carry, p + k - sizeof m->carry, sizeof m->carry);
		m->carry_len = sizeof m->carry;
	} else {
		size_t keep = m->carry_len + k > sizeof m->carry ? sizeof m->carry - k : m->carry_len;
		memmove(m->carry, m->carry + m->carry_len - keep, keep);
		memcpy(m->carry + keep, p, k);
		m->carry_len = keep + k;
	}
	m->scan_left -= k;
	return true;
}

/* Returns true when a head was forwarded (go on), false to wait or stop. */
static bool do_head(struct mitm *m, struct evbuffer *in, struct evbuffer *out)
{
	struct http_head h;
	struct secret_scan sc;
	if (!m->in_head) {
		m->in_head = true;
		m->phase_t0 = egress_now_ms();
		arm(m, 1000);
	}
	struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (e.pos < 0 || (size_t)e.pos + 4 > m->head_max) {
		if (e.pos >= 0 || evbuffer_get_length(in) >= m->head_max) {
			set_error(m, "request head too large");
			answer(m, 431, "Request Header Fields Too Large",
			       "paddock: request head larger than %zu bytes\n", m->head_max);
		}
		return false;
	}
	size_t hl = (size_t)e.pos + 4;
	const char *p = (const char *)evbuffer_pullup(in, (ssize_t)hl);
	int r = p ? http_parse_head_max(p, hl, m->head_max, &h) : -503;
	if (r <= 0) {
		set_error(m, "bad request: %s", r < 0 && h.error ? h.error : "incomplete");
		answer(m, 400, "Bad Request", "paddock: bad request: %s\n",
		       r < 0 && h.error ? h.error : "incomplete head");
		return false;
	}
	if (h.form == HTTP_AUTHORITY) {
		set_error(m, "CONNECT inside a connection in use");
		answer(m, 400, "Bad Request", m->plain ? "paddock: CONNECT on a connection in use\n"
						       : "paddock: CONNECT inside a TLS connection\n");
		return false;
	}
	if (m->forward && h.form != HTTP_ABSOLUTE) {
		set_error(m, "bad request: not a proxy request");
		answer(m, 400, "Bad Request",
		       "paddock: this is a proxy: send CONNECT or an absolute http:// URI\n");
		return false;
	}
	/* The explicit proxy's Host header is replaced by the URI's host. */
	if (!host_is(m, h.host) || (m->forward && h.port != m->port) ||
	    (!m->forward && h.has_host_header && !host_is(m, h.host_header))) {
		misdirected(m, &h);
		return false;
	}
	if (http_body_init(p, &h, &m->body) < 0) {
		set_error(m, "bad request: %s", m->body.error);
		answer(m, 400, "Bad Request", "paddock: bad request: %s\n", m->body.error);
		return false;
	}
	if (m->plain) {
		/* an Upgrade only where the upstream's answer to it can be told */
		m->websocket = m->body.websocket;
		if (m->forward || m->requests > 0 || !m->body.done)
			m->body.upgrade = false;
		size_t at;
		struct secret *x = find_bad(m, p, hl, &at);
		if (x) {
			refuse_secret(m, x, at < (size_t)((const char *)memchr(p, '\r', hl) - p)
						    ? "url" : "header");
			return false;
		}
		memset(&sc, 0, sizeof sc);
		if (m->forward) {
			int n = (sc.out = malloc(HTTP_REWRITE_MAX))
					? http_rewrite_forward(p, &h, sc.out, HTTP_REWRITE_MAX) : -1;
			if (n < 0) {
				secret_scan_done(&sc);
				set_error(m, "bad request: head too large to forward");
				answer(m, 431, "Request Header Fields Too Large",
				       "paddock: request head too large to forward\n");
				return false;
			}
			sc.out_len = (size_t)n;
		}
	} else {
		r = secret_scan_head(m->sb->secrets, m->host, p, hl, &sc);
		if (r < 0) {
			answer(m, 503, "Service Unavailable", "paddock: out of memory\n");
			return false;
		}
		if (r == 1) {
			block(m, sc.blocked, sc.where);
			return false;
		}
	}
	m->requests++;
	m->in_head = false;
	arm(m, EGRESS_IDLE_TIMEOUT / 5 * 1000);
	m->scan_left = 0;
	m->carry_len = 0;
	if (!m->body.done && !m->body.upgrade)
		m->scan_left = secret_set_guards(m->sb->secrets, m->host) ||
				       (m->plain && m->sb->secrets && m->sb->secrets->n)
				       ? SECRETS_BODY_SCAN : 0;
	if (m->scan_left && !m->body.expect_continue) {
		/* hold the head back until the body's start is searched */
		if (!sc.out && (sc.out = malloc(hl)))
			memcpy(sc.out, p, hl), sc.out_len = hl;
		if (!sc.out || (!m->hold && !(m->hold = evbuffer_new()))) {
			secret_scan_done(&sc);
			answer(m, 503, "Service Unavailable", "paddock: out of memory\n");
			return false;
		}
		evbuffer_drain(in, hl);
		m->held = sc.out;
		m->held_len = sc.out_len;
		m->held_mask = sc.injected;
		m->holding = true;
	} else if (sc.out) {
		evbuffer_drain(in, hl);
		m->bytes_up += sc.out_len;
		if (evbuffer_add_reference(out, sc.out, sc.out_len, wipe_cleanup, NULL) < 0) {
			secret_scan_done(&sc);
			answer(m, 503, "Service Unavailable", "paddock: out of memory\n");
			return false;
		}
		injected(m, sc.injected);
	} else {
		evbuffer_remove_buffer(in, out, hl);
		m->bytes_up += hl;
	}
	if (m->body.upgrade)
		m->st = m->plain ? M_UPGRADE : M_OPAQUE;
	else if (!m->body.done)
		m->st = M_BODY;
	return true;
}

/* The held head and body bytes were searched: let them go. */
static bool release(struct mitm *m, struct evbuffer *out)
{
	char *h = m->held;
	m->held = NULL;
	m->holding = false;
	m->bytes_up += m->held_len;
	if (evbuffer_add_reference(out, h, m->held_len, wipe_cleanup, NULL) < 0) {
		secret_wipe_free(h);
		answer(m, 503, "Service Unavailable", "paddock: out of memory\n");
		return false;
	}
	injected(m, m->held_mask);
	evbuffer_add_buffer(out, m->hold);
	return true;
}

static void drop_held(struct mitm *m)
{
	secret_wipe_free(m->held);
	m->held = NULL;
	m->holding = false;
	if (m->hold)
		evbuffer_drain(m->hold, evbuffer_get_length(m->hold));
}

static bool do_body(struct mitm *m, struct evbuffer *in, struct evbuffer *out)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	long n = http_body_walk(&m->body, v.iov_base, v.iov_len);
	if (n < 0) {
		set_error(m, "bad request body: %s", m->body.error);
		answer(m, 400, "Bad Request", "paddock: bad request body: %s\n", m->body.error);
		return false;
	}
	if (m->scan_left && n > 0 && !scan_body(m, v.iov_base, (size_t)n))
		return false;
	evbuffer_remove_buffer(in, m->holding ? m->hold : out, (size_t)n);
	m->bytes_up += (uint64_t)n;
	if (m->holding && (m->scan_left == 0 || m->body.done) && !release(m, out))
		return false;
	if (m->body.done)
		m->st = M_HEAD;
	return true;
}

/* Plain mode: the client half-closed; once all it sent is out, so does
 * the upstream side (its answers still come back). */
static void maybe_shut(struct mitm *m)
{
	if (!m->cl_eof || m->up_shut || !m->up || m->st == M_CLOSING ||
	    evbuffer_get_length(bufferevent_get_input(m->cl)) ||
	    evbuffer_get_length(bufferevent_get_output(m->up)))
		return;
	m->up_shut = true;
	shutdown(bufferevent_getfd(m->up), SHUT_WR);
}

/* Move what the client sent, request by request. */
static void process(struct mitm *m)
{
	struct evbuffer *in = bufferevent_get_input(m->cl);
	while (m->st == M_HEAD || m->st == M_BODY || m->st == M_OPAQUE) {
		struct evbuffer *out = bufferevent_get_output(m->up);
		size_t avail = evbuffer_get_length(in);
		if (avail == 0) {
			maybe_shut(m);
			return;
		}
		if (evbuffer_get_length(out) >= MITM_OUT_HWM) {
			m->paused_cl = true;
			bufferevent_disable(m->cl, EV_READ);
			return;
		}
		if (m->st == M_OPAQUE) {
			m->bytes_up += avail;
			evbuffer_add_buffer(out, in);
		} else if (!(m->st == M_HEAD ? do_head(m, in, out) : do_body(m, in, out))) {
			return;
		}
	}
}

static bool flushed(struct mitm *m)
{
	struct bufferevent *u = bufferevent_get_underlying(m->cl);
	return evbuffer_get_length(bufferevent_get_output(m->cl)) == 0 &&
	       (!u || evbuffer_get_length(bufferevent_get_output(u)) == 0);
}

/* The upstream is done (EOF or error): flush to the client, then close. */
static void drain_then_close(struct mitm *m)
{
	close_upstream(m);
	m->st = M_CLOSING;
	m->phase_t0 = egress_now_ms();
	if (flushed(m)) {
		finish(m);
		return;
	}
	arm(m, 20);
}

static void cl_read_cb(struct bufferevent *bev, void *arg)
{
	struct mitm *m = arg;
	m->last_active = egress_now_ms();
	if (m->st == M_CLOSING)
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	else if (m->st >= M_HEAD)
		process(m);
}

static void cl_write_cb(struct bufferevent *bev, void *arg)
{
	struct mitm *m = arg;
	m->last_active = egress_now_ms();
	if (m->paused_up && m->up) {
		m->paused_up = false;
		bufferevent_enable(m->up, EV_READ);
	}
}

/* Plain mode, M_UPGRADE: the upstream's answer to the connection's first
 * request, which asked for an Upgrade. Its heads are held in in until
 * complete; interim ones pass. Returns 1 to relay in (the state may have
 * changed), 0 to wait, -1 when m is closing. */
static int upgrade_answer(struct mitm *m, struct evbuffer *in, struct evbuffer *out)
{
	for (;;) {
		struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char line[13];
		int status = 0;
		if (e.pos < 0) {
			if (evbuffer_get_length(in) < HTTP_HEAD_MAX)
				return 0;
		} else if (evbuffer_copyout(in, line, 12) == 12 && memcmp(line, "HTTP/1.", 7) == 0 &&
			   line[8] == ' ' && line[9] >= '1' && line[9] <= '5' && line[10] >= '0' &&
			   line[10] <= '9' && line[11] >= '0' && line[11] <= '9') {
			status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
		}
		if (status == 0) {
			set_error(m, "bad answer from the upstream to an upgrade");
			answer(m, 502, "Bad Gateway", "paddock: bad answer from %s to an upgrade\n",
			       m->host);
			return -1;
		}
		if (status == 101 && !m->websocket) {
			set_error(m, "upstream switched to a protocol other than websocket");
			answer(m, 502, "Bad Gateway",
			       "paddock: %s switched protocols; over plain http only websocket is "
			       "relayed\n", m->host);
			return -1;
		}
		if (status >= 200 || status == 101) {
			m->st = status == 101 ? M_OPAQUE : M_HEAD;
			return 1;
		}
		m->bytes_down += (uint64_t)e.pos + 4; /* 100, 102, 103: interim */
		evbuffer_remove_buffer(in, out, (size_t)e.pos + 4);
	}
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
	struct mitm *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(m->cl);
	bool resume = false;
	m->last_active = egress_now_ms();
	if (m->st == M_UPGRADE) {
		int r = upgrade_answer(m, in, out);
		if (r <= 0)
			return;
		resume = true;
	}
	m->bytes_down += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= MITM_OUT_HWM) {
		m->paused_up = true;
		bufferevent_disable(bev, EV_READ);
	}
	if (resume)
		process(m); /* the client's bytes that waited for the answer */
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
	struct mitm *m = arg;
	m->last_active = egress_now_ms();
	if (m->paused_cl) {
		m->paused_cl = false;
		if (!m->cl_eof)
			bufferevent_enable(m->cl, EV_READ);
		process(m);
	}
	if (m->up)
		maybe_shut(m);
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mitm *m = arg;
	if (what & BEV_EVENT_CONNECTED) {
		m->st = M_HEAD;
		m->last_active = egress_now_ms();
		arm(m, EGRESS_IDLE_TIMEOUT / 5 * 1000);
		bufferevent_enable(m->cl, EV_READ);
		process(m);
		return;
	}
	if (m->st == M_HS_UPSTREAM) {
		SSL *s = bufferevent_openssl_get_ssl(bev);
		long v = s ? SSL_get_verify_result(s) : X509_V_OK;
		char why[160];
		snprintf(why, sizeof why, "%s",
			 v != X509_V_OK ? X509_verify_cert_error_string(v) : ssl_error(bev));
		set_error(m, "upstream TLS: %s", why);
		answer(m, 502, "Bad Gateway", "paddock: no trusted TLS connection to %s: %s\n", m->host,
		       why);
		return;
	}
	/* EOF or error after the handshake: the rest of the answer, then close */
	(void)ssl_error(bev);
	drain_then_close(m);
}

static void start_upstream(struct mitm *m)
{
	struct egress *eg = m->sb->eg;
	SSL *s = SSL_new(eg->tls_client);
	if (!s || SSL_set_tlsext_host_name(s, m->host) != 1 || SSL_set1_host(s, m->host) != 1) {
		SSL_free(s);
		set_error(m, "cannot start upstream TLS");
		answer(m, 503, "Service Unavailable", "paddock: out of resources\n");
		return;
	}
	m->up = bufferevent_openssl_socket_new(eg->base, m->ufd, s, BUFFEREVENT_SSL_CONNECTING,
					       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!m->up) {
		SSL_free(s);
		set_error(m, "cannot start upstream TLS");
		answer(m, 503, "Service Unavailable", "paddock: out of resources\n");
		return;
	}
	m->ufd = -1;
	m->st = M_HS_UPSTREAM;
	m->phase_t0 = egress_now_ms();
	bufferevent_openssl_set_allow_dirty_shutdown(m->up, 1);
	bufferevent_setcb(m->up, up_read_cb, up_write_cb, up_event_cb, m);
	bufferevent_setwatermark(m->up, EV_WRITE, MITM_OUT_HWM / 2, 0);
	bufferevent_enable(m->up, EV_READ | EV_WRITE);
}

static void cl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mitm *m = arg;
	if (m->plain && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* a half-close: the answers still go back to the client */
		if (m->st == M_CLOSING)
			return; /* the timer closes once the answer is out */
		if (m->up) {
			m->cl_eof = true;
			maybe_shut(m);
			return;
		}
	}
	if (what & BEV_EVENT_CONNECTED) {
		/* hold the client's requests until the upstream is verified */
		bufferevent_disable(m->cl, EV_READ);
		start_upstream(m);
		return;
	}
	if (m->st == M_HS_CLIENT)
		set_error(m, "client TLS handshake failed: %s", ssl_error(bev));
	else
		(void)ssl_error(bev);
	finish(m); /* the client is gone: nothing to answer */
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mitm *m = arg;
	uint64_t now = egress_now_ms();
	switch (m->st) {
	case M_CLOSING:
		if (flushed(m) || now - m->phase_t0 >= MITM_LINGER_MS) {
			finish(m);
			return;
		}
		arm(m, 20);
		return;
	case M_HS_CLIENT:
	case M_HS_UPSTREAM:
		if (now - m->phase_t0 >= EGRESS_HEAD_TIMEOUT * 1000ULL) {
			set_error(m, "timeout: TLS handshake with the %s",
				  m->st == M_HS_CLIENT ? "client" : "upstream");
			finish(m);
			return;
		}
		arm(m, 1000);
		return;
	case M_HEAD:
		if (m->in_head) {
			if (now - m->phase_t0 >= EGRESS_HEAD_TIMEOUT * 1000ULL) {
				set_error(m, "timeout: request head not complete in time");
				answer(m, 408, "Request Timeout", "paddock: request head not complete in time\n");
				return;
			}
			arm(m, 1000);
			return;
		}
		break;
	case M_BODY:
	case M_OPAQUE:
	case M_UPGRADE:
		break;
	}
	if (now - m->last_active >= EGRESS_IDLE_TIMEOUT * 1000ULL) {
		finish(m);
		return;
	}
	arm(m, EGRESS_IDLE_TIMEOUT / 5 * 1000);
}

struct mitm *egress_mitm_start(struct sandbox *sb, const char *host, int cfd, int ufd,
			       const char *pre, size_t pre_len, void (*closed)(void *), void *arg,
			       const char **why)
{
	struct event_base *base = sb->eg->base;
	struct mitm *m = calloc(1, sizeof *m);
	struct bufferevent *under = NULL;
	SSL *s = NULL;
	X509 *leaf;
	*why = "out of resources";
	if (!m)
		goto fail;
	m->sb = sb;
	m->ufd = ufd;
	m->closed = closed;
	m->arg = arg;
	m->head_max = HTTP_HEAD_MAX_INTERCEPT;
	snprintf(m->host, sizeof m->host, "%s", host);
	m->phase_t0 = m->last_active = egress_now_ms();
	if (!sb->ca || !(leaf = leaf_for(sb->ca, host))) {
		*why = "no certificate for the host";
		goto fail;
	}
	if (!(m->timer = evtimer_new(base, timer_cb, m)) || !(s = SSL_new(sb->eg->tls_server)) ||
	    SSL_use_certificate(s, leaf) != 1 || SSL_use_PrivateKey(s, sb->ca->leaf_key) != 1)
		goto fail;
	/* The ClientHello was read already (to decide): the filter's TLS reads
	 * from this buffer first, then from the socket. */
	if (!(under = bufferevent_socket_new(base, cfd, BEV_OPT_CLOSE_ON_FREE)))
		goto fail;
	cfd = -1;
	/* The filter starts its handshake at once, on an empty buffer: it
	 * waits. Its callbacks must be in place before the hello is fed. */
	m->cl = bufferevent_openssl_filter_new(base, under, s, BUFFEREVENT_SSL_ACCEPTING,
					       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	/* It owns both now; libevent 2.1 frees them itself when it fails
	 * (at worst, on that out-of-memory path, they leak). */
	s = NULL;
	if (!m->cl) {
		under = NULL;
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(m->cl, 1);
	bufferevent_setcb(m->cl, cl_read_cb, cl_write_cb, cl_event_cb, m);
	bufferevent_setwatermark(m->cl, EV_READ, 0, MITM_IN_HWM);
	bufferevent_setwatermark(m->cl, EV_WRITE, MITM_OUT_HWM / 2, 0);
	bufferevent_enable(m->cl, EV_READ | EV_WRITE);
	m->st = M_HS_CLIENT;
	arm(m, 1000);
	/* The ClientHello was read already (to decide): the TLS reads it from
	 * the underlying buffer, as if it had just arrived. */
	if (pre_len) {
		struct bufferevent *u = under;
		under = NULL; /* freed with m->cl */
		struct evbuffer *uin = bufferevent_get_input(u);
		/* a socket bufferevent's input takes bytes from the socket only */
		evbuffer_unfreeze(uin, 0);
		int r = evbuffer_add(uin, pre, pre_len);
		evbuffer_freeze(uin, 0);
		if (r < 0)
			goto fail;
		bufferevent_trigger(u, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
	return m;
fail:
	ERR_clear_error();
	SSL_free(s);
	if (under)
		bufferevent_free(under);
	if (cfd >= 0)
		close(cfd);
	if (m) {
		m->closed = NULL;
		egress_mitm_free(m);
	} else if (ufd >= 0) {
		close(ufd);
	}
	return NULL;
}

struct mitm *egress_mitm_start_plain(struct sandbox *sb, const char *host, uint16_t port,
				     bool forward, const char *via, int cfd, int ufd,
				     const char *pre, size_t pre_len, void (*closed)(void *),
				     void *arg, const char **why)
{
	struct event_base *base = sb->eg->base;
	struct mitm *m = calloc(1, sizeof *m);
	*why = "out of resources";
	if (!m)
		goto fail;
	m->sb = sb;
	m->ufd = ufd;
	m->closed = closed;
	m->arg = arg;
	m->plain = true;
	m->forward = forward;
	m->via = via;
	m->port = port;
	m->head_max = HTTP_HEAD_MAX;
	snprintf(m->host, sizeof m->host, "%s", host);
	m->phase_t0 = m->last_active = egress_now_ms();
	if (!(m->timer = evtimer_new(base, timer_cb, m)) ||
	    !(m->cl = bufferevent_socket_new(base, cfd, BEV_OPT_CLOSE_ON_FREE |
							     BEV_OPT_DEFER_CALLBACKS)))
		goto fail;
	cfd = -1;
	if (!(m->up = bufferevent_socket_new(base, ufd, BEV_OPT_CLOSE_ON_FREE |
							      BEV_OPT_DEFER_CALLBACKS)))
		goto fail;
	m->ufd = -1;
	bufferevent_setcb(m->cl, cl_read_cb, cl_write_cb, cl_event_cb, m);
	bufferevent_setwatermark(m->cl, EV_READ, 0, m->head_max + 16384);
	bufferevent_setwatermark(m->cl, EV_WRITE, MITM_OUT_HWM / 2, 0);
	bufferevent_setcb(m->up, up_read_cb, up_write_cb, up_event_cb, m);
	bufferevent_setwatermark(m->up, EV_WRITE, MITM_OUT_HWM / 2, 0);
	/* libevent moves 16 KiB per call by default: a bulk download would cost
	 * one loop turn per 16 KiB. Responses are a byte stream here. */
	bufferevent_set_max_single_read(m->up, MITM_OUT_HWM);
	bufferevent_set_max_single_write(m->cl, MITM_OUT_HWM);
	bufferevent_set_max_single_read(m->cl, MITM_OUT_HWM);
	bufferevent_set_max_single_write(m->up, MITM_OUT_HWM);
	m->st = M_HEAD;
	if (pre_len) {
		/* what decided the connection: its first head, and what followed */
		struct evbuffer *cin = bufferevent_get_input(m->cl);
		evbuffer_unfreeze(cin, 0);
		int r = evbuffer_add(cin, pre, pre_len);
		evbuffer_freeze(cin, 0);
		if (r < 0)
			goto fail;
		bufferevent_trigger(m->cl, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
	bufferevent_enable(m->cl, EV_READ | EV_WRITE);
	bufferevent_enable(m->up, EV_READ | EV_WRITE);
	arm(m, EGRESS_IDLE_TIMEOUT / 5 * 1000);
	return m;
fail:
	if (cfd >= 0)
		close(cfd);
	if (m) {
		m->closed = NULL;
		egress_mitm_free(m);
	} else if (ufd >= 0) {
		close(ufd);
	}
	return NULL;
}

void egress_mitm_free(struct mitm *m)
{
	if (!m)
		return;
	if (m->cl)
		bufferevent_free(m->cl);
	close_upstream(m);
	if (m->timer)
		event_free(m->timer);
	drop_held(m);
	if (m->hold)
		evbuffer_free(m->hold);
	free(m);
}

void egress_mitm_result(const struct mitm *m, uint64_t *up, uint64_t *down, const char **error)
{
	*up = m->bytes_up;
	*down = m->bytes_down;
	*error = m->error[0] ? m->error : NULL;
}
