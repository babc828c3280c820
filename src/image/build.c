/* build.c: images built from a spec (paddock.yaml `image:`), cached by the
 * digest of their inputs.
 *
 *   <state>/images/<digest>.lock          flock held by whoever builds, verifies or removes it
 *   <state>/images/<digest>/rootfs        the tree, renamed into place when complete
 *   <state>/images/<digest>/ok            completion marker, written last
 *   <state>/images/<digest>/build.log     every step's output, from the last build
 *   <state>/images/<digest>/meta.json     the spec, size and date (`paddock image ls`)
 *   <state>/images/<digest>/tree.sha256   the tree digest: SHA-256 of tree.manifest
 *   <state>/images/<digest>/tree.manifest one line per entry of the tree (tree.c)
 *   <state>/images/<digest>/verify.*      the last --verify rebuild's log and manifest
 *   <state>/images/<digest>/.tmp-*        a build in progress (or a killed one)
 *
 * A build, with the lock held, in a temporary tree next to the image:
 *   1. mmdebstrap the base with the packages (under image.c's supervisor)
 *   2. agents: `npm install -g` in a paddock sandbox on the tree: writable
 *      idmapped root, the host's network (build-only modes of struct spec)
 *   3. the spec's run: steps, `sh -e -c RUN`, in the same kind of sandbox
 *   4. clean what makes two builds differ, clamp mtimes to SOURCE_DATE_EPOCH
 *   5. the tree digest
 *   6. rename into place, marker last
 * A failed step removes the temporary tree; its output stays in build.log. */
#include "image/image.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "image/internal.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"

/* Bump when a build step changes what a spec produces: every cached image
 * then rebuilds, since this string is part of the digest. */
#define BUILD_RECIPE "paddock-image-recipe 2"
#define BUILD_BASE "debian:" IMAGE_SUITE
#define BUILD_AGENT_DEPS "nodejs,npm" /* Debian 12: Node 18.20, npm 9.2 */
#define BUILD_MAX_PACKAGES 512
#define BUILD_MAX_AGENTS 16
#define BUILD_MAX_NAME 128          /* a package name with its =version */
#define BUILD_MAX_RUN (256 * 1024)  /* bytes of run: script */
#define BUILD_DIFF_LINES 50         /* differences kept in a --verify report */
#define BUILD_ERR_LINES 3           /* output lines quoted when a step fails */

/* Agent name -> npm package. Pinned, because Debian 12's Node is 18.x and
 * because an unpinned package makes two builds of one spec differ:
 * - @anthropic-ai/claude-code 2.1.198 and later declare engines node >= 22;
 *   2.1.197 is the last release for node >= 18 (a native binary, installed
 *   by its postinstall from the @anthropic-ai/claude-code-linux-x64
 *   optional dependency).
 * - @openai/codex declares node >= 16; its native binary comes as the
 *   optional dependency @openai/codex-linux-x64 (an npm alias).
 * - opencode-ai declares no engines; its postinstall picks the binary from
 *   the opencode-linux-x64* optional dependencies.
 * Changing a pin changes the digest of every spec naming that agent. */
static const struct agent_pkg {
	const char *name;
	const char *package;
} agent_table[] = {
	{ "claude", "@anthropic-ai/claude-code@2.1.197" },
	{ "codex", "@openai/codex@0.169.0" },
	{ "opencode", "opencode-ai@1.18.33" },
};

/* Environment of the build sandboxes, on top of the sandbox's own. */
static const char *const build_env[] = {
	"SOURCE_DATE_EPOCH=" IMAGE_EPOCH,
	"DEBIAN_FRONTEND=noninteractive",
	"npm_config_update_notifier=false",
	"npm_config_fund=false",
	"npm_config_audit=false",
	"npm_config_progress=false",
	NULL,
};

/* Build sandboxes reach the network through the host's, so they trust what
 * the host trusts (a TLS-intercepting proxy's CA, say): the host's CA bundle
 * is bound read-only into them, never into the image (step 4 removes the
 * mount point), and named by the variables TLS clients read. */
#define BUILD_HOST_CA "/etc/ssl/certs/ca-certificates.crt"
#define BUILD_CA_DIR "run/paddock-build"
#define BUILD_CA_PATH "/" BUILD_CA_DIR "/ca-certificates.crt"
static const char *const build_ca_env[] = {
	"NODE_EXTRA_CA_CERTS=" BUILD_CA_PATH, "SSL_CERT_FILE=" BUILD_CA_PATH,
	"CURL_CA_BUNDLE=" BUILD_CA_PATH,      "GIT_SSL_CAINFO=" BUILD_CA_PATH,
	"REQUESTS_CA_BUNDLE=" BUILD_CA_PATH,  NULL,
};

/* What replaces the host's /etc/resolv.conf in a finished image (see step 4). */
static const char resolv_placeholder[] =
	"# paddock: no resolver in the image. Builds use the host's resolv.conf;\n"
	"# a sandbox gets its resolver from its network mode.\n";

/* An image spec in canonical form: what the digest covers. */
struct canon {
	const char *base;  /* "debian:bookworm", or another well-formed NAME:TAG */
	char **packages;   /* the spec's packages, sorted, unique */
	char **include;    /* mmdebstrap's --include: defaults + agent deps + packages */
	const struct agent_pkg *agents[ARRAY_SIZE(agent_table)]; /* sorted by name, unique */
	size_t n_agents;
	const char *run;   /* NULL when there is none */
};

const char *image_agent_package(const char *agent)
{
	for (size_t i = 0; agent && i < ARRAY_SIZE(agent_table); i++)
		if (!strcmp(agent, agent_table[i].name))
			return agent_table[i].package;
	return NULL;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort v (n strings, NULL-terminated) and drop duplicates. */
static void strv_sort_unique(char **v, size_t n)
{
	if (n == 0)
		return;
	qsort(v, n, sizeof *v, cmp_str);
	size_t w = 1;
	for (size_t i = 1; i < n; i++) {
		if (!strcmp(v[i], v[w - 1]))
			free(v[i]);
		else
			v[w++] = v[i];
	}
	v[w] = NULL;
}

/* Append a copy of each comma-separated word of list to v (size *n, room
 * for them). Returns 0 or -ENOMEM. */
static int strv_add_list(char **v, size_t *n, const char *list)
{
	for (const char *s = list; *s;) {
		size_t len = strcspn(s, ",");
		if (!(v[*n] = strndup(s, len)))
			return -ENOMEM;
		v[++*n] = NULL;
		s += len + (s[len] == ',');
	}
	return 0;
}

/* A Debian package name (policy 5.6.1), optionally "=VERSION". */
static bool package_ok(const char *p)
{
	size_t len = strlen(p), name = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789+-.");
	if (len > BUILD_MAX_NAME || name < 2 || !isalnum((unsigned char)p[0]))
		return false;
	if (p[name] == '\0')
		return true;
	const char *ver = p + name + 1;
	return p[name] == '=' && *ver && isalnum((unsigned char)*ver) &&
	       ver[strspn(ver, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			       "0123456789.+~:-")] == '\0';
}

/* base -> canonical base: empty means Debian 12; debian:12 is debian:bookworm.
 * Anything else must look like NAME:TAG. Returns 0 or < 0 with err filled. */
static int base_canon(const char *base, const char **out, struct pd_err *err)
{
	if (!base || !*base || !strcmp(base, BUILD_BASE) || !strcmp(base, "debian:12")) {
		*out = BUILD_BASE;
		return 0;
	}
	const char *colon = strchr(base, ':');
	size_t name = strspn(base, "abcdefghijklmnopqrstuvwxyz0123456789._/-");
	if (strlen(base) > 255 || !colon || base + name != colon || name == 0 ||
	    !isalnum((unsigned char)base[0]) || !isalnum((unsigned char)colon[1]) ||
	    colon[1 + strspn(colon + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789._-")] != '\0') {
		pd_err_set(err, EINVAL, "image", "image base '%s' is not of the form NAME:TAG",
			   base);
		return pd_err_hint(err, "use debian:bookworm (or debian:12)");
	}
	*out = base;
	return 0;
}

static void canon_free(struct canon *c)
{
	pd_strvfreep(&c->packages);
	pd_strvfreep(&c->include);
	*c = (struct canon){ 0 };
}

/* Check is and bring it into canonical form. Returns 0 or < 0 with err
 * filled (layer "image"); c then holds nothing. */
static int canon_init(const struct pd_image_spec *is, struct canon *c, struct pd_err *err)
{
	*c = (struct canon){ 0 };
	int r = base_canon(is->base, &c->base, err);
	if (r < 0)
		return r;
	size_t np = strv_len(is->packages), na = strv_len(is->agents);
	if (np > BUILD_MAX_PACKAGES)
		return pd_err_set(err, E2BIG, "image", "too many packages (%zu > %d)", np,
				  BUILD_MAX_PACKAGES);
	if (na > BUILD_MAX_AGENTS)
		return pd_err_set(err, E2BIG, "image", "too many agents (%zu > %d)", na,
				  BUILD_MAX_AGENTS);
	for (size_t i = 0; i < np; i++)
		if (!package_ok(is->packages[i]))
			return pd_err_set(err, EINVAL, "image",
					  "'%s' is not a Debian package name", is->packages[i]),
			       pd_err_hint(err, "lowercase letters, digits, '+', '-' and '.', "
						"optionally =VERSION");
	bool want[ARRAY_SIZE(agent_table)] = { false };
	for (size_t i = 0; i < na; i++) {
		size_t k = 0;
		while (k < ARRAY_SIZE(agent_table) && strcmp(is->agents[i], agent_table[k].name))
			k++;
		if (k == ARRAY_SIZE(agent_table))
			return pd_err_set(err, EINVAL, "image", "unknown agent '%s'",
					  is->agents[i]),
			       pd_err_hint(err, "known agents: claude, codex, opencode");
		want[k] = true;
	}
	for (size_t k = 0; k < ARRAY_SIZE(agent_table); k++) /* the table is sorted by name */
		if (want[k])
			c->agents[c->n_agents++] = &agent_table[k];
	if (is->run && strlen(is->run) > BUILD_MAX_RUN)
		return pd_err_set(err, E2BIG, "image", "the run: script is longer than %d bytes",
				  BUILD_MAX_RUN);
	c->run = is->run && *is->run ? is->run : NULL;

	/* Room for the defaults (at most 16 words each) and the packages. */
	c->packages = calloc(np + 1, sizeof *c->packages);
	c->include = calloc(np + 33, sizeof *c->include);
	size_t n = 0, ni = 0;
	r = c->packages && c->include ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < np; i++)
		if (!(c->packages[n++] = strdup(is->packages[i])))
			r = -ENOMEM;
	if (r == 0)
		r = strv_add_list(c->include, &ni, IMAGE_INCLUDE);
	if (r == 0 && c->n_agents)
		r = strv_add_list(c->include, &ni, BUILD_AGENT_DEPS);
	for (size_t i = 0; r == 0 && i < np; i++)
		if (!(c->include[ni] = strdup(is->packages[i])))
			r = -ENOMEM;
		else
			c->include[++ni] = NULL;
	if (r < 0) {
		canon_free(c);
		return pd_err_set(err, ENOMEM, "image", "reading the image spec");
	}
	strv_sort_unique(c->packages, n);
	strv_sort_unique(c->include, ni);
	return 0;
}

/* The canonical serialization the digest is taken over. Returns a malloc'd
 * buffer and its length in *len, or NULL when out of memory. */
static char *canon_serialize(const struct canon *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	fprintf(f, "%s\nepoch %s\nbase %s\ninclude", BUILD_RECIPE, IMAGE_EPOCH, c->base);
	for (char **p = c->include; *p; p++)
		fprintf(f, "%c%s", p == c->include ? ' ' : ',', *p);
	fputc('\n', f);
	for (size_t i = 0; i < c->n_agents; i++)
		fprintf(f, "agent %s %s\n", c->agents[i]->name, c->agents[i]->package);
	if (c->run) /* length-prefixed: any text, no ambiguity */
		fprintf(f, "run %zu\n%s\n", strlen(c->run), c->run);
	bool bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int canon_digest(const struct canon *c, char out[65], struct pd_err *err)
{
	size_t len = 0;
	_cleanup_free_ char *buf = canon_serialize(c, &len);
	if (!buf)
		return pd_err_set(err, ENOMEM, "image", "computing the image digest");
	return tree_sha256_hex(buf, len, out, err);
}

int image_spec_digest(const struct pd_image_spec *is, char out[65], struct pd_err *err)
{
	struct canon c;
	int r = canon_init(is, &c, err);
	if (r < 0)
		return r;
	char hex[65];
	r = canon_digest(&c, hex, err);
	canon_free(&c);
	if (r == 0)
		memcpy(out, hex, sizeof hex);
	return r;
}

/* ---- one build ---------------------------------------------------------- */

struct build {
	const struct canon *c;
	const char *digest;
	const char *label; /* "" or "verify " in step lines */
	image_progress_fn progress;
	void *ctx;
	int lock_fd;
	int log_fd;        /* build.log or verify.log; -1 if it could not be opened */
	const char *log_path;
	int step, n_steps;
	char what[200];    /* the current step, for errors */
	struct image_tail *tail;
};

/* What a finished tree is: its manifest and digest. */
struct tree_result {
	char *manifest;
	size_t manifest_len;
	size_t entries;
	unsigned long long bytes;
	char digest[65];
};

static void tree_result_free(struct tree_result *t)
{
	free(t->manifest);
	*t = (struct tree_result){ 0 };
}

/* Append text to the log, best effort. */
static void log_text(struct build *b, const char *text)
{
	if (b->log_fd >= 0 && image_write_all(b->log_fd, text, strlen(text)) < 0) {
		close(b->log_fd);
		b->log_fd = -1;
	}
}

/* Start the next step: "[N/M] what" to progress and the log. */
static void step_begin(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step_begin(struct build *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->what, sizeof b->what, fmt, ap);
	va_end(ap);
	char line[256];
	snprintf(line, sizeof line, "[%s%d/%d] %s", b->label, ++b->step, b->n_steps, b->what);
	image_report(b->progress, b->ctx, line);
	char head[300];
	snprintf(head, sizeof head, "==> %s\n", line);
	log_text(b, head);
	memset(b->tail, 0, sizeof *b->tail);
	b->tail->all_lines = true;
}

/* The error for a step that exited with status: the step, the status and
 * the last lines of its output (first_error: the first E: line, as mmdebstrap
 * prints apt's own reason first). Returns -EIO. */
static int step_failed(struct build *b, int status, bool first_error, struct pd_err *err)
{
	char quote[512] = "";
	if (first_error) {
		snprintf(quote, sizeof quote, "%s", image_tail_reason(b->tail));
	} else {
		/* The last BUILD_ERR_LINES non-empty lines, oldest first. */
		const char *pick[BUILD_ERR_LINES];
		size_t n = 0, len = 0;
		for (size_t i = b->tail->count; i-- > 0 && n < BUILD_ERR_LINES;) {
			const char *l = image_tail_line(b->tail, b->tail->count, i);
			if (l && l[strspn(l, " \t")])
				pick[n++] = l;
		}
		while (n-- > 0 && len < sizeof quote)
			len += (size_t)snprintf(quote + len, sizeof quote - len, "%s%s",
						len ? " | " : "", pick[n]);
		if (!quote[0])
			snprintf(quote, sizeof quote, "no output");
	}
	pd_err_set(err, 0, "image", "step %d/%d (%s) failed (exit %d): %s", b->step, b->n_steps,
		   b->what, status, quote);
	pd_err_hint(err, "the full log is in %s", b->log_path);
	return -EIO;
}

/* Step 1: mmdebstrap the base and the packages into dir. Returns 0 or < 0
 * with err filled. */
static int build_base(struct build *b, const char *dir, const char *tmpdir, struct pd_err *err)
{
	_cleanup_free_ char *exe = NULL;
	_cleanup_strv_ char **mirrors = NULL;
	int n = image_mmdebstrap(&exe, &mirrors, "images", err);
	if (n < 0)
		return n;
	_cleanup_free_ char *include = NULL, *tmpenv = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&include, &len);
	if (f) {
		fputs("--include=", f);
		for (char **p = b->c->include; *p; p++)
			fprintf(f, "%s%s", p == b->c->include ? "" : ",", *p);
		if (fclose(f) != 0)
			f = NULL;
	}
	if (!f || asprintf(&tmpenv, "TMPDIR=%s", tmpdir) < 0)
		return pd_err_set(err, ENOMEM, "image", "building image %s", b->digest);
	const char *argv[16 + IMAGE_MAX_MIRRORS] = {
		"mmdebstrap", "--mode=root", "--variant=minbase", include, "--format=directory",
		"--aptopt=Acquire::Retries \"3\"", "--", IMAGE_SUITE, dir,
	};
	size_t argc = 9;
	for (int i = 0; i < n; i++)
		argv[argc++] = mirrors[i];
	const char *envp[] = {
		"PATH=" IMAGE_PATH, "LC_ALL=C", "SOURCE_DATE_EPOCH=" IMAGE_EPOCH,
		"DEBIAN_FRONTEND=noninteractive", tmpenv, NULL,
	};
	b->tail->all_lines = false; /* mmdebstrap's own I:/W:/E: lines say enough */
	int status = image_run(exe, (char *const *)argv, (char *const *)envp, b->lock_fd,
			       b->log_fd, b->tail, b->progress, b->ctx, err);
	if (status > 0)
		return step_failed(b, status, true, err);
	return status;
}

/* Copy the output of a build sandbox from fd to the log and the tail until
 * the sandbox (pidfd) ends. The pipe's write end also lives on in paddock's
 * own helper processes (forked while it was open), so its end of file does
 * not mean the end: once pid 1 is gone, what is left is in the pipe. */
static void sandbox_output(struct build *b, int fd, int pidfd)
{
	char buf[4096];
	bool ended = false;
	for (;;) {
		if (!ended) {
			struct pollfd p[2] = { { fd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (p[1].revents) {
				ended = true;
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			} else if (!p[0].revents) {
				continue;
			}
		}
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && !ended) { /* every writer closed: wait for the end */
			struct pollfd w = { pidfd, POLLIN, 0 };
			while (poll(&w, 1, -1) < 0 && errno == EINTR)
				;
		}
		if (n <= 0) /* the end, drained (EAGAIN), or an error */
			break;
		if (b->log_fd >= 0 && image_write_all(b->log_fd, buf, (size_t)n) < 0) {
			close(b->log_fd);
			b->log_fd = -1;
		}
		image_tail_feed(b->tail, buf, (size_t)n, b->progress, b->ctx);
	}
	image_tail_flush(b->tail, b->progress, b->ctx);
}

/* Append copies of the strings of src to the NULL-terminated vector *v
 * (which may be NULL). Returns 0 or -ENOMEM. */
static int strv_extend(char ***v, const char *const *src)
{
	size_t n = strv_len(*v), k = strv_len((char *const *)src);
	char **nv = realloc(*v, (n + k + 1) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[n] = NULL;
	for (size_t i = 0; i < k; i++) {
		if (!(nv[n + i] = strdup(src[i])))
			return -ENOMEM;
		nv[n + i + 1] = NULL;
	}
	return 0;
}

/* Bind the host's CA bundle into the build sandbox s, if the host has one.
 * Returns 0 or -ENOMEM. */
static int add_host_ca(struct spec *s)
{
	_cleanup_free_ char *real = realpath(BUILD_HOST_CA, NULL);
	struct stat st;
	if (!real || stat(real, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	s->mounts = calloc(1, sizeof *s->mounts);
	if (!s->mounts)
		return -ENOMEM;
	s->n_mounts = 1;
	s->mounts[0].source = steal_ptr(&real);
	s->mounts[0].target = strdup(BUILD_CA_PATH);
	if (!s->mounts[0].target)
		return -ENOMEM;
	return strv_extend(&s->env, build_ca_env);
}

/* Steps 2 and 3: run argv in a build sandbox on the tree at dir: the tree
 * itself as a writable root, the host's network, no workspace, cwd /root.
 * Returns 0, or < 0 with err filled (a failed command included). */
static int build_sandboxed(struct build *b, const char *dir, const char *const argv[],
			   struct pd_err *err)
{
	struct spec s;
	spec_init(&s);
	s.rootfs_writable = true;
	s.network = PD_NET_HOST_BUILD;
	s.workspace = PD_WS_NONE;
	s.image = strdup(dir);
	s.workdir = strdup("/root");
	int r = 0;
	if (!s.image || !s.workdir || strv_extend(&s.argv, argv) < 0 ||
	    strv_extend(&s.env, build_env) < 0 || add_host_ca(&s) < 0) {
		spec_free(&s);
		return pd_err_set(err, ENOMEM, "image", "building image %s", b->digest);
	}
	int pfd[2] = { -1, -1 };
	_cleanup_close_ int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		r = pd_err_errno(err, "image", "preparing the build sandbox");
		spec_free(&s);
		return r;
	}
	struct sandbox_io io = { .in = nul, .out = pfd[1], .err = pfd[1] };
	struct sandbox *sb = NULL;
	r = sandbox_start(&s, &io, &sb, err);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		spec_free(&s);
		pd_err_prefix(err, "step %d/%d (%s): starting the build sandbox", b->step,
			      b->n_steps, b->what);
		return r;
	}
	if (sandbox_warning(sb)) {
		char line[300];
		snprintf(line, sizeof line, "W: %s", sandbox_warning(sb));
		image_report(b->progress, b->ctx, line);
	}
	sandbox_output(b, pfd[0], sandbox_pidfd(sb));
	close(pfd[0]);
	int code = 0;
	struct pd_err werr = { 0 };
	r = sandbox_wait(sb, &code, &werr);
	sandbox_free(sb);
	spec_free(&s);
	if (r < 0) {
		if (err)
			*err = werr;
		return r;
	}
	if (code != 0 && werr.msg[0]) { /* why the sandbox says it failed, e.g. out of memory */
		char line[sizeof werr.msg + 8];
		snprintf(line, sizeof line, "%s\n", werr.msg);
		log_text(b, line);
		image_tail_feed(b->tail, line, strlen(line), NULL, NULL);
	}
	return code == 0 ? 0 : step_failed(b, code, false, err);
}

/* Step 2: the agents, with npm, in sorted order. */
static int build_agents(struct build *b, const char *dir, struct pd_err *err)
{
	_cleanup_free_ char *cmd = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&cmd, &len);
	if (f) {
		fputs("npm install -g --no-audit --no-fund --omit=dev", f);
		for (size_t i = 0; i < b->c->n_agents; i++) /* table constants: no quoting needed */
			fprintf(f, " '%s'", b->c->agents[i]->package);
		if (fclose(f) != 0)
			f = NULL;
	}
	if (!f)
		return pd_err_set(err, ENOMEM, "image", "building image %s", b->digest);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	return build_sandboxed(b, dir, argv, err);
}

/* Write a small file name in directory dfd, replacing what is there (a
 * symlink is replaced, not followed). Returns 0 or < 0 with err filled. */
static int put_file_at(int dfd, const char *name, const char *text, struct pd_err *err)
{
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return pd_err_errno(err, "image", "cannot replace /etc/%s in the image", name);
	_cleanup_close_ int fd =
		openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || image_write_all(fd, text, strlen(text)) < 0 || fchmod(fd, 0644) < 0)
		return pd_err_errno(err, "image", "cannot write /etc/%s in the image", name);
	return 0;
}

/* Step 4: what makes two builds of one spec differ, or ties the image to the
 * build host, goes; mtimes are clamped to SOURCE_DATE_EPOCH.
 * - apt's caches and lists (directories kept), /tmp, /var/tmp, ldconfig's
 *   aux-cache, npm's cache and logs (/root/.npm: its _cacache index entries
 *   carry the time they were written, its debug log is named by the time)
 * - the files in /var/log are emptied, not removed (wtmp, lastlog... stay as
 *   Debian ships them; apt's and dpkg's logs from run: steps hold times)
 * - /etc/hostname "paddock", /etc/machine-id empty
 * - the mount point of the host's CA bundle (BUILD_CA_DIR)
 * - /etc/resolv.conf: the host's copy (mmdebstrap's, needed for DNS during
 *   the build) becomes a fixed placeholder; the file stays, for a sandbox's
 *   network setup to bind over
 * A directory on the list that is a symlink is left alone (never followed).
 * Returns 0 or < 0 with err filled. */
static int build_finalize(const char *dir, struct pd_err *err)
{
	static const struct {
		const char *path;
		enum tree_clear_mode mode;
		bool remove_self;
	} clear[] = {
		{ "var/cache/apt", TREE_CLEAR_FILES, false },
		{ "var/lib/apt/lists", TREE_CLEAR_FILES, false },
		{ "var/log", TREE_CLEAR_EMPTY, false },
		{ "tmp", TREE_CLEAR_ALL, false },
		{ "var/tmp", TREE_CLEAR_ALL, false },
		{ "root/.npm", TREE_CLEAR_ALL, true },
		{ BUILD_CA_DIR, TREE_CLEAR_ALL, true },
	};
	_cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return pd_err_errno(err, "image", "cannot open %s", dir);
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(clear); i++) {
		_cleanup_close_ int fd = tree_open_dir(root, clear[i].path);
		if (fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR || fd == -EXDEV)
			continue;
		if (fd < 0) {
			errno = -fd;
			return pd_err_errno(err, "image", "cannot open /%s in the image",
					    clear[i].path);
		}
		if ((r = tree_clear(fd, clear[i].mode, clear[i].path, err)) < 0)
			return r;
		if (clear[i].remove_self && unlinkat(root, clear[i].path, AT_REMOVEDIR) < 0)
			return pd_err_errno(err, "image", "cannot remove /%s", clear[i].path);
	}
	if (unlinkat(root, "var/cache/ldconfig/aux-cache", 0) < 0 && errno != ENOENT &&
	    errno != ENOTDIR)
		return pd_err_errno(err, "image", "cannot remove /var/cache/ldconfig/aux-cache");
	_cleanup_close_ int etc = tree_open_dir(root, "etc");
	if (etc < 0) {
		errno = -etc;
		return pd_err_errno(err, "image", "cannot open /etc in the image");
	}
	if ((r = put_file_at(etc, "hostname", "paddock\n", err)) < 0 ||
	    (r = put_file_at(etc, "machine-id", "", err)) < 0 ||
	    (r = put_file_at(etc, "resolv.conf", resolv_placeholder, err)) < 0)
		return r;
	/* /workspace and the root's mode, as image_publish() leaves them. */
	if ((mkdirat(root, "workspace", 0755) < 0 && errno != EEXIST) ||
	    fchmodat(root, "workspace", 0755, 0) < 0 || fchmod(root, 0755) < 0)
		return pd_err_errno(err, "image", "cannot prepare /workspace in the image");
	return tree_clamp_mtimes(root, strtoll(IMAGE_EPOCH, NULL, 10), err);
}

/* Step 5: the manifest and tree digest of dir. */
static int build_digest(const char *dir, struct tree_result *t, struct pd_err *err)
{
	_cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return pd_err_errno(err, "image", "cannot open %s", dir);
	int r = tree_manifest(root, &t->manifest, &t->manifest_len, &t->entries, &t->bytes, err);
	if (r < 0)
		return r;
	return tree_sha256_hex(t->manifest, t->manifest_len, t->digest, err);
}

/* Agents as "claude, codex" into buf. */
static void agent_names(const struct canon *c, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n_agents && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", c->agents[i]->name);
}

/* Packages as "hello, jq" (or "minbase") into buf. */
static void package_names(const struct canon *c, char *buf, size_t len)
{
	size_t n = 0;
	snprintf(buf, len, "minbase");
	for (size_t i = 0; c->packages[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", c->packages[i]);
}

/* Steps 1-5 into the new directory dir (removed again on failure). Returns 0
 * and the tree's manifest and digest in t, or < 0 with err filled. */
static int build_tree(struct build *b, const char *dir, struct tree_result *t,
		      struct pd_err *err)
{
	_cleanup_free_ char *tmpdir = NULL;
	if (asprintf(&tmpdir, "%s-tmpdir", dir) < 0)
		return pd_err_set(err, ENOMEM, "image", "building image %s", b->digest);
	if (mkdir(dir, 0755) < 0)
		return pd_err_errno(err, "image", "cannot create %s", dir);
	if (mkdir(tmpdir, 0700) < 0) {
		int r = pd_err_errno(err, "image", "cannot create %s", tmpdir);
		rmdir(dir);
		return r;
	}
	b->step = 0;
	b->n_steps = 3 + (b->c->n_agents > 0) + (b->c->run != NULL);
	char pkgs[160], agents[96];
	package_names(b->c, pkgs, sizeof pkgs);
	agent_names(b->c, agents, sizeof agents);

	step_begin(b, "%s with mmdebstrap: %s%s", b->c->base, pkgs,
		   b->c->n_agents ? " (+ nodejs, npm for the agents)" : "");
	int r = build_base(b, dir, tmpdir, err);
	/* Best effort, and the error released: the next build sweeps .tmp-* anyway. */
	struct pd_err ignored;
	image_remove_tree(tmpdir, &ignored);
	if (r == 0 && b->c->n_agents) {
		step_begin(b, "installing agents: %s", agents);
		r = build_agents(b, dir, err);
	}
	if (r == 0 && b->c->run) {
		step_begin(b, "running the run: steps");
		const char *argv[] = { "sh", "-e", "-c", b->c->run, NULL };
		r = build_sandboxed(b, dir, argv, err);
	}
	if (r == 0) {
		step_begin(b, "cleaning up for reproducibility");
		if ((r = build_finalize(dir, err)) < 0)
			pd_err_prefix(err, "step %d/%d (%s)", b->step, b->n_steps, b->what);
	}
	if (r == 0) {
		step_begin(b, "computing the tree digest");
		if ((r = build_digest(dir, t, err)) < 0)
			pd_err_prefix(err, "step %d/%d (%s)", b->step, b->n_steps, b->what);
	}
	if (r < 0) {
		tree_result_free(t);
		image_remove_tree(dir, &ignored);
	}
	return r;
}

/* meta.json: the spec and the facts `image ls` shows. Returns 0 or < 0 with
 * err filled. */
static int write_meta(const struct build *b, const struct image_paths *p,
		      const struct tree_result *t, double seconds, struct pd_err *err)
{
	json_t *o = json_object(), *pkgs = json_array(), *agents = json_array();
	bool ok = o && pkgs && agents;
	for (char **q = b->c->packages; ok && *q; q++)
		ok = json_array_append_new(pkgs, json_string(*q)) == 0;
	for (size_t i = 0; ok && i < b->c->n_agents; i++)
		ok = json_array_append_new(agents, json_string(b->c->agents[i]->name)) == 0;
	ok = ok && json_object_set_new(o, "digest", json_string(b->digest)) == 0 &&
	     json_object_set_new(o, "recipe", json_string(BUILD_RECIPE)) == 0 &&
	     json_object_set_new(o, "base", json_string(b->c->base)) == 0 &&
	     json_object_set(o, "packages", pkgs) == 0 &&
	     json_object_set(o, "agents", agents) == 0 &&
	     json_object_set_new(o, "run", b->c->run ? json_string(b->c->run) : json_null()) == 0 &&
	     json_object_set_new(o, "created", json_integer((json_int_t)time(NULL))) == 0 &&
	     json_object_set_new(o, "build_seconds", json_real(seconds)) == 0 &&
	     json_object_set_new(o, "size", json_integer((json_int_t)t->bytes)) == 0 &&
	     json_object_set_new(o, "entries", json_integer((json_int_t)t->entries)) == 0 &&
	     json_object_set_new(o, "tree", json_string(t->digest)) == 0;
	char *text = ok ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(pkgs);
	json_decref(agents);
	json_decref(o);
	if (!text)
		return pd_err_set(err, ENOMEM, "image", "writing the image's metadata");
	_cleanup_free_ char *path = image_path_join(p->dir, "meta.json");
	int r = path ? image_write_file(path, text, strlen(text), err)
		     : pd_err_set(err, ENOMEM, "image", "writing the image's metadata");
	free(text);
	return r;
}

/* Write dir/name with text. Returns 0 or < 0 with err filled. */
static int write_in(const char *dir, const char *name, const char *text, size_t len,
		    struct pd_err *err)
{
	_cleanup_free_ char *path = image_path_join(dir, name);
	if (!path)
		return pd_err_set(err, ENOMEM, "image", "writing %s/%s", dir, name);
	return image_write_file(path, text, len, err);
}

/* Step 6: the finished tree at dir becomes the image: its manifest, digest and
 * metadata first, then the tree renamed into place, the marker last. An image
 * being replaced (--force) goes only once the new one is complete. Returns 0
 * or < 0 with err filled. */
static int build_publish(struct build *b, const struct image_paths *p, const char *dir,
			 const struct tree_result *t, double seconds, struct pd_err *err)
{
	char line[80];
	snprintf(line, sizeof line, "%s\n", t->digest);
	int r;
	if ((r = write_in(p->dir, "tree.manifest", t->manifest, t->manifest_len, err)) < 0 ||
	    (r = write_in(p->dir, "tree.sha256", line, strlen(line), err)) < 0 ||
	    (r = write_meta(b, p, t, seconds, err)) < 0)
		return r;
	_cleanup_free_ char *old = NULL;
	struct stat st;
	if (lstat(p->rootfs, &st) == 0) {
		char name[64];
		snprintf(name, sizeof name, ".tmp-old-%ld", (long)getpid());
		if (!(old = image_path_join(p->dir, name)))
			return pd_err_set(err, ENOMEM, "image", "replacing image %s", b->digest);
		if (unlink(p->marker) < 0 && errno != ENOENT)
			return pd_err_errno(err, "image", "cannot remove %s", p->marker);
		if (rename(p->rootfs, old) < 0)
			return pd_err_errno(err, "image", "cannot move the old image aside");
	}
	char marker[200];
	snprintf(marker, sizeof marker, "paddock image %s: tree sha256 %s\n", b->digest, t->digest);
	if ((r = image_publish(p, dir, marker, err)) < 0)
		return r;
	struct pd_err ignored; /* a leftover is swept by the next build */
	if (old)
		image_remove_tree(old, &ignored);
	return 0;
}

/* Read a small text file (at most max bytes) into a malloc'd string. */
static char *read_text(const char *path, size_t max)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max)
		return NULL;
	char *buf = malloc((size_t)st.st_size + 1);
	size_t have = 0;
	while (buf && have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (buf)
		buf[have] = '\0';
	return buf;
}

/* The cached image's tree digest into out ("" if unknown). */
static void read_tree_digest(const struct image_paths *p, char out[65])
{
	_cleanup_free_ char *path = image_path_join(p->dir, "tree.sha256");
	_cleanup_free_ char *text = path ? read_text(path, 256) : NULL;
	out[0] = '\0';
	if (text && strspn(text, "0123456789abcdef") == 64) {
		memcpy(out, text, 64);
		out[64] = '\0';
	}
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open (truncating) the log at dir/name for b. */
static void build_open_log(struct build *b, const char *path)
{
	b->log_path = path;
	b->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* With the lock held: build the image into a temporary tree and publish it.
 * Returns 0 or < 0 with err filled. */
static int build_image(struct build *b, const struct image_paths *p, double *seconds,
		       struct pd_err *err)
{
	char name[64];
	snprintf(name, sizeof name, ".tmp-%ld", (long)getpid());
	_cleanup_free_ char *dir = image_path_join(p->dir, name);
	if (!dir)
		return pd_err_set(err, ENOMEM, "image", "building image %s", b->digest);
	build_open_log(b, p->log);
	double start = now_seconds();
	struct tree_result t = { 0 };
	int r = build_tree(b, dir, &t, err);
	if (r == 0) {
		*seconds = now_seconds() - start;
		if ((r = build_publish(b, p, dir, &t, *seconds, err)) < 0) {
			struct pd_err ignored;
			image_remove_tree(dir, &ignored);
		}
	}
	tree_result_free(&t);
	if (b->log_fd >= 0)
		close(b->log_fd);
	b->log_fd = -1;
	return r;
}

/* With the lock held and the image built: rebuild it into a temporary tree
 * and compare the tree digests. The rebuild's log and manifest stay as
 * verify.log and verify.manifest. Returns 0 or < 0 with err filled. */
static int build_verify(struct build *b, const struct image_paths *p,
			struct image_build_result *res, struct pd_err *err)
{
	_cleanup_free_ char *cached_path = image_path_join(p->dir, "tree.manifest");
	_cleanup_free_ char *cached = cached_path ? read_text(cached_path, 1UL << 30) : NULL;
	read_tree_digest(p, res->tree);
	if (!cached || !res->tree[0]) {
		pd_err_set(err, ENOENT, "image", "image %s has no tree manifest to compare with",
			   b->digest);
		return pd_err_hint(err, "rebuild it with --force, then --verify");
	}
	char name[64];
	snprintf(name, sizeof name, ".tmp-verify-%ld", (long)getpid());
	_cleanup_free_ char *dir = image_path_join(p->dir, name);
	_cleanup_free_ char *log = image_path_join(p->dir, "verify.log");
	if (!dir || !log)
		return pd_err_set(err, ENOMEM, "image", "verifying image %s", b->digest);
	b->label = "verify ";
	build_open_log(b, log);
	struct tree_result t = { 0 };
	int r = build_tree(b, dir, &t, err);
	if (b->log_fd >= 0)
		close(b->log_fd);
	b->log_fd = -1;
	if (r < 0)
		return r;
	struct pd_err ignored;
	image_remove_tree(dir, &ignored);
	r = write_in(p->dir, "verify.manifest", t.manifest, t.manifest_len, err);
	if (r == 0) {
		res->verified = true;
		memcpy(res->rebuilt, t.digest, sizeof t.digest);
		res->reproducible = !strcmp(t.digest, res->tree);
		res->n_differ = tree_manifest_diff(cached, t.manifest, BUILD_DIFF_LINES,
						   &res->differences);
	}
	tree_result_free(&t);
	return r;
}

void image_build_result_free(struct image_build_result *res)
{
	free(res->rootfs);
	free(res->differences);
	*res = (struct image_build_result){ 0 };
}

struct progress_to {
	image_progress_fn progress;
	void *ctx;
};

/* image_progress_fn for image_lock(): its "I: waiting for..." note shown as a
 * step line, so that a quiet display says why nothing happens. */
static void wait_progress(void *ctx, const char *line)
{
	const struct progress_to *to = ctx;
	char step[300];
	snprintf(step, sizeof step, "[wait] %s", line + (strncmp(line, "I: ", 3) ? 0 : 3));
	image_report(to->progress, to->ctx, step);
}

/* Refuse early, before any lock or file: a base this build cannot make, not
 * root, no mmdebstrap. Returns 0 or < 0 with err filled. */
static int build_preflight(const struct canon *c, struct pd_err *err)
{
	if (strcmp(c->base, BUILD_BASE) != 0) {
		pd_err_set(err, ENOTSUP, "image", "image base '%s' is not supported", c->base);
		return pd_err_hint(err, "this build makes debian:bookworm (also written debian:12) "
					"images only");
	}
	if (geteuid() != 0) {
		pd_err_set(err, EPERM, "image", "building an image needs root");
		return pd_err_hint(err, "run paddock image build as root");
	}
	return 0;
}

int image_build_ex(const struct pd_image_spec *is, const struct image_build_opts *o,
		   struct image_build_result *res, struct pd_err *err)
{
	struct image_build_result out = { 0 };
	__attribute__((cleanup(canon_free))) struct canon c = { 0 };
	__attribute__((cleanup(image_paths_free))) struct image_paths p = { 0 };
	int r;
	if ((r = canon_init(is, &c, err)) < 0 || (r = canon_digest(&c, out.digest, err)) < 0 ||
	    (r = image_paths_init(&p, out.digest, err)) < 0)
		return r;
	/* The fast path: two stats. */
	if (!o->force && !o->verify && image_ready(&p)) {
		if (!(out.rootfs = strdup(p.rootfs)))
			return pd_err_set(err, ENOMEM, "image", "locating image %s", out.digest);
		out.cache_hit = true;
		read_tree_digest(&p, out.tree);
		*res = out;
		return 0;
	}
	if ((r = build_preflight(&c, err)) < 0)
		return r;
	_cleanup_free_ char *images = strdup(p.dir);
	if (!images)
		return pd_err_set(err, ENOMEM, "image", "locating image %s", out.digest);
	*strrchr(images, '/') = '\0';
	char what[80];
	snprintf(what, sizeof what, "image %.12s", out.digest);
	if ((r = image_mkdir_p(images, err)) < 0)
		return r;
	struct progress_to to = { o->progress, o->ctx };
	_cleanup_close_ int lock = image_lock(p.lock, true, what, wait_progress, &to, err);
	if (lock < 0)
		return lock;
	struct image_tail *tail = calloc(1, sizeof *tail);
	if (!tail)
		return pd_err_set(err, ENOMEM, "image", "building image %s", out.digest);
	struct build b = { .c = &c, .digest = out.digest, .label = "", .progress = o->progress,
			   .ctx = o->ctx, .lock_fd = lock, .log_fd = -1, .tail = tail };
	bool ready = image_ready(&p); /* maybe built by another paddock while we waited */
	out.cache_hit = ready && !o->force;
	if ((r = image_mkdir_p(p.dir, err)) == 0 && !out.cache_hit) {
		r = ready ? image_clean_tmp(&p, err) : image_clean_stale(&p, err);
		if (r == 0)
			r = build_image(&b, &p, &out.seconds, err);
	}
	if (r == 0)
		read_tree_digest(&p, out.tree);
	if (r == 0 && o->verify)
		r = build_verify(&b, &p, &out, err);
	free(tail);
	if (r == 0 && !(out.rootfs = strdup(p.rootfs)))
		r = pd_err_set(err, ENOMEM, "image", "locating image %s", out.digest);
	if (r < 0) {
		image_build_result_free(&out);
		return r;
	}
	*res = out;
	return 0;
}

int image_build(const struct pd_image_spec *is, bool force, image_progress_fn progress, void *ctx,
		char **out, struct pd_err *err)
{
	struct image_build_opts o = { .force = force, .progress = progress, .ctx = ctx };
	struct image_build_result res;
	int r = image_build_ex(is, &o, &res, err);
	if (r < 0)
		return r;
	*out = steal_ptr(&res.rootfs);
	image_build_result_free(&res);
	return 0;
}

/* ---- the cache: list, remove, prune ------------------------------------- */

static bool is_digest(const char *name)
{
	return strlen(name) == 64 && strspn(name, "0123456789abcdef") == 64;
}

/* "<state>/images", malloc'd, or NULL. */
static char *images_dir(void)
{
	return image_path_join(image_state_dir(), "images");
}

/* A JSON array of strings as a NULL-terminated vector (NULL if not one). */
static char **json_strv(json_t *a)
{
	if (!json_is_array(a))
		return NULL;
	char **v = calloc(json_array_size(a) + 1, sizeof *v);
	size_t n = 0, i;
	json_t *x;
	json_array_foreach(a, i, x)
	{
		if (v && json_is_string(x) && !(v[n++] = strdup(json_string_value(x)))) {
			pd_strvfreep(&v);
			return NULL;
		}
	}
	return v;
}

/* Fill e from <dir>/meta.json (a built image), best effort. */
static void entry_read_meta(struct image_entry *e, const char *dir)
{
	_cleanup_free_ char *path = image_path_join(dir, "meta.json");
	json_t *o = path ? json_load_file(path, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	const char *base = json_string_value(json_object_get(o, "base"));
	e->base = base ? strdup(base) : NULL;
	e->packages = json_strv(json_object_get(o, "packages"));
	e->agents = json_strv(json_object_get(o, "agents"));
	e->has_run = json_is_string(json_object_get(o, "run"));
	json_int_t size = json_integer_value(json_object_get(o, "size"));
	json_int_t created = json_integer_value(json_object_get(o, "created"));
	e->size = size > 0 ? (unsigned long long)size : 0;
	e->created = created > 0 ? (long long)created : 0;
	json_decref(o);
}

void image_list_free(struct image_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].base);
		pd_strvfreep(&v[i].packages);
		pd_strvfreep(&v[i].agents);
	}
	free(v);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct image_entry *x = a, *y = b;
	if ((x->kind == IMAGE_DEFAULT) != (y->kind == IMAGE_DEFAULT))
		return x->kind == IMAGE_DEFAULT ? -1 : 1;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(x->name, y->name);
}

int image_list(struct image_entry **out, struct pd_err *err)
{
	_cleanup_free_ char *dir = images_dir();
	if (!dir)
		return pd_err_set(err, ENOMEM, "image", "listing images");
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d && errno == ENOENT) {
		*out = NULL;
		return 0;
	}
	if (!d)
		return pd_err_errno(err, "image", "cannot read %s", dir);
	struct image_entry *v = NULL;
	size_t n = 0;
	struct dirent *e;
	int r = 0;
	while (r == 0 && (errno = 0, e = readdir(d))) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof v->name)
			continue;
		_cleanup_free_ char *sub = image_path_join(dir, e->d_name);
		__attribute__((cleanup(image_paths_free))) struct image_paths p = { 0 };
		struct stat st;
		if (!sub || image_paths_init(&p, e->d_name, err) < 0) {
			r = pd_err_set(err, ENOMEM, "image", "listing images");
			break;
		}
		if (lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		enum image_kind kind = is_digest(e->d_name)		? IMAGE_BUILT
				       : !strcmp(e->d_name, "default") ? IMAGE_DEFAULT
								       : IMAGE_IMPORTED;
		if (kind == IMAGE_IMPORTED && (lstat(p.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)))
			continue;
		struct image_entry *nv = realloc(v, (n + 1) * sizeof *v);
		if (!nv) {
			r = pd_err_set(err, ENOMEM, "image", "listing images");
			break;
		}
		v = nv;
		struct image_entry *x = &v[n++];
		*x = (struct image_entry){ .kind = kind };
		snprintf(x->name, sizeof x->name, "%s", e->d_name);
		x->complete = image_ready(&p);
		if (kind != IMAGE_DEFAULT)
			entry_read_meta(x, sub);
		if (!x->created && lstat(x->complete ? p.marker : sub, &st) == 0)
			x->created = (long long)st.st_mtim.tv_sec;
	}
	if (r == 0 && errno)
		r = pd_err_errno(err, "image", "cannot read %s", dir);
	if (r < 0) {
		image_list_free(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_entry);
	*out = v;
	return (int)n;
}

/* Remove the built image name (a digest) under its lock, taken without
 * waiting. Returns 0, -EWOULDBLOCK when it is being built, or < 0 with err
 * filled. */
static int remove_locked(const char *name, unsigned long long *size, struct pd_err *err)
{
	__attribute__((cleanup(image_paths_free))) struct image_paths p = { 0 };
	int r = image_paths_init(&p, name, err);
	if (r < 0)
		return r;
	char what[80];
	snprintf(what, sizeof what, "image %.12s", name);
	_cleanup_close_ int lock = image_lock(p.lock, false, what, NULL, NULL, err);
	if (lock < 0)
		return lock;
	if (size) {
		struct image_entry e = { 0 };
		entry_read_meta(&e, p.dir);
		*size = e.size;
		free(e.base);
		pd_strvfreep(&e.packages);
		pd_strvfreep(&e.agents);
	}
	/* The marker first: a half-removed image is never taken for a complete one. */
	if (unlink(p.marker) < 0 && errno != ENOENT)
		return pd_err_errno(err, "image", "cannot remove %s", p.marker);
	if ((r = image_remove_tree(p.dir, err)) < 0)
		return r;
	if (unlink(p.lock) < 0 && errno != ENOENT) /* with the lock held: see image_lock() */
		return pd_err_errno(err, "image", "cannot remove %s", p.lock);
	return 0;
}

int image_remove(const char *prefix, char removed[65], struct pd_err *err)
{
	size_t len = strlen(prefix);
	if (len == 0 || len > 64 || strspn(prefix, "0123456789abcdef") != len) {
		pd_err_set(err, EINVAL, "image", "'%s' is not an image digest or a prefix of one",
			   prefix);
		return pd_err_hint(err, "see paddock image ls");
	}
	_cleanup_free_ char *dir = images_dir();
	if (!dir)
		return pd_err_set(err, ENOMEM, "image", "removing an image");
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d && errno != ENOENT)
		return pd_err_errno(err, "image", "cannot read %s", dir);
	char found[65] = "";
	size_t matches = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (is_digest(e->d_name) && !strncmp(e->d_name, prefix, len) && matches++ == 0)
			memcpy(found, e->d_name, sizeof found); /* 64 hex digits and the NUL */
	if (matches == 0) {
		pd_err_set(err, ENOENT, "image", "no image %s", prefix);
		return pd_err_hint(err, "see paddock image ls");
	}
	if (matches > 1) {
		pd_err_set(err, EINVAL, "image", "'%s' is ambiguous: %zu images start with it",
			   prefix, matches);
		return pd_err_hint(err, "give more of the digest");
	}
	int r = remove_locked(found, NULL, err);
	if (r < 0)
		return r;
	memcpy(removed, found, sizeof found);
	return 0;
}

/* The built images' digests under dir, from their directories and locks
 * (a lock can outlive its image), sorted and unique: a NULL-terminated
 * malloc'd vector in *out. Returns 0 or < 0 with err filled. */
static int prune_names(const char *dir, char ***out, struct pd_err *err)
{
	*out = NULL;
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : pd_err_errno(err, "image", "cannot read %s", dir);
	_cleanup_strv_ char **v = calloc(1, sizeof *v);
	size_t n = 0;
	struct dirent *e;
	while (v && (errno = 0, e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (!is_digest(e->d_name) && !(len == 69 && !strcmp(e->d_name + 64, ".lock")))
			continue;
		char **nv = realloc(v, (n + 2) * sizeof *nv);
		if (!nv)
			return pd_err_set(err, ENOMEM, "image", "pruning images");
		v = nv;
		if (!(v[n] = strndup(e->d_name, 64)))
			return pd_err_set(err, ENOMEM, "image", "pruning images");
		v[++n] = NULL;
	}
	if (!v)
		return pd_err_set(err, ENOMEM, "image", "pruning images");
	if (errno)
		return pd_err_errno(err, "image", "cannot read %s", dir);
	strv_sort_unique(v, n);
	*out = steal_ptr(&v);
	return 0;
}

int image_prune(image_progress_fn progress, void *ctx, unsigned long long *freed,
		struct pd_err *err)
{
	*freed = 0;
	_cleanup_free_ char *dir = images_dir();
	_cleanup_strv_ char **names = NULL;
	if (!dir)
		return pd_err_set(err, ENOMEM, "image", "pruning images");
	int r = prune_names(dir, &names, err);
	if (r < 0)
		return r;
	int removed = 0;
	for (char **name = names; name && *name; name++) {
		if (!is_digest(*name))
			continue;
		_cleanup_free_ char *sub = image_path_join(dir, *name);
		struct stat st;
		bool exists = sub && lstat(sub, &st) == 0;
		unsigned long long size = 0;
		r = remove_locked(*name, &size, err);
		if (r == -EWOULDBLOCK) {
			char line[160];
			snprintf(line, sizeof line, "W: image %.12s is being built: skipped",
				 *name);
			image_report(progress, ctx, line);
			continue;
		}
		if (r < 0)
			return r;
		removed += exists;
		*freed += size;
	}
	/* What an interrupted build of the default image left (not while one runs). */
	__attribute__((cleanup(image_paths_free))) struct image_paths p = { 0 };
	if ((r = image_paths_init(&p, "default", err)) < 0)
		return r;
	struct stat st;
	if (lstat(p.dir, &st) == 0) {
		struct pd_err busy;
		_cleanup_close_ int lock =
			image_lock(p.lock, false, "the default image", NULL, NULL, &busy);
		if (lock >= 0 && (r = image_clean_tmp(&p, err)) < 0)
			return r;
	}
	return removed;
}
