/*
 * tests/test_race_life.c: a runtime's life (start, block_on, stop,
 * shutdown) raced against its workers, and the debug recording (traces,
 * metrics, task listings) read from other threads while both workers
 * record.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coil/coil.h"
#define RACE_JITTER_BITS 16
#include "race.h"
#include "test.h"

/* --- stop, then run again ------------------------------------------------ */

static atomic_int marked, spinning, restarting;

/* Worker 1 is in a step when the stop comes, and sees it only as the next
 * block_on starts the workers again, before or after (a random spin). */
static int spins_on_worker_1(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&spinning, 1);
	unsigned spins = 0;
	while (!atomic_load(&restarting))
		spin_pause(&spins);
	return 0;
}

static int stops_runtime(void *arg, void **result)
{
	(void)result;
	coil_runtime_t *rt = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_cfuture_t *cf = NULL;
	atomic_store(&spinning, 0);
	atomic_store(&restarting, 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&cf, coil_runtime_loop(rt, 1),
						     spins_on_worker_1, NULL, &pinned), 0);
	coil_cfuture_release(cf);
	/* Yielding: this task may run on worker 1 itself. */
	while (!atomic_load(&spinning))
		ASSERT_EQ(coil_sleep(0), 0);
	coil_runtime_stop(rt);
	/* Not done when worker 0 leaves: block_on says -EINTR. The sleep
	 * ends in the next round's block_on, or in shutdown. */
	return coil_sleep(0.05);
}

static int marks(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&marked, 1);
	return 0;
}

/* block_on's task: a task pinned on worker 1 must run, that is worker 1
 * must run its loop again after the stop. */
static int needs_worker_1(void *arg, void **result)
{
	(void)result;
	coil_runtime_t *rt = arg;
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_cfuture_t *cf = NULL;
	atomic_store(&marked, 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&cf, coil_runtime_loop(rt, 1),
						     marks, NULL, &pinned), 0);
	/* Far longer than worker 1 ever takes when it runs. */
	for (int i = 0; i < 10000 && !atomic_load(&marked); i++)
		ASSERT_EQ(coil_sleep(0.001), 0);
	ASSERT_EQ(atomic_load(&marked), 1);
	ASSERT_EQ(coil_cfuture_wait(cf, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(cf);
	return 0;
}

TEST(a_runtime_run_again_right_after_a_stop_runs_every_worker)
{
	/* The stop makes worker 1 leave its loop too, a little after worker
	 * 0: when it sees the stop only after the next block_on restarted
	 * the workers, it must run again, not park for good. */
	coil_runtime_t *rt = test_runtime_new(2);
	for (int i = 0; i < (under_valgrind() ? 20 : 300); i++) {
		uint64_t rng = (uint64_t)i;
		ASSERT_EQ(coil_runtime_block_on(rt, stops_runtime, rt, NULL), -EINTR);
		atomic_store(&restarting, 1);
		jitter(&rng);
		ASSERT_EQ(coil_runtime_block_on(rt, needs_worker_1, rt, NULL), 0);
	}
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- stop during shutdown ------------------------------------------------ */

static atomic_int began, ended;

/* Cancelled by shutdown, it stops the runtime (as a signal handler that
 * calls coil_runtime_stop could at that time), then awaits once more. */
static int stops_when_cancelled(void *arg, void **result)
{
	(void)result;
	coil_runtime_t *rt = arg;
	atomic_fetch_add(&began, 1);
	int rc = coil_sleep(3600);
	ASSERT_EQ(rc, -ECANCELED);
	coil_runtime_stop(rt);
	ASSERT_EQ(coil_sleep(0.001), 0);
	atomic_fetch_add(&ended, 1);
	return rc;
}

TEST(a_stop_while_the_runtime_shuts_down_leaves_no_task_unrun)
{
	for (int i = 0; i < (under_valgrind() ? 2 : 10); i++) {
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&began, 0);
		atomic_store(&ended, 0);
		for (int k = 0; k < 4; k++)
			ASSERT_EQ(coil_runtime_spawn(rt, NULL, stops_when_cancelled, rt,
						     NULL), 0);
		/* Started, and asleep soon after: a task cancelled before
		 * its first step never runs. */
		while (atomic_load(&began) < 4)
			sched_yield();
		/* Shutdown cancels them at once; each then stops the
		 * runtime, and still must end. */
		ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
		ASSERT_EQ(atomic_load(&ended), 4);
	}
}

/* --- a task renamed as its step is traced -------------------------------- */

static const char *const names[] = {
	"a rather long name for a task, longer than a small string",
	"another long name, so that each rename allocates and frees",
};

static atomic_bool renaming_done;

/* The helper's job: renames the driver's task again and again while the
 * driver steps (each step begins by copying the name into the trace). */
static void renames(void *arg)
{
	coil_task_t *t = arg;
	for (int i = 0; i < (under_valgrind() ? 50 : 2000); i++)
		ASSERT_EQ(coil_task_set_name(t, names[i & 1]), 0);
	atomic_store(&renaming_done, true);
}

static int steps_while_renamed(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&renaming_done, false);
	helper_go(renames, coil_current_task());
	/* Each coil_sleep(0) ends a step and begins the next: the trace
	 * copies the task's name at every one. */
	while (!atomic_load(&renaming_done))
		ASSERT_EQ(coil_sleep(0), 0);
	helper_wait();
	return 0;
}

TEST(a_task_renamed_from_another_worker_as_its_steps_are_traced)
{
	/* coil_task_set_name is for any thread, and frees the old name:
	 * the recorder must copy it under the lock that keeps it. */
	FILE *f = tmpfile();
	ASSERT(f != NULL);
	coil_trace_opts_t o = { .size = sizeof(o), .max_events = 100000 };
	ASSERT_EQ(coil_trace_start_file(f, &o), 0);
	race_drive(steps_while_renamed, NULL);
	ASSERT(coil_trace_stop() > 0);
	fclose(f);
}

/* --- listings, metrics and traces while both workers run ------------------ */

#define MOVERS 8

static atomic_bool movers_stop;
static atomic_bool tracer_stop;
static coil_runtime_t *listed_rt;

/* Steps on whichever worker takes it, sleeping, yielding and spinning:
 * running, runnable, waiting and migrating as the listings look. */
static int moves(void *arg, void **result)
{
	(void)result;
	uint64_t rng = (uintptr_t)arg;
	while (!atomic_load(&movers_stop)) {
		switch (rnd(&rng) % 3) {
		case 0:
			ASSERT_EQ(coil_sleep(0), 0);
			break;
		case 1:
			ASSERT_EQ(coil_sleep(0.0001), 0);
			break;
		default:
			jitter(&rng);
			break;
		}
	}
	return 0;
}

/* A plain thread: traces start, flush and stop, and the metrics are read,
 * while the workers record steps, parks, steals and callbacks. */
static void *traces(void *arg)
{
	(void)arg;
	coil_worker_metrics_t m[2];
	/* Few events kept: the file's writing is not what is tested. */
	coil_trace_opts_t o = { .size = sizeof(o), .max_events = 256 };
	while (!atomic_load(&tracer_stop)) {
		FILE *f = tmpfile();
		ASSERT(f != NULL);
		ASSERT_EQ(coil_trace_start_file(f, &o), 0);
		for (int i = 0; i < 3; i++) {
			m[0].size = sizeof(m[0]);
			ASSERT_EQ(coil_runtime_metrics(listed_rt, m, 2), 2);
			ASSERT(m[0].busy_ns >= 0 && m[1].idle_ns >= 0);
			ASSERT(coil_trace_flush() >= 0);
			sched_yield();
		}
		ASSERT(coil_trace_stop() >= 0);
		fclose(f);
	}
	return NULL;
}

/* The helper's job on worker 1: lists the tasks too, with their stacks. */
static void lists(void *arg)
{
	FILE *f = arg;
	ASSERT(coil_loop_dump_tasks(NULL, f, COIL_DUMP_STACKS) >= 1);
}

static int lists_while_moving(void *arg, void **result)
{
	(void)arg;
	(void)result;
	FILE *f = fopen("/dev/null", "we");
	ASSERT(f != NULL);
	listed_rt = coil_current_runtime();
	atomic_store(&movers_stop, false);
	atomic_store(&tracer_stop, false);
	coil_task_t *t[MOVERS];
	for (int i = 0; i < MOVERS; i++)
		ASSERT_EQ(coil_spawn(&t[i], moves, (void *)(uintptr_t)(i + 1), NULL), 0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, traces, NULL), 0);
	for (int r = 0; r < (under_valgrind() ? 10 : 100); r++) {
		helper_go(lists, f);
		ASSERT(coil_loop_dump_tasks(NULL, f, COIL_DUMP_STACKS) >= 1);
		for (int i = 0; i < MOVERS; i++) {
			coil_task_info_t in;
			void *frames[16];
			ASSERT_EQ(coil_task_get_info(t[i], &in, sizeof(in)), 0);
			ASSERT_EQ(in.id, coil_task_id(t[i]));
			ASSERT(in.state != COIL_TASK_DONE);
			int n = coil_task_get_stack(t[i], frames, 16);
			ASSERT(n >= 0 || n == -EBUSY);
		}
		helper_wait();
	}
	atomic_store(&movers_stop, true);
	atomic_store(&tracer_stop, true);
	for (int i = 0; i < MOVERS; i++) {
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
		coil_future_release(coil_task_future(t[i]));
	}
	ASSERT_EQ(pthread_join(th, NULL), 0);
	fclose(f);
	return 0;
}

TEST(tasks_listed_and_traced_from_both_workers_and_a_thread_as_they_move)
{
	race_drive(lists_while_moving, NULL);
}

/* --- worker counts and misuse ---------------------------------------------- */

static coil_runtime_t *workers_rt(unsigned workers, int *rc)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	coil_runtime_t *rt = NULL;
	*rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(*rc);
	return rt;
}

TEST(worker_counts_out_of_range_are_refused_or_ignored)
{
	int rc;
	/* Too many: refused before anything is made. */
	ASSERT_PTR_EQ(workers_rt(4097, &rc), NULL);
	ASSERT_EQ(rc, -EINVAL);
	ASSERT_PTR_EQ(workers_rt(UINT_MAX, &rc), NULL);
	ASSERT_EQ(rc, -EINVAL);
	/* COIL_WORKERS that is not a number from 1 to 4096: the CPUs. */
	cpu_set_t set;
	ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	unsigned ncpus = (unsigned)CPU_COUNT(&set);
	static const char *const bad[] = { "", "0", "-3", "abc", "2x", "4097",
					   "99999999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(setenv("COIL_WORKERS", bad[i], 1), 0);
		coil_runtime_t *rt = workers_rt(0, &rc);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(coil_runtime_workers(rt), ncpus);
		ASSERT_EQ(coil_runtime_shutdown(rt, 0), 0);
	}
	ASSERT_EQ(setenv("COIL_WORKERS", "3", 1), 0);
	coil_runtime_t *rt = workers_rt(0, &rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_workers(rt), 3);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), 0);
	unsetenv("COIL_WORKERS");
}

static int blocks_on_again(void *arg, void **result)
{
	(void)result;
	/* From a worker: refused, the runtime runs on. */
	ASSERT_EQ(coil_runtime_block_on(arg, marks, NULL, NULL), -EBUSY);
	ASSERT_EQ(coil_runtime_start(arg), -EBUSY);
	ASSERT_EQ(coil_runtime_shutdown(arg, 0), -EBUSY);
	return 7;
}

TEST(block_on_from_a_worker_or_a_started_runtime_is_refused)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_block_on(rt, blocks_on_again, rt, NULL), 7);
	/* Again, once the first is over: it runs. */
	atomic_store(&marked, 0);
	ASSERT_EQ(coil_runtime_block_on(rt, marks, NULL, NULL), 0);
	ASSERT_EQ(atomic_load(&marked), 1);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_block_on(rt, marks, NULL, NULL), -EBUSY);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- shutdown while tasks spawn tasks --------------------------------------- */

static atomic_long spawned_live, spawn_budget;

/* Spawns a child on its worker (thieves take some to the other) and waits
 * a little, with about SPAWN_CAP tasks alive, until the budget is spent;
 * ends, without spawning, once cancelled. */
#define SPAWN_CAP 64

static int spawns(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = 0;
	while (rc == 0) {
		if (!coil_task_cancelling(coil_current_task()) &&
		    atomic_load(&spawned_live) < SPAWN_CAP &&
		    atomic_fetch_sub(&spawn_budget, 1) > 0) {
			atomic_fetch_add(&spawned_live, 1);
			if (coil_spawn(NULL, spawns, NULL, NULL) != 0)
				atomic_fetch_sub(&spawned_live, 1);
		}
		rc = coil_sleep(0.0002);
	}
	atomic_fetch_sub(&spawned_live, 1);
	return rc == -ECANCELED ? 0 : rc;
}

TEST(shutdown_with_a_timeout_while_tasks_spawn_tasks_on_both_workers)
{
	/* A child spawned just after its worker's round of cancellations
	 * waits for the next round (up to 2 s): few runs. */
	for (int i = 0; i < (under_valgrind() ? 2 : 5); i++) {
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&spawned_live, 2);
		atomic_store(&spawn_budget, under_valgrind() ? 500 : 5000);
		ASSERT_EQ(coil_runtime_spawn(rt, NULL, spawns, NULL, NULL), 0);
		ASSERT_EQ(coil_runtime_spawn(rt, NULL, spawns, NULL, NULL), 0);
		/* Each wait ends with tasks left, which are cancelled as
		 * others spawn more (some never start: cancelled first). */
		ASSERT_EQ(coil_runtime_shutdown(rt, (i % 3) * 5 * COIL_NSEC_PER_SEC / 1000),
			  -ETIMEDOUT);
	}
}

/* --- a stop in block_on's last step --------------------------------------- */

static int stops_and_ends(void *arg, void **result)
{
	(void)result;
	/* As a signal handler's stop could come while the task ends. */
	coil_runtime_stop(arg);
	return 0;
}

TEST(a_stop_as_block_on_ends_does_not_stop_the_next_run)
{
	/* The main task ends on worker 0 (its done-callback queued there)
	 * before the worker sees the stop, unless worker 1 took it. */
	coil_runtime_t *rt = test_runtime_new(2);
	for (int i = 0; i < (under_valgrind() ? 5 : 50); i++) {
		int rc = coil_runtime_block_on(rt, stops_and_ends, rt, NULL);
		ASSERT(rc == 0 || rc == -EINTR);
		/* What block_on left of its main task must not stop this. */
		atomic_store(&marked, 0);
		ASSERT_EQ(coil_runtime_block_on(rt, marks, NULL, NULL), 0);
		ASSERT_EQ(atomic_load(&marked), 1);
	}
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- wait_stopped after a run again ----------------------------------------- */

static atomic_bool waiter_done;
static atomic_llong waiter_cpu_ns;

static void *waits_stopped(void *arg)
{
	coil_runtime_wait_stopped(arg);
	struct timespec ts;
	ASSERT_EQ(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	atomic_store(&waiter_cpu_ns, (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
	atomic_store(&waiter_done, true);
	return NULL;
}

static pthread_t waiter;

static int stops_later(void *arg, void **result)
{
	(void)result;
	/* Started here: the runtime runs again, its first stop is over. */
	ASSERT_EQ(pthread_create(&waiter, NULL, waits_stopped, arg), 0);
	ASSERT_EQ(coil_sleep(0.3), 0);
	coil_runtime_stop(arg);
	return coil_sleep(3600) == -ECANCELED ? 0 : -1;
}

TEST(wait_stopped_sleeps_while_the_runtime_runs_again_after_a_stop)
{
	/* The first stop's byte is still in wait_stopped's pipe when the
	 * runtime runs again: a waiter must sleep until the next stop, not
	 * spin on it. */
	coil_runtime_t *rt = test_runtime_new(2);
	int rc = coil_runtime_block_on(rt, stops_and_ends, rt, NULL);
	ASSERT(rc == 0 || rc == -EINTR);
	atomic_store(&waiter_done, false);
	ASSERT_EQ(coil_runtime_block_on(rt, stops_later, rt, NULL), -EINTR);
	ASSERT_EQ(pthread_join(waiter, NULL), 0);
	ASSERT(atomic_load(&waiter_done));
	/* 0.3 s of waiting: a spinning waiter burns most of it. */
	ASSERT_LT(atomic_load(&waiter_cpu_ns), 100 * 1000000LL);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
}

TEST_LIST(TEST_ENTRY(a_runtime_run_again_right_after_a_stop_runs_every_worker),
	  TEST_ENTRY(a_stop_while_the_runtime_shuts_down_leaves_no_task_unrun),
	  TEST_ENTRY(a_task_renamed_from_another_worker_as_its_steps_are_traced),
	  TEST_ENTRY(tasks_listed_and_traced_from_both_workers_and_a_thread_as_they_move),
	  TEST_ENTRY(worker_counts_out_of_range_are_refused_or_ignored),
	  TEST_ENTRY(block_on_from_a_worker_or_a_started_runtime_is_refused),
	  TEST_ENTRY(shutdown_with_a_timeout_while_tasks_spawn_tasks_on_both_workers),
	  TEST_ENTRY(a_stop_as_block_on_ends_does_not_stop_the_next_run),
	  TEST_ENTRY(wait_stopped_sleeps_while_the_runtime_runs_again_after_a_stop))
