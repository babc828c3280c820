/* paddock-import: `paddock image import`, as its own executable.
 *
 * Import is the only command that needs libarchive, which pulls in a dozen
 * more libraries (libxml2, ICU, libstdc++ ...): linked into `paddock`, it
 * cost every `paddock run` about 3 ms of loading (docs/BENCHMARKS.md). So
 * `paddock image import` executes this program, installed next to it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "image/image.h"

static void progress(void *ctx, const char *line)
{
	if (!*(const int *)ctx)
		fprintf(stderr, "paddock: %s\n", line);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *name = NULL;
	int quiet = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (c == 'n') {
			name = optarg;
		} else if (c == 'q') {
			quiet = 1;
		} else if (c == 'h') {
			puts("usage: paddock image import FILE [--name NAME] [--quiet]");
			return 0;
		} else {
			fprintf(stderr, "paddock: image import: unknown option '%s' (see paddock image "
					"--help)\n", argv[optind - 1]);
			return 125;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "paddock: usage: paddock image import FILE [--name NAME]\n");
		return 125;
	}
	struct pd_err err = { 0 };
	char *out = NULL, buf[1400];
	if (image_import(argv[optind], name, progress, &quiet, &out, &err) < 0) {
		fprintf(stderr, "paddock: %s\n", pd_err_format(&err, buf, sizeof buf));
		return 125;
	}
	printf("%s\n", out);
	free(out);
	return 0;
}
