/* tests/test_future.c: futures: states, results, callbacks, ownership. */
#include "coil/coil.h"
#include "test.h"

static coil_loop_t *new_loop(void)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	coil_loop_t *loop = NULL;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	return loop;
}

TEST(pending_future_refuses_result)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT(!coil_future_done(f));
	ASSERT(!coil_future_cancelled(f));
	ASSERT_PTR_EQ(coil_future_loop(f), loop);
	void *v;
	ASSERT_EQ(coil_future_result(f, &v), COIL_EINVALSTATE);
	ASSERT_EQ(coil_future_exception(f), COIL_EINVALSTATE);
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static int freed;
static void count_free(void *p)
{
	(void)p;
	freed++;
}

TEST(result_is_owned_and_freed_once)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	static int value;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_future_set_result(f, &value, count_free), 0);
	ASSERT(coil_future_done(f));
	/* Setting a done future is an invalid state, as in asyncio. */
	ASSERT_EQ(coil_future_set_result(f, NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_future_set_exception(f, -EIO, NULL), COIL_EINVALSTATE);
	ASSERT(!coil_future_cancel(f, NULL));
	void *v = NULL;
	ASSERT_EQ(coil_future_result(f, &v), 0);
	ASSERT_PTR_EQ(v, &value);
	ASSERT_EQ(coil_future_exception(f), 0);
	coil_future_ref(f);
	coil_future_release(f);
	ASSERT_EQ(freed, 0);
	coil_future_release(f);
	ASSERT_EQ(freed, 1);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

TEST(exception_carries_code_and_message)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_future_set_exception(f, 5, NULL), -EINVAL);
	ASSERT_EQ(coil_future_set_exception(f, -EPIPE, "peer went away"), 0);
	ASSERT_EQ(coil_future_result(f, NULL), -EPIPE);
	ASSERT_EQ(coil_future_exception(f), -EPIPE);
	ASSERT_STR_EQ(coil_future_error_message(f), "peer went away");
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

TEST(cancel_with_message)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT(coil_future_cancel(f, "no longer needed"));
	ASSERT(coil_future_cancelled(f));
	ASSERT(coil_future_done(f));
	ASSERT(!coil_future_cancel(f, NULL));
	ASSERT_EQ(coil_future_result(f, NULL), -ECANCELED);
	ASSERT_EQ(coil_future_exception(f), -ECANCELED);
	ASSERT_STR_EQ(coil_future_error_message(f), "no longer needed");
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static char log_[32];
static int nlog;

static void cb_a(coil_future_t *f, void *arg)
{
	ASSERT(coil_future_done(f));
	log_[nlog++] = (char)(intptr_t)arg;
}

static void stop_loop(coil_future_t *f, void *arg)
{
	(void)f;
	coil_loop_stop(arg);
}

TEST(done_callbacks_are_scheduled_in_order_never_inline)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_future_add_done_callback(f, cb_a, (void *)'1'), 0);
	ASSERT_EQ(coil_future_add_done_callback(f, cb_a, (void *)'2'), 0);
	ASSERT_EQ(coil_future_add_done_callback(f, cb_a, (void *)'1'), 0);
	ASSERT_EQ(coil_future_add_done_callback(f, cb_a, (void *)'3'), 0);
	/* remove_done_callback removes every match and says how many. */
	ASSERT_EQ(coil_future_remove_done_callback(f, cb_a, (void *)'1'), 2);
	ASSERT_EQ(coil_future_remove_done_callback(f, cb_a, (void *)'9'), 0);
	coil_future_add_done_callback(f, stop_loop, loop);
	coil_future_set_result(f, NULL, NULL);
	ASSERT_EQ(nlog, 0);
	/* Added after completion: scheduled at once, after the others. */
	coil_future_add_done_callback(f, cb_a, (void *)'4');
	ASSERT_EQ(coil_loop_run_forever(loop), 0);
	log_[nlog] = 0;
	ASSERT_STR_EQ(log_, "234");
	coil_future_release(f);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static int reported;
static int reported_err;
static const char *reported_msg;

static void handler(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	reported++;
	reported_err = ctx->error;
	reported_msg = ctx->message;
	ASSERT(ctx->future != NULL);
}

TEST(unretrieved_exception_is_reported_once)
{
	coil_loop_t *loop = new_loop();
	coil_loop_set_exception_handler(loop, handler, NULL);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	coil_future_set_exception(f, -EIO, NULL);
	coil_future_release(f);
	ASSERT_EQ(reported, 1);
	ASSERT_EQ(reported_err, -EIO);
	ASSERT_STR_EQ(reported_msg, "Future exception was never retrieved");
	/* Retrieved: not reported. */
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	coil_future_set_exception(f, -EIO, NULL);
	ASSERT_EQ(coil_future_exception(f), -EIO);
	coil_future_release(f);
	ASSERT_EQ(reported, 1);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

TEST(future_outlives_its_loop)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_loop_close(loop), 0);
	coil_future_set_result(f, NULL, NULL);
	ASSERT(coil_future_done(f));
	coil_future_release(f);
}

TEST(await_outside_a_task_is_refused)
{
	coil_loop_t *loop = new_loop();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_await(f, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_await(NULL, NULL), -EINVAL);
	coil_future_release(f);
	ASSERT_EQ(coil_future_create(&f, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

TEST_LIST(
	TEST_ENTRY(pending_future_refuses_result),
	TEST_ENTRY(result_is_owned_and_freed_once),
	TEST_ENTRY(exception_carries_code_and_message),
	TEST_ENTRY(cancel_with_message),
	TEST_ENTRY(done_callbacks_are_scheduled_in_order_never_inline),
	TEST_ENTRY(unretrieved_exception_is_reported_once),
	TEST_ENTRY(future_outlives_its_loop),
	TEST_ENTRY(await_outside_a_task_is_refused))
