/* spec.c: the policy type, its defaults and its validation. Nothing here
 * touches the system. */
#include "spec/spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strv.h"

void spec_init(struct spec *s)
{
	memset(s, 0, sizeof *s);
	s->workspace = PD_WS_AUTO;
	s->network = PD_NET_FILTERED;
	s->memory = PD_DEFAULT_MEMORY;
	s->disk = PD_DEFAULT_DISK;
	s->pids = PD_DEFAULT_PIDS;
	s->uid_base = PD_DEFAULT_UID_BASE;
}

void spec_free(struct spec *s)
{
	free(s->image);
	strv_free(s->argv);
	strv_free(s->env);
	strv_free(s->unmask);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].source);
		free(s->mounts[i].target);
	}
	free(s->mounts);
	free(s->workdir);
	free(s->workspace_src);
	free(s->hostname);
	free(s->image_spec.base);
	strv_free(s->image_spec.packages);
	strv_free(s->image_spec.agents);
	free(s->image_spec.run);
	free(s->setup);
	strv_free(s->net_allow);
	strv_free(s->net_deny);
	for (size_t i = 0; i < s->n_secrets; i++) {
		free(s->secrets[i].name);
		free(s->secrets[i].from);
		strv_free(s->secrets[i].hosts);
	}
	free(s->secrets);
	memset(s, 0, sizeof *s);
}

int spec_parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	unsigned shift = 0;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		/* accept "G", "GB", "GiB" */
		if (tolower((unsigned char)*end) == 'i')
			end++;
		if (tolower((unsigned char)*end) == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int spec_parse_cpus(const char *s, uint64_t *out)
{
	/* Decimal with at most three fractional digits; written by hand because
	 * strtod would accept "inf", "1e9" and locale commas. */
	if (!s || !*s)
		return -EINVAL;
	uint64_t whole = 0, frac = 0;
	int nfrac = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		whole = whole * 10 + (uint64_t)(*p++ - '0');
		if (whole > 4096)
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p) && nfrac < 3) {
			frac = frac * 10 + (uint64_t)(*p++ - '0');
			nfrac++;
		}
		if (nfrac == 0 || *p)
			return -EINVAL;
		while (nfrac++ < 3)
			frac *= 10;
	} else if (*p) {
		return -EINVAL;
	}
	uint64_t m = whole * 1000 + frac;
	if (m == 0)
		return -ERANGE;
	*out = m;
	return 0;
}

char *spec_normalize_target(const char *path, struct pd_err *err)
{
	if (!path || path[0] != '/') {
		pd_err_set(err, EINVAL, "spec", "mount target '%s' is not an absolute path",
			   path ? path : "");
		return NULL;
	}
	size_t len = strlen(path);
	if (len >= PATH_MAX) {
		pd_err_set(err, ENAMETOOLONG, "spec", "mount target is too long");
		return NULL;
	}
	char *out = malloc(len + 2);
	if (!out) {
		pd_err_set(err, ENOMEM, "spec", "out of memory");
		return NULL;
	}
	size_t o = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 1 && p[0] == '.') {
			p = e;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			pd_err_set(err, EINVAL, "spec",
				   "mount target '%s' contains '..': it could escape the sandbox root",
				   path);
			pd_err_hint(err, "give the target as a plain absolute path");
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p = e;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

int spec_parse_mount(const char *arg, struct pd_mount *out, struct pd_err *err)
{
	/* SRC:DST[:ro|:rw]. A source containing ':' is not supported; say so. */
	_cleanup_free_ char *copy = strdup(arg);
	if (!copy)
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	char *src = copy, *dst = strchr(copy, ':');
	if (!dst || dst == src || !dst[1]) {
		pd_err_set(err, EINVAL, "spec", "--mount '%s': expected SRC:DST[:ro|:rw]", arg);
		return pd_err_hint(err, "for example --mount ~/data:/data or --mount ./out:/out:rw");
	}
	*dst++ = '\0';
	bool writable = false;
	char *mode = strchr(dst, ':');
	if (mode) {
		*mode++ = '\0';
		if (strcmp(mode, "rw") == 0)
			writable = true;
		else if (strcmp(mode, "ro") != 0)
			return pd_err_set(err, EINVAL, "spec",
					  "--mount '%s': unknown mode '%s' (expected ro or rw)", arg,
					  mode);
	}
	char *target = spec_normalize_target(dst, err);
	if (!target) {
		pd_err_prefix(err, "--mount '%s'", arg);
		return -EINVAL;
	}
	char *source = strdup(src);
	if (!source) {
		free(target);
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	}
	out->source = source;
	out->target = target;
	out->writable = writable;
	return 0;
}

/* Targets under these would hide or replace the fence's own mounts. */
static const char *const reserved_targets[] = { "/", "/proc", "/dev", "/sys", NULL };

static bool path_is_under(const char *path, const char *top)
{
	size_t n = strlen(top);
	if (strcmp(top, "/") == 0)
		return strcmp(path, "/") == 0;
	return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int spec_validate(const struct spec *s, struct pd_err *err)
{
	if (!s->argv || !s->argv[0] || !s->argv[0][0])
		return pd_err_set(err, EINVAL, "spec", "no command given"),
		       pd_err_hint(err, "usage: paddock run [OPTIONS] -- CMD [ARGS...]");
	if (s->n_secrets && s->network != PD_NET_FILTERED && s->network != PD_NET_OPEN)
		return pd_err_set(err, EINVAL, "secrets",
				  "secrets need the egress gateway, which injects them: network mode "
				  "'off' has none"),
		       pd_err_hint(err, "use network mode filtered or open, or drop secrets:");
	if (s->n_mounts > PD_MAX_MOUNTS)
		return pd_err_set(err, E2BIG, "spec", "too many mounts (%zu > %d)", s->n_mounts,
				  PD_MAX_MOUNTS);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct pd_mount *m = &s->mounts[i];
		for (const char *const *r = reserved_targets; *r; r++)
			if (path_is_under(m->target, *r))
				return pd_err_set(err, EINVAL, "spec",
						  "--mount %s:%s: target %s is reserved for the sandbox",
						  m->source, m->target, *r);
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->mounts[j].target, m->target) == 0)
				return pd_err_set(err, EINVAL, "spec",
						  "--mount: target %s is given twice", m->target);
		if (s->workspace == PD_WS_AUTO && strcmp(m->target, "/workspace") == 0)
			return pd_err_set(err, EINVAL, "spec",
					  "--mount %s:/workspace conflicts with the workspace",
					  m->source),
			       pd_err_hint(err, "use --workspace none to mount your own /workspace");
	}
	if (s->disk && s->disk < (1ULL << 20))
		return pd_err_set(err, EINVAL, "spec", "--disk must be at least 1M");
	if (s->memory && s->memory < (8ULL << 20))
		return pd_err_set(err, EINVAL, "spec", "--memory must be at least 8M");
	if (s->pids && s->pids < 4)
		return pd_err_set(err, EINVAL, "spec", "--pids must be at least 4");
	if (s->hostname) {
		size_t n = strlen(s->hostname);
		if (n == 0 || n > 63)
			return pd_err_set(err, EINVAL, "spec", "--hostname must be 1..63 characters");
		for (const char *p = s->hostname; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				return pd_err_set(err, EINVAL, "spec",
						  "--hostname '%s': only letters, digits, '-' and '.'",
						  s->hostname);
	}
	if (s->env)
		for (char **e = s->env; *e; e++)
			if (!strchr(*e, '=') || (*e)[0] == '=')
				return pd_err_set(err, EINVAL, "spec",
						  "--env '%s': expected NAME=VALUE", *e);
	if (s->workdir && s->workdir[0] != '/')
		return pd_err_set(err, EINVAL, "spec", "--workdir '%s' is not absolute", s->workdir);
	return 0;
}
