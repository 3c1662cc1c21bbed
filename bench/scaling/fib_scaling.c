#include <coil/coil.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static int fib(void *arg, void **res)
{
	intptr_t k = (intptr_t)arg;
	if (k < 2) { *res = (void *)k; return 0; }
	coil_task_t *t;
	int rc = coil_spawn(&t, fib, (void *)(k - 1), NULL);
	if (rc) return rc;
	void *b;
	rc = fib((void *)(k - 2), &b);
	void *a;
	int rc2 = coil_await(coil_task_future(t), &a);
	coil_task_detach(t);
	if (rc || rc2) return rc ? rc : rc2;
	*res = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}
/* fib(27) as W2 defines it, repeated 5 times on one runtime of argv[1]
 * workers: the scaling probe run on the 16-core machine (bench/RESULTS.md). */
int main(int argc, char **argv)
{
	unsigned w = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
	coil_runtime_opts_t o; coil_runtime_opts_init(&o); o.workers = w; o.stack_size = 16384;
	coil_runtime_t *rt; coil_runtime_new(&rt, &o);
	for (int i = 0; i < 5; i++) {
	struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
	void *r; int rc = coil_runtime_block_on(rt, fib, (void *)(intptr_t)27, &r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "workers %u rc %d fib=%ld %.1f ms\n", w, rc, (long)(intptr_t)r, (b.tv_sec-a.tv_sec)*1e3+(b.tv_nsec-a.tv_nsec)/1e6);
	}
	coil_runtime_shutdown(rt, 0);
	return 0;
}
