/* cmd-image.c: `paddock image build|ls|rm|prune|import`.
 *
 * build reads the image: section of paddock.yaml (DIR/paddock.yaml, or the
 * one `paddock run` would use), flags on top, and prints the image's rootfs
 * path on stdout, so that `paddock run --image "$(paddock image build)"`
 * works. Progress goes to stderr: on a terminal one status line that updates
 * in place (the step and the last line of its output), else one line per step. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/strv.h"
#include "image/image.h"
#include "spec/spec.h"
#include "spec/yaml.h"

#define EXIT_DIFFERS 1 /* build --verify: the rebuild is not identical */

static void image_usage(FILE *f)
{
	fputs("usage: paddock image COMMAND [OPTIONS]\n"
	      "\n"
	      "  build [DIR]          build the image DIR/paddock.yaml describes (default: the\n"
	      "                       paddock.yaml paddock run uses), or return the cached one;\n"
	      "                       prints the image's root filesystem path\n"
	      "      --base NAME      image base (debian:bookworm, the only one for now)\n"
	      "      --package PKG    a Debian package (repeat; replaces the file's list)\n"
	      "      --agent NAME     claude, codex or opencode (repeat; replaces the file's\n"
	      "                       list)\n"
	      "      --run SCRIPT     extra build steps, run with sh -e (replaces the file's)\n"
	      "      --no-spec        ignore paddock.yaml: the flags alone\n"
	      "      --force          rebuild even if cached\n"
	      "      --verify         rebuild into a temporary tree and compare the tree digests\n"
	      "                       (exit status 1 when they differ)\n"
	      "  -q, --quiet          plain progress lines, even on a terminal\n"
	      "  ls                   list the images: digest, base, contents, size, creation\n"
	      "  rm DIGEST-PREFIX     remove a built image\n"
	      "  prune                remove every built image and what interrupted builds left;\n"
	      "                       the default image and imported images stay\n"
	      "  import FILE [--name NAME]\n"
	      "                       import a root filesystem: tarball, docker-archive or OCI\n"
	      "                       layout\n",
	      f);
}

/* ---- progress ----------------------------------------------------------- */

struct view {
	bool live;   /* one status line, rewritten in place */
	bool all;    /* not live: every line, not only the steps */
	bool shown;  /* the status line is on the screen */
	char step[256];
	char last[256];
};

/* Copy src into dst (len bytes) with what could move the cursor or confuse
 * the width replaced: control bytes and non-ASCII become '?', tabs spaces. */
static void sanitize(char *dst, size_t len, const char *src)
{
	size_t n = 0;
	for (; *src && n + 1 < len; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = c == '\t' ? ' ' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
}

static void view_redraw(struct view *v)
{
	struct winsize ws;
	size_t width = 80;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		width = ws.ws_col;
	char line[600];
	snprintf(line, sizeof line, "%s%s%s", v->step, v->last[0] ? "  " : "", v->last);
	if (strlen(line) > width - 1)
		line[width - 1] = '\0';
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	v->shown = true;
}

static void view_clear(struct view *v)
{
	if (v->shown)
		fputs("\r\033[K", stderr);
	v->shown = false;
}

/* image_progress_fn: step lines start with '['. */
static void view_progress(void *ctx, const char *line)
{
	struct view *v = ctx;
	bool step = line[0] == '[';
	if (!v->live) {
		if (step || v->all)
			fprintf(stderr, "paddock: %s\n", line);
		return;
	}
	if (step) {
		sanitize(v->step, sizeof v->step, line);
		v->last[0] = '\0';
	} else {
		const char *s = line + strspn(line, " \t");
		if (!*s)
			return;
		sanitize(v->last, sizeof v->last, s);
	}
	view_redraw(v);
}

/* ---- build -------------------------------------------------------------- */

enum {
	OPT_BASE = 256, OPT_PACKAGE, OPT_AGENT, OPT_RUN, OPT_FORCE, OPT_VERIFY, OPT_NO_SPEC,
};

static const struct option build_opts[] = {
	{ "base", required_argument, NULL, OPT_BASE },
	{ "package", required_argument, NULL, OPT_PACKAGE },
	{ "agent", required_argument, NULL, OPT_AGENT },
	{ "run", required_argument, NULL, OPT_RUN },
	{ "no-spec", no_argument, NULL, OPT_NO_SPEC },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

struct build_args {
	const char *dir;
	bool no_spec, force, verify, quiet;
	const char *base, *run;
	char **packages, **agents; /* NULL unless given */
};

static void build_args_free(struct build_args *a)
{
	pd_strvfreep(&a->packages);
	pd_strvfreep(&a->agents);
}

/* The error for an unknown option or a missing argument at argv[optind - 1]. */
static int bad_option(const char *cmd, char **argv, struct pd_err *err)
{
	const char *arg = argv[optind - 1];
	if (optopt && !strncmp(arg, "--", 2))
		pd_err_set(err, EINVAL, "image", "option '%s' needs a value", arg);
	else if (optopt)
		pd_err_set(err, EINVAL, "image", "unknown option '-%c'", optopt);
	else
		pd_err_set(err, EINVAL, "image", "unknown option '%s'", arg);
	return pd_err_hint(err, "see paddock image %s --help", cmd);
}

/* Parse `image build` argv. Returns 0, 1 for --help, or < 0 with err filled. */
static int parse_build(int argc, char **argv, struct build_args *a, struct pd_err *err)
{
	int c, r = 0;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", build_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BASE: a->base = optarg; break;
		case OPT_PACKAGE: r = strv_push(&a->packages, optarg); break;
		case OPT_AGENT: r = strv_push(&a->agents, optarg); break;
		case OPT_RUN: a->run = optarg; break;
		case OPT_NO_SPEC: a->no_spec = true; break;
		case OPT_FORCE: a->force = true; break;
		case OPT_VERIFY: a->verify = true; break;
		case 'q': a->quiet = true; break;
		case 'h': return 1;
		default: return bad_option("build", argv, err);
		}
		if (r < 0)
			return pd_err_set(err, ENOMEM, "image", "out of memory");
	}
	if (optind < argc)
		a->dir = argv[optind++];
	if (optind < argc)
		return pd_err_set(err, EINVAL, "image", "unexpected argument '%s'", argv[optind]),
		       pd_err_hint(err, "usage: paddock image build [DIR] [OPTIONS]");
	if (a->dir && a->no_spec)
		return pd_err_set(err, EINVAL, "image", "DIR and --no-spec exclude each other");
	return 0;
}

/* Replace *dst by a copy of src. Returns 0 or -ENOMEM. */
static int replace_str(char **dst, const char *src)
{
	char *copy = strdup(src);
	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int replace_strv(char ***dst, char **src)
{
	char **copy = NULL;
	for (char **p = src; *p; p++)
		if (strv_push(&copy, *p) < 0) {
			pd_strvfreep(&copy);
			return -ENOMEM;
		}
	pd_strvfreep(dst);
	*dst = copy;
	return 0;
}

/* The image spec: paddock.yaml's image: section (DIR's, or the one found
 * from the current directory unless --no-spec), the flags on top. Returns 0
 * or < 0 with err filled. */
static int build_spec(const struct build_args *a, struct spec *s, struct pd_err *err)
{
	_cleanup_free_ char *file = NULL;
	int r = 0;
	if (a->dir) {
		if (asprintf(&file, "%s/%s", a->dir, PD_YAML_NAME) < 0)
			return pd_err_set(err, ENOMEM, "image", "out of memory");
		if (access(file, F_OK) < 0)
			return pd_err_errno(err, "spec", "cannot read %s", file),
			       pd_err_hint(err, "give the directory that holds paddock.yaml");
	} else if (!a->no_spec && (r = spec_yaml_find(&file, err)) < 0) {
		return r;
	}
	if (file && (r = spec_load_yaml(file, s, err)) < 0)
		return r;
	struct pd_image_spec *is = &s->image_spec;
	if ((a->base && replace_str(&is->base, a->base) < 0) ||
	    (a->run && replace_str(&is->run, a->run) < 0) ||
	    (a->packages && replace_strv(&is->packages, a->packages) < 0) ||
	    (a->agents && replace_strv(&is->agents, a->agents) < 0))
		return pd_err_set(err, ENOMEM, "image", "out of memory");
	return 0;
}

/* The --verify outcome, to stderr. Returns the exit status. */
static int report_verify(const struct image_build_result *res)
{
	if (res->reproducible) {
		fprintf(stderr, "paddock: verify: the rebuild is identical (tree sha256 %s)\n",
			res->tree);
		return 0;
	}
	fprintf(stderr,
		"paddock: verify: the rebuild differs in %zu entries "
		"(tree sha256 %s, rebuilt %s)\n",
		res->n_differ, res->tree, res->rebuilt);
	for (const char *l = res->differences; l && *l;) {
		size_t n = strcspn(l, "\n");
		fprintf(stderr, "paddock:   %.*s\n", (int)n, l);
		l += n + (l[n] == '\n');
	}
	/* The manifests sit next to the rootfs. */
	size_t dir = strlen(res->rootfs) - strlen("/rootfs");
	fprintf(stderr, "paddock: verify: compare %.*s/tree.manifest with verify.manifest\n",
		(int)dir, res->rootfs);
	return EXIT_DIFFERS;
}

static int image_cmd_build(int argc, char **argv)
{
	struct build_args a = { 0 };
	struct pd_err err = { 0 };
	struct spec s;
	spec_init(&s);
	int rc = EXIT_PADDOCK;
	int r = parse_build(argc, argv, &a, &err);
	if (r == 1) {
		image_usage(stdout);
		rc = 0;
		goto out;
	}
	if (r < 0 || build_spec(&a, &s, &err) < 0) {
		cli_error(&err);
		goto out;
	}
	struct view v = { .live = !a.quiet && isatty(STDERR_FILENO) };
	struct image_build_opts o = { .force = a.force, .verify = a.verify,
				      .progress = view_progress, .ctx = &v };
	struct image_build_result res;
	r = image_build_ex(&s.image_spec, &o, &res, &err);
	view_clear(&v);
	if (r < 0) {
		cli_error(&err);
		goto out;
	}
	if (res.cache_hit)
		fprintf(stderr, "paddock: image %.12s: cache hit\n", res.digest);
	else
		fprintf(stderr, "paddock: image %.12s built in %.1f s\n", res.digest, res.seconds);
	rc = res.verified ? report_verify(&res) : 0;
	printf("%s\n", res.rootfs);
	image_build_result_free(&res);
out:
	build_args_free(&a);
	spec_free(&s);
	return rc;
}

/* ---- ls, rm, prune, import ---------------------------------------------- */

/* "1.2G", "312.4M", "12K" into buf. */
static const char *human_size(unsigned long long n, char *buf, size_t len)
{
	static const char units[] = "BKMGT";
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof units - 1) {
		v /= 1024;
		u++;
	}
	if (n == 0)
		snprintf(buf, len, "-");
	else if (u == 0)
		snprintf(buf, len, "%lluB", n);
	else
		snprintf(buf, len, "%.*f%c", v < 10 ? 1 : 0, v, units[u]);
	return buf;
}

/* "hello, jq; agents: claude; run" into buf. */
static const char *contents(const struct image_entry *e, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	if (e->kind == IMAGE_DEFAULT)
		n += (size_t)snprintf(buf, len, "the default image");
	else if (e->kind == IMAGE_IMPORTED)
		n += (size_t)snprintf(buf, len, "imported");
	for (char **p = e->packages; p && *p && n < len; p++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", p == e->packages ? "" : ", ", *p);
	for (char **p = e->agents; p && *p && n < len; p++) {
		const char *sep = p != e->agents ? ", " : n ? "; agents: " : "agents: ";
		n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, *p);
	}
	if (e->has_run && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%srun", n ? "; " : "");
	if (e->kind == IMAGE_BUILT && n == 0 && e->base)
		n += (size_t)snprintf(buf, len, "minbase");
	if (!e->complete && n < len)
		snprintf(buf + n, len - n, "%s(incomplete)", n ? " " : "");
	return buf;
}

static int image_cmd_ls(int argc, char **argv)
{
	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			image_usage(stdout);
			return 0;
		}
		cli_errorf("image ls: unexpected argument '%s' (see paddock image --help)",
			   argv[1]);
		return EXIT_PADDOCK;
	}
	struct pd_err err = { 0 };
	struct image_entry *v = NULL;
	int n = image_list(&v, &err);
	if (n < 0) {
		cli_error(&err);
		return EXIT_PADDOCK;
	}
	printf("%-12s  %-16s  %-40s  %7s  %s\n", "IMAGE", "BASE", "CONTENTS", "SIZE", "CREATED");
	for (int i = 0; i < n; i++) {
		const struct image_entry *e = &v[i];
		char what[512], size[32], when[32] = "-";
		time_t t = (time_t)e->created;
		struct tm tm;
		if (e->created && localtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		contents(e, what, sizeof what);
		if (strlen(what) > 40)
			memcpy(what + 37, "...", 4);
		printf("%-12.12s  %-16.16s  %-40s  %7s  %s\n", e->name,
		       e->base ? e->base : e->kind == IMAGE_DEFAULT ? "debian:bookworm" : "-", what,
		       human_size(e->size, size, sizeof size), when);
	}
	image_list_free(v, (size_t)n);
	return 0;
}

static int image_cmd_rm(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		image_usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		cli_errorf("usage: paddock image rm DIGEST-PREFIX (see paddock image ls)");
		return EXIT_PADDOCK;
	}
	struct pd_err err = { 0 };
	char digest[65];
	if (image_remove(argv[1], digest, &err) < 0) {
		cli_error(&err);
		return EXIT_PADDOCK;
	}
	fprintf(stderr, "paddock: removed image %s\n", digest);
	printf("%s\n", digest);
	return 0;
}

static void print_progress(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "paddock: %s\n", line);
}

static int image_cmd_prune(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		image_usage(stdout);
		return 0;
	}
	if (argc != 1) {
		cli_errorf("image prune: unexpected argument '%s' (see paddock image --help)",
			   argv[1]);
		return EXIT_PADDOCK;
	}
	struct pd_err err = { 0 };
	unsigned long long freed = 0;
	int n = image_prune(print_progress, NULL, &freed, &err);
	if (n < 0) {
		cli_error(&err);
		return EXIT_PADDOCK;
	}
	char size[32];
	fprintf(stderr,
		"paddock: removed %d built image%s (%s); the default image and imported images "
		"stay\n",
		n, n == 1 ? "" : "s", human_size(freed, size, sizeof size));
	return 0;
}

/* `image import` runs paddock-import from the directory of this executable
 * (see src/libexec/paddock-import.c for why it is separate). */
static int image_cmd_import(int argc, char **argv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
	if (n <= 0) {
		cli_errorf("image import: cannot find paddock's own directory");
		return EXIT_PADDOCK;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	strcpy(slash ? slash + 1 : self, "paddock-import");
	argv[0] = self;
	execv(self, argv);
	cli_errorf("image import: cannot run %s: %s", self, strerror(errno));
	return EXIT_PADDOCK;
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_command subs[] = {
		{ "build", image_cmd_build, NULL }, { "ls", image_cmd_ls, NULL },
		{ "rm", image_cmd_rm, NULL },	    { "prune", image_cmd_prune, NULL },
		{ "import", image_cmd_import, NULL },
	};
	if (argc < 2) {
		image_usage(stderr);
		return EXIT_PADDOCK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		image_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].run(argc - 1, argv + 1);
	cli_errorf("unknown image command '%s' (see paddock image --help)", argv[1]);
	return EXIT_PADDOCK;
}
