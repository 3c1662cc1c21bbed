/*
 * bench/wake_pingpong.c: BM_WakePingPong (bench_core) as a program with a
 * fixed round-trip count, for instruction counts under callgrind
 * (scripts/metrics-cost.sh), which a time-driven Google Benchmark loop
 * cannot give.
 *
 * Two tasks on one loop wake each other through futures: A resolves B's
 * future and awaits its own; B wakes, makes its next future, resolves A's
 * and awaits again. Each wake makes a fresh future, as one-shot futures
 * are. N = 1,000,000 round trips; prints `@ ns_per_roundtrip <v> ns`.
 * usage: wake_pingpong [--n N]
 */
#include <coil/coil.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h" /* ../shared/workloads: clock, result lines */

struct pp {
	coil_future_t *to_a, *to_b;
	uint64_t n, rounds;
	bool stop;
};

static int pong_task(void *arg, void **result)
{
	struct pp *p = arg;
	(void)result;
	for (;;) {
		coil_future_t *mine = p->to_b;
		int rc = coil_await(mine, NULL);
		coil_future_release(mine);
		if (rc)
			return rc;
		if (p->stop)
			return 0;
		p->rounds++;
		if ((rc = coil_future_create(&p->to_b, NULL)))
			return rc;
		coil_future_set_result(p->to_a, NULL, NULL);
	}
}

static int main_task(void *arg, void **result)
{
	struct pp *p = arg;
	(void)result;
	int rc = coil_future_create(&p->to_b, NULL);
	if (rc)
		return rc;
	coil_task_t *b;
	if ((rc = coil_spawn(&b, pong_task, p, NULL)))
		return rc;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < p->n && !rc; i++) {
		if ((rc = coil_future_create(&p->to_a, NULL)))
			break;
		coil_future_set_result(p->to_b, NULL, NULL);
		rc = coil_await(p->to_a, NULL);
		coil_future_release(p->to_a);
	}
	uint64_t t1 = now_ns();
	p->stop = true;
	coil_future_set_result(p->to_b, NULL, NULL);
	int rb = coil_await(coil_task_future(b), NULL);
	coil_task_detach(b);
	if (rc || rb)
		CHECK_FAIL("a task failed: %s / %s", coil_strerror(rc), coil_strerror(rb));
	if (p->rounds != p->n)
		CHECK_FAIL("%llu round trips, expected %llu",
			   (unsigned long long)p->rounds, (unsigned long long)p->n);
	report("ns_per_roundtrip", (double)(t1 - t0) / (double)p->n, "ns");
	return 0;
}

int main(int argc, char **argv)
{
	struct pp p = { .n = 1000000 };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--n")) {
			p.n = strtoull(argv[i + 1], NULL, 10);
		} else {
			fprintf(stderr, "usage: wake_pingpong [--n N]\n");
			return 2;
		}
	}
	if (p.n == 0) {
		fprintf(stderr, "wake_pingpong: N must be at least 1\n");
		return 2;
	}
	int rc = coil_run(main_task, &p, NULL, NULL);
	if (rc) {
		fprintf(stderr, "wake_pingpong: %s\n", coil_strerror(rc));
		return 2;
	}
	return 0;
}
