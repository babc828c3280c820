/* yaml.h: paddock.yaml <-> struct spec.
 *
 * The loader reads a repository's paddock.yaml (libyaml) into a spec; the
 * dumper prints a spec back as YAML or JSON (`paddock spec`). The file is
 * untrusted input: it is bounded (1 MiB, nesting depth, node count, map size,
 * aliases) and every error names FILE:LINE:COLUMN and what was expected, in
 * one line, in err->msg (layer "spec").
 *
 * Aliases: a document may hold at most PD_YAML_MAX_ALIASES aliases (*name),
 * and reading the spec may expand aliases at most PD_YAML_MAX_ALIASES times in
 * all (an alias inside an aliased node counts again), so an alias bomb
 * ("billion laughs") is refused instead of expanded. An alias can only name a
 * node that is complete, so cycles are impossible. */
#ifndef PADDOCK_SPEC_YAML_H
#define PADDOCK_SPEC_YAML_H

#include <stddef.h>

#include "common/err.h"

struct spec;

#define PD_YAML_NAME "paddock.yaml"
#define PD_YAML_MAX_BYTES (1u << 20)  /* refused before parsing */
#define PD_YAML_MAX_DEPTH 16          /* nested lists/maps */
#define PD_YAML_MAX_NODES 10000       /* scalars, lists and maps */
#define PD_YAML_MAX_ALIASES 16        /* in the document, and expansions */
#define PD_YAML_MAX_MAP 256           /* pairs in one map */
#define PD_YAML_MAX_LIST 1024         /* items in one list */

/* Load the paddock.yaml at `path` into s, which must hold only spec_init()
 * defaults. Errors name the file as `path` is written. A relative mount
 * source resolves against the directory holding the file. Fields this build
 * cannot honour yet (network other than off, allow/deny lists, secrets,
 * idle) are parsed, checked, then refused ("not supported yet"). Returns 0,
 * or < 0 with err filled and s unchanged. */
int spec_load_yaml(const char *path, struct spec *s, struct pd_err *err);

/* The same from memory: `name` is used in messages, `base_dir` (absolute;
 * NULL refuses relative mount sources) anchors relative mount sources. buf
 * need not be NUL-terminated. */
int spec_load_yaml_buffer(const char *name, const char *buf, size_t len, const char *base_dir,
			  struct spec *s, struct pd_err *err);

/* Find the paddock.yaml that applies to the current directory: ./paddock.yaml,
 * else the one at the top of the git work tree holding it (the first parent
 * with a .git entry; git itself is not run). Returns 1 and a malloc'd path
 * relative to the current directory in *out, 0 when there is none, or < 0
 * with err filled. */
int spec_yaml_find(char **out, struct pd_err *err);

/* The spec as YAML that spec_load_yaml reads back to the same spec. Settings
 * only flags can make (--image DIR, -t, --unmask, --workspace-mount) appear as
 * comments at the end. Returns a malloc'd string or NULL with err filled. */
char *spec_to_yaml(const struct spec *s, struct pd_err *err);
/* The spec as a JSON object (all settings, sizes in bytes). Malloc'd. */
char *spec_to_json(const struct spec *s, struct pd_err *err);

#endif
