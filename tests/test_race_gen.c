/*
 * tests/test_race_gen.c: async generators whose consumer moves between the
 * workers of a runtime, is cancelled from another worker, or whose loop
 * finalizes its generators while a consumer on another worker steps one,
 * or that outlive the runtime they started on; and the completions of a
 * thread pool thrown away on the pool's thread while the user's thread
 * releases the same future (runtime/executor/xdone.c, before any
 * multi-worker runtime started).
 *
 * Each test drives one cross-thread interleaving many times over; what it
 * asserts holds whatever the timing, and a sanitizer (TSan, ASan) sees the
 * unsynchronised access or the use after free behind a failure.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"
#include "race.h"

#define GEN_ROUNDS (under_valgrind() ? 20 : TEST_TSAN ? 1000 : 3000)

/* Yields 1, then ends. */
static int one_value(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_gen_yield((void *)(intptr_t)1, NULL);
}

/* Starts and ends a generator on the calling worker: it joins that
 * worker's loop's registry and leaves it. */
static void gen_lifetime(void)
{
	coil_gen_t *g;
	void *v;
	ASSERT_EQ(coil_gen_create(&g, one_value, NULL, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	coil_gen_destroy(g);
}

/* --- a consumer that moves to another worker mid-iteration --- */

typedef struct mig {
	coil_event_t *ev;
	atomic_int parked;       /* the consumer stepped once and waits */
	atomic_int rc;           /* its last step's */
	bool shutdown;           /* the driver finalizes the loop's gens */
} mig_t;

/* The consumer: its first step (on the driver's worker) registers the
 * generator with that worker's loop; it ends it after the wake-up, which
 * the helper gives from worker 1, so that it usually runs there then. */
static int mig_consumer(void *arg, void **result)
{
	(void)result;
	mig_t *m = arg;
	coil_gen_t *g;
	void *v;
	ASSERT_EQ(coil_gen_create(&g, one_value, NULL, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	atomic_store(&m->parked, 1);
	ASSERT_EQ(coil_event_wait(m->ev), 0);
	int rc = coil_gen_next(g, &v);
	atomic_store(&m->rc, rc);
	coil_gen_destroy(g);
	return 0;
}

static void mig_wake(void *arg)
{
	mig_t *m = arg;
	ASSERT_EQ(coil_event_set(m->ev), 0);
}

static int mig_rounds(void *arg, void **result)
{
	(void)result;
	mig_t *m = arg;
	uint64_t rng = 11;
	for (int i = 0; i < GEN_ROUNDS; i++) {
		coil_task_t *t;
		ASSERT_EQ(coil_event_create(&m->ev), 0);
		atomic_store(&m->parked, 0);
		atomic_store(&m->rc, 1);
		/* Not pinned: free to move. */
		ASSERT_EQ(coil_loop_create_task(coil_get_running_loop(), &t,
						mig_consumer, m, NULL), 0);
		while (!atomic_load(&m->parked))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(mig_wake, m);
		jitter(&rng);
		if (m->shutdown) {
			/* Closes the consumer's generator unless its step
			 * runs: never both at once. */
			int n = coil_loop_shutdown_asyncgens(NULL);
			ASSERT_GE(n, 0);
			ASSERT_LE(n, 1);
		} else {
			/* This worker's loop's registry, used here while
			 * the consumer's generator may leave it on worker 1. */
			gen_lifetime();
		}
		helper_wait();
		ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
		coil_task_detach(t);
		int rc = atomic_load(&m->rc);
		/* Ended by its step, or closed first by the shutdown. */
		ASSERT_EQ(rc, COIL_EDONE);
		ASSERT_EQ(coil_event_destroy(m->ev), 0);
	}
	return 0;
}

/*
 * A consumer steps a generator on worker 0 (which registers it with worker
 * 0's loop), is woken by a task of worker 1 and ends it there, while worker
 * 0 starts and ends generators of its own: the two must not share a
 * registry without a lock.
 */
TEST(gen_consumer_migrates_mid_iteration)
{
	mig_t m = { .shutdown = false };
	race_drive(mig_rounds, &m);
}

/*
 * As above, but worker 0 finalizes its loop's generators
 * (coil_loop_shutdown_asyncgens) while the consumer, now on worker 1,
 * steps the generator registered there: the close and the step must not
 * both run the generator's coroutine.
 */
TEST(gen_shutdown_asyncgens_racing_a_step_on_another_worker)
{
	mig_t m = { .shutdown = true };
	race_drive(mig_rounds, &m);
}

/* --- worker 1's loop finalized from worker 0 while worker 1 steps --- */

typedef struct fin {
	coil_gen_t *g;
	atomic_int cleanups;
	int rc[3];               /* the helper's steps */
} fin_t;

/* Yields until closed; counts its cleanups. */
static int yields_until_closed(void *arg, void **result)
{
	(void)result;
	fin_t *f = arg;
	int rc;
	while ((rc = coil_gen_yield((void *)(intptr_t)1, NULL)) == 0)
		;
	atomic_fetch_add(&f->cleanups, 1);
	return rc;
}

/* On worker 1: the first step registers the generator with its loop. */
static void fin_steps(void *arg)
{
	fin_t *f = arg;
	for (int j = 0; j < 3; j++)
		f->rc[j] = coil_gen_next(f->g, NULL);
}

static int fin_rounds(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_t *l1 = coil_runtime_loop(coil_current_runtime(), 1);
	uint64_t rng = 13;
	fin_t f;
	for (int i = 0; i < GEN_ROUNDS; i++) {
		atomic_store(&f.cleanups, 0);
		ASSERT_EQ(coil_gen_create(&f.g, yields_until_closed, &f, NULL), 0);
		helper_go(fin_steps, &f);
		jitter(&rng);
		/* Again and again while the steps run, as the helper's
		 * first step (its registration) may come late. */
		unsigned seq = atomic_load(&helper.seq), spins = 0;
		int n = 0;
		do {
			int r = coil_loop_shutdown_asyncgens(l1);
			ASSERT_GE(r, 0);
			n += r;
			spin_pause(&spins);
		} while (atomic_load_explicit(&helper.done, memory_order_acquire) != seq);
		ASSERT_LE(n, 1);
		helper_wait();
		/* The steps yield until the close, then find it closed. */
		bool closed = false;
		for (int j = 0; j < 3; j++) {
			if (f.rc[j] == COIL_EDONE) {
				closed = true;
				continue;
			}
			ASSERT_EQ(f.rc[j], 0);
			ASSERT(!closed);
		}
		ASSERT(!closed || n == 1);
		ASSERT_EQ(atomic_load(&f.cleanups), n);
		coil_gen_destroy(f.g);
		ASSERT_EQ(atomic_load(&f.cleanups), 1);
	}
	return 0;
}

/*
 * A task on worker 0 finalizes worker 1's loop
 * (coil_loop_shutdown_asyncgens) while a task on worker 1 steps a
 * generator registered there: it closes it between two steps or not at
 * all, never during one, and the steps after the close find it closed.
 */
TEST(gen_loop_finalized_from_another_worker_racing_its_steps)
{
	race_drive(fin_rounds, NULL);
}

/* --- the task inside anext cancelled from another worker --- */

typedef struct cnl {
	coil_event_t *never;
	coil_task_t *t;
	atomic_int inside;       /* the body awaits */
	atomic_int closed;       /* the body's cleanup ran */
} cnl_t;

/* Awaits inside its step until cancelled, then passes that on. */
static int awaits_forever(void *arg, void **result)
{
	(void)result;
	cnl_t *c = arg;
	atomic_store(&c->inside, 1);
	int rc = coil_event_wait(c->never);
	atomic_store(&c->closed, 1);
	return rc;
}

static int cnl_consumer(void *arg, void **result)
{
	(void)result;
	cnl_t *c = arg;
	coil_gen_t *g;
	void *v = (void *)1;
	ASSERT_EQ(coil_gen_create(&g, awaits_forever, c, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, &v), -ECANCELED);
	ASSERT_PTR_EQ(v, NULL);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	coil_gen_destroy(g);
	return 0;
}

static void cnl_cancel(void *arg)
{
	cnl_t *c = arg;
	ASSERT(coil_task_cancel(c->t, NULL));
}

static int cnl_rounds(void *arg, void **result)
{
	(void)result;
	cnl_t *c = arg;
	uint64_t rng = 5;
	for (int i = 0; i < GEN_ROUNDS; i++) {
		ASSERT_EQ(coil_event_create(&c->never), 0);
		atomic_store(&c->inside, 0);
		atomic_store(&c->closed, 0);
		ASSERT_EQ(coil_loop_create_task(coil_get_running_loop(), &c->t,
						cnl_consumer, c, NULL), 0);
		while (!atomic_load(&c->inside))
			ASSERT_EQ(coil_sleep(0), 0);
		helper_go(cnl_cancel, c);
		jitter(&rng);
		/* Generators of this worker's loop meanwhile. */
		gen_lifetime();
		helper_wait();
		ASSERT_EQ(coil_await(coil_task_future(c->t), NULL), 0);
		ASSERT_EQ(atomic_load(&c->closed), 1);
		coil_task_detach(c->t);
		ASSERT_EQ(coil_event_destroy(c->never), 0);
	}
	return 0;
}

/*
 * A task suspended in a generator's await (inside coil_gen_next) is
 * cancelled from worker 1: the body sees -ECANCELED, passes it on, and the
 * step returns it, wherever the task resumes.
 */
TEST(gen_consumer_cancelled_inside_anext_from_another_worker)
{
	cnl_t c;
	race_drive(cnl_rounds, &c);
}

/* --- a generator left open on a worker, destroyed after the shutdown --- */

typedef struct left {
	coil_gen_t *g;
	atomic_int cleanups;
} left_t;

/* Yields until closed, and counts its cleanups. */
static int counts_cleanups(void *arg, void **result)
{
	(void)result;
	left_t *l = arg;
	int rc;
	while ((rc = coil_gen_yield((void *)(intptr_t)1, NULL)) == 0)
		;
	atomic_fetch_add(&l->cleanups, 1);
	return rc;
}

static int leaves_it_open(void *arg, void **result)
{
	(void)result;
	left_t *l = arg;
	ASSERT_EQ(coil_gen_create(&l->g, counts_cleanups, l, NULL), 0);
	ASSERT_EQ(coil_gen_next(l->g, NULL), 0);
	/* Registered with this worker's loop; it moves on. */
	ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_gen_next(l->g, NULL), 0);
	return 0;
}

/*
 * A task starts a generator on a runtime's worker and leaves it open; the
 * runtime shuts down (its loops forget the generator, which stays open) and
 * the program destroys it afterwards from its own thread: its cleanup runs
 * once, and nothing is left behind in the workers' loops (LeakSanitizer,
 * Valgrind).
 */
TEST(gen_left_open_on_a_worker_destroyed_after_the_shutdown)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	left_t l = { .g = NULL };
	coil_cfuture_t *c;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&c, coil_runtime_loop(rt, 0),
						leaves_it_open, &l), 0);
	ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(c);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	ASSERT_EQ(atomic_load(&l.cleanups), 0);
	ASSERT_EQ(coil_gen_state(l.g), COIL_CORO_SUSPENDED);
	coil_gen_destroy(l.g);
	ASSERT_EQ(atomic_load(&l.cleanups), 1);
}

/* --- a thread pool's completion for a closed loop, before any runtime --- */

#define DROP_ROUNDS (under_valgrind() ? 10 : TEST_TSAN ? 1000 : 5000)
/* Many jobs a round: the pool's thread drops their futures in a burst,
 * in the order the loop's thread releases them, so that the two releases of
 * one future often meet. */
#define DROP_JOBS 64

static atomic_int drop_go;

/* Ends once the round it belongs to is let go. */
static int waits_for_its_round(void *arg, void **result)
{
	(void)result;
	int round = (int)(intptr_t)arg;
	unsigned spins = 0;
	while (atomic_load(&drop_go) < round)
		spin_pause(&spins);
	return 0;
}

typedef struct drop {
	coil_executor_t *ex;
	coil_future_t *f[DROP_JOBS];
	int round;
} drop_t;

static int submits(void *arg, void **result)
{
	(void)result;
	drop_t *d = arg;
	for (int j = 0; j < DROP_JOBS; j++)
		ASSERT_EQ(coil_executor_submit(&d->f[j], d->ex, waits_for_its_round,
					       (void *)(intptr_t)d->round, NULL), 0);
	return 0;
}

/*
 * No runtime with several workers has started (coil__mt() is false): a
 * standalone loop submits jobs to a thread pool and closes while they
 * run. Each job's completion then finds the loop closed and is thrown away
 * on the pool's thread, which drops the job's reference to its future while
 * the loop's thread drops its own: the two must not lose a count (a leak,
 * which LeakSanitizer reports at exit) or both free the future.
 */
TEST(pool_completion_for_a_closed_loop_racing_a_release)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.max_threads = 1;
	o.idle_timeout_ns = COIL_FOREVER;
	drop_t d;
	ASSERT_EQ(coil_thread_pool_create(&d.ex, &o), 0);
	atomic_store(&drop_go, 0);
	uint64_t rng = 3;
	for (int i = 1; i <= DROP_ROUNDS; i++) {
		coil_loop_t *loop;
		coil_task_t *t;
		d.round = i;
		int rc = coil_new_event_loop(&loop);
		TEST_SKIP_UNLESS_RING(rc);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(coil_loop_create_task(loop, &t, submits, &d, NULL), 0);
		ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
		coil_task_detach(t);
		ASSERT_EQ(coil_loop_close(loop), 0);
		atomic_store(&drop_go, i);
		jitter(&rng);
		for (int j = 0; j < DROP_JOBS; j++)
			coil_future_release(d.f[j]);
	}
	ASSERT_EQ(coil_executor_shutdown(d.ex, true, false), 0);
}

TEST_LIST(
	TEST_ENTRY(gen_consumer_migrates_mid_iteration),
	TEST_ENTRY(gen_shutdown_asyncgens_racing_a_step_on_another_worker),
	TEST_ENTRY(gen_loop_finalized_from_another_worker_racing_its_steps),
	TEST_ENTRY(gen_consumer_cancelled_inside_anext_from_another_worker),
	TEST_ENTRY(gen_left_open_on_a_worker_destroyed_after_the_shutdown),
	TEST_ENTRY(pool_completion_for_a_closed_loop_racing_a_release))
