/* session.c: processes running in a named sandbox, and who watches them.
 *
 * The daemon holds each session's pty master (or its stdio pipes), so a
 * session outlives the client that started it. Its output goes to every
 * attached client and into a bounded scrollback (PD_SCROLLBACK) that an
 * attach replays. A client that falls PD_CLIENT_OUT_MAX behind is detached
 * rather than letting the session block. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "daemon/daemon.h"
#include "daemon/proto.h"

static void session_finish(struct session *s);

static void forward(struct session *s, int type, struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	if (!len)
		return;
	unsigned char *data = evbuffer_pullup(buf, (ssize_t)len);
	if (s->capture) {
		if (evbuffer_get_length(s->capture) + len > s->capture_max)
			s->capture_overflow = true;
		else if (type == PD_FR_OUT)
			evbuffer_add(s->capture, data, len);
	}
	if (s->to_log && s->sb->log_fd >= 0)
		(void)!write(s->sb->log_fd, data, len);
	if (!s->capture || type == PD_FR_ERR) { /* an export keeps its stderr for the error */
		evbuffer_add(s->scroll, data, len);
		size_t have = evbuffer_get_length(s->scroll);
		if (have > PD_SCROLLBACK)
			evbuffer_drain(s->scroll, have - PD_SCROLLBACK);
	}
	for (struct client *c = s->clients, *next; c; c = next) {
		next = c->next_sess;
		for (size_t off = 0; off < len; off += PD_FRAME_MAX_DATA) {
			size_t k = len - off < PD_FRAME_MAX_DATA ? len - off : PD_FRAME_MAX_DATA;
			client_send(c, type, data + off, k);
		}
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > PD_CLIENT_OUT_MAX) {
			session_detach(c);
			client_close(c);
		}
	}
	evbuffer_drain(buf, len);
}

static void out_read(struct bufferevent *bev, void *ctx)
{
	struct session *s = ctx;
	forward(s, bev == s->err ? PD_FR_ERR : PD_FR_OUT, bufferevent_get_input(bev));
}

static void maybe_finish(struct session *s)
{
	if (s->exited && s->out_eof && s->err_eof)
		session_finish(s);
}

static void out_event(struct bufferevent *bev, short what, void *ctx)
{
	struct session *s = ctx;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* a pty master reads EIO once the last slave fd is closed */
	forward(s, bev == s->err ? PD_FR_ERR : PD_FR_OUT, bufferevent_get_input(bev));
	bufferevent_disable(bev, EV_READ);
	if (bev == s->err)
		s->err_eof = true;
	else
		s->out_eof = true;
	maybe_finish(s);
}

static void linger_done(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;
	/* the command exited but something it left behind still holds its
	 * output open: take what is there and finish */
	s->out_eof = s->err_eof = true;
	session_finish(s);
}

static void on_exit_ev(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;
	siginfo_t si = { 0 };
	if (waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	event_del(s->exit_ev);
	s->exited = true;
	s->code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	struct timeval tv = { 0, 200000 };
	s->linger = evtimer_new(s->sb->d->base, linger_done, s);
	if (s->linger)
		evtimer_add(s->linger, &tv);
	maybe_finish(s);
}

static void session_finish(struct session *s)
{
	if (s->finished)
		return;
	s->finished = true;
	if (s->out)
		out_read(s->out, s);
	if (s->err)
		out_read(s->err, s);
	struct dsb *sb = s->sb;
	if (s->num > 0) {
		s->row.state = PD_SESS_EXITED;
		s->row.exit_code = s->code;
		s->row.ended_at = time(NULL);
		struct pd_err err;
		pd_state_sess_update(sb->d->st, &s->row, &err);
		daemon_event(sb->d, sb->row.name, "session-end",
			     json_pack("{s:I, s:i}", "session", (json_int_t)s->num, "code", s->code));
		dsb_log(sb, "session %lld exited with code %d", (long long)s->num, s->code);
	}
	char code[32];
	int n = snprintf(code, sizeof code, "{\"code\":%d}", s->code);
	for (struct client *c = s->clients, *next; c; c = next) {
		next = c->next_sess;
		client_send(c, PD_FR_EXIT, code, (size_t)n);
		session_detach(c);
		client_close(c);
	}
	if (s->on_end)
		s->on_end(s, s->ctx);
	/* unlink and free */
	for (struct session **p = &sb->sessions; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	session_free(s);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	while (s->clients) {
		struct client *c = s->clients;
		session_detach(c);
		client_close(c);
	}
	if (s->exit_ev)
		event_free(s->exit_ev);
	if (s->linger)
		event_free(s->linger);
	if (s->in_ev)
		event_free(s->in_ev);
	if (s->out)
		bufferevent_free(s->out);
	if (s->err)
		bufferevent_free(s->err);
	if (s->in_fd >= 0)
		close(s->in_fd);
	if (s->pidfd >= 0) {
		if (!s->exited) {
			syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
			waitpid(s->pid, NULL, 0);
		}
		close(s->pidfd);
	}
	if (s->in_pending)
		evbuffer_free(s->in_pending);
	if (s->scroll)
		evbuffer_free(s->scroll);
	if (s->capture)
		evbuffer_free(s->capture);
	pd_sess_row_free(&s->row);
	free(s);
}

static struct bufferevent *watch_fd(struct session *s, int fd)
{
	evutil_make_socket_nonblocking(fd);
	struct bufferevent *b = bufferevent_socket_new(s->sb->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!b)
		return NULL;
	bufferevent_setcb(b, out_read, NULL, out_event, s);
	bufferevent_enable(b, EV_READ);
	return b;
}

static void in_writable(evutil_socket_t fd, short what, void *ctx)
{
	struct session *s = ctx;
	int target = s->tty ? bufferevent_getfd(s->out) : s->in_fd;
	while (evbuffer_get_length(s->in_pending)) {
		int n = evbuffer_write(s->in_pending, target);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			evbuffer_drain(s->in_pending, evbuffer_get_length(s->in_pending));
			break;
		}
	}
	if (evbuffer_get_length(s->in_pending)) {
		event_add(s->in_ev, NULL);
		return;
	}
	if (s->in_eof && !s->tty && s->in_fd >= 0) {
		event_del(s->in_ev);
		close(s->in_fd);
		s->in_fd = -1;
	}
}

void session_input(struct session *s, const char *data, size_t len)
{
	if (s->finished || (!s->tty && s->in_fd < 0))
		return;
	if (!len) {
		if (s->tty)
			return; /* a terminal has no end of input: ^D is a byte */
		s->in_eof = true;
	} else {
		/* bound what a client can queue into a command that does not read */
		if (evbuffer_get_length(s->in_pending) + len > PD_CLIENT_OUT_MAX)
			return;
		evbuffer_add(s->in_pending, data, len);
	}
	in_writable(-1, 0, s);
}

void session_winch(struct session *s, unsigned short rows, unsigned short cols)
{
	if (!s->tty || !s->out || !rows || !cols)
		return;
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	ioctl(bufferevent_getfd(s->out), TIOCSWINSZ, &ws);
}

void session_attach(struct session *s, struct client *c, bool replay)
{
	c->sess = s;
	c->mode = CL_STREAM;
	c->next_sess = s->clients;
	s->clients = c;
	if (replay) {
		size_t len = evbuffer_get_length(s->scroll);
		unsigned char *data = evbuffer_pullup(s->scroll, (ssize_t)len);
		for (size_t off = 0; off < len; off += PD_FRAME_MAX_DATA) {
			size_t k = len - off < PD_FRAME_MAX_DATA ? len - off : PD_FRAME_MAX_DATA;
			client_send(c, PD_FR_OUT, data + off, k);
		}
	}
}

void session_detach(struct client *c)
{
	struct session *s = c->sess;
	if (!s)
		return;
	for (struct client **p = &s->clients; *p; p = &(*p)->next_sess)
		if (*p == c) {
			*p = c->next_sess;
			break;
		}
	c->sess = NULL;
	c->next_sess = NULL;
}

/* Start x in sb as a session. argv is recorded (stolen). detached: stdin is
 * /dev/null unless tty. Returns NULL with err filled. */
struct session *session_start(struct dsb *sb, const struct sandbox_exec *x0, json_t *argv,
			      bool detached, struct pd_err *err)
{
	struct sandbox_exec x = *x0;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
	struct session *s = calloc(1, sizeof *s);
	if (!s) {
		json_decref(argv);
		pd_err_set(err, ENOMEM, "session", "out of memory");
		return NULL;
	}
	s->sb = sb;
	s->pidfd = s->in_fd = -1;
	s->tty = x.tty;
	s->scroll = evbuffer_new();
	s->in_pending = evbuffer_new();
	s->row.argv_json = json_dumps(argv, JSON_COMPACT);
	json_decref(argv);
	if (!s->scroll || !s->in_pending || !s->row.argv_json) {
		pd_err_set(err, ENOMEM, "session", "out of memory");
		goto fail;
	}
	if (!x.tty) {
		if ((detached ? (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
			      : pipe2(in, O_CLOEXEC) < 0) ||
		    pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
			pd_err_errno(err, "session", "pipe");
			goto fail;
		}
		x.in = in[0];
		x.out = out[1];
		x.err = er[1];
	}
	struct sandbox_proc p;
	if (sandbox_exec(sb->sb, &x, &p, err) < 0)
		goto fail;
	s->pid = p.pid;
	s->pidfd = p.pidfd;
	if (x.tty) {
		s->out = watch_fd(s, p.pty);
		s->err_eof = true;
	} else {
		close(in[0]);
		close(out[1]);
		close(er[1]);
		in[0] = out[1] = er[1] = -1;
		s->in_fd = in[1];
		in[1] = -1;
		if (s->in_fd >= 0)
			evutil_make_socket_nonblocking(s->in_fd);
		s->out = watch_fd(s, out[0]);
		out[0] = -1;
		s->err = watch_fd(s, er[0]);
		er[0] = -1;
	}
	int infd = x.tty ? bufferevent_getfd(s->out) : s->in_fd;
	if (infd >= 0)
		s->in_ev = event_new(sb->d->base, infd, EV_WRITE, in_writable, s);
	s->exit_ev = event_new(sb->d->base, s->pidfd, EV_READ | EV_PERSIST, on_exit_ev, s);
	if (!s->out || (!x.tty && !s->err) || !s->exit_ev || event_add(s->exit_ev, NULL) < 0) {
		pd_err_set(err, ENOMEM, "session", "watching the session");
		goto fail;
	}
	s->next = sb->sessions;
	sb->sessions = s;
	return s;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (er[i] >= 0)
			close(er[i]);
	}
	session_free(s);
	return NULL;
}
