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
#include <string.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */

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
	if (sum != w->n * (w->n - 1) / 2)
		CHECK_FAIL("sum %llu, expected %llu", (unsigned long long)sum,
			   (unsigned long long)(w->n * (w->n - 1) / 2));
	w->ns = now_ns() - t0;
	w->sum = sum;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: w7_executor [--workers N] [--n N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct w7 w = { .n = 100000 };
	unsigned workers = 2;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--n"))
			w.n = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--workers"))
			workers = (unsigned)atoi(argv[i + 1]);
		else
			usage();
	}
	if (!w.n || !workers)
		usage();
	/* The future array is the submitter's bookkeeping, allocated before
	 * the clock starts. */
	w.futs = calloc(w.n, sizeof(*w.futs));
	if (!w.futs)
		CHECK_FAIL("out of memory");

	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	if (rc)
		CHECK_FAIL("coil_runtime_new: %s", coil_strerror(rc));
	rc = coil_runtime_block_on(rt, submitter, &w, NULL);
	if (rc)
		CHECK_FAIL("submitter: %s", coil_strerror(rc));
	if ((rc = coil_runtime_shutdown(rt, 5 * COIL_NSEC_PER_SEC)))
		CHECK_FAIL("coil_runtime_shutdown: %s", coil_strerror(rc));

	printf("# w7 n=%llu workers=%u sum=%llu\n", (unsigned long long)w.n, workers,
	       (unsigned long long)w.sum);
	report("ns_per_job", (double)w.ns / (double)w.n, "ns");
	free(w.futs);
	return 0;
}
