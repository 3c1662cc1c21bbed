/*
 * parallel_fib.c: fib(30) by spawning a task per call, on one worker and
 * then on every worker of a runtime.
 *
 *     usage: parallel_fib [n [workers]]     (defaults: 30, COIL_WORKERS or
 *                                            the CPUs we may run on)
 *
 * fib(k) spawns a task for fib(k-1), computes fib(k-2) itself (which
 * spawns the same way) and awaits the task: fib(30) makes 1,346,268 tasks.
 * Each worker runs its newest task first, so few stacks are alive at once,
 * and an idle worker steals the oldest tasks of another, the biggest pieces
 * of work, so the cores share the tree without being told how. The program
 * prints the result, the time on one worker and on N, and checks the result
 * against a loop:
 *
 *     fib(30) = 832040
 *     1 worker:  0.212 s
 *     2 workers: 0.118 s (1.80x)
 *
 * (the times vary from machine to machine and run to run).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "parallel_fib: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fib_task(void *arg, void **result);

/* fib(k) from inside a task: fib(k-1) in a new task, fib(k-2) here. */
static long fib(long k)
{
	if (k < 2)
		return k;
	coil_task_t *t;
	int rc = coil_spawn(&t, fib_task, (void *)(intptr_t)(k - 1), NULL);
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
	long n;
	long result;
	double seconds;
};

/* The runtime's main task: times fib(n) from inside the runtime, so that
 * starting the workers is not counted. */
static int main_task(void *arg, void **result)
{
	struct run *r = arg;
	(void)result;
	double t0 = now();
	r->result = fib(r->n);
	r->seconds = now() - t0;
	return 0;
}

/* Runs fib(n) on a runtime of `workers` workers (0: the default count) and
 * returns how many it had. */
static unsigned run_on(unsigned workers, struct run *r)
{
	coil_runtime_opts_t opts;
	coil_runtime_t *rt;
	int rc;

	coil_runtime_opts_init(&opts);
	opts.workers = workers;
	rc = coil_runtime_new(&rt, &opts);
	if (rc < 0)
		die("coil_runtime_new", rc);
	unsigned n = coil_runtime_workers(rt);
	rc = coil_runtime_block_on(rt, main_task, r, NULL);
	if (rc < 0)
		die("coil_runtime_block_on", rc);
	rc = coil_runtime_shutdown(rt, COIL_FOREVER);
	if (rc < 0)
		die("coil_runtime_shutdown", rc);
	return n;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 30;
	unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	if (n < 0 || n > 60) {
		fprintf(stderr, "usage: parallel_fib [n (0..60) [workers]]\n");
		return 2;
	}

	long want = 0, next = 1;
	for (long i = 0; i < n; i++) {
		long s = want + next;
		want = next;
		next = s;
	}

	struct run one = { .n = n }, many = { .n = n };
	run_on(1, &one);
	unsigned w = run_on(workers, &many);

	printf("fib(%ld) = %ld\n", n, many.result);
	printf("1 worker:  %.3f s\n", one.seconds);
	printf("%u worker%s: %.3f s (%.2fx)\n", w, w == 1 ? " " : "s", many.seconds,
	       many.seconds > 0 ? one.seconds / many.seconds : 0.0);
	if (one.result != want || many.result != want) {
		fprintf(stderr, "parallel_fib: wrong result: %ld and %ld, want %ld\n",
			one.result, many.result, want);
		return 1;
	}
	return 0;
}
