/*
 * tests/test_bad_input.c: what the public API does with bad input.
 *
 * The rule (README): a bad argument or a call in the wrong place gets a
 * clear error, the documented one, never a crash, a hang or lost data.
 * The first tests are regressions of cases that once went wrong: sizes
 * and timeouts near the limits of their type that wrapped (a stack that
 * shrank to one page, a ring refused, a pool thread that spun), the
 * runtime's COIL_ANY_WORKER stand-in given where a loop is taken, waits
 * on futures that could never complete for the waiter (its own task, a
 * future of a loop that is not its own) and a NULL array with a
 * capacity. The rest sweep each header with NULL objects, out-of-range
 * sizes, counts, timeouts, descriptors, signals and enum values, and with
 * calls made outside a task. Tasks run on the virtual clock, so that a
 * wait that would hang ends at once at a timeout scope's deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

/* Runs fn as the main task of coil_run on the virtual clock. */
static int run_main(coil_fn fn, void *arg)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

static void nop_cb(void *arg)
{
	(void)arg;
}

static int nop_fn(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

static int nop_job(const void *in, size_t len, coil_bytes_t *out)
{
	(void)in;
	(void)len;
	(void)out;
	return 0;
}

static int nop_handler(coil_stream_t *s, void *arg)
{
	(void)s;
	(void)arg;
	return 0;
}

/* --- regressions ---------------------------------------------------------- */

/* Recurses through `arg` KiB of stack: on a stack that wrapped to a page
 * it would run into the guard. */
static int deep(void *arg, void **result)
{
	volatile char pad[1024];
	pad[0] = 1;
	intptr_t left = (intptr_t)arg;
	if (left > 0)
		return deep((void *)(left - 1), result) + pad[0] - 1;
	return 0;
}

static int spawn_huge_stack(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_spawn_opts_t so = { .stack_size = SIZE_MAX };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, deep, (void *)64, &so), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ENOMEM);
	coil_task_detach(t);
	coil_gen_opts_t go = { .stack_size = SIZE_MAX - 100 };
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, deep, (void *)64, &go), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), -ENOMEM);
	coil_gen_destroy(g);
	return 0;
}

TEST(stack_size_near_size_max_is_enomem_not_a_tiny_stack)
{
	coil_coro_opts_t o = { .stack_size = SIZE_MAX };
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, deep, (void *)64, &o), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), -ENOMEM);
	ASSERT_EQ(coil_coro_state(c), COIL_CORO_CREATED);
	coil_coro_destroy(c);
	ASSERT_EQ(run_main(spawn_huge_stack, NULL), 0);
	/* The loop's default stack size as well. */
	coil_runtime_opts_t ro;
	coil_runtime_opts_init(&ro);
	ro.virtual_clock = true;
	ro.stack_size = SIZE_MAX;
	int rc = coil_run(deep, (void *)64, NULL, &ro);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, -ENOMEM);
}

TEST(ring_entries_of_any_size_are_clamped)
{
	static const unsigned sizes[] = { 1, 3, 100000, 1u << 29, (1u << 29) + 1,
					  1u << 31, UINT_MAX };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		coil_runtime_opts_t o;
		coil_runtime_opts_init(&o);
		o.ring_entries = sizes[i];
		coil_loop_t *l;
		int rc = coil_new_event_loop_opts(&l, &o);
		TEST_SKIP_UNLESS_RING(rc);
		if (rc)
			TEST_FAIL_("ring_entries %u: %d", sizes[i], rc);
		ASSERT_EQ(coil_loop_close(l), 0);
	}
}

TEST(runtime_shutdown_refuses_a_negative_wait)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_shutdown(NULL, 0), -EINVAL);
	ASSERT_EQ(coil_runtime_shutdown(rt, -2), -EINVAL);
	ASSERT_EQ(coil_runtime_shutdown(rt, INT64_MIN), -EINVAL);
	/* Nothing was done: the runtime still works and shuts down. */
	coil_cfuture_t *cf;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&cf, coil_runtime_loop(rt, COIL_ANY_WORKER),
						nop_fn, NULL), 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_cfuture_wait(cf, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(cf);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

static int count_tasks(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_all_tasks(NULL, NULL, 4), 1);
	coil_task_t *one[1];
	ASSERT_EQ(coil_all_tasks(NULL, one, 1), 1);
	ASSERT_PTR_EQ(one[0], coil_current_task());
	return 0;
}

TEST(all_tasks_with_a_null_array_only_counts)
{
	ASSERT_EQ(run_main(count_tasks, NULL), 0);
	ASSERT_EQ(coil_all_tasks(NULL, NULL, 4), 0);
}

TEST(any_worker_stand_in_is_refused_where_a_real_loop_is_needed)
{
	coil_runtime_t *rt = test_runtime_new(2);
	coil_loop_t *any = coil_runtime_loop(rt, COIL_ANY_WORKER);
	ASSERT(any != NULL);
	ASSERT_EQ(coil_all_tasks(any, NULL, 0), 0);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(any), -EINVAL);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, any), -EINVAL);
	ASSERT_EQ(coil_loop_call_later(any, 5, nop_cb, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_at(any, 5, nop_cb, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_run_forever(any), -EINVAL);
	ASSERT_EQ(coil_loop_close(any), -EINVAL);
	ASSERT_EQ(coil_loop_dump_tasks(any, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(any, 1), -EINVAL);
	ASSERT_EQ(coil_loop_close(coil_runtime_loop(rt, 0)), -EINVAL);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), 0);
}

/* Waits on a set holding the calling task; a timeout scope ends any wait
 * that would otherwise hang. */
static int wait_on_self(void *arg, void **result)
{
	(void)result;
	coil_future_t *me = coil_task_future(coil_current_task());
	coil_future_t *fs[2] = { NULL, me };
	ASSERT_EQ(coil_future_create(&fs[0], NULL), 0);
	coil_timeout_t to;
	ASSERT_EQ(coil_timeout_enter(&to, 1000), 0);
	int rc;
	coil_as_completed_t *ac = NULL;
	switch ((intptr_t)arg) {
	case 0: rc = coil_gather(fs, 2, NULL, NULL, 0); break;
	case 1: rc = coil_gather(fs, 2, NULL, NULL, COIL_GATHER_RETURN_EXCEPTIONS); break;
	case 2: rc = coil_wait(fs, 2, NULL, COIL_ALL_COMPLETED, COIL_FOREVER); break;
	case 3: rc = coil_wait(fs, 2, NULL, COIL_FIRST_COMPLETED, 0); break;
	case 4: rc = coil_as_completed_create(&ac, fs, 2, COIL_FOREVER); break;
	case 5: rc = coil_wait_for(me, COIL_FOREVER, NULL); break;
	default: rc = coil_shield(me, NULL); break;
	}
	ASSERT_EQ(rc, -EDEADLK);
	ASSERT(ac == NULL);
	ASSERT_EQ(coil_timeout_exit(&to), 0);
	ASSERT(!coil_future_done(fs[0]));
	coil_future_release(fs[0]);
	return 0;
}

TEST(waiting_on_the_calling_task_is_edeadlk)
{
	for (intptr_t i = 0; i <= 6; i++)
		ASSERT_EQ(run_main(wait_on_self, (void *)i), 0);
}

/* Waits on a future of a standalone loop that nothing runs. */
static int wait_on_other_loop(void *arg, void **result)
{
	(void)result;
	coil_loop_t *other;
	ASSERT_EQ(coil_new_event_loop(&other), 0);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, other), 0);
	coil_timeout_t to;
	ASSERT_EQ(coil_timeout_enter(&to, 1000), 0);
	int rc;
	coil_as_completed_t *ac = NULL;
	switch ((intptr_t)arg) {
	case 0: rc = coil_await(f, NULL); break;
	case 1: rc = coil_gather(&f, 1, NULL, NULL, 0); break;
	case 2: rc = coil_wait(&f, 1, NULL, COIL_ALL_COMPLETED, COIL_FOREVER); break;
	case 3: rc = coil_as_completed_create(&ac, &f, 1, COIL_FOREVER); break;
	case 4: rc = coil_wait_for(f, 1000, NULL); break;
	default: rc = coil_shield(f, NULL); break;
	}
	ASSERT_EQ(rc, -EXDEV);
	ASSERT_EQ(coil_timeout_exit(&to), 0);
	/* Refused, and untouched: the caller still owns a pending future. */
	ASSERT(!coil_future_done(f));
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(other), 0);
	return 0;
}

TEST(waiting_on_a_future_of_another_loop_is_exdev)
{
	for (intptr_t i = 0; i <= 5; i++)
		ASSERT_EQ(run_main(wait_on_other_loop, (void *)i), 0);
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

TEST(thread_pool_with_a_huge_idle_timeout_sleeps)
{
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.idle_timeout_ns = INT64_MAX;
	o.max_threads = 1;
	coil_executor_t *ex;
	ASSERT_EQ(coil_thread_pool_create(&ex, &o), 0);
	coil_cfuture_t *cf;
	ASSERT_EQ(coil_executor_submit_threadsafe(&cf, ex, nop_fn, NULL, NULL), 0);
	ASSERT_EQ(coil_cfuture_wait(cf, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(cf);
	ASSERT_EQ(coil_executor_threads(ex), 1);
	/* The idle thread must wait, not spin on a deadline that wrapped
	 * into the past: idle, it costs some microseconds over 60 ms;
	 * spinning, tens of milliseconds. */
	struct timespec settle = { 0, 5 * 1000000 }, span = { 0, 60 * 1000000 };
	nanosleep(&settle, NULL);
	int64_t before = cpu_ns();
	nanosleep(&span, NULL);
	int64_t used = cpu_ns() - before;
	if (used > 5 * 1000000)
		TEST_FAIL_("the idle pool thread used %lld ns of CPU in 60 ms",
			   (long long)used);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
}

/* --- common, coroutines, loops ------------------------------------------- */

TEST(error_names_cover_every_code)
{
	static const int codes[] = { 0, 1, -1, INT_MIN, INT_MAX, -4096, -100000 };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ASSERT(coil_strerror(codes[i]) != NULL);
		ASSERT(coil_err_name(codes[i]) != NULL);
	}
	ASSERT_STR_EQ(coil_err_name(INT_MIN), "unknown");
}

static int yield_once(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_coro_yield(NULL, NULL);
}

TEST(coroutine_bad_arguments)
{
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(NULL, nop_fn, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_coro_create(&c, NULL, NULL, NULL), -EINVAL);
	ASSERT(coil_coro_state_name((coil_coro_state_t)42) != NULL);
	ASSERT(coil_coro_state_name((coil_coro_state_t)-1) != NULL);
	ASSERT_EQ(coil_coro_yield(NULL, NULL), COIL_EINVALSTATE);
	size_t d = coil_stack_default_size();
	ASSERT_EQ(coil_stack_set_default_size(0), -EINVAL);
	ASSERT_EQ(coil_stack_set_default_size(SIZE_MAX), -EINVAL);
	ASSERT_EQ(coil_stack_default_size(), d);
	ASSERT_EQ(coil_coro_create(&c, yield_once, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), 0);
	ASSERT_EQ(coil_coro_throw(c, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_coro_throw(c, 5, NULL), -EINVAL);
	ASSERT_EQ(coil_coro_take_result(c, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), COIL_EDONE);
	ASSERT_EQ(coil_coro_resume(c, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_coro_close(c), 0);
	coil_coro_destroy(c);
	coil_coro_destroy(NULL);
}

TEST(loop_bad_arguments)
{
	ASSERT_EQ(coil_new_event_loop(NULL), -EINVAL);
	ASSERT_EQ(coil_run(NULL, NULL, NULL, NULL), -EINVAL);
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 100000;
	ASSERT_EQ(coil_run(nop_fn, NULL, NULL, &o), -EINVAL);
	coil_loop_t *l, *l2;
	int rc = coil_new_event_loop(&l);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_loop_call_soon(l, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_later(l, 1, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_at(l, 1, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(l, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_soon(NULL, nop_cb, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_call_soon_threadsafe(NULL, nop_cb, NULL), -EINVAL);
	coil_handle_t *h;
	ASSERT_EQ(coil_loop_call_later(l, INT64_MAX, nop_cb, NULL, &h), 0);
	ASSERT_EQ(coil_handle_when(h), INT64_MAX);
	ASSERT(coil_handle_cancel(h));
	ASSERT(!coil_handle_cancel(h));
	coil_handle_release(h);
	ASSERT_EQ(coil_loop_call_later(l, INT64_MIN, nop_cb, NULL, NULL), 0);
	ASSERT_EQ(coil_loop_call_at(l, INT64_MIN, nop_cb, NULL, NULL), 0);
	coil_handle_release(NULL);
	ASSERT_EQ(coil_loop_run_until_complete(l, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_new_event_loop(&l2), 0);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, l2), 0);
	ASSERT_EQ(coil_loop_run_until_complete(l, f, NULL), -EINVAL);
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(l2), 0);
	coil_loop_stop(l);
	ASSERT_EQ(coil_loop_run_forever(l), 0);
	ASSERT_EQ(coil_loop_timer_count(l), 0);
	ASSERT_EQ(coil_loop_close(l), 0);
	ASSERT_EQ(coil_loop_close(NULL), -EINVAL);
	ASSERT_EQ(coil_loop_run_forever(NULL), -EINVAL);
}

static int loop_calls_in_a_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_t *l = coil_get_running_loop();
	ASSERT_EQ(coil_run(nop_fn, NULL, NULL, NULL), -EBUSY);
	ASSERT_EQ(coil_loop_close(l), -EBUSY);
	ASSERT_EQ(coil_loop_run_forever(l), -EBUSY);
	coil_loop_t *l2;
	ASSERT_EQ(coil_new_event_loop(&l2), 0);
	ASSERT_EQ(coil_loop_run_forever(l2), -EBUSY);
	ASSERT_EQ(coil_loop_close(l2), 0);
	return 0;
}

TEST(loop_runs_refused_inside_a_task)
{
	ASSERT_EQ(run_main(loop_calls_in_a_task, NULL), 0);
}

/* --- futures and tasks ------------------------------------------------------ */

static int future_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	ASSERT_EQ(coil_future_set_exception(f, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_future_set_exception(f, 1, NULL), -EINVAL);
	ASSERT_EQ(coil_future_add_done_callback(f, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_future_result(f, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_future_exception(f), COIL_EINVALSTATE);
	ASSERT_EQ(coil_future_set_exception(f, INT_MIN, "x"), 0);
	ASSERT_EQ(coil_future_set_result(f, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_await(f, NULL), INT_MIN);
	coil_future_release(f);
	coil_future_release(NULL);
	ASSERT_EQ(coil_await(NULL, NULL), -EINVAL);
	coil_task_t *me = coil_current_task(), *t;
	ASSERT_EQ(coil_await(coil_task_future(me), NULL), -EDEADLK);
	ASSERT_EQ(coil_spawn(&t, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_spawn(&t, nop_fn, NULL, NULL), 0);
	ASSERT_EQ(coil_future_set_result(coil_task_future(t), NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_future_set_exception(coil_task_future(t), -EIO, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT(!coil_task_cancel(t, "late"));
	ASSERT_EQ(coil_task_uncancel(t), 0);
	coil_task_detach(t);
	coil_task_detach(NULL);
	ASSERT_EQ(coil_sleep(NAN), -EINVAL);
	ASSERT_EQ(coil_sleep(-1), -EINVAL);
	ASSERT_EQ(coil_sleep(-INFINITY), -EINVAL);
	ASSERT_EQ(coil_sleep_ns(INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_sleep_ns(COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_sleep(-0.0), 0);
	ASSERT_EQ(coil_sleep(1e-300), 0);
	ASSERT_EQ(coil_task_set_name(me, NULL), 0);
	ASSERT(coil_task_get_name(me) != NULL);
	return 0;
}

TEST(future_and_task_bad_arguments)
{
	ASSERT_EQ(run_main(future_misuse, NULL), 0);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), -EINVAL);
	ASSERT_EQ(coil_spawn(NULL, nop_fn, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_sleep(1), COIL_EINVALSTATE);
	ASSERT_EQ(coil_sleep(NAN), -EINVAL);
}

/* --- runtime ----------------------------------------------------------------- */

static int pins(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	int rc = 0, n = 0;
	while (n < 70000 && (rc = coil_task_pin()) == 0)
		n++;
	ASSERT_EQ(rc, -EOVERFLOW);
	ASSERT_EQ(n, 65535);
	while (n-- > 0)
		ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	return 0;
}

TEST(runtime_bad_arguments)
{
	coil_runtime_t *rt;
	ASSERT_EQ(coil_runtime_new(NULL, NULL), -EINVAL);
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 4097;
	ASSERT_EQ(coil_runtime_new(&rt, &o), -EINVAL);
	o.workers = 2;
	o.virtual_clock = true;
	ASSERT_EQ(coil_runtime_new(&rt, &o), -EINVAL);
	rt = test_runtime_new(2);
	ASSERT(coil_runtime_loop(rt, -2) == NULL);
	ASSERT(coil_runtime_loop(rt, 2) == NULL);
	ASSERT(coil_runtime_loop(rt, INT_MAX) == NULL);
	ASSERT(coil_runtime_loop(rt, INT_MIN) == NULL);
	ASSERT_EQ(coil_runtime_spawn(rt, NULL, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_runtime_block_on(rt, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_task_pin(), COIL_EINVALSTATE);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	ASSERT_EQ(coil_task_local_set(&o, &o), COIL_EINVALSTATE);
	ASSERT(coil_task_local_get(&o) == NULL);
	ASSERT_EQ(coil_runtime_block_on(rt, pins, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_start(rt), -EBUSY);
	ASSERT_EQ(coil_runtime_block_on(rt, nop_fn, NULL, NULL), -EBUSY);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), 0);
}

/* --- sync -------------------------------------------------------------------- */

static int queue_and_lock_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q;
	void *it;
	ASSERT_EQ(coil_queue_create(NULL, COIL_QUEUE_FIFO, 0), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, (coil_queue_kind_t)3, 0), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, (coil_queue_kind_t)-1, 0), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, COIL_QUEUE_FIFO, SIZE_MAX), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, COIL_QUEUE_FIFO, (size_t)PTRDIFF_MAX), 0);
	ASSERT_EQ(coil_queue_put_nowait(q, (void *)1), 0);
	ASSERT_EQ(coil_queue_set_compare(q, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_get(q, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_get_nowait(q, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_get_nowait(q, &it), 0);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(coil_queue_task_done(q), -EINVAL);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	ASSERT_EQ(coil_queue_destroy(NULL), -EINVAL);
	ASSERT_EQ(coil_queue_put(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_join(NULL), -EINVAL);
	ASSERT_EQ(coil_queue_shutdown(NULL, true), -EINVAL);
	coil_lock_t *l;
	coil_condition_t *c;
	ASSERT_EQ(coil_lock_create(NULL), -EINVAL);
	ASSERT_EQ(coil_lock_create(&l), 0);
	ASSERT_EQ(coil_lock_release(l), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_lock_acquire(l), -EDEADLK);
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(coil_lock_release(l), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_acquire(NULL), -EINVAL);
	ASSERT_EQ(coil_condition_create(NULL, l), -EINVAL);
	ASSERT_EQ(coil_condition_create(&c, l), 0);
	ASSERT_EQ(coil_condition_wait(c), COIL_EINVALSTATE);
	ASSERT_EQ(coil_condition_notify(c, 1), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_condition_notify(c, -1), -EINVAL);
	ASSERT_EQ(coil_condition_notify(c, INT_MIN), -EINVAL);
	ASSERT_EQ(coil_condition_notify(c, INT_MAX), 0);
	ASSERT_EQ(coil_condition_wait_for(c, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(coil_condition_destroy(c), 0);
	ASSERT_EQ(coil_condition_destroy(NULL), -EINVAL);
	ASSERT_EQ(coil_lock_destroy(l), 0);
	ASSERT_EQ(coil_lock_destroy(NULL), -EINVAL);
	return 0;
}

static int counters_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_semaphore_t *s;
	ASSERT_EQ(coil_semaphore_create(&s, -1), -EINVAL);
	ASSERT_EQ(coil_semaphore_create(&s, INT_MIN), -EINVAL);
	ASSERT_EQ(coil_semaphore_create(NULL, 1), -EINVAL);
	ASSERT_EQ(coil_bounded_semaphore_create(&s, -1), -EINVAL);
	ASSERT_EQ(coil_semaphore_create(&s, INT_MAX), 0);
	ASSERT_EQ(coil_semaphore_release(s), -EOVERFLOW);
	ASSERT_EQ(coil_semaphore_value(s), INT_MAX);
	ASSERT_EQ(coil_semaphore_destroy(s), 0);
	ASSERT_EQ(coil_bounded_semaphore_create(&s, 0), 0);
	ASSERT_EQ(coil_semaphore_release(s), -EOVERFLOW);
	ASSERT_EQ(coil_semaphore_acquire_nowait(s), -EAGAIN);
	ASSERT_EQ(coil_semaphore_destroy(s), 0);
	ASSERT_EQ(coil_semaphore_acquire(NULL), -EINVAL);
	ASSERT_EQ(coil_semaphore_release(NULL), -EINVAL);
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 0), -EINVAL);
	ASSERT_EQ(coil_barrier_create(&b, -1), -EINVAL);
	ASSERT_EQ(coil_barrier_create(NULL, 1), -EINVAL);
	ASSERT_EQ(coil_barrier_create(&b, 1), 0);
	ASSERT_EQ(coil_barrier_wait(b), 0);
	ASSERT_EQ(coil_barrier_abort(b), 0);
	ASSERT_EQ(coil_barrier_wait(b), -EPIPE);
	ASSERT_EQ(coil_barrier_destroy(b), 0);
	ASSERT_EQ(coil_barrier_wait(NULL), -EINVAL);
	coil_event_t *e;
	ASSERT_EQ(coil_event_create(NULL), -EINVAL);
	ASSERT_EQ(coil_event_wait(NULL), -EINVAL);
	ASSERT_EQ(coil_event_set(NULL), -EINVAL);
	ASSERT_EQ(coil_event_create(&e), 0);
	ASSERT_EQ(coil_event_destroy(e), 0);
	return 0;
}

TEST(sync_bad_arguments)
{
	ASSERT_EQ(run_main(queue_and_lock_misuse, NULL), 0);
	ASSERT_EQ(run_main(counters_misuse, NULL), 0);
	/* The awaits outside a task. */
	coil_lock_t *l;
	coil_queue_t *q;
	void *it;
	ASSERT_EQ(coil_lock_create(&l), 0);
	ASSERT_EQ(coil_lock_acquire(l), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_destroy(l), 0);
	ASSERT_EQ(coil_queue_create(&q, COIL_QUEUE_FIFO, 1), 0);
	ASSERT_EQ(coil_queue_get(q, &it), COIL_EINVALSTATE);
	ASSERT_EQ(coil_queue_put(q, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_queue_destroy(q), 0);
}

/* --- compose ------------------------------------------------------------------ */

static int sets_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	coil_future_t *fs[2] = { f, NULL };
	ASSERT_EQ(coil_gather(NULL, 2, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_gather(fs, 2, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_gather(fs, 1, NULL, NULL, 0x80), -EINVAL);
	ASSERT_EQ(coil_gather(NULL, 0, NULL, NULL, 0), 0);
	ASSERT_EQ(coil_wait(fs, 0, NULL, COIL_ALL_COMPLETED, 0), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 1, NULL, 3, 0), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 1, NULL, -1, 0), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 1, NULL, COIL_ALL_COMPLETED, -2), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 1, NULL, COIL_ALL_COMPLETED, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 2, NULL, COIL_ALL_COMPLETED, 0), -EINVAL);
	coil_as_completed_t *ac;
	coil_future_t *got;
	ASSERT_EQ(coil_as_completed_create(NULL, fs, 1, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_as_completed_create(&ac, NULL, 1, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_as_completed_create(&ac, fs, 2, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_as_completed_create(&ac, fs, 1, -2), -EINVAL);
	ASSERT_EQ(coil_as_completed_create(&ac, NULL, 0, COIL_FOREVER), 0);
	ASSERT_EQ(coil_as_completed_next(ac, &got), COIL_EDONE);
	ASSERT_EQ(coil_as_completed_next(ac, NULL), -EINVAL);
	ASSERT_EQ(coil_as_completed_next(NULL, &got), -EINVAL);
	coil_as_completed_destroy(ac);
	coil_as_completed_destroy(NULL);
	ASSERT_EQ(coil_wait_for(NULL, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_wait_for(f, -2, NULL), -EINVAL);
	ASSERT_EQ(coil_shield(NULL, NULL), -EINVAL);
	ASSERT(!coil_future_done(f));
	coil_future_release(f);
	return 0;
}

static int scopes_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(NULL, 0), -EINVAL);
	ASSERT_EQ(coil_timeout_enter(&t, -2), -EINVAL);
	ASSERT_EQ(coil_timeout_enter(&t, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_timeout_enter_at(&t, -5), -EINVAL);
	ASSERT_EQ(coil_timeout_enter_at(&t, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_timeout_create(NULL), -EINVAL);
	memset(&t, 0, sizeof(t));
	ASSERT_EQ(coil_timeout_exit(&t), COIL_EINVALSTATE);
	ASSERT_EQ(coil_timeout_exit(NULL), -EINVAL);
	ASSERT_EQ(coil_timeout_reschedule(&t, 5), COIL_EINVALSTATE);
	ASSERT_EQ(coil_timeout_reschedule(NULL, 5), -EINVAL);
	ASSERT_EQ(coil_timeout_enter(&t, INT64_MAX), 0);
	ASSERT_EQ(coil_timeout_reschedule(&t, -2), -EINVAL);
	ASSERT_EQ(coil_timeout_reschedule(&t, INT64_MAX), 0);
	ASSERT_EQ(coil_sleep(1), 0);
	ASSERT_EQ(coil_timeout_exit(&t), 0);
	ASSERT_EQ(coil_timeout_exit(&t), COIL_EINVALSTATE);
	coil_taskgroup_t *tg;
	ASSERT_EQ(coil_taskgroup_create(NULL), -EINVAL);
	ASSERT_EQ(coil_taskgroup_enter(NULL), -EINVAL);
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, nop_fn, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_result(tg), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_error(tg, SIZE_MAX), 0);
	ASSERT(coil_taskgroup_error_message(tg, 5) == NULL);
	ASSERT(coil_taskgroup_error_task(tg, 5) == NULL);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), 0);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), COIL_EINVALSTATE);
	coil_taskgroup_destroy(tg);
	coil_taskgroup_destroy(NULL);
	return 0;
}

TEST(compose_bad_arguments)
{
	ASSERT_EQ(run_main(sets_misuse, NULL), 0);
	ASSERT_EQ(run_main(scopes_misuse, NULL), 0);
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(&t, 5), COIL_EINVALSTATE);
	coil_future_t *none[1] = { NULL };
	ASSERT_EQ(coil_gather(none, 1, NULL, NULL, 0), -EINVAL);
}

/* --- generators and async iterators --------------------------------------- */

static int one_value(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_gen_yield((void *)1, NULL);
}

TEST(generator_and_iterator_bad_arguments)
{
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(NULL, one_value, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_create(&g, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_create(&g, one_value, NULL, NULL), 0);
	ASSERT_EQ(coil_gen_asend(g, (void *)1, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_athrow(g, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_athrow(g, 1, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CREATED);
	ASSERT_EQ(coil_gen_next(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_aclose(NULL), -EINVAL);
	ASSERT_EQ(coil_gen_yield(NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_gen_yield_from(NULL), COIL_EINVALSTATE);
	coil_gen_destroy(g);
	coil_gen_destroy(NULL);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(NULL), -EINVAL);
	ASSERT(coil_gen_aiter(NULL) == NULL);

	coil_aiter_t *it, *src, *outs[2];
	void *items[3] = { (void *)1, (void *)2, (void *)3 };
	void **v;
	size_t n;
	ASSERT_EQ(coil_aiter_next(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_from_array(NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_aiter_from_array(&it, NULL, 3), -EINVAL);
	ASSERT_EQ(coil_aiter_from_fn(&it, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_repeat(&it, NULL, -2), -EINVAL);
	ASSERT_EQ(coil_aiter_repeat(&it, NULL, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_aiter_cycle(&it, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_chain(&it, NULL, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_zip(&it, NULL, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_product(&it, NULL, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_enumerate(&it, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_aiter_from_array(&src, items, 3), 0);
	ASSERT_EQ(coil_aiter_tee(NULL, 2, src), -EINVAL);
	ASSERT_EQ(coil_aiter_tee(outs, 2, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_map(&it, src, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_starmap(&it, src, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_aiter_islice(&it, src, -1, 3, 1), -EINVAL);
	ASSERT_EQ(coil_aiter_islice(&it, src, 0, -2, 1), -EINVAL);
	ASSERT_EQ(coil_aiter_islice(&it, src, 0, 3, 0), -EINVAL);
	ASSERT_EQ(coil_aiter_islice(&it, src, 0, 3, INT64_MIN), -EINVAL);
	coil_aiter_t *srcs[2] = { src, NULL };
	ASSERT_EQ(coil_aiter_chain(&it, srcs, 2), -EINVAL);
	ASSERT_EQ(coil_aiter_zip(&it, srcs, 2), -EINVAL);
	ASSERT_EQ(coil_alist(src, NULL, &n), -EINVAL);
	ASSERT_EQ(coil_alist(src, &v, NULL), -EINVAL);
	ASSERT_EQ(coil_alist(NULL, &v, &n), -EINVAL);
	coil_aiter_destroy(src);
	/* count past INTPTR_MAX wraps, as integers in pointers do. */
	void *x;
	ASSERT_EQ(coil_aiter_count(&it, INTPTR_MAX, 1), 0);
	ASSERT_EQ(coil_aiter_next(it, &x), 0);
	ASSERT_EQ(coil_aiter_next(it, &x), 0);
	coil_aiter_destroy(it);
	coil_alist_free(NULL);
	coil_aiter_destroy(NULL);
}

/* --- executors and concurrent futures ------------------------------------- */

TEST(executor_and_cfuture_bad_arguments)
{
	coil_executor_t *ex;
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	ASSERT_EQ(coil_thread_pool_create(NULL, NULL), -EINVAL);
	o.idle_timeout_ns = -5;
	ASSERT_EQ(coil_thread_pool_create(&ex, &o), -EINVAL);
	ASSERT_EQ(coil_set_default_executor_opts(&o), -EINVAL);
	o.idle_timeout_ns = INT64_MIN;
	ASSERT_EQ(coil_thread_pool_create(&ex, &o), -EINVAL);
	ASSERT_EQ(coil_executor_shutdown(NULL, true, true), -EINVAL);
	ASSERT_EQ(coil_run_in_executor(NULL, nop_fn, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_thread_pool_create(&ex, NULL), 0);
	ASSERT_EQ(coil_executor_submit_threadsafe(NULL, ex, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_submit_threadsafe(NULL, NULL, nop_fn, NULL, NULL), -EINVAL);
	coil_future_t *f;
	ASSERT_EQ(coil_executor_submit(&f, ex, nop_fn, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_submit(NULL, ex, nop_fn, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_executor_shutdown(ex, true, false), 0);
	ASSERT_EQ(coil_set_default_executor(NULL, NULL), -EINVAL);
	ASSERT(coil_get_default_executor(NULL) == NULL);
	ASSERT_EQ(coil_executor_threads(NULL), 0);

	coil_cfuture_t *cf;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&cf, NULL, nop_fn, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_create(NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_wait(NULL, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_create(&cf), 0);
	ASSERT_EQ(coil_cfuture_wait(cf, -2, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_wait(cf, INT64_MIN, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_wait(cf, 0, NULL), -ETIMEDOUT);
	ASSERT_EQ(coil_cfuture_wait(cf, 1, NULL), -ETIMEDOUT);
	ASSERT_EQ(coil_cfuture_add_done_callback(cf, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_exception(cf, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_exception(NULL, -1, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_result(NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_cfuture_set_result(cf, NULL, NULL), 0);
	ASSERT_EQ(coil_cfuture_set_result(cf, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_cfuture_wait(cf, INT64_MAX, NULL), 0);
	coil_cfuture_release(cf);
	coil_cfuture_release(NULL);
	ASSERT(!coil_cfuture_cancel(NULL));
}

/* --- I/O ------------------------------------------------------------------------ */

static int io_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	char buf[8];
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(coil_recv(-1, buf, 8, 0, 0), -EBADF);
	ASSERT_EQ(coil_recv(INT_MAX, buf, 8, 0, 0), -EBADF);
	ASSERT_EQ(coil_recv(INT_MIN, buf, 8, 0, 0), -EBADF);
	ASSERT_EQ(coil_recv(sv[0], buf, SIZE_MAX, 0, 0), -EINVAL);
	ASSERT_EQ(coil_recv(sv[0], buf, 8, 0, -2), -EINVAL);
	ASSERT_EQ(coil_recv(sv[0], buf, 8, 0, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_send(sv[0], NULL, 0, 0, 0), 0);
	ASSERT_EQ(coil_recvmsg(sv[0], NULL, 0, 0), -EINVAL);
	ASSERT_EQ(coil_sendmsg(sv[0], NULL, 0, 0), -EINVAL);
	struct iovec iov = { buf, 8 };
	ASSERT_EQ(coil_readv(sv[0], &iov, -1, -1, 0), -EINVAL);
	ASSERT_EQ(coil_readv(sv[0], &iov, INT_MAX, -1, 0), -EINVAL);
	ASSERT_EQ(coil_read(sv[0], buf, 8, -2, 0), -EINVAL);
	ASSERT_EQ(coil_read(sv[0], buf, 8, INT64_MIN, 0), -EINVAL);
	ASSERT_EQ(coil_open(NULL, O_RDONLY, 0, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_open("", O_RDONLY, 0, COIL_FOREVER), -ENOENT);
	ASSERT_EQ(coil_openat(-1, NULL, O_RDONLY, 0, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, NULL, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_shutdown(sv[0], 17, COIL_FOREVER), -EINVAL);
	ASSERT_EQ(coil_poll(-1, POLLIN, 0), -EBADF);
	ASSERT_EQ(coil_connect(sv[0], NULL, 0, COIL_FOREVER), -EINVAL);
	struct sockaddr_storage ss;
	socklen_t al = sizeof(ss);
	ASSERT_EQ(coil_accept(sv[0], (struct sockaddr *)&ss, NULL, 0, 0), -EINVAL);
	ASSERT_EQ(coil_accept(sv[0], NULL, &al, 0, 0), -EINVAL);
	ASSERT_EQ(coil_recvfrom(sv[0], buf, 8, 0, (struct sockaddr *)&ss, NULL, 0), -EINVAL);
	/* SPLICE_F_FD_IN_FIXED (linux/io_uring.h): no fixed files here. */
	ASSERT_EQ(coil_splice(sv[0], -1, sv[1], -1, 8, 1u << 31, 0), -EINVAL);
	ASSERT_EQ(coil_splice(sv[0], -2, sv[1], -1, 8, 0, 0), -EINVAL);
	ASSERT_EQ(coil_fsync(-1, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(-1, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(INT_MAX, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_close(sv[1], -2), -EINVAL);
	ASSERT_EQ(coil_close(sv[1], COIL_FOREVER), 0);
	ASSERT_EQ(coil_close(sv[0], 0), 0);
	return 0;
}

static int acceptor_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_acceptor_t *a;
	ASSERT_EQ(coil_acceptor_open(NULL, 0), -EINVAL);
	ASSERT_EQ(coil_acceptor_open(&a, -1), -EBADF);
	ASSERT_EQ(coil_acceptor_next(NULL, 0), -EINVAL);
	coil_acceptor_close(NULL);
	/* A descriptor that is not open, or not listening: the kernel's
	 * answer comes from next, and again at the next call. */
	ASSERT_EQ(coil_acceptor_open(&a, INT_MAX), 0);
	ASSERT_EQ(coil_acceptor_next(a, -2), -EINVAL);
	ASSERT_EQ(coil_acceptor_next(a, COIL_FOREVER), -EBADF);
	ASSERT_EQ(coil_acceptor_next(a, COIL_FOREVER), -EBADF);
	coil_acceptor_close(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(s >= 0);
	ASSERT_EQ(coil_acceptor_open(&a, s), 0);
	ASSERT_EQ(coil_acceptor_next(a, COIL_FOREVER), -EINVAL);
	coil_acceptor_close(a);
	close(s);
	return 0;
}

TEST(io_bad_arguments)
{
	ASSERT_EQ(run_main(io_misuse, NULL), 0);
	ASSERT_EQ(run_main(acceptor_misuse, NULL), 0);
	char buf[8];
	coil_acceptor_t *a;
	ASSERT_EQ(coil_recv(0, buf, 8, 0, 0), COIL_EINVALSTATE);
	ASSERT_EQ(coil_acceptor_open(&a, 0), COIL_EINVALSTATE);
	ASSERT_EQ(coil_close(-1, 0), -EBADF);
}

/* --- streams and servers ------------------------------------------------------ */

static int stream_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_stream_t *s;
	coil_stream_opts_t o;
	char buf[16];
	int sv[2];
	ASSERT_EQ(coil_stream_from_fd(NULL, 0, NULL), -EINVAL);
	ASSERT_EQ(coil_stream_from_fd(&s, -1, NULL), -EINVAL);
	ASSERT_EQ(coil_stream_from_fd(&s, INT_MAX, NULL), -EBADF);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	coil_stream_opts_init(&o);
	o.read_buffer = SIZE_MAX;
	ASSERT_EQ(coil_stream_from_fd(&s, sv[0], &o), -EINVAL);
	ASSERT_EQ(fcntl(sv[0], F_GETFD), -1); /* the stream's: closed */
	ASSERT_EQ(coil_stream_from_fd(&s, sv[1], NULL), 0);
	ASSERT_EQ(coil_stream_read(s, NULL, 5, 0), -EINVAL);
	ASSERT_EQ(coil_stream_read(s, buf, 0, 0), 0);
	ASSERT_EQ(coil_stream_read(s, buf, SIZE_MAX, 0), -EINVAL);
	ASSERT_EQ(coil_stream_read(s, buf, 5, -2), -EINVAL);
	ASSERT_EQ(coil_stream_readexactly(s, buf, SIZE_MAX, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readexactly(s, NULL, 5, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(s, "\n", 0, buf, 16, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(s, NULL, 1, buf, 16, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(s, "ab", 2, buf, 1, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readuntil(s, "\n", 1, buf, SIZE_MAX, 0), -EINVAL);
	ASSERT_EQ(coil_stream_readline(s, buf, 0, 0), -EINVAL);
	ASSERT_EQ(coil_stream_write(s, NULL, 5), -EINVAL);
	ASSERT_EQ(coil_stream_write(s, buf, SIZE_MAX), -EINVAL);
	ASSERT_EQ(coil_stream_write(s, NULL, 0), 0);
	ASSERT_EQ(coil_stream_write_all(s, NULL, 5, 0), -EINVAL);
	ASSERT_EQ(coil_stream_drain(s, -2), -EINVAL);
	ASSERT_EQ(coil_stream_write_eof(s, -2), -EINVAL);
	ASSERT_EQ(coil_stream_wait_closed(s, -2), -EINVAL);
	ASSERT_EQ(coil_stream_wait_closed(s, 0), 0);
	ASSERT_EQ(coil_stream_wait_closed(s, 0), 0);
	coil_stream_free(s);
	coil_stream_free(NULL);
	ASSERT_EQ(coil_open_connection(NULL, "127.0.0.1", 1, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, NULL, 1, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", -1, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 65536, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 1, NULL, -2), -EINVAL);
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 1, &o, 0), -EINVAL);
	ASSERT_EQ(coil_open_unix_connection(&s, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_open_unix_connection(&s, "", NULL, 0), -EINVAL);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ASSERT_EQ(coil_open_unix_connection(&s, longp, NULL, 0), -ENAMETOOLONG);
	struct addrinfo *res;
	ASSERT_EQ(coil_getaddrinfo(NULL, NULL, NULL, &res, 0), -EINVAL);
	ASSERT_EQ(coil_getaddrinfo("127.0.0.1", "1", NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_getaddrinfo("127.0.0.1", "1", NULL, &res, -2), -EINVAL);
	coil_freeaddrinfo(NULL);
	return 0;
}

static int server_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_server_t *srv;
	coil_server_opts_t so;
	coil_stream_opts_t bad;
	ASSERT_EQ(coil_start_server(NULL, nop_handler, NULL, NULL, 0, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_start_server(&srv, NULL, NULL, "127.0.0.1", 0, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_start_server(&srv, nop_handler, NULL, "127.0.0.1", 65536, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_start_server(&srv, nop_handler, NULL, "127.0.0.1", -1, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_start_unix_server(&srv, NULL, NULL, "@x", NULL), -EINVAL);
	ASSERT_EQ(coil_start_unix_server(&srv, nop_handler, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_start_unix_server(&srv, nop_handler, NULL, "", NULL), -EINVAL);
	coil_server_opts_init(&so);
	coil_stream_opts_init(&bad);
	bad.limit = SIZE_MAX;
	so.stream = &bad;
	ASSERT_EQ(coil_start_server(&srv, nop_handler, NULL, "127.0.0.1", 0, &so, 0), -EINVAL);
	ASSERT_EQ(coil_start_server(&srv, nop_handler, NULL, "127.0.0.1", 0, NULL, 0), 0);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ASSERT_EQ(coil_server_sockname(srv, 5, (struct sockaddr *)&ss, &sl), -EINVAL);
	ASSERT_EQ(coil_server_sockname(srv, UINT_MAX, (struct sockaddr *)&ss, &sl), -EINVAL);
	ASSERT_EQ(coil_server_sockname(srv, 0, NULL, &sl), -EINVAL);
	ASSERT_EQ(coil_server_sockname(srv, 0, (struct sockaddr *)&ss, NULL), -EINVAL);
	ASSERT_EQ(coil_server_close(srv, -2), -EINVAL);
	ASSERT_EQ(coil_server_free(srv), COIL_EINVALSTATE);
	ASSERT_EQ(coil_server_close(srv, 0), 0);
	ASSERT_EQ(coil_server_close(srv, 0), 0);
	ASSERT_EQ(coil_server_free(srv), 0);
	ASSERT_EQ(coil_server_free(NULL), 0);
	return 0;
}

TEST(stream_and_server_bad_arguments)
{
	ASSERT_EQ(run_main(stream_misuse, NULL), 0);
	ASSERT_EQ(run_main(server_misuse, NULL), 0);
	coil_stream_t *s;
	ASSERT_EQ(coil_open_connection(&s, "127.0.0.1", 1, NULL, 0), COIL_EINVALSTATE);
}

/* --- signals ------------------------------------------------------------------ */

static int signal_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	static const int bad[] = { 0, -1, INT_MIN, INT_MAX, 65, SIGKILL, SIGSTOP,
				   SIGSEGV, SIGBUS, SIGFPE, SIGILL, 32, 33 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(coil_add_signal_handler(bad[i], nop_cb, NULL), -EINVAL);
		ASSERT_EQ(coil_remove_signal_handler(bad[i]), -EINVAL);
	}
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, nop_cb, NULL), 0);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 0);
	return 0;
}

TEST(signal_bad_arguments)
{
	ASSERT_EQ(run_main(signal_misuse, NULL), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, nop_cb, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_remove_signal_handler(INT_MIN), -EINVAL);
}

/* --- processes ------------------------------------------------------------------- */

static int process_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_process_t *p;
	const char *null0[] = { NULL };
	const char *empty[] = { "", NULL };
	const char *ok[] = { "true", NULL };
	ASSERT_EQ(coil_process_spawn(NULL, ok, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, null0, NULL), -EINVAL);
	ASSERT_EQ(coil_process_spawn(&p, empty, NULL), -EINVAL);
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = -7;
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), -EINVAL);
	o.stdin_fd = INT_MIN;
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), -EINVAL);
	o.stdin_fd = COIL_PROCESS_STDOUT;
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), -EINVAL);
	o.stdin_fd = COIL_PROCESS_INHERIT;
	o.stdout_fd = INT_MAX;
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), -EBADF);
	o.stdout_fd = COIL_PROCESS_DEVNULL;
	o.cwd = "";
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), -ENOENT);
	o.cwd = NULL;
	ASSERT_EQ(coil_process_spawn(&p, ok, &o), 0);
	ASSERT_EQ(coil_process_wait(p, NULL, -2), -EINVAL);
	ASSERT_EQ(coil_process_wait(NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_process_send_signal(p, -1), -EINVAL);
	ASSERT_EQ(coil_process_send_signal(p, 1000), -EINVAL);
	ASSERT_EQ(coil_process_send_signal(p, INT_MIN), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, NULL, 5, NULL, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, "x", 1, NULL, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_process_communicate(p, NULL, 0, NULL, NULL, NULL, -2), -EINVAL);
	int st = -1;
	ASSERT_EQ(coil_process_wait(p, &st, COIL_FOREVER), 0);
	ASSERT_EQ(st, 0);
	ASSERT_EQ(coil_process_send_signal(p, 0), -ESRCH);
	coil_process_free(p);
	coil_process_free(NULL);
	return 0;
}

TEST(process_bad_arguments)
{
	ASSERT_EQ(run_main(process_misuse, NULL), 0);
	ASSERT_EQ(coil_process_register(NULL, nop_job), -EINVAL);
	ASSERT_EQ(coil_process_register("", nop_job), -EINVAL);
	ASSERT_EQ(coil_process_register("x", NULL), -EINVAL);
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ASSERT_EQ(coil_process_register(name, nop_job), -EINVAL);
	coil_process_pool_t *pp;
	ASSERT_EQ(coil_process_pool_create(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_process_pool_create(&pp, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_process_pool_shutdown(NULL, true, true), -EINVAL);
	ASSERT_EQ(coil_process_pool_pids(NULL, NULL, 4), 0);
	coil_bytes_free(NULL);
	ASSERT_EQ(coil_process_pool_main(-1, NULL), -EINVAL);
	ASSERT_EQ(coil_process_pool_main(0, NULL), -EINVAL);
}

/* --- debug ------------------------------------------------------------------------- */

static int debug_misuse(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *me = coil_current_task();
	void *fr[4];
	coil_task_info_t info;
	ASSERT_EQ(coil_task_get_stack(NULL, fr, 4), -EINVAL);
	ASSERT_EQ(coil_task_get_stack(me, NULL, 4), -EINVAL);
	ASSERT(coil_task_get_stack(me, NULL, 0) >= 0);
	ASSERT_EQ(coil_task_get_info(me, &info, 0), -EINVAL);
	ASSERT_EQ(coil_task_get_info(me, NULL, sizeof(info)), -EINVAL);
	ASSERT_EQ(coil_task_get_info(NULL, &info, sizeof(info)), -EINVAL);
	ASSERT_EQ(coil_task_get_info(me, &info, SIZE_MAX), 0);
	ASSERT(coil_task_state_name((coil_task_state_t)99) != NULL);
	ASSERT(coil_task_state_name((coil_task_state_t)-1) != NULL);
	ASSERT_EQ(coil_loop_dump_tasks(NULL, NULL, 0x80), -EINVAL);
	coil_loop_t *l = coil_get_running_loop();
	ASSERT_EQ(coil_loop_set_slow_callback_duration(l, -1), -EINVAL);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(l, INT64_MIN), -EINVAL);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(NULL, 1), -EINVAL);
	coil_worker_metrics_t m = { .size = 0 };
	int rc = coil_loop_metrics(l, &m);
	if (rc != -ENOTSUP) {
		ASSERT_EQ(rc, -EINVAL);
		ASSERT_EQ(coil_loop_metrics(l, NULL), -EINVAL);
	}
	return 0;
}

TEST(debug_bad_arguments)
{
	ASSERT_EQ(run_main(debug_misuse, NULL), 0);
	ASSERT_EQ(coil_dump_tasks(NULL), -EINVAL);
	ASSERT_EQ(coil_loop_get_slow_callback_duration(NULL), -EINVAL);
	ASSERT_EQ(coil_runtime_metrics(NULL, NULL, 0), -EINVAL);
	int rc = coil_trace_start(NULL, NULL);
	if (rc == -ENOTSUP)
		return;
	ASSERT_EQ(rc, -EINVAL);
	ASSERT_EQ(coil_trace_start("", NULL), -EINVAL);
	ASSERT_EQ(coil_trace_start("/nonexistent/dir/x.json", NULL), -ENOENT);
	ASSERT_EQ(coil_trace_start_file(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_trace_flush(), -EINVAL);
	ASSERT_EQ(coil_trace_stop(), -EINVAL);
	coil_runtime_t *rt = test_runtime_new(1);
	ASSERT_EQ(coil_runtime_metrics(rt, NULL, 1), -EINVAL);
	coil_worker_metrics_t m = { .size = 0 };
	ASSERT_EQ(coil_runtime_metrics(rt, &m, 1), -EINVAL);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), 0);
}

TEST_LIST(
	TEST_ENTRY(stack_size_near_size_max_is_enomem_not_a_tiny_stack),
	TEST_ENTRY(ring_entries_of_any_size_are_clamped),
	TEST_ENTRY(runtime_shutdown_refuses_a_negative_wait),
	TEST_ENTRY(all_tasks_with_a_null_array_only_counts),
	TEST_ENTRY(any_worker_stand_in_is_refused_where_a_real_loop_is_needed),
	TEST_ENTRY(waiting_on_the_calling_task_is_edeadlk),
	TEST_ENTRY(waiting_on_a_future_of_another_loop_is_exdev),
	TEST_ENTRY(thread_pool_with_a_huge_idle_timeout_sleeps),
	TEST_ENTRY(error_names_cover_every_code),
	TEST_ENTRY(coroutine_bad_arguments),
	TEST_ENTRY(loop_bad_arguments),
	TEST_ENTRY(loop_runs_refused_inside_a_task),
	TEST_ENTRY(future_and_task_bad_arguments),
	TEST_ENTRY(runtime_bad_arguments),
	TEST_ENTRY(sync_bad_arguments),
	TEST_ENTRY(compose_bad_arguments),
	TEST_ENTRY(generator_and_iterator_bad_arguments),
	TEST_ENTRY(executor_and_cfuture_bad_arguments),
	TEST_ENTRY(io_bad_arguments),
	TEST_ENTRY(stream_and_server_bad_arguments),
	TEST_ENTRY(signal_bad_arguments),
	TEST_ENTRY(process_bad_arguments),
	TEST_ENTRY(debug_bad_arguments)
)
