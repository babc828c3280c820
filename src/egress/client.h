/* client.h: the privileged side's handle on paddock-egress (protocol in
 * egress.h). The daemon keeps one gateway for all its sandboxes; `paddock
 * run` starts one for its sandbox. Together with netns.h this is everything
 * a caller does for network mode filtered/open:
 *
 *   pd_net_up:   netns + veth + nft (netns.c), the gateway's sockets bound
 *                on the host side, handed to the gateway with the policy
 *   (the caller starts the sandbox in net->ns.fd, then pd_net_owner)
 *   pd_net_down: the gateway forgets the sandbox, the plumbing goes */
#ifndef PADDOCK_EGRESS_CLIENT_H
#define PADDOCK_EGRESS_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/wipe.h"
#include "egress/netns.h"
#include "spec/spec.h"

struct pd_egress {
	pid_t pid;
	int sock; /* SOCK_SEQPACKET to the gateway */
	/* events that arrived while waiting for a reply go here (may be NULL) */
	void (*on_event)(json_t *ev, void *ctx);
	void *ctx;
};

/* Start paddock-egress (PADDOCK_EGRESS, else next to /proc/self/exe) with
 * --control-fd; dns_upstream NULL: the host's resolver (or the variable
 * PADDOCK_DNS_UPSTREAM when set); upstream_ca NULL: the host's trust store
 * for intercepted connections (or PADDOCK_UPSTREAM_CA when set: a test CA). */
int pd_egress_spawn(const char *dns_upstream, const char *upstream_ca, struct pd_egress *out,
		    struct pd_err *err);
/* Close the channel (the gateway exits) and reap it. */
void pd_egress_stop(struct pd_egress *eg);
/* One request, its reply. The fds (n of them) are sent along and closed. */
int pd_egress_call(struct pd_egress *eg, json_t *req, const int *fds, size_t n, json_t **reply,
		   struct pd_err *err);
/* Read one unsolicited message without blocking: 1 and *ev set, 0 when
 * none is waiting, or a negative errno (the gateway is gone). */
int pd_egress_read_event(struct pd_egress *eg, json_t **ev);

/* The policy of a spec: mode, network.allow plus what its agents need,
 * network.deny. */
json_t *pd_net_policy(const struct spec *s, const char *sandbox);

struct pd_net {
	struct pd_netns ns;
	char name[64];
	bool added; /* the gateway serves it */
};
/* Plumbing for sandbox `name` (id for the interface) with s's policy. */
int pd_net_up(struct pd_egress *eg, const char *name, const struct spec *s, struct pd_net *out,
	      struct pd_err *err);
/* The same for a running sandbox found again after a restart. */
int pd_net_adopt(struct pd_egress *eg, const char *name, pid_t pid1, const struct spec *s,
		 struct pd_net *out, struct pd_err *err);
/* Change the policy of a served sandbox. */
int pd_net_policy_set(struct pd_egress *eg, const char *name, const struct spec *s,
		      struct pd_err *err);
/* The sandbox's pid 1 owns the plumbing from now on. */
int pd_net_owner(struct pd_net *n, pid_t pid1, struct pd_err *err);
void pd_net_down(struct pd_egress *eg, struct pd_net *n);
/* "nameserver <gw>\n" and the proxy variables for the sandbox. */
void pd_net_resolv_conf(const struct pd_net *n, char *buf, size_t len);
/* Add HTTP(S)_PROXY, http(s)_proxy, NO_PROXY, no_proxy to env (replacing). */
int pd_net_env(const struct pd_net *n, char ***env);

#endif

/* Secrets (paddock.yaml secrets:). Values are read on the host from their
 * source when a sandbox starts, handed to the gateway and wiped; the sandbox
 * only ever sees the placeholders. */
struct pd_secret_val {
	char *name;
	char placeholder[48]; /* "paddock-secret-" + 32 hex digits */
	char *value;          /* wiped by pd_secrets_wipe */
	size_t len;
	char **hosts;         /* borrowed from the spec */
};
struct pd_secrets {
	struct pd_secret_val *v;
	size_t n;
};
/* Read every secret of the spec from its source: "env" (the variable of the
 * same name in our environment), "file:PATH", "cmd:COMMAND" (run with
 * /bin/sh -c; its stdout). A trailing newline is dropped; at most 64 KiB.
 * values: "NAME" -> "value" given by a client instead (may be NULL). */
int pd_secrets_read(const struct spec *s, json_t *values, struct pd_secrets *out,
		    struct pd_err *err);
/* Keep the placeholders of `prev` ("NAME" -> "paddock-secret-...") instead
 * of new ones (a rotation: running commands hold the old ones). */
void pd_secrets_keep_placeholders(struct pd_secrets *sec, json_t *prev);
/* "NAME" -> placeholder, for pd_secrets_keep_placeholders. */
json_t *pd_secrets_placeholders(const struct pd_secrets *sec);
void pd_secrets_wipe(struct pd_secrets *sec);
/* NAME=placeholder for each secret, into env (replacing). */
int pd_secrets_env(const struct pd_secrets *sec, char ***env);
/* Give them to the gateway for sandbox `name`; *ca_pem (malloc'd) receives
 * the sandbox's certificate authority. */
int pd_net_secrets(struct pd_egress *eg, const char *name, const struct pd_secrets *sec,
		   char **ca_pem, struct pd_err *err);
/* The variables that make common clients trust the sandbox's CA. */
int pd_net_ca_env(char ***env);
/* From now on, every block jansson frees is wiped first (secret values
 * travel through JSON). Call once at start. */
void pd_json_wipe_on_free(void);
/* free() that zeroes the block first. */
void pd_wipe_free(void *p);
/* The same for libevent's allocations (call before any libevent use). */
void pd_event_wipe_on_free(void);
