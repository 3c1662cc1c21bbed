/*
 * async_comprehension.c: an async list comprehension over an async
 * generator, with the aitertools.
 *
 * Ports the asynchronous comprehension of the asyncio tutorial (seed,
 * "异步列表解析"), with the seed's ticker written as an async generator
 * (seed, "异步生成器"):
 *
 *     async def ticker(delay, to):
 *         for i in range(0, to):
 *             yield i
 *             await asyncio.sleep(delay)
 *
 *     result = [i async for i in ticker(1, 5) if i % 2]
 *     print(result)                                   # [1, 3]
 *
 * In coil the generator is a coil_gen_t whose body yields with
 * coil_gen_yield and sleeps with coil_sleep. The comprehension is two tools
 * of coil/aiter.h: coil_aiter_filter keeps the odd values (the `if i % 2`),
 * coil_alist collects them into an array (the brackets). Each step of the
 * filter steps the generator, and when the generator sleeps the main task
 * sleeps with it, leaving the loop free for other work.
 *
 * The seed ticks once a second; this port ticks every 0.05 s so that it
 * runs in well under a second. `--fast` puts the loop on the virtual clock,
 * where the sleeps take no time at all.
 */
#include <coil/coil.h>
#include <coil/aiter.h>
#include <coil/gen.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK 0.05 /* seconds between numbers (the seed uses 1) */

static void die(const char *what, int err)
{
	fprintf(stderr, "async_comprehension: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/* async def ticker(delay, to): the generator's body; arg is `to`. */
static int ticker(void *arg, void **result)
{
	intptr_t to = (intptr_t)arg;
	(void)result;

	for (intptr_t i = 0; i < to; i++) {
		int rc = coil_gen_yield((void *)i, NULL);
		if (rc < 0)
			return rc; /* closed, or an error thrown in */
		rc = coil_sleep(TICK);
		if (rc < 0)
			return rc; /* cancelled */
	}
	return 0; /* StopAsyncIteration */
}

/* The comprehension's condition, `if i % 2`. */
static int is_odd(void *arg, void *value)
{
	(void)arg;
	return (intptr_t)value % 2 != 0;
}

static int main_task(void *arg, void **result)
{
	coil_gen_t *gen;
	coil_aiter_t *odd;
	void **items;
	size_t n;
	int rc;

	(void)arg;
	(void)result;
	rc = coil_gen_create(&gen, ticker, (void *)(intptr_t)5, NULL);
	if (rc < 0)
		die("coil_gen_create", rc);
	rc = coil_aiter_filter(&odd, coil_gen_aiter(gen), is_odd, NULL);
	if (rc < 0)
		die("coil_aiter_filter", rc);

	/* result = [i async for i in ticker(TICK, 5) if i % 2] */
	rc = coil_alist(odd, &items, &n);
	if (rc < 0)
		die("coil_alist", rc);

	printf("[");
	for (size_t k = 0; k < n; k++)
		printf("%s%d", k ? ", " : "", (int)(intptr_t)items[k]);
	printf("]\n");

	coil_alist_free(items);
	coil_aiter_destroy(odd);
	coil_gen_destroy(gen);
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
