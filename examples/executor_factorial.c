/*
 * executor_factorial.c: the factorial tasks, sleeping in the default
 * executor instead of the loop.
 *
 * Ports the run_in_executor example of the asyncio tutorial (seed):
 *
 *     async def factorial(name, number):
 *         f = 1
 *         for i in range(2, number+1):
 *             print("Task %s: Compute factorial(%s)..." % (name, i))
 *             loop = asyncio.get_event_loop()
 *             await loop.run_in_executor(None, time.sleep, 1)
 *             f *= i
 *         print("Task %s: factorial(%s) = %s" % (name, number, f))
 *
 *     loop.run_until_complete(asyncio.wait([
 *         factorial("A", 2), factorial("B", 3), factorial("C", 4)]))
 *
 * time.sleep blocks its thread; run_in_executor(None, ...) runs it on a
 * thread of the default executor (coil_run_in_executor with NULL) and
 * suspends only the task that asked, so the three tasks' sleeps overlap:
 * the program takes about as long as the longest chain (C's three sleeps,
 * 3 s), not the sum of all nine. It prints the seed's lines, then the time
 * rounded to the second:
 *
 *     Task A: Compute factorial(2)...
 *     Task B: Compute factorial(2)...
 *     Task C: Compute factorial(2)...
 *     Task A: factorial(2) = 2
 *     Task B: Compute factorial(3)...
 *     Task C: Compute factorial(3)...
 *     Task B: factorial(3) = 6
 *     Task C: Compute factorial(4)...
 *     Task C: factorial(4) = 24
 *     elapsed: 3 s for 9 sleeps of 1 s
 *
 * Three sleeps of 1 s that start microseconds apart may end in any order
 * (a thread that wakes up may wait for a core for milliseconds on a busy
 * machine), which would reorder the lines of one round; so task B's sleeps
 * are 50 ms longer than A's, and C's 100 ms longer: the seed's order every
 * time, and C's chain takes 3.3 s.
 */
#define PROG "executor_factorial"

#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, coil_strerror(err));
	exit(1);
}

struct job {
	const char *name;
	int number;
	int rank; /* 0 for A: the extra milliseconds of its sleeps, / 50 */
};

static const struct job jobs[] = { { "A", 2, 0 }, { "B", 3, 1 }, { "C", 4, 2 } };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* time.sleep(1): blocks the pool thread it runs on. */
static int blocking_sleep(void *arg, void **result)
{
	const struct job *job = arg;
	struct timespec ts = { 1, job->rank * 50 * 1000000L };
	(void)result;
	while (nanosleep(&ts, &ts) != 0)
		;
	return 0;
}

static int factorial(void *arg, void **result)
{
	const struct job *job = arg;
	long f = 1;

	for (int i = 2; i <= job->number; i++) {
		printf("Task %s: Compute factorial(%d)...\n", job->name, i);
		int rc = coil_run_in_executor(NULL, blocking_sleep, (void *)job, NULL);
		if (rc < 0)
			return rc;
		f *= i;
	}
	printf("Task %s: factorial(%d) = %ld\n", job->name, job->number, f);
	*result = (void *)(intptr_t)f;
	return 0;
}

static int main_task(void *arg, void **result)
{
	coil_task_t *tasks[3];
	coil_future_t *futures[3];
	bool done[3];
	(void)arg;
	(void)result;

	for (int i = 0; i < 3; i++) {
		int rc = coil_spawn(&tasks[i], factorial, (void *)&jobs[i], NULL);
		if (rc < 0)
			die("coil_spawn", rc);
		futures[i] = coil_task_future(tasks[i]);
	}
	int n = coil_wait(futures, 3, done, COIL_ALL_COMPLETED, COIL_FOREVER);
	if (n < 0)
		die("coil_wait", n);
	for (int i = 0; i < 3; i++) {
		int rc = coil_future_exception(futures[i]);
		if (rc < 0)
			die("factorial", rc);
		coil_task_detach(tasks[i]);
	}
	return 0;
}

int main(void)
{
	/* Show each line as it is printed, even through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	double t0 = now();
	int rc = coil_run(main_task, NULL, NULL, NULL);
	if (rc < 0)
		die("coil_run", rc);
	printf("elapsed: %.0f s for 9 sleeps of 1 s\n", now() - t0);
	return 0;
}
