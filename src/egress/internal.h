/* internal.h: what the gateway's files share. Not an API. */
#ifndef PADDOCK_EGRESS_INTERNAL_H
#define PADDOCK_EGRESS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "egress/egress.h"

struct evdns_base;
struct evdns_server_port;
struct event;
struct conn;
struct dnsq;
struct tcpdns;
struct mitm;
struct secret;
struct secret_set;
struct egress_ca;
struct ssl_ctx_st;

struct sandbox_stats {
	uint64_t dns_queries, connects_allowed, connects_denied, bytes_up, bytes_down, limited;
};

/* A sandbox is freed when it is removed and the last connection or query
 * that points to it is gone (refs). */
struct sandbox {
	struct egress *eg;
	struct sandbox *next;
	char name[64];
	struct egress_policy policy;
	int refs;
	bool removed;
	struct evdns_server_port *dns_port;
	struct event *listen_ev[EGRESS_N_LISTENERS];
	int listen_fd[EGRESS_N_LISTENERS];
	struct conn *conns;      /* proxy connections, linked by conn->next */
	struct dnsq *queries;    /* DNS queries being answered */
	struct tcpdns *tcpdns;   /* DNS-over-TCP connections */
	size_t n_conns, n_dns_tcp, n_inflight;
	struct sandbox_stats st;
	struct secret_set *secrets; /* NULL: none (secrets.c) */
	struct egress_ca *ca;       /* made with the first secrets (mitm.c) */
	uint64_t secrets_generation;
	/* rate limit of "limit" events */
	uint64_t limit_pending;
	time_t limit_last;
};

struct ctl_msg {
	struct ctl_msg *next;
	size_t len;
	char data[];
};

struct egress {
	struct event_base *base;
	struct evdns_base *dns;
	struct sandbox *sandboxes;
	size_t n_sandboxes;
	struct egress_hostaddrs host;
	struct event *refresh_ev;
	size_t n_conns, conn_budget; /* all sandboxes */
	FILE *events;
	/* control channel */
	int ctl_fd;
	struct event *ctl_read_ev, *ctl_write_ev;
	struct ctl_msg *ctl_head, *ctl_tail;
	size_t ctl_queued;
	uint64_t events_dropped;
	struct ssl_ctx_st *tls_server, *tls_client; /* interception (mitm.c) */
	struct dns_cache_entry *dns_cache;           /* proxy.c: resolved names */
};

/* proxy.c */
void egress_dns_cache_free(struct egress *eg);

/* gateway.c */
struct sandbox *egress_sandbox_find(struct egress *eg, const char *name);
void egress_sandbox_unref(struct sandbox *sb);
/* Queue (control) or write (file) one event; steals ev. */
void egress_emit(struct egress *eg, json_t *ev);
/* Note work refused by a limit; emits a "limit" event at most once a second. */
void egress_limited(struct sandbox *sb, const char *what);
/* Can sb take one more connection? Counts a refusal when not. */
bool egress_conn_admit(struct sandbox *sb);
uint64_t egress_now_ms(void);
/* "a.b.c.d" / "v6" for a sockaddr or raw address. */
const char *egress_sa_str(const struct sockaddr *sa, char *buf, size_t len);

/* dns.c */
int egress_dns_serve(struct sandbox *sb, int udp_fd, int tcp_fd, struct pd_err *err);
void egress_dns_stop(struct sandbox *sb);
/* Parse the header and single question of a query in msg[0..len). Writes
 * the dotted name (namecap >= 256), type and class, and the end of the
 * question. Returns 0, or a DNS rcode to answer with (FORMERR, NOTIMP).
 * Names are uncompressed in a question (nothing precedes them to point
 * to), so a pointer is a format error. */
int egress_dns_question(const uint8_t *msg, size_t len, char *name, size_t namecap, int *qtype,
			int *qclass, size_t *qend);

/* proxy.c */
int egress_proxy_serve(struct sandbox *sb, struct pd_err *err);
void egress_proxy_stop(struct sandbox *sb);
/* Accept loop shared with DNS over TCP: calls fn for each new fd. */
void egress_accept(struct sandbox *sb, int lfd, void (*fn)(struct sandbox *, int));

/* mitm.c */
int egress_tls_init(struct egress *eg, const char *upstream_ca, struct pd_err *err);
void egress_tls_free(struct egress *eg);
/* Make sb's CA unless it has one. */
int egress_ca_ensure(struct sandbox *sb, struct pd_err *err);
void egress_ca_free(struct egress_ca *ca);
const char *egress_ca_pem(const struct sandbox *sb);
/* Count a blocked placeholder of s bound for host, emit "exfiltration". */
void egress_secret_blocked(struct sandbox *sb, struct secret *s, const char *host,
			   const char *where);
/* The 403 body that names the secret, its hosts and the host. */
int egress_secret_blocked_body(const struct secret *s, const char *host, char *buf, size_t len);
/* Intercept a connection to host (which the caller decided, resolved and
 * connected to ufd): takes both fds in every case; pre[0..pre_len) is what
 * the client sent already (its ClientHello). closed(arg) is called when the
 * connection is over; the caller then frees it with egress_mitm_free. NULL
 * (why: a static reason) when it could not start. */
struct mitm *egress_mitm_start(struct sandbox *sb, const char *host, int cfd, int ufd,
			       const char *pre, size_t pre_len, void (*closed)(void *), void *arg,
			       const char **why);
/* The same for a plain HTTP connection to host:port, decided by its first
 * request head (pre[0..pre_len): that head and what followed it), with the
 * upstream connected (ufd): every request head on it is parsed and must be
 * for host (421 and an event otherwise), bodies are followed by their
 * framing, placeholders of secrets refused (never sent in clear). forward:
 * the explicit proxy's absolute-URI requests, each rewritten to origin
 * form, also for port. via: the "via" of its events. */
struct mitm *egress_mitm_start_plain(struct sandbox *sb, const char *host, uint16_t port,
				     bool forward, const char *via, int cfd, int ufd,
				     const char *pre, size_t pre_len, void (*closed)(void *),
				     void *arg, const char **why);
void egress_mitm_free(struct mitm *m);
void egress_mitm_result(const struct mitm *m, uint64_t *up, uint64_t *down, const char **error);

/* control.c */
int egress_control_start(struct egress *eg, int fd, struct pd_err *err);
void egress_control_stop(struct egress *eg);
/* Queue a message; replies always, events only below EGRESS_CTL_QUEUE. */
void egress_control_send(struct egress *eg, const char *data, size_t len, bool is_event);

#endif
