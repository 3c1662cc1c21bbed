/*
 * tests/test.h: coil's small test harness.
 *
 * Each tests/test_<area>.c defines its tests with TEST(name) and lists them
 * in a TEST_LIST. main() runs every test in a child process of its own
 * (libuv's isolation: a crash or a hang fails that test only), with a
 * timeout, or just the tests named on the command line. A test that needs a
 * kernel feature the machine lacks calls TEST_SKIP, which exits 77; the
 * executable then exits 77 if every test skipped, so ctest reports a skip,
 * never a pass.
 *
 * Environment: COIL_TEST_NOFORK=1 runs tests in-process (for gdb and
 * Valgrind); COIL_TEST_TIMEOUT overrides the per-test timeout in seconds.
 */
#ifndef COIL_TEST_H
#define COIL_TEST_H

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

/* True where every task stack costs far more than its pages (Valgrind, and
 * TSan, which maps a shadow stack per fiber): tests that hold a great many
 * tasks at once scale down there. */
static inline int test_heavy_tools(void)
{
	return TEST_TSAN || getenv("COIL_VALGRIND") != NULL;
}

typedef struct test_entry {
	const char *name;
	void (*fn)(void);
} test_entry_t;

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) { #name, test_##name }
#define TEST_SKIP(why) do { \
	fprintf(stderr, "  skip: %s\n", why); exit(77); } while (0)

/* Skips (77) when a coil call failed because io_uring is unavailable on
 * this machine (disabled by sysctl or a seccomp filter): -ENOSYS, -EPERM. */
#define TEST_SKIP_UNLESS_RING(rc) do { \
	int r_ = (rc); \
	if (r_ == -ENOSYS || r_ == -EPERM) TEST_SKIP("io_uring is not available"); \
	} while (0)

#define TEST_FAIL_(...) do { \
	fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

#define ASSERT(cond) do { if (!(cond)) \
	TEST_FAIL_("assertion failed: %s", #cond); } while (0)

#define ASSERT_CMP_(a, op, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (!(a_ op b_)) TEST_FAIL_("%s %s %s failed: %lld vs %lld", \
				    #a, #op, #b, a_, b_); } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)
#define ASSERT_PTR_EQ(a, b) do { const void *a_ = (a), *b_ = (b); \
	if (a_ != b_) TEST_FAIL_("%s == %s failed: %p vs %p", #a, #b, a_, b_); \
	} while (0)
#define ASSERT_STR_EQ(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_)) TEST_FAIL_("%s == %s failed: \"%s\" vs \"%s\"", \
		#a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define ASSERT_DBL_NEAR(a, b, eps) do { double a_ = (a), b_ = (b); \
	if (!(a_ - b_ <= (eps) && b_ - a_ <= (eps))) \
		TEST_FAIL_("%s ~= %s failed: %.9g vs %.9g", #a, #b, a_, b_); } while (0)

/* A forked test leaves with _exit, which skips LeakSanitizer's check at
 * exit: run it by hand, so that a test that leaks fails under ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN_ 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN_ 1
#endif
#endif
#ifdef TEST_ASAN_
#include <sanitizer/lsan_interface.h>
#define TEST_LEAK_CHECK_() (__lsan_do_recoverable_leak_check() ? 3 : 0)
#else
#define TEST_LEAK_CHECK_() 0
#endif

static int test_run_one_(const test_entry_t *t, int timeout)
{
	if (getenv("COIL_TEST_NOFORK")) {
		t->fn();
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		alarm((unsigned)timeout);
		t->fn();
		fflush(NULL);
		_exit(TEST_LEAK_CHECK_());
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "  %s: killed by signal %d%s\n", t->name, WTERMSIG(st),
		WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
	return 1;
}

static int test_main_(int argc, char **argv, const test_entry_t *tests,
		      size_t n)
{
	int timeout = 120;
	const char *e = getenv("COIL_TEST_TIMEOUT");
	if (e && atoi(e) > 0)
		timeout = atoi(e);
	int failed = 0, skipped = 0, ran = 0;
	for (size_t i = 0; i < n; i++) {
		if (argc > 1) {
			int want = 0;
			for (int j = 1; j < argc; j++)
				want |= !strcmp(argv[j], tests[i].name);
			if (!want)
				continue;
		}
		ran++;
		int rc = test_run_one_(&tests[i], timeout);
		const char *what = rc == 0 ? "ok" : rc == 77 ? "skip" : "FAIL";
		printf("%-4s %s\n", what, tests[i].name);
		fflush(stdout);
		if (rc == 77)
			skipped++;
		else if (rc)
			failed++;
	}
	printf("%d tests, %d failed, %d skipped\n", ran, failed, skipped);
	if (ran == 0)
		return 1;
	if (failed)
		return 1;
	return skipped == ran ? 77 : 0;
}

/* A runtime of `workers` workers with the default options otherwise;
 * skips the test where the kernel offers no io_uring. */
#include <coil/coil.h>
static inline coil_runtime_t *test_runtime_new(unsigned workers)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	return rt;
}

/* How many of the process's threads have a name starting with prefix
 * (/proc/self/task/<tid>/comm). */
static inline int test_threads_named(const char *prefix)
{
	DIR *d = opendir("/proc/self/task");
	ASSERT(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, prefix, strlen(prefix)))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* An optional hook that main runs first: a test file that needs one
 * defines TEST_MAIN_HOOK(argc, argv) before including this header (the
 * process-pool tests make the test binary their worker binary with it). */
#ifndef TEST_MAIN_HOOK
#define TEST_MAIN_HOOK(argc, argv) ((void)(argc), (void)(argv))
#endif

#define TEST_LIST(...) \
	static const test_entry_t test_list_[] = { __VA_ARGS__ }; \
	int main(int argc, char **argv) { \
		TEST_MAIN_HOOK(argc, argv); \
		return test_main_(argc, argv, test_list_, \
				  sizeof(test_list_) / sizeof(test_list_[0])); }

#endif
