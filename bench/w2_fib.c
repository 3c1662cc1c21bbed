/*
 * bench/w2_fib.c: workload W2 of WORKLOADS.md.
 *
 * fib(k) for k >= 2 spawns a task computing fib(k-1), computes fib(k-2)
 * inline (a direct call, which spawns by the same rule), awaits the task and
 * returns the sum; no cutoff other than k < 2. The top-level call runs as
 * the runtime's main task; the timed region is that call. Result checked
 * against fib(n) computed iteratively.
 *
 * With --workers N it measures that worker count once and prints
 * `@ time_ms <v> ms workers=N`. Without it, it measures 1 and 2 workers
 * interleaved (1, 2, 1, 2, 1, 2), a fresh runtime per run, and prints the
 * median of 3 for each count and `@ speedup <v> x` = median(1) / median(2).
 *
 * Stacks: fib frames are tiny and inline recursion is at most n/2 deep, so
 * the tasks get 16 KiB stacks (--stack-kib) instead of the 64 KiB default;
 * each stack sits above a guard, so an overflow faults instead of
 * corrupting memory.
 *
 * --hold-others 1 (with --workers N > 1; not a measurement of WORKLOADS.md):
 * before the timed region, a pinned task that spins without yielding
 * occupies every worker but the main task's, so that one worker computes
 * everything, on the multi-worker paths (deques, locks, atomic wake-ups),
 * with nothing stolen and no cache line moving between CPUs: the cost of
 * the multi-worker protocol itself, to compare with --workers 1.
 *
 * --per-worker 1 (with --workers N; not a measurement of WORKLOADS.md
 * either): one fib(n) tree rooted on each worker at once (the roots
 * pinned, the rest free to move), and the time of the slowest: trees that
 * share nothing should each take what one takes on a held runtime
 * (--hold-others 1); more is what the workers cost each other through
 * memory they share without a reason (a cache line of one worker's objects
 * beside the other's).
 * usage: w2_fib [--workers N] [--n 27] [--stack-kib 16] [--hold-others 1]
 *        [--per-worker 1]
 */
#include <coil/coil.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */
#include "bench_util.h"

#define REPS 3
#define USAGE "w2_fib [--workers N] [--n 27] [--stack-kib 16] [--hold-others 1] [--per-worker 1]"

static int fib(void *arg, void **result)
{
	intptr_t k = (intptr_t)arg;
	if (k < 2) {
		*result = (void *)k;
		return 0;
	}
	coil_task_t *t;
	int rc = coil_spawn(&t, fib, (void *)(k - 1), NULL);
	if (rc)
		return rc;
	void *b = NULL, *a = NULL;
	int rb = fib((void *)(k - 2), &b);
	int ra = coil_await(coil_task_future(t), &a);
	coil_task_detach(t);
	if (ra || rb)
		return ra ? ra : rb;
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

struct run {
	intptr_t n;
	intptr_t value;
	uint64_t ns;
	unsigned hold;          /* --hold-others */
	unsigned per_worker;    /* --per-worker */
};

static atomic_uint holding;
static atomic_bool hold_release;

/* Pinned on a worker: spins, without yielding, until released. */
static int holds_a_worker(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_fetch_add(&holding, 1);
	while (!atomic_load_explicit(&hold_release, memory_order_acquire))
		;
	return 0;
}

/* From the main task: occupies every other worker; returns their futures. */
static coil_cfuture_t **hold_others(void)
{
	coil_runtime_t *rt = coil_current_runtime();
	unsigned n = coil_runtime_workers(rt);
	int me = coil_current_worker();
	coil_cfuture_t **f = calloc(n, sizeof(*f));
	if (!f)
		CHECK_FAIL("out of memory");
	atomic_store(&holding, 0);
	atomic_store(&hold_release, false);
	coil_spawn_opts_t pinned = { .pinned = true };
	unsigned want = 0;
	for (unsigned i = 0; i < n; i++) {
		if ((int)i == me)
			continue;
		int rc = coil_run_coroutine_threadsafe_opts(&f[i], coil_runtime_loop(rt, (int)i),
							    holds_a_worker, NULL, &pinned);
		if (rc)
			CHECK_FAIL("hold worker %u: %s", i, coil_strerror(rc));
		want++;
	}
	while (atomic_load(&holding) < want)
		;
	return f;
}

static void release_others(coil_cfuture_t **f)
{
	atomic_store_explicit(&hold_release, true, memory_order_release);
	unsigned n = coil_runtime_workers(coil_current_runtime());
	for (unsigned i = 0; i < n; i++) {
		if (!f[i])
			continue;
		coil_cfuture_wait(f[i], COIL_FOREVER, NULL);
		coil_cfuture_release(f[i]);
	}
	free(f);
}

static int top(void *arg, void **result)
{
	struct run *r = arg;
	(void)result;
	void *v = NULL;
	coil_cfuture_t **held = r->hold ? hold_others() : NULL;
	uint64_t t0 = now_ns();
	int rc = fib((void *)r->n, &v);
	r->ns = now_ns() - t0;
	if (held)
		release_others(held);
	r->value = (intptr_t)v;
	return rc;
}

static intptr_t fib_iter(intptr_t n)
{
	intptr_t a = 0, b = 1;
	for (intptr_t i = 0; i < n; i++) {
		intptr_t c = a + b;
		a = b;
		b = c;
	}
	return a;
}

/* One measurement on a fresh runtime of `workers` workers; returns ms. */
/* --per-worker: one tree on each worker at once, rooted there (pinned),
 * each timed by its root. */
struct tree {
	intptr_t n, value;
	uint64_t ns;
};

static atomic_uint trees_ready;

static int tree_root(void *arg, void **result)
{
	struct tree *t = arg;
	(void)result;
	unsigned n = coil_runtime_workers(coil_current_runtime());
	atomic_fetch_add(&trees_ready, 1);
	while (atomic_load(&trees_ready) < n)
		;
	void *v = NULL;
	uint64_t t0 = now_ns();
	int rc = fib((void *)t->n, &v);
	t->ns = now_ns() - t0;
	t->value = (intptr_t)v;
	return rc;
}

static int per_worker(void *arg, void **result)
{
	struct run *r = arg;
	(void)result;
	coil_runtime_t *rt = coil_current_runtime();
	unsigned n = coil_runtime_workers(rt);
	int me = coil_current_worker();
	struct tree *t = calloc(n, sizeof(*t));
	coil_cfuture_t **f = calloc(n, sizeof(*f));
	if (!t || !f)
		CHECK_FAIL("out of memory");
	atomic_store(&trees_ready, 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	for (unsigned i = 0; i < n; i++) {
		t[i].n = r->n;
		if ((int)i == me)
			continue;
		int rc = coil_run_coroutine_threadsafe_opts(&f[i], coil_runtime_loop(rt, (int)i),
							    tree_root, &t[i], &pinned);
		if (rc)
			CHECK_FAIL("tree on worker %u: %s", i, coil_strerror(rc));
	}
	int rc = tree_root(&t[me], NULL);
	for (unsigned i = 0; i < n; i++) {
		if (!f[i])
			continue;
		int frc = coil_cfuture_wait(f[i], COIL_FOREVER, NULL);
		coil_cfuture_release(f[i]);
		rc = rc ? rc : frc;
	}
	r->ns = 0;
	r->value = t[0].value;
	for (unsigned i = 0; i < n; i++) {
		if (t[i].value != t[0].value)
			r->value = -1;
		if (t[i].ns > r->ns)
			r->ns = t[i].ns;
	}
	free(t);
	free(f);
	return rc;
}

static unsigned per_worker_mode;

static double measure(unsigned workers, intptr_t n, size_t stack, unsigned hold)
{
	struct run r = { .n = n, .hold = hold && workers > 1, .per_worker = per_worker_mode };
	char what[64];
	snprintf(what, sizeof(what), "fib(%ld) on %u workers", (long)n, workers);
	bench_block_on(workers, stack, r.per_worker ? per_worker : top, &r, what);
	if (r.value != fib_iter(n))
		CHECK_FAIL("fib(%ld) = %ld, expected %ld", (long)n, (long)r.value,
			   (long)fib_iter(n));
	return (double)r.ns / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int k)
{
	qsort(v, (size_t)k, sizeof(*v), cmp_double);
	return v[k / 2];
}

int main(int argc, char **argv)
{
	unsigned workers = 0; /* 0: 1 and 2, interleaved */
	long n = 27;
	size_t stack = 16 * 1024;
	unsigned hold = 0;
	const bench_opt_t opts[] = {
		{ "--n", BENCH_OPT_LONG, &n },
		{ "--workers", BENCH_OPT_UINT, &workers },
		{ "--stack-kib", BENCH_OPT_KIB, &stack },
		{ "--hold-others", BENCH_OPT_UINT, &hold },
		{ "--per-worker", BENCH_OPT_UINT, &per_worker_mode },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (n < 0 || n > 90 || !stack)
		bench_usage(USAGE);
	printf("# w2 n=%ld fib=%ld spawned_tasks=%ld stack_kib=%zu\n", (long)n,
	       (long)fib_iter(n), (long)(fib_iter(n + 1) - 1), stack / 1024);
	if (workers) {
		char unit[64];
		snprintf(unit, sizeof(unit), "ms workers=%u%s%s", workers,
			 hold && workers > 1 ? " held=all-but-one" : "",
			 per_worker_mode ? " trees=one-per-worker" : "");
		report("time_ms", measure(workers, n, stack, hold), unit);
		return 0;
	}
	double t[2][REPS];
	for (int rep = 0; rep < REPS; rep++) {
		for (unsigned w = 1; w <= 2; w++) {
			t[w - 1][rep] = measure(w, n, stack, hold);
			printf("# w2 workers=%u rep=%d time_ms=%.3f\n", w, rep, t[w - 1][rep]);
		}
	}
	double m1 = median(t[0], REPS), m2 = median(t[1], REPS);
	report("time_ms", m1, "ms workers=1");
	report("time_ms", m2, "ms workers=2");
	report("speedup", m1 / m2, "x");
	return 0;
}
