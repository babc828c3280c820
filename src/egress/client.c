/* client.c: starting and driving paddock-egress from the privileged side. */
#include "egress/client.h"

#include <event2/event.h>
#include <malloc.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strv.h"
#include "egress/egress.h"

#define LAYER "network"
#define REPLY_TIMEOUT_MS 5000

int pd_egress_spawn(const char *dns_upstream, const char *upstream_ca, struct pd_egress *out,
		    struct pd_err *err)
{
	char exe[PATH_MAX];
	const char *env = getenv("PADDOCK_EGRESS");
	if (env && env[0] == '/') {
		snprintf(exe, sizeof exe, "%s", env);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
		if (n <= 0)
			return pd_err_errno(err, LAYER, "finding paddock-egress");
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		strcpy(slash + 1, "paddock-egress");
	}
	if (access(exe, X_OK) < 0)
		return pd_err_errno(err, LAYER, "the egress gateway %s", exe);
	if (!dns_upstream)
		dns_upstream = getenv("PADDOCK_DNS_UPSTREAM");
	if (!upstream_ca)
		upstream_ca = getenv("PADDOCK_UPSTREAM_CA");
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return pd_err_errno(err, LAYER, "socketpair");
	pid_t pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return pd_err_errno(err, LAYER, "fork");
	}
	if (pid == 0) {
		/* fd 3 is the channel; nothing else of ours goes along */
		if (dup2(sp[1], 3) < 0)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		close_range(4, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		const char *args[9] = { "paddock-egress", "--control-fd", "3" };
		int na = 3;
		if (dns_upstream) {
			args[na++] = "--dns-upstream";
			args[na++] = dns_upstream;
		}
		if (upstream_ca) {
			args[na++] = "--upstream-ca";
			args[na++] = upstream_ca;
		}
		args[na] = NULL;
		execv(exe, (char *const *)args);
		_exit(127);
	}
	close(sp[1]);
	*out = (struct pd_egress){ .pid = pid, .sock = sp[0] };
	return 0;
}

void pd_egress_stop(struct pd_egress *eg)
{
	if (eg->sock >= 0)
		close(eg->sock);
	eg->sock = -1;
	if (eg->pid > 0) {
		/* EOF makes it exit; do not wait forever on a wedged one */
		for (int i = 0; i < 200; i++) {
			if (waitpid(eg->pid, NULL, WNOHANG) != 0)
				goto done;
			usleep(5000);
		}
		kill(eg->pid, SIGKILL);
		waitpid(eg->pid, NULL, 0);
	}
done:
	eg->pid = 0;
}

static int recv_msg(int sock, json_t **out, int timeout_ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return timeout_ms == 0 ? 0 : -ETIMEDOUT;
	char *buf = malloc(EGRESS_CTL_MAX + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = recv(sock, buf, EGRESS_CTL_MAX, MSG_DONTWAIT);
	if (n <= 0) {
		free(buf);
		return n == 0 ? -EPIPE : (errno == EAGAIN ? 0 : -errno);
	}
	json_t *j = json_loadb(buf, (size_t)n, 0, NULL);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*out = j;
	return 1;
}

int pd_egress_read_event(struct pd_egress *eg, json_t **ev)
{
	return recv_msg(eg->sock, ev, 0);
}

int pd_egress_call(struct pd_egress *eg, json_t *req, const int *fds, size_t n, json_t **reply,
		   struct pd_err *err)
{
	char *s = json_dumps(req, JSON_COMPACT);
	if (!s)
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	struct iovec iov = { .iov_base = s, .iov_len = strlen(s) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	ssize_t w = sendmsg(eg->sock, &mh, MSG_NOSIGNAL);
	explicit_bzero(s, strlen(s)); /* it may carry secret values */
	free(s);
	if (w < 0)
		return pd_err_errno(err, LAYER, "talking to the egress gateway");
	for (;;) {
		json_t *m = NULL;
		int r = recv_msg(eg->sock, &m, REPLY_TIMEOUT_MS);
		if (r < 0)
			return pd_err_set(err, -r, LAYER, "the egress gateway did not answer");
		if (r == 0)
			continue;
		if (json_object_get(m, "event")) {
			if (eg->on_event)
				eg->on_event(m, eg->ctx);
			json_decref(m);
			continue;
		}
		if (!json_is_true(json_object_get(m, "ok"))) {
			const char *e = json_string_value(json_object_get(m, "error"));
			r = pd_err_set(err, EINVAL, LAYER, "egress gateway: %s", e ? e : "refused");
			json_decref(m);
			return r;
		}
		if (reply)
			*reply = m;
		else
			json_decref(m);
		return 0;
	}
}

/* Hosts each agent needs to work at all (its API and sign-in), added to a
 * filtered sandbox's allowlist when the spec installs the agent. Telemetry
 * and update hosts are left out on purpose. */
static const struct {
	const char *agent;
	const char *hosts[4];
} agent_hosts[] = {
	{ "claude", { "api.anthropic.com", "console.anthropic.com", "claude.ai", NULL } },
	{ "codex", { "api.openai.com", "auth.openai.com", "chatgpt.com", NULL } },
	{ "opencode", { "api.anthropic.com", "api.openai.com", "models.dev", NULL } },
};

json_t *pd_net_policy(const struct spec *s, const char *sandbox)
{
	json_t *allow = json_array(), *deny = json_array();
	for (char **p = s->net_allow; p && *p; p++)
		json_array_append_new(allow, json_string(*p));
	for (char **a = s->image_spec.agents; a && *a; a++)
		for (size_t i = 0; i < sizeof agent_hosts / sizeof *agent_hosts; i++)
			if (!strcmp(*a, agent_hosts[i].agent))
				for (const char *const *h = agent_hosts[i].hosts; *h; h++)
					json_array_append_new(allow, json_string(*h));
	for (char **p = s->net_deny; p && *p; p++)
		json_array_append_new(deny, json_string(*p));
	return json_pack("{s:s, s:s, s:o, s:o}", "sandbox", sandbox, "mode",
			 s->network == PD_NET_OPEN ? "open" : "filtered", "allow", allow, "deny", deny);
}

static int serve(struct pd_egress *eg, struct pd_net *n, const struct spec *s,
		 struct pd_err *err)
{
	int fds[4] = { -1, -1, -1, -1 };
	int r = pd_netns_listen(&n->ns, &fds[0], &fds[1], &fds[2], &fds[3], err);
	if (r < 0)
		return r;
	json_t *req = pd_net_policy(s, n->name);
	json_object_set_new(req, "op", json_string("add"));
	r = pd_egress_call(eg, req, fds, 4, NULL, err);
	json_decref(req);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	if (r == 0)
		n->added = true;
	return r;
}

int pd_net_up(struct pd_egress *eg, const char *name, const struct spec *s, struct pd_net *out,
	      struct pd_err *err)
{
	struct pd_net n = { .ns = { .fd = -1 } };
	snprintf(n.name, sizeof n.name, "%s", name);
	int r = pd_netns_create(name, NULL, &n.ns, err);
	if (r < 0)
		return r;
	if ((r = serve(eg, &n, s, err)) < 0) {
		pd_netns_destroy(&n.ns, NULL);
		return r;
	}
	*out = n;
	return 0;
}

int pd_net_adopt(struct pd_egress *eg, const char *name, pid_t pid1, const struct spec *s,
		 struct pd_net *out, struct pd_err *err)
{
	struct pd_net n = { .ns = { .fd = -1 } };
	snprintf(n.name, sizeof n.name, "%s", name);
	int r = pd_netns_adopt(pid1, &n.ns, err);
	if (r < 0)
		return r;
	if ((r = serve(eg, &n, s, err)) < 0) {
		close(n.ns.fd);
		return r;
	}
	*out = n;
	return 0;
}

int pd_net_policy_set(struct pd_egress *eg, const char *name, const struct spec *s,
		      struct pd_err *err)
{
	json_t *req = pd_net_policy(s, name);
	json_object_set_new(req, "op", json_string("policy"));
	int r = pd_egress_call(eg, req, NULL, 0, NULL, err);
	json_decref(req);
	return r;
}

int pd_net_owner(struct pd_net *n, pid_t pid1, struct pd_err *err)
{
	return pd_netns_set_owner(&n->ns, pid1, err);
}

void pd_net_down(struct pd_egress *eg, struct pd_net *n)
{
	if (n->added && eg && eg->sock >= 0) {
		json_t *req = json_pack("{s:s, s:s}", "op", "remove", "sandbox", n->name);
		pd_egress_call(eg, req, NULL, 0, NULL, NULL);
		json_decref(req);
	}
	n->added = false;
	if (n->ns.host_if[0] || n->ns.fd >= 0)
		pd_netns_destroy(&n->ns, NULL);
}

void pd_net_resolv_conf(const struct pd_net *n, char *buf, size_t len)
{
	char gw[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &n->ns.gw, gw, sizeof gw);
	snprintf(buf, len, "# written by paddock: the egress gateway answers\nnameserver %s\n", gw);
}


int pd_net_env(const struct pd_net *n, char ***env)
{
	char gw[INET_ADDRSTRLEN], kv[128];
	inet_ntop(AF_INET, &n->ns.gw, gw, sizeof gw);
	static const char *const names[] = { "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
					     "https_proxy" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(kv, sizeof kv, "%s=http://%s:%u", names[i], gw, n->ns.proxy_port);
		if (strv_env_set(env, kv) < 0)
			return -ENOMEM;
	}
	if (strv_env_set(env, "NO_PROXY=localhost,127.0.0.1,::1") < 0 ||
	    strv_env_set(env, "no_proxy=localhost,127.0.0.1,::1") < 0)
		return -ENOMEM;
	return 0;
}


int pd_net_secrets(struct pd_egress *eg, const char *name, const struct pd_secrets *sec,
		   char **ca_pem, struct pd_err *err)
{
	json_t *list = json_array();
	for (size_t i = 0; i < sec->n; i++) {
		json_t *hosts = json_array();
		for (char **h = sec->v[i].hosts; h && *h; h++)
			json_array_append_new(hosts, json_string(*h));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s%, s:o}", "name", sec->v[i].name,
						      "placeholder", sec->v[i].placeholder, "value",
						      sec->v[i].value, sec->v[i].len, "hosts", hosts));
	}
	json_t *req = json_pack("{s:s, s:s, s:o}", "op", "secrets", "sandbox", name, "secrets", list);
	json_t *reply = NULL;
	int r = pd_egress_call(eg, req, NULL, 0, &reply, err);
	json_decref(req);
	if (r < 0)
		return r;
	const char *pem = json_string_value(json_object_get(reply, "ca_pem"));
	if (ca_pem) {
		*ca_pem = pem ? strdup(pem) : NULL;
		if (!*ca_pem)
			r = pd_err_set(err, EPROTO, "secrets", "the gateway sent no certificate authority");
	}
	json_decref(reply);
	return r;
}

/* realloc that leaves no copy behind: the old block is wiped when moved. */
static void *wipe_realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	size_t old = malloc_usable_size(p);
	void *q = malloc(n ? n : 1);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	pd_wipe_free(p);
	return q;
}

void pd_event_wipe_on_free(void)
{
	event_set_mem_functions(malloc, wipe_realloc, pd_wipe_free);
}
