#!/usr/bin/env bash
# bench/secrets.sh: issue 6's benchmark. Secret injection by the egress
# gateway (paddock-egress intercepting TLS for a host that has a secret and
# replacing the placeholder in x-api-key with the real value) side by side
# with a direct connection, paddock-egress's pass-through (a host without a
# secret: spliced, not intercepted) and mitmproxy (Debian's mitmdump, an
# explicit proxy with its own CA, doing the same header rewrite with a
# five-line addon), on the same TLS upstream, in ONE run:
#
#   1. latency per request with keep-alive, handshake excluded: per variant
#      and round one TLS connection (through the proxy: CONNECT, then TLS),
#      SB_WARM untimed requests, then LAT_N / LAT_ROUNDS sequential requests
#      timed one by one; LAT_ROUNDS rounds, the variants' order rotated.
#      p50/p99 and what each adds to direct. Goal: <= 0.5 ms added at p50
#      (paddock-egress injecting).
#   2. requests/s on one core: every proxy pinned to CPU 1 (taskset -c 1),
#      the upstream and the client to CPU 0; RPS_CONNS keep-alive
#      connections driven by one epoll client, one request in flight on
#      each, RPS_SECONDS per sample after 1 s of warm-up, RPS_ROUNDS rounds
#      rotated; the proxy's CPU time per request (all its threads,
#      schedstat) over the same window. Goal: paddock-egress injecting
#      >= 20x mitmproxy injecting. "client ceiling" is direct with the
#      upstream moved to CPU 1: what the client alone does on CPU 0.
#
# Every answer is checked: the upstream classifies the x-api-key it got
# ("real" value, "placeholder", other, none) and says so in a header
# (never the value); the client stops at the first answer that is not what
# the variant must produce (real for the injecting variants, placeholder
# for direct and pass-through). The upstream's totals are printed at the
# end.
#
# Run as root from the repository root:   bash bench/secrets.sh
# Needs mitmproxy (Debian 12: 8.1.1), dnsmasq, libssl-dev, taskset, python3.
# Not part of the test suite. No packet goes anywhere but loopback and the
# three network namespaces the script creates (and removes):
#
#   cl (client, CPU 0)            gw (the proxies, CPU 1)            up (CPU 0)
#   198.51.100.2 ------------ 198.51.100.1 | 203.0.113.1 ------------ 203.0.113.10
#   default via 198.51.100.1  ip_forward=1 (for "direct")            HTTPS :443 (secbench serve,
#                             paddock-egress :3128 (api.test has       test CA; api.test, plain.test)
#                               a secret, plain.test not)            dnsmasq :53
#                             mitmdump :3132 (rewrite addon;         (*.test -> 203.0.113.10)
#                               plain.test ignored = spliced)
#
# Environment: LAT_N (4000), LAT_ROUNDS (8), SB_WARM (50), RPS_CONNS (16),
# RPS_SECONDS (5), RPS_ROUNDS (3; 0 skips part 2), PROXY_CPU (1; 0 puts the
# proxies on the client's and upstream's CPU: latency only, part 2 is then
# skipped), EGRESS_BIN (build/paddock-egress, built with `make` when not
# given).
set -euo pipefail

LAT_N=${LAT_N:-4000}
LAT_ROUNDS=${LAT_ROUNDS:-8}
export SB_WARM=${SB_WARM:-50}
RPS_CONNS=${RPS_CONNS:-16}
RPS_SECONDS=${RPS_SECONDS:-5}
RPS_ROUNDS=${RPS_ROUNDS:-3}
PROXY_CPU=${PROXY_CPU:-1}

load_note() {
	echo "# load $1: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(
		[ -r /proc/pressure/cpu ] && printf '; cpu pressure %s' "$(head -n 1 /proc/pressure/cpu)")"
}
die() {
	echo "bench/secrets.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -f src/egress/main.c ] || die "run from the repository root"
for tool in ip nft dnsmasq mitmdump taskset openssl cc python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the proxies on CPU 1, the rest on CPU 0)"
repo_root=$PWD
if [ -z "${EGRESS_BIN:-}" ]; then
	make -s all >&2 || die "make failed"
	EGRESS_BIN=$repo_root/build/paddock-egress
fi
EG=$(realpath "$EGRESS_BIN")

tmp=$(mktemp -d /var/tmp/paddock-bench-secrets.XXXXXX)
chmod 755 "$tmp"
id=$$
UP=pdbs-up-$id GW=pdbs-gw-$id CL=pdbs-cl-$id
pids=()
netns_mounted=$(awk '$5 == "/run/netns"' /proc/self/mountinfo)
etc_netns=$([ -d /etc/netns ] && echo yes || true)
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $UP $GW $CL; do ip netns del "$n" 2>/dev/null; done
	rm -rf "/etc/netns/$GW" "$tmp"
	[ -n "$etc_netns" ] || rmdir /etc/netns 2>/dev/null
	if [ -z "$netns_mounted" ] && [ -z "$(ip netns list)" ]; then
		while awk '$5 == "/run/netns"' /proc/self/mountinfo | grep -q .; do umount /run/netns || break; done
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# (background processes are started with `ip netns exec` itself, not a shell
# function, so that $! is the process and the cleanup's kill reaches it;
# taskset and mitmdump exec, so $! stays the process)
wait_tcp() { # netns addr port
	for _ in $(seq 150); do
		ip netns exec "$1" bash -c "echo >/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on $2:$3 in $1"
}

# --- the upstream and the clients (C, OpenSSL, built here) ---
cat >"$tmp/secbench.c" <<'SECBENCH_C'
/* secbench.c: the TLS upstream and the clients of bench/secrets.sh.
 * Built by the script into its temporary directory (cc -O2 -lssl -lcrypto);
 * not part of paddock.
 *
 *   secbench serve ADDR PORT CERT KEY REAL PLACEHOLDER COUNTFILE
 *       HTTPS/1.1 upstream: one thread, epoll, non-blocking OpenSSL, ALPN
 *       http/1.1. Every request's x-api-key value is classified: "real"
 *       (== REAL), "placeholder" (== PLACEHOLDER), "other" or "none"; the
 *       answer is 200 with a 3-byte body "ok\n" and the header
 *       "x-seen: CLASS" (never the value). On SIGUSR1 it writes the counts
 *       of each class to COUNTFILE (one line of JSON).
 *   secbench lat TARGET HOST CAFILE EXPECT N
 *       One connection: TCP to TARGET, which is direct:ADDR:PORT or
 *       proxy:ADDR:PORT (then CONNECT HOST:443 first), TLS to HOST (SNI,
 *       name verified against CAFILE, ALPN http/1.1). WARMUP (env SB_WARM,
 *       default 50) requests untimed, then N sequential keep-alive requests
 *       "GET /r" with "x-api-key: $SB_PH", each timed from the first byte
 *       written to the last byte of the answer read. Every answer must be
 *       200 with x-seen: EXPECT. Prints JSON percentiles (us); with
 *       SB_RAW=FILE, appends every time (us) to FILE.
 *   secbench rps TARGET HOST CAFILE EXPECT CONNS SECONDS
 *       CONNS such connections, opened first (handshakes not timed), then
 *       driven from one epoll loop, one request in flight on each; counts
 *       answers during SECONDS after a 1 s warm-up. Env SB_PIDS=PID,...:
 *       processes whose CPU time (all threads, /proc/PID/task/T/schedstat)
 *       is measured over the same window. Prints JSON.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "secbench: %s: %s\n", what, errno ? strerror(errno) : "failed");
	ERR_print_errors_fp(stderr);
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
		fprintf(stderr, "secbench: bad address %s\n", s);
		exit(2);
	}
	return a;
}

/* SSL_write all of it; on a non-blocking socket, wait for room. */
static int ssl_write_all(SSL *ssl, int fd, const char *p, size_t n)
{
	while (n) {
		int w = SSL_write(ssl, p, (int)n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		int e = SSL_get_error(ssl, w);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
			return -1;
		struct pollfd q = { .fd = fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
		poll(&q, 1, 5000);
	}
	return 0;
}

/* ---- server -------------------------------------------------------------- */

struct sconn {
	int fd;
	SSL *ssl;
	int hs_done;
	size_t len;
	char buf[32768];
};

static const char *real_value, *placeholder;
static unsigned long counts[4]; /* real, placeholder, other, none */
static const char *const classes[4] = { "real", "placeholder", "other", "none" };
static volatile sig_atomic_t dump_counts;

static void on_usr1(int sig)
{
	(void)sig;
	dump_counts = 1;
}

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	(void)s, (void)arg;
	for (unsigned i = 0; i < inlen; i += 1u + in[i])
		if (in[i] == 8 && i + 9 <= inlen && !memcmp(in + i + 1, "http/1.1", 8)) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

static int classify(char *head) /* head is NUL-terminated */
{
	char *h = strcasestr(head, "\r\nx-api-key:");
	if (!h)
		return 3;
	h += 12;
	while (*h == ' ' || *h == '\t')
		h++;
	char *e = strstr(h, "\r\n");
	size_t n = e ? (size_t)(e - h) : strlen(h);
	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == strlen(real_value) && !memcmp(h, real_value, n))
		return 0;
	if (n == strlen(placeholder) && !memcmp(h, placeholder, n))
		return 1;
	return 2;
}

static int serve_step(struct sconn *c) /* 0: keep, -1: close */
{
	if (!c->hs_done) {
		for (;;) {
			int r = SSL_accept(c->ssl);
			if (r == 1)
				break;
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				return 0;
			if (e != SSL_ERROR_WANT_WRITE)
				return -1;
			struct pollfd q = { .fd = c->fd, .events = POLLOUT };
			poll(&q, 1, 5000);
		}
		c->hs_done = 1;
	}
	for (;;) {
		if (c->len >= sizeof c->buf - 1)
			return -1;
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - 1 - c->len));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
		}
		c->len += (size_t)n;
		c->buf[c->len] = 0;
		char *end;
		while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
			size_t used = (size_t)(end + 4 - c->buf);
			char save = c->buf[used - 2];
			c->buf[used - 2] = 0; /* head up to its last \r\n */
			int k = classify(c->buf);
			c->buf[used - 2] = save;
			counts[k]++;
			char resp[160];
			int rn = snprintf(resp, sizeof resp,
					  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nx-seen: %s\r\n\r\nok\n", classes[k]);
			if (ssl_write_all(c->ssl, c->fd, resp, (size_t)rn) < 0)
				return -1;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			c->buf[c->len] = 0;
		}
	}
}

static void write_counts(const char *file)
{
	FILE *f = fopen(file, "w");
	if (!f)
		return;
	fprintf(f, "{\"real\":%lu,\"placeholder\":%lu,\"other\":%lu,\"none\":%lu}\n", counts[0], counts[1],
		counts[2], counts[3]);
	fclose(f);
}

static int cmd_serve(int argc, char **argv)
{
	if (argc != 9)
		return 2;
	struct sockaddr_in a = parse_addr(argv[2]);
	a.sin_port = htons((uint16_t)atoi(argv[3]));
	real_value = argv[6];
	placeholder = argv[7];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1)
		die("server certificate");
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4096) < 0)
		die("bind/listen");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART: epoll_wait returns */
	sigaction(SIGUSR1, &sa, NULL);
	struct epoll_event evs[256];
	for (;;) {
		if (dump_counts) {
			dump_counts = 0;
			write_counts(argv[8]);
		}
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof *c);
					c->fd = fd;
					c->ssl = SSL_new(ctx);
					SSL_set_fd(c->ssl, fd);
					SSL_set_accept_state(c->ssl);
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			if (serve_step(c) < 0) {
				SSL_free(c->ssl);
				close(c->fd);
				free(c);
			}
		}
	}
}

/* ---- clients ------------------------------------------------------------- */

static SSL_CTX *cctx;
static const char *req_host, *expect;
static char req[1024];
static size_t req_len;

struct cconn {
	int fd;
	SSL *ssl;
	size_t len;
	uint64_t t0;
	char buf[16384];
};

static void client_init(const char *host, const char *cafile, const char *exp)
{
	const char *ph = getenv("SB_PH");
	if (!ph)
		ph = "";
	req_host = host;
	expect = exp;
	req_len = (size_t)snprintf(req, sizeof req,
				   "GET /r HTTP/1.1\r\nHost: %s\r\nUser-Agent: secbench\r\nAccept: */*\r\n"
				   "x-api-key: %s\r\n\r\n",
				   host, ph);
	cctx = SSL_CTX_new(TLS_client_method());
	if (!cctx || SSL_CTX_load_verify_locations(cctx, cafile, NULL) != 1)
		die("client CA file");
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_protos(cctx, (const unsigned char *)"\x08http/1.1", 9);
}

/* TCP (+ CONNECT) + TLS, blocking. */
static struct cconn *open_conn(const char *target)
{
	int proxy = !strncmp(target, "proxy:", 6);
	if (!proxy && strncmp(target, "direct:", 7)) {
		fprintf(stderr, "secbench: target is direct:ADDR:PORT or proxy:ADDR:PORT\n");
		exit(2);
	}
	struct sockaddr_in a = parse_addr(target + (proxy ? 6 : 7));
	struct cconn *c = calloc(1, sizeof *c);
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	if (proxy) {
		char r[512];
		int n = snprintf(r, sizeof r, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", req_host, req_host);
		if (send(c->fd, r, (size_t)n, MSG_NOSIGNAL) != n)
			die("send CONNECT");
		/* nothing follows the answer until the TLS handshake: read byte-wise
		 * up to the blank line, so no TLS byte is eaten */
		size_t len = 0;
		while (len < sizeof r - 1) {
			if (recv(c->fd, r + len, 1, 0) != 1)
				die("CONNECT answer");
			len++;
			if (len >= 4 && !memcmp(r + len - 4, "\r\n\r\n", 4))
				break;
		}
		r[len] = 0;
		if (strncmp(r + 8, " 200", 4)) {
			fprintf(stderr, "secbench: CONNECT refused: %s\n", r);
			exit(1);
		}
	}
	c->ssl = SSL_new(cctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, req_host);
	SSL_set1_host(c->ssl, req_host);
	if (SSL_connect(c->ssl) != 1)
		die("TLS handshake");
	return c;
}

/* Parse one answer from c->buf; 1 if complete (and removed), 0 if more is
 * needed. Exits on a wrong answer. */
static int take_answer(struct cconn *c)
{
	char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hl = (size_t)(end + 4 - c->buf);
	char save = *end;
	*end = 0;
	char *cl = strcasestr(c->buf, "\r\ncontent-length:");
	char *seen = strcasestr(c->buf, "\r\nx-seen:");
	size_t body = cl ? (size_t)atol(cl + 17) : 0;
	int ok = !strncmp(c->buf + 8, " 200", 4) && seen;
	if (ok) {
		seen += 9;
		while (*seen == ' ')
			seen++;
		ok = !strncmp(seen, expect, strlen(expect)) && (seen[strlen(expect)] == '\r' || !seen[strlen(expect)]);
	}
	if (!ok) {
		fprintf(stderr, "secbench: unexpected answer (wanted x-seen: %s):\n%s\n", expect, c->buf);
		exit(1);
	}
	*end = save;
	if (c->len < hl + body)
		return 0;
	memmove(c->buf, c->buf + hl + body, c->len - hl - body);
	c->len -= hl + body;
	return 1;
}

static void one_request(struct cconn *c) /* blocking */
{
	if (ssl_write_all(c->ssl, c->fd, req, req_len) < 0)
		die("SSL_write");
	for (;;) {
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len));
		if (n <= 0)
			die("SSL_read");
		c->len += (size_t)n;
		if (take_answer(c))
			return;
	}
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

static int cmd_lat(int argc, char **argv)
{
	if (argc != 7)
		return 2;
	client_init(argv[3], argv[4], argv[5]);
	long n = atol(argv[6]), warm = getenv("SB_WARM") ? atol(getenv("SB_WARM")) : 50;
	struct cconn *c = open_conn(argv[2]);
	for (long i = 0; i < warm; i++)
		one_request(c);
	uint64_t *t = calloc((size_t)n, sizeof *t);
	for (long i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		one_request(c);
		t[i] = now_ns() - t0;
	}
	const char *raw = getenv("SB_RAW");
	FILE *rf = raw ? fopen(raw, "a") : NULL;
	for (long i = 0; rf && i < n; i++)
		fprintf(rf, "%.2f\n", (double)t[i] / 1000.0);
	if (rf)
		fclose(rf);
	qsort(t, (size_t)n, sizeof *t, cmp_u64);
	printf("{\"n\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f}\n", n,
	       pct(t, (size_t)n, 0.5), pct(t, (size_t)n, 0.99), (double)t[0] / 1000.0,
	       (double)t[n - 1] / 1000.0);
	SSL_shutdown(c->ssl);
	return 0;
}

/* CPU time (ns) of a process, all its threads. */
static uint64_t proc_cpu_ns(long pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	DIR *d = opendir(path);
	uint64_t sum = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[300];
		snprintf(p, sizeof p, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
		FILE *f = fopen(p, "r");
		unsigned long long v = 0;
		if (f && fscanf(f, "%llu", &v) == 1)
			sum += v;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

static uint64_t self_cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmd_rps(int argc, char **argv)
{
	if (argc != 8)
		return 2;
	client_init(argv[3], argv[4], argv[5]);
	int nc = atoi(argv[6]);
	double secs = atof(argv[7]);
	long pids[16];
	int np = 0;
	char *pl = getenv("SB_PIDS") ? strdup(getenv("SB_PIDS")) : NULL;
	for (char *s = pl ? strtok(pl, ",") : NULL; s && np < 16; s = strtok(NULL, ","))
		pids[np++] = atol(s);
	struct cconn **cs = calloc((size_t)nc, sizeof *cs);
	int ep = epoll_create1(0);
	for (int i = 0; i < nc; i++) {
		cs[i] = open_conn(argv[2]);
		fcntl(cs[i]->fd, F_SETFL, fcntl(cs[i]->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = cs[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i]->fd, &e);
	}
	for (int i = 0; i < nc; i++)
		if (ssl_write_all(cs[i]->ssl, cs[i]->fd, req, req_len) < 0)
			die("SSL_write");
	uint64_t start = now_ns(), w0 = start + 1000000000u, w1 = w0 + (uint64_t)(secs * 1e9);
	uint64_t done = 0, done0 = 0, cpu0[16], cpu1[16], self0 = 0, self1 = 0, t0 = 0, t1 = 0;
	int measuring = 0;
	struct epoll_event evs[256];
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= w0) {
			measuring = 1;
			done0 = done;
			t0 = t;
			self0 = self_cpu_ns();
			for (int i = 0; i < np; i++)
				cpu0[i] = proc_cpu_ns(pids[i]);
		} else if (measuring && t >= w1) {
			t1 = t;
			self1 = self_cpu_ns();
			for (int i = 0; i < np; i++)
				cpu1[i] = proc_cpu_ns(pids[i]);
			break;
		}
		int n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;
			for (;;) {
				int r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len));
				if (r <= 0) {
					int e = SSL_get_error(c->ssl, r);
					if (e == SSL_ERROR_WANT_READ)
						break;
					die("SSL_read (a connection closed?)");
				}
				c->len += (size_t)r;
				while (take_answer(c)) {
					done++;
					if (ssl_write_all(c->ssl, c->fd, req, req_len) < 0)
						die("SSL_write");
				}
			}
		}
	}
	uint64_t got = done - done0;
	double el = (double)(t1 - t0) / 1e9;
	printf("{\"conns\":%d,\"seconds\":%.3f,\"requests\":%llu,\"rps\":%.0f,\"client_cpu_us_per_req\":%.2f", nc,
	       el, (unsigned long long)got, (double)got / el, (double)(self1 - self0) / 1e3 / (double)got);
	for (int i = 0; i < np; i++)
		printf(",\"cpu_us_per_req_%ld\":%.2f,\"cpu_util_%ld\":%.3f", pids[i],
		       (double)(cpu1[i] - cpu0[i]) / 1e3 / (double)got, pids[i],
		       (double)(cpu1[i] - cpu0[i]) / 1e9 / el);
	printf("}\n");
	return 0;
}

int main(int argc, char **argv)
{
	int r = 2;
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "serve"))
		r = cmd_serve(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "lat"))
		r = cmd_lat(argc, argv);
	else if (argc > 1 && !strcmp(argv[1], "rps"))
		r = cmd_rps(argc, argv);
	if (r == 2)
		fprintf(stderr, "usage: see the comment at the top of secbench.c\n");
	return r;
}
SECBENCH_C
cc -O2 -Wall -o "$tmp/secbench" "$tmp/secbench.c" -lssl -lcrypto || die "cannot build secbench"
B=$tmp/secbench

# --- certificates: the upstream's test CA and its certificate ---
(
	cd "$tmp"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout upca.key \
		-out upca.pem -days 2 -subj /CN=pdbench-upstream-ca 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
		-subj /CN=api.test 2>/dev/null
	printf 'subjectAltName=DNS:api.test,DNS:plain.test\n' >san.ext
	openssl x509 -req -in srv.csr -CA upca.pem -CAkey upca.key -CAcreateserial -out srv.pem \
		-days 2 -extfile san.ext 2>/dev/null
) || die "openssl failed"
# A placeholder as the daemon makes them, and a value of an API key's length.
PH=paddock-secret-$(openssl rand -hex 16)
VAL=sk-bench-$(openssl rand -hex 48)
export SB_PH=$PH

# --- namespaces and links (as bench/egress.sh) ---
for n in $UP $GW $CL; do ip netns add "$n" && ip -n "$n" link set lo up; done
ip link add gwu netns "$GW" type veth peer name upg netns "$UP"
ip link add gwc netns "$GW" type veth peer name clg netns "$CL"
ip -n "$GW" addr add 203.0.113.1/24 dev gwu && ip -n "$GW" link set gwu up
ip -n "$UP" addr add 203.0.113.10/24 dev upg && ip -n "$UP" link set upg up
ip -n "$GW" addr add 198.51.100.1/24 dev gwc && ip -n "$GW" link set gwc up
ip -n "$CL" addr add 198.51.100.2/24 dev clg && ip -n "$CL" link set clg up
ip -n "$CL" route add default via 198.51.100.1
ip -n "$UP" route add 198.51.100.0/24 via 203.0.113.1
ip netns exec "$GW" sysctl -q -w net.ipv4.ip_forward=1
mkdir -p "/etc/netns/$GW" # mitmdump resolves with the system resolver
echo "nameserver 203.0.113.10" >"/etc/netns/$GW/resolv.conf"

# --- upstream and DNS (CPU 0) ---
ip netns exec "$UP" taskset -c 0 "$B" serve 203.0.113.10 443 "$tmp/srv.pem" "$tmp/srv.key" "$VAL" "$PH" \
	"$tmp/counts.json" 2>"$tmp/upstream.log" &
pids+=($!)
uppid=$!
ip netns exec "$UP" taskset -c 0 dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--listen-address=203.0.113.10 --port=53 --pid-file= --user=root --address=/test/203.0.113.10 \
	2>"$tmp/dnsmasq.log" &
pids+=($!)

# --- the proxies (CPU 1) ---
ip netns exec "$GW" taskset -c "$PROXY_CPU" "$EG" --sandbox bench --mode filtered --allow api.test --allow plain.test \
	--proxy 198.51.100.1:3128 --dns-upstream 203.0.113.10 --events "$tmp/events.jsonl" \
	--upstream-ca "$tmp/upca.pem" --secret "API_KEY=$PH:$VAL@api.test" --ca-out "$tmp/egress-ca.pem" \
	2>"$tmp/egress.log" &
pids+=($!)
egpid=$!
cat >"$tmp/rewrite.py" <<'PY'
# mitmdump -s rewrite.py: the same rewrite as paddock-egress's, for one
# secret: its placeholder in x-api-key -> its value, for its host only.
import os
PH, VAL, HOST = os.environ["SB_PH"], os.environ["SB_VAL"], "api.test"

def request(flow):
    v = flow.request.headers.get("x-api-key")
    if v is not None and PH in v and flow.request.pretty_host == HOST:
        flow.request.headers["x-api-key"] = v.replace(PH, VAL)
PY
mkdir -m 700 "$tmp/mitm"
SB_VAL=$VAL ip netns exec "$GW" taskset -c "$PROXY_CPU" mitmdump --quiet --listen-host 198.51.100.1 --listen-port 3132 \
	--set confdir="$tmp/mitm" --set ssl_verify_upstream_trusted_ca="$tmp/upca.pem" \
	--ignore-hosts '^plain\.test$' --set flow_detail=0 -s "$tmp/rewrite.py" >"$tmp/mitm.log" 2>&1 &
pids+=($!)
mitmpid=$!
wait_tcp "$UP" 203.0.113.10 443
wait_tcp "$GW" 198.51.100.1 3128
wait_tcp "$GW" 198.51.100.1 3132
[ -s "$tmp/mitm/mitmproxy-ca-cert.pem" ] || die "mitmdump wrote no CA: $(cat "$tmp/mitm.log")"

# --- variants: name|target|host|CA|what the upstream must see|proxy pid ---
variants=(
	"direct|direct:203.0.113.10:443|api.test|$tmp/upca.pem|placeholder|"
	"paddock-egress pass-through (spliced)|proxy:198.51.100.1:3128|plain.test|$tmp/upca.pem|placeholder|$egpid"
	"paddock-egress injecting|proxy:198.51.100.1:3128|api.test|$tmp/egress-ca.pem|real|$egpid"
	"mitmproxy pass-through (ignore_hosts)|proxy:198.51.100.1:3132|plain.test|$tmp/upca.pem|placeholder|$mitmpid"
	"mitmproxy injecting|proxy:198.51.100.1:3132|api.test|$tmp/mitm/mitmproxy-ca-cert.pem|real|$mitmpid"
)
client() { # variant cmd args... (in cl, on CPU 0)
	local name target host ca want pp
	IFS='|' read -r name target host ca want pp <<<"$1"
	shift
	local cmd=$1
	shift
	SB_PIDS=$pp ip netns exec "$CL" taskset -c 0 "$B" "$cmd" "$target" "$host" "$ca" "$want" "$@"
}
for v in "${variants[@]}"; do
	out=$(SB_WARM=2 client "$v" lat 3 2>&1) || die "variant ${v%%|*} fails: $out"
done

echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -sr)"
echo "# paddock-egress: $EG (repository at $(git -C "$repo_root" describe --always --dirty)), pid $egpid, CPU $PROXY_CPU"
echo "# $(mitmdump --version | head -n 1) ($(dpkg-query -W -f '${Version}' mitmproxy 2>/dev/null || echo ?)), $(mitmdump --version | sed -n 's/^Python: *//p' | sed 's/^/Python /'), pid $mitmpid, CPU $PROXY_CPU"
echo "# $(openssl version); TLS 1.3 everywhere (ALPN http/1.1); upstream: $B serve (epoll, one thread), CPU 0"
echo "# namespaces $UP $GW $CL; client: ip netns exec $CL taskset -c 0 $B lat|rps TARGET HOST CAFILE EXPECT ..."

# ---- 1. latency ------------------------------------------------------------
per=$((LAT_N / LAT_ROUNDS))
echo
echo "## 1. latency per request, keep-alive, handshake excluded: $LAT_ROUNDS rounds x $per requests per variant (after $SB_WARM untimed on the same connection), order rotated"
echo "# each sample: $B lat TARGET HOST CAFILE EXPECT $per  (one TLS connection; 'GET /r' with x-api-key: <placeholder>; timed from SSL_write to the answer's last byte)"
load_note before
mkdir -p "$tmp/raw"
: >"$tmp/lat.tsv"
n=${#variants[@]}
for r in $(seq 0 $((LAT_ROUNDS - 1))); do
	for k in $(seq 0 $((n - 1))); do
		v=${variants[$(((k + r) % n))]}
		name=${v%%|*}
		printf '%s\t%s\n' "$name" "$(SB_RAW="$tmp/raw/$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)" client "$v" lat "$per")" \
			>>"$tmp/lat.tsv"
	done
done
load_note after
python3 - "$tmp/lat.tsv" "$tmp/raw" <<'PY'
import os, re, statistics, sys
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
a = res["paddock-egress injecting"][0] - d50
print(f"paddock-egress injecting adds {a/1000:.3f} ms at p50 "
      f"({(res['paddock-egress injecting'][0] - res['paddock-egress pass-through (spliced)'][0])/1000:+.3f} ms vs its pass-through); "
      f"goal <= 0.5 ms: {'met' if a <= 500 else 'MISSED by %.3f ms' % ((a - 500) / 1000)}")
m = res["mitmproxy injecting"][0] - d50
print(f"mitmproxy injecting adds {m/1000:.3f} ms at p50 ({m/a if a > 0 else float('inf'):.1f}x paddock-egress's added latency)")
PY

# ---- 2. requests/s on one core ---------------------------------------------
[ "$RPS_ROUNDS" -gt 0 ] && [ "$PROXY_CPU" = 1 ] || { echo; echo "# (requests/s skipped: RPS_ROUNDS=0 or PROXY_CPU is not 1)"; RPS_ROUNDS=0; }
if [ "$RPS_ROUNDS" -gt 0 ]; then
rps_variants=("client ceiling (direct, upstream on CPU 1)|direct:203.0.113.10:443|api.test|$tmp/upca.pem|placeholder|$uppid"
	"${variants[0]}" "${variants[1]}" "${variants[2]}" "${variants[4]}")
echo
echo "## 2. requests/s, proxies pinned to CPU 1, client and upstream on CPU 0: $RPS_CONNS keep-alive connections, one request in flight on each, $RPS_ROUNDS rounds x ${RPS_SECONDS} s (after 1 s warm-up), order rotated"
echo "# each sample: SB_PIDS=PROXY_PID $B rps TARGET HOST CAFILE EXPECT $RPS_CONNS $RPS_SECONDS"
load_note before
: >"$tmp/rps.tsv"
n=${#rps_variants[@]}
for r in $(seq 0 $((RPS_ROUNDS - 1))); do
	for k in $(seq 0 $((n - 1))); do
		v=${rps_variants[$(((k + r) % n))]}
		name=${v%%|*}
		pp=$(cut -d'|' -f6 <<<"$v")
		case $name in client*) taskset -pc 1 "$uppid" >/dev/null ;; esac
		line=$(client "$v" rps "$RPS_CONNS" "$RPS_SECONDS") ||
			die "rps $name failed (upstream $(kill -0 "$uppid" 2>/dev/null && echo alive || echo dead); its log: $(tail -n 3 "$tmp/upstream.log"))"
		case $name in client*) taskset -pc 0 "$uppid" >/dev/null ;; esac
		printf '%s\t%s\t%s\n' "$name" "$pp" "$line" >>"$tmp/rps.tsv"
	done
done
load_note after
python3 - "$tmp/rps.tsv" <<'PY'
import json, statistics, sys
res, names = {}, []
for line in open(sys.argv[1]):
    name, pid, js = line.rstrip("\n").split("\t")
    x = json.loads(js)
    if name not in names:
        names.append(name)
    cpu = x.get(f"cpu_us_per_req_{pid}") if pid else None
    util = x.get(f"cpu_util_{pid}") if pid else None
    res.setdefault(name, []).append((x["rps"], x["client_cpu_us_per_req"], cpu, util))
med = lambda v: statistics.median(v)
print()
print("| variant | median req/s | min – max req/s | client CPU µs/req | proxy CPU µs/req | proxy CPU use | req/s per proxy CPU-second |")
print("|---|---|---|---|---|---|---|")
summary = {}
for name in names:
    v = res[name]
    rps = med([a for a, _, _, _ in v]); cl = med([b for _, b, _, _ in v])
    is_proxy = not name.startswith(("direct", "client"))
    if is_proxy:
        cpu = med([c for _, _, c, _ in v]); util = med([u for _, _, _, u in v])
        summary[name] = (rps, cpu)
        print(f"| {name} | {rps:.0f} | {min(a for a, *_ in v):.0f} – {max(a for a, *_ in v):.0f} | {cl:.1f} | {cpu:.1f} | {100*util:.0f}% | {1e6/cpu:.0f} |")
    else:
        note = " (upstream CPU µs/req: %.1f)" % med([c for _, _, c, _ in v]) if name.startswith("client") else ""
        print(f"| {name}{note} | {rps:.0f} | {min(a for a, *_ in v):.0f} – {max(a for a, *_ in v):.0f} | {cl:.1f} | | | |")
print()
p, m = summary["paddock-egress injecting"], summary["mitmproxy injecting"]
print(f"requests/s measured: paddock-egress injecting {p[0]:.0f}, mitmproxy injecting {m[0]:.0f}: {p[0]/m[0]:.1f}x")
print(f"requests per proxy CPU-second: paddock-egress {1e6/p[1]:.0f}, mitmproxy {1e6/m[1]:.0f}: {m[1]/p[1]:.1f}x")
print(f"goal >= 20x mitmproxy's requests/s: {'met' if p[0]/m[0] >= 20 else 'MISSED'} (measured req/s); "
      f"{'met' if m[1]/p[1] >= 20 else 'MISSED'} (per CPU-second of the proxy)")
PY
fi

# ---- the upstream's tally ----------------------------------------------------
kill -USR1 "$uppid"
for _ in $(seq 50); do [ -s "$tmp/counts.json" ] && break; sleep 0.1; done
echo
echo "# the upstream's x-api-key tally over the whole run (every answer was also checked by the client): $(cat "$tmp/counts.json")"
echo "# paddock-egress events: $(cat "$tmp/events.jsonl" 2>/dev/null | grep -c '"event":"inject"' || true) inject (one per intercepted connection), $(cat "$tmp/events.jsonl" 2>/dev/null | grep -c '"intercept_error"' || true) intercept errors"
grep -q "$VAL" "$tmp/egress.log" "$tmp/events.jsonl" "$tmp/mitm.log" 2>/dev/null && echo "# WARNING: the value appears in a proxy's log" || true
