/*
 * ticker_context.c: an async context manager around an async iterator.
 *
 * Ports AsyncContextTicker of the asyncio tutorial (seed, "异步上下文管理器和
 * async with"):
 *
 *     class AsyncContextTicker:
 *         def __init__(self, delay, to):
 *             self.data = Ticker(delay, to)
 *         async def __aenter__(self):
 *             print('entering context')
 *             await asyncio.sleep(1)
 *             return self.data
 *         async def __aexit__(self, exc_type, exc, tb):
 *             await asyncio.sleep(1)
 *             print('exit context')
 *
 *     async with AsyncContextTicker(1, 5) as ticker:
 *         async for i in ticker:
 *             print(i)
 *
 * which prints "entering context", 0 to 4, and "exit context".
 *
 * The Ticker is the seed's class-based async iterator: here a struct that
 * implements the coil_aiter_t interface (coil/aiter.h), whose next sleeps
 * before every number but the first, and COIL_AITER_FOR is `async for`. The
 * manager is a coil_cm_t (coil/cm.h): COIL_ASYNC_WITH runs its enter, the
 * block, and its exit, both of which await; the exit would run as well if
 * the block returned early or failed.
 *
 * The seed waits a second each time; this port waits 0.05 s so that it runs
 * in well under a second. `--fast` puts the loop on the virtual clock, where
 * the sleeps take no time at all.
 */
#include <coil/coil.h>
#include <coil/aiter.h>
#include <coil/cm.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK 0.05 /* seconds per wait (the seed uses 1) */

static void die(const char *what, int err)
{
	fprintf(stderr, "ticker_context: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/* class Ticker: yield numbers from 0 to `to` every `delay` seconds. */
struct ticker {
	coil_aiter_t it; /* first: the iterator is the ticker */
	double delay;
	int i;
	int to;
};

/* Ticker.__anext__ */
static int ticker_next(coil_aiter_t *it, void **value)
{
	struct ticker *t = (struct ticker *)it;
	int i = t->i;

	if (i >= t->to)
		return COIL_EDONE; /* raise StopAsyncIteration */
	t->i++;
	if (i) {
		int rc = coil_sleep(t->delay);
		if (rc < 0)
			return rc;
	}
	*value = (void *)(intptr_t)i;
	return 0;
}

/* class AsyncContextTicker */
struct context_ticker {
	struct ticker data;
};

static void context_ticker_init(struct context_ticker *c, double delay, int to)
{
	/* The ticker lives in the manager: nothing to destroy. */
	coil_aiter_init(&c->data.it, ticker_next, NULL);
	c->data.delay = delay;
	c->data.i = 0;
	c->data.to = to;
}

/* __aenter__ */
static int context_enter(void *self)
{
	(void)self;
	printf("entering context\n");
	return coil_sleep(TICK);
}

/* __aexit__: status is what the block left in coil_with.status. */
static int context_exit(void *self, int status)
{
	int rc;

	(void)self;
	(void)status;
	rc = coil_sleep(TICK);
	printf("exit context\n");
	return rc;
}

static int main_task(void *arg, void **result)
{
	struct context_ticker ctx;
	int rc, irc = 0;
	void *v;

	(void)arg;
	(void)result;
	context_ticker_init(&ctx, TICK, 5);

	/* async with AsyncContextTicker(TICK, 5) as ticker: */
	COIL_ASYNC_WITH(coil_cm_make(context_enter, context_exit, &ctx), rc) {
		coil_aiter_t *ticker = &ctx.data.it;

		/* async for i in ticker: print(i) */
		COIL_AITER_FOR(v, ticker, irc)
			printf("%d\n", (int)(intptr_t)v);
		if (irc != COIL_EDONE)
			coil_with.status = irc; /* __aexit__ learns of it */
	}
	if (rc < 0)
		die("entering the context", rc);
	if (irc != COIL_EDONE)
		die("iterating the ticker", irc);
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	coil_runtime_opts_init(&opts);
	opts.virtual_clock = argc > 1 && strcmp(argv[1], "--fast") == 0;

	rc = coil_run(main_task, NULL, NULL, &opts);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
