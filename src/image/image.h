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

#endif
