#!/usr/bin/env bash
# bench/egress.sh: issue 5's benchmark. The egress gateway (paddock-egress:
# CONNECT, plain-HTTP forward and transparent) side by side with a direct
# connection, tinyproxy and squid (Debian packages, run with private config
# files on private ports, never as system services), on the same upstream,
# in ONE run:
#
#   1. throughput of a 1 GiB transfer (ROUNDS rounds, the variants' order
#      rotated every round; median reported). Goal: >= 90% of direct.
#   2. latency per request, keep-alive off (a new connection per request;
#      LAT_N requests per variant in LAT_ROUNDS rounds, rotated); p50/p99
#      and what each adds to direct. Goal: <= 0.1 ms added p50.
#   3. the most concurrent connections held (HOLD_N wanted): each one a
#      tunnel (or, direct, a connection) that has carried one keep-alive
#      request and stays open. Goal: >= 10,000. paddock-egress caps one
#      sandbox at 1024 connections by design (EGRESS_CONNS_PER_SANDBOX), so
#      it is measured once as one sandbox (standalone) and once as
#      HOLD_SANDBOXES sandboxes of one gateway (its --control-fd mode, the
#      way paddockd runs it).
#
# Run as root from the repository root:   bash bench/egress.sh
# Not part of the test suite. No packet goes anywhere but loopback and the
# three network namespaces the script creates (and removes):
#
#   cl (clients)                        gw (the proxies)                up (upstream)
#   198.51.100.2 (and .3) ------ 198.51.100.1 | 203.0.113.1 ------ 203.0.113.10
#   default via 198.51.100.1     ip_forward=1 (for "direct")        HTTP :80 (egbench serve,
#                                nft: tcp 80 from .3 -> :3129        epoll + sendfile)
#                                paddock-egress :3128/:3129          dnsmasq :53
#                                tinyproxy :3130, squid :3131        (bench.test -> 203.0.113.10)
#
# "direct" is the client in cl talking to the upstream through gw's
# forwarding: the same two veth hops as every proxied variant, without the
# proxy. "upstream ceiling" is a client in up itself (loopback). 203.0.113.0/24
# and 198.51.100.0/24 are documentation ranges, which the gateway treats as
# public; it refuses loopback and private destinations by design.
#
# Environment: ROUNDS (5), LAT_N (2000), LAT_ROUNDS (10), HOLD_N (15000),
# HOLD_SANDBOXES (16), GIB (1073741824 bytes per transfer),
# EGRESS_BIN (build/paddock-egress, built with `make` when not given).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
LAT_N=${LAT_N:-2000}
LAT_ROUNDS=${LAT_ROUNDS:-10}
HOLD_N=${HOLD_N:-15000}
HOLD_SANDBOXES=${HOLD_SANDBOXES:-16}
GIB=${GIB:-1073741824}

load_note() {
	echo "# load $1: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(
		[ -r /proc/pressure/cpu ] && printf '; cpu pressure %s' "$(head -n 1 /proc/pressure/cpu)")"
}
die() {
	echo "bench/egress.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -f src/egress/main.c ] || die "run from the repository root"
for tool in ip nft dnsmasq tinyproxy squid cc python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
repo_root=$PWD
if [ -z "${EGRESS_BIN:-}" ]; then
	make -s all >&2 || die "make failed"
	EGRESS_BIN=$repo_root/build/paddock-egress
fi
EG=$(realpath "$EGRESS_BIN")

# 6 fds per proxied connection in paddock-egress, 2 in squid and tinyproxy:
# give every process here as many as it may have. Raising the hard limit
# needs CAP_SYS_RESOURCE, which a container may not have; then the hard
# limit caps every proxy (paddock-egress admits (limit - 256) / 6).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)"

tmp=$(mktemp -d /var/tmp/paddock-bench-egress.XXXXXX)
chmod 755 "$tmp"
shm=$(mktemp -d /dev/shm/paddock-bench-egress.XXXXXX)
id=$$
UP=pdbe-up-$id GW=pdbe-gw-$id CL=pdbe-cl-$id
pids=()
netns_mounted=$(awk '$5 == "/run/netns"' /proc/self/mountinfo)
etc_netns=$([ -d /etc/netns ] && echo yes || true)
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -f "$tmp/squid.pid" ] && kill "$(cat "$tmp/squid.pid")" 2>/dev/null
	wait 2>/dev/null
	for n in $UP $GW $CL; do ip netns del "$n" 2>/dev/null; done
	rm -rf "/etc/netns/$GW" "$tmp" "$shm"
	[ -n "$etc_netns" ] || rmdir /etc/netns 2>/dev/null
	if [ -z "$netns_mounted" ] && [ -z "$(ip netns list)" ]; then
		while awk '$5 == "/run/netns"' /proc/self/mountinfo | grep -q .; do umount /run/netns || break; done
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# (background processes are started with `ip netns exec` itself, not a shell
# function, so that $! is the process and the cleanup's kill reaches it)
ingw() { ip netns exec "$GW" "$@"; }
incl() { ip netns exec "$CL" "$@"; }
wait_tcp() { # netns addr port
	for _ in $(seq 100); do
		ip netns exec "$1" bash -c "echo >/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on $2:$3 in $1"
}

# --- the load generator and upstream (C, built here) ---
cat >"$tmp/egbench.c" <<'EGBENCH_C'
/* bench/egbench.c: the upstream and the clients of bench/egress.sh.
 * Built by the script into its temporary directory (cc -O2); not part of
 * paddock.
 *
 *   egbench serve ADDR PORT FILE
 *       HTTP/1.1 upstream on an epoll loop. GET /small answers "ok\n";
 *       GET /bytes/N answers N bytes, sent with sendfile(2) from FILE (read
 *       again from its start as often as needed). Keep-alive unless the
 *       request says "Connection: close".
 *   egbench get direct|connect|forward ADDR:PORT PATH COUNT [SRC]
 *       COUNT requests one after the other, each on a new connection
 *       (keep-alive off): direct to ADDR:PORT, or through the proxy at
 *       ADDR:PORT with CONNECT bench.test:80 or as an absolute-form GET.
 *       Each request is timed from socket() to the last byte of the body;
 *       prints one line of JSON with the percentiles (µs), bytes and rate.
 *       SRC: the source address to bind (selects the transparent redirect).
 *       With EGB_RAW=FILE in the environment, every request's time (us) is
 *       appended to FILE, one a line.
 *   egbench hold direct|connect ADDR:PORT[,ADDR:PORT...] N [SRC]
 *       Opens up to N connections, spread round robin over the targets;
 *       on each (after CONNECT if asked) one keep-alive GET /small, and the
 *       connection is kept. Stops after 20 failures in a row (each waits at
 *       most 2 s: a proxy out of fds may leave a connection unanswered). Then waits
 *       2 s and counts how many are still open. Prints JSON.
 *   egbench dns ADDR NAME COUNT
 *       COUNT UDP A queries for NAME to ADDR:53, one after the other;
 *       prints the percentiles of the round trip (µs).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST "bench.test"

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static struct sockaddr_in parse_addr(const char *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	char buf[64];
	snprintf(buf, sizeof buf, "%s", s);
	char *c = strrchr(buf, ':');
	if (c) {
		*c = 0;
		a.sin_port = htons((uint16_t)atoi(c + 1));
	}
	if (inet_pton(AF_INET, buf, &a.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", s);
		exit(2);
	}
	return a;
}

/* ---- server -------------------------------------------------------------- */

struct conn {
	int fd;
	char req[4096];
	size_t len;
	off_t left; /* body bytes still to send */
	off_t off;  /* offset in the file */
	int close_after;
	char head[256];
	size_t hlen, hoff;
};

static int file_fd;
static off_t file_size;

static int serve_step(struct conn *c) /* 0: keep, -1: close */
{
	for (;;) {
		if (c->hoff < c->hlen) {
			ssize_t n = send(c->fd, c->head + c->hoff, c->hlen - c->hoff, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			c->hoff += (size_t)n;
			continue;
		}
		if (c->left > 0) {
			if (c->off >= file_size)
				c->off = 0;
			size_t want = (size_t)(file_size - c->off);
			if ((off_t)want > c->left)
				want = (size_t)c->left;
			ssize_t n = sendfile(c->fd, file_fd, &c->off, want);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			if (n == 0)
				return -1;
			c->left -= n;
			continue;
		}
		if (c->hlen) { /* a response is complete */
			c->hlen = c->hoff = 0;
			if (c->close_after) {
				shutdown(c->fd, SHUT_WR);
				return -1;
			}
		}
		/* read (more of) a request */
		char *end = memmem(c->req, c->len, "\r\n\r\n", 4);
		if (!end) {
			if (c->len == sizeof c->req)
				return -1;
			ssize_t n = recv(c->fd, c->req + c->len, sizeof c->req - c->len, 0);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			if (n == 0)
				return -1;
			c->len += (size_t)n;
			continue;
		}
		size_t used = (size_t)(end + 4 - c->req);
		c->req[used - 1] = 0;
		long long n = 3;
		char *p = strstr(c->req, " /bytes/");
		if (p)
			n = atoll(p + 8);
		c->close_after = strcasestr(c->req, "connection: close") != NULL;
		c->hlen = (size_t)snprintf(c->head, sizeof c->head,
					   "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
					   "Connection: %s\r\n\r\n%s",
					   n, c->close_after ? "close" : "keep-alive", p ? "" : "ok\n");
		c->left = p ? n : 0;
		c->off = 0;
		memmove(c->req, c->req + used, c->len - used);
		c->len -= used;
	}
}

static int cmd_serve(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	struct sockaddr_in a = parse_addr(argv[2]);
	a.sin_port = htons((uint16_t)atoi(argv[3]));
	if ((file_fd = open(argv[4], O_RDONLY)) < 0)
		die(argv[4]);
	struct stat st;
	fstat(file_fd, &st);
	file_size = st.st_size;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0)
		die("bind/listen");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	signal(SIGPIPE, SIG_IGN);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof *c);
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
								 .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
					if (serve_step(c) < 0) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			if (serve_step(c) < 0) {
				close(c->fd);
				free(c);
			}
		}
	}
}

/* ---- clients ------------------------------------------------------------- */

static int bind_src(int fd, const char *src)
{
	if (!src || !*src)
		return 0;
	struct sockaddr_in s = parse_addr(src);
	return bind(fd, (struct sockaddr *)&s, sizeof s);
}

static int timeout_s = 5;

static int dial(struct sockaddr_in *a, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bind_src(fd, src) < 0 || connect(fd, (struct sockaddr *)a, sizeof *a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *rbuf;
#define RBUF (1 << 20)

/* Read a response head; returns its Content-Length (-1 on error); *extra
 * gets the body bytes that came with the head. */
static long long read_head(int fd, size_t *extra, int *status)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = recv(fd, rbuf + len, 16384 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		char *end = memmem(rbuf, len, "\r\n\r\n", 4);
		if (end) {
			*end = 0;
			*status = atoi(rbuf + 9);
			char *cl = strcasestr(rbuf, "content-length:");
			*extra = len - (size_t)(end + 4 - rbuf);
			return cl ? atoll(cl + 15) : 0;
		}
		if (len == 16384)
			return -1;
	}
}

static int do_connect(int fd)
{
	static const char req[] = "CONNECT " HOST ":80 HTTP/1.1\r\nHost: " HOST ":80\r\n\r\n";
	/* nothing follows the answer until we send the request: read whole chunks */
	size_t len = 0;
	if (send_all(fd, req, sizeof req - 1) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, rbuf + len, 16383 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		rbuf[len] = 0;
		if (strstr(rbuf, "\r\n\r\n"))
			break;
		if (len == 16383)
			return -1;
	}
	return atoi(rbuf + 9) == 200 ? 0 : -1;
}

/* One request on fd; returns body bytes or -1. */
static long long request(int fd, int forward, const char *path, int keep)
{
	char req[512];
	int n = snprintf(req, sizeof req, "GET %s%s HTTP/1.1\r\nHost: " HOST "\r\n%s\r\n",
			 forward ? "http://" HOST : "", path, keep ? "" : "Connection: close\r\n");
	if (send_all(fd, req, (size_t)n) < 0)
		return -1;
	size_t got;
	int status = 0;
	long long cl = read_head(fd, &got, &status);
	if (cl < 0 || status != 200)
		return -1;
	long long total = (long long)got;
	while (total < cl) {
		ssize_t r = recv(fd, rbuf, RBUF, 0);
		if (r <= 0)
			return -1;
		total += r;
	}
	return total;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double q)
{
	double k = (double)(n - 1) * q;
	size_t f = (size_t)k, c = f + 1 < n ? f + 1 : f;
	return ((double)v[f] + ((double)v[c] - (double)v[f]) * (k - (double)f)) / 1000.0;
}

static int cmd_get(int argc, char **argv)
{
	if (argc < 6)
		return 2;
	const char *mode = argv[2], *path = argv[4], *src = argc > 6 ? argv[6] : NULL;
	struct sockaddr_in a = parse_addr(argv[3]);
	long count = atol(argv[5]);
	uint64_t *t = calloc((size_t)count, sizeof *t);
	long long bytes = 0;
	long fails = 0;
	for (long i = 0; i < count; i++) {
		uint64_t t0 = now_ns();
		int fd = dial(&a, src);
		long long b = -1;
		if (fd >= 0) {
			if (strcmp(mode, "connect") || do_connect(fd) == 0)
				b = request(fd, !strcmp(mode, "forward"), path, 0);
			close(fd);
		}
		t[i] = now_ns() - t0;
		if (b < 0) {
			fails++;
			fprintf(stderr, "egbench: request %ld failed\n", i);
			if (fails > 10)
				return 1;
			i--;
			continue;
		}
		bytes += b;
	}
	uint64_t sum = 0;
	const char *raw = getenv("EGB_RAW");
	FILE *rf = raw ? fopen(raw, "a") : NULL;
	for (long i = 0; i < count; i++) {
		sum += t[i];
		if (rf)
			fprintf(rf, "%.1f\n", (double)t[i] / 1000.0);
	}
	if (rf)
		fclose(rf);
	qsort(t, (size_t)count, sizeof *t, cmp_u64);
	printf("{\"n\":%ld,\"fails\":%ld,\"bytes\":%lld,\"seconds\":%.6f,\"MBps\":%.1f,"
	       "\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f}\n",
	       count, fails, bytes, (double)sum / 1e9, (double)bytes / ((double)sum / 1e9) / 1e6,
	       (double)sum / (double)count / 1000.0, pct(t, (size_t)count, 0.5), pct(t, (size_t)count, 0.9),
	       pct(t, (size_t)count, 0.99), (double)t[0] / 1000.0, (double)t[count - 1] / 1000.0);
	return 0;
}

static int cmd_hold(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	const char *mode = argv[2], *src = argc > 5 ? argv[5] : NULL;
	struct sockaddr_in tg[256];
	int ntg = 0;
	char *list = strdup(argv[3]);
	for (char *s = strtok(list, ","); s && ntg < 256; s = strtok(NULL, ","))
		tg[ntg++] = parse_addr(s);
	long want = atol(argv[4]);
	int *fds = calloc((size_t)want, sizeof *fds);
	long held = 0, fails = 0, fails_total = 0;
	uint64_t t0 = now_ns();
	timeout_s = 2;
	for (long i = 0; held < want && fails < 20; i++) {
		int fd = dial(&tg[i % ntg], src);
		if (fd >= 0 && (strcmp(mode, "connect") || do_connect(fd) == 0) &&
		    request(fd, 0, "/small", 1) == 3) {
			fds[held++] = fd;
			fails = 0;
			continue;
		}
		if (fd >= 0)
			close(fd);
		fails++;
		fails_total++;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	sleep(2);
	long open_after = 0;
	for (long i = 0; i < held; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, 0) == 0)
			open_after++;
	}
	printf("{\"wanted\":%ld,\"held\":%ld,\"still_open_after_2s\":%ld,\"failures\":%ld,\"seconds\":%.2f}\n",
	       want, held, open_after, fails_total, secs);
	for (long i = 0; i < held; i++)
		close(fds[i]);
	return 0;
}

static int cmd_dns(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	struct sockaddr_in a = parse_addr(argv[2]);
	a.sin_port = htons(53);
	long count = atol(argv[4]);
	unsigned char q[512];
	size_t qn = 12;
	memset(q, 0, 12);
	q[2] = 1; /* RD */
	q[5] = 1; /* one question */
	char *name = strdup(argv[3]);
	for (char *l = strtok(name, "."); l; l = strtok(NULL, ".")) {
		q[qn++] = (unsigned char)strlen(l);
		memcpy(q + qn, l, strlen(l));
		qn += strlen(l);
	}
	q[qn++] = 0;
	q[qn++] = 0, q[qn++] = 1, q[qn++] = 0, q[qn++] = 1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	connect(fd, (struct sockaddr *)&a, sizeof a);
	uint64_t *t = calloc((size_t)count, sizeof *t);
	unsigned char r[1500];
	for (long i = 0; i < count; i++) {
		q[0] = (unsigned char)(i >> 8), q[1] = (unsigned char)i;
		uint64_t t0 = now_ns();
		if (send(fd, q, qn, 0) < 0 || recv(fd, r, sizeof r, 0) < 12)
			die("dns");
		t[i] = now_ns() - t0;
	}
	qsort(t, (size_t)count, sizeof *t, cmp_u64);
	printf("{\"n\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", count, pct(t, (size_t)count, 0.5),
	       pct(t, (size_t)count, 0.99));
	return 0;
}

int main(int argc, char **argv)
{
	rbuf = malloc(RBUF);
	int r = 2;
	if (argc > 1 && !strcmp(argv[1], "serve"))
		r = cmd_serve(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "get"))
		r = cmd_get(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "hold"))
		r = cmd_hold(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "dns"))
		r = cmd_dns(argc, argv);
	if (r == 2)
		fprintf(stderr, "usage: see the comment at the top of bench/egbench.c\n");
	return r;
}
EGBENCH_C
cc -O2 -Wall -o "$tmp/egbench" "$tmp/egbench.c" || die "cannot build egbench"
B=$tmp/egbench
# what /bytes/N is sent from: 64 MiB of non-zero data in tmpfs, sendfile'd
head -c $((64 << 20)) /dev/urandom >"$shm/blob"

# --- namespaces and links ---
for n in $UP $GW $CL; do ip netns add "$n" && ip -n "$n" link set lo up; done
ip link add gwu netns "$GW" type veth peer name upg netns "$UP"
ip link add gwc netns "$GW" type veth peer name clg netns "$CL"
ip -n "$GW" addr add 203.0.113.1/24 dev gwu && ip -n "$GW" link set gwu up
ip -n "$UP" addr add 203.0.113.10/24 dev upg && ip -n "$UP" link set upg up
ip -n "$GW" addr add 198.51.100.1/24 dev gwc && ip -n "$GW" link set gwc up
ip -n "$CL" addr add 198.51.100.2/24 dev clg && ip -n "$CL" addr add 198.51.100.3/24 dev clg
ip -n "$CL" link set clg up
ip -n "$CL" route add default via 198.51.100.1
ip -n "$UP" route add 198.51.100.0/24 via 203.0.113.1
for n in $GW $CL; do # many short connections: room in the port range
	ip netns exec "$n" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
done
ingw sysctl -q -w net.ipv4.ip_forward=1
ingw nft -f - <<'NFT'
table ip pdbe {
	chain pre {
		type nat hook prerouting priority dstnat;
		iifname "gwc" ip saddr 198.51.100.3 tcp dport 80 redirect to :3129
	}
}
NFT
mkdir -p "/etc/netns/$GW"
echo "nameserver 203.0.113.10" >"/etc/netns/$GW/resolv.conf"

# --- upstream and DNS ---
ip netns exec "$UP" "$B" serve 203.0.113.10 80 "$shm/blob" 2>"$tmp/upstream.log" &
pids+=($!)
ip netns exec "$UP" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=203.0.113.10 \
	--port=53 --pid-file= --user=root --address=/bench.test/203.0.113.10 2>"$tmp/dnsmasq.log" &
pids+=($!)

# --- the proxies ---
ip netns exec "$GW" "$EG" --sandbox bench --mode filtered --allow bench.test --proxy 198.51.100.1:3128 \
	--transparent 198.51.100.1:3129 --dns-upstream 203.0.113.10 --events "$tmp/events.jsonl" \
	2>"$tmp/egress.log" &
pids+=($!)
egpid=$!
cat >"$tmp/tinyproxy.conf" <<EOF
Port 3130
Listen 198.51.100.1
Timeout 600
MaxClients 20000
LogLevel Critical
LogFile "$tmp/tinyproxy.log"
PidFile "$tmp/tinyproxy.pid"
DisableViaHeader Yes
EOF
ip netns exec "$GW" tinyproxy -d -c "$tmp/tinyproxy.conf" 2>"$tmp/tinyproxy.err" &
pids+=($!)
tinypid=$!
mkdir -p "$tmp/squid"
chown proxy: "$tmp/squid"
cat >"$tmp/squid.conf" <<EOF
http_port 198.51.100.1:3131
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log $tmp/squid/cache.log
pid_filename $tmp/squid.pid
coredump_dir $tmp/squid
dns_nameservers 203.0.113.10
max_filedescriptors $(ulimit -Hn)
cache_effective_user proxy
shutdown_lifetime 1 seconds
via off
forwarded_for delete
netdb_filename none
EOF
ip netns exec "$GW" squid -N -f "$tmp/squid.conf" 2>"$tmp/squid.err" &
pids+=($!)
squidpid=$!
wait_tcp "$UP" 203.0.113.10 80
wait_tcp "$GW" 198.51.100.1 3128
wait_tcp "$GW" 198.51.100.1 3130
wait_tcp "$GW" 198.51.100.1 3131

# --- variants: name, netns, mode, target, source ---
# (the order is the table's; the rounds rotate it)
variants=(
	"direct|$CL|direct|203.0.113.10:80|198.51.100.2"
	"paddock-egress CONNECT|$CL|connect|198.51.100.1:3128|"
	"paddock-egress transparent|$CL|direct|203.0.113.10:80|198.51.100.3"
	"paddock-egress forward|$CL|forward|198.51.100.1:3128|"
	"tinyproxy CONNECT|$CL|connect|198.51.100.1:3130|"
	"tinyproxy forward|$CL|forward|198.51.100.1:3130|"
	"squid CONNECT|$CL|connect|198.51.100.1:3131|"
	"squid forward|$CL|forward|198.51.100.1:3131|"
	"upstream ceiling (loopback in up)|$UP|direct|203.0.113.10:80|"
)
cpu_ticks() { # pid -> utime + stime of the process and its threads (clock ticks)
	awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
run_get() { # variant path count -> JSON line, prefixed with the name
	local name ns mode target src
	IFS='|' read -r name ns mode target src <<<"$1"
	printf '%s\t%s\n' "$name" "$(ip netns exec "$ns" "$B" get "$mode" "$target" "$2" "$3" $src)"
}
# every variant works, and the upstream answers what it was asked
for v in "${variants[@]}"; do
	out=$(run_get "$v" /small 3) || die "variant ${v%%|*} fails: $out"
done

echo "# machine: $(nproc) CPUs, $(uname -sr); $(tinyproxy -v 2>&1 | head -n1); $(squid -v | head -n1); $(dnsmasq -v | head -n1)"
echo "# paddock-egress: $EG (repository at $(git -C "$repo_root" describe --always --dirty))"
echo "# open files: soft $(ulimit -Sn), hard $(ulimit -Hn) (every process of this run)"
echo "# namespaces $UP $GW $CL; upstream: $B serve (epoll, sendfile from tmpfs)"

# ---- 1. throughput ---------------------------------------------------------
tp_variants=("${variants[0]}" "${variants[1]}" "${variants[2]}" "${variants[3]}" "${variants[4]}"
	"${variants[6]}" "${variants[8]}")
echo
echo "## 1. throughput: GET /bytes/$GIB, $ROUNDS rounds, order rotated every round"
echo "# each sample: ip netns exec NS $B get MODE TARGET /bytes/$GIB 1 [SRC]"
load_note before
: >"$tmp/tp.tsv"
n=${#tp_variants[@]}
for r in $(seq 0 $((ROUNDS - 1))); do
	for k in $(seq 0 $((n - 1))); do
		v=${tp_variants[$(((k + r) % n))]}
		case $v in
		*3128* | *198.51.100.3) pp=$egpid ;; *3130*) pp=$tinypid ;; *3131*) pp=$squidpid ;; *) pp= ;;
		esac
		c0=$([ -n "$pp" ] && cpu_ticks "$pp" || echo 0)
		line=$(run_get "$v" "/bytes/$GIB" 1)
		c1=$([ -n "$pp" ] && cpu_ticks "$pp" || echo 0)
		printf '%s\t%s\n' "$line" "$((c1 - c0))" >>"$tmp/tp.tsv"
	done
done
load_note after
python3 - "$tmp/tp.tsv" "$(getconf CLK_TCK)" <<'EOF'
import json, statistics, sys
res, cpu, hz = {}, {}, int(sys.argv[2])
for line in open(sys.argv[1]):
    name, js, ticks = line.rstrip("\n").split("\t")
    x = json.loads(js)
    res.setdefault(name, []).append(x["MBps"])
    cpu.setdefault(name, []).append(int(ticks) / hz / (x["bytes"] / 2**30))
d = statistics.median(res["direct"])
print()
print("| variant | median MB/s | min – max MB/s | vs direct (median) | proxy CPU s per GiB (median) |")
print("|---|---|---|---|---|")
for name, v in res.items():
    m = statistics.median(v)
    c = statistics.median(cpu[name])
    print(f"| {name} | {m:.0f} | {min(v):.0f} – {max(v):.0f} | {100*m/d:.0f}% | {c:.2f} |" if c else
          f"| {name} | {m:.0f} | {min(v):.0f} – {max(v):.0f} | {100*m/d:.0f}% | |")
print()
for name in ("paddock-egress CONNECT", "paddock-egress transparent"):
    m = statistics.median(res[name]) / d
    print(f"{name}: {100*m:.0f}% of direct; goal >= 90%: {'met' if m >= 0.9 else 'MISSED'}")
EOF

# ---- 2. latency ------------------------------------------------------------
echo
echo "## 2. latency per request, keep-alive off: GET /small (3-byte body), $LAT_ROUNDS rounds of $((LAT_N / LAT_ROUNDS)) per variant, order rotated"
echo "# each sample: ip netns exec NS $B get MODE TARGET /small $((LAT_N / LAT_ROUNDS)) [SRC] (timed from socket() to the last byte)"
echo "# the gateway's own DNS round trip to the stand-in (egbench dns from gw, 2000 queries): $(ingw "$B" dns 203.0.113.10 bench.test 2000)"
load_note before
: >"$tmp/lat.tsv"
n=${#variants[@]}
per=$((LAT_N / LAT_ROUNDS))
for r in $(seq 0 $((LAT_ROUNDS - 1))); do
	for k in $(seq 0 $((n - 1))); do
		v=${variants[$(((k + r) % n))]}
		name=${v%%|*}
		mkdir -p "$tmp/raw"
		EGB_RAW="$tmp/raw/$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)" run_get "$v" /small "$per" >>"$tmp/lat.tsv"
	done
done
load_note after
python3 - "$tmp/lat.tsv" "$tmp/raw" <<'EOF'
import json, os, re, statistics, sys
names = []
for line in open(sys.argv[1]):
    name = line.split("\t")[0]
    if name not in names:
        names.append(name)
def pct(v, q):
    k = (len(v) - 1) * q; f = int(k); c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)
res = {}
for name in names:
    v = sorted(float(x) for x in open(os.path.join(sys.argv[2], re.sub(r"[^a-zA-Z0-9]", "_", name))))
    res[name] = (pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), statistics.fmean(v), len(v))
d50, _, d99, _, _ = res["direct"]
print()
print("| variant | requests | p50 (µs) | p90 (µs) | p99 (µs) | mean (µs) | added p50 (µs) | added p99 (µs) | p50 vs direct |")
print("|---|---|---|---|---|---|---|---|---|")
for name, (p50, p90, p99, mean, n) in res.items():
    print(f"| {name} | {n} | {p50:.0f} | {p90:.0f} | {p99:.0f} | {mean:.0f} | {p50-d50:+.0f} | {p99-d99:+.0f} | {p50/d50:.2f}x |")
print()
for name in ("paddock-egress CONNECT", "paddock-egress transparent", "paddock-egress forward"):
    a = res[name][0] - d50
    print(f"{name}: adds {a/1000:.3f} ms at p50; goal <= 0.1 ms: "
          f"{'met' if a <= 100 else 'MISSED by %.3f ms' % ((a - 100) / 1000)}")
EOF

# ---- 3. concurrent connections ---------------------------------------------
# paddock-egress as HOLD_SANDBOXES sandboxes of one gateway, by its control
# socket (as paddockd drives it); the driver drains the events and waits.
cat >"$tmp/multi.py" <<'PY'
import array, json, os, signal, socket, subprocess, sys
eg, up, k, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([eg, "--control-fd", str(theirs.fileno()), "--dns-upstream", up],
                     pass_fds=[theirs.fileno()])
theirs.close()
signal.signal(signal.SIGTERM, lambda *a: (p.terminate(), sys.exit(0)))
for i in range(k):
    port = base + 10 * i
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.1", port))
    fds = [u]
    for q in (port, port + 1, port + 2):
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("198.51.100.1", q)); t.listen(4096); fds.append(t)
    ctl.sendmsg([json.dumps({"op": "add", "sandbox": "s%d" % i, "mode": "filtered",
                             "allow": ["bench.test"], "deny": []}).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [f.fileno() for f in fds]))])
    for f in fds: f.close()
    while True:
        m = json.loads(ctl.recv(65536))
        if "event" not in m: break
    assert m == {"ok": True}, m
print("ready", flush=True)
while True:  # drain events until killed
    if not ctl.recv(65536):
        break
PY
multi_base=5000
ip netns exec "$GW" python3 "$tmp/multi.py" "$EG" 203.0.113.10 "$HOLD_SANDBOXES" "$multi_base" >"$tmp/multi.out" 2>"$tmp/multi.err" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/multi.out" && break; sleep 0.1; done
grep -q ready "$tmp/multi.out" || die "the multi-sandbox gateway did not start: $(cat "$tmp/multi.err")"
multi_targets=$(for i in $(seq 0 $((HOLD_SANDBOXES - 1))); do printf '198.51.100.1:%d,' $((multi_base + 10 * i + 1)); done)
multi_targets=${multi_targets%,}

hold_variants=(
	"direct|$CL|direct|203.0.113.10:80|198.51.100.2"
	"paddock-egress CONNECT, 1 sandbox|$CL|connect|198.51.100.1:3128|"
	"paddock-egress transparent, 1 sandbox|$CL|direct|203.0.113.10:80|198.51.100.3"
	"paddock-egress CONNECT, $HOLD_SANDBOXES sandboxes|$CL|connect|$multi_targets|"
	"tinyproxy CONNECT|$CL|connect|198.51.100.1:3130|"
	"squid CONNECT|$CL|connect|198.51.100.1:3131|"
)
echo
echo "## 3. concurrent connections: up to $HOLD_N each, one CONNECT (if a proxy) + one keep-alive GET /small, held"
echo "# each: ip netns exec $CL $B hold MODE TARGET[,TARGET...] $HOLD_N [SRC]"
load_note before
: >"$tmp/hold.tsv"
for v in "${hold_variants[@]}"; do
	IFS='|' read -r name ns mode target src <<<"$v"
	printf '%s\t%s\n' "$name" "$(ip netns exec "$ns" "$B" hold "$mode" "$target" "$HOLD_N" $src)" >>"$tmp/hold.tsv"
	sleep 2
done
load_note after
python3 - "$tmp/hold.tsv" <<'EOF'
import json, sys
print()
print("| variant | held | still open 2 s later | failed attempts | seconds to open |")
print("|---|---|---|---|---|")
for line in open(sys.argv[1]):
    name, js = line.rstrip("\n").split("\t")
    x = json.loads(js)
    print(f"| {name} | {x['held']} | {x['still_open_after_2s']} | {x['failures']} | {x['seconds']} |")
EOF
echo "# gateway log (standalone), last lines:"
tail -n 3 "$tmp/egress.log" | sed 's/^/#   /'
echo "# events written by the standalone gateway: $(wc -l <"$tmp/events.jsonl")"
