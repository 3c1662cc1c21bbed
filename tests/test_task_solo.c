/*
 * tests/test_task_solo.c: tasks of a loop that runs all of them on one
 * thread (a one-worker runtime, or a standalone loop once a multi-worker
 * runtime has made every lock real): the paths that skip the locks
 * between workers (runtime/task.c, loop_solo) must keep cancellation,
 * reference counting and the stacks a loop keeps from ended tasks right.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sched.h>
#include <time.h>

#include <coil/coil.h>

#include "stack.h"
#include "test.h"

/* --- cancellation while awaiting a task -------------------------------- */

static atomic_bool child_waiting;
static atomic_bool never_ran_body_ran;

/* Awaits a future nobody resolves: only a cancellation ends it. */
static int waits_forever(void *arg, void **result)
{
	(void)result;
	atomic_store(&child_waiting, true);
	return coil_await(arg, NULL);
}

/* Awaits a child that waits forever; cancelled there, it cancels the
 * child in turn, awaits its end and ends cancelled itself. */
static int awaits_a_child(void *arg, void **result)
{
	(void)result;
	coil_task_t *child;
	ASSERT_EQ(coil_spawn(&child, waits_forever, arg, NULL), 0);
	int rc = coil_await(coil_task_future(child), NULL);
	ASSERT_EQ(rc, -ECANCELED);
	ASSERT(!coil_future_done(coil_task_future(child)));
	ASSERT(coil_task_cancel(child, NULL));
	ASSERT_EQ(coil_await(coil_task_future(child), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(child)));
	coil_task_detach(child);
	return rc;
}

static int must_not_run(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&never_ran_body_ran, true);
	return 0;
}

static int cancels_a_task_awaiting_a_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&child_waiting, false);
	atomic_store(&never_ran_body_ran, false);
	coil_future_t *never;
	ASSERT_EQ(coil_future_create(&never, NULL), 0);
	coil_task_t *a;
	ASSERT_EQ(coil_spawn(&a, awaits_a_child, never, NULL), 0);
	/* One thread runs everything: once the child has said it waits, it
	 * and its parent are both suspended. */
	while (!atomic_load(&child_waiting))
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT(coil_task_cancel(a, "stop"));
	ASSERT_EQ(coil_await(coil_task_future(a), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(a)));
	ASSERT_EQ(coil_task_cancel(a, NULL), false); /* done */
	coil_task_detach(a);

	/* Cancelled before its first step: it ends cancelled, unrun. */
	coil_task_t *b;
	ASSERT_EQ(coil_spawn(&b, must_not_run, NULL, NULL), 0);
	ASSERT(coil_task_cancel(b, NULL));
	ASSERT_EQ(coil_await(coil_task_future(b), NULL), -ECANCELED);
	ASSERT(!atomic_load(&never_ran_body_ran));
	coil_task_detach(b);
	coil_future_release(never);
	return 0;
}

TEST(cancel_reaches_a_task_awaiting_a_task_on_one_worker)
{
	coil_runtime_t *rt = test_runtime_new(1);
	ASSERT_EQ(coil_runtime_block_on(rt, cancels_a_task_awaiting_a_task, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST(cancel_reaches_a_task_awaiting_a_task_on_a_standalone_loop_with_threads)
{
	/* A runtime of two workers turns every lock on for good. */
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	coil_loop_t *loop;
	ASSERT_EQ(coil_new_event_loop(&loop), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, cancels_a_task_awaiting_a_task, NULL, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

/* --- a task's future cancelled from a plain thread --------------------- */

typedef struct plain_cancel {
	sem_t made;               /* `task` is set (or `rc` says why not) */
	coil_task_t *task;
	atomic_bool waiting;
	atomic_bool ended;
	int rc;
} plain_cancel_t;

static int sleeps_an_hour(void *arg, void **result)
{
	(void)result;
	plain_cancel_t *p = arg;
	atomic_store(&p->waiting, true);
	return coil_sleep(3600);
}

/* Makes a standalone loop and its task on its own thread and runs it. */
static void *runs_a_sleeper(void *arg)
{
	plain_cancel_t *p = arg;
	coil_loop_t *loop;
	p->rc = coil_new_event_loop(&loop);
	if (p->rc == 0)
		p->rc = coil_loop_create_task(loop, &p->task, sleeps_an_hour, p, NULL);
	sem_post(&p->made);
	if (p->rc)
		return NULL;
	p->rc = coil_loop_run_until_complete(loop, coil_task_future(p->task), NULL);
	atomic_store(&p->ended, true);
	coil_task_detach(p->task);
	ASSERT_EQ(coil_loop_close(loop), 0);
	return NULL;
}

/* coil/future.h lets a plain thread cancel a future: for a task's, the
 * request must reach the loop's thread, which sleeps in its ring until
 * the hour is up unless it is woken. */
TEST(a_plain_thread_cancels_a_tasks_future_on_a_standalone_loop)
{
	plain_cancel_t p = { .rc = 0 };
	sem_init(&p.made, 0, 0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, runs_a_sleeper, &p), 0);
	sem_wait(&p.made);
	TEST_SKIP_UNLESS_RING(p.rc);
	ASSERT_EQ(p.rc, 0);
	while (!atomic_load(&p.waiting))
		sched_yield();
	/* Long enough for the loop to be asleep in its ring. */
	nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	ASSERT(coil_future_cancel(coil_task_future(p.task), "stop"));
	/* Ten seconds at most: a lost request leaves the loop asleep. */
	for (int i = 0; i < 1000 && !atomic_load(&p.ended); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	ASSERT(atomic_load(&p.ended));
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(p.rc, -ECANCELED);
	sem_destroy(&p.made);
}

/* --- handles released off the loop -------------------------------------- */

#define HANDOFFS 2000

typedef struct handoff {
	sem_t ready;              /* a handle is in `task` */
	sem_t taken;              /* the plain thread took it */
	coil_task_t *_Atomic task;
	atomic_int ended;
} handoff_t;

static int ends_at_once(void *arg, void **result)
{
	handoff_t *h = arg;
	atomic_fetch_add(&h->ended, 1);
	*result = arg;
	return 0;
}

/* A plain thread: releases each handle it is given, while the task may be
 * ending on the worker (coil_runtime_spawn's handles may be released from
 * any thread, coil/runtime.h). */
static void *releases_handles(void *arg)
{
	handoff_t *h = arg;
	for (int i = 0; i < HANDOFFS; i++) {
		sem_wait(&h->ready);
		coil_task_t *t = atomic_exchange(&h->task, NULL);
		sem_post(&h->taken);
		coil_task_detach(t);
	}
	return NULL;
}

static int spawns_for_the_plain_thread(void *arg, void **result)
{
	(void)result;
	handoff_t *h = arg;
	coil_runtime_t *rt = coil_current_runtime();
	for (int i = 0; i < HANDOFFS; i++) {
		coil_task_t *t;
		ASSERT_EQ(coil_runtime_spawn(rt, &t, ends_at_once, h, NULL), 0);
		atomic_store(&h->task, t);
		sem_post(&h->ready);
		/* The task runs (and ends) while the plain thread lets go. */
		ASSERT_EQ(coil_sleep(0), 0);
		while (sem_trywait(&h->taken) != 0)
			ASSERT_EQ(coil_sleep(0), 0);
	}
	while (atomic_load(&h->ended) < HANDOFFS)
		ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

TEST(runtime_spawn_handle_from_the_worker_may_be_released_by_a_plain_thread)
{
	coil_runtime_t *rt = test_runtime_new(1);
	handoff_t h;
	sem_init(&h.ready, 0, 0);
	sem_init(&h.taken, 0, 0);
	atomic_init(&h.task, NULL);
	atomic_init(&h.ended, 0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, releases_handles, &h), 0);
	ASSERT_EQ(coil_runtime_block_on(rt, spawns_for_the_plain_thread, &h, NULL), 0);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(atomic_load(&h.ended), HANDOFFS);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	sem_destroy(&h.ready);
	sem_destroy(&h.taken);
}

/* --- stacks kept from ended tasks ---------------------------------------- */

#define CHAIN 40

/* Spawns the next link and awaits it: the chain ends innermost first,
 * every task right after the one it awaited. */
static int link_of_a_chain(void *arg, void **result)
{
	intptr_t left = (intptr_t)arg;
	*result = arg;
	if (!left)
		return 0;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, link_of_a_chain, (void *)(left - 1), NULL), 0);
	void *r = NULL;
	int rc = coil_await(coil_task_future(t), &r);
	coil_task_detach(t);
	ASSERT_EQ((intptr_t)r, left - 1);
	return rc;
}

static int runs_chains(void *arg, void **result)
{
	(void)arg;
	(void)result;
	size_t before = coil__stack_live_count();
	for (int round = 0; round < 3; round++) {
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, link_of_a_chain, (void *)(intptr_t)CHAIN, NULL), 0);
		void *r = NULL;
		ASSERT_EQ(coil_await(coil_task_future(t), &r), 0);
		ASSERT_EQ((intptr_t)r, CHAIN);
		coil_task_detach(t);
		/* All CHAIN + 1 tasks ended in a row: the loop keeps a few of
		 * their stacks for the next tasks, the rest went back to the
		 * stack pool. */
		size_t now = coil__stack_live_count();
		ASSERT_LE(now, before + 8);
	}
	return 0;
}

TEST(a_chain_of_ending_tasks_leaves_the_loop_a_few_stacks)
{
	coil_runtime_t *rt = test_runtime_new(1);
	ASSERT_EQ(coil_runtime_block_on(rt, runs_chains, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST_LIST(
	TEST_ENTRY(a_plain_thread_cancels_a_tasks_future_on_a_standalone_loop),
	TEST_ENTRY(cancel_reaches_a_task_awaiting_a_task_on_one_worker),
	TEST_ENTRY(cancel_reaches_a_task_awaiting_a_task_on_a_standalone_loop_with_threads),
	TEST_ENTRY(runtime_spawn_handle_from_the_worker_may_be_released_by_a_plain_thread),
	TEST_ENTRY(a_chain_of_ending_tasks_leaves_the_loop_a_few_stacks))
