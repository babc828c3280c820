/* test_egress.c: the gateway's pure parts: policy matching, address
 * classification, the TLS ClientHello (SNI) parser, the HTTP head parser,
 * the DNS question parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "egress/internal.h"
#include "egress/http.h"
#include "egress/policy.h"
#include "egress/sni.h"


/* --- policy --- */

static void policy_of(struct egress_policy *p, enum egress_mode m, const char *const *a, size_t na,
		      const char *const *d, size_t nd)
{
	struct pd_err err = { 0 };
	assert_int_equal(egress_policy_init(p, m, a, na, d, nd, &err), 0);
}

static void test_policy_exact_and_wildcard(void **state)
{
	const char *allow[] = { "Registry.NPMJS.org.", "*.github.com", "api.anthropic.com" };
	const char *deny[] = { "gist.github.com" };
	struct egress_policy p;
	const char *why;
	policy_of(&p, EGRESS_FILTERED, allow, 3, deny, 1);
	assert_int_equal(egress_policy_check(&p, "registry.npmjs.org", &why), EGRESS_ALLOW);
	assert_string_equal(why, "allowlist");
	assert_int_equal(egress_policy_check(&p, "REGISTRY.npmjs.ORG.", NULL), EGRESS_ALLOW);
	assert_int_equal(egress_policy_check(&p, "x.registry.npmjs.org", NULL), EGRESS_DENY);
	assert_int_equal(egress_policy_check(&p, "api.github.com", NULL), EGRESS_ALLOW);
	assert_int_equal(egress_policy_check(&p, "a.b.github.com", NULL), EGRESS_ALLOW);
	/* "*.s" is strictly below s */
	assert_int_equal(egress_policy_check(&p, "github.com", &why), EGRESS_DENY);
	assert_string_equal(why, "not in allowlist");
	assert_int_equal(egress_policy_check(&p, "evilgithub.com", NULL), EGRESS_DENY);
	assert_int_equal(egress_policy_check(&p, "github.com.evil.com", NULL), EGRESS_DENY);
	/* deny wins */
	assert_int_equal(egress_policy_check(&p, "GIST.github.com", &why), EGRESS_DENY);
	assert_string_equal(why, "denylist");
	assert_int_equal(egress_policy_check(&p, "x.gist.github.com", NULL), EGRESS_ALLOW);
	assert_int_equal(egress_policy_check(&p, "evil.example", NULL), EGRESS_DENY);
	egress_policy_free(&p);
}

static void test_policy_open_mode(void **state)
{
	const char *deny[] = { "*.evil.example" };
	struct egress_policy p;
	const char *why;
	policy_of(&p, EGRESS_OPEN, NULL, 0, deny, 1);
	assert_int_equal(egress_policy_check(&p, "anything.example", &why), EGRESS_ALLOW);
	assert_string_equal(why, "open mode");
	assert_int_equal(egress_policy_check(&p, "a.evil.example", &why), EGRESS_DENY);
	assert_string_equal(why, "denylist");
	assert_int_equal(egress_policy_check(&p, "bad_name", &why), EGRESS_DENY);
	assert_string_equal(why, "invalid name");
	egress_policy_free(&p);
}

static void test_policy_bad_patterns(void **state)
{
	const char *bad[] = { "", "*", "*.", "a..b", "-a.com", "a-.com", "a b.com", "*.*.com",
			      "foo.*.com", "127.0.0.1", "x.123", "a_b.com" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct egress_policy p;
		struct pd_err err = { 0 };
		const char *one[] = { bad[i] };
		assert_int_equal(egress_policy_init(&p, EGRESS_FILTERED, one, 1, NULL, 0, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "pattern"));
	}
}

static void test_name_normalize(void **state)
{
	char out[EGRESS_NAME_MAX + 1], big[300];
	assert_int_equal(egress_name_normalize("Foo.Example.", out, sizeof out), 0);
	assert_string_equal(out, "foo.example");
	assert_int_equal(egress_name_normalize("xn--bcher-kva.example", out, sizeof out), 0);
	assert_int_equal(egress_name_normalize("a.", out, sizeof out), 0);
	assert_int_equal(egress_name_normalize(".", out, sizeof out), -EINVAL);
	assert_int_equal(egress_name_normalize("a..", out, sizeof out), -EINVAL);
	assert_int_equal(egress_name_normalize(".a", out, sizeof out), -EINVAL);
	assert_int_equal(egress_name_normalize("a\0b", out, sizeof out), 0); /* C string: "a" */
	assert_int_equal(egress_name_normalize("2130706433", out, sizeof out), -EINVAL);
	assert_int_equal(egress_name_normalize("127.1", out, sizeof out), -EINVAL);
	/* label lengths: 63 ok, 64 not */
	memset(big, 'a', 63);
	strcpy(big + 63, ".com");
	assert_int_equal(egress_name_normalize(big, out, sizeof out), 0);
	memset(big, 'a', 64);
	strcpy(big + 64, ".com");
	assert_int_equal(egress_name_normalize(big, out, sizeof out), -EINVAL);
	/* total: 253 ok, 254 not */
	for (int i = 0; i < 253; i++)
		big[i] = (i % 2) ? '.' : 'a';
	big[253] = '\0';
	assert_int_equal(egress_name_normalize(big, out, sizeof out), 0);
	big[253] = '.';
	big[254] = 'a';
	big[255] = '\0';
	assert_int_equal(egress_name_normalize(big, out, sizeof out), -EINVAL);
	big[254] = '\0'; /* 253 + trailing dot */
	assert_int_equal(egress_name_normalize(big, out, sizeof out), 0);
}

/* --- addresses --- */

static const char *refusal(const char *ip)
{
	struct sockaddr_storage ss;
	assert_true(egress_ip_literal(ip, &ss));
	return egress_addr_refusal((struct sockaddr *)&ss, NULL);
}

static void test_addr_refused(void **state)
{
	const char *refused[] = {
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255",
		"127.0.0.1", "127.255.0.1", "169.254.169.254", "169.254.0.1", "172.16.0.1",
		"172.31.255.255", "192.168.1.1", "224.0.0.1", "239.255.255.250", "240.0.0.1",
		"255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
		"fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254",
		"::127.0.0.1", "::10.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
		"64:ff9b:1::c0a8:1", "2002:7f00:1::", "2002:a00:1::1", "[::1]", "[::ffff:192.168.0.1]",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (!refusal(refused[i]))
			fail_msg("%s should be refused", refused[i]);
	}
	assert_string_equal(refusal("169.254.169.254"), "link-local or cloud metadata (169.254.0.0/16)");
	assert_string_equal(refusal("::ffff:127.0.0.1"), "loopback");
}

static void test_addr_allowed(void **state)
{
	/* public, and the documentation ranges the integration tests use */
	const char *ok[] = { "1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255",
			     "172.32.0.0", "192.167.255.255", "192.169.0.0", "169.253.255.255",
			     "223.255.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.10",
			     "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
			     "2002:808:808::" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		const char *why = refusal(ok[i]);
		if (why)
			fail_msg("%s refused: %s", ok[i], why);
	}
}

static void test_addr_host(void **state)
{
	struct egress_hostaddrs h = { 0 };
	struct sockaddr_storage ss;
	h.n = 2;
	inet_pton(AF_INET6, "::ffff:203.0.113.1", &h.addr[0]);
	inet_pton(AF_INET6, "2001:db8::5", &h.addr[1]);
	assert_true(egress_ip_literal("203.0.113.1", &ss));
	assert_non_null(egress_addr_refusal((struct sockaddr *)&ss, &h));
	assert_true(egress_ip_literal("::ffff:203.0.113.1", &ss));
	assert_non_null(egress_addr_refusal((struct sockaddr *)&ss, &h));
	assert_true(egress_ip_literal("2001:db8::5", &ss));
	assert_non_null(egress_addr_refusal((struct sockaddr *)&ss, &h));
	assert_true(egress_ip_literal("203.0.113.2", &ss));
	assert_null(egress_addr_refusal((struct sockaddr *)&ss, &h));
	/* the real host: its loopback is refused anyway, and refresh works */
	struct pd_err err = { 0 };
	assert_int_equal(egress_hostaddrs_refresh(&h, &err), 0);
	assert_true(h.n >= 1);
}

static void test_ip_literal(void **state)
{
	struct sockaddr_storage ss;
	assert_true(egress_ip_literal("1.2.3.4", &ss));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_true(egress_ip_literal("[2001:db8::1]", &ss));
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_false(egress_ip_literal("example.com", &ss));
	assert_false(egress_ip_literal("[example.com]", &ss));
	assert_false(egress_ip_literal("", &ss));
	assert_false(egress_ip_literal("1.2.3.4.5", &ss));
}

static void test_parse_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct pd_err err = { 0 };
	assert_int_equal(egress_parse_sockaddr("203.0.113.10", 53, &ss, &err), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 53);
	assert_int_equal(egress_parse_sockaddr("127.0.0.1:5353", 53, &ss, &err), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5353);
	assert_int_equal(egress_parse_sockaddr("[::1]:99", 53, &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(egress_parse_sockaddr("::1", 53, &ss, &err), 0);
	assert_int_equal(egress_parse_sockaddr("1.2.3.4:70000", 53, &ss, &err), -EINVAL);
	assert_int_equal(egress_parse_sockaddr("name:53", 53, &ss, &err), -EINVAL);
	assert_int_equal(egress_parse_sockaddr("1.2.3.4:", 53, &ss, &err), -EINVAL);
}

/* --- SNI --- */

/* A real ClientHello: what OpenSSL's client writes first, caught in a
 * memory BIO. */
static size_t client_hello(const char *sni, uint8_t *out, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	assert_non_null(ctx);
	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_connect_state(ssl);
	assert_true(SSL_do_handshake(ssl) <= 0); /* wants to read the answer */
	int n = BIO_read(wb, out, (int)cap);
	assert_true(n > 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return (size_t)n;
}

static void test_sni_real_hello(void **state)
{
	uint8_t h[4096];
	char name[256];
	size_t n = client_hello("Api.Example.COM", h, sizeof h);
	assert_int_equal(sni_parse(h, n, name, sizeof name), SNI_OK);
	assert_string_equal(name, "Api.Example.COM");
	/* every strict prefix wants more, never a verdict */
	for (size_t k = 0; k < n; k++)
		if (sni_parse(h, k, name, sizeof name) != SNI_NEED_MORE)
			fail_msg("prefix of %zu bytes: not NEED_MORE", k);
	/* trailing bytes (the client's next records) do not matter */
	h[n] = 0x17;
	assert_int_equal(sni_parse(h, n + 1, name, sizeof name), SNI_OK);
	n = client_hello(NULL, h, sizeof h);
	assert_int_equal(sni_parse(h, n, name, sizeof name), SNI_NO_NAME);
}

static void test_sni_fragmented(void **state)
{
	/* The same ClientHello split over two records, as a client may. */
	uint8_t h[4096], f[4200];
	char name[256];
	size_t n = client_hello("split.example", h, sizeof h), body = n - 5, first = 40;
	memcpy(f, h, 3);
	f[3] = (uint8_t)(first >> 8), f[4] = (uint8_t)first;
	memcpy(f + 5, h + 5, first);
	memcpy(f + 5 + first, h, 3);
	f[5 + first + 3] = (uint8_t)((body - first) >> 8), f[5 + first + 4] = (uint8_t)(body - first);
	memcpy(f + 10 + first, h + 5 + first, body - first);
	assert_int_equal(sni_parse(f, n + 5, name, sizeof name), SNI_OK);
	assert_string_equal(name, "split.example");
	assert_int_equal(sni_parse(f, n + 4, name, sizeof name), SNI_NEED_MORE);
}

static void test_sni_malformed(void **state)
{
	uint8_t h[4096], m[4096];
	char name[256];
	size_t n = client_hello("x.example", h, sizeof h);
	/* not TLS */
	assert_int_equal(sni_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, sizeof name),
			 SNI_NOT_TLS);
	assert_int_equal(sni_parse((const uint8_t *)"\x16\x02", 2, name, sizeof name), SNI_NOT_TLS);
	assert_int_equal(sni_parse((const uint8_t *)"", 0, name, sizeof name), SNI_NEED_MORE);
	/* a record longer than TLS allows */
	memcpy(m, h, n);
	m[3] = 0x48, m[4] = 0x01;
	assert_int_equal(sni_parse(m, n, name, sizeof name), SNI_MALFORMED);
	/* not a ClientHello */
	memcpy(m, h, n);
	m[5] = 2;
	assert_int_equal(sni_parse(m, n, name, sizeof name), SNI_MALFORMED);
	/* a handshake length claiming more than the limit */
	memcpy(m, h, n);
	m[6] = 0x01, m[7] = 0x00, m[8] = 0x00;
	assert_int_equal(sni_parse(m, n, name, sizeof name), SNI_TOO_LARGE);
	/* flip each length byte in the body: never a crash, and never a
	 * different name than the one sent */
	for (size_t i = 5; i < n; i++) {
		memcpy(m, h, n);
		m[i] ^= 0xff;
		enum sni_result r = sni_parse(m, n, name, sizeof name);
		if (r == SNI_OK && strcmp(name, "x.example") != 0 && strlen(name) != 9)
			fail_msg("byte %zu: parsed \"%s\"", i, name);
	}
	/* a record of 16384 bytes of a ClientHello that is too long */
	memset(m, 0, sizeof m);
	m[0] = 0x16, m[1] = 3, m[2] = 1, m[3] = 0x40, m[4] = 0x00;
	m[5] = 1, m[6] = 0x00, m[7] = 0xff, m[8] = 0xff;
	assert_int_equal(sni_parse(m, sizeof m, name, sizeof name), SNI_NEED_MORE);
}

static void test_sni_duplicate_and_ech(void **state)
{
	/* hand-built: ClientHello with extensions [server_name x2] */
	uint8_t b[512];
	char name[256];
	size_t o = 0;
	static const uint8_t sni_ext[] = { 0, 0, 0, 12, 0, 10, 0, 0, 7, 'a', '.', 'e', 'x', 'a', 'm', 'p' };
	uint8_t body[300];
	size_t bl = 0;
	body[bl++] = 3, body[bl++] = 3;
	memset(body + bl, 0, 32), bl += 32;
	body[bl++] = 0;                       /* session id */
	body[bl++] = 0, body[bl++] = 2, body[bl++] = 0x13, body[bl++] = 0x01;
	body[bl++] = 1, body[bl++] = 0;       /* compression */
	size_t ext_len_at = bl;
	bl += 2;
	memcpy(body + bl, sni_ext, sizeof sni_ext), bl += sizeof sni_ext;
	size_t one = bl;
	memcpy(body + bl, sni_ext, sizeof sni_ext), bl += sizeof sni_ext;
	for (int variant = 0; variant < 3; variant++) {
		size_t len = variant == 0 ? one : bl;
		if (variant == 2) { /* second extension becomes ECH */
			body[one] = 0xfe, body[one + 1] = 0x0d;
		}
		body[ext_len_at] = (uint8_t)((len - ext_len_at - 2) >> 8);
		body[ext_len_at + 1] = (uint8_t)(len - ext_len_at - 2);
		o = 0;
		b[o++] = 0x16, b[o++] = 3, b[o++] = 1, b[o++] = (uint8_t)((len + 4) >> 8),
		b[o++] = (uint8_t)(len + 4);
		b[o++] = 1, b[o++] = 0, b[o++] = (uint8_t)(len >> 8), b[o++] = (uint8_t)len;
		memcpy(b + o, body, len), o += len;
		enum sni_result r = sni_parse(b, o, name, sizeof name);
		if (variant == 0) {
			assert_int_equal(r, SNI_OK);
			assert_string_equal(name, "a.examp");
		} else if (variant == 1) {
			assert_int_equal(r, SNI_MALFORMED);
		} else {
			assert_int_equal(r, SNI_ECH);
		}
	}
}

/* --- HTTP --- */

static int parse(const char *s, struct http_head *h)
{
	return http_parse_head(s, strlen(s), h);
}

static void test_http_connect(void **state)
{
	struct http_head h;
	assert_int_equal(parse("CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\nTLS", &h), 1);
	assert_int_equal(h.form, HTTP_AUTHORITY);
	assert_string_equal(h.host, "api.example.com");
	assert_int_equal(h.port, 443);
	assert_int_equal(h.head_len, strlen("CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"));
	assert_int_equal(parse("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", &h), 1);
	assert_string_equal(h.host, "[2001:db8::1]");
	assert_int_equal(parse("CONNECT api.example.com HTTP/1.1\r\n\r\n", &h), -400);
	assert_int_equal(parse("CONNECT a.com:0 HTTP/1.1\r\n\r\n", &h), -400);
	assert_int_equal(parse("CONNECT a.com:65536 HTTP/1.1\r\n\r\n", &h), -400);
	assert_int_equal(parse("CONNECT a.com:443 HTTP/1.1\r\n", &h), 0);
}

static void test_http_absolute_and_rewrite(void **state)
{
	struct http_head h;
	char out[HTTP_REWRITE_MAX];
	const char *req = "GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n"
			  "Proxy-Connection: keep-alive\r\nProxy-Authorization: x\r\nAccept: */*\r\n"
			  "Connection: keep-alive\r\n\r\nbody";
	assert_int_equal(parse(req, &h), 1);
	assert_int_equal(h.form, HTTP_ABSOLUTE);
	assert_string_equal(h.host, "Example.com");
	assert_int_equal(h.port, 8080);
	int n = http_rewrite_forward(req, &h, out, sizeof out);
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "GET /a/b?c=d HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n"
				 "Connection: close\r\n\r\n");
	assert_int_equal(parse("GET http://example.com HTTP/1.0\r\n\r\n", &h), 1);
	n = http_rewrite_forward("GET http://example.com HTTP/1.0\r\n\r\n", &h, out, sizeof out);
	out[n] = '\0';
	assert_string_equal(out, "GET / HTTP/1.0\r\nHost: example.com\r\nConnection: close\r\n\r\n");
	assert_int_equal(parse("GET http://u:p@example.com/ HTTP/1.1\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET https://example.com/ HTTP/1.1\r\n\r\n", &h), -400);
	assert_non_null(strstr(h.error, "CONNECT"));
	assert_int_equal(parse("GET ftp://example.com/ HTTP/1.1\r\n\r\n", &h), -400);
	/* too small an output buffer */
	assert_int_equal(parse(req, &h), 1);
	assert_int_equal(http_rewrite_forward(req, &h, out, 20), -1);
}

static void test_http_host(void **state)
{
	struct http_head h;
	assert_int_equal(parse("GET / HTTP/1.1\r\nhOsT:  Example.com:81 \r\n\r\n", &h), 1);
	assert_int_equal(h.form, HTTP_ORIGIN);
	assert_string_equal(h.host, "Example.com");
	assert_int_equal(h.port, 81);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\n\r\n", &h), -400);
	assert_string_equal(h.error, "more than one Host header");
	assert_int_equal(parse("GET / HTTP/1.1\r\nAccept: x\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a com\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a.com\r\n folded\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a.com\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\nHost: a.com\n\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a.com\rX: y\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a.com\r\n\r\n", &h), -505);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a.com\r\nX: \x01\r\n\r\n", &h), -400);
	assert_int_equal(parse("GET  / HTTP/1.1\r\nHost: a.com\r\n\r\n", &h), -400);
	assert_int_equal(parse("\r\n\r\n", &h), -400);
	assert_int_equal(parse("\x16\x03\x01", &h), -400);
}

static void test_http_limits(void **state)
{
	struct http_head h;
	size_t n = HTTP_HEAD_MAX + 100;
	char *big = malloc(n + 1);
	assert_non_null(big);
	strcpy(big, "GET http://a.com/ HTTP/1.1\r\nX: ");
	memset(big + strlen(big), 'a', n - strlen(big));
	big[n] = '\0';
	assert_int_equal(http_parse_head(big, n, &h), -431);
	assert_int_equal(http_parse_head(big, HTTP_HEAD_MAX - 1, &h), 0);
	/* too many headers */
	char *p = big;
	p += sprintf(p, "GET http://a.com/ HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX + 2; i++)
		p += sprintf(p, "X: y\r\n");
	p += sprintf(p, "\r\n");
	assert_int_equal(http_parse_head(big, (size_t)(p - big), &h), -431);
	free(big);
}

/* --- DNS question (DNS over TCP) --- */

static void test_dns_question(void **state)
{
	static const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				     3, 'w', 'w', 'w', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 28, 0, 1 };
	char name[256];
	int t, c;
	size_t end;
	uint8_t m[sizeof q];
	assert_int_equal(egress_dns_question(q, sizeof q, name, sizeof name, &t, &c, &end), 0);
	assert_string_equal(name, "www.Example");
	assert_int_equal(t, 28);
	assert_int_equal(c, 1);
	assert_int_equal(end, sizeof q);
	for (size_t k = 0; k < sizeof q; k++)
		assert_int_not_equal(egress_dns_question(q, k, name, sizeof name, &t, &c, &end), 0);
	memcpy(m, q, sizeof q);
	m[12] = 0xc0; /* compression pointer */
	assert_int_not_equal(egress_dns_question(m, sizeof m, name, sizeof name, &t, &c, &end), 0);
	memcpy(m, q, sizeof q);
	m[2] |= 0x80; /* a response */
	assert_int_not_equal(egress_dns_question(m, sizeof m, name, sizeof name, &t, &c, &end), 0);
	memcpy(m, q, sizeof q);
	m[5] = 2; /* two questions */
	assert_int_not_equal(egress_dns_question(m, sizeof m, name, sizeof name, &t, &c, &end), 0);
	memcpy(m, q, sizeof q);
	m[13] = '.'; /* a dot inside a label cannot pass as a separator */
	assert_int_equal(egress_dns_question(m, sizeof m, name, sizeof name, &t, &c, &end), 0);
	assert_string_equal(name, "?ww.Example");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_exact_and_wildcard),
		cmocka_unit_test(test_policy_open_mode),
		cmocka_unit_test(test_policy_bad_patterns),
		cmocka_unit_test(test_name_normalize),
		cmocka_unit_test(test_addr_refused),
		cmocka_unit_test(test_addr_allowed),
		cmocka_unit_test(test_addr_host),
		cmocka_unit_test(test_ip_literal),
		cmocka_unit_test(test_parse_sockaddr),
		cmocka_unit_test(test_sni_real_hello),
		cmocka_unit_test(test_sni_fragmented),
		cmocka_unit_test(test_sni_malformed),
		cmocka_unit_test(test_sni_duplicate_and_ech),
		cmocka_unit_test(test_http_connect),
		cmocka_unit_test(test_http_absolute_and_rewrite),
		cmocka_unit_test(test_http_host),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test(test_dns_question),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
