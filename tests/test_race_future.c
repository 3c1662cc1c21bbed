/*
 * tests/test_race_future.c: futures, concurrent futures and task
 * cancellation raced across the workers of a runtime and plain threads.
 *
 * Each test drives one cross-thread interleaving many times over; what it
 * asserts holds whatever the timing, and a sanitizer (TSan, ASan) sees the
 * unsynchronised access or the use after free behind a failure. A test
 * that must know when the loop side of a coroutine's concurrent future is
 * done with it (its task ended, a cancellation handed over ran) waits for
 * its own reference to be the last (threadsafe/cfuture.h: refs), rather
 * than for some time.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "coil/coil.h"
#include "coil/debug.h"
#include "threadsafe/cfuture.h"
#include "test.h"
#include "race.h"

/* --- a cancellation handed to any worker while another makes the task --- */

#define ANY_ROUNDS (under_valgrind() ? 4 : TEST_TSAN ? 200 : 300)
#define ANY_BATCH 8

/* What one coroutine saw: whether it ran, and what its await returned. */
typedef struct any_slot {
	atomic_int started;
	atomic_int rc;
} any_slot_t;

/* Sleeps far longer than a cancelled round takes: only a cancellation
 * that was lost lets the sleep run out (and return 0). */
static int sleeps_until_cancelled(void *arg, void **result)
{
	(void)result;
	any_slot_t *s = arg;
	atomic_store(&s->started, 1);
	int rc = coil_sleep(2.0);
	atomic_store(&s->rc, rc);
	return rc;
}

/*
 * A plain thread hands coroutines to COIL_ANY_WORKER and cancels each at
 * once. The hand-off and the cancellation both go to the injection queue,
 * so two workers may run them at the same time: the cancellation must not
 * be lost while the other worker is still making the task. Each coroutine
 * either never runs or sees -ECANCELED at its await.
 */
TEST(cancel_to_any_worker_racing_the_hand_off)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_loop_t *any = coil_runtime_loop(rt, COIL_ANY_WORKER);
	for (int i = 0; i < ANY_ROUNDS; i++) {
		any_slot_t s[ANY_BATCH];
		coil_cfuture_t *c[ANY_BATCH];
		for (int j = 0; j < ANY_BATCH; j++) {
			atomic_init(&s[j].started, 0);
			atomic_init(&s[j].rc, 1);
			ASSERT_EQ(coil_run_coroutine_threadsafe(&c[j], any,
								sleeps_until_cancelled,
								&s[j]), 0);
		}
		for (int j = 0; j < ANY_BATCH; j++)
			ASSERT(coil_cfuture_cancel(c[j]));
		for (int j = 0; j < ANY_BATCH; j++) {
			/* Ours is the last reference once the loop side is
			 * done with the future (the task ended or never
			 * came to be) and the cancellation was handed over. */
			while (atomic_load(&c[j]->refs) > 1)
				sched_yield();
			int rc = atomic_load(&s[j].rc);
			if (atomic_load(&s[j].started))
				ASSERT_EQ(rc, -ECANCELED);
			ASSERT_EQ(coil_cfuture_wait(c[j], 0, NULL), -ECANCELED);
			coil_cfuture_release(c[j]);
		}
	}
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- a task renaming itself while another worker lists it ---------------- */

#define NAME_ROUNDS (under_valgrind() ? 50 : TEST_TSAN ? 5000 : 20000)

/* Names of every length up to past the listing's 64 bytes, so that a
 * rename reallocates in another size class now and then. */
static void name_for(char *buf, size_t cap, int i)
{
	int pad = i % 80;
	int n = snprintf(buf, cap, "renamed-");
	for (int k = 0; k < pad && n + 1 < (int)cap; k++)
		buf[n++] = (char)('a' + k % 26);
	buf[n] = '\0';
}

/* Pinned on worker 0: renames itself over and over, yielding now and
 * then so that the lister may also look at it suspended. */
static int renames_itself(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *me = coil_current_task();
	char buf[128];
	for (int i = 0; i < NAME_ROUNDS; i++) {
		name_for(buf, sizeof(buf), i);
		ASSERT_EQ(coil_task_set_name(me, buf), 0);
		if (i % 64 == 0)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	return 0;
}

/* Pinned on worker 1: describes the renaming task until it is done. Every
 * name read must be one the task gave itself, whole. */
static int lists_until_done(void *arg, void **result)
{
	(void)result;
	coil_task_t *t = arg;
	long looks = 0;
	while (!coil_future_done(coil_task_future(t))) {
		coil_task_info_t in;
		ASSERT_EQ(coil_task_get_info(t, &in, sizeof(in)), 0);
		ASSERT(strncmp(in.name, "renamed-", 8) == 0);
		for (const char *p = in.name + 8; *p; p++)
			ASSERT(*p >= 'a' && *p <= 'z');
		if (++looks % 16 == 0)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	return 0;
}

static int rename_and_list(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_runtime_t *rt = coil_current_runtime();
	coil_spawn_opts_t pinned = { .pinned = true, .name = "renamed-" };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, renames_itself, NULL, &pinned), 0);
	coil_cfuture_t *c = NULL;
	pinned.name = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 1),
						     lists_until_done, t, &pinned), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	while (!coil_cfuture_done(c))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_cfuture_wait(c, 0, NULL), 0);
	coil_cfuture_release(c);
	coil_task_detach(t);
	return 0;
}

/*
 * coil_task_get_info may be called from any worker of the task's runtime
 * (coil/debug.h), and the task may rename itself meanwhile: the copy of
 * the name must not read the old name being freed.
 */
TEST(rename_racing_a_listing_on_another_worker)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_cfuture_t *c = NULL;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 0),
						     rename_and_list, NULL, &pinned), 0);
	ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(c);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- a concurrent future completed, cancelled and watched at once -------- */

#define CF_ROUNDS (under_valgrind() ? 20 : TEST_TSAN ? 1000 : 3000)
#define CF_CBS 4

static int cf_token;
static atomic_int cf_dtors;

static void cf_dtor(void *p)
{
	ASSERT_PTR_EQ(p, &cf_token);
	atomic_fetch_add(&cf_dtors, 1);
}

/* One round's shared state: the future, and what each side saw. */
static struct {
	coil_cfuture_t *_Atomic f;
	atomic_int go;            /* round number the helpers may start */
	atomic_int finished;      /* helper calls done, over all rounds */
	atomic_int set_ok, cancel_ok;
	atomic_int cb_runs;
} cf;

/* A done-callback: runs once, and sees an outcome already there. */
static void cf_cb(coil_cfuture_t *f, void *arg)
{
	(void)arg;
	void *r = NULL;
	int rc = coil_cfuture_wait(f, 0, &r);
	ASSERT(rc == -ECANCELED || (rc == 0 && r == &cf_token));
	atomic_fetch_add(&cf.cb_runs, 1);
}

static void cf_wait_round(int round)
{
	while (atomic_load(&cf.go) < round)
		sched_yield();
}

static void *cf_setter(void *arg)
{
	(void)arg;
	for (int i = 1; i <= CF_ROUNDS; i++) {
		cf_wait_round(i);
		coil_cfuture_t *f = atomic_load(&cf.f);
		int rc = coil_cfuture_set_result(f, &cf_token, cf_dtor);
		ASSERT(rc == 0 || rc == COIL_EINVALSTATE);
		if (rc == 0)
			atomic_store(&cf.set_ok, 1);
		coil_cfuture_release(f); /* perhaps the last reference */
		atomic_fetch_add(&cf.finished, 1);
	}
	return NULL;
}

static void *cf_canceller(void *arg)
{
	(void)arg;
	for (int i = 1; i <= CF_ROUNDS; i++) {
		cf_wait_round(i);
		coil_cfuture_t *f = atomic_load(&cf.f);
		if (coil_cfuture_cancel(f))
			atomic_store(&cf.cancel_ok, 1);
		coil_cfuture_release(f);
		atomic_fetch_add(&cf.finished, 1);
	}
	return NULL;
}

/*
 * Each round one thread sets the result of a concurrent future and another
 * cancels it, while this one adds done-callbacks and waits on it; each of
 * the three lets its reference go as soon as it is done, so the last one
 * (which runs the result's destructor) may be any of them. Exactly one of
 * the two outcomes wins, every callback runs once, the destructor runs
 * once if the result won and never otherwise.
 */
TEST(cfuture_set_result_racing_cancel_and_callbacks)
{
	pthread_t a, b;
	ASSERT_EQ(pthread_create(&a, NULL, cf_setter, NULL), 0);
	ASSERT_EQ(pthread_create(&b, NULL, cf_canceller, NULL), 0);
	for (int i = 1; i <= CF_ROUNDS; i++) {
		coil_cfuture_t *f;
		ASSERT_EQ(coil_cfuture_create(&f), 0);
		coil_cfuture_ref(f);
		coil_cfuture_ref(f);
		atomic_store(&cf.set_ok, 0);
		atomic_store(&cf.cancel_ok, 0);
		atomic_store(&cf.cb_runs, 0);
		atomic_store(&cf.f, f);
		int dtors = atomic_load(&cf_dtors);
		ASSERT_EQ(coil_cfuture_add_done_callback(f, cf_cb, NULL), 0);
		atomic_store(&cf.go, i);
		for (int k = 1; k < CF_CBS; k++)
			ASSERT_EQ(coil_cfuture_add_done_callback(f, cf_cb, NULL), 0);
		void *r = NULL;
		int rc = coil_cfuture_wait(f, COIL_FOREVER, &r);
		coil_cfuture_release(f);
		while (atomic_load(&cf.finished) < 2 * i)
			sched_yield();
		int set = atomic_load(&cf.set_ok), can = atomic_load(&cf.cancel_ok);
		ASSERT_EQ(set + can, 1);
		if (set) {
			ASSERT_EQ(rc, 0);
			ASSERT_PTR_EQ(r, &cf_token);
		} else {
			ASSERT_EQ(rc, -ECANCELED);
		}
		ASSERT_EQ(atomic_load(&cf.cb_runs), CF_CBS);
		ASSERT_EQ(atomic_load(&cf_dtors), dtors + set);
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
}

/* --- cancelling a coroutine's future while its task ends ----------------- */

#define END_ROUNDS (under_valgrind() ? 20 : TEST_TSAN ? 1000 : 3000)

static int end_token;
static atomic_int end_made, end_dtors, end_cbs;

static void end_dtor(void *p)
{
	ASSERT_PTR_EQ(p, &end_token);
	atomic_fetch_add(&end_dtors, 1);
}

static void end_cb(coil_cfuture_t *f, void *arg)
{
	(void)arg;
	void *r = NULL;
	int rc = coil_cfuture_wait(f, 0, &r);
	ASSERT(rc == -ECANCELED || (rc == 0 && r == &end_token));
	atomic_fetch_add(&end_cbs, 1);
}

/* Yields once (a cancellation may land there), then makes its result. */
static int yields_then_returns(void *arg, void **result)
{
	(void)arg;
	int rc = coil_sleep(0);
	if (rc)
		return rc;
	atomic_fetch_add(&end_made, 1);
	*result = &end_token;
	return 0;
}

/*
 * A plain thread hands short coroutines to worker 0 of two (they may be
 * stolen by worker 1) and cancels each after a varying delay: before it
 * starts, at its await, after it returned, or after its future completed.
 * The outcome matches what cancel returned, the done-callback runs once,
 * and every result made is destroyed once: by the loop if the future was
 * cancelled first, by the last release otherwise.
 */
TEST(cfuture_cancel_racing_the_coroutines_end)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_spawn_opts_t o = { .result_dtor = end_dtor };
	for (int i = 0; i < END_ROUNDS; i++) {
		coil_cfuture_t *c;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 0),
							     yields_then_returns, NULL, &o), 0);
		ASSERT_EQ(coil_cfuture_add_done_callback(c, end_cb, NULL), 0);
		/* Delays from none to tens of microseconds, doubling; one
		 * round in 18 waits for the coroutine's end (however slow
		 * the tool it runs under), so that its result wins. */
		if (i % 18 == 17)
			while (!coil_cfuture_done(c))
				sched_yield();
		for (volatile int k = 0; k < (1 << (i % 18)) - 1; k++)
			;
		bool cancelled = coil_cfuture_cancel(c);
		void *r = NULL;
		int rc = coil_cfuture_wait(c, COIL_FOREVER, &r);
		if (cancelled) {
			ASSERT_EQ(rc, -ECANCELED);
		} else {
			ASSERT_EQ(rc, 0);
			ASSERT_PTR_EQ(r, &end_token);
		}
		/* The loop side is done with it (and the cancellation was
		 * handed over) once ours is the last reference. */
		while (atomic_load(&c->refs) > 1)
			sched_yield();
		ASSERT_EQ(atomic_load(&end_cbs), i + 1);
		coil_cfuture_release(c);
		ASSERT_EQ(atomic_load(&end_dtors), atomic_load(&end_made));
	}
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- a future resolved by a plain thread while its awaiter is cancelled -- */

#define AW_ROUNDS (under_valgrind() ? 10 : TEST_TSAN ? 500 : 2000)

static int aw_token;
static atomic_int aw_dtors, aw_cbs;
static struct {
	coil_future_t *_Atomic f;
	atomic_int go, finished;
} aw;

static void aw_dtor(void *p)
{
	ASSERT_PTR_EQ(p, &aw_token);
	atomic_fetch_add(&aw_dtors, 1);
}

static void aw_cb(coil_future_t *f, void *arg)
{
	(void)arg;
	void *r = NULL;
	ASSERT_EQ(coil_future_result(f, &r), 0);
	ASSERT_PTR_EQ(r, &aw_token);
	atomic_fetch_add(&aw_cbs, 1);
}

/* The plain thread: resolves each round's future, then lets go of its
 * reference, the last one now and then. */
static void *aw_resolver(void *arg)
{
	(void)arg;
	for (int i = 1; i <= AW_ROUNDS; i++) {
		while (atomic_load(&aw.go) < i)
			sched_yield();
		coil_future_t *f = atomic_load(&aw.f);
		ASSERT_EQ(coil_future_set_result(f, &aw_token, aw_dtor), 0);
		coil_future_release(f);
		atomic_fetch_add(&aw.finished, 1);
	}
	return NULL;
}

/* Pinned on worker 0: awaits the round's future. */
static int aw_awaits(void *arg, void **result)
{
	(void)result;
	coil_future_t *f = arg;
	void *r = NULL;
	int rc = coil_await(f, &r);
	if (rc == 0)
		ASSERT_PTR_EQ(r, &aw_token);
	else
		ASSERT_EQ(rc, -ECANCELED);
	return rc;
}

/* Pinned on worker 1: cancels the awaiter once. */
static int aw_cancels(void *arg, void **result)
{
	(void)result;
	coil_task_cancel(arg, NULL);
	return 0;
}

static int aw_rounds(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_runtime_t *rt = coil_current_runtime();
	coil_spawn_opts_t pinned = { .pinned = true };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, aw_resolver, NULL), 0);
	for (int i = 1; i <= AW_ROUNDS; i++) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		ASSERT_EQ(coil_future_add_done_callback(f, aw_cb, NULL), 0);
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, aw_awaits, f, &pinned), 0);
		if (i % 2)
			ASSERT_EQ(coil_sleep(0), 0); /* now and then, it waits first */
		atomic_store(&aw.f, coil_future_ref(f));
		atomic_store(&aw.go, i);
		coil_cfuture_t *c = NULL;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 1),
							     aw_cancels, t, &pinned), 0);
		int rc = coil_await(coil_task_future(t), NULL);
		ASSERT(rc == 0 || rc == -ECANCELED);
		while (!coil_cfuture_done(c) || atomic_load(&aw.finished) < i ||
		       atomic_load(&aw_cbs) < i)
			ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ(coil_cfuture_wait(c, 0, NULL), 0);
		coil_cfuture_release(c);
		coil_task_detach(t);
		int dtors = atomic_load(&aw_dtors);
		coil_future_release(f);
		/* Ours or the resolver's release was the last: either way the
		 * result was destroyed once, by now. */
		ASSERT_EQ(atomic_load(&aw_dtors), i);
		ASSERT(dtors == i - 1 || dtors == i);
		ASSERT_EQ(atomic_load(&aw_cbs), i);
	}
	pthread_join(th, NULL);
	return 0;
}

/*
 * Each round a task pinned on worker 0 awaits a future that a plain thread
 * resolves, while a task on worker 1 cancels the awaiter: the awaiter gets
 * either the result or -ECANCELED, the future's done-callback runs once on
 * its loop, and its result is destroyed once, by whichever release is last.
 */
TEST(future_resolved_by_a_thread_while_its_awaiter_is_cancelled)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_cfuture_t *c = NULL;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 0),
						     aw_rounds, NULL, &pinned), 0);
	ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(c);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST_LIST(
	TEST_ENTRY(cancel_to_any_worker_racing_the_hand_off),
	TEST_ENTRY(rename_racing_a_listing_on_another_worker),
	TEST_ENTRY(cfuture_set_result_racing_cancel_and_callbacks),
	TEST_ENTRY(cfuture_cancel_racing_the_coroutines_end),
	TEST_ENTRY(future_resolved_by_a_thread_while_its_awaiter_is_cancelled))
