/*
 * tests/test_spawn_batches.c: the per-home batches of ended tasks, the injection
 * queue's ring and the owner's take of a full deque's oldest half, under
 * load on a runtime of several workers.
 *
 * - A task spawning far more tasks than its deque holds, without yielding,
 *   while the other workers steal: every task runs exactly once (the
 *   oldest half goes to the injection queue a chunk at a time).
 * - A plain thread spawning tasks (some handles kept and released later
 *   from that thread) while they end on every worker, some after moving:
 *   every task runs once and the shutdown finds none left (the batches of
 *   ended tasks are flushed before a worker parks), returning 0.
 * - A plain thread spawning while the runtime shuts down: each spawn is
 *   refused (COIL_ECLOSED) or its task runs exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "coil/coil.h"
#include "test.h"

static coil_runtime_t *rt_make(unsigned workers)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	o.thread_name = "batches";
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	return rt;
}

#define NTASKS 20000
static atomic_uint ran[NTASKS];
static atomic_uint nran;

static int counts(void *arg, void **result)
{
	(void)result;
	uintptr_t i = (uintptr_t)arg;
	/* Every fourth one moves (the injection queue, another worker). */
	if (i % 4 == 0)
		ASSERT_EQ(coil_sleep(0), 0);
	atomic_fetch_add(&ran[i], 1);
	atomic_fetch_add(&nran, 1);
	return 0;
}

static void reset(void)
{
	for (size_t i = 0; i < NTASKS; i++)
		atomic_store(&ran[i], 0);
	atomic_store(&nran, 0);
}

static int spawns_without_yielding(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (uintptr_t i = 0; i < NTASKS; i++)
		ASSERT_EQ(coil_spawn(NULL, counts, (void *)i, NULL), 0);
	while (atomic_load(&nran) < NTASKS)
		ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

TEST(a_full_deque_moves_its_oldest_half_and_each_task_runs_once)
{
	for (int round = 0; round < 3; round++) {
		reset();
		coil_runtime_t *rt = rt_make(3);
		ASSERT_EQ(coil_runtime_block_on(rt, spawns_without_yielding, NULL, NULL), 0);
		ASSERT_EQ(coil_runtime_shutdown(rt, 30 * COIL_NSEC_PER_SEC), 0);
		for (size_t i = 0; i < NTASKS; i++)
			ASSERT_EQ(atomic_load(&ran[i]), 1);
	}
}

TEST(outside_spawns_end_on_every_worker_once_and_the_shutdown_is_clean)
{
	for (int round = 0; round < 3; round++) {
		reset();
		coil_runtime_t *rt = rt_make(3);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		coil_task_t *kept[64];
		size_t nkept = 0;
		for (uintptr_t i = 0; i < NTASKS; i++) {
			coil_task_t **out = i % 3 == 0 ? &kept[nkept] : NULL;
			ASSERT_EQ(coil_runtime_spawn(rt, out, counts, (void *)i, NULL), 0);
			if (out && ++nkept == 64) {
				for (size_t k = 0; k < nkept; k++)
					coil_task_detach(kept[k]);
				nkept = 0;
			}
		}
		/* Until every task ran: then the shutdown must find none
		 * (the batches of ended tasks go before a worker parks). */
		while (atomic_load(&nran) < NTASKS)
			sched_yield();
		ASSERT_EQ(coil_runtime_shutdown(rt, 30 * COIL_NSEC_PER_SEC), 0);
		for (size_t k = 0; k < nkept; k++) {
			ASSERT(coil_future_done(coil_task_future(kept[k])));
			coil_task_detach(kept[k]);
		}
		for (size_t i = 0; i < NTASKS; i++)
			ASSERT_EQ(atomic_load(&ran[i]), 1);
	}
}

typedef struct spawner {
	coil_runtime_t *rt;
	atomic_bool go;
	unsigned accepted, refused;
	unsigned char ok[NTASKS];
} spawner_t;

static void *spawner_main(void *p)
{
	spawner_t *s = p;
	while (!atomic_load(&s->go))
		sched_yield();
	for (uintptr_t i = 2; i < NTASKS; i++) {
		int rc = coil_runtime_spawn(s->rt, NULL, counts, (void *)i, NULL);
		if (rc == COIL_ECLOSED) {
			s->refused++;
			break; /* the runtime is going: the rest would be too */
		}
		if (rc != 0)
			abort();
		s->ok[i] = 1;
		s->accepted++;
	}
	return NULL;
}

TEST(spawns_during_a_shutdown_are_refused_or_run_once)
{
	static spawner_t s;
	for (int round = 0; round < 10; round++) {
		reset();
		s = (spawner_t){ 0 };
		s.rt = rt_make(3);
		ASSERT_EQ(coil_runtime_start(s.rt), 0);
		/* Its future keeps the runtime's memory after the shutdown for
		 * the spawner, which then hears COIL_ECLOSED. */
		coil_task_t *keep;
		ASSERT_EQ(coil_runtime_spawn(s.rt, &keep, counts, (void *)(uintptr_t)1, NULL), 0);
		s.ok[1] = 1;
		s.accepted = 1;
		pthread_t th;
		ASSERT_EQ(pthread_create(&th, NULL, spawner_main, &s), 0);
		atomic_store(&s.go, true);
		for (volatile unsigned i = 0; i < (unsigned)(round * 20000); i++)
			;
		int rc = coil_runtime_shutdown(s.rt, 30 * COIL_NSEC_PER_SEC);
		ASSERT(rc == 0);
		ASSERT_EQ(pthread_join(th, NULL), 0);
		coil_task_detach(keep);
		ASSERT_EQ(atomic_load(&nran), s.accepted);
		for (size_t i = 0; i < NTASKS; i++)
			ASSERT_EQ(atomic_load(&ran[i]), s.ok[i]);
	}
}

TEST_LIST(TEST_ENTRY(a_full_deque_moves_its_oldest_half_and_each_task_runs_once),
	  TEST_ENTRY(outside_spawns_end_on_every_worker_once_and_the_shutdown_is_clean),
	  TEST_ENTRY(spawns_during_a_shutdown_are_refused_or_run_once))
