/*
 * ticker.c: an async iterator, and an async list comprehension over it.
 *
 * Ports the Ticker of the asyncio tutorial (seed, "异步迭代器和async for" and
 * "异步列表解析"):
 *
 *     class Ticker:
 *         """Yield numbers from 0 to `to` every `delay` seconds."""
 *         async def __anext__(self):
 *             ...
 *             if i:
 *                 await asyncio.sleep(self.delay)
 *             return i
 *
 *     async for i in Ticker(1, 5): print(i)         # 0 1 2 3 4
 *     [i async for i in Ticker(1, 5) if i % 2]      # [1, 3]
 *
 * In coil the iterator is a coroutine (coil_coro_t): its body sleeps with
 * coil_sleep and hands each number to its consumer with coil_coro_yield.
 * The consumer is the main task (coil_run); each coil_coro_resume is one
 * __anext__. When the Ticker's coroutine sleeps, the whole main task
 * suspends with it and the loop is free to run other work; the resume returns
 * once the next number is ready. The end of iteration (StopAsyncIteration) is
 * the body returning, which resume reports as COIL_EDONE.
 *
 * The seed ticks once a second; this port ticks every 0.1 s so that it runs
 * in under a second. `--fast` puts the loop on the virtual clock, where the
 * sleeps take no time at all.
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK 0.1 /* seconds between numbers (the seed uses 1) */

static void die(const char *what, int err)
{
	fprintf(stderr, "ticker: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/* The iterator's state, as in the Python class. */
struct ticker {
	double delay;
	int i;
	int to;
};

/* The body of the Ticker coroutine: one yield per number. */
static int ticker_body(void *arg, void **result)
{
	struct ticker *t = arg;
	(void)result;

	while (t->i < t->to) {
		int i = t->i++;
		int rc;

		if (i) {
			rc = coil_sleep(t->delay);
			if (rc < 0)
				return rc;
		}
		/* Hands i to the consumer; returns once it asks for the next. */
		rc = coil_coro_yield((void *)(intptr_t)i, NULL);
		if (rc < 0)
			return rc; /* closed (or an error thrown in) */
	}
	return 0; /* StopAsyncIteration */
}

/* Ticker(delay, to): creates the iterator. */
static coil_coro_t *ticker_new(struct ticker *t, double delay, int to)
{
	coil_coro_opts_t opts = { .name = "Ticker" };
	coil_coro_t *c;
	int rc;

	t->delay = delay;
	t->i = 0;
	t->to = to;
	rc = coil_coro_create(&c, ticker_body, t, &opts);
	if (rc < 0)
		die("coil_coro_create", rc);
	return c;
}

/*
 * __anext__: returns 1 and the next number in *out, or 0 at the end of the
 * iteration. Suspends the calling task while the Ticker sleeps.
 */
static int ticker_next(coil_coro_t *c, int *out)
{
	void *v;
	int rc = coil_coro_resume(c, NULL, &v);

	if (rc == COIL_EDONE)
		return 0;
	if (rc < 0)
		die("coil_coro_resume", rc);
	*out = (int)(intptr_t)v;
	return 1;
}

/* async def main(): async for i in Ticker(...): print(i) */
static void async_for(void)
{
	struct ticker t;
	coil_coro_t *c = ticker_new(&t, TICK, 5);
	int i;

	while (ticker_next(c, &i))
		printf("%d\n", i);
	coil_coro_destroy(c);
}

/* async def main(): print([i async for i in Ticker(...) if i % 2]) */
static void async_comprehension(void)
{
	struct ticker t;
	coil_coro_t *c = ticker_new(&t, TICK, 5);
	int result[5];
	size_t n = 0;
	int i;

	while (ticker_next(c, &i))
		if (i % 2)
			result[n++] = i;
	coil_coro_destroy(c);

	printf("[");
	for (size_t k = 0; k < n; k++)
		printf("%s%d", k ? ", " : "", result[k]);
	printf("]\n");
}

static int main_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	async_for();
	async_comprehension();
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	int rc;

	/* Show each number as it arrives, even through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	coil_runtime_opts_init(&opts);
	opts.virtual_clock = argc > 1 && strcmp(argv[1], "--fast") == 0;

	rc = coil_run(main_task, NULL, NULL, &opts);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
