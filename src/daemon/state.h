/* state.h: paddockd's state in SQLite (/var/lib/paddock/paddock.db, WAL).
 *
 * Tables: sandboxes, sessions, events. The database records what the daemon
 * believes; on restart the daemon reconciles it with what exists on the
 * host (processes, cgroups, directories). Secret values are never stored.
 *
 * All functions return 0 (or a positive count where documented) or a
 * negative errno with err filled (layer "state"). Strings in rows are owned
 * by the row; free a row with the matching *_free. Not thread-safe: one
 * daemon thread uses it. */
#ifndef PADDOCK_DAEMON_STATE_H
#define PADDOCK_DAEMON_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/err.h"

struct pd_state;

/* Lifecycle of a sandbox row. */
enum pd_sb_state {
	PD_SB_CREATING = 0, /* row exists, host objects being made */
	PD_SB_RUNNING,
	PD_SB_STOPPED,      /* no process; its directory stays */
	PD_SB_DESTROYING,   /* host objects being removed */
};
const char *pd_sb_state_name(enum pd_sb_state s); /* "creating", ... */

struct pd_sb_row {
	int64_t id;
	char *name;          /* [a-z0-9][a-z0-9-]{0,63}, unique */
	enum pd_sb_state state;
	char *spec_yaml;     /* the spec (spec_to_yaml), reloaded at start */
	char *image;         /* image directory */
	char *repo_dir;      /* owner's repository top dir, or NULL */
	char *base_commit;   /* the owner's HEAD when the workspace was cloned, or NULL */
	char *start_commit;  /* the workspace's first commit (base + the owner's
			      * uncommitted changes), or NULL */
	uint32_t slot;       /* uid slot: uid_base = PD_DEFAULT_UID_BASE + slot * 65536 */
	pid_t pid;           /* pid 1 of the sandbox on the host, 0 if none */
	uint64_t pid_start;  /* its start time (field 22 of /proc/pid/stat) */
	int64_t created_at;  /* unix seconds */
	int64_t started_at;  /* 0 if never */
	char *owner;         /* who created it: "uid:gid" of the client */
};
void pd_sb_row_free(struct pd_sb_row *r); /* frees members, not r */

enum pd_sess_state { PD_SESS_RUNNING = 0, PD_SESS_EXITED, PD_SESS_LOST };
const char *pd_sess_state_name(enum pd_sess_state s);

struct pd_sess_row {
	int64_t sandbox_id;
	int64_t num;         /* 1, 2, ... per sandbox */
	char *argv_json;     /* JSON array of strings */
	bool tty;
	enum pd_sess_state state;
	pid_t pid;           /* host pid of the session's process, 0 if none */
	int exit_code;       /* valid when EXITED */
	int64_t started_at;
	int64_t ended_at;    /* 0 while running */
};
void pd_sess_row_free(struct pd_sess_row *r);

struct pd_event_row {
	int64_t id;
	int64_t ts_ms;       /* unix milliseconds */
	char *sandbox;       /* name, or NULL for daemon-wide events */
	char *kind;          /* "create", "start", "exec", "session-end", "stop", "destroy",
			      * "reconcile", "dns", "connect", "block", ... */
	char *detail_json;   /* a JSON object */
};
void pd_event_row_free(struct pd_event_row *r);

/* Open (creating the file 0600 and its directory 0700 if needed), set WAL,
 * a busy timeout and foreign keys, create or migrate the schema. */
int pd_state_open(const char *path, struct pd_state **out, struct pd_err *err);
void pd_state_close(struct pd_state *st); /* NULL-safe */

/* Sandboxes. insert fills r->id and picks the lowest free slot into r->slot;
 * -EEXIST if the name is taken. */
int pd_state_sb_insert(struct pd_state *st, struct pd_sb_row *r, struct pd_err *err);
/* Update every mutable column of the row with r->id. */
int pd_state_sb_update(struct pd_state *st, const struct pd_sb_row *r, struct pd_err *err);
/* Delete the row and its sessions (events stay: they are the audit log). */
int pd_state_sb_delete(struct pd_state *st, int64_t id, struct pd_err *err);
/* -ENOENT if none. */
int pd_state_sb_get(struct pd_state *st, const char *name, struct pd_sb_row *out,
		    struct pd_err *err);
/* All rows ordered by name; *out is a malloc'd array of *n rows. */
int pd_state_sb_list(struct pd_state *st, struct pd_sb_row **out, size_t *n,
		     struct pd_err *err);
void pd_sb_rows_free(struct pd_sb_row *rows, size_t n);

/* Sessions. insert assigns r->num (max + 1 for the sandbox). */
int pd_state_sess_insert(struct pd_state *st, struct pd_sess_row *r, struct pd_err *err);
int pd_state_sess_update(struct pd_state *st, const struct pd_sess_row *r, struct pd_err *err);
int pd_state_sess_list(struct pd_state *st, int64_t sandbox_id, struct pd_sess_row **out,
		       size_t *n, struct pd_err *err);
void pd_sess_rows_free(struct pd_sess_row *rows, size_t n);
/* Mark every RUNNING session of the sandbox LOST (ended_at = now). */
int pd_state_sess_mark_lost(struct pd_state *st, int64_t sandbox_id, struct pd_err *err);

/* Events: append one (ts = now); detail_json must be a JSON object (checked
 * with jansson; refused otherwise). */
int pd_state_event(struct pd_state *st, const char *sandbox, const char *kind,
		   const char *detail_json, struct pd_err *err);
/* Events with id > after_id, optionally only for one sandbox (NULL: all),
 * oldest first, at most limit (0: no limit). */
int pd_state_events(struct pd_state *st, const char *sandbox, int64_t after_id, size_t limit,
		    struct pd_event_row **out, size_t *n, struct pd_err *err);
void pd_event_rows_free(struct pd_event_row *rows, size_t n);

/* Images: record that a sandbox was made from path (its row: first and
 * last use, number of uses); list them, most recently used first, as a JSON
 * array of {path, first_used, last_used, uses} (NULL on error). */
int pd_state_image_used(struct pd_state *st, const char *path, struct pd_err *err);
json_t *pd_state_images(struct pd_state *st, struct pd_err *err);

/* Row counts, for leak tests: sandboxes, sessions. */
int pd_state_counts(struct pd_state *st, size_t *sandboxes, size_t *sessions,
		    struct pd_err *err);

#endif
