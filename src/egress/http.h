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

/* Write the head of an absolute-form request as the origin server should
 * get it: origin-form target, Host from the target, proxy and hop-by-hop
 * headers (Proxy-*, Connection, Keep-Alive) dropped, "Connection: close"
 * (later requests on the client's connection may be for another host, and
 * the relay after the head is blind). Returns the length, or -1 if out
 * (outcap >= HTTP_REWRITE_MAX suffices) is too small. */
int http_rewrite_forward(const char *buf, const struct http_head *h, char *out, size_t outcap);

/* Split "host[:port]" / "[v6][:port]". host (hostcap bytes) receives the
 * host as written; *port is default_port when absent, and a port is
 * required when default_port is 0. Returns 0 or -1. */
int http_parse_authority(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port,
			 uint16_t default_port);

#endif
