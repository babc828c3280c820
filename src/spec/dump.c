/* dump.c: struct spec -> YAML (libyaml's emitter) and JSON (jansson), for
 * `paddock spec`. The YAML is what spec_load_yaml reads back to the same
 * spec: sizes, CPUs and durations are printed in forms their parsers take,
 * and strings that would read as something else (null, booleans, numbers,
 * empty) are quoted. */
#include "spec/yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "spec/spec.h"

/* 4294967296 -> "4G"; the largest unit that divides exactly. */
static void fmt_size(uint64_t v, char buf[32])
{
	static const char units[] = "KMGT";
	int u = -1;
	while (v && u < 3 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, 32, "%" PRIu64, v);
	else
		snprintf(buf, 32, "%" PRIu64 "%c", v, units[u]);
}

/* 1500 -> "1.5" */
static void fmt_cpus(uint64_t milli, char buf[32])
{
	int n = snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64, milli / 1000, milli % 1000);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

/* 5400 -> "90m" */
static void fmt_duration(uint64_t s, char buf[32])
{
	static const struct { uint64_t secs; char unit; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
	};
	if (s == 0) {
		snprintf(buf, 32, "0");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (s % units[i].secs == 0) {
			snprintf(buf, 32, "%" PRIu64 "%c", s / units[i].secs, units[i].unit);
			return;
		}
}

static const char *network_name(enum pd_network n)
{
	switch (n) {
	case PD_NET_OFF: return "off";
	case PD_NET_FILTERED: return "filtered";
	case PD_NET_OPEN: return "open";
	case PD_NET_HOST_BUILD: break;
	}
	return "host-build";
}

/* ---- YAML --------------------------------------------------------------- */

struct out {
	yaml_emitter_t e;
	bool failed;
};

/* Would a plain scalar with this text read as something other than the
 * string: null, a boolean, a number (in YAML 1.1 or 1.2)? */
static bool looks_typed(const char *v)
{
	static const char *const words[] = {
		"~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", NULL,
	};
	if (!v[0])
		return true;
	for (const char *const *w = words; *w; w++)
		if (!strcasecmp(v, *w))
			return true;
	const char *p = v + (v[0] == '-' || v[0] == '+');
	return (*p >= '0' && *p <= '9') || (*p == '.' && ((p[1] >= '0' && p[1] <= '9') ||
							  !strcasecmp(p, ".inf") ||
							  !strcasecmp(p, ".nan")));
}

/* Emit an event that `ok` says was initialized; after a failure, only free. */
static void emit(struct out *o, yaml_event_t *ev, int ok)
{
	if (!ok)
		o->failed = true;
	else if (o->failed)
		yaml_event_delete(ev);
	else if (!yaml_emitter_emit(&o->e, ev))
		o->failed = true;
}

/* A scalar as it is (our own words: keys, sizes, modes). */
static void word(struct out *o, const char *v)
{
	yaml_event_t ev;
	emit(o, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v),
						  1, 1, YAML_PLAIN_SCALAR_STYLE));
}

/* A user's string: quoted if it would read as something else; a script with
 * several lines as a literal block. */
static void str(struct out *o, const char *v)
{
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
	if (strchr(v, '\n'))
		style = YAML_LITERAL_SCALAR_STYLE;
	else if (looks_typed(v))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	yaml_event_t ev;
	emit(o, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v),
						  1, 1, style));
}

static void map_start(struct out *o, bool flow)
{
	yaml_event_t ev;
	emit(o, &ev, yaml_mapping_start_event_initialize(
			     &ev, NULL, NULL, 1, flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(struct out *o)
{
	yaml_event_t ev;
	emit(o, &ev, yaml_mapping_end_event_initialize(&ev));
}

static void strv(struct out *o, char *const *v)
{
	yaml_event_t ev;
	emit(o, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE));
	for (size_t i = 0; v && v[i]; i++)
		str(o, v[i]);
	emit(o, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void kv_word(struct out *o, const char *k, const char *v)
{
	word(o, k);
	word(o, v);
}

static void kv_str(struct out *o, const char *k, const char *v)
{
	word(o, k);
	str(o, v);
}

/* env as a map; for a name given twice the last value wins, as inside. */
static void env_map(struct out *o, char *const *env)
{
	map_start(o, false);
	for (size_t i = 0; env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		size_t n = (size_t)(eq - env[i]) + 1;
		bool later = false;
		for (size_t j = i + 1; env[j] && !later; j++)
			later = !strncmp(env[j], env[i], n);
		if (later)
			continue;
		_cleanup_free_ char *name = strndup(env[i], n - 1);
		if (!name) {
			o->failed = true;
			return;
		}
		kv_str(o, name, eq + 1);
	}
	map_end(o);
}

static void mounts_seq(struct out *o, const struct spec *s)
{
	yaml_event_t ev;
	emit(o, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
	for (size_t i = 0; i < s->n_mounts; i++) {
		map_start(o, true);
		kv_str(o, "source", s->mounts[i].source);
		kv_str(o, "target", s->mounts[i].target);
		kv_word(o, "write", s->mounts[i].writable ? "true" : "false");
		map_end(o);
	}
	emit(o, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void body(struct out *o, const struct spec *s)
{
	char b[32];
	const struct pd_image_spec *is = &s->image_spec;
	map_start(o, false);
	if (is->base || is->packages || is->agents || is->run) {
		word(o, "image");
		map_start(o, false);
		if (is->base)
			kv_str(o, "base", is->base);
		if (is->packages)
			word(o, "packages"), strv(o, is->packages);
		if (is->agents)
			word(o, "agents"), strv(o, is->agents);
		if (is->run)
			kv_str(o, "run", is->run);
		map_end(o);
	}
	if (s->setup)
		kv_str(o, "setup", s->setup);
	if (s->argv && s->argv[0])
		word(o, "command"), strv(o, s->argv);
	if (s->env && s->env[0])
		word(o, "env"), env_map(o, s->env);
	if (s->n_mounts)
		word(o, "mounts"), mounts_seq(o, s);
	kv_str(o, "workdir", s->workdir ? s->workdir : "/workspace");
	kv_str(o, "hostname", s->hostname ? s->hostname : "paddock");
	/* --workspace-mount is an explicit read-write mount on /workspace. */
	kv_word(o, "workspace", s->workspace == PD_WS_AUTO ? "auto" : "none");
	word(o, "network");
	map_start(o, false);
	kv_word(o, "mode", network_name(s->network));
	if (s->net_allow)
		word(o, "allow"), strv(o, s->net_allow);
	if (s->net_deny)
		word(o, "deny"), strv(o, s->net_deny);
	map_end(o);
	if (s->n_secrets) {
		word(o, "secrets");
		map_start(o, false);
		for (size_t i = 0; i < s->n_secrets; i++) {
			str(o, s->secrets[i].name);
			map_start(o, true);
			kv_str(o, "from", s->secrets[i].from);
			word(o, "hosts"), strv(o, s->secrets[i].hosts);
			map_end(o);
		}
		map_end(o);
	}
	word(o, "limits");
	map_start(o, false);
	fmt_size(s->memory, b), kv_word(o, "memory", b);
	fmt_cpus(s->cpus_milli, b), kv_word(o, "cpus", b);
	snprintf(b, sizeof b, "%" PRIu64, s->pids), kv_word(o, "pids", b);
	fmt_size(s->disk, b), kv_word(o, "disk", b);
	map_end(o);
	if (s->idle_seconds)
		fmt_duration(s->idle_seconds, b), kv_word(o, "idle", b);
	kv_word(o, "strict", s->strict ? "true" : "false");
	map_end(o);
}

static int write_cb(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, data) == size;
}

/* One comment line; control characters would end it early. */
static void comment(FILE *f, const char *flag, const char *v)
{
	fprintf(f, "#   %s", flag);
	if (v) {
		fputc(' ', f);
		for (; *v; v++)
			fputc((unsigned char)*v < 0x20 ? '?' : *v, f);
	}
	fputc('\n', f);
}

char *spec_to_yaml(const struct spec *s, struct pd_err *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return pd_err_errno(err, "spec", "open_memstream"), NULL;
	struct out o = { 0 };
	yaml_event_t ev;
	if (!yaml_emitter_initialize(&o.e)) {
		fclose(f);
		free(text);
		return pd_err_set(err, ENOMEM, "spec", "out of memory"), NULL;
	}
	yaml_emitter_set_output(&o.e, write_cb, f);
	yaml_emitter_set_unicode(&o.e, 1);
	yaml_emitter_set_width(&o.e, -1); /* no folding of long scalars */
	emit(&o, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	emit(&o, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	body(&o, s);
	emit(&o, &ev, yaml_document_end_event_initialize(&ev, 1));
	emit(&o, &ev, yaml_stream_end_event_initialize(&ev));
	const char *problem = o.e.problem;
	yaml_emitter_delete(&o.e);
	if (!o.failed && (s->image || s->tty || (s->unmask && s->unmask[0]))) {
		fputs("# Set by flags only (paddock.yaml cannot):\n", f);
		if (s->image)
			comment(f, "--image", s->image);
		if (s->tty)
			comment(f, "--tty", NULL);
		for (size_t i = 0; s->unmask && s->unmask[i]; i++)
			comment(f, "--unmask", s->unmask[i]);
	}
	if (fclose(f) != 0 || o.failed) {
		free(text);
		if (o.failed)
			return pd_err_set(err, EINVAL, "spec", "cannot write the spec as YAML: %s",
					  problem ? problem : "a value is not valid UTF-8"), NULL;
		return pd_err_errno(err, "spec", "writing the spec"), NULL;
	}
	return text;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *json_strv(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* NULL -> null; otherwise a string (NULL result if not UTF-8). */
static json_t *json_str_or_null(const char *v)
{
	return v ? json_string(v) : json_null();
}

/* Set obj[k] = v, taking v; false if v is NULL (a failed constructor). */
static bool put(json_t *obj, const char *k, json_t *v)
{
	return v && json_object_set_new(obj, k, v) == 0;
}

static json_t *json_env(char *const *env)
{
	json_t *o = json_object();
	for (size_t i = 0; o && env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		_cleanup_free_ char *name = strndup(env[i], (size_t)(eq - env[i]));
		if (!name || !put(o, name, json_string(eq + 1))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *json_mounts(const struct spec *s)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < s->n_mounts; i++) {
		json_t *m = json_pack("{s:s?, s:s?, s:b}", "source", s->mounts[i].source, "target",
				      s->mounts[i].target, "write", s->mounts[i].writable);
		if (json_array_append_new(a, m) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *json_secrets(const struct spec *s)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < s->n_secrets; i++) {
		json_t *sec = json_object();
		if (!sec || !put(sec, "from", json_str_or_null(s->secrets[i].from)) ||
		    !put(sec, "hosts", json_strv(s->secrets[i].hosts)) ||
		    !put(o, s->secrets[i].name ? s->secrets[i].name : "", sec)) {
			json_decref(sec);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static const char *workspace_name(enum pd_workspace w)
{
	switch (w) {
	case PD_WS_AUTO: return "auto";
	case PD_WS_NONE: return "none";
	case PD_WS_MOUNT: break;
	}
	return "mount";
}

char *spec_to_json(const struct spec *s, struct pd_err *err)
{
	const struct pd_image_spec *is = &s->image_spec;
	json_t *root = json_object(), *image = json_object(), *net = json_object(),
	       *limits = json_object();
	bool ok = root && image && net && limits &&
		  put(image, "base", json_str_or_null(is->base)) &&
		  put(image, "packages", json_strv(is->packages)) &&
		  put(image, "agents", json_strv(is->agents)) &&
		  put(image, "run", json_str_or_null(is->run)) &&
		  put(image, "rootfs", json_str_or_null(s->image)) &&
		  put(root, "image", json_incref(image)) &&
		  put(root, "setup", json_str_or_null(s->setup)) &&
		  put(root, "command", json_strv(s->argv)) && put(root, "env", json_env(s->env)) &&
		  put(root, "mounts", json_mounts(s)) &&
		  put(root, "workdir", json_string(s->workdir ? s->workdir : "/workspace")) &&
		  put(root, "hostname", json_string(s->hostname ? s->hostname : "paddock")) &&
		  put(root, "workspace", json_string(workspace_name(s->workspace))) &&
		  put(root, "workspace_source", json_str_or_null(s->workspace_src)) &&
		  put(net, "mode", json_string(network_name(s->network))) &&
		  put(net, "allow", json_strv(s->net_allow)) &&
		  put(net, "deny", json_strv(s->net_deny)) &&
		  put(root, "network", json_incref(net)) &&
		  put(root, "secrets", json_secrets(s)) &&
		  put(limits, "memory_bytes", json_integer((json_int_t)s->memory)) &&
		  put(limits, "cpus", json_real((double)s->cpus_milli / 1000.0)) &&
		  put(limits, "pids", json_integer((json_int_t)s->pids)) &&
		  put(limits, "disk_bytes", json_integer((json_int_t)s->disk)) &&
		  put(root, "limits", json_incref(limits)) &&
		  put(root, "idle_seconds", json_integer((json_int_t)s->idle_seconds)) &&
		  put(root, "strict", json_boolean(s->strict)) &&
		  put(root, "tty", json_boolean(s->tty)) && put(root, "unmask", json_strv(s->unmask));
	char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(image);
	json_decref(net);
	json_decref(limits);
	json_decref(root);
	if (!text)
		return pd_err_set(err, EINVAL, "spec",
				  "cannot write the spec as JSON (a value is not valid UTF-8?)"), NULL;
	return text;
}
