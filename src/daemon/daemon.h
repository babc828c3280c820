/* daemon.h: paddockd's parts (the files of src/daemon). One event loop thread owns
 * every structure here; worker threads (jobs) only run the blocking steps
 * (image builds, sandbox creation, removal, git) and hand results back
 * through the job pipe. */
#ifndef PADDOCK_DAEMON_H
#define PADDOCK_DAEMON_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/state.h"
#include "egress/client.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"

#define PD_SCROLLBACK (64u << 10)   /* bytes of output kept per session */
#define PD_CLIENT_OUT_MAX (4u << 20) /* a client that falls this far behind is detached */
#define PD_REQUEST_TIMEOUT 10       /* seconds for a client to send its request */
#define PD_MAX_CLIENTS 1024

struct daemon;
struct dsb;
struct client;

struct session {
	struct session *next;
	struct dsb *sb;
	int64_t num;
	struct pd_sess_row row;
	pid_t pid;            /* the shim (our child) */
	struct event *exit_ev; /* on its pidfd */
	int pidfd;
	struct bufferevent *out; /* pty master, or stdout pipe */
	struct bufferevent *err; /* stderr pipe, or NULL */
	int in_fd;            /* stdin pipe's write end (no tty), else -1 */
	struct evbuffer *in_pending; /* stdin bytes not yet written */
	struct event *in_ev;
	bool in_eof;
	bool tty;
	struct evbuffer *scroll;
	struct client *clients; /* attached */
	bool exited, out_eof, err_eof, finished;
	int code;
	struct event *linger; /* after exit: wait briefly for the last output */
	/* internal sessions (setup, export) report to a callback instead */
	void (*on_end)(struct session *s, void *ctx);
	void *ctx;
	struct evbuffer *capture; /* keep all stdout (export), NULL otherwise */
	size_t capture_max;
	bool capture_overflow;
	bool to_log;          /* copy output to the sandbox's log */
};

struct dsb {
	struct dsb *next;
	struct daemon *d;
	struct pd_sb_row row;
	struct spec spec;
	struct sandbox *sb;   /* NULL when stopped */
	struct event *exit_ev; /* pid 1's pidfd */
	struct session *sessions;
	bool busy;            /* a job (create, start, destroy, pull) is running */
	int log_fd;
	struct client *followers; /* logs -f */
	char dir[4096 + 128];
	struct pd_net net;    /* network filtered/open: its plumbing */
	json_t *placeholders; /* secrets: "NAME" -> placeholder (never values) */
	char *ca_pem;         /* secrets: the gateway's CA for it, installed inside */
	bool net_up;
	char resolv[128];
	char cg_name[64];
};

enum client_mode { CL_REQUEST = 0, CL_REPLIED, CL_STREAM, CL_FOLLOW, CL_WAITING };

struct client {
	struct client *next_sess;   /* in session->clients */
	struct client *next_follow; /* in dsb->followers */
	struct daemon *d;
	struct bufferevent *bev;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum client_mode mode;
	struct session *sess;
	struct dsb *follow;
	bool closing;
};

struct daemon {
	struct event_base *base;
	struct pd_state *st;
	char sock_path[256];
	char db_path[4096];
	char sbdir[4000];
	struct dsb *sandboxes;
	int n_clients;
	int listen_fd;
	struct pd_egress eg;  /* the gateway, started with the first sandbox that needs it */
	struct event *eg_ev;
	char *dns_upstream;
	char *upstream_ca;
};

/* main.c */
void client_reply(struct client *c, json_t *obj); /* steals obj */
void client_error(struct client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void client_send(struct client *c, int type, const void *data, size_t len);
void client_close(struct client *c);
void dsb_log(struct dsb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void daemon_event(struct daemon *d, const char *sandbox, const char *kind, json_t *detail);


/* jobs: work() runs in a forked worker process and records what the loop
 * needs in j->out (JSON) plus j->r/j->err; done() runs on the loop with
 * them. Nothing else the worker changes reaches the daemon. */
struct job {
	void (*work)(struct job *j);
	void (*done)(struct job *j);
	struct daemon *d;
	struct dsb *sb;
	struct client *c;
	struct pd_err err;
	int r;
	void *data;
	json_t *out;
	pid_t pid;
	int fd;
	struct event *ev;
	struct evbuffer *buf;
};
int job_run(struct job *j);

/* session.c */
struct session *session_start(struct dsb *sb, const struct sandbox_exec *x, json_t *argv,
			      bool detached, struct pd_err *err);
void session_attach(struct session *s, struct client *c, bool replay);
void session_detach(struct client *c);
void session_input(struct session *s, const char *data, size_t len);
void session_winch(struct session *s, unsigned short rows, unsigned short cols);
void session_free(struct session *s);

/* ops.c */
void op_dispatch(struct client *c, json_t *req);
int reconcile(struct daemon *d);
void egress_shutdown(struct daemon *d);
void dsb_free(struct dsb *s, bool release);

#endif
