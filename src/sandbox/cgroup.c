/* cgroup.c: one cgroup per sandbox, on cgroup v2 when its root offers every controller the
 * limits need, on the v1 hierarchies otherwise (hybrid hosts mount both).
 *
 * Layout: <mount>/paddock/<name> in each hierarchy used, always under the hierarchy root and
 * never below our own cgroup, so a sandbox does not count against whatever limits the caller
 * itself runs under. The "paddock" parents are shared between runs and are never removed.
 *
 * The removal path (pd_cgroup_remove_paths and what it calls) sticks to open/read/write/
 * kill/rmdir/nanosleep on stack buffers, so a watcher forked from a threaded parent can run
 * it; everything else is ordinary library code. */
#include "sandbox/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

#define CG_LAYER "cgroup"
#define CG_PARENT "paddock"
#define CG_NAME_MAX 64
#define CG_MAX_DIRS 4          /* v1: freezer, memory, pids, cpu */
#define CG_MAX_MOUNTS 32       /* cgroup mounts we look at in mountinfo */
#define CG_MAX_DEPTH 8         /* nested cgroups a sandbox could have made below its leaf */
#define CG_CPU_PERIOD 100000   /* us */
#define CG_CPU_MIN_QUOTA 1000  /* us: the kernel refuses a smaller quota */
#define CG_REMOVE_MS 2000      /* total time pd_cgroup_remove_paths may wait */
#define CG_FREEZE_MS 200       /* of which waiting for a freeze to settle */
#define CG_POLL_MS 10

enum {
	CTL_MEMORY = 1u << 0,
	CTL_PIDS = 1u << 1,
	CTL_CPU = 1u << 2,
	CTL_FREEZER = 1u << 3, /* v1 only: v2 has cgroup.freeze in every cgroup */
};

static const struct {
	unsigned bit;
	const char *name; /* controller name in mountinfo and cgroup.controllers */
	const char *flag; /* the option that asks for it, for error messages */
} ctl_table[] = {
	{ CTL_MEMORY, "memory", "--memory" },
	{ CTL_PIDS, "pids", "--pids" },
	{ CTL_CPU, "cpu", "--cpus" },
	{ CTL_FREEZER, "freezer", NULL },
};

struct cg_mount {
	char *dir;    /* mount point, unescaped */
	bool v2;
	unsigned ctl; /* v1: controllers of the hierarchy; v2: those in the root's controllers */
};

struct cg_mounts {
	struct cg_mount m[CG_MAX_MOUNTS];
	size_t n;
};

struct pd_cgroup {
	bool v2;
	int v2_fd;                     /* leaf directory on v2, else -1 */
	const char *mem_dir;           /* one of paths: where the memory files are, or NULL */
	char *paths[CG_MAX_DIRS + 1];  /* leaf dirs we created, NULL-terminated */
	size_t n;
};

/* ---- async-signal-safe helpers (used by the removal path) ---- */

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms milliseconds, through signals. */
static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Write val to file (relative to dfd, or a path with AT_FDCWD) in one write(2).
 * 0 or -errno. */
static int write_at(int dfd, const char *file, const char *val)
{
	_cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(val);
	ssize_t w = write(fd, val, n);
	if (w < 0)
		return -errno;
	return (size_t)w == n ? 0 : -EIO;
}

/* Read up to size-1 bytes of a small file into buf, NUL-terminated.
 * Length or -errno. */
static ssize_t read_at(int dfd, const char *file, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len < size - 1) {
		ssize_t r = read(fd, buf + len, size - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Find "key N" at the start of a line of a flat-keyed cgroup file.
 * 0 with *val set, or -ENOENT. */
static int keyed_u64(const char *text, const char *key, uint64_t *val)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) != 0 || p[klen] != ' ')
			continue;
		uint64_t v = 0;
		for (p += klen + 1; *p >= '0' && *p <= '9'; p++)
			v = v * 10 + (uint64_t)(*p - '0');
		*val = v;
		return 0;
	}
	return -ENOENT;
}

/* Read the pids in dfd's cgroup.procs and, if sig is non-zero, send it to each one.
 * Pids we cannot see (0: another pid namespace) and our own are never signalled; *self_in
 * (if non-NULL) says whether ours is listed. Number of pids listed, or -errno. */
static int scan_procs(int dfd, int sig, bool *self_in)
{
	_cleanup_close_ int fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pid_t self = getpid();
	char buf[1024];
	long cur = -1; /* the number being parsed; it may straddle two reads */
	int count = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		for (ssize_t i = 0; i <= r; i++) {
			bool end = i == r;
			if (!end && buf[i] >= '0' && buf[i] <= '9') {
				long d = buf[i] - '0';
				cur = cur < 0 ? d : (cur < INT_MAX / 10 ? cur * 10 + d : cur);
				continue;
			}
			if (end && r > 0)
				break; /* keep cur: the number may go on in the next read */
			if (cur >= 0) {
				count++;
				if (cur == self && self_in)
					*self_in = true;
				if (sig && cur > 0 && cur != self)
					kill((pid_t)cur, sig);
			}
			cur = -1;
		}
		if (r == 0)
			return count;
	}
}

/* Is the cgroup at dfd frozen (v1 freezer.state, or v2 cgroup.events "frozen 1")? */
static bool is_frozen(int dfd, bool v1)
{
	char buf[256];
	uint64_t v = 0;
	if (v1)
		return read_at(dfd, "freezer.state", buf, sizeof buf) >= 0 &&
		       strncmp(buf, "FROZEN", 6) == 0;
	return read_at(dfd, "cgroup.events", buf, sizeof buf) >= 0 &&
	       keyed_u64(buf, "frozen", &v) == 0 && v == 1;
}

/* Freeze so nothing can fork while we look, SIGKILL every member, thaw so they die (a v1
 * frozen task only acts on SIGKILL once thawed). */
static void freeze_kill_thaw(int dfd, bool v1, int64_t deadline)
{
	const char *file = v1 ? "freezer.state" : "cgroup.freeze";
	if (write_at(dfd, file, v1 ? "FROZEN" : "1") < 0) {
		scan_procs(dfd, SIGKILL, NULL);
		return;
	}
	int64_t until = now_ms() + CG_FREEZE_MS;
	if (until > deadline)
		until = deadline;
	while (!is_frozen(dfd, v1) && now_ms() < until)
		sleep_ms(CG_POLL_MS);
	scan_procs(dfd, SIGKILL, NULL);
	write_at(dfd, file, v1 ? "THAWED" : "0");
}

/* First pass over one cgroup: kill everything in it and below, with the strongest tool the
 * directory offers (cgroup.kill, then a freezer, then plain signals). If we are in it
 * ourselves (directly: a child cgroup is not checked), only signals to the others:
 * cgroup.kill would kill us and a freeze would never be undone. */
static void kill_dir(const char *path, int64_t deadline)
{
	_cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool self_in = false;
	if (dfd < 0)
		return;
	if (scan_procs(dfd, 0, &self_in) >= 0 && self_in) {
		scan_procs(dfd, SIGKILL, NULL);
		return;
	}
	if (write_at(dfd, "cgroup.kill", "1") == 0)
		return;
	if (faccessat(dfd, "freezer.state", F_OK, 0) == 0)
		freeze_kill_thaw(dfd, true, deadline);
	else if (faccessat(dfd, "cgroup.freeze", F_OK, 0) == 0)
		freeze_kill_thaw(dfd, false, deadline);
	else
		scan_procs(dfd, SIGKILL, NULL);
}

static int remove_tree(char *path, size_t len, int depth, int64_t deadline);

/* Remove the child cgroups of path (open as dfd), depth first. 0 or the first -errno. */
static int remove_children(int dfd, char *path, size_t len, int depth, int64_t deadline)
{
	char buf[2048] __attribute__((aligned(8)));
	int ret = 0;
	for (;;) {
		ssize_t n = getdents64(dfd, buf, sizeof buf);
		if (n < 0)
			return -errno;
		if (n == 0)
			return ret;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
			off += de->d_reclen;
			if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			size_t nlen = strlen(de->d_name);
			if (len + 1 + nlen >= PATH_MAX) {
				ret = ret ? ret : -ENAMETOOLONG;
				continue;
			}
			path[len] = '/';
			memcpy(path + len + 1, de->d_name, nlen + 1);
			int r = remove_tree(path, len + 1 + nlen, depth + 1, deadline);
			path[len] = '\0';
			if (r < 0 && ret == 0)
				ret = r;
		}
	}
}

/* Empty and remove the cgroup at path (a PATH_MAX buffer holding len bytes; extended and
 * restored while visiting children), retrying until the deadline while it is busy.
 * 0 when it is gone, else -errno. */
static int remove_tree(char *path, size_t len, int depth, int64_t deadline)
{
	_cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (depth < CG_MAX_DEPTH)
		remove_children(dfd, path, len, depth, deadline);
	for (;;) {
		scan_procs(dfd, SIGKILL, NULL);
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		int r = -errno;
		if (r != -EBUSY || now_ms() >= deadline)
			return r;
		sleep_ms(CG_POLL_MS);
	}
}

/* Kill every process in the given cgroup directories, then remove them (children first),
 * waiting at most CG_REMOVE_MS in total. A directory already gone counts as removed.
 * 0 if all are gone, else the first -errno. Fork-safe: no allocation, no stdio. */
int pd_cgroup_remove_paths(const char *const *paths)
{
	if (!paths)
		return 0;
	/* 0. the common case: the pid namespace is gone, the leaves are empty.
	 * rmdir refuses (EBUSY) a cgroup with a process or a child in it, so
	 * trying it first is safe and skips a freeze/kill/thaw of nothing. */
	bool all_gone = true;
	for (size_t i = 0; paths[i]; i++)
		if (rmdir(paths[i]) < 0 && errno != ENOENT)
			all_gone = false;
	if (all_gone)
		return 0;
	int64_t deadline = now_ms() + CG_REMOVE_MS;
	/* 1. kill everywhere first: on v1 the freezer leaf stops everything at once */
	for (size_t i = 0; paths[i]; i++)
		kill_dir(paths[i], deadline);
	/* 2. then wait for each directory to empty and remove it */
	int ret = 0;
	for (size_t i = 0; paths[i]; i++) {
		char path[PATH_MAX];
		size_t len = strlen(paths[i]);
		int r = -ENAMETOOLONG;
		if (len < sizeof path) {
			memcpy(path, paths[i], len + 1);
			r = remove_tree(path, len, 0, deadline);
		}
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

/* ---- discovery ---- */

/* Names of cgroups we create: [a-z0-9-], 1..CG_NAME_MAX characters. */
static bool name_valid(const char *name)
{
	if (!name)
		return false;
	size_t n = 0;
	for (const char *p = name; *p; p++, n++)
		if (n == CG_NAME_MAX || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
					  *p == '-'))
			return false;
	return n > 0;
}

/* Controller bits for a list of names separated by any of seps; only those in ctl_table. */
static unsigned ctl_parse(char *list, const char *seps, bool v2)
{
	unsigned ctl = 0;
	char *save = NULL;
	for (char *t = strtok_r(list, seps, &save); t; t = strtok_r(NULL, seps, &save))
		for (size_t i = 0; i < ARRAY_SIZE(ctl_table); i++)
			if (strcmp(t, ctl_table[i].name) == 0 &&
			    !(v2 && ctl_table[i].bit == CTL_FREEZER))
				ctl |= ctl_table[i].bit;
	return ctl;
}

/* Decode mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Split one mountinfo line in place: mount point (field 5), and after the "-" separator the
 * fs type and super options. false when the line does not have them. */
static bool mountinfo_split(char *line, char **mnt, char **fstype, char **opts)
{
	char *save = NULL;
	int i = 0, after = -1;
	*mnt = *fstype = *opts = NULL;
	for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save), i++) {
		if (i == 4)
			*mnt = t;
		else if (i > 5 && after < 0 && strcmp(t, "-") == 0)
			after = 0;
		else if (after == 0)
			*fstype = t, after++;
		else if (after == 1)
			after++; /* source */
		else if (after == 2)
			*opts = t, after++;
	}
	return *mnt && *fstype && *opts;
}

/* Free the mount list (the struct itself is the caller's). */
static void mounts_free(struct cg_mounts *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		free(ms->m[i].dir);
	ms->n = 0;
}

/* Controllers listed in a v2 mount's root cgroup.controllers (0 if unreadable). */
static unsigned v2_controllers(const char *mnt)
{
	char path[PATH_MAX], buf[1024];
	if (snprintf(path, sizeof path, "%s/cgroup.controllers", mnt) >= (int)sizeof path ||
	    read_at(AT_FDCWD, path, buf, sizeof buf) < 0)
		return 0;
	return ctl_parse(buf, " \n", true);
}

/* Collect the cgroup and cgroup2 mounts of our mount namespace from /proc/self/mountinfo. */
static int mounts_load(struct cg_mounts *ms, struct pd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return pd_err_errno(err, CG_LAYER, "cannot open /proc/self/mountinfo");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (ms->n < CG_MAX_MOUNTS && getline(&line, &cap, f) > 0) {
		char *mnt, *fstype, *opts;
		if (!mountinfo_split(line, &mnt, &fstype, &opts))
			continue;
		bool v2 = strcmp(fstype, "cgroup2") == 0;
		if (!v2 && strcmp(fstype, "cgroup") != 0)
			continue;
		unescape_octal(mnt);
		struct cg_mount *m = &ms->m[ms->n];
		m->dir = strdup(mnt);
		if (!m->dir) {
			mounts_free(ms);
			return pd_err_set(err, ENOMEM, CG_LAYER, "reading /proc/self/mountinfo");
		}
		m->v2 = v2;
		m->ctl = v2 ? v2_controllers(mnt) : ctl_parse(opts, ",", false);
		ms->n++;
	}
	return 0;
}

/* The first cgroup2 mount whose root offers every controller in need, or NULL. */
static const struct cg_mount *pick_v2(const struct cg_mounts *ms, unsigned need)
{
	for (size_t i = 0; i < ms->n; i++)
		if (ms->m[i].v2 && (ms->m[i].ctl & need) == need)
			return &ms->m[i];
	return NULL;
}

/* The first v1 hierarchy carrying controller bit, or NULL. */
static const struct cg_mount *v1_mount(const struct cg_mounts *ms, unsigned bit)
{
	for (size_t i = 0; i < ms->n; i++)
		if (!ms->m[i].v2 && (ms->m[i].ctl & bit))
			return &ms->m[i];
	return NULL;
}

/* Union of the controllers of all mounts of one version. */
static unsigned mounts_ctl(const struct cg_mounts *ms, bool v2)
{
	unsigned ctl = 0;
	for (size_t i = 0; i < ms->n; i++)
		if (ms->m[i].v2 == v2)
			ctl |= ms->m[i].ctl;
	return ctl;
}

/* Index in ctl_table of bit (the first bit set in a mask). */
static size_t ctl_index(unsigned bit)
{
	size_t i = 0;
	while (i < ARRAY_SIZE(ctl_table) - 1 && !(ctl_table[i].bit & bit))
		i++;
	return i;
}

/* The error for limits no single cgroup version can apply. It names a controller and its
 * option: one that exists nowhere if any, else one missing from v2 (v2 is what paddock
 * prefers; it does not split a sandbox across versions). */
static int missing_ctl_error(const struct cg_mounts *ms, unsigned need, struct pd_err *err)
{
	unsigned v1 = mounts_ctl(ms, false), v2 = mounts_ctl(ms, true);
	unsigned nowhere = need & ~v1 & ~v2;
	size_t c = ctl_index(nowhere ? nowhere : (need & ~v2 ? need & ~v2 : need & ~v1));
	size_t o = ctl_index(need & ~v1);
	int r;
	if (nowhere)
		r = pd_err_set(err, EOPNOTSUPP, CG_LAYER,
			       "no cgroup hierarchy has the %s controller needed for %s",
			       ctl_table[c].name, ctl_table[c].flag);
	else
		r = pd_err_set(err, EOPNOTSUPP, CG_LAYER,
			       "cgroup v2 lacks the %s controller needed for %s and cgroup v1 "
			       "lacks %s (for %s): a sandbox's limits must all be on one version",
			       ctl_table[c].name, ctl_table[c].flag, ctl_table[o].name,
			       ctl_table[o].flag);
	pd_err_hint(err, "enable the %s controller (cgroup v2: cgroup.subtree_control; v1: mount "
			 "it) or drop the limit", ctl_table[c].name);
	return r;
}

/* ---- creation ---- */

/* Write val to dir/file. 0, or -errno with err naming the file. */
static int cg_write(const char *dir, const char *file, const char *val, struct pd_err *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
		return pd_err_set(err, ENAMETOOLONG, CG_LAYER, "path too long: %s/%s", dir, file);
	int r = write_at(AT_FDCWD, path, val);
	if (r < 0)
		return pd_err_set(err, -r, CG_LAYER, "cannot write \"%s\" to %s", val, path);
	return 0;
}

/* cg_write of a decimal number. */
static int cg_write_u64(const char *dir, const char *file, uint64_t v, struct pd_err *err)
{
	char buf[24];
	snprintf(buf, sizeof buf, "%" PRIu64, v);
	return cg_write(dir, file, buf, err);
}

/* Does dir/file exist? */
static bool cg_has(const char *dir, const char *file)
{
	char path[PATH_MAX];
	return snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path &&
	       access(path, F_OK) == 0;
}

/* mkdir <mnt>/paddock if missing; the path in *out (caller frees). */
static int make_parent(const char *mnt, char **out, struct pd_err *err)
{
	char *p = NULL;
	if (asprintf(&p, "%s/" CG_PARENT, mnt) < 0)
		return pd_err_set(err, ENOMEM, CG_LAYER, "creating the paddock cgroup");
	if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		int r = pd_err_errno(err, CG_LAYER, "cannot create %s", p);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* mkdir <parent>/<name> and record it in cg->paths (so failures later remove it).
 * An existing directory is an error: it belongs to someone else. */
static int make_leaf(struct pd_cgroup *cg, const char *parent, const char *name,
		     const char **out, struct pd_err *err)
{
	_cleanup_free_ char *p = NULL;
	if (cg->n == CG_MAX_DIRS)
		return pd_err_set(err, E2BIG, CG_LAYER, "too many cgroup hierarchies");
	if (asprintf(&p, "%s/%s", parent, name) < 0)
		return pd_err_set(err, ENOMEM, CG_LAYER, "creating cgroup %s", name);
	if (mkdir(p, 0755) < 0) {
		int e = errno;
		int r = pd_err_set(err, e, CG_LAYER, "cannot create %s", p);
		if (e == EEXIST)
			pd_err_hint(err, "another sandbox uses this name, or a stale one was left "
					 "behind: remove the directory");
		return r;
	}
	*out = cg->paths[cg->n++] = steal_ptr(&p);
	return 0;
}

/* Make the controllers in need available to the children of dir (a v2 cgroup), writing
 * only those not already enabled: the write fails on a non-root cgroup with processes. */
static int v2_enable(const char *dir, unsigned need, struct pd_err *err)
{
	char path[PATH_MAX], cur[1024], req[64] = "";
	if (!need)
		return 0;
	if (snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir) >= (int)sizeof path)
		return pd_err_set(err, ENAMETOOLONG, CG_LAYER, "path too long: %s", dir);
	ssize_t r = read_at(AT_FDCWD, path, cur, sizeof cur);
	if (r < 0)
		return pd_err_set(err, (int)-r, CG_LAYER, "cannot read %s", path);
	unsigned missing = need & ~ctl_parse(cur, " \n", true);
	for (size_t i = 0; i < ARRAY_SIZE(ctl_table); i++)
		if (missing & ctl_table[i].bit) {
			strcat(req, req[0] ? " +" : "+");
			strcat(req, ctl_table[i].name);
		}
	if (!req[0])
		return 0;
	int w = write_at(AT_FDCWD, path, req);
	if (w < 0) {
		pd_err_set(err, -w, CG_LAYER, "cannot write \"%s\" to %s", req, path);
		pd_err_hint(err, "a non-root cgroup with processes in it cannot delegate "
				 "controllers; run paddock from a cgroup that allows it");
		return w;
	}
	return 0;
}

/* cpu.max / cpu.cfs_quota_us for a share in thousandths of a CPU, per CG_CPU_PERIOD. */
static int cpu_quota(uint64_t milli, uint64_t *quota, struct pd_err *err)
{
	if (milli > UINT64_MAX / (CG_CPU_PERIOD / 1000))
		return pd_err_set(err, EINVAL, CG_LAYER, "cpu limit too large: %" PRIu64 " milli",
				  milli);
	*quota = milli * (CG_CPU_PERIOD / 1000);
	if (*quota < CG_CPU_MIN_QUOTA)
		*quota = CG_CPU_MIN_QUOTA;
	return 0;
}

/* v2: <mnt>/paddock/<name> with the needed controllers enabled above it, then the limits. */
static int v2_setup(struct pd_cgroup *cg, const struct cg_mount *m, const char *name,
		    unsigned need, const struct pd_limits *lim, struct pd_err *err)
{
	_cleanup_free_ char *parent = NULL;
	const char *leaf;
	int r;
	cg->v2 = true;
	if ((r = make_parent(m->dir, &parent, err)) < 0 || (r = v2_enable(m->dir, need, err)) < 0 ||
	    (r = v2_enable(parent, need, err)) < 0 ||
	    (r = make_leaf(cg, parent, name, &leaf, err)) < 0)
		return r;
	cg->mem_dir = leaf; /* memory.events exists whenever the controller is enabled */
	cg->v2_fd = open(leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->v2_fd < 0)
		return pd_err_errno(err, CG_LAYER, "cannot open %s", leaf);
	if (lim->memory) {
		if ((r = cg_write_u64(leaf, "memory.max", lim->memory, err)) < 0)
			return r;
		if (cg_has(leaf, "memory.swap.max") &&
		    (r = cg_write(leaf, "memory.swap.max", "0", err)) < 0)
			return r;
	}
	if (lim->pids && (r = cg_write_u64(leaf, "pids.max", lim->pids, err)) < 0)
		return r;
	if (lim->cpus_milli) {
		uint64_t quota = 0;
		char val[48];
		if ((r = cpu_quota(lim->cpus_milli, &quota, err)) < 0)
			return r;
		snprintf(val, sizeof val, "%" PRIu64 " %d", quota, CG_CPU_PERIOD);
		if ((r = cg_write(leaf, "cpu.max", val, err)) < 0)
			return r;
	}
	return 0;
}

/* v1: one leaf per hierarchy we use (co-mounted controllers share one), the freezer's first
 * so removal freezes before anything else; then the limits. */
static int v1_setup(struct pd_cgroup *cg, const struct cg_mounts *ms, const char *name,
		    unsigned need, const struct pd_limits *lim, struct pd_err *err)
{
	static const unsigned order[] = { CTL_FREEZER, CTL_MEMORY, CTL_PIDS, CTL_CPU };
	const char *dir[ARRAY_SIZE(ctl_table)] = { 0 };
	const struct cg_mount *mnt[ARRAY_SIZE(ctl_table)] = { 0 };
	unsigned have = mounts_ctl(ms, false), want = need | (have & CTL_FREEZER);
	int r;

	/* Without limits or a freezer, still make one cgroup so removal can find the sandbox. */
	for (size_t i = 1; !want && i < ARRAY_SIZE(order); i++)
		want = have & order[i];
	if (!want) {
		r = pd_err_set(err, ENOENT, CG_LAYER, "no cgroup hierarchy to hold the sandbox");
		pd_err_hint(err, "mount cgroup2 (or the v1 freezer) under /sys/fs/cgroup");
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		size_t c = ctl_index(order[i]);
		if (!(want & order[i]))
			continue;
		mnt[c] = v1_mount(ms, order[i]);
		if (!mnt[c]) /* the caller checked that needed controllers are mounted */
			return pd_err_set(err, ENOENT, CG_LAYER, "no v1 hierarchy for %s",
					  ctl_table[c].name);
		for (size_t j = 0; j < ARRAY_SIZE(ctl_table); j++)
			if (j != c && mnt[j] == mnt[c] && dir[j])
				dir[c] = dir[j];
		if (dir[c])
			continue;
		_cleanup_free_ char *parent = NULL;
		if ((r = make_parent(mnt[c]->dir, &parent, err)) < 0 ||
		    (r = make_leaf(cg, parent, name, &dir[c], err)) < 0)
			return r;
	}

	const char *d = dir[ctl_index(CTL_MEMORY)];
	cg->mem_dir = d;
	if (lim->memory) {
		if ((r = cg_write_u64(d, "memory.limit_in_bytes", lim->memory, err)) < 0)
			return r;
		/* memory+swap: absent without swap accounting, EINVAL where the kernel refuses */
		struct pd_err tmp;
		r = cg_write_u64(d, "memory.memsw.limit_in_bytes", lim->memory, &tmp);
		if (r < 0 && r != -ENOENT && r != -EINVAL) {
			if (err)
				*err = tmp;
			return r;
		}
	}
	d = dir[ctl_index(CTL_PIDS)];
	if (lim->pids && (r = cg_write_u64(d, "pids.max", lim->pids, err)) < 0)
		return r;
	d = dir[ctl_index(CTL_CPU)];
	if (lim->cpus_milli) {
		uint64_t quota = 0;
		if ((r = cpu_quota(lim->cpus_milli, &quota, err)) < 0 ||
		    (r = cg_write_u64(d, "cpu.cfs_period_us", CG_CPU_PERIOD, err)) < 0 ||
		    (r = cg_write_u64(d, "cpu.cfs_quota_us", quota, err)) < 0)
			return r;
	}
	return 0;
}

/* Create the sandbox's cgroup(s) and apply lim (NULL: no limits); see cgroup.h. Uses v2 when
 * a cgroup2 root offers every controller the limits need, else v1. On failure nothing we
 * created is left and *out is untouched. */
int pd_cgroup_create(const char *name, const struct pd_limits *lim, struct pd_cgroup **out,
		     struct pd_err *err)
{
	static const struct pd_limits no_limits;
	struct cg_mounts ms = { 0 };
	int r;

	if (!name_valid(name))
		return pd_err_set(err, EINVAL, CG_LAYER,
				  "invalid cgroup name \"%s\": want 1 to %d of [a-z0-9-]",
				  name ? name : "(null)", CG_NAME_MAX);
	if (!lim)
		lim = &no_limits;
	unsigned need = (lim->memory ? CTL_MEMORY : 0) | (lim->pids ? CTL_PIDS : 0) |
			(lim->cpus_milli ? CTL_CPU : 0);
	if ((r = mounts_load(&ms, err)) < 0)
		return r;
	const struct cg_mount *v2 = pick_v2(&ms, need);
	if (!v2 && (need & ~mounts_ctl(&ms, false))) {
		r = missing_ctl_error(&ms, need, err);
		mounts_free(&ms);
		return r;
	}
	struct pd_cgroup *cg = calloc(1, sizeof *cg);
	if (!cg) {
		mounts_free(&ms);
		return pd_err_set(err, ENOMEM, CG_LAYER, "creating cgroup %s", name);
	}
	cg->v2_fd = -1;
	r = v2 ? v2_setup(cg, v2, name, need, lim, err) : v1_setup(cg, &ms, name, need, lim, err);
	mounts_free(&ms);
	if (r < 0) {
		pd_cgroup_destroy(cg);
		return r;
	}
	*out = cg;
	return 0;
}

/* Move pid (a whole process) into every cgroup of the sandbox. 0 or -errno. */
int pd_cgroup_attach(struct pd_cgroup *cg, pid_t pid, struct pd_err *err)
{
	char buf[24];
	if (!cg || pid <= 0)
		return pd_err_set(err, EINVAL, CG_LAYER, "attach: bad cgroup or pid %d", (int)pid);
	snprintf(buf, sizeof buf, "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++) {
		int r = cg_write(cg->paths[i], "cgroup.procs", buf, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The v2 leaf's directory fd, owned by cg (valid until pd_cgroup_destroy), or -1 on v1. */
int pd_cgroup_v2_fd(struct pd_cgroup *cg)
{
	return cg && cg->v2 ? cg->v2_fd : -1;
}

/* The leaf directories we created, NULL-terminated, owned by cg. NULL for a NULL cg. */
const char *const *pd_cgroup_paths(struct pd_cgroup *cg)
{
	return cg ? (const char *const *)cg->paths : NULL;
}

/* 1 if the OOM killer killed something in the sandbox, 0 if not or if we cannot tell
 * (no memory cgroup). v2 reads memory.events, v1 memory.oom_control (memory.failcnt on
 * kernels before 4.13, which only says the limit was hit). */
int pd_cgroup_oom_killed(struct pd_cgroup *cg)
{
	char buf[1024];
	uint64_t v = 0;
	if (!cg || !cg->mem_dir)
		return 0;
	_cleanup_close_ int dfd = open(cg->mem_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	if (read_at(dfd, cg->v2 ? "memory.events" : "memory.oom_control", buf, sizeof buf) >= 0 &&
	    keyed_u64(buf, "oom_kill", &v) == 0)
		return v > 0;
	if (!cg->v2 && read_at(dfd, "memory.failcnt", buf, sizeof buf) >= 0)
		return strtoull(buf, NULL, 10) > 0;
	return 0;
}

/* Kill what is left, remove the directories (best effort), free. NULL-safe. */
void pd_cgroup_destroy(struct pd_cgroup *cg)
{
	if (!cg)
		return;
	pd_cgroup_remove_paths(pd_cgroup_paths(cg));
	if (cg->v2_fd >= 0)
		close(cg->v2_fd);
	for (size_t i = 0; i < cg->n; i++)
		free(cg->paths[i]);
	free(cg);
}

/* Find the existing cgroup(s) of sandbox `name` (after a daemon restart): every
 * <hierarchy>/paddock/<name> that exists, v2 first. -ENOENT when none. */
int pd_cgroup_open(const char *name, struct pd_cgroup **out, struct pd_err *err)
{
	struct cg_mounts ms = { 0 };
	int r;
	if (!name_valid(name))
		return pd_err_set(err, EINVAL, CG_LAYER, "invalid cgroup name \"%s\"",
				  name ? name : "(null)");
	if ((r = mounts_load(&ms, err)) < 0)
		return r;
	struct pd_cgroup *cg = calloc(1, sizeof *cg);
	if (!cg) {
		mounts_free(&ms);
		return pd_err_set(err, ENOMEM, CG_LAYER, "opening cgroup %s", name);
	}
	cg->v2_fd = -1;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < ms.n && cg->n < CG_MAX_DIRS; i++) {
			const struct cg_mount *m = &ms.m[i];
			if (m->v2 != (pass == 0) || (!m->v2 && !m->ctl))
				continue;
			char *p = NULL;
			struct stat st;
			if (asprintf(&p, "%s/" CG_PARENT "/%s", m->dir, name) < 0)
				break;
			bool dup = false;
			for (size_t j = 0; j < cg->n; j++)
				dup |= strcmp(cg->paths[j], p) == 0;
			if (dup || stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
				free(p);
				continue;
			}
			cg->paths[cg->n++] = p;
			if (m->v2 && !cg->v2) {
				cg->v2 = true;
				cg->v2_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (m->ctl & CTL_MEMORY)
					cg->mem_dir = p;
			} else if (!m->v2 && (m->ctl & CTL_MEMORY) && !cg->mem_dir) {
				cg->mem_dir = p;
			}
		}
	}
	mounts_free(&ms);
	if (cg->n == 0) {
		free(cg);
		return pd_err_set(err, ENOENT, CG_LAYER, "no cgroup named %s", name);
	}
	/* A pure v2 sandbox has one directory; on v1 every leaf is used. */
	if (cg->v2 && cg->n > 1) {
		for (size_t j = 1; j < cg->n; j++)
			free(cg->paths[j]);
		cg->paths[1] = NULL;
		cg->n = 1;
	} else if (!cg->v2 && cg->v2_fd >= 0) {
		close(cg->v2_fd);
		cg->v2_fd = -1;
	}
	*out = cg;
	return 0;
}

/* Memory in use (bytes) and CPU time used (ns); either may be NULL. Values
 * that cannot be read are 0. */
void pd_cgroup_usage(struct pd_cgroup *cg, uint64_t *mem, uint64_t *cpu_ns)
{
	char path[PATH_MAX], buf[2048];
	uint64_t m = 0, c = 0;
	for (size_t i = 0; cg && i < cg->n; i++) {
		const char *d = cg->paths[i];
		if (cg->v2) {
			snprintf(path, sizeof path, "%s/memory.current", d);
			if (read_at(AT_FDCWD, path, buf, sizeof buf) >= 0)
				m = strtoull(buf, NULL, 10);
			snprintf(path, sizeof path, "%s/cpu.stat", d);
			uint64_t us = 0;
			if (read_at(AT_FDCWD, path, buf, sizeof buf) >= 0 &&
			    keyed_u64(buf, "usage_usec", &us) == 0)
				c = us * 1000;
			continue;
		}
		snprintf(path, sizeof path, "%s/memory.usage_in_bytes", d);
		if (!m && read_at(AT_FDCWD, path, buf, sizeof buf) >= 0)
			m = strtoull(buf, NULL, 10);
		snprintf(path, sizeof path, "%s/cpuacct.usage", d);
		if (!c && read_at(AT_FDCWD, path, buf, sizeof buf) >= 0)
			c = strtoull(buf, NULL, 10);
	}
	if (mem)
		*mem = m;
	if (cpu_ns)
		*cpu_ns = c;
}

/* Free without removing anything (the daemon exiting: the sandbox lives on). */
void pd_cgroup_release(struct pd_cgroup *cg)
{
	if (!cg)
		return;
	if (cg->v2_fd >= 0)
		close(cg->v2_fd);
	for (size_t i = 0; i < cg->n; i++)
		free(cg->paths[i]);
	free(cg);
}

/* ---- garbage collection ---- */

/* The pid in a leaf name "run-<pid>-<anything>", or 0 when the name is not of that form. */
static pid_t stale_owner(const char *name)
{
	if (strncmp(name, "run-", 4) != 0)
		return 0;
	long pid = 0;
	const char *p = name + 4;
	for (; *p >= '0' && *p <= '9'; p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > INT_MAX)
			return 0;
	}
	return p > name + 4 && *p == '-' ? (pid_t)pid : 0;
}

/* Remove the leaves under one paddock parent whose owner is dead and which are empty. */
static void gc_parent(const char *parent)
{
	_cleanup_closedir_ DIR *d = opendir(parent);
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		pid_t pid = stale_owner(de->d_name);
		if (de->d_type != DT_DIR || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		_cleanup_close_ int dfd =
			openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || scan_procs(dfd, 0, NULL) != 0)
			continue;
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
}

/* Best effort: remove stale run-<pid>-* leaves under every paddock parent, v1 and v2. */
void pd_cgroup_gc(void)
{
	struct cg_mounts ms = { 0 };
	if (mounts_load(&ms, NULL) < 0)
		return;
	for (size_t i = 0; i < ms.n; i++) {
		char parent[PATH_MAX];
		if (!ms.m[i].v2 && !ms.m[i].ctl)
			continue; /* named v1 hierarchies (name=systemd): never ours */
		int n = snprintf(parent, sizeof parent, "%s/" CG_PARENT, ms.m[i].dir);
		if (n > 0 && n < (int)sizeof parent)
			gc_parent(parent);
	}
	mounts_free(&ms);
}
