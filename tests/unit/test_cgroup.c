/* test_cgroup.c: sandbox cgroups on the real kernel (needs root). Works on whichever cgroup
 * version pd_cgroup_create picks: the limit files are found through pd_cgroup_paths().
 * Every cgroup is named run-<our pid>-* and removed in the teardown, even after a failed
 * assertion; orphans of the fork bomb come back to us (child subreaper) and are reaped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "sandbox/cgroup.h"

#define MIB (1024ull * 1024)

struct fixture {
	struct pd_cgroup *cg[2];
	char extra[6][PATH_MAX]; /* cgroups made by hand, removed in teardown */
};

/* Format a path into buf (PATH_MAX bytes); a path that does not fit fails the test. */
static void __attribute__((format(printf, 2, 3))) pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && n < PATH_MAX);
}

/* Read a small file into buf without the trailing newline; -1 if unreadable. */
static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

/* The content of the first <dir>/<file> among the cgroup's paths, or NULL (into buf). */
static const char *limit_file(struct pd_cgroup *cg, const char *file, char *buf, size_t size)
{
	for (const char *const *p = pd_cgroup_paths(cg); *p; p++) {
		char path[PATH_MAX];
		pathf(path, "%s/%s", *p, file);
		if (read_text(path, buf, size) == 0)
			return buf;
	}
	return NULL;
}

/* Does path exist? */
static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Make a unique sandbox name for this test process. */
static const char *name_for(const char *what, char *buf, size_t size)
{
	snprintf(buf, size, "run-%d-%s", (int)getpid(), what);
	return buf;
}

/* Fork a child that waits until it has been attached to cg, then runs fn (never returns).
 * Returns the child's pid. */
static pid_t spawn_attached(struct pd_cgroup *cg, void (*fn)(void))
{
	int sync[2];
	struct pd_err err = { 0 };
	assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		close(sync[1]);
		if (read(sync[0], &c, 1) != 1)
			_exit(100);
		fn();
		_exit(101);
	}
	close(sync[0]);
	int r = pd_cgroup_attach(cg, pid, &err);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("attach: %s", err.msg);
	}
	assert_int_equal(write(sync[1], "g", 1), 1);
	close(sync[1]);
	return pid;
}

/* waitpid for one child; its status. */
static int wait_status(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return st;
}

/* Sleep until killed. */
static void child_sleep(void)
{
	for (;;)
		pause();
}

/* Fork until the pids limit says no: exit 0 on EAGAIN, 1 if the limit never bit. */
static void child_fork_bomb(void)
{
	for (int i = 0; i < 512; i++) {
		pid_t p = fork();
		if (p == 0)
			child_sleep();
		if (p < 0)
			_exit(errno == EAGAIN ? 0 : 2);
	}
	_exit(1);
}

/* Allocate and touch 256 MiB; exit 0 if the memory limit did not stop us. */
static void child_memory_hog(void)
{
	size_t size = 256 * MIB;
	volatile char *p = malloc(size);
	if (!p)
		_exit(3);
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	_exit(0);
}

/* Does /proc/<pid>/cgroup contain name? */
static bool proc_cgroup_mentions(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	return read_text(path, buf, sizeof buf) == 0 && strstr(buf, name);
}

/* pd_cgroup_create that must succeed (the error is shown otherwise). */
static struct pd_cgroup *create_ok(const char *name, const struct pd_limits *lim)
{
	struct pd_cgroup *cg = NULL;
	struct pd_err err = { 0 };
	int r = pd_cgroup_create(name, lim, &cg, &err);
	if (r < 0)
		fail_msg("pd_cgroup_create(%s): %s (%s) [%s]", name, err.msg, strerror(err.code),
			 err.hint);
	assert_non_null(cg);
	assert_non_null(pd_cgroup_paths(cg)[0]);
	return cg;
}

/* Orphans (the fork bomb's children) are reparented to us, so teardown can reap them. */
static int group_setup(void **state)
{
	(void)state;
	return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

/* A fresh fixture per test. */
static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

/* Destroy what a test left (after a failure too), reap every child, remove extra dirs. */
static int teardown(void **state)
{
	struct fixture *fx = *state;
	for (size_t i = 0; i < 2; i++)
		pd_cgroup_destroy(fx->cg[i]);
	const char *extra[7] = { 0 };
	for (size_t i = 0, n = 0; i < 6; i++)
		if (fx->extra[i][0])
			extra[n++] = fx->extra[i];
	pd_cgroup_remove_paths(extra);
	for (int tries = 0; tries < 100;) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0)
			break; /* ECHILD: all reaped */
		if (p == 0) {
			usleep(10000);
			tries++;
		}
	}
	free(fx);
	return 0;
}

/* Bad names are refused before anything is touched; NULL is safe where documented. */
static void test_name_validation(void **state)
{
	(void)state;
	static const struct pd_limits lim = { .pids = 8 };
	const char *bad[] = { "../x", "A", "", "a/b", "a.b", "run 1",
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pd_cgroup *cg = (struct pd_cgroup *)&lim; /* sentinel: must stay */
		struct pd_err err = { 0 };
		assert_int_equal(pd_cgroup_create(bad[i], &lim, &cg, &err), -EINVAL);
		assert_ptr_equal(cg, &lim);
		assert_string_equal(err.layer, "cgroup");
	}
	struct pd_cgroup *cg = NULL;
	assert_int_equal(pd_cgroup_create(NULL, &lim, &cg, NULL), -EINVAL);
	assert_null(cg);
	pd_cgroup_destroy(NULL);
	assert_int_equal(pd_cgroup_remove_paths(NULL), 0);
}

/* Limits land in the files, attach moves a process in, destroy kills it and cleans up. */
static void test_limits_attach_destroy(void **state)
{
	struct fixture *fx = *state;
	char name[64], buf[256];
	const struct pd_limits lim = { .memory = 64 * MIB, .pids = 32, .cpus_milli = 500 };
	struct pd_cgroup *cg = fx->cg[0] = create_ok(name_for("unittest", name, sizeof name), &lim);

	/* 1. the limits are on disk, in v2 or in v1 files */
	if (limit_file(cg, "memory.max", buf, sizeof buf)) {
		assert_string_equal(buf, "67108864");
		assert_string_equal(limit_file(cg, "pids.max", buf, sizeof buf), "32");
		assert_string_equal(limit_file(cg, "cpu.max", buf, sizeof buf), "50000 100000");
		assert_true(pd_cgroup_v2_fd(cg) >= 0);
	} else {
		assert_string_equal(limit_file(cg, "memory.limit_in_bytes", buf, sizeof buf),
				    "67108864");
		assert_string_equal(limit_file(cg, "pids.max", buf, sizeof buf), "32");
		assert_string_equal(limit_file(cg, "cpu.cfs_quota_us", buf, sizeof buf), "50000");
		assert_string_equal(limit_file(cg, "cpu.cfs_period_us", buf, sizeof buf), "100000");
		assert_int_equal(pd_cgroup_v2_fd(cg), -1);
	}
	for (const char *const *p = pd_cgroup_paths(cg); *p; p++)
		assert_non_null(strstr(*p, "/paddock/run-"));

	/* 2. an attached child shows up in the cgroup */
	pid_t pid = spawn_attached(cg, child_sleep);
	assert_true(proc_cgroup_mentions(pid, name));
	assert_int_equal(pd_cgroup_oom_killed(cg), 0);

	/* 3. destroy kills it and removes every directory */
	char paths[8][PATH_MAX];
	size_t n = 0;
	for (const char *const *p = pd_cgroup_paths(cg); *p && n < 8; p++)
		pathf(paths[n++], "%s", *p);
	pd_cgroup_destroy(cg);
	fx->cg[0] = NULL;
	int st = wait_status(pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	for (size_t i = 0; i < n; i++)
		assert_false(exists(paths[i]));
}

/* Without limits there is still a cgroup that holds (and kills) the sandbox. On a cgroup2
 * leaf, a child started with clone3(CLONE_INTO_CGROUP) lands in it. */
static void test_no_limits(void **state)
{
	struct fixture *fx = *state;
	char name[64];
	struct pd_cgroup *cg = fx->cg[0] = create_ok(name_for("nolimit", name, sizeof name), NULL);
	struct statfs sfs;
	assert_int_equal(statfs(pd_cgroup_paths(cg)[0], &sfs), 0);
	pid_t pid;
	if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
		int fd = pd_cgroup_v2_fd(cg);
		assert_true(fd >= 0);
		struct clone_args args = {
			.flags = CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)fd,
		};
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
		assert_true(pid >= 0);
		if (pid == 0)
			child_sleep();
	} else {
		assert_int_equal(pd_cgroup_v2_fd(cg), -1);
		pid = spawn_attached(cg, child_sleep);
	}
	assert_true(proc_cgroup_mentions(pid, name));
	char path[PATH_MAX];
	pathf(path, "%s", pd_cgroup_paths(cg)[0]);
	pd_cgroup_destroy(cg);
	fx->cg[0] = NULL;
	int st = wait_status(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_false(exists(path));
}

/* pids.max stops a fork bomb inside; the test process can still fork. */
static void test_fork_bomb(void **state)
{
	struct fixture *fx = *state;
	char name[64];
	const struct pd_limits lim = { .pids = 16 };
	struct pd_cgroup *cg = fx->cg[0] = create_ok(name_for("forkbomb", name, sizeof name), &lim);

	int st = wait_status(spawn_attached(cg, child_fork_bomb));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0); /* fork failed with EAGAIN */

	/* we are not in the sandbox's cgroup: fork still works here */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(7);
	st = wait_status(pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}

/* The memory limit gets a hog OOM-killed, and pd_cgroup_oom_killed() sees it. */
static void test_memory_hog(void **state)
{
	struct fixture *fx = *state;
	char name[64];
	const struct pd_limits lim = { .memory = 32 * MIB };
	struct pd_cgroup *cg = fx->cg[0] = create_ok(name_for("memhog", name, sizeof name), &lim);

	assert_int_equal(pd_cgroup_oom_killed(cg), 0);
	int st = wait_status(spawn_attached(cg, child_memory_hog));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(pd_cgroup_oom_killed(cg), 1);
}

/* A limit the kernel refuses fails the whole creation and leaves no directory behind. */
static void test_failure_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	char name[64], parents[8][PATH_MAX];
	const struct pd_limits probe = { .memory = 64 * MIB, .pids = 8 };
	struct pd_cgroup *cg = fx->cg[0] = create_ok(name_for("probe", name, sizeof name), &probe);
	size_t n = 0;
	for (const char *const *p = pd_cgroup_paths(cg); *p && n < 8; p++) {
		pathf(parents[n], "%s", *p);
		*strrchr(parents[n++], '/') = '\0';
	}

	const struct pd_limits bad = { .memory = 64 * MIB, .pids = 1ull << 40 };
	struct pd_cgroup *out = NULL;
	struct pd_err err = { 0 };
	assert_true(pd_cgroup_create(name_for("half", name, sizeof name), &bad, &out, &err) < 0);
	assert_null(out);
	assert_string_equal(err.layer, "cgroup");
	assert_non_null(strstr(err.msg, "pids.max"));
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		pathf(path, "%s/%s", parents[i], name);
		assert_false(exists(path));
	}
}

/* A sandbox that made cgroups below its leaf and moved into them is still killed and removed,
 * with limits (v1 on hybrid hosts) and without (the v2 leaf there). */
static void test_nested_cgroups(void **state)
{
	struct fixture *fx = *state;
	char name[64], paths[8][PATH_MAX];
	const struct pd_limits lim = { .pids = 64 };
	fx->cg[0] = create_ok(name_for("nest1", name, sizeof name), &lim);
	fx->cg[1] = create_ok(name_for("nest2", name, sizeof name), NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_sleep();
	size_t n = 0;
	for (size_t i = 0; i < 2; i++)
		for (const char *const *p = pd_cgroup_paths(fx->cg[i]); *p && n < 8; p++) {
			char sub[PATH_MAX], val[16];
			pathf(paths[n++], "%s", *p);
			pathf(sub, "%s/inner", *p);
			assert_int_equal(mkdir(sub, 0755), 0);
			pathf(sub, "%s/inner/deeper", *p);
			assert_int_equal(mkdir(sub, 0755), 0);
			pathf(sub, "%s/inner/deeper/cgroup.procs", *p);
			int fd = open(sub, O_WRONLY | O_CLOEXEC);
			assert_true(fd >= 0);
			int len = snprintf(val, sizeof val, "%d", (int)pid);
			assert_int_equal(write(fd, val, (size_t)len), len);
			close(fd);
		}
	assert_true(proc_cgroup_mentions(pid, "/inner/deeper"));
	for (size_t i = 0; i < 2; i++) {
		pd_cgroup_destroy(fx->cg[i]);
		fx->cg[i] = NULL;
	}
	int st = wait_status(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	for (size_t i = 0; i < n; i++)
		assert_false(exists(paths[i]));
}

/* gc removes empty run-<dead pid>-* leaves, and keeps ours, foreign names and leaves that
 * still hold processes; pd_cgroup_remove_paths() then clears those. */
static void test_gc(void **state)
{
	struct fixture *fx = *state;
	char name[64];
	const struct pd_limits lim = { .pids = 64 };
	fx->cg[0] = create_ok(name_for("gc1", name, sizeof name), &lim);
	fx->cg[1] = create_ok(name_for("gc2", name, sizeof name), NULL);

	pid_t dead = 999999;
	while (kill(dead, 0) == 0 || errno != ESRCH)
		dead++;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_sleep();
	char stale[2][PATH_MAX], val[16];
	int len = snprintf(val, sizeof val, "%d", (int)pid);
	for (size_t i = 0; i < 2; i++) {
		char parent[PATH_MAX];
		pathf(parent, "%s", pd_cgroup_paths(fx->cg[i])[0]);
		*strrchr(parent, '/') = '\0';
		pathf(stale[i], "%s/run-%d-x", parent, (int)dead);
		pathf(fx->extra[2 * i], "%s", stale[i]);
		pathf(fx->extra[2 * i + 1], "%s/keep-%d-%zu", parent, (int)getpid(), i);
		assert_true(mkdir(stale[i], 0755) == 0 || errno == EEXIST);
		assert_int_equal(mkdir(fx->extra[2 * i + 1], 0755), 0);

		char *busy = fx->extra[4 + i], procs[PATH_MAX];
		pathf(busy, "%s/run-%d-busy%zu", parent, (int)dead, i);
		assert_int_equal(mkdir(busy, 0755), 0);
		pathf(procs, "%s/cgroup.procs", busy);
		int fd = open(procs, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, val, (size_t)len), len);
		close(fd);
	}

	pd_cgroup_gc();
	for (size_t i = 0; i < 2; i++) {
		assert_false(exists(stale[i]));
		assert_true(exists(fx->extra[2 * i + 1]));
		assert_true(exists(pd_cgroup_paths(fx->cg[i])[0]));
		assert_true(exists(fx->extra[4 + i]));
	}
	const char *busy[] = { fx->extra[4], fx->extra[5], NULL };
	assert_int_equal(pd_cgroup_remove_paths(busy), 0);
	int st = wait_status(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_false(exists(busy[0]));
	assert_false(exists(busy[1]));
}

/* Exit 77 (the usual "skipped" status) when not root: cgroups cannot be created. */
int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_cgroup: needs root, skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_name_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_attach_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_bomb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_hog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_cgroups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
