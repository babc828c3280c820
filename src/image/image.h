/* image.h: root filesystem images. */
#ifndef PADDOCK_IMAGE_H
#define PADDOCK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Progress callback: one human-readable line at a time. A line that starts
 * with '[' begins a build step ("[2/5] installing agents: claude"); any other
 * line is output of the current step (mmdebstrap's "I: ..." lines, npm's and
 * the run: steps' output). */
typedef void (*image_progress_fn)(void *ctx, const char *line);

/* The state directory: $PADDOCK_STATE_DIR or /var/lib/paddock. */
const char *image_state_dir(void);

/* Path of the default image (Debian 12 minbase + git, ca-certificates, curl,
 * bash), building it with mmdebstrap on first use under a lock. Returns a
 * malloc'd path to the rootfs directory or NULL with err filled. */
char *image_default(image_progress_fn progress, void *ctx, struct pd_err *err);

/* The image to run: the default image when path_or_null is NULL (building it
 * if needed, see image_default), else the canonical path of the given
 * directory after checking that it holds a root filesystem (a /bin/sh that
 * resolves inside it). Returns 0 and a malloc'd path in *out, or < 0 with err
 * filled (layer "image") and *out untouched. */
int image_resolve(const char *path_or_null, char **out, image_progress_fn progress, void *ctx,
		  struct pd_err *err);

/* The Debian mirror lines used to build the default image, read from the apt
 * sources under etc_apt (normally "/etc/apt"): sources.list and the *.list
 * files in sources.list.d (one-line format), the *.sources files there (deb822).
 * Keeps enabled "deb" entries for bookworm, bookworm-updates and
 * bookworm-security that include component main, as "deb URI SUITE main".
 * Without an entry for bookworm itself, "deb http://deb.debian.org/debian
 * bookworm main" comes first. Returns the number of lines and a
 * NULL-terminated malloc'd vector in *out, or < 0 with err filled. */
int image_mirrors(const char *etc_apt, char ***out, struct pd_err *err);

/* ---- images built from a spec (src/image/build.c) ---------------------- */

struct pd_image_spec;

/* The content hash of an image spec's inputs (base, sorted packages, sorted
 * agents, run steps, paddock's build recipe version): 64 hex chars + NUL. */
int image_spec_digest(const struct pd_image_spec *is, char out[65], struct pd_err *err);
/* Build the image `is` describes, or return the cached one (a cache hit
 * returns at once). *out: malloc'd path to its rootfs. */
int image_build(const struct pd_image_spec *is, bool force, image_progress_fn progress, void *ctx,
		char **out, struct pd_err *err);

/* The agents an image spec may name, and the npm package (pinned) each one
 * installs; NULL for an unknown name. */
const char *image_agent_package(const char *agent);

struct image_build_opts {
	bool force;  /* rebuild even if cached; the old image stays until the new one is complete */
	bool verify; /* then rebuild into a temporary tree and compare the tree digests */
	image_progress_fn progress;
	void *ctx;
};

struct image_build_result {
	char *rootfs;        /* malloc'd path of the image's root filesystem */
	char digest[65];     /* the spec's digest: the image's name in the cache */
	char tree[65];       /* the tree digest of the cached image ("" if unknown) */
	bool cache_hit;      /* nothing was built (a --verify rebuild aside) */
	double seconds;      /* how long the build took (0 for a cache hit) */
	bool verified;       /* --verify ran: */
	bool reproducible;   /*   the rebuild has the same tree digest */
	char rebuilt[65];    /*   the rebuild's tree digest */
	size_t n_differ;     /*   entries that differ */
	char *differences;   /*   malloc'd "+/-/~ PATH..." lines (at most 50), or NULL */
};

/* image_build with options and the whole outcome (free it with
 * image_build_result_free). Returns 0, even when a --verify rebuild differs
 * (see res->reproducible), or < 0 with err filled and *res untouched. */
int image_build_ex(const struct pd_image_spec *is, const struct image_build_opts *o,
		   struct image_build_result *res, struct pd_err *err);
void image_build_result_free(struct image_build_result *res);

enum image_kind {
	IMAGE_BUILT,    /* built from a spec: images/<digest> */
	IMAGE_DEFAULT,  /* images/default */
	IMAGE_IMPORTED, /* images/<name> (image import) */
};

/* One image in the cache, for `paddock image ls`. */
struct image_entry {
	char name[256];          /* the digest, "default", or the imported image's name */
	enum image_kind kind;
	bool complete;           /* usable: built to the end */
	char *base;              /* built: the spec's base, else NULL */
	char **packages;         /* built: the spec's packages and agents (NULL-terminated) */
	char **agents;
	bool has_run;            /* built: the spec has run: steps */
	unsigned long long size; /* bytes of files and symlinks, 0 if unknown */
	long long created;       /* when it was built (Unix time), 0 if unknown */
};

/* The images under the state directory: default first, then the newest
 * first. Returns the count and a malloc'd array in *out (free it with
 * image_list_free), or < 0 with err filled. */
int image_list(struct image_entry **out, struct pd_err *err);
void image_list_free(struct image_entry *v, size_t n);
/* Remove the built image whose digest starts with prefix (hex). An ambiguous
 * or unknown prefix, or an image being built, is refused. Returns 0 and the
 * full digest in removed, or < 0 with err filled. */
int image_remove(const char *prefix, char removed[65], struct pd_err *err);
/* Remove every built image (complete or not) and what interrupted builds left
 * behind, including the default image's; the default image and imported
 * images stay. Images being built are skipped (reported to progress). Returns
 * the number of images removed and the bytes they held (as far as known) in
 * *freed, or < 0 with err filled. */
int image_prune(image_progress_fn progress, void *ctx, unsigned long long *freed,
		struct pd_err *err);

/* ---- import (src/image/import.c) --------------------------------------- */

/* Import a root filesystem from `file`: a tarball (any compression libarchive
 * reads), a docker-archive (`docker save`) or an OCI image layout (directory
 * or tar), applying layers in order with whiteouts. Stored under the state
 * directory as images/<name> (name NULL: derived from the file name; an
 * existing name is refused) with meta.json and ok. Returns 0 and a malloc'd
 * path to its rootfs in *out, or < 0 with err filled, *out untouched and
 * nothing left in the store. Needs root. See import.c for what is kept. */
int image_import(const char *file, const char *name, image_progress_fn progress, void *ctx,
		 char **out, struct pd_err *err);

/* What one import may consume; exceeding any of them fails the import. */
struct image_import_limits {
	unsigned long long max_bytes;   /* file data written, all layers together */
	unsigned long long max_entries; /* archive entries, all layers together */
	unsigned long max_path;         /* bytes in an entry's path or link target */
	unsigned max_layers;            /* layers of a docker or OCI image */
	unsigned long max_json;         /* bytes of one manifest, index or config */
};

/* The limits image_import() applies: 16 GiB, 1,000,000 entries, 4095-byte
 * paths (PATH_MAX with its NUL), 128 layers, 4 MiB of JSON. */
extern const struct image_import_limits image_import_default_limits;

/* image_import() with other limits (tests use small ones). name NULL: derived
 * from the file name. */
int image_import_with_limits(const char *file, const char *name,
			     const struct image_import_limits *limits, image_progress_fn progress,
			     void *ctx, char **out, struct pd_err *err);

#endif
