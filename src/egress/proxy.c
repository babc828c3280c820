/* proxy.c: the explicit proxy (CONNECT, absolute-URI HTTP) and the
 * transparent proxy (TCP 80/443 redirected by nftables).
 *
 * A connection goes through these states:
 *   HEAD     read what decides it: the request head (explicit), or the
 *            first bytes (transparent: a TLS ClientHello -> SNI, else an
 *            HTTP head -> Host), within EGRESS_HEAD_TIMEOUT
 *   RESOLVE  the name passed the policy; the gateway resolves it itself
 *   CONNECT  connecting to an address it resolved (never to the address
 *            the client aimed at: a forged /etc/hosts gains nothing)
 *   SNIFF    CONNECT only: 200 sent, upstream bytes already flow back; the
 *            client's first bytes are read and, when they are a
 *            ClientHello, its SNI must equal the CONNECT host
 *   RELAY    both directions splice(2) through a pipe: no per-byte work
 *            (TLS, and CONNECT tunnels that do not carry HTTP)
 *   MITM     TLS to a host that carries a secret of the sandbox: the
 *            client's TLS is terminated and requests rewritten (mitm.c,
 *            secrets.c), instead of SNIFF's or RELAY's splice. And plain
 *            HTTP (transparent 80, the explicit proxy's absolute URIs,
 *            HTTP inside a CONNECT tunnel): mitm.c's plain mode parses
 *            every request head, each must be for the host decided (no
 *            fronting of a denied name in a later keep-alive or
 *            pipelined request), bodies by their framing
 *   LINGER   an error answer was sent; read and discard for a moment so
 *            that closing does not reset the answer away
 * Denials become an event at once; allowed connections one when they end. */
#include "egress/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "egress/http.h"
#include "egress/secrets.h"
#include "egress/sni.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80      /* <linux/netfilter_ipv4.h> */
#endif
#define IP6T_SO_ORIGINAL_DST 80 /* <linux/netfilter_ipv6/ip6_tables.h> */

#define BUF_MAX (HTTP_HEAD_MAX + 512) /* a head or ClientHello, with record headers */
#define SPLICE_CHUNK (1 << 16)
#define PIPE_WANT (1 << 20)
#define PUMP_ROUNDS 16          /* chunks per direction per wakeup: fairness */
#define ADDRS_MAX 8
#define LINGER_MS 2000
#define LINGER_BYTES (1 << 20)
#define IDLE_TICK (EGRESS_IDLE_TIMEOUT / 5)

enum state { S_HEAD, S_RESOLVE, S_CONNECT, S_SNIFF, S_RELAY, S_LINGER, S_MITM };
enum via { VIA_CONNECT, VIA_HTTP, VIA_TLS, VIA_PLAIN };
static const char *const via_name[] = { "connect", "http", "transparent-tls",
					"transparent-http" };

struct dir {
	int src, dst;
	int pipe[2];
	size_t inpipe;
	size_t chunk;         /* the pipe's capacity: what one splice may move */
	char *out;            /* written to dst before splicing */
	size_t out_len, out_off;
	bool out_counted;     /* do out's bytes count as traffic? */
	bool eof, done;
	uint64_t bytes;
	struct event *rd, *wr;
};

struct conn {
	struct conn *next, *prev;
	struct sandbox *sb;
	bool transparent;
	enum state state;
	enum via via;
	int cfd, ufd;
	struct dir up, down;  /* client -> upstream, upstream -> client */
	struct event *timer;
	char *buf;            /* client bytes read before the relay */
	size_t len, cap;
	char name[256];       /* normalized host name, or the IP literal */
	bool have_name;
	uint16_t port;
	struct sockaddr_storage orig;
	struct sockaddr_storage addrs[ADDRS_MAX];
	size_t n_addrs, next_addr;
	char addr[INET6_ADDRSTRLEN];
	struct evdns_request *dnsreq;
	int resolve_v6;
	bool dying;           /* closed while a DNS callback was due */
	bool intercept;       /* TLS to a host with secrets: terminate it (mitm.c) */
	bool answer_plain;    /* refuse() may answer a transparent port-80 client */
	struct mitm *mitm;
	const char *allow_reason; /* non-NULL: a connect event is due at close */
	uint64_t t0, activity, activity_seen, last_active;
	size_t discarded;
};

static void conn_close(struct conn *c);
static bool pump(struct conn *c, struct dir *d);
static void upstream_write_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_read_cb(evutil_socket_t fd, short what, void *arg);
static void client_write_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(c->timer, &tv);
}

/* --- events and refusals --- */

static void emit_connect(struct conn *c, bool allow, const char *reason)
{
	const char *ierr = NULL;
	if (c->mitm) {
		uint64_t up, down;
		egress_mitm_result(c->mitm, &up, &down, &ierr);
		c->up.bytes = up;
		c->down.bytes = down;
	}
	json_t *ev = json_pack("{s:s, s:s, s:o, s:o, s:i, s:s, s:s, s:s, s:I, s:I, s:I}",
			       "event", "connect", "sandbox", c->sb->name,
			       "name", c->have_name ? json_string(c->name) : json_null(),
			       "addr", c->addr[0] ? json_string(c->addr) : json_null(),
			       "port", (int)c->port, "via", via_name[c->via],
			       "verdict", allow ? "allow" : "deny", "reason", reason,
			       "bytes_up", (json_int_t)c->up.bytes,
			       "bytes_down", (json_int_t)c->down.bytes,
			       "ms", (json_int_t)(egress_now_ms() - c->t0));
	if (ev && c->intercept && c->state == S_MITM) {
		json_object_set_new(ev, "intercept", json_true());
		if (ierr)
			json_object_set_new(ev, "intercept_error", json_string(ierr));
	}
	egress_emit(c->sb->eg, ev);
}

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static void linger_start(struct conn *c)
{
	shutdown(c->cfd, SHUT_WR);
	c->state = S_LINGER;
	event_add(c->up.rd, NULL);
	arm_timer(c, LINGER_MS);
}

/* Refuse the connection: an event, an HTTP answer when the client speaks
 * to the explicit proxy and has not had one yet, then close. status 0: no
 * answer. body: what the user reads (NULL: "paddock: <reason>"). */
__attribute__((format(printf, 4, 5)))
static void refuse(struct conn *c, int status, const char *reason, const char *body_fmt, ...)
{
	char body[768], resp[1024];
	c->sb->st.connects_denied++;
	c->allow_reason = NULL;
	emit_connect(c, false, reason);
	if ((c->transparent && !c->answer_plain) || status == 0 || c->state > S_CONNECT) {
		conn_close(c);
		return;
	}
	if (body_fmt) {
		va_list ap;
		va_start(ap, body_fmt);
		vsnprintf(body, sizeof body, body_fmt, ap);
		va_end(ap);
	} else {
		snprintf(body, sizeof body, "paddock: %s\n", reason);
	}
	int n = snprintf(resp, sizeof resp,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 status, status_text(status), strlen(body), body);
	/* Small and first on the socket: fits its buffer. */
	if (n > 0)
		(void)send(c->cfd, resp, (size_t)n < sizeof resp ? (size_t)n : sizeof resp - 1,
			   MSG_NOSIGNAL | MSG_DONTWAIT);
	if (c->up.wr) {
		event_free(c->up.wr);
		c->up.wr = NULL;
	}
	if (c->ufd >= 0) {
		close(c->ufd);
		c->ufd = -1;
	}
	if (c->dnsreq) /* its callback comes, sees the state, does nothing */
		evdns_cancel_request(c->sb->eg->dns, c->dnsreq);
	linger_start(c);
}

/* --- relay --- */

static void dir_arm(struct dir *d)
{
	if (d->done) {
		event_del(d->rd);
		event_del(d->wr);
	} else if (d->out_off < d->out_len || d->inpipe > 0) {
		event_del(d->rd);
		event_add(d->wr, NULL);
	} else {
		event_del(d->wr);
		event_add(d->rd, NULL);
	}
}

/* Move what can be moved now. Returns false when c was closed. */
static bool pump(struct conn *c, struct dir *d)
{
	for (int i = 0; i < PUMP_ROUNDS; i++) {
		ssize_t n;
		if (d->out_off < d->out_len) {
			n = send(d->dst, d->out + d->out_off, d->out_len - d->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0)
				goto io_error;
			d->out_off += (size_t)n;
			if (d->out_counted)
				d->bytes += (uint64_t)n;
			if (d->out_off == d->out_len) {
				free(d->out);
				d->out = NULL;
				d->out_len = d->out_off = 0;
			}
		} else if (d->inpipe > 0) {
			n = splice(d->pipe[0], NULL, d->dst, NULL, d->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0)
				goto io_error;
			d->inpipe -= (size_t)n;
			d->bytes += (uint64_t)n;
		} else if (d->eof) {
			shutdown(d->dst, SHUT_WR);
			d->done = true;
			struct dir *o = d == &c->up ? &c->down : &c->up;
			if (o->done) {
				conn_close(c);
				return false;
			}
			break;
		} else {
			/* The pipe is empty here, so EAGAIN means the source is. */
			n = splice(d->src, NULL, d->pipe[1], NULL, d->chunk,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0)
				goto io_error;
			if (n == 0)
				d->eof = true;
			d->inpipe += (size_t)n;
		}
		c->activity++;
	}
	dir_arm(d);
	return true;
io_error:
	if (errno == EAGAIN || errno == EINTR) {
		dir_arm(d);
		return true;
	}
	conn_close(c); /* reset or broken pipe: the other side gets a close too */
	return false;
}

static int relay_setup(struct conn *c)
{
	struct event_base *base = c->sb->eg->base;
	if (pipe2(c->up.pipe, O_NONBLOCK | O_CLOEXEC) < 0 ||
	    pipe2(c->down.pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* Larger pipes move more per splice: fewer wake-ups per byte. The
	 * kernel may refuse (the user's pipe-buffer quota, fs.pipe-max-size):
	 * then the default 64 KiB stays. Pages are only used while data sits
	 * in the pipe. */
	struct dir *dirs[2] = { &c->up, &c->down };
	for (int i = 0; i < 2; i++) {
		int sz = fcntl(dirs[i]->pipe[1], F_SETPIPE_SZ, PIPE_WANT);
		if (sz < 0)
			sz = fcntl(dirs[i]->pipe[1], F_GETPIPE_SZ);
		dirs[i]->chunk = sz > 0 ? (size_t)sz : SPLICE_CHUNK;
	}
	c->up.src = c->cfd, c->up.dst = c->ufd;
	c->down.src = c->ufd, c->down.dst = c->cfd;
	if (!(c->down.rd = event_new(base, c->ufd, EV_READ | EV_PERSIST, upstream_read_cb, c)) ||
	    !(c->down.wr = event_new(base, c->cfd, EV_WRITE | EV_PERSIST, client_write_cb, c)))
		return -ENOMEM;
	return 0;
}

/* --- after the decision: resolve, connect --- */

static void start_connect(struct conn *c);

/* --- a small cache of the proxy's resolutions ---
 *
 * Without it every proxied connection waits for a DNS round trip upstream
 * (milliseconds with a real resolver). Direct-mapped by a hash of the name,
 * bounded (DNS_CACHE_SLOTS), entries live min(TTL, DNS_CACHE_TTL_MAX)
 * seconds. Only the answer is cached: the policy decision (by name) and the
 * address refusal (private ranges, the host's own addresses) run again for
 * every connection. */
#define DNS_CACHE_SLOTS 1024
#define DNS_CACHE_TTL_MAX 300

struct dns_cache_entry {
	char name[256];
	int family, count;
	uint8_t addrs[ADDRS_MAX][16];
	uint64_t expires_ms;
};

static struct dns_cache_entry *cache_slot(struct egress *eg, const char *name)
{
	if (!eg->dns_cache && !(eg->dns_cache = calloc(DNS_CACHE_SLOTS, sizeof *eg->dns_cache)))
		return NULL;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &eg->dns_cache[h % DNS_CACHE_SLOTS];
}

static void cache_put(struct egress *eg, const char *name, int family, int count,
		      const void *addrs, int ttl)
{
	struct dns_cache_entry *e = cache_slot(eg, name);
	if (!e || strlen(name) >= sizeof e->name || count <= 0)
		return;
	if (ttl <= 0)
		return;
	if (ttl > DNS_CACHE_TTL_MAX)
		ttl = DNS_CACHE_TTL_MAX;
	snprintf(e->name, sizeof e->name, "%s", name);
	e->family = family;
	e->count = count > ADDRS_MAX ? ADDRS_MAX : count;
	size_t w = family == AF_INET ? 4 : 16;
	for (int i = 0; i < e->count; i++)
		memcpy(e->addrs[i], (const uint8_t *)addrs + (size_t)i * w, w);
	e->expires_ms = egress_now_ms() + (uint64_t)ttl * 1000;
}

static const struct dns_cache_entry *cache_get(struct egress *eg, const char *name)
{
	struct dns_cache_entry *e = cache_slot(eg, name);
	if (!e || !e->count || strcmp(e->name, name) || egress_now_ms() >= e->expires_ms)
		return NULL;
	return e;
}

void egress_dns_cache_free(struct egress *eg)
{
	free(eg->dns_cache);
	eg->dns_cache = NULL;
}

static void resolved(struct conn *c, int family, int count, const void *addrs);

static void resolve_cb(int result, char type, int count, int ttl, void *addrs, void *arg)
{
	struct conn *c = arg;
	struct sandbox *sb = c->sb;
	c->dnsreq = NULL;
	if (c->dying) {
		free(c);
		egress_sandbox_unref(sb);
		return;
	}
	if (c->state != S_RESOLVE) /* refused meanwhile (timeout) */
		return;
	if (result != DNS_ERR_NONE || count <= 0) {
		if (!c->resolve_v6) {
			c->resolve_v6 = 1;
			c->dnsreq = evdns_base_resolve_ipv6(sb->eg->dns, c->name, DNS_QUERY_NO_SEARCH,
							    resolve_cb, c);
			if (c->dnsreq)
				return;
		}
		refuse(c, 502, "cannot resolve", "paddock: cannot resolve %s: %s\n", c->name,
		       evdns_err_to_string(result));
		return;
	}
	int family = type == DNS_IPv4_A ? AF_INET : AF_INET6;
	cache_put(sb->eg, c->name, family, count, addrs, ttl);
	resolved(c, family, count, addrs);
}

/* The addresses of c->name, from the resolver or the cache: each checked
 * against the refused ranges, then the connection. */
static void resolved(struct conn *c, int family, int count, const void *addrs)
{
	struct sandbox *sb = c->sb;
	for (int i = 0; i < count; i++) {
		const void *a = (const uint8_t *)addrs + (size_t)i * (family == AF_INET ? 4 : 16);
		const char *why = egress_ip_refusal(family, a, &sb->eg->host);
		char ab[INET6_ADDRSTRLEN];
		inet_ntop(family, a, ab, sizeof ab);
		if (why) {
			char reason[200];
			snprintf(c->addr, sizeof c->addr, "%s", ab);
			snprintf(reason, sizeof reason, "address refused: %s is %s", ab, why);
			refuse(c, 403, reason,
			       "paddock: %s resolves to %s (%s), which sandboxes may not reach\n",
			       c->name, ab, why);
			return;
		}
		if (c->n_addrs < ADDRS_MAX) {
			struct sockaddr_storage *ss = &c->addrs[c->n_addrs++];
			memset(ss, 0, sizeof *ss);
			if (family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
				s4->sin_family = AF_INET;
				memcpy(&s4->sin_addr, a, 4);
			} else {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
				s6->sin6_family = AF_INET6;
				memcpy(&s6->sin6_addr, a, 16);
			}
		}
	}
	start_connect(c);
}

static void start_connect(struct conn *c)
{
	struct event_base *base = c->sb->eg->base;
	c->state = S_CONNECT;
	while (c->next_addr < c->n_addrs) {
		struct sockaddr_storage *ss = &c->addrs[c->next_addr++];
		socklen_t sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(c->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(c->port);
		egress_sa_str((struct sockaddr *)ss, c->addr, sizeof c->addr);
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		c->ufd = fd;
		if (!(c->up.wr = event_new(base, fd, EV_WRITE | EV_PERSIST, upstream_write_cb, c)))
			break;
		event_add(c->up.wr, NULL);
		return;
	}
	refuse(c, 502, "cannot connect", "paddock: cannot connect to %s port %u\n", c->name,
	       c->port);
}

static void decide(struct conn *c, const char *host, uint16_t port)
{
	struct sandbox *sb = c->sb;
	struct sockaddr_storage lit;
	const char *reason, *why;
	c->port = port;
	snprintf(c->name, sizeof c->name, "%s", host);
	c->have_name = true;
	if (egress_ip_literal(host, &lit)) {
		egress_sa_str((struct sockaddr *)&lit, c->addr, sizeof c->addr);
		if (sb->policy.mode != EGRESS_OPEN) {
			refuse(c, 403, "raw IP address in filtered mode",
			       "paddock: connecting to an IP address (%s) is not allowed in filtered "
			       "mode; use a host name from the allowlist\n", c->addr);
			return;
		}
		if ((why = egress_addr_refusal((struct sockaddr *)&lit, &sb->eg->host))) {
			char r[200];
			snprintf(r, sizeof r, "address refused: %s is %s", c->addr, why);
			refuse(c, 403, r, "paddock: %s is %s, which sandboxes may not reach\n",
			       c->addr, why);
			return;
		}
		c->addrs[0] = lit;
		c->n_addrs = 1;
		c->allow_reason = "open mode";
		arm_timer(c, EGRESS_CONNECT_TIMEOUT * 1000);
		start_connect(c);
		return;
	}
	if (egress_name_normalize(host, c->name, sizeof c->name) < 0) {
		refuse(c, 400, "invalid name", "paddock: \"%s\" is not a host name\n", c->name);
		return;
	}
	if (egress_policy_check(&sb->policy, c->name, &reason) != EGRESS_ALLOW) {
		if (strcmp(reason, "denylist") == 0)
			refuse(c, 403, reason,
			       "paddock: %s is denied by this sandbox's network.deny\n", c->name);
		else
			refuse(c, 403, reason,
			       "paddock: %s is not in this sandbox's allowlist; add it with "
			       "`paddock allow %s %s` or network.allow in paddock.yaml\n",
			       c->name, sb->name, c->name);
		return;
	}
	c->allow_reason = reason;
	c->intercept = (c->via == VIA_CONNECT || c->via == VIA_TLS) &&
		       secret_set_intercepts(sb->secrets, c->name);
	c->state = S_RESOLVE;
	event_del(c->up.rd);
	arm_timer(c, EGRESS_CONNECT_TIMEOUT * 1000);
	const struct dns_cache_entry *hit = cache_get(sb->eg, c->name);
	if (hit) {
		uint8_t addrs[ADDRS_MAX * 16];
		size_t w = hit->family == AF_INET ? 4 : 16;
		for (int i = 0; i < hit->count; i++)
			memcpy(addrs + (size_t)i * w, hit->addrs[i], w);
		resolved(c, hit->family, hit->count, addrs);
		return;
	}
	c->dnsreq = evdns_base_resolve_ipv4(sb->eg->dns, c->name, DNS_QUERY_NO_SEARCH, resolve_cb, c);
	if (!c->dnsreq)
		refuse(c, 502, "cannot resolve", NULL);
}

/* --- reading the head --- */

/* Read what the client sent into c->buf. Returns bytes read, 0 at EOF,
 * -1 to wait (EAGAIN, or the buffer is full), -2 on error. */
static ssize_t read_more(struct conn *c)
{
	if (c->len == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 2048;
		if (ncap > BUF_MAX)
			ncap = BUF_MAX;
		if (ncap == c->cap)
			return -1;
		char *nb = realloc(c->buf, ncap);
		if (!nb)
			return -2;
		c->buf = nb;
		c->cap = ncap;
	}
	ssize_t n = read(c->cfd, c->buf + c->len, c->cap - c->len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -1 : -2;
	c->len += (size_t)n;
	return n;
}

static void head_tls(struct conn *c)
{
	char sni[256];
	enum sni_result r = sni_parse((const uint8_t *)c->buf, c->len, sni, sizeof sni);
	c->via = VIA_TLS;
	if (r == SNI_NEED_MORE && c->len < BUF_MAX)
		return;
	if (r == SNI_NEED_MORE)
		r = SNI_TOO_LARGE;
	if (r != SNI_OK) {
		refuse(c, 0, sni_result_str(r), NULL);
		return;
	}
	decide(c, sni, c->port);
}

/* A placeholder in plaintext the gateway reads anyway: the CONNECT head, a
 * plain HTTP request's head and the body bytes that came with it. Bound for
 * a host its secret does not allow: exfiltration. For a host it allows but
 * in clear (not CONNECT): refused as well, values go only over TLS.
 * Returns true when c was refused. */
static bool plain_secrets_refused(struct conn *c, const struct http_head *h)
{
	struct sandbox *sb = c->sb;
	const char *target = c->transparent ? h->host_header : h->host;
	char host[256], body[768], reason[200];
	size_t pos = 0, scan = h->form == HTTP_AUTHORITY ? h->head_len : c->len;
	size_t line_end = (size_t)((const char *)memchr(c->buf, '\r', h->head_len) - c->buf);
	struct secret *x;
	if (egress_name_normalize(target, host, sizeof host) < 0)
		snprintf(host, sizeof host, "%s", target);
	while ((x = secret_find(sb->secrets, c->buf, scan, &pos))) {
		const char *where = pos < line_end ? "url" : pos < h->head_len ? "header" : "body";
		snprintf(c->name, sizeof c->name, "%s", host);
		c->have_name = true;
		c->answer_plain = true;
		if (!secret_host_allowed(x, host)) {
			egress_secret_blocked(sb, x, host, where);
			egress_secret_blocked_body(x, host, body, sizeof body);
			snprintf(reason, sizeof reason, "exfiltration of %s blocked (%s)", x->name, where);
			refuse(c, 403, reason, "%s", body);
			return true;
		}
		if (h->form != HTTP_AUTHORITY) {
			refuse(c, 403, "secret placeholder over plain http",
			       "paddock: the placeholder of secret %s is only replaced over https; use "
			       "https://%s\n", x->name, host);
			return true;
		}
		pos++;
	}
	return false;
}

static void head_http(struct conn *c)
{
	struct http_head h;
	int r = http_parse_head(c->buf, c->len, &h);
	char reason[128];
	if (r == 0)
		return;
	c->via = c->transparent ? VIA_PLAIN : VIA_HTTP;
	if (r < 0) {
		snprintf(reason, sizeof reason, "bad request: %s", h.error);
		refuse(c, -r, reason, NULL);
		return;
	}
	if (c->sb->secrets && plain_secrets_refused(c, &h))
		return;
	if (c->transparent) {
		if (h.form == HTTP_ABSOLUTE && strcasecmp(h.host, h.host_header) != 0) {
			refuse(c, 0, "bad request: URI and Host disagree", NULL);
			return;
		}
		if (!h.has_host_header) {
			refuse(c, 0, "bad request: no Host header", NULL);
			return;
		}
		decide(c, h.host_header, c->port);
		return;
	}
	if (h.form == HTTP_AUTHORITY) {
		c->via = VIA_CONNECT;
		/* Keep only what follows the head: the start of the tunnel. */
		memmove(c->buf, c->buf + h.head_len, c->len - h.head_len);
		c->len -= h.head_len;
		decide(c, h.host, h.port);
		return;
	}
	if (h.form != HTTP_ABSOLUTE) {
		refuse(c, 400, "bad request: not a proxy request",
		       "paddock: this is a proxy: send CONNECT or an absolute http:// URI\n");
		return;
	}
	/* c->buf stays as it came: mitm.c's plain mode rewrites each head. */
	decide(c, h.host, h.port);
}

static void head_read(struct conn *c)
{
	ssize_t n = read_more(c);
	if (n == 0 || n == -2) {
		if (c->len > 0)
			refuse(c, 0, "client closed before the request was complete", NULL);
		else
			conn_close(c); /* a probe or a client that changed its mind */
		return;
	}
	if (n == -1 && c->len < c->cap)
		return;
	if (c->transparent && (unsigned char)c->buf[0] == 0x16)
		head_tls(c);
	else
		head_http(c);
}

/* --- interception (mitm.c) --- */

static void mitm_closed(void *arg)
{
	conn_close(arg);
}

/* Hand the client's TLS (whose ClientHello is c->buf), or its plain HTTP
 * (whose first head is there), and the upstream connection to mitm.c. */
static void mitm_begin(struct conn *c, bool tls)
{
	const char *why;
	if (c->down.bytes || c->down.inpipe || c->down.out_off < c->down.out_len) {
		refuse(c, 0, "upstream spoke before the client's TLS hello", NULL);
		return;
	}
	struct event **evs[] = { &c->up.rd, &c->up.wr, &c->down.rd, &c->down.wr };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (*evs[i]) {
			event_free(*evs[i]);
			*evs[i] = NULL;
		}
	event_del(c->timer); /* mitm.c keeps its own time */
	int cfd = c->cfd, ufd = c->ufd;
	c->cfd = c->ufd = -1;
	c->state = S_MITM;
	if (tls) {
		c->mitm = egress_mitm_start(c->sb, c->name, cfd, ufd, c->buf, c->len, mitm_closed, c,
					    &why);
	} else {
		int one = 1;
		(void)setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->intercept = false; /* nothing is injected in clear */
		c->mitm = egress_mitm_start_plain(c->sb, c->name, c->port, c->via == VIA_HTTP,
						  via_name[c->via], cfd, ufd, c->buf, c->len,
						  mitm_closed, c, &why);
	}
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	if (!c->mitm) {
		char r[120];
		snprintf(r, sizeof r, "%s: %s", tls ? "interception" : "relay", why);
		refuse(c, 0, r, NULL);
	}
}

/* --- CONNECT: the client's first bytes in the tunnel --- */

/* Returns false when c was closed. */
static bool relay_start(struct conn *c)
{
	c->state = S_RELAY;
	c->up.out = c->buf;
	c->up.out_len = c->len;
	c->up.out_counted = true;
	c->buf = NULL;
	c->len = c->cap = 0;
	c->last_active = egress_now_ms();
	arm_timer(c, IDLE_TICK * 1000);
	return pump(c, &c->up);
}

/* The first bytes of a tunnel that is not TLS: an HTTP/1.x request line
 * (or an empty line, which servers skip before one)? 1 yes, 0 no, -1 not
 * known yet. Such a tunnel is relayed request by request (mitm.c's plain
 * mode) like transparent port 80: a later request for another host at the
 * allowed name's address is refused. Anything else is spliced. */
static int tunnel_http(const char *b, size_t len)
{
	size_t i = 0, sp = 0;
	if (len == 0)
		return -1;
	if (b[0] == '\r' || b[0] == '\n')
		return 1;
	for (; i < len && i < HTTP_HEAD_MAX; i++) {
		unsigned char ch = (unsigned char)b[i];
		if (ch == '\r' || ch == '\n')
			break;
		if (ch == ' ') {
			if (i == 0 || b[i - 1] == ' ' || ++sp > 2)
				return 0;
		} else if (ch <= 0x20 || ch >= 0x7f) {
			return 0;
		} else if (sp == 0 && !(isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch))) {
			return 0; /* not a method */
		}
	}
	if (i == len)
		return i < HTTP_HEAD_MAX ? -1 : 0;
	/* "METHOD target HTTP/1.x" */
	return sp == 2 && i >= 9 && memcmp(b + i - 9, " HTTP/1.", 8) == 0;
}

static void sniff_check(struct conn *c)
{
	char sni[256], norm[EGRESS_NAME_MAX + 1], reason[600];
	enum sni_result r = sni_parse((const uint8_t *)c->buf, c->len, sni, sizeof sni);
	switch (r) {
	case SNI_NEED_MORE:
		/* the head timer runs from the first byte (sniff_read, connected):
		 * re-arming it here would let a slow client stretch it forever */
		if (c->len < BUF_MAX)
			return;
		refuse(c, 0, sni_result_str(SNI_TOO_LARGE), NULL);
		return;
	case SNI_NO_NAME:
		if (c->intercept) {
			mitm_begin(c, true);
			return;
		}
		__attribute__((fallthrough));
	case SNI_NOT_TLS: /* not TLS: spliced as it is, unless it is HTTP */
		switch (r == SNI_NOT_TLS ? tunnel_http(c->buf, c->len) : 0) {
		case -1:
			return; /* the head timer runs */
		case 1:
			mitm_begin(c, false);
			return;
		}
		relay_start(c);
		return;
	case SNI_OK:
		if (egress_name_normalize(sni, norm, sizeof norm) == 0 && strcmp(norm, c->name) == 0) {
			if (c->intercept)
				mitm_begin(c, true);
			else
				relay_start(c);
			return;
		}
		snprintf(reason, sizeof reason, "SNI %.255s differs from the CONNECT host", sni);
		refuse(c, 0, reason, NULL);
		return;
	case SNI_ECH:
	case SNI_MALFORMED:
	case SNI_TOO_LARGE:
		refuse(c, 0, sni_result_str(r), NULL);
		return;
	}
}

static void sniff_read(struct conn *c)
{
	bool first = c->len == 0;
	ssize_t n = read_more(c);
	if (n == -2) {
		conn_close(c);
		return;
	}
	if (n == 0) { /* the client is done sending: nothing to check */
		c->up.eof = true;
		relay_start(c);
		return;
	}
	if (first && c->len > 0)
		arm_timer(c, EGRESS_HEAD_TIMEOUT * 1000);
	sniff_check(c);
}

/* --- upstream connected --- */

static const char connect_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static void connected(struct conn *c)
{
	int r;
	if ((c->via == VIA_TLS && c->intercept) || c->via == VIA_PLAIN || c->via == VIA_HTTP) {
		mitm_begin(c, c->via == VIA_TLS);
		return;
	}
	r = relay_setup(c);
	if (r < 0) {
		refuse(c, 503, "out of resources", NULL);
		return;
	}
	int one = 1;
	(void)setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->via == VIA_CONNECT) {
		c->state = S_SNIFF;
		c->down.out = strdup(connect_ok);
		c->down.out_len = c->down.out ? sizeof connect_ok - 1 : 0;
		c->down.out_counted = false;
		arm_timer(c, c->len ? EGRESS_HEAD_TIMEOUT * 1000 : IDLE_TICK * 1000);
		c->last_active = egress_now_ms();
		if (!pump(c, &c->down)) /* upstream bytes may flow back already */
			return;
		if (c->len > 0)
			sniff_check(c);
		else
			event_add(c->up.rd, NULL);
		return;
	}
	dir_arm(&c->down);
	relay_start(c);
}

static void upstream_writable(struct conn *c)
{
	int e = 0;
	socklen_t el = sizeof e;
	if (c->state != S_CONNECT) {
		pump(c, &c->up);
		return;
	}
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e == EINPROGRESS || e == EALREADY) {
		event_add(c->up.wr, NULL);
		return;
	}
	if (e != 0) {
		event_free(c->up.wr);
		c->up.wr = NULL;
		close(c->ufd);
		c->ufd = -1;
		start_connect(c);
		return;
	}
	event_del(c->up.wr);
	connected(c);
}

/* --- callbacks --- */

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char sink[4096];
	ssize_t n;
	switch (c->state) {
	case S_HEAD: head_read(c); return;
	case S_SNIFF: sniff_read(c); return;
	case S_RELAY: pump(c, &c->up); return;
	case S_LINGER:
		n = read(c->cfd, sink, sizeof sink);
		if (n > 0 && (c->discarded += (size_t)n) < LINGER_BYTES)
			return;
		if (n < 0 && errno == EAGAIN)
			return;
		conn_close(c);
		return;
	case S_RESOLVE:
	case S_CONNECT:
		event_del(c->up.rd);
		return;
	case S_MITM:
		return;
	}
}

static void upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
	upstream_writable(arg);
}

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	pump(c, &c->down);
}

static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	pump(c, &c->down);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint64_t now = egress_now_ms();
	switch (c->state) {
	case S_HEAD:
		refuse(c, 408, "timeout: request head not complete in time", NULL);
		return;
	case S_RESOLVE:
	case S_CONNECT:
		refuse(c, 504, "timeout: upstream did not answer", NULL);
		return;
	case S_LINGER:
		conn_close(c);
		return;
	case S_MITM:
		return;
	case S_SNIFF:
		if (c->len > 0) {
			refuse(c, 0, "timeout: ClientHello not complete in time", NULL);
			return;
		}
		/* fall through: nothing sent yet is idleness */
		__attribute__((fallthrough));
	case S_RELAY:
		if (c->activity != c->activity_seen) {
			c->activity_seen = c->activity;
			c->last_active = now;
		} else if (now - c->last_active >= EGRESS_IDLE_TIMEOUT * 1000ULL) {
			conn_close(c);
			return;
		}
		arm_timer(c, IDLE_TICK * 1000);
		return;
	}
}

static void conn_close(struct conn *c)
{
	struct sandbox *sb = c->sb;
	if (c->allow_reason) {
		sb->st.connects_allowed++;
		sb->st.bytes_up += c->up.bytes;
		sb->st.bytes_down += c->down.bytes;
		emit_connect(c, true, c->allow_reason);
	}
	struct event *evs[] = { c->up.rd, c->up.wr, c->down.rd, c->down.wr, c->timer };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	int fds[] = { c->cfd, c->ufd, c->up.pipe[0], c->up.pipe[1], c->down.pipe[0],
		      c->down.pipe[1] };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(c->buf);
	free(c->up.out);
	free(c->down.out);
	egress_mitm_free(c->mitm);
	c->mitm = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		sb->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sb->n_conns--;
	sb->eg->n_conns--;
	if (c->dnsreq) {
		/* The resolver calls back once more (DNS_ERR_CANCEL); c must
		 * live until then. */
		c->dying = true;
		evdns_cancel_request(sb->eg->dns, c->dnsreq);
		return;
	}
	free(c);
	egress_sandbox_unref(sb);
}

static void conn_accept(struct sandbox *sb, int fd, bool transparent)
{
	struct event_base *base = sb->eg->base;
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->sb = sb;
	sb->refs++;
	sb->n_conns++;
	sb->eg->n_conns++;
	c->next = sb->conns;
	if (c->next)
		c->next->prev = c;
	sb->conns = c;
	c->cfd = fd;
	c->ufd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->transparent = transparent;
	c->via = transparent ? VIA_PLAIN : VIA_HTTP;
	c->t0 = egress_now_ms();
	c->up.rd = event_new(base, fd, EV_READ | EV_PERSIST, client_read_cb, c);
	c->timer = evtimer_new(base, timer_cb, c);
	if (!c->up.rd || !c->timer) {
		conn_close(c);
		return;
	}
	if (transparent) {
		socklen_t sl = sizeof c->orig;
		if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &c->orig, &sl) < 0) {
			sl = sizeof c->orig;
			if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &c->orig, &sl) < 0) {
				refuse(c, 0, "no original destination (not redirected)", NULL);
				return;
			}
		}
		c->port = ntohs(c->orig.ss_family == AF_INET
					? ((struct sockaddr_in *)&c->orig)->sin_port
					: ((struct sockaddr_in6 *)&c->orig)->sin6_port);
		if (c->port != 80 && c->port != 443) {
			char r[64];
			snprintf(r, sizeof r, "port %u is not proxied", c->port);
			refuse(c, 0, r, NULL);
			return;
		}
	}
	arm_timer(c, EGRESS_HEAD_TIMEOUT * 1000);
	event_add(c->up.rd, NULL);
}

static void accept_explicit(struct sandbox *sb, int fd) { conn_accept(sb, fd, false); }
static void accept_transparent(struct sandbox *sb, int fd) { conn_accept(sb, fd, true); }

/* An fd kept in reserve: when accept() fails for lack of descriptors, the
 * pending connection would make the listener fire forever; spend the
 * reserve to accept and close it. */
static int spare_fd = -1;

void egress_accept(struct sandbox *sb, int lfd, void (*fn)(struct sandbox *, int))
{
	if (spare_fd < 0)
		spare_fd = eventfd(0, EFD_CLOEXEC);
	for (int i = 0; i < EGRESS_ACCEPT_BURST; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
				close(spare_fd);
				fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					close(fd);
				spare_fd = eventfd(0, EFD_CLOEXEC);
				egress_limited(sb, "connections");
				continue;
			}
			return; /* EAGAIN, or an error of one connection */
		}
		if (!egress_conn_admit(sb)) {
			close(fd);
			continue;
		}
		fn(sb, fd);
		if (sb->removed)
			return;
	}
}

static void proxy_listen_cb(evutil_socket_t fd, short what, void *arg)
{
	egress_accept(arg, fd, accept_explicit);
}

static void transparent_listen_cb(evutil_socket_t fd, short what, void *arg)
{
	egress_accept(arg, fd, accept_transparent);
}

int egress_proxy_serve(struct sandbox *sb, struct pd_err *err)
{
	static const struct {
		enum egress_listener which;
		event_callback_fn cb;
	} ls[] = { { EGRESS_PROXY, proxy_listen_cb }, { EGRESS_TRANSPARENT, transparent_listen_cb } };
	for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
		int fd = sb->listen_fd[ls[i].which];
		if (fd < 0)
			continue;
		if (listen(fd, SOMAXCONN) < 0)
			return pd_err_errno(err, "egress", "proxy listener of %s", sb->name);
		sb->listen_ev[ls[i].which] =
			event_new(sb->eg->base, fd, EV_READ | EV_PERSIST, ls[i].cb, sb);
		if (!sb->listen_ev[ls[i].which] || event_add(sb->listen_ev[ls[i].which], NULL) < 0)
			return pd_err_set(err, ENOMEM, "egress", "out of memory");
	}
	return 0;
}

void egress_proxy_stop(struct sandbox *sb)
{
	while (sb->conns)
		conn_close(sb->conns);
}
