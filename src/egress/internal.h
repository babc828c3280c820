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
};

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

/* control.c */
int egress_control_start(struct egress *eg, int fd, struct pd_err *err);
void egress_control_stop(struct egress *eg);
/* Queue a message; replies always, events only below EGRESS_CTL_QUEUE. */
void egress_control_send(struct egress *eg, const char *data, size_t len, bool is_event);

#endif
