/* image.h: root filesystem images. */
#ifndef PADDOCK_IMAGE_H
#define PADDOCK_IMAGE_H

#include <stdbool.h>

#include "common/err.h"

/* Progress callback: one human-readable line per step. */
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

/* ---- import (src/image/import.c) --------------------------------------- */

/* Import a root filesystem from `file`: a tarball (any compression libarchive
 * reads), a docker-archive (`docker save`) or an OCI image layout (directory
 * or tar), applying layers in order with whiteouts. Stored under the state
 * directory as images/<name>; *out: malloc'd path to its rootfs. */
int image_import(const char *file, const char *name, image_progress_fn progress, void *ctx,
		 char **out, struct pd_err *err);

#endif
