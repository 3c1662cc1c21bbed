/*
 * display_date.c: a task that prints the date once a second for five
 * seconds, ending by the loop's clock.
 *
 * Ports display_date of the asyncio tutorial (seed, run_until_complete):
 *
 *     async def display_date(loop):
 *         end_time = loop.time() + 5.0
 *         while True:
 *             print(datetime.datetime.now())
 *             if (loop.time() + 1.0) >= end_time:
 *                 break
 *             await asyncio.sleep(1)
 *
 *     loop = asyncio.new_event_loop()
 *     loop.run_until_complete(display_date(loop))
 *     loop.close()
 *
 * It prints five dates, one second apart, like 2018-06-07 22:34:13.015772.
 *
 * `--fast` makes the loop use the virtual clock (coil_runtime_opts_t
 * .virtual_clock): the sleeps then take no time and the loop's clock jumps
 * from one timer to the next. The wall clock does not move in that mode, so
 * the program prints the wall-clock date at its start plus the loop time
 * elapsed since: the dates the real run would have printed, one second
 * apart, without the five-second wait.
 */
#define _POSIX_C_SOURCE 200809L /* localtime_r, clock_gettime */
#include <coil/coil.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "display_date: %s: %s\n", what, coil_strerror(err));
	exit(1);
}

struct display {
	coil_loop_t *loop;
	bool fast;
	struct timespec wall0; /* wall clock when the task started */
	int64_t loop0;         /* loop clock (ns) at the same moment */
};

/* Prints a date as Python's str(datetime.datetime.now()) does. */
static void print_date(const struct timespec *ts)
{
	struct tm tm;
	char buf[32];

	localtime_r(&ts->tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s.%06ld\n", buf, ts->tv_nsec / 1000);
}

static void print_now(const struct display *d)
{
	struct timespec ts;

	if (!d->fast) {
		clock_gettime(CLOCK_REALTIME, &ts);
	} else {
		/* Virtual clock: the start date plus the loop time elapsed. */
		int64_t ns = d->wall0.tv_nsec +
			     (coil_loop_time_ns(d->loop) - d->loop0);
		ts.tv_sec = d->wall0.tv_sec + ns / COIL_NSEC_PER_SEC;
		ts.tv_nsec = ns % COIL_NSEC_PER_SEC;
	}
	print_date(&ts);
}

static int display_date(void *arg, void **result)
{
	struct display *d = arg;
	double end_time = coil_loop_time(d->loop) + 5.0;
	(void)result;

	clock_gettime(CLOCK_REALTIME, &d->wall0);
	d->loop0 = coil_loop_time_ns(d->loop);
	for (;;) {
		print_now(d);
		if (coil_loop_time(d->loop) + 1.0 >= end_time)
			break;
		int rc = coil_sleep(1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int main(int argc, char **argv)
{
	coil_runtime_opts_t opts;
	struct display d = { 0 };
	coil_task_t *task;
	int rc;

	/* Show each date as it is printed, even through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	coil_runtime_opts_init(&opts);
	d.fast = opts.virtual_clock =
		argc > 1 && strcmp(argv[1], "--fast") == 0;

	rc = coil_new_event_loop_opts(&d.loop, &opts);
	if (rc < 0)
		die("coil_new_event_loop_opts", rc);

	/* loop.run_until_complete(display_date(loop)): the coroutine is
	 * wrapped in a task first, as asyncio does. */
	rc = coil_loop_create_task(d.loop, &task, display_date, &d, NULL);
	if (rc < 0)
		die("coil_loop_create_task", rc);
	rc = coil_loop_run_until_complete(d.loop, coil_task_future(task), NULL);
	if (rc < 0)
		die("display_date", rc);
	coil_task_detach(task);

	rc = coil_loop_close(d.loop);
	if (rc < 0)
		die("coil_loop_close", rc);
	return 0;
}
