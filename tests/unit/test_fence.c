/* test_fence.c: the in-process fence layers (capabilities, Landlock,
 * seccomp), each applied for real in a forked child. A child checks what it
 * can and cannot do and reports through its exit status: 0 when all held,
 * 1 after printing the failed check. The parent only asserts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "sandbox/fence.h"

/* In a child: fail (exit status 1) with a message unless cond holds. */
#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			int e_ = errno; \
			fprintf(stderr, "  child, line %d: %s failed (errno %d: %s)\n", __LINE__, \
				#cond, e_, strerror(e_)); \
			return 1; \
		} \
	} while (0)
/* In a child: the call fails with errno e. */
#define CHECK_FAILS(call, e) CHECK((call) == -1 && errno == (e))

/* Run fn(arg) in a forked child. Returns its exit status, or 128 + the
 * signal that killed it. */
static int in_child(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- seccomp ---- */

static void test_seccomp_table(void **state)
{
	(void)state;
	size_t n;
	const struct pd_seccomp_rule *r = pd_seccomp_rules(&n);

	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(r[i].name);
		/* Every name is a real syscall here and on x86_64. */
		if (seccomp_syscall_resolve_name(r[i].name) == __NR_SCMP_ERROR ||
		    seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, r[i].name) < 0)
			fail_msg("%s does not resolve", r[i].name);
		assert_true(r[i].why && r[i].why[0]);
		assert_true(r[i].err == EPERM || r[i].err == ENOSYS);
		assert_true(r[i].arg >= -1 && r[i].arg <= 5);
		if (r[i].arg >= 0) {
			assert_true(r[i].mask != 0);
			assert_true((r[i].value & ~r[i].mask) == 0);
		}
		/* An unconditional rule is the only one for its syscall. */
		for (size_t j = 0; j < n; j++)
			if (j != i && strcmp(r[i].name, r[j].name) == 0 &&
			    (r[i].arg < 0 || r[j].arg < 0))
				fail_msg("%s: an unconditional rule and another", r[i].name);
	}
}

static void *thread_main(void *arg)
{
	return arg;
}

static int child_seccomp(void *arg)
{
	(void)arg;
	struct pd_err err = { 0 };
	int pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(pty >= 0);
	CHECK(pd_seccomp_apply(&err) == 0);

	CHECK_FAILS(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), EPERM);
	CHECK_FAILS(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	CHECK_FAILS(syscall(SYS_clone3, NULL, 0), ENOSYS);
	CHECK_FAILS(unshare(CLONE_NEWUSER), EPERM);
	CHECK_FAILS(unshare(CLONE_NEWUSER | CLONE_NEWNS), EPERM);
	CHECK_FAILS(ioctl(pty, TIOCSTI, "x"), EPERM);
	/* The kernel reads the command's low 32 bits: high bits must not help. */
	CHECK_FAILS(syscall(SYS_ioctl, pty, (unsigned long)TIOCSTI | (1UL << 32), "x"), EPERM);
	CHECK_FAILS(syscall(SYS_ioctl, pty, TIOCLINUX, "\x06"), EPERM);
	CHECK_FAILS(personality(ADDR_NO_RANDOMIZE), EPERM);
	CHECK_FAILS(personality(READ_IMPLIES_EXEC), EPERM);
	CHECK(personality(0xffffffff) == PER_LINUX);
	CHECK(personality(PER_LINUX) == PER_LINUX);

	/* What programs need still works. */
	CHECK(syscall(SYS_getpid) == getpid());
	int n;
	CHECK(ioctl(pty, FIONREAD, &n) == 0);
	pid_t pid = fork(); /* glibc: clone without CLONE_NEWUSER */
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(42);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 42);
	pthread_t t; /* glibc: clone3 first, clone after ENOSYS */
	void *ret = NULL;
	CHECK(pthread_create(&t, NULL, thread_main, &n) == 0);
	CHECK(pthread_join(t, &ret) == 0 && ret == &n);
	close(pty);
	return 0;
}

static void test_seccomp_applied(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_seccomp, NULL), 0);
}

#if defined(__x86_64__)
/* A syscall through the i386 ABI: getpid is 20 there (39 on x86_64). */
static int child_int80(void *arg)
{
	struct pd_err err = { 0 };
	if (arg && pd_seccomp_apply(&err) < 0)
		return 2;
	long r;
	__asm__ volatile("int $0x80"
			 : "=a"(r)
			 : "a"(20L)
			 : "r8", "r9", "r10", "r11", "cc", "memory");
	return r == getpid() ? 0 : 3;
}

/* A syscall through the x32 ABI (its bit set in the number). */
static int child_x32(void *arg)
{
	(void)arg;
	struct pd_err err = { 0 };
	if (pd_seccomp_apply(&err) < 0)
		return 2;
	syscall(0x40000000L | SYS_getpid);
	return 0;
}

static void test_seccomp_foreign_abi(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_x32, NULL), 128 + SIGSYS);
	if (in_child(child_int80, NULL) != 0)
		skip(); /* no i386 emulation in this kernel */
	assert_int_equal(in_child(child_int80, (void *)1), 128 + SIGSYS);
}
#endif

/* ---- capabilities ---- */

/* The capability set named `field` ("CapBnd", ...) from /proc/self/status,
 * or UINT64_MAX if unreadable. */
static uint64_t status_caps(const char *field)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t len = strlen(field);
	unsigned long long v;

	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, field, len) == 0 && line[len] == ':' &&
		    sscanf(line + len + 1, "%llx", &v) == 1)
			return v;
	return UINT64_MAX;
}

static int child_caps(void *arg)
{
	(void)arg;
	struct pd_err err = { 0 };
	size_t n;
	const int *kept = pd_caps_kept(&n);
	uint64_t want = 0;

	for (size_t i = 0; i < n; i++)
		want |= 1ULL << kept[i];
	CHECK(pd_caps_apply(&err) == 0);
	CHECK(status_caps("CapBnd") == want);
	CHECK(status_caps("CapEff") == want);
	CHECK(status_caps("CapPrm") == want);
	CHECK(status_caps("CapInh") == want);
	CHECK(status_caps("CapAmb") == 0);
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	CHECK_FAILS(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP), EPERM);
	return 0;
}

static void test_caps_kept(void **state)
{
	(void)state;
	size_t n;
	const int *kept = pd_caps_kept(&n);

	assert_int_equal(n, 13);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(kept[i], CAP_NET_RAW);
}

static void test_caps_applied(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_child(child_caps, NULL), 0);
}

/* ---- Landlock ---- */

struct ll {
	char rw[32];    /* writable directory */
	char ro[32];    /* another directory, not writable */
	char file[64];  /* a file in ro, writable itself */
	char new_rw[64], new_ro[64];
};

static int ll_setup(void **state)
{
	struct ll *t = calloc(1, sizeof *t);
	if (!t)
		return -1;
	snprintf(t->rw, sizeof t->rw, "/tmp/paddock-rw-XXXXXX");
	snprintf(t->ro, sizeof t->ro, "/tmp/paddock-ro-XXXXXX");
	if (!mkdtemp(t->rw) || !mkdtemp(t->ro)) {
		free(t);
		return -1;
	}
	snprintf(t->file, sizeof t->file, "%s/file", t->ro);
	snprintf(t->new_rw, sizeof t->new_rw, "%s/new", t->rw);
	snprintf(t->new_ro, sizeof t->new_ro, "%s/new", t->ro);
	int fd = open(t->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	*state = t;
	return fd >= 0 ? 0 : -1;
}

static int ll_teardown(void **state)
{
	struct ll *t = *state;
	unlink(t->new_rw);
	unlink(t->new_ro);
	unlink(t->file);
	rmdir(t->rw);
	rmdir(t->ro);
	free(t);
	return 0;
}

/* Create (or truncate) path and write to it; 0 or -1 with errno. */
static int write_file(const char *path)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return -1;
	return 0;
}

struct ll_arg {
	struct ll *t;
	const char *cap; /* PADDOCK_LANDLOCK_MAX_ABI, NULL: unset */
};

/* Landlock with the ABI cap given, then the checks. */
static int child_landlock(void *arg)
{
	struct ll *t = ((struct ll_arg *)arg)->t;
	const char *cap = ((struct ll_arg *)arg)->cap;
	const char *rw[] = { t->rw, t->file, "/nonexistent-paddock/x" };
	struct pd_err err = { 0 };
	int abi = -1;
	char buf[8];

	if (cap)
		setenv("PADDOCK_LANDLOCK_MAX_ABI", cap, 1);
	else
		unsetenv("PADDOCK_LANDLOCK_MAX_ABI");
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0); /* pd_caps_apply's job */
	CHECK(pd_landlock_apply(rw, ARRAY_SIZE(rw), true, &abi, &err) == 0);
	CHECK(cap ? abi == atoi(cap) : abi >= 1);

	CHECK(write_file(t->new_rw) == 0);
	CHECK(write_file(t->file) == 0);
	CHECK_FAILS(write_file(t->new_ro), EACCES);
	CHECK_FAILS(unlink(t->file), EACCES);
	CHECK_FAILS(open("/etc/hostname", O_WRONLY | O_CLOEXEC), EACCES);
	_cleanup_close_ int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) > 0);
	return 0;
}

static void test_landlock_applied(void **state)
{
	struct ll_arg arg = { .t = *state };
	assert_int_equal(in_child(child_landlock, &arg), 0);
}

/* ABI 1: no TRUNCATE, REFER or IOCTL_DEV rights; the rest must hold. */
static void test_landlock_abi1(void **state)
{
	struct ll_arg arg = { .t = *state, .cap = "1" };
	assert_int_equal(in_child(child_landlock, &arg), 0);
}

static int child_landlock_off(void *arg)
{
	struct ll *t = arg;
	const char *rw[] = { t->rw };
	struct pd_err err = { 0 };
	int abi = -1;

	setenv("PADDOCK_LANDLOCK_MAX_ABI", "0", 1);
	CHECK(pd_landlock_apply(rw, 1, true, &abi, &err) < 0);
	CHECK(strcmp(err.layer, "landlock") == 0 && strstr(err.msg, "lacks Landlock"));
	CHECK(strstr(err.hint, "--strict") != NULL);
	CHECK(abi == -1);
	CHECK(pd_landlock_apply(rw, 1, false, &abi, &err) == 0 && abi == 0);
	/* Not restricted. */
	CHECK(write_file(t->new_ro) == 0);

	setenv("PADDOCK_LANDLOCK_MAX_ABI", "two", 1);
	abi = -1;
	CHECK(pd_landlock_apply(rw, 1, false, &abi, &err) == -EINVAL && abi == -1);
	return 0;
}

static void test_landlock_off(void **state)
{
	assert_int_equal(in_child(child_landlock_off, *state), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seccomp_table),
		cmocka_unit_test(test_seccomp_applied),
#if defined(__x86_64__)
		cmocka_unit_test(test_seccomp_foreign_abi),
#endif
		cmocka_unit_test(test_caps_kept),
		cmocka_unit_test(test_caps_applied),
		cmocka_unit_test_setup_teardown(test_landlock_applied, ll_setup, ll_teardown),
		cmocka_unit_test_setup_teardown(test_landlock_abi1, ll_setup, ll_teardown),
		cmocka_unit_test_setup_teardown(test_landlock_off, ll_setup, ll_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
