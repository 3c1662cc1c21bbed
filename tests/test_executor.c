/*
 * tests/test_executor.c: run_in_executor and thread pools
 * (coil/executor.h).
 *
 * Thousands of jobs from many tasks of a two-worker runtime and from plain
 * threads, with every result checked; errors and their messages; jobs
 * cancelled while queued (counted: they never run); the task awaiting a
 * running job cancelled (its result destroyed when it comes, no leak);
 * shutdown with and without waiting, with and without cancelling; the
 * default executor made on first use, its size, its idle threads exiting,
 * its shutdown with its runtime or loop; set_default_executor; a job that
 * blocks in a pool of short jobs not holding the others up.
 *
 * Jobs that must stay running while a test looks are held on a gate (a
 * semaphore the test opens). Tests wait for conditions (polling with a
 * deadline where a condition has no event), never for a fixed time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

/* --- helpers ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static bool under_valgrind(void)
{
	return getenv("COIL_VALGRIND") != NULL;
}

/* Runs fn as the main task of a runtime of `workers` workers. */
static int run_on(unsigned workers, coil_fn fn, void *arg)
{
	coil_runtime_t *rt = test_runtime_new(workers);
	void *res = NULL;
	int rc = coil_runtime_block_on(rt, fn, arg, &res);
	ASSERT_EQ(coil_runtime_shutdown(rt, 5 * COIL_NSEC_PER_SEC), 0);
	return rc;
}

static coil_executor_t *pool_make(unsigned max_threads, int64_t idle_ns)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.max_threads = max_threads;
	o.idle_timeout_ns = idle_ns;
	o.thread_name = "tpool";
	coil_executor_t *ex = NULL;
	ASSERT_EQ(coil_thread_pool_create(&ex, &o), 0);
	ASSERT(ex != NULL);
	return ex;
}

/* From a task: polls cond(arg) every millisecond until it holds, failing
 * after 10 s. */
static void task_wait_until(bool (*cond)(void *), void *arg)
{
	int64_t deadline = now_ns() + 10 * COIL_NSEC_PER_SEC;
	while (!cond(arg)) {
		ASSERT(now_ns() < deadline);
		ASSERT_EQ(coil_sleep(0.001), 0);
	}
}

/* From a plain thread, the same. */
static void thread_wait_until(bool (*cond)(void *), void *arg)
{
	int64_t deadline = now_ns() + 10 * COIL_NSEC_PER_SEC;
	while (!cond(arg)) {
		ASSERT(now_ns() < deadline);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* Jobs. */
static int job_double(void *arg, void **result)
{
	*result = (void *)((uintptr_t)arg * 2);
	return 0;
}

static atomic_int runs;

static int job_count(void *arg, void **result)
{
	atomic_fetch_add(&runs, 1);
	*result = arg;
	return 0;
}

/* A job that holds its thread until the gate opens. */
typedef struct gate {
	sem_t sem;
	atomic_int started;
} gate_t;

static void gate_init(gate_t *g)
{
	ASSERT_EQ(sem_init(&g->sem, 0, 0), 0);
	atomic_init(&g->started, 0);
}

static int job_gated(void *arg, void **result)
{
	gate_t *g = arg;
	atomic_fetch_add(&g->started, 1);
	while (sem_wait(&g->sem) != 0)
		;
	*result = (void *)(uintptr_t)7;
	return 0;
}

static bool gate_started(void *arg)
{
	return atomic_load(&((gate_t *)arg)->started) > 0;
}

/* --- many jobs ------------------------------------------------------------ */

typedef struct fan {
	coil_executor_t *ex;
	int tasks, per_task;
	atomic_int ok;
} fan_t;

static int fan_task(void *arg, void **result)
{
	fan_t *f = arg;
	(void)result;
	for (int i = 0; i < f->per_task; i++) {
		void *r = NULL;
		uintptr_t v = (uintptr_t)i * 1000 + 3;
		int rc = coil_run_in_executor(f->ex, job_double, (void *)v, &r);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ((uintptr_t)r, v * 2);
		atomic_fetch_add(&f->ok, 1);
	}
	return 0;
}

static int fan_main(void *arg, void **result)
{
	fan_t *f = arg;
	(void)result;
	coil_task_t **t = calloc((size_t)f->tasks, sizeof(*t));
	ASSERT(t != NULL);
	for (int i = 0; i < f->tasks; i++)
		ASSERT_EQ(coil_spawn(&t[i], fan_task, f, NULL), 0);
	for (int i = 0; i < f->tasks; i++) {
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
		coil_task_detach(t[i]);
	}
	free(t);
	return 0;
}

/* Thousands of jobs from 50 tasks of a two-worker runtime, on a pool of 4. */
TEST(many_jobs_from_many_tasks)
{
	fan_t f = { .tasks = 50, .per_task = under_valgrind() ? 20 : 100 };
	f.ex = pool_make(4, 0);
	ASSERT_EQ(run_on(2, fan_main, &f), 0);
	ASSERT_EQ(atomic_load(&f.ok), f.tasks * f.per_task);
	ASSERT_EQ(coil_executor_shutdown(f.ex, true, false), 0);
}

/* The same through the default executor (executor NULL). */
TEST(many_jobs_default_executor)
{
	fan_t f = { .ex = NULL, .tasks = 20, .per_task = under_valgrind() ? 20 : 100 };
	ASSERT_EQ(run_on(2, fan_main, &f), 0);
	ASSERT_EQ(atomic_load(&f.ok), f.tasks * f.per_task);
}

/* Submit many, then await them in order (W7's shape). */
static int burst_main(void *arg, void **result)
{
	coil_executor_t *ex = arg;
	(void)result;
	int n = under_valgrind() ? 500 : 5000;
	coil_future_t **fs = calloc((size_t)n, sizeof(*fs));
	ASSERT(fs != NULL);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(coil_executor_submit(&fs[i], ex, job_double, (void *)(uintptr_t)i, NULL), 0);
	uint64_t sum = 0;
	for (int i = 0; i < n; i++) {
		void *r;
		ASSERT_EQ(coil_await(fs[i], &r), 0);
		sum += (uintptr_t)r;
		coil_future_release(fs[i]);
	}
	ASSERT_EQ(sum, (uint64_t)n * (uint64_t)(n - 1));
	free(fs);
	return 0;
}

TEST(submit_burst_then_await_in_order)
{
	coil_executor_t *ex = pool_make(0, 0);
	ASSERT_EQ(run_on(2, burst_main, ex), 0);
	ASSERT_EQ(run_on(1, burst_main, ex), 0);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
}

/* --- from plain threads --------------------------------------------------- */

typedef struct sub_thread {
	coil_executor_t *ex;
	int base, n;
} sub_thread_t;

static void *submitter(void *arg)
{
	sub_thread_t *s = arg;
	coil_cfuture_t **fs = calloc((size_t)s->n, sizeof(*fs));
	ASSERT(fs != NULL);
	for (int i = 0; i < s->n; i++)
		ASSERT_EQ(coil_executor_submit_threadsafe(&fs[i], s->ex, job_double,
							  (void *)(uintptr_t)(s->base + i), NULL), 0);
	for (int i = 0; i < s->n; i++) {
		void *r = NULL;
		ASSERT_EQ(coil_cfuture_wait(fs[i], COIL_FOREVER, &r), 0);
		ASSERT_EQ((uintptr_t)r, (uintptr_t)(s->base + i) * 2);
		coil_cfuture_release(fs[i]);
	}
	free(fs);
	return NULL;
}

TEST(submit_from_plain_threads)
{
	coil_executor_t *ex = pool_make(3, 0);
	enum { T = 4 };
	pthread_t th[T];
	sub_thread_t s[T];
	for (int i = 0; i < T; i++) {
		s[i] = (sub_thread_t){ ex, i * 100000, under_valgrind() ? 100 : 1000 };
		ASSERT_EQ(pthread_create(&th[i], NULL, submitter, &s[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
}

/* A submit from a loop callback; a task awaits its future. */
typedef struct cb_sub {
	coil_executor_t *ex;
	coil_future_t *f;
	int rc;
} cb_sub_t;

static void submit_cb(void *arg)
{
	cb_sub_t *c = arg;
	c->rc = coil_executor_submit(&c->f, c->ex, job_double, (void *)(uintptr_t)21, NULL);
}

static int cb_main(void *arg, void **result)
{
	cb_sub_t *c = arg;
	(void)result;
	ASSERT_EQ(coil_loop_call_soon(coil_get_running_loop(), submit_cb, c, NULL), 0);
	while (!c->f)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(c->rc, 0);
	void *r;
	ASSERT_EQ(coil_await(c->f, &r), 0);
	ASSERT_EQ((uintptr_t)r, 42);
	coil_future_release(c->f);
	return 0;
}

TEST(submit_from_loop_callback)
{
	cb_sub_t c = { .ex = pool_make(2, 0) };
	ASSERT_EQ(run_on(1, cb_main, &c), 0);
	ASSERT_EQ(coil_executor_shutdown(c.ex, true, false), 0);
}

/* --- errors ------------------------------------------------------------- */

static int job_fail(void *arg, void **result)
{
	(void)result;
	coil_errorf("job %d failed", (int)(uintptr_t)arg);
	return -EIO;
}

static int errors_main(void *arg, void **result)
{
	coil_executor_t *ex = arg;
	(void)result;
	void *r = NULL;
	ASSERT_EQ(coil_run_in_executor(ex, job_fail, (void *)(uintptr_t)5, &r), -EIO);
	coil_future_t *f;
	ASSERT_EQ(coil_executor_submit(&f, ex, job_fail, (void *)(uintptr_t)6, NULL), 0);
	ASSERT_EQ(coil_await(f, NULL), -EIO);
	ASSERT_STR_EQ(coil_future_error_message(f), "job 6 failed");
	coil_future_release(f);
	ASSERT_EQ(coil_run_in_executor(ex, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_submit(NULL, ex, job_double, NULL, NULL), -EINVAL);
	return 0;
}

TEST(job_errors_and_messages)
{
	coil_executor_t *ex = pool_make(2, 0);
	ASSERT_EQ(run_on(1, errors_main, ex), 0);
	/* Outside a task and outside a loop. */
	ASSERT_EQ(coil_run_in_executor(ex, job_double, NULL, NULL), COIL_EINVALSTATE);
	coil_future_t *f = NULL;
	ASSERT_EQ(coil_executor_submit(&f, ex, job_double, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_submit_threadsafe(NULL, NULL, job_double, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	ASSERT_EQ(coil_executor_shutdown(NULL, true, false), -EINVAL);
}

/* --- cancellation ----------------------------------------------------------- */

typedef struct cq {
	coil_executor_t *ex;
	gate_t gate;
} cq_t;

/* One thread, held on the gate: 100 jobs behind it are cancelled and never
 * run. */
static int cancel_queued_main(void *arg, void **result)
{
	cq_t *c = arg;
	(void)result;
	atomic_store(&runs, 0);
	coil_future_t *first, *fs[100];
	ASSERT_EQ(coil_executor_submit(&first, c->ex, job_gated, &c->gate, NULL), 0);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(coil_executor_submit(&fs[i], c->ex, job_count, NULL, NULL), 0);
	for (int i = 0; i < 100; i++)
		ASSERT(coil_future_cancel(fs[i], NULL));
	ASSERT_EQ(sem_post(&c->gate.sem), 0);
	void *r;
	ASSERT_EQ(coil_await(first, &r), 0);
	ASSERT_EQ((uintptr_t)r, 7);
	coil_future_release(first);
	for (int i = 0; i < 100; i++) {
		ASSERT(coil_future_cancelled(fs[i]));
		ASSERT_EQ(coil_await(fs[i], NULL), -ECANCELED);
		coil_future_release(fs[i]);
	}
	/* Every job the pool still had has been looked at once the pool
	 * was shut down and waited for. */
	ASSERT_EQ(coil_executor_shutdown(coil_executor_ref(c->ex), true, false), 0);
	ASSERT_EQ(atomic_load(&runs), 0);
	return 0;
}

TEST(cancel_queued_jobs_never_run)
{
	cq_t c = { .ex = pool_make(1, 0) };
	gate_init(&c.gate);
	ASSERT_EQ(run_on(2, cancel_queued_main, &c), 0);
	ASSERT_EQ(coil_executor_shutdown(c.ex, true, false), 0);
	sem_destroy(&c.gate.sem);
}

/* The same from a plain thread, with concurrent futures. */
TEST(cancel_queued_threadsafe_jobs)
{
	coil_executor_t *ex = pool_make(1, 0);
	gate_t g;
	gate_init(&g);
	atomic_store(&runs, 0);
	coil_cfuture_t *first, *fs[50];
	ASSERT_EQ(coil_executor_submit_threadsafe(&first, ex, job_gated, &g, NULL), 0);
	for (int i = 0; i < 50; i++)
		ASSERT_EQ(coil_executor_submit_threadsafe(&fs[i], ex, job_count, NULL, NULL), 0);
	for (int i = 0; i < 50; i++)
		ASSERT(coil_cfuture_cancel(fs[i]));
	ASSERT_EQ(sem_post(&g.sem), 0);
	ASSERT_EQ(coil_cfuture_wait(first, COIL_FOREVER, NULL), 0);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	ASSERT_EQ(atomic_load(&runs), 0);
	for (int i = 0; i < 50; i++) {
		ASSERT_EQ(coil_cfuture_wait(fs[i], 0, NULL), -ECANCELED);
		coil_cfuture_release(fs[i]);
	}
	coil_cfuture_release(first);
	sem_destroy(&g.sem);
}

/* The task awaiting a running job is cancelled: the await returns
 * -ECANCELED at once, and the job's result is destroyed when it comes. */
static atomic_int dtor_calls;

static void counted_free(void *p)
{
	free(p);
	atomic_fetch_add(&dtor_calls, 1);
}

static int job_gated_alloc(void *arg, void **result)
{
	gate_t *g = arg;
	atomic_fetch_add(&g->started, 1);
	while (sem_wait(&g->sem) != 0)
		;
	*result = malloc(64);
	return *result ? 0 : -ENOMEM;
}

typedef struct ca {
	coil_executor_t *ex;
	gate_t gate;
} ca_t;

static int awaiting_task(void *arg, void **result)
{
	ca_t *c = arg;
	(void)result;
	void *r = NULL;
	int rc = coil_run_in_executor_ex(c->ex, job_gated_alloc, &c->gate, counted_free, &r);
	ASSERT(r == NULL);
	return rc;
}

static bool one_dtor(void *arg)
{
	(void)arg;
	return atomic_load(&dtor_calls) == 1;
}

static int cancel_awaiting_main(void *arg, void **result)
{
	ca_t *c = arg;
	(void)result;
	atomic_store(&dtor_calls, 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, awaiting_task, c, NULL), 0);
	task_wait_until(gate_started, &c->gate);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	coil_task_detach(t);
	/* The job is still running: let it finish; its result is freed. */
	ASSERT_EQ(atomic_load(&dtor_calls), 0);
	ASSERT_EQ(sem_post(&c->gate.sem), 0);
	task_wait_until(one_dtor, NULL);
	return 0;
}

TEST(cancel_task_awaiting_running_job)
{
	ca_t c = { .ex = pool_make(2, 0) };
	gate_init(&c.gate);
	ASSERT_EQ(run_on(2, cancel_awaiting_main, &c), 0);
	ASSERT_EQ(coil_executor_shutdown(c.ex, true, false), 0);
	ASSERT_EQ(atomic_load(&dtor_calls), 1);
	sem_destroy(&c.gate.sem);
}

/* A task cancelled while its job is still queued: the job never runs. */
static atomic_int submitted;

static int queued_awaiter(void *arg, void **result)
{
	(void)result;
	/* Counted before the submit, which does not yield: once the count
	 * is seen by a task of this one-worker runtime, the job is queued
	 * and this task waits in its await. */
	atomic_fetch_add(&submitted, 1);
	return coil_run_in_executor(arg, job_count, NULL, NULL);
}

static bool ten_submitted(void *arg)
{
	(void)arg;
	return atomic_load(&submitted) == 10;
}

static int cancel_queued_awaiter_main(void *arg, void **result)
{
	cq_t *c = arg;
	(void)result;
	atomic_store(&runs, 0);
	atomic_store(&submitted, 0);
	coil_future_t *first;
	ASSERT_EQ(coil_executor_submit(&first, c->ex, job_gated, &c->gate, NULL), 0);
	coil_task_t *t[10];
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(coil_spawn(&t[i], queued_awaiter, c->ex, NULL), 0);
	task_wait_until(ten_submitted, NULL);
	for (int i = 0; i < 10; i++) {
		coil_task_cancel(t[i], NULL);
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), -ECANCELED);
		coil_task_detach(t[i]);
	}
	ASSERT_EQ(sem_post(&c->gate.sem), 0);
	ASSERT_EQ(coil_await(first, NULL), 0);
	coil_future_release(first);
	ASSERT_EQ(coil_executor_shutdown(coil_executor_ref(c->ex), true, false), 0);
	ASSERT_EQ(atomic_load(&runs), 0);
	return 0;
}

TEST(cancel_task_awaiting_queued_job)
{
	cq_t c = { .ex = pool_make(1, 0) };
	gate_init(&c.gate);
	ASSERT_EQ(run_on(1, cancel_queued_awaiter_main, &c), 0);
	ASSERT_EQ(coil_executor_shutdown(c.ex, true, false), 0);
	sem_destroy(&c.gate.sem);
}

/* --- shutdown ----------------------------------------------------------------- */

static bool no_threads(void *arg)
{
	return coil_executor_threads(arg) == 0;
}

/* shutdown(wait=false, cancel_futures=true) with jobs pending: the queued
 * ones end cancelled and never run, the running one finishes, later
 * submits are refused, and the threads go by themselves. */
static int shutdown_cancel_main(void *arg, void **result)
{
	cq_t *c = arg;
	(void)result;
	atomic_store(&runs, 0);
	coil_future_t *first, *fs[50];
	ASSERT_EQ(coil_executor_submit(&first, c->ex, job_gated, &c->gate, NULL), 0);
	task_wait_until(gate_started, &c->gate);
	for (int i = 0; i < 50; i++)
		ASSERT_EQ(coil_executor_submit(&fs[i], c->ex, job_count, NULL, NULL), 0);
	coil_executor_ref(c->ex); /* to watch its threads go */
	ASSERT_EQ(coil_executor_shutdown(c->ex, false, true), 0);
	coil_future_t *late;
	ASSERT_EQ(coil_executor_submit(&late, c->ex, job_count, NULL, NULL), COIL_ECLOSED);
	for (int i = 0; i < 50; i++) {
		ASSERT_EQ(coil_await(fs[i], NULL), -ECANCELED);
		coil_future_release(fs[i]);
	}
	ASSERT_EQ(sem_post(&c->gate.sem), 0);
	void *r;
	ASSERT_EQ(coil_await(first, &r), 0);
	ASSERT_EQ((uintptr_t)r, 7);
	coil_future_release(first);
	task_wait_until(no_threads, c->ex);
	ASSERT_EQ(atomic_load(&runs), 0);
	coil_executor_release(c->ex);
	return 0;
}

TEST(shutdown_nowait_cancel_futures)
{
	cq_t c = { .ex = pool_make(1, 0) };
	gate_init(&c.gate);
	ASSERT_EQ(run_on(2, shutdown_cancel_main, &c), 0);
	sem_destroy(&c.gate.sem);
}

/* shutdown(wait=true, cancel_futures=false) runs what is queued first. */
TEST(shutdown_wait_runs_queued_jobs)
{
	coil_executor_t *ex = pool_make(2, 0);
	atomic_store(&runs, 0);
	coil_cfuture_t *fs[200];
	for (int i = 0; i < 200; i++)
		ASSERT_EQ(coil_executor_submit_threadsafe(&fs[i], ex, job_count,
							  (void *)(uintptr_t)i, NULL), 0);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	ASSERT_EQ(atomic_load(&runs), 200);
	for (int i = 0; i < 200; i++) {
		void *r;
		ASSERT_EQ(coil_cfuture_wait(fs[i], 0, &r), 0);
		ASSERT_EQ((uintptr_t)r, (uintptr_t)i);
		coil_cfuture_release(fs[i]);
	}
}

/* Dropping the last reference shuts the pool down and waits. */
TEST(release_last_reference)
{
	coil_executor_t *ex = pool_make(2, 0);
	atomic_store(&runs, 0);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(coil_executor_submit_threadsafe(NULL, ex, job_count, NULL, NULL), 0);
	coil_executor_release(ex);
	ASSERT_EQ(atomic_load(&runs), 100);
}

/* --- the default executor --------------------------------------------------- */

static bool default_idle(void *arg)
{
	(void)arg;
	return coil_executor_threads(coil_get_default_executor(NULL)) == 0;
}

static int job_thread_name(void *arg, void **result);

static int default_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT(coil_get_default_executor(NULL) == NULL);
	char *name = NULL;
	ASSERT_EQ(coil_run_in_executor(NULL, job_thread_name, NULL, (void **)&name), 0);
	ASSERT(!strncmp(name, "coil-pool-", 10)); /* ran on the default pool */
	free(name);
	coil_executor_t *ex = coil_get_default_executor(NULL);
	ASSERT(ex != NULL);
	/* Its threads exit once idle for the (short) idle timeout. */
	task_wait_until(default_idle, NULL);
	/* And come back on demand. */
	void *r;
	ASSERT_EQ(coil_run_in_executor(NULL, job_double, (void *)(uintptr_t)5, &r), 0);
	ASSERT_EQ((uintptr_t)r, 10);
	ASSERT(coil_get_default_executor(NULL) == ex);
	return 0;
}

TEST(default_executor_first_use_and_idle_exit)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.idle_timeout_ns = 30 * 1000000;
	ASSERT_EQ(coil_set_default_executor_opts(&o), 0);
	ASSERT_EQ(run_on(2, default_main, NULL), 0);
	ASSERT_EQ(coil_set_default_executor_opts(NULL), 0);
}

/* A joined thread can linger in /proc for a moment after pthread_join
 * returned (the kernel wakes the joiner before it removes the task). */
static bool none_named(void *prefix)
{
	return test_threads_named(prefix) == 0;
}

/* The default pool's size is min(32, CPUs + 4): that many jobs block at
 * once, and no more threads than that are ever started. */
typedef struct sized {
	gate_t gate;
	int max;
} sized_t;

static bool all_max_started(void *arg)
{
	sized_t *s = arg;
	return atomic_load(&s->gate.started) == s->max &&
	       coil_executor_threads(coil_get_default_executor(NULL)) == (unsigned)s->max;
}

static int default_size_main(void *arg, void **result)
{
	sized_t *s = arg;
	(void)result;
	int n = s->max + 3;
	coil_future_t **fs = calloc((size_t)n, sizeof(*fs));
	ASSERT(fs != NULL);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(coil_executor_submit(&fs[i], NULL, job_gated, &s->gate, NULL), 0);
	task_wait_until(all_max_started, s);
	ASSERT_EQ(test_threads_named("coil-pool"), s->max);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(sem_post(&s->gate.sem), 0);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(coil_await(fs[i], NULL), 0);
		coil_future_release(fs[i]);
	}
	ASSERT_EQ(atomic_load(&s->gate.started), n);
	free(fs);
	return 0;
}

TEST(default_executor_size)
{
	cpu_set_t set;
	ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	sized_t s = { .max = CPU_COUNT(&set) + 4 > 32 ? 32 : CPU_COUNT(&set) + 4 };
	gate_init(&s.gate);
	ASSERT_EQ(run_on(2, default_size_main, &s), 0);
	/* The runtime's shutdown shut its default executor down. */
	thread_wait_until(none_named, "coil-pool");
	sem_destroy(&s.gate.sem);
}

/* coil_run's loop owns its default executor and ends it when it closes. */
static int loop_owner_main(void *arg, void **result)
{
	(void)arg;
	*result = NULL;
	void *r;
	ASSERT_EQ(coil_run_in_executor(NULL, job_double, (void *)(uintptr_t)1, &r), 0);
	ASSERT_GE(test_threads_named("coil-pool"), 1);
	return 0;
}

TEST(default_executor_ends_with_its_loop)
{
	ASSERT_EQ(coil_run(loop_owner_main, NULL, NULL, NULL), 0);
	thread_wait_until(none_named, "coil-pool");
}

/* set_default_executor: run_in_executor(NULL) then runs on the pool set. */
static int job_thread_name(void *arg, void **result)
{
	(void)arg;
	char *name = malloc(16);
	if (!name)
		return -ENOMEM;
	pthread_getname_np(pthread_self(), name, 16);
	*result = name;
	return 0;
}

static int set_default_main(void *arg, void **result)
{
	coil_executor_t *mine = arg;
	(void)result;
	ASSERT_EQ(coil_set_default_executor(NULL, mine), 0);
	ASSERT(coil_get_default_executor(NULL) == mine);
	char *name = NULL;
	ASSERT_EQ(coil_run_in_executor(NULL, job_thread_name, NULL, (void **)&name), 0);
	ASSERT(!strncmp(name, "tpool-", 6));
	free(name);
	ASSERT_EQ(coil_set_default_executor(NULL, NULL), 0);
	ASSERT(coil_get_default_executor(NULL) == NULL);
	ASSERT_EQ(coil_run_in_executor(NULL, job_thread_name, NULL, (void **)&name), 0);
	ASSERT(!strncmp(name, "coil-pool-", 10));
	free(name);
	return 0;
}

TEST(set_default_executor)
{
	coil_executor_t *mine = pool_make(2, 0);
	ASSERT_EQ(run_on(2, set_default_main, mine), 0);
	/* It was no longer the default when the runtime closed: the runtime
	 * only let go of it, and it still works. */
	ASSERT_EQ(coil_executor_submit_threadsafe(NULL, mine, job_double, NULL, NULL), 0);
	ASSERT_EQ(coil_executor_shutdown(mine, true, false), 0);
}

/* --- scheduling ----------------------------------------------------------------- */

/* Jobs that block run side by side (the factorial example's premise):
 * three jobs that each wait until all three are running at once can only
 * all succeed if the pool gave each a thread of its own. */
typedef struct rendezvous {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int arrived, want;
} rendezvous_t;

static int job_rendezvous(void *arg, void **result)
{
	rendezvous_t *r = arg;
	(void)result;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	r->arrived++;
	pthread_cond_broadcast(&r->cv);
	int rc = 0;
	while (r->arrived % r->want && rc == 0)
		rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
	pthread_mutex_unlock(&r->mu);
	return rc ? -ETIMEDOUT : 0;
}

static int parallel_main(void *arg, void **result)
{
	(void)result;
	rendezvous_t r = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 3 };
	coil_future_t *fs[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_executor_submit(&fs[i], arg, job_rendezvous, &r, NULL), 0);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(coil_await(fs[i], NULL), 0);
		coil_future_release(fs[i]);
	}
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return 0;
}

TEST(blocking_jobs_run_side_by_side)
{
	coil_executor_t *ex = pool_make(0, 0);
	ASSERT_EQ(run_on(1, parallel_main, ex), 0);
	/* Again, once the pool has measured its jobs as long. */
	ASSERT_EQ(run_on(1, parallel_main, ex), 0);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
}

/* A pool used to short jobs (lazy) meets one that blocks: the jobs
 * submitted after it still run while it blocks (the watcher, or a new
 * thread, takes them). */
static int lazy_block_main(void *arg, void **result)
{
	cq_t *c = arg;
	(void)result;
	for (int i = 0; i < 2000; i++) {
		void *r;
		ASSERT_EQ(coil_run_in_executor(c->ex, job_double, (void *)(uintptr_t)i, &r), 0);
	}
	coil_future_t *blocked;
	ASSERT_EQ(coil_executor_submit(&blocked, c->ex, job_gated, &c->gate, NULL), 0);
	task_wait_until(gate_started, &c->gate);
	for (int i = 0; i < 20; i++) {
		void *r;
		ASSERT_EQ(coil_run_in_executor(c->ex, job_double, (void *)(uintptr_t)i, &r), 0);
		ASSERT_EQ((uintptr_t)r, (uintptr_t)i * 2);
	}
	ASSERT(!coil_future_done(blocked));
	ASSERT_EQ(sem_post(&c->gate.sem), 0);
	ASSERT_EQ(coil_await(blocked, NULL), 0);
	coil_future_release(blocked);
	return 0;
}

TEST(blocking_job_does_not_hold_up_short_ones)
{
	cq_t c = { .ex = pool_make(4, 0) };
	gate_init(&c.gate);
	ASSERT_EQ(run_on(2, lazy_block_main, &c), 0);
	ASSERT_EQ(coil_executor_shutdown(c.ex, true, false), 0);
	sem_destroy(&c.gate.sem);
}

/* Idle threads of a pool exit after its idle timeout: the pool counts
 * them out, then the kernel (a thread leaves /proc a moment after it has
 * left the pool's count). */

TEST(idle_threads_exit)
{
	coil_executor_t *ex = pool_make(4, 20 * 1000000);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(coil_executor_submit_threadsafe(NULL, ex, job_count, NULL, NULL), 0);
	thread_wait_until(no_threads, ex);
	thread_wait_until(none_named, "tpool");
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
}

TEST_LIST(
	TEST_ENTRY(many_jobs_from_many_tasks),
	TEST_ENTRY(many_jobs_default_executor),
	TEST_ENTRY(submit_burst_then_await_in_order),
	TEST_ENTRY(submit_from_plain_threads),
	TEST_ENTRY(submit_from_loop_callback),
	TEST_ENTRY(job_errors_and_messages),
	TEST_ENTRY(cancel_queued_jobs_never_run),
	TEST_ENTRY(cancel_queued_threadsafe_jobs),
	TEST_ENTRY(cancel_task_awaiting_running_job),
	TEST_ENTRY(cancel_task_awaiting_queued_job),
	TEST_ENTRY(shutdown_nowait_cancel_futures),
	TEST_ENTRY(shutdown_wait_runs_queued_jobs),
	TEST_ENTRY(release_last_reference),
	TEST_ENTRY(default_executor_first_use_and_idle_exit),
	TEST_ENTRY(default_executor_size),
	TEST_ENTRY(default_executor_ends_with_its_loop),
	TEST_ENTRY(set_default_executor),
	TEST_ENTRY(blocking_jobs_run_side_by_side),
	TEST_ENTRY(blocking_job_does_not_hold_up_short_ones),
	TEST_ENTRY(idle_threads_exit)
)
