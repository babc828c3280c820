/* test_egress_secrets.c: the gateway's secrets (secrets.c) and the request
 * framing it relies on (http.c): placeholder search (also split and at the
 * edges), the head rewrite, validation, locked and wiped memory, the body
 * walker (Content-Length, chunked, fed in any slices). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress/http.h"
#include "egress/internal.h"
#include "egress/secrets.h"

#define PH_A "paddock-secret-0123456789abcdef0123456789abcdef"
#define PH_B "paddock-secret-fedcba9876543210fedcba9876543210"
#define VAL_A "sk-ant-REAL-a"
#define VAL_B "ghp_REAL_b"

static struct secret_set *two(void)
{
	static const char *const ha[] = { "api.anthropic.com" };
	static const char *const hb[] = { "api.github.com", "*.githubusercontent.com" };
	struct secret_spec sp[] = {
		{ "ANTHROPIC_API_KEY", PH_A, VAL_A, strlen(VAL_A), ha, 1 },
		{ "GITHUB_TOKEN", PH_B, VAL_B, strlen(VAL_B), hb, 2 },
	};
	struct secret_set *s = NULL;
	struct pd_err err = { 0 };
	assert_int_equal(secret_set_new(sp, 2, &s, &err), 0);
	return s;
}

/* --- search --- */

static void test_find_edges(void **state)
{
	struct secret_set *s = two();
	size_t pos = 0;
	/* exactly the placeholder, at the start and at the end */
	assert_ptr_equal(secret_find(s, PH_A, strlen(PH_A), &pos), &s->v[0]);
	assert_int_equal(pos, 0);
	char buf[200];
	snprintf(buf, sizeof buf, "Bearer %s", PH_B);
	pos = 0;
	assert_ptr_equal(secret_find(s, buf, strlen(buf), &pos), &s->v[1]);
	assert_int_equal(pos, 7);
	/* one byte short: not found */
	pos = 0;
	assert_null(secret_find(s, buf, strlen(buf) - 1, &pos));
	/* any case */
	snprintf(buf, sizeof buf, "x=PADDOCK-SECRET-0123456789ABCDEF0123456789ABCDEF;");
	pos = 0;
	assert_ptr_equal(secret_find(s, buf, strlen(buf), &pos), &s->v[0]);
	assert_int_equal(pos, 2);
	/* an unknown placeholder, a near miss */
	pos = 0;
	assert_null(secret_find(s, "paddock-secret-0123456789abcdef0123456789abcdee", 47, &pos));
	pos = 0;
	assert_null(secret_find(s, "paddock-secret-", 15, &pos));
	/* from *pos on: the second of two */
	snprintf(buf, sizeof buf, "%s %s", PH_A, PH_B);
	pos = 1;
	assert_ptr_equal(secret_find(s, buf, strlen(buf), &pos), &s->v[1]);
	assert_int_equal(pos, 48);
	/* no set, empty set */
	pos = 0;
	assert_null(secret_find(NULL, PH_A, 47, &pos));
	secret_set_free(s);
}

static void test_find_split(void **state)
{
	/* A placeholder cut in two is found in neither half, and in the whole
	 * (which is why heads are only judged when complete). */
	struct secret_set *s = two();
	const char *req = "GET / HTTP/1.1\r\nx-api-key: " PH_A "\r\n\r\n";
	size_t n = strlen(req), at = strstr(req, PH_A) - req;
	for (size_t cut = at + 1; cut < at + 47; cut++) {
		size_t p1 = 0, p2 = 0, p3 = 0;
		assert_null(secret_find(s, req, cut, &p1));
		assert_null(secret_find(s, req + cut, n - cut, &p2));
		assert_non_null(secret_find(s, req, n, &p3));
	}
	secret_set_free(s);
}

static void test_find_dns(void **state)
{
	struct secret_set *s = two();
	assert_ptr_equal(secret_find_dns(s, "0123456789abcdef0123456789abcdef.evil.test"), &s->v[0]);
	assert_ptr_equal(secret_find_dns(s, "0123456789ABCDEF.0123456789abcdef.evil.test"), &s->v[0]);
	assert_ptr_equal(secret_find_dns(s, "x.fedcba98765.43210fedcba9876543210.evil.test"), &s->v[1]);
	assert_null(secret_find_dns(s, "0123456789abcdef.evil.test"));
	assert_null(secret_find_dns(s, "api.anthropic.com"));
	assert_null(secret_find_dns(NULL, "0123456789abcdef0123456789abcdef.x"));
	secret_set_free(s);
}

/* --- the head rewrite --- */

static int scan(struct secret_set *s, const char *host, const char *head, struct secret_scan *sc)
{
	return secret_scan_head(s, host, head, strlen(head), sc);
}

static void test_rewrite_injects(void **state)
{
	struct secret_set *s = two();
	struct secret_scan sc;
	struct http_head h;
	const char *head = "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
			   "x-api-key: " PH_A "\r\nAuthorization: Bearer " PH_A "\r\n"
			   "Content-Length: 2\r\n\r\n";
	assert_int_equal(scan(s, "api.anthropic.com", head, &sc), 0);
	assert_non_null(sc.out);
	assert_int_equal(sc.injected, 1);
	const char *want = "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
			   "x-api-key: " VAL_A "\r\nAuthorization: Bearer " VAL_A "\r\n"
			   "Content-Length: 2\r\n\r\n";
	assert_int_equal(sc.out_len, strlen(want));
	assert_memory_equal(sc.out, want, sc.out_len);
	assert_int_equal(http_parse_head_max(sc.out, sc.out_len, HTTP_HEAD_MAX_INTERCEPT, &h), 1);
	assert_int_equal(h.head_len, sc.out_len);
	secret_scan_done(&sc);
	assert_null(sc.out);
	/* nothing to do: no output, the head goes as it is */
	assert_int_equal(scan(s, "api.anthropic.com", "GET / HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n", &sc), 0);
	assert_null(sc.out);
	assert_int_equal(sc.injected, 0);
	/* a wildcard host of the second secret */
	assert_int_equal(scan(s, "raw.githubusercontent.com",
			      "GET / HTTP/1.1\r\nHost: raw.githubusercontent.com\r\nx: " PH_B "\r\n\r\n", &sc), 0);
	assert_non_null(strstr(sc.out, "x: " VAL_B "\r\n"));
	secret_scan_done(&sc);
	secret_set_free(s);
}

static void test_rewrite_blocks(void **state)
{
	struct secret_set *s = two();
	struct secret_scan sc;
	/* header to another host */
	assert_int_equal(scan(s, "api.github.com", "GET / HTTP/1.1\r\nHost: api.github.com\r\n"
			      "x-api-key: " PH_A "\r\n\r\n", &sc), 1);
	assert_ptr_equal(sc.blocked, &s->v[0]);
	assert_string_equal(sc.where, "header");
	assert_null(sc.out);
	/* URL to another host */
	assert_int_equal(scan(s, "evil.test", "GET /?k=" PH_B " HTTP/1.1\r\nHost: evil.test\r\n\r\n", &sc), 1);
	assert_ptr_equal(sc.blocked, &s->v[1]);
	assert_string_equal(sc.where, "url");
	/* one allowed, one not, in the same head: blocked */
	assert_int_equal(scan(s, "api.github.com", "GET / HTTP/1.1\r\nHost: api.github.com\r\n"
			      "Authorization: token " PH_B "\r\nx-leak: " PH_A "\r\n\r\n", &sc), 1);
	assert_ptr_equal(sc.blocked, &s->v[0]);
	assert_null(sc.out);
	/* in a header's name */
	assert_int_equal(scan(s, "evil.test", "GET / HTTP/1.1\r\nHost: evil.test\r\n" PH_A ": 1\r\n\r\n", &sc), 1);
	/* in the URL, for its own host: passes, not rewritten */
	assert_int_equal(scan(s, "api.anthropic.com", "GET /?k=" PH_A " HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n", &sc), 0);
	assert_null(sc.out);
	/* Host itself is never rewritten */
	assert_int_equal(scan(s, "api.anthropic.com", "GET / HTTP/1.1\r\nHost: " PH_A "\r\n\r\n", &sc), 0);
	assert_null(sc.out);
	secret_set_free(s);
}

static void test_rewrite_basic(void **state)
{
	struct secret_set *s = two();
	struct secret_scan sc;
	/* base64("x-access-token:" PH_B) */
	const char *head = "GET /repo.git/info/refs HTTP/1.1\r\nHost: api.github.com\r\n"
			   "Authorization: Basic eC1hY2Nlc3MtdG9rZW46cGFkZG9jay1zZWNyZXQtZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\r\n\r\n";
	assert_int_equal(scan(s, "api.github.com", head, &sc), 0);
	assert_non_null(sc.out);
	/* base64("x-access-token:ghp_REAL_b") */
	assert_non_null(strstr(sc.out, "Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxfYg==\r\n"));
	secret_scan_done(&sc);
	assert_int_equal(scan(s, "evil.test", head, &sc), 1);
	assert_string_equal(sc.where, "header");
	/* not base64 at all: left alone */
	assert_int_equal(scan(s, "api.github.com", "GET / HTTP/1.1\r\nHost: api.github.com\r\n"
			      "Authorization: Basic !!!!\r\n\r\n", &sc), 0);
	assert_null(sc.out);
	secret_set_free(s);
}

/* --- validation --- */

static int one(const char *name, const char *ph, const char *val, const char *host)
{
	const char *hosts[] = { host };
	struct secret_spec sp = { name, ph, val, strlen(val), hosts, 1 };
	struct secret_set *s = NULL;
	struct pd_err err = { 0 };
	int r = secret_set_new(&sp, 1, &s, &err);
	if (r == 0)
		secret_set_free(s);
	else
		assert_true(strlen(val) < 4 || !strstr(err.msg, val)); /* never a value in a message */
	return r;
}

static void test_validation(void **state)
{
	assert_int_equal(one("OK_1", PH_A, "v", "a.test"), 0);
	assert_true(one("1BAD", PH_A, "v", "a.test") < 0);
	assert_true(one("BAD-NAME", PH_A, "v", "a.test") < 0);
	assert_true(one("X", "paddock-secret-0123456789ABCDEF0123456789abcdef", "v", "a.test") < 0);
	assert_true(one("X", "paddock-secret-0123", "v", "a.test") < 0);
	assert_true(one("X", "paddock:0123456789abcdef0123456789abcdef", "v", "a.test") < 0);
	assert_true(one("X", PH_A, "sneaky\r\nX-Injected: 1", "a.test") < 0);
	assert_true(one("X", PH_A, "nul\x01", "a.test") < 0);
	assert_true(one("X", PH_A, "", "a.test") < 0);
	assert_true(one("X", PH_A, "v", "not a host") < 0);
	assert_int_equal(one("X", PH_A, "tab\tand space ok", "*.a.test"), 0);
	/* duplicates */
	const char *h[] = { "a.test" };
	struct secret_spec sp[2] = { { "X", PH_A, "v", 1, h, 1 }, { "X", PH_B, "w", 1, h, 1 } };
	struct secret_set *s = NULL;
	struct pd_err err = { 0 };
	assert_true(secret_set_new(sp, 2, &s, &err) < 0);
	sp[1].name = "Y";
	sp[1].placeholder = PH_A;
	assert_true(secret_set_new(sp, 2, &s, &err) < 0);
	/* hosts: matching and interception */
	s = two();
	assert_true(secret_set_intercepts(s, "api.github.com"));
	assert_true(secret_set_intercepts(s, "x.githubusercontent.com"));
	assert_false(secret_set_intercepts(s, "githubusercontent.com"));
	assert_false(secret_set_intercepts(s, "pypi.org"));
	assert_true(secret_set_guards(s, "api.github.com"));
	assert_false(secret_set_intercepts(NULL, "api.github.com"));
	secret_set_free(s);
}

/* --- memory --- */

/* VmFlags of the mapping that holds p (from /proc/self/smaps), or "". */
static void vmflags(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= a && (uintptr_t)p < b;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			snprintf(out, len, "%s", line + 8);
	}
	fclose(f);
}

static void test_secmem_locked_wiped(void **state)
{
	struct secmem m = { 0 };
	struct pd_err err = { 0 };
	char fl[512];
	assert_int_equal(secmem_alloc(&m, 100, &err), 0);
	assert_true(m.len >= 100);
	vmflags(m.p, fl, sizeof fl);
#ifndef __SANITIZE_ADDRESS__ /* ASan turns mlock() into a no-op that succeeds */
	assert_non_null(strstr(fl, " lo")); /* mlock'd */
#endif
	assert_non_null(strstr(fl, " dd")); /* MADV_DONTDUMP */
	memset(m.p, 'S', m.len);
	secmem_wipe(&m);
	for (size_t i = 0; i < m.len; i++)
		assert_int_equal(m.p[i], 0);
	secmem_free(&m);
	assert_null(m.p);
	secmem_free(&m); /* idempotent */

	/* a set keeps its values there, and wipes them when freed */
	struct secret_set *s = two();
	assert_true((const unsigned char *)s->v[0].value >= s->mem.p &&
		    (const unsigned char *)s->v[0].value < s->mem.p + s->mem.len);
	assert_memory_equal(s->v[1].value, VAL_B, strlen(VAL_B));
	vmflags(s->v[1].value, fl, sizeof fl);
	assert_non_null(strstr(fl, " dd"));
	const void *where = s->v[0].value;
	secret_set_free(s);
	vmflags(where, fl, sizeof fl);
	assert_string_equal(fl, ""); /* unmapped */
}

static void test_carry_counts(void **state)
{
	struct secret_set *a = two(), *b = two();
	a->v[1].injections = 7;
	a->v[1].blocked = 2;
	secret_set_carry_counts(b, a);
	assert_int_equal(b->v[1].injections, 7);
	assert_int_equal(b->v[1].blocked, 2);
	assert_int_equal(b->v[0].injections, 0);
	secret_set_free(a);
	secret_set_free(b);
}

/* --- framing --- */

static int frame(const char *head, struct http_body *b)
{
	struct http_head h;
	assert_int_equal(http_parse_head_max(head, strlen(head), HTTP_HEAD_MAX_INTERCEPT, &h), 1);
	return http_body_init(head, &h, b);
}

static void test_framing_init(void **state)
{
	struct http_body b;
	assert_int_equal(frame("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &b), 0);
	assert_int_equal(b.kind, HTTP_BODY_NONE);
	assert_true(b.done);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &b), 0);
	assert_true(b.done);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\ncontent-length:  12 \r\n\r\n", &b), 0);
	assert_int_equal(b.kind, HTTP_BODY_LENGTH);
	assert_int_equal(b.remaining, 12);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &b), 0);
	assert_int_equal(b.kind, HTTP_BODY_CHUNKED);
	assert_int_equal(frame("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &b), 0);
	assert_true(b.upgrade);
	assert_int_equal(frame("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &b), 0);
	assert_true(b.expect_continue);
	/* refused: smuggling shapes */
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", &b), -400);
	assert_int_equal(frame("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &b), -400);
	assert_non_null(b.error);
}

/* Walk body in slices of k; returns bytes consumed, or -1. */
static long walk_sliced(struct http_body b, const char *body, size_t len, size_t k, bool *done)
{
	size_t n = 0;
	while (n < len && !b.done) {
		size_t s = len - n < k ? len - n : k;
		long r = http_body_walk(&b, body + n, s);
		if (r < 0)
			return -1;
		n += (size_t)r;
	}
	*done = b.done;
	return (long)n;
}

static void test_framing_walk(void **state)
{
	struct http_body b0;
	bool done;
	/* Content-Length: exactly the body, the next request stays */
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &b0), 0);
	for (size_t k = 1; k <= 8; k++) {
		assert_int_equal(walk_sliced(b0, "helloGET / HTTP/1.1\r\n", 21, k, &done), 5);
		assert_true(done);
	}
	/* chunked with an extension and trailers, then a pipelined request */
	const char *body = "5;name=val\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
			   "X-Trailer: 1\r\n\r\nGET /next HTTP/1.1\r\n";
	size_t blen = strlen(body), want = strstr(body, "GET /next") - body;
	assert_int_equal(frame("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &b0), 0);
	for (size_t k = 1; k <= blen; k++) {
		assert_int_equal(walk_sliced(b0, body, blen, k, &done), (long)want);
		assert_true(done);
	}
	/* incomplete: all consumed, not done */
	assert_int_equal(walk_sliced(b0, "5\r\nhel", 6, 2, &done), 6);
	assert_false(done);
	/* broken framing */
	static const char *const bad[] = { "5\r\nhelloX\r\n", "g\r\n", "\r\n", "5\nhello\r\n",
					   "ffffffffffffffff\r\n", "0\r\nbad\ntrailer\r\n\r\n",
					   "5\r\nhello\r\r" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct http_body b = b0;
		assert_int_equal(walk_sliced(b, bad[i], strlen(bad[i]), 3, &done), -1);
		assert_true(http_body_walk(&b, bad[i], strlen(bad[i])) < 0);
		assert_non_null(b.error);
	}
	/* an overlong extension */
	char *ext = malloc(HTTP_CHUNK_LINE_MAX + 16);
	assert_non_null(ext);
	memset(ext, 'e', HTTP_CHUNK_LINE_MAX + 16);
	memcpy(ext, "1;", 2);
	struct http_body b = b0;
	assert_true(http_body_walk(&b, ext, HTTP_CHUNK_LINE_MAX + 16) < 0);
	free(ext);
}

static void test_head_limit_intercept(void **state)
{
	/* a 64 KiB header passes the intercept limit, not the normal one */
	size_t n = 65536 + 64;
	char *buf = malloc(n + 64);
	struct http_head h;
	assert_non_null(buf);
	int o = sprintf(buf, "GET / HTTP/1.1\r\nHost: a.test\r\nx-big: ");
	memset(buf + o, 'b', 65536);
	o += 65536;
	o += sprintf(buf + o, "\r\n\r\n");
	assert_int_equal(http_parse_head(buf, (size_t)o, &h), -431);
	assert_int_equal(http_parse_head_max(buf, (size_t)o, HTTP_HEAD_MAX_INTERCEPT, &h), 1);
	assert_int_equal(h.head_len, (size_t)o);
	free(buf);
}


/* --- mitm.c's plain mode, on socket pairs --- */

struct plain_run {
	struct event_base *base;
	struct egress eg;
	struct sandbox sb;
	char *events;
	size_t events_len;
	int cl[2], up[2]; /* [0]: the test's ends */
	bool closed;
};

static void plain_closed(void *arg)
{
	struct plain_run *r = arg;
	r->closed = true;
	event_base_loopbreak(r->base);
}

static void plain_setup(struct plain_run *r, struct secret_set *set)
{
	memset(r, 0, sizeof *r);
	assert_non_null(r->base = event_base_new());
	r->eg.base = r->base;
	r->eg.ctl_fd = -1;
	assert_non_null(r->eg.events = open_memstream(&r->events, &r->events_len));
	r->sb.eg = &r->eg;
	snprintf(r->sb.name, sizeof r->sb.name, "t");
	r->sb.secrets = set;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->cl), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->up), 0);
	fcntl(r->cl[1], F_SETFL, O_NONBLOCK);
	fcntl(r->up[1], F_SETFL, O_NONBLOCK);
}

static void send_str(struct plain_run *r, const char *s)
{
	if (s)
		assert_int_equal(write(r->cl[0], s, strlen(s)), (ssize_t)strlen(s));
}

/* Start on host:port with pre, send more, let it go upstream, send last
 * (which is refused: the upstream is dropped with what is queued for it),
 * run until closed (or 3 s). */
static struct mitm *plain_run(struct plain_run *r, const char *host, uint16_t port, bool forward,
			      const char *pre, const char *more, const char *last)
{
	const char *why;
	struct timeval tv = { 3, 0 }, pause = { 0, 200000 };
	struct mitm *m = egress_mitm_start_plain(&r->sb, host, port, forward, "transparent-http",
						 r->cl[1], r->up[1], pre, strlen(pre), plain_closed,
						 r, &why);
	assert_non_null(m);
	send_str(r, more);
	event_base_loopexit(r->base, &pause);
	event_base_dispatch(r->base);
	send_str(r, last);
	event_base_loopexit(r->base, &tv);
	event_base_dispatch(r->base);
	return m;
}

static char *drain(int fd)
{
	static char buf[2][8192];
	static int k;
	char *b = buf[k ^= 1];
	size_t n = 0;
	ssize_t got;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (n < sizeof buf[0] - 1 && (got = read(fd, b + n, sizeof buf[0] - 1 - n)) > 0)
		n += (size_t)got;
	b[n] = '\0';
	return b;
}

static void plain_teardown(struct plain_run *r, struct mitm *m)
{
	egress_mitm_free(m);
	fclose(r->eg.events);
	free(r->events);
	close(r->cl[0]);
	close(r->up[0]);
	event_base_free(r->base);
}

static void test_plain_every_head(void **state)
{
	struct plain_run r;
	plain_setup(&r, NULL);
	/* keep-alive and pipelined: a chunked body whose data looks like a
	 * head, then a request for another host at the same address */
	struct mitm *m = plain_run(
		&r, "allowed.test", 80, false, "GET /1 HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
		"POST /2 HTTP/1.1\r\nHost: Allowed.Test.:80\r\nTransfer-Encoding: chunked\r\n\r\n"
		"1a\r\nGET /x HTTP/1.1\r\nHost: e\r\n\r\n0\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: evil.test\r\n\r\nGET /4 HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
	assert_true(r.closed);
	char *up = drain(r.up[0]), *cl = drain(r.cl[0]);
	assert_non_null(strstr(up, "GET /1 HTTP/1.1\r\n"));
	assert_non_null(strstr(up, "POST /2 HTTP/1.1\r\n"));
	assert_non_null(strstr(up, "0\r\n\r\n"));
	assert_null(strstr(up, "evil.test"));
	assert_null(strstr(up, "GET /3"));
	assert_null(strstr(up, "GET /4"));
	assert_non_null(strstr(cl, "HTTP/1.1 421 Misdirected Request\r\n"));
	assert_non_null(strstr(cl, "a request for evil.test cannot use it"));
	fflush(r.eg.events);
	assert_non_null(strstr(r.events, "\"name\":\"evil.test\""));
	assert_non_null(strstr(r.events, "\"verdict\":\"deny\""));
	plain_teardown(&r, m);

	/* an absolute URI naming another host, a second Host header: refused */
	plain_setup(&r, NULL);
	m = plain_run(&r, "allowed.test", 80, false, "GET /1 HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
		      NULL, "GET http://evil.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
	assert_non_null(strstr(drain(r.cl[0]), " 421 "));
	assert_null(strstr(drain(r.up[0]), "evil"));
	plain_teardown(&r, m);
}

static void test_plain_forward(void **state)
{
	struct plain_run r;
	plain_setup(&r, NULL);
	struct mitm *m = plain_run(
		&r, "allowed.test", 80, true,
		"GET http://allowed.test/a?b HTTP/1.1\r\nHost: allowed.test\r\nProxy-Connection: x\r\n\r\n",
		"GET http://allowed.test/c HTTP/1.1\r\nHost: evil.test\r\n\r\n",
		"GET http://allowed.test:8080/d HTTP/1.1\r\nHost: allowed.test:8080\r\n\r\n");
	char *up = drain(r.up[0]), *cl = drain(r.cl[0]);
	assert_non_null(strstr(up, "GET /a?b HTTP/1.1\r\nHost: allowed.test\r\n"));
	assert_null(strstr(up, "Proxy-Connection"));
	/* the Host header of a proxy request is replaced by the URI's */
	assert_non_null(strstr(up, "GET /c HTTP/1.1\r\nHost: allowed.test\r\n"));
	assert_null(strstr(up, "/d"));
	assert_non_null(strstr(cl, " 421 "));
	assert_non_null(strstr(cl, "port 8080"));
	plain_teardown(&r, m);

	/* origin-form to the proxy: 400 */
	plain_setup(&r, NULL);
	m = plain_run(&r, "allowed.test", 80, true,
		      "GET http://allowed.test/a HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
		      NULL, "GET /b HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
	assert_non_null(strstr(drain(r.cl[0]), " 400 "));
	assert_null(strstr(drain(r.up[0]), "/b"));
	plain_teardown(&r, m);
}

static void test_plain_secrets(void **state)
{
	struct secret_set *set = two();
	struct plain_run r;
	/* a placeholder to its own host in clear, in a later request's body:
	 * refused, and that request's head never left */
	plain_setup(&r, set);
	struct mitm *m = plain_run(
		&r, "api.anthropic.com", 80, false, "GET /1 HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n",
		NULL, "POST /2 HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 48\r\n\r\n" PH_A);
	char *up = drain(r.up[0]), *cl = drain(r.cl[0]);
	assert_non_null(strstr(up, "GET /1"));
	assert_null(strstr(up, "POST /2"));
	assert_null(strstr(up, VAL_A));
	assert_non_null(strstr(cl, "HTTP/1.1 403 Forbidden"));
	assert_non_null(strstr(cl, "only replaced over https"));
	plain_teardown(&r, m);

	/* another secret's placeholder in a later head: exfiltration */
	plain_setup(&r, set);
	m = plain_run(&r, "api.anthropic.com", 80, false,
		      "GET /1 HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n",
		      NULL, "GET /2 HTTP/1.1\r\nHost: api.anthropic.com\r\nX: " PH_B "\r\n\r\n");
	assert_null(strstr(drain(r.up[0]), "GET /2"));
	assert_non_null(strstr(drain(r.cl[0]), "secret GITHUB_TOKEN"));
	fflush(r.eg.events);
	assert_non_null(strstr(r.events, "\"exfiltration\""));
	plain_teardown(&r, m);
	secret_set_free(set);
}

static void test_plain_half_close(void **state)
{
	struct plain_run r;
	const char *why;
	struct timeval tv = { 3, 0 };
	plain_setup(&r, NULL);
	static const char req[] = "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
	struct mitm *m = egress_mitm_start_plain(&r.sb, "allowed.test", 80, false, "transparent-http",
						 r.cl[1], r.up[1], req, sizeof req - 1, plain_closed,
						 &r, &why);
	assert_non_null(m);
	shutdown(r.cl[0], SHUT_WR); /* printf ... | nc */
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	assert_int_equal(write(r.up[0], resp, sizeof resp - 1), (ssize_t)sizeof resp - 1);
	struct timeval half = { 0, 300000 };
	event_base_loopexit(r.base, &half);
	event_base_dispatch(r.base);
	/* the request went, then the client's end of it */
	char buf[256];
	fcntl(r.up[0], F_SETFL, O_NONBLOCK);
	ssize_t n = read(r.up[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "GET / HTTP/1.1"));
	assert_int_equal(read(r.up[0], buf, sizeof buf), 0);
	close(r.up[0]);
	r.up[0] = open("/dev/null", O_RDONLY);
	event_base_loopexit(r.base, &tv);
	event_base_dispatch(r.base);
	assert_true(r.closed);
	assert_non_null(strstr(drain(r.cl[0]), "200 OK\r\nContent-Length: 2\r\n\r\nok"));
	plain_teardown(&r, m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_edges),
		cmocka_unit_test(test_find_split),
		cmocka_unit_test(test_find_dns),
		cmocka_unit_test(test_rewrite_injects),
		cmocka_unit_test(test_rewrite_blocks),
		cmocka_unit_test(test_rewrite_basic),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_secmem_locked_wiped),
		cmocka_unit_test(test_carry_counts),
		cmocka_unit_test(test_framing_init),
		cmocka_unit_test(test_framing_walk),
		cmocka_unit_test(test_head_limit_intercept),
		cmocka_unit_test(test_plain_every_head),
		cmocka_unit_test(test_plain_forward),
		cmocka_unit_test(test_plain_secrets),
		cmocka_unit_test(test_plain_half_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
