/* client.c: starting and driving paddock-egress from the privileged side. */
#include "egress/client.h"

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

int pd_egress_spawn(const char *dns_upstream, struct pd_egress *out, struct pd_err *err)
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
		if (dns_upstream)
			execl(exe, "paddock-egress", "--control-fd", "3", "--dns-upstream", dns_upstream,
			      (char *)NULL);
		else
			execl(exe, "paddock-egress", "--control-fd", "3", (char *)NULL);
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

static int env_put(char ***env, const char *kv)
{
	size_t klen = strcspn(kv, "=") + 1;
	for (size_t i = 0; *env && (*env)[i]; i++)
		if (!strncmp((*env)[i], kv, klen)) {
			char *d = strdup(kv);
			if (!d)
				return -ENOMEM;
			free((*env)[i]);
			(*env)[i] = d;
			return 0;
		}
	return strv_push(env, kv);
}

int pd_net_env(const struct pd_net *n, char ***env)
{
	char gw[INET_ADDRSTRLEN], kv[128];
	inet_ntop(AF_INET, &n->ns.gw, gw, sizeof gw);
	static const char *const names[] = { "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
					     "https_proxy" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(kv, sizeof kv, "%s=http://%s:%u", names[i], gw, n->ns.proxy_port);
		if (env_put(env, kv) < 0)
			return -ENOMEM;
	}
	if (env_put(env, "NO_PROXY=localhost,127.0.0.1,::1") < 0 ||
	    env_put(env, "no_proxy=localhost,127.0.0.1,::1") < 0)
		return -ENOMEM;
	return 0;
}

/* ---- secrets ---------------------------------------------------------------- */

#include <malloc.h>
#include <sys/random.h>

#define SECRET_MAX (64u << 10)

static void *wipe_malloc(size_t n) { return malloc(n); }
static void wipe_free(void *p)
{
	if (p)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void pd_json_wipe_on_free(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

static int read_all_fd(int fd, char **out, size_t *len)
{
	char *buf = malloc(SECRET_MAX + 1);
	size_t n = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + n, SECRET_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			explicit_bzero(buf, n);
			free(buf);
			return -e;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > SECRET_MAX) {
			explicit_bzero(buf, n);
			free(buf);
			return -E2BIG;
		}
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int read_cmd(const char *cmd, char **out, size_t *len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	int r = read_all_fd(p[0], out, len);
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		explicit_bzero(*out, *len);
		free(*out);
		return -EIO;
	}
	return r;
}

int pd_secrets_read(const struct spec *s, json_t *values, struct pd_secrets *out,
		    struct pd_err *err)
{
	struct pd_secrets sec = { .v = calloc(s->n_secrets + 1, sizeof *sec.v) };
	if (!sec.v)
		return pd_err_set(err, ENOMEM, "secrets", "out of memory");
	int r = 0;
	for (size_t i = 0; i < s->n_secrets; i++) {
		const struct pd_secret *p = &s->secrets[i];
		struct pd_secret_val *v = &sec.v[sec.n++];
		v->name = p->name;
		v->hosts = p->hosts;
		unsigned char rnd[16];
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
			r = pd_err_errno(err, "secrets", "getrandom");
			break;
		}
		int k = snprintf(v->placeholder, sizeof v->placeholder, "paddock-secret-");
		for (size_t j = 0; j < sizeof rnd; j++)
			k += snprintf(v->placeholder + k, sizeof v->placeholder - (size_t)k, "%02x", rnd[j]);
		json_t *given = values ? json_object_get(values, p->name) : NULL;
		if (json_is_string(given)) {
			v->len = json_string_length(given);
			v->value = malloc(v->len + 1);
			if (!v->value) {
				r = pd_err_set(err, ENOMEM, "secrets", "out of memory");
				break;
			}
			memcpy(v->value, json_string_value(given), v->len + 1);
		} else if (!strcmp(p->from, "env")) {
			const char *e = getenv(p->name);
			if (!e) {
				r = pd_err_set(err, ENOENT, "secrets", "secret %s: the environment variable "
					       "%s is not set", p->name, p->name);
				pd_err_hint(err, "export it before starting the sandbox, or change from:");
				break;
			}
			v->len = strlen(e);
			if (!(v->value = strdup(e))) {
				r = pd_err_set(err, ENOMEM, "secrets", "out of memory");
				break;
			}
		} else if (!strncmp(p->from, "file:", 5)) {
			int fd = open(p->from + 5, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				r = pd_err_errno(err, "secrets", "secret %s: reading %s", p->name, p->from + 5);
				break;
			}
			r = read_all_fd(fd, &v->value, &v->len);
			close(fd);
			if (r < 0) {
				r = pd_err_set(err, -r, "secrets", "secret %s: reading %s", p->name,
					       p->from + 5);
				break;
			}
		} else if (!strncmp(p->from, "cmd:", 4)) {
			r = read_cmd(p->from + 4, &v->value, &v->len);
			if (r < 0) {
				r = pd_err_set(err, -r, "secrets", "secret %s: the command '%s' failed",
					       p->name, p->from + 4);
				break;
			}
		} else {
			r = pd_err_set(err, EINVAL, "secrets", "secret %s: unknown source '%s'", p->name,
				       p->from);
			break;
		}
		if (v->len == 0 || memchr(v->value, '\n', v->len) || memchr(v->value, '\r', v->len) ||
		    strlen(v->value) != v->len) {
			r = pd_err_set(err, EINVAL, "secrets", "secret %s: the value is empty or holds a "
				       "line break or NUL (it must fit in one HTTP header)", p->name);
			break;
		}
	}
	if (r < 0) {
		pd_secrets_wipe(&sec);
		return r;
	}
	*out = sec;
	return 0;
}

void pd_secrets_wipe(struct pd_secrets *sec)
{
	for (size_t i = 0; sec->v && i < sec->n; i++) {
		if (sec->v[i].value) {
			explicit_bzero(sec->v[i].value, sec->v[i].len);
			free(sec->v[i].value);
		}
	}
	free(sec->v);
	sec->v = NULL;
	sec->n = 0;
}

int pd_secrets_env(const struct pd_secrets *sec, char ***env)
{
	for (size_t i = 0; i < sec->n; i++) {
		char kv[256];
		snprintf(kv, sizeof kv, "%s=%s", sec->v[i].name, sec->v[i].placeholder);
		if (env_put(env, kv) < 0)
			return -ENOMEM;
	}
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

int pd_net_ca_env(char ***env)
{
	static const char *const kv[] = {
		"NODE_EXTRA_CA_CERTS=/etc/ssl/certs/paddock-ca.crt",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		"REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
		"CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
		"GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt",
		NULL,
	};
	for (const char *const *p = kv; *p; p++)
		if (env_put(env, *p) < 0)
			return -ENOMEM;
	return 0;
}

void pd_secrets_keep_placeholders(struct pd_secrets *sec, json_t *prev)
{
	for (size_t i = 0; prev && i < sec->n; i++) {
		const char *p = json_string_value(json_object_get(prev, sec->v[i].name));
		if (p && strlen(p) < sizeof sec->v[i].placeholder && !strncmp(p, "paddock-secret-", 15))
			snprintf(sec->v[i].placeholder, sizeof sec->v[i].placeholder, "%s", p);
	}
}

json_t *pd_secrets_placeholders(const struct pd_secrets *sec)
{
	json_t *o = json_object();
	for (size_t i = 0; i < sec->n; i++)
		json_object_set_new(o, sec->v[i].name, json_string(sec->v[i].placeholder));
	return o;
}
