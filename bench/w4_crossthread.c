/*
 * bench/w4_crossthread.c: workload W4 of WORKLOADS.md.
 *
 * A plain thread outside the runtime (the main thread, after the workers
 * were started in the background) submits N = 1,000,000 jobs; job i adds i
 * to a sum and increments a completion counter, and the job that brings the
 * counter to N wakes the submitter through a condition variable. Timed
 * region, on the submitter: before the first submission until it is woken.
 *
 * Modes:
 *  - callback: coil_loop_call_soon_threadsafe(loop, job, i), where loop is
 *    worker 0's loop (one consumer, as the peers' one queue drained by one
 *    consumer) or, with --loop any, the runtime's injection queue
 *    (coil_runtime_loop(rt, COIL_ANY_WORKER)), taken by any worker.
 *  - spawn: coil_runtime_spawn(rt, NULL, job, i), one detached task per job
 *    through the runtime's thread-safe spawn.
 * Without --mode it runs callback, then spawn, each on a fresh runtime.
 * Prints `@ ns_per_job <v> ns mode=<mode>`.
 * usage: w4_crossthread [--workers 2] [--n 1000000] [--mode callback|spawn]
 *                       [--loop 0|any]
 */
#include <coil/coil.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

/* The jobs' shared state. sum and count are touched by every job from any
 * worker: relaxed for sum (its value is read only after the wake-up, which
 * the mutex orders), acq_rel on count so that the job that sees N has seen
 * every other job's sum update before it signals. done is behind lock.
 * The counters get a cache line of their own: the submitter reads n in its
 * loop, and must not pull the line the workers write to. */
static struct {
	uint64_t n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	_Alignas(64) _Atomic uint64_t sum;
	_Atomic uint64_t count;
	char pad[64 - 2 * sizeof(uint64_t)];
} w4 = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void job(uintptr_t i)
{
	atomic_fetch_add_explicit(&w4.sum, i, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&w4.count, 1, memory_order_acq_rel) + 1 == w4.n) {
		pthread_mutex_lock(&w4.lock);
		w4.done = true;
		pthread_cond_signal(&w4.cond);
		pthread_mutex_unlock(&w4.lock);
	}
}

static void job_cb(void *arg)
{
	job((uintptr_t)arg);
}

static int job_task(void *arg, void **result)
{
	(void)result;
	job((uintptr_t)arg);
	return 0;
}

enum mode { MODE_CALLBACK, MODE_SPAWN };

static const char *mode_name[] = { "callback", "spawn" };

static void run(enum mode mode, unsigned workers, bool any_loop)
{
	coil_runtime_t *rt = bench_runtime_new(workers, 0);
	int rc = coil_runtime_start(rt);
	if (rc)
		CHECK_FAIL("coil_runtime_start: %s", coil_strerror(rc));
	coil_loop_t *loop = coil_runtime_loop(rt, any_loop ? COIL_ANY_WORKER : 0);
	atomic_store(&w4.sum, 0);
	atomic_store(&w4.count, 0);
	w4.done = false;

	uint64_t n = w4.n;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (mode == MODE_CALLBACK)
			rc = coil_loop_call_soon_threadsafe(loop, job_cb, (void *)(uintptr_t)i);
		else
			rc = coil_runtime_spawn(rt, NULL, job_task, (void *)(uintptr_t)i, NULL);
		if (rc)
			CHECK_FAIL("submit %llu: %s", (unsigned long long)i, coil_strerror(rc));
	}
	pthread_mutex_lock(&w4.lock);
	while (!w4.done)
		pthread_cond_wait(&w4.cond, &w4.lock);
	pthread_mutex_unlock(&w4.lock);
	uint64_t t1 = now_ns();

	uint64_t sum = atomic_load(&w4.sum), count = atomic_load(&w4.count);
	if (count != w4.n)
		CHECK_FAIL("count %llu, expected %llu", (unsigned long long)count,
			   (unsigned long long)w4.n);
	bench_check_sum(sum, w4.n);
	bench_runtime_shutdown(rt);
	char unit[48];
	snprintf(unit, sizeof(unit), "ns mode=%s", mode_name[mode]);
	report("ns_per_job", (double)(t1 - t0) / (double)w4.n, unit);
}

static void usage(void)
{
	fprintf(stderr, "usage: w4_crossthread [--workers N] [--n N] "
			"[--mode callback|spawn] [--loop 0|any]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned workers = 2;
	int mode = -1; /* both */
	bool any_loop = false;
	w4.n = 1000000;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		const char *v = argv[i + 1];
		if (!strcmp(argv[i], "--n"))
			w4.n = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "--workers"))
			workers = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--mode") && !strcmp(v, "callback"))
			mode = MODE_CALLBACK;
		else if (!strcmp(argv[i], "--mode") && !strcmp(v, "spawn"))
			mode = MODE_SPAWN;
		else if (!strcmp(argv[i], "--loop") && (!strcmp(v, "0") || !strcmp(v, "any")))
			any_loop = !strcmp(v, "any");
		else
			usage();
	}
	if (!w4.n || !workers)
		usage();
	printf("# w4 n=%llu workers=%u callback_loop=%s\n", (unsigned long long)w4.n,
	       workers, any_loop ? "any" : "0");
	if (mode != MODE_SPAWN)
		run(MODE_CALLBACK, workers, any_loop);
	if (mode != MODE_CALLBACK)
		run(MODE_SPAWN, workers, any_loop);
	return 0;
}
