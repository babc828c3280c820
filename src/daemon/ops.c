/* ops.c: what paddockd does for each request, and how it finds its
 * sandboxes again after a restart (reconcile). Lifecycle:
 *
 *   up:    row CREATING -> [job: image, workspace, sandbox] -> RUNNING
 *          (a failure removes the row and the directory)
 *   stop:  kill pid 1 (the pid namespace takes every process with it),
 *          remove the cgroup -> STOPPED; the directory stays
 *   start: [job: sandbox on the same directory] -> RUNNING
 *   down:  stop, row DESTROYING -> [job: remove the directory] -> no row
 *
 * The row is written before anything is made on the host and removed after
 * everything is gone, so a daemon killed at any step finds in the database
 * what it has to finish or undo. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/gitrun.h"
#include "common/strv.h"
#include "daemon/daemon.h"
#include "daemon/proto.h"
#include "image/image.h"
#include "review/review.h"
#include "sandbox/cgroup.h"
#include "spec/yaml.h"

int image_remove_tree(const char *path, struct pd_err *err); /* image/internal.h */

#define DEFAULT_SHELL "command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"

/* ---- sandboxes in memory ------------------------------------------------ */

static struct dsb *find(struct daemon *d, const char *name)
{
	for (struct dsb *s = d->sandboxes; s; s = s->next)
		if (!strcmp(s->row.name, name))
			return s;
	return NULL;
}

static void unlink_dsb(struct daemon *d, struct dsb *s)
{
	for (struct dsb **p = &d->sandboxes; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			return;
		}
}

/* release: the daemon is leaving and the sandbox lives on. */
void dsb_free(struct dsb *s, bool release)
{
	if (!s)
		return;
	while (s->sessions) {
		struct session *x = s->sessions;
		s->sessions = x->next;
		if (release && x->pidfd >= 0) { /* leave the session's process alone */
			close(x->pidfd);
			x->pidfd = -1;
		}
		session_free(x);
	}
	while (s->followers) {
		struct client *c = s->followers;
		s->followers = c->next_follow;
		c->follow = NULL;
		c->next_follow = NULL;
		client_close(c);
	}
	if (s->exit_ev)
		event_free(s->exit_ev);
	if (release)
		sandbox_release(s->sb);
	else
		sandbox_free(s->sb);
	if (s->net_up && !release)
		pd_net_down(&s->d->eg, &s->net);
	else if (s->net_up && s->net.ns.fd >= 0)
		close(s->net.ns.fd); /* the daemon leaves; the sandbox keeps its network */
	if (s->log_fd >= 0)
		close(s->log_fd);
	json_decref(s->placeholders);
	free(s->ca_pem);
	spec_free(&s->spec);
	pd_sb_row_free(&s->row);
	free(s);
}

static void open_log(struct dsb *s)
{
	char p[4096 + 256];
	if (s->log_fd >= 0)
		return;
	snprintf(p, sizeof p, "%s/log", s->dir);
	s->log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

/* A dsb for a row: its spec reloaded from the stored YAML. */
static struct dsb *dsb_new(struct daemon *d, struct pd_sb_row *row, const char *cwd,
			   struct pd_err *err)
{
	struct dsb *s = calloc(1, sizeof *s);
	if (!s) {
		pd_err_set(err, ENOMEM, "daemon", "out of memory");
		return NULL;
	}
	s->d = d;
	s->log_fd = -1;
	s->row = *row;
	memset(row, 0, sizeof *row);
	spec_init(&s->spec);
	snprintf(s->dir, sizeof s->dir, "%s/%s", d->sbdir, s->row.name);
	snprintf(s->cg_name, sizeof s->cg_name, "sb-%.40s", s->row.name);
	const char *y = s->row.spec_yaml ? s->row.spec_yaml : "";
	if (spec_load_yaml_buffer("request", y, strlen(y), cwd ? cwd : "/", &s->spec, err) < 0)
		goto fail;
	if (!s->spec.argv) {
		if (strv_push(&s->spec.argv, "/bin/sh") < 0 || strv_push(&s->spec.argv, "-c") < 0 ||
		    strv_push(&s->spec.argv, DEFAULT_SHELL) < 0)
			goto oom;
	}
	if (s->row.image && !(s->spec.image = strdup(s->row.image)))
		goto oom;
	if (s->row.repo_dir && s->spec.workspace == PD_WS_AUTO &&
	    !(s->spec.workspace_src = strdup(s->row.repo_dir)))
		goto oom;
	s->spec.uid_base = PD_DEFAULT_UID_BASE + s->row.slot * PD_UID_RANGE;
	s->spec.tty = false;
	return s;
oom:
	pd_err_set(err, ENOMEM, "daemon", "out of memory");
fail:
	spec_free(&s->spec);
	pd_sb_row_free(&s->row);
	free(s);
	return NULL;
}

static void save_row(struct dsb *s)
{
	struct pd_err err;
	if (pd_state_sb_update(s->d->st, &s->row, &err) < 0)
		fprintf(stderr, "paddockd: saving %s: %s\n", s->row.name, err.msg);
}


/* ---- network: the gateway and each sandbox's plumbing ------------------- */

static bool wants_net(const struct dsb *s)
{
	return s->spec.network == PD_NET_FILTERED || s->spec.network == PD_NET_OPEN;
}

/* An event from the gateway goes to the audit log under its sandbox. */
static void egress_event(json_t *ev, void *ctx)
{
	struct daemon *d = ctx;
	const char *kind = json_string_value(json_object_get(ev, "event"));
	const char *sb = json_string_value(json_object_get(ev, "sandbox"));
	if (!kind || !sb || !pd_name_valid(sb))
		return;
	char k[32];
	snprintf(k, sizeof k, "%s", kind);
	char name[48];
	snprintf(name, sizeof name, "%s", sb);
	json_t *detail = json_deep_copy(ev);
	json_object_del(detail, "event");
	json_object_del(detail, "sandbox");
	daemon_event(d, name, k, detail);
}

static void egress_readable(evutil_socket_t fd, short what, void *ctx)
{
	struct daemon *d = ctx;
	json_t *ev;
	int r;
	while ((r = pd_egress_read_event(&d->eg, &ev)) > 0) {
		egress_event(ev, d);
		json_decref(ev);
	}
	if (r < 0) { /* the gateway is gone: the next sandbox that needs it restarts it */
		fprintf(stderr, "paddockd: the egress gateway exited\n");
		daemon_event(d, NULL, "egress-exit", NULL);
		egress_shutdown(d);
	}
}

void egress_shutdown(struct daemon *d)
{
	if (d->eg_ev) {
		event_free(d->eg_ev);
		d->eg_ev = NULL;
	}
	if (d->eg.pid > 0 || d->eg.sock >= 0)
		pd_egress_stop(&d->eg);
	d->eg = (struct pd_egress){ .sock = -1 };
}

static int egress_ensure(struct daemon *d, struct pd_err *err)
{
	if (d->eg.sock >= 0 && d->eg.pid > 0)
		return 0;
	int r = pd_egress_spawn(d->dns_upstream, d->upstream_ca, &d->eg, err);
	if (r < 0)
		return r;
	d->eg.on_event = egress_event;
	d->eg.ctx = d;
	d->eg_ev = event_new(d->base, d->eg.sock, EV_READ | EV_PERSIST, egress_readable, d);
	if (!d->eg_ev || event_add(d->eg_ev, NULL) < 0) {
		egress_shutdown(d);
		return pd_err_set(err, ENOMEM, "network", "watching the egress gateway");
	}
	/* sandboxes it served before it died get it again */
	for (struct dsb *x = d->sandboxes; x; x = x->next)
		if (x->net_up && x->sb) {
			struct pd_net n;
			if (pd_net_adopt(&d->eg, x->row.name, sandbox_pid(x->sb), &x->spec, &n, NULL) == 0) {
				close(n.ns.fd);
				x->net.added = true;
			}
		}
	return 0;
}

/* Before a start: the netns, veth, rules and the gateway's sockets; the
 * proxy variables and resolv.conf for the sandbox. Main thread only (the
 * gateway's channel is not shared with the jobs). */
/* Secrets for a sandbox: the values the client read (values: "NAME" ->
 * value, every secret of the spec), handed to the gateway, then wiped here.
 * Placeholders stay the same across rotations and restarts of the daemon's
 * memory of them. Sets the CA and the variables for the next start. */
/* Zero the values in a request's "secrets" object once they were used. */
static void wipe_values(json_t *values)
{
	const char *k;
	json_t *v;
	json_object_foreach(values, k, v)
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

static int secrets_give(struct dsb *s, json_t *values, struct pd_err *err)
{
	for (size_t i = 0; i < s->spec.n_secrets; i++)
		if (!json_is_string(json_object_get(values, s->spec.secrets[i].name)))
			return pd_err_set(err, EINVAL, "secrets", "secret %s: no value from the client",
					  s->spec.secrets[i].name);
	struct pd_secrets sec;
	int r = pd_secrets_read(&s->spec, values, &sec, err);
	if (r < 0)
		return r;
	pd_secrets_keep_placeholders(&sec, s->placeholders);
	char *ca = NULL;
	r = pd_net_secrets(&s->d->eg, s->row.name, &sec, &ca, err);
	if (r == 0) {
		json_decref(s->placeholders);
		s->placeholders = pd_secrets_placeholders(&sec);
		free(s->ca_pem);
		s->ca_pem = ca;
		if (pd_secrets_env(&sec, &s->spec.env) < 0 || pd_net_ca_env(&s->spec.env) < 0)
			r = pd_err_set(err, ENOMEM, "secrets", "out of memory");
	}
	pd_secrets_wipe(&sec);
	wipe_values(values);
	return r;
}

static int net_prepare(struct dsb *s, json_t *secret_values, struct pd_err *err)
{
	if (!wants_net(s))
		return 0;
	int r = egress_ensure(s->d, err);
	if (r < 0 || (r = pd_net_up(&s->d->eg, s->row.name, &s->spec, &s->net, err)) < 0)
		return r;
	s->net_up = true;
	if (pd_net_env(&s->net, &s->spec.env) < 0)
		return pd_err_set(err, ENOMEM, "network", "out of memory");
	pd_net_resolv_conf(&s->net, s->resolv, sizeof s->resolv);
	if (s->spec.n_secrets && (r = secrets_give(s, secret_values, err)) < 0)
		return r;
	return 0;
}

static void net_release(struct dsb *s)
{
	if (!s->net_up)
		return;
	pd_net_down(&s->d->eg, &s->net);
	s->net_up = false;
}

static void on_pid1_exit(evutil_socket_t fd, short what, void *ctx);

static void watch_pid1(struct dsb *s)
{
	s->exit_ev = event_new(s->d->base, sandbox_pidfd(s->sb), EV_READ, on_pid1_exit, s);
	if (s->exit_ev)
		event_add(s->exit_ev, NULL);
}

/* Stop: pid 1 is killed, so is its pid namespace; the cgroup goes. */
static void stop_sandbox(struct dsb *s, const char *why)
{
	if (!s->sb)
		return;
	if (s->exit_ev) {
		event_free(s->exit_ev);
		s->exit_ev = NULL;
	}
	sandbox_free(s->sb);
	s->sb = NULL;
	net_release(s);
	/* the sessions' shims exit as their commands die; their handlers record it */
	s->row.state = PD_SB_STOPPED;
	s->row.pid = 0;
	s->row.pid_start = 0;
	save_row(s);
	daemon_event(s->d, s->row.name, "stop", json_pack("{s:s}", "reason", why));
	dsb_log(s, "stopped (%s)", why);
}

static void on_pid1_exit(evutil_socket_t fd, short what, void *ctx)
{
	struct dsb *s = ctx;
	stop_sandbox(s, "pid 1 exited");
}

/* ---- requests: helpers ---------------------------------------------------- */

static const char *jstr(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The client created it (the row's owner is "uid:gid"), or is root. */
static bool may_use(const struct client *c, const struct dsb *s)
{
	if (c->uid == 0)
		return true;
	char want[32];
	snprintf(want, sizeof want, "%u:", (unsigned)c->uid);
	return s->row.owner && !strncmp(s->row.owner, want, strlen(want));
}

static struct dsb *need_sandbox(struct client *c, json_t *req)
{
	const char *name = jstr(req, "name");
	if (!name || !pd_name_valid(name)) {
		client_error(c, 2, "invalid sandbox name '%s': want 1 to 40 of [a-z0-9-], starting "
				   "with a letter or digit", name ? name : "");
		return NULL;
	}
	struct dsb *s = find(c->d, name);
	/* a member of the paddock group sees and drives only its own sandboxes;
	 * root, all of them */
	if (!s || !may_use(c, s)) {
		client_error(c, 1, "no sandbox named '%s' (paddock ls lists them)", name);
		return NULL;
	}
	return s;
}

static struct dsb *need_running(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (s && (s->busy || !s->sb)) {
		client_error(c, 1, "sandbox '%s' is %s", s->row.name,
			     s->busy ? "busy (being created, started or removed)" : "stopped "
			     "(paddock start to start it)");
		return NULL;
	}
	return s;
}

/* NULL-terminated vector of strings from a JSON array, or NULL (bad input). */
static char **jstrv(json_t *a, size_t max)
{
	if (!json_is_array(a) || json_array_size(a) > max)
		return NULL;
	char **v = calloc(json_array_size(a) + 1, sizeof *v);
	size_t i;
	json_t *x;
	if (!v)
		return NULL;
	json_array_foreach(a, i, x) {
		if (!json_is_string(x) || !(v[i] = strdup(json_string_value(x)))) {
			strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* May uid/gid read the directory? A child takes the client's identity and
 * opens it: the daemon never reads on behalf of a client what the client
 * could not read itself. */
static bool client_can_read(struct client *c, const char *dir)
{
	if (c->uid == 0)
		return true;
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		struct passwd *pw = getpwuid(c->uid);
		gid_t groups[256];
		int ng = ARRAY_SIZE(groups);
		if (!pw || getgrouplist(pw->pw_name, c->gid, groups, &ng) < 0 ||
		    setgroups((size_t)ng, groups) < 0 || setresgid(c->gid, c->gid, c->gid) < 0 ||
		    setresuid(c->uid, c->uid, c->uid) < 0)
			_exit(1);
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_exit(fd < 0 ? 1 : 0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- up ------------------------------------------------------------------ */

/* The owner's repository (top of the work tree) and its HEAD, or neither. */
static void find_repo(const char *cwd, char **top, char **head)
{
	struct pd_err err;
	struct gitrun g;
	gitrun_init(&g, "daemon", &err);
	if (gitrun_find(&g, NULL) == 0) {
		const char *safe[] = { "*", NULL };
		_cleanup_git_res_ struct git_res r = { 0 };
		const char *a1[] = { "rev-parse", "--show-toplevel", NULL };
		const char *a2[] = { "rev-parse", "--verify", "-q", "HEAD^{commit}", NULL };
		gitrun_set_safe(&g, safe);
		if (gitrun_ok(&g, cwd, a1, GITRUN_CAPTURE, &r) == 0 && r.out) {
			r.out[strcspn(r.out, "\n")] = '\0';
			*top = strdup(r.out);
			if (gitrun_ok(&g, *top, a2, GITRUN_CAPTURE, &r) == 0 && r.out) {
				r.out[strcspn(r.out, "\n")] = '\0';
				*head = strdup(r.out);
			}
		}
	}
	gitrun_release(&g);
}

struct up_data {
	char *cwd;
	bool start_only;
};

/* In the worker: the image, the repository, the sandbox. What the loop
 * needs goes to j->out; the sandbox is left running (released, not freed). */
static void up_work(struct job *j)
{
	struct dsb *s = j->sb;
	struct up_data *u = j->data;
	struct spec *sp = &s->spec;
	if (!u->start_only) {
		char *image = NULL;
		const struct pd_image_spec *is = &sp->image_spec;
		if (!sp->image && (is->base || is->packages || is->agents || is->run))
			j->r = image_build(is, false, NULL, NULL, &image, &j->err);
		else
			j->r = image_resolve(sp->image, &image, NULL, NULL, &j->err);
		if (j->r < 0)
			return;
		free(sp->image);
		sp->image = image;
		json_object_set_new(j->out, "image", json_string(image));
		if (u->cwd && sp->workspace == PD_WS_AUTO) {
			char *top = NULL, *head = NULL;
			find_repo(u->cwd, &top, &head);
			if (top)
				json_object_set_new(j->out, "repo_dir", json_string(top));
			if (top && head)
				json_object_set_new(j->out, "base_commit", json_string(head));
			free(top);
			free(head);
		}
	}
	struct sandbox_persist p = { .dir = s->dir, .cg_name = s->cg_name,
				     .populate = !u->start_only,
				     .netns_fd = s->net_up ? s->net.ns.fd : -1,
				     .resolv_conf = s->net_up ? s->resolv : NULL,
				     .ca_pem = s->net_up ? s->ca_pem : NULL };
	struct sandbox *sb = NULL;
	j->r = sandbox_start_persistent(sp, &p, &sb, &j->err);
	if (j->r < 0)
		return;
	json_object_set_new(j->out, "pid", json_integer(sandbox_pid(sb)));
	if (!u->start_only && sandbox_workspace_head(sb)[0])
		json_object_set_new(j->out, "start_commit", json_string(sandbox_workspace_head(sb)));
	json_object_set_new(j->out, "start", json_integer((json_int_t)sandbox_start_time(sb)));
	if (sandbox_warning(sb))
		json_object_set_new(j->out, "warning", json_string(sandbox_warning(sb)));
	sandbox_release(sb); /* pid 1 lives on and becomes the daemon's child */
}

static void setup_end(struct session *x, void *ctx)
{
	struct dsb *s = x->sb;
	struct client *c = ctx;
	daemon_event(s->d, s->row.name, "setup", json_pack("{s:i}", "code", x->code));
	if (!c)
		return;
	if (x->code == 0)
		client_reply(c, json_pack("{s:b, s:s}", "ok", 1, "name", s->row.name));
	else
		client_reply(c, json_pack("{s:b, s:s, s:i, s:s}", "ok", 0, "error",
					  "the setup script failed; the sandbox is up "
					  "(paddock logs shows its output)",
					  "code", x->code, "name", s->row.name));
	client_close(c);
}

/* Run the spec's setup script as an internal session; its output goes to
 * the log. The client (if any) gets the answer when it ends. */
static int run_setup(struct dsb *s, struct client *c, struct pd_err *err)
{
	char *argv[] = { "/bin/sh", "-c", NULL, NULL };
	_cleanup_free_ char *script = NULL;
	if (asprintf(&script, "set -e\n%s", s->spec.setup) < 0)
		return pd_err_set(err, ENOMEM, "setup", "out of memory");
	argv[2] = script;
	struct sandbox_exec x = { .argv = argv, .workdir = "/workspace", .in = -1, .out = -1,
				  .err = -1 };
	dsb_log(s, "setup: running");
	struct session *ss = session_start(s, &x, json_pack("[s,s,s]", "/bin/sh", "-c", "setup"),
					   true, err);
	if (!ss)
		return -EIO;
	ss->to_log = true;
	ss->on_end = setup_end;
	ss->ctx = c;
	if (c)
		c->mode = CL_REPLIED; /* the reply comes from setup_end */
	return 0;
}

static void started(struct dsb *s)
{
	s->row.state = PD_SB_RUNNING;
	s->row.pid = sandbox_pid(s->sb);
	s->row.pid_start = sandbox_start_time(s->sb);
	s->row.started_at = time(NULL);
	free(s->row.image);
	s->row.image = strdup(s->spec.image);
	save_row(s);
	struct pd_err ierr;
	pd_state_image_used(s->d->st, s->spec.image, &ierr);
	watch_pid1(s);
	open_log(s);
	struct pd_err err;
	if (s->net_up && pd_net_owner(&s->net, s->row.pid, &err) < 0)
		dsb_log(s, "warning: naming the sandbox owner of its network: %s", err.msg);
}

static void up_done(struct job *j)
{
	struct dsb *s = j->sb;
	struct up_data *u = j->data;
	struct client *c = j->c;
	char buf[1200];
	if (j->r == 0) {
		/* what the worker found and started */
		const char *img = json_string_value(json_object_get(j->out, "image"));
		if (img) {
			free(s->spec.image);
			s->spec.image = strdup(img);
		}
		const char *repo = json_string_value(json_object_get(j->out, "repo_dir"));
		const char *base = json_string_value(json_object_get(j->out, "base_commit"));
		if (repo) {
			free(s->row.repo_dir);
			s->row.repo_dir = strdup(repo);
		}
		if (base) {
			free(s->row.base_commit);
			s->row.base_commit = strdup(base);
		}
		const char *first = json_string_value(json_object_get(j->out, "start_commit"));
		if (first) {
			free(s->row.start_commit);
			s->row.start_commit = strdup(first);
		}
		struct sandbox_persist p = { .dir = s->dir, .cg_name = s->cg_name, .netns_fd = -1 };
		pid_t pid = (pid_t)json_integer_value(json_object_get(j->out, "pid"));
		uint64_t start = (uint64_t)json_integer_value(json_object_get(j->out, "start"));
		j->r = sandbox_adopt(&s->spec, &p, pid, start, &s->sb, &j->err);
		if (j->r < 0 && pid > 0) { /* not ours to run: it must not live on */
			kill(pid, SIGKILL);
			struct pd_cgroup *cg = NULL;
			if (pd_cgroup_open(s->cg_name, &cg, NULL) == 0)
				pd_cgroup_destroy(cg);
		}
	}
	if (j->r < 0) {
		pd_err_format(&j->err, buf, sizeof buf);
		net_release(s);
		if (u->start_only) {
			daemon_event(j->d, s->row.name, "start-failed", json_pack("{s:s}", "error", buf));
			if (c)
				client_error(c, 1, "%s", buf);
		} else {
			struct pd_err e2;
			image_remove_tree(s->dir, &e2);
			pd_state_sb_delete(j->d->st, s->row.id, &e2);
			daemon_event(j->d, s->row.name, "create-failed",
				     json_pack("{s:s}", "error", buf));
			unlink_dsb(j->d, s);
			dsb_free(s, false);
			if (c)
				client_error(c, 1, "%s", buf);
		}
		goto out;
	}
	started(s);
	const char *warn = json_string_value(json_object_get(j->out, "warning"));
	if (warn)
		dsb_log(s, "warning: %s", warn);
	daemon_event(j->d, s->row.name, u->start_only ? "start" : "running",
		     json_pack("{s:i, s:s?}", "pid", (int)s->row.pid, "base", s->row.base_commit));
	dsb_log(s, "%s", u->start_only ? "started" : "created");
	if (!u->start_only && s->spec.setup) {
		struct pd_err err;
		if (run_setup(s, c, &err) < 0 && c)
			client_error(c, 1, "setup: %s", pd_err_format(&err, buf, sizeof buf));
		goto out;
	}
	if (c) {
		client_reply(c, json_pack("{s:b, s:s, s:s?}", "ok", 1, "name", s->row.name, "warning",
					  warn));
		client_close(c);
	}
out:
	free(u->cwd);
	free(u);
	free(j);
}

/* The worker for up (cwd: the workspace source) and start (start_only). */
static void run_up_job(struct client *c, struct dsb *s, const char *cwd, bool start_only)
{
	struct job *j = calloc(1, sizeof *j);
	struct up_data *u = calloc(1, sizeof *u);
	if (!j || !u || (cwd && !(u->cwd = strdup(cwd)))) {
		free(u ? u->cwd : NULL);
		free(j);
		free(u);
		if (start_only) /* net_prepare ran for this start */
			net_release(s);
		return client_error(c, 1, "out of memory");
	}
	u->start_only = start_only;
	*j = (struct job){ .work = up_work, .done = up_done, .d = c->d, .sb = s, .c = c, .data = u };
	if (job_run(j) < 0) {
		free(u->cwd);
		free(u);
		free(j);
		if (start_only)
			net_release(s);
		client_error(c, 1, "cannot start a worker process");
	}
}

static void op_up(struct client *c, json_t *req)
{
	struct daemon *d = c->d;
	const char *name = jstr(req, "name"), *yaml = jstr(req, "spec"), *cwd = jstr(req, "cwd"),
		   *image = jstr(req, "image");
	struct pd_err err = { 0 };
	char buf[1200];
	if (!name || !pd_name_valid(name))
		return client_error(c, 2, "invalid sandbox name '%s': want 1 to 40 of [a-z0-9-], "
					  "starting with a letter or digit", name ? name : "");
	if (find(d, name))
		return client_error(c, 1, "sandbox '%s' already exists", name);
	if (cwd && (cwd[0] != '/' || !client_can_read(c, cwd)))
		return client_error(c, 1, "cannot read the workspace directory %s", cwd);
	struct pd_sb_row row = { .state = PD_SB_CREATING, .created_at = time(NULL) };
	row.name = strdup(name);
	row.spec_yaml = strdup(yaml ? yaml : "");
	row.image = image ? strdup(image) : NULL;
	row.repo_dir = cwd ? strdup(cwd) : NULL;
	if (asprintf(&row.owner, "%u:%u", c->uid, c->gid) < 0)
		row.owner = NULL;
	struct dsb *s = dsb_new(d, &row, cwd, &err);
	if (!s)
		return client_error(c, 2, "%s", pd_err_format(&err, buf, sizeof buf));
	/* repo_dir is recorded once the repository is known (up_work) */
	free(s->row.repo_dir);
	s->row.repo_dir = NULL;
	if (c->uid != 0 && s->spec.n_mounts) {
		dsb_free(s, false);
		return client_error(c, 1, "host mounts need root for now (the daemon cannot yet "
					  "check them with the client's rights)");
	}
	if (spec_validate(&s->spec, &err) < 0) {
		dsb_free(s, false);
		return client_error(c, 2, "%s", pd_err_format(&err, buf, sizeof buf));
	}
	if (net_prepare(s, json_object_get(req, "secrets"), &err) < 0 ||
	    pd_state_sb_insert(d->st, &s->row, &err) < 0) {
		dsb_free(s, false);
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	}
	s->spec.uid_base = PD_DEFAULT_UID_BASE + s->row.slot * PD_UID_RANGE;
	s->next = d->sandboxes;
	d->sandboxes = s;
	daemon_event(d, name, "create", json_pack("{s:s, s:i}", "owner", s->row.owner ? s->row.owner : "",
						  "slot", (int)s->row.slot));
	run_up_job(c, s, cwd, false);
}

static void op_start(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	if (s->busy || s->sb)
		return client_error(c, 1, "sandbox '%s' is %s", s->row.name,
				    s->busy ? "busy" : "already running");
	struct pd_err err;
	char buf[1200];
	if (net_prepare(s, json_object_get(req, "secrets"), &err) < 0) {
		net_release(s);
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	}
	run_up_job(c, s, NULL, true);
}

static void op_stop(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	if (s->busy)
		return client_error(c, 1, "sandbox '%s' is busy", s->row.name);
	stop_sandbox(s, "paddock stop");
	client_reply(c, json_pack("{s:b}", "ok", 1));
	client_close(c);
}

/* ---- down ---------------------------------------------------------------- */

static void down_work(struct job *j)
{
	j->r = image_remove_tree(j->sb->dir, &j->err);
}

static void down_done(struct job *j)
{
	struct dsb *s = j->sb;
	char buf[1200];
	if (j->r < 0) {
		if (j->c)
			client_error(j->c, 1, "%s", pd_err_format(&j->err, buf, sizeof buf));
		free(j);
		return;
	}
	struct pd_err err;
	pd_state_sb_delete(j->d->st, s->row.id, &err);
	daemon_event(j->d, s->row.name, "destroy", NULL);
	unlink_dsb(j->d, s);
	dsb_free(s, false);
	if (j->c) {
		client_reply(j->c, json_pack("{s:b}", "ok", 1));
		client_close(j->c);
	}
	free(j);
}

static void start_destroy(struct daemon *d, struct dsb *s, struct client *c)
{
	stop_sandbox(s, "paddock down");
	if (s->log_fd >= 0) {
		close(s->log_fd);
		s->log_fd = -1;
	}
	s->row.state = PD_SB_DESTROYING;
	save_row(s);
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		if (c)
			client_error(c, 1, "out of memory");
		return;
	}
	*j = (struct job){ .work = down_work, .done = down_done, .d = d, .sb = s, .c = c };
	if (job_run(j) < 0) {
		free(j);
		if (c)
			client_error(c, 1, "cannot start a worker process");
	}
}

static void op_down(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	if (s->busy)
		return client_error(c, 1, "sandbox '%s' is busy", s->row.name);
	start_destroy(c->d, s, c);
}

/* ---- exec, attach, sessions ------------------------------------------------ */

static struct session *start_user_session(struct client *c, struct dsb *s, char **argv,
					  char **env, const char *workdir, bool tty,
					  bool detach, unsigned rows, unsigned cols)
{
	struct pd_err err = { 0 };
	char buf[1200];
	json_t *jargv = json_array();
	for (char **a = argv; *a; a++)
		json_array_append_new(jargv, json_string(*a));
	struct sandbox_exec x = { .argv = argv, .env = env, .workdir = workdir, .tty = tty,
				  .rows = (unsigned short)rows, .cols = (unsigned short)cols,
				  .in = -1, .out = -1, .err = -1 };
	json_t *rec = json_deep_copy(jargv);
	struct session *ss = session_start(s, &x, jargv, detach, &err);
	if (!ss) {
		int code = err.code == ENOENT ? 127 : err.code == EACCES ? 126 : 125;
		/* every exec is in the audit log, those that could not start too */
		daemon_event(c->d, s->row.name, "exec-failed",
			     json_pack("{s:o, s:i, s:s}", "argv", rec, "code", code, "error", err.msg));
		client_error(c, code, "%s", pd_err_format(&err, buf, sizeof buf));
		return NULL;
	}
	ss->row.sandbox_id = s->row.id;
	ss->row.tty = tty;
	ss->row.state = PD_SESS_RUNNING;
	ss->row.pid = ss->pid;
	ss->row.started_at = time(NULL);
	if (pd_state_sess_insert(c->d->st, &ss->row, &err) == 0)
		ss->num = ss->row.num;
	daemon_event(c->d, s->row.name, "exec",
		     json_pack("{s:I, s:o, s:b, s:b, s:s}", "session", (json_int_t)ss->num, "argv",
			       rec, "tty", tty, "detached", detach, "client",
			       c->uid == 0 ? "root" : "user"));
	return ss;
}

static void op_exec(struct client *c, json_t *req)
{
	struct dsb *s = need_running(c, req);
	if (!s)
		return;
	_cleanup_strv_ char **argv = jstrv(json_object_get(req, "argv"), 4096);
	json_t *je = json_object_get(req, "env");
	_cleanup_strv_ char **env = je ? jstrv(je, 256) : NULL;
	if (!argv || !argv[0] || !argv[0][0])
		return client_error(c, 2, "exec: argv must be a non-empty array of strings");
	if (je && !env)
		return client_error(c, 2, "exec: env must be an array of NAME=VALUE strings");
	for (char **e = env; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return client_error(c, 2, "exec: bad environment entry '%s'", *e);
	const char *wd = jstr(req, "workdir");
	if (wd && wd[0] != '/')
		return client_error(c, 2, "exec: workdir must be absolute");
	bool tty = json_is_true(json_object_get(req, "tty"));
	bool detach = json_is_true(json_object_get(req, "detach"));
	unsigned rows = (unsigned)json_integer_value(json_object_get(req, "rows"));
	unsigned cols = (unsigned)json_integer_value(json_object_get(req, "cols"));
	struct session *ss = start_user_session(c, s, argv, env, wd, tty, detach, rows & 0xffff,
						cols & 0xffff);
	if (!ss)
		return;
	client_reply(c, json_pack("{s:b, s:I}", "ok", 1, "session", (json_int_t)ss->num));
	if (detach)
		client_close(c);
	else
		session_attach(ss, c, false);
}

static void op_attach(struct client *c, json_t *req)
{
	struct dsb *s = need_running(c, req);
	if (!s)
		return;
	json_t *jn = json_object_get(req, "session");
	unsigned rows = (unsigned)json_integer_value(json_object_get(req, "rows")) & 0xffff;
	unsigned cols = (unsigned)json_integer_value(json_object_get(req, "cols")) & 0xffff;
	if (json_is_integer(jn)) {
		json_int_t n = json_integer_value(jn);
		for (struct session *x = s->sessions; x; x = x->next)
			if (x->num == n && x->num > 0 && !x->finished) {
				client_reply(c, json_pack("{s:b, s:I, s:b}", "ok", 1, "session",
							  (json_int_t)n, "tty", x->tty));
				session_attach(x, c, true);
				session_winch(x, (unsigned short)rows, (unsigned short)cols);
				return;
			}
		return client_error(c, 1, "sandbox '%s' has no running session %lld (paddock "
					  "sessions %s lists them)", s->row.name, (long long)n,
				    s->row.name);
	}
	struct session *ss = start_user_session(c, s, s->spec.argv, NULL, NULL, true, false, rows,
						cols);
	if (!ss)
		return;
	client_reply(c, json_pack("{s:b, s:I, s:b}", "ok", 1, "session", (json_int_t)ss->num, "tty", 1));
	session_attach(ss, c, false);
}

static void op_sessions(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	struct pd_sess_row *rows = NULL;
	size_t n = 0;
	struct pd_err err;
	char buf[1200];
	if (pd_state_sess_list(c->d->st, s->row.id, &rows, &n, &err) < 0)
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *argv = json_loads(rows[i].argv_json ? rows[i].argv_json : "[]", 0, NULL);
		json_array_append_new(
			a, json_pack("{s:I, s:o, s:s, s:b, s:i, s:I, s:I}", "session",
				     (json_int_t)rows[i].num, "argv", argv ? argv : json_array(),
				     "state", pd_sess_state_name(rows[i].state), "tty", rows[i].tty,
				     "code", rows[i].exit_code, "started_at",
				     (json_int_t)rows[i].started_at, "ended_at",
				     (json_int_t)rows[i].ended_at));
	}
	pd_sess_rows_free(rows, n);
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "sessions", a));
	client_close(c);
}

/* ---- ls, logs, events, status ---------------------------------------------- */

static void op_ls(struct client *c, json_t *req)
{
	json_t *a = json_array();
	for (struct dsb *s = c->d->sandboxes; s; s = s->next) {
		if (!may_use(c, s))
			continue;
		uint64_t mem = 0, cpu = 0;
		size_t live = 0;
		if (s->sb)
			sandbox_usage(s->sb, &mem, &cpu);
		for (struct session *x = s->sessions; x; x = x->next)
			live += x->num > 0 && !x->finished;
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:i}", "name", s->row.name,
				     "state", s->busy && !s->sb ? "busy" : pd_sb_state_name(s->row.state),
				     "image", s->row.image, "created_at", (json_int_t)s->row.created_at,
				     "cpu_ns", (json_int_t)cpu, "mem", (json_int_t)mem, "pid",
				     (json_int_t)s->row.pid, "sessions", (int)live));
	}
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "sandboxes", a));
	client_close(c);
}

static void op_logs(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	char p[4096 + 256], buf[PD_FRAME_MAX_DATA];
	snprintf(p, sizeof p, "%s/log", s->dir);
	client_reply(c, json_pack("{s:b}", "ok", 1));
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	/* the last 1 MiB at most */
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
	if (fd >= 0 && lseek(fd, end > (1 << 20) ? end - (1 << 20) : 0, SEEK_SET) >= 0) {
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			client_send(c, PD_FR_OUT, buf, (size_t)n);
	}
	if (json_is_true(json_object_get(req, "follow"))) {
		c->mode = CL_FOLLOW;
		c->follow = s;
		c->next_follow = s->followers;
		s->followers = c;
		return;
	}
	client_send(c, PD_FR_EXIT, "{\"code\":0}", 10);
	client_close(c);
}

static void op_events(struct client *c, json_t *req)
{
	const char *name = jstr(req, "name");
	if (c->uid != 0) { /* the audit log of its own sandboxes only */
		struct dsb *own = name ? find(c->d, name) : NULL;
		if (!own || !may_use(c, own))
			return client_error(c, 1, "events: give --sandbox NAME, one of your "
						  "sandboxes (the whole log is root's)");
	}
	json_int_t after = json_integer_value(json_object_get(req, "after"));
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	struct pd_event_row *rows = NULL;
	size_t n = 0;
	struct pd_err err;
	char buf[1200];
	if (pd_state_events(c->d->st, name, after, limit > 0 ? (size_t)limit : 10000, &rows, &n,
			    &err) < 0)
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *detail = json_loads(rows[i].detail_json ? rows[i].detail_json : "{}", 0, NULL);
		json_array_append_new(a, json_pack("{s:I, s:I, s:s?, s:s, s:o}", "id",
						   (json_int_t)rows[i].id, "ts_ms",
						   (json_int_t)rows[i].ts_ms, "sandbox", rows[i].sandbox,
						   "kind", rows[i].kind, "detail",
						   detail ? detail : json_object()));
	}
	pd_event_rows_free(rows, n);
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "events", a));
	client_close(c);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ., .., and the directory's own fd */
}

/* The images sandboxes were made from, most recently used first. */
static void op_images(struct client *c, json_t *req)
{
	struct pd_err err;
	char buf[1200];
	json_t *a = pd_state_images(c->d->st, &err);
	if (!a)
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "images", a));
	client_close(c);
}

static void op_status(struct client *c, json_t *req)
{
	size_t nsb = 0, nsess = 0, live = 0, rsb = 0, rsess = 0;
	struct pd_err err;
	for (struct dsb *s = c->d->sandboxes; s; s = s->next) {
		nsb++;
		for (struct session *x = s->sessions; x; x = x->next)
			nsess++, live += !x->finished;
	}
	pd_state_counts(c->d->st, &rsb, &rsess, &err);
	client_reply(c, json_pack("{s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "ok", 1, "pid",
				  (int)getpid(), "fds", count_fds(), "sandboxes", (int)nsb,
				  "sessions", (int)nsess, "rows_sandboxes", (int)rsb,
				  "rows_sessions", (int)rsess, "clients", c->d->n_clients));
	client_close(c);
}

/* ---- diff and pull: the review gate -------------------------------------- */

struct review_job {
	bool pull;
	bool stat_only;
	char tmpdir[64];
	char bundle[128];
	char *repo, *base, *name;
	char *start; /* what to compare with: the workspace's first commit */
	uint64_t max_bytes;
	struct review_summary sum;
	int out_fd; /* diff: the patch, read back and sent */
	struct evbuffer *stderr_tail;
};

static void review_free(struct review_job *rj)
{
	if (rj->bundle[0])
		unlink(rj->bundle);
	if (rj->tmpdir[0]) {
		char p[128];
		snprintf(p, sizeof p, "%s/diff", rj->tmpdir);
		unlink(p);
		rmdir(rj->tmpdir);
	}
	if (rj->out_fd >= 0)
		close(rj->out_fd);
	free(rj->repo);
	free(rj->base);
	free(rj->start);
	free(rj->name);
	free(rj);
}

static json_t *summary_json(const struct review_summary *s)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "base", s->base, "tip", s->tip,
			 "branch", s->branch, "commits", (json_int_t)s->commits, "files",
			 (json_int_t)s->files_changed, "insertions", (json_int_t)s->insertions,
			 "deletions", (json_int_t)s->deletions, "review", s->review_command);
}

static void review_work(struct job *j)
{
	struct review_job *rj = j->data;
	struct review_limits lim = { .max_bytes = rj->max_bytes };
	/* Compared with the workspace's first commit (recorded by the host when
	 * it cloned), not the owner's HEAD: the owner's own uncommitted changes
	 * that were copied in are not the sandbox's work. The tip is only read
	 * here; the checks that matter run again inside diff and fetch. */
	struct review_bundle_info info;
	if (review_bundle_check(rj->bundle, &lim, &info, &j->err) == 0 && rj->start &&
	    !strcmp(info.tip, rj->start)) {
		j->r = pd_err_set(&j->err, ENODATA, "", "nothing to %s: no commits or changes "
				  "in /workspace since the sandbox was created",
				  rj->pull ? "pull" : "show");
		j->err.code = EINVAL; /* a plain statement: no strerror after it */
		return;
	}
	/* A pull's summary: against the workspace's first commit when the owner
	 * had uncommitted changes (it then names that commit in the review
	 * command); otherwise against the merge-base with the owner's current
	 * branch ("git log -p main..paddock/NAME"). */
	if (rj->start && rj->base && strcmp(rj->start, rj->base))
		snprintf(rj->sum.base, sizeof rj->sum.base, "%s", rj->start);
	if (rj->pull)
		j->r = review_bundle_fetch(rj->repo, rj->bundle, rj->name, &lim, &rj->sum, &j->err);
	else
		j->r = review_bundle_diff(rj->repo, rj->bundle, rj->start, &lim, rj->out_fd,
					  rj->stat_only, &rj->sum, &j->err);
	if (j->r == 0)
		json_object_set_new(j->out, "summary", summary_json(&rj->sum));
}


static void review_done(struct job *j)
{
	struct review_job *rj = j->data;
	struct client *c = j->c;
	char buf[1200];
	if (j->r < 0) {
		pd_err_format(&j->err, buf, sizeof buf);
		daemon_event(j->d, rj->name, rj->pull ? "pull-refused" : "diff-refused",
			     json_pack("{s:s}", "error", buf));
		if (c)
			client_error(c, 1, "%s", buf);
		goto out;
	}
	json_t *sum = json_object_get(j->out, "summary");
	if (rj->pull)
		daemon_event(j->d, rj->name, "pull", json_incref(sum));
	if (!c)
		goto out;
	client_reply(c, json_pack("{s:b, s:O}", "ok", 1, "summary", sum ? sum : json_object()));
	if (!rj->pull && lseek(rj->out_fd, 0, SEEK_SET) == 0) {
		char data[PD_FRAME_MAX_DATA];
		ssize_t n;
		while ((n = read(rj->out_fd, data, sizeof data)) > 0)
			client_send(c, PD_FR_OUT, data, (size_t)n);
	}
	client_send(c, PD_FR_EXIT, "{\"code\":0}", 10);
	client_close(c);
out:
	review_free(rj);
	free(j);
}

static void export_end(struct session *x, void *ctx)
{
	struct job *j = ctx;
	struct review_job *rj = j->data;
	struct client *c = j->c;
	struct dsb *s = x->sb;
	s->busy = false;
	if (c)
		c->mode = CL_REQUEST;
	size_t elen = evbuffer_get_length(x->scroll);
	char emsg[300] = "";
	if (elen) {
		size_t k = elen < sizeof emsg - 1 ? elen : sizeof emsg - 1;
		evbuffer_copyout(x->scroll, emsg, k);
		emsg[k] = '\0';
		for (char *p = emsg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
	int fd = -1;
	if (x->capture_overflow) {
		if (c)
			client_error(c, 1, "the sandbox's work is larger than %llu bytes; raise "
					   "--max-bytes", (unsigned long long)rj->max_bytes);
	} else if (x->code == 3) {
		if (c)
			client_error(c, 1, "nothing to %s: no commits or changes in /workspace since "
					   "the sandbox was created", rj->pull ? "pull" : "show");
	} else if (x->code == 4) {
		if (c)
			client_error(c, 1, "/workspace is not a git repository");
	} else if (x->code != 0) {
		if (c)
			client_error(c, 1, "exporting the work failed (code %d): %s", x->code, emsg);
	} else if ((fd = open(rj->bundle, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			      0600)) < 0 ||
		   evbuffer_write_atmost(x->capture, fd, -1) < 0) {
		if (c)
			client_error(c, 1, "saving the bundle: %s", strerror(errno));
	} else {
		close(fd);
		fd = -1;
		if (job_run(j) == 0)
			return;
		if (c)
			client_error(c, 1, "cannot start a worker process");
	}
	if (fd >= 0)
		close(fd);
	review_free(rj);
	free(j);
}

static void op_review(struct client *c, json_t *req, bool pull)
{
	struct dsb *s = need_running(c, req);
	if (!s)
		return;
	if (!s->row.repo_dir || !s->row.base_commit)
		return client_error(c, 1, "sandbox '%s' was not created from a git repository with "
					  "commits: there is nothing to %s into", s->row.name,
				    pull ? "pull" : "compare");
	json_int_t maxb = json_integer_value(json_object_get(req, "max_bytes"));
	struct review_job *rj = calloc(1, sizeof *rj);
	struct job *j = calloc(1, sizeof *j);
	if (!rj || !j) {
		free(rj);
		free(j);
		return client_error(c, 1, "out of memory");
	}
	rj->out_fd = -1;
	rj->pull = pull;
	rj->stat_only = json_is_true(json_object_get(req, "stat"));
	rj->max_bytes = maxb > 0 ? (uint64_t)maxb : REVIEW_DEFAULT_MAX_BYTES;
	rj->repo = strdup(s->row.repo_dir);
	rj->base = strdup(s->row.base_commit);
	rj->start = strdup(s->row.start_commit ? s->row.start_commit : s->row.base_commit);
	rj->name = strdup(s->row.name);
	snprintf(rj->tmpdir, sizeof rj->tmpdir, "/tmp/paddock-export-XXXXXX");
	*j = (struct job){ .work = review_work, .done = review_done, .d = c->d, .sb = s, .c = c,
			   .data = rj };
	if (!mkdtemp(rj->tmpdir)) {
		rj->tmpdir[0] = '\0';
		review_free(rj);
		free(j);
		return client_error(c, 1, "cannot create a private directory: %s", strerror(errno));
	}
	snprintf(rj->bundle, sizeof rj->bundle, "%s/work.bundle", rj->tmpdir);
	if (!pull) {
		char p[128];
		snprintf(p, sizeof p, "%s/diff", rj->tmpdir);
		rj->out_fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	char *argv[] = { "/bin/sh", "-c", (char *)review_export_script(), "paddock-export",
			 rj->base, NULL };
	struct sandbox_exec x = { .argv = argv, .workdir = "/workspace", .in = -1, .out = -1,
				  .err = -1 };
	struct pd_err err;
	char buf[1200];
	struct session *ss = session_start(s, &x, json_pack("[s]", "paddock-export"), true, &err);
	if (!ss) {
		review_free(rj);
		free(j);
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	}
	ss->capture = evbuffer_new();
	ss->capture_max = rj->max_bytes;
	ss->on_end = export_end;
	ss->ctx = j;
	s->busy = true;
	c->mode = CL_WAITING;
}

/* ---- allow, net: the network policy of a running sandbox -------------------- */

static void op_allow(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	bool deny = json_is_true(json_object_get(req, "deny"));
	_cleanup_strv_ char **hosts = jstrv(json_object_get(req, "hosts"), 256);
	if (!hosts || !hosts[0])
		return client_error(c, 2, "allow: hosts must be a non-empty array of names");
	if (!wants_net(s))
		return client_error(c, 1, "sandbox '%s' has network mode off: nothing to allow",
				    s->row.name);
	char ***list = deny ? &s->spec.net_deny : &s->spec.net_allow;
	size_t before = strv_len(*list);
	for (char **h = hosts; *h; h++)
		if (strv_push(list, *h) < 0)
			return client_error(c, 1, "out of memory");
	struct pd_err err = { 0 };
	char buf[1200];
	/* the gateway checks the names; a refusal leaves the old policy */
	if (s->net_up && s->net.added && pd_net_policy_set(&c->d->eg, s->row.name, &s->spec, &err) < 0) {
		while (strv_len(*list) > before) {
			size_t n = strv_len(*list);
			free((*list)[n - 1]);
			(*list)[n - 1] = NULL;
		}
		return client_error(c, 2, "%s", pd_err_format(&err, buf, sizeof buf));
	}
	/* remembered for the next start: the stored spec gets the names too */
	struct spec tmp;
	spec_init(&tmp);
	const char *y = s->row.spec_yaml ? s->row.spec_yaml : "";
	if (spec_load_yaml_buffer("stored", y, strlen(y), "/", &tmp, &err) == 0) {
		char ***tl = deny ? &tmp.net_deny : &tmp.net_allow;
		for (char **h = hosts; *h; h++)
			strv_push(tl, *h);
		char *ny = spec_to_yaml(&tmp, &err);
		if (ny) {
			free(s->row.spec_yaml);
			s->row.spec_yaml = ny;
			save_row(s);
		}
	}
	spec_free(&tmp);
	json_t *jh = json_array();
	for (char **h = hosts; *h; h++)
		json_array_append_new(jh, json_string(*h));
	daemon_event(c->d, s->row.name, deny ? "policy-deny" : "policy-allow",
		     json_pack("{s:o}", "hosts", jh));
	client_reply(c, json_pack("{s:b}", "ok", 1));
	client_close(c);
}

static void op_net(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	json_t *policy = pd_net_policy(&s->spec, s->row.name);
	json_t *stats = NULL;
	struct pd_err err;
	if (s->net_up && s->net.added) {
		json_t *q = json_pack("{s:s, s:s}", "op", "stats", "sandbox", s->row.name);
		pd_egress_call(&c->d->eg, q, NULL, 0, &stats, &err);
		json_decref(q);
	}
	char gw[INET_ADDRSTRLEN] = "", sb[INET_ADDRSTRLEN] = "";
	if (s->net_up) {
		inet_ntop(AF_INET, &s->net.ns.gw, gw, sizeof gw);
		inet_ntop(AF_INET, &s->net.ns.sb, sb, sizeof sb);
	}
	json_t *mode = json_object_get(policy, "mode");
	client_reply(c, json_pack("{s:b, s:s, s:O, s:O, s:s, s:s, s:s, s:o}", "ok", 1, "mode",
				  wants_net(s) ? json_string_value(mode) : "off", "allow",
				  json_object_get(policy, "allow"), "deny",
				  json_object_get(policy, "deny"), "interface", s->net.ns.host_if,
				  "gateway", gw, "address", sb, "stats",
				  stats ? stats : json_object()));
	json_decref(policy);
	client_close(c);
}

/* ---- secrets: names, hosts and counts; never values --------------------------- */

/* Where the client reads each secret from (the spec's from: fields). */
static void op_sources(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	json_t *a = json_array();
	for (size_t i = 0; i < s->spec.n_secrets; i++) {
		json_t *hosts = json_array();
		for (char **h = s->spec.secrets[i].hosts; h && *h; h++)
			json_array_append_new(hosts, json_string(*h));
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", s->spec.secrets[i].name,
						   "from", s->spec.secrets[i].from, "hosts", hosts));
	}
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "secrets", a));
	client_close(c);
}

static void op_secrets(struct client *c, json_t *req)
{
	struct dsb *s = need_sandbox(c, req);
	if (!s)
		return;
	json_t *stats = NULL;
	struct pd_err err;
	if (s->net_up && s->spec.n_secrets) {
		json_t *q = json_pack("{s:s, s:s}", "op", "secrets-stats", "sandbox", s->row.name);
		pd_egress_call(&c->d->eg, q, NULL, 0, &stats, &err);
		json_decref(q);
	}
	json_t *a = json_array();
	for (size_t i = 0; i < s->spec.n_secrets; i++) {
		const struct pd_secret *p = &s->spec.secrets[i];
		json_t *hosts = json_array();
		for (char **h = p->hosts; h && *h; h++)
			json_array_append_new(hosts, json_string(*h));
		json_int_t inj = -1;
		json_t *x, *list = json_object_get(stats, "secrets");
		size_t k;
		json_array_foreach(list, k, x)
			if (json_is_string(json_object_get(x, "name")) &&
			    !strcmp(json_string_value(json_object_get(x, "name")), p->name))
				inj = json_integer_value(json_object_get(x, "injections"));
		json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:I, s:b}", "name", p->name, "from",
						   p->from, "hosts", hosts, "injections", inj, "loaded",
						   s->placeholders && json_object_get(s->placeholders,
										      p->name)));
	}
	json_decref(stats);
	client_reply(c, json_pack("{s:b, s:o}", "ok", 1, "secrets", a));
	client_close(c);
}

/* Rotation: new values (the client re-read them, one of them maybe given by
 * hand), same placeholders, no restart. */
static void op_secret_set(struct client *c, json_t *req)
{
	struct dsb *s = need_running(c, req);
	if (!s)
		return;
	if (!s->spec.n_secrets || !s->net_up)
		return client_error(c, 1, "sandbox '%s' has no secrets", s->row.name);
	struct pd_err err = { 0 };
	char buf[1200];
	if (secrets_give(s, json_object_get(req, "secrets"), &err) < 0)
		return client_error(c, 1, "%s", pd_err_format(&err, buf, sizeof buf));
	json_t *names = json_array();
	for (size_t i = 0; i < s->spec.n_secrets; i++)
		json_array_append_new(names, json_string(s->spec.secrets[i].name));
	daemon_event(c->d, s->row.name, "secrets-set", json_pack("{s:o}", "names", names));
	client_reply(c, json_pack("{s:b}", "ok", 1));
	client_close(c);
}

/* ---- dispatch -------------------------------------------------------------- */

void op_dispatch(struct client *c, json_t *req)
{
	const char *op = jstr(req, "op");
	static const struct {
		const char *name;
		void (*fn)(struct client *, json_t *);
	} ops[] = {
		{ "up", op_up },         { "start", op_start },   { "stop", op_stop },
		{ "down", op_down },     { "exec", op_exec },     { "attach", op_attach },
		{ "sessions", op_sessions }, { "ls", op_ls },     { "logs", op_logs },
		{ "events", op_events }, { "status", op_status },
		{ "allow", op_allow },   { "net", op_net },
		{ "images", op_images },
		{ "secret-sources", op_sources }, { "secrets", op_secrets },
		{ "secrets-set", op_secret_set },
	};
	if (!op)
		return client_error(c, 2, "protocol: the request has no \"op\"");
	if (!strcmp(op, "diff"))
		return op_review(c, req, false);
	if (!strcmp(op, "pull"))
		return op_review(c, req, true);
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(op, ops[i].name))
			return ops[i].fn(c, req);
	client_error(c, 2, "protocol: unknown request \"%.40s\"", op);
}

/* ---- reconcile ------------------------------------------------------------- */

/* Did this database ever create a sandbox of that name? */
static bool created_here(struct daemon *d, const char *name)
{
	struct pd_event_row *ev = NULL;
	size_t n = 0;
	struct pd_err err;
	if (pd_state_events(d->st, name, 0, 1, &ev, &n, &err) < 0)
		return false;
	pd_event_rows_free(ev, n);
	return n > 0;
}

/* Make the host match the database after a restart (or a crash at any
 * step): adopt what still runs, finish what was half done. */
int reconcile(struct daemon *d)
{
	struct pd_sb_row *rows = NULL;
	size_t n = 0;
	struct pd_err err = { 0 };
	char buf[1200];
	if (pd_state_sb_list(d->st, &rows, &n, &err) < 0) {
		fprintf(stderr, "paddockd: reconcile: %s\n", pd_err_format(&err, buf, sizeof buf));
		return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		enum pd_sb_state was = rows[i].state;
		pid_t pid = rows[i].pid;
		uint64_t start = rows[i].pid_start;
		struct dsb *s = dsb_new(d, &rows[i], NULL, &err);
		if (!s) {
			fprintf(stderr, "paddockd: reconcile: %s\n", pd_err_format(&err, buf, sizeof buf));
			continue;
		}
		s->next = d->sandboxes;
		d->sandboxes = s;
		struct sandbox_persist p = { .dir = s->dir, .cg_name = s->cg_name, .netns_fd = -1 };
		pd_state_sess_mark_lost(d->st, s->row.id, &err);
		if (was == PD_SB_RUNNING && sandbox_adopt(&s->spec, &p, pid, start, &s->sb, &err) == 0) {
			if (wants_net(s)) {
				if (egress_ensure(d, &err) == 0 &&
				    pd_net_adopt(&d->eg, s->row.name, pid, &s->spec, &s->net, &err) == 0) {
					s->net_up = true;
					pd_net_env(&s->net, &s->spec.env);
				} else {
					fprintf(stderr, "paddockd: %s: its network: %s\n", s->row.name,
						pd_err_format(&err, buf, sizeof buf));
				}
			}
			watch_pid1(s);
			open_log(s);
			dsb_log(s, "adopted by a restarted daemon");
			daemon_event(d, s->row.name, "reconcile", json_pack("{s:s}", "result", "adopted"));
			continue;
		}
		/* not running: whatever is left of its processes and cgroup goes */
		struct pd_cgroup *cg = NULL;
		if (pd_cgroup_open(s->cg_name, &cg, NULL) == 0)
			pd_cgroup_destroy(cg);
		if (was == PD_SB_CREATING || was == PD_SB_DESTROYING) {
			image_remove_tree(s->dir, &err);
			pd_state_sb_delete(d->st, s->row.id, &err);
			daemon_event(d, s->row.name, "reconcile",
				     json_pack("{s:s}", "result", was == PD_SB_CREATING
								   ? "half-created: removed"
								   : "half-destroyed: removed"));
			unlink_dsb(d, s);
			dsb_free(s, false);
			continue;
		}
		if (was == PD_SB_RUNNING) {
			s->row.state = PD_SB_STOPPED;
			s->row.pid = 0;
			s->row.pid_start = 0;
			save_row(s);
			open_log(s);
			dsb_log(s, "found stopped by a restarted daemon");
			daemon_event(d, s->row.name, "reconcile",
				     json_pack("{s:s}", "result", "gone: marked stopped"));
		}
	}
	free(rows);
	/* network plumbing whose sandbox is gone (its owner is pid 1) */
	pd_netns_gc(NULL);
	/* directories and cgroups of sandboxes the database has no row for but
	 * once created (its audit log names them): another paddockd with its
	 * own --db (tests, benchmarks) shares the directory, and its
	 * sandboxes are not ours to remove */
	_cleanup_closedir_ DIR *dir = opendir(d->sbdir);
	for (struct dirent *e; dir && (e = readdir(dir));) {
		if (e->d_name[0] == '.' || find(d, e->d_name) || !created_here(d, e->d_name))
			continue;
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", d->sbdir, e->d_name);
		image_remove_tree(p, &err);
		if (pd_name_valid(e->d_name)) {
			char cgn[64];
			struct pd_cgroup *cg = NULL;
			snprintf(cgn, sizeof cgn, "sb-%.40s", e->d_name);
			if (pd_cgroup_open(cgn, &cg, NULL) == 0)
				pd_cgroup_destroy(cg);
		}
	}
	return 0;
}
