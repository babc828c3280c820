/* secrets-read.c: reading secret values on the host, their placeholders, and
 * the variables that make a sandbox trust the gateway's CA. Kept apart from
 * client.c so that the CLI's commands for named sandboxes link without the
 * network plumbing (libnftables). */
#include "egress/client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/strv.h"


#include <malloc.h>
#include <sys/random.h>

#define SECRET_MAX (64u << 10)

static void *wipe_malloc(size_t n) { return malloc(n); }
void pd_wipe_free(void *p)
{
	if (p)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void pd_json_wipe_on_free(void)
{
	json_set_alloc_funcs(wipe_malloc, pd_wipe_free);
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
		*out = NULL; /* the caller's pointer: nothing left to free */
		*len = 0;
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
		if (strv_env_set(env, kv) < 0)
			return -ENOMEM;
	}
	return 0;
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
		if (strv_env_set(env, *p) < 0)
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
