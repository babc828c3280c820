/* state.c: paddockd's state in SQLite (see state.h).
 *
 * - The file is created 0600 (its directory 0700) before SQLite opens it, with
 *   O_NOFOLLOW; SQLite gives the -wal and -shm files the mode of the database.
 * - WAL, a busy timeout, foreign keys (sessions go with their sandbox) and
 *   SQLITE_DBCONFIG_DEFENSIVE are set on every open.
 * - The schema version is PRAGMA user_version. migrations[v] takes version v
 *   to v + 1 (and sets user_version itself), all in one IMMEDIATE
 *   transaction; a database newer than this code is refused untouched.
 * - Every value goes through a bound parameter. Statements are prepared once
 *   and cached in struct pd_state; the cleanup attribute resets them.
 * - Untrusted sizes are capped: an event's detail, a session's argv. */
#include "daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/cleanup.h"
#include "spec/spec.h"

#define ST_LAYER "state"
#define ST_SCHEMA_VERSION 3
#define ST_BUSY_MS 5000
#define ST_NAME_MAX 64                    /* [a-z0-9][a-z0-9-]{0,63} */
#define ST_KIND_MAX 64                    /* an event's kind */
#define ST_DETAIL_MAX ((size_t)64 << 10)  /* an event's detail_json */
#define ST_ARGV_MAX ((size_t)1 << 20)     /* a session's argv_json */
/* Slots whose 65536 uids all stay below (uid_t)-1: 0 .. ST_SLOTS - 1. */
#define ST_SLOTS ((UINT32_MAX - PD_DEFAULT_UID_BASE) / 65536u)

/* ---- schema ---- */

/* migrations[v]: version v -> v + 1. Append only; never edit a released one. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE sandboxes ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT UNIQUE NOT NULL,"
	" state INTEGER NOT NULL,"
	" spec_yaml TEXT,"
	" image TEXT,"
	" repo_dir TEXT,"
	" base_commit TEXT,"
	" slot INTEGER UNIQUE NOT NULL,"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" pid_start INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL DEFAULT 0,"
	" started_at INTEGER NOT NULL DEFAULT 0,"
	" owner TEXT);"
	"CREATE TABLE sessions ("
	" sandbox_id INTEGER NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,"
	" num INTEGER NOT NULL,"
	" argv_json TEXT NOT NULL,"
	" tty INTEGER NOT NULL DEFAULT 0,"
	" state INTEGER NOT NULL,"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" exit_code INTEGER NOT NULL DEFAULT 0,"
	" started_at INTEGER NOT NULL DEFAULT 0,"
	" ended_at INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (sandbox_id, num));"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" ts_ms INTEGER NOT NULL,"
	" sandbox TEXT,"
	" kind TEXT NOT NULL,"
	" detail TEXT NOT NULL);"
	"CREATE INDEX events_sandbox_id ON events (sandbox, id);"
	"PRAGMA user_version = 1;",
	/* 1 -> 2: the images sandboxes were made from (the cache itself is the
	 * directory tree under /var/lib/paddock/images). */
	"CREATE TABLE images ("
	" path TEXT PRIMARY KEY,"
	" first_used INTEGER NOT NULL,"
	" last_used INTEGER NOT NULL,"
	" uses INTEGER NOT NULL DEFAULT 0);"
	"PRAGMA user_version = 2;",
	/* 2 -> 3: the commit /workspace started from (base_commit is the owner's
	 * HEAD, which the bundle names as its prerequisite; start_commit adds the
	 * owner's uncommitted changes copied in, what diff and pull compare to). */
	"ALTER TABLE sandboxes ADD COLUMN start_commit TEXT;"
	"PRAGMA user_version = 3;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == ST_SCHEMA_VERSION,
	       "one migration per schema version");

#define SB_COLS                                                                        \
	"id, name, state, spec_yaml, image, repo_dir, base_commit, slot, pid, pid_start, " \
	"created_at, started_at, owner, start_commit"
#define SESS_COLS "sandbox_id, num, argv_json, tty, state, pid, exit_code, started_at, ended_at"
#define EV_COLS "id, ts_ms, sandbox, kind, detail"

enum stmt_id {
	S_SB_EXISTS,
	S_SB_FREE_SLOT,
	S_SB_INSERT,
	S_SB_UPDATE,
	S_SB_DELETE,
	S_SB_GET,
	S_SB_LIST,
	S_SESS_INSERT,
	S_SESS_UPDATE,
	S_SESS_LIST,
	S_SESS_LOST,
	S_EV_INSERT,
	S_EV_ALL,
	S_EV_ONE,
	S_COUNTS,
	S_IMAGE_USED,
	S_IMAGE_LIST,
	S__COUNT,
};

static const char *const stmt_sql[S__COUNT] = {
	[S_SB_EXISTS] = "SELECT 1 FROM sandboxes WHERE name = ?1",
	/* The lowest slot >= 0 not in use: 0, or one past a used slot whose
	 * successor is free. Both probes use the UNIQUE index on slot. */
	[S_SB_FREE_SLOT] = "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM sandboxes WHERE slot = 0)"
			   " THEN 0 ELSE (SELECT MIN(a.slot) + 1 FROM sandboxes a WHERE NOT EXISTS"
			   " (SELECT 1 FROM sandboxes b WHERE b.slot = a.slot + 1)) END",
	[S_SB_INSERT] = "INSERT INTO sandboxes (name, state, spec_yaml, image, repo_dir, base_commit,"
			" slot, pid, pid_start, created_at, started_at, owner)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[S_SB_UPDATE] = "UPDATE sandboxes SET state = ?2, spec_yaml = ?3, image = ?4, repo_dir = ?5,"
			" base_commit = ?6, pid = ?7, pid_start = ?8, started_at = ?9,"
			" start_commit = ?10 WHERE id = ?1",
	[S_SB_DELETE] = "DELETE FROM sandboxes WHERE id = ?1",
	[S_SB_GET] = "SELECT " SB_COLS " FROM sandboxes WHERE name = ?1",
	[S_SB_LIST] = "SELECT " SB_COLS " FROM sandboxes ORDER BY name",
	[S_SESS_INSERT] = "INSERT INTO sessions (" SESS_COLS ") VALUES (?1,"
			  " (SELECT COALESCE(MAX(num), 0) + 1 FROM sessions WHERE sandbox_id = ?1),"
			  " ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING num",
	[S_SESS_UPDATE] = "UPDATE sessions SET state = ?3, pid = ?4, exit_code = ?5, started_at = ?6,"
			  " ended_at = ?7 WHERE sandbox_id = ?1 AND num = ?2",
	[S_SESS_LIST] = "SELECT " SESS_COLS " FROM sessions WHERE sandbox_id = ?1 ORDER BY num",
	[S_SESS_LOST] = "UPDATE sessions SET state = ?2, ended_at = ?3"
			" WHERE sandbox_id = ?1 AND state = ?4",
	[S_EV_INSERT] = "INSERT INTO events (ts_ms, sandbox, kind, detail) VALUES (?1, ?2, ?3, ?4)",
	[S_EV_ALL] = "SELECT " EV_COLS " FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
	[S_EV_ONE] = "SELECT " EV_COLS " FROM events WHERE sandbox = ?3 AND id > ?1"
		     " ORDER BY id LIMIT ?2",
	[S_COUNTS] = "SELECT (SELECT COUNT(*) FROM sandboxes), (SELECT COUNT(*) FROM sessions)",
	[S_IMAGE_USED] = "INSERT INTO images (path, first_used, last_used, uses) VALUES (?1, ?2, ?2, 1)"
			 " ON CONFLICT(path) DO UPDATE SET last_used = ?2, uses = uses + 1",
	[S_IMAGE_LIST] = "SELECT path, first_used, last_used, uses FROM images ORDER BY last_used DESC",
};

struct pd_state {
	sqlite3 *db;
	sqlite3_stmt *stmt[S__COUNT]; /* prepared on first use */
};

/* ---- names ---- */

const char *pd_sb_state_name(enum pd_sb_state s)
{
	switch (s) {
	case PD_SB_CREATING: return "creating";
	case PD_SB_RUNNING: return "running";
	case PD_SB_STOPPED: return "stopped";
	case PD_SB_DESTROYING: return "destroying";
	}
	return "unknown";
}

const char *pd_sess_state_name(enum pd_sess_state s)
{
	switch (s) {
	case PD_SESS_RUNNING: return "running";
	case PD_SESS_EXITED: return "exited";
	case PD_SESS_LOST: return "lost";
	}
	return "unknown";
}

static bool sb_state_ok(int64_t s)
{
	return s >= PD_SB_CREATING && s <= PD_SB_DESTROYING;
}

static bool sess_state_ok(int64_t s)
{
	return s >= PD_SESS_RUNNING && s <= PD_SESS_LOST;
}

/* [a-z0-9][a-z0-9-]{0,63} */
static bool name_ok(const char *name)
{
	if (!name || !name[0] || name[0] == '-')
		return false;
	size_t i = 0;
	for (; name[i]; i++) {
		char c = name[i];
		if (i >= ST_NAME_MAX || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

static int check_name(const char *name, struct pd_err *err)
{
	if (name_ok(name))
		return 0;
	return pd_err_set(err, EINVAL, ST_LAYER,
			  "invalid sandbox name (want [a-z0-9][a-z0-9-]{0,63})");
}

/* ---- row memory ---- */

void pd_sb_row_free(struct pd_sb_row *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->spec_yaml);
	free(r->image);
	free(r->repo_dir);
	free(r->base_commit);
	free(r->start_commit);
	free(r->owner);
	memset(r, 0, sizeof *r);
}

void pd_sb_rows_free(struct pd_sb_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		pd_sb_row_free(&rows[i]);
	free(rows);
}

void pd_sess_row_free(struct pd_sess_row *r)
{
	if (!r)
		return;
	free(r->argv_json);
	memset(r, 0, sizeof *r);
}

void pd_sess_rows_free(struct pd_sess_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		pd_sess_row_free(&rows[i]);
	free(rows);
}

void pd_event_row_free(struct pd_event_row *r)
{
	if (!r)
		return;
	free(r->sandbox);
	free(r->kind);
	free(r->detail_json);
	memset(r, 0, sizeof *r);
}

void pd_event_rows_free(struct pd_event_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		pd_event_row_free(&rows[i]);
	free(rows);
}

/* ---- SQLite helpers ---- */

/* The errno that best says what the connection's last error was. */
static int sql_errno(sqlite3 *db)
{
	int e;
	switch (sqlite3_errcode(db) & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return EBUSY;
	case SQLITE_NOMEM: return ENOMEM;
	case SQLITE_READONLY: return EROFS;
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_PERM:
	case SQLITE_AUTH: return EACCES;
	case SQLITE_TOOBIG: return E2BIG;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE: return EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return EUCLEAN;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		e = sqlite3_system_errno(db);
		return e > 0 ? e : EIO;
	default: return EIO;
	}
}

/* Fill err with "<what>: <sqlite3_errmsg>" and return the negative errno. */
static int sql_fail(sqlite3 *db, struct pd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int sql_fail(sqlite3 *db, struct pd_err *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	int code = sql_errno(db);
	int r = pd_err_set(err, code, ST_LAYER, "%s: %s", what, sqlite3_errmsg(db));
	if (code == EBUSY)
		pd_err_hint(err, "another process holds the database locked; is a second paddockd "
				 "running?");
	else if (code == EUCLEAN)
		pd_err_hint(err, "the file is not a paddock database or is damaged; move it aside");
	return r;
}

/* Reset a cached statement when it leaves scope, ready for the next use. */
static inline void stmt_resetp(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}
#define _cleanup_reset_ __attribute__((cleanup(stmt_resetp)))

/* Finalize a one-off statement when it leaves scope. */
static inline void stmt_finalizep(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}
#define _cleanup_finalize_ __attribute__((cleanup(stmt_finalizep)))

/* The cached statement id, prepared on first use. 0 or -errno. */
static int stmt_get(struct pd_state *st, enum stmt_id id, sqlite3_stmt **out, struct pd_err *err)
{
	if (!st->stmt[id] && sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&st->stmt[id], NULL) != SQLITE_OK) {
		st->stmt[id] = NULL;
		return sql_fail(st->db, err, "cannot prepare statement #%d", (int)id);
	}
	*out = st->stmt[id];
	return 0;
}

/* One value to bind: text (NULL binds SQL NULL) or integer. */
struct bindv {
	bool text;
	const char *s;
	int64_t i;
};
#define B_TEXT(x) { .text = true, .s = (x) }
#define B_INT(x) { .text = false, .i = (int64_t)(x) }

/* Bind v[0..n) to parameters 1..n of s. SQLite result code. */
static int bind_all(sqlite3_stmt *s, const struct bindv *v, size_t n)
{
	int rc = SQLITE_OK;
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		rc = v[i].text ? sqlite3_bind_text(s, (int)i + 1, v[i].s, -1, SQLITE_STATIC)
			       : sqlite3_bind_int64(s, (int)i + 1, v[i].i);
	return rc;
}
#define BIND(s, ...)                                        \
	bind_all((s), (const struct bindv[]){ __VA_ARGS__ }, \
		 sizeof((const struct bindv[]){ __VA_ARGS__ }) / sizeof(struct bindv))

/* Step a statement that returns no row. 0 or -errno. */
static int step_done(struct pd_state *st, sqlite3_stmt *s, const char *what, struct pd_err *err)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "%s", what);
	return 0;
}

/* Run constant SQL (no values in it). 0 or -errno. */
static int exec_sql(sqlite3 *db, const char *sql, const char *what, struct pd_err *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(db, err, "%s", what);
	return 0;
}

static int tx_begin(struct pd_state *st, struct pd_err *err)
{
	return exec_sql(st->db, "BEGIN IMMEDIATE", "cannot begin a transaction", err);
}

static int tx_commit(struct pd_state *st, struct pd_err *err)
{
	return exec_sql(st->db, "COMMIT", "cannot commit", err);
}

/* Best effort, on a path that already failed (and filled err): SQLite may
 * have rolled back by itself, and a failed rollback leaves nothing to do. */
static void tx_rollback(struct pd_state *st)
{
	if (!sqlite3_get_autocommit(st->db))
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Column i as a malloc'd string (NULL for SQL NULL). 0 or -ENOMEM. */
static int col_dup(sqlite3_stmt *s, int i, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return 0;
	const char *t = (const char *)sqlite3_column_text(s, i);
	if (!t)
		return -ENOMEM;
	*out = strdup(t);
	return *out ? 0 : -ENOMEM;
}

/* A one-row, one-integer query on the connection (PRAGMAs). 0 or -errno. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out, const char *what,
		     struct pd_err *err)
{
	_cleanup_finalize_ sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
		return sql_fail(db, err, "%s", what);
	*out = sqlite3_column_int64(s, 0);
	return 0;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- rows ---- */

typedef int (*row_read_fn)(sqlite3_stmt *s, void *row, struct pd_err *err);
typedef void (*row_free_fn)(void *row);

static int sb_read(sqlite3_stmt *s, void *row, struct pd_err *err)
{
	struct pd_sb_row *r = row;
	memset(r, 0, sizeof *r);
	int64_t state = sqlite3_column_int64(s, 2);
	if (col_dup(s, 1, &r->name) < 0 || col_dup(s, 3, &r->spec_yaml) < 0 ||
	    col_dup(s, 4, &r->image) < 0 || col_dup(s, 5, &r->repo_dir) < 0 ||
	    col_dup(s, 6, &r->base_commit) < 0 || col_dup(s, 12, &r->owner) < 0 ||
	    col_dup(s, 13, &r->start_commit) < 0) {
		pd_sb_row_free(r);
		return pd_err_set(err, ENOMEM, ST_LAYER, "cannot read a sandbox row");
	}
	if (!sb_state_ok(state)) {
		int ret = pd_err_set(err, EUCLEAN, ST_LAYER, "sandbox '%s' has unknown state %lld",
				     r->name ? r->name : "?", (long long)state);
		pd_sb_row_free(r);
		return ret;
	}
	r->id = sqlite3_column_int64(s, 0);
	r->state = (enum pd_sb_state)state;
	r->slot = (uint32_t)sqlite3_column_int64(s, 7);
	r->pid = (pid_t)sqlite3_column_int64(s, 8);
	r->pid_start = (uint64_t)sqlite3_column_int64(s, 9);
	r->created_at = sqlite3_column_int64(s, 10);
	r->started_at = sqlite3_column_int64(s, 11);
	return 0;
}

static int sess_read(sqlite3_stmt *s, void *row, struct pd_err *err)
{
	struct pd_sess_row *r = row;
	memset(r, 0, sizeof *r);
	int64_t state = sqlite3_column_int64(s, 4);
	r->sandbox_id = sqlite3_column_int64(s, 0);
	r->num = sqlite3_column_int64(s, 1);
	if (!sess_state_ok(state))
		return pd_err_set(err, EUCLEAN, ST_LAYER, "session %lld/%lld has unknown state %lld",
				  (long long)r->sandbox_id, (long long)r->num, (long long)state);
	if (col_dup(s, 2, &r->argv_json) < 0)
		return pd_err_set(err, ENOMEM, ST_LAYER, "cannot read a session row");
	r->tty = sqlite3_column_int64(s, 3) != 0;
	r->state = (enum pd_sess_state)state;
	r->pid = (pid_t)sqlite3_column_int64(s, 5);
	r->exit_code = (int)sqlite3_column_int64(s, 6);
	r->started_at = sqlite3_column_int64(s, 7);
	r->ended_at = sqlite3_column_int64(s, 8);
	return 0;
}

static int ev_read(sqlite3_stmt *s, void *row, struct pd_err *err)
{
	struct pd_event_row *r = row;
	memset(r, 0, sizeof *r);
	if (col_dup(s, 2, &r->sandbox) < 0 || col_dup(s, 3, &r->kind) < 0 ||
	    col_dup(s, 4, &r->detail_json) < 0) {
		pd_event_row_free(r);
		return pd_err_set(err, ENOMEM, ST_LAYER, "cannot read an event row");
	}
	r->id = sqlite3_column_int64(s, 0);
	r->ts_ms = sqlite3_column_int64(s, 1);
	return 0;
}

static void sb_free_v(void *r) { pd_sb_row_free(r); }
static void sess_free_v(void *r) { pd_sess_row_free(r); }
static void ev_free_v(void *r) { pd_event_row_free(r); }

/* Step a bound statement to the end, reading each row into a malloc'd array
 * of elem-sized rows. *out and *n are set only on success. 0 or -errno. */
static int collect(struct pd_state *st, sqlite3_stmt *s, size_t elem, row_read_fn rd,
		   row_free_fn fr, const char *what, void **out, size_t *n, struct pd_err *err)
{
	char *rows = NULL;
	size_t len = 0, cap = 0;
	int ret = 0, rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char *p = ncap <= SIZE_MAX / elem ? realloc(rows, ncap * elem) : NULL;
			if (!p) {
				ret = pd_err_set(err, ENOMEM, ST_LAYER, "%s: out of memory", what);
				goto out;
			}
			rows = p;
			cap = ncap;
		}
		if ((ret = rd(s, rows + len * elem, err)) < 0)
			goto out;
		len++;
	}
	if (rc != SQLITE_DONE)
		ret = sql_fail(st->db, err, "%s", what);
out:
	if (ret < 0) {
		for (size_t i = 0; i < len; i++)
			fr(rows + i * elem);
		free(rows);
		return ret;
	}
	*out = rows;
	*n = len;
	return 0;
}

/* ---- open, close, schema ---- */

/* Create the directory holding path, 0700, if it is missing. */
static int make_parent(const char *path, struct pd_err *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0; /* the working directory, or / */
	_cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return pd_err_set(err, ENOMEM, ST_LAYER, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return pd_err_errno(err, ST_LAYER, "cannot create directory %s", dir);
	struct stat sb;
	if (stat(dir, &sb) < 0)
		return pd_err_errno(err, ST_LAYER, "cannot stat %s", dir);
	if (!S_ISDIR(sb.st_mode))
		return pd_err_set(err, ENOTDIR, ST_LAYER, "%s is not a directory", dir);
	return 0;
}

/* Create the database file 0600 if it is missing; refuse a symlink or a
 * non-regular file; take group and other access away from an existing one.
 * The fd is closed before SQLite opens the file: closing a second fd on it
 * later would drop SQLite's POSIX locks. */
static int make_file(const char *path, struct pd_err *err)
{
	_cleanup_close_ int fd =
		open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ELOOP)
		return pd_err_set(err, ELOOP, ST_LAYER, "database %s is a symbolic link", path);
	if (fd < 0)
		return pd_err_errno(err, ST_LAYER, "cannot create database %s", path);
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return pd_err_errno(err, ST_LAYER, "cannot stat %s", path);
	if (!S_ISREG(sb.st_mode))
		return pd_err_set(err, EINVAL, ST_LAYER, "database %s is not a regular file", path);
	if ((sb.st_mode & 077) && fchmod(fd, 0600) < 0)
		return pd_err_errno(err, ST_LAYER, "cannot make %s private (mode 0600)", path);
	return 0;
}

static int check_version(const char *path, int64_t v, struct pd_err *err)
{
	if (v < 0 || v > ST_SCHEMA_VERSION) {
		pd_err_set(err, ENOTSUP, ST_LAYER,
			   "database %s has schema version %lld, newer than this paddock knows (%d)",
			   path, (long long)v, ST_SCHEMA_VERSION);
		return pd_err_hint(err, "run the paddock that wrote it, or move the database aside");
	}
	return 0;
}

/* Connection settings: busy timeout, defensive mode, WAL, foreign keys. The
 * version is checked first so that a newer database is left as it is. */
static int configure(sqlite3 *db, const char *path, struct pd_err *err)
{
	int64_t v = 0;
	int ret;
	sqlite3_extended_result_codes(db, 1);
	if (sqlite3_busy_timeout(db, ST_BUSY_MS) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL) != SQLITE_OK)
		return sql_fail(db, err, "cannot configure %s", path);
	char what[PATH_MAX + 64];
	snprintf(what, sizeof what, "cannot read the schema version of %s", path);
	if ((ret = query_int(db, "PRAGMA user_version", &v, what, err)) < 0 ||
	    (ret = check_version(path, v, err)) < 0)
		return ret;

	_cleanup_finalize_ sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		return sql_fail(db, err, "cannot set WAL mode on %s", path);
	const char *mode = (const char *)sqlite3_column_text(s, 0);
	if (!mode || strcasecmp(mode, "wal") != 0)
		return pd_err_set(err, ENOTSUP, ST_LAYER, "cannot set WAL mode on %s: mode is %s",
				  path, mode ? mode : "unknown");

	/* In WAL mode NORMAL syncs at checkpoints, not at every commit: a power
	 * cut may lose the last transactions (reconcile repairs what they
	 * described), never the database's integrity. FULL cost four fdatasync
	 * per exec. */
	if ((ret = exec_sql(db, "PRAGMA synchronous = NORMAL", "cannot set synchronous", err)) < 0)
		return ret;
	if ((ret = exec_sql(db, "PRAGMA foreign_keys = ON", "cannot enable foreign keys", err)) < 0 ||
	    (ret = query_int(db, "PRAGMA foreign_keys", &v, "cannot enable foreign keys", err)) < 0)
		return ret;
	if (v != 1)
		return pd_err_set(err, ENOTSUP, ST_LAYER, "this SQLite has no foreign key support");
	return 0;
}

/* Bring the schema to ST_SCHEMA_VERSION, in one transaction that re-reads
 * the version (another process may have migrated meanwhile). */
static int migrate(struct pd_state *st, const char *path, struct pd_err *err)
{
	int64_t v = 0;
	int ret;
	if ((ret = tx_begin(st, err)) < 0)
		return ret;
	if ((ret = query_int(st->db, "PRAGMA user_version", &v, "cannot read the schema version",
			     err)) < 0 ||
	    (ret = check_version(path, v, err)) < 0)
		goto fail;
	for (; v < ST_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
			ret = sql_fail(st->db, err, "cannot migrate %s from schema version %lld",
				       path, (long long)v);
			goto fail;
		}
	}
	if ((ret = tx_commit(st, err)) < 0)
		goto fail;
	return 0;
fail:
	tx_rollback(st);
	return ret;
}

int pd_state_open(const char *path, struct pd_state **out, struct pd_err *err)
{
	int ret;
	if (!path || !path[0])
		return pd_err_set(err, EINVAL, ST_LAYER, "no database path");
	if ((ret = make_parent(path, err)) < 0 || (ret = make_file(path, err)) < 0)
		return ret;

	struct pd_state *st = calloc(1, sizeof *st);
	if (!st)
		return pd_err_set(err, ENOMEM, ST_LAYER, "out of memory");
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		ret = st->db ? sql_fail(st->db, err, "cannot open %s", path)
			     : pd_err_set(err, ENOMEM, ST_LAYER, "cannot open %s: out of memory", path);
		pd_state_close(st);
		return ret;
	}
	if ((ret = configure(st->db, path, err)) < 0 || (ret = migrate(st, path, err)) < 0) {
		pd_state_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

void pd_state_close(struct pd_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < S__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	/* Every statement is finalized: close cannot find one still busy. */
	sqlite3_close(st->db);
	free(st);
}

/* ---- sandboxes ---- */

/* 1 if a sandbox is called name, 0 if not, or -errno. */
static int sb_exists(struct pd_state *st, const char *name, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SB_EXISTS, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_TEXT(name)) != SQLITE_OK)
		return sql_fail(st->db, err, "cannot look up sandbox '%s'", name);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sql_fail(st->db, err, "cannot look up sandbox '%s'", name);
}

static int sb_free_slot(struct pd_state *st, int64_t *slot, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SB_FREE_SLOT, &s, err);
	if (ret < 0)
		return ret;
	if (sqlite3_step(s) != SQLITE_ROW)
		return sql_fail(st->db, err, "cannot find a free uid slot");
	int64_t v = sqlite3_column_int64(s, 0);
	if (v < 0 || v >= (int64_t)ST_SLOTS) {
		pd_err_set(err, ENOSPC, ST_LAYER, "no free uid slot (all %u in use)",
			   (unsigned)ST_SLOTS);
		return pd_err_hint(err, "destroy sandboxes that are no longer needed");
	}
	*slot = v;
	return 0;
}

static int sb_insert_row(struct pd_state *st, const struct pd_sb_row *r, int64_t slot,
			 int64_t *id, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SB_INSERT, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_TEXT(r->name), B_INT(r->state), B_TEXT(r->spec_yaml), B_TEXT(r->image),
		 B_TEXT(r->repo_dir), B_TEXT(r->base_commit), B_INT(slot), B_INT(r->pid),
		 B_INT(r->pid_start), B_INT(r->created_at), B_INT(r->started_at),
		 B_TEXT(r->owner)) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot insert sandbox '%s'", r->name);
	*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int pd_state_sb_insert(struct pd_state *st, struct pd_sb_row *r, struct pd_err *err)
{
	int64_t slot = 0, id = 0;
	int ret = check_name(r->name, err);
	if (ret < 0)
		return ret;
	if (!sb_state_ok(r->state))
		return pd_err_set(err, EINVAL, ST_LAYER, "sandbox '%s': unknown state %d", r->name,
				  (int)r->state);
	if ((ret = tx_begin(st, err)) < 0)
		return ret;
	ret = sb_exists(st, r->name, err);
	if (ret > 0)
		ret = pd_err_set(err, EEXIST, ST_LAYER, "sandbox '%s' already exists", r->name);
	if (ret == 0 && (ret = sb_free_slot(st, &slot, err)) == 0 &&
	    (ret = sb_insert_row(st, r, slot, &id, err)) == 0)
		ret = tx_commit(st, err);
	if (ret < 0) {
		tx_rollback(st);
		return ret;
	}
	r->id = id;
	r->slot = (uint32_t)slot;
	return 0;
}

/* Mutable: state, spec_yaml, image, repo_dir, base_commit, pid, pid_start,
 * started_at. Fixed at insert: name, slot, created_at, owner. */
int pd_state_sb_update(struct pd_state *st, const struct pd_sb_row *r, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	if (!sb_state_ok(r->state))
		return pd_err_set(err, EINVAL, ST_LAYER, "sandbox %lld: unknown state %d",
				  (long long)r->id, (int)r->state);
	int ret = stmt_get(st, S_SB_UPDATE, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(r->id), B_INT(r->state), B_TEXT(r->spec_yaml), B_TEXT(r->image),
		 B_TEXT(r->repo_dir), B_TEXT(r->base_commit), B_INT(r->pid), B_INT(r->pid_start),
		 B_INT(r->started_at), B_TEXT(r->start_commit)) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot update sandbox %lld", (long long)r->id);
	if (sqlite3_changes(st->db) == 0)
		return pd_err_set(err, ENOENT, ST_LAYER, "no sandbox with id %lld", (long long)r->id);
	return 0;
}

int pd_state_sb_delete(struct pd_state *st, int64_t id, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SB_DELETE, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(id)) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot delete sandbox %lld", (long long)id);
	if (sqlite3_changes(st->db) == 0)
		return pd_err_set(err, ENOENT, ST_LAYER, "no sandbox with id %lld", (long long)id);
	return 0;
}

int pd_state_sb_get(struct pd_state *st, const char *name, struct pd_sb_row *out,
		    struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	if (!name_ok(name))
		return pd_err_set(err, ENOENT, ST_LAYER, "no such sandbox (invalid name)");
	int ret = stmt_get(st, S_SB_GET, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_TEXT(name)) != SQLITE_OK)
		return sql_fail(st->db, err, "cannot look up sandbox '%s'", name);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return pd_err_set(err, ENOENT, ST_LAYER, "no sandbox '%s'", name);
	if (rc != SQLITE_ROW)
		return sql_fail(st->db, err, "cannot look up sandbox '%s'", name);
	struct pd_sb_row r;
	if ((ret = sb_read(s, &r, err)) < 0)
		return ret;
	*out = r;
	return 0;
}

int pd_state_sb_list(struct pd_state *st, struct pd_sb_row **out, size_t *n,
		     struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SB_LIST, &s, err);
	if (ret < 0)
		return ret;
	void *rows = NULL;
	if ((ret = collect(st, s, sizeof **out, sb_read, sb_free_v, "cannot list sandboxes", &rows,
			   n, err)) < 0)
		return ret;
	*out = rows;
	return 0;
}

/* ---- sessions ---- */

/* argv_json: a non-empty JSON array of strings, at most ST_ARGV_MAX bytes. */
static int check_argv(const char *argv_json, struct pd_err *err)
{
	if (!argv_json || strnlen(argv_json, ST_ARGV_MAX + 1) > ST_ARGV_MAX)
		return pd_err_set(err, argv_json ? E2BIG : EINVAL, ST_LAYER,
				  "session argv missing or over %zu bytes", ST_ARGV_MAX);
	json_error_t jerr;
	json_t *j = json_loads(argv_json, JSON_REJECT_DUPLICATES, &jerr);
	bool ok = json_is_array(j) && json_array_size(j) > 0;
	for (size_t i = 0; ok && i < json_array_size(j); i++)
		ok = json_is_string(json_array_get(j, i));
	json_decref(j);
	if (!ok)
		return pd_err_set(err, EINVAL, ST_LAYER,
				  "session argv is not a non-empty JSON array of strings");
	return 0;
}

int pd_state_sess_insert(struct pd_state *st, struct pd_sess_row *r, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = check_argv(r->argv_json, err);
	if (ret < 0)
		return ret;
	if (!sess_state_ok(r->state))
		return pd_err_set(err, EINVAL, ST_LAYER, "session: unknown state %d", (int)r->state);
	if ((ret = stmt_get(st, S_SESS_INSERT, &s, err)) < 0)
		return ret;
	if (BIND(s, B_INT(r->sandbox_id), B_TEXT(r->argv_json), B_INT(r->tty), B_INT(r->state),
		 B_INT(r->pid), B_INT(r->exit_code), B_INT(r->started_at),
		 B_INT(r->ended_at)) != SQLITE_OK)
		return sql_fail(st->db, err, "cannot insert a session");
	if (sqlite3_step(s) != SQLITE_ROW) {
		if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
			return pd_err_set(err, ENOENT, ST_LAYER, "no sandbox with id %lld",
					  (long long)r->sandbox_id);
		return sql_fail(st->db, err, "cannot insert a session for sandbox %lld",
				(long long)r->sandbox_id);
	}
	int64_t num = sqlite3_column_int64(s, 0);
	/* RETURNING: the change is made by the first step; finish the statement. */
	if ((ret = step_done(st, s, "cannot insert a session", err)) < 0)
		return ret;
	r->num = num;
	return 0;
}

/* Mutable: state, pid, exit_code, started_at, ended_at. Fixed: argv, tty. */
int pd_state_sess_update(struct pd_state *st, const struct pd_sess_row *r, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	if (!sess_state_ok(r->state))
		return pd_err_set(err, EINVAL, ST_LAYER, "session: unknown state %d", (int)r->state);
	int ret = stmt_get(st, S_SESS_UPDATE, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(r->sandbox_id), B_INT(r->num), B_INT(r->state), B_INT(r->pid),
		 B_INT(r->exit_code), B_INT(r->started_at), B_INT(r->ended_at)) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot update session %lld/%lld",
				(long long)r->sandbox_id, (long long)r->num);
	if (sqlite3_changes(st->db) == 0)
		return pd_err_set(err, ENOENT, ST_LAYER, "no session %lld/%lld",
				  (long long)r->sandbox_id, (long long)r->num);
	return 0;
}

int pd_state_sess_list(struct pd_state *st, int64_t sandbox_id, struct pd_sess_row **out,
		       size_t *n, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SESS_LIST, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(sandbox_id)) != SQLITE_OK)
		return sql_fail(st->db, err, "cannot list sessions");
	void *rows = NULL;
	if ((ret = collect(st, s, sizeof **out, sess_read, sess_free_v, "cannot list sessions",
			   &rows, n, err)) < 0)
		return ret;
	*out = rows;
	return 0;
}

int pd_state_sess_mark_lost(struct pd_state *st, int64_t sandbox_id, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_SESS_LOST, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(sandbox_id), B_INT(PD_SESS_LOST), B_INT(now_s()),
		 B_INT(PD_SESS_RUNNING)) != SQLITE_OK)
		return sql_fail(st->db, err, "cannot mark sessions lost");
	char what[96];
	snprintf(what, sizeof what, "cannot mark sessions of sandbox %lld lost",
		 (long long)sandbox_id);
	return step_done(st, s, what, err);
}

/* ---- events ---- */

int pd_state_event(struct pd_state *st, const char *sandbox, const char *kind,
		   const char *detail_json, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	if (sandbox && !name_ok(sandbox))
		return pd_err_set(err, EINVAL, ST_LAYER, "event: invalid sandbox name");
	if (!kind || !kind[0] || strnlen(kind, ST_KIND_MAX + 1) > ST_KIND_MAX)
		return pd_err_set(err, EINVAL, ST_LAYER, "event: kind missing or over %d bytes",
				  ST_KIND_MAX);
	if (!detail_json)
		return pd_err_set(err, EINVAL, ST_LAYER, "event '%s': no detail", kind);
	if (strnlen(detail_json, ST_DETAIL_MAX + 1) > ST_DETAIL_MAX)
		return pd_err_set(err, E2BIG, ST_LAYER, "event '%s': detail over %zu bytes", kind,
				  ST_DETAIL_MAX);
	json_error_t jerr;
	json_t *j = json_loads(detail_json, JSON_REJECT_DUPLICATES, &jerr);
	bool parsed = j != NULL, obj = json_is_object(j);
	json_decref(j);
	if (!obj)
		return pd_err_set(err, EINVAL, ST_LAYER, "event '%s': detail is not a JSON object%s%s",
				  kind, parsed ? "" : ": ", parsed ? "" : jerr.text);

	int ret = stmt_get(st, S_EV_INSERT, &s, err);
	if (ret < 0)
		return ret;
	if (BIND(s, B_INT(now_ms()), B_TEXT(sandbox), B_TEXT(kind), B_TEXT(detail_json)) !=
		    SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot record event '%s'", kind);
	return 0;
}

int pd_state_events(struct pd_state *st, const char *sandbox, int64_t after_id, size_t limit,
		    struct pd_event_row **out, size_t *n, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, sandbox ? S_EV_ONE : S_EV_ALL, &s, err);
	if (ret < 0)
		return ret;
	/* LIMIT -1 is no limit in SQLite. */
	int64_t lim = limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
	int rc = sandbox ? BIND(s, B_INT(after_id), B_INT(lim), B_TEXT(sandbox))
			 : BIND(s, B_INT(after_id), B_INT(lim));
	if (rc != SQLITE_OK)
		return sql_fail(st->db, err, "cannot list events");
	void *rows = NULL;
	if ((ret = collect(st, s, sizeof **out, ev_read, ev_free_v, "cannot list events", &rows, n,
			   err)) < 0)
		return ret;
	*out = rows;
	return 0;
}

int pd_state_counts(struct pd_state *st, size_t *sandboxes, size_t *sessions,
		    struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_COUNTS, &s, err);
	if (ret < 0)
		return ret;
	if (sqlite3_step(s) != SQLITE_ROW)
		return sql_fail(st->db, err, "cannot count rows");
	if (sandboxes)
		*sandboxes = (size_t)sqlite3_column_int64(s, 0);
	if (sessions)
		*sessions = (size_t)sqlite3_column_int64(s, 1);
	return 0;
}

int pd_state_image_used(struct pd_state *st, const char *path, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	int ret = stmt_get(st, S_IMAGE_USED, &s, err);
	if (ret < 0)
		return ret;
	if (!path || !*path)
		return pd_err_set(err, EINVAL, ST_LAYER, "image: empty path");
	sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)time(NULL));
	if (sqlite3_step(s) != SQLITE_DONE)
		return sql_fail(st->db, err, "cannot record the use of image %s", path);
	return 0;
}

json_t *pd_state_images(struct pd_state *st, struct pd_err *err)
{
	_cleanup_reset_ sqlite3_stmt *s = NULL;
	if (stmt_get(st, S_IMAGE_LIST, &s, err) < 0)
		return NULL;
	json_t *a = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I}", "path",
						   (const char *)sqlite3_column_text(s, 0), "first_used",
						   (json_int_t)sqlite3_column_int64(s, 1), "last_used",
						   (json_int_t)sqlite3_column_int64(s, 2), "uses",
						   (json_int_t)sqlite3_column_int64(s, 3)));
	if (rc != SQLITE_DONE) {
		json_decref(a);
		sql_fail(st->db, err, "cannot list images");
		return NULL;
	}
	return a;
}
