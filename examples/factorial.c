/*
 * factorial.c: three tasks computing factorials concurrently.
 *
 * Ports the gather example of the asyncio tutorial (seed, asyncio.gather):
 *
 *     async def factorial(name, number):
 *         f = 1
 *         for i in range(2, number+1):
 *             print("Task %s: Compute factorial(%s)..." % (name, i))
 *             await asyncio.sleep(1)
 *             f *= i
 *         print("Task %s: factorial(%s) = %s" % (name, number, f))
 *
 *     loop.run_until_complete(asyncio.gather(
 *         factorial("A", 2), factorial("B", 3), factorial("C", 4)))
 *
 * The output is that of a current Python, where gather starts its tasks in
 * argument order (the seed's Python 3.6 printed B before A). coil_gather is
 * not written yet, so the main task spawns the three tasks with coil_spawn
 * and awaits each in turn with coil_await, which for tasks that all run to
 * completion prints the same thing. The three take 3 s together, not 1+2+3.
 *
 * `--fast` runs on the virtual clock (coil_runtime_opts_t.virtual_clock):
 * the sleeps take no time, and the output and its order are the same.
 */
#include <coil/coil.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "factorial: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

struct job {
	const char *name;
	int number;
};

static int factorial(void *arg, void **result)
{
	const struct job *job = arg;
	long f = 1;
	(void)result;

	for (int i = 2; i <= job->number; i++) {
		printf("Task %s: Compute factorial(%d)...\n", job->name, i);
		int rc = coil_sleep(1);
		if (rc < 0)
			return rc;
		f *= i;
	}
	printf("Task %s: factorial(%d) = %ld\n", job->name, job->number, f);
	return 0;
}

static int main_task(void *arg, void **result)
{
	static const struct job jobs[] = { { "A", 2 }, { "B", 3 }, { "C", 4 } };
	coil_task_t *tasks[3];
	int rc;
	(void)arg;
	(void)result;

	for (int i = 0; i < 3; i++) {
		coil_spawn_opts_t opts = { .name = jobs[i].name };

		rc = coil_spawn(&tasks[i], factorial, (void *)&jobs[i], &opts);
		if (rc < 0)
			die("coil_spawn", rc);
	}
	for (int i = 0; i < 3; i++) {
		rc = coil_await(coil_task_future(tasks[i]), NULL);
		if (rc < 0)
			die(jobs[i].name, rc);
		coil_task_detach(tasks[i]);
	}
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
