/* tests/test_loop.c: the event loop: callbacks, stop, close, timers, time. */
#include <pthread.h>
#include <sys/resource.h>

#include "coil/coil.h"
#include "test.h"

static coil_loop_t *new_loop(bool virtual_clock)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = virtual_clock;
	coil_loop_t *loop = NULL;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	return loop;
}

static char order[64];
static size_t norder;

static void record(void *arg)
{
	order[norder++] = (char)(intptr_t)arg;
}

TEST(call_soon_runs_in_fifo_order)
{
	coil_loop_t *loop = new_loop(false);
	for (char c = 'a'; c <= 'e'; c++)
		ASSERT_EQ(coil_loop_call_soon(loop, record, (void *)(intptr_t)c, NULL), 0);
	coil_loop_stop(loop);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	order[norder] = 0;
	ASSERT_STR_EQ(order, "abcde");
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static coil_loop_t *the_loop;
static int hellos;

static void hello_and_stop(void *arg)
{
	(void)arg;
	hellos++;
	coil_loop_stop(the_loop);
	/* Scheduled now: must wait for the next run. */
	coil_loop_call_soon(the_loop, record, (void *)'x', NULL);
}

/* The seed: four call_soon(hello_world) each calling stop() all print,
 * and what they schedule waits for the next run. */
TEST(stop_lets_the_current_iteration_finish)
{
	the_loop = new_loop(false);
	for (int i = 0; i < 4; i++)
		coil_loop_call_soon(the_loop, hello_and_stop, NULL, NULL);
	ASSERT_EQ(coil_loop_run_forever(the_loop), 0);
	ASSERT_EQ(hellos, 4);
	ASSERT_EQ(norder, 0);
	ASSERT_EQ(coil_loop_ready_count(the_loop), 4);
	coil_loop_stop(the_loop);
	ASSERT_EQ(coil_loop_run_forever(the_loop), 0);
	ASSERT_EQ(norder, 4);
	ASSERT(!coil_loop_is_running(the_loop));
	ASSERT_EQ(coil_loop_close(the_loop), 0);
}

static void check_running(void *arg)
{
	coil_loop_t *loop = arg;
	ASSERT(coil_loop_is_running(loop));
	ASSERT_PTR_EQ(coil_get_running_loop(), loop);
	ASSERT_EQ(coil_loop_run_forever(loop), -EBUSY);
	ASSERT_EQ(coil_loop_close(loop), -EBUSY);
	coil_loop_stop(loop);
}

TEST(close_refused_while_running_and_state_reported)
{
	coil_loop_t *loop = new_loop(false);
	ASSERT(!coil_loop_is_closed(loop));
	ASSERT(coil_get_running_loop() == NULL);
	coil_loop_call_soon(loop, check_running, loop, NULL);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	ASSERT(coil_get_running_loop() == NULL);
	coil_set_event_loop(loop);
	ASSERT_PTR_EQ(coil_get_event_loop(), loop);
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT(coil_get_event_loop() == NULL);
}

static void never_called(void *arg)
{
	(void)arg;
	TEST_FAIL_("a cancelled callback ran");
}

TEST(cancelled_handles_do_not_run)
{
	coil_loop_t *loop = new_loop(true);
	coil_handle_t *h1, *h2;
	ASSERT_EQ(coil_loop_call_soon(loop, never_called, NULL, &h1), 0);
	ASSERT_EQ(coil_loop_call_later(loop, 1000, never_called, NULL, &h2), 0);
	ASSERT_EQ(coil_loop_timer_count(loop), 1);
	ASSERT(coil_handle_cancel(h1));
	ASSERT(coil_handle_cancel(h2));
	ASSERT(!coil_handle_cancel(h2));
	ASSERT(coil_handle_cancelled(h2));
	ASSERT_EQ(coil_loop_timer_count(loop), 0);
	coil_loop_call_later(loop, 2000, record, (void *)'z', NULL);
	coil_loop_call_later(loop, 3000, (coil_cb)coil_loop_stop, loop, NULL);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	ASSERT_EQ(norder, 1);
	coil_handle_release(h1);
	coil_handle_release(h2);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static int64_t fired_at[8];
static coil_loop_t *tloop;

static void stamp(void *arg)
{
	intptr_t i = (intptr_t)arg;
	fired_at[i] = coil_loop_time_ns(tloop);
	order[norder++] = (char)('0' + i);
	if (i == 9 % 8)
		coil_loop_stop(tloop);
}

TEST(timers_fire_by_deadline_then_fifo_on_the_virtual_clock)
{
	tloop = new_loop(true);
	int64_t t0 = coil_loop_time_ns(tloop);
	coil_loop_call_later(tloop, 3 * COIL_NSEC_PER_SEC, stamp, (void *)3, NULL);
	coil_loop_call_later(tloop, 1 * COIL_NSEC_PER_SEC, stamp, (void *)2, NULL);
	coil_loop_call_at(tloop, t0 + COIL_NSEC_PER_SEC, stamp, (void *)4, NULL);
	coil_loop_call_later(tloop, -5, stamp, (void *)0, NULL);
	coil_handle_t *h;
	coil_loop_call_at(tloop, t0 + 3600 * COIL_NSEC_PER_SEC, stamp, (void *)1, &h);
	ASSERT_EQ(coil_handle_when(h), t0 + 3600 * COIL_NSEC_PER_SEC);
	coil_handle_release(h);
	ASSERT_EQ(coil_loop_run_forever(tloop), 0);
	order[norder] = 0;
	ASSERT_STR_EQ(order, "02431");
	/* Virtual time: exactly the deadlines, however long the test took. */
	ASSERT_EQ(fired_at[2] - t0, COIL_NSEC_PER_SEC);
	ASSERT_EQ(fired_at[3] - t0, 3 * COIL_NSEC_PER_SEC);
	ASSERT_EQ(fired_at[1] - t0, 3600 * COIL_NSEC_PER_SEC);
	ASSERT_DBL_NEAR(coil_loop_time(tloop), (double)coil_loop_time_ns(tloop) / 1e9, 1e-6);
	ASSERT_EQ(coil_loop_close(tloop), 0);
}

static void stop_cb(void *arg)
{
	coil_loop_stop(arg);
}

TEST(real_timer_waits_about_its_delay)
{
	coil_loop_t *loop = new_loop(false);
	double t0 = coil_loop_time(loop);
	coil_loop_call_later(loop, 50 * 1000 * 1000, stop_cb, loop, NULL);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	double dt = coil_loop_time(loop) - t0;
	/* Never early; the upper bound is generous for a loaded VM. */
	ASSERT_GE(dt, 0.050);
	ASSERT_LT(dt, 5.0);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static void stop_soon(void *arg)
{
	coil_loop_stop(arg);
}

static void *poke(void *arg)
{
	coil_loop_t *loop = arg;
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	coil_loop_call_soon_threadsafe(loop, record, (void *)'t');
	coil_loop_call_soon_threadsafe(loop, stop_soon, loop);
	return NULL;
}

/* An idle loop sleeps in the kernel: the CPU it used while waiting for the
 * other thread is far below the wall time, and the wake-up arrives. */
TEST(idle_loop_sleeps_and_wakes_for_other_threads)
{
	coil_loop_t *loop = new_loop(false);
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, poke, loop), 0);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	getrusage(RUSAGE_THREAD, &r1);
	pthread_join(th, NULL);
	ASSERT_EQ(norder, 1);
	ASSERT_EQ(order[0], 't');
	long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
		  (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
		  (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
		  (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
	if (!getenv("COIL_VALGRIND"))
		ASSERT_LT(us, 50000);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static int handler_calls;
static int handler_error;

static void my_handler(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop;
	ASSERT_PTR_EQ(arg, &handler_calls);
	handler_calls++;
	handler_error = ctx->error;
}

TEST(exception_handler_set_get_call)
{
	coil_loop_t *loop = new_loop(false);
	void *arg = NULL;
	ASSERT(coil_loop_get_exception_handler(loop, &arg) == NULL);
	coil_loop_set_exception_handler(loop, my_handler, &handler_calls);
	ASSERT(coil_loop_get_exception_handler(loop, &arg) == my_handler);
	ASSERT_PTR_EQ(arg, &handler_calls);
	coil_exc_context_t ctx = { .message = "boom", .error = -EIO };
	coil_loop_call_exception_handler(loop, &ctx);
	ASSERT_EQ(handler_calls, 1);
	ASSERT_EQ(handler_error, -EIO);
	coil_loop_set_exception_handler(loop, NULL, NULL);
	/* The default handler prints to stderr. */
	coil_loop_call_exception_handler(loop, &ctx);
	ASSERT_EQ(handler_calls, 1);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

TEST(closed_loop_refuses_work)
{
	coil_loop_t *loop = new_loop(false);
	coil_loop_call_soon(loop, never_called, NULL, NULL);
	coil_loop_call_later(loop, COIL_NSEC_PER_SEC, never_called, NULL, NULL);
	/* Leftover callbacks are dropped, not run. */
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT_EQ(coil_loop_call_soon(NULL, record, NULL, NULL), -EINVAL);
}

static void count_cb(void *arg)
{
	(*(int *)arg)++;
}

TEST(a_million_timers_insert_fire_and_cancel)
{
	enum { N = 1000000 };
	coil_loop_t *loop = new_loop(true);
	static coil_handle_t *hs[N / 2];
	int fired = 0;
	int n = getenv("COIL_VALGRIND") ? 20000 : N;
	for (int i = 0; i < n; i++) {
		int64_t d = (int64_t)((i * 7919L) % 100000) * 1000;
		ASSERT_EQ(coil_loop_call_later(loop, d, count_cb, &fired,
					       i % 2 ? &hs[i / 2] : NULL), 0);
	}
	ASSERT_EQ(coil_loop_timer_count(loop), n);
	for (int i = 0; i < n / 2; i++) {
		ASSERT(coil_handle_cancel(hs[i]));
		coil_handle_release(hs[i]);
	}
	coil_loop_call_later(loop, 200 * 1000 * 1000, stop_cb, loop, NULL);
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	ASSERT_EQ(fired, n / 2);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

struct runner {
	coil_loop_t *loop;
	long cpu_us;
};

static void *run_elsewhere(void *arg)
{
	struct runner *r = arg;
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	ASSERT_EQ(coil_loop_run_forever(r->loop), 0);
	getrusage(RUSAGE_THREAD, &r1);
	r->cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
		    (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
		    (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
		    (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
	return NULL;
}

/* The seed's pattern: a loop made on this thread runs in a new one. It must
 * sleep there too (the ring is rebound to the running thread, which
 * SINGLE_ISSUER requires), and be woken from here. */
TEST(loop_made_on_one_thread_sleeps_when_run_on_another)
{
	struct runner r = { .loop = new_loop(false) };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, run_elsewhere, &r), 0);
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	coil_loop_call_soon_threadsafe(r.loop, record, (void *)'w');
	coil_loop_call_soon_threadsafe(r.loop, stop_soon, r.loop);
	pthread_join(th, NULL);
	ASSERT_EQ(norder, 1);
	if (!test_heavy_tools())
		ASSERT_LT(r.cpu_us, 50000);
	/* Closed from this thread again: the ring follows back. */
	ASSERT_EQ(coil_loop_close(r.loop), 0);
}

TEST_LIST(
	TEST_ENTRY(call_soon_runs_in_fifo_order),
	TEST_ENTRY(stop_lets_the_current_iteration_finish),
	TEST_ENTRY(close_refused_while_running_and_state_reported),
	TEST_ENTRY(cancelled_handles_do_not_run),
	TEST_ENTRY(timers_fire_by_deadline_then_fifo_on_the_virtual_clock),
	TEST_ENTRY(real_timer_waits_about_its_delay),
	TEST_ENTRY(idle_loop_sleeps_and_wakes_for_other_threads),
	TEST_ENTRY(exception_handler_set_get_call),
	TEST_ENTRY(closed_loop_refuses_work),
	TEST_ENTRY(a_million_timers_insert_fire_and_cancel),
	TEST_ENTRY(loop_made_on_one_thread_sleeps_when_run_on_another))
