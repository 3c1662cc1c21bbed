/*
 * tests/test_threadsafe.c: entry from other threads: call_soon_threadsafe,
 * run_coroutine_threadsafe and concurrent futures.
 *
 * Most tests run a loop in a background thread with run_forever (the seed's
 * pattern) and drive it from the test's thread. They synchronise on
 * conditions (semaphores, concurrent futures), never on sleeps; the real
 * clock appears only where a timeout itself is under test.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "coil/coil.h"
#include "coil/threadsafe.h"
#include "core.h"
#include "test.h"

/* --- a loop in a background thread ------------------------------------- */

typedef struct bg {
	coil_loop_t *loop;
	pthread_t thread;
	sem_t ready;
	int made;
} bg_t;

static void *bg_main(void *arg)
{
	bg_t *b = arg;
	/* Made on the thread that runs it: a ring set up with SINGLE_ISSUER
	 * only accepts its creator's submissions (see the test that makes
	 * the loop on one thread and runs it on another). */
	b->made = coil_new_event_loop(&b->loop);
	sem_post(&b->ready);
	if (b->made)
		return NULL;
	coil_set_event_loop(b->loop);
	ASSERT_EQ(coil_loop_run_forever(b->loop), 0);
	return NULL;
}

static void bg_start(bg_t *b)
{
	sem_init(&b->ready, 0, 0);
	ASSERT_EQ(pthread_create(&b->thread, NULL, bg_main, b), 0);
	sem_wait(&b->ready);
	TEST_SKIP_UNLESS_RING(b->made);
	ASSERT_EQ(b->made, 0);
}

static void stop_cb(void *loop)
{
	coil_loop_stop(loop);
}

/* Stops the loop from this thread, joins its thread, closes it. */
static void bg_stop(bg_t *b)
{
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b->loop, stop_cb, b->loop), 0);
	ASSERT_EQ(pthread_join(b->thread, NULL), 0);
	ASSERT_EQ(coil_loop_close(b->loop), 0);
	sem_destroy(&b->ready);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

/* --- coroutines the tests hand over ------------------------------------ */

static int add_one(void *arg, void **result)
{
	/* One trip through the loop, so that it really runs as a task. */
	if (coil_sleep(0) != 0)
		return -EIO;
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

static int fails_with_message(void *arg, void **result)
{
	(void)result;
	coil_errorf("bad input %d", (int)(intptr_t)arg);
	return -EINVAL;
}

static atomic_int freed;

static void count_free(void *p)
{
	atomic_fetch_add(&freed, 1);
	free(p);
}

static int makes_string(void *arg, void **result)
{
	char *s = malloc(16);
	if (!s)
		return -ENOMEM;
	snprintf(s, 16, "hello %d", (int)(intptr_t)arg);
	*result = s;
	return 0;
}

/* --- tests --------------------------------------------------------------- */

TEST(results_and_errors_with_messages_come_back)
{
	bg_t b;
	bg_start(&b);
	coil_cfuture_t *ok, *bad;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&ok, b.loop, add_one, (void *)41), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&bad, b.loop, fails_with_message,
						(void *)7), 0);
	void *v = NULL;
	ASSERT_EQ(coil_cfuture_wait(ok, COIL_FOREVER, &v), 0);
	ASSERT_EQ((intptr_t)v, 42);
	ASSERT(coil_cfuture_done(ok));
	ASSERT(!coil_cfuture_cancelled(ok));
	ASSERT(coil_cfuture_error_message(ok) == NULL);
	ASSERT_EQ(coil_cfuture_wait(bad, COIL_FOREVER, &v), -EINVAL);
	ASSERT_STR_EQ(coil_cfuture_error_message(bad), "bad input 7");
	/* Waiting again gives the same outcome at once. */
	ASSERT_EQ(coil_cfuture_wait(bad, 0, NULL), -EINVAL);
	coil_cfuture_release(ok);
	coil_cfuture_release(bad);
	bg_stop(&b);
}

TEST(result_is_owned_by_the_cfuture_until_its_last_reference)
{
	bg_t b;
	bg_start(&b);
	atomic_store(&freed, 0);
	coil_spawn_opts_t o = { .name = "maker", .result_dtor = count_free };
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f, b.loop, makes_string,
						     (void *)5, &o), 0);
	void *v;
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, &v), 0);
	ASSERT_STR_EQ((const char *)v, "hello 5");
	coil_cfuture_ref(f);
	coil_cfuture_release(f);
	/* Once the loop's thread is gone, so is the loop side's reference:
	 * ours is the last one, and it runs the destructor on this thread. */
	bg_stop(&b);
	ASSERT_EQ(atomic_load(&freed), 0);
	ASSERT_STR_EQ((const char *)v, "hello 5");
	coil_cfuture_release(f);
	ASSERT_EQ(atomic_load(&freed), 1);
}

static char order[16];
static atomic_int norder;

static void record(void *arg)
{
	order[atomic_fetch_add(&norder, 1)] = (char)(intptr_t)arg;
}

static int records_t(void *arg, void **result)
{
	(void)arg;
	(void)result;
	record((void *)'T');
	return 0;
}

TEST(callbacks_and_coroutines_from_one_thread_run_in_order)
{
	bg_t b;
	bg_start(&b);
	atomic_store(&norder, 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, record, (void *)'a'), 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, record, (void *)'b'), 0);
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, records_t, NULL), 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, record, (void *)'c'), 0);
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(f);
	bg_stop(&b);
	/* Hand-overs from one thread run in order, and the task's first step
	 * comes after the callbacks queued before it. Where it falls against
	 * 'c' depends on whether the loop took 'c' in the same batch (then
	 * 'c' runs first, as the step is queued by the hand-off) or later. */
	ASSERT_EQ(atomic_load(&norder), 4);
	order[4] = 0;
	ASSERT(!strcmp(order, "abcT") || !strcmp(order, "abTc"));
}

static sem_t started, finished;
static atomic_int seen;

static int sleeps_long(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sem_post(&started);
	int rc = coil_sleep(3600);
	atomic_store(&seen, rc);
	sem_post(&finished);
	return rc;
}

TEST(pending_wait_times_out_then_cancel_ends_it_cancelled)
{
	bg_t b;
	bg_start(&b);
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	atomic_store(&seen, 1);
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, sleeps_long, NULL), 0);
	sem_wait(&started);
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ETIMEDOUT);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_cfuture_wait(f, 20 * 1000 * 1000, NULL), -ETIMEDOUT);
	ASSERT_GE(now_ns() - t0, 20 * 1000 * 1000);
	ASSERT(!coil_cfuture_done(f));
	ASSERT(coil_cfuture_cancel(f));
	ASSERT(coil_cfuture_done(f));
	ASSERT(coil_cfuture_cancelled(f));
	ASSERT(!coil_cfuture_cancel(f));
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), -ECANCELED);
	/* The task really was cancelled: its sleep returned -ECANCELED. */
	sem_wait(&finished);
	ASSERT_EQ(atomic_load(&seen), -ECANCELED);
	coil_cfuture_release(f);
	bg_stop(&b);
	sem_destroy(&started);
	sem_destroy(&finished);
}

static atomic_int ran;

static int marks_ran(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&ran, 1);
	return 0;
}

static void on_done_count(coil_cfuture_t *f, void *arg)
{
	ASSERT(coil_cfuture_done(f));
	atomic_fetch_add((atomic_int *)arg, 1);
}

TEST(cancelled_before_it_was_scheduled_never_runs)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	atomic_store(&ran, 0);
	atomic_int calls = 0;
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, marks_ran, NULL), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_count, &calls), 0);
	ASSERT(coil_cfuture_cancel(f));
	ASSERT_EQ(atomic_load(&calls), 1);
	/* Now the loop runs the hand-off, then the cancellation. */
	ASSERT_EQ(coil_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT_EQ(atomic_load(&ran), 0);
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ECANCELED);
	coil_cfuture_release(f);
}

static int stubborn(void *arg, void **result)
{
	(void)arg;
	sem_post(&started);
	int rc = coil_sleep(3600);
	atomic_store(&seen, rc);
	/* Caught and ignored: it carries on and succeeds. */
	coil_task_uncancel(coil_current_task());
	if (coil_sleep(0) != 0)
		return -EIO;
	char *s = malloc(4);
	if (!s)
		return -ENOMEM;
	*result = s;
	sem_post(&finished);
	return 0;
}

TEST(result_of_a_task_that_ignored_cancel_is_destroyed)
{
	bg_t b;
	bg_start(&b);
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	atomic_store(&freed, 0);
	coil_spawn_opts_t o = { .result_dtor = count_free };
	coil_cfuture_t *f, *probe;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f, b.loop, stubborn, NULL, &o), 0);
	sem_wait(&started);
	ASSERT(coil_cfuture_cancel(f));
	sem_wait(&finished);
	/* The probe runs after the stubborn task has returned. */
	ASSERT_EQ(coil_run_coroutine_threadsafe(&probe, b.loop, add_one, NULL), 0);
	ASSERT_EQ(coil_cfuture_wait(probe, COIL_FOREVER, NULL), 0);
	ASSERT_EQ(atomic_load(&seen), -ECANCELED);
	ASSERT_EQ(atomic_load(&freed), 1);
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ECANCELED);
	coil_cfuture_release(f);
	coil_cfuture_release(probe);
	bg_stop(&b);
	sem_destroy(&started);
	sem_destroy(&finished);
}

typedef struct cbrec {
	pthread_t thread[4];
	char tag[4];
	atomic_int n;
} cbrec_t;

typedef struct cbarg {
	cbrec_t *rec;
	char tag;
} cbarg_t;

static void on_done_record(coil_cfuture_t *f, void *arg)
{
	cbarg_t *a = arg;
	ASSERT(coil_cfuture_done(f));
	int i = atomic_fetch_add(&a->rec->n, 1);
	a->rec->thread[i] = pthread_self();
	a->rec->tag[i] = a->tag;
}

TEST(done_callbacks_run_on_the_cancelling_thread_in_order)
{
	bg_t b;
	bg_start(&b);
	cbrec_t rec = { .n = 0 };
	cbarg_t a1 = { &rec, '1' }, a2 = { &rec, '2' }, a3 = { &rec, '3' };
	coil_cfuture_t *f;
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, sleeps_long, NULL), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a1), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a2), 0);
	sem_wait(&started);
	ASSERT(coil_cfuture_cancel(f));
	ASSERT_EQ(atomic_load(&rec.n), 2);
	/* Added once done: runs at once, on the caller's thread. */
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a3), 0);
	ASSERT_EQ(atomic_load(&rec.n), 3);
	for (int i = 0; i < 3; i++)
		ASSERT(pthread_equal(rec.thread[i], pthread_self()));
	ASSERT(rec.tag[0] == '1' && rec.tag[1] == '2' && rec.tag[2] == '3');
	sem_wait(&finished);
	coil_cfuture_release(f);
	bg_stop(&b);
	sem_destroy(&started);
	sem_destroy(&finished);
}

static coil_future_t *gate;

static int waits_on_gate(void *arg, void **result)
{
	(void)arg;
	if (coil_future_create(&gate, NULL) != 0)
		return -ENOMEM;
	sem_post(&started);
	int rc = coil_await(gate, result);
	coil_future_release(gate);
	return rc;
}

static void open_gate(void *value)
{
	coil_future_set_result(gate, value, NULL);
}

TEST(done_callbacks_of_an_outcome_run_on_the_loop_thread)
{
	bg_t b;
	bg_start(&b);
	cbrec_t rec = { .n = 0 };
	cbarg_t a1 = { &rec, 'x' }, a2 = { &rec, 'y' };
	coil_cfuture_t *f;
	sem_init(&started, 0, 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, waits_on_gate, NULL), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a1), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a2), 0);
	sem_wait(&started);
	ASSERT_EQ(atomic_load(&rec.n), 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, open_gate, (void *)9), 0);
	void *v;
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, &v), 0);
	ASSERT_EQ((intptr_t)v, 9);
	coil_cfuture_release(f);
	bg_stop(&b);
	/* Waiters wake before the callbacks run: count them after the join. */
	ASSERT_EQ(atomic_load(&rec.n), 2);
	ASSERT(pthread_equal(rec.thread[0], b.thread));
	ASSERT(pthread_equal(rec.thread[1], b.thread));
	ASSERT(rec.tag[0] == 'x' && rec.tag[1] == 'y');
	sem_destroy(&started);
}

TEST(closing_the_loop_cancels_running_coroutines)
{
	bg_t b;
	bg_start(&b);
	cbrec_t rec = { .n = 0 };
	cbarg_t a1 = { &rec, 'c' };
	coil_cfuture_t *f;
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	atomic_store(&seen, 1);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, sleeps_long, NULL), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_record, &a1), 0);
	sem_wait(&started);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, stop_cb, b.loop), 0);
	ASSERT_EQ(pthread_join(b.thread, NULL), 0);
	ASSERT(!coil_cfuture_done(f));
	/* Closing cancels the sleeping task; the outcome is delivered by the
	 * thread that closes (this one), inside the task's last step. */
	ASSERT_EQ(coil_loop_close(b.loop), 0);
	ASSERT_EQ(atomic_load(&rec.n), 1);
	ASSERT(pthread_equal(rec.thread[0], pthread_self()));
	ASSERT_EQ(atomic_load(&seen), -ECANCELED);
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ECANCELED);
	coil_cfuture_release(f);
	sem_destroy(&b.ready);
	sem_destroy(&started);
	sem_destroy(&finished);
}

static void *sets_later(void *arg)
{
	coil_cfuture_t *f = arg;
	sem_wait(&started);
	ASSERT_EQ(coil_cfuture_set_result(f, (void *)77, NULL), 0);
	return NULL;
}

TEST(plain_cfuture_wakes_a_blocked_thread)
{
	coil_cfuture_t *f;
	ASSERT_EQ(coil_cfuture_create(&f), 0);
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ETIMEDOUT);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_cfuture_wait(f, 5 * 1000 * 1000, NULL), -ETIMEDOUT);
	ASSERT_GE(now_ns() - t0, 5 * 1000 * 1000);
	sem_init(&started, 0, 0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, sets_later, f), 0);
	sem_post(&started);
	void *v = NULL;
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, &v), 0);
	ASSERT_EQ((intptr_t)v, 77);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	coil_cfuture_release(f);
	sem_destroy(&started);
}

TEST(plain_cfuture_outcomes_are_set_once)
{
	coil_cfuture_t *f, *g, *h;
	atomic_store(&freed, 0);
	ASSERT_EQ(coil_cfuture_create(&f), 0);
	ASSERT_EQ(coil_cfuture_set_result(f, malloc(8), count_free), 0);
	ASSERT_EQ(coil_cfuture_set_result(f, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_cfuture_set_exception(f, -EIO, NULL), COIL_EINVALSTATE);
	ASSERT(!coil_cfuture_cancel(f));
	coil_cfuture_release(f);
	ASSERT_EQ(atomic_load(&freed), 1);
	ASSERT_EQ(coil_cfuture_create(&g), 0);
	ASSERT_EQ(coil_cfuture_set_exception(g, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_exception(g, -EIO, "disk %d"), 0);
	ASSERT_EQ(coil_cfuture_wait(g, COIL_FOREVER, NULL), -EIO);
	ASSERT_STR_EQ(coil_cfuture_error_message(g), "disk %d");
	ASSERT(!coil_cfuture_cancelled(g));
	coil_cfuture_release(g);
	ASSERT_EQ(coil_cfuture_create(&h), 0);
	ASSERT_EQ(coil_cfuture_set_exception(h, -ECANCELED, NULL), 0);
	ASSERT(coil_cfuture_cancelled(h));
	ASSERT_EQ(coil_cfuture_wait(h, 0, NULL), -ECANCELED);
	coil_cfuture_release(h);
}

TEST(bad_arguments_are_refused)
{
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, NULL, add_one, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_create(NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_wait(NULL, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_add_done_callback(NULL, on_done_count, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_result(NULL, NULL, NULL), -EINVAL);
	ASSERT(!coil_cfuture_done(NULL));
	ASSERT(!coil_cfuture_cancelled(NULL));
	ASSERT(!coil_cfuture_cancel(NULL));
	ASSERT(coil_cfuture_error_message(NULL) == NULL);
	ASSERT(coil_cfuture_ref(NULL) == NULL);
	coil_cfuture_release(NULL);
	ASSERT_EQ(coil_cfuture_create(&f), 0);
	ASSERT_EQ(coil_cfuture_wait(f, -2, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, NULL, NULL), -EINVAL);
	coil_cfuture_release(f);
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, marks_ran, NULL), 0);
	/* A coroutine's future is completed by its task only. */
	ASSERT_EQ(coil_cfuture_set_result(f, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_cfuture_set_exception(f, -EIO, NULL), COIL_EINVALSTATE);
	/* One run makes the task, the next runs it. */
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(coil_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
		ASSERT_EQ(coil_loop_run_forever(loop), 0);
	}
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	coil_cfuture_release(f);
}

/* --- many threads at once ------------------------------------------------ */

#define SUBMITTERS 4

typedef struct submitter {
	coil_loop_t *loop;
	int id, n;
	atomic_int *runs;       /* per coroutine: how many times it ran */
	atomic_int *callbacks;
} submitter_t;

static atomic_int *all_runs;

static int counted(void *arg, void **result)
{
	intptr_t k = (intptr_t)arg;
	atomic_fetch_add(&all_runs[k], 1);
	if (coil_sleep(0) != 0)
		return -EIO;
	if (k % 97 == 0) {
		coil_errorf("no %ld", (long)k);
		return -EDOM;
	}
	*result = (void *)(k * 3);
	return 0;
}

static void *submit_many(void *arg)
{
	submitter_t *s = arg;
	coil_cfuture_t **fs = calloc((size_t)s->n, sizeof(*fs));
	ASSERT(fs != NULL);
	for (int i = 0; i < s->n; i++) {
		intptr_t k = (intptr_t)s->id * s->n + i;
		ASSERT_EQ(coil_run_coroutine_threadsafe(&fs[i], s->loop, counted,
							(void *)k), 0);
		ASSERT_EQ(coil_cfuture_add_done_callback(fs[i], on_done_count,
							 s->callbacks), 0);
	}
	for (int i = 0; i < s->n; i++) {
		intptr_t k = (intptr_t)s->id * s->n + i;
		void *v = NULL;
		int rc = coil_cfuture_wait(fs[i], COIL_FOREVER, &v);
		if (k % 97 == 0) {
			ASSERT_EQ(rc, -EDOM);
			char want[32];
			snprintf(want, sizeof(want), "no %ld", (long)k);
			ASSERT_STR_EQ(coil_cfuture_error_message(fs[i]), want);
		} else {
			ASSERT_EQ(rc, 0);
			ASSERT_EQ((intptr_t)v, k * 3);
		}
		coil_cfuture_release(fs[i]);
	}
	free(fs);
	return NULL;
}

TEST(many_threads_submit_thousands_of_coroutines)
{
	bg_t b;
	bg_start(&b);
	int per = test_heavy_tools() ? 250 : 2500;
	int total = per * SUBMITTERS;
	all_runs = calloc((size_t)total, sizeof(*all_runs));
	atomic_int callbacks = 0;
	submitter_t s[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	for (int i = 0; i < SUBMITTERS; i++) {
		s[i] = (submitter_t){ b.loop, i, per, all_runs, &callbacks };
		ASSERT_EQ(pthread_create(&th[i], NULL, submit_many, &s[i]), 0);
	}
	for (int i = 0; i < SUBMITTERS; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	bg_stop(&b);
	/* Every coroutine ran exactly once and every callback fired. */
	for (int k = 0; k < total; k++)
		ASSERT_EQ(atomic_load(&all_runs[k]), 1);
	ASSERT_EQ(atomic_load(&callbacks), total);
	free(all_runs);
}

/* --- the loop's own thread, closed loops, detached coroutines ----------- */

static int waits_for_itself(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, coil_get_running_loop(),
						add_one, (void *)1), 0);
	/* Blocking here would keep the loop from ever completing f. */
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), -EDEADLK);
	ASSERT_EQ(coil_cfuture_wait(f, 1000, NULL), -EDEADLK);
	int steps = 0;
	while (coil_cfuture_wait(f, 0, NULL) == -ETIMEDOUT) {
		ASSERT_EQ(coil_sleep(0), 0);
		steps++;
	}
	ASSERT_GT(steps, 0);
	void *v;
	ASSERT_EQ(coil_cfuture_wait(f, 0, &v), 0);
	ASSERT_EQ((intptr_t)v, 2);
	coil_cfuture_release(f);
	return 0;
}

TEST(waiting_on_the_loops_own_thread_is_refused)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(waits_for_itself, NULL, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

/* Hands a coroutine to COIL_ANY_WORKER of its own runtime and waits for
 * it; with one worker the wait is refused (only this thread could run the
 * coroutine), with more it completes. */
static int waits_for_any_worker(void *arg, void **result)
{
	(void)result;
	bool alone = coil_runtime_workers(coil_current_runtime()) == 1;
	coil_loop_t *any = coil_runtime_loop(coil_current_runtime(), COIL_ANY_WORKER);
	coil_cfuture_t *f;
	void *v = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, any, add_one, arg), 0);
	if (alone) {
		ASSERT_EQ(coil_cfuture_wait(f, COIL_NSEC_PER_SEC / 10, NULL), -EDEADLK);
		while (coil_cfuture_wait(f, 0, NULL) == -ETIMEDOUT)
			ASSERT_EQ(coil_sleep(0.001), 0);
	}
	ASSERT_EQ(coil_cfuture_wait(f, 10 * COIL_NSEC_PER_SEC, &v), 0);
	ASSERT_EQ((intptr_t)v, (intptr_t)arg + 1);
	coil_cfuture_release(f);
	return 0;
}

TEST(waiting_on_the_only_worker_for_any_worker_is_refused)
{
	for (unsigned n = 1; n <= 2; n++) {
		coil_runtime_opts_t o;
		coil_runtime_t *rt;
		coil_runtime_opts_init(&o);
		o.workers = n;
		int rc = coil_runtime_new(&rt, &o);
		TEST_SKIP_UNLESS_RING(rc);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(coil_runtime_block_on(rt, waits_for_any_worker, (void *)41, NULL), 0);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

TEST(closed_loop_refuses_coroutines)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	/* A future of the loop keeps its memory alive after the close. */
	coil_future_t *keep;
	ASSERT_EQ(coil_future_create(&keep, loop), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	coil_cfuture_t *f = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, add_one, NULL), COIL_ECLOSED);
	ASSERT(f == NULL);
	coil_future_release(keep);
}

static atomic_int reported;
static atomic_int reported_error;

static void count_reports(coil_loop_t *loop, const coil_exc_context_t *ctx,
			  void *arg)
{
	(void)loop;
	(void)arg;
	atomic_store(&reported_error, ctx->error);
	atomic_fetch_add(&reported, 1);
}

/* The exception handler is the loop's: set it on the loop's thread. */
static void set_handler(void *loop)
{
	coil_loop_set_exception_handler(loop, count_reports, NULL);
}

static int fails_detached(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_errorf("nobody listens");
	sem_post(&finished);
	return -EPIPE;
}

TEST(detached_coroutines_run_and_their_errors_are_reported)
{
	bg_t b;
	bg_start(&b);
	sem_init(&finished, 0, 0);
	atomic_store(&ran, 0);
	atomic_store(&reported, 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, set_handler, b.loop), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(NULL, b.loop, marks_ran, NULL), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(NULL, b.loop, fails_detached, NULL), 0);
	/* An error someone holds the future of is that holder's to report. */
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, fails_with_message,
						(void *)1), 0);
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), -EINVAL);
	coil_cfuture_release(f);
	sem_wait(&finished);
	bg_stop(&b);
	ASSERT_EQ(atomic_load(&ran), 1);
	ASSERT_EQ(atomic_load(&reported), 1);
	ASSERT_EQ(atomic_load(&reported_error), -EPIPE);
	sem_destroy(&finished);
}

/* --- hand-offs the loop's close catches -------------------------------- */

TEST(handoff_still_queued_when_the_loop_closes_ends_closed)
{
	bg_t b;
	bg_start(&b);
	atomic_store(&ran, 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(b.loop, stop_cb, b.loop), 0);
	ASSERT_EQ(pthread_join(b.thread, NULL), 0);
	/* The loop is stopped: the hand-off waits in its inbox, and the
	 * close drops it. */
	coil_cfuture_t *f, *g;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, b.loop, marks_ran, NULL), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&g, b.loop, marks_ran, NULL), 0);
	ASSERT(coil_cfuture_cancel(g));
	ASSERT_EQ(coil_loop_close(b.loop), 0);
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), COIL_ECLOSED);
	ASSERT(coil_cfuture_error_message(f) != NULL);
	ASSERT_EQ(coil_cfuture_wait(g, COIL_FOREVER, NULL), -ECANCELED);
	ASSERT_EQ(atomic_load(&ran), 0);
	coil_cfuture_release(f);
	coil_cfuture_release(g);
	sem_destroy(&b.ready);
}

TEST(task_not_started_when_the_loop_closes_ends_cancelled)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	atomic_store(&ran, 0);
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, marks_ran, NULL), 0);
	/* One iteration: the hand-off makes the task, then the loop stops
	 * before the task's first step. */
	ASSERT_EQ(coil_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	ASSERT(!coil_cfuture_done(f));
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, NULL), -ECANCELED);
	ASSERT_EQ(atomic_load(&ran), 0);
	coil_cfuture_release(f);
}

/* --- the seed's pattern, word for word ----------------------------------- */

static void *start_loop(void *loop)
{
	coil_set_event_loop(loop);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	return NULL;
}

TEST(loop_made_here_runs_in_a_new_thread)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, NULL, start_loop, loop), 0);
	atomic_store(&norder, 0);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(loop, record, (void *)'m'), 0);
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, loop, add_one, (void *)5), 0);
	void *v;
	ASSERT_EQ(coil_cfuture_wait(f, COIL_FOREVER, &v), 0);
	ASSERT_EQ((intptr_t)v, 6);
	coil_cfuture_release(f);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(loop, stop_cb, loop), 0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT_EQ(atomic_load(&norder), 1);
	ASSERT_EQ(order[0], 'm');
}

TEST_LIST(
	TEST_ENTRY(results_and_errors_with_messages_come_back),
	TEST_ENTRY(result_is_owned_by_the_cfuture_until_its_last_reference),
	TEST_ENTRY(callbacks_and_coroutines_from_one_thread_run_in_order),
	TEST_ENTRY(pending_wait_times_out_then_cancel_ends_it_cancelled),
	TEST_ENTRY(cancelled_before_it_was_scheduled_never_runs),
	TEST_ENTRY(result_of_a_task_that_ignored_cancel_is_destroyed),
	TEST_ENTRY(done_callbacks_run_on_the_cancelling_thread_in_order),
	TEST_ENTRY(done_callbacks_of_an_outcome_run_on_the_loop_thread),
	TEST_ENTRY(closing_the_loop_cancels_running_coroutines),
	TEST_ENTRY(plain_cfuture_wakes_a_blocked_thread),
	TEST_ENTRY(plain_cfuture_outcomes_are_set_once),
	TEST_ENTRY(bad_arguments_are_refused),
	TEST_ENTRY(many_threads_submit_thousands_of_coroutines),
	TEST_ENTRY(waiting_on_the_loops_own_thread_is_refused),
	TEST_ENTRY(waiting_on_the_only_worker_for_any_worker_is_refused),
	TEST_ENTRY(closed_loop_refuses_coroutines),
	TEST_ENTRY(detached_coroutines_run_and_their_errors_are_reported),
	TEST_ENTRY(handoff_still_queued_when_the_loop_closes_ends_closed),
	TEST_ENTRY(task_not_started_when_the_loop_closes_ends_cancelled),
	TEST_ENTRY(loop_made_here_runs_in_a_new_thread))
