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
#include <string.h>
#include <sys/resource.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */

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
	if (sum != w->n * (w->n - 1) / 2)
		CHECK_FAIL("sum %llu, expected %llu", (unsigned long long)sum,
			   (unsigned long long)(w->n * (w->n - 1) / 2));
	w->ns = now_ns() - t0;
	w->sum = sum;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: w1_spawn [--workers N] [--n N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct w1 w = { .n = 1000000 };
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
	/* The handle array is the spawner's bookkeeping, allocated before the
	 * clock starts, like a peer's Vec::with_capacity(N). */
	w.tasks = calloc(w.n, sizeof(*w.tasks));
	if (!w.tasks)
		CHECK_FAIL("out of memory");

	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	if (rc)
		CHECK_FAIL("coil_runtime_new: %s", coil_strerror(rc));
	rc = coil_runtime_block_on(rt, spawner, &w, NULL);
	if (rc)
		CHECK_FAIL("spawner: %s", coil_strerror(rc));
	if ((rc = coil_runtime_shutdown(rt, 5 * COIL_NSEC_PER_SEC)))
		CHECK_FAIL("coil_runtime_shutdown: %s", coil_strerror(rc));

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("# w1 n=%llu workers=%u sum=%llu\n", (unsigned long long)w.n, workers,
	       (unsigned long long)w.sum);
	report("ns_per_task", (double)w.ns / (double)w.n, "ns");
	report("peak_rss_mib", (double)ru.ru_maxrss / 1024.0, "MiB");
	free(w.tasks);
	return 0;
}
