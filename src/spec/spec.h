/* spec.h: the one policy type.
 *
 * `struct spec` holds everything a sandbox is: image, command, mounts, limits,
 * network mode, terminal. The CLI (flags, later paddock.yaml) fills it; the
 * sandbox backends and the daemon only read it. Parsing never touches the
 * system. */
#ifndef PADDOCK_SPEC_H
#define PADDOCK_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

enum pd_network {
	PD_NET_OFF = 0,
	PD_NET_FILTERED,
	PD_NET_OPEN,
	/* Build-only: share the host's network namespace. Never reachable from
	 * flags or paddock.yaml; used by `paddock image build` until the egress
	 * gateway can restrict builds to the package mirrors. */
	PD_NET_HOST_BUILD,
};
enum pd_workspace {
	PD_WS_AUTO = 0, /* git clone if in a repo, else a copy of the directory */
	PD_WS_NONE,     /* empty /workspace */
	PD_WS_MOUNT,    /* bind-mount the directory read-write (weaker) */
};

struct pd_mount {
	char *source;  /* host path as given (absolute after spec_finalize) */
	char *target;  /* absolute, normalized path inside the sandbox */
	bool writable; /* ":rw" */
};

/* Defaults; see docs/FENCE.md for the reasons. */
#define PD_DEFAULT_MEMORY (4ULL << 30)
#define PD_DEFAULT_DISK (4ULL << 30)
#define PD_DEFAULT_PIDS 4096
#define PD_DEFAULT_UID_BASE 1879048192u /* 0x70000000, above systemd's container range */
#define PD_UID_RANGE 65536u
#define PD_MAX_MOUNTS 64
#define PD_MAX_ENV 256

/* What an image is built from (paddock.yaml `image:`). Empty base: the
 * default image. Lists are NULL-terminated and may be NULL. */
struct pd_image_spec {
	char *base;      /* "debian:bookworm" */
	char **packages; /* Debian packages */
	char **agents;   /* "claude", "codex", "opencode" */
	char *run;       /* extra build steps (a shell script) */
};

/* A secret the egress gateway injects (paddock.yaml `secrets:`); the sandbox
 * only ever sees a placeholder. */
struct pd_secret {
	char *name;   /* environment variable inside */
	char *from;   /* "env", "file:PATH" or "cmd:COMMAND" */
	char **hosts; /* where it may be sent, NULL-terminated */
};

struct spec {
	char *image;           /* rootfs directory; NULL: the default image */
	char **argv;           /* command, NULL-terminated */
	char **env;            /* extra "K=V", NULL-terminated (may be NULL) */
	struct pd_mount *mounts;
	size_t n_mounts;
	char **unmask;         /* deny-list names explicitly allowed, NULL-terminated */
	char *workdir;         /* cwd inside; default /workspace */
	char *workspace_src;   /* host directory the workspace comes from (cwd) */
	enum pd_workspace workspace;
	enum pd_network network;
	uint64_t memory;       /* bytes, 0 = no limit */
	uint64_t disk;         /* bytes of the writable layer */
	uint64_t pids;         /* 0 = no limit */
	uint64_t cpus_milli;   /* 1000 = one CPU, 0 = no limit */
	bool tty;
	bool strict;           /* refuse to start if any layer degrades */
	char *hostname;
	uid_t uid_base;        /* host uid that root inside maps to */
	struct pd_image_spec image_spec;
	/* Build-only: the image directory itself is the root, writable (idmapped,
	 * so the tree stays owned by host root); no overlay, no --disk bound.
	 * Never reachable from flags or paddock.yaml. */
	bool rootfs_writable;
	/* paddock.yaml (src/spec/yaml.c). Lists are NULL-terminated, may be NULL. */
	char *setup;           /* shell script run in /workspace before argv */
	char **net_allow;      /* network.allow: host patterns */
	char **net_deny;       /* network.deny */
	struct pd_secret *secrets;
	size_t n_secrets;
	uint64_t idle_seconds; /* sleep when idle this long; 0 = never */
};

void spec_init(struct spec *s);
void spec_free(struct spec *s);

/* "2G", "512M", "1024k", "123" -> bytes. Returns 0 or -EINVAL/-ERANGE. */
int spec_parse_size(const char *s, uint64_t *out);
/* "1.5", "2" -> milli-CPUs. */
int spec_parse_cpus(const char *s, uint64_t *out);
/* "SRC:DST[:ro|:rw]" -> mount. */
int spec_parse_mount(const char *arg, struct pd_mount *out, struct pd_err *err);
/* Normalize an absolute in-sandbox path: collapse "//" and ".", refuse "..",
 * relative paths and empty components that would escape. Returns a new string
 * or NULL with err filled. */
char *spec_normalize_target(const char *path, struct pd_err *err);
/* Check a complete spec before anything touches the system: command present,
 * targets unique and not over /proc, /dev, /sys, limits sane, features this
 * build cannot honour refused. */
int spec_validate(const struct spec *s, struct pd_err *err);

#endif
