/*
 * factorial_wait.c: three factorial tasks awaited with coil_wait.
 *
 * Ports the asyncio.wait example of the tutorial (seed). asyncio.wait
 * refuses bare coroutines since Python 3.11, so the tasks are made first,
 * in the order A, B, C, as a current program would write it:
 *
 *     tasks = [asyncio.create_task(factorial("A", 2)), ...]
 *     done, pending = await asyncio.wait(tasks)
 *
 * coil_wait marks done[i] and returns how many are done (here all three,
 * COIL_ALL_COMPLETED, no timeout). It prints what a current Python prints:
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
 *
 * `--fast` runs on the virtual clock: the sleeps take no time, the output
 * is the same.
 */
#define PROG "factorial_wait"

#include <coil/coil.h>
#include <coil/compose.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, coil_strerror(err));
	exit(1);
}

struct job {
	const char *name;
	int number;
};

static const struct job jobs[] = { { "A", 2 }, { "B", 3 }, { "C", 4 } };

/* The task's result is the factorial itself, carried in the pointer. */
static int factorial(void *arg, void **result)
{
	const struct job *job = arg;
	long f = 1;

	for (int i = 2; i <= job->number; i++) {
		printf("Task %s: Compute factorial(%d)...\n", job->name, i);
		int rc = coil_sleep(1);
		if (rc < 0)
			return rc;
		f *= i;
	}
	printf("Task %s: factorial(%d) = %ld\n", job->name, job->number, f);
	*result = (void *)(intptr_t)f;
	return 0;
}

/* Spawns the three tasks in argument order, A first. */
static void spawn_all(coil_task_t *tasks[3], coil_future_t *futures[3])
{
	for (int i = 0; i < 3; i++) {
		coil_spawn_opts_t opts = { .name = jobs[i].name };
		int rc = coil_spawn(&tasks[i], factorial, (void *)&jobs[i], &opts);
		if (rc < 0)
			die("coil_spawn", rc);
		futures[i] = coil_task_future(tasks[i]);
	}
}

static int main_task(void *arg, void **result)
{
	coil_task_t *tasks[3];
	coil_future_t *futures[3];
	bool done[3];
	(void)arg;
	(void)result;

	spawn_all(tasks, futures);
	int n = coil_wait(futures, 3, done, COIL_ALL_COMPLETED, COIL_FOREVER);
	if (n < 0)
		die("coil_wait", n);
	/* With COIL_ALL_COMPLETED and no timeout, all three are done. */
	if (n != 3 || !done[0] || !done[1] || !done[2])
		die("coil_wait", -EPROTO);
	for (int i = 0; i < 3; i++)
		coil_task_detach(tasks[i]);
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	int rc;

	/* Show each line as it is printed, even through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	coil_runtime_opts_init(&opts);
	opts.virtual_clock = argc > 1 && strcmp(argv[1], "--fast") == 0;

	rc = coil_run(main_task, NULL, NULL, &opts);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
