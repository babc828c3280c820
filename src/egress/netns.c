/* netns.c: the sandbox's network namespace, its veth pair and the nft rules on the
 * host end. See netns.h for the contract.
 *
 * Netlink: the few rtnetlink messages needed here (veth with the peer created in
 * the new netns, alias, address, link up, default route, delete, three dumps) are
 * written by hand over a raw NETLINK_ROUTE socket rather than with libmnl: libmnl
 * would be one more build dependency for ~150 lines of framing, and the attribute
 * layout used is fixed by the kernel ABI (linux/rtnetlink.h, linux/veth.h).
 *
 * nftables: through libnftables, one atomic batch per change. Layout of the table:
 *
 *   table inet paddock
 *     set sb_if   { type ifname }               every sandbox host interface
 *     map sb_pre  { ifname : verdict }          X : jump pre_X
 *     map sb_in   { ifname : verdict }          X : jump in_X
 *     map sb_nat  { ifname : verdict }          X : jump nat_X
 *     chain early      (filter, prerouting, raw)    iifname vmap @sb_pre; iifname @sb_if drop
 *     chain prerouting (nat, prerouting, dstnat)    iifname vmap @sb_nat
 *     chain input      (filter, input, filter)      iifname vmap @sb_in; iifname @sb_if drop
 *     chain forward    (filter, forward, filter)    iifname @sb_if drop; oifname @sb_if drop
 *     chain pre_X  accept ip gw:53 udp/tcp, gw:{proxy,transparent} tcp, tcp 80/443 (any
 *                  IPv4 address, DNATed next); drop
 *     chain nat_X  ipv4 tcp dport {80,443} dnat to gw:transparent
 *     chain in_X   accept ip gw:53 udp/tcp, gw:{proxy,transparent} tcp; drop
 *
 * The raw-priority chain drops everything else before conntrack or routing sees
 * it (no ICMP errors from the host, no conntrack entries for junk); input and
 * forward repeat the policy after NAT as a second line. One sandbox's rules are
 * added and removed exactly (its chains and its map elements), and a drop in any
 * base chain is final whatever other tables accept. */
#include "egress/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/cleanup.h"

#define LAYER "network"
#define NFT_FAMILY_TABLE "inet " PD_NETNS_NFT_TABLE

/* ------------------------------------------------------------------------- */
/* rtnetlink framing                                                          */

struct nlmsg {
	union {
		struct nlmsghdr h;
		char buf[1024];
	} u;
	bool overflow;
};

static void *nl_tail(struct nlmsg *m)
{
	return m->u.buf + NLMSG_ALIGN(m->u.h.nlmsg_len);
}

/* Start a request: header plus the family header (ifinfomsg, ifaddrmsg, rtmsg). */
static void nl_init(struct nlmsg *m, uint16_t type, uint16_t flags, const void *fam, size_t len)
{
	memset(m, 0, sizeof *m);
	m->u.h.nlmsg_len = NLMSG_LENGTH(len);
	m->u.h.nlmsg_type = type;
	m->u.h.nlmsg_flags = NLM_F_REQUEST | flags;
	memcpy(NLMSG_DATA(&m->u.h), fam, len);
}

/* Append raw bytes (aligned); sets overflow instead of writing past the buffer. */
static void nl_raw(struct nlmsg *m, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(m->u.h.nlmsg_len);
	if (at + NLMSG_ALIGN(len) > sizeof m->u.buf) {
		m->overflow = true;
		return;
	}
	memset(m->u.buf + at, 0, NLMSG_ALIGN(len));
	memcpy(m->u.buf + at, data, len);
	m->u.h.nlmsg_len = at + len;
}

static void nl_put(struct nlmsg *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr rta = {.rta_len = RTA_LENGTH(len), .rta_type = type};
	size_t at = NLMSG_ALIGN(m->u.h.nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof m->u.buf) {
		m->overflow = true;
		return;
	}
	memcpy(m->u.buf + at, &rta, sizeof rta);
	memset(m->u.buf + at + RTA_LENGTH(0), 0, RTA_SPACE(len) - RTA_LENGTH(0));
	if (len)
		memcpy(m->u.buf + at + RTA_LENGTH(0), data, len);
	m->u.h.nlmsg_len = at + RTA_LENGTH(len);
}

static void nl_put_str(struct nlmsg *m, uint16_t type, const char *s)
{
	nl_put(m, type, s, strlen(s) + 1);
}

static void nl_put_u32(struct nlmsg *m, uint16_t type, uint32_t v)
{
	nl_put(m, type, &v, sizeof v);
}

static struct rtattr *nl_nest_begin(struct nlmsg *m, uint16_t type)
{
	struct rtattr *nest = nl_tail(m);
	nl_put(m, type, NULL, 0);
	return m->overflow ? NULL : nest;
}

static void nl_nest_end(struct nlmsg *m, struct rtattr *nest)
{
	if (nest)
		nest->rta_len = (char *)nl_tail(m) - (char *)nest;
}

/* A NETLINK_ROUTE socket in the calling thread's netns, with extended acks (the
 * kernel's own error text) and capped acks (no echo of our request). */
static int nl_open(struct pd_err *err)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return pd_err_errno(err, LAYER, "netlink socket");
	int one = 1;
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
	return fd;
}

typedef int (*nl_cb)(const struct nlmsghdr *h, void *arg);

/* Copy the kernel's extended-ack message (if any) of an NLMSG_ERROR into ext. */
static void nl_extack(const struct nlmsghdr *h, char *ext, size_t extlen)
{
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS) || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return;
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off = h->nlmsg_flags & NLM_F_CAPPED ? sizeof *e : sizeof(int) + e->msg.nlmsg_len;
	const char *p = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(off);
	const char *end = (const char *)h + h->nlmsg_len;
	while (p + sizeof(struct rtattr) <= end) {
		const struct rtattr *a = (const struct rtattr *)p;
		if (a->rta_len < sizeof *a || p + a->rta_len > end)
			break;
		if (a->rta_type == NLMSGERR_ATTR_MSG && a->rta_len > RTA_LENGTH(0)) {
			snprintf(ext, extlen, " (%.*s)", (int)RTA_PAYLOAD(a), (const char *)RTA_DATA(a));
			return;
		}
		p += RTA_ALIGN(a->rta_len);
	}
}

/* Send m and read the answer: every data message goes to cb (may be NULL); ends at
 * the ack (non-dump requests always ask for one) or NLMSG_DONE. Returns 0 or the
 * kernel's negative errno, with its extended-ack text in ext (may be empty). */
static int nl_call(int fd, struct nlmsg *m, nl_cb cb, void *arg, char *ext, size_t extlen)
{
	static uint32_t seq_counter;
	ext[0] = '\0';
	if (m->overflow)
		return -EMSGSIZE;
	bool dump = (m->u.h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	if (!dump)
		m->u.h.nlmsg_flags |= NLM_F_ACK;
	uint32_t seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
	m->u.h.nlmsg_seq = seq;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, m->u.buf, m->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		return -errno;

	_cleanup_free_ char *buf = malloc(65536);
	if (!buf)
		return -ENOMEM;
	int cb_r = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, 65536, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE) {
				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
					int e = *(int *)NLMSG_DATA(h);
					if (e < 0)
						return e;
				}
				return cb_r;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
					return -EPROTO;
				if (e->error < 0) {
					nl_extack(h, ext, extlen);
					return e->error;
				}
				return cb_r;
			}
			if (cb && cb_r == 0)
				cb_r = cb(h, arg); /* keep reading to the end even after a failure */
		}
	}
}

/* Walk the attributes of a message body starting at off bytes into its payload. */
#define for_each_rta(h, off, a, left)                                                  \
	for (const struct rtattr *a = ((left) = (int)(h)->nlmsg_len -                      \
					       (int)NLMSG_LENGTH(NLMSG_ALIGN(off)),        \
				       (const struct rtattr *)((const char *)NLMSG_DATA(h) +  \
							       NLMSG_ALIGN(off)));            \
	     RTA_OK(a, left); a = RTA_NEXT(a, left))

/* ------------------------------------------------------------------------- */
/* links, addresses, routes                                                   */

struct link_info {
	int index;
	char name[IFNAMSIZ];
	char alias[256];
	char kind[16];
	/* parsed from alias when it is ours */
	bool ours;
	pid_t pid;
	unsigned long long start;
	struct in_addr gw;
};

struct link_list {
	struct link_info *v;
	size_t n, cap;
};

static int link_parse(const struct nlmsghdr *h, struct link_info *li)
{
	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return 0;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	memset(li, 0, sizeof *li);
	li->index = ifi->ifi_index;
	int left;
	for_each_rta(h, sizeof *ifi, a, left) {
		size_t len = RTA_PAYLOAD(a);
		if (a->rta_type == IFLA_IFNAME)
			snprintf(li->name, sizeof li->name, "%.*s", (int)len, (const char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_IFALIAS)
			snprintf(li->alias, sizeof li->alias, "%.*s", (int)len, (const char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_LINKINFO) {
			int l2 = (int)len;
			for (const struct rtattr *b = RTA_DATA(a); RTA_OK(b, l2); b = RTA_NEXT(b, l2))
				if (b->rta_type == IFLA_INFO_KIND)
					snprintf(li->kind, sizeof li->kind, "%.*s", (int)RTA_PAYLOAD(b),
						 (const char *)RTA_DATA(b));
		}
	}
	int pid, used = 0;
	unsigned long long start;
	char gw[16];
	if (strncmp(li->name, PD_NETNS_IF_PREFIX, strlen(PD_NETNS_IF_PREFIX)) == 0 &&
	    sscanf(li->alias, PD_NETNS_ALIAS_PREFIX "%d:%llu:%15[0-9.]%n", &pid, &start, gw, &used) == 3 &&
	    li->alias[used] == '\0' && pid > 0 && inet_pton(AF_INET, gw, &li->gw) == 1) {
		li->ours = true;
		li->pid = pid;
		li->start = start;
	}
	return 1;
}

static int link_list_cb(const struct nlmsghdr *h, void *arg)
{
	struct link_list *l = arg;
	struct link_info li;
	if (!link_parse(h, &li))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct link_info *v = reallocarray(l->v, cap, sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = li;
	return 0;
}

static void link_list_freep(struct link_list *l)
{
	free(l->v);
}

static int links_dump(int fd, struct link_list *out, struct pd_err *err)
{
	struct nlmsg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	char ext[256];
	nl_init(&m, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof ifi);
	int r = nl_call(fd, &m, link_list_cb, out, ext, sizeof ext);
	if (r < 0)
		return pd_err_set(err, -r, LAYER, "listing network interfaces%s", ext);
	return 0;
}

static const struct link_info *link_find_index(const struct link_list *l, int index)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].index == index)
			return &l->v[i];
	return NULL;
}

static const struct link_info *link_find_name(const struct link_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static int link_get_cb(const struct nlmsghdr *h, void *arg)
{
	link_parse(h, arg);
	return 0;
}

/* Look up one interface by name in fd's netns. -ENODEV if absent. */
static int link_get(int fd, const char *name, struct link_info *li)
{
	struct nlmsg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	char ext[256];
	nl_init(&m, RTM_GETLINK, 0, &ifi, sizeof ifi);
	nl_put_str(&m, IFLA_IFNAME, name);
	memset(li, 0, sizeof *li);
	int r = nl_call(fd, &m, link_get_cb, li, ext, sizeof ext);
	if (r < 0)
		return r;
	return li->index > 0 ? 0 : -ENODEV;
}

/* Create a veth pair: `name` in fd's netns, `peer` created directly inside the
 * netns `peer_nsfd` (it never exists on the host side). */
static int veth_create(int fd, const char *name, const char *peer, int peer_nsfd, struct pd_err *err)
{
	struct nlmsg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	char ext[256];
	nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	nl_put_str(&m, IFLA_IFNAME, name);
	struct rtattr *linkinfo = nl_nest_begin(&m, IFLA_LINKINFO);
	nl_put_str(&m, IFLA_INFO_KIND, "veth");
	struct rtattr *data = nl_nest_begin(&m, IFLA_INFO_DATA);
	struct rtattr *peerinfo = nl_nest_begin(&m, VETH_INFO_PEER);
	nl_raw(&m, &ifi, sizeof ifi);
	nl_put_str(&m, IFLA_IFNAME, peer);
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
	nl_nest_end(&m, peerinfo);
	nl_nest_end(&m, data);
	nl_nest_end(&m, linkinfo);
	int r = nl_call(fd, &m, NULL, NULL, ext, sizeof ext);
	if (r < 0) {
		pd_err_set(err, -r, LAYER, "creating veth pair %s/%s%s", name, peer, ext);
		if (r == -EOPNOTSUPP)
			pd_err_hint(err, "the kernel lacks veth support (CONFIG_VETH)");
		return r;
	}
	return 0;
}

/* Bring an interface up and/or set its alias (alias NULL: leave it). */
static int link_set(int fd, int index, bool up, const char *alias, char *ext, size_t extlen)
{
	struct nlmsg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
	if (up) {
		ifi.ifi_flags = IFF_UP;
		ifi.ifi_change = IFF_UP;
	}
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	if (alias)
		nl_put_str(&m, IFLA_IFALIAS, alias);
	return nl_call(fd, &m, NULL, NULL, ext, extlen);
}

static int link_del(int fd, int index, char *ext, size_t extlen)
{
	struct nlmsg m;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
	nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
	return nl_call(fd, &m, NULL, NULL, ext, extlen);
}

static int addr_add(int fd, int index, struct in_addr a, unsigned prefix, char *ext, size_t extlen)
{
	struct nlmsg m;
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = prefix,
				.ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = index};
	nl_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	nl_put(&m, IFA_LOCAL, &a, sizeof a);
	nl_put(&m, IFA_ADDRESS, &a, sizeof a);
	return nl_call(fd, &m, NULL, NULL, ext, extlen);
}

static int route_add_default(int fd, int index, struct in_addr gw, char *ext, size_t extlen)
{
	struct nlmsg m;
	struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
			    .rtm_type = RTN_UNICAST};
	nl_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof rtm);
	nl_put(&m, RTA_GATEWAY, &gw, sizeof gw);
	nl_put_u32(&m, RTA_OIF, (uint32_t)index);
	return nl_call(fd, &m, NULL, NULL, ext, extlen);
}

/* ------------------------------------------------------------------------- */
/* small helpers                                                              */

/* Write a value to a sysctl file of the calling thread's netns. A missing file
 * (no IPv6 in this kernel) is -ENOENT for the caller to judge. */
static int sysctl_write(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a process
 * (pid 0: this one): with the pid it names a process unambiguously. 0 if the
 * process is gone. Pids are those of the pid namespace /proc belongs to. */
static unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* comm (field 2) may hold spaces and parens */
	if (!p)
		return 0;
	p++; /* the space before field 3 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

/* Is the process a zombie (or dead) already? Its /proc entry and start
 * time outlive it until it is reaped, but it holds nothing any more. */
static bool proc_exited(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x';
}

static bool owner_alive(const struct link_info *li)
{
	return li->start != 0 && proc_starttime(li->pid) == li->start && !proc_exited(li->pid);
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool id_valid(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p; p++, n++)
		if (!name_char(*p) || n >= 40)
			return false;
	return n > 0;
}

/* An interface name we generated (and may paste into an nft command). */
static bool ifname_ours(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n >= IFNAMSIZ || strncmp(s, PD_NETNS_IF_PREFIX, strlen(PD_NETNS_IF_PREFIX)) != 0)
		return false;
	for (const char *p = s; *p; p++)
		if (!name_char(*p))
			return false;
	return true;
}

/* Parse "a.b.c.d/len" with no host bits set. */
static int range_parse(const char *s, uint32_t *base, unsigned *len)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof addr)
		return -EINVAL;
	memcpy(addr, s, slash - s);
	addr[slash - s] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long l = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || l > 32)
		return -EINVAL;
	uint32_t b = ntohl(a.s_addr);
	uint32_t mask = l ? ~0u << (32 - l) : 0;
	if (b & ~mask)
		return -EINVAL;
	*base = b;
	*len = (unsigned)l;
	return 0;
}

static const char *ip4_str(uint32_t host_order, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = {.s_addr = htonl(host_order)};
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* ------------------------------------------------------------------------- */
/* the lock                                                                   */

/* Take the exclusive lock that serialises allocation, creation, destruction and
 * gc between paddock processes. Returns the fd (release by closing it). */
static int lock_take(struct pd_err *err)
{
	if (mkdir("/run/paddock", 0755) < 0 && errno != EEXIST)
		return pd_err_errno(err, LAYER, "creating /run/paddock");
	int fd = open(PD_NETNS_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return pd_err_errno(err, LAYER, "opening %s", PD_NETNS_LOCK_PATH);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = pd_err_errno(err, LAYER, "locking %s", PD_NETNS_LOCK_PATH);
			close(fd);
			return r;
		}
	}
	return fd;
}

/* ------------------------------------------------------------------------- */
/* nftables                                                                   */

static void nft_ctx_freep(struct nft_ctx **c)
{
	if (*c)
		nft_ctx_free(*c);
}

/* Run an nft command buffer (one atomic transaction). With out non-NULL the
 * output is JSON and a copy is returned in *out (free it). */
static int nft_run(const char *cmds, char **out, const char *what, struct pd_err *err)
{
	__attribute__((cleanup(nft_ctx_freep))) struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return pd_err_set(err, ENOMEM, LAYER, "%s: nft_ctx_new failed", what);
	if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0)
		return pd_err_set(err, ENOMEM, LAYER, "%s: cannot buffer nft output", what);
	if (out)
		nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
	if (nft_run_cmd_from_buffer(ctx, cmds) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		char msg[512];
		snprintf(msg, sizeof msg, "%s", e && *e ? e : "unknown error");
		/* The buffer holds "Error: ...", the command, a caret line, per error:
		 * keep the first error line. */
		msg[strcspn(msg, "\n")] = '\0';
		int code = strstr(msg, "Operation not permitted") ? EPERM
			 : strstr(msg, "No such file") ? ENOENT : EIO;
		pd_err_set(err, code, LAYER, "%s: nft: %s", what, msg);
		if (code == EPERM)
			return pd_err_hint(err, "paddock needs root (CAP_NET_ADMIN) to manage its firewall table");
		return pd_err_hint(err, "`nft list table inet " PD_NETNS_NFT_TABLE "` shows the table; "
				   "if another program changed it, delete it and run paddock's gc");
	}
	if (out) {
		const char *o = nft_ctx_get_output_buffer(ctx);
		*out = strdup(o ? o : "");
		if (!*out)
			return pd_err_set(err, ENOMEM, LAYER, "%s: out of memory", what);
	}
	return 0;
}

/* Append formatted text to a fixed buffer; false once it no longer fits. */
static bool __attribute__((format(printf, 3, 4))) bufcat(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < size - len;
}

#define T NFT_FAMILY_TABLE

/* The table skeleton, idempotent: base chains are flushed and refilled in the same
 * transaction, so there is never a moment without them. */
static bool nft_skeleton(char *b, size_t size)
{
	return bufcat(b, size,
		      "add table " T "\n"
		      "add set " T " sb_if { type ifname; }\n"
		      "add map " T " sb_pre { type ifname : verdict; }\n"
		      "add map " T " sb_in { type ifname : verdict; }\n"
		      "add map " T " sb_nat { type ifname : verdict; }\n"
		      "add chain " T " early { type filter hook prerouting priority raw; policy accept; }\n"
		      "add chain " T " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
		      "add chain " T " input { type filter hook input priority filter; policy accept; }\n"
		      "add chain " T " forward { type filter hook forward priority filter; policy accept; }\n"
		      "flush chain " T " early\n"
		      "flush chain " T " prerouting\n"
		      "flush chain " T " input\n"
		      "flush chain " T " forward\n"
		      "add rule " T " early iifname vmap @sb_pre\n"
		      "add rule " T " early iifname @sb_if drop\n"
		      "add rule " T " prerouting iifname vmap @sb_nat\n"
		      "add rule " T " input iifname vmap @sb_in\n"
		      "add rule " T " input iifname @sb_if drop\n"
		      "add rule " T " forward iifname @sb_if drop\n"
		      "add rule " T " forward oifname @sb_if drop\n");
}

static int nft_add_sandbox(const struct pd_netns *n, struct pd_err *err)
{
	char cmds[4096] = "", gw[INET_ADDRSTRLEN];
	const char *x = n->host_if;
	inet_ntop(AF_INET, &n->gw, gw, sizeof gw);
	bool ok = nft_skeleton(cmds, sizeof cmds) &&
		bufcat(cmds, sizeof cmds,
		       "add chain " T " pre_%s\n"
		       "flush chain " T " pre_%s\n"
		       "add rule " T " pre_%s ip daddr %s udp dport 53 accept\n"
		       "add rule " T " pre_%s ip daddr %s tcp dport { 53, %u, %u } accept\n"
		       "add rule " T " pre_%s meta nfproto ipv4 tcp dport { 80, 443 } accept\n"
		       "add rule " T " pre_%s drop\n",
		       x, x, x, gw, x, gw, n->proxy_port, n->transparent_port, x, x) &&
		bufcat(cmds, sizeof cmds,
		       "add chain " T " nat_%s\n"
		       "flush chain " T " nat_%s\n"
		       "add rule " T " nat_%s meta nfproto ipv4 tcp dport { 80, 443 } dnat ip to %s:%u\n",
		       x, x, x, gw, n->transparent_port) &&
		bufcat(cmds, sizeof cmds,
		       "add chain " T " in_%s\n"
		       "flush chain " T " in_%s\n"
		       "add rule " T " in_%s ip daddr %s udp dport 53 accept\n"
		       "add rule " T " in_%s ip daddr %s tcp dport { 53, %u, %u } accept\n"
		       "add rule " T " in_%s drop\n",
		       x, x, x, gw, x, gw, n->proxy_port, n->transparent_port, x) &&
		bufcat(cmds, sizeof cmds,
		       "add element " T " sb_pre { \"%s\" : jump pre_%s }\n"
		       "add element " T " sb_nat { \"%s\" : jump nat_%s }\n"
		       "add element " T " sb_in { \"%s\" : jump in_%s }\n"
		       "add element " T " sb_if { \"%s\" }\n",
		       x, x, x, x, x, x, x);
	if (!ok)
		return pd_err_set(err, E2BIG, LAYER, "nft rules for %s: command too long", x);
	return nft_run(cmds, NULL, "adding firewall rules", err);
}

/* Remove one sandbox's chains and elements. nft 1.0.6 has no `destroy` (delete if
 * present), so each object is first added (a no-op when present) and then deleted,
 * in one transaction: exact, and fine when some are already gone. */
static int nft_del_sandbox(const char *x, struct pd_err *err)
{
	char cmds[4096] = "";
	bool ok = nft_skeleton(cmds, sizeof cmds) &&
		bufcat(cmds, sizeof cmds,
		       "add chain " T " pre_%s\n"
		       "add chain " T " nat_%s\n"
		       "add chain " T " in_%s\n"
		       "add element " T " sb_if { \"%s\" }\n"
		       "add element " T " sb_pre { \"%s\" : jump pre_%s }\n"
		       "add element " T " sb_nat { \"%s\" : jump nat_%s }\n"
		       "add element " T " sb_in { \"%s\" : jump in_%s }\n",
		       x, x, x, x, x, x, x, x, x, x) &&
		bufcat(cmds, sizeof cmds,
		       "delete element " T " sb_if { \"%s\" }\n"
		       "delete element " T " sb_pre { \"%s\" }\n"
		       "delete element " T " sb_nat { \"%s\" }\n"
		       "delete element " T " sb_in { \"%s\" }\n"
		       "delete chain " T " pre_%s\n"
		       "delete chain " T " nat_%s\n"
		       "delete chain " T " in_%s\n",
		       x, x, x, x, x, x, x);
	if (!ok)
		return pd_err_set(err, E2BIG, LAYER, "nft rules for %s: command too long", x);
	return nft_run(cmds, NULL, "removing firewall rules", err);
}

struct strset {
	char (*v)[IFNAMSIZ];
	size_t n, cap;
};

static void strset_freep(struct strset *s)
{
	free(s->v);
}

static int strset_add(struct strset *s, const char *name)
{
	if (!ifname_ours(name))
		return 0; /* not a name we make: never pasted into a command */
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char(*v)[IFNAMSIZ] = reallocarray(s->v, cap, sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	snprintf(s->v[s->n++], IFNAMSIZ, "%s", name);
	return 0;
}

/* The interface names our table holds rules for (from chains pre_X / nat_X / in_X
 * and the elements of the sets and maps). *present tells whether the table exists. */
static int nft_list_sandboxes(struct strset *names, bool *present, struct pd_err *err)
{
	_cleanup_free_ char *out = NULL;
	*present = false;
	int r = nft_run("list ruleset inet\n", &out, "listing firewall rules", err);
	if (r < 0)
		return r;
	if (!*out)
		return 0; /* no inet table at all */
	json_error_t jerr;
	json_auto_t *root = json_loads(out, 0, &jerr);
	json_t *items = root ? json_object_get(root, "nftables") : NULL;
	if (!json_is_array(items))
		return pd_err_set(err, EPROTO, LAYER, "listing firewall rules: unexpected nft JSON output");
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item) {
		json_t *o;
		if ((o = json_object_get(item, "table"))) {
			const char *name = json_string_value(json_object_get(o, "name"));
			if (name && strcmp(name, PD_NETNS_NFT_TABLE) == 0)
				*present = true;
			continue;
		}
		const char *kind = json_object_get(item, "chain") ? "chain"
				 : json_object_get(item, "set") ? "set"
				 : json_object_get(item, "map") ? "map" : NULL;
		if (!kind)
			continue;
		o = json_object_get(item, kind);
		const char *table = json_string_value(json_object_get(o, "table"));
		const char *name = json_string_value(json_object_get(o, "name"));
		if (!table || !name || strcmp(table, PD_NETNS_NFT_TABLE) != 0)
			continue;
		if (strcmp(kind, "chain") == 0) {
			if (strncmp(name, "in_", 3) == 0)
				r = strset_add(names, name + 3);
			else if (strncmp(name, "nat_", 4) == 0 || strncmp(name, "pre_", 4) == 0)
				r = strset_add(names, name + 4);
			if (r < 0)
				return pd_err_set(err, -r, LAYER, "listing firewall rules: out of memory");
			continue;
		}
		json_t *elems = json_object_get(o, "elem"), *e;
		size_t j;
		json_array_foreach(elems, j, e) {
			json_t *key = json_is_array(e) ? json_array_get(e, 0) : e;
			if (json_is_string(key) && (r = strset_add(names, json_string_value(key))) < 0)
				return pd_err_set(err, -r, LAYER, "listing firewall rules: out of memory");
		}
	}
	return 0;
}

/* Remove the rules of every name not in `keep` (NULL: keep none); drop the table
 * when nothing is left. Returns the number of rule sets removed. */
static int nft_prune(const struct link_list *keep, struct pd_err *err)
{
	__attribute__((cleanup(strset_freep))) struct strset names = {0};
	bool present;
	int r = nft_list_sandboxes(&names, &present, err);
	if (r < 0 || !present)
		return r;
	int removed = 0;
	size_t kept = 0;
	for (size_t i = 0; i < names.n; i++) {
		const struct link_info *li = keep ? link_find_name(keep, names.v[i]) : NULL;
		if (li && li->ours) {
			kept++;
			continue;
		}
		if ((r = nft_del_sandbox(names.v[i], err)) < 0)
			return r;
		removed++;
	}
	if (kept == 0 && (r = nft_run("delete table " T "\n", NULL, "removing firewall table", err)) < 0)
		return r;
	return removed;
}

#undef T

/* ------------------------------------------------------------------------- */
/* making the namespace                                                       */

struct ns_job {
	int nsfd, rtnl;  /* out */
	int r;           /* 0 or -errno */
	const char *what;
};

/* Runs in a throwaway thread: namespaces of a thread are its own, so the caller's
 * threads never leave their netns. unshare() makes a netns owned by our (init)
 * user namespace; the fd keeps it alive after the thread exits, and the netlink
 * socket made here stays bound to it. IPv6 is switched off before any interface
 * other than lo exists ("all" also sets "default", which new devices copy). */
static void *ns_thread(void *arg)
{
	struct ns_job *job = arg;
	job->nsfd = job->rtnl = -1;
	if (unshare(CLONE_NEWNET) < 0) {
		job->r = -errno;
		job->what = "unshare(CLONE_NEWNET)";
		return NULL;
	}
	job->nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (job->nsfd < 0) {
		job->r = -errno;
		job->what = "opening /proc/thread-self/ns/net";
		return NULL;
	}
	job->rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (job->rtnl < 0) {
		job->r = -errno;
		job->what = "netlink socket in the new netns";
		return NULL;
	}
	int one = 1;
	(void)setsockopt(job->rtnl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
	(void)setsockopt(job->rtnl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
	static const char *const v6[] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
					 "/proc/sys/net/ipv6/conf/default/disable_ipv6",
					 "/proc/sys/net/ipv6/conf/lo/disable_ipv6"};
	for (size_t i = 0; i < ARRAY_SIZE(v6); i++) {
		int r = sysctl_write(v6[i], "1");
		if (r < 0 && r != -ENOENT) { /* ENOENT: kernel without IPv6 */
			job->r = r;
			job->what = "disabling IPv6 in the new netns";
			return NULL;
		}
	}
	job->r = 0;
	return NULL;
}

static int ns_make(int *nsfd, int *rtnl, struct pd_err *err)
{
	struct ns_job job = {.nsfd = -1, .rtnl = -1, .r = -EIO, .what = "thread"};
	pthread_t t;
	int r = pthread_create(&t, NULL, ns_thread, &job);
	if (r != 0)
		return pd_err_set(err, r, LAYER, "creating network namespace: pthread_create");
	pthread_join(t, NULL);
	if (job.r < 0) {
		if (job.nsfd >= 0)
			close(job.nsfd);
		if (job.rtnl >= 0)
			close(job.rtnl);
		pd_err_set(err, -job.r, LAYER, "creating network namespace: %s", job.what);
		return job.r == -EPERM ? pd_err_hint(err, "needs CAP_SYS_ADMIN (run paddock as root)") : job.r;
	}
	*nsfd = job.nsfd;
	*rtnl = job.rtnl;
	return 0;
}

/* ------------------------------------------------------------------------- */
/* address allocation                                                         */

struct alloc {
	uint32_t base;         /* range, host order */
	unsigned range_len, block_len;
	uint32_t nblocks;
	unsigned char *sandbox; /* bitmaps: block used by a sandbox / collides with host */
	unsigned char *host;
	const struct link_list *links;
	char first_host[160];  /* first host route/address seen in the range, for errors */
};

static void bit_set(unsigned char *m, uint32_t i) { m[i / 8] |= 1u << (i % 8); }
static bool bit_get(const unsigned char *m, uint32_t i) { return m[i / 8] & (1u << (i % 8)); }

/* Mark the blocks that net/len (host order) overlaps; whose they are depends on the
 * interface: one of our veths, or anything else on the host. */
static void alloc_mark(struct alloc *a, uint32_t net, unsigned len, int ifindex, const char *what)
{
	if (len == 0)
		return; /* a default route overlaps everything and decides nothing */
	uint64_t size = 1ull << (32 - len);
	uint64_t lo = net & ~(uint32_t)(size - 1), hi = lo + size;
	uint64_t rlo = a->base, rhi = a->base + ((uint64_t)a->nblocks << (32 - a->block_len));
	if (hi <= rlo || lo >= rhi)
		return;
	uint64_t from = (lo > rlo ? lo : rlo) - rlo, to = (hi < rhi ? hi : rhi) - rlo;
	uint32_t bfirst = (uint32_t)(from >> (32 - a->block_len));
	uint32_t blast = (uint32_t)((to - 1) >> (32 - a->block_len));
	const struct link_info *li = link_find_index(a->links, ifindex);
	bool ours = li && li->ours;
	for (uint32_t b = bfirst; b <= blast; b++)
		bit_set(ours ? a->sandbox : a->host, b);
	if (!ours && !a->first_host[0]) {
		char s[INET_ADDRSTRLEN];
		snprintf(a->first_host, sizeof a->first_host, "%s %s/%u%s%s", what, ip4_str(lo, s), len,
			 li ? " on " : "", li ? li->name : "");
	}
}

static int alloc_addr_cb(const struct nlmsghdr *h, void *arg)
{
	struct alloc *a = arg;
	if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
		return 0;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	if (ifa->ifa_family != AF_INET)
		return 0;
	int left;
	for_each_rta(h, sizeof *ifa, at, left) {
		if ((at->rta_type == IFA_LOCAL || at->rta_type == IFA_ADDRESS) && RTA_PAYLOAD(at) == 4) {
			uint32_t v;
			memcpy(&v, RTA_DATA(at), 4);
			/* the address itself, and the subnet it brings */
			alloc_mark(a, ntohl(v), 32, ifa->ifa_index, "address");
			alloc_mark(a, ntohl(v), ifa->ifa_prefixlen, ifa->ifa_index, "address");
		}
	}
	return 0;
}

static int alloc_route_cb(const struct nlmsghdr *h, void *arg)
{
	struct alloc *a = arg;
	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		return 0;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len == 0)
		return 0;
	uint32_t dst = 0;
	int oif = 0, left;
	for_each_rta(h, sizeof *rtm, at, left) {
		if (at->rta_type == RTA_DST && RTA_PAYLOAD(at) == 4)
			memcpy(&dst, RTA_DATA(at), 4);
		else if (at->rta_type == RTA_OIF && RTA_PAYLOAD(at) == 4)
			memcpy(&oif, RTA_DATA(at), 4);
	}
	alloc_mark(a, ntohl(dst), rtm->rtm_dst_len, oif, "route");
	return 0;
}

/* Pick the first block of the range that no sandbox uses and no host route or
 * address overlaps. Must run under the lock. */
static int alloc_block(int rtnl, const struct link_list *links, uint32_t base, unsigned range_len,
		       unsigned block_len, uint32_t *block, struct pd_err *err)
{
	struct alloc a = {.base = base, .range_len = range_len, .block_len = block_len,
			  .nblocks = 1u << (block_len - range_len), .links = links};
	size_t bytes = (a.nblocks + 7) / 8;
	_cleanup_free_ unsigned char *sb = calloc(1, bytes), *host = calloc(1, bytes);
	if (!sb || !host)
		return pd_err_set(err, ENOMEM, LAYER, "allocating address: out of memory");
	a.sandbox = sb;
	a.host = host;
	struct nlmsg m;
	char ext[256];
	struct ifaddrmsg ifa = {.ifa_family = AF_INET};
	nl_init(&m, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
	int r = nl_call(rtnl, &m, alloc_addr_cb, &a, ext, sizeof ext);
	if (r < 0)
		return pd_err_set(err, -r, LAYER, "listing host addresses%s", ext);
	struct rtmsg rtm = {.rtm_family = AF_INET};
	nl_init(&m, RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof rtm);
	r = nl_call(rtnl, &m, alloc_route_cb, &a, ext, sizeof ext);
	if (r < 0)
		return pd_err_set(err, -r, LAYER, "listing host routes%s", ext);

	uint32_t used = 0, blocked = 0;
	for (uint32_t b = 0; b < a.nblocks; b++) {
		if (bit_get(sb, b))
			used++;
		else if (bit_get(host, b))
			blocked++;
		else {
			*block = b;
			return 0;
		}
	}
	char s[INET_ADDRSTRLEN];
	if (used == 0) {
		pd_err_set(err, EADDRINUSE, LAYER, "address range %s/%u collides with the host's %s",
			   ip4_str(base, s), range_len, a.first_host);
		return pd_err_hint(err, "choose a range the host does not use (network.range)");
	}
	pd_err_set(err, ENOSPC, LAYER,
		   "address range %s/%u exhausted: %u blocks of /%u used by sandboxes, %u collide with the host%s%s",
		   ip4_str(base, s), range_len, used, block_len, blocked, blocked ? "'s " : "",
		   blocked ? a.first_host : "");
	return pd_err_hint(err, "stop sandboxes, run paddock's gc, or use a larger range");
}

/* ------------------------------------------------------------------------- */
/* create / destroy / gc / listen                                             */

static void plumb_host_sysctls(const char *ifname)
{
	/* Best effort: without IPv6 the first file is absent, which is fine; the
	 * nft rules drop IPv6 from the sandbox in any case. rp_filter strict makes
	 * the host drop anything whose source is not the sandbox's own /30. */
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	(void)sysctl_write(path, "1");
	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	(void)sysctl_write(path, "1");
	/* answer ARP only for the gateway address, not for the host's other addresses */
	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/arp_ignore", ifname);
	(void)sysctl_write(path, "1");
}

int pd_netns_create(const char *id, const struct pd_netns_opts *o, struct pd_netns *out,
		    struct pd_err *err)
{
	static const struct pd_netns_opts defaults = {0};
	if (!o)
		o = &defaults;
	if (!id || !id_valid(id))
		return pd_err_set(err, EINVAL, LAYER, "sandbox id \"%s\" is not [a-z0-9-]{1,40}",
				  id ? id : "(null)");
	const char *range = o->range ? o->range : PD_NETNS_DEFAULT_RANGE;
	unsigned block_len = o->prefix ? o->prefix : 30;
	uint32_t base;
	unsigned range_len;
	if (block_len != 30 && block_len != 31)
		return pd_err_set(err, EINVAL, LAYER, "sandbox prefix /%u: must be /30 or /31", block_len);
	if (range_parse(range, &base, &range_len) < 0 || range_len < 8 || range_len > block_len)
		return pd_err_set(err, EINVAL, LAYER,
				  "address range \"%s\": want a.b.c.d/len with len 8..%u and no host bits",
				  range, block_len);
	struct pd_netns n = {.fd = -1, .sb_if = "eth0", .prefix = block_len,
			     .proxy_port = o->proxy_port ? o->proxy_port : 3128,
			     .transparent_port = o->transparent_port ? o->transparent_port : 3129};
	if (n.proxy_port == 53 || n.transparent_port == 53 || n.proxy_port == n.transparent_port)
		return pd_err_set(err, EINVAL, LAYER, "proxy ports %u/%u must differ from each other and 53",
				  n.proxy_port, n.transparent_port);
	unsigned long long start = proc_starttime(0);
	if (!start)
		return pd_err_set(err, ENOENT, LAYER, "cannot read /proc/self/stat (is /proc mounted?)");

	/* 1. Serialise with other paddock processes until the veth is ours. */
	_cleanup_close_ int lock = lock_take(err);
	if (lock < 0)
		return lock;
	/* 2. The namespace (IPv6 off inside) and a netlink socket on each side. */
	_cleanup_close_ int nsfd = -1, inner = -1;
	int r = ns_make(&nsfd, &inner, err);
	if (r < 0)
		return r;
	_cleanup_close_ int rtnl = nl_open(err);
	if (rtnl < 0)
		return rtnl;
	/* 3. A free block of the range. */
	__attribute__((cleanup(link_list_freep))) struct link_list links = {0};
	if ((r = links_dump(rtnl, &links, err)) < 0)
		return r;
	if ((r = alloc_block(rtnl, &links, base, range_len, block_len, &n.index, err)) < 0)
		return r;
	uint32_t net = base + (n.index << (32 - block_len));
	n.gw.s_addr = htonl(block_len == 30 ? net + 1 : net);
	n.sb.s_addr = htonl(block_len == 30 ? net + 2 : net + 1);
	/* pd<block>-<id>: unique because the block is, readable because of the id */
	snprintf(n.host_if, sizeof n.host_if, PD_NETNS_IF_PREFIX "%" PRIu32 "-%s", n.index, id);
	if (link_find_name(&links, n.host_if))
		return pd_err_set(err, EEXIST, LAYER, "interface %s already exists", n.host_if);

	/* 4. The pair, the sandbox end born inside the netns as eth0; from here on a
	 * failure deletes it (the peer goes with it). The alias names this process as
	 * owner first, so gc can tell a leftover from a live sandbox. */
	if ((r = veth_create(rtnl, n.host_if, n.sb_if, nsfd, err)) < 0)
		return r;
	char ext[256], alias[96], gwbuf[INET_ADDRSTRLEN];
	struct link_info host, sbl;
	const char *step;
	snprintf(alias, sizeof alias, PD_NETNS_ALIAS_PREFIX "%d:%llu:%s", (int)getpid(), start,
		 inet_ntop(AF_INET, &n.gw, gwbuf, sizeof gwbuf));
	if ((r = link_get(rtnl, n.host_if, &host)) < 0) {
		step = "finding the host end";
		goto fail_noveth;
	}
	if ((r = link_set(rtnl, host.index, false, alias, ext, sizeof ext)) < 0) {
		step = "setting the owner alias";
		goto fail;
	}
	plumb_host_sysctls(n.host_if);
	/* 5. Firewall before anything is up. */
	if ((r = nft_add_sandbox(&n, err)) < 0) {
		pd_err_prefix(err, "sandbox %s", id);
		goto fail_quiet;
	}
	/* 6. Addresses, links up, lo up, default route via gw. */
	step = "host end address";
	if ((r = addr_add(rtnl, host.index, n.gw, block_len, ext, sizeof ext)) < 0)
		goto fail_nft;
	step = "host end up";
	if ((r = link_set(rtnl, host.index, true, NULL, ext, sizeof ext)) < 0)
		goto fail_nft;
	step = "finding eth0 in the netns";
	if ((r = link_get(inner, n.sb_if, &sbl)) < 0)
		goto fail_nft;
	step = "eth0 address";
	if ((r = addr_add(inner, sbl.index, n.sb, block_len, ext, sizeof ext)) < 0)
		goto fail_nft;
	step = "eth0 up";
	if ((r = link_set(inner, sbl.index, true, NULL, ext, sizeof ext)) < 0)
		goto fail_nft;
	step = "lo up";
	struct link_info lo;
	if ((r = link_get(inner, "lo", &lo)) < 0 || (r = link_set(inner, lo.index, true, NULL, ext, sizeof ext)) < 0)
		goto fail_nft;
	step = "default route";
	if ((r = route_add_default(inner, sbl.index, n.gw, ext, sizeof ext)) < 0)
		goto fail_nft;

	n.fd = steal_fd(&nsfd);
	*out = n;
	return 0;

fail_nft:
	pd_err_set(err, -r, LAYER, "sandbox %s: %s%s", id, step, ext);
	(void)nft_del_sandbox(n.host_if, NULL);
	(void)nft_prune(&links, NULL); /* drops the table if we were the only one */
	goto fail_quiet;
fail_noveth:
	ext[0] = '\0';
fail:
	pd_err_set(err, -r, LAYER, "sandbox %s: %s%s", id, step, ext);
fail_quiet:
	if (link_get(rtnl, n.host_if, &host) == 0)
		(void)link_del(rtnl, host.index, ext, sizeof ext);
	return r;
}

int pd_netns_destroy(struct pd_netns *n, struct pd_err *err)
{
	if (!n->host_if[0]) /* already destroyed (its fd went on the first call) */
		return 0;
	int ret = 0, r;
	_cleanup_close_ int lock = lock_take(err);
	if (lock < 0)
		ret = lock;
	_cleanup_close_ int rtnl = lock < 0 ? -1 : nl_open(err);
	if (lock >= 0 && rtnl < 0)
		ret = rtnl;
	__attribute__((cleanup(link_list_freep))) struct link_list links = {0};
	if (rtnl >= 0 && (r = links_dump(rtnl, &links, err)) < 0)
		ret = r;
	if (ret == 0) {
		/* 1. The veth, if it is still the one we made (same name, ours, same block). */
		const struct link_info *li = link_find_name(&links, n->host_if);
		char ext[256];
		if (li && li->ours && li->gw.s_addr == n->gw.s_addr &&
		    (r = link_del(rtnl, li->index, ext, sizeof ext)) < 0 && r != -ENODEV)
			ret = pd_err_set(err, -r, LAYER, "deleting %s%s", n->host_if, ext);
		/* 2. Its rules, and the table if no live sandbox is left. */
		for (size_t i = 0; i < links.n; i++)
			if (strcmp(links.v[i].name, n->host_if) == 0)
				links.v[i].ours = false;
		struct pd_err e2;
		if ((r = nft_del_sandbox(n->host_if, &e2)) < 0 || (r = nft_prune(&links, &e2)) < 0) {
			if (ret == 0 && err)
				*err = e2;
			if (ret == 0)
				ret = r;
		}
	}
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	if (ret == 0)
		n->host_if[0] = '\0';
	return ret;
}

int pd_netns_gc(struct pd_err *err)
{
	_cleanup_close_ int lock = lock_take(err);
	if (lock < 0)
		return lock;
	_cleanup_close_ int rtnl = nl_open(err);
	if (rtnl < 0)
		return rtnl;
	__attribute__((cleanup(link_list_freep))) struct link_list links = {0};
	int r = links_dump(rtnl, &links, err);
	if (r < 0)
		return r;
	int removed = 0;
	/* 1. veths whose owner is gone: deleting the host end deletes the pair and
	 * cuts off whatever still runs inside. */
	for (size_t i = 0; i < links.n; i++) {
		struct link_info *li = &links.v[i];
		if (!li->ours || strcmp(li->kind, "veth") != 0 || owner_alive(li))
			continue;
		char ext[256];
		r = link_del(rtnl, li->index, ext, sizeof ext);
		if (r < 0 && r != -ENODEV)
			continue; /* best effort; its rules stay with it */
		li->ours = false;
		removed++;
	}
	/* 2. rules of anything that is not a live paddock veth */
	r = nft_prune(&links, err);
	if (r < 0)
		return r;
	return removed + r;
}

static int listen_one(struct in_addr a, uint16_t port, int type, const char *what, struct pd_err *err)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pd_err_errno(err, LAYER, "%s socket", what);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a};
	char s[INET_ADDRSTRLEN];
	if ((type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)) {
		int r = pd_err_errno(err, LAYER, "%s: binding %s:%u", what,
				     inet_ntop(AF_INET, &a, s, sizeof s), port);
		close(fd);
		return r;
	}
	return fd;
}

int pd_netns_listen(const struct pd_netns *n, int *dns_udp, int *dns_tcp, int *proxy,
		    int *transparent, struct pd_err *err)
{
	struct {
		int *out;
		uint16_t port;
		int type;
		const char *what;
		int fd;
	} s[] = {
		{dns_udp, 53, SOCK_DGRAM, "dns/udp", -1},
		{dns_tcp, 53, SOCK_STREAM, "dns/tcp", -1},
		{proxy, n->proxy_port, SOCK_STREAM, "proxy", -1},
		{transparent, n->transparent_port, SOCK_STREAM, "transparent proxy", -1},
	};
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(s) && r >= 0; i++)
		if (s[i].out && (r = s[i].fd = listen_one(n->gw, s[i].port, s[i].type, s[i].what, err)) < 0)
			s[i].fd = -1;
	for (size_t i = 0; i < ARRAY_SIZE(s); i++) {
		if (r < 0 && s[i].fd >= 0)
			close(s[i].fd);
		else if (r >= 0 && s[i].out)
			*s[i].out = s[i].fd;
	}
	return r < 0 ? r : 0;
}

/* Name the sandbox's pid 1 as the owner: the veth then lives as long as the
 * sandbox, whoever made it (a restarted daemon, a `paddock run` that exits
 * with its sandbox), and gc takes it only once pid 1 is gone. */
int pd_netns_set_owner(const struct pd_netns *n, pid_t pid, struct pd_err *err)
{
	unsigned long long start = proc_starttime(pid);
	if (!start)
		return pd_err_set(err, ESRCH, LAYER, "owner process %d is gone", (int)pid);
	_cleanup_close_ int lock = lock_take(err);
	if (lock < 0)
		return lock;
	_cleanup_close_ int rtnl = nl_open(err);
	if (rtnl < 0)
		return rtnl;
	struct link_info li;
	char alias[96], gwbuf[INET_ADDRSTRLEN], ext[256];
	int r = link_get(rtnl, n->host_if, &li);
	if (r < 0)
		return pd_err_set(err, -r, LAYER, "finding %s", n->host_if);
	snprintf(alias, sizeof alias, PD_NETNS_ALIAS_PREFIX "%d:%llu:%s", (int)pid, start,
		 inet_ntop(AF_INET, &n->gw, gwbuf, sizeof gwbuf));
	if ((r = link_set(rtnl, li.index, false, alias, ext, sizeof ext)) < 0)
		return pd_err_set(err, -r, LAYER, "setting the owner of %s%s", n->host_if, ext);
	return 0;
}

/* Find the plumbing of a running sandbox again (a restarted daemon): the
 * veth whose owner is pid, its addresses, and the netns pid is in. */
int pd_netns_adopt(pid_t pid, struct pd_netns *out, struct pd_err *err)
{
	_cleanup_close_ int rtnl = nl_open(err);
	if (rtnl < 0)
		return rtnl;
	__attribute__((cleanup(link_list_freep))) struct link_list links = {0};
	int r = links_dump(rtnl, &links, err);
	if (r < 0)
		return r;
	unsigned long long start = proc_starttime(pid);
	for (size_t i = 0; i < links.n; i++) {
		const struct link_info *li = &links.v[i];
		if (!li->ours || li->pid != pid || li->start != start || !start)
			continue;
		struct pd_netns n = { .fd = -1, .prefix = 30, .proxy_port = 3128,
				      .transparent_port = 3129 };
		snprintf(n.host_if, sizeof n.host_if, "%s", li->name);
		snprintf(n.sb_if, sizeof n.sb_if, "eth0");
		n.gw = li->gw;
		n.sb.s_addr = htonl(ntohl(li->gw.s_addr) + 1);
		n.index = (uint32_t)strtoul(li->name + strlen(PD_NETNS_IF_PREFIX), NULL, 10);
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/ns/net", (int)pid);
		n.fd = open(p, O_RDONLY | O_CLOEXEC);
		if (n.fd < 0)
			return pd_err_errno(err, LAYER, "opening %s", p);
		*out = n;
		return 0;
	}
	return pd_err_set(err, ENOENT, LAYER, "no paddock interface owned by pid %d", (int)pid);
}
