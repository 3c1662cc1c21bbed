/*
 * tests/test_join.c: a task that awaits a task still at the bottom of its
 * worker's deque runs it at once, as a call (runtime/task.c, joins).
 *
 * A two-worker runtime whose worker 1 is held by a pinned task that yields
 * to its loop only after a job (it spins otherwise, giving its thread away
 * now and then), so that nothing is stolen from worker 0: there every
 * await of a task just spawned is a join. Worker 1's task also does what another thread does
 * to the joining tasks (cancelling them, resolving what the child waits
 * for) while worker 0 is inside the join. Checked: results, a join that
 * turns into a wait when the child suspends (and up a chain of joins),
 * cancellations of a joining task before and after that, and a child
 * cancelled before it ran.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"

/* --- worker 1: runs one job at a time, never yielding to its loop -------- */

typedef void (*job_fn)(void);

static struct {
	_Atomic(job_fn) job;
	atomic_bool quit;
	atomic_bool running;
} holder;

static int holder_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&holder.running, true);
	for (;;) {
		job_fn j = atomic_exchange(&holder.job, NULL);
		if (j) {
			j();
			/* What the job woke went to this worker's LIFO slot
			 * (the waker's): run it, with this task queued behind
			 * it, so that the worker has no reason to steal. */
			ASSERT_EQ(coil_sleep(0), 0);
		} else if (atomic_load(&holder.quit))
			return 0;
		else
			sched_yield();
	}
}

static void holder_go(job_fn j)
{
	atomic_store(&holder.job, j);
}

/* Spins (giving the thread away) until *flag is set. */
static void wait_for(atomic_int *flag)
{
	while (!atomic_load(flag))
		sched_yield();
}

/* From a plain thread: runs body as a task pinned on worker 0 with worker 1
 * held, then shuts the runtime down. */
static void drive(coil_fn body)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	atomic_store(&holder.quit, false);
	atomic_store(&holder.job, NULL);
	atomic_store(&holder.running, false);
	coil_cfuture_t *h = NULL, *d = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&h, coil_runtime_loop(rt, 1),
						     holder_main, NULL, &pinned), 0);
	/* Worker 1 is held before worker 0 has anything to steal. */
	while (!atomic_load(&holder.running))
		sched_yield();
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&d, coil_runtime_loop(rt, 0), body, NULL,
						     &pinned), 0);
	ASSERT_EQ(coil_cfuture_wait(d, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(d);
	atomic_store(&holder.quit, true);
	ASSERT_EQ(coil_cfuture_wait(h, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(h);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- results --------------------------------------------------------------- */

static int fib(void *arg, void **result)
{
	intptr_t k = (intptr_t)arg;
	/* Joined or not, a child runs on worker 0 (worker 1 is held). */
	ASSERT_EQ(coil_current_worker(), 0);
	if (k < 2) {
		*result = (void *)k;
		return 0;
	}
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, fib, (void *)(k - 1), NULL), 0);
	void *a = NULL, *b = NULL;
	ASSERT_EQ(fib((void *)(k - 2), &b), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), &a), 0);
	coil_task_detach(t);
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

static int fib_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	void *v = NULL;
	ASSERT_EQ(fib((void *)15, &v), 0);
	ASSERT_EQ((intptr_t)v, 610);
	return 0;
}

TEST(joined_children_return_their_results)
{
	drive(fib_driver);
}

/* --- a join that turns into a wait ---------------------------------------- */

static coil_future_t *gate;
static atomic_int child_waiting, child_running, child_release;

static int waits_at_the_gate(void *arg, void **result)
{
	(void)arg;
	void *v = NULL;
	atomic_store(&child_waiting, 1);
	ASSERT_EQ(coil_await(gate, &v), 0);
	*result = (void *)((intptr_t)v + 1);
	return 0;
}

/* depth 0: waits at the gate; else spawns and awaits depth - 1, plus 1. */
static int chain(void *arg, void **result)
{
	intptr_t depth = (intptr_t)arg;
	if (!depth)
		return waits_at_the_gate(NULL, result);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, chain, (void *)(depth - 1), NULL), 0);
	void *v = NULL;
	int rc = coil_await(coil_task_future(t), &v);
	coil_task_detach(t);
	*result = (void *)((intptr_t)v + 1);
	return rc;
}

static void open_gate(void)
{
	wait_for(&child_waiting);
	/* Resolved from worker 1, whenever the child's suspension ends. */
	ASSERT_EQ(coil_future_set_result(gate, (void *)100, NULL), 0);
}

static int gate_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (intptr_t depth = 0; depth < 4; depth++) {
		ASSERT_EQ(coil_future_create(&gate, NULL), 0);
		atomic_store(&child_waiting, 0);
		holder_go(open_gate);
		void *v = NULL;
		ASSERT_EQ(chain((void *)(depth + 1), &v), 0);
		/* 100 from the gate, +1 by the waiter, +1 per level. */
		ASSERT_EQ((intptr_t)v, 100 + 1 + depth + 1);
		coil_future_release(gate);
	}
	return 0;
}

TEST(a_join_whose_child_suspends_becomes_a_wait_up_the_chain)
{
	drive(gate_driver);
}

/* --- cancelling the joining task ------------------------------------------- */

static coil_task_t *joiner, *child;
static atomic_int joiner_rc;

/* Spins until released, then returns 7: a child that runs a while. */
static int spins_then_returns(void *arg, void **result)
{
	(void)arg;
	atomic_store(&child_running, 1);
	wait_for(&child_release);
	*result = (void *)7;
	return 0;
}

/* Spins until released, then waits at the gate. */
static int spins_then_waits(void *arg, void **result)
{
	(void)arg;
	atomic_store(&child_running, 1);
	wait_for(&child_release);
	return waits_at_the_gate(NULL, result);
}

/* The joining task: spawns `child` with fn and awaits it. */
static int joins(void *arg, void **result)
{
	(void)result;
	ASSERT_EQ(coil_spawn(&child, (coil_fn)arg, NULL, NULL), 0);
	int rc = coil_await(coil_task_future(child), NULL);
	atomic_store(&joiner_rc, rc);
	return rc;
}

static void cancel_joiner_then_release(void)
{
	wait_for(&child_running);
	ASSERT(coil_task_cancel(joiner, NULL));
	atomic_store(&child_release, 1);
}

static void cancel_joiner_once_waiting(void)
{
	atomic_store(&child_release, 1);
	wait_for(&child_waiting);
	ASSERT(coil_task_cancel(joiner, NULL));
}

static void open_gate_later(void)
{
	ASSERT_EQ(coil_future_set_result(gate, (void *)100, NULL), 0);
}

/* Runs joins(fn) as `joiner` (itself joined by the driver) with worker 1
 * doing `during`; the joiner's await must return -ECANCELED and the child
 * end with `want`. */
static void joiner_cancelled(coil_fn fn, job_fn during, intptr_t want)
{
	ASSERT_EQ(coil_future_create(&gate, NULL), 0);
	atomic_store(&child_waiting, 0);
	atomic_store(&child_running, 0);
	atomic_store(&child_release, 0);
	atomic_store(&joiner_rc, 1);
	ASSERT_EQ(coil_spawn(&joiner, joins, (void *)fn, NULL), 0);
	holder_go(during);
	ASSERT_EQ(coil_await(coil_task_future(joiner), NULL), -ECANCELED);
	ASSERT_EQ(atomic_load(&joiner_rc), -ECANCELED);
	/* The child goes on: cancelling its joiner did not cancel it. */
	if (!coil_future_done(coil_task_future(child))) {
		wait_for(&child_waiting);
		holder_go(open_gate_later);
	}
	void *v = NULL;
	ASSERT_EQ(coil_await(coil_task_future(child), &v), 0);
	ASSERT_EQ((intptr_t)v, want);
	coil_task_detach(child);
	coil_task_detach(joiner);
	coil_future_release(gate);
}

static int cancel_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* While the child runs as a call: delivered when it returns. */
	joiner_cancelled(spins_then_returns, cancel_joiner_then_release, 7);
	/* While the child runs, which then suspends: the join turns into
	 * a wait that the cancellation ends at once. */
	joiner_cancelled(spins_then_waits, cancel_joiner_then_release, 101);
	/* Once the join has turned into a wait. */
	joiner_cancelled(spins_then_waits, cancel_joiner_once_waiting, 101);
	return 0;
}

TEST(a_joining_task_cancelled_before_and_after_its_child_suspends)
{
	drive(cancel_driver);
}

/* --- a child cancelled before it ran --------------------------------------- */

static int ran;

static int never_runs(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ran = 1;
	return 0;
}

static int cancelled_child_driver(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, never_runs, NULL, NULL), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	ASSERT_EQ(ran, 0);
	coil_task_detach(t);
	return 0;
}

TEST(a_child_cancelled_before_it_ran_ends_at_the_join)
{
	drive(cancelled_child_driver);
}

TEST_LIST(TEST_ENTRY(joined_children_return_their_results),
	  TEST_ENTRY(a_join_whose_child_suspends_becomes_a_wait_up_the_chain),
	  TEST_ENTRY(a_joining_task_cancelled_before_and_after_its_child_suspends),
	  TEST_ENTRY(a_child_cancelled_before_it_ran_ends_at_the_join))
