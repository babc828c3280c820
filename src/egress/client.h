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
 * PADDOCK_DNS_UPSTREAM when set). */
int pd_egress_spawn(const char *dns_upstream, struct pd_egress *out, struct pd_err *err);
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
