/* spec-flags.c: paddock.yaml + flags -> struct spec, shared by `paddock run`
 * and `paddock spec`.
 *
 * The file comes first (./paddock.yaml, else the one at the top of the git
 * work tree, else none; --spec FILE names it, --no-spec skips it), then the
 * flags on top: a flag replaces the file's value; --env and --mount add to
 * the file's lists, replacing an entry of the same name or target. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/strv.h"
#include "spec/spec.h"
#include "spec/yaml.h"

enum {
	OPT_RM = 256, OPT_IMAGE, OPT_MOUNT, OPT_UNMASK, OPT_WORKSPACE, OPT_WORKSPACE_MOUNT,
	OPT_MEMORY, OPT_PIDS, OPT_CPUS, OPT_DISK, OPT_NETWORK, OPT_HOSTNAME, OPT_STRICT,
	OPT_NO_SPEC, OPT_JSON, OPT_ALLOW, OPT_DENY,
};

static const struct option spec_opts[] = {
	{ "tty", no_argument, NULL, 't' },
	{ "interactive", no_argument, NULL, 'i' },
	{ "rm", no_argument, NULL, OPT_RM },
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "mount", required_argument, NULL, OPT_MOUNT },
	{ "unmask", required_argument, NULL, OPT_UNMASK },
	{ "workspace", required_argument, NULL, OPT_WORKSPACE },
	{ "workspace-mount", no_argument, NULL, OPT_WORKSPACE_MOUNT },
	{ "workdir", required_argument, NULL, 'w' },
	{ "env", required_argument, NULL, 'e' },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "pids", required_argument, NULL, OPT_PIDS },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "spec", required_argument, NULL, 'f' },
	{ "no-spec", no_argument, NULL, OPT_NO_SPEC },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "allow", required_argument, NULL, OPT_ALLOW },
	{ "deny", required_argument, NULL, OPT_DENY },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};


/* Add a --mount; it replaces a mount from the file (the first n_file) with
 * the same target. */
static int add_mount(struct spec *s, size_t n_file, const char *arg, struct pd_err *err)
{
	struct pd_mount m;
	int r = spec_parse_mount(arg, &m, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_file && i < s->n_mounts; i++)
		if (!strcmp(s->mounts[i].target, m.target)) {
			free(s->mounts[i].source);
			free(s->mounts[i].target);
			s->mounts[i] = m;
			return 0;
		}
	struct pd_mount *nv = realloc(s->mounts, (s->n_mounts + 1) * sizeof *nv);
	if (!nv) {
		free(m.source);
		free(m.target);
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	}
	s->mounts = nv;
	s->mounts[s->n_mounts++] = m;
	return 0;
}

static int size_opt(const char *flag, const char *v, uint64_t *out, struct pd_err *err)
{
	if (spec_parse_size(v, out) < 0)
		return pd_err_set(err, EINVAL, "spec", "%s '%s': expected a size like 512M or 2G",
				  flag, v);
	return 0;
}

static int unknown_option(const char *cmd, char **argv, struct pd_err *err)
{
	/* getopt leaves in optopt the option whose value is missing. */
	if (optopt >= 256 || (optopt && strchr("wef", optopt)))
		pd_err_set(err, EINVAL, cmd, "option '%s' needs a value", argv[optind - 1]);
	else if (optopt)
		pd_err_set(err, EINVAL, cmd, "unknown option '-%c'", optopt);
	else
		pd_err_set(err, EINVAL, cmd, "unknown option '%s'", argv[optind - 1]);
	return pd_err_hint(err, "see paddock %s --help", cmd);
}

/* The file part: which paddock.yaml applies, and load it. Scans the options
 * for --spec/-f and --no-spec only; the second pass reports bad options. */
static int load_file(int argc, char **argv, struct spec *s, struct pd_err *err)
{
	const char *file = NULL;
	bool none = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+tihw:e:f:", spec_opts, NULL)) != -1) {
		if (c == 'f')
			file = optarg;
		else if (c == OPT_NO_SPEC)
			none = true;
	}
	if (file && none)
		return pd_err_set(err, EINVAL, "spec", "--spec and --no-spec exclude each other");
	if (none)
		return 0;
	_cleanup_free_ char *found = NULL;
	if (!file) {
		int r = spec_yaml_find(&found, err);
		if (r <= 0)
			return r;
		file = found;
	}
	return spec_load_yaml(file, s, err);
}

int cli_parse_spec_flags(int argc, char **argv, enum cli_spec_mode mode, struct spec *s,
			 bool *json, struct pd_err *err)
{
	const char *cmd = mode == CLI_SPEC_RUN ? "run" : "spec";
	int c, r;
	bool ws_mount = false, ws_none_flag = false;
	if ((r = load_file(argc, argv, s, err)) < 0)
		return r;
	size_t n_file_mounts = s->n_mounts;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+tihw:e:f:", spec_opts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 't': s->tty = true; break;
		case 'i': case OPT_RM: case 'f': case OPT_NO_SPEC: break;
		case OPT_IMAGE: free(s->image); s->image = strdup(optarg); break;
		case OPT_MOUNT: r = add_mount(s, n_file_mounts, optarg, err); break;
		case OPT_UNMASK: r = strv_push(&s->unmask, optarg); break;
		case OPT_WORKSPACE:
			ws_none_flag = !strcmp(optarg, "none");
			if (ws_none_flag)
				s->workspace = PD_WS_NONE;
			else if (!strcmp(optarg, "auto"))
				s->workspace = PD_WS_AUTO;
			else
				r = pd_err_set(err, EINVAL, "spec",
					       "--workspace '%s': expected auto or none", optarg);
			break;
		case OPT_WORKSPACE_MOUNT: ws_mount = true; break;
		case 'w': free(s->workdir); s->workdir = strdup(optarg); break;
		case 'e': r = strv_env_set(&s->env, optarg); break;
		case OPT_MEMORY: r = size_opt("--memory", optarg, &s->memory, err); break;
		case OPT_DISK: r = size_opt("--disk", optarg, &s->disk, err); break;
		case OPT_PIDS: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-')
				r = pd_err_set(err, EINVAL, "spec", "--pids '%s': expected a number",
					       optarg);
			s->pids = v;
			break;
		}
		case OPT_CPUS:
			if (spec_parse_cpus(optarg, &s->cpus_milli) < 0)
				r = pd_err_set(err, EINVAL, "spec",
					       "--cpus '%s': expected a number like 1 or 1.5", optarg);
			break;
		case OPT_NETWORK:
			if (!strcmp(optarg, "off"))
				s->network = PD_NET_OFF;
			else if (!strcmp(optarg, "filtered"))
				s->network = PD_NET_FILTERED;
			else if (!strcmp(optarg, "open"))
				s->network = PD_NET_OPEN;
			else
				r = pd_err_set(err, EINVAL, "spec",
					       "--network '%s': expected off, filtered or open",
					       optarg);
			break;
		case OPT_ALLOW: r = strv_push(&s->net_allow, optarg); break;
		case OPT_DENY: r = strv_push(&s->net_deny, optarg); break;
		case OPT_HOSTNAME: free(s->hostname); s->hostname = strdup(optarg); break;
		case OPT_STRICT: s->strict = true; break;
		case OPT_JSON:
			if (!json) { /* `run` has no --json */
				optopt = 0;
				return unknown_option(cmd, argv, err);
			}
			*json = true;
			break;
		case 'h': return 1;
		case '?':
		default: return unknown_option(cmd, argv, err);
		}
		if (r < 0)
			return r == -ENOMEM ? pd_err_set(err, ENOMEM, "spec", "out of memory") : r;
	}
	if (optind < argc) {
		/* The command on the line replaces the file's. */
		pd_strvfreep(&s->argv);
		s->argv = NULL;
		for (int i = optind; i < argc; i++)
			if (strv_push(&s->argv, argv[i]) < 0)
				return pd_err_set(err, ENOMEM, "spec", "out of memory");
	} else if (mode == CLI_SPEC_RUN && !s->argv) {
		return pd_err_set(err, EINVAL, "run", "no command given"),
		       pd_err_hint(err, "usage: paddock run [OPTIONS] -- CMD [ARGS...]");
	}
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd))
		return pd_err_errno(err, "workspace", "getcwd");
	if (ws_mount) {
		if (ws_none_flag)
			return pd_err_set(err, EINVAL, "spec",
					  "--workspace none and --workspace-mount exclude each other");
		s->workspace = PD_WS_MOUNT;
		char arg[4200];
		snprintf(arg, sizeof arg, "%s:/workspace:rw", cwd);
		if ((r = add_mount(s, 0, arg, err)) < 0)
			return r;
	} else if (s->workspace == PD_WS_AUTO) {
		free(s->workspace_src);
		s->workspace_src = strdup(cwd);
	}
	if (s->tty) {
		const char *term = getenv("TERM");
		if (term && *term) {
			char kv[256];
			snprintf(kv, sizeof kv, "TERM=%s", term);
			strv_push(&s->env, kv);
		}
	}
	return 0;
}

int cli_apply_setup(struct spec *s, struct pd_err *err)
{
	/* A subshell, so that the script's `cd`, `exit` or `set` do not reach the
	 * command; `set -e`, so that a failing step fails the setup. */
	static const char tail[] =
		"rc=$?; [ $rc -eq 0 ] || { echo \"paddock: setup failed with status $rc\" >&2; "
		"exit $rc; }; exec \"$@\"";
	if (!s->setup || !s->setup[0])
		return 0;
	size_t n = 0;
	while (s->argv && s->argv[n])
		n++;
	_cleanup_free_ char *script = NULL;
	char **argv = calloc(n + 5, sizeof *argv);
	if (!argv || asprintf(&script, "(\ncd /workspace || exit\nset -e\n%s\n)\n%s", s->setup,
			      tail) < 0) {
		free(argv);
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	}
	argv[0] = strdup("/bin/sh");
	argv[1] = strdup("-c");
	argv[2] = steal_ptr(&script);
	argv[3] = strdup("paddock-setup");
	if (!argv[0] || !argv[1] || !argv[3]) {
		for (size_t i = 0; i < 4; i++)
			free(argv[i]);
		free(argv);
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	}
	memcpy(argv + 4, s->argv, n * sizeof *argv);
	free(s->argv);
	s->argv = argv;
	return 0;
}
