/*
 * tests/test_sched_wake.c: wake-ups of parked workers by bursts of work.
 *
 * Only the push that finds the injection queue empty (or a worker's deque
 * empty) runs the wake-up check of the parking protocol; the pushes behind
 * it rely on that one (runtime/sched/runtime.c). These tests make many such
 * bursts while the workers are parked or about to park, and count every
 * item: each must run exactly once, and a lost wake-up shows as a round
 * that never completes (its wait has a deadline far longer than a round
 * takes, so a failure is a hang, not a slow machine).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

#define SUBMITTERS 3
#define PER_ROUND 48   /* items per submitter per round */
#define ROUND_LIMIT_S 20

static int rounds(void)
{
	return test_heavy_tools() ? 40 : 300;
}

/* Waits on sem with a deadline; false if it passed. */
static bool sem_wait_s(sem_t *sem, int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	while (sem_timedwait(sem, &ts) != 0)
		if (errno != EINTR)
			return false;
	return true;
}

/* --- bursts from plain threads onto the injection queue ----------------- */

static struct {
	coil_runtime_t *rt;
	coil_loop_t *any;
	pthread_barrier_t go;      /* submitters and the main thread, per round */
	atomic_uchar *ran;         /* per item: times it ran */
	atomic_uint done;          /* items of the current round that ran */
	unsigned want;             /* items per round */
	sem_t round_done;
	int nrounds;
} inj;

static void item_ran(uintptr_t id)
{
	atomic_fetch_add_explicit(&inj.ran[id], 1, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&inj.done, 1, memory_order_acq_rel) + 1 == inj.want)
		sem_post(&inj.round_done);
}

static int item_task(void *arg, void **result)
{
	(void)result;
	item_ran((uintptr_t)arg);
	return 0;
}

static void item_cb(void *arg)
{
	item_ran((uintptr_t)arg);
}

static void *submitter(void *p)
{
	uintptr_t me = (uintptr_t)p;
	for (int r = 0; r < inj.nrounds; r++) {
		pthread_barrier_wait(&inj.go);
		uintptr_t base = ((uintptr_t)r * SUBMITTERS + me) * PER_ROUND;
		for (uintptr_t i = 0; i < PER_ROUND; i++) {
			uintptr_t id = base + i;
			/* Tasks and callbacks share the queue: mix them. */
			int rc = (i + me) % 3 == 0
				? coil_loop_call_soon_threadsafe(inj.any, item_cb, (void *)id)
				: coil_runtime_spawn(inj.rt, NULL, item_task, (void *)id, NULL);
			ASSERT_EQ(rc, 0);
		}
	}
	return NULL;
}

TEST(bursts_onto_the_injection_queue_wake_parked_workers)
{
	inj.rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(inj.rt), 0);
	inj.any = coil_runtime_loop(inj.rt, COIL_ANY_WORKER);
	inj.nrounds = rounds();
	inj.want = SUBMITTERS * PER_ROUND;
	size_t total = (size_t)inj.nrounds * inj.want;
	inj.ran = calloc(total, 1);
	ASSERT(inj.ran);
	ASSERT_EQ(sem_init(&inj.round_done, 0, 0), 0);
	ASSERT_EQ(pthread_barrier_init(&inj.go, NULL, SUBMITTERS + 1), 0);
	pthread_t th[SUBMITTERS];
	for (uintptr_t i = 0; i < SUBMITTERS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, submitter, (void *)i), 0);
	for (int r = 0; r < inj.nrounds; r++) {
		atomic_store(&inj.done, 0);
		/* Every few rounds the workers get time to park first (they
		 * spin some microseconds before they do); the other rounds
		 * land on workers on their way to parking. */
		if (r % 4 == 0) {
			struct timespec ts = { 0, 200 * 1000 };
			nanosleep(&ts, NULL);
		}
		pthread_barrier_wait(&inj.go);
		ASSERT(sem_wait_s(&inj.round_done, ROUND_LIMIT_S));
	}
	for (int i = 0; i < SUBMITTERS; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	for (size_t i = 0; i < total; i++)
		ASSERT_EQ(atomic_load(&inj.ran[i]), 1);
	ASSERT_EQ(coil_runtime_shutdown(inj.rt, COIL_FOREVER), 0);
	pthread_barrier_destroy(&inj.go);
	sem_destroy(&inj.round_done);
	free(inj.ran);
}

/* --- a burst of spawns on one worker while the other parks --------------- */

static struct {
	atomic_uchar *ran;
	atomic_int started_elsewhere;
	int nrounds;
} loc;

struct burst {
	uintptr_t base;
	atomic_int spinner;   /* the spinner's worker */
	coil_task_t *t[PER_ROUND];
};

static int burst_child(void *arg, void **result)
{
	(void)result;
	atomic_fetch_add_explicit(&loc.ran[(uintptr_t)arg], 1, memory_order_relaxed);
	return 0;
}

static int burst_probe(void *arg, void **result)
{
	struct burst *b = arg;
	(void)result;
	atomic_fetch_add_explicit(&loc.ran[b->base + 1], 1, memory_order_relaxed);
	/* The spinner holds its worker until this is set: the probe can only
	 * run on the other one. */
	ASSERT_NE(coil_current_worker(), atomic_load(&b->spinner));
	atomic_store_explicit(&loc.started_elsewhere, 1, memory_order_release);
	return 0;
}

/* Spawns the probe and the children onto its own worker's deque, then
 * holds that worker without yielding until the probe ran: only a wake-up
 * of the other worker (parked, or about to park) lets it end. The first
 * spawn finds the deque empty and runs the wake-up check; the others go
 * behind it without. */
static int burst_spinner(void *arg, void **result)
{
	struct burst *b = arg;
	(void)result;
	atomic_fetch_add_explicit(&loc.ran[b->base], 1, memory_order_relaxed);
	atomic_store(&b->spinner, coil_current_worker());
	ASSERT_EQ(coil_spawn(&b->t[1], burst_probe, b, NULL), 0);
	for (int i = 2; i < PER_ROUND; i++)
		ASSERT_EQ(coil_spawn(&b->t[i], burst_child, (void *)(b->base + (uintptr_t)i),
				     NULL), 0);
	while (!atomic_load_explicit(&loc.started_elsewhere, memory_order_acquire))
		;
	return 0;
}

static int burst_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int r = 0; r < loc.nrounds; r++) {
		struct burst b = { .base = (uintptr_t)r * PER_ROUND };
		atomic_init(&b.spinner, -1);
		atomic_store(&loc.started_elsewhere, 0);
		/* Every other round the workers run out of work and park (or
		 * are about to) while this task sleeps. */
		if (r % 2 == 0)
			ASSERT_EQ(coil_sleep_ns(200 * 1000), 0);
		ASSERT_EQ(coil_spawn(&b.t[0], burst_spinner, &b, NULL), 0);
		ASSERT_EQ(coil_await(coil_task_future(b.t[0]), NULL), 0);
		for (int i = 0; i < PER_ROUND; i++) {
			ASSERT_EQ(coil_await(coil_task_future(b.t[i]), NULL), 0);
			coil_task_detach(b.t[i]);
		}
	}
	return 0;
}

TEST(spawns_behind_a_busy_task_reach_the_parked_worker)
{
	coil_runtime_t *rt = test_runtime_new(2);
	loc.nrounds = rounds() / 2;
	size_t total = (size_t)loc.nrounds * PER_ROUND;
	loc.ran = calloc(total, 1);
	ASSERT(loc.ran);
	ASSERT_EQ(coil_runtime_block_on(rt, burst_main, NULL, NULL), 0);
	for (size_t i = 0; i < total; i++)
		ASSERT_EQ(atomic_load(&loc.ran[i]), 1);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	free(loc.ran);
}

TEST_LIST(
	TEST_ENTRY(bursts_onto_the_injection_queue_wake_parked_workers),
	TEST_ENTRY(spawns_behind_a_busy_task_reach_the_parked_worker),
)
