/*
 * tests/test_process_pool.c: process pools (coil/process_pool.h).
 *
 * The test binary is also the pool's worker binary: TEST_MAIN_HOOK
 * registers the process functions below and calls coil_process_pool_main
 * before the harness runs, so a worker started by a pool serves jobs and
 * never reaches the tests.
 *
 * Results with payloads of 0 bytes to 64 MiB; errors with their messages;
 * workers that die in the middle of a job (SIGKILL from outside, abort(),
 * _exit(3), a segfault) fail that job with COIL_EBROKEN and a message
 * saying how, and the pool serves the next jobs with a new worker; queued
 * jobs cancelled; shutdown waiting, cancelling and killing with jobs
 * pending; submits from plain threads and from many tasks of a two-worker
 * runtime. Every test ends with no child process left, zombie or not
 * (checked in /proc).
 *
 * A job that must be in the middle of its work when the test acts writes
 * its pid to a file first, which the test polls for (with a deadline).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "coil/coil.h"

static void pp_main_hook(int argc, char **argv);
#define TEST_MAIN_HOOK(argc, argv) pp_main_hook(argc, argv)
#include "test.h"

/* --- the process functions (they run in the workers) -------------------- */

static int pf_echo(const void *in, size_t len, coil_bytes_t *out)
{
	if (!len)
		return 0;
	out->data = malloc(len);
	if (!out->data)
		return -ENOMEM;
	memcpy(out->data, in, len);
	out->len = len;
	return 0;
}

static int pf_fail(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)out;
	coil_errorf("cannot do that with %zu bytes", len);
	return -EDOM;
}

/* Writes the worker's pid to the file named by the input ("path", or
 * "path\nMS"), then waits to be killed, or MS milliseconds. */
static int pf_hang(const void *in, size_t len, coil_bytes_t *out)
{
	(void)out;
	char path[256];
	if (len >= sizeof(path))
		return -EINVAL;
	memcpy(path, in, len);
	path[len] = '\0';
	long ms = -1;
	char *nl = strchr(path, '\n');
	if (nl) {
		*nl = '\0';
		ms = atol(nl + 1);
	}
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	rename(tmp, path);
	if (ms >= 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0)
			;
		return 0;
	}
	for (;;)
		pause();
}

static int pf_abort(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	(void)out;
	abort();
}

static int pf_exit3(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	(void)out;
	_exit(3);
}

/* A real invalid access, with the default action restored first: a
 * sanitizer's handler would otherwise turn it into an exit with a
 * report. */
static int pf_segv(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	(void)out;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGSEGV, &sa, NULL);
	static volatile uintptr_t bad = 8; /* an address the compiler cannot see */
	*(volatile int *)bad = 1;
	return -EFAULT;
}

/* Sleeps the number of milliseconds in the input (a uint32). */
static int pf_sleep(const void *in, size_t len, coil_bytes_t *out)
{
	(void)out;
	uint32_t ms = 0;
	if (len == sizeof(ms))
		memcpy(&ms, in, sizeof(ms));
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
	return 0;
}

/* Creates the file named by the input. */
static int pf_touch(const void *in, size_t len, coil_bytes_t *out)
{
	(void)out;
	char path[256];
	if (len >= sizeof(path))
		return -EINVAL;
	memcpy(path, in, len);
	path[len] = '\0';
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Returns the worker's pid. */
static int pf_pid(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	int32_t pid = (int32_t)getpid();
	out->data = malloc(sizeof(pid));
	if (!out->data)
		return -ENOMEM;
	memcpy(out->data, &pid, sizeof(pid));
	out->len = sizeof(pid);
	return 0;
}

static void pp_main_hook(int argc, char **argv)
{
	/* A worker of the pool_breaks_when_workers_die_at_start test: dies
	 * before it could serve. */
	if (getenv("COIL_PP_TEST_DIE") && getenv("COIL_PROCESS_POOL_WORKER"))
		_exit(7);
	static const struct {
		const char *name;
		coil_process_fn fn;
	} fns[] = {
		{ "echo", pf_echo },   { "fail", pf_fail },   { "hang", pf_hang },
		{ "abort", pf_abort }, { "exit3", pf_exit3 }, { "segv", pf_segv },
		{ "sleep", pf_sleep }, { "touch", pf_touch }, { "pid", pf_pid },
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		if (coil_process_register(fns[i].name, fns[i].fn)) {
			fprintf(stderr, "cannot register %s\n", fns[i].name);
			exit(1);
		}
	}
	if (coil_process_pool_main(argc, argv)) {
		fprintf(stderr, "coil_process_pool_main failed\n");
		exit(1);
	}
}

/* --- helpers ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static coil_process_pool_t *pool_make(unsigned workers)
{
	coil_process_pool_opts_t o;
	coil_process_pool_opts_init(&o);
	o.workers = workers;
	coil_process_pool_t *p = NULL;
	ASSERT_EQ(coil_process_pool_create(&p, &o), 0);
	ASSERT(p != NULL);
	return p;
}

/* Counts this process's children in /proc, and among them the zombies. */
static int children(int *zombies)
{
	DIR *d = opendir("/proc");
	ASSERT(d != NULL);
	int n = 0, z = 0;
	pid_t me = getpid();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) S ppid ...": comm may hold anything, so parse
		 * from the last ')'. */
		char *p = strrchr(buf, ')');
		char state;
		int ppid;
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (ppid == me) {
			n++;
			z += state == 'Z';
		}
	}
	closedir(d);
	if (zombies)
		*zombies = z;
	return n;
}

/* After a pool's shutdown: no child at all, so none can be a zombie. */
static void assert_no_children(void)
{
	int z = 0;
	ASSERT_EQ(children(&z), 0);
	ASSERT_EQ(z, 0);
}

typedef struct ctx {
	coil_process_pool_t *pool;
	int n;
} ctx_t;

/* Runs fn as the main task of a runtime of `workers` workers. */
static void run_on(unsigned workers, coil_fn fn, void *arg)
{
	coil_runtime_t *rt = test_runtime_new(workers);
	int rc = coil_runtime_block_on(rt, fn, arg, NULL);
	ASSERT_EQ(coil_runtime_shutdown(rt, 5 * COIL_NSEC_PER_SEC), 0);
	ASSERT_EQ(rc, 0);
}

/* Pseudo-random bytes, a word at a time (the 64 MiB payload is filled
 * under ThreadSanitizer too, which checks every store). */
static void fill(unsigned char *b, size_t n, unsigned seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
	for (; i < n; i++)
		b[i] = (unsigned char)(x >> (8 * (i % 8)));
}

/* Waits (from a task) until the file holds a pid; returns it. */
static int wait_pid_file(const char *path)
{
	int64_t deadline = now_ns() + 10 * COIL_NSEC_PER_SEC;
	for (;;) {
		FILE *f = fopen(path, "r");
		int pid = 0;
		if (f) {
			if (fscanf(f, "%d", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid > 0) {
			unlink(path);
			return pid;
		}
		ASSERT(now_ns() < deadline);
		ASSERT_EQ(coil_sleep(0.002), 0);
	}
}

static void tmp_path(char *buf, size_t n, const char *what)
{
	static int seq;
	snprintf(buf, n, "/tmp/coil-pp-%d-%s-%d", (int)getpid(), what, seq++);
	unlink(buf);
}

/* --- results ----------------------------------------------------------- */

static int echo_sizes_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	/* Growing, the same again, and shrinking: a worker keeps its input
	 * buffer from job to job. */
	static const size_t sizes[] = { 0, 1, 7, 4096, 100000, 3 << 20, 3 << 20, 4096,
					4096, 100, 0, 1 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		unsigned char *in = n ? malloc(n) : NULL;
		ASSERT(!n || in);
		fill(in, n, (unsigned)k);
		coil_bytes_t out = { NULL, 0 };
		ASSERT_EQ(coil_process_pool_run(c->pool, "echo", in, n, &out), 0);
		ASSERT_EQ(out.len, n);
		ASSERT(n ? out.data && !memcmp(out.data, in, n) : out.data == NULL);
		coil_bytes_free(&out);
		free(in);
	}
	/* Through submit, with the future owning the bytes. */
	coil_future_t *f;
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, "echo", "abc", 3), 0);
	void *r;
	ASSERT_EQ(coil_await(f, &r), 0);
	coil_bytes_t *b = r;
	ASSERT_EQ(b->len, 3);
	ASSERT(!memcmp(b->data, "abc", 3));
	coil_future_release(f);
	return 0;
}

TEST(results_of_many_sizes)
{
	ctx_t c = { .pool = pool_make(2) };
	run_on(1, echo_sizes_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

/* 64 MiB in and 64 MiB out, and 0 bytes in and out. Under TSan and
 * Valgrind, whose shadow memory makes each of the five buffers of that
 * size cost seconds of page faults, 16 MiB (the same code path: the pipes
 * hold 1 MiB). */
static int big_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	size_t n = (size_t)(test_heavy_tools() ? 16 : 64) << 20;
	unsigned char *in = malloc(n);
	unsigned char *copy = malloc(n);
	ASSERT(in && copy);
	fill(in, n, 99);
	memcpy(copy, in, n);
	coil_bytes_t owned = { in, n };
	coil_future_t *f;
	ASSERT_EQ(coil_process_pool_submit_owned(&f, c->pool, "echo", &owned), 0);
	ASSERT(owned.data == NULL && owned.len == 0); /* the pool took it */
	void *r;
	ASSERT_EQ(coil_await(f, &r), 0);
	coil_bytes_t *b = r;
	ASSERT_EQ(b->len, n);
	ASSERT(!memcmp(b->data, copy, n));
	coil_future_release(f);
	free(copy);

	coil_bytes_t out = { (void *)1, 1 };
	ASSERT_EQ(coil_process_pool_run(c->pool, "echo", NULL, 0, &out), 0);
	ASSERT(out.data == NULL && out.len == 0);
	return 0;
}

TEST(payloads_of_64mib_and_0_bytes)
{
	ctx_t c = { .pool = pool_make(1) };
	run_on(1, big_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

static int errors_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	coil_future_t *f;
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, "fail", "xyz", 3), 0);
	ASSERT_EQ(coil_await(f, NULL), -EDOM);
	ASSERT_STR_EQ(coil_future_error_message(f), "cannot do that with 3 bytes");
	coil_future_release(f);
	coil_bytes_t out;
	ASSERT_EQ(coil_process_pool_run(c->pool, "no such job", NULL, 0, &out), -ENOENT);
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, "echo", NULL, 5), -EINVAL);
	/* The pool goes on. */
	ASSERT_EQ(coil_process_pool_run(c->pool, "echo", "ok", 2, &out), 0);
	ASSERT_EQ(out.len, 2);
	coil_bytes_free(&out);
	return 0;
}

TEST(job_errors_and_bad_calls)
{
	ctx_t c = { .pool = pool_make(1) };
	run_on(1, errors_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	ASSERT_EQ(coil_process_pool_shutdown(NULL, true, false), -EINVAL);
	coil_bytes_t out;
	ASSERT_EQ(coil_process_pool_run(NULL, "echo", NULL, 0, &out), COIL_EINVALSTATE);
	assert_no_children();
}

TEST(register_rules)
{
	ASSERT_EQ(coil_process_register("echo", pf_echo), 0);   /* the same again */
	ASSERT_EQ(coil_process_register("echo", pf_fail), -EEXIST);
	ASSERT_EQ(coil_process_register("", pf_echo), -EINVAL);
	ASSERT_EQ(coil_process_register(NULL, pf_echo), -EINVAL);
	ASSERT_EQ(coil_process_register("x", NULL), -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ASSERT_EQ(coil_process_register(longname, pf_echo), -EINVAL);
}

/* --- crashes ------------------------------------------------------------------ */

static int32_t job_pid(coil_process_pool_t *pool)
{
	coil_bytes_t out;
	ASSERT_EQ(coil_process_pool_run(pool, "pid", NULL, 0, &out), 0);
	ASSERT_EQ(out.len, sizeof(int32_t));
	int32_t pid;
	memcpy(&pid, out.data, sizeof(pid));
	coil_bytes_free(&out);
	return pid;
}

/* A worker killed with SIGKILL in the middle of a job. */
static int killed_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	char path[128];
	tmp_path(path, sizeof(path), "hang");
	coil_future_t *f;
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, "hang", path, strlen(path)), 0);
	int pid = wait_pid_file(path);
	ASSERT_EQ(kill(pid, SIGKILL), 0);
	ASSERT_EQ(coil_await(f, NULL), COIL_EBROKEN);
	const char *msg = coil_future_error_message(f);
	ASSERT(msg != NULL);
	ASSERT(strstr(msg, "killed by signal 9 (SIGKILL)") != NULL);
	ASSERT(strstr(msg, "\"hang\"") != NULL);
	coil_future_release(f);
	/* The pool replaced the worker and serves the next jobs. */
	int32_t next = job_pid(c->pool);
	ASSERT_NE(next, pid);
	ASSERT_EQ(job_pid(c->pool), next);
	int pids[2];
	ASSERT_EQ(coil_process_pool_pids(c->pool, pids, 2), 1);
	ASSERT_EQ(pids[0], next);
	return 0;
}

TEST(worker_killed_mid_job)
{
	ctx_t c = { .pool = pool_make(1) };
	run_on(1, killed_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

/* Jobs that end their worker: abort(), _exit(3), a segfault. */
typedef struct crash {
	coil_process_pool_t *pool;
	const char *job;
	const char *expect;      /* in the message, or NULL */
} crash_t;

static int crash_main(void *arg, void **result)
{
	crash_t *c = arg;
	(void)result;
	int32_t before = job_pid(c->pool);
	coil_bytes_t out;
	coil_future_t *f;
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, c->job, NULL, 0), 0);
	ASSERT_EQ(coil_await(f, NULL), COIL_EBROKEN);
	const char *msg = coil_future_error_message(f);
	ASSERT(msg != NULL);
	char want[64];
	snprintf(want, sizeof(want), "worker process %d ", (int)before);
	ASSERT(strstr(msg, want) != NULL);
	if (c->expect && !strstr(msg, c->expect))
		TEST_FAIL_("message \"%s\" lacks \"%s\"", msg, c->expect);
	coil_future_release(f);
	ASSERT_EQ(coil_process_pool_run(c->pool, "echo", "after", 5, &out), 0);
	ASSERT_EQ(out.len, 5);
	coil_bytes_free(&out);
	ASSERT_NE(job_pid(c->pool), before);
	return 0;
}

static void crash_test(const char *job, const char *expect)
{
	crash_t c = { pool_make(1), job, expect };
	run_on(2, crash_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

TEST(job_calls_abort)
{
	crash_test("abort", "killed by signal 6 (SIGABRT)");
}

TEST(job_calls_exit_3)
{
	crash_test("exit3", "exited with status 3");
}

TEST(job_segfaults)
{
	crash_test("segv", "killed by signal 11 (SIGSEGV)");
}

/* --- cancellation and shutdown ----------------------------------------------- */

static int cancel_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	uint32_t ms = 100;
	char path[128];
	tmp_path(path, sizeof(path), "touch");
	coil_future_t *busy, *queued;
	ASSERT_EQ(coil_process_pool_submit(&busy, c->pool, "sleep", &ms, sizeof(ms)), 0);
	ASSERT_EQ(coil_process_pool_submit(&queued, c->pool, "touch", path, strlen(path)), 0);
	ASSERT(coil_future_cancel(queued, NULL));
	ASSERT_EQ(coil_await(queued, NULL), -ECANCELED);
	ASSERT_EQ(coil_await(busy, NULL), 0);
	/* The worker is free again: had the cancelled job been sent, it
	 * would have run before this one. */
	coil_bytes_t out;
	ASSERT_EQ(coil_process_pool_run(c->pool, "echo", "x", 1, &out), 0);
	coil_bytes_free(&out);
	ASSERT(access(path, F_OK) != 0);
	coil_future_release(busy);
	coil_future_release(queued);
	return 0;
}

TEST(cancel_queued_job)
{
	ctx_t c = { .pool = pool_make(1) };
	run_on(1, cancel_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

/* shutdown(wait, cancel_futures) with jobs pending: the running one
 * finishes, the queued ones end cancelled. */
static int shutdown_wait_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	uint32_t ms = 100;
	char path[128], in[160];
	tmp_path(path, sizeof(path), "busy");
	/* The busy job lasts long enough (1 s) that a slow test (Valgrind)
	 * still shuts the pool down while it runs. */
	snprintf(in, sizeof(in), "%s\n1000", path);
	coil_future_t *busy, *queued[5];
	ASSERT_EQ(coil_process_pool_submit(&busy, c->pool, "hang", in, strlen(in)), 0);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(coil_process_pool_submit(&queued[i], c->pool, "sleep", &ms, sizeof(ms)), 0);
	/* The first job is running when the pool is shut down. */
	wait_pid_file(path);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_process_pool_shutdown(c->pool, true, true), 0);
	c->pool = NULL;
	ASSERT_LT(now_ns() - t0, 5 * COIL_NSEC_PER_SEC);
	ASSERT_EQ(coil_await(busy, NULL), 0);
	for (int i = 0; i < 5; i++) {
		ASSERT_EQ(coil_await(queued[i], NULL), -ECANCELED);
		coil_future_release(queued[i]);
	}
	coil_future_release(busy);
	assert_no_children();
	return 0;
}

TEST(shutdown_waits_and_cancels_pending)
{
	ctx_t c = { .pool = pool_make(1) };
	run_on(2, shutdown_wait_main, &c);
}

/* shutdown(wait=false): the workers are killed, their jobs and the queued
 * ones fail with COIL_ECLOSED, at once. */
static int shutdown_kill_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	char p1[128], p2[128];
	tmp_path(p1, sizeof(p1), "hang");
	tmp_path(p2, sizeof(p2), "hang");
	coil_future_t *h1, *h2, *queued[3];
	ASSERT_EQ(coil_process_pool_submit(&h1, c->pool, "hang", p1, strlen(p1)), 0);
	ASSERT_EQ(coil_process_pool_submit(&h2, c->pool, "hang", p2, strlen(p2)), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_process_pool_submit(&queued[i], c->pool, "echo", "q", 1), 0);
	wait_pid_file(p1);
	wait_pid_file(p2);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_process_pool_shutdown(c->pool, false, false), 0);
	ASSERT_LT(now_ns() - t0, 2 * COIL_NSEC_PER_SEC);
	assert_no_children();
	ASSERT_EQ(coil_await(h1, NULL), COIL_ECLOSED);
	ASSERT_EQ(coil_await(h2, NULL), COIL_ECLOSED);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(coil_await(queued[i], NULL), COIL_ECLOSED);
		coil_future_release(queued[i]);
	}
	coil_future_release(h1);
	coil_future_release(h2);
	return 0;
}

TEST(shutdown_kills_with_jobs_pending)
{
	ctx_t c = { .pool = pool_make(2) };
	run_on(1, shutdown_kill_main, &c);
}

/* --- from threads and tasks -------------------------------------------------- */

static void *thread_submitter(void *arg)
{
	coil_process_pool_t *pool = arg;
	coil_cfuture_t *fs[20];
	char msg[20][16];
	for (int i = 0; i < 20; i++) {
		snprintf(msg[i], sizeof(msg[i]), "t%lu-%d", (unsigned long)pthread_self() % 1000, i);
		ASSERT_EQ(coil_process_pool_submit_threadsafe(&fs[i], pool, "echo", msg[i],
							      strlen(msg[i])), 0);
	}
	for (int i = 0; i < 20; i++) {
		void *r;
		ASSERT_EQ(coil_cfuture_wait(fs[i], COIL_FOREVER, &r), 0);
		coil_bytes_t *b = r;
		ASSERT_EQ(b->len, strlen(msg[i]));
		ASSERT(!memcmp(b->data, msg[i], b->len));
		coil_cfuture_release(fs[i]);
	}
	return NULL;
}

TEST(submit_from_plain_threads)
{
	coil_process_pool_t *pool = pool_make(2);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, thread_submitter, pool), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(coil_process_pool_shutdown(pool, true, false), 0);
	assert_no_children();
}

static int many_task(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	for (int i = 0; i < c->n; i++) {
		unsigned char in[1024];
		fill(in, sizeof(in), (unsigned)i);
		coil_bytes_t out;
		ASSERT_EQ(coil_process_pool_run(c->pool, "echo", in, sizeof(in), &out), 0);
		ASSERT_EQ(out.len, sizeof(in));
		ASSERT(!memcmp(out.data, in, sizeof(in)));
		coil_bytes_free(&out);
	}
	return 0;
}

static int many_main(void *arg, void **result)
{
	(void)result;
	coil_task_t *t[20];
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(coil_spawn(&t[i], many_task, arg, NULL), 0);
	for (int i = 0; i < 20; i++) {
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
		coil_task_detach(t[i]);
	}
	return 0;
}

TEST(many_jobs_from_many_tasks)
{
	ctx_t c = { .pool = pool_make(2), .n = 50 };
	run_on(2, many_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	assert_no_children();
}

/* Workers that die before they serve, again and again, break the pool:
 * its jobs fail with COIL_EBROKEN saying why, and so do later submits. */
static int broken_main(void *arg, void **result)
{
	ctx_t *c = arg;
	(void)result;
	coil_future_t *f;
	/* The pool may already be broken when the first submit comes (the
	 * workers die at once; under Valgrind the task starts late): then the
	 * submit itself says so.  Otherwise the job fails with the reason. */
	int rc = coil_process_pool_submit(&f, c->pool, "echo", "x", 1);
	if (rc == 0) {
		ASSERT_EQ(coil_await(f, NULL), COIL_EBROKEN);
		const char *msg = coil_future_error_message(f);
		ASSERT(msg != NULL);
		if (!strstr(msg, "exited with status 7 before it served"))
			TEST_FAIL_("unexpected message \"%s\"", msg);
		coil_future_release(f);
	} else {
		ASSERT_EQ(rc, COIL_EBROKEN);
	}
	ASSERT_EQ(coil_process_pool_submit(&f, c->pool, "echo", "x", 1), COIL_EBROKEN);
	return 0;
}

TEST(pool_breaks_when_workers_die_at_start)
{
	ASSERT_EQ(setenv("COIL_PP_TEST_DIE", "1", 1), 0);
	ctx_t c = { .pool = pool_make(1) };
	run_on(1, broken_main, &c);
	ASSERT_EQ(coil_process_pool_shutdown(c.pool, true, false), 0);
	unsetenv("COIL_PP_TEST_DIE");
	assert_no_children();
}

TEST_LIST(
	TEST_ENTRY(results_of_many_sizes),
	TEST_ENTRY(payloads_of_64mib_and_0_bytes),
	TEST_ENTRY(job_errors_and_bad_calls),
	TEST_ENTRY(register_rules),
	TEST_ENTRY(worker_killed_mid_job),
	TEST_ENTRY(job_calls_abort),
	TEST_ENTRY(job_calls_exit_3),
	TEST_ENTRY(job_segfaults),
	TEST_ENTRY(cancel_queued_job),
	TEST_ENTRY(shutdown_waits_and_cancels_pending),
	TEST_ENTRY(shutdown_kills_with_jobs_pending),
	TEST_ENTRY(submit_from_plain_threads),
	TEST_ENTRY(many_jobs_from_many_tasks),
	TEST_ENTRY(pool_breaks_when_workers_die_at_start)
)
