/* control.c: the daemon's channel (protocol in egress.h).
 *
 * Like OpenSSH's monitor: a table of requests, each with the number of fds
 * it must carry; anything else is refused. Replies and events share one
 * bounded queue so that they leave in order. */
#include "egress/internal.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress/secrets.h"

#define LAYER "egress"
#define FDS_MAX 8

static void reply(struct egress *eg, json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(r);
	if (s)
		egress_control_send(eg, s, strlen(s), false);
	free(s);
}

static void reply_err(struct egress *eg, const struct pd_err *err)
{
	reply(eg, json_pack("{s:b, s:s}", "ok", 0, "error", err->msg));
}

/* "allow"/"deny" arrays of strings -> a policy. */
static int req_policy(json_t *req, struct egress_policy *p, struct pd_err *err)
{
	const char *mode_s = json_string_value(json_object_get(req, "mode"));
	json_t *lists[2] = { json_object_get(req, "allow"), json_object_get(req, "deny") };
	const char **v[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 };
	enum egress_mode mode;
	int r;
	if (!mode_s || egress_mode_parse(mode_s, &mode) < 0)
		return pd_err_set(err, EINVAL, LAYER, "mode must be \"filtered\" or \"open\"");
	for (int k = 0; k < 2; k++) {
		if (!lists[k])
			continue;
		if (!json_is_array(lists[k]) || json_array_size(lists[k]) > EGRESS_PATTERNS_MAX) {
			r = pd_err_set(err, EINVAL, LAYER, "%s must be an array of at most %d names",
				       k ? "deny" : "allow", EGRESS_PATTERNS_MAX);
			goto out;
		}
		n[k] = json_array_size(lists[k]);
		if (!(v[k] = calloc(n[k] + 1, sizeof *v[k]))) {
			r = pd_err_set(err, ENOMEM, LAYER, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n[k]; i++)
			if (!(v[k][i] = json_string_value(json_array_get(lists[k], i)))) {
				r = pd_err_set(err, EINVAL, LAYER, "%s[%zu] is not a string",
					       k ? "deny" : "allow", i);
				goto out;
			}
	}
	r = egress_policy_init(p, mode, v[0], n[0], v[1], n[1], err);
out:
	free(v[0]);
	free(v[1]);
	return r;
}

/* "secrets": [{"name","placeholder","value","hosts":[..]}, ..] -> a set
 * (values in locked memory; validated by secret_set_new). */
static int req_secrets(json_t *arr, struct secret_set **out, struct pd_err *err)
{
	struct secret_spec *specs = NULL;
	const char ***hosts = NULL;
	size_t n;
	int r;
	if (!json_is_array(arr) || (n = json_array_size(arr)) > SECRETS_MAX)
		return pd_err_set(err, EINVAL, LAYER, "secrets must be an array of at most %d objects",
				  SECRETS_MAX);
	if (n && (!(specs = calloc(n, sizeof *specs)) || !(hosts = calloc(n, sizeof *hosts)))) {
		r = pd_err_set(err, ENOMEM, LAYER, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(arr, i), *v = json_object_get(o, "value");
		json_t *h = json_object_get(o, "hosts");
		specs[i].name = json_string_value(json_object_get(o, "name"));
		specs[i].placeholder = json_string_value(json_object_get(o, "placeholder"));
		specs[i].value = json_string_value(v);
		specs[i].value_len = json_string_length(v);
		if (!json_is_object(o) || !specs[i].name || !specs[i].placeholder || !specs[i].value ||
		    !json_is_array(h) || json_array_size(h) > SECRET_HOSTS_MAX) {
			r = pd_err_set(err, EINVAL, LAYER,
				       "secrets[%zu] needs name, placeholder, value (strings) and hosts "
				       "(an array of at most %d names)", i, SECRET_HOSTS_MAX);
			goto out;
		}
		specs[i].n_hosts = json_array_size(h);
		if (!(hosts[i] = calloc(specs[i].n_hosts + 1, sizeof **hosts))) {
			r = pd_err_set(err, ENOMEM, LAYER, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < specs[i].n_hosts; k++)
			if (!(hosts[i][k] = json_string_value(json_array_get(h, k)))) {
				r = pd_err_set(err, EINVAL, LAYER, "secrets[%zu].hosts[%zu] is not a string",
					       i, k);
				goto out;
			}
		specs[i].hosts = hosts[i];
	}
	r = secret_set_new(specs, n, out, err);
out:
	for (size_t i = 0; hosts && i < n; i++)
		free(hosts[i]);
	free(hosts);
	free(specs);
	return r;
}

static void reply_ok_ca(struct egress *eg, const char *ca_pem)
{
	if (ca_pem)
		reply(eg, json_pack("{s:b, s:s}", "ok", 1, "ca_pem", ca_pem));
	else
		reply(eg, json_pack("{s:b}", "ok", 1));
}

static int op_add(struct egress *eg, const char *sb, json_t *req, int *fds, struct pd_err *err)
{
	struct egress_policy p;
	struct secret_set *set = NULL;
	json_t *sec = json_object_get(req, "secrets");
	const char *pem = NULL;
	int r = req_policy(req, &p, err);
	if (r == 0 && sec && (r = req_secrets(sec, &set, err)) < 0)
		egress_policy_free(&p);
	if (r < 0) {
		for (int i = 0; i < EGRESS_N_LISTENERS; i++)
			close(fds[i]);
		return r;
	}
	r = egress_sandbox_add(eg, sb, &p, fds, err);
	egress_policy_free(&p); /* zeroed when moved */
	if (r == 0 && set && (r = egress_sandbox_set_secrets(eg, sb, &set, &pem, err)) < 0)
		(void)egress_sandbox_remove(eg, sb, NULL);
	secret_set_free(set);
	if (r < 0)
		return r;
	reply_ok_ca(eg, pem);
	return 1;
}

static int op_secrets(struct egress *eg, const char *sb, json_t *req, int *fds,
		      struct pd_err *err)
{
	struct secret_set *set = NULL;
	const char *pem = NULL;
	int r = req_secrets(json_object_get(req, "secrets"), &set, err);
	if (r < 0)
		return r;
	r = egress_sandbox_set_secrets(eg, sb, &set, &pem, err);
	secret_set_free(set);
	if (r < 0)
		return r;
	reply_ok_ca(eg, pem);
	return 1;
}

static int op_secrets_stats(struct egress *eg, const char *name, json_t *req, int *fds,
			    struct pd_err *err)
{
	struct sandbox *sb = egress_sandbox_find(eg, name);
	json_t *arr = json_array();
	if (!sb) {
		json_decref(arr);
		return pd_err_set(err, ENOENT, LAYER, "no sandbox %.64s", name);
	}
	for (size_t i = 0; sb->secrets && i < sb->secrets->n; i++) {
		const struct secret *x = &sb->secrets->v[i];
		json_t *hosts = json_array();
		for (size_t k = 0; k < x->n_hosts; k++)
			json_array_append_new(hosts, json_string(x->hosts[k]));
		json_array_append_new(arr, json_pack("{s:s, s:o, s:I, s:I}", "name", x->name,
						     "hosts", hosts,
						     "injections", (json_int_t)x->injections,
						     "blocked", (json_int_t)x->blocked));
	}
	reply(eg, json_pack("{s:b, s:s, s:o}", "ok", 1, "sandbox", sb->name, "secrets", arr));
	return 1;
}

static int op_policy(struct egress *eg, const char *sb, json_t *req, int *fds, struct pd_err *err)
{
	struct egress_policy p;
	int r = req_policy(req, &p, err);
	if (r < 0)
		return r;
	r = egress_sandbox_set_policy(eg, sb, &p, err);
	egress_policy_free(&p);
	return r;
}

static int op_remove(struct egress *eg, const char *sb, json_t *req, int *fds, struct pd_err *err)
{
	return egress_sandbox_remove(eg, sb, err);
}

static int op_stats(struct egress *eg, const char *name, json_t *req, int *fds,
		    struct pd_err *err)
{
	struct sandbox *sb = egress_sandbox_find(eg, name);
	if (!sb)
		return pd_err_set(err, ENOENT, LAYER, "no sandbox %.64s", name);
	reply(eg, json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1,
			    "sandbox", sb->name,
			    "connections", (json_int_t)(sb->n_conns + sb->n_dns_tcp),
			    "dns_inflight", (json_int_t)sb->n_inflight,
			    "dns_queries", (json_int_t)sb->st.dns_queries,
			    "connects_allowed", (json_int_t)sb->st.connects_allowed,
			    "connects_denied", (json_int_t)sb->st.connects_denied,
			    "bytes_up", (json_int_t)sb->st.bytes_up,
			    "bytes_down", (json_int_t)sb->st.bytes_down,
			    "limited", (json_int_t)sb->st.limited,
			    "events_dropped", (json_int_t)eg->events_dropped));
	return 1; /* replied */
}

static const struct {
	const char *op;
	int nfds;
	int (*fn)(struct egress *, const char *, json_t *, int *, struct pd_err *);
} ops[] = {
	{ "add", EGRESS_N_LISTENERS, op_add },
	{ "policy", 0, op_policy },
	{ "remove", 0, op_remove },
	{ "stats", 0, op_stats },
	{ "secrets", 0, op_secrets },
	{ "secrets-stats", 0, op_secrets_stats },
};

static void handle(struct egress *eg, const char *data, size_t len, int *fds, int nfds)
{
	struct pd_err err = { 0 };
	json_error_t jerr;
	json_t *req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *sb = json_string_value(json_object_get(req, "sandbox"));
	int r = -1;
	size_t i;
	if (!json_is_object(req) || !op || !sb) {
		pd_err_set(&err, EINVAL, LAYER, "a request is an object with \"op\" and \"sandbox\"");
		goto out;
	}
	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(ops[i].op, op) == 0)
			break;
	if (i == sizeof ops / sizeof ops[0]) {
		pd_err_set(&err, EINVAL, LAYER, "unknown op \"%.32s\"", op);
		goto out;
	}
	if (nfds != ops[i].nfds) {
		pd_err_set(&err, EINVAL, LAYER, "op %s takes %d fds, got %d", op, ops[i].nfds, nfds);
		goto out;
	}
	r = ops[i].fn(eg, sb, req, fds, &err);
	nfds = 0; /* the op owns them */
out:
	for (int k = 0; k < nfds; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	json_decref(req);
	if (r < 0)
		reply_err(eg, &err);
	else if (r == 0)
		reply(eg, json_pack("{s:b}", "ok", 1));
}

static void ctl_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct egress *eg = arg;
	static char data[EGRESS_CTL_MAX + 1];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
	} cm;
	struct iovec iov = { data, sizeof data };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof cm.buf };
	int fds[FDS_MAX], nfds = 0;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		event_base_loopbreak(eg->base);
		return;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
				if (nfds < FDS_MAX)
					fds[nfds++] = f;
				else
					close(f);
			}
		}
	if (n == 0) { /* the daemon is gone: so are we */
		event_base_loopbreak(eg->base);
		return;
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n > EGRESS_CTL_MAX) {
		for (int k = 0; k < nfds; k++)
			close(fds[k]);
		struct pd_err err;
		pd_err_set(&err, EMSGSIZE, LAYER, "message or its fds too large");
		reply_err(eg, &err);
		return;
	}
	handle(eg, data, (size_t)n, fds, nfds);
	explicit_bzero(data, (size_t)n); /* it may have held secret values */
}

static void ctl_arm(struct egress *eg)
{
	if (eg->ctl_head)
		event_add(eg->ctl_write_ev, NULL);
	else
		event_del(eg->ctl_write_ev);
	/* Back-pressure: read no request while answers pile up. */
	if (eg->ctl_queued >= EGRESS_CTL_QUEUE)
		event_del(eg->ctl_read_ev);
	else
		event_add(eg->ctl_read_ev, NULL);
}

static void ctl_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct egress *eg = arg;
	while (eg->ctl_head) {
		struct ctl_msg *m = eg->ctl_head;
		if (send(fd, m->data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			event_base_loopbreak(eg->base); /* the daemon is gone */
			return;
		}
		eg->ctl_head = m->next;
		if (!eg->ctl_head)
			eg->ctl_tail = NULL;
		eg->ctl_queued--;
		free(m);
	}
	ctl_arm(eg);
}

void egress_control_send(struct egress *eg, const char *data, size_t len, bool is_event)
{
	if (eg->ctl_fd < 0)
		return;
	if (len > EGRESS_CTL_MAX || (is_event && eg->ctl_queued >= EGRESS_CTL_QUEUE)) {
		eg->events_dropped++;
		return;
	}
	struct ctl_msg *m = malloc(sizeof *m + len);
	if (!m) {
		eg->events_dropped++;
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (eg->ctl_tail)
		eg->ctl_tail->next = m;
	else
		eg->ctl_head = m;
	eg->ctl_tail = m;
	eg->ctl_queued++;
	ctl_arm(eg);
}

int egress_control_start(struct egress *eg, int fd, struct pd_err *err)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return pd_err_errno(err, LAYER, "control fd %d", fd);
	eg->ctl_fd = fd;
	eg->ctl_read_ev = event_new(eg->base, fd, EV_READ | EV_PERSIST, ctl_read_cb, eg);
	eg->ctl_write_ev = event_new(eg->base, fd, EV_WRITE | EV_PERSIST, ctl_write_cb, eg);
	if (!eg->ctl_read_ev || !eg->ctl_write_ev)
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	ctl_arm(eg);
	return 0;
}

void egress_control_stop(struct egress *eg)
{
	if (eg->ctl_read_ev)
		event_free(eg->ctl_read_ev);
	if (eg->ctl_write_ev)
		event_free(eg->ctl_write_ev);
	eg->ctl_read_ev = eg->ctl_write_ev = NULL;
	while (eg->ctl_head) {
		struct ctl_msg *m = eg->ctl_head;
		eg->ctl_head = m->next;
		free(m);
	}
	eg->ctl_tail = NULL;
	eg->ctl_queued = 0;
	if (eg->ctl_fd >= 0)
		close(eg->ctl_fd);
	eg->ctl_fd = -1;
}
