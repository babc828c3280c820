/* proto.h: the paddock <-> paddockd protocol (docs/PROTOCOL.md).
 *
 * A stream of frames over a Unix socket. A frame is a 4-byte header, one
 * byte of type and a 24-bit big-endian payload length, then the payload.
 * One request per connection: the client's first frame is a JSON request
 * ('J'), the daemon answers with a JSON response ('J'); exec and attach then
 * carry the session's streams until an exit frame ('X'). */
#ifndef PADDOCK_DAEMON_PROTO_H
#define PADDOCK_DAEMON_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum pd_frame {
	PD_FR_JSON = 'J',   /* request or response: one JSON object */
	PD_FR_IN = 'I',     /* client -> daemon: stdin bytes; empty = end of input */
	PD_FR_OUT = 'O',    /* daemon -> client: stdout (or the pty's output) */
	PD_FR_ERR = 'E',    /* daemon -> client: stderr */
	PD_FR_WINCH = 'W',  /* client -> daemon: rows, cols (2 x u16 big-endian) */
	PD_FR_EXIT = 'X',   /* daemon -> client: {"code": N} and the end */
};

#define PD_FRAME_HDR 4
#define PD_FRAME_MAX_JSON (1u << 20) /* a request or response */
#define PD_FRAME_MAX_DATA (64u << 10) /* a stream chunk */

/* Default paths; PADDOCK_SOCKET overrides the socket for the CLI. */
#define PD_SOCKET_DEFAULT "/run/paddock/paddockd.sock"
#define PD_DB_DEFAULT "/var/lib/paddock/paddock.db"

void pd_frame_hdr(uint8_t out[PD_FRAME_HDR], int type, size_t len);
/* The type and length of a header; -EMSGSIZE if the length exceeds what the
 * type allows, -EPROTO for an unknown type. */
int pd_frame_parse(const uint8_t hdr[PD_FRAME_HDR], int *type, size_t *len);

/* Blocking helpers for the CLI. */
int pd_frame_write(int fd, int type, const void *data, size_t len);
/* Reads one frame; *data is malloc'd (NUL-terminated for convenience).
 * 0, -EPIPE at a clean end of stream, or a negative errno. */
int pd_frame_read(int fd, int *type, char **data, size_t *len);

/* Is this a valid name for a named sandbox: [a-z0-9][a-z0-9-]{0,39}? */
int pd_name_valid(const char *name);

#endif
