/*
 * delegation.c: one async generator re-yielding another's values.
 *
 * Ports "关于yield from" of the asyncio tutorial (seed): async generators
 * have no `yield from`, so g2 delegates to g1 with `async for`:
 *
 *     async def g1(x):
 *         for i in range(x):
 *             yield i
 *
 *     async def g2():
 *         async for v in g1(5):
 *             yield v
 *
 *     async for i in g2():
 *         print(i)                                # 0 1 2 3 4
 *
 * coil has both forms. By default g2 delegates with coil_gen_yield_from,
 * which is `yield from`: besides the values it forwards what g2's consumer
 * sends (asend) and throws (athrow) into g1, and closes g1 when g2 is
 * closed. With `--async-for`, g2 is the seed's loop, COIL_AFOR over g1 with
 * a coil_gen_yield of each value. Both print the same.
 */
#include <coil/coil.h>
#include <coil/gen.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool use_async_for;

static void die(const char *what, int err)
{
	fprintf(stderr, "delegation: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/* async def g1(x): for i in range(x): yield i */
static int g1(void *arg, void **result)
{
	intptr_t x = (intptr_t)arg;
	(void)result;

	for (intptr_t i = 0; i < x; i++) {
		int rc = coil_gen_yield((void *)i, NULL);
		if (rc < 0)
			return rc; /* closed, or an error thrown in */
	}
	return 0;
}

/* async def g2(): re-yields the values of g1(5). */
static int g2(void *arg, void **result)
{
	coil_gen_t *inner;
	int rc;

	(void)arg;
	(void)result;
	rc = coil_gen_create(&inner, g1, (void *)(intptr_t)5, NULL);
	if (rc < 0)
		return rc;
	if (use_async_for) {
		/* async for v in g1(5): yield v */
		void *v;
		int yrc = 0;
		COIL_AFOR(v, inner, rc) {
			yrc = coil_gen_yield(v, NULL);
			if (yrc < 0)
				break;
		}
		rc = yrc < 0 ? yrc : rc == COIL_EDONE ? 0 : rc;
	} else {
		/* yield from g1(5) */
		rc = coil_gen_yield_from(inner);
	}
	/* Destroying g1 closes it if g2 stopped half way (g2 was closed). */
	coil_gen_destroy(inner);
	return rc;
}

static int main_task(void *arg, void **result)
{
	coil_gen_t *gen;
	void *v;
	int rc;

	(void)arg;
	(void)result;
	rc = coil_gen_create(&gen, g2, NULL, NULL);
	if (rc < 0)
		die("coil_gen_create", rc);

	/* async for i in g2(): print(i) */
	COIL_AFOR(v, gen, rc)
		printf("%d\n", (int)(intptr_t)v);
	if (rc != COIL_EDONE)
		die("iterating g2", rc);

	coil_gen_destroy(gen);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	use_async_for = argc > 1 && strcmp(argv[1], "--async-for") == 0;

	rc = coil_run(main_task, NULL, NULL, NULL);
	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
