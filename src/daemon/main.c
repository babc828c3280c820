/* paddockd: the only privileged process. It owns named sandboxes, the ptys
 * of their sessions and the state database, and serves the CLI over a Unix
 * socket whose permissions decide who may use paddock (root, and the
 * `paddock` group when it exists). Protocol: docs/PROTOCOL.md.
 *
 *   paddockd [--socket PATH] [--db PATH] [--foreground]
 *
 * The CLI starts it on demand; contrib/paddockd.service runs it under
 * systemd. One instance per socket (a lock next to it). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/listener.h>

#include "common/cleanup.h"
#include "daemon/daemon.h"
#include "daemon/proto.h"
#include "image/image.h"
#include "sandbox/fence.h"

/* ---- clients ------------------------------------------------------------ */

static void client_free(struct client *c)
{
	struct daemon *d = c->d;
	session_detach(c);
	if (c->follow) {
		for (struct client **p = &c->follow->followers; *p; p = &(*p)->next_follow)
			if (*p == c) {
				*p = c->next_follow;
				break;
			}
		c->follow = NULL;
	}
	bufferevent_free(c->bev);
	d->n_clients--;
	free(c);
}

static void client_flushed(struct bufferevent *bev, void *ctx)
{
	struct client *c = ctx;
	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(c);
}

/* Close once everything queued has been written. */
void client_close(struct client *c)
{
	if (c->mode == CL_WAITING) { /* a job still holds it: it closes when done */
		c->closing = true;
		return;
	}
	session_detach(c);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_free(c);
}

void client_send(struct client *c, int type, const void *data, size_t len)
{
	uint8_t hdr[PD_FRAME_HDR];
	pd_frame_hdr(hdr, type, len);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, hdr, sizeof hdr);
	if (len)
		evbuffer_add(out, data, len);
}

void client_reply(struct client *c, json_t *obj)
{
	if (!obj)
		obj = json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s) {
		client_send(c, PD_FR_JSON, s, strlen(s));
		free(s);
	}
	if (c->mode == CL_REQUEST || c->mode == CL_WAITING)
		c->mode = CL_REPLIED;
}

void client_error(struct client *c, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	bool closing = c->closing;
	c->closing = false;
	client_reply(c, json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "code", code));
	c->mode = CL_REPLIED;
	client_close(c);
	(void)closing;
}

static void client_frame(struct client *c, int type, char *data, size_t len)
{
	if (c->mode == CL_REQUEST) {
		if (type != PD_FR_JSON) {
			client_error(c, 2, "protocol: the first frame must be a JSON request");
			return;
		}
		json_error_t je;
		json_t *req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
		/* the request may carry secret values: no copy outlives parsing
		 * (the handlers fork workers and sessions from this process) */
		explicit_bzero((void *)data, len);
		if (!req || !json_is_object(req)) {
			json_decref(req);
			client_error(c, 2, "protocol: the request is not a JSON object: %s",
				     req ? "not an object" : je.text);
			return;
		}
		bufferevent_set_timeouts(c->bev, NULL, NULL);
		op_dispatch(c, req);
		json_decref(req);
		return;
	}
	if (c->mode != CL_STREAM || !c->sess) {
		if (type == PD_FR_IN || type == PD_FR_WINCH)
			return; /* input after the session ended: drop */
		client_error(c, 2, "protocol: unexpected frame");
		return;
	}
	if (type == PD_FR_IN)
		session_input(c->sess, data, len);
	else if (type == PD_FR_WINCH)
		session_winch(c->sess, (unsigned short)((uint8_t)data[0] << 8 | (uint8_t)data[1]),
			      (unsigned short)((uint8_t)data[2] << 8 | (uint8_t)data[3]));
	else
		client_error(c, 2, "protocol: unexpected frame");
}

static void client_read(struct bufferevent *bev, void *ctx)
{
	struct client *c = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!c->closing) {
		uint8_t hdr[PD_FRAME_HDR];
		if (evbuffer_copyout(in, hdr, sizeof hdr) < (ssize_t)sizeof hdr)
			return;
		int type;
		size_t len;
		int r = pd_frame_parse(hdr, &type, &len);
		if (r < 0) {
			client_error(c, 2, "protocol: %s",
				     r == -EMSGSIZE ? "message too large" : "unknown frame type");
			return;
		}
		if (evbuffer_get_length(in) < sizeof hdr + len) {
			/* read no more than the frame needs */
			bufferevent_setwatermark(bev, EV_READ, 0, sizeof hdr + len + 4096);
			return;
		}
		evbuffer_drain(in, sizeof hdr);
		char *data = malloc(len + 1);
		if (!data) {
			client_error(c, 1, "out of memory");
			return;
		}
		evbuffer_remove(in, data, len);
		data[len] = '\0';
		client_frame(c, type, data, len);
		explicit_bzero(data, len); /* requests may carry secret values */
		free(data);
		if (c->mode == CL_WAITING || c->mode == CL_REPLIED)
			return; /* one request per connection */
	}
}

static void client_event(struct bufferevent *bev, short what, void *ctx)
{
	struct client *c = ctx;
	if (what & BEV_EVENT_TIMEOUT) {
		client_error(c, 2, "protocol: no request within %d s", PD_REQUEST_TIMEOUT);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* the client went away: a session it watched lives on */
		if (c->mode == CL_WAITING) {
			c->closing = true;
			session_detach(c);
			bufferevent_disable(bev, EV_READ | EV_WRITE);
			return;
		}
		client_free(c);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *ctx)
{
	struct daemon *d = ctx;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (d->n_clients >= PD_MAX_CLIENTS) {
		/* say why before closing (a new socket's buffer takes it whole) */
		static const char msg[] = "{\"ok\":false,\"error\":\"paddockd is serving too many "
					  "connections; try again later\",\"code\":1}";
		uint8_t hdr[PD_FRAME_HDR];
		pd_frame_hdr(hdr, PD_FR_JSON, sizeof msg - 1);
		struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *)msg, sizeof msg - 1 } };
		(void)!writev(fd, iov, 2);
		close(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		close(fd);
		return;
	}
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	d->n_clients++;
	struct timeval tv = { PD_REQUEST_TIMEOUT, 0 };
	bufferevent_setcb(c->bev, client_read, client_flushed, client_event, c);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 64 << 10);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- log and events ---------------------------------------------------- */

void dsb_log(struct dsb *s, const char *fmt, ...)
{
	char line[1200], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(line, sizeof line, "paddock %s ", ts);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (s->log_fd >= 0)
		(void)!write(s->log_fd, line, (size_t)n);
	for (struct client *c = s->followers; c; c = c->next_follow)
		client_send(c, PD_FR_OUT, line, (size_t)n);
}

void daemon_event(struct daemon *d, const char *sandbox, const char *kind, json_t *detail)
{
	if (!detail)
		detail = json_object();
	char *s = json_dumps(detail, JSON_COMPACT);
	json_decref(detail);
	struct pd_err err;
	if (s && pd_state_event(d->st, sandbox, kind, s, &err) < 0)
		fprintf(stderr, "paddockd: recording an event: %s\n", err.msg);
	free(s);
}

/* ---- jobs ---------------------------------------------------------------- */

/* A job's work runs in a forked child, not a thread: the daemon stays
 * single-threaded, so the raw clone3 calls that make sandboxes and sessions
 * never copy a malloc lock another thread held (glibc's fork() takes those
 * locks around the copy; clone3 does not). The child reports {r, err, out}
 * as JSON on a pipe and exits; a sandbox it started becomes the daemon's
 * child (we are a subreaper) and is adopted by pid. */

static void job_finish(struct job *j)
{
	json_error_t je;
	size_t len = evbuffer_get_length(j->buf);
	json_t *res = json_loadb((const char *)evbuffer_pullup(j->buf, (ssize_t)len), len, 0, &je);
	int status = 0;
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	event_free(j->ev);
	evbuffer_free(j->buf);
	close(j->fd);
	j->ev = NULL;
	j->buf = NULL;
	j->fd = -1;
	if (!json_is_object(res)) {
		j->r = pd_err_set(&j->err, EIO, "daemon", "a worker process died (status %d)", status);
	} else {
		json_t *e = json_object_get(res, "err");
		j->r = (int)json_integer_value(json_object_get(res, "r"));
		j->err.code = (int)json_integer_value(json_object_get(e, "code"));
		snprintf(j->err.layer, sizeof j->err.layer, "%s",
			 json_string_value(json_object_get(e, "layer")) ?: "");
		snprintf(j->err.msg, sizeof j->err.msg, "%s",
			 json_string_value(json_object_get(e, "msg")) ?: "");
		snprintf(j->err.hint, sizeof j->err.hint, "%s",
			 json_string_value(json_object_get(e, "hint")) ?: "");
		j->out = json_incref(json_object_get(res, "out"));
	}
	json_decref(res);
	if (!j->out)
		j->out = json_object();
	if (j->sb)
		j->sb->busy = false;
	struct client *c = j->c;
	bool gone = c && c->closing;
	if (c) {
		c->mode = CL_REQUEST;
		c->closing = false;
	}
	json_t *out = j->out;
	if (gone) { /* its client left: finish the work, then forget it */
		j->c = NULL;
		j->done(j);
		client_free(c);
	} else {
		j->done(j);
	}
	json_decref(out);
}

static void job_readable(evutil_socket_t fd, short what, void *ctx)
{
	struct job *j = ctx;
	int n = evbuffer_read(j->buf, fd, 65536);
	if (n > 0 && evbuffer_get_length(j->buf) < (16u << 20))
		return;
	if (n < 0 && errno == EAGAIN)
		return;
	job_finish(j);
}

_Noreturn static void job_child(struct job *j, int wfd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	j->out = json_object();
	j->r = 0;
	memset(&j->err, 0, sizeof j->err);
	j->work(j);
	json_t *res = json_pack("{s:i, s:{s:i, s:s, s:s, s:s}, s:O}", "r", j->r, "err", "code",
				j->err.code, "layer", j->err.layer, "msg", j->err.msg, "hint",
				j->err.hint, "out", j->out);
	char *s = res ? json_dumps(res, JSON_COMPACT) : NULL;
	size_t len = s ? strlen(s) : 0, off = 0;
	while (off < len) {
		ssize_t w = write(wfd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	_exit(0);
}

int job_run(struct job *j)
{
	int p[2];
	pd_scrub_stack(); /* the child gets a copy of this process's memory */
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		job_child(j, p[1]);
	}
	close(p[1]);
	evutil_make_socket_nonblocking(p[0]);
	j->pid = pid;
	j->fd = p[0];
	j->buf = evbuffer_new();
	j->ev = event_new(j->d->base, p[0], EV_READ | EV_PERSIST, job_readable, j);
	if (!j->buf || !j->ev || event_add(j->ev, NULL) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (j->ev)
			event_free(j->ev);
		if (j->buf)
			evbuffer_free(j->buf);
		close(p[0]);
		j->ev = NULL;
		j->buf = NULL;
		return -ENOMEM;
	}
	if (j->c)
		j->c->mode = CL_WAITING;
	if (j->sb)
		j->sb->busy = true;
	return 0;
}

/* ---- start-up ------------------------------------------------------------ */

static int make_socket(struct daemon *d)
{
	_cleanup_free_ char *dir = strdup(d->sock_path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (dir[0] && mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	char lock[300];
	snprintf(lock, sizeof lock, "%s.lock", d->sock_path);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return -errno;
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return -EADDRINUSE; /* another paddockd serves this socket */
	}
	/* lfd stays open (and locked) for our lifetime */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(d->sock_path) >= sizeof sa.sun_path) {
		close(fd);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, d->sock_path);
	unlink(d->sock_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* root, and the paddock group when there is one */
	struct group *g = getgrnam("paddock");
	if (g && (chown(d->sock_path, 0, g->gr_gid) < 0 || chmod(d->sock_path, 0660) < 0)) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void on_signal(evutil_socket_t sig, short what, void *ctx)
{
	struct daemon *d = ctx;
	event_base_loopbreak(d->base);
}

/* Is pid a zombie inside a sandbox's pid namespace, other than its pid 1? */
static bool orphan_zombie(pid_t pid)
{
	char path[64], line[512];
	bool zombie = false, nested = false;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f)) {
		if (!strncmp(line, "State:", 6))
			zombie = strchr(line, 'Z') != NULL;
		else if (!strncmp(line, "NSpid:", 6)) {
			char *last = strrchr(line, '\t');
			nested = last && last != strchr(line, '\t') && strtol(last + 1, NULL, 10) != 1;
		}
	}
	return zombie && nested;
}

/* SIGCHLD. A session's command is a child of its shim, which is outside the
 * sandbox's pid namespace; when the shim dies first (killed after a failed
 * exec) the command is reparented to us, the subreaper, and nobody else will
 * ever wait for it. Unreaped, it keeps the namespace's pid 1 from finishing
 * its exit, and stopping the sandbox (which waits for pid 1) hangs the
 * daemon. Reap those; every other child has its own waiter. */
static void on_sigchld(evutil_socket_t sig, short what, void *ctx)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	int pid;
	while (f && fscanf(f, "%d", &pid) == 1)
		if (orphan_zombie(pid))
			waitpid(pid, NULL, WNOHANG);
}

/* The daemon needs nothing of its caller's environment but PATH (image
 * builds run tools) and paddock's own settings; whatever else it holds (an API key exported in the shell that
 * started it) is wiped, so that no worker, session or sandbox forked from
 * here carries it. */
static void scrub_environment(void)
{
	extern char **environ;
	static char *kept[64];
	size_t nk = 0;
	for (char **e = environ; e && *e; e++) {
		if ((!strncmp(*e, "PADDOCK_", 8) || !strncmp(*e, "PATH=", 5)) &&
		    nk < ARRAY_SIZE(kept) - 1) {
			kept[nk++] = strdup(*e);
			if (!kept[nk - 1])
				nk--;
		}
		explicit_bzero(*e, strlen(*e));
	}
	kept[nk] = NULL;
	environ = kept;
}

static void usage(FILE *f)
{
	fputs("usage: paddockd [--socket PATH] [--db PATH] [--dns-upstream ADDR[:PORT]] "
	      "[--upstream-ca FILE] [--foreground]\n", f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "dns-upstream", required_argument, NULL, 'u' },
		{ "upstream-ca", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct daemon d = { .listen_fd = -1, .eg = { .sock = -1 } };
	pd_json_wipe_on_free(); /* secret values pass through JSON */
	scrub_environment();
	pd_event_wipe_on_free(); /* and through libevent's buffers */
	snprintf(d.sock_path, sizeof d.sock_path, "%s",
		 getenv("PADDOCK_SOCKET") ? getenv("PADDOCK_SOCKET") : PD_SOCKET_DEFAULT);
	snprintf(d.db_path, sizeof d.db_path, "%s/paddock.db", image_state_dir());
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			snprintf(d.sock_path, sizeof d.sock_path, "%s", optarg);
			break;
		case 'd':
			snprintf(d.db_path, sizeof d.db_path, "%s", optarg);
			break;
		case 'f':
			break;
		case 'u':
			d.dns_upstream = optarg;
			break;
		case 'C':
			d.upstream_ca = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "paddockd: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "paddockd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "paddockd: must run as root\n");
		return 1;
	}
	if (d.sock_path[0] != '/' || d.db_path[0] != '/') {
		fprintf(stderr, "paddockd: --socket and --db must be absolute paths\n");
		return 2;
	}
	snprintf(d.sbdir, sizeof d.sbdir, "%s/sandboxes", image_state_dir());
	signal(SIGPIPE, SIG_IGN);
	struct pd_err err = { 0 };
	if (mkdir(image_state_dir(), 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "paddockd: creating %s: %s\n", image_state_dir(), strerror(errno));
		return 1;
	}
	if (mkdir(d.sbdir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "paddockd: creating %s: %s\n", d.sbdir, strerror(errno));
		return 1;
	}
	/* One daemon per database too: two would each adopt, stop and remove
	 * the same sandboxes. (The socket's lock alone does not see a second
	 * daemon started on another socket with the same --db.) */
	char dblock[sizeof d.db_path + 8];
	snprintf(dblock, sizeof dblock, "%s.lock", d.db_path);
	int dbl = open(dblock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (dbl < 0 || flock(dbl, LOCK_EX | LOCK_NB) < 0) {
		bool busy = dbl >= 0 && errno == EWOULDBLOCK;
		fprintf(stderr, "paddockd: %s: %s\n", d.db_path,
			busy ? "another paddockd uses this database" : strerror(errno));
		return busy ? 3 : 1;
	}
	/* dbl stays open (and locked) for our lifetime */
	if (pd_state_open(d.db_path, &d.st, &err) < 0) {
		char buf[1200];
		fprintf(stderr, "paddockd: %s\n", pd_err_format(&err, buf, sizeof buf));
		return 1;
	}
	int fd = make_socket(&d);
	if (fd < 0) {
		fprintf(stderr, "paddockd: %s: %s\n", d.sock_path,
			fd == -EADDRINUSE ? "another paddockd is serving this socket"
					  : strerror(-fd));
		pd_state_close(d.st);
		return fd == -EADDRINUSE ? 3 : 1;
	}
	d.base = event_base_new();
	/* sandboxes started by worker processes become our children */
	if (!d.base || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		fprintf(stderr, "paddockd: event loop: %s\n", strerror(errno));
		return 1;
	}
	/* compiled once: every session's shim inherits it */
	if (pd_seccomp_prepare(&err) < 0) {
		char buf[1200];
		fprintf(stderr, "paddockd: %s\n", pd_err_format(&err, buf, sizeof buf));
		return 1;
	}
	reconcile(&d);
	struct evconnlistener *lis =
		evconnlistener_new(d.base, on_accept, &d, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	struct event *sterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	struct event *sint = evsignal_new(d.base, SIGINT, on_signal, &d);
	struct event *schld = evsignal_new(d.base, SIGCHLD, on_sigchld, &d);
	if (!lis || !sterm || !sint || !schld) {
		fprintf(stderr, "paddockd: event loop setup failed\n");
		return 1;
	}
	event_add(sterm, NULL);
	event_add(sint, NULL);
	event_add(schld, NULL);
	/* the CLI waits for this line (or the socket) when it starts us */
	fprintf(stderr, "paddockd: serving %s\n", d.sock_path);
	event_base_dispatch(d.base);
	/* Leaving: named sandboxes live on, a restarted daemon adopts them. */
	evconnlistener_free(lis);
	unlink(d.sock_path);
	while (d.sandboxes) {
		struct dsb *s = d.sandboxes;
		d.sandboxes = s->next;
		dsb_free(s, true);
	}
	egress_shutdown(&d);
	event_free(sterm);
	event_free(sint);
	event_free(schld);
	event_base_free(d.base);
	pd_state_close(d.st);
	return 0;
}
