/* policy.c: name patterns and address classification for the gateway. */
#include "egress/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LAYER "egress"

int egress_mode_parse(const char *s, enum egress_mode *mode)
{
	if (strcmp(s, "filtered") == 0)
		*mode = EGRESS_FILTERED;
	else if (strcmp(s, "open") == 0)
		*mode = EGRESS_OPEN;
	else
		return -EINVAL;
	return 0;
}

const char *egress_mode_name(enum egress_mode mode)
{
	return mode == EGRESS_OPEN ? "open" : "filtered";
}

static bool ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

int egress_name_normalize(const char *in, char *out, size_t outlen)
{
	size_t len = strnlen(in, EGRESS_NAME_MAX + 2);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > EGRESS_NAME_MAX || outlen <= len)
		return -EINVAL;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '.') {
			/* empty label, or one ending with '-' */
			if (label == 0 || in[i - 1] == '-')
				return -EINVAL;
			label = 0;
			continue;
		}
		if (!ldh(c) || (label == 0 && c == '-') || ++label > EGRESS_LABEL_MAX)
			return -EINVAL;
	}
	if (in[len - 1] == '-')
		return -EINVAL;
	/* An all-digit last label is no host name (no top-level domain is
	 * numeric) but what inet_aton reads as an address: 127.1, 2130706433. */
	size_t last = len;
	while (last > 0 && in[last - 1] != '.')
		last--;
	if (strspn(in + last, "0123456789") == len - last)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[len] = '\0';
	return 0;
}

/* A pattern is a name or "*." followed by a name; normalized into out. */
static int pattern_normalize(const char *in, char *out, size_t outlen)
{
	if (in[0] == '*' && in[1] == '.') {
		if (outlen < 3 || egress_name_normalize(in + 2, out + 2, outlen - 2) < 0)
			return -EINVAL;
		out[0] = '*';
		out[1] = '.';
		return 0;
	}
	return egress_name_normalize(in, out, outlen);
}

bool egress_pattern_match(const char *pattern, const char *name)
{
	if (pattern[0] != '*')
		return strcmp(pattern, name) == 0;
	const char *suffix = pattern + 1; /* ".example.com" */
	size_t sl = strlen(suffix), nl = strlen(name);
	/* strictly below: at least one character before the dot */
	return nl > sl && strcmp(name + nl - sl, suffix) == 0;
}

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int patterns_copy(const char *const *in, size_t n, char ***out, const char *what,
			 struct pd_err *err)
{
	char **v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return pd_err_set(err, ENOMEM, LAYER, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char buf[EGRESS_NAME_MAX + 3];
		if (!in[i] || pattern_normalize(in[i], buf, sizeof buf) < 0) {
			strv_free_n(v, i);
			return pd_err_set(err, EINVAL, LAYER,
					  "%s pattern \"%.256s\" is not a host name or *.suffix", what,
					  in[i] ? in[i] : "(null)");
		}
		if (!(v[i] = strdup(buf))) {
			strv_free_n(v, i);
			return pd_err_set(err, ENOMEM, LAYER, "out of memory");
		}
	}
	*out = v;
	return 0;
}

int egress_policy_init(struct egress_policy *p, enum egress_mode mode, const char *const *allow,
		       size_t n_allow, const char *const *deny, size_t n_deny, struct pd_err *err)
{
	char **a = NULL, **d = NULL;
	int r;
	if (n_allow + n_deny > EGRESS_PATTERNS_MAX)
		return pd_err_set(err, E2BIG, LAYER, "%zu patterns, at most %d", n_allow + n_deny,
				  EGRESS_PATTERNS_MAX);
	if ((r = patterns_copy(allow, n_allow, &a, "allow", err)) < 0)
		return r;
	if ((r = patterns_copy(deny, n_deny, &d, "deny", err)) < 0) {
		strv_free_n(a, n_allow);
		return r;
	}
	*p = (struct egress_policy){ .mode = mode, .allow = a, .n_allow = n_allow,
				     .deny = d, .n_deny = n_deny };
	return 0;
}

void egress_policy_free(struct egress_policy *p)
{
	strv_free_n(p->allow, p->n_allow);
	strv_free_n(p->deny, p->n_deny);
	*p = (struct egress_policy){ 0 };
}

enum egress_verdict egress_policy_check(const struct egress_policy *p, const char *name,
					const char **reason)
{
	char n[EGRESS_NAME_MAX + 1];
	const char *why;
	enum egress_verdict v = EGRESS_DENY;
	if (egress_name_normalize(name, n, sizeof n) < 0) {
		why = "invalid name";
		goto out;
	}
	for (size_t i = 0; i < p->n_deny; i++)
		if (egress_pattern_match(p->deny[i], n)) {
			why = "denylist";
			goto out;
		}
	if (p->mode == EGRESS_OPEN) {
		why = "open mode";
		v = EGRESS_ALLOW;
		goto out;
	}
	why = "not in allowlist";
	for (size_t i = 0; i < p->n_allow; i++)
		if (egress_pattern_match(p->allow[i], n)) {
			why = "allowlist";
			v = EGRESS_ALLOW;
			break;
		}
out:
	if (reason)
		*reason = why;
	return v;
}

/* Refused in every mode. The documentation ranges 192.0.2.0/24,
 * 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737) are deliberately absent:
 * they never route on the Internet, and the integration tests use them as
 * stand-ins for public addresses. */
static const struct v4range {
	uint32_t net;
	int bits;
	const char *why;
} v4_refused[] = {
	{ 0x00000000, 8, "this-network (0.0.0.0/8)" },
	{ 0x0a000000, 8, "private (10.0.0.0/8)" },
	{ 0x64400000, 10, "shared CGNAT (100.64.0.0/10)" },
	{ 0x7f000000, 8, "loopback" },
	{ 0xa9fe0000, 16, "link-local or cloud metadata (169.254.0.0/16)" },
	{ 0xac100000, 12, "private (172.16.0.0/12)" },
	{ 0xc0a80000, 16, "private (192.168.0.0/16)" },
	{ 0xe0000000, 4, "multicast" },
	{ 0xf0000000, 4, "reserved (240.0.0.0/4) or broadcast" },
};

static const char *v4_refusal(const uint8_t a[4])
{
	uint32_t ip = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
	for (size_t i = 0; i < sizeof v4_refused / sizeof v4_refused[0]; i++) {
		uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
		if ((ip & mask) == v4_refused[i].net)
			return v4_refused[i].why;
	}
	return NULL;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *p, size_t n)
{
	return memcmp(a, p, n) == 0;
}

static const char *host_refusal(const uint8_t a6[16], const struct egress_hostaddrs *host)
{
	if (host)
		for (size_t i = 0; i < host->n; i++)
			if (memcmp(a6, host->addr[i].s6_addr, 16) == 0)
				return "an address of the gateway host";
	return NULL;
}

static const char *v6_refusal(const uint8_t a[16], const struct egress_hostaddrs *host)
{
	static const uint8_t zero[16], mapped[12] = { [10] = 0xff, [11] = 0xff },
				       nat64[12] = { 0x00, 0x64, 0xff, 0x9b },
				       nat64_local[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 };
	const char *why;
	uint8_t v4m[16];
	if (prefix_eq(a, zero, 15) && a[15] <= 1)
		return a[15] ? "loopback" : "unspecified";
	/* Forms that carry an IPv4 address: judge the embedded address. */
	if (prefix_eq(a, mapped, 12) || prefix_eq(a, zero, 12) || prefix_eq(a, nat64, 12) ||
	    prefix_eq(a, nat64_local, 6) || (a[0] == 0x20 && a[1] == 0x02)) {
		const uint8_t *v4 = (a[0] == 0x20) ? a + 2 : a + 12; /* 6to4: 2002:V4::/48 */
		if ((why = v4_refusal(v4)))
			return why;
		memcpy(v4m, mapped, 12);
		memcpy(v4m + 12, v4, 4);
		return host_refusal(v4m, host);
	}
	if ((a[0] & 0xfe) == 0xfc)
		return "unique local (fc00::/7)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local (fe80::/10)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "site-local (fec0::/10)";
	if (a[0] == 0xff)
		return "multicast";
	return host_refusal(a, host);
}

const char *egress_ip_refusal(int family, const void *addr, const struct egress_hostaddrs *host)
{
	if (family == AF_INET) {
		uint8_t v4m[16] = { [10] = 0xff, [11] = 0xff };
		const char *why = v4_refusal(addr);
		if (why)
			return why;
		memcpy(v4m + 12, addr, 4);
		return host_refusal(v4m, host);
	}
	if (family == AF_INET6)
		return v6_refusal(addr, host);
	return "not an IP address";
}

const char *egress_addr_refusal(const struct sockaddr *sa, const struct egress_hostaddrs *host)
{
	if (sa->sa_family == AF_INET)
		return egress_ip_refusal(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host);
	if (sa->sa_family == AF_INET6)
		return egress_ip_refusal(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
					 host);
	return "not an IP address";
}

int egress_hostaddrs_refresh(struct egress_hostaddrs *h, struct pd_err *err)
{
	struct ifaddrs *ifa;
	struct egress_hostaddrs n = { 0 };
	if (getifaddrs(&ifa) < 0)
		return pd_err_errno(err, LAYER, "getifaddrs");
	for (struct ifaddrs *i = ifa; i && n.n < sizeof n.addr / sizeof n.addr[0]; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			uint8_t *d = n.addr[n.n].s6_addr;
			memset(d, 0, 10);
			d[10] = d[11] = 0xff;
			memcpy(d + 12, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			n.n++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			n.addr[n.n++] = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		}
	}
	freeifaddrs(ifa);
	*h = n;
	return 0;
}

bool egress_ip_literal(const char *s, struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strnlen(s, sizeof buf);
	if (len == 0 || len >= sizeof buf)
		return false;
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return false;
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
	}
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}
