/*
 * threadsafe_coroutines.c: coroutines handed to a loop in a background
 * thread with run_coroutine_threadsafe, and waited for through their
 * concurrent futures.
 *
 * Ports the run_coroutine_threadsafe example of the asyncio tutorial (seed):
 *
 *     def start_loop(loop):
 *         asyncio.set_event_loop(loop)
 *         loop.run_forever()
 *
 *     async def do_some_work(x):
 *         print('Waiting {}'.format(x))
 *         await asyncio.sleep(x)
 *         print('Done after {}s'.format(x))
 *
 *     start = now()
 *     new_loop = asyncio.new_event_loop()
 *     t = Thread(target=start_loop, args=(new_loop,))
 *     t.start()
 *     print('TIME: {}'.format(time.time() - start))
 *
 *     asyncio.run_coroutine_threadsafe(do_some_work(6), new_loop)
 *     asyncio.run_coroutine_threadsafe(do_some_work(4), new_loop)
 *
 * The two coroutines run concurrently on the loop's thread: both start, and
 * the one that sleeps less ends first, so the whole takes about as long as
 * the longer sleep, not the sum. The seed sleeps 6 and 4 seconds; here
 * do_some_work sleeps x/10 of a second (0.6 s and 0.4 s), on the loop's real
 * clock, and prints the seed's numbers:
 *
 *     TIME: 0.000097
 *     Waiting 6
 *     Waiting 4
 *     Done after 4s
 *     Done after 6s
 *
 * (the TIME value varies from run to run). TIME is printed before anything
 * is handed to the loop, and the loop starts the coroutines in the order
 * they were handed over; the two Done lines are 0.2 s apart, far more than
 * the microseconds between the two hand-overs. The seed leaves the loop
 * running; this program waits for both concurrent futures, then stops the
 * loop, joins its thread and closes it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <coil/coil.h>
#include <coil/threadsafe.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "threadsafe_coroutines: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *start_loop(void *arg)
{
	coil_loop_t *loop = arg;

	coil_set_event_loop(loop);
	int rc = coil_loop_run_forever(loop);
	if (rc < 0)
		die("coil_loop_run_forever", rc);
	return NULL;
}

static int do_some_work(void *arg, void **result)
{
	int x = (int)(intptr_t)arg;
	(void)result;

	printf("Waiting %d\n", x);
	/* x seconds in the seed, x/10 of a second here. */
	int rc = coil_sleep(x / 10.0);
	if (rc < 0)
		return rc;
	printf("Done after %ds\n", x);
	return 0;
}

static void stop_loop(void *arg)
{
	coil_loop_stop(arg);
}

int main(void)
{
	coil_loop_t *new_loop;
	coil_cfuture_t *f6, *f4;
	pthread_t t;
	int rc;

	double start = now();
	rc = coil_new_event_loop(&new_loop);
	if (rc < 0)
		die("coil_new_event_loop", rc);
	rc = pthread_create(&t, NULL, start_loop, new_loop);
	if (rc != 0)
		die("pthread_create", -rc);
	printf("TIME: %f\n", now() - start);

	rc = coil_run_coroutine_threadsafe(&f6, new_loop, do_some_work, (void *)6);
	if (rc < 0)
		die("coil_run_coroutine_threadsafe", rc);
	rc = coil_run_coroutine_threadsafe(&f4, new_loop, do_some_work, (void *)4);
	if (rc < 0)
		die("coil_run_coroutine_threadsafe", rc);

	/* Block this thread until each coroutine is done. */
	rc = coil_cfuture_wait(f6, COIL_FOREVER, NULL);
	if (rc < 0)
		die("do_some_work(6)", rc);
	rc = coil_cfuture_wait(f4, COIL_FOREVER, NULL);
	if (rc < 0)
		die("do_some_work(4)", rc);
	coil_cfuture_release(f6);
	coil_cfuture_release(f4);

	rc = coil_loop_call_soon_threadsafe(new_loop, stop_loop, new_loop);
	if (rc < 0)
		die("coil_loop_call_soon_threadsafe", rc);
	pthread_join(t, NULL);
	rc = coil_loop_close(new_loop);
	if (rc < 0)
		die("coil_loop_close", rc);
	return 0;
}
