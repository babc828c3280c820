/* netns.h: host-side network plumbing for a sandbox in network mode filtered/open.
 *
 * pd_netns_create() makes a network namespace owned by the caller's (init) user
 * namespace, so root inside a sandbox's own user namespace cannot change its routes,
 * addresses or firewall. It is joined to the caller's netns by a veth pair:
 *
 *   caller's netns (host)                       sandbox netns
 *   host_if "pd<index>-<id>"  gw/prefix  <--->  eth0  sb/prefix, default via gw
 *
 * IPv6 is disabled on both ends. nftables rules in the table `inet paddock` (one
 * per host, owned by paddock, removed with the last sandbox) let the sandbox reach
 * only gw:53 (udp, tcp) and gw:{proxy_port, transparent_port} (tcp); TCP 80/443 to
 * any address is DNATed to gw:transparent_port; everything else from the sandbox,
 * and anything routed to or from it, is dropped.
 *
 * The caller joins the namespace with setns(n->fd, CLONE_NEWNET) before it clones
 * the sandbox; the fd alone keeps the namespace alive (no bind mount in
 * /run/netns), so a killed paddock leaks at most the host end of the veth (while
 * sandbox processes still hold the netns) and its nft chains: pd_netns_gc()
 * removes those.
 *
 * Allocation and creation are serialised between paddock processes by an flock
 * on /run/paddock/netns.lock. All functions act on the calling thread's netns as
 * "the host" and need CAP_NET_ADMIN there (root). Errors: layer "network". */
#ifndef PADDOCK_EGRESS_NETNS_H
#define PADDOCK_EGRESS_NETNS_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define PD_NETNS_LOCK_PATH "/run/paddock/netns.lock"
#define PD_NETNS_DEFAULT_RANGE "10.231.0.0/16"
#define PD_NETNS_NFT_TABLE "paddock"   /* family inet */
#define PD_NETNS_IF_PREFIX "pd"
#define PD_NETNS_ALIAS_PREFIX "paddock:" /* IFLA_IFALIAS "paddock:<pid>:<starttime>:<gw>" */

struct pd_netns_opts {
	const char *range;          /* IPv4 range to allocate from; NULL: "10.231.0.0/16" */
	unsigned prefix;            /* 30 (default when 0) or 31: size of each pair */
	uint16_t proxy_port;        /* explicit proxy; 0: 3128 */
	uint16_t transparent_port;  /* transparent proxy (80/443 land here); 0: 3129 */
};

struct pd_netns {
	int fd;                     /* the netns (O_CLOEXEC), -1 once destroyed */
	char host_if[16];           /* host end, in the caller's netns */
	char sb_if[16];             /* sandbox end: "eth0" */
	struct in_addr gw, sb;      /* gateway (host end) and sandbox addresses */
	unsigned prefix;            /* 30 or 31 */
	uint32_t index;             /* which block of the range */
	uint16_t proxy_port, transparent_port;
};

/* Create the netns, veth pair, addresses, routes and nft rules for sandbox `id`
 * ([a-z0-9-]{1,40}, unique among running sandboxes; used for the interface name).
 * o may be NULL for defaults. On success fills *out and returns 0; on failure
 * nothing is left behind, *out is untouched and a negative errno is returned:
 * -EINVAL bad id/options, -ENOSPC range exhausted, -EADDRINUSE every block of the
 * range collides with a host route or address, others from the kernel. */
int pd_netns_create(const char *id, const struct pd_netns_opts *o, struct pd_netns *out,
		    struct pd_err *err);

/* Remove the veth pair (the sandbox side goes with it), the sandbox's nft chains
 * and map entries, the table if no other sandbox uses it, and close n->fd (always;
 * it is -1 afterwards). n must come from a successful pd_netns_create(). Safe to
 * call again after success (a no-op) or after a failure (retries the host side),
 * and on a half-dead sandbox (missing pieces are skipped). */
int pd_netns_destroy(struct pd_netns *n, struct pd_err *err);

/* Make the sandbox's pid 1 the owner named in the veth's alias (gc keeps the
 * plumbing while it lives). */
int pd_netns_set_owner(const struct pd_netns *n, pid_t pid, struct pd_err *err);
/* The plumbing of the running sandbox whose pid 1 is pid (set_owner named
 * it), with a new fd of its netns: for a restarted daemon. /30 pairs and
 * the default ports only. -ENOENT when there is none. */
int pd_netns_adopt(pid_t pid, struct pd_netns *out, struct pd_err *err);

/* Remove leftovers of crashed paddocks in the caller's netns: pd* veths whose
 * alias names an owner process that is gone (pid + start time), nft chains and
 * map entries for interfaces that are not live paddock veths, and the table when
 * no sandbox is left. Best effort: returns the number of veths plus per-sandbox
 * rule sets removed, or a negative errno (err filled) if it could not look. */
int pd_netns_gc(struct pd_err *err);

/* Create the gateway's listening sockets in the caller's netns, bound to n->gw:
 * 53/udp, 53/tcp, proxy_port/tcp, transparent_port/tcp; non-blocking, O_CLOEXEC,
 * ready to hand to the unprivileged gateway. Any pointer may be NULL to skip that
 * socket. All-or-nothing: on failure no fd is left open and the outputs are
 * untouched. The transparent socket's accepted connections carry their original
 * destination in getsockopt(SOL_IP, SO_ORIGINAL_DST). */
int pd_netns_listen(const struct pd_netns *n, int *dns_udp, int *dns_tcp, int *proxy,
		    int *transparent, struct pd_err *err);

#endif
