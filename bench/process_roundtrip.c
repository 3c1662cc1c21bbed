/*
 * bench/process_roundtrip.c: the round trip of a 1 KiB job through a
 * process pool (coil/process_pool.h).
 *
 * A task on a one-worker runtime runs N jobs "echo" (1 KiB in, the same
 * 1 KiB back) through a pool of `--procs` worker processes:
 *   - one at a time (submit, await, check): the latency of a round trip,
 *     `@ ns_per_roundtrip`;
 *   - `--depth` at a time (a window of futures, refilled as each is
 *     awaited in order): the pool's throughput, `@ ns_per_job_pipelined`.
 * Each output is compared with its input. The pool's workers are started
 * before the clock starts. The binary is its own worker binary: it
 * registers "echo" and calls coil_process_pool_main first thing.
 * usage: process_roundtrip [--n 20000] [--procs 2] [--depth 64]
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h" /* ../shared/workloads: clock, result lines */
#include "bench_util.h"

#define JOB_BYTES 1024
#define USAGE "process_roundtrip [--n N] [--procs N] [--depth N]"

static int echo(const void *in, size_t len, coil_bytes_t *out)
{
	if (!len)
		return 0;
	if (!(out->data = malloc(len)))
		return -ENOMEM;
	memcpy(out->data, in, len);
	out->len = len;
	return 0;
}

struct rt {
	uint64_t n;
	unsigned procs, depth;
	unsigned char in[JOB_BYTES];
	double ns_seq, ns_pipe;
};

static void check(coil_future_t *f, const unsigned char *in, uint64_t i)
{
	void *r;
	int rc = coil_await(f, &r);
	if (rc)
		CHECK_FAIL("job %llu: %s", (unsigned long long)i, coil_strerror(rc));
	const coil_bytes_t *b = r;
	if (b->len != JOB_BYTES || memcmp(b->data, in, JOB_BYTES))
		CHECK_FAIL("job %llu: the output differs from the input", (unsigned long long)i);
	coil_future_release(f);
}

static int main_task(void *arg, void **result)
{
	struct rt *t = arg;
	(void)result;
	coil_process_pool_opts_t o;
	coil_process_pool_opts_init(&o);
	o.workers = t->procs;
	coil_process_pool_t *pool;
	int rc = coil_process_pool_create(&pool, &o);
	if (rc)
		CHECK_FAIL("coil_process_pool_create: %s", coil_strerror(rc));

	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < t->n; i++) {
		coil_future_t *f;
		if ((rc = coil_process_pool_submit(&f, pool, "echo", t->in, JOB_BYTES)))
			CHECK_FAIL("submit: %s", coil_strerror(rc));
		check(f, t->in, i);
	}
	t->ns_seq = (double)(now_ns() - t0) / (double)t->n;

	coil_future_t **win = calloc(t->depth, sizeof(*win));
	if (!win)
		CHECK_FAIL("out of memory");
	t0 = now_ns();
	uint64_t next = 0;
	for (uint64_t i = 0; i < t->n; i++) {
		/* Keep `depth` jobs in flight; slot i % depth holds job i. */
		while (next < t->n && next < i + t->depth) {
			if ((rc = coil_process_pool_submit(&win[next % t->depth], pool, "echo",
							   t->in, JOB_BYTES)))
				CHECK_FAIL("submit: %s", coil_strerror(rc));
			next++;
		}
		check(win[i % t->depth], t->in, i);
	}
	t->ns_pipe = (double)(now_ns() - t0) / (double)t->n;
	free(win);
	return coil_process_pool_shutdown(pool, true, false);
}

int main(int argc, char **argv)
{
	int rc = coil_process_register("echo", echo);
	if (!rc)
		rc = coil_process_pool_main(argc, argv);
	if (rc)
		CHECK_FAIL("process pool set-up: %s", coil_strerror(rc));

	struct rt t = { .n = 20000, .procs = 2, .depth = 64 };
	const bench_opt_t opts[] = {
		{ "--n", BENCH_OPT_U64, &t.n },
		{ "--procs", BENCH_OPT_UINT, &t.procs },
		{ "--depth", BENCH_OPT_UINT, &t.depth },
	};
	bench_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), USAGE);
	if (!t.n || !t.procs || !t.depth)
		bench_usage(USAGE);
	uint64_t s = 1;
	for (size_t i = 0; i < JOB_BYTES; i++)
		t.in[i] = (unsigned char)splitmix64(&s);

	rc = coil_run(main_task, &t, NULL, NULL);
	if (rc)
		CHECK_FAIL("coil_run: %s", coil_strerror(rc));
	printf("# process_roundtrip n=%llu procs=%u depth=%u job=%d bytes\n",
	       (unsigned long long)t.n, t.procs, t.depth, JOB_BYTES);
	report("ns_per_roundtrip", t.ns_seq, "ns");
	report("ns_per_job_pipelined", t.ns_pipe, "ns");
	return 0;
}
