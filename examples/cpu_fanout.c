/*
 * cpu_fanout.c: CPU-bound tasks fanned out over every worker; the process's
 * CPU time against the wall time shows all cores busy.
 *
 *     usage: cpu_fanout [workers]      (default: COIL_WORKERS or the CPUs
 *                                       we may run on)
 *
 * The main task spawns 2 tasks per worker. Each hashes for about 200 ms
 * (a fixed amount of work, measured once before the runtime starts), in
 * slices with a yield (coil_sleep(0)) between them, and records the
 * workers it ran on: a yielding task goes to the runtime's injection queue
 * and may resume on another worker. Idle workers steal what the others
 * have queued, so every core computes until the work runs out, and the CPU
 * time of the process comes out at about workers x wall time:
 *
 *     2 workers, 4 tasks of 200 ms each
 *     task 0: hash 3f1c2a9d77e0b415, ran on workers 0,1
 *     ...
 *     wall 0.41 s, CPU 0.81 s: CPU/wall = 1.97 on 2 workers
 *
 * (the hashes depend on the measured amount of work; the workers and times
 * vary from run to run).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <coil/coil.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SLICES 20 /* per task, with a yield between two */

static void die(const char *what, int err)
{
	fprintf(stderr, "cpu_fanout: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The work: `rounds` rounds of a 64-bit mix (splitmix64's finaliser). */
static uint64_t hash(uint64_t h, uint64_t rounds)
{
	for (uint64_t i = 0; i < rounds; i++) {
		h += 0x9E3779B97F4A7C15ull;
		h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
		h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
		h ^= h >> 31;
	}
	return h;
}

/* How many rounds take about `seconds` on this thread. */
static uint64_t calibrate(double seconds)
{
	uint64_t rounds = 1 << 16, sink = 0;
	for (;;) {
		double t0 = clock_s(CLOCK_MONOTONIC);
		sink += hash(sink, rounds);
		double dt = clock_s(CLOCK_MONOTONIC) - t0;
		/* The sink's bit keeps the compiler from dropping the work. */
		if (dt > 0.02)
			return (uint64_t)((double)rounds * seconds / dt) | (sink & 1);
		rounds *= 2;
	}
}

struct job {
	int id;
	uint64_t rounds;   /* per slice */
	uint64_t result;
	unsigned workers;  /* bit i: ran on worker i (the first 32) */
};

static int crunch(void *arg, void **result)
{
	struct job *j = arg;
	uint64_t h = (uint64_t)j->id;
	(void)result;

	for (int s = 0; s < SLICES; s++) {
		int w = coil_current_worker();
		if (w >= 0 && w < 32)
			j->workers |= 1u << w;
		h = hash(h, j->rounds);
		int rc = coil_sleep(0); /* let the others have a turn */
		if (rc < 0)
			return rc;
	}
	j->result = h;
	return 0;
}

struct fanout {
	struct job *jobs;
	int n;
};

static int main_task(void *arg, void **result)
{
	struct fanout *f = arg;
	coil_task_t **tasks = calloc((size_t)f->n, sizeof(*tasks));
	int rc;
	(void)result;

	if (!tasks)
		die("calloc", -ENOMEM);
	for (int i = 0; i < f->n; i++) {
		rc = coil_spawn(&tasks[i], crunch, &f->jobs[i], NULL);
		if (rc < 0)
			die("coil_spawn", rc);
	}
	for (int i = 0; i < f->n; i++) {
		rc = coil_await(coil_task_future(tasks[i]), NULL);
		if (rc < 0)
			die("coil_await", rc);
		coil_task_detach(tasks[i]);
	}
	free(tasks);
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	coil_runtime_t *rt;
	int rc;

	coil_runtime_opts_init(&opts);
	opts.workers = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
	uint64_t rounds = calibrate(0.2) / SLICES;
	rc = coil_runtime_new(&rt, &opts);
	if (rc < 0)
		die("coil_runtime_new", rc);
	unsigned workers = coil_runtime_workers(rt);
	int n = 2 * (int)workers;
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	if (!jobs)
		die("calloc", -ENOMEM);
	for (int i = 0; i < n; i++)
		jobs[i] = (struct job){ .id = i, .rounds = rounds };
	printf("%u worker%s, %d tasks of 200 ms each\n", workers,
	       workers == 1 ? "" : "s", n);

	struct fanout f = { jobs, n };
	double wall0 = clock_s(CLOCK_MONOTONIC);
	double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	rc = coil_runtime_block_on(rt, main_task, &f, NULL);
	if (rc < 0)
		die("coil_runtime_block_on", rc);
	double wall = clock_s(CLOCK_MONOTONIC) - wall0;
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	rc = coil_runtime_shutdown(rt, COIL_FOREVER);
	if (rc < 0)
		die("coil_runtime_shutdown", rc);

	for (int i = 0; i < n; i++) {
		printf("task %d: hash %016" PRIx64 ", ran on workers", i, jobs[i].result);
		const char *sep = " ";
		for (unsigned w = 0; w < 32; w++) {
			if (jobs[i].workers & (1u << w)) {
				printf("%s%u", sep, w);
				sep = ",";
			}
		}
		printf("\n");
		if (!jobs[i].workers) {
			fprintf(stderr, "cpu_fanout: task %d never ran\n", i);
			return 1;
		}
	}
	printf("wall %.2f s, CPU %.2f s: CPU/wall = %.2f on %u worker%s\n",
	       wall, cpu, wall > 0 ? cpu / wall : 0.0, workers,
	       workers == 1 ? "" : "s");
	free(jobs);
	return 0;
}
