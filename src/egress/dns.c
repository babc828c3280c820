/* dns.c: the sandbox's resolver.
 *
 * UDP is served by libevent's evdns server. A question is answered only for
 * A and AAAA of a name the policy allows, by asking the upstream resolver
 * (one shared evdns_base) and checking every address of the answer: one
 * refused address (loopback, private, metadata, the host...) refuses the
 * whole answer, since a name that points inside is a DNS-rebinding attempt.
 * Names outside the policy get NXDOMAIN and other types NOTIMP, both
 * without a byte sent upstream, so a sandbox cannot tunnel data out through
 * queries for names it invents.
 *
 * TCP: libevent 2.1's evdns server speaks only UDP, so DNS over TCP is a
 * small listener here: one length-prefixed query per connection (at most
 * EGRESS_DNS_TCP_MAX bytes, within EGRESS_HEAD_TIMEOUT), parsed by
 * dns_question() below, answered through the same decision, then closed.
 * Clients use TCP after a truncated UDP answer, which ours never are for the
 * few addresses of one name, so this path is small on purpose.
 *
 * A name that carries one of the sandbox's secret placeholders (its 32 hex
 * digits, any case, across labels) is REFUSED before anything else, with
 * an "exfiltration" event (where "dns"), whatever the policy says. */
#include "egress/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egress/secrets.h"

#define LAYER "egress"
#define TTL_MAX 300
#define ANSWERS_MAX 32

struct tcpdns {
	struct tcpdns *next, *prev;
	struct sandbox *sb;
	struct bufferevent *bev;
	struct dnsq *q;           /* the question being answered, if any */
	uint8_t msg[EGRESS_DNS_TCP_MAX];
	size_t qend;              /* end of the question section in msg */
};

struct dnsq {
	struct dnsq *next, *prev;
	struct sandbox *sb;
	struct evdns_server_request *sreq; /* UDP */
	struct tcpdns *tcp;                /* TCP */
	struct evdns_request *creq;        /* upstream, while pending */
	char name[EGRESS_NAME_MAX + 1];    /* normalized */
	char qname[256];                   /* as asked (case kept for 0x20 clients) */
	int qtype;
};

static const char *qtype_str(int t, char *buf, size_t len)
{
	switch (t) {
	case EVDNS_TYPE_A: return "A";
	case EVDNS_TYPE_AAAA: return "AAAA";
	case EVDNS_TYPE_TXT: return "TXT";
	case EVDNS_TYPE_MX: return "MX";
	case EVDNS_TYPE_CNAME: return "CNAME";
	case EVDNS_TYPE_PTR: return "PTR";
	case EVDNS_TYPE_NS: return "NS";
	case EVDNS_TYPE_SOA: return "SOA";
	default: snprintf(buf, len, "TYPE%d", t); return buf;
	}
}

static void emit_dns(struct dnsq *q, const char *name, bool allow, const char *reason,
		     json_t *answer)
{
	char tb[16];
	egress_emit(q->sb->eg, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "event", "dns",
					 "sandbox", q->sb->name, "name", name,
					 "qtype", qtype_str(q->qtype, tb, sizeof tb),
					 "verdict", allow ? "allow" : "deny", "reason", reason,
					 "answer", answer ? answer : json_array()));
}

/* --- answering, over UDP (evdns) or TCP (by hand) --- */

static void tcp_close(struct tcpdns *t);

static void tcp_reply(struct tcpdns *t, int rcode, int type, int n, const void *addrs, int ttl)
{
	uint8_t out[2 + 12 + 260 + 4 + ANSWERS_MAX * (12 + 16)];
	size_t o = 2, alen = type == EVDNS_TYPE_A ? 4 : 16;
	uint16_t flags = 0x8000 | (uint16_t)((t->msg[2] << 8 | t->msg[3]) & 0x0100) | 0x0080 |
			 (uint16_t)rcode;
	if (n > ANSWERS_MAX)
		n = ANSWERS_MAX;
	memcpy(out + o, t->msg, 2); /* id */
	out[o + 2] = (uint8_t)(flags >> 8);
	out[o + 3] = (uint8_t)flags;
	out[o + 4] = 0;
	out[o + 5] = t->qend > 12; /* no question section when it did not parse */
	out[o + 6] = 0;
	out[o + 7] = (uint8_t)n;
	memset(out + o + 8, 0, 4);
	o += 12;
	memcpy(out + o, t->msg + 12, t->qend - 12);
	o += t->qend - 12;
	for (int i = 0; i < n; i++) {
		uint8_t *a = out + o;
		a[0] = 0xc0, a[1] = 12; /* the name of the question */
		a[2] = 0, a[3] = (uint8_t)type, a[4] = 0, a[5] = 1;
		a[6] = (uint8_t)(ttl >> 24), a[7] = (uint8_t)(ttl >> 16);
		a[8] = (uint8_t)(ttl >> 8), a[9] = (uint8_t)ttl;
		a[10] = 0, a[11] = (uint8_t)alen;
		memcpy(a + 12, (const uint8_t *)addrs + (size_t)i * alen, alen);
		o += 12 + alen;
	}
	out[0] = (uint8_t)((o - 2) >> 8);
	out[1] = (uint8_t)(o - 2);
	if (bufferevent_write(t->bev, out, o) < 0)
		tcp_close(t);
	/* else closed by the write callback once sent */
}

/* Send the answer and free q. */
static void q_finish(struct dnsq *q, int rcode, int type, int n, const void *addrs, int ttl)
{
	struct sandbox *sb = q->sb;
	if (q->sreq) {
		if (rcode == DNS_ERR_NONE && n > 0) {
			if (type == EVDNS_TYPE_A)
				evdns_server_request_add_a_reply(q->sreq, q->qname, n, addrs, ttl);
			else
				evdns_server_request_add_aaaa_reply(q->sreq, q->qname, n, addrs, ttl);
		}
		evdns_server_request_respond(q->sreq, rcode);
	} else if (q->tcp) {
		q->tcp->q = NULL;
		tcp_reply(q->tcp, rcode, type, n, addrs, ttl);
	}
	if (q->prev)
		q->prev->next = q->next;
	else if (sb->queries == q)
		sb->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	free(q);
	egress_sandbox_unref(sb);
}

static void upstream_cb(int result, char type, int count, int ttl, void *addrs, void *arg)
{
	struct dnsq *q = arg;
	struct sandbox *sb = q->sb;
	int qt = q->qtype, family = qt == EVDNS_TYPE_A ? AF_INET : AF_INET6;
	size_t alen = family == AF_INET ? 4 : 16;
	json_t *answer = json_array();
	char ab[INET6_ADDRSTRLEN], why[160];
	q->creq = NULL;
	sb->n_inflight--;
	if (!q->sreq && !q->tcp) { /* the asker is gone */
		json_decref(answer);
		q_finish(q, DNS_ERR_SERVERFAILED, 0, 0, NULL, 0);
		return;
	}
	if (result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA ||
	    (result == DNS_ERR_NONE && count == 0)) {
		emit_dns(q, q->name, true, result == DNS_ERR_NOTEXIST ? "upstream: NXDOMAIN"
								       : "upstream: no data", answer);
		q_finish(q, result == DNS_ERR_NOTEXIST ? DNS_ERR_NOTEXIST : DNS_ERR_NONE, qt, 0,
			 NULL, 0);
		return;
	}
	if (result != DNS_ERR_NONE || (type == DNS_IPv4_A) != (qt == EVDNS_TYPE_A)) {
		snprintf(why, sizeof why, "upstream: %s", evdns_err_to_string(result));
		emit_dns(q, q->name, false, why, answer);
		q_finish(q, DNS_ERR_SERVERFAILED, qt, 0, NULL, 0);
		return;
	}
	for (int i = 0; i < count; i++) {
		const void *a = (const uint8_t *)addrs + (size_t)i * alen;
		const char *refusal = egress_ip_refusal(family, a, &sb->eg->host);
		inet_ntop(family, a, ab, sizeof ab);
		json_array_append_new(answer, json_string(ab));
		if (refusal) {
			snprintf(why, sizeof why, "rebinding: %s is %s", ab, refusal);
			emit_dns(q, q->name, false, why, answer);
			q_finish(q, DNS_ERR_REFUSED, qt, 0, NULL, 0);
			return;
		}
	}
	emit_dns(q, q->name, true, sb->policy.mode == EGRESS_OPEN ? "open mode" : "allowlist",
		 answer);
	q_finish(q, DNS_ERR_NONE, qt, count, addrs, ttl < 0 ? 0 : ttl > TTL_MAX ? TTL_MAX : ttl);
}

/* Decide on one question; answers at once or asks upstream. Takes q. */
static void q_decide(struct dnsq *q, int qclass)
{
	struct sandbox *sb = q->sb;
	const char *reason;
	char shown[256];
	struct secret *x;
	sb->st.dns_queries++;
	snprintf(shown, sizeof shown, "%s", q->qname);
	if ((x = secret_find_dns(sb->secrets, q->qname))) {
		emit_dns(q, shown, false, "secret placeholder", NULL);
		egress_secret_blocked(sb, x, shown, "dns");
		q_finish(q, DNS_ERR_REFUSED, 0, 0, NULL, 0);
		return;
	}
	if (egress_name_normalize(q->qname, q->name, sizeof q->name) < 0) {
		emit_dns(q, shown, false, "invalid name", NULL);
		q_finish(q, DNS_ERR_NOTEXIST, 0, 0, NULL, 0);
		return;
	}
	if (egress_policy_check(&sb->policy, q->name, &reason) != EGRESS_ALLOW) {
		emit_dns(q, q->name, false, reason, NULL);
		q_finish(q, DNS_ERR_NOTEXIST, 0, 0, NULL, 0);
		return;
	}
	if (qclass != 1 || (q->qtype != EVDNS_TYPE_A && q->qtype != EVDNS_TYPE_AAAA)) {
		emit_dns(q, q->name, false, "query type not served", NULL);
		q_finish(q, DNS_ERR_NOTIMPL, 0, 0, NULL, 0);
		return;
	}
	if (sb->n_inflight >= EGRESS_DNS_INFLIGHT) {
		egress_limited(sb, "dns");
		q_finish(q, DNS_ERR_SERVERFAILED, 0, 0, NULL, 0);
		return;
	}
	sb->n_inflight++;
	if (q->qtype == EVDNS_TYPE_A)
		q->creq = evdns_base_resolve_ipv4(sb->eg->dns, q->name, DNS_QUERY_NO_SEARCH,
						  upstream_cb, q);
	else
		q->creq = evdns_base_resolve_ipv6(sb->eg->dns, q->name, DNS_QUERY_NO_SEARCH,
						  upstream_cb, q);
	if (!q->creq) {
		sb->n_inflight--;
		emit_dns(q, q->name, false, "upstream: cannot send", NULL);
		q_finish(q, DNS_ERR_SERVERFAILED, 0, 0, NULL, 0);
	}
}

static struct dnsq *q_new(struct sandbox *sb)
{
	struct dnsq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->sb = sb;
	sb->refs++;
	q->next = sb->queries;
	if (q->next)
		q->next->prev = q;
	sb->queries = q;
	return q;
}

static void udp_cb(struct evdns_server_request *req, void *arg)
{
	struct sandbox *sb = arg;
	struct dnsq *q;
	if (req->nquestions != 1) {
		evdns_server_request_respond(req, DNS_ERR_FORMAT);
		return;
	}
	if (!(q = q_new(sb))) {
		evdns_server_request_drop(req);
		return;
	}
	q->sreq = req;
	q->qtype = req->questions[0]->type;
	snprintf(q->qname, sizeof q->qname, "%s", req->questions[0]->name);
	if (strlen(req->questions[0]->name) >= sizeof q->qname)
		q->qname[0] = '\0'; /* too long: invalid */
	q_decide(q, req->questions[0]->dns_question_class);
}

/* --- DNS over TCP --- */

static void tcp_close(struct tcpdns *t)
{
	struct sandbox *sb = t->sb;
	if (t->q)
		t->q->tcp = NULL;
	if (t->prev)
		t->prev->next = t->next;
	else
		sb->tcpdns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	bufferevent_free(t->bev);
	sb->n_dns_tcp--;
	sb->eg->n_conns--;
	free(t);
	egress_sandbox_unref(sb);
}

int egress_dns_question(const uint8_t *msg, size_t len, char *name, size_t namecap, int *qtype,
			int *qclass, size_t *qend)
{
	size_t o = 12, n = 0;
	if (len < 12 || namecap < 256)
		return DNS_ERR_FORMAT;
	uint16_t flags = (uint16_t)(msg[2] << 8 | msg[3]);
	if (flags & 0x8000)
		return DNS_ERR_FORMAT;
	if ((flags >> 11) & 0xf)
		return DNS_ERR_NOTIMPL;
	if (msg[4] != 0 || msg[5] != 1)
		return DNS_ERR_FORMAT;
	for (;;) {
		if (o >= len)
			return DNS_ERR_FORMAT;
		size_t l = msg[o++];
		if (l == 0)
			break;
		if (l > 63 || o + l > len || n + l + 1 >= namecap || o - 12 + l > 255)
			return DNS_ERR_FORMAT;
		if (n)
			name[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[o + i];
			/* keep the text unambiguous; the policy rejects it later */
			name[n++] = (c == '.' || c < 0x21 || c > 0x7e) ? '?' : (char)c;
		}
		o += l;
	}
	name[n] = '\0';
	if (o + 4 > len)
		return DNS_ERR_FORMAT;
	*qtype = msg[o] << 8 | msg[o + 1];
	*qclass = msg[o + 2] << 8 | msg[o + 3];
	*qend = o + 4;
	return 0;
}

static void tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct tcpdns *t = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t lp[2];
	int qtype, qclass, rc;
	if (evbuffer_get_length(in) < 2)
		return;
	evbuffer_copyout(in, lp, 2);
	size_t mlen = (size_t)lp[0] << 8 | lp[1];
	if (mlen < 12 || mlen > sizeof t->msg) {
		tcp_close(t);
		return;
	}
	if (evbuffer_get_length(in) < 2 + mlen)
		return;
	evbuffer_drain(in, 2);
	evbuffer_remove(in, t->msg, mlen);
	bufferevent_disable(bev, EV_READ); /* one query per connection */
	struct dnsq *q = q_new(t->sb);
	if (!q) {
		tcp_close(t);
		return;
	}
	q->tcp = t;
	t->q = q;
	rc = egress_dns_question(t->msg, mlen, q->qname, sizeof q->qname, &qtype, &qclass, &t->qend);
	if (rc != 0) {
		if (t->qend < 12)
			t->qend = 12; /* answer with an empty question section */
		q_finish(q, rc, 0, 0, NULL, 0);
		return;
	}
	q->qtype = qtype;
	q_decide(q, qclass);
}

static void tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct tcpdns *t = arg;
	/* Reading is off once a query is in: the answer is out, done. */
	if (!t->q && !(bufferevent_get_enabled(bev) & EV_READ))
		tcp_close(t);
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	tcp_close(arg); /* EOF, error or timeout */
}

static void tcp_accept(struct sandbox *sb, int fd)
{
	struct tcpdns *t = calloc(1, sizeof *t);
	struct timeval tv = { EGRESS_HEAD_TIMEOUT, 0 };
	if (!t) {
		close(fd);
		return;
	}
	t->bev = bufferevent_socket_new(sb->eg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!t->bev) {
		close(fd);
		free(t);
		return;
	}
	t->sb = sb;
	sb->refs++;
	sb->n_dns_tcp++;
	sb->eg->n_conns++;
	t->qend = 12;
	t->next = sb->tcpdns;
	if (t->next)
		t->next->prev = t;
	sb->tcpdns = t;
	bufferevent_setcb(t->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, t);
	bufferevent_setwatermark(t->bev, EV_READ, 0, 2 + EGRESS_DNS_TCP_MAX);
	bufferevent_set_timeouts(t->bev, &tv, &tv);
	bufferevent_enable(t->bev, EV_READ);
}

static void tcp_listen_cb(evutil_socket_t fd, short what, void *arg)
{
	egress_accept(arg, fd, tcp_accept);
}

int egress_dns_serve(struct sandbox *sb, int udp_fd, int tcp_fd, struct pd_err *err)
{
	if (udp_fd >= 0) {
		sb->dns_port = evdns_add_server_port_with_base(sb->eg->base, udp_fd, 0, udp_cb, sb);
		if (!sb->dns_port) {
			close(udp_fd);
			return pd_err_set(err, ENOMEM, LAYER, "cannot serve DNS for %s", sb->name);
		}
	}
	if (tcp_fd >= 0) {
		if (listen(tcp_fd, SOMAXCONN) < 0)
			return pd_err_errno(err, LAYER, "DNS/TCP listener of %s", sb->name);
		sb->listen_ev[EGRESS_DNS_TCP] =
			event_new(sb->eg->base, tcp_fd, EV_READ | EV_PERSIST, tcp_listen_cb, sb);
		if (!sb->listen_ev[EGRESS_DNS_TCP] || event_add(sb->listen_ev[EGRESS_DNS_TCP], NULL) < 0)
			return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	}
	return 0;
}

void egress_dns_stop(struct sandbox *sb)
{
	/* Answers still coming from upstream go nowhere: detach the askers,
	 * cancel the upstream queries (their callbacks free the questions). */
	for (struct dnsq *q = sb->queries; q; q = q->next) {
		if (q->sreq) {
			evdns_server_request_drop(q->sreq);
			q->sreq = NULL;
		}
		if (q->creq)
			evdns_cancel_request(sb->eg->dns, q->creq);
	}
	while (sb->tcpdns)
		tcp_close(sb->tcpdns);
	if (sb->dns_port)
		evdns_close_server_port(sb->dns_port);
	sb->dns_port = NULL;
}
