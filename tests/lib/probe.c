/* probe.c: one escape attempt per invocation, for tests/escape/.
 *
 *   probe ACTION [ARGS...]
 *
 * Prints one line on stdout and exits:
 *   "ok[: detail]"                    0  the attempt SUCCEEDED (a hole)
 *   "blocked: ENAME[ (detail)]"       1  it failed; ENAME is the errno name,
 *                                        or a short reason when no errno applies
 *   usage message on stderr           2
 * Some attempts are expected to kill the process instead (a foreign-ABI
 * syscall: SIGSYS, exit 159; a memory hog: SIGKILL, 137); the test checks the
 * exit status then. Every attempt is harmless if it does succeed: it sets the
 * time to the current time, writes a sysctl back with its own value, loads a
 * module image that is not one, and so on.
 *
 * Built static by tests/lib/fixtures.sh and copied into the test rootfs. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/kexec.h>
#include <linux/mount.h>
#include <linux/nsfs.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <linux/tiocl.h>
#include <linux/userfaultfd.h>
#include <linux/vm_sockets.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))
#define ACTION(name) static int act_##name(char **a UNUSED)

/* ---- reporting --------------------------------------------------------- */

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

/* The attempt succeeded: print "ok[: detail]", return 0. */
__attribute__((format(printf, 1, 2))) static int ok(const char *fmt, ...)
{
	fputs("ok", stdout);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs(": ", stdout);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	return 0;
}

/* The attempt failed with errno e (0: reason only): "blocked: ENAME (detail)". */
__attribute__((format(printf, 2, 3))) static int blocked(int e, const char *fmt, ...)
{
	fputs("blocked: ", stdout);
	if (e)
		fputs(ename(e), stdout);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs(e ? " (" : "", stdout);
		vprintf(fmt, ap);
		fputs(e ? ")" : "", stdout);
		va_end(ap);
	}
	putchar('\n');
	return 1;
}

/* A syscall's result: >= 0 is ok, < 0 is blocked with errno. */
static int result(long r)
{
	return r < 0 ? blocked(errno, NULL) : ok(NULL);
}

/* Read up to len-1 bytes of a file into buf (NUL-terminated). */
static ssize_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	errno = e;
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* ---- kernel interfaces seccomp should refuse --------------------------- */

/* keyctl: look up (and create) the session keyring; keyrings are global. */
ACTION(keyctl)
{
	return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1));
}

/* add_key: store a "user" key in the process keyring. */
ACTION(add_key)
{
	return result(syscall(SYS_add_key, "user", "paddock-probe", "x", 1,
			      KEY_SPEC_PROCESS_KEYRING));
}

/* request_key: ask for a key (ENOKEY means the call itself went through). */
ACTION(request_key)
{
	return result(syscall(SYS_request_key, "user", "paddock-probe", NULL,
			      KEY_SPEC_PROCESS_KEYRING));
}

/* bpf: create a one-entry array map. */
ACTION(bpf)
{
	union bpf_attr at;
	memset(&at, 0, sizeof at);
	at.map_type = BPF_MAP_TYPE_ARRAY;
	at.key_size = 4;
	at.value_size = 4;
	at.max_entries = 1;
	return result(syscall(SYS_bpf, BPF_MAP_CREATE, &at, sizeof at));
}

/* perf_event_open: a user-space-only software counter on ourselves, which
 * perf_event_paranoid=2 allows: only seccomp stands in the way. */
ACTION(perf_event_open)
{
	struct perf_event_attr at = { .type = PERF_TYPE_SOFTWARE, .size = sizeof at,
				      .config = PERF_COUNT_SW_CPU_CLOCK, .exclude_kernel = 1,
				      .exclude_hv = 1 };
	return result(syscall(SYS_perf_event_open, &at, 0, -1, -1, 0));
}

/* kexec_load: no segments and a bogus architecture, so that even a
 * permitted call is refused with EINVAL after the permission check. */
ACTION(kexec_load)
{
	return result(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x12340000UL));
}

/* init_module: a four-byte image that is not an ELF module. */
ACTION(init_module)
{
	static const char img[4] = { 0 };
	return result(syscall(SYS_init_module, img, sizeof img, ""));
}

/* finit_module: /dev/null as the module file. */
ACTION(finit_module)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return result(syscall(SYS_finit_module, fd, "", 0));
}

/* delete_module: a module that does not exist (ENOENT if permitted). */
ACTION(delete_module)
{
	return result(syscall(SYS_delete_module, "paddock_probe_none", O_NONBLOCK));
}

/* open_by_handle_at ("shocker"): get a handle for PATH (default /) and open
 * it back; if name_to_handle_at is refused, try a forged handle anyway. */
ACTION(open_by_handle_at)
{
	const char *path = a[0] ? a[0] : "/";
	struct {
		struct file_handle h;
		unsigned char b[MAX_HANDLE_SZ];
	} fh;
	int mnt_id, e1 = 0;
	fh.h.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, path, &fh.h, &mnt_id, 0) < 0) {
		e1 = errno;
		memset(&fh, 0, sizeof fh);
		fh.h.handle_bytes = 8; /* ext4-style: inode 2 (a root directory) */
		fh.h.handle_type = 1;
		fh.b[0] = 2;
	}
	int mfd = open(path, O_RDONLY | O_CLOEXEC);
	int fd = open_by_handle_at(mfd, &fh.h, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, "name_to_handle_at: %s", e1 ? ename(e1) : "ok");
	return ok("opened a file by handle");
}

/* userfaultfd: in user-mode-only form, which vm.unprivileged_userfaultfd=0
 * still allows, so that only seccomp can refuse it. */
ACTION(userfaultfd)
{
	return result(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
}

/* io_uring_setup: a one-entry ring. */
ACTION(io_uring_setup)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	return result(syscall(SYS_io_uring_setup, 1, &p));
}

/* ---- namespaces and mounts --------------------------------------------- */

static const struct {
	const char *name;
	int flag;
} ns_flags[] = {
	{ "user", CLONE_NEWUSER }, { "mount", CLONE_NEWNS },	{ "net", CLONE_NEWNET },
	{ "pid", CLONE_NEWPID },   { "ipc", CLONE_NEWIPC },	{ "uts", CLONE_NEWUTS },
	{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

/* unshare NS: a new namespace of that kind (user, mount, net, ...). */
ACTION(unshare)
{
	for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
		if (!strcmp(a[0], ns_flags[i].name))
			return result(unshare(ns_flags[i].flag));
	return blocked(0, "unknown namespace %s", a[0]);
}

/* unshare_user / unshare_mount: the two that matter most. */
ACTION(unshare_user) { return result(unshare(CLONE_NEWUSER)); }
ACTION(unshare_mount) { return result(unshare(CLONE_NEWNS)); }

/* Wait for a child that just _exits. */
static int reap_ok(pid_t pid, const char *what)
{
	waitpid(pid, NULL, 0);
	return ok("%s", what);
}

/* clone_newuser: raw clone(2) with CLONE_NEWUSER, bypassing libc. */
ACTION(clone_newuser)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	return pid < 0 ? blocked(errno, NULL) : reap_ok((pid_t)pid, "child in a new user namespace");
}

/* clone3 [newuser]: its flags live in memory where seccomp cannot look, so
 * the whole call must be refused (ENOSYS, for libc to fall back to clone). */
ACTION(clone3)
{
	struct clone_args ca = { .exit_signal = SIGCHLD };
	if (a[0] && !strcmp(a[0], "newuser"))
		ca.flags = CLONE_NEWUSER;
	long pid = syscall(SYS_clone3, &ca, sizeof ca);
	if (pid == 0)
		_exit(0);
	return pid < 0 ? blocked(errno, NULL) : reap_ok((pid_t)pid, "clone3 ran");
}

/* setns PATH: join the namespace behind a /proc/PID/ns/ file. */
ACTION(setns)
{
	int fd = open(a[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, "open %s", a[0]);
	return result(setns(fd, 0));
}

/* ns_get_parent: the parent of our user namespace (the host's). */
ACTION(ns_get_parent)
{
	int fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, "open /proc/self/ns/user");
	return result(ioctl(fd, NS_GET_PARENT));
}

/* mount_tmpfs DIR / mount_proc DIR / mount SRC DIR TYPE. */
static int do_mount(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	return result(mount(src, dir, type, 0, NULL));
}
ACTION(mount_tmpfs) { return do_mount("none", a[0], "tmpfs"); }
ACTION(mount_proc) { return do_mount("proc", a[0], "proc"); }
ACTION(mount) { return do_mount(a[0], a[1], a[2]); }

/* umount PATH: lift a mount (for example a credential mask). */
ACTION(umount) { return result(umount2(a[0], MNT_DETACH)); }

/* pivot_root: swap the root for itself. */
ACTION(pivot_root)
{
	if (chdir("/") < 0)
		return blocked(errno, "chdir /");
	return result(syscall(SYS_pivot_root, ".", "."));
}

/* fsopen: the new mount API, a fresh tmpfs context. */
ACTION(fsopen) { return result(syscall(SYS_fsopen, "tmpfs", 0)); }

/* open_tree PATH: clone the mount at PATH as a detached tree. */
ACTION(open_tree)
{
	return result(syscall(SYS_open_tree, AT_FDCWD, a[0], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
}

/* move_mount [FROM TO]: move a mount (default /proc onto /mnt). */
ACTION(move_mount)
{
	const char *from = a[0] ? a[0] : "/proc", *to = a[0] && a[1] ? a[1] : "/mnt";
	mkdir(to, 0755);
	return result(syscall(SYS_move_mount, AT_FDCWD, from, AT_FDCWD, to, 0));
}

/* cgroup_escape: mount a cgroup hierarchy (v2, then v1 memory and pids)
 * and move ourselves to its root, out of the sandbox's limits. */
ACTION(cgroup_escape)
{
	static const char *const tries[][2] = { { "cgroup2", NULL }, { "cgroup", "memory" },
						{ "cgroup", "pids" } };
	int e = 0;
	mkdir("/tmp/probe-cg", 0755);
	for (size_t i = 0; i < 3; i++) {
		if (mount("none", "/tmp/probe-cg", tries[i][0], 0, tries[i][1]) < 0) {
			e = e ? e : errno;
			continue;
		}
		int fd = open("/tmp/probe-cg/cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && write(fd, "0\n", 2) == 2)
			return ok("mounted %s %s and joined its root", tries[i][0],
				  tries[i][1] ? tries[i][1] : "");
		return ok("mounted %s %s", tries[i][0], tries[i][1] ? tries[i][1] : "");
	}
	return blocked(e, NULL);
}

/* chroot_escape MARKER: the classic chroot breakout (mkdir x; chroot x;
 * cd ../../..; chroot .), then look for a host path that must not exist in
 * the sandbox. ok only if MARKER is visible from the root reached. */
ACTION(chroot_escape)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/probe-chroot-%d", getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return blocked(errno, "mkdir %s", dir);
	if (chroot(dir) < 0)
		return blocked(errno, "chroot");
	for (int i = 0; i < 64; i++)
		if (chdir("..") < 0)
			return blocked(errno, "chdir ..");
	if (chroot(".") < 0)
		return blocked(errno, "chroot .");
	int n = 0;
	DIR *d = opendir("/");
	for (struct dirent *e; d && (e = readdir(d));)
		n++;
	if (access(a[0], F_OK) == 0)
		return ok("%s visible after the breakout", a[0]);
	return blocked(0, "%s not visible from the root reached (%d entries in /)", a[0], n);
}

/* proc1root MARKER: look at the root of pid 1 through /proc/1/root. */
ACTION(proc1root)
{
	DIR *d = opendir("/proc/1/root/");
	if (!d)
		return blocked(errno, "opendir /proc/1/root");
	int n = 0;
	while (readdir(d))
		n++;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/1/root/%s", a[0]);
	if (access(p, F_OK) == 0)
		return ok("%s visible through /proc/1/root", a[0]);
	return blocked(0, "%s not visible (%d entries in /proc/1/root)", a[0], n);
}

/* hostfs PATH: does a host path exist here? */
ACTION(hostfs)
{
	struct stat st;
	return stat(a[0], &st) < 0 ? blocked(errno, NULL) : ok("%s exists", a[0]);
}

/* ---- files --------------------------------------------------------------- */

/* read PATH: read one byte. */
ACTION(read)
{
	char c;
	int fd = open(a[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, NULL);
	ssize_t n = read(fd, &c, 1);
	if (n < 0)
		return blocked(errno, "read");
	return n > 0 ? ok("read 1 byte") : blocked(0, "empty");
}

/* write PATH [TEXT]: create/truncate and write. */
ACTION(write)
{
	const char *text = a[1] ? a[1] : "paddock-probe\n";
	int fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return blocked(errno, NULL);
	if (write(fd, text, strlen(text)) < 0)
		return blocked(errno, "write");
	if (close(fd) < 0)
		return blocked(errno, "close");
	return ok(NULL);
}

/* rewrite PATH: write a file's own content back (a sysctl, a sysfs knob):
 * a success changes nothing but proves the write got through. */
ACTION(rewrite)
{
	char buf[4096];
	ssize_t n = slurp(a[0], buf, sizeof buf);
	if (n < 0)
		n = 0; /* write-only file */
	int fd = open(a[0], O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, NULL);
	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		return blocked(errno, "write");
	return ok("opened for write%s", n > 0 ? " and wrote its value back" : "");
}
ACTION(modprobe_path) { char *v[] = { "/proc/sys/kernel/modprobe", NULL }; return act_rewrite(v); }
ACTION(core_pattern) { char *v[] = { "/proc/sys/kernel/core_pattern", NULL }; return act_rewrite(v); }
ACTION(sysfs_write)
{
	char *v[] = { a[0] ? a[0] : "/sys/kernel/uevent_helper", NULL };
	return act_rewrite(v);
}

/* sysrq: ask the kernel for sysrq help ('h'), the most harmless key. */
ACTION(sysrq)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return blocked(errno, NULL);
	return write(fd, "h", 1) < 0 ? blocked(errno, "write") : ok(NULL);
}

/* kcore: read one byte of the kernel's memory image. */
ACTION(kcore) { char *v[] = { "/proc/kcore", NULL }; return act_read(v); }

/* devmem: open physical memory. */
ACTION(devmem) { return result(open("/dev/mem", O_RDONLY | O_CLOEXEC)); }

/* blockdev [DEV...]: open the host's disk (default: the usual names). */
ACTION(blockdev)
{
	static char *const dflt[] = { "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda", NULL };
	char *const *v = a[0] ? a : dflt;
	int e = 0;
	for (; *v; v++) {
		if (open(*v, O_RDONLY | O_CLOEXEC) >= 0)
			return ok("opened %s", *v);
		e = e && e != ENOENT ? e : errno;
	}
	return blocked(e, NULL);
}

/* mknod PATH [c|b MAJ MIN]: a device node (default the char device 1:1,
 * /dev/mem). */
ACTION(mknod)
{
	mode_t type = S_IFCHR;
	unsigned maj = 1, min = 1;
	if (a[1] && a[2] && a[3]) {
		type = a[1][0] == 'b' ? S_IFBLK : S_IFCHR;
		maj = (unsigned)atoi(a[2]);
		min = (unsigned)atoi(a[3]);
	}
	return result(mknod(a[0], type | 0600, makedev(maj, min)));
}

/* open_write_exe [PATH]: open our own binary (or PATH, e.g. /proc/1/exe)
 * for writing, as in CVE-2019-5736. Nothing is written. */
ACTION(open_write_exe)
{
	return result(open(a[0] ? a[0] : "/proc/self/exe", O_WRONLY | O_CLOEXEC));
}

/* swapon PATH: enable swap on a file. */
ACTION(swapon) { return result(swapon(a[0], 0)); }

/* acct PATH: turn on process accounting (off again if it worked). */
ACTION(acct)
{
	int fd = open(a[0], O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (acct(a[0]) < 0)
		return blocked(errno, NULL);
	acct(NULL);
	return ok(NULL);
}

/* ---- privileged system calls --------------------------------------------- */

/* reboot: only turn off Ctrl-Alt-Del handling, harmless if it works. */
ACTION(reboot) { return result(reboot(RB_DISABLE_CAD)); }

/* settimeofday: set the clock to what it reads. */
ACTION(settimeofday)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return result(settimeofday(&tv, NULL));
}

/* clock_settime: same, through clock_settime(CLOCK_REALTIME). */
ACTION(clock_settime)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return result(clock_settime(CLOCK_REALTIME, &ts));
}

/* syslog: read the kernel log. */
ACTION(syslog)
{
	static char buf[4096];
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf);
	return n < 0 ? blocked(errno, NULL) : ok("read %d bytes of the kernel log", n);
}

/* personality [HEX]: a persona (default ADDR_NO_RANDOMIZE), read back. */
ACTION(personality)
{
	unsigned long want = a[0] ? strtoul(a[0], NULL, 16) : ADDR_NO_RANDOMIZE;
	if (personality(want) < 0)
		return blocked(errno, NULL);
	int now = personality(0xffffffff);
	return (unsigned long)now == want ? ok("persona 0x%x", now)
					  : blocked(0, "persona is 0x%x", now);
}

/* setuid_host: become uid 0 and see which host uid that is. */
ACTION(setuid_host)
{
	char buf[4096];
	unsigned in, out, count;
	if (setuid(0) < 0)
		return blocked(errno, "setuid");
	if (slurp("/proc/self/uid_map", buf, sizeof buf) < 0)
		return blocked(errno, "uid_map");
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (sscanf(l, "%u %u %u", &in, &out, &count) == 3 && in == 0)
			return out == 0 ? ok("root inside is host root")
					: blocked(0, "root inside is host uid %u", out);
	return blocked(0, "uid 0 is not mapped");
}

/* cap [BIT]: is the capability (default 21, CAP_SYS_ADMIN) effective? */
static int cap_effective(int bit)
{
	char buf[4096];
	if (slurp("/proc/self/status", buf, sizeof buf) < 0)
		return blocked(errno, "status");
	char *p = strstr(buf, "CapEff:");
	unsigned long long eff = p ? strtoull(p + 7, NULL, 16) : 0;
	return eff >> bit & 1 ? ok("CapEff %016llx has bit %d", eff, bit)
			      : blocked(0, "CapEff %016llx lacks bit %d", eff, bit);
}
ACTION(cap_sys_admin) { return cap_effective(21); }
ACTION(cap) { return cap_effective(atoi(a[0])); }

/* nnp: no_new_privs off would let a setuid binary raise privileges. */
ACTION(nnp)
{
	int v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	return v == 1 ? blocked(0, "no_new_privs=1") : ok("no_new_privs=%d", v);
}

/* int80: getpid through the i386 ABI (int $0x80, eax=20). The filter only
 * knows the native ABI: expect SIGSYS (exit 159), not a return. */
ACTION(int80)
{
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
	return r < 0 ? blocked((int)-r, "i386 getpid returned") : ok("i386 getpid = %ld", r);
}

/* x32: getpid through the x32 ABI (syscall number | 0x40000000). */
ACTION(x32)
{
	long r = syscall(0x40000000L | 39);
	return r < 0 ? blocked(errno, NULL) : ok("x32 getpid = %ld", r);
}

/* ---- processes ----------------------------------------------------------- */

/* ptrace PID: attach (and detach again). */
ACTION(ptrace)
{
	pid_t pid = atoi(a[0]);
	if (syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0) < 0)
		return blocked(errno, NULL);
	waitpid(pid, NULL, __WALL);
	syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, pid, 0, 0);
	return ok("attached to %d", pid);
}

/* kill PID SIG. */
ACTION(kill) { return result(kill(atoi(a[0]), atoi(a[1]))); }

/* pidfd_getfd PID FD: steal a descriptor from another process. */
ACTION(pidfd_getfd)
{
	int pfd = (int)syscall(SYS_pidfd_open, atoi(a[0]), 0);
	if (pfd < 0)
		return blocked(errno, "pidfd_open");
	return result(syscall(SYS_pidfd_getfd, pfd, atoi(a[1]), 0));
}

/* forkbomb [SECONDS]: fork for up to SECONDS (default 10), children sleep
 * 20 s; report how far it got. The children are killed before we exit. */
ACTION(forkbomb)
{
	enum { MAX = 30000 };
	static pid_t kids[MAX];
	int secs = a[0] ? atoi(a[0]) : 10, n = 0, e = 0;
	time_t end = time(NULL) + secs;
	fflush(NULL);
	while (n < MAX && time(NULL) < end) {
		pid_t p = fork();
		if (p == 0) {
			sleep(20);
			_exit(0);
		}
		if (p < 0) {
			e = errno;
			break;
		}
		kids[n++] = p;
	}
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return e ? blocked(e, "after %d forks", n) : ok("%d forks in %d s, never refused", n, secs);
}

/* memhog MB: allocate and touch MB megabytes, 16 MB at a time. */
ACTION(memhog)
{
	long want = atol(a[0]), got = 0;
	while (got < want) {
		char *p = malloc(16 << 20);
		if (!p)
			return blocked(ENOMEM, "after %ld MB", got);
		memset(p, 0xa5, 16 << 20);
		got += 16;
		fprintf(stderr, "memhog: %ld MB\n", got);
	}
	return ok("%ld MB allocated and touched", got);
}

/* fdbomb: raise the soft fd limit to the hard one, try to raise the hard
 * one, then open /dev/null until it fails. */
ACTION(fdbomb)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	struct rlimit more = { rl.rlim_max * 2, rl.rlim_max * 2 };
	int raised = setrlimit(RLIMIT_NOFILE, &more) == 0;
	getrlimit(RLIMIT_NOFILE, &rl);
	long n = 0;
	while (n < 2000000 && open("/dev/null", O_RDONLY) >= 0)
		n++;
	if (n >= 2000000)
		return ok("%ld fds open", n);
	return blocked(errno, "after %ld fds; RLIMIT_NOFILE %llu, raising the hard limit %s", n,
		       (unsigned long long)rl.rlim_max, raised ? "worked" : "refused");
}

/* diskfill PATH MB: write zeros until MB megabytes or an error. */
ACTION(diskfill)
{
	static char buf[1 << 20];
	long want = atol(a[1]), mb = 0;
	int fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return blocked(errno, "open");
	for (; mb < want; mb++) {
		for (size_t off = 0; off < sizeof buf;) {
			ssize_t n = write(fd, buf + off, sizeof buf - off);
			if (n < 0)
				return blocked(errno, "after %ld MB", mb);
			off += (size_t)n;
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return blocked(errno, "after %ld MB, at fsync", mb);
	return ok("%ld MB written", mb);
}

/* ---- terminal ------------------------------------------------------------ */

/* Open a terminal argument: digits are an fd, else a path. */
static int tty_arg(const char *arg)
{
	if (!arg || !*arg)
		return 0;
	if (strspn(arg, "0123456789") == strlen(arg))
		return atoi(arg);
	return open(arg, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

/* tiocsti [FD|PATH] [hi]: push a '#' into the terminal's input (default
 * fd 0). "hi" sets bit 32 of the command, which the kernel ignores (it takes
 * an unsigned int): a filter comparing all 64 bits would miss it. */
ACTION(tiocsti)
{
	int fd = tty_arg(a[0]);
	if (fd < 0)
		return blocked(errno, "open %s", a[0]);
	unsigned long cmd = TIOCSTI;
	if (a[0] && a[1] && !strcmp(a[1], "hi"))
		cmd |= 1UL << 32;
	char c = '#';
	return result(syscall(SYS_ioctl, fd, cmd, &c));
}

/* tioclinux [FD|PATH]: the console ioctl (harmless subcode: which VT). */
ACTION(tioclinux)
{
	int fd = tty_arg(a[0]);
	if (fd < 0)
		return blocked(errno, "open %s", a[0]);
	char sub = TIOCL_GETFGCONSOLE;
	return result(ioctl(fd, TIOCLINUX, &sub));
}

/* ---- network ------------------------------------------------------------- */

/* raw_socket / packet_socket: need CAP_NET_RAW, which is dropped. */
ACTION(raw_socket) { return result(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)); }
ACTION(packet_socket) { return result(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))); }

/* vsock_socket: create (and bind locally) an AF_VSOCK socket. Nothing is
 * sent: vsock is not network-namespaced, so a socket that can be made
 * could reach the hypervisor past --network off. */
ACTION(vsock_socket)
{
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return blocked(errno, NULL);
	struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = VMADDR_PORT_ANY };
	int b = bind(s, (struct sockaddr *)&vm, sizeof vm);
	return ok("AF_VSOCK socket created%s", b == 0 ? " and bound" : "");
}

/* Fill a sockaddr for HOST (IPv4 or IPv6 literal) and PORT. */
static socklen_t inet_addr_of(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)atoi(port));
		return sizeof *v4;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)atoi(port));
		return sizeof *v6;
	}
	return 0;
}

/* connect HOST PORT: a TCP connection, 2 s timeout. */
ACTION(connect)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_addr_of(a[0], a[1], &ss);
	if (!len)
		return blocked(EINVAL, "not an address: %s", a[0]);
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return blocked(errno, "socket");
	if (connect(s, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		return blocked(errno, NULL);
	struct pollfd p = { .fd = s, .events = POLLOUT };
	if (poll(&p, 1, 2000) == 0)
		return blocked(ETIMEDOUT, "no answer in 2 s");
	int e = 0;
	socklen_t el = sizeof e;
	getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
	return e ? blocked(e, NULL) : ok("connected to %s:%s", a[0], a[1]);
}

/* udp_send HOST PORT: send a datagram and wait 2 s for the echo; ok only
 * if an answer came back (a datagram sent is not a datagram delivered). */
ACTION(udp_send)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_addr_of(a[0], a[1], &ss);
	if (!len)
		return blocked(EINVAL, "not an address: %s", a[0]);
	int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return blocked(errno, "socket");
	if (connect(s, (struct sockaddr *)&ss, len) < 0)
		return blocked(errno, NULL);
	if (send(s, "paddock-probe\n", 14, 0) < 0)
		return blocked(errno, "send");
	struct pollfd p = { .fd = s, .events = POLLIN };
	if (poll(&p, 1, 2000) == 0)
		return blocked(ETIMEDOUT, "no answer in 2 s");
	char buf[64];
	return recv(s, buf, sizeof buf, 0) < 0 ? blocked(errno, NULL) : ok("got an answer");
}

/* unix_connect PATH: a Unix stream socket; "@name" is abstract. */
ACTION(unix_connect)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(a[0]);
	if (n >= sizeof sun.sun_path)
		return blocked(ENAMETOOLONG, NULL);
	memcpy(sun.sun_path, a[0], n);
	if (a[0][0] == '@')
		sun.sun_path[0] = '\0';
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return connect(s, (struct sockaddr *)&sun, len) < 0 ? blocked(errno, NULL)
							      : ok("connected to %s", a[0]);
}

/* ---- dispatch ------------------------------------------------------------ */

#define A(name, n, args) { #name, act_##name, n, args }
static const struct action {
	const char *name;
	int (*fn)(char **a);
	int nargs;
	const char *args;
} actions[] = {
	A(keyctl, 0, ""), A(add_key, 0, ""), A(request_key, 0, ""), A(bpf, 0, ""),
	A(perf_event_open, 0, ""), A(kexec_load, 0, ""), A(init_module, 0, ""),
	A(finit_module, 0, ""), A(delete_module, 0, ""), A(open_by_handle_at, 0, "[PATH]"),
	A(userfaultfd, 0, ""), A(io_uring_setup, 0, ""), A(unshare, 1, "NS"),
	A(unshare_user, 0, ""), A(unshare_mount, 0, ""), A(clone_newuser, 0, ""),
	A(clone3, 0, "[newuser]"), A(setns, 1, "PATH"), A(ns_get_parent, 0, ""),
	A(mount_tmpfs, 1, "DIR"), A(mount_proc, 1, "DIR"), A(mount, 3, "SRC DIR TYPE"),
	A(umount, 1, "PATH"), A(pivot_root, 0, ""), A(fsopen, 0, ""), A(open_tree, 1, "PATH"),
	A(move_mount, 0, "[FROM TO]"), A(cgroup_escape, 0, ""), A(chroot_escape, 1, "MARKER"),
	A(proc1root, 1, "MARKER"), A(hostfs, 1, "PATH"), A(read, 1, "PATH"),
	A(write, 1, "PATH [TEXT]"), A(rewrite, 1, "PATH"), A(modprobe_path, 0, ""),
	A(core_pattern, 0, ""), A(sysfs_write, 0, "[PATH]"), A(sysrq, 0, ""), A(kcore, 0, ""),
	A(devmem, 0, ""), A(blockdev, 0, "[DEV...]"), A(mknod, 1, "PATH [c|b MAJ MIN]"),
	A(open_write_exe, 0, "[PATH]"), A(swapon, 1, "PATH"), A(acct, 1, "PATH"),
	A(reboot, 0, ""), A(settimeofday, 0, ""), A(clock_settime, 0, ""), A(syslog, 0, ""),
	A(personality, 0, "[HEX]"), A(setuid_host, 0, ""), A(cap_sys_admin, 0, ""),
	A(cap, 1, "BIT"), A(nnp, 0, ""), A(int80, 0, ""), A(x32, 0, ""), A(ptrace, 1, "PID"),
	A(kill, 2, "PID SIG"), A(pidfd_getfd, 2, "PID FD"), A(forkbomb, 0, "[SECONDS]"),
	A(memhog, 1, "MB"), A(fdbomb, 0, ""), A(diskfill, 2, "PATH MB"),
	A(tiocsti, 0, "[FD|PATH] [hi]"), A(tioclinux, 0, "[FD|PATH]"), A(raw_socket, 0, ""),
	A(packet_socket, 0, ""), A(vsock_socket, 0, ""), A(connect, 2, "HOST PORT"),
	A(udp_send, 2, "HOST PORT"), A(unix_connect, 1, "PATH|@NAME"),
};

int main(int argc, char **argv)
{
	size_t n = sizeof actions / sizeof actions[0];
	for (size_t i = 0; argc >= 2 && i < n; i++) {
		if (strcmp(argv[1], actions[i].name) != 0)
			continue;
		if (argc - 2 < actions[i].nargs) {
			fprintf(stderr, "usage: probe %s %s\n", actions[i].name, actions[i].args);
			return 2;
		}
		int r = actions[i].fn(argv + 2);
		fflush(stdout);
		return r;
	}
	fprintf(stderr, "usage: probe ACTION [ARGS]; actions:");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", actions[i].name);
	fputc('\n', stderr);
	return 2;
}
