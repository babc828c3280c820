/* egress.h: paddock-egress, the gateway between sandboxes and the network.
 *
 * One process serves every sandbox on one libevent loop. For each sandbox
 * it holds four listening sockets, bound by the daemon to that sandbox's
 * gateway address: DNS over UDP and TCP (port 53), the explicit HTTP proxy
 * (3128) and the transparent proxy (3129, where nftables redirects TCP 80
 * and 443). The listener a connection arrives on names the sandbox.
 *
 * CONTROL PROTOCOL (daemon mode: `paddock-egress --control-fd N`)
 *
 * N is an AF_UNIX SOCK_SEQPACKET socket. Each message is one JSON object of
 * at most EGRESS_CTL_MAX bytes; file descriptors ride along with SCM_RIGHTS.
 * EOF on N makes the gateway exit. Requests (daemon -> egress), each
 * answered in order by {"ok":true,...} or {"ok":false,"error":"..."}:
 *
 *   {"op":"add","sandbox":NAME,"mode":"filtered"|"open","allow":[PAT..],
 *    "deny":[PAT..]}
 *       with exactly 4 fds, in this order: DNS UDP socket, DNS TCP
 *       listener, explicit proxy listener, transparent proxy listener.
 *       NAME is 1-63 of [A-Za-z0-9_.-]; PAT is a host name or "*.suffix".
 *       The fds are owned by the gateway from then on, also on failure.
 *   {"op":"policy","sandbox":NAME,"mode":..,"allow":[..],"deny":[..]}
 *       replace the sandbox's policy; applies to new queries and
 *       connections (open connections were already decided).
 *   {"op":"remove","sandbox":NAME}
 *       close the sandbox's listeners and every connection it has.
 *   {"op":"stats","sandbox":NAME}
 *       -> {"ok":true,"sandbox":..,"connections":N,"dns_inflight":N,
 *           "dns_queries":N,"connects_allowed":N,"connects_denied":N,
 *           "bytes_up":N,"bytes_down":N,"limited":N,"events_dropped":N}
 *
 * Secrets (secrets.c, mitm.c: the values never enter the sandbox):
 *
 *   {"op":"secrets","sandbox":NAME,"secrets":[SECRET..]}
 *       SECRET = {"name":"ANTHROPIC_API_KEY",
 *                 "placeholder":"paddock-secret-<32 lower-case hex digits>",
 *                 "value":"<the real value>","hosts":["api.anthropic.com",..]}
 *       replaces the sandbox's whole set (rotation: send it again; []
 *       clears it); applies to new requests, also on open connections.
 *       name: [A-Za-z_][A-Za-z0-9_]*, at most 128; value: 1..8192 visible
 *       ASCII characters, space or tab (it goes into header values); hosts:
 *       1..64 names or "*.suffix"; at most 64 secrets, names and
 *       placeholders unique. The daemon makes the placeholders (random,
 *       per sandbox and secret) and reads the values; the gateway keeps the
 *       values in locked memory, never logs them, wipes them when replaced
 *       or removed. Counters (below) carry over by name.
 *       -> {"ok":true,"ca_pem":"-----BEGIN CERTIFICATE-----\n..."} when the
 *       set is not empty (or a CA exists already): the sandbox's CA, made
 *       on the first non-empty set and the same until the sandbox is
 *       removed or the gateway restarts (then the daemon installs the new
 *       one: system store, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, ...).
 *       {"ok":true} otherwise.
 *   "add" takes an optional "secrets":[SECRET..] too, and then answers
 *       {"ok":true,"ca_pem":..}; a bad set fails the whole add.
 *   {"op":"secrets-stats","sandbox":NAME}
 *       -> {"ok":true,"sandbox":..,"secrets":[{"name":..,"hosts":[..],
 *           "injections":N,"blocked":N},..]}   (never a value)
 *
 * Upstream TLS of intercepted connections trusts EGRESS_TRUST_STORE, or
 * only the PEM file of the command-line flag --upstream-ca FILE (both
 * modes; for tests).
 *
 * A message that is not a JSON object, an unknown op, a wrong number of
 * fds or a bad field is refused with {"ok":false}; the fds are closed.
 *
 * Events (egress -> daemon, unsolicited, on the same socket; one JSON
 * object per message; written to --events as JSON lines in standalone mode):
 *
 *   {"event":"dns","sandbox":..,"name":..,"qtype":"A"|"AAAA"|"TXT"|"TYPE<n>",
 *    "verdict":"allow"|"deny","reason":..,"answer":["203.0.113.10",..]}
 *       every DNS question. reason: "allowlist", "open mode", "denylist",
 *       "not in allowlist", "invalid name", "query type not served",
 *       "rebinding: <addr> is <why>", "upstream: <error>", "limit",
 *       "secret placeholder" (answered REFUSED).
 *   {"event":"connect","sandbox":..,"name":..,"addr":..,"port":N,
 *    "via":"connect"|"http"|"transparent-tls"|"transparent-http",
 *    "verdict":"allow"|"deny","reason":..,"bytes_up":N,"bytes_down":N,"ms":N}
 *       every proxied connection: allowed ones when they close, refused
 *       ones when refused. On plain HTTP every request is checked: a later
 *       request on the connection for another host is refused (421) with
 *       its own deny event (addr null, no bytes). name may be null (no name could be read), addr
 *       null when nothing was resolved.
 *       TLS to a host in a secret's hosts is intercepted: the event then
 *       also has "intercept":true and, when the interception failed (the
 *       client does not trust the CA, the upstream's certificate did not
 *       verify, a request was refused), "intercept_error":"...".
 *   {"event":"inject","sandbox":..,"secret":NAME,"host":..}
 *       a secret's value was put into a request: once per connection and
 *       secret (its first request); secrets-stats counts every one.
 *   {"event":"exfiltration","sandbox":..,"secret":NAME,"host":..,
 *    "where":"header"|"url"|"body"|"dns"}
 *       a placeholder bound for a host not in its secret's hosts (or, for a
 *       DNS question, any name carrying it) was refused: 403 naming the
 *       secret and the host, or REFUSED. One per refused request/question.
 *   {"event":"limit","sandbox":..,"what":"connections"|"dns","refused":N}
 *       at most once a second per sandbox while a limit turns work away;
 *       refused counts since the previous one. (Logging each refusal would
 *       let a flood flood the audit log too.)
 *
 * If the daemon does not read, events beyond EGRESS_CTL_QUEUE queued
 * messages are dropped and counted (stats: events_dropped), and requests
 * are not read until the queue drains.
 *
 * STANDALONE MODE (tests, benchmarks): main.c binds the sockets itself and
 * calls egress_sandbox_add, the same path as "add". */
#ifndef PADDOCK_EGRESS_H
#define PADDOCK_EGRESS_H

#include <stdio.h>

#include "common/err.h"
#include "egress/policy.h"

struct event_base;
struct egress;
struct secret_set;

/* Limits. Each is per connection unless it says otherwise. */
#define EGRESS_CTL_MAX 65536          /* bytes in one control message */
#define EGRESS_CTL_QUEUE 4096         /* outgoing control messages queued */
#define EGRESS_HEAD_TIMEOUT 10        /* s to send a complete request head / ClientHello */
#define EGRESS_CONNECT_TIMEOUT 10     /* s to resolve and connect upstream */
#define EGRESS_IDLE_TIMEOUT 300       /* s without a byte either way */
#define EGRESS_CONNS_PER_SANDBOX 1024 /* proxy + DNS/TCP connections of one sandbox */
#define EGRESS_DNS_INFLIGHT 256       /* upstream DNS queries of one sandbox */
#define EGRESS_ACCEPT_BURST 64        /* accepts per listener per loop turn, for fairness */
#define EGRESS_FDS_PER_CONN 6         /* client, upstream, two pipes */
#define EGRESS_FD_RESERVE 256         /* fds kept for listeners, control, DNS */
#define EGRESS_DNS_TCP_MAX 1024       /* bytes of one DNS-over-TCP query */
#define EGRESS_SANDBOXES_MAX 4096
#define EGRESS_HOSTADDR_REFRESH 10    /* s between re-reads of the host's addresses */
#define EGRESS_CA_DAYS 825            /* validity of a sandbox's CA */
#define EGRESS_TRUST_STORE "/etc/ssl/certs/ca-certificates.crt" /* upstream TLS */

enum egress_listener { EGRESS_DNS_UDP, EGRESS_DNS_TCP, EGRESS_PROXY, EGRESS_TRANSPARENT,
		       EGRESS_N_LISTENERS };

struct egress_config {
	const char *dns_upstream; /* "ADDR" or "ADDR:PORT" / "[V6]:PORT" */
	FILE *events;             /* JSON lines; may be NULL */
	int control_fd;           /* SEQPACKET to the daemon, or -1 */
	const char *upstream_ca;  /* PEM file: the only CAs trusted for upstream TLS
				   * of intercepted connections (tests); NULL:
				   * EGRESS_TRUST_STORE */
};

/* Create the gateway on base. Raises RLIMIT_NOFILE to its hard limit and
 * sizes the global connection budget from it. */
int egress_new(struct event_base *base, const struct egress_config *cfg, struct egress **out,
	       struct pd_err *err);
void egress_free(struct egress *eg);

/* Start serving a sandbox on fds (indexed by enum egress_listener; -1 for
 * one not served). On success the policy is moved into the gateway
 * (*policy is zeroed); on failure the caller still owns it. The fds are
 * owned by the gateway in every case. */
int egress_sandbox_add(struct egress *eg, const char *name, struct egress_policy *policy,
		       int fds[EGRESS_N_LISTENERS], struct pd_err *err);
int egress_sandbox_set_policy(struct egress *eg, const char *name, struct egress_policy *policy,
			      struct pd_err *err);
int egress_sandbox_remove(struct egress *eg, const char *name, struct pd_err *err);
/* Replace the sandbox's secrets with *set (moved in and NULLed on success;
 * NULL or empty: none). A non-empty set makes the sandbox's CA if it has
 * none; *ca_pem (if non-NULL) is then its certificate in PEM, owned by the
 * gateway. The old values are wiped. Applies to new requests. */
int egress_sandbox_set_secrets(struct egress *eg, const char *name, struct secret_set **set,
			       const char **ca_pem, struct pd_err *err);

/* Parse "ADDR[:PORT]" / "[V6][:PORT]" into sa, default port dport. */
int egress_parse_sockaddr(const char *s, unsigned dport, struct sockaddr_storage *sa,
			  struct pd_err *err);
/* The first nameserver of a resolv.conf, as "ADDR" (buf, len). */
int egress_resolv_conf_upstream(const char *path, char *buf, size_t len, struct pd_err *err);

/* Drop to uid/gid (when running as root), set no_new_privs, then Landlock
 * (no filesystem access) and seccomp. *warning is set (static string) when
 * a layer is unavailable on this kernel. */
int egress_confine(unsigned uid, unsigned gid, const char **warning, struct pd_err *err);

#endif
