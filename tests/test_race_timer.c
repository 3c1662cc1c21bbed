/*
 * tests/test_race_timer.c: loop callbacks and timers handled from another
 * worker, and the composition helpers whose parts end on two workers.
 *
 * Each test runs rounds on a runtime of 2 workers: a driver task pinned on
 * worker 0 and a helper task pinned on worker 1, which runs one job per
 * round (tests/race.h). Both sides start after a random spin, so either
 * may come first.
 *
 * Handles: the driver schedules a callback on worker 0's loop (call_soon,
 * or a timer due about now) and the helper cancels and releases the handle
 * from worker 1, as a task that moved since it took the handle would,
 * while worker 0's loop runs or fires it. Exactly one of the two wins: the
 * callback runs, or the cancellation returns true, never both, never
 * neither; the handle's memory goes once (ASan), and TSan sees the heap or
 * the handle's fields touched from both threads if cancel or release does
 * more than claim it. A timer far in the future, cancelled from worker 1
 * while worker 0 adds and removes timers of its own, leaves worker 0's heap
 * within a few iterations, with the heap still in order.
 *
 * shield: the awaiting task is cancelled on worker 0 while the shielded
 * future fails on worker 1. Whichever comes first, the error is retrieved
 * (by the await, or by shield as asyncio's shield does for an outer future
 * that was cancelled), so it is never reported as unretrieved.
 *
 * wait_for's deadline fires on worker 0 as its future completes on worker
 * 1: it returns the result, or -ETIMEDOUT with the future cancelled, and
 * leaves no cancellation behind. gather's children complete on both
 * workers while either worker cancels the gatherer: it returns every
 * result, or -ECANCELED with each child done.
 *
 * Shutdown: a plain thread hands coroutines to both workers while the
 * runtime shuts down. Each hand-off is refused (COIL_ECLOSED) or its
 * future completes: none is left that neither ran nor was cancelled.
 *
 * Nothing asserted depends on timing: the rounds wait on the loop's own
 * clock and iterations, never on sleeps that race. COIL_TEST_VERBOSE=1
 * prints how often each side won.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coil/coil.h"
#include "test.h"
#include "race.h"

static int rounds(void)
{
	if (under_valgrind())
		return 30;
	return TEST_TSAN ? 1000 : 4000;
}

/* ---- a handle cancelled from worker 1 as worker 0 runs it -------------- */

static struct {
	coil_handle_t *h;
	atomic_int ran;           /* runs of the callback */
	bool cancelled;           /* what the helper's cancel returned */
	int wins[2];              /* rounds the callback, the cancel won */
} hc;

static void count_run(void *arg)
{
	(void)arg;
	atomic_fetch_add(&hc.ran, 1);
}

static void job_cancel_release(void *arg)
{
	(void)arg;
	hc.cancelled = coil_handle_cancel(hc.h);
	coil_handle_release(hc.h);
}

/*
 * Both sides set off together: the helper's start is slower than worker
 * 0's next round, which would otherwise nearly always come first. The
 * helper runs in_step, which says it is there, waits for the go, spins a
 * random time and runs the job.
 */
static struct {
	job_fn job;
	atomic_bool ready, go, off;
	uint64_t rng;             /* the helper's */
} step;

static void in_step(void *arg)
{
	atomic_store_explicit(&step.ready, true, memory_order_release);
	unsigned spins = 0;
	while (!atomic_load_explicit(&step.go, memory_order_acquire))
		spin_pause(&spins);
	atomic_store_explicit(&step.off, true, memory_order_release);
	jitter(&step.rng);
	step.job(arg);
}

/* Hands the helper its job, lets both sides go at once and spins a random
 * time (none if rng is NULL) before returning; helper_wait() then waits
 * for the job. */
static void go_in_step(job_fn job, void *arg, uint64_t *rng)
{
	step.job = job;
	if (!step.rng)
		step.rng = 77;
	atomic_store(&step.ready, false);
	atomic_store(&step.go, false);
	atomic_store(&step.off, false);
	helper_go(in_step, arg);
	unsigned spins = 0;
	while (!atomic_load_explicit(&step.ready, memory_order_acquire))
		spin_pause(&spins);
	atomic_store_explicit(&step.go, true, memory_order_release);
	/* The helper may have given its CPU away meanwhile: both spin from
	 * the moment it is back, this side without giving its CPU away for
	 * a while, or it would be the one that comes back late. */
	for (unsigned k = 0; !atomic_load_explicit(&step.off, memory_order_acquire); k++)
		if (k > 100000 || pause_every() == 1)
			spin_pause(&spins);
	if (rng)
		jitter(rng);
}

/* Runs worker 0's loop until its clock passes `until` and one iteration
 * more, so that a timer due by then has fired (or been skipped). */
static void run_loop_past(coil_loop_t *loop, int64_t until)
{
	while (coil_loop_time_ns(loop) <= until)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
}

static void handle_round(bool timer, uint64_t *rng)
{
	coil_loop_t *loop = coil_get_running_loop();
	atomic_store(&hc.ran, 0);
	hc.cancelled = false;
	/* Due at once in half the rounds, else within 20 us. */
	uint64_t r = rnd(rng);
	int64_t when = coil_loop_time_ns(loop) + (r % 2 ? 0 : (int64_t)(r % 20000));
	if (timer)
		ASSERT_EQ(coil_loop_call_at(loop, when, count_run, NULL, &hc.h), 0);
	else
		ASSERT_EQ(coil_loop_call_soon(loop, count_run, NULL, &hc.h), 0);
	/* Half the rounds yield at once: the loop's round after it takes
	 * longer than most of the helper's spins. */
	go_in_step(job_cancel_release, NULL, rnd(rng) % 2 ? rng : NULL);
	helper_wait();
	run_loop_past(loop, when);
	ASSERT_EQ(atomic_load(&hc.ran) + hc.cancelled, 1);
	hc.wins[hc.cancelled]++;
}

static int handle_driver(void *arg, void **result)
{
	(void)result;
	bool timer = arg != NULL;
	uint64_t rng = 99;
	for (int i = 0; i < rounds(); i++)
		handle_round(timer, &rng);
	if (getenv("COIL_TEST_VERBOSE"))
		printf("  the callback ran %d times, the cancel won %d\n",
		       hc.wins[0], hc.wins[1]);
	return 0;
}

TEST(a_call_soon_handle_cancelled_from_another_worker_runs_or_is_cancelled)
{
	race_drive(handle_driver, NULL);
}

TEST(a_timer_cancelled_from_another_worker_as_it_fires_runs_or_is_cancelled)
{
	race_drive(handle_driver, (void *)1);
}

/* ---- a far timer cancelled from worker 1 while worker 0 uses its heap -- */

static void never(void *arg)
{
	(void)arg;
	ASSERT(!"a cancelled timer ran");
}

static void far_round(coil_loop_t *loop, size_t base, uint64_t *rng)
{
	ASSERT_EQ(coil_loop_call_later(loop, 3600 * COIL_NSEC_PER_SEC, never, NULL,
				       &hc.h), 0);
	ASSERT_EQ(coil_loop_timer_count(loop), base + 1);
	go_in_step(job_cancel_release, NULL, rng);
	/* Meanwhile this worker adds and removes timers of its own. */
	int n = (int)(rnd(rng) % 8);
	coil_handle_t *mine[8];
	for (int k = 0; k < n; k++)
		ASSERT_EQ(coil_loop_call_later(loop, (int64_t)(rnd(rng) % 1000) *
					       COIL_NSEC_PER_SEC, never, NULL,
					       &mine[k]), 0);
	for (int k = 0; k < n; k++) {
		ASSERT(coil_handle_cancel(mine[k]));
		coil_handle_release(mine[k]);
	}
	helper_wait();
	ASSERT(hc.cancelled);
	/* The cancelled timer leaves the heap at this loop's next rounds. */
	for (int k = 0; k < 1000 && coil_loop_timer_count(loop) != base; k++)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_loop_timer_count(loop), base);
}

static int far_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 5;
	coil_loop_t *loop = coil_get_running_loop();
	size_t base = coil_loop_timer_count(loop);
	for (int i = 0; i < rounds(); i++)
		far_round(loop, base, &rng);
	return 0;
}

TEST(a_far_timer_cancelled_from_another_worker_leaves_its_loops_heap)
{
	race_drive(far_driver, NULL);
}

/* ---- shield: the awaiter cancelled as the inner future fails ----------- */

static struct {
	coil_future_t *inner;
	atomic_int unretrieved;   /* "never retrieved" reports */
	int rc;                   /* the victim's shield */
	int wins[2];              /* rounds the failure, the cancel won */
} sh;

static void count_reports(coil_loop_t *loop, const coil_exc_context_t *ctx,
			  void *arg)
{
	(void)loop;
	(void)arg;
	if (strstr(ctx->message, "never retrieved"))
		atomic_fetch_add(&sh.unretrieved, 1);
	else
		coil_loop_default_exception_handler(loop, ctx);
}

static int shield_victim(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sh.rc = coil_shield(sh.inner, NULL);
	return 0;
}

static void job_fail_inner(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_future_set_exception(sh.inner, -EIO, NULL), 0);
}

static void shield_round(uint64_t *rng)
{
	coil_loop_t *loop = coil_get_running_loop();
	ASSERT_EQ(coil_future_create(&sh.inner, loop), 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_task_t *victim;
	ASSERT_EQ(coil_spawn(&victim, shield_victim, NULL, &pinned), 0);
	/* Twice round the loop: the victim waits in the shield. */
	ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	go_in_step(job_fail_inner, NULL, rng);
	coil_task_cancel(victim, NULL);
	/* The victim resumes once this task yields: not before f failed, so
	 * that a cancellation that came first finds f done. */
	unsigned spins = 0;
	while (atomic_load_explicit(&helper.done, memory_order_acquire) !=
	       atomic_load(&helper.seq))
		spin_pause(&spins);
	ASSERT_EQ(coil_await(coil_task_future(victim), NULL), 0);
	ASSERT(sh.rc == -ECANCELED || sh.rc == -EIO);
	sh.wins[sh.rc == -ECANCELED]++;
	coil_future_release(coil_task_future(victim));
	/* A callback shield left runs on this loop's next round. */
	ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	coil_future_release(sh.inner);
	ASSERT_EQ(atomic_load(&sh.unretrieved), 0);
}

static int shield_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 31;
	coil_loop_set_exception_handler(coil_get_running_loop(), count_reports, NULL);
	for (int i = 0; i < rounds(); i++)
		shield_round(&rng);
	coil_loop_set_exception_handler(coil_get_running_loop(), NULL, NULL);
	if (getenv("COIL_TEST_VERBOSE"))
		printf("  the failure came first %d times, the cancellation %d\n",
		       sh.wins[0], sh.wins[1]);
	return 0;
}

TEST(a_shielded_future_failing_as_its_awaiter_is_cancelled_is_retrieved)
{
	race_drive(shield_driver, NULL);
}

/* ---- wait_for: the deadline on worker 0, f's completion on worker 1 ---- */

static struct {
	coil_future_t *f;
	int rc;                   /* wait_for's code */
	void *res;
	int after;                /* the victim's next await */
	int wins[2];              /* rounds the result, the timeout won */
} wf;

static int wait_for_victim(void *arg, void **result)
{
	(void)result;
	wf.res = NULL;
	wf.rc = coil_wait_for(wf.f, (int64_t)(uintptr_t)arg, &wf.res);
	/* Neither the deadline's cancellation nor any other is left over. */
	wf.after = coil_sleep(0);
	return 0;
}

static void job_complete_f(void *arg)
{
	(void)arg;
	int rc = coil_future_set_result(wf.f, &wf, NULL);
	/* Too late: wait_for cancelled f at its deadline. */
	ASSERT(rc == 0 || (rc == COIL_EINVALSTATE && coil_future_cancelled(wf.f)));
}

static void wait_for_round(uint64_t *rng)
{
	coil_loop_t *loop = coil_get_running_loop();
	ASSERT_EQ(coil_future_create(&wf.f, loop), 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_task_t *victim;
	uintptr_t timeout = (uintptr_t)(rnd(rng) % 200000);
	ASSERT_EQ(coil_spawn(&victim, wait_for_victim, (void *)timeout, &pinned), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_complete_f, NULL);
	helper_wait();
	ASSERT_EQ(coil_await(coil_task_future(victim), NULL), 0);
	ASSERT_EQ(wf.after, 0);
	ASSERT_EQ(coil_task_cancelling(victim), 0);
	if (wf.rc == 0) {
		ASSERT(wf.res == &wf);
	} else {
		ASSERT_EQ(wf.rc, -ETIMEDOUT);
		ASSERT(coil_future_cancelled(wf.f));
	}
	wf.wins[wf.rc != 0]++;
	coil_future_release(coil_task_future(victim));
	coil_future_release(wf.f);
}

static int wait_for_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 17;
	for (int i = 0; i < rounds(); i++)
		wait_for_round(&rng);
	if (getenv("COIL_TEST_VERBOSE"))
		printf("  the result came first %d times, the timeout %d\n",
		       wf.wins[0], wf.wins[1]);
	return 0;
}

TEST(wait_for_times_out_on_one_worker_as_f_completes_on_the_other)
{
	race_drive(wait_for_driver, NULL);
}

/* ---- gather: children done on both workers, the gatherer cancelled ---- */

static struct {
	coil_future_t *kids[2];
	void *results[2];
	int errors[2];
	int rc;                   /* gather's code */
	coil_task_t *gatherer;
	int wins[2];              /* rounds gather returned 0, -ECANCELED */
} ga;

static int gatherer_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ga.rc = coil_gather(ga.kids, 2, ga.results, ga.errors, 0);
	return 0;
}

/* Completes kid i, unless gather cancelled it first. */
static void complete_kid(int i)
{
	int rc = coil_future_set_result(ga.kids[i], &ga.kids[i], NULL);
	ASSERT(rc == 0 || (rc == COIL_EINVALSTATE && coil_future_cancelled(ga.kids[i])));
}

static void job_make_kid1(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_future_create(&ga.kids[1], coil_get_running_loop()), 0);
}

/* Kid 1 is worker 1's: its done-callback runs there, as the gatherer
 * returns on worker 0. */
static void job_kid1(void *arg)
{
	(void)arg;
	complete_kid(1);
}

static void job_kid1_and_cancel(void *arg)
{
	(void)arg;
	complete_kid(1);
	coil_task_cancel(ga.gatherer, NULL);
}

/* Each side completes its child; one of them (by turns) also cancels the
 * gatherer. */
static void gather_round(int i, uint64_t *rng)
{
	ASSERT_EQ(coil_future_create(&ga.kids[0], coil_get_running_loop()), 0);
	helper_go(job_make_kid1, NULL);
	helper_wait();
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_spawn(&ga.gatherer, gatherer_main, NULL, &pinned), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	helper_go(i % 2 ? job_kid1_and_cancel : job_kid1, NULL);
	jitter(rng);
	complete_kid(0);
	if (i % 2 == 0) {
		/* Some rounds let the gatherer see both children first. */
		for (unsigned k = rnd(rng) % 4; k; k--)
			ASSERT_EQ(coil_sleep(0), 0);
		jitter(rng);
		coil_task_cancel(ga.gatherer, NULL);
	}
	helper_wait();
	ASSERT_EQ(coil_await(coil_task_future(ga.gatherer), NULL), 0);
	ASSERT(ga.rc == 0 || ga.rc == -ECANCELED);
	for (int k = 0; k < 2; k++) {
		/* Every child is done: completed, or cancelled by gather. */
		ASSERT(coil_future_done(ga.kids[k]));
		if (ga.rc == 0) {
			ASSERT_EQ(ga.errors[k], 0);
			ASSERT(ga.results[k] == &ga.kids[k]);
		}
	}
	ga.wins[ga.rc != 0]++;
	coil_future_release(coil_task_future(ga.gatherer));
	for (int k = 0; k < 2; k++)
		coil_future_release(ga.kids[k]);
}

static int gather_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 23;
	for (int i = 0; i < rounds(); i++)
		gather_round(i, &rng);
	if (getenv("COIL_TEST_VERBOSE"))
		printf("  gather returned its results %d times, -ECANCELED %d\n",
		       ga.wins[0], ga.wins[1]);
	return 0;
}

TEST(gather_cancelled_from_another_worker_as_its_children_complete_on_both)
{
	race_drive(gather_driver, NULL);
}

/* ---- coroutines handed to a runtime's loops as it shuts down --------- */

#define POSTS 4096

static struct {
	coil_runtime_t *rt;
	coil_cfuture_t *cfs[POSTS];
	int n;                    /* hand-offs accepted */
	atomic_bool started;
} sd;

static int quick(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* A plain thread hands coroutines to both workers until refused. */
static void *poster(void *arg)
{
	(void)arg;
	for (sd.n = 0; sd.n < POSTS; sd.n++) {
		int rc = coil_run_coroutine_threadsafe(&sd.cfs[sd.n],
						       coil_runtime_loop(sd.rt, sd.n % 2),
						       quick, NULL);
		if (rc) {
			ASSERT_EQ(rc, COIL_ECLOSED);
			break;
		}
		if (sd.n == 16)
			atomic_store(&sd.started, true);
	}
	atomic_store(&sd.started, true);
	return NULL;
}

/* Each coroutine handed over either ran or was refused with the loop's
 * close: none is left pending, whatever the moment the shutdown came. */
static void shutdown_round(void)
{
	sd.rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(sd.rt), 0);
	/* Its future keeps the runtime's loops in memory after the shutdown
	 * for the poster, which then hears COIL_ECLOSED. */
	coil_task_t *keep;
	ASSERT_EQ(coil_runtime_spawn(sd.rt, &keep, quick, NULL, NULL), 0);
	atomic_store(&sd.started, false);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, poster, NULL), 0);
	while (!atomic_load(&sd.started))
		sched_yield();
	ASSERT_EQ(coil_runtime_shutdown(sd.rt, COIL_FOREVER), 0);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	for (int i = 0; i < sd.n; i++) {
		int rc = coil_cfuture_wait(sd.cfs[i], 10 * COIL_NSEC_PER_SEC, NULL);
		if (!(rc == 0 || rc == COIL_ECLOSED || rc == -ECANCELED))
			ASSERT_EQ(rc, 0);
		coil_cfuture_release(sd.cfs[i]);
	}
	coil_future_release(coil_task_future(keep));
}

TEST(coroutines_handed_to_a_runtime_as_it_shuts_down_all_end)
{
	for (int i = 0; i < (under_valgrind() ? 3 : 20); i++)
		shutdown_round();
}

TEST_LIST(TEST_ENTRY(a_call_soon_handle_cancelled_from_another_worker_runs_or_is_cancelled),
	  TEST_ENTRY(a_timer_cancelled_from_another_worker_as_it_fires_runs_or_is_cancelled),
	  TEST_ENTRY(a_far_timer_cancelled_from_another_worker_leaves_its_loops_heap),
	  TEST_ENTRY(a_shielded_future_failing_as_its_awaiter_is_cancelled_is_retrieved),
	  TEST_ENTRY(wait_for_times_out_on_one_worker_as_f_completes_on_the_other),
	  TEST_ENTRY(gather_cancelled_from_another_worker_as_its_children_complete_on_both),
	  TEST_ENTRY(coroutines_handed_to_a_runtime_as_it_shuts_down_all_end))
