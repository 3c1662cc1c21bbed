/*
 * bench/bench_util.h: the scaffolding coil's workload programs share: the
 * `--name value` options, the runtime a workload runs on, and the checks
 * and measurements that more than one workload makes. The result lines
 * themselves stay in each program, which prints them exactly as
 * WORKLOADS.md asks.
 *
 * Everything here is static inline, so that a program that uses a part
 * of it compiles without warnings about the rest. A failure ends the
 * program as a failed check does (CHECK_FAIL of bench.h: a message on
 * stderr, exit status 2).
 */
#ifndef COIL_BENCH_UTIL_H
#define COIL_BENCH_UTIL_H

#include <coil/coil.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h" /* ../shared/workloads: PRNG, clock, result lines */

/* How an option's value is read, and the type of the variable it goes to. */
typedef enum {
	BENCH_OPT_U64,            /* uint64_t, strtoull */
	BENCH_OPT_UINT,           /* unsigned, atoi */
	BENCH_OPT_LONG,           /* long, atol */
	BENCH_OPT_KIB,            /* size_t, a count of KiB given, bytes kept */
	BENCH_OPT_STR,            /* const char *, the argument itself */
} bench_opt_kind_t;

typedef struct bench_opt {
	const char *name;         /* with its dashes: "--n" */
	bench_opt_kind_t kind;
	void *dst;
} bench_opt_t;

/* Prints "usage: " and the usage line on stderr and exits 2. */
static inline void bench_usage(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	exit(2);
}

/*
 * Reads the command line as `--name value` pairs into the options
 * opts[0..nopts); an unknown name or a name without a value is a usage
 * error. The values are converted as atoi and strtoull convert them,
 * without range checks: each program checks what it needs afterwards.
 */
static inline void bench_parse(int argc, char **argv, const bench_opt_t *opts,
			       size_t nopts, const char *usage)
{
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			bench_usage(usage);
		const bench_opt_t *o = NULL;
		for (size_t k = 0; k < nopts && !o; k++)
			if (!strcmp(argv[i], opts[k].name))
				o = &opts[k];
		if (!o)
			bench_usage(usage);
		const char *v = argv[i + 1];
		switch (o->kind) {
		case BENCH_OPT_U64:
			*(uint64_t *)o->dst = strtoull(v, NULL, 10);
			break;
		case BENCH_OPT_UINT:
			*(unsigned *)o->dst = (unsigned)atoi(v);
			break;
		case BENCH_OPT_LONG:
			*(long *)o->dst = atol(v);
			break;
		case BENCH_OPT_KIB:
			*(size_t *)o->dst = (size_t)atol(v) * 1024;
			break;
		case BENCH_OPT_STR:
			*(const char **)o->dst = v;
			break;
		}
	}
}

/* A runtime of `workers` workers whose tasks get stacks of `stack` bytes
 * (0: the runtime's default). */
static inline coil_runtime_t *bench_runtime_new(unsigned workers, size_t stack)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	if (stack)
		o.stack_size = stack;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	if (rc)
		CHECK_FAIL("coil_runtime_new: %s", coil_strerror(rc));
	return rt;
}

/* Before a benchmark's runtime is shut down: with COIL_BENCH_METRICS set
 * in the environment, its workers' counters go to stderr
 * (coil_runtime_dump_metrics), to see where a run's time went. */
static inline void bench_runtime_shutdown(coil_runtime_t *rt)
{
	if (getenv("COIL_BENCH_METRICS"))
		coil_runtime_dump_metrics(rt, stderr);
	int rc = coil_runtime_shutdown(rt, 5 * COIL_NSEC_PER_SEC);
	if (rc)
		CHECK_FAIL("coil_runtime_shutdown: %s", coil_strerror(rc));
}

/* Runs fn(arg) as the main task of a fresh runtime (as bench_runtime_new
 * makes it), then shuts the runtime down. `what` names the task in the
 * message of its failure. */
static inline void bench_block_on(unsigned workers, size_t stack, coil_fn fn,
				  void *arg, const char *what)
{
	coil_runtime_t *rt = bench_runtime_new(workers, stack);
	int rc = coil_runtime_block_on(rt, fn, arg, NULL);
	if (rc)
		CHECK_FAIL("%s: %s", what, coil_strerror(rc));
	bench_runtime_shutdown(rt);
}

/* The check of the workloads whose job i returns i: the n results sum to
 * n(n-1)/2. */
static inline void bench_check_sum(uint64_t sum, uint64_t n)
{
	if (sum != n * (n - 1) / 2)
		CHECK_FAIL("sum %llu, expected %llu", (unsigned long long)sum,
			   (unsigned long long)(n * (n - 1) / 2));
}

/* The line W1 and W7 print before their result lines:
 * "# <tag> n=N workers=W sum=S". */
static inline void bench_print_sum(const char *tag, uint64_t n, unsigned workers,
				   uint64_t sum)
{
	printf("# %s n=%llu workers=%u sum=%llu\n", tag, (unsigned long long)n, workers,
	       (unsigned long long)sum);
}

/* The process's peak resident set so far, in bytes (ru_maxrss is in KiB). */
static inline double bench_peak_rss(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss * 1024.0;
}

#endif
