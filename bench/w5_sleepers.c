/*
 * bench/w5_sleepers.c: workload W5 of WORKLOADS.md.
 *
 * The runtime's main task spawns N = 1,000,000 tasks; task i sleeps d_i
 * microseconds on the runtime's timer (coil_sleep_ns), with d_i = the i-th
 * splitmix64 value of seed 42 mod 1,000,000, then increments `finished`.
 * After each spawn the spawner notes (i + 1) - finished and keeps the
 * maximum (peak_alive_tasks); then it awaits every task in spawn order.
 * Timed region: before the first spawn until all are joined; spawn_ms ends
 * when the last spawn returned. Checks: all N finished without error, and
 * the wall time is at least max d_i - 1 ms.
 *
 * Tasks get 16 KiB stacks (--stack-kib) instead of the 64 KiB default: a
 * sleeping task's frames fit in a page, and the stack's address space is
 * what a million concurrent tasks would otherwise spend.
 * Prints wall_ms, spawn_ms, peak_rss_mib, bytes_per_task,
 * bytes_per_alive_task and peak_alive_tasks.
 * usage: w5_sleepers [--workers 2] [--n 1000000] [--stack-kib 16]
 */
#include <coil/coil.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

#define USAGE "w5_sleepers [--workers N] [--n N] [--stack-kib 16]"

struct w5 {
	uint64_t n;
	uint64_t *d;          /* durations, microseconds */
	coil_task_t **tasks;
	uint64_t peak_alive;
	uint64_t spawn_ns, wall_ns;
};

/* Incremented by every task after its sleep, on whichever worker runs it,
 * and read by the spawner for peak_alive_tasks: a counter, relaxed. */
static _Atomic uint64_t finished;

static int sleeper(void *arg, void **result)
{
	(void)result;
	int rc = coil_sleep_ns((int64_t)(uintptr_t)arg * 1000);
	atomic_fetch_add_explicit(&finished, 1, memory_order_relaxed);
	return rc;
}

static int spawner(void *arg, void **result)
{
	struct w5 *w = arg;
	(void)result;
	uint64_t peak = 0;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < w->n; i++) {
		int rc = coil_spawn(&w->tasks[i], sleeper, (void *)(uintptr_t)w->d[i], NULL);
		if (rc)
			CHECK_FAIL("spawn %llu: %s", (unsigned long long)i, coil_strerror(rc));
		uint64_t alive = i + 1 - atomic_load_explicit(&finished, memory_order_relaxed);
		if (alive > peak)
			peak = alive;
	}
	uint64_t t1 = now_ns();
	for (uint64_t i = 0; i < w->n; i++) {
		int rc = coil_await(coil_task_future(w->tasks[i]), NULL);
		if (rc)
			CHECK_FAIL("task %llu: %s", (unsigned long long)i, coil_strerror(rc));
		coil_task_detach(w->tasks[i]);
	}
	uint64_t fin = atomic_load_explicit(&finished, memory_order_relaxed);
	if (fin != w->n)
		CHECK_FAIL("%llu tasks finished, expected %llu", (unsigned long long)fin,
			   (unsigned long long)w->n);
	w->wall_ns = now_ns() - t0;
	w->spawn_ns = t1 - t0;
	w->peak_alive = peak;
	return 0;
}

int main(int argc, char **argv)
{
	struct w5 w = { .n = 1000000 };
	unsigned workers = 2;
	size_t stack = 16 * 1024;
	const bench_opt_t opts[] = {
		{ "--n", BENCH_OPT_U64, &w.n },
		{ "--workers", BENCH_OPT_UINT, &workers },
		{ "--stack-kib", BENCH_OPT_KIB, &stack },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (!w.n || !workers || !stack)
		bench_usage(USAGE);

	/* Inputs, before the clock: the durations and the handle array. */
	w.d = malloc(w.n * sizeof(*w.d));
	w.tasks = calloc(w.n, sizeof(*w.tasks));
	if (!w.d || !w.tasks)
		CHECK_FAIL("out of memory");
	uint64_t s = 42, dsum = 0, dmax = 0;
	for (uint64_t i = 0; i < w.n; i++) {
		w.d[i] = splitmix64(&s) % 1000000;
		dsum += w.d[i];
		if (w.d[i] > dmax)
			dmax = w.d[i];
	}
	printf("# w5 duration_sum_us=%llu max_us=%llu\n", (unsigned long long)dsum,
	       (unsigned long long)dmax);
	if (w.n == 1000000 && (dsum != 499853568595ULL || dmax != 999998 ||
			       w.d[0] != 275413 || w.d[1] != 892291 || w.d[2] != 763858))
		CHECK_FAIL("durations differ from WORKLOADS.md");

	bench_block_on(workers, stack, spawner, &w, "spawner");
	if (w.wall_ns + 1000000 < dmax * 1000)
		CHECK_FAIL("wall time %.3f ms is shorter than the longest sleep %.3f ms",
			   (double)w.wall_ns / 1e6, (double)dmax / 1e3);

	double rss = bench_peak_rss();
	printf("# w5 n=%llu workers=%u stack_kib=%zu\n", (unsigned long long)w.n, workers,
	       stack / 1024);
	report("wall_ms", (double)w.wall_ns / 1e6, "ms");
	report("spawn_ms", (double)w.spawn_ns / 1e6, "ms");
	report("peak_rss_mib", rss / (1024.0 * 1024.0), "MiB");
	report("bytes_per_task", rss / (double)w.n, "B");
	report("bytes_per_alive_task", rss / (double)w.peak_alive, "B");
	report("peak_alive_tasks", (double)w.peak_alive, "tasks");
	free(w.d);
	free(w.tasks);
	return 0;
}
