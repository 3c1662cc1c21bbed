/*
 * bench/w3_pingpong.c: workload W3 of WORKLOADS.md.
 *
 * Two tasks on one loop pass a counter back and forth through two bounded
 * queues of capacity 1 (ping, pong), N = 1,000,000 round trips; A closes
 * ping when done (queue shutdown). Prints `@ ns_per_roundtrip <v> ns`.
 * usage: w3_pingpong [--workers 1] [--n N]
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */

struct pp {
	coil_queue_t *ping, *pong;
	uint64_t n, final;
};

static int task_a(void *arg, void **result)
{
	struct pp *p = arg;
	(void)result;
	uint64_t v = 0;
	for (uint64_t i = 0; i < p->n; i++) {
		int rc = coil_queue_put(p->ping, (void *)(uintptr_t)(v + 1));
		if (rc)
			return rc;
		void *x;
		if ((rc = coil_queue_get(p->pong, &x)))
			return rc;
		v = (uintptr_t)x;
	}
	p->final = v;
	return coil_queue_shutdown(p->ping, false);
}

static int task_b(void *arg, void **result)
{
	struct pp *p = arg;
	(void)result;
	for (;;) {
		void *x;
		int rc = coil_queue_get(p->ping, &x);
		if (rc == COIL_ECLOSED)
			return 0;
		if (rc)
			return rc;
		if ((rc = coil_queue_put(p->pong, (void *)((uintptr_t)x + 1))))
			return rc;
	}
}

static int main_task(void *arg, void **result)
{
	struct pp *p = arg;
	(void)result;
	int rc;
	if ((rc = coil_queue_create(&p->ping, COIL_QUEUE_FIFO, 1)) ||
	    (rc = coil_queue_create(&p->pong, COIL_QUEUE_FIFO, 1)))
		return rc;
	uint64_t t0 = now_ns();
	coil_task_t *a, *b;
	if ((rc = coil_spawn(&a, task_a, p, NULL)) || (rc = coil_spawn(&b, task_b, p, NULL)))
		return rc;
	int ra = coil_await(coil_task_future(a), NULL);
	int rb = coil_await(coil_task_future(b), NULL);
	uint64_t t1 = now_ns();
	coil_task_detach(a);
	coil_task_detach(b);
	coil_queue_destroy(p->ping);
	coil_queue_destroy(p->pong);
	if (ra || rb)
		CHECK_FAIL("task failed: %s / %s", coil_strerror(ra), coil_strerror(rb));
	if (p->final != 2 * p->n)
		CHECK_FAIL("final value %llu, expected %llu",
			   (unsigned long long)p->final, (unsigned long long)(2 * p->n));
	report("ns_per_roundtrip", (double)(t1 - t0) / (double)p->n, "ns");
	return 0;
}

int main(int argc, char **argv)
{
	struct pp p = { .n = 1000000 };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--n")) {
			p.n = strtoull(argv[i + 1], NULL, 10);
		} else if (!strcmp(argv[i], "--workers")) {
			if (atoi(argv[i + 1]) != 1) {
				fprintf(stderr, "w3_pingpong: W3 runs on exactly 1 worker\n");
				return 2;
			}
		}
	}
	int rc = coil_run(main_task, &p, NULL, NULL);
	if (rc) {
		fprintf(stderr, "w3_pingpong: %s\n", coil_strerror(rc));
		return 2;
	}
	return 0;
}
