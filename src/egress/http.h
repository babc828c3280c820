/* http.h: the head of an HTTP/1.x request, as a proxy needs it. */
#ifndef PADDOCK_EGRESS_HTTP_H
#define PADDOCK_EGRESS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest request head accepted (request line + headers + blank line). A
 * longer one is answered 431; a head must also be complete within
 * EGRESS_HEAD_TIMEOUT (egress.h). */
#define HTTP_HEAD_MAX 16384
#define HTTP_HEADERS_MAX 128
/* Room for the head rewritten by http_rewrite_forward. */
#define HTTP_REWRITE_MAX (HTTP_HEAD_MAX + 512)
/* Largest request head on a connection the gateway terminates to inject
 * secrets (secrets.c): API clients send long tokens and cookies, and a
 * 64 KiB header must pass there. The header count limit stays. */
#define HTTP_HEAD_MAX_INTERCEPT (128 * 1024)
#define HTTP_CHUNK_LINE_MAX 4096  /* one chunk-size line with its extensions */
#define HTTP_TRAILERS_MAX 65536   /* all trailer lines of one chunked body */

enum http_form {
	HTTP_ORIGIN,    /* GET /path */
	HTTP_ABSOLUTE,  /* GET http://host/path (to a proxy) */
	HTTP_AUTHORITY, /* CONNECT host:port */
	HTTP_ASTERISK,  /* OPTIONS * */
};

struct http_head {
	size_t head_len;       /* bytes up to and including the blank line */
	char method[16];
	enum http_form form;
	int minor;             /* HTTP/1.<minor> */
	/* The host the request is for: the target's for absolute and authority
	 * forms, the Host header's otherwise. As written, [v6] in brackets. */
	char host[256];
	uint16_t port;         /* target's port, or 80 */
	bool has_host_header;
	char host_header[256]; /* the Host header's host part */
	uint16_t host_header_port;
	size_t path_off, path_len; /* origin-form of an absolute target; len 0: "/" */
	const char *error;     /* why the head was refused (static) */
};

/* Parse buf[0..len). Returns 1 with *h filled when a complete head is there,
 * 0 when more bytes are needed, or a negative HTTP status (-400, -431,
 * -505) with h->error set. Rules: CRLF line ends, a token method, HTTP/1.0
 * or 1.1, no obsolete line folding, no space before a header's colon, at
 * most one Host, at most HTTP_HEADERS_MAX headers and HTTP_HEAD_MAX bytes.
 * An absolute target must be http:// without userinfo. */
int http_parse_head(const char *buf, size_t len, struct http_head *h);
/* The same with another size limit (at most HTTP_HEAD_MAX_INTERCEPT). */
int http_parse_head_max(const char *buf, size_t len, size_t max, struct http_head *h);

/* Where a request's body ends (RFC 9112 section 6), so that the next
 * request of a keep-alive or pipelined connection is found. */
enum http_body_kind { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };
struct http_body {
	enum http_body_kind kind;
	bool upgrade;       /* an Upgrade header: what follows this request is opaque */
	bool websocket;     /* ... and its value is "websocket" */
	bool expect_continue; /* Expect: 100-continue: the client waits for the head's answer */
	bool done;          /* the body (if any) is complete */
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: of the current chunk */
	int state;          /* CHUNKED: where in the framing */
	unsigned digits;    /* CHUNKED: hex digits of the size read so far */
	size_t line, trailers;
	const char *error;  /* static, when the framing is refused */
};
/* Read the framing of a parsed request head buf[0..h->head_len): Content-
 * Length or Transfer-Encoding chunked. Refused (-400, b->error): both at
 * once (request smuggling), a Transfer-Encoding that does not end in
 * chunked or in HTTP/1.0, a Content-Length that is not one decimal
 * number, more than one of either header. Returns 0. */
int http_body_init(const char *buf, const struct http_head *h, struct http_body *b);
/* Walk body bytes buf[0..len) (what follows the head, in any slices).
 * Returns how many of them belong to the body (b->done set when it ended:
 * the rest is the next request), or -1 when the chunked framing is broken
 * (b->error). Chunk-size lines are limited to HTTP_CHUNK_LINE_MAX, sizes to
 * 15 hex digits, trailers to HTTP_TRAILERS_MAX. */
long http_body_walk(struct http_body *b, const char *buf, size_t len);

/* Write the head of an absolute-form request as the origin server should
 * get it: origin-form target, Host from the target, proxy and hop-by-hop
 * headers (Proxy-*, Connection, Keep-Alive) dropped, "Connection: close"
 * (a proxy client reuses its connection for other hosts, which must not
 * ride on this upstream connection: the gateway answers those 421, so the
 * upstream closes after one answer and the client opens a new one).
 * Called for every request head of the connection (mitm.c, plain mode).
 * Returns the length, or -1 if out (outcap >= HTTP_REWRITE_MAX suffices)
 * is too small. */
int http_rewrite_forward(const char *buf, const struct http_head *h, char *out, size_t outcap);

/* Split "host[:port]" / "[v6][:port]". host (hostcap bytes) receives the
 * host as written; *port is default_port when absent, and a port is
 * required when default_port is 0. Returns 0 or -1. */
int http_parse_authority(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port,
			 uint16_t default_port);

#endif
