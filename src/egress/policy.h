/* policy.h: what a sandbox may reach, by name and by address.
 *
 * Names decide (CONNECT target, TLS SNI, Host header, DNS question); the
 * address a name resolves to can only veto. Pure functions, no I/O except
 * egress_hostaddrs_refresh (getifaddrs). */
#ifndef PADDOCK_EGRESS_POLICY_H
#define PADDOCK_EGRESS_POLICY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"

#define EGRESS_NAME_MAX 253  /* a DNS name in text form, without the trailing dot */
#define EGRESS_LABEL_MAX 63
#define EGRESS_PATTERNS_MAX 4096 /* allow + deny entries per sandbox */

enum egress_mode { EGRESS_FILTERED, EGRESS_OPEN };

struct egress_policy {
	enum egress_mode mode;
	char **allow; /* normalized: lower case, no trailing dot; "*.suffix" kept */
	size_t n_allow;
	char **deny;
	size_t n_deny;
};

/* "filtered"/"open" -> mode. Returns 0, or -EINVAL for anything else. */
int egress_mode_parse(const char *s, enum egress_mode *mode);
const char *egress_mode_name(enum egress_mode mode);

/* Validate a host name and write its canonical form (lower case, trailing
 * dot removed) to out (at least EGRESS_NAME_MAX + 1 bytes). A valid name has
 * 1..253 characters in labels of 1..63 letters, digits and hyphens, no label
 * starting or ending with a hyphen. Returns 0 or -EINVAL (out untouched). */
int egress_name_normalize(const char *in, char *out, size_t outlen);

/* Build a policy from pattern lists (exact names or "*.suffix"). Invalid
 * patterns fail the whole call with err naming the pattern; *p is only
 * written on success. */
int egress_policy_init(struct egress_policy *p, enum egress_mode mode, const char *const *allow,
		       size_t n_allow, const char *const *deny, size_t n_deny, struct pd_err *err);
void egress_policy_free(struct egress_policy *p);

enum egress_verdict { EGRESS_DENY = 0, EGRESS_ALLOW = 1 };

/* Decide for a name (any case, trailing dot allowed). *reason (if non-NULL)
 * is set to a static string: "allowlist", "open mode", "denylist",
 * "not in allowlist" or "invalid name". */
enum egress_verdict egress_policy_check(const struct egress_policy *p, const char *name,
					const char **reason);

/* Does pattern (normalized) match name (normalized)? "*.s" matches names
 * strictly below s, never s itself. */
bool egress_pattern_match(const char *pattern, const char *name);

/* The gateway host's own addresses (every interface), so that a name
 * resolving to one of them is refused. */
struct egress_hostaddrs {
	size_t n;
	struct in6_addr addr[256]; /* IPv4 stored as v4-mapped */
};
/* Re-read the addresses with getifaddrs(). Keeps the old list on failure. */
int egress_hostaddrs_refresh(struct egress_hostaddrs *h, struct pd_err *err);

/* Why a destination address is refused in every mode, or NULL when it may
 * be reached. sa is AF_INET or AF_INET6 (anything else is refused); host may
 * be NULL. The reason is a static string such as "loopback". */
const char *egress_addr_refusal(const struct sockaddr *sa, const struct egress_hostaddrs *host);
/* Same for a bare address: family AF_INET (4 bytes) or AF_INET6 (16). */
const char *egress_ip_refusal(int family, const void *addr, const struct egress_hostaddrs *host);

/* Is s an IPv4 or IPv6 literal (optionally in [brackets])? Fills sa (port 0). */
bool egress_ip_literal(const char *s, struct sockaddr_storage *sa);

#endif
