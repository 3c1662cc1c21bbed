/*
 * tests/test_race_exec.c: the thread pool and the default executor raced
 * across the workers of a runtime and plain threads.
 *
 * A driver task pinned on worker 0 does one side of each race, a helper
 * task pinned on worker 1 (or a plain thread) the other, after random
 * spins, many rounds over. Every job's result is counted when it is made
 * and when it is destroyed: whoever wins a race between a cancellation and
 * a job's completion, each result is destroyed exactly once (ASan sees a
 * double free, the count a leak), each future completes once, and every
 * submission accepted is either run or cancelled, never dropped. The
 * default executor is raced too: replaced on one worker while the other
 * submits to it (no submission may be refused for it), and used by a
 * loop callback while the runtime shuts it down (no pool may outlive the
 * runtime). The assertions hold for every interleaving; a sanitizer sees
 * the unsynchronised access or the use after free behind a failure.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"
#include "race.h"

static int rounds(int normal)
{
	if (under_valgrind())
		return 5;
	return TEST_TSAN ? normal / 4 : normal;
}

static coil_executor_t *pool_make(unsigned threads)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.max_threads = threads;
	coil_executor_t *ex = NULL;
	ASSERT_EQ(coil_thread_pool_create(&ex, &o), 0);
	return ex;
}

/* ---- counted results ---- */

static atomic_long made, destroyed, ran;

static void counts_reset(void)
{
	atomic_store(&made, 0);
	atomic_store(&destroyed, 0);
	atomic_store(&ran, 0);
}

static void result_dtor(void *p)
{
	ASSERT_EQ(*(int *)p, 42);
	*(int *)p = -1;
	free(p);
	atomic_fetch_add(&destroyed, 1);
}

/* A short job with a result that owns memory. */
static int job_make(void *arg, void **result)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	int *p = malloc(sizeof(*p));
	ASSERT(p != NULL);
	*p = 42;
	atomic_fetch_add(&made, 1);
	*result = p;
	return 0;
}

/* Runs the loop until every result made was destroyed: those of jobs
 * whose callers gave up are destroyed on the future's loop once their
 * completion reaches it. */
static void drain_results(void)
{
	int64_t t0 = coil_loop_time_ns(NULL);
	while (atomic_load(&destroyed) != atomic_load(&made)) {
		ASSERT(coil_loop_time_ns(NULL) - t0 < 20 * COIL_NSEC_PER_SEC);
		ASSERT_EQ(coil_sleep(0.0005), 0);
	}
}

/* ---- the helper on worker 1 ---- */

/* --- run_in_executor: the caller cancelled as its job completes --- */

typedef struct rie {
	coil_executor_t *ex;
	coil_task_t *victim;
	atomic_bool started;
	int rc;
} rie_t;

static int rie_victim(void *arg, void **result)
{
	(void)result;
	rie_t *r = arg;
	atomic_store(&r->started, true);
	void *res = NULL;
	r->rc = coil_run_in_executor_ex(r->ex, job_make, NULL, result_dtor, &res);
	if (r->rc == 0) {
		ASSERT(res != NULL);
		result_dtor(res);
	} else {
		ASSERT_EQ(r->rc, -ECANCELED);
	}
	return 0;
}

static void job_cancel_victim(void *arg)
{
	rie_t *r = arg;
	coil_task_cancel(r->victim, NULL);
}

/*
 * The victim (pinned on worker 0, or free to move in odd rounds) runs a
 * job in the pool and awaits it; the helper on worker 1 cancels the
 * victim while the job ends and its completion comes back. The victim
 * gets the result (and frees it) or -ECANCELED (and the result, if the
 * job ran, is destroyed by the pool's side): each exactly once.
 */
static int rie_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_executor_t *ex = pool_make(2);
	uint64_t rng = 99;
	int n = rounds(600), got = 0;
	for (int i = 0; i < n; i++) {
		rie_t r = { .ex = ex };
		coil_spawn_opts_t o = { .pinned = i % 2 == 0 };
		ASSERT_EQ(coil_spawn(&r.victim, rie_victim, &r, &o), 0);
		while (!atomic_load(&r.started))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(job_cancel_victim, &r);
		jitter(&rng);
		ASSERT_EQ(coil_await(coil_task_future(r.victim), NULL), 0);
		helper_wait();
		got += r.rc == 0;
		coil_task_detach(r.victim);
	}
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	drain_results();
	ASSERT_EQ(atomic_load(&made), atomic_load(&ran));
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: %d got the result, %ld jobs ran\n", n, got,
			atomic_load(&ran));
	return 0;
}

TEST(run_in_executor_cancelled_as_its_job_completes)
{
	counts_reset();
	race_drive(rie_body, NULL);
	ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
}

/* --- a submitted future cancelled from another worker as its job ends --- */

/*
 * The driver submits a job with coil_executor_submit (its future belongs
 * to worker 0's loop) and awaits it; the helper on worker 1 cancels the
 * future while the pool completes it. The await returns the result or
 * -ECANCELED, the done-callback runs once, and the result is destroyed
 * once, when the future goes (or by the pool's side when it was refused).
 */
static int sub_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_executor_t *ex = pool_make(2);
	uint64_t rng = 5;
	int n = rounds(800);
	for (int i = 0; i < n; i++) {
		race_fut_t s = { 0 };
		atomic_init(&s.callbacks, 0);
		ASSERT_EQ(coil_executor_submit(&s.f, ex, job_make, NULL, result_dtor), 0);
		ASSERT_EQ(coil_future_add_done_callback(s.f, race_counted_done, &s), 0);
		helper_go(race_cancel_job, &s);
		jitter(&rng);
		void *res = NULL;
		int rc = coil_await(s.f, &res);
		if (rc == 0)
			ASSERT_EQ(*(int *)res, 42);
		else
			ASSERT_EQ(rc, -ECANCELED);
		helper_wait();
		while (atomic_load(&s.callbacks) == 0)
			ASSERT_EQ(coil_sleep(0), 0);
		coil_future_release(s.f);
		ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ(atomic_load(&s.callbacks), 1);
	}
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	drain_results();
	return 0;
}

TEST(submitted_future_cancelled_from_another_worker_as_its_job_ends)
{
	counts_reset();
	race_drive(sub_body, NULL);
	ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
}

/* --- concurrent futures cancelled by one thread as another completes --- */

typedef struct cf {
	coil_cfuture_t *f;
	atomic_bool go;
} cf_t;

static void *cf_canceller(void *arg)
{
	cf_t *c = arg;
	while (!atomic_load(&c->go))
		sched_yield();
	coil_cfuture_cancel(c->f);
	return NULL;
}

/*
 * A plain thread submits with coil_executor_submit_threadsafe and a second
 * one cancels the concurrent future while a pool thread completes it: the
 * future ends once (result or cancelled), and the result is destroyed
 * once, by whichever side lets go of it last.
 */
TEST(cfuture_cancel_racing_the_pool_thread_completing_it)
{
	counts_reset();
	coil_executor_t *ex = pool_make(2);
	uint64_t rng = 11;
	int n = rounds(1000);
	for (int i = 0; i < n; i++) {
		cf_t c;
		atomic_init(&c.go, false);
		ASSERT_EQ(coil_executor_submit_threadsafe(&c.f, ex, job_make, NULL,
							  result_dtor), 0);
		pthread_t th;
		ASSERT_EQ(pthread_create(&th, NULL, cf_canceller, &c), 0);
		jitter(&rng);
		atomic_store(&c.go, true);
		void *res = NULL;
		int rc = coil_cfuture_wait(c.f, COIL_FOREVER, &res);
		if (rc == 0)
			ASSERT_EQ(*(int *)res, 42);
		else
			ASSERT_EQ(rc, -ECANCELED);
		pthread_join(th, NULL);
		coil_cfuture_release(c.f);
	}
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	ASSERT_EQ(atomic_load(&made), atomic_load(&ran));
	ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
}

/* --- shutdown racing submissions from a task and a plain thread --- */

#define SH_BATCH 16

typedef struct sh {
	coil_executor_t *ex;      /* the thread's own reference */
	atomic_bool go;
	int accepted;
	coil_cfuture_t *f[SH_BATCH];
} sh_t;

static void *sh_thread(void *arg)
{
	sh_t *s = arg;
	while (!atomic_load(&s->go))
		sched_yield();
	for (int i = 0; i < SH_BATCH; i++) {
		int rc = coil_executor_submit_threadsafe(&s->f[s->accepted], s->ex,
							 job_make, NULL, result_dtor);
		if (rc == COIL_ECLOSED)
			break;
		ASSERT_EQ(rc, 0);
		s->accepted++;
	}
	coil_executor_release(s->ex);
	return NULL;
}

typedef struct shjob {
	coil_executor_t *ex;
	bool cancel;
	bool wait;
} shjob_t;

static void job_shutdown(void *arg)
{
	shjob_t *j = arg;
	ASSERT_EQ(coil_executor_shutdown(j->ex, j->wait, j->cancel), 0);
}

/*
 * Each round: a new pool; a plain thread submits jobs with
 * coil_executor_submit_threadsafe, the driver on worker 0 with
 * coil_executor_submit, and the helper on worker 1 shuts the pool down
 * (with or without waiting, cancelling the queued jobs or not). Each
 * submission either fails with COIL_ECLOSED or is accepted, and every
 * accepted one completes: its job ran, or it ended cancelled (only when
 * the shutdown cancelled). Every result is destroyed once.
 */
static int sh_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 3;
	int n = rounds(200);
	for (int i = 0; i < n; i++) {
		coil_executor_t *ex = pool_make(2);
		sh_t s = { .ex = coil_executor_ref(ex) };
		atomic_init(&s.go, false);
		shjob_t j = { .ex = ex, .cancel = rnd(&rng) & 1, .wait = rnd(&rng) & 1 };
		pthread_t th;
		ASSERT_EQ(pthread_create(&th, NULL, sh_thread, &s), 0);
		/* The driver's submissions need a reference of their own
		 * for as long as they may be under way. */
		coil_executor_ref(ex);
		atomic_store(&s.go, true);
		helper_go(job_shutdown, &j);
		jitter(&rng);
		coil_future_t *f[SH_BATCH];
		int accepted = 0;
		for (int k = 0; k < SH_BATCH; k++) {
			int rc = coil_executor_submit(&f[accepted], ex, job_make, NULL,
						      result_dtor);
			if (rc == COIL_ECLOSED)
				break;
			ASSERT_EQ(rc, 0);
			accepted++;
		}
		coil_executor_release(ex);
		for (int k = 0; k < accepted; k++) {
			int rc = coil_await(f[k], NULL);
			ASSERT(rc == 0 || (rc == -ECANCELED && j.cancel));
			coil_future_release(f[k]);
		}
		helper_wait();
		pthread_join(th, NULL);
		for (int k = 0; k < s.accepted; k++) {
			int rc = coil_cfuture_wait(s.f[k], 10 * COIL_NSEC_PER_SEC, NULL);
			ASSERT(rc == 0 || (rc == -ECANCELED && j.cancel));
			coil_cfuture_release(s.f[k]);
		}
	}
	drain_results();
	ASSERT_EQ(atomic_load(&made), atomic_load(&ran));
	return 0;
}

TEST(shutdown_racing_submissions_from_a_task_and_a_thread)
{
	counts_reset();
	race_drive(sh_body, NULL);
	ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
}

/* --- the default executor made by two workers at once, then shut down --- */

static atomic_int dflt_started;

static int dflt_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&dflt_started, 1);
	/* Both workers' tasks reach their first use together. */
	while (atomic_load(&dflt_started) < 2)
		sched_yield();
	for (int i = 0; i < 4; i++) {
		void *res = NULL;
		ASSERT_EQ(coil_run_in_executor_ex(NULL, job_make, NULL, result_dtor, &res), 0);
		result_dtor(res);
	}
	/* A job left behind: the runtime's shutdown waits for it and
	 * destroys its result. */
	coil_future_t *f = NULL;
	ASSERT_EQ(coil_executor_submit(&f, NULL, job_make, NULL, result_dtor), 0);
	coil_future_release(f);
	return 0;
}

/*
 * Tasks on both workers make the runtime's default executor on first use
 * at the same moment and leave a job running in it as they end; the
 * runtime's shutdown (from the main thread) then waits for that job. The
 * two workers share one executor, every job runs and every result is
 * destroyed once, with no pool thread left behind.
 */
TEST(default_executor_made_by_two_workers_then_shut_down)
{
	counts_reset();
	int n = rounds(40);
	for (int i = 0; i < n; i++) {
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&dflt_started, 0);
		coil_spawn_opts_t pinned = { .pinned = true };
		coil_cfuture_t *a = NULL, *b = NULL;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&a, coil_runtime_loop(rt, 0),
							     dflt_task, NULL, &pinned), 0);
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&b, coil_runtime_loop(rt, 1),
							     dflt_task, NULL, &pinned), 0);
		ASSERT_EQ(coil_cfuture_wait(a, COIL_FOREVER, NULL), 0);
		ASSERT_EQ(coil_cfuture_wait(b, COIL_FOREVER, NULL), 0);
		coil_cfuture_release(a);
		coil_cfuture_release(b);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		ASSERT_EQ(atomic_load(&made), (long)(i + 1) * 10);
		ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
	}
}

/* --- the default executor replaced while a task on another worker uses it --- */

typedef struct repl {
	atomic_bool stop;
	atomic_int swaps;
} repl_t;

static void job_forget_default(void *arg)
{
	repl_t *r = arg;
	/* Forgets the default: the next use makes a new one, and the one
	 * coil made is shut down (without waiting). */
	while (!atomic_load(&r->stop)) {
		ASSERT_EQ(coil_set_default_executor(NULL, NULL), 0);
		atomic_fetch_add(&r->swaps, 1);
		sched_yield();
	}
}

/*
 * The helper on worker 1 keeps replacing the runtime's default executor
 * while the driver on worker 0 submits to the default (ex NULL). Each
 * submission goes either to the default before the replacement (whose
 * accepted jobs still run) or to the one after: none may fail because the
 * default it looked up was shut down meanwhile.
 */
static int repl_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	repl_t r;
	atomic_init(&r.stop, false);
	atomic_init(&r.swaps, 0);
	helper_go(job_forget_default, &r);
	/* Submits for as long as the helper has not replaced the default
	 * often enough (it may start late), within bounds. */
	int n = 0, swaps = rounds(400), most = rounds(100000);
	while (n < 1000 || (atomic_load(&r.swaps) < swaps && n < most)) {
		n++;
		coil_future_t *f = NULL;
		ASSERT_EQ(coil_executor_submit(&f, NULL, job_make, NULL, result_dtor), 0);
		coil_future_release(f);
		if (n % 64 == 0)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	atomic_store(&r.stop, true);
	helper_wait();
	/* The jobs still queued in replaced defaults run all the same (their
	 * shutdown does not cancel them). */
	int64_t t0 = coil_loop_time_ns(NULL);
	while (atomic_load(&ran) != n) {
		ASSERT(coil_loop_time_ns(NULL) - t0 < 20 * COIL_NSEC_PER_SEC);
		ASSERT_EQ(coil_sleep(0.0005), 0);
	}
	drain_results();
	ASSERT_EQ(atomic_load(&made), n);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d submissions, %d replacements\n", n,
			atomic_load(&r.swaps));
	return 0;
}

TEST(default_executor_replaced_while_another_worker_submits)
{
	counts_reset();
	race_drive(repl_body, NULL);
	ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
}

/* --- a loop callback submitting to the default while the runtime closes --- */

static atomic_int late_rc;

static int job_slow(void *arg, void **result)
{
	(void)arg;
	struct timespec ts = { 0, 20 * 1000000 };
	nanosleep(&ts, NULL);
	return job_make(NULL, result);
}

/* A done-callback that chains a second job to the default executor. */
static void chain_next(coil_future_t *f, void *arg)
{
	(void)f;
	(void)arg;
	coil_future_t *g = NULL;
	int rc = coil_executor_submit(&g, NULL, job_make, NULL, result_dtor);
	atomic_store(&late_rc, rc);
	if (rc == 0)
		coil_future_release(g);
}

static int chain_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_future_t *f = NULL;
	ASSERT_EQ(coil_executor_submit(&f, NULL, job_slow, NULL, result_dtor), 0);
	ASSERT_EQ(coil_future_add_done_callback(f, chain_next, NULL), 0);
	coil_future_release(f);
	return 0;
}

/*
 * A task leaves a slow job in the default executor with a done-callback
 * that submits another job to the default; the runtime's shutdown waits
 * for the slow job, whose completion runs the callback on a worker while
 * the default is being shut down. The second submission is either refused
 * (COIL_ECLOSED) or run before the shutdown returns: no default executor
 * (and no pool thread) may outlive the runtime.
 */
TEST(default_executor_used_by_a_callback_while_the_runtime_closes)
{
	counts_reset();
	int n = under_valgrind() ? 1 : 5;
	for (int i = 0; i < n; i++) {
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&late_rc, 1);
		coil_cfuture_t *c = NULL;
		ASSERT_EQ(coil_run_coroutine_threadsafe(&c, coil_runtime_loop(rt, 1),
							chain_task, NULL), 0);
		ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
		coil_cfuture_release(c);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		int rc = atomic_load(&late_rc);
		/* 1: the callback never ran; -EINVAL: it ran as the loops
		 * closed, with no running loop to submit from. */
		ASSERT(rc == 1 || rc == 0 || rc == COIL_ECLOSED || rc == -EINVAL);
		if (getenv("COIL_TEST_VERBOSE"))
			fprintf(stderr, "  the late submission returned %d\n", rc);
		ASSERT_EQ(test_threads_named("coil-pool"), 0);
		ASSERT_EQ(atomic_load(&made), atomic_load(&destroyed));
	}
}

TEST_LIST(
	TEST_ENTRY(run_in_executor_cancelled_as_its_job_completes),
	TEST_ENTRY(submitted_future_cancelled_from_another_worker_as_its_job_ends),
	TEST_ENTRY(cfuture_cancel_racing_the_pool_thread_completing_it),
	TEST_ENTRY(shutdown_racing_submissions_from_a_task_and_a_thread),
	TEST_ENTRY(default_executor_made_by_two_workers_then_shut_down),
	TEST_ENTRY(default_executor_replaced_while_another_worker_submits),
	TEST_ENTRY(default_executor_used_by_a_callback_while_the_runtime_closes))
