/* yaml.c: paddock.yaml -> struct spec.
 *
 * Two passes. libyaml's event parser builds a small tree that keeps each
 * node's position; aliases point at their anchored node. Then a walk over the
 * schema fills a fresh spec, which replaces the caller's only when the whole
 * file is good. The event API rather than libyaml's document loader: it lets
 * us stop at the depth, node and alias limits while parsing and tells aliases
 * apart from the nodes they name.
 *
 * Scalars are read as text: `mode: off` is the string "off", `pids: 10` the
 * string "10" parsed by the field. Null (empty, ~, null) means "not given" for
 * a key, and is refused as a list item or an env value. Tags are refused. */
#include "spec/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "spec/spec.h"

/* ---- the tree ----------------------------------------------------------- */

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP, Y_ALIAS };

struct ynode {
	enum ykind kind;
	unsigned line, col;     /* 1-based; columns count characters */
	bool plain;             /* scalar written without quotes or | > */
	bool complete;          /* an alias may name it */
	char *str;              /* scalar text */
	char *anchor;           /* "&name", without the & */
	struct ynode **kids;    /* SEQ: items; MAP: key, value, key, value... */
	size_t n, cap;
	struct ynode *target;   /* ALIAS: the anchored node (never an alias) */
	struct ynode *all_next; /* every node of the document, for freeing */
};

struct ctx {
	const char *name;     /* the file, as named in messages */
	const char *base_dir; /* for relative mount sources; NULL refuses them */
	const char *buf;
	size_t len;
	struct pd_err *err;
	struct ynode *all;
	size_t n_nodes, n_aliases;
	unsigned expansions;   /* alias dereferences while walking */
	bool refused;          /* a field this build cannot honour was seen */
	struct pd_err refusal; /* ... reported when the rest of the file is good */
	struct spec *s;
};

__attribute__((format(printf, 5, 6)))
static int err_at(struct ctx *c, int code, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return pd_err_set(c->err, code, "spec", "%s:%u:%u: %s", c->name, line, col, msg);
}

#define yerr(c, node, ...) err_at((c), EINVAL, (node)->line, (node)->col, __VA_ARGS__)

static int nomem(struct ctx *c)
{
	return pd_err_set(c->err, ENOMEM, "spec", "%s: out of memory", c->name);
}

/* User text for a message: at most 40 bytes (cut on a character boundary),
 * control characters as '?', so that the message stays one line. */
static const char *show(const char *s, char buf[static 48])
{
	size_t i = 0;
	for (; s[i] && i < 40; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
			i--;
		memcpy(buf + i, "...", 4);
	} else {
		buf[i] = '\0';
	}
	return buf;
}

static void nodes_free(struct ynode *n)
{
	while (n) {
		struct ynode *next = n->all_next;
		free(n->str);
		free(n->anchor);
		free(n->kids);
		free(n);
		n = next;
	}
}

/* ---- the bytes, before libyaml sees them -------------------------------- */

/* Line and column (1-based, columns in characters) of byte offset `off`. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, cc = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			l++;
			cc = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			cc++;
		}
	}
	*line = l;
	*col = cc;
}

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not valid UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_len(const unsigned char *p, size_t room)
{
	unsigned char b = p[0];
	size_t n;
	uint32_t cp;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2, cp = b & 0x1f;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3, cp = b & 0x0f;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4, cp = b & 0x07;
	else
		return 0;
	if (n > room)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The file must be UTF-8 text without NUL bytes. */
static int check_text(struct ctx *c)
{
	const unsigned char *p = (const unsigned char *)c->buf;
	unsigned line, col;
	for (size_t i = 0; i < c->len;) {
		size_t n = p[i] ? utf8_len(p + i, c->len - i) : 0;
		if (n == 0) {
			offset_pos(c->buf, c->len, i, &line, &col);
			if (p[i] == 0)
				return err_at(c, EINVAL, line, col,
					      "NUL byte: paddock.yaml must be UTF-8 text");
			return err_at(c, EINVAL, line, col,
				      "not valid UTF-8 (byte 0x%02x): paddock.yaml must be UTF-8 text",
				      p[i]);
		}
		i += n;
	}
	return 0;
}

/* The byte offset where line `line` (1-based) starts, counting line breaks
 * as libyaml does (\n, \r\n, \r, U+0085, U+2028, U+2029); len if past the end. */
static size_t line_start(const char *buf, size_t len, unsigned line)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;
	for (unsigned l = 1; l < line && i < len; i++) {
		if (p[i] == '\n') {
			l++;
		} else if (p[i] == '\r') {
			if (i + 1 < len && p[i + 1] == '\n')
				i++;
			l++;
		} else if (p[i] == 0xc2 && i + 1 < len && p[i + 1] == 0x85) {
			i++;
			l++;
		} else if (p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 &&
			   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			i += 2;
			l++;
		}
	}
	return i;
}

/* Column (1-based) of the first tab in the indentation of `line`, or 0. */
static unsigned indent_tab(const char *buf, size_t len, unsigned line)
{
	size_t i = line_start(buf, len, line);
	for (unsigned col = 1; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++, col++)
		if (buf[i] == '\t')
			return col;
	return 0;
}

/* Turn libyaml's error into ours. A tab in the indentation is what most
 * "cannot start any token" errors come from: say so. */
static int parse_error(struct ctx *c, const yaml_parser_t *p)
{
	unsigned line, col;
	if (p->error == YAML_MEMORY_ERROR)
		return nomem(c);
	if (p->error == YAML_READER_ERROR) {
		offset_pos(c->buf, c->len, p->problem_offset, &line, &col);
	} else {
		line = (unsigned)p->problem_mark.line + 1;
		col = (unsigned)p->problem_mark.column + 1;
	}
	unsigned tab = indent_tab(c->buf, c->len, line);
	if (tab)
		return err_at(c, EINVAL, line, tab, "tabs are not allowed for indentation");
	if (p->error != YAML_READER_ERROR && p->context &&
	    (tab = indent_tab(c->buf, c->len, (unsigned)p->context_mark.line + 1)))
		return err_at(c, EINVAL, (unsigned)p->context_mark.line + 1, tab,
			      "tabs are not allowed for indentation");
	return err_at(c, EINVAL, line, col, "invalid YAML: %s%s%s",
		      p->problem ? p->problem : "syntax error", p->context ? " " : "",
		      p->context ? p->context : "");
}

/* ---- events -> tree ----------------------------------------------------- */

static struct ynode *node_new(struct ctx *c, enum ykind kind, const yaml_mark_t *m, int *r)
{
	if (c->n_nodes >= PD_YAML_MAX_NODES) {
		*r = err_at(c, EINVAL, (unsigned)m->line + 1, (unsigned)m->column + 1,
			    "too many nodes (the limit is %d)", PD_YAML_MAX_NODES);
		return NULL;
	}
	struct ynode *n = calloc(1, sizeof *n);
	if (!n) {
		*r = nomem(c);
		return NULL;
	}
	n->kind = kind;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	n->all_next = c->all;
	c->all = n;
	c->n_nodes++;
	return n;
}

static int node_add(struct ctx *c, struct ynode *parent, struct ynode *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct ynode **k = realloc(parent->kids, cap * sizeof *k);
		if (!k)
			return nomem(c);
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

static struct ynode *anchor_find(struct ctx *c, const char *name)
{
	for (struct ynode *n = c->all; n; n = n->all_next)
		if (n->anchor && strcmp(n->anchor, name) == 0)
			return n;
	return NULL;
}

/* Give n its anchor, if the event carries one. */
static int node_anchor(struct ctx *c, struct ynode *n, const yaml_char_t *anchor)
{
	char b[48];
	if (!anchor)
		return 0;
	if (anchor_find(c, (const char *)anchor))
		return yerr(c, n, "anchor '&%s' is defined twice", show((const char *)anchor, b));
	if (!(n->anchor = strdup((const char *)anchor)))
		return nomem(c);
	return 0;
}

/* One event: a new node (attached to the open collection, or the root), or
 * the end of a collection. */
static int on_event(struct ctx *c, const yaml_event_t *ev, struct ynode **stack, size_t *depth,
		    struct ynode **root)
{
	char b[48];
	int r = 0;
	struct ynode *n = NULL;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (!(n = node_new(c, Y_SCALAR, &ev->start_mark, &r)))
			return r;
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
			return yerr(c, n, "NUL character in a string");
		if (!(n->str = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length)))
			return nomem(c);
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->complete = true;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
		if (*depth >= PD_YAML_MAX_DEPTH)
			return err_at(c, EINVAL, (unsigned)ev->start_mark.line + 1,
				      (unsigned)ev->start_mark.column + 1,
				      "nested too deep (the limit is %d levels)", PD_YAML_MAX_DEPTH);
		if (!(n = node_new(c, seq ? Y_SEQ : Y_MAP, &ev->start_mark, &r)))
			return r;
		anchor = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
		tag = seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
		break;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (*depth > 0)
			stack[--*depth]->complete = true;
		return 0;
	case YAML_ALIAS_EVENT:
		if (!(n = node_new(c, Y_ALIAS, &ev->start_mark, &r)))
			return r;
		if (++c->n_aliases > PD_YAML_MAX_ALIASES)
			return yerr(c, n, "too many aliases (the limit is %d; alias bombs are refused)",
				    PD_YAML_MAX_ALIASES);
		const char *name = (const char *)ev->data.alias.anchor;
		n->target = anchor_find(c, name);
		if (!n->target)
			return yerr(c, n, "alias '*%s' names no anchor defined before it",
				    show(name, b));
		if (!n->target->complete)
			return yerr(c, n, "alias '*%s' is inside the node it names", show(name, b));
		break;
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	}
	if (tag)
		return yerr(c, n, "YAML tags ('%s') are not supported", show((const char *)tag, b));
	if ((r = node_anchor(c, n, anchor)) < 0)
		return r;
	if (*depth > 0) {
		if ((r = node_add(c, stack[*depth - 1], n)) < 0)
			return r;
	} else {
		*root = n;
	}
	if (n->kind == Y_SEQ || n->kind == Y_MAP)
		stack[(*depth)++] = n;
	return 0;
}

/* Parse the whole stream into a tree; *root stays NULL for an empty file. */
static int build_tree(struct ctx *c, struct ynode **root)
{
	yaml_parser_t p;
	struct ynode *stack[PD_YAML_MAX_DEPTH];
	size_t depth = 0;
	int docs = 0, r = 0;
	if (!yaml_parser_initialize(&p))
		return nomem(c);
	/* The encoding is left to libyaml so that it skips a UTF-8 BOM; the
	 * UTF-16 BOMs are not valid UTF-8, so check_text() refused them. */
	yaml_parser_set_input_string(&p, (const unsigned char *)c->buf, c->len);
	for (bool done = false; !done && r == 0;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			r = parse_error(c, &p);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			r = err_at(c, EINVAL, (unsigned)ev.start_mark.line + 1,
				   (unsigned)ev.start_mark.column + 1,
				   "a second YAML document: paddock.yaml holds one");
		else
			r = on_event(c, &ev, stack, &depth, root);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return r;
}

/* ---- reading nodes ------------------------------------------------------ */

static bool is_null(const struct ynode *n)
{
	return n->kind == Y_SCALAR && n->plain &&
	       (!n->str[0] || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

static const char *kind_name(const struct ynode *n)
{
	switch (n->kind) {
	case Y_SCALAR: return is_null(n) ? "nothing" : "a string";
	case Y_SEQ: return "a list";
	case Y_MAP: return "a map";
	case Y_ALIAS: break;
	}
	return "an alias";
}

/* Follow an alias, counting the expansion. */
static int deref(struct ctx *c, const struct ynode **n)
{
	if ((*n)->kind != Y_ALIAS)
		return 0;
	if (++c->expansions > PD_YAML_MAX_ALIASES)
		return yerr(c, *n, "too many alias expansions (the limit is %d; alias bombs are refused)",
			    PD_YAML_MAX_ALIASES);
	*n = (*n)->target;
	return 0;
}

static int wrong_type(struct ctx *c, const struct ynode *n, const char *path, const char *want)
{
	return yerr(c, n, "%s: expected %s, got %s", path, want, kind_name(n));
}

/* A string value; null is refused here (callers skip null keys first). */
static int want_str(struct ctx *c, const struct ynode *n, const char *path)
{
	if (n->kind != Y_SCALAR || is_null(n))
		return wrong_type(c, n, path, "a string");
	return 0;
}

static int get_str(struct ctx *c, const struct ynode *n, const char *path, char **out)
{
	int r = want_str(c, n, path);
	if (r < 0)
		return r;
	char *d = strdup(n->str);
	if (!d)
		return nomem(c);
	free(*out);
	*out = d;
	return 0;
}

static int get_bool(struct ctx *c, const struct ynode *n, const char *path, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE" }, *const no[] = { "false", "False", "FALSE" };
	if (n->kind == Y_SCALAR && n->plain)
		for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
			if (!strcmp(n->str, yes[i]))
				return *out = true, 0;
			if (!strcmp(n->str, no[i]))
				return *out = false, 0;
		}
	return wrong_type(c, n, path, "true or false");
}

typedef int (*item_check_fn)(struct ctx *c, const struct ynode *n, const char *path);

/* A list of strings, each passing `check` (may be NULL). Replaces *out. */
static int get_strv(struct ctx *c, const struct ynode *n, const char *path, item_check_fn check,
		    char ***out)
{
	int r;
	if (n->kind != Y_SEQ)
		return wrong_type(c, n, path, "a list");
	if (n->n > PD_YAML_MAX_LIST)
		return yerr(c, n, "%s: more than %d items", path, PD_YAML_MAX_LIST);
	_cleanup_strv_ char **v = calloc(n->n + 1, sizeof *v);
	if (!v)
		return nomem(c);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->kids[i];
		if ((r = deref(c, &it)) < 0 || (r = want_str(c, it, path)) < 0 ||
		    (check && (r = check(c, it, path)) < 0))
			return r;
		if (!(v[i] = strdup(it->str)))
			return nomem(c);
	}
	pd_strvfreep(out);
	*out = steal_ptr(&v);
	return 0;
}

/* Optimal string alignment distance (edits and transpositions), for "did you
 * mean"; UINT_MAX for strings too long to bother. */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return UINT_MAX;
	unsigned d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = tolower((unsigned char)a[i - 1]) != b[j - 1];
			unsigned v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

/* The valid key closest to `key`, if it is close enough to be a typo. */
static const char *suggest(const char *key, const char *const *keys)
{
	const char *best = NULL;
	unsigned best_d = UINT_MAX;
	for (const char *const *k = keys; *k; k++) {
		unsigned d = edit_distance(key, *k);
		if (d < best_d && d <= 2 && d < strlen(*k)) {
			best_d = d;
			best = *k;
		}
	}
	return best;
}

static int unknown_key(struct ctx *c, const struct ynode *k, const char *path,
		       const char *const *keys)
{
	char b[48], where[64] = "", all[256] = "";
	if (path)
		snprintf(where, sizeof where, " in '%s'", path);
	const char *best = suggest(k->str, keys);
	if (best)
		return yerr(c, k, "unknown key '%s'%s (did you mean '%s'?)", show(k->str, b), where,
			    best);
	for (const char *const *p = keys; *p; p++)
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", p == keys ? "" : ", ",
			 *p);
	return yerr(c, k, "unknown key '%s'%s (expected one of: %s)", show(k->str, b), where, all);
}

typedef int (*pair_fn)(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		       void *arg);
static int mount_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		      void *arg);

/* Walk a map: keys are strings, each at most once. With `keys` (NULL-
 * terminated) only those are allowed and idx is the key's index in it; pairs
 * with a null value are then skipped ("not given"), except in a mount, where
 * `source: ~` is the home directory. `path` names the map in messages; NULL
 * for the top level. */
static int map_walk(struct ctx *c, const struct ynode *n, const char *path,
		    const char *const *keys, pair_fn fn, void *arg)
{
	char b[48];
	const char *what = path ? path : "top level";
	int r;
	if (n->kind != Y_MAP)
		return wrong_type(c, n, what, "a map");
	if (n->n / 2 > PD_YAML_MAX_MAP)
		return yerr(c, n, "%s: more than %d entries", what, PD_YAML_MAX_MAP);
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
		if ((r = deref(c, &k)) < 0)
			return r;
		if (k->kind != Y_SCALAR || is_null(k))
			return yerr(c, k, "%s: expected a key (a string), got %s", what,
				    kind_name(k));
		for (size_t j = 0; j < i; j += 2) {
			const struct ynode *pk = n->kids[j];
			if (pk->kind == Y_ALIAS)
				pk = pk->target;
			if (!strcmp(pk->str, k->str))
				return yerr(c, k, "duplicate key '%s' (first at line %u)",
					    show(k->str, b), n->kids[j]->line);
		}
		int idx = -1;
		if (keys) {
			for (int x = 0; keys[x] && idx < 0; x++)
				if (!strcmp(keys[x], k->str))
					idx = x;
			if (idx < 0)
				return unknown_key(c, k, path, keys);
		}
		if ((r = deref(c, &v)) < 0)
			return r;
		if (keys && is_null(v) && fn != mount_pair)
			continue;
		if ((r = fn(c, idx, k, v, arg)) < 0)
			return r;
	}
	return 0;
}

/* Remember the first field this build cannot honour; refused at the end. */
__attribute__((format(printf, 4, 5)))
static void refuse(struct ctx *c, const struct ynode *n, const char *hint, const char *fmt, ...)
{
	if (c->refused)
		return;
	c->refused = true;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct pd_err *saved = c->err;
	c->err = &c->refusal;
	yerr(c, n, "%s is not supported yet by this build", msg);
	pd_err_hint(c->err, "%s", hint);
	c->err = saved;
}

/* ---- value checks ------------------------------------------------------- */

static bool is_env_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* Debian policy: [a-z0-9][a-z0-9+.-]+ */
static int check_package(struct ctx *c, const struct ynode *n, const char *path)
{
	char b[48];
	const char *s = n->str;
	bool ok = strlen(s) >= 2 && (islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]));
	for (; ok && *s; s++)
		ok = islower((unsigned char)*s) || isdigit((unsigned char)*s) || strchr("+.-", *s);
	if (!ok)
		return yerr(c, n, "%s: '%s' is not a Debian package name", path, show(n->str, b));
	return 0;
}

static const char *const agent_names[] = { "claude", "codex", "opencode", NULL };

static int check_agent(struct ctx *c, const struct ynode *n, const char *path)
{
	char b[48];
	for (const char *const *a = agent_names; *a; a++)
		if (!strcmp(*a, n->str))
			return 0;
	const char *best = suggest(n->str, agent_names);
	if (best)
		return yerr(c, n, "%s: unknown agent '%s' (did you mean '%s'?)", path,
			    show(n->str, b), best);
	return yerr(c, n, "%s: unknown agent '%s' (expected claude, codex or opencode)", path,
		    show(n->str, b));
}

/* A host name or "*.domain": labels of letters, digits and '-'. */
static int check_host(struct ctx *c, const struct ynode *n, const char *path)
{
	char b[48];
	const char *s = n->str;
	size_t len = strlen(s);
	bool ok = len > 0 && len <= 253;
	if (ok && !strncmp(s, "*.", 2))
		s += 2;
	for (size_t label = 0; ok && *s; s++) {
		if (*s == '.') {
			ok = label > 0;
			label = 0;
		} else {
			ok = (isalnum((unsigned char)*s) || *s == '-') && ++label <= 63;
		}
	}
	if (!ok || s[-1] == '.')
		return yerr(c, n, "%s: '%s' is not a host name (expected e.g. example.com or "
			    "*.example.com)", path, show(n->str, b));
	return 0;
}

/* "90s", "15m", "1h30m", "2d"; "0". */
static int parse_duration(const char *s, uint64_t *out)
{
	uint64_t total = 0;
	if (!strcmp(s, "0"))
		return *out = 0, 0;
	if (!*s)
		return -EINVAL;
	while (*s) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		uint64_t v = 0, unit;
		for (; isdigit((unsigned char)*s); s++) {
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > 1000000000)
				return -ERANGE;
		}
		switch (*s++) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -EINVAL;
		}
		total += v * unit;
		if (total > 365ULL * 86400)
			return -ERANGE;
	}
	*out = total;
	return 0;
}

/* ---- the schema --------------------------------------------------------- */

enum { I_BASE, I_PACKAGES, I_AGENTS, I_RUN, I_COUNT };
static const char *const image_keys[] = {
	[I_BASE] = "base", [I_PACKAGES] = "packages", [I_AGENTS] = "agents", [I_RUN] = "run",
	[I_COUNT] = NULL,
};

static int image_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		      void *arg)
{
	struct pd_image_spec *is = &c->s->image_spec;
	int r;
	switch (idx) {
	case I_BASE:
		if ((r = get_str(c, v, "image.base", &is->base)) < 0)
			return r;
		for (const char *p = is->base; *p; p++)
			if ((unsigned char)*p <= ' ')
				return yerr(c, v, "image.base: expected a name like debian:bookworm");
		if (!is->base[0])
			return yerr(c, v, "image.base: expected a name like debian:bookworm");
		return 0;
	case I_PACKAGES: return get_strv(c, v, "image.packages", check_package, &is->packages);
	case I_AGENTS: return get_strv(c, v, "image.agents", check_agent, &is->agents);
	case I_RUN: return get_str(c, v, "image.run", &is->run);
	}
	return 0;
}

static int env_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		    void *arg)
{
	char b[48];
	size_t *n = arg;
	if (!is_env_name(k->str))
		return yerr(c, k, "env: '%s' is not a variable name (letters, digits, '_')",
			    show(k->str, b));
	if (v->kind != Y_SCALAR || is_null(v))
		return yerr(c, v, "env.%s: expected a string, got %s (write '' for an empty value)",
			    show(k->str, b), kind_name(v));
	char *kv;
	if (asprintf(&kv, "%s=%s", k->str, v->str) < 0)
		return nomem(c);
	c->s->env[(*n)++] = kv;
	return 0;
}

enum { M_SOURCE, M_TARGET, M_WRITE, M_COUNT };
static const char *const mount_keys[] = {
	[M_SOURCE] = "source", [M_TARGET] = "target", [M_WRITE] = "write", [M_COUNT] = NULL,
};

/* A mount source: "~" and "~/..." expand to $HOME; a relative path resolves
 * against the directory holding the file and may not leave it. */
static int mount_source(struct ctx *c, const struct ynode *v, char **out)
{
	char b[48];
	const char *src = v->str;
	char *res = NULL;
	if (!src[0])
		return yerr(c, v, "mounts.source: expected a path, got an empty string");
	if (src[0] == '~') {
		const char *home = getenv("HOME");
		if (src[1] && src[1] != '/')
			return yerr(c, v, "mounts.source '%s': only ~ and ~/PATH are expanded",
				    show(src, b));
		if (!home || home[0] != '/')
			return yerr(c, v, "mounts.source '%s': $HOME is not an absolute path",
				    show(src, b));
		if (asprintf(&res, "%s%s", home, src + 1) < 0)
			return nomem(c);
	} else if (src[0] == '/') {
		if (!(res = strdup(src)))
			return nomem(c);
	} else {
		if (!c->base_dir)
			return yerr(c, v, "mounts.source '%s': a relative path needs a file to be "
				    "relative to", show(src, b));
		/* Lexically: every ".." must stay inside the base directory. */
		size_t bl = strlen(c->base_dir), len = bl + strlen(src) + 2;
		if (!(res = malloc(len)))
			return nomem(c);
		memcpy(res, c->base_dir, bl + 1);
		size_t o = bl;
		for (const char *p = src; *p;) {
			const char *e = strchrnul(p, '/');
			size_t n = (size_t)(e - p);
			if (n == 2 && p[0] == '.' && p[1] == '.') {
				if (o == bl) {
					free(res);
					return yerr(c, v, "mounts.source '%s' escapes the directory "
						    "holding %s", show(src, b), PD_YAML_NAME);
				}
				while (o > bl && res[o] != '/')
					o--;
				res[o] = '\0';
			} else if (n > 0 && !(n == 1 && p[0] == '.')) {
				if (o == 0 || res[o - 1] != '/')
					res[o++] = '/';
				memcpy(res + o, p, n);
				o += n;
				res[o] = '\0';
			}
			p = *e ? e + 1 : e;
		}
	}
	if (strlen(res) >= PATH_MAX) {
		free(res);
		return yerr(c, v, "mounts.source: the path is too long");
	}
	free(*out);
	*out = res;
	return 0;
}

static int mount_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		      void *arg)
{
	char b[48];
	struct pd_mount *m = arg;
	struct pd_err e;
	int r;
	if (is_null(v) && idx == M_WRITE)
		return 0;
	switch (idx) {
	case M_SOURCE:
		if (v->kind == Y_SCALAR && v->plain && !strcmp(v->str, "~"))
			return mount_source(c, v, &m->source);
		if ((r = want_str(c, v, "mounts.source")) < 0)
			return r;
		return mount_source(c, v, &m->source);
	case M_TARGET: {
		if ((r = want_str(c, v, "mounts.target")) < 0)
			return r;
		char *t = spec_normalize_target(v->str, &e);
		if (!t && e.code == ENOMEM)
			return nomem(c);
		if (!t && v->str[0] != '/')
			return yerr(c, v, "mounts.target: '%s' is not an absolute path",
				    show(v->str, b));
		if (!t)
			return yerr(c, v, "mounts.target: '%s' %s", show(v->str, b),
				    e.code == ENAMETOOLONG ? "is too long"
							   : "contains '..': it could escape the "
							     "sandbox root");
		free(m->target);
		m->target = t;
		return 0;
	}
	case M_WRITE: return get_bool(c, v, "mounts.write", &m->writable);
	}
	return 0;
}

static int get_mounts(struct ctx *c, const struct ynode *n)
{
	char b[48];
	int r;
	if (n->kind != Y_SEQ)
		return wrong_type(c, n, "mounts", "a list");
	if (n->n > PD_MAX_MOUNTS)
		return yerr(c, n, "mounts: more than %d mounts", PD_MAX_MOUNTS);
	struct spec *s = c->s;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->kids[i];
		if ((r = deref(c, &it)) < 0)
			return r;
		struct pd_mount m = { 0 };
		r = map_walk(c, it, "mounts", mount_keys, mount_pair, &m);
		if (r == 0 && (!m.source || !m.target))
			r = yerr(c, it, "mounts: a mount needs a %s", m.source ? "target" : "source");
		for (size_t j = 0; r == 0 && j < s->n_mounts; j++)
			if (!strcmp(s->mounts[j].target, m.target))
				r = yerr(c, it, "mounts: target %s is given twice", show(m.target, b));
		struct pd_mount *nv = r == 0 ? realloc(s->mounts, (s->n_mounts + 1) * sizeof *nv) : NULL;
		if (r == 0 && !nv)
			r = nomem(c);
		if (r < 0) {
			free(m.source);
			free(m.target);
			return r;
		}
		s->mounts = nv;
		s->mounts[s->n_mounts++] = m;
	}
	return 0;
}

enum { N_MODE, N_ALLOW, N_DENY, N_COUNT };
static const char *const net_keys[] = {
	[N_MODE] = "mode", [N_ALLOW] = "allow", [N_DENY] = "deny", [N_COUNT] = NULL,
};

static int net_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		    void *arg)
{
	char b[48];
	struct spec *s = c->s;
	int r;
	switch (idx) {
	case N_MODE:
		if ((r = want_str(c, v, "network.mode")) < 0)
			return r;
		if (!strcmp(v->str, "off"))
			s->network = PD_NET_OFF;
		else if (!strcmp(v->str, "filtered"))
			s->network = PD_NET_FILTERED;
		else if (!strcmp(v->str, "open"))
			s->network = PD_NET_OPEN;
		else
			return yerr(c, v, "network.mode: '%s' is not a mode (expected off, filtered "
				    "or open)", show(v->str, b));
		return 0;
	case N_ALLOW:
	case N_DENY: {
		char ***list = idx == N_ALLOW ? &s->net_allow : &s->net_deny;
		const char *path = idx == N_ALLOW ? "network.allow" : "network.deny";
		return get_strv(c, v, path, check_host, list);
	}
	}
	return 0;
}

enum { S_FROM, S_HOSTS, S_COUNT };
static const char *const secret_keys[] = {
	[S_FROM] = "from", [S_HOSTS] = "hosts", [S_COUNT] = NULL,
};

static int secret_field(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
			void *arg)
{
	char b[48];
	struct pd_secret *sec = arg;
	int r;
	if (idx == S_HOSTS)
		return get_strv(c, v, "secrets.hosts", check_host, &sec->hosts);
	if ((r = get_str(c, v, "secrets.from", &sec->from)) < 0)
		return r;
	const char *f = sec->from;
	if (strcmp(f, "env") != 0 && !(!strncmp(f, "file:", 5) && f[5]) &&
	    !(!strncmp(f, "cmd:", 4) && f[4]))
		return yerr(c, v, "secrets.from: '%s' is not a source (expected env, file:PATH or "
			    "cmd:COMMAND)", show(f, b));
	return 0;
}

static int secret_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		       void *arg)
{
	char b[48];
	struct spec *s = c->s;
	if (!is_env_name(k->str))
		return yerr(c, k, "secrets: '%s' is not a variable name (letters, digits, '_')",
			    show(k->str, b));
	struct pd_secret *sec = &s->secrets[s->n_secrets];
	*sec = (struct pd_secret){ 0 };
	int r = map_walk(c, v, "secrets", secret_keys, secret_field, sec);
	if (r == 0 && (!sec->from || !sec->hosts || !sec->hosts[0]))
		r = yerr(c, v, "secrets.%s: expected from: and a non-empty hosts: list",
			 show(k->str, b));
	if (r == 0 && !(sec->name = strdup(k->str)))
		r = nomem(c);
	s->n_secrets++; /* spec_free releases a partial entry */
	return r;
}

enum { L_MEMORY, L_CPUS, L_PIDS, L_DISK, L_COUNT };
static const char *const limit_keys[] = {
	[L_MEMORY] = "memory", [L_CPUS] = "cpus", [L_PIDS] = "pids", [L_DISK] = "disk",
	[L_COUNT] = NULL,
};

/* The minimums are spec_validate()'s, checked here to point at the line. */
static int limit_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		      void *arg)
{
	char b[48];
	struct spec *s = c->s;
	int r;
	if ((r = want_str(c, v, "limits")) < 0)
		return r;
	const char *t = v->str;
	switch (idx) {
	case L_MEMORY:
	case L_DISK: {
		bool mem = idx == L_MEMORY;
		uint64_t x;
		if (spec_parse_size(t, &x) < 0)
			return yerr(c, v, "limits.%s: bad size '%s' (expected a size like 512M or 4G)",
				    mem ? "memory" : "disk", show(t, b));
		if (x && x < (mem ? 8ULL << 20 : 1ULL << 20))
			return yerr(c, v, "limits.%s: must be at least %s (or 0 for no limit)",
				    mem ? "memory" : "disk", mem ? "8M" : "1M");
		*(mem ? &s->memory : &s->disk) = x;
		return 0;
	}
	case L_CPUS:
		if (!strcmp(t, "0"))
			s->cpus_milli = 0;
		else if (spec_parse_cpus(t, &s->cpus_milli) < 0)
			return yerr(c, v, "limits.cpus: bad number '%s' (expected a number of CPUs "
				    "like 1 or 1.5, or 0 for no limit)", show(t, b));
		return 0;
	case L_PIDS: {
		uint64_t x = 0;
		bool ok = *t != '\0';
		for (const char *p = t; ok && *p; p++) {
			ok = isdigit((unsigned char)*p) && x < 100000000;
			x = x * 10 + (uint64_t)(*p - '0');
		}
		if (!ok || (x && x < 4))
			return yerr(c, v, "limits.pids: bad number '%s' (expected a whole number, at "
				    "least 4, or 0 for no limit)", show(t, b));
		s->pids = x;
		return 0;
	}
	}
	return 0;
}

enum {
	K_IMAGE, K_SETUP, K_COMMAND, K_ENV, K_MOUNTS, K_WORKDIR, K_HOSTNAME, K_WORKSPACE,
	K_NETWORK, K_SECRETS, K_LIMITS, K_IDLE, K_STRICT, K_COUNT
};
static const char *const top_keys[] = {
	[K_IMAGE] = "image",	   [K_SETUP] = "setup",		[K_COMMAND] = "command",
	[K_ENV] = "env",	   [K_MOUNTS] = "mounts",	[K_WORKDIR] = "workdir",
	[K_HOSTNAME] = "hostname", [K_WORKSPACE] = "workspace", [K_NETWORK] = "network",
	[K_SECRETS] = "secrets",   [K_LIMITS] = "limits",	[K_IDLE] = "idle",
	[K_STRICT] = "strict",	   [K_COUNT] = NULL,
};

static int top_pair(struct ctx *c, int idx, const struct ynode *k, const struct ynode *v,
		    void *arg)
{
	char b[48];
	struct spec *s = c->s;
	int r;
	switch (idx) {
	case K_IMAGE: return map_walk(c, v, "image", image_keys, image_pair, NULL);
	case K_SETUP: return get_str(c, v, "setup", &s->setup);
	case K_COMMAND:
		if ((r = get_strv(c, v, "command", NULL, &s->argv)) < 0)
			return r;
		if (!s->argv[0] || !s->argv[0][0])
			return yerr(c, v, "command: expected a list like [make, test]");
		return 0;
	case K_ENV: {
		if (v->kind == Y_MAP && !(s->env = calloc(v->n / 2 + 1, sizeof *s->env)))
			return nomem(c);
		size_t n = 0;
		return map_walk(c, v, "env", NULL, env_pair, &n);
	}
	case K_MOUNTS: return get_mounts(c, v);
	case K_WORKDIR:
		if ((r = get_str(c, v, "workdir", &s->workdir)) < 0)
			return r;
		if (s->workdir[0] != '/')
			return yerr(c, v, "workdir: '%s' is not an absolute path", show(s->workdir, b));
		return 0;
	case K_HOSTNAME: {
		if ((r = get_str(c, v, "hostname", &s->hostname)) < 0)
			return r;
		size_t n = strlen(s->hostname);
		bool ok = n > 0 && n <= 63;
		for (const char *p = s->hostname; ok && *p; p++)
			ok = isalnum((unsigned char)*p) || *p == '-' || *p == '.';
		if (!ok)
			return yerr(c, v, "hostname: '%s' is not a host name (1..63 letters, digits, "
				    "'-' and '.')", show(s->hostname, b));
		return 0;
	}
	case K_WORKSPACE:
		if ((r = want_str(c, v, "workspace")) < 0)
			return r;
		if (!strcmp(v->str, "auto"))
			s->workspace = PD_WS_AUTO;
		else if (!strcmp(v->str, "none"))
			s->workspace = PD_WS_NONE;
		else
			return yerr(c, v, "workspace: '%s' is not a mode (expected auto or none)",
				    show(v->str, b));
		return 0;
	case K_NETWORK: return map_walk(c, v, "network", net_keys, net_pair, NULL);
	case K_SECRETS:
		if (v->kind == Y_MAP && !(s->secrets = calloc(v->n / 2 + 1, sizeof *s->secrets)))
			return nomem(c);
		if ((r = map_walk(c, v, "secrets", NULL, secret_pair, NULL)) < 0)
			return r;

		return 0;
	case K_LIMITS: return map_walk(c, v, "limits", limit_keys, limit_pair, NULL);
	case K_IDLE:
		if ((r = want_str(c, v, "idle")) < 0)
			return r;
		if (parse_duration(v->str, &s->idle_seconds) < 0)
			return yerr(c, v, "idle: bad duration '%s' (expected a duration like 30s, 15m "
				    "or 1h)", show(v->str, b));
		refuse(c, k, "remove idle:; sleeping idle sandboxes is not built yet", "'idle'");
		return 0;
	case K_STRICT: return get_bool(c, v, "strict", &s->strict);
	}
	return 0;
}

/* ---- entry points ------------------------------------------------------- */

int spec_load_yaml_buffer(const char *name, const char *buf, size_t len, const char *base_dir,
			  struct spec *s, struct pd_err *err)
{
	struct ctx c = { .name = name, .base_dir = base_dir, .buf = buf, .len = len, .err = err };
	struct spec tmp;
	struct ynode *root = NULL;
	int r;
	if (len > PD_YAML_MAX_BYTES)
		return pd_err_set(err, EINVAL, "spec", "%s: the file is larger than 1 MiB (%zu bytes)",
				  name, len);
	if ((r = check_text(&c)) < 0)
		return r;
	spec_init(&tmp);
	c.s = &tmp;
	r = build_tree(&c, &root);
	if (r == 0 && root) {
		const struct ynode *top = root;
		if ((r = deref(&c, &top)) == 0 && !is_null(top)) {
			if (top->kind != Y_MAP)
				r = yerr(&c, top, "expected a map of settings (image:, env:, ...) at "
					 "the top, got %s", kind_name(top));
			else
				r = map_walk(&c, top, NULL, top_keys, top_pair, NULL);
		}
	}
	if (r == 0 && c.refused) {
		if (err)
			*err = c.refusal;
		r = -EINVAL;
	}
	nodes_free(c.all);
	if (r < 0) {
		spec_free(&tmp);
		return r;
	}
	spec_free(s);
	*s = tmp;
	return 0;
}

int spec_load_yaml(const char *path, struct spec *s, struct pd_err *err)
{
	struct stat st;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return pd_err_errno(err, "spec", "%s: cannot open", path);
	if (fstat(fd, &st) < 0)
		return pd_err_errno(err, "spec", "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return pd_err_set(err, EINVAL, "spec", "%s: not a regular file", path);
	if (st.st_size > (off_t)PD_YAML_MAX_BYTES)
		return pd_err_set(err, EINVAL, "spec", "%s: the file is larger than 1 MiB (%lld bytes)",
				  path, (long long)st.st_size);
	/* Read at most one byte past the limit: the file may grow meanwhile. */
	_cleanup_free_ char *buf = malloc(PD_YAML_MAX_BYTES + 1);
	if (!buf)
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	size_t len = 0;
	while (len <= PD_YAML_MAX_BYTES) {
		ssize_t n = read(fd, buf + len, PD_YAML_MAX_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pd_err_errno(err, "spec", "%s: cannot read", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	/* Relative mount sources are relative to the file's directory. */
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return pd_err_set(err, ENOMEM, "spec", "out of memory");
	char *slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else
		slash[slash == dir] = '\0';
	_cleanup_free_ char *base = realpath(dir, NULL);
	if (!base)
		return pd_err_errno(err, "spec", "%s: cannot resolve its directory", path);
	return spec_load_yaml_buffer(path, buf, len, base, s, err);
}

static int exists_at(const char *dir, const char *name, bool *yes, struct pd_err *err)
{
	char p[PATH_MAX + 32];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", name);
	if (lstat(p, &st) == 0)
		return *yes = true, 0;
	if (errno == ENOENT || errno == ENOTDIR)
		return *yes = false, 0;
	return pd_err_errno(err, "spec", "looking for %s", p);
}

int spec_yaml_find(char **out, struct pd_err *err)
{
	char cwd[PATH_MAX];
	bool yes;
	int r;
	if ((r = exists_at(".", PD_YAML_NAME, &yes, err)) < 0)
		return r;
	if (yes)
		return (*out = strdup(PD_YAML_NAME)) ? 1 : pd_err_set(err, ENOMEM, "spec", "out of memory");
	if (!getcwd(cwd, sizeof cwd))
		return pd_err_errno(err, "spec", "getcwd");
	/* Up to the first directory with a .git entry: the work tree's top. */
	for (size_t up = 0;; up++) {
		if ((r = exists_at(cwd, ".git", &yes, err)) < 0)
			return r;
		if (yes) {
			if (up == 0 || (r = exists_at(cwd, PD_YAML_NAME, &yes, err)) < 0 || !yes)
				return r < 0 ? r : 0;
			char *rel = malloc(up * 3 + sizeof PD_YAML_NAME);
			if (!rel)
				return pd_err_set(err, ENOMEM, "spec", "out of memory");
			for (size_t i = 0; i < up; i++)
				memcpy(rel + 3 * i, "../", 3);
			memcpy(rel + 3 * up, PD_YAML_NAME, sizeof PD_YAML_NAME);
			*out = rel;
			return 1;
		}
		char *slash = strrchr(cwd, '/');
		if (!slash || (slash == cwd && !cwd[1]))
			return 0;
		slash[slash == cwd] = '\0';
	}
}
