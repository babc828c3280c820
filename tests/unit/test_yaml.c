/* test_yaml.c: paddock.yaml -> struct spec, its errors and limits, the
 * printed spec reading back the same, and flags over the file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"
#include "spec/yaml.h"

/* The shared flag parser is CLI code, outside libpaddock.a: test it here. */
#include "../../src/cli/spec-flags.c"

/* The example, minus the fields this build refuses. */
static const char example[] =
	"image:\n"
	"  base: debian:bookworm          # built with mmdebstrap\n"
	"  packages: [build-essential, nodejs, npm, python3]\n"
	"  agents: [claude, codex, opencode]\n"
	"  run: |                         # extra build steps, cached with the image\n"
	"    npm install -g pnpm\n"
	"setup: npm ci                    # runs at sandbox creation, in /workspace, logged\n"
	"env: {NODE_ENV: development}\n"
	"mounts:\n"
	"  - {source: ~/datasets, target: /data}          # read-only\n"
	"  - {source: ./build-cache, target: /cache, write: true}\n"
	"limits: {memory: 4G, cpus: 2, pids: 2048, disk: 20G}\n";

/* ... and the refused part, from line 13. */
static const char refused[] =
	"network:\n"
	"  mode: filtered                 # off | filtered | open\n"
	"  allow: [registry.npmjs.org, \"*.github.com\"]\n"
	"secrets:\n"
	"  ANTHROPIC_API_KEY: {from: env, hosts: [api.anthropic.com]}\n"
	"idle: 15m\n";

static int load(const char *text, struct spec *s, struct pd_err *err)
{
	return spec_load_yaml_buffer("paddock.yaml", text, strlen(text), "/repo", s, err);
}

/* Load text; it must fail with exactly `want` as the message. */
static void fails_with(const char *text, const char *want)
{
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	int r = load(text, &s, &err);
	if (r == 0 || strcmp(err.msg, want) != 0)
		fail_msg("input:\n%s\nwant: %s\n got: %s (r=%d)", text, want, err.msg, r);
	assert_string_equal(err.layer, "spec");
	assert_null(strchr(err.msg, '\n'));
	/* Unchanged on failure: still the defaults. */
	assert_int_equal(s.memory, PD_DEFAULT_MEMORY);
	assert_null(s.env);
	assert_int_equal(s.n_mounts, 0);
	spec_free(&s);
}

static int setup_home(void **state)
{
	setenv("HOME", "/home/u", 1);
	return 0;
}

static void test_example(void **state)
{
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_int_equal(load(example, &s, &err), 0);
	assert_string_equal(s.image_spec.base, "debian:bookworm");
	assert_string_equal(s.image_spec.packages[0], "build-essential");
	assert_string_equal(s.image_spec.packages[3], "python3");
	assert_null(s.image_spec.packages[4]);
	assert_string_equal(s.image_spec.agents[2], "opencode");
	assert_string_equal(s.image_spec.run, "npm install -g pnpm\n");
	assert_string_equal(s.setup, "npm ci");
	assert_string_equal(s.env[0], "NODE_ENV=development");
	assert_null(s.env[1]);
	assert_int_equal(s.n_mounts, 2);
	assert_string_equal(s.mounts[0].source, "/home/u/datasets");
	assert_string_equal(s.mounts[0].target, "/data");
	assert_false(s.mounts[0].writable);
	assert_string_equal(s.mounts[1].source, "/repo/build-cache");
	assert_string_equal(s.mounts[1].target, "/cache");
	assert_true(s.mounts[1].writable);
	assert_int_equal(s.memory, 4ULL << 30);
	assert_int_equal(s.cpus_milli, 2000);
	assert_int_equal(s.pids, 2048);
	assert_int_equal(s.disk, 20ULL << 30);
	/* Untouched defaults. */
	assert_int_equal(s.network, PD_NET_FILTERED);
	assert_int_equal(s.workspace, PD_WS_AUTO);
	assert_null(s.argv);
	assert_null(s.workdir);
	spec_free(&s);

	/* Empty files, comments only, an empty document: the defaults. */
	const char *empty[] = { "", "# nothing\n", "---\n", "~\n", "{}\n" };
	for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
		spec_init(&s);
		assert_int_equal(load(empty[i], &s, &err), 0);
		assert_int_equal(s.memory, PD_DEFAULT_MEMORY);
		spec_free(&s);
	}
	/* A null value means "not given". */
	spec_init(&s);
	assert_int_equal(load("setup:\nenv: ~\nlimits: {memory: }\n", &s, &err), 0);
	assert_null(s.setup);
	assert_int_equal(s.memory, PD_DEFAULT_MEMORY);
	spec_free(&s);
}

static void test_more_fields(void **state)
{
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_int_equal(load("command: [make, test]\n"
			      "workdir: /workspace/sub\n"
			      "hostname: box-1\n"
			      "workspace: none\n"
			      "strict: true\n"
			      "network: {mode: off, allow: []}\n"
			      "secrets: {}\n"
			      "env: {A: 1, B: 'off', C: \"\", D: true}\n"
			      "mounts: [{source: ., target: /repo}, {source: a/../b, target: /b},\n"
			      "         {source: /abs, target: //x/./y/, write: false}, {source: ~, target: /h}]\n"
			      "limits: {memory: 0, cpus: 0.5, pids: 0, disk: 512M}\n",
			      &s, &err),
			 0);
	assert_string_equal(s.argv[0], "make");
	assert_string_equal(s.argv[1], "test");
	assert_null(s.argv[2]);
	assert_string_equal(s.workdir, "/workspace/sub");
	assert_string_equal(s.hostname, "box-1");
	assert_int_equal(s.workspace, PD_WS_NONE);
	assert_true(s.strict);
	assert_string_equal(s.env[0], "A=1");
	assert_string_equal(s.env[1], "B=off");
	assert_string_equal(s.env[2], "C=");
	assert_string_equal(s.env[3], "D=true");
	assert_string_equal(s.mounts[0].source, "/repo");
	assert_string_equal(s.mounts[1].source, "/repo/b");
	assert_string_equal(s.mounts[2].target, "/x/y");
	assert_string_equal(s.mounts[3].source, "/home/u");
	assert_int_equal(s.memory, 0);
	assert_int_equal(s.cpus_milli, 500);
	assert_int_equal(s.pids, 0);
	assert_int_equal(s.disk, 512ULL << 20);
	spec_free(&s);

	/* Anchors and a few aliases are fine. */
	spec_init(&s);
	assert_int_equal(load("image: {packages: &p [git, curl]}\n"
			      "command: *p\n",
			      &s, &err),
			 0);
	assert_string_equal(s.argv[1], "curl");
	spec_free(&s);
}

static void test_not_supported(void **state)
{
	char *text;
	assert_true(asprintf(&text, "%s%s", example, refused) > 0);
	/* network: and secrets: are supported now; idle: (line 18) is refused. */
	fails_with(text, "paddock.yaml:18:1: 'idle' is not supported yet by this build");
	free(text);
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_int_equal(load("network: {mode: open}", &s, &err), 0);
	assert_int_equal(s.network, PD_NET_OPEN);
	spec_free(&s);
	spec_init(&s);
	assert_int_equal(load("network:\n  mode: filtered\n  allow: [registry.npmjs.org, \"*.github.com\"]\n"
			      "  deny: [evil.example]\n", &s, &err), 0);
	assert_int_equal(s.network, PD_NET_FILTERED);
	assert_string_equal(s.net_allow[1], "*.github.com");
	assert_string_equal(s.net_deny[0], "evil.example");
	spec_free(&s);
	spec_init(&s);
	assert_int_equal(load("network: {mode: off}", &s, &err), 0);
	assert_int_equal(s.network, PD_NET_OFF);
	spec_free(&s);
	spec_init(&s);
	assert_int_equal(load("env: {A: b}\nsecrets:\n  ANTHROPIC_API_KEY: {from: env, hosts: "
			      "[api.anthropic.com]}\n", &s, &err), 0);
	assert_int_equal(s.n_secrets, 1);
	assert_string_equal(s.secrets[0].name, "ANTHROPIC_API_KEY");
	assert_string_equal(s.secrets[0].from, "env");
	assert_string_equal(s.secrets[0].hosts[0], "api.anthropic.com");
	spec_free(&s);
	fails_with("idle: 15m\n", "paddock.yaml:1:1: 'idle' is not supported yet by this build");
	/* They are checked before they are refused, and errors come first. */
	fails_with("idle: 15m\nimgae: {}\n",
		   "paddock.yaml:2:1: unknown key 'imgae' (did you mean 'image'?)");
	fails_with("idle: 15 minutes\n", "paddock.yaml:1:7: idle: bad duration '15 minutes' "
					 "(expected a duration like 30s, 15m or 1h)");
	fails_with("network: {mode: fltered}\n", "paddock.yaml:1:17: network.mode: 'fltered' is "
						 "not a mode (expected off, filtered or open)");
	fails_with("network: {allow: [\"bad host\"]}\n",
		   "paddock.yaml:1:19: network.allow: 'bad host' is not a host name (expected e.g. "
		   "example.com or *.example.com)");
	fails_with("secrets:\n  KEY: {from: vault}\n", "paddock.yaml:2:15: secrets.from: 'vault' "
						      "is not a source (expected env, file:PATH or "
						      "cmd:COMMAND)");
	fails_with("secrets:\n  KEY: {from: env}\n",
		   "paddock.yaml:2:8: secrets.KEY: expected from: and a non-empty hosts: list");
	fails_with("secrets:\n  1KEY: {from: env, hosts: [a.b]}\n",
		   "paddock.yaml:2:3: secrets: '1KEY' is not a variable name (letters, digits, '_')");
}

static void test_errors(void **state)
{
	/* unknown keys, with "did you mean" */
	fails_with("image: {}\nimgae: {}\n",
		   "paddock.yaml:2:1: unknown key 'imgae' (did you mean 'image'?)");
	fails_with("Setup: x\n", "paddock.yaml:1:1: unknown key 'Setup' (did you mean 'setup'?)");
	fails_with("image:\n  bse: x\n",
		   "paddock.yaml:2:3: unknown key 'bse' in 'image' (did you mean 'base'?)");
	fails_with("limits: {memroy: 1G}\n",
		   "paddock.yaml:1:10: unknown key 'memroy' in 'limits' (did you mean 'memory'?)");
	fails_with("colour: red\n",
		   "paddock.yaml:1:1: unknown key 'colour' (expected one of: image, setup, command, "
		   "env, mounts, workdir, hostname, workspace, network, secrets, limits, idle, "
		   "strict)");
	fails_with("mounts: [{src: a, target: /b}]\n",
		   "paddock.yaml:1:11: unknown key 'src' in 'mounts' (expected one of: source, "
		   "target, write)");
	/* wrong types */
	fails_with("image:\n  packages: git\n",
		   "paddock.yaml:2:13: image.packages: expected a list, got a string");
	fails_with("env: [A=1]\n", "paddock.yaml:1:6: env: expected a map, got a list");
	fails_with("setup: [a]\n", "paddock.yaml:1:8: setup: expected a string, got a list");
	fails_with("image: debian\n", "paddock.yaml:1:8: image: expected a map, got a string");
	fails_with("mounts: [{source: a, target: /b, write: yes}]\n",
		   "paddock.yaml:1:41: mounts.write: expected true or false, got a string");
	fails_with("strict: \"true\"\n", "paddock.yaml:1:9: strict: expected true or false, got a "
					 "string");
	fails_with("limits: {memory: [1]}\n", "paddock.yaml:1:18: limits: expected a string, got "
					      "a list");
	fails_with("env:\n  A:\n", "paddock.yaml:2:5: env.A: expected a string, got nothing "
				   "(write '' for an empty value)");
	fails_with("image: {packages: [git, ~]}\n",
		   "paddock.yaml:1:25: image.packages: expected a string, got nothing");
	fails_with("- a\n", "paddock.yaml:1:1: expected a map of settings (image:, env:, ...) at "
			    "the top, got a list");
	fails_with("[a]: b\n", "paddock.yaml:1:1: top level: expected a key (a string), got a list");
	/* values */
	fails_with("limits: {memory: 4X}\n",
		   "paddock.yaml:1:18: limits.memory: bad size '4X' (expected a size like 512M or 4G)");
	fails_with("limits:\n  disk: lots\n",
		   "paddock.yaml:2:9: limits.disk: bad size 'lots' (expected a size like 512M or 4G)");
	fails_with("limits: {memory: 1M}\n",
		   "paddock.yaml:1:18: limits.memory: must be at least 8M (or 0 for no limit)");
	fails_with("limits: {cpus: many}\n", "paddock.yaml:1:16: limits.cpus: bad number 'many' "
					     "(expected a number of CPUs like 1 or 1.5, or 0 for no "
					     "limit)");
	fails_with("limits: {pids: -1}\n", "paddock.yaml:1:16: limits.pids: bad number '-1' "
					   "(expected a whole number, at least 4, or 0 for no limit)");
	fails_with("image: {packages: [Git]}\n",
		   "paddock.yaml:1:20: image.packages: 'Git' is not a Debian package name");
	fails_with("image: {agents: [claud]}\n",
		   "paddock.yaml:1:18: image.agents: unknown agent 'claud' (did you mean 'claude'?)");
	fails_with("env: {1A: x}\n",
		   "paddock.yaml:1:7: env: '1A' is not a variable name (letters, digits, '_')");
	fails_with("workdir: rel\n", "paddock.yaml:1:10: workdir: 'rel' is not an absolute path");
	fails_with("hostname: 'a b'\n", "paddock.yaml:1:11: hostname: 'a b' is not a host name "
					"(1..63 letters, digits, '-' and '.')");
	fails_with("workspace: mount\n", "paddock.yaml:1:12: workspace: 'mount' is not a mode "
					 "(expected auto or none)");
	fails_with("command: []\n", "paddock.yaml:1:10: command: expected a list like [make, test]");
	/* mounts */
	fails_with("mounts:\n  - {source: ../outside, target: /data}\n",
		   "paddock.yaml:2:14: mounts.source '../outside' escapes the directory holding "
		   "paddock.yaml");
	fails_with("mounts:\n  - {source: a/../../x, target: /data}\n",
		   "paddock.yaml:2:14: mounts.source 'a/../../x' escapes the directory holding "
		   "paddock.yaml");
	fails_with("mounts: [{source: ~root/x, target: /d}]\n",
		   "paddock.yaml:1:19: mounts.source '~root/x': only ~ and ~/PATH are expanded");
	fails_with("mounts: [{source: /x, target: rel}]\n",
		   "paddock.yaml:1:31: mounts.target: 'rel' is not an absolute path");
	fails_with("mounts: [{source: /x, target: \"a\\nb\"}]\n",
		   "paddock.yaml:1:31: mounts.target: 'a?b' is not an absolute path");
	fails_with("mounts: [{source: /x, target: /a/../..}]\n",
		   "paddock.yaml:1:31: mounts.target: '/a/../..' contains '..': it could escape the "
		   "sandbox root");
	fails_with("mounts: [{target: /d}]\n", "paddock.yaml:1:10: mounts: a mount needs a source");
	fails_with("mounts: [{source: /a, target: /d}, {source: /b, target: /d/}]\n",
		   "paddock.yaml:1:36: mounts: target /d is given twice");
	/* duplicate keys */
	fails_with("env: {A: 1}\nsetup: x\nenv: {B: 2}\n",
		   "paddock.yaml:3:1: duplicate key 'env' (first at line 1)");
	fails_with("env:\n  A: 1\n  A: 2\n", "paddock.yaml:3:3: duplicate key 'A' (first at line 2)");
	/* tabs */
	fails_with("image:\n\tbase: x\n", "paddock.yaml:2:1: tabs are not allowed for indentation");
	fails_with("env:\n  A: 1\n \tB: 2\n",
		   "paddock.yaml:3:2: tabs are not allowed for indentation");
	/* text */
	fails_with("setup: \"a\\0b\"\n", "paddock.yaml:1:8: NUL character in a string");
	fails_with("env: {A: \"\xc3\x28\"}\n", "paddock.yaml:1:11: not valid UTF-8 (byte 0xc3): "
					       "paddock.yaml must be UTF-8 text");
	fails_with("env: {A: \"\xed\xa0\x80\"}\n", "paddock.yaml:1:11: not valid UTF-8 (byte "
						   "0xed): paddock.yaml must be UTF-8 text");
	fails_with("env: {A: \x01}\n", "paddock.yaml:1:10: invalid YAML: control characters are "
				       "not allowed");
	/* YAML features */
	fails_with("image: !!map {}\n",
		   "paddock.yaml:1:8: YAML tags ('tag:yaml.org,2002:map') are not supported");
	fails_with("setup: a\n---\nsetup: b\n",
		   "paddock.yaml:2:1: a second YAML document: paddock.yaml holds one");
	fails_with("setup: *x\n", "paddock.yaml:1:8: alias '*x' names no anchor defined before it");
	fails_with("command: &a [x, *a]\n",
		   "paddock.yaml:1:17: alias '*a' is inside the node it names");
	fails_with("env: &a {A: 1}\nsetup: &a x\n",
		   "paddock.yaml:2:8: anchor '&a' is defined twice");
	fails_with("env: {A: [\n", "paddock.yaml:2:1: invalid YAML: did not find expected node "
				   "content while parsing a flow node");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "setup: a\0b\n";
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_true(spec_load_yaml_buffer("paddock.yaml", text, sizeof text - 1, "/repo", &s, &err) < 0);
	assert_string_equal(err.msg, "paddock.yaml:1:9: NUL byte: paddock.yaml must be UTF-8 text");
	spec_free(&s);
}

static void test_limits(void **state)
{
	/* Depth: the top map is level 1, the 16th '[' level 17. */
	char deep[200];
	snprintf(deep, sizeof deep, "command: %.*s%.*s\n", 16, "[[[[[[[[[[[[[[[[[[[[", 16,
		 "]]]]]]]]]]]]]]]]]]]]");
	fails_with(deep, "paddock.yaml:1:25: nested too deep (the limit is 16 levels)");
	/* Billion laughs: refused at the 17th alias, before anything expands. */
	fails_with("a0: &a [lol, lol]\n"
		   "a1: &b [*a, *a]\n"
		   "a2: &c [*b, *b]\n"
		   "a3: &d [*c, *c]\n"
		   "a4: &e [*d, *d]\n"
		   "a5: &f [*e, *e]\n"
		   "a6: &g [*f, *f]\n"
		   "a7: &h [*g, *g]\n"
		   "a8: &i [*h, *h]\n"
		   "a9: &j [*i, *i]\n",
		   "paddock.yaml:10:9: too many aliases (the limit is 16; alias bombs are refused)");
}

/* Few aliases in the text, many when read: an alias to a list of aliases
 * expands each inner alias again. 9 aliases here, 17 expansions. */
static void test_alias_expansions(void **state)
{
	fails_with("env: {A: &s git}\n"
		   "command: &l [*s, *s, *s, *s, *s, *s, *s, *s]\n"
		   "image: {packages: *l}\n",
		   "paddock.yaml:2:42: too many alias expansions (the limit is 16; alias bombs are "
		   "refused)");
	/* 16 expansions are fine. */
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_int_equal(load("env: {A: &s git}\n"
			      "command: &l [*s, *s, *s, *s, *s, *s, *s]\n"
			      "image: {packages: *l}\n",
			      &s, &err),
			 0);
	assert_string_equal(s.image_spec.packages[6], "git");
	spec_free(&s);
}

static void test_size_limit(void **state)
{
	size_t n = PD_YAML_MAX_BYTES + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	big[n - 1] = '\n';
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_true(spec_load_yaml_buffer("paddock.yaml", big, n, "/r", &s, &err) < 0);
	assert_string_equal(err.msg, "paddock.yaml: the file is larger than 1 MiB (1048577 bytes)");
	/* Exactly 1 MiB is fine (a comment). */
	assert_int_equal(spec_load_yaml_buffer("paddock.yaml", big + 1, n - 1, "/r", &s, &err), 0);
	/* From a file: refused by its size, before reading. */
	char dir[] = "/tmp/pdyaml.XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/paddock.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, n, f), n);
	fclose(f);
	assert_true(spec_load_yaml(path, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "larger than 1 MiB (1048577 bytes)"));
	assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
	unlink(path);
	assert_true(spec_load_yaml(dir, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	rmdir(dir);
	spec_free(&s);
	free(big);
	/* Too many nodes. */
	size_t items = PD_YAML_MAX_NODES + 10;
	char *many = malloc(items * 3 + 32), *p = many;
	p += sprintf(p, "command: [");
	for (size_t i = 0; i < items; i++)
		p += sprintf(p, "a,");
	strcpy(p, "a]\n");
	spec_init(&s);
	assert_true(load(many, &s, &err) < 0);
	assert_non_null(strstr(err.msg, "too many nodes (the limit is 10000)"));
	spec_free(&s);
	free(many);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_file_and_find(void **state)
{
	char dir[] = "/tmp/pdyaml.XXXXXX", old[PATH_MAX], p[PATH_MAX + 64], *found = NULL;
	struct spec s;
	struct pd_err err = { 0 };
	assert_non_null(mkdtemp(dir));
	assert_non_null(getcwd(old, sizeof old));
	char *real = realpath(dir, NULL);
	snprintf(p, sizeof p, "%s/.git", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/a", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/a/b", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(chdir(p), 0);
	/* Inside a work tree without a paddock.yaml at its top: none. */
	assert_int_equal(spec_yaml_find(&found, &err), 0);
	snprintf(p, sizeof p, "%s/paddock.yaml", dir);
	write_file(p, "mounts: [{source: ./cache, target: /cache}]\nsetup: x\n");
	assert_int_equal(spec_yaml_find(&found, &err), 1);
	assert_string_equal(found, "../../paddock.yaml");
	spec_init(&s);
	assert_int_equal(spec_load_yaml(found, &s, &err), 0);
	snprintf(p, sizeof p, "%s/cache", real);
	assert_string_equal(s.mounts[0].source, p); /* relative to the file, not the cwd */
	spec_free(&s);
	free(found);
	/* Errors name the file as it was found. */
	snprintf(p, sizeof p, "%s/paddock.yaml", dir);
	write_file(p, "setup: x\nimgae: {}\n");
	spec_init(&s);
	assert_true(spec_load_yaml("../../paddock.yaml", &s, &err) < 0);
	assert_string_equal(err.msg, "../../paddock.yaml:2:1: unknown key 'imgae' (did you mean "
				     "'image'?)");
	spec_free(&s);
	/* ./paddock.yaml wins. */
	write_file("paddock.yaml", "setup: here\n");
	assert_int_equal(spec_yaml_find(&found, &err), 1);
	assert_string_equal(found, "paddock.yaml");
	free(found);
	unlink("paddock.yaml");
	/* At the top itself. */
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(spec_yaml_find(&found, &err), 1);
	assert_string_equal(found, "paddock.yaml");
	free(found);
	/* Outside any work tree, only the current directory counts. */
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(spec_yaml_find(&found, &err), 0);
	assert_int_equal(chdir(old), 0);
	snprintf(p, sizeof p, "rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
	free(real);
}

/* Print, read back, print again: the same text and the same values. */
static void round_trip(const struct spec *s)
{
	struct pd_err err = { 0 };
	struct spec t;
	char *y = spec_to_yaml(s, &err);
	assert_non_null(y);
	spec_init(&t);
	if (spec_load_yaml_buffer("out.yaml", y, strlen(y), "/elsewhere", &t, &err) < 0)
		fail_msg("printed spec does not read back: %s\n%s", err.msg, y);
	char *y2 = spec_to_yaml(&t, &err);
	assert_non_null(y2);
	assert_string_equal(y, y2);
	for (size_t i = 0; s->env && s->env[i]; i++)
		assert_string_equal(s->env[i], t.env[i]);
	for (size_t i = 0; s->argv && s->argv[i]; i++)
		assert_string_equal(s->argv[i], t.argv[i]);
	for (size_t i = 0; i < s->n_mounts; i++) {
		assert_string_equal(s->mounts[i].source, t.mounts[i].source);
		assert_string_equal(s->mounts[i].target, t.mounts[i].target);
		assert_int_equal(s->mounts[i].writable, t.mounts[i].writable);
	}
	if (s->setup)
		assert_string_equal(s->setup, t.setup);
	if (s->image_spec.run)
		assert_string_equal(s->image_spec.run, t.image_spec.run);
	assert_int_equal(s->memory, t.memory);
	assert_int_equal(s->disk, t.disk);
	assert_int_equal(s->pids, t.pids);
	assert_int_equal(s->cpus_milli, t.cpus_milli);
	assert_int_equal(s->strict, t.strict);
	/* The JSON is JSON. */
	char *j = spec_to_json(s, &err);
	assert_non_null(j);
	json_error_t je;
	json_t *root = json_loads(j, 0, &je);
	assert_non_null(root);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "limits"),
							    "memory_bytes")),
			 s->memory);
	json_decref(root);
	free(j);
	free(y);
	free(y2);
	spec_free(&t);
}

static void test_round_trip(void **state)
{
	struct spec s;
	struct pd_err err = { 0 };
	spec_init(&s);
	assert_int_equal(load(example, &s, &err), 0);
	round_trip(&s);
	spec_free(&s);

	/* Awkward strings: ones that read as other types, quotes, breaks. */
	spec_init(&s);
	assert_int_equal(load("env:\n"
			      "  A: 'off'\n  B: ''\n  C: 'null'\n  D: '~'\n  E: '1.5'\n  F: '-3'\n"
			      "  G: '#x'\n  H: '- y'\n  I: 'a: b'\n  J: \"a\\nb\\n\"\n  K: ' lead'\n"
			      "  L: \"tab\\there\"\n  M: '\"q\"'\n  N: \"\\x01\"\n  O: 'trail '\n"
			      "  P: '[x]'\n  Q: '{y}'\n  R: '*z'\n  S: '&w'\n  T: '!t'\n  U: '%u'\n"
			      "  V: '@v'\n  W: '`w'\n  X: 'yes'\n  Y: '.inf'\n  Z: 'caf\xc3\xa9'\n"
			      "setup: |\n  set -x\n\n  echo 'a'   \n  cd sub\n"
			      "command: ['sh', '', '-c', 'echo \"$1\"; exit 3', 'null', '\n']\n"
			      "image: {run: \"  indented\\nsecond\\n\\n\\n\"}\n"
			      "workdir: '/w o'\n"
			      "mounts: [{source: '/with space/x', target: '/t #1', write: true}]\n"
			      "limits: {memory: 1536M, cpus: 0.125, pids: 5, disk: 1048577}\n"
			      "strict: true\n",
			      &s, &err),
			 0);
	round_trip(&s);
	spec_free(&s);

	/* A spec from flags, with what only flags can say. */
	spec_init(&s);
	s.image = strdup("/images/x");
	s.tty = true;
	s.unmask = calloc(2, sizeof *s.unmask);
	s.unmask[0] = strdup(".npmrc");
	s.env = calloc(3, sizeof *s.env);
	s.env[0] = strdup("A=1");
	s.env[1] = strdup("A=2"); /* the last wins, as inside */
	s.workspace = PD_WS_MOUNT;
	s.idle_seconds = 5400;
	char *y = spec_to_yaml(&s, &err);
	assert_non_null(y);
	assert_non_null(strstr(y, "env:\n  A: \"2\"\n"));
	assert_non_null(strstr(y, "workspace: none\n"));
	assert_non_null(strstr(y, "idle: 90m\n"));
	assert_non_null(strstr(y, "# Set by flags only (paddock.yaml cannot):\n#   --image /images/x\n"
				  "#   --tty\n#   --unmask .npmrc\n"));
	free(y);
	y = spec_to_json(&s, &err);
	assert_non_null(strstr(y, "\"workspace\": \"mount\""));
	assert_non_null(strstr(y, "\"tty\": true"));
	assert_non_null(strstr(y, "\"idle_seconds\": 5400"));
	free(y);
	spec_free(&s);

	/* The defaults print as they are. */
	spec_init(&s);
	y = spec_to_yaml(&s, &err);
	assert_string_equal(y, "workdir: /workspace\n"
			       "hostname: paddock\n"
			       "workspace: auto\n"
			       "network:\n"
			       "  mode: filtered\n"
			       "limits:\n"
			       "  memory: 4G\n"
			       "  cpus: 0\n"
			       "  pids: 4096\n"
			       "  disk: 4G\n"
			       "strict: false\n");
	free(y);
	spec_free(&s);
}

/* Run cli_parse_spec_flags on a NULL-terminated list of arguments. */
static int flags(enum cli_spec_mode mode, struct spec *s, bool *json, struct pd_err *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, err);
	argv[argc++] = "run";
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	argv[argc] = NULL;
	va_end(ap);
	spec_init(s);
	return cli_parse_spec_flags(argc, argv, mode, s, json, err);
}

static void test_flags_over_file(void **state)
{
	char dir[] = "/tmp/pdyaml.XXXXXX", old[PATH_MAX], cmd[PATH_MAX];
	struct spec s;
	struct pd_err err = { 0 };
	bool json = false;
	assert_non_null(mkdtemp(dir));
	assert_non_null(getcwd(old, sizeof old));
	assert_int_equal(chdir(dir), 0);
	write_file("paddock.yaml", "env: {A: file, B: file}\n"
				   "mounts: [{source: /srv, target: /data}]\n"
				   "command: [echo, file]\n"
				   "hostname: filehost\n"
				   "workspace: none\n"
				   "limits: {memory: 1G, pids: 100}\n");
	write_file("other.yaml", "limits: {memory: 3G}\n");

	assert_int_equal(flags(CLI_SPEC_RUN, &s, NULL, &err, "--memory", "2G", "-e", "A=flag",
			       "--mount", "/tmp:/data", "--mount", "/var:/other", "--", "echo",
			       "flag", NULL),
			 0);
	assert_int_equal(s.memory, 2ULL << 30); /* the flag wins */
	assert_int_equal(s.pids, 100);	 /* the file's, where no flag says */
	assert_string_equal(s.env[0], "A=flag");
	assert_string_equal(s.env[1], "B=file");
	assert_null(s.env[2]);
	assert_int_equal(s.n_mounts, 2);
	assert_string_equal(s.mounts[0].source, "/tmp"); /* same target: replaced */
	assert_string_equal(s.mounts[1].target, "/other");
	assert_string_equal(s.argv[1], "flag");
	assert_null(s.argv[2]);
	assert_string_equal(s.hostname, "filehost");
	assert_int_equal(s.workspace, PD_WS_NONE);
	spec_free(&s);

	/* The file's command serves when the line has none. */
	assert_int_equal(flags(CLI_SPEC_RUN, &s, NULL, &err, "--workspace", "auto", NULL), 0);
	assert_string_equal(s.argv[1], "file");
	assert_int_equal(s.workspace, PD_WS_AUTO);
	assert_non_null(s.workspace_src);
	spec_free(&s);

	/* --no-spec, --spec FILE, -f FILE. */
	assert_int_equal(flags(CLI_SPEC_SHOW, &s, &json, &err, "--no-spec", NULL), 0);
	assert_int_equal(s.memory, PD_DEFAULT_MEMORY);
	assert_null(s.argv);
	spec_free(&s);
	assert_true(flags(CLI_SPEC_RUN, &s, NULL, &err, "--no-spec", NULL) < 0);
	assert_string_equal(err.msg, "no command given");
	spec_free(&s);
	assert_int_equal(flags(CLI_SPEC_SHOW, &s, &json, &err, "--spec", "other.yaml", "--json",
			       NULL),
			 0);
	assert_int_equal(s.memory, 3ULL << 30);
	assert_true(json);
	spec_free(&s);
	assert_int_equal(flags(CLI_SPEC_SHOW, &s, &json, &err, "-f", "other.yaml", NULL), 0);
	assert_int_equal(s.memory, 3ULL << 30);
	spec_free(&s);
	assert_true(flags(CLI_SPEC_SHOW, &s, &json, &err, "-f", "missing.yaml", NULL) < 0);
	assert_string_equal(err.msg, "missing.yaml: cannot open");
	assert_int_equal(err.code, ENOENT);
	spec_free(&s);
	assert_true(flags(CLI_SPEC_SHOW, &s, &json, &err, "-f", "other.yaml", "--no-spec", NULL) < 0);
	spec_free(&s);
	/* run has no --json; a missing value is named. */
	assert_true(flags(CLI_SPEC_RUN, &s, NULL, &err, "--json", "--", "true", NULL) < 0);
	assert_string_equal(err.msg, "unknown option '--json'");
	spec_free(&s);
	assert_true(flags(CLI_SPEC_SHOW, &s, &json, &err, "--memory", NULL) < 0);
	assert_string_equal(err.msg, "option '--memory' needs a value");
	spec_free(&s);
	/* A bad file stops everything, whatever the flags. */
	write_file("paddock.yaml", "limits: {memory: 4X}\n");
	assert_true(flags(CLI_SPEC_RUN, &s, NULL, &err, "--memory", "1G", "--", "true", NULL) < 0);
	assert_string_equal(err.msg, "paddock.yaml:1:18: limits.memory: bad size '4X' (expected a "
				     "size like 512M or 4G)");
	spec_free(&s);

	/* setup runs first, in a subshell, then execs the command. */
	write_file("paddock.yaml", "setup: make deps\n");
	assert_int_equal(flags(CLI_SPEC_RUN, &s, NULL, &err, "--", "echo", "hi", NULL), 0);
	assert_int_equal(cli_apply_setup(&s, &err), 0);
	assert_string_equal(s.argv[0], "/bin/sh");
	assert_string_equal(s.argv[1], "-c");
	assert_string_equal(s.argv[2], "(\ncd /workspace || exit\nset -e\nmake deps\n)\n"
				       "rc=$?; [ $rc -eq 0 ] || { echo \"paddock: setup failed with "
				       "status $rc\" >&2; exit $rc; }; exec \"$@\"");
	assert_string_equal(s.argv[3], "paddock-setup");
	assert_string_equal(s.argv[4], "echo");
	assert_string_equal(s.argv[5], "hi");
	assert_null(s.argv[6]);
	spec_free(&s);

	assert_int_equal(chdir(old), 0);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_more_fields),
		cmocka_unit_test(test_not_supported),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_alias_expansions),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_file_and_find),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_flags_over_file),
	};
	return cmocka_run_group_tests(tests, setup_home, NULL);
}
