/* tests/test_task.c: tasks: spawn, await, cancel, factories, coil_run. */
#include "coil/coil.h"
#include "stack.h"
#include "test.h"

static coil_runtime_opts_t vopts(void)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	return o;
}

static int run_main(coil_fn fn, void *arg, void **result)
{
	coil_runtime_opts_t o = vopts();
	int rc = coil_run(fn, arg, result, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

static int add_one(void *arg, void **result)
{
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

static int spawn_and_await(void *arg, void **result)
{
	(void)arg;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, add_one, (void *)41, NULL), 0);
	ASSERT(!coil_future_done(coil_task_future(t)));
	ASSERT_PTR_EQ(coil_future_task(coil_task_future(t)), t);
	void *v = NULL;
	ASSERT_EQ(coil_await(coil_task_future(t), &v), 0);
	ASSERT_EQ((intptr_t)v, 42);
	ASSERT(coil_task_coro(t) == NULL);
	coil_task_detach(t);
	*result = (void *)7;
	return 0;
}

TEST(spawn_await_and_run_return_results)
{
	void *r = NULL;
	ASSERT_EQ(run_main(spawn_and_await, NULL, &r), 0);
	ASSERT_EQ((intptr_t)r, 7);
}

static int fails(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_errorf("disk %d is on fire", 3);
	return -EIO;
}

static int await_failure(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	coil_spawn(&t, fails, NULL, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -EIO);
	ASSERT_STR_EQ(coil_future_error_message(coil_task_future(t)), "disk 3 is on fire");
	coil_task_detach(t);
	return -EPIPE;
}

TEST(errors_and_messages_propagate)
{
	ASSERT_EQ(run_main(await_failure, NULL, NULL), -EPIPE);
}

static int depth_sum;

static int await_deep(int depth)
{
	if (depth == 0)
		return coil_sleep(0.5);
	volatile char pad[256];
	pad[0] = 1;
	int rc = await_deep(depth - 1);
	depth_sum += pad[0];
	return rc;
}

static int ticker(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (intptr_t i = 0; i < 3; i++) {
		/* A nested coroutine that awaits: the whole task suspends. */
		if (coil_sleep(1) != 0)
			return -EIO;
		coil_coro_yield((void *)i, NULL);
	}
	return 0;
}

static int awaits_anywhere(void *arg, void **result)
{
	(void)arg;
	(void)result;
	double t0 = coil_loop_time(NULL);
	ASSERT_EQ(await_deep(20), 0);
	ASSERT_EQ(depth_sum, 20);
	coil_coro_t *c;
	ASSERT_EQ(coil_coro_create(&c, ticker, NULL, NULL), 0);
	void *v;
	for (intptr_t i = 0; i < 3; i++) {
		ASSERT_EQ(coil_coro_resume(c, NULL, &v), 0);
		ASSERT_EQ((intptr_t)v, i);
	}
	ASSERT_EQ(coil_coro_resume(c, NULL, &v), COIL_EDONE);
	coil_coro_destroy(c);
	ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, 3.5, 1e-6);
	return 0;
}

TEST(await_at_any_call_depth_and_inside_nested_coroutines)
{
	ASSERT_EQ(run_main(awaits_anywhere, NULL, NULL), 0);
}

typedef struct awaiter {
	coil_coro_t *c;
	coil_future_t *f;
} awaiter_t;

/* Awaits p->f inside the task that resumes it. */
static int awaits_a_future(void *arg, void **result)
{
	awaiter_t *p = arg;
	return coil_await(p->f, result);
}

/* A task: resumes the coroutine, which suspends the task in its await. */
static int resumes_the_awaiter(void *arg, void **result)
{
	awaiter_t *p = arg;
	(void)result;
	return coil_coro_resume(p->c, NULL, NULL);
}

static int destroys_an_awaiting_coroutine(void *arg, void **result)
{
	(void)arg;
	(void)result;
	awaiter_t p;
	coil_task_t *t;
	ASSERT_EQ(coil_future_create(&p.f, NULL), 0);
	ASSERT_EQ(coil_coro_create(&p.c, awaits_a_future, &p, NULL), 0);
	ASSERT_EQ(coil_spawn(&t, resumes_the_awaiter, &p, NULL), 0);
	while (coil_coro_state(p.c) != COIL_CORO_SUSPENDED)
		ASSERT_EQ(coil_sleep(0), 0);
	/* Freeing it would pull the stack from under the task. */
	coil_coro_destroy(p.c);
	ASSERT_EQ(coil_coro_state(p.c), COIL_CORO_SUSPENDED);
	ASSERT_EQ(coil_future_set_result(p.f, (void *)5, NULL), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), COIL_EDONE);
	coil_task_detach(t);
	ASSERT_EQ(coil_coro_state(p.c), COIL_CORO_CLOSED);
	coil_coro_destroy(p.c);
	coil_future_release(p.f);
	return 0;
}

TEST(destroy_of_a_coroutine_suspended_in_an_await_is_refused)
{
	ASSERT_EQ(run_main(destroys_an_awaiting_coroutine, NULL, NULL), 0);
}

static int ran_flag;

static int sets_flag(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ran_flag = 1;
	return 0;
}

static int cancel_before_start(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	coil_spawn(&t, sets_flag, NULL, NULL);
	ASSERT(coil_task_cancel(t, "too late"));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	ASSERT_STR_EQ(coil_future_error_message(coil_task_future(t)), "too late");
	ASSERT(!coil_task_cancel(t, NULL));
	coil_task_detach(t);
	ASSERT_EQ(ran_flag, 0);
	return 0;
}

TEST(task_cancelled_before_start_never_runs)
{
	ASSERT_EQ(run_main(cancel_before_start, NULL, NULL), 0);
}

static int stubborn(void *arg, void **result)
{
	(void)arg;
	/* Cancelled during the sleep: catch it, ignore it, carry on. */
	int rc = coil_sleep(10);
	ASSERT_EQ(rc, -ECANCELED);
	ASSERT_EQ(coil_task_cancelling(coil_current_task()), 1);
	ASSERT_EQ(coil_task_uncancel(coil_current_task()), 0);
	ASSERT_EQ(coil_sleep(1), 0);
	*result = (void *)99;
	return 0;
}

static int cancel_sleeper(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	coil_spawn(&t, stubborn, NULL, NULL);
	ASSERT_EQ(coil_sleep(1), 0);
	ASSERT(coil_task_cancel(t, NULL));
	void *v;
	ASSERT_EQ(coil_await(coil_task_future(t), &v), 0);
	ASSERT_EQ((intptr_t)v, 99);
	coil_task_detach(t);
	return 0;
}

TEST(cancel_during_sleep_caught_and_ignored)
{
	ASSERT_EQ(run_main(cancel_sleeper, NULL, NULL), 0);
}

static int gives_up(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_sleep(10); /* -ECANCELED: ends cancelled */
}

static int cancel_propagates(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t, *self = coil_current_task();
	coil_spawn(&t, gives_up, NULL, NULL);
	coil_sleep(0);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	/* The awaiter itself was not cancelled: cancelling() tells. */
	ASSERT_EQ(coil_task_cancelling(self), 0);
	coil_task_detach(t);
	/* A task cancelling itself: its next await returns -ECANCELED. */
	coil_task_cancel(self, NULL);
	ASSERT_EQ(coil_sleep(1), -ECANCELED);
	ASSERT_EQ(coil_task_cancelling(self), 1);
	coil_task_uncancel(self);
	ASSERT_EQ(coil_await(coil_task_future(self), NULL), -EDEADLK);
	return 0;
}

TEST(cancellation_ends_task_cancelled_and_is_told_apart)
{
	ASSERT_EQ(run_main(cancel_propagates, NULL, NULL), 0);
}

static int reports;

static void count_reports(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	ASSERT_STR_EQ(ctx->message, "Task exception was never retrieved");
	ASSERT_EQ(ctx->error, -EIO);
	ASSERT(ctx->task != NULL);
	reports++;
}

static int leaves_error_behind(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_set_exception_handler(coil_get_running_loop(), count_reports, NULL);
	coil_spawn(NULL, fails, NULL, NULL);
	coil_sleep(1);
	return 0;
}

TEST(unretrieved_task_error_goes_to_the_handler)
{
	ASSERT_EQ(run_main(leaves_error_behind, NULL, NULL), 0);
	ASSERT_EQ(reports, 1);
}

static int factory_calls;

static int my_factory(coil_loop_t *loop, coil_task_t **out, coil_fn fn,
		      void *arg, const coil_spawn_opts_t *opts, void *farg)
{
	ASSERT_PTR_EQ(farg, &factory_calls);
	factory_calls++;
	coil_spawn_opts_t o = opts ? *opts : (coil_spawn_opts_t){ 0 };
	o.name = "made-by-factory";
	return coil_task_factory_default(loop, out, fn, arg, &o);
}

static int use_factory(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_t *loop = coil_get_running_loop();
	ASSERT(coil_loop_get_task_factory(loop, NULL) == NULL);
	coil_loop_set_task_factory(loop, my_factory, &factory_calls);
	void *farg;
	ASSERT(coil_loop_get_task_factory(loop, &farg) == my_factory);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, add_one, NULL, NULL), 0);
	ASSERT_STR_EQ(coil_task_get_name(t), "made-by-factory");
	coil_loop_set_task_factory(loop, NULL, NULL);
	coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	ASSERT_EQ(factory_calls, 1);
	return 0;
}

TEST(task_factory_set_get_and_used)
{
	ASSERT_EQ(run_main(use_factory, NULL, NULL), 0);
}

static int sleeps_once(void *arg, void **result)
{
	(void)result;
	int *done = arg;
	if (coil_sleep(1) == 0)
		(*done)++;
	return 0;
}

static int hundred_thousand(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int n = test_heavy_tools() ? 2000 : 100000;
	int done = 0;
	for (int i = 0; i < n; i++)
		ASSERT_EQ(coil_spawn(NULL, sleeps_once, &done, NULL), 0);
	ASSERT_EQ(coil_all_tasks(NULL, NULL, 0), (size_t)n + 1);
	coil_sleep(2);
	ASSERT_EQ(done, n);
	ASSERT_EQ(coil_all_tasks(NULL, NULL, 0), 1);
	return 0;
}

TEST(hundred_thousand_tasks_sleep_to_completion)
{
	ASSERT_EQ(run_main(hundred_thousand, NULL, NULL), 0);
}

static int names_and_listing(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *self = coil_current_task();
	ASSERT(self != NULL);
	char want[32];
	snprintf(want, sizeof(want), "Task-%llu", (unsigned long long)coil_task_id(self));
	ASSERT_STR_EQ(coil_task_get_name(self), want);
	coil_spawn_opts_t o = { .name = "worker" };
	coil_task_t *t;
	coil_spawn(&t, add_one, NULL, &o);
	ASSERT_STR_EQ(coil_task_get_name(t), "worker");
	ASSERT_EQ(coil_task_set_name(t, "renamed"), 0);
	ASSERT_STR_EQ(coil_task_get_name(t), "renamed");
	coil_task_t *all[4];
	ASSERT_EQ(coil_all_tasks(NULL, all, 4), 2);
	ASSERT(all[0] == self || all[1] == self);
	coil_task_detach(t);
	return 0;
}

TEST(names_ids_current_and_all_tasks)
{
	ASSERT_EQ(run_main(names_and_listing, NULL, NULL), 0);
	ASSERT(coil_current_task() == NULL);
}

static int cleaned;

static int forever_sleeper(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = coil_sleep(1e6);
	if (rc == -ECANCELED)
		cleaned++;
	return rc;
}

static int leaves_tasks(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int i = 0; i < 10; i++)
		coil_spawn(NULL, forever_sleeper, NULL, NULL);
	coil_spawn(NULL, sets_flag, NULL, NULL);
	return 0;
}

TEST(run_cancels_leftover_tasks_at_close)
{
	ran_flag = 0;
	ASSERT_EQ(run_main(leaves_tasks, NULL, NULL), 0);
	ASSERT_EQ(cleaned, 10);
	/* As in asyncio, its first step was queued before the main task's
	 * completion stopped the loop, so it ran. */
	ASSERT_EQ(ran_flag, 1);
}

static int free_count;
static void free_box(void *p)
{
	free(p);
	free_count++;
}

static int boxed(void *arg, void **result)
{
	(void)arg;
	int *p = malloc(sizeof(int));
	*p = 5;
	*result = p;
	return 0;
}

static int owns_results(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_spawn_opts_t o = { .result_dtor = free_box };
	coil_task_t *t;
	coil_spawn(&t, boxed, NULL, &o);
	void *v;
	ASSERT_EQ(coil_await(coil_task_future(t), &v), 0);
	ASSERT_EQ(*(int *)v, 5);
	coil_task_detach(t);
	ASSERT_EQ(free_count, 1);
	return 0;
}

TEST(task_result_destructor_runs_with_the_last_reference)
{
	ASSERT_EQ(run_main(owns_results, NULL, NULL), 0);
}

static int loop_api_task(void *arg, void **result)
{
	(void)result;
	*(int *)arg = 1;
	return coil_sleep(0.25);
}

TEST(run_until_complete_on_a_new_loop)
{
	coil_runtime_opts_t o = vopts();
	coil_loop_t *loop;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	int flag = 0;
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, loop_api_task, &flag, NULL), 0);
	double t0 = coil_loop_time(loop);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	ASSERT_EQ(flag, 1);
	ASSERT_DBL_NEAR(coil_loop_time(loop) - t0, 0.25, 1e-9);
	coil_task_detach(t);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

static int million_not_started(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int n = test_heavy_tools() ? 20000 : 1000000;
	size_t live = coil__stack_live_count();
	for (int i = 0; i < n; i++)
		ASSERT_EQ(coil_spawn(NULL, add_one, NULL, NULL), 0);
	/* Spawned but not started: they hold no stack yet. */
	ASSERT_EQ(coil__stack_live_count(), live);
	ASSERT_EQ(coil_all_tasks(NULL, NULL, 0), (size_t)n + 1);
	return 0;
}

TEST(a_million_spawned_tasks_take_no_stacks_until_they_run)
{
	ASSERT_EQ(run_main(million_not_started, NULL, NULL), 0);
	ASSERT_EQ(coil__stack_live_count(), 0);
}

static int deep(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	return n ? deep(n - 1) + pad[0] : 0;
}

static int recurse_forever(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return deep(1 << 20);
}

static int spawn_recursor(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_spawn_opts_t o = { .name = "recursor", .stack_size = 32 * 1024 };
	coil_task_t *t;
	coil_spawn(&t, recurse_forever, NULL, &o);
	coil_await(coil_task_future(t), NULL);
	return 0;
}

TEST(task_stack_overflow_is_reported_with_its_name)
{
	if (getenv("COIL_VALGRIND"))
		TEST_SKIP("valgrind reports the overflow itself");
	int fds[2];
	ASSERT_EQ(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		run_main(spawn_recursor, NULL, NULL);
		_exit(0);
	}
	close(fds[1]);
	char buf[512] = { 0 };
	size_t len = 0;
	ssize_t k;
	while ((k = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)k;
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	ASSERT(strstr(buf, "coil: task recursor overflowed its 32 KiB stack") != NULL);
}

static int sleeps_twice(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_sleep(10), -ECANCELED);
	/* Cancelled twice before it ran: delivered once, counted twice. */
	ASSERT_EQ(coil_task_cancelling(coil_current_task()), 2);
	ASSERT_EQ(coil_sleep(1), 0);
	return 0;
}

static int cancel_twice(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	coil_spawn(&t, sleeps_twice, NULL, NULL);
	coil_sleep(1);
	coil_task_cancel(t, NULL);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	return 0;
}

TEST(two_cancels_before_the_task_runs_deliver_one)
{
	ASSERT_EQ(run_main(cancel_twice, NULL, NULL), 0);
}

TEST_LIST(
	TEST_ENTRY(spawn_await_and_run_return_results),
	TEST_ENTRY(errors_and_messages_propagate),
	TEST_ENTRY(await_at_any_call_depth_and_inside_nested_coroutines),
	TEST_ENTRY(destroy_of_a_coroutine_suspended_in_an_await_is_refused),
	TEST_ENTRY(task_cancelled_before_start_never_runs),
	TEST_ENTRY(cancel_during_sleep_caught_and_ignored),
	TEST_ENTRY(cancellation_ends_task_cancelled_and_is_told_apart),
	TEST_ENTRY(unretrieved_task_error_goes_to_the_handler),
	TEST_ENTRY(task_factory_set_get_and_used),
	TEST_ENTRY(hundred_thousand_tasks_sleep_to_completion),
	TEST_ENTRY(names_ids_current_and_all_tasks),
	TEST_ENTRY(run_cancels_leftover_tasks_at_close),
	TEST_ENTRY(task_result_destructor_runs_with_the_last_reference),
	TEST_ENTRY(run_until_complete_on_a_new_loop),
	TEST_ENTRY(a_million_spawned_tasks_take_no_stacks_until_they_run),
	TEST_ENTRY(task_stack_overflow_is_reported_with_its_name),
	TEST_ENTRY(two_cancels_before_the_task_runs_deliver_one))
