/* test_state.c: paddockd's SQLite state store. Each test gets a fresh
 * directory from mkdtemp under /tmp, with the database one level below it
 * (so pd_state_open has a directory to create), removed in the teardown.
 * Some checks look at the file through a second, plain sqlite3 connection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "daemon/state.h"

struct fx {
	char dir[64];        /* mkdtemp directory */
	char path[PATH_MAX]; /* <dir>/db/paddock.db */
	struct pd_state *st; /* closed in the teardown if set */
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/paddock-state-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/db/paddock.db", f->dir);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	pd_state_close(f->st);
	int r = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return r;
}

/* Open f->path into f->st; any failure fails the test with the message. */
static struct pd_state *open_ok(struct fx *f)
{
	struct pd_err err = { 0 };
	int r = pd_state_open(f->path, &f->st, &err);
	if (r != 0)
		fail_msg("pd_state_open: %d %s: %s", r, err.layer, err.msg);
	assert_non_null(f->st);
	return f->st;
}

static void reopen(struct fx *f)
{
	pd_state_close(f->st);
	f->st = NULL;
	open_ok(f);
}

#define CHECK(call)                                                                      \
	do {                                                                             \
		struct pd_err err_ = { 0 };                                              \
		int r_ = (call);                                                         \
		if (r_ != 0)                                                             \
			fail_msg("%s: %d %s: %s", #call, r_, err_.layer, err_.msg);      \
	} while (0)
/* Inside CHECK, the call passes &err_. */
#define E (&err_)

/* A sandbox row with every field set; strings are static (never freed). */
static struct pd_sb_row sb_row(const char *name)
{
	return (struct pd_sb_row){
		.name = (char *)name,
		.state = PD_SB_CREATING,
		.spec_yaml = (char *)"image: debian\n",
		.image = (char *)"/var/lib/paddock/images/debian",
		.repo_dir = (char *)"/home/u/repo",
		.base_commit = (char *)"0123456789abcdef0123456789abcdef01234567",
		.slot = 9999, /* ignored by insert */
		.pid = 0,
		.pid_start = 0,
		.created_at = 1700000000,
		.started_at = 0,
		.owner = (char *)"1000:1000",
	};
}

static int64_t insert_sb(struct fx *f, const char *name, uint32_t *slot)
{
	struct pd_sb_row r = sb_row(name);
	CHECK(pd_state_sb_insert(f->st, &r, E));
	assert_true(r.id > 0);
	if (slot)
		*slot = r.slot;
	return r.id;
}

static int64_t insert_sess(struct fx *f, int64_t sb, const char *argv)
{
	struct pd_sess_row r = { .sandbox_id = sb, .argv_json = (char *)argv, .tty = true,
				 .state = PD_SESS_RUNNING, .pid = 4242, .started_at = 1700000100 };
	CHECK(pd_state_sess_insert(f->st, &r, E));
	return r.num;
}

static void counts(struct fx *f, size_t want_sb, size_t want_sess)
{
	size_t nsb = 12345, nsess = 12345;
	CHECK(pd_state_counts(f->st, &nsb, &nsess, E));
	assert_int_equal(nsb, want_sb);
	assert_int_equal(nsess, want_sess);
}

static mode_t mode_of(const char *path)
{
	struct stat sb;
	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_mode & 07777;
}

/* One text value from a query on a separate, plain sqlite3 connection (caller frees). */
static char *side_query(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	const unsigned char *t = sqlite3_column_text(s, 0);
	char *v = strdup(t ? (const char *)t : "(null)");
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_non_null(v);
	return v;
}

/* Run SQL on a separate connection (creating the file if needed). */
static void side_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(rc, SQLITE_OK);
}

/* ---- tests ---- */

static void test_open_creates_private_files(void **state)
{
	struct fx *f = *state;
	char dbdir[PATH_MAX + 8], wal[PATH_MAX + 8], shm[PATH_MAX + 8];
	snprintf(dbdir, sizeof dbdir, "%s/db", f->dir);
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	snprintf(shm, sizeof shm, "%s-shm", f->path);

	open_ok(f);
	assert_int_equal(mode_of(dbdir), 0700);
	assert_int_equal(mode_of(f->path), 0600);
	/* While open in WAL mode the side files exist and are as private. */
	assert_int_equal(mode_of(wal), 0600);
	assert_int_equal(mode_of(shm), 0600);
	/* A fresh database is empty. */
	counts(f, 0, 0);
}

static void test_wal_and_schema(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	char *mode = side_query(f->path, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	char *ver = side_query(f->path, "PRAGMA user_version");
	assert_string_equal(ver, "3");
	free(ver);
	char *idx = side_query(f->path, "SELECT sql FROM sqlite_master WHERE type = 'index' AND "
					"tbl_name = 'events' AND sql IS NOT NULL");
	assert_non_null(strstr(idx, "events (sandbox, id)"));
	free(idx);
	char *tables = side_query(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
					   "sqlite_master WHERE type = 'table' ORDER BY name)");
	assert_string_equal(tables, "events,images,sandboxes,sessions,sqlite_sequence");
	free(tables);
}

/* A version-1 database (before images) is migrated, its rows kept. */
static void test_migrate_from_v1(void **state)
{
	struct fx *f = *state;
	char dbdir[PATH_MAX + 8];
	snprintf(dbdir, sizeof dbdir, "%s/db", f->dir);
	assert_int_equal(mkdir(dbdir, 0700), 0);
	side_exec(f->path,
		  "CREATE TABLE sandboxes (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
		  " state INTEGER NOT NULL, spec_yaml TEXT, image TEXT, repo_dir TEXT,"
		  " base_commit TEXT, slot INTEGER UNIQUE NOT NULL, pid INTEGER NOT NULL DEFAULT 0,"
		  " pid_start INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL DEFAULT 0,"
		  " started_at INTEGER NOT NULL DEFAULT 0, owner TEXT);"
		  "CREATE TABLE sessions (sandbox_id INTEGER NOT NULL REFERENCES sandboxes(id) ON DELETE"
		  " CASCADE, num INTEGER NOT NULL, argv_json TEXT NOT NULL, tty INTEGER NOT NULL"
		  " DEFAULT 0, state INTEGER NOT NULL, pid INTEGER NOT NULL DEFAULT 0, exit_code"
		  " INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL DEFAULT 0, ended_at"
		  " INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (sandbox_id, num));"
		  "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL,"
		  " sandbox TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL);"
		  "CREATE INDEX events_sandbox_id ON events (sandbox, id);"
		  "INSERT INTO sandboxes (name, state, slot) VALUES ('old', 2, 0);"
		  "PRAGMA user_version = 1;");
	open_ok(f);
	char *ver = side_query(f->path, "PRAGMA user_version");
	assert_string_equal(ver, "3");
	free(ver);
	struct pd_sb_row r = { 0 };
	struct pd_err err;
	assert_int_equal(pd_state_sb_get(f->st, "old", &r, &err), 0);
	pd_sb_row_free(&r);
	/* images: one row per path, uses counted */
	assert_int_equal(pd_state_image_used(f->st, "/img/a", &err), 0);
	assert_int_equal(pd_state_image_used(f->st, "/img/a", &err), 0);
	assert_int_equal(pd_state_image_used(f->st, "/img/b", &err), 0);
	assert_true(pd_state_image_used(f->st, "", &err) < 0);
	json_t *imgs = pd_state_images(f->st, &err);
	assert_non_null(imgs);
	assert_int_equal(json_array_size(imgs), 2);
	json_t *x;
	size_t i;
	json_int_t uses_a = 0;
	json_array_foreach(imgs, i, x)
		if (!strcmp(json_string_value(json_object_get(x, "path")), "/img/a"))
			uses_a = json_integer_value(json_object_get(x, "uses"));
	assert_int_equal(uses_a, 2);
	json_decref(imgs);
}

static void test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	int64_t id = insert_sb(f, "keep", NULL);
	insert_sess(f, id, "[\"bash\"]");
	CHECK(pd_state_event(f->st, "keep", "create", "{\"by\":\"test\"}", E));

	reopen(f);
	/* A second open of an up-to-date database migrates nothing and still works. */
	reopen(f);

	struct pd_sb_row got = { 0 };
	CHECK(pd_state_sb_get(f->st, "keep", &got, E));
	assert_int_equal(got.id, id);
	assert_string_equal(got.owner, "1000:1000");
	pd_sb_row_free(&got);
	counts(f, 1, 1);
	struct pd_event_row *ev = NULL;
	size_t n = 0;
	CHECK(pd_state_events(f->st, NULL, 0, 0, &ev, &n, E));
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].kind, "create");
	assert_string_equal(ev[0].detail_json, "{\"by\":\"test\"}");
	pd_event_rows_free(ev, n);
	assert_int_equal(mode_of(f->path), 0600);
}

static void test_sb_insert_get_update_list_delete(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	open_ok(f);

	struct pd_sb_row r = sb_row("beta");
	r.repo_dir = NULL; /* NULLs survive the round trip */
	r.base_commit = NULL;
	CHECK(pd_state_sb_insert(f->st, &r, E));
	assert_true(r.id > 0);
	assert_int_equal(r.slot, 0);
	insert_sb(f, "alpha", NULL);
	insert_sb(f, "gamma-1", NULL);

	struct pd_sb_row got = { 0 };
	CHECK(pd_state_sb_get(f->st, "beta", &got, E));
	assert_int_equal(got.id, r.id);
	assert_string_equal(got.name, "beta");
	assert_int_equal(got.state, PD_SB_CREATING);
	assert_string_equal(got.spec_yaml, "image: debian\n");
	assert_string_equal(got.image, "/var/lib/paddock/images/debian");
	assert_null(got.repo_dir);
	assert_null(got.base_commit);
	assert_int_equal(got.slot, 0);
	assert_int_equal(got.pid, 0);
	assert_int_equal(got.created_at, 1700000000);
	assert_int_equal(got.started_at, 0);
	assert_string_equal(got.owner, "1000:1000");
	pd_sb_row_free(&got);
	assert_null(got.name); /* row_free leaves the row empty */

	/* Update the mutable columns; pid_start above INT64_MAX round-trips. */
	struct pd_sb_row up = r;
	up.state = PD_SB_RUNNING;
	up.spec_yaml = (char *)"image: alpine\n";
	up.image = (char *)"/img/alpine";
	up.repo_dir = (char *)"/home/u/other";
	up.base_commit = (char *)"fedcba";
	up.pid = 31337;
	up.pid_start = UINT64_MAX - 5;
	up.started_at = 1700000500;
	CHECK(pd_state_sb_update(f->st, &up, E));
	CHECK(pd_state_sb_get(f->st, "beta", &got, E));
	assert_int_equal(got.state, PD_SB_RUNNING);
	assert_string_equal(got.spec_yaml, "image: alpine\n");
	assert_string_equal(got.image, "/img/alpine");
	assert_string_equal(got.repo_dir, "/home/u/other");
	assert_string_equal(got.base_commit, "fedcba");
	assert_int_equal(got.pid, 31337);
	assert_true(got.pid_start == UINT64_MAX - 5);
	assert_int_equal(got.started_at, 1700000500);
	assert_int_equal(got.created_at, 1700000000); /* not mutable */
	assert_int_equal(got.slot, 0);
	pd_sb_row_free(&got);
	assert_string_equal(pd_sb_state_name(PD_SB_RUNNING), "running");

	/* List: ordered by name. */
	struct pd_sb_row *rows = NULL;
	size_t n = 0;
	CHECK(pd_state_sb_list(f->st, &rows, &n, E));
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].name, "alpha");
	assert_string_equal(rows[1].name, "beta");
	assert_string_equal(rows[2].name, "gamma-1");
	assert_int_equal(rows[1].pid, 31337);
	pd_sb_rows_free(rows, n);

	/* Delete; then it is gone and a second delete or update says so. */
	CHECK(pd_state_sb_delete(f->st, r.id, E));
	assert_int_equal(pd_state_sb_get(f->st, "beta", &got, &err), -ENOENT);
	assert_string_equal(err.layer, "state");
	assert_null(got.name); /* output untouched on failure */
	assert_int_equal(pd_state_sb_delete(f->st, r.id, &err), -ENOENT);
	assert_int_equal(pd_state_sb_update(f->st, &up, &err), -ENOENT);
	counts(f, 2, 0);

	/* Invalid names and states are refused before SQL. */
	struct pd_sb_row bad = sb_row("Bad_Name");
	assert_int_equal(pd_state_sb_insert(f->st, &bad, &err), -EINVAL);
	bad = sb_row("-lead");
	assert_int_equal(pd_state_sb_insert(f->st, &bad, &err), -EINVAL);
	bad = sb_row("x");
	bad.state = (enum pd_sb_state)42;
	assert_int_equal(pd_state_sb_insert(f->st, &bad, &err), -EINVAL);
	char longname[66];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	bad = sb_row(longname);
	assert_int_equal(pd_state_sb_insert(f->st, &bad, &err), -EINVAL);
	longname[64] = '\0'; /* 64 characters is the maximum */
	insert_sb(f, longname, NULL);
	counts(f, 3, 0);
}

static void test_sb_duplicate_name(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	open_ok(f);
	insert_sb(f, "dup", NULL);
	struct pd_sb_row r = sb_row("dup");
	r.id = -7;
	assert_int_equal(pd_state_sb_insert(f->st, &r, &err), -EEXIST);
	assert_int_equal(err.code, EEXIST);
	assert_string_equal(err.layer, "state");
	assert_non_null(strstr(err.msg, "sandbox 'dup' already exists"));
	assert_int_equal(r.id, -7); /* not touched */
	assert_int_equal(r.slot, 9999);
	counts(f, 1, 0);
	/* The failed insert left no transaction open: the next one works. */
	uint32_t slot = 77;
	insert_sb(f, "other", &slot);
	assert_int_equal(slot, 1);
}

static void test_slot_lowest_free(void **state)
{
	struct fx *f = *state;
	open_ok(f);
	uint32_t sa, sb, sc, sd, se, sf;
	int64_t a = insert_sb(f, "a", &sa);
	int64_t b = insert_sb(f, "b", &sb);
	insert_sb(f, "c", &sc);
	assert_int_equal(sa, 0);
	assert_int_equal(sb, 1);
	assert_int_equal(sc, 2);

	CHECK(pd_state_sb_delete(f->st, b, E));
	insert_sb(f, "d", &sd);
	assert_int_equal(sd, 1); /* the hole is reused */

	CHECK(pd_state_sb_delete(f->st, a, E));
	insert_sb(f, "e", &se);
	assert_int_equal(se, 0); /* the lowest hole first */
	insert_sb(f, "f", &sf);
	assert_int_equal(sf, 3); /* no hole: one past the top */

	/* The slot is stored, not just returned. */
	struct pd_sb_row got = { 0 };
	CHECK(pd_state_sb_get(f->st, "d", &got, E));
	assert_int_equal(got.slot, 1);
	pd_sb_row_free(&got);
}

static void test_sessions(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	open_ok(f);
	int64_t a = insert_sb(f, "sa", NULL);
	int64_t b = insert_sb(f, "sb", NULL);

	assert_int_equal(insert_sess(f, a, "[\"bash\"]"), 1);
	assert_int_equal(insert_sess(f, a, "[\"make\",\"-j2\"]"), 2);
	assert_int_equal(insert_sess(f, b, "[\"sh\"]"), 1); /* numbered per sandbox */
	assert_int_equal(insert_sess(f, a, "[\"true\"]"), 3);
	assert_int_equal(insert_sess(f, b, "[\"sh\",\"-c\",\"x\"]"), 2);
	counts(f, 2, 5);

	/* Update session 2 of a: exited with 3. */
	struct pd_sess_row up = { .sandbox_id = a, .num = 2, .state = PD_SESS_EXITED, .pid = 0,
				  .exit_code = 3, .started_at = 1700000100, .ended_at = 1700000200 };
	CHECK(pd_state_sess_update(f->st, &up, E));
	up.num = 99;
	assert_int_equal(pd_state_sess_update(f->st, &up, &err), -ENOENT);

	/* The running ones of a become lost; b is not touched. */
	int64_t before = (int64_t)time(NULL);
	CHECK(pd_state_sess_mark_lost(f->st, a, E));

	struct pd_sess_row *rows = NULL;
	size_t n = 0;
	CHECK(pd_state_sess_list(f->st, a, &rows, &n, E));
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(rows[i].sandbox_id, a);
		assert_int_equal(rows[i].num, (int64_t)i + 1);
		assert_true(rows[i].tty);
	}
	assert_string_equal(rows[0].argv_json, "[\"bash\"]");
	assert_string_equal(rows[1].argv_json, "[\"make\",\"-j2\"]");
	assert_int_equal(rows[0].state, PD_SESS_LOST);
	assert_true(rows[0].ended_at >= before);
	assert_int_equal(rows[0].pid, 4242);
	assert_int_equal(rows[1].state, PD_SESS_EXITED);
	assert_int_equal(rows[1].exit_code, 3);
	assert_int_equal(rows[1].ended_at, 1700000200); /* not re-marked */
	assert_int_equal(rows[2].state, PD_SESS_LOST);
	pd_sess_rows_free(rows, n);
	assert_string_equal(pd_sess_state_name(PD_SESS_LOST), "lost");

	CHECK(pd_state_sess_list(f->st, b, &rows, &n, E));
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].state, PD_SESS_RUNNING);
	assert_int_equal(rows[1].state, PD_SESS_RUNNING);
	assert_int_equal(rows[1].ended_at, 0);
	pd_sess_rows_free(rows, n);

	/* Refused: unknown sandbox, argv that is not a non-empty array of strings. */
	struct pd_sess_row bad = { .sandbox_id = 424242, .argv_json = (char *)"[\"x\"]",
				   .state = PD_SESS_RUNNING };
	bad.num = -1;
	assert_int_equal(pd_state_sess_insert(f->st, &bad, &err), -ENOENT);
	assert_int_equal(bad.num, -1);
	bad.sandbox_id = a;
	const char *bad_argv[] = { "[]", "[1]", "{\"a\":1}", "\"sh\"", "[\"sh\"", "", NULL };
	for (size_t i = 0; i < sizeof bad_argv / sizeof bad_argv[0]; i++) {
		bad.argv_json = (char *)bad_argv[i];
		assert_int_equal(pd_state_sess_insert(f->st, &bad, &err), -EINVAL);
	}
	counts(f, 2, 5);

	/* Deleting a sandbox takes its sessions with it, and only its. */
	CHECK(pd_state_sb_delete(f->st, a, E));
	counts(f, 1, 2);
	CHECK(pd_state_sess_list(f->st, a, &rows, &n, E));
	assert_int_equal(n, 0);
	pd_sess_rows_free(rows, n);
	/* Numbering of a new sandbox starts again at 1. */
	int64_t c = insert_sb(f, "sc", NULL);
	assert_int_equal(insert_sess(f, c, "[\"bash\"]"), 1);
	counts(f, 2, 3);
}

static void test_events(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	open_ok(f);
	int64_t t0 = (int64_t)time(NULL) * 1000;

	CHECK(pd_state_event(f->st, "ea", "create", "{\"n\":1}", E));
	CHECK(pd_state_event(f->st, "eb", "create", "{\"n\":2}", E));
	CHECK(pd_state_event(f->st, NULL, "reconcile", "{}", E));
	CHECK(pd_state_event(f->st, "ea", "start", "{\"n\":4, \"x\": [1, {\"y\": null}]}", E));
	CHECK(pd_state_event(f->st, "ea", "stop", "{\"n\":5}", E));

	struct pd_event_row *ev = NULL;
	size_t n = 0;
	CHECK(pd_state_events(f->st, NULL, 0, 0, &ev, &n, E));
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		assert_true(ev[i].id > ev[i - 1].id); /* oldest first */
	assert_true(ev[0].ts_ms >= t0 && ev[0].ts_ms < t0 + 60000);
	assert_null(ev[2].sandbox);
	assert_string_equal(ev[2].kind, "reconcile");
	assert_string_equal(ev[2].detail_json, "{}");
	int64_t id2 = ev[1].id;
	pd_event_rows_free(ev, n);

	/* Only one sandbox's. */
	CHECK(pd_state_events(f->st, "ea", 0, 0, &ev, &n, E));
	assert_int_equal(n, 3);
	assert_string_equal(ev[0].kind, "create");
	assert_string_equal(ev[1].kind, "start");
	assert_string_equal(ev[2].kind, "stop");
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ev[i].sandbox, "ea");
	pd_event_rows_free(ev, n);

	/* After an id, with a limit, and both with a sandbox. */
	CHECK(pd_state_events(f->st, NULL, id2, 0, &ev, &n, E));
	assert_int_equal(n, 3);
	assert_string_equal(ev[0].kind, "reconcile");
	pd_event_rows_free(ev, n);
	CHECK(pd_state_events(f->st, NULL, 0, 2, &ev, &n, E));
	assert_int_equal(n, 2);
	assert_int_equal(ev[1].id, id2);
	pd_event_rows_free(ev, n);
	CHECK(pd_state_events(f->st, "ea", id2, 1, &ev, &n, E));
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].kind, "start");
	pd_event_rows_free(ev, n);
	CHECK(pd_state_events(f->st, "nobody", 0, 0, &ev, &n, E));
	assert_int_equal(n, 0);
	pd_event_rows_free(ev, n);

	/* Detail must be a JSON object; nothing is recorded otherwise. */
	const char *bad[] = { "[1]", "\"s\"", "42", "null", "not json", "{\"a\":1} trailing",
			      "{\"a\":1,\"a\":2}", "", NULL };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		assert_int_equal(pd_state_event(f->st, "ea", "x", bad[i], &err), -EINVAL);
		assert_string_equal(err.layer, "state");
		assert_true(err.msg[0] != '\0');
	}
	/* Kind required; oversize detail refused. */
	assert_int_equal(pd_state_event(f->st, "ea", "", "{}", &err), -EINVAL);
	assert_int_equal(pd_state_event(f->st, "ea", NULL, "{}", &err), -EINVAL);
	size_t big = (64u << 10) + 16;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	huge[big] = '\0';
	assert_int_equal(pd_state_event(f->st, "ea", "x", huge, &err), -E2BIG);
	free(huge);

	CHECK(pd_state_events(f->st, NULL, 0, 0, &ev, &n, E));
	assert_int_equal(n, 5);
	pd_event_rows_free(ev, n);

	/* Events are the audit log: they outlive the sandbox. */
	int64_t id = insert_sb(f, "ea", NULL);
	CHECK(pd_state_sb_delete(f->st, id, E));
	CHECK(pd_state_events(f->st, "ea", 0, 0, &ev, &n, E));
	assert_int_equal(n, 3);
	pd_event_rows_free(ev, n);
}

static void test_newer_version_refused(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	char dbdir[PATH_MAX + 8];
	snprintf(dbdir, sizeof dbdir, "%s/db", f->dir);
	assert_int_equal(mkdir(dbdir, 0700), 0);
	side_exec(f->path, "CREATE TABLE future (x); PRAGMA user_version = 7;");

	struct pd_state *st = (struct pd_state *)&err; /* must stay as it is */
	assert_int_equal(pd_state_open(f->path, &st, &err), -ENOTSUP);
	assert_ptr_equal(st, (struct pd_state *)&err);
	assert_string_equal(err.layer, "state");
	assert_non_null(strstr(err.msg, "schema version 7"));
	assert_non_null(strstr(err.msg, "newer"));
	assert_true(err.hint[0] != '\0');

	/* Left untouched: same version, not switched to WAL, no tables added. */
	char *v = side_query(f->path, "PRAGMA user_version");
	assert_string_equal(v, "7");
	free(v);
	v = side_query(f->path, "PRAGMA journal_mode");
	assert_string_equal(v, "delete");
	free(v);
	v = side_query(f->path, "SELECT count(*) FROM sqlite_master");
	assert_string_equal(v, "1");
	free(v);
}

static void test_file_checks(void **state)
{
	struct fx *f = *state;
	struct pd_err err = { 0 };
	char dbdir[PATH_MAX + 8], target[PATH_MAX + 16];
	snprintf(dbdir, sizeof dbdir, "%s/db", f->dir);
	snprintf(target, sizeof target, "%s/elsewhere.db", f->dir);
	assert_int_equal(mkdir(dbdir, 0755), 0);

	/* A symlink in place of the database is refused, and nothing is created. */
	assert_int_equal(symlink(target, f->path), 0);
	struct pd_state *st = NULL;
	assert_int_equal(pd_state_open(f->path, &st, &err), -ELOOP);
	assert_null(st);
	assert_int_equal(access(target, F_OK), -1);
	assert_int_equal(unlink(f->path), 0);

	/* A file that is not a database is refused with a hint. */
	int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	const char junk[] = "this is not an SQLite database, not at all, really it is not....";
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	memset(&err, 0, sizeof err);
	assert_true(pd_state_open(f->path, &st, &err) < 0);
	assert_null(st);
	assert_string_equal(err.layer, "state");
	assert_true(err.hint[0] != '\0');
	/* ... but it was made private on the way. */
	assert_int_equal(mode_of(f->path), 0600);
	assert_int_equal(unlink(f->path), 0);

	/* An existing empty file readable by others is made 0600 and used. */
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	open_ok(f);
	assert_int_equal(mode_of(f->path), 0600);
	insert_sb(f, "ok", NULL);
	counts(f, 1, 0);

	/* A missing parent of the directory is an error, not a crash. */
	struct pd_state *st2 = NULL;
	char deep[PATH_MAX + 32];
	snprintf(deep, sizeof deep, "%s/no/such/x.db", f->dir);
	assert_int_equal(pd_state_open(deep, &st2, &err), -ENOENT);
	assert_null(st2);
	assert_int_equal(pd_state_open("", &st2, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_private_files, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_wal_and_schema, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sb_insert_get_update_list_delete, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_sb_duplicate_name, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_slot_lowest_free, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sessions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_events, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_newer_version_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_checks, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
