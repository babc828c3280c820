/* http.c: a strict, bounded parser for HTTP/1.x request heads (RFC 9112).
 *
 * The gateway needs the request line, the Host header and the body's
 * framing of every request (to decide each one and find the next), not
 * more, so this is not a general HTTP parser:
 * it rejects anything ambiguous (bare LF, folding, duplicate Host, space
 * before a colon) rather than guess how the origin server will read it. */
#include "egress/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int fail(struct http_head *h, int status, const char *why)
{
	h->error = why;
	return -status;
}

int http_parse_authority(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port,
			 uint16_t default_port)
{
	size_t hl;
	const char *rest;
	if (len == 0)
		return -1;
	if (s[0] == '[') {
		const char *end = memchr(s, ']', len);
		if (!end)
			return -1;
		hl = (size_t)(end - s) + 1;
		for (size_t i = 1; i + 1 < hl; i++)
			if (!strchr("0123456789abcdefABCDEF:.", s[i]) || !s[i])
				return -1;
	} else {
		for (hl = 0; hl < len && s[hl] != ':'; hl++)
			if (!((s[hl] >= 'a' && s[hl] <= 'z') || (s[hl] >= 'A' && s[hl] <= 'Z') ||
			      (s[hl] >= '0' && s[hl] <= '9') || s[hl] == '-' || s[hl] == '.'))
				return -1;
	}
	if (hl == 0 || hl >= hostcap)
		return -1;
	rest = s + hl;
	size_t rl = len - hl;
	unsigned long p = default_port;
	if (rl > 0) {
		if (rest[0] != ':' || rl < 2 || rl > 6)
			return -1;
		p = 0;
		for (size_t i = 1; i < rl; i++) {
			if (rest[i] < '0' || rest[i] > '9')
				return -1;
			p = p * 10 + (unsigned long)(rest[i] - '0');
		}
	}
	if (p == 0 || p > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* "http://authority/path?query" -> host, port, path span. */
static int absolute_target(const char *buf, size_t off, size_t len, struct http_head *h)
{
	const char *t = buf + off;
	if (len < 8 || strncasecmp(t, "http://", 7) != 0)
		return fail(h, 400, strncasecmp(t, "https://", 8) == 0
					    ? "an https:// URI must go through CONNECT"
					    : "only http:// absolute URIs are proxied");
	size_t a = 7, e = a;
	while (e < len && t[e] != '/' && t[e] != '?' && t[e] != '#')
		e++;
	if (memchr(t + a, '@', e - a))
		return fail(h, 400, "user information in the URI");
	if (http_parse_authority(t + a, e - a, h->host, sizeof h->host, &h->port, 80) < 0)
		return fail(h, 400, "bad host in the URI");
	h->path_off = off + e;
	h->path_len = len - e;
	return 0;
}

static int request_line(const char *buf, size_t end, struct http_head *h)
{
	size_t i = 0, m, t0, t1;
	while (i < end && tchar((unsigned char)buf[i]))
		i++;
	m = i;
	if (m == 0 || m >= sizeof h->method || i >= end || buf[i] != ' ')
		return fail(h, 400, "bad request line");
	memcpy(h->method, buf, m);
	h->method[m] = '\0';
	t0 = ++i;
	while (i < end && vchar((unsigned char)buf[i]))
		i++;
	t1 = i;
	if (t1 == t0 || i >= end || buf[i] != ' ')
		return fail(h, 400, "bad request target");
	i++;
	if (end - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0)
		return fail(h, end - i == 8 && memcmp(buf + i, "HTTP/", 5) == 0 ? 505 : 400,
			    "bad HTTP version");
	if (buf[i + 7] != '0' && buf[i + 7] != '1')
		return fail(h, 505, "bad HTTP version");
	h->minor = buf[i + 7] - '0';
	size_t tl = t1 - t0;
	if (strcmp(h->method, "CONNECT") == 0) {
		h->form = HTTP_AUTHORITY;
		if (http_parse_authority(buf + t0, tl, h->host, sizeof h->host, &h->port, 0) < 0)
			return fail(h, 400, "CONNECT needs host:port");
	} else if (buf[t0] == '/') {
		h->form = HTTP_ORIGIN;
	} else if (tl == 1 && buf[t0] == '*') {
		h->form = HTTP_ASTERISK;
	} else {
		h->form = HTTP_ABSOLUTE;
		return absolute_target(buf, t0, tl, h);
	}
	return 0;
}

static int header_line(const char *line, size_t len, struct http_head *h)
{
	size_t n = 0;
	if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return fail(h, 400, "obsolete header line folding");
	while (n < len && tchar((unsigned char)line[n]))
		n++;
	if (n == 0 || n >= len || line[n] != ':')
		return fail(h, 400, "bad header line");
	for (size_t i = n + 1; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 && c != '\t')
			return fail(h, 400, "control character in a header");
		if (c == 0x7f)
			return fail(h, 400, "control character in a header");
	}
	if (n == 4 && strncasecmp(line, "host", 4) == 0) {
		size_t v = n + 1, e = len;
		while (v < e && (line[v] == ' ' || line[v] == '\t'))
			v++;
		while (e > v && (line[e - 1] == ' ' || line[e - 1] == '\t'))
			e--;
		if (h->has_host_header)
			return fail(h, 400, "more than one Host header");
		h->has_host_header = true;
		if (http_parse_authority(line + v, e - v, h->host_header, sizeof h->host_header,
					 &h->host_header_port, 80) < 0)
			return fail(h, 400, "bad Host header");
	}
	return 0;
}

int http_parse_head(const char *buf, size_t len, struct http_head *h)
{
	return http_parse_head_max(buf, len, HTTP_HEAD_MAX, h);
}

int http_parse_head_max(const char *buf, size_t len, size_t max, struct http_head *h)
{
	if (max > HTTP_HEAD_MAX_INTERCEPT)
		max = HTTP_HEAD_MAX_INTERCEPT;
	size_t lim = len < max ? len : max, end = 0, line = 0, nh = 0;
	int r;
	memset(h, 0, sizeof *h);
	/* Find the blank line; refuse bytes no head may contain as they come,
	 * so that garbage fails at once rather than at the size limit. */
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return fail(h, 400, "bare LF");
			if (i - line == 1) { /* "\r\n" alone: end of the head */
				if (line == 0)
					return fail(h, 400, "empty request line");
				end = i + 1;
				break;
			}
			line = i + 1;
			if (++nh > HTTP_HEADERS_MAX + 1)
				return fail(h, 431, "too many headers");
		} else if (c == '\r') {
			if (i + 1 < lim && buf[i + 1] != '\n')
				return fail(h, 400, "bare CR");
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return fail(h, 400, "control character in the head");
		}
	}
	if (end == 0)
		return len >= max ? fail(h, 431, "request head too large") : 0;
	const char *eol = memchr(buf, '\r', end);
	if ((r = request_line(buf, (size_t)(eol - buf), h)) < 0)
		return r;
	for (const char *p = eol + 2; p < buf + end - 2;) {
		const char *e = memchr(p, '\r', (size_t)(buf + end - p));
		if ((r = header_line(p, (size_t)(e - p), h)) < 0)
			return r;
		p = e + 2;
	}
	if (h->form == HTTP_ORIGIN || h->form == HTTP_ASTERISK) {
		if (!h->has_host_header)
			return fail(h, 400, "no Host header");
		memcpy(h->host, h->host_header, sizeof h->host);
		h->port = h->host_header_port;
	}
	h->head_len = end;
	return 1;
}

static bool hop_by_hop(const char *line, size_t len)
{
	static const char *const drop[] = { "host:", "connection:", "keep-alive:", "proxy-" };
	for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
		size_t n = strlen(drop[i]);
		if (len >= n && strncasecmp(line, drop[i], n) == 0)
			return true;
	}
	return false;
}

static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (cap - *o < n)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	return true;
}

int http_rewrite_forward(const char *buf, const struct http_head *h, char *out, size_t outcap)
{
	size_t o = 0;
	const char *eol = memchr(buf, '\r', h->head_len);
	char hostline[300];
	int hl;
	if (!eol || eol - buf < 8)
		return -1;
	const char *ver = eol - 8; /* "HTTP/1.x" */
	if (h->port == 80)
		hl = snprintf(hostline, sizeof hostline, "Host: %s\r\n", h->host);
	else
		hl = snprintf(hostline, sizeof hostline, "Host: %s:%u\r\n", h->host, h->port);
	if (hl < 0 || (size_t)hl >= sizeof hostline)
		return -1;
	if (!put(out, outcap, &o, h->method, strlen(h->method)) || !put(out, outcap, &o, " ", 1))
		return -1;
	if (h->path_len == 0 || buf[h->path_off] != '/')
		if (!put(out, outcap, &o, "/", 1))
			return -1;
	if (!put(out, outcap, &o, buf + h->path_off, h->path_len) ||
	    !put(out, outcap, &o, " ", 1) || !put(out, outcap, &o, ver, 10) ||
	    !put(out, outcap, &o, hostline, (size_t)hl))
		return -1;
	for (const char *p = eol + 2; p < buf + h->head_len - 2;) {
		const char *e = memchr(p, '\r', (size_t)(buf + h->head_len - p));
		if (!hop_by_hop(p, (size_t)(e - p)) && !put(out, outcap, &o, p, (size_t)(e - p) + 2))
			return -1;
		p = e + 2;
	}
	if (!put(out, outcap, &o, "Connection: close\r\n\r\n", 21))
		return -1;
	return (int)o;
}

/* --- body framing --- */

static bool header_is(const char *line, size_t len, const char *name, const char **v, size_t *vl)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	size_t s = n + 1, e = len;
	while (s < e && (line[s] == ' ' || line[s] == '\t'))
		s++;
	while (e > s && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	*v = line + s;
	*vl = e - s;
	return true;
}

static int body_fail(struct http_body *b, const char *why)
{
	b->error = why;
	return -400;
}

int http_body_init(const char *buf, const struct http_head *h, struct http_body *b)
{
	const char *eol = memchr(buf, '\r', h->head_len), *v;
	size_t vl;
	bool have_cl = false, have_te = false;
	uint64_t cl = 0;
	memset(b, 0, sizeof *b);
	for (const char *p = eol + 2; p < buf + h->head_len - 2;) {
		const char *e = memchr(p, '\r', (size_t)(buf + h->head_len - p));
		size_t ll = (size_t)(e - p);
		if (header_is(p, ll, "content-length", &v, &vl)) {
			if (have_cl)
				return body_fail(b, "more than one Content-Length");
			have_cl = true;
			if (vl == 0 || vl > 15)
				return body_fail(b, "bad Content-Length");
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9')
					return body_fail(b, "bad Content-Length");
				cl = cl * 10 + (uint64_t)(v[i] - '0');
			}
		} else if (header_is(p, ll, "transfer-encoding", &v, &vl)) {
			if (have_te)
				return body_fail(b, "more than one Transfer-Encoding");
			have_te = true;
			/* the last coding must be chunked: "gzip, chunked" */
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl < 7 || strncasecmp(v + vl - 7, "chunked", 7) != 0 ||
			    (vl > 7 && v[vl - 8] != ',' && v[vl - 8] != ' ' && v[vl - 8] != '\t'))
				return body_fail(b, "Transfer-Encoding does not end in chunked");
		} else if (header_is(p, ll, "upgrade", &v, &vl)) {
			b->upgrade = true;
			b->websocket = vl == 9 && strncasecmp(v, "websocket", 9) == 0;
		} else if (header_is(p, ll, "expect", &v, &vl)) {
			b->expect_continue = vl == 12 && strncasecmp(v, "100-continue", 12) == 0;
		}
		p = e + 2;
	}
	if (have_te && have_cl)
		return body_fail(b, "both Content-Length and Transfer-Encoding");
	if (have_te && h->minor == 0)
		return body_fail(b, "Transfer-Encoding in HTTP/1.0");
	if (have_te) {
		b->kind = HTTP_BODY_CHUNKED;
	} else if (have_cl && cl > 0) {
		b->kind = HTTP_BODY_LENGTH;
		b->remaining = cl;
	} else {
		b->kind = HTTP_BODY_NONE;
		b->done = true;
	}
	return 0;
}

enum { CS_SIZE, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_TRAILER_START,
       CS_TRAILER, CS_TRAILER_LF, CS_END_LF };

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static long walk_fail(struct http_body *b, const char *why)
{
	b->error = why;
	return -1;
}

long http_body_walk(struct http_body *b, const char *buf, size_t len)
{
	size_t i = 0;
	if (len > (size_t)1 << 30)
		len = (size_t)1 << 30; /* the count must fit the return type */
	if (b->error)
		return -1;
	if (b->done)
		return 0;
	if (b->kind == HTTP_BODY_LENGTH) {
		size_t n = b->remaining < len ? (size_t)b->remaining : len;
		b->remaining -= n;
		b->done = b->remaining == 0;
		return (long)n;
	}
	if (b->kind != HTTP_BODY_CHUNKED)
		return 0;
	while (i < len && !b->done) {
		unsigned char c = (unsigned char)buf[i];
		if (b->state == CS_DATA) {
			size_t n = b->remaining < len - i ? (size_t)b->remaining : len - i;
			b->remaining -= n;
			i += n;
			if (b->remaining == 0)
				b->state = CS_DATA_CR;
			continue;
		}
		i++;
		switch (b->state) {
		case CS_SIZE: {
			int v = hexval(c);
			if (v >= 0) {
				if (++b->digits > 15)
					return walk_fail(b, "chunk size too large");
				b->remaining = b->remaining * 16 + (uint64_t)v;
			} else if (b->digits == 0) {
				return walk_fail(b, "bad chunk size");
			} else if (c == ';' || c == ' ' || c == '\t') {
				b->state = CS_EXT;
			} else if (c == '\r') {
				b->state = CS_SIZE_LF;
			} else {
				return walk_fail(b, "bad chunk size");
			}
			break;
		}
		case CS_EXT:
			if (++b->line > HTTP_CHUNK_LINE_MAX)
				return walk_fail(b, "chunk extension too long");
			if (c == '\r')
				b->state = CS_SIZE_LF;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				return walk_fail(b, "control character in a chunk extension");
			break;
		case CS_SIZE_LF:
			if (c != '\n')
				return walk_fail(b, "bare CR in a chunk size line");
			b->state = b->remaining == 0 ? CS_TRAILER_START : CS_DATA;
			break;
		case CS_DATA_CR:
			if (c != '\r')
				return walk_fail(b, "chunk data longer than its size");
			b->state = CS_DATA_LF;
			break;
		case CS_DATA_LF:
			if (c != '\n')
				return walk_fail(b, "bare CR after chunk data");
			b->state = CS_SIZE;
			b->digits = 0;
			b->line = 0;
			b->remaining = 0;
			break;
		case CS_TRAILER_START:
			if (c == '\r') {
				b->state = CS_END_LF;
				break;
			}
			b->state = CS_TRAILER;
			__attribute__((fallthrough));
		case CS_TRAILER:
			if (++b->trailers > HTTP_TRAILERS_MAX)
				return walk_fail(b, "trailers too large");
			if (c == '\r')
				b->state = CS_TRAILER_LF;
			else if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f)
				return walk_fail(b, "control character in a trailer");
			break;
		case CS_TRAILER_LF:
			if (c != '\n')
				return walk_fail(b, "bare CR in a trailer");
			b->state = CS_TRAILER_START;
			break;
		case CS_END_LF:
			if (c != '\n')
				return walk_fail(b, "bare CR at the end of the body");
			b->done = true;
			break;
		default:
			return walk_fail(b, "bad state");
		}
	}
	return (long)i;
}
