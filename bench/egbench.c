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
 *       connection is kept. Stops after 200 failures in a row. Then waits
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

static int dial(struct sockaddr_in *a, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct timeval tv = { .tv_sec = 5 };
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
	for (long i = 0; held < want && fails < 200; i++) {
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
