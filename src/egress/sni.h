/* sni.h: the server name of a TLS ClientHello, read without terminating TLS. */
#ifndef PADDOCK_EGRESS_SNI_H
#define PADDOCK_EGRESS_SNI_H

#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello we wait for: its records and the handshake message
 * must fit here. Real ones are 0.5-2 KiB (with post-quantum key shares). */
#define SNI_MAX_HELLO 16384

enum sni_result {
	SNI_OK = 0,        /* name written */
	SNI_NEED_MORE,     /* a prefix of a plausible ClientHello: read more */
	SNI_NOT_TLS,       /* does not start like a TLS handshake record */
	SNI_NO_NAME,       /* a complete ClientHello without a host_name */
	SNI_ECH,           /* carries encrypted_client_hello: the real name is hidden */
	SNI_MALFORMED,     /* a length or field is inconsistent */
	SNI_TOO_LARGE,     /* larger than SNI_MAX_HELLO */
};

/* Parse buf[0..len) as the first bytes a TLS client sends. On SNI_OK, name
 * (namecap >= 256) holds the host_name as sent (NUL-terminated, not yet
 * validated as a host name: the caller runs it through the policy). */
enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t namecap);
const char *sni_result_str(enum sni_result r);

#endif
