/*
 * fib_trace.c: a timeline of the parallel fib (parallel_fib.c), to open
 * in Perfetto, and each worker's counters.
 *
 *     usage: fib_trace [n [workers [trace.json]]]   (defaults: 20, 2,
 *                                 $TMPDIR/coil-fib-trace.json, TMPDIR /tmp)
 *
 * fib(k) spawns a task for fib(k-1), computes fib(k-2) itself and awaits
 * the task. The program records a trace of fib(n) on a runtime of
 * `workers` workers, prints where the trace went and the workers'
 * counters:
 *
 *     fib(20) = 6765: 10945 tasks on 2 workers in 0.041 s
 *     worker 0: steps=13002 callbacks=1 steals=3/25 stolen=31 parks=2 ...
 *     worker 1: steps=9120 callbacks=0 steals=12/2050 stolen=180 parks=9 ...
 *     trace: /tmp/coil-fib-trace.json (23474 events); open it in
 *     https://ui.perfetto.dev (or chrome://tracing)
 *
 * In the timeline each worker is a track ("worker 0", "worker 1"): a span
 * per task step, named after the task ("fib 18"), the parks between them,
 * and a "steal" mark where a worker took tasks from another (args.victim
 * names which). The counters and the times vary from run to run.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, realpath */
#define _DEFAULT_SOURCE
#include <coil/coil.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "fib_trace: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fib_task(void *arg, void **result);

/* fib(k) from inside a task: fib(k-1) in a new task named "fib k-1",
 * fib(k-2) here. */
static long fib(long k)
{
	if (k < 2)
		return k;
	char name[24];
	snprintf(name, sizeof(name), "fib %ld", k - 1);
	coil_spawn_opts_t opts = { .name = name };
	coil_task_t *t;
	int rc = coil_spawn(&t, fib_task, (void *)(intptr_t)(k - 1), &opts);
	if (rc < 0)
		die("coil_spawn", rc);
	long b = fib(k - 2);
	void *a = NULL;
	rc = coil_await(coil_task_future(t), &a);
	if (rc < 0)
		die("coil_await", rc);
	coil_task_detach(t);
	return (long)(intptr_t)a + b;
}

static int fib_task(void *arg, void **result)
{
	*result = (void *)(intptr_t)fib((long)(intptr_t)arg);
	return 0;
}

struct run {
	long n, result;
	double seconds;
};

static int main_task(void *arg, void **result)
{
	struct run *r = arg;
	(void)result;
	double t0 = now();
	r->result = fib(r->n);
	r->seconds = now() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20;
	unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
	char tmp_path[PATH_MAX];
	const char *tmpdir = getenv("TMPDIR");
	snprintf(tmp_path, sizeof(tmp_path), "%s/coil-fib-trace.json",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	const char *path = argc > 3 ? argv[3] : tmp_path;
	if (n < 0 || n > 30 || workers < 1 || workers > 256) {
		fprintf(stderr, "usage: fib_trace [n (0..30) [workers (1..256) [trace.json]]]\n");
		return 2;
	}

	coil_runtime_opts_t opts;
	coil_runtime_opts_init(&opts);
	opts.workers = workers;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &opts);
	if (rc < 0)
		die("coil_runtime_new", rc);

	/* Recording starts before the runtime runs and stops once fib is
	 * done: the trace holds the whole computation. */
	rc = coil_trace_start(path, NULL);
	bool tracing = rc == 0;
	if (rc == -ENOTSUP)
		printf("(coil was built with COIL_METRICS=OFF: no trace, no counters)\n");
	else if (rc < 0)
		die(path, rc);
	struct run r = { .n = n };
	rc = coil_runtime_block_on(rt, main_task, &r, NULL);
	if (rc < 0)
		die("coil_runtime_block_on", rc);
	int events = tracing ? coil_trace_stop() : 0;
	if (events < 0)
		die("coil_trace_stop", events);

	long tasks = 0, a = 0, b = 1; /* fib(n) spawns fib(n+1) - 1 tasks */
	for (long i = 0; i < n + 1; i++) {
		long s = a + b;
		a = b;
		b = s;
	}
	tasks = a - 1;
	printf("fib(%ld) = %ld: %ld tasks on %u worker%s in %.3f s\n", n, r.result,
	       tasks > 0 ? tasks : 0, workers, workers == 1 ? "" : "s", r.seconds);
	rc = coil_runtime_dump_metrics(rt, stdout);
	if (rc < 0 && rc != -ENOTSUP)
		die("coil_runtime_dump_metrics", rc);
	rc = coil_runtime_shutdown(rt, COIL_FOREVER);
	if (rc < 0)
		die("coil_runtime_shutdown", rc);

	if (!tracing)
		return 0;
	char full[PATH_MAX];
	printf("trace: %s (%d events); open it in https://ui.perfetto.dev "
	       "(or chrome://tracing)\n", realpath(path, full) ? full : path, events);
	return 0;
}
