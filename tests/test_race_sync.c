/*
 * tests/test_race_sync.c: the synchronisation primitives and the
 * composition helpers when a wake-up and a cancellation of the same waiter
 * race on two workers.
 *
 * Each test runs rounds on a runtime of 2 workers. A driver task pinned on
 * worker 0 spawns a victim (pinned there too) that waits on a primitive;
 * a helper task pinned on worker 1 runs one job per round, handed to it
 * through atomics, while the driver does the other half of the race. In
 * odd rounds the helper wakes the victim (release, set, put...) and the
 * driver cancels it; in even rounds the helper cancels and the driver
 * wakes. Both sides start after a random spin, so the two claims of the
 * waiter land in either order. Whatever the order:
 *  - the cancellation is delivered exactly once: either the wait returns
 *    -ECANCELED, or it succeeds and the victim's next await does;
 *  - what the waker hands over (the lock, a permit, an item) is never lost
 *    nor given twice: a cancelled waiter leaves it in the primitive;
 *  - a victim woken by the waker destroys the primitive at once, while the
 *    waker on the other worker may still be returning from its call (ASan
 *    sees a use after free, TSan a race, if the waker touches it after the
 *    wake-up).
 * The later tests destroy an object right after a task waiting in it was
 * woken (an as_completed iterator, a task group, a condition: destroyed on
 * worker 1 while the task resumes on worker 0; a barrier: by the task that
 * let a newcomer in): the woken task still uses the object until its call
 * returns, so destroy must either be refused (-EBUSY) until then, or leave
 * it a way to return COIL_ECLOSED without touching the object (ASan sees
 * the use after free otherwise). Another races a child's failure with the
 * outside cancellation of its task group's parent.
 * The assertions hold for every interleaving: nothing depends on timing.
 * Rounds shrink under TSan and Valgrind; COIL_TEST_VERBOSE=1 prints how
 * often each side won.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "coil/coil.h"
#include "test.h"
#define RACE_JITTER_BITS 17
#include "race.h"

static int rounds(void)
{
	if (getenv("COIL_VALGRIND"))
		return 10;
	return TEST_TSAN ? 300 : 2000;
}

/* ---- the helper on worker 1 ---- */

/* ---- one round ---- */

/*
 * A scenario: the victim's wait, the waker's action, what the victim does
 * once its wait is over (with the wait's code; it may destroy the
 * primitive when the waker woke it), and the driver's final check (which
 * destroys what is left).
 */
typedef struct race race_t;
typedef struct scenario {
	void (*setup)(race_t *r);          /* on the driver, before the victim */
	void (*prep)(race_t *r);           /* on the waker's side, before it */
	int (*wait)(race_t *r);            /* in the victim */
	void (*wake)(race_t *r);           /* on the waker's side */
	bool (*woken)(race_t *r, int rc);  /* rc means the waker woke it */
	void (*after)(race_t *r, int rc);  /* in the victim, after its wait */
	void (*check)(race_t *r);          /* on the driver, at the end */
} scenario_t;

struct race {
	const scenario_t *sc;
	coil_runtime_t *rt;
	coil_task_t *victim;
	atomic_bool armed;
	atomic_bool cancel_sent;  /* the cancellation was requested */
	int rc;                   /* the wait's code */
	int later;                /* the victim's next await */
	bool destroyed;           /* the victim destroyed the primitive */
	/* the primitives */
	coil_lock_t *lock;
	coil_semaphore_t *sem;
	coil_event_t *event;
	coil_queue_t *queue;
	coil_condition_t *cond;
	coil_barrier_t *barrier;
	coil_future_t *fut;       /* on worker 1's loop */
	void *item;
	int n;
	int round;
};

static int victim_main(void *arg, void **result)
{
	(void)result;
	race_t *r = arg;
	atomic_store(&r->armed, true);
	/* Suspends within this step: once the driver sees `armed` after a
	 * yield, the victim waits. */
	r->rc = r->sc->wait(r);
	/* Without a yield, which would consume a cancellation still to
	 * come: the next await must find it requested. */
	unsigned spins = 0;
	while (!atomic_load(&r->cancel_sent))
		spin_pause(&spins);
	r->later = coil_sleep(0);
	r->sc->after(r, r->rc);
	return 0;
}

static void job_cancel(void *arg)
{
	race_t *r = arg;
	ASSERT(coil_task_cancel(r->victim, NULL));
	atomic_store(&r->cancel_sent, true);
}

static void job_prep(void *arg)
{
	race_t *r = arg;
	r->sc->prep(r);
}

static void job_wake(void *arg)
{
	race_t *r = arg;
	r->sc->wake(r);
}

static void one_round(race_t *r, bool helper_wakes, uint64_t *rng)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	r->sc->setup(r);
	if (r->sc->prep) {
		if (helper_wakes) {
			helper_go(job_prep, r);
			helper_wait();
		} else {
			r->sc->prep(r);
		}
	}
	atomic_store(&r->armed, false);
	ASSERT_EQ(coil_spawn(&r->victim, victim_main, r, &pinned), 0);
	while (!atomic_load(&r->armed))
		ASSERT_EQ(coil_sleep(0), 0);
	if (helper_wakes) {
		helper_go(job_wake, r);
		jitter(rng);
		ASSERT(coil_task_cancel(r->victim, NULL));
		atomic_store(&r->cancel_sent, true);
	} else {
		helper_go(job_cancel, r);
		jitter(rng);
		r->sc->wake(r);
	}
	ASSERT_EQ(coil_await(coil_task_future(r->victim), NULL), 0);
	helper_wait();
	/* Exactly one delivery of the one cancellation. */
	if (r->rc == -ECANCELED) {
		ASSERT_EQ(r->later, 0);
	} else {
		ASSERT(r->sc->woken(r, r->rc));
		ASSERT_EQ(r->later, -ECANCELED);
	}
	r->sc->check(r);
	coil_task_detach(r->victim);
	r->victim = NULL;
}

static const scenario_t *the_scenario;

static int driver_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_runtime_t *rt = coil_current_runtime();
	uint64_t rng = 12345;
	int n = rounds();
	int woken[2] = { 0, 0 }, cancelled[2] = { 0, 0 };
	for (int i = 0; i < n; i++) {
		race_t r = { .sc = the_scenario, .rt = rt, .round = i };
		one_round(&r, i % 2, &rng);
		if (r.rc == -ECANCELED)
			cancelled[i % 2]++;
		else
			woken[i % 2]++;
	}
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d rounds: helper wakes: %d woken, %d cancelled; "
			"helper cancels: %d woken, %d cancelled\n", n,
			woken[1], cancelled[1], woken[0], cancelled[0]);
	return 0;
}

static void run_scenario(const scenario_t *sc)
{
	the_scenario = sc;
	race_drive(driver_main, NULL);
}

static bool rc_zero(race_t *r, int rc)
{
	(void)r;
	return rc == 0;
}

/* ---- lock: release hands the lock over, or passes a cancelled waiter ---- */

static void lock_setup(race_t *r)
{
	ASSERT_EQ(coil_lock_create(&r->lock), 0);
}

static void lock_prep(race_t *r)
{
	/* The waker's task holds it. */
	ASSERT_EQ(coil_lock_acquire_nowait(r->lock), 0);
}

static int lock_wait(race_t *r)
{
	return coil_lock_acquire(r->lock);
}

static void lock_wake(race_t *r)
{
	ASSERT_EQ(coil_lock_release(r->lock), 0);
}

static void lock_after(race_t *r, int rc)
{
	if (rc)
		return;
	/* Handed the lock: the releaser is past its wake-up. */
	ASSERT(coil_lock_locked(r->lock));
	ASSERT_EQ(coil_lock_release(r->lock), 0);
	ASSERT(!coil_lock_locked(r->lock));
	ASSERT_EQ(coil_lock_destroy(r->lock), 0);
	r->destroyed = true;
}

static void lock_check(race_t *r)
{
	if (r->destroyed)
		return;
	/* Cancelled: the lock was not handed over, and is free now. */
	ASSERT(!coil_lock_locked(r->lock));
	ASSERT_EQ(coil_lock_acquire_nowait(r->lock), 0);
	ASSERT_EQ(coil_lock_release(r->lock), 0);
	ASSERT_EQ(coil_lock_destroy(r->lock), 0);
}

TEST(lock_release_racing_a_waiters_cancellation)
{
	static const scenario_t sc = { lock_setup, lock_prep, lock_wait, lock_wake,
				       rc_zero, lock_after, lock_check };
	run_scenario(&sc);
}

/* ---- semaphore: a permit goes to the waiter or stays free ---- */

static void sem_setup(race_t *r)
{
	ASSERT_EQ(coil_semaphore_create(&r->sem, 0), 0);
}

static int sem_wait(race_t *r)
{
	return coil_semaphore_acquire(r->sem);
}

static void sem_wake(race_t *r)
{
	ASSERT_EQ(coil_semaphore_release(r->sem), 0);
}

static void sem_after(race_t *r, int rc)
{
	if (rc)
		return;
	ASSERT_EQ(coil_semaphore_value(r->sem), 0);
	ASSERT_EQ(coil_semaphore_destroy(r->sem), 0);
	r->destroyed = true;
}

static void sem_check(race_t *r)
{
	if (r->destroyed)
		return;
	/* The permit was not consumed. */
	ASSERT_EQ(coil_semaphore_value(r->sem), 1);
	ASSERT_EQ(coil_semaphore_destroy(r->sem), 0);
}

TEST(semaphore_release_racing_a_waiters_cancellation)
{
	static const scenario_t sc = { sem_setup, NULL, sem_wait, sem_wake,
				       rc_zero, sem_after, sem_check };
	run_scenario(&sc);
}

/* ---- event ---- */

static void event_setup(race_t *r)
{
	ASSERT_EQ(coil_event_create(&r->event), 0);
}

static int event_wait(race_t *r)
{
	return coil_event_wait(r->event);
}

static void event_wake(race_t *r)
{
	ASSERT_EQ(coil_event_set(r->event), 0);
}

static void event_after(race_t *r, int rc)
{
	if (rc)
		return;
	ASSERT(coil_event_is_set(r->event));
	ASSERT_EQ(coil_event_destroy(r->event), 0);
	r->destroyed = true;
}

static void event_check(race_t *r)
{
	if (r->destroyed)
		return;
	ASSERT(coil_event_is_set(r->event));
	ASSERT_EQ(coil_event_destroy(r->event), 0);
}

TEST(event_set_racing_a_waiters_cancellation)
{
	static const scenario_t sc = { event_setup, NULL, event_wait, event_wake,
				       rc_zero, event_after, event_check };
	run_scenario(&sc);
}

/* ---- queue: a get handed an item, a put moved into a freed slot ---- */

static int item_a, item_b;

static void queue_setup(race_t *r)
{
	ASSERT_EQ(coil_queue_create(&r->queue, COIL_QUEUE_FIFO, 1), 0);
	r->item = NULL;
}

static int get_wait(race_t *r)
{
	return coil_queue_get(r->queue, &r->item);
}

static void get_wake(race_t *r)
{
	ASSERT_EQ(coil_queue_put_nowait(r->queue, &item_a), 0);
}

static void get_after(race_t *r, int rc)
{
	if (rc)
		return;
	/* Handed the item: the queue never stored it. */
	ASSERT_PTR_EQ(r->item, &item_a);
	ASSERT_EQ(coil_queue_qsize(r->queue), 0);
	ASSERT_EQ(coil_queue_task_done(r->queue), 0);
	ASSERT_EQ(coil_queue_destroy(r->queue), 0);
	r->destroyed = true;
}

static void get_check(race_t *r)
{
	if (r->destroyed)
		return;
	/* Cancelled: the item waits in the queue, once. */
	ASSERT_PTR_EQ(r->item, NULL);
	ASSERT_EQ(coil_queue_qsize(r->queue), 1);
	void *it = NULL;
	ASSERT_EQ(coil_queue_get_nowait(r->queue, &it), 0);
	ASSERT_PTR_EQ(it, &item_a);
	ASSERT_EQ(coil_queue_get_nowait(r->queue, &it), -EAGAIN);
	ASSERT_EQ(coil_queue_task_done(r->queue), 0);
	ASSERT_EQ(coil_queue_task_done(r->queue), -EINVAL);
	ASSERT_EQ(coil_queue_destroy(r->queue), 0);
}

TEST(queue_put_racing_a_getters_cancellation)
{
	static const scenario_t sc = { queue_setup, NULL, get_wait, get_wake,
				       rc_zero, get_after, get_check };
	run_scenario(&sc);
}

static void put_prep(race_t *r)
{
	/* Full: the victim's put waits. */
	ASSERT_EQ(coil_queue_put_nowait(r->queue, &item_a), 0);
}

static int put_wait(race_t *r)
{
	return coil_queue_put(r->queue, &item_b);
}

static void put_wake(race_t *r)
{
	void *it = NULL;
	ASSERT_EQ(coil_queue_get_nowait(r->queue, &it), 0);
	ASSERT_PTR_EQ(it, &item_a);
	ASSERT_EQ(coil_queue_task_done(r->queue), 0);
}

static void put_after(race_t *r, int rc)
{
	(void)r;
	(void)rc;
}

static void put_check(race_t *r)
{
	/* The victim's item is in the queue exactly when its put returned
	 * 0; the waker's get freed a slot either way. */
	void *it = NULL;
	if (r->rc == 0) {
		ASSERT_EQ(coil_queue_qsize(r->queue), 1);
		ASSERT_EQ(coil_queue_get_nowait(r->queue, &it), 0);
		ASSERT_PTR_EQ(it, &item_b);
		ASSERT_EQ(coil_queue_task_done(r->queue), 0);
	}
	ASSERT_EQ(coil_queue_qsize(r->queue), 0);
	ASSERT_EQ(coil_queue_get_nowait(r->queue, &it), -EAGAIN);
	ASSERT_EQ(coil_queue_task_done(r->queue), -EINVAL);
	ASSERT_EQ(coil_queue_destroy(r->queue), 0);
}

TEST(queue_get_racing_a_putters_cancellation)
{
	static const scenario_t sc = { queue_setup, put_prep, put_wait, put_wake,
				       rc_zero, put_after, put_check };
	run_scenario(&sc);
}

/* ---- condition: notify racing the cancellation of its one waiter ---- */

static void cond_setup(race_t *r)
{
	ASSERT_EQ(coil_condition_create(&r->cond, NULL), 0);
}

static int cond_wait(race_t *r)
{
	coil_lock_t *l = coil_condition_lock(r->cond);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	int rc = coil_condition_wait(r->cond);
	/* Whatever the outcome, the lock is held again. */
	ASSERT(coil_lock_locked(l));
	ASSERT_EQ(coil_lock_release(l), 0);
	return rc;
}

static void cond_wake(race_t *r)
{
	coil_lock_t *l = coil_condition_lock(r->cond);
	/* The victim holds the lock only briefly, between its wake-up and
	 * its release; it never waits for us meanwhile. */
	int rc;
	unsigned spins = 0;
	while ((rc = coil_lock_acquire_nowait(l)) == -EAGAIN)
		spin_pause(&spins);
	ASSERT_EQ(rc, 0);
	int n = coil_condition_notify(r->cond, 1);
	ASSERT(n == 0 || n == 1);
	r->n = n;
	ASSERT_EQ(coil_lock_release(l), 0);
}

static void cond_after(race_t *r, int rc)
{
	(void)r;
	(void)rc;
}

static void cond_check(race_t *r)
{
	/* A notification that reached the waiter was consumed or passed on
	 * (to nobody here); a cancelled waiter before it was not counted. */
	if (r->rc == 0)
		ASSERT_EQ(r->n, 1);
	ASSERT(!coil_lock_locked(coil_condition_lock(r->cond)));
	ASSERT_EQ(coil_condition_destroy(r->cond), 0);
}

TEST(condition_notify_racing_a_waiters_cancellation)
{
	static const scenario_t sc = { cond_setup, NULL, cond_wait, cond_wake,
				       rc_zero, cond_after, cond_check };
	run_scenario(&sc);
}

/* ---- barrier: abort racing the cancellation of a waiting party ---- */

static void barrier_setup(race_t *r)
{
	ASSERT_EQ(coil_barrier_create(&r->barrier, 2), 0);
}

static int barrier_wait(race_t *r)
{
	return coil_barrier_wait(r->barrier);
}

static void barrier_wake(race_t *r)
{
	ASSERT_EQ(coil_barrier_abort(r->barrier), 0);
}

static bool barrier_woken(race_t *r, int rc)
{
	(void)r;
	return rc == -EPIPE;
}

static void barrier_after(race_t *r, int rc)
{
	if (rc != -EPIPE)
		return;
	ASSERT(coil_barrier_broken(r->barrier));
	ASSERT_EQ(coil_barrier_destroy(r->barrier), 0);
	r->destroyed = true;
}

static void barrier_check(race_t *r)
{
	if (r->destroyed)
		return;
	ASSERT(coil_barrier_broken(r->barrier));
	ASSERT_EQ(coil_barrier_n_waiting(r->barrier), 0);
	ASSERT_EQ(coil_barrier_destroy(r->barrier), 0);
}

TEST(barrier_abort_racing_a_waiters_cancellation)
{
	static const scenario_t sc = { barrier_setup, NULL, barrier_wait, barrier_wake,
				       barrier_woken, barrier_after, barrier_check };
	run_scenario(&sc);
}

/* ---- future sets: a future completing while the waiting task is
 * cancelled; the future is worker 1's or worker 0's in turn, so that its
 * done-callback runs on either side of the race ---- */

static void fut_setup(race_t *r)
{
	coil_loop_t *loop = coil_runtime_loop(r->rt, r->round / 2 % 2 ? 0 : 1);
	ASSERT_EQ(coil_future_create(&r->fut, loop), 0);
}

static void fut_wake(race_t *r)
{
	/* The victim's gather may have cancelled it already. */
	int rc = coil_future_set_result(r->fut, &item_a, NULL);
	ASSERT(rc == 0 || rc == COIL_EINVALSTATE);
}

static void fut_after(race_t *r, int rc)
{
	(void)r;
	(void)rc;
}

static void fut_check(race_t *r)
{
	/* Resolved or cancelled from worker 0, it completes on worker 1's
	 * loop a little later. */
	while (!coil_future_done(r->fut))
		ASSERT_EQ(coil_sleep(0), 0);
	coil_future_release(r->fut);
}

static int gather_wait(race_t *r)
{
	void *res = NULL;
	int err = 0;
	int rc = coil_gather(&r->fut, 1, &res, &err, 0);
	if (rc == 0) {
		ASSERT_EQ(err, 0);
		ASSERT_PTR_EQ(res, &item_a);
	}
	return rc;
}

TEST(gather_child_done_racing_the_gatherers_cancellation)
{
	static const scenario_t sc = { fut_setup, NULL, gather_wait, fut_wake,
				       rc_zero, fut_after, fut_check };
	run_scenario(&sc);
}

static int wait_wait(race_t *r)
{
	bool done = false;
	/* A deadline far off: the timer is armed, and disarmed, each time. */
	int rc = coil_wait(&r->fut, 1, &done, COIL_FIRST_COMPLETED,
			   (int64_t)60 * 1000000000);
	if (rc >= 0) {
		ASSERT_EQ(rc, 1);
		ASSERT(done);
	}
	return rc;
}

static bool wait_woken(race_t *r, int rc)
{
	(void)r;
	return rc == 1;
}

TEST(wait_completion_racing_the_waiters_cancellation)
{
	static const scenario_t sc = { fut_setup, NULL, wait_wait, fut_wake,
				       wait_woken, fut_after, fut_check };
	run_scenario(&sc);
}

static int ac_wait(race_t *r)
{
	coil_as_completed_t *it;
	ASSERT_EQ(coil_as_completed_create(&it, &r->fut, 1, COIL_FOREVER), 0);
	coil_future_t *f = NULL;
	int rc = coil_as_completed_next(it, &f);
	if (rc == -ECANCELED) {
		/* Nothing lost: the next call yields it. */
		ASSERT_EQ(coil_as_completed_next(it, &f), 0);
	} else {
		ASSERT_EQ(rc, 0);
	}
	ASSERT_PTR_EQ(f, r->fut);
	ASSERT_EQ(coil_as_completed_next(it, &f), COIL_EDONE);
	coil_as_completed_destroy(it);
	return rc;
}

TEST(as_completed_racing_the_waiters_cancellation)
{
	static const scenario_t sc = { fut_setup, NULL, ac_wait, fut_wake,
				       rc_zero, fut_after, fut_check };
	run_scenario(&sc);
}

/* ---- destroyed on worker 1 while a wake-up on the other side is under
 * way: the waiting task was suspended when the destroyer started, and
 * must either finish its call before the object goes or get COIL_ECLOSED
 * without touching it again ---- */

typedef struct gone {
	coil_runtime_t *rt;
	int round;
	uint64_t rng;             /* the helper's */
	atomic_bool armed;
	atomic_bool child_waits;
	coil_future_t *fut;
	coil_future_t *got;
	coil_as_completed_t *it;
	coil_taskgroup_t *tg;
	_Atomic(coil_task_t *) child;
	coil_event_t *event;
	coil_condition_t *cond;
	coil_lock_t *lock;
	coil_barrier_t *barrier;
	int rc;
	int later;                /* the parent's next await */
} gone_t;

static int ac_next_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	atomic_store(&g->armed, true);
	g->rc = coil_as_completed_next(g->it, &g->got);
	return 0;
}

static void job_complete_then_destroy_ac(void *arg)
{
	gone_t *g = arg;
	ASSERT_EQ(coil_future_set_result(g->fut, &item_a, NULL), 0);
	/* Worker 1's future: its callback wakes the waiter now. */
	ASSERT_EQ(coil_sleep(0), 0);
	jitter(&g->rng);
	coil_as_completed_destroy(g->it);
}

/* Many rounds, each on a fresh runtime-wide helper job; `fn` plays one. */
static void gone_rounds(void (*fn)(gone_t *g))
{
	coil_runtime_t *rt = coil_current_runtime();
	coil_spawn_opts_t pinned = { .pinned = true };
	atomic_store(&helper.quit, false);
	atomic_store(&helper.seq, 0);
	atomic_store(&helper.done, 0);
	coil_cfuture_t *h = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&h, coil_runtime_loop(rt, 1),
						     helper_main, NULL, &pinned), 0);
	int n = rounds();
	for (int i = 0; i < n; i++) {
		gone_t g = { .rt = rt, .round = i, .rng = (uint64_t)i * 77 + 1 };
		fn(&g);
	}
	atomic_store(&helper.quit, true);
	while (!coil_cfuture_done(h))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_cfuture_wait(h, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(h);
}

static void ac_gone_round(gone_t *g)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	/* The future is worker 1's, or worker 0's (set from worker 1, its
	 * callback runs on worker 0, next to the waiter) in turn. */
	coil_loop_t *loop = coil_runtime_loop(g->rt, g->round % 2);
	ASSERT_EQ(coil_future_create(&g->fut, loop), 0);
	ASSERT_EQ(coil_as_completed_create(&g->it, &g->fut, 1, COIL_FOREVER), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, ac_next_fn, g, &pinned), 0);
	while (!atomic_load(&g->armed))
		ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_complete_then_destroy_ac, g);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	helper_wait();
	if (g->rc == 0)
		ASSERT_PTR_EQ(g->got, g->fut);
	else
		ASSERT_EQ(g->rc, COIL_ECLOSED);
	coil_task_detach(t);
	while (!coil_future_done(g->fut))
		ASSERT_EQ(coil_sleep(0), 0);
	coil_future_release(g->fut);
}

static int ac_gone_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	gone_rounds(ac_gone_round);
	return 0;
}

static void run_main_pinned(coil_fn fn)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_cfuture_t *c = NULL;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 0),
						     fn, NULL, &pinned), 0);
	ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(c);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST(as_completed_destroyed_as_a_completion_wakes_its_waiter)
{
	run_main_pinned(ac_gone_main);
}

static int tg_child_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	atomic_store(&g->child_waits, true);
	return coil_event_wait(g->event);
}

static int tg_parent_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_taskgroup_enter(g->tg), 0);
	coil_task_t *child;
	ASSERT_EQ(coil_taskgroup_spawn(g->tg, &child, tg_child_fn, g, &pinned), 0);
	atomic_store(&g->child, child);
	atomic_store(&g->armed, true);
	g->rc = coil_taskgroup_wait(g->tg, 0);
	return 0;
}

static void job_set_then_destroy_tg(void *arg)
{
	gone_t *g = arg;
	coil_task_t *child = atomic_load(&g->child);
	ASSERT_EQ(coil_event_set(g->event), 0);
	/* The parent is woken one loop iteration after its child ends:
	 * destroy about then, while it may be leaving the group. */
	unsigned spins = 0;
	while (!coil_future_done(coil_task_future(child)))
		spin_pause(&spins);
	unsigned n = (unsigned)(rnd(&g->rng) % 4096);
	for (volatile unsigned i = 0; i < n; i++)
		;
	coil_taskgroup_destroy(g->tg);
}

static void tg_gone_round(gone_t *g)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_taskgroup_create(&g->tg), 0);
	ASSERT_EQ(coil_event_create(&g->event), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, tg_parent_fn, g, &pinned), 0);
	/* Both wait on worker 0: the parent in the group, the child on
	 * the event, which worker 1 sets before destroying the group. */
	while (!atomic_load(&g->armed) || !atomic_load(&g->child_waits))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_set_then_destroy_tg, g);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	helper_wait();
	ASSERT(g->rc == 0 || g->rc == COIL_ECLOSED);
	coil_task_detach(t);
	coil_task_detach(atomic_load(&g->child));
	ASSERT_EQ(coil_event_destroy(g->event), 0);
}

static int tg_gone_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	gone_rounds(tg_gone_round);
	return 0;
}

TEST(taskgroup_destroyed_as_its_last_child_wakes_the_parent)
{
	run_main_pinned(tg_gone_main);
}

/* ---- a task group: its only child fails (woken from worker 1) while
 * the parent, waiting in the group, is cancelled from outside ---- */

static int tg_failing_child_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	atomic_store(&g->child_waits, true);
	int rc = coil_event_wait(g->event);
	return rc ? rc : -EIO;
}

static int tg_cancelled_parent_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_taskgroup_enter(g->tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(g->tg, NULL, tg_failing_child_fn, g, &pinned), 0);
	atomic_store(&g->armed, true);
	g->rc = coil_taskgroup_wait(g->tg, 0);
	g->later = coil_sleep(0);
	return 0;
}

static void job_set_event(void *arg)
{
	gone_t *g = arg;
	ASSERT_EQ(coil_event_set(g->event), 0);
}

static int tg_outcomes[2]; /* child's error, outside cancellation */

static void tg_cancel_round(gone_t *g)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_taskgroup_create(&g->tg), 0);
	ASSERT_EQ(coil_event_create(&g->event), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, tg_cancelled_parent_fn, g, &pinned), 0);
	while (!atomic_load(&g->armed) || !atomic_load(&g->child_waits))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_set_event, g);
	jitter(&g->rng);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	helper_wait();
	/*
	 * The child's error wins over the outside cancellation, which stays
	 * pending for the parent's next await; a child cancelled before it
	 * failed leaves the outside cancellation to be reported. Either way
	 * it is delivered exactly once, and the group's own cancellation of
	 * the parent is withdrawn.
	 */
	tg_outcomes[g->rc != -EIO]++;
	if (g->rc == -EIO) {
		ASSERT_EQ(g->later, -ECANCELED);
		ASSERT_EQ(coil_taskgroup_error_count(g->tg), 1);
		ASSERT_EQ(coil_taskgroup_error(g->tg, 0), -EIO);
	} else {
		ASSERT_EQ(g->rc, -ECANCELED);
		ASSERT_EQ(g->later, 0);
		ASSERT_EQ(coil_taskgroup_error_count(g->tg), 0);
	}
	ASSERT_EQ(coil_taskgroup_result(g->tg), g->rc);
	coil_task_detach(t);
	coil_taskgroup_destroy(g->tg);
	ASSERT_EQ(coil_event_destroy(g->event), 0);
}

static int tg_cancel_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	gone_rounds(tg_cancel_round);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  child's error: %d, outside cancellation: %d\n",
			tg_outcomes[0], tg_outcomes[1]);
	return 0;
}

TEST(taskgroup_child_failure_racing_the_parents_cancellation)
{
	run_main_pinned(tg_cancel_main);
}

/* ---- a condition destroyed by its notifier on worker 1 while the
 * notified task, on worker 0, is still inside wait (taking the lock back):
 * destroy must refuse (-EBUSY) until that task has left ---- */

static int cond_waiter_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	/* The lock is the driver's: the condition may be gone once wait
	 * returns, and its own lock with it. */
	ASSERT_EQ(coil_lock_acquire(g->lock), 0);
	atomic_store(&g->armed, true);
	g->rc = coil_condition_wait(g->cond);
	ASSERT_EQ(coil_lock_release(g->lock), 0);
	return 0;
}

static void job_notify_then_destroy_cond(void *arg)
{
	gone_t *g = arg;
	ASSERT_EQ(coil_lock_acquire(g->lock), 0);
	ASSERT_EQ(coil_condition_notify(g->cond, 1), 1);
	ASSERT_EQ(coil_lock_release(g->lock), 0);
	jitter(&g->rng);
	int rc = coil_condition_destroy(g->cond);
	if (rc == 0)
		g->cond = NULL;
	else
		ASSERT_EQ(rc, -EBUSY);
}

static void cond_gone_round(gone_t *g)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_lock_create(&g->lock), 0);
	ASSERT_EQ(coil_condition_create(&g->cond, g->lock), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, cond_waiter_fn, g, &pinned), 0);
	while (!atomic_load(&g->armed))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	helper_go(job_notify_then_destroy_cond, g);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	helper_wait();
	ASSERT_EQ(g->rc, 0);
	coil_task_detach(t);
	if (g->cond)
		ASSERT_EQ(coil_condition_destroy(g->cond), 0);
	ASSERT(!coil_lock_locked(g->lock));
	ASSERT_EQ(coil_lock_destroy(g->lock), 0);
}

static int cond_gone_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	gone_rounds(cond_gone_round);
	return 0;
}

TEST(condition_destroyed_while_its_notified_waiter_takes_the_lock_back)
{
	run_main_pinned(cond_gone_main);
}

/* ---- a barrier destroyed by the last task of a round to leave while a
 * newcomer it let in is woken but has not run yet: destroy must refuse
 * (-EBUSY) until that task has left wait ---- */

static int barrier_first_fn(void *arg, void **result)
{
	(void)result;
	gone_t *g = arg;
	atomic_store(&g->armed, true);
	ASSERT_EQ(coil_barrier_wait(g->barrier), 0);
	/* The last of the round out: the newcomer is woken, not yet run. */
	int rc = coil_barrier_destroy(g->barrier);
	if (rc == 0) {
		g->barrier = NULL;
	} else {
		ASSERT_EQ(rc, -EBUSY);
		/* Let the newcomer, alone in the next round, out. */
		ASSERT_EQ(coil_barrier_abort(g->barrier), 0);
	}
	return 0;
}

static void job_barrier_pass(void *arg)
{
	gone_t *g = arg;
	ASSERT_EQ(coil_barrier_wait(g->barrier), 1);
}

static void barrier_gone_round(gone_t *g)
{
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_barrier_create(&g->barrier, 2), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, barrier_first_fn, g, &pinned), 0);
	while (!atomic_load(&g->armed))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT_EQ(coil_sleep(0), 0);
	/* Worker 1 fills the round and lets the first task through; that
	 * one cannot run (it is pinned here) before we suspend below. */
	helper_go(job_barrier_pass, g);
	unsigned seq = atomic_load(&helper.seq), spins = 0;
	while (atomic_load_explicit(&helper.done, memory_order_acquire) != seq)
		spin_pause(&spins);
	/* The round drains: we are held until the first task leaves. */
	int rc = coil_barrier_wait(g->barrier);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	/* Let in, we found the barrier aborted by the first task, which
	 * could not destroy it while we were inside. */
	ASSERT_EQ(rc, -EPIPE);
	ASSERT(g->barrier != NULL);
	ASSERT_EQ(coil_barrier_destroy(g->barrier), 0);
}

static int barrier_gone_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	gone_rounds(barrier_gone_round);
	return 0;
}

TEST(barrier_destroyed_while_a_newcomer_it_let_in_is_still_inside)
{
	run_main_pinned(barrier_gone_main);
}

TEST_LIST(
	TEST_ENTRY(lock_release_racing_a_waiters_cancellation),
	TEST_ENTRY(semaphore_release_racing_a_waiters_cancellation),
	TEST_ENTRY(event_set_racing_a_waiters_cancellation),
	TEST_ENTRY(queue_put_racing_a_getters_cancellation),
	TEST_ENTRY(queue_get_racing_a_putters_cancellation),
	TEST_ENTRY(condition_notify_racing_a_waiters_cancellation),
	TEST_ENTRY(barrier_abort_racing_a_waiters_cancellation),
	TEST_ENTRY(gather_child_done_racing_the_gatherers_cancellation),
	TEST_ENTRY(wait_completion_racing_the_waiters_cancellation),
	TEST_ENTRY(as_completed_racing_the_waiters_cancellation),
	TEST_ENTRY(as_completed_destroyed_as_a_completion_wakes_its_waiter),
	TEST_ENTRY(taskgroup_destroyed_as_its_last_child_wakes_the_parent),
	TEST_ENTRY(taskgroup_child_failure_racing_the_parents_cancellation),
	TEST_ENTRY(condition_destroyed_while_its_notified_waiter_takes_the_lock_back),
	TEST_ENTRY(barrier_destroyed_while_a_newcomer_it_let_in_is_still_inside))
