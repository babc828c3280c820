/* cmd-spec.c: `paddock spec [--json] [RUN OPTIONS] [-- CMD [ARGS...]]`.
 *
 * Prints the spec `paddock run` would use with the same options: paddock.yaml,
 * then the flags, then the defaults, checked as run checks it. The YAML is a
 * valid paddock.yaml; the JSON holds every setting. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "spec/spec.h"
#include "spec/yaml.h"

static void spec_usage(FILE *f)
{
	fputs("usage: paddock spec [--json] [RUN OPTIONS] [-- CMD [ARGS...]]\n"
	      "\n"
	      "Print the effective sandbox spec: paddock.yaml (./paddock.yaml, else the one\n"
	      "at the top of the git work tree), the options on top, and the defaults.\n"
	      "\n"
	      "      --json              print JSON instead of YAML\n"
	      "  -f, --spec FILE         read FILE instead of the paddock.yaml found\n"
	      "      --no-spec           ignore paddock.yaml\n"
	      "\n"
	      "Every option of paddock run is accepted (see paddock run --help).\n",
	      f);
}

/* Flag mount sources are relative to the current directory; print them
 * absolute, as the file's are, so that the output reads back the same. */
static int absolute_sources(struct spec *s, struct pd_err *err)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return pd_err_errno(err, "spec", "getcwd");
	for (size_t i = 0; i < s->n_mounts; i++) {
		char *abs, *src = s->mounts[i].source;
		if (src[0] == '/')
			continue;
		if (asprintf(&abs, "%s/%s", cwd, src) < 0)
			return pd_err_set(err, ENOMEM, "spec", "out of memory");
		free(src);
		s->mounts[i].source = abs;
	}
	return 0;
}

int cmd_spec(int argc, char **argv)
{
	struct spec s;
	struct pd_err err = { 0 };
	bool json = false;
	char *text = NULL;
	int rc = EXIT_PADDOCK;
	spec_init(&s);
	int r = cli_parse_spec_flags(argc, argv, CLI_SPEC_SHOW, &s, &json, &err);
	if (r == 1) {
		spec_usage(stdout);
		rc = 0;
		goto out;
	}
	if (r < 0)
		goto fail;
	/* Check it as run would; the command may be missing here. */
	char *placeholder[] = { "true", NULL };
	bool borrowed = !s.argv;
	if (borrowed)
		s.argv = placeholder;
	r = spec_validate(&s, &err);
	if (borrowed)
		s.argv = NULL;
	if (r < 0 || absolute_sources(&s, &err) < 0)
		goto fail;
	text = json ? spec_to_json(&s, &err) : spec_to_yaml(&s, &err);
	if (!text)
		goto fail;
	fputs(text, stdout);
	if (json)
		fputc('\n', stdout);
	if (fflush(stdout) != 0) {
		pd_err_errno(&err, "spec", "writing to stdout");
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	cli_error(&err);
out:
	free(text);
	spec_free(&s);
	return rc;
}
