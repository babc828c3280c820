/* test_netns.c: sandbox network namespaces, veths and nft rules on the real kernel
 * (needs root).
 *
 * Isolation: every test first moves this (single-threaded) test process into a
 * fresh network namespace of its own, which plays "the host" for the library. So
 * the real host's interfaces, routes and nft ruleset are never touched, tests can
 * add colliding routes freely, and no packet can leave: the only interfaces are lo
 * and the veths made here. The one shared object is the lock file
 * /run/paddock/netns.lock.
 *
 * Probes that must run inside a sandbox's netns run in a forked child that
 * setns()es into it; the child reports by a message over a pipe (no cmocka calls
 * in children) and can be held alive while the parent checks its side. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "egress/netns.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h, which clashes with netinet/in.h */
#endif

#define DROP_MS 300 /* how long "no answer" is waited for */

struct fixture {
	struct pd_netns ns[4];
	bool live[4];
	pid_t kids[4]; /* processes to SIGKILL in teardown */
};

/* ------------------------------------------------------------------------- */
/* helpers: environment                                                       */

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* A fresh "host" netns for this test; the previous one dies with its last user. */
static int setup(void **state)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	lo_up();
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < 4; i++) {
		if (f->kids[i] > 0) {
			kill(f->kids[i], SIGKILL);
			waitpid(f->kids[i], NULL, 0);
		}
		if (f->live[i])
			pd_netns_destroy(&f->ns[i], NULL);
	}
	free(f);
	return 0;
}

/* Run a shell command (test scaffolding only: routes, addresses) in the current
 * "host" netns; the command must succeed. */
static void sh(const char *cmd)
{
	int st = system(cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("command failed: %s", cmd);
}

static void create_ok(struct fixture *f, int slot, const char *id, const struct pd_netns_opts *o)
{
	struct pd_err err = {0};
	char buf[1200];
	int r = pd_netns_create(id, o, &f->ns[slot], &err);
	if (r < 0)
		fail_msg("pd_netns_create(%s): %d %s", id, r, pd_err_format(&err, buf, sizeof buf));
	f->live[slot] = true;
}

static void destroy_ok(struct fixture *f, int slot)
{
	struct pd_err err = {0};
	char buf[1200];
	int r = pd_netns_destroy(&f->ns[slot], &err);
	if (r < 0)
		fail_msg("pd_netns_destroy: %d %s", r, pd_err_format(&err, buf, sizeof buf));
	f->live[slot] = false;
	assert_int_equal(f->ns[slot].fd, -1);
}

/* The current netns's nft ruleset as text (caller frees). */
static char *ruleset(void)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	assert_non_null(ctx);
	assert_int_equal(nft_ctx_buffer_output(ctx), 0);
	assert_int_equal(nft_ctx_buffer_error(ctx), 0);
	assert_int_equal(nft_run_cmd_from_buffer(ctx, "list ruleset"), 0);
	char *s = strdup(nft_ctx_get_output_buffer(ctx));
	nft_ctx_free(ctx);
	assert_non_null(s);
	return s;
}

static bool ruleset_has(const char *needle)
{
	char *s = ruleset();
	bool has = strstr(s, needle) != NULL;
	free(s);
	return has;
}

static bool has_chain(const char *ifname)
{
	char chain[64];
	snprintf(chain, sizeof chain, "chain in_%s ", ifname);
	return ruleset_has(chain);
}

static bool if_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static const char *ip(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;
	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], sizeof buf[i]);
}

static struct in_addr addr(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
}

static int count_fds(void)
{
	int n = 0;
	char path[64];
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		if (access(path, F_OK) == 0)
			n++;
	}
	return n;
}

/* ------------------------------------------------------------------------- */
/* helpers: running probes inside a netns                                     */

typedef int (*probe_fn)(void *arg, char *msg, size_t len);

struct child {
	pid_t pid;
	int hold; /* write end: the child exits when it is closed */
	char msg[1024];
};

/* Fork, join nsfd (-1: stay), run fn; the child writes fn's message and, when
 * fn returned 0, waits until release(). Returns with the message read. */
static void spawn(struct child *c, int nsfd, probe_fn fn, void *arg)
{
	int res[2], hold[2];
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		char msg[1024] = "";
		close(res[0]);
		close(hold[1]);
		int r = 1;
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
			snprintf(msg, sizeof msg, "setns: %s", strerror(errno));
		else
			r = fn(arg, msg, sizeof msg);
		if (write(res[1], msg, strlen(msg)) < 0)
			r = 1;
		close(res[1]);
		char b;
		while (r == 0 && read(hold[0], &b, 1) > 0)
			;
		_exit(r ? 1 : 0);
	}
	close(res[1]);
	close(hold[0]);
	c->hold = hold[1];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof c->msg - 1 && (n = read(res[0], c->msg + got, sizeof c->msg - 1 - got)) > 0)
		got += n;
	c->msg[got] = '\0';
	close(res[0]);
}

/* Let the child exit; fail the test if its probe failed. */
static void release(struct child *c)
{
	close(c->hold);
	int st;
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("probe in child failed: %s", c->msg[0] ? c->msg : "(no message)");
}

static void run_in(int nsfd, probe_fn fn, void *arg)
{
	struct child c;
	spawn(&c, nsfd, fn, arg);
	release(&c);
}

#define CHECK(cond, ...)                                    \
	do {                                                    \
		if (!(cond)) {                                  \
			snprintf(msg, len, __VA_ARGS__);        \
			return 1;                               \
		}                                               \
	} while (0)

/* TCP connect with a deadline: 0 connected (fd kept in *keep if given),
 * -ETIMEDOUT nothing came back (dropped), else -errno (e.g. -ECONNREFUSED). */
static int tcp_probe(struct in_addr a, uint16_t port, int ms, int *keep)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a};
	int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
	if (r < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(s);
		return r;
	}
	struct pollfd p = {.fd = s, .events = POLLOUT};
	if (r < 0) {
		if (poll(&p, 1, ms) == 0) {
			close(s);
			return -ETIMEDOUT;
		}
		int e = 0;
		socklen_t el = sizeof e;
		getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e) {
			close(s);
			return -e;
		}
	}
	if (keep)
		*keep = s;
	else
		close(s);
	return 0;
}

/* Connected UDP: send one datagram, wait ms. 0 an answer came, -ETIMEDOUT
 * silence (dropped), -ECONNREFUSED an ICMP port unreachable came back. */
static int udp_probe(struct in_addr a, uint16_t port, int ms)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a};
	int r = 0;
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0 || send(s, "probe", 5, 0) < 0)
		r = -errno;
	struct pollfd p = {.fd = s, .events = POLLIN};
	if (r == 0 && poll(&p, 1, ms) == 0)
		r = -ETIMEDOUT;
	else if (r == 0) {
		char b[16];
		r = recv(s, b, sizeof b, 0) < 0 ? -errno : 0;
	}
	close(s);
	return r;
}

static uint16_t icmp_sum(const void *data, size_t len)
{
	const uint16_t *p = data;
	uint32_t sum = 0;
	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const uint8_t *)p;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ping over a raw socket: true if an echo reply from `a` comes within ms. */
static bool ping(struct in_addr a, int ms)
{
	int s = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s < 0)
		return false;
	struct icmphdr h = {.type = ICMP_ECHO};
	h.un.echo.id = htons((uint16_t)getpid());
	h.un.echo.sequence = htons(1);
	h.checksum = icmp_sum(&h, sizeof h);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = a};
	bool got = false;
	if (sendto(s, &h, sizeof h, 0, (struct sockaddr *)&sa, sizeof sa) == sizeof h) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		while (!got && poll(&p, 1, ms) > 0) {
			char buf[256];
			struct sockaddr_in from;
			socklen_t fl = sizeof from;
			ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
			if (n < (ssize_t)(sizeof(struct iphdr) + sizeof(struct icmphdr)))
				continue;
			const struct iphdr *iph = (const struct iphdr *)buf;
			const struct icmphdr *r = (const struct icmphdr *)(buf + iph->ihl * 4);
			got = from.sin_addr.s_addr == a.s_addr && r->type == ICMP_ECHOREPLY;
		}
	}
	close(s);
	return got;
}

/* ------------------------------------------------------------------------- */
/* validation                                                                 */

static void expect_einval(const char *id, const struct pd_netns_opts *o)
{
	struct pd_netns n;
	memset(&n, 0xa5, sizeof n);
	struct pd_netns before = n;
	struct pd_err err = {0};
	assert_int_equal(pd_netns_create(id, o, &n, &err), -EINVAL);
	assert_string_equal(err.layer, "network");
	assert_true(err.msg[0] != '\0');
	assert_memory_equal(&n, &before, sizeof n); /* untouched on failure */
}

static void test_validation(void **state)
{
	(void)state;
	int fds = count_fds();
	expect_einval("", NULL);
	expect_einval("Upper", NULL);
	expect_einval("a/b", NULL);
	expect_einval("a b", NULL);
	expect_einval("0123456789012345678901234567890123456789x", NULL); /* 41 */
	expect_einval(NULL, NULL);
	expect_einval("ok", &(struct pd_netns_opts){.range = "10.231.0.1/16"}); /* host bits */
	expect_einval("ok", &(struct pd_netns_opts){.range = "10.231.0.0/31"}); /* smaller than a /30 */
	expect_einval("ok", &(struct pd_netns_opts){.range = "10.231.0.0"});
	expect_einval("ok", &(struct pd_netns_opts){.range = "banana/16"});
	expect_einval("ok", &(struct pd_netns_opts){.range = "10.0.0.0/4"});
	expect_einval("ok", &(struct pd_netns_opts){.prefix = 29});
	expect_einval("ok", &(struct pd_netns_opts){.proxy_port = 53});
	expect_einval("ok", &(struct pd_netns_opts){.proxy_port = 4000, .transparent_port = 4000});
	assert_false(ruleset_has("paddock"));
	assert_int_equal(count_fds(), fds);
}

/* ------------------------------------------------------------------------- */
/* the namespace as the sandbox sees it                                       */

static int probe_inside(void *arg, char *msg, size_t len)
{
	const struct pd_netns *n = arg;
	struct ifaddrs *ifa;
	CHECK(getifaddrs(&ifa) == 0, "getifaddrs: %s", strerror(errno));
	bool eth0 = false, lo = false, v6 = false, eth0_up = false;
	struct in_addr mask = {htonl(~0u << (32 - n->prefix))};
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET6)
			v6 = true;
		if (i->ifa_addr->sa_family != AF_INET)
			continue;
		const struct sockaddr_in *a = (const void *)i->ifa_addr, *m = (const void *)i->ifa_netmask;
		if (strcmp(i->ifa_name, "eth0") == 0 && a->sin_addr.s_addr == n->sb.s_addr &&
		    m->sin_addr.s_addr == mask.s_addr) {
			eth0 = true;
			eth0_up = i->ifa_flags & IFF_UP;
		}
		if (strcmp(i->ifa_name, "lo") == 0 && a->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
			lo = i->ifa_flags & IFF_UP;
	}
	freeifaddrs(ifa);
	CHECK(eth0 && eth0_up, "eth0 lacks %s/%u or is down", ip(n->sb), n->prefix);
	CHECK(lo, "lo is not up with 127.0.0.1");
	CHECK(!v6, "an IPv6 address exists in the sandbox netns");

	/* default route via gw on eth0, and nothing but it and the connected route */
	FILE *f = fopen("/proc/net/route", "re");
	CHECK(f, "/proc/net/route: %s", strerror(errno));
	char line[256], ifn[32];
	unsigned dst, gw, flags, msk;
	int routes = 0;
	bool dflt = false;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%31s %x %x %x %*d %*d %*d %x", ifn, &dst, &gw, &flags, &msk) != 5)
			continue;
		routes++;
		if (dst == 0 && msk == 0 && gw == n->gw.s_addr && strcmp(ifn, "eth0") == 0)
			dflt = true;
	}
	fclose(f);
	CHECK(dflt, "no default route via %s on eth0", ip(n->gw));
	CHECK(routes == 2, "expected 2 IPv4 routes in the sandbox, saw %d", routes);

	char v[16];
	read_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", v, sizeof v);
	CHECK(strcmp(v, "1") == 0, "all/disable_ipv6 is \"%s\"", v);
	read_file("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", v, sizeof v);
	CHECK(strcmp(v, "1") == 0, "eth0/disable_ipv6 is \"%s\"", v);
	/* no IPv6 route either: a datagram to a global v6 address has nowhere to go */
	int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s6 >= 0) {
		struct sockaddr_in6 d6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
		inet_pton(AF_INET6, "2001:db8::1", &d6.sin6_addr);
		int r = connect(s6, (struct sockaddr *)&d6, sizeof d6);
		close(s6);
		CHECK(r < 0, "IPv6 connect to 2001:db8::1 succeeded");
	}

	/* root in a user namespace of its own (what the sandbox gets) cannot change
	 * the netns: it belongs to the init user namespace */
	CHECK(unshare(CLONE_NEWUSER) == 0, "unshare(CLONE_NEWUSER): %s", strerror(errno));
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "SIOCGIFFLAGS: %s", strerror(errno));
	ifr.ifr_flags &= ~IFF_UP;
	int r = ioctl(s, SIOCSIFFLAGS, &ifr);
	int e = errno;
	close(s);
	CHECK(r < 0 && e == EPERM, "setting eth0 down from a user namespace: r=%d %s", r, strerror(e));
	return 0;
}

static void test_create_inside(void **state)
{
	struct fixture *f = *state;
	create_ok(f, 0, "inside", NULL);
	const struct pd_netns *n = &f->ns[0];
	assert_string_equal(n->host_if, "pd0-inside");
	assert_string_equal(n->sb_if, "eth0");
	assert_string_equal(ip(n->gw), "10.231.0.1");
	assert_string_equal(ip(n->sb), "10.231.0.2");
	assert_int_equal(n->prefix, 30);
	assert_int_equal(n->index, 0);
	assert_int_equal(n->proxy_port, 3128);
	assert_int_equal(n->transparent_port, 3129);
	assert_true(n->fd >= 0);
	assert_int_equal(fcntl(n->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	/* a netns of its own, owned by our (init) user namespace */
	struct stat self_net, ns_net, self_user, owner;
	assert_int_equal(stat("/proc/self/ns/net", &self_net), 0);
	assert_int_equal(fstat(n->fd, &ns_net), 0);
	assert_true(self_net.st_ino != ns_net.st_ino);
	int ufd = ioctl(n->fd, NS_GET_USERNS);
	assert_true(ufd >= 0);
	assert_int_equal(fstat(ufd, &owner), 0);
	close(ufd);
	assert_int_equal(stat("/proc/self/ns/user", &self_user), 0);
	assert_int_equal(owner.st_ino, self_user.st_ino);

	/* host end: present, IPv6 off, owner alias, rules */
	assert_true(if_exists("pd0-inside"));
	char v[16];
	read_file("/proc/sys/net/ipv6/conf/pd0-inside/disable_ipv6", v, sizeof v);
	assert_string_equal(v, "1");
	read_file("/proc/sys/net/ipv4/conf/pd0-inside/rp_filter", v, sizeof v);
	assert_string_equal(v, "1");
	char cmd[128], out[512] = "", want[64];
	snprintf(cmd, sizeof cmd, "ip -o link show dev %s", n->host_if);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t got = fread(out, 1, sizeof out - 1, p);
	out[got] = '\0';
	pclose(p);
	snprintf(want, sizeof want, "alias paddock:%d:", (int)getpid());
	assert_non_null(strstr(out, want));
	assert_true(has_chain("pd0-inside"));
	assert_true(ruleset_has("\"pd0-inside\" : jump in_pd0-inside"));
	assert_true(ruleset_has("dnat ip to 10.231.0.1:3129"));

	run_in(n->fd, probe_inside, (void *)n);
}

/* ------------------------------------------------------------------------- */
/* traffic                                                                    */

struct traffic {
	const struct pd_netns *self, *other;
};

static int probe_traffic(void *arg, char *msg, size_t len)
{
	const struct traffic *t = arg;
	struct in_addr gw = t->self->gw;
	int r;
	/* allowed: the proxy ports and DNS on gw */
	CHECK((r = tcp_probe(gw, 3128, 2000, NULL)) == 0, "tcp gw:3128: %s", strerror(-r));
	CHECK((r = tcp_probe(gw, 3129, 2000, NULL)) == 0, "tcp gw:3129: %s", strerror(-r));
	CHECK((r = tcp_probe(gw, 53, 2000, NULL)) == 0, "tcp gw:53: %s", strerror(-r));
	/* UDP DNS goes out (the parent reads it from its socket); no answer comes */
	CHECK((r = udp_probe(gw, 53, 50)) == -ETIMEDOUT, "udp gw:53: %s", strerror(-r));
	/* dropped, not refused: nothing listens on 22 and a RST would be ECONNREFUSED */
	CHECK((r = tcp_probe(gw, 22, DROP_MS, NULL)) == -ETIMEDOUT, "tcp gw:22 not dropped: %s",
	      r ? strerror(-r) : "connected");
	/* the other sandbox's gateway has a listener on 3128: the host must not answer
	 * for addresses other than our gw */
	CHECK((r = tcp_probe(t->other->gw, 3128, DROP_MS, NULL)) == -ETIMEDOUT,
	      "tcp other gw %s:3128 not dropped: %s", ip(t->other->gw), r ? strerror(-r) : "connected");
	/* the other sandbox itself (forwarding is on in this "host"): dropped */
	CHECK((r = tcp_probe(t->other->sb, 7777, DROP_MS, NULL)) == -ETIMEDOUT,
	      "tcp other sandbox %s:7777 not dropped: %s", ip(t->other->sb), r ? strerror(-r) : "connected");
	/* UDP elsewhere: silence rather than ICMP port unreachable */
	CHECK((r = udp_probe(gw, 9999, DROP_MS)) == -ETIMEDOUT, "udp gw:9999 not dropped: %s",
	      r ? strerror(-r) : "answered");
	/* ICMP: our ping works on lo, the gateway does not answer */
	CHECK(ping((struct in_addr){htonl(INADDR_LOOPBACK)}, 1000), "ping 127.0.0.1 got no reply");
	CHECK(!ping(gw, DROP_MS), "ping %s answered", ip(gw));
	/* 80 and 443 anywhere land on the transparent proxy; kept open for the parent */
	int keep80 = -1, keep443 = -1;
	CHECK((r = tcp_probe(addr("203.0.113.10"), 80, 2000, &keep80)) == 0, "tcp 203.0.113.10:80: %s",
	      strerror(-r));
	CHECK((r = tcp_probe(addr("203.0.113.11"), 443, 2000, &keep443)) == 0, "tcp 203.0.113.11:443: %s",
	      strerror(-r));
	/* other ports to the outside: dropped */
	CHECK((r = tcp_probe(addr("203.0.113.10"), 8080, DROP_MS, NULL)) == -ETIMEDOUT,
	      "tcp 203.0.113.10:8080 not dropped: %s", r ? strerror(-r) : "connected");
	return 0; /* keep80/443 stay open until release() */
}

static void accept_orig(int lfd, const char *want_peer, const char *want_orig)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	struct sockaddr_in peer;
	socklen_t pl = sizeof peer;
	int c = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
	assert_true(c >= 0);
	assert_string_equal(ip(peer.sin_addr), want_peer);
	struct sockaddr_in orig;
	socklen_t ol = sizeof orig;
	assert_int_equal(getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &orig, &ol), 0);
	char got[64];
	snprintf(got, sizeof got, "%s:%u", ip(orig.sin_addr), ntohs(orig.sin_port));
	assert_string_equal(got, want_orig);
	close(c);
}

static void drain_accepts(int lfd, int expect)
{
	for (int i = 0; i < expect; i++) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 2000), 1);
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		assert_true(c >= 0);
		close(c);
	}
}

/* A listening TCP socket inside a netns, made from a thread (namespaces are
 * per thread); the socket stays in that netns. */
struct tlisten {
	int nsfd, fd;
	struct in_addr a;
	uint16_t port;
};

static void *tlisten_thread(void *arg)
{
	struct tlisten *t = arg;
	t->fd = -1;
	if (setns(t->nsfd, CLONE_NEWNET) < 0)
		return NULL;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(t->port), .sin_addr = t->a};
	if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s, 8) == 0)
		t->fd = s;
	else if (s >= 0)
		close(s);
	return NULL;
}

static int listen_in(int nsfd, struct in_addr a, uint16_t port)
{
	struct tlisten t = {.nsfd = nsfd, .a = a, .port = port};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, tlisten_thread, &t), 0);
	pthread_join(th, NULL);
	assert_true(t.fd >= 0);
	return t.fd;
}

static void test_traffic(void **state)
{
	struct fixture *f = *state;
	create_ok(f, 0, "alpha", NULL);
	create_ok(f, 1, "beta", NULL);
	const struct pd_netns *a = &f->ns[0], *b = &f->ns[1];
	assert_string_equal(ip(b->gw), "10.231.0.5");
	assert_string_equal(b->host_if, "pd1-beta");
	/* worst case for "nothing is routed through the host": forwarding on */
	sh("echo 1 > /proc/sys/net/ipv4/ip_forward");

	int udp[2], dns[2], proxy[2], tp[2];
	struct pd_err err = {0};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pd_netns_listen(&f->ns[i], &udp[i], &dns[i], &proxy[i], &tp[i], &err), 0);
	int fds[] = {udp[0], dns[0], proxy[0], tp[0]};
	uint16_t ports[] = {53, 53, 3128, 3129};
	for (size_t i = 0; i < 4; i++) {
		assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		assert_int_equal(getsockname(fds[i], (struct sockaddr *)&sa, &sl), 0);
		assert_int_equal(sa.sin_addr.s_addr, a->gw.s_addr);
		assert_int_equal(ntohs(sa.sin_port), ports[i]);
	}
	int in_b = listen_in(b->fd, b->sb, 7777);

	struct traffic t = {a, b};
	struct child c;
	spawn(&c, a->fd, probe_traffic, &t);
	if (c.msg[0])
		fail_msg("probe: %s", c.msg);
	/* the redirected connections arrive on the transparent listener with their
	 * original destination */
	char sb[INET_ADDRSTRLEN];
	snprintf(sb, sizeof sb, "%s", ip(a->sb));
	accept_orig(tp[0], sb, "10.231.0.1:3129"); /* the direct connection came first */
	accept_orig(tp[0], sb, "203.0.113.10:80");
	accept_orig(tp[0], sb, "203.0.113.11:443");
	release(&c);
	/* the DNS datagram made it, from the sandbox's address */
	char buf[16];
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	assert_int_equal(recvfrom(udp[0], buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 5);
	assert_string_equal(ip(from.sin_addr), sb);
	drain_accepts(proxy[0], 1);
	drain_accepts(dns[0], 1);
	/* nothing reached the other sandbox's gateway, nor the other sandbox */
	assert_int_equal(accept4(proxy[1], NULL, NULL, 0), -1);
	assert_int_equal(errno, EAGAIN);
	int fl_b = fcntl(in_b, F_GETFL);
	fcntl(in_b, F_SETFL, fl_b | O_NONBLOCK);
	assert_int_equal(accept4(in_b, NULL, NULL, 0), -1);
	assert_int_equal(errno, EAGAIN);

	/* listen again on the same gw: fails whole, leaks nothing, outputs untouched */
	int before = count_fds(), x = -7, y = -7;
	assert_int_equal(pd_netns_listen(a, NULL, &x, &y, NULL, &err), -EADDRINUSE);
	assert_int_equal(x, -7);
	assert_int_equal(y, -7);
	assert_int_equal(count_fds(), before);

	for (int i = 0; i < 2; i++) {
		close(udp[i]);
		close(dns[i]);
		close(proxy[i]);
		close(tp[i]);
	}
	close(in_b);
}

/* /31 pairs: gw and sandbox are the two addresses of the block */
static int probe_proxy(void *arg, char *msg, size_t len)
{
	const struct pd_netns *n = arg;
	int r;
	CHECK((r = tcp_probe(n->gw, n->proxy_port, 2000, NULL)) == 0, "tcp gw:%u: %s", n->proxy_port, strerror(-r));
	CHECK((r = tcp_probe(n->gw, 3128, DROP_MS, NULL)) == -ETIMEDOUT, "tcp gw:3128 (not our port): %s",
	      r ? strerror(-r) : "connected");
	return 0;
}

static void test_slash31_ports(void **state)
{
	struct fixture *f = *state;
	struct pd_netns_opts o = {.range = "10.98.0.0/30", .prefix = 31, .proxy_port = 8888,
				  .transparent_port = 8889};
	create_ok(f, 0, "p31a", &o);
	create_ok(f, 1, "p31b", &o);
	assert_string_equal(ip(f->ns[0].gw), "10.98.0.0");
	assert_string_equal(ip(f->ns[0].sb), "10.98.0.1");
	assert_string_equal(ip(f->ns[1].gw), "10.98.0.2");
	assert_string_equal(ip(f->ns[1].sb), "10.98.0.3");
	assert_int_equal(f->ns[1].prefix, 31);
	assert_true(ruleset_has("dnat ip to 10.98.0.2:8889"));
	int proxy;
	struct pd_err err = {0};
	assert_int_equal(pd_netns_listen(&f->ns[0], NULL, NULL, &proxy, NULL, &err), 0);
	run_in(f->ns[0].fd, probe_inside, &f->ns[0]);
	run_in(f->ns[0].fd, probe_proxy, &f->ns[0]);
	drain_accepts(proxy, 1);
	close(proxy);
}

/* ------------------------------------------------------------------------- */
/* destroy, gc                                                                */

static void test_destroy(void **state)
{
	struct fixture *f = *state;
	create_ok(f, 0, "one", NULL);
	create_ok(f, 1, "two", NULL);
	char one[16], two[16];
	snprintf(one, sizeof one, "%s", f->ns[0].host_if);
	snprintf(two, sizeof two, "%s", f->ns[1].host_if);
	int fds = count_fds();
	destroy_ok(f, 0);
	assert_int_equal(count_fds(), fds - 1); /* the netns fd */
	assert_false(if_exists(one));
	assert_false(has_chain(one));
	assert_false(ruleset_has("\"pd0-one\""));
	assert_true(if_exists(two));
	assert_true(has_chain(two));
	/* twice is fine */
	destroy_ok(f, 0);
	/* the freed block is reused */
	create_ok(f, 2, "three", NULL);
	assert_int_equal(f->ns[2].index, 0);
	destroy_ok(f, 1);
	assert_true(ruleset_has("table inet paddock"));
	destroy_ok(f, 2);
	assert_false(ruleset_has("table inet paddock"));
	/* other tables are never touched */
	sh("nft add table inet other && nft add chain inet other c");
	create_ok(f, 0, "four", NULL);
	destroy_ok(f, 0);
	struct pd_err err = {0};
	assert_int_equal(pd_netns_gc(&err), 0);
	assert_true(ruleset_has("table inet other"));
	assert_false(ruleset_has("table inet paddock"));
}

/* A failure after the veth exists (here: nft refuses, because a foreign set of
 * another type sits where ours goes) leaves nothing behind. */
static void test_rollback(void **state)
{
	(void)state;
	sh("nft add table inet paddock && nft add set inet paddock sb_if '{ type ipv4_addr; }'");
	int fds = count_fds();
	struct pd_netns n;
	memset(&n, 0x33, sizeof n);
	struct pd_netns before = n;
	struct pd_err err = {0};
	int r = pd_netns_create("rb", NULL, &n, &err);
	assert_true(r < 0);
	assert_string_equal(err.layer, "network");
	assert_non_null(strstr(err.msg, "sandbox rb: adding firewall rules: nft: Error:"));
	assert_null(strchr(err.msg, '\n'));
	assert_memory_equal(&n, &before, sizeof n);
	assert_false(if_exists("pd0-rb"));
	assert_int_equal(count_fds(), fds);
	assert_true(ruleset_has("type ipv4_addr")); /* not ours to remove */
}

/* A forked paddock: creates a sandbox netns, optionally leaves a "sandbox"
 * process inside it, reports the interface name, then waits to be killed. */
struct owner {
	const char *id;
	bool sandbox;  /* keep the netns alive with a process inside */
	pid_t sandbox_pid;
	char host_if[16];
};

static pid_t start_owner(struct owner *o)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct pd_netns n;
		struct pd_err err;
		if (pd_netns_create(o->id, NULL, &n, &err) < 0)
			_exit(1);
		pid_t sb = 0;
		if (o->sandbox && (sb = fork()) == 0) {
			if (setns(n.fd, CLONE_NEWNET) < 0)
				_exit(1);
			for (;;)
				pause();
		}
		char rep[64];
		int len = snprintf(rep, sizeof rep, "%d %s", (int)sb, n.host_if);
		if (write(p[1], rep, len) != len)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	char rep[64] = "";
	ssize_t n = read(p[0], rep, sizeof rep - 1);
	close(p[0]);
	assert_true(n > 0);
	rep[n] = '\0';
	int sb;
	assert_int_equal(sscanf(rep, "%d %15s", &sb, o->host_if), 2);
	o->sandbox_pid = sb;
	return pid;
}

static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_gc(void **state)
{
	struct fixture *f = *state;
	struct pd_err err = {0};
	/* nothing to do on a clean host */
	assert_int_equal(pd_netns_gc(&err), 0);

	create_ok(f, 0, "live", NULL);
	struct owner orphan = {.id = "orphan", .sandbox = true}, gone = {.id = "gone"};
	pid_t o1 = start_owner(&orphan);
	f->kids[0] = orphan.sandbox_pid;
	pid_t o2 = start_owner(&gone);
	assert_true(if_exists(orphan.host_if));
	assert_true(if_exists(gone.host_if));
	/* a veth that is not ours, named like ours, without our alias */
	sh("ip link add name pdfake type veth peer name pdfakepeer");

	/* a live owner is left alone */
	assert_int_equal(pd_netns_gc(&err), 0);
	assert_true(if_exists(orphan.host_if));

	kill_wait(o1); /* its sandbox process still holds the netns: the veth stays */
	kill_wait(o2); /* nothing holds it: the kernel deletes the veth, rules stay */
	assert_true(if_exists(orphan.host_if));
	assert_true(has_chain(orphan.host_if));
	assert_true(has_chain(gone.host_if));

	int r = pd_netns_gc(&err);
	char buf[1200];
	if (r < 0)
		fail_msg("gc: %s", pd_err_format(&err, buf, sizeof buf));
	/* orphan: veth + rules; gone: rules (+ its veth if the kernel had not got to it) */
	assert_true(r >= 3);
	assert_false(if_exists(orphan.host_if));
	assert_false(has_chain(orphan.host_if));
	assert_false(has_chain(gone.host_if));
	assert_false(if_exists(gone.host_if));
	assert_true(if_exists(f->ns[0].host_if));
	assert_true(has_chain(f->ns[0].host_if));
	assert_true(if_exists("pdfake"));
	assert_int_equal(pd_netns_gc(&err), 0);

	destroy_ok(f, 0);
	assert_false(ruleset_has("table inet paddock"));
	/* rules without any veth at all: gc drops them and the table */
	struct owner gone2 = {.id = "gone2"};
	kill_wait(start_owner(&gone2));
	assert_true(has_chain(gone2.host_if));
	assert_true(pd_netns_gc(&err) >= 1);
	assert_false(ruleset_has("table inet paddock"));
}

/* ------------------------------------------------------------------------- */
/* allocation                                                                 */

static void test_alloc_skips_host(void **state)
{
	struct fixture *f = *state;
	/* block 0 has a host address, blocks 2-3 a host route; default routes are no
	 * collision */
	sh("ip addr add 10.231.0.1/30 dev lo && ip route add blackhole 10.231.0.8/29 && "
	   "ip route add blackhole default");
	create_ok(f, 0, "a", NULL);
	assert_int_equal(f->ns[0].index, 1);
	assert_string_equal(ip(f->ns[0].gw), "10.231.0.5");
	create_ok(f, 1, "b", NULL);
	assert_int_equal(f->ns[1].index, 4);
	assert_string_equal(ip(f->ns[1].gw), "10.231.0.17");
	assert_string_equal(f->ns[1].host_if, "pd4-b");
	/* a host address outside the range of the /30 itself, in a bigger subnet */
	sh("ip addr add 10.231.1.77/24 dev lo");
	struct pd_netns_opts o = {.range = "10.231.1.0/29"};
	struct pd_netns n;
	struct pd_err err = {0};
	assert_int_equal(pd_netns_create("c", &o, &n, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "10.231.1.0/24"));
}

static void test_alloc_exhausted(void **state)
{
	struct fixture *f = *state;
	struct pd_netns_opts o = {.range = "10.99.0.0/29"};
	create_ok(f, 0, "x1", &o);
	create_ok(f, 1, "x2", &o);
	struct pd_netns n;
	memset(&n, 0x5a, sizeof n);
	struct pd_netns before = n;
	struct pd_err err = {0};
	int fds = count_fds();
	assert_int_equal(pd_netns_create("x3", &o, &n, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "exhausted"));
	assert_non_null(strstr(err.msg, "10.99.0.0/29"));
	assert_memory_equal(&n, &before, sizeof n);
	assert_int_equal(count_fds(), fds);
	assert_false(if_exists("pd2-x3"));
	/* freeing one makes room */
	destroy_ok(f, 0);
	create_ok(f, 2, "x3", &o);
	assert_int_equal(f->ns[2].index, 0);
}

static void test_alloc_range_collides(void **state)
{
	struct fixture *f = *state;
	(void)f;
	/* a VPN-like route over the whole range */
	sh("ip route add unreachable 10.0.0.0/8");
	struct pd_netns n;
	struct pd_err err = {0};
	int fds = count_fds();
	assert_int_equal(pd_netns_create("vpn", NULL, &n, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "10.231.0.0/16"));
	assert_non_null(strstr(err.msg, "route 10.0.0.0/8"));
	assert_true(err.hint[0] != '\0');
	assert_int_equal(count_fds(), fds);
	assert_false(if_exists("pd0-vpn"));
	assert_false(ruleset_has("paddock"));
	/* another range works */
	create_ok(f, 0, "vpn", &(struct pd_netns_opts){.range = "172.31.200.0/24"});
	assert_string_equal(ip(f->ns[0].gw), "172.31.200.1");
}

/* Two paddock processes creating at once get different blocks. */
static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	enum { N = 4 };
	int go[2], res[2];
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			close(res[0]);
			char b;
			if (read(go[0], &b, 1) != 0) /* wait for the start: EOF */
				_exit(1);
			char id[16];
			snprintf(id, sizeof id, "c%d", i);
			struct pd_netns n;
			struct pd_err err;
			char rep[32] = "fail";
			if (pd_netns_create(id, NULL, &n, &err) == 0)
				snprintf(rep, sizeof rep, "%08x", (unsigned)n.gw.s_addr);
			if (write(res[1], rep, 8) != 8)
				_exit(1);
			close(res[1]);
			pause(); /* hold until killed */
			_exit(0);
		}
		f->kids[i] = pids[i];
	}
	close(go[0]);
	close(res[1]);
	close(go[1]); /* start all */
	char all[N][9];
	for (int i = 0; i < N; i++) {
		size_t got = 0;
		while (got < 8) {
			ssize_t n = read(res[0], all[i] + got, 8 - got);
			assert_true(n > 0);
			got += n;
		}
		all[i][8] = '\0';
		assert_string_not_equal(all[i], "fail");
	}
	close(res[0]);
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			assert_string_not_equal(all[i], all[j]);
	for (int i = 0; i < N; i++) {
		kill_wait(pids[i]);
		f->kids[i] = 0;
	}
	struct pd_err err = {0};
	assert_true(pd_netns_gc(&err) >= N);
	assert_false(ruleset_has("paddock"));
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_netns: needs root, skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traffic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slash31_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_skips_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_range_collides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
