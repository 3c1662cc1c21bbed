/*
 * background_loop.c: a loop running forever in a thread of its own, fed
 * with callbacks by the main thread through call_soon_threadsafe.
 *
 * Ports the call_soon_threadsafe example of the asyncio tutorial (seed):
 *
 *     def start_loop(loop):
 *         asyncio.set_event_loop(loop)
 *         loop.run_forever()
 *
 *     def more_work(x):
 *         print('More work {}'.format(x))
 *         time.sleep(x)
 *         print('Finished more work {}'.format(x))
 *
 *     start = now()
 *     new_loop = asyncio.new_event_loop()
 *     t = Thread(target=start_loop, args=(new_loop,))
 *     t.start()
 *     print('TIME: {}'.format(time.time() - start))
 *
 *     new_loop.call_soon_threadsafe(more_work, 6)
 *     new_loop.call_soon_threadsafe(more_work, 3)
 *
 * more_work blocks the loop's thread (time.sleep, not asyncio.sleep), so the
 * two callbacks run one after the other: the main thread was not blocked,
 * but the loop is. The seed sleeps 6 and 3 seconds; here more_work blocks
 * for x/60 of a second (0.1 s and 0.05 s) with nanosleep, so that the
 * example ends at once, and prints the same lines:
 *
 *     TIME: 0.000112
 *     More work 6
 *     Finished more work 6
 *     More work 3
 *     Finished more work 3
 *
 * (the TIME value varies from run to run). The seed leaves its loop running;
 * this program then stops it from the main thread, with a callback handed
 * over the same way, joins the thread and closes the loop.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#include <coil/coil.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "background_loop: %s: %s\n", what, coil_strerror(err));
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

static void more_work(void *arg)
{
	int x = (int)(intptr_t)arg;
	/* x seconds in the seed, x/60 of a second here. */
	struct timespec ts = { 0, (long)x * 1000000000L / 60 };

	printf("More work %d\n", x);
	nanosleep(&ts, NULL);
	printf("Finished more work %d\n", x);
}

/* coil_loop_stop as a coil_cb, to hand it to the loop's thread. */
static void stop_loop(void *arg)
{
	coil_loop_stop(arg);
}

int main(void)
{
	coil_loop_t *new_loop;
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

	rc = coil_loop_call_soon_threadsafe(new_loop, more_work, (void *)6);
	if (rc < 0)
		die("coil_loop_call_soon_threadsafe", rc);
	rc = coil_loop_call_soon_threadsafe(new_loop, more_work, (void *)3);
	if (rc < 0)
		die("coil_loop_call_soon_threadsafe", rc);

	/* Callbacks from one thread run in the order they were handed over:
	 * the stop comes after both. */
	rc = coil_loop_call_soon_threadsafe(new_loop, stop_loop, new_loop);
	if (rc < 0)
		die("coil_loop_call_soon_threadsafe", rc);
	pthread_join(t, NULL);
	rc = coil_loop_close(new_loop);
	if (rc < 0)
		die("coil_loop_close", rc);
	return 0;
}
