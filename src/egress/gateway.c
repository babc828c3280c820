/* gateway.c: the gateway object, its sandboxes, events and limits. */
#include "egress/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/cleanup.h"
#include "egress/secrets.h"

#define LAYER "egress"

uint64_t egress_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *egress_sa_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int egress_parse_sockaddr(const char *s, unsigned dport, struct sockaddr_storage *sa,
			  struct pd_err *err)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = NULL;
	size_t hl;
	unsigned long port = dport;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			goto bad;
		hl = (size_t)(end - s) + 1;
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1])
			goto bad;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* bare IPv6 */
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof host)
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon) {
		char *end;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || port > 65535)
			goto bad;
	}
	if (!egress_ip_literal(host, sa))
		goto bad;
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
	return 0;
bad:
	return pd_err_set(err, EINVAL, LAYER, "\"%s\" is not ADDRESS[:PORT]", s);
}

int egress_resolv_conf_upstream(const char *path, char *buf, size_t len, struct pd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[512];
	if (!f)
		return pd_err_errno(err, LAYER, "cannot read %s", path);
	while (fgets(line, sizeof line, f)) {
		char addr[INET6_ADDRSTRLEN + 1];
		struct sockaddr_storage sa;
		if (sscanf(line, " nameserver %46s", addr) != 1)
			continue;
		/* a scoped v6 (fe80::1%eth0) or junk: skip to the next */
		if (!egress_ip_literal(addr, &sa) || (size_t)snprintf(buf, len, "%s", addr) >= len)
			continue;
		return 0;
	}
	return pd_err_set(err, ENOENT, LAYER, "no usable nameserver in %s", path);
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct egress *eg = arg;
	/* Best effort: on failure the previous list stays. */
	(void)egress_hostaddrs_refresh(&eg->host, NULL);
}

int egress_new(struct event_base *base, const struct egress_config *cfg, struct egress **out,
	       struct pd_err *err)
{
	struct sockaddr_storage up;
	struct rlimit rl;
	int r;
	if ((r = egress_parse_sockaddr(cfg->dns_upstream, 53, &up, err)) < 0) {
		pd_err_prefix(err, "DNS upstream");
		return r;
	}
	struct egress *eg = calloc(1, sizeof *eg);
	if (!eg)
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	eg->base = base;
	eg->events = cfg->events;
	eg->ctl_fd = -1;
	/* jansson holds the control messages, secret values among them:
	 * whatever it frees is wiped first (secrets.c). */
	json_set_alloc_funcs(malloc, secret_wipe_free);
	if ((r = egress_tls_init(eg, cfg->upstream_ca, err)) < 0)
		goto fail;
	/* Every connection costs EGRESS_FDS_PER_CONN descriptors: take all the
	 * hard limit allows and admit only what fits, so that running out of
	 * fds is a refusal we chose, not an accept() failing at random. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	eg->conn_budget = rl.rlim_cur > EGRESS_FD_RESERVE * 2
				  ? (rl.rlim_cur - EGRESS_FD_RESERVE) / EGRESS_FDS_PER_CONN
				  : 16;
	if ((r = egress_hostaddrs_refresh(&eg->host, err)) < 0)
		goto fail;
	eg->dns = evdns_base_new(base, 0);
	if (!eg->dns) {
		r = pd_err_set(err, ENOMEM, LAYER, "cannot create the DNS resolver");
		goto fail;
	}
	socklen_t ul = up.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (evdns_base_nameserver_sockaddr_add(eg->dns, (struct sockaddr *)&up, ul, 0) != 0) {
		r = pd_err_set(err, EINVAL, LAYER, "cannot use DNS upstream %s", cfg->dns_upstream);
		goto fail;
	}
	(void)evdns_base_set_option(eg->dns, "timeout:", "3");
	(void)evdns_base_set_option(eg->dns, "attempts:", "2");
	(void)evdns_base_set_option(eg->dns, "max-inflight:", "1024");
	eg->refresh_ev = event_new(base, -1, EV_PERSIST, refresh_cb, eg);
	struct timeval tv = { EGRESS_HOSTADDR_REFRESH, 0 };
	if (!eg->refresh_ev || event_add(eg->refresh_ev, &tv) < 0) {
		r = pd_err_set(err, ENOMEM, LAYER, "out of memory");
		goto fail;
	}
	if (cfg->control_fd >= 0 && (r = egress_control_start(eg, cfg->control_fd, err)) < 0)
		goto fail;
	*out = eg;
	return 0;
fail:
	egress_free(eg);
	return r;
}

static void sandbox_remove(struct sandbox *sb)
{
	struct egress *eg = sb->eg;
	for (struct sandbox **p = &eg->sandboxes; *p; p = &(*p)->next)
		if (*p == sb) {
			*p = sb->next;
			eg->n_sandboxes--;
			break;
		}
	sb->removed = true;
	egress_dns_stop(sb);
	egress_proxy_stop(sb);
	secret_set_free(sb->secrets); /* wiped */
	sb->secrets = NULL;
	egress_ca_free(sb->ca);
	sb->ca = NULL;
	for (int i = 0; i < EGRESS_N_LISTENERS; i++) {
		if (sb->listen_ev[i])
			event_free(sb->listen_ev[i]);
		sb->listen_ev[i] = NULL;
		if (sb->listen_fd[i] >= 0)
			close(sb->listen_fd[i]);
		sb->listen_fd[i] = -1;
	}
	egress_sandbox_unref(sb);
}

void egress_free(struct egress *eg)
{
	if (!eg)
		return;
	while (eg->sandboxes)
		sandbox_remove(eg->sandboxes);
	egress_control_stop(eg);
	if (eg->refresh_ev)
		event_free(eg->refresh_ev);
	if (eg->dns)
		evdns_base_free(eg->dns, 0);
	egress_tls_free(eg);
	egress_dns_cache_free(eg);
	free(eg);
}

void egress_sandbox_unref(struct sandbox *sb)
{
	if (--sb->refs > 0)
		return;
	egress_policy_free(&sb->policy);
	secret_set_free(sb->secrets);
	egress_ca_free(sb->ca);
	free(sb);
}

struct sandbox *egress_sandbox_find(struct egress *eg, const char *name)
{
	for (struct sandbox *sb = eg->sandboxes; sb; sb = sb->next)
		if (strcmp(sb->name, name) == 0)
			return sb;
	return NULL;
}

static bool sandbox_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int egress_sandbox_add(struct egress *eg, const char *name, struct egress_policy *policy,
		       int fds[EGRESS_N_LISTENERS], struct pd_err *err)
{
	struct sandbox *sb = NULL;
	int r;
	if (!sandbox_name_ok(name)) {
		r = pd_err_set(err, EINVAL, LAYER, "bad sandbox name \"%.64s\"", name);
		goto fail;
	}
	if (egress_sandbox_find(eg, name)) {
		r = pd_err_set(err, EEXIST, LAYER, "sandbox %s is already served", name);
		goto fail;
	}
	if (eg->n_sandboxes >= EGRESS_SANDBOXES_MAX) {
		r = pd_err_set(err, ENOSPC, LAYER, "at most %d sandboxes", EGRESS_SANDBOXES_MAX);
		goto fail;
	}
	for (int i = 0; i < EGRESS_N_LISTENERS; i++) {
		int fl;
		if (fds[i] < 0)
			continue;
		if ((fl = fcntl(fds[i], F_GETFL)) < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
			r = pd_err_errno(err, LAYER, "listener %d of %s", i, name);
			goto fail;
		}
	}
	if (!(sb = calloc(1, sizeof *sb))) {
		r = pd_err_set(err, ENOMEM, LAYER, "out of memory");
		goto fail;
	}
	sb->eg = eg;
	sb->refs = 1;
	snprintf(sb->name, sizeof sb->name, "%s", name);
	for (int i = 0; i < EGRESS_N_LISTENERS; i++) {
		sb->listen_fd[i] = fds[i];
		fds[i] = -1;
	}
	sb->next = eg->sandboxes;
	eg->sandboxes = sb;
	eg->n_sandboxes++;
	/* The UDP socket belongs to evdns from here on. */
	int udp = steal_fd(&sb->listen_fd[EGRESS_DNS_UDP]);
	if ((r = egress_dns_serve(sb, udp, sb->listen_fd[EGRESS_DNS_TCP], err)) < 0 ||
	    (r = egress_proxy_serve(sb, err)) < 0) {
		sandbox_remove(sb);
		return r;
	}
	sb->policy = *policy;
	*policy = (struct egress_policy){ 0 };
	return 0;
fail:
	for (int i = 0; i < EGRESS_N_LISTENERS; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	return r;
}

int egress_sandbox_set_policy(struct egress *eg, const char *name, struct egress_policy *policy,
			      struct pd_err *err)
{
	struct sandbox *sb = egress_sandbox_find(eg, name);
	if (!sb)
		return pd_err_set(err, ENOENT, LAYER, "no sandbox %.64s", name);
	egress_policy_free(&sb->policy);
	sb->policy = *policy;
	*policy = (struct egress_policy){ 0 };
	return 0;
}

int egress_sandbox_set_secrets(struct egress *eg, const char *name, struct secret_set **set,
			       const char **ca_pem, struct pd_err *err)
{
	struct sandbox *sb = egress_sandbox_find(eg, name);
	int r;
	if (ca_pem)
		*ca_pem = NULL;
	if (!sb)
		return pd_err_set(err, ENOENT, LAYER, "no sandbox %.64s", name);
	if (*set && (*set)->n > 0 && (r = egress_ca_ensure(sb, err)) < 0)
		return r;
	secret_set_carry_counts(*set, sb->secrets);
	secret_set_free(sb->secrets);
	sb->secrets = *set;
	*set = NULL;
	if (sb->secrets)
		sb->secrets->generation = ++sb->secrets_generation;
	if (ca_pem)
		*ca_pem = egress_ca_pem(sb);
	return 0;
}

int egress_sandbox_remove(struct egress *eg, const char *name, struct pd_err *err)
{
	struct sandbox *sb = egress_sandbox_find(eg, name);
	if (!sb)
		return pd_err_set(err, ENOENT, LAYER, "no sandbox %.64s", name);
	sandbox_remove(sb);
	return 0;
}

void egress_emit(struct egress *eg, json_t *ev)
{
	char *s;
	if (!ev)
		return;
	s = json_dumps(ev, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(ev);
	if (!s)
		return;
	if (eg->events) {
		fputs(s, eg->events);
		fputc('\n', eg->events);
		fflush(eg->events);
	}
	if (eg->ctl_fd >= 0)
		egress_control_send(eg, s, strlen(s), true);
	free(s);
}

void egress_limited(struct sandbox *sb, const char *what)
{
	time_t now = time(NULL);
	sb->st.limited++;
	sb->limit_pending++;
	if (now == sb->limit_last)
		return;
	sb->limit_last = now;
	egress_emit(sb->eg, json_pack("{s:s, s:s, s:s, s:I}", "event", "limit", "sandbox", sb->name,
				      "what", what, "refused", (json_int_t)sb->limit_pending));
	sb->limit_pending = 0;
}

bool egress_conn_admit(struct sandbox *sb)
{
	if (sb->n_conns + sb->n_dns_tcp >= EGRESS_CONNS_PER_SANDBOX ||
	    sb->eg->n_conns >= sb->eg->conn_budget) {
		egress_limited(sb, "connections");
		return false;
	}
	return true;
}
