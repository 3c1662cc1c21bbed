/*
 * averager.c: a push-style generator, fed values one at a time (asend).
 *
 * Ports the running averager of the asyncio tutorial (seed, "推送式"):
 *
 *     async def averager():
 *         total, count, average = 0.0, 0, None
 *         while True:
 *             term = yield average
 *             total += term; count += 1; average = total/count
 *
 *     async def grouper():
 *         aver = averager()
 *         await aver.__anext__()
 *         for i in range(11):
 *             print(await aver.asend(i))     # 0.0 0.5 1.0 ... 5.0
 *
 * In coil the generator is a coroutine (coil_coro_t). coil_coro_resume(c, v,
 * &out) is asend(v): the value v comes out of the coroutine's pending
 * coil_coro_yield, and what it yields next comes back in out. The first
 * resume only starts it up to its first yield, as __anext__ does in the
 * seed. The consumer is the main task (run_until_complete(grouper())).
 */
#include <coil/coil.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "averager: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

/*
 * The generator. It yields a pointer to its running average, which lives on
 * the coroutine's own stack: the pointer stays valid while the coroutine is
 * suspended, that is until the consumer resumes it again. It receives each
 * term as an integer carried in the void * that resume sends.
 */
static int averager(void *arg, void **result)
{
	double total = 0.0;
	long count = 0;
	double average;
	void *term;
	int rc;
	(void)arg;
	(void)result;

	rc = coil_coro_yield(NULL, &term); /* average = None */
	while (rc == 0) {
		total += (double)(intptr_t)term;
		count++;
		average = total / count;
		rc = coil_coro_yield(&average, &term);
	}
	/* The consumer closed us (GeneratorExit): end quietly. */
	return rc == COIL_ECLOSED ? 0 : rc;
}

static int grouper(void *arg, void **result)
{
	coil_coro_t *aver;
	void *out;
	int rc;
	(void)arg;
	(void)result;

	rc = coil_coro_create(&aver, averager, NULL, NULL);
	if (rc < 0)
		die("coil_coro_create", rc);

	/* await aver.__anext__(): run it to its first yield. */
	rc = coil_coro_resume(aver, NULL, NULL);
	if (rc < 0)
		die("coil_coro_resume", rc);

	for (intptr_t i = 0; i < 11; i++) {
		/* j = await aver.asend(i) */
		rc = coil_coro_resume(aver, (void *)i, &out);
		if (rc < 0)
			die("coil_coro_resume", rc);
		printf("%.1f\n", *(double *)out);
	}

	rc = coil_coro_close(aver);
	if (rc < 0)
		die("coil_coro_close", rc);
	coil_coro_destroy(aver);
	return 0;
}

int main(void)
{
	int rc = coil_run(grouper, NULL, NULL, NULL);

	if (rc < 0)
		die("coil_run", rc);
	return 0;
}
