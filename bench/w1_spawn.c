/*
 * bench/w1_spawn.c: workload W1 of WORKLOADS.md.
 *
 * A task on the runtime spawns N = 1,000,000 tasks without yielding between
 * spawns (task i returns the integer i in its result pointer), keeping every
 * handle; then it awaits them in spawn order, sums the results and releases
 * each handle. Timed region: from before the first spawn until the last
 * result is summed and checked. Prints `@ ns_per_task <v> ns` and
 * `@ peak_rss_mib <v> MiB`.
 * usage: w1_spawn [--workers 2] [--n 1000000]
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

#define USAGE "w1_spawn [--workers N] [--n N]"

struct w1 {
	uint64_t n;
	coil_task_t **tasks;
	uint64_t sum;
	uint64_t ns;
};

static int task_i(void *arg, void **result)
{
	*result = arg;
	return 0;
}

static int spawner(void *arg, void **result)
{
	struct w1 *w = arg;
	(void)result;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < w->n; i++) {
		int rc = coil_spawn(&w->tasks[i], task_i, (void *)(uintptr_t)i, NULL);
		if (rc)
			CHECK_FAIL("spawn %llu: %s", (unsigned long long)i, coil_strerror(rc));
	}
	uint64_t sum = 0;
	for (uint64_t i = 0; i < w->n; i++) {
		void *r;
		int rc = coil_await(coil_task_future(w->tasks[i]), &r);
		if (rc)
			CHECK_FAIL("task %llu: %s", (unsigned long long)i, coil_strerror(rc));
		sum += (uintptr_t)r;
		coil_task_detach(w->tasks[i]);
	}
	bench_check_sum(sum, w->n);
	w->ns = now_ns() - t0;
	w->sum = sum;
	return 0;
}

int main(int argc, char **argv)
{
	struct w1 w = { .n = 1000000 };
	unsigned workers = 2;
	const bench_opt_t opts[] = {
		{ "--n", BENCH_OPT_U64, &w.n },
		{ "--workers", BENCH_OPT_UINT, &workers },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (!w.n || !workers)
		bench_usage(USAGE);
	/* The handle array is the spawner's bookkeeping, allocated before the
	 * clock starts, like a peer's Vec::with_capacity(N). */
	w.tasks = calloc(w.n, sizeof(*w.tasks));
	if (!w.tasks)
		CHECK_FAIL("out of memory");

	bench_block_on(workers, 0, spawner, &w, "spawner");

	double rss = bench_peak_rss();
	bench_print_sum("w1", w.n, workers, w.sum);
	report("ns_per_task", (double)w.ns / (double)w.n, "ns");
	report("peak_rss_mib", rss / (1024.0 * 1024.0), "MiB");
	free(w.tasks);
	return 0;
}
