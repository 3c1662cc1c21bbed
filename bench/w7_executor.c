/*
 * bench/w7_executor.c: workload W7 of WORKLOADS.md.
 *
 * A task on a runtime of `--workers` workers (default 2) submits N =
 * 100,000 jobs to the runtime's default executor (run_in_executor with
 * executor NULL: a thread pool of min(32, CPUs + 4) threads, Python's
 * default size); job i returns i. Then it awaits the futures in submission
 * order and sums the results. Timed region: from before the first submit
 * until the sum is checked (the pool's threads start inside it, as a
 * runtime's blocking pool does on first use). Prints `@ ns_per_job <v> ns`.
 * usage: w7_executor [--workers 2] [--n 100000]
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

#define USAGE "w7_executor [--workers N] [--n N]"

struct w7 {
	uint64_t n;
	coil_future_t **futs;
	uint64_t sum;
	uint64_t ns;
};

static int job_i(void *arg, void **result)
{
	*result = arg;
	return 0;
}

static int submitter(void *arg, void **result)
{
	struct w7 *w = arg;
	(void)result;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < w->n; i++) {
		int rc = coil_executor_submit(&w->futs[i], NULL, job_i, (void *)(uintptr_t)i, NULL);
		if (rc)
			CHECK_FAIL("submit %llu: %s", (unsigned long long)i, coil_strerror(rc));
	}
	uint64_t sum = 0;
	for (uint64_t i = 0; i < w->n; i++) {
		void *r;
		int rc = coil_await(w->futs[i], &r);
		if (rc)
			CHECK_FAIL("job %llu: %s", (unsigned long long)i, coil_strerror(rc));
		sum += (uintptr_t)r;
		coil_future_release(w->futs[i]);
	}
	bench_check_sum(sum, w->n);
	w->ns = now_ns() - t0;
	w->sum = sum;
	return 0;
}

int main(int argc, char **argv)
{
	struct w7 w = { .n = 100000 };
	unsigned workers = 2;
	const bench_opt_t opts[] = {
		{ "--n", BENCH_OPT_U64, &w.n },
		{ "--workers", BENCH_OPT_UINT, &workers },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (!w.n || !workers)
		bench_usage(USAGE);
	/* The future array is the submitter's bookkeeping, allocated before
	 * the clock starts. */
	w.futs = calloc(w.n, sizeof(*w.futs));
	if (!w.futs)
		CHECK_FAIL("out of memory");

	bench_block_on(workers, 0, submitter, &w, "submitter");

	bench_print_sum("w7", w.n, workers, w.sum);
	report("ns_per_job", (double)w.ns / (double)w.n, "ns");
	free(w.futs);
	return 0;
}
