/* proto.c: frames of the paddock <-> paddockd protocol. */
#include "daemon/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pd_frame_hdr(uint8_t out[PD_FRAME_HDR], int type, size_t len)
{
	out[0] = (uint8_t)type;
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

int pd_frame_parse(const uint8_t hdr[PD_FRAME_HDR], int *type, size_t *len)
{
	size_t n = (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	*type = hdr[0];
	*len = n;
	switch (hdr[0]) {
	case PD_FR_JSON:
		return n > PD_FRAME_MAX_JSON ? -EMSGSIZE : 0;
	case PD_FR_IN:
	case PD_FR_OUT:
	case PD_FR_ERR:
	case PD_FR_EXIT:
		return n > PD_FRAME_MAX_DATA ? -EMSGSIZE : 0;
	case PD_FR_WINCH:
		return n != 4 ? -EMSGSIZE : 0;
	default:
		return -EPROTO;
	}
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got == 0 ? -EPIPE : -EIO;
		got += (size_t)n;
	}
	return 0;
}

int pd_frame_write(int fd, int type, const void *data, size_t len)
{
	uint8_t hdr[PD_FRAME_HDR];
	int t;
	size_t l;
	pd_frame_hdr(hdr, type, len);
	if (pd_frame_parse(hdr, &t, &l) < 0)
		return -EMSGSIZE;
	int r = write_all(fd, hdr, sizeof hdr);
	return r < 0 || !len ? r : write_all(fd, data, len);
}

int pd_frame_read(int fd, int *type, char **data, size_t *len)
{
	uint8_t hdr[PD_FRAME_HDR];
	int r = read_all(fd, hdr, sizeof hdr);
	if (r < 0)
		return r;
	if ((r = pd_frame_parse(hdr, type, len)) < 0)
		return r;
	char *buf = malloc(*len + 1);
	if (!buf)
		return -ENOMEM;
	if (*len && (r = read_all(fd, buf, *len)) < 0) {
		free(buf);
		return r == -EPIPE ? -EIO : r;
	}
	buf[*len] = '\0';
	*data = buf;
	return 0;
}

int pd_name_valid(const char *name)
{
	size_t n = 0;
	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return 0;
	for (const char *p = name; *p; p++, n++)
		if (n == 40 || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}
