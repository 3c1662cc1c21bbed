/* tests/test_compose.c: gather, wait, as_completed and shield
 * (coil/compose.h), on the virtual clock. */
#include "coil/coil.h"
#include "coil/compose.h"
#include "core.h"
#include "test.h"

#define MS ((int64_t)1000000)

static int run_main(coil_fn fn, void *arg)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

static int64_t t0;

static int64_t now_ms(void)
{
	return (coil_loop_time_ns(NULL) - t0) / MS;
}

static void clock_start(void)
{
	t0 = coil_loop_time_ns(NULL);
}

/* A child: sleeps, then returns value or fails with ret. */
struct job {
	int64_t delay_ms;
	int ret;
	intptr_t value;
	int cancelled;
	int finished;
	int64_t end_ms;
};

#define J(d, r, v) { .delay_ms = (d), .ret = (r), .value = (v) }

static int job_fn(void *arg, void **result)
{
	struct job *j = arg;
	int rc = coil_sleep_ns(j->delay_ms * MS);
	j->end_ms = now_ms();
	if (rc == -ECANCELED) {
		j->cancelled++;
		return rc;
	}
	j->finished = 1;
	if (j->ret) {
		coil_errorf("job %d failed", (int)j->value);
		return j->ret;
	}
	*result = (void *)j->value;
	return 0;
}

static void spawn_jobs(coil_task_t **t, coil_future_t **fs, struct job *j,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(coil_spawn(&t[i], job_fn, &j[i], NULL), 0);
		fs[i] = coil_task_future(t[i]);
	}
}

static void detach_all(coil_task_t **t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		coil_task_detach(t[i]);
}

/* Counts what the loop reports as "exception was never retrieved". */
static int unretrieved;

static void count_handler(coil_loop_t *loop, const coil_exc_context_t *ctx,
			  void *arg)
{
	(void)loop;
	(void)ctx;
	(void)arg;
	unretrieved++;
}

/* --- gather ------------------------------------------------------------- */

static int gather_order(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(30, 0, 1), J(10, 0, 2), J(20, 0, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[4];
	spawn_jobs(t, fs, j, 3);
	fs[3] = fs[1]; /* the same future twice */
	void *res[4];
	int err[4];
	ASSERT_EQ(coil_gather(fs, 4, res, err, 0), 0);
	ASSERT_EQ(now_ms(), 30);
	ASSERT_EQ((intptr_t)res[0], 1);
	ASSERT_EQ((intptr_t)res[1], 2);
	ASSERT_EQ((intptr_t)res[2], 3);
	ASSERT_EQ((intptr_t)res[3], 2);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(err[i], 0);
	detach_all(t, 3);
	return 0;
}

TEST(gather_returns_results_in_argument_order)
{
	ASSERT_EQ(run_main(gather_order, NULL), 0);
}

static int gather_first_error(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_loop_set_exception_handler(coil_get_running_loop(), count_handler, NULL);
	struct job j[4] = { J(10, 0, 1), J(20, -EIO, 2), J(50, 0, 3),
			    J(40, -EPIPE, 4) };
	coil_task_t *t[4];
	coil_future_t *fs[4];
	spawn_jobs(t, fs, j, 4);
	void *res[4];
	int err[4];
	ASSERT_EQ(coil_gather(fs, 4, res, err, 0), -EIO);
	ASSERT_EQ(now_ms(), 20);
	ASSERT_EQ((intptr_t)res[0], 1);
	ASSERT_EQ(err[0], 0);
	ASSERT(res[1] == NULL);
	ASSERT_EQ(err[1], -EIO);
	ASSERT_EQ(err[2], COIL_EINVALSTATE);
	ASSERT_EQ(err[3], COIL_EINVALSTATE);
	/* The others keep running, and a later failure counts as
	 * retrieved, as in asyncio. */
	detach_all(t, 4);
	ASSERT_EQ(coil_sleep_ns(100 * MS), 0);
	ASSERT_EQ(j[2].finished, 1);
	ASSERT_EQ(j[2].cancelled, 0);
	ASSERT_EQ(j[3].finished, 1);
	ASSERT_EQ(unretrieved, 0);
	return 0;
}

TEST(gather_returns_first_error_and_others_keep_running)
{
	ASSERT_EQ(run_main(gather_first_error, NULL), 0);
}

static int gather_return_exceptions(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(10, -EIO, 1), J(30, 0, 2), J(100, 0, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[3];
	spawn_jobs(t, fs, j, 3);
	coil_task_cancel(t[2], NULL);
	void *res[3];
	int err[3];
	ASSERT_EQ(coil_gather(fs, 3, res, err, COIL_GATHER_RETURN_EXCEPTIONS), 0);
	ASSERT_EQ(now_ms(), 30);
	ASSERT_EQ(err[0], -EIO);
	ASSERT(res[0] == NULL);
	ASSERT_EQ(err[1], 0);
	ASSERT_EQ((intptr_t)res[1], 2);
	ASSERT_EQ(err[2], -ECANCELED);
	ASSERT_STR_EQ(coil_future_error_message(fs[0]), "job 1 failed");
	detach_all(t, 3);
	return 0;
}

TEST(gather_return_exceptions_collects_every_outcome)
{
	ASSERT_EQ(run_main(gather_return_exceptions, NULL), 0);
}

static int gather_child_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct job j[2] = { J(10, 0, 1), J(30, 0, 2) };
	coil_task_t *t[2];
	coil_future_t *fs[2];
	spawn_jobs(t, fs, j, 2);
	coil_task_cancel(t[0], NULL);
	ASSERT_EQ(coil_gather(fs, 2, NULL, NULL, 0), -ECANCELED);
	/* The caller itself was not cancelled. */
	ASSERT_EQ(coil_task_cancelling(coil_current_task()), 0);
	ASSERT_EQ(coil_await(fs[1], NULL), 0);
	detach_all(t, 2);
	return 0;
}

TEST(gather_of_a_cancelled_child_returns_ecanceled)
{
	ASSERT_EQ(run_main(gather_child_cancelled, NULL), 0);
}

struct gatherer {
	coil_future_t *fs[2];
	int rc;
};

static int gatherer_fn(void *arg, void **result)
{
	(void)result;
	struct gatherer *g = arg;
	g->rc = coil_gather(g->fs, 2, NULL, NULL, 0);
	return g->rc;
}

static int gather_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[2] = { J(100, 0, 1), J(200, 0, 2) };
	coil_task_t *t[2], *g;
	struct gatherer st = { .rc = 1 };
	spawn_jobs(t, st.fs, j, 2);
	ASSERT_EQ(coil_spawn(&g, gatherer_fn, &st, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	ASSERT(coil_task_cancel(g, NULL));
	ASSERT_EQ(coil_await(coil_task_future(g), NULL), -ECANCELED);
	ASSERT_EQ(st.rc, -ECANCELED);
	ASSERT_EQ(now_ms(), 10);
	ASSERT_EQ(coil_await(st.fs[0], NULL), -ECANCELED);
	ASSERT_EQ(coil_await(st.fs[1], NULL), -ECANCELED);
	ASSERT_EQ(j[0].cancelled + j[1].cancelled, 2);
	coil_task_detach(g);
	detach_all(t, 2);
	/* A pending cancellation cancels the children as well. */
	spawn_jobs(t, st.fs, j, 2);
	coil_task_cancel(coil_current_task(), NULL);
	ASSERT_EQ(coil_gather(st.fs, 2, NULL, NULL, 0), -ECANCELED);
	coil_task_uncancel(coil_current_task());
	ASSERT_EQ(coil_await(st.fs[0], NULL), -ECANCELED);
	ASSERT_EQ(coil_await(st.fs[1], NULL), -ECANCELED);
	detach_all(t, 2);
	return 0;
}

TEST(cancelling_a_gather_cancels_its_children)
{
	ASSERT_EQ(run_main(gather_cancelled, NULL), 0);
}

static void set_value(void *arg)
{
	coil_future_set_result(arg, (void *)(intptr_t)5, NULL);
}

static int gather_plain(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_future_t *fs[3];
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_future_create(&fs[i], NULL), 0);
	coil_future_set_result(fs[0], (void *)(intptr_t)4, NULL);
	coil_loop_call_later(coil_get_running_loop(), 5 * MS, set_value, fs[1], NULL);
	coil_loop_call_later(coil_get_running_loop(), 7 * MS, set_value, fs[2], NULL);
	void *res[3];
	ASSERT_EQ(coil_gather(fs, 3, res, NULL, 0), 0);
	ASSERT_EQ((intptr_t)res[0], 4);
	ASSERT_EQ((intptr_t)res[2], 5);
	ASSERT_EQ(coil_gather(fs, 0, NULL, NULL, 0), 0);
	ASSERT_EQ(coil_gather(NULL, 1, NULL, NULL, 0), -EINVAL);
	ASSERT_EQ(coil_gather(fs, 3, NULL, NULL, 8), -EINVAL);
	coil_future_t *bad[2] = { fs[0], NULL };
	ASSERT_EQ(coil_gather(bad, 2, NULL, NULL, 0), -EINVAL);
	/* An error leaves no callback on a pending plain future. */
	coil_future_t *p[2];
	coil_future_create(&p[0], NULL);
	coil_future_create(&p[1], NULL);
	coil_future_set_exception(p[0], -EIO, NULL);
	ASSERT_EQ(coil_gather(p, 2, NULL, NULL, 0), -EIO);
	ASSERT(coil__list_empty(&p[1]->cbs));
	for (int i = 0; i < 3; i++)
		coil_future_release(fs[i]);
	coil_future_release(p[0]);
	coil_future_release(p[1]);
	return 0;
}

TEST(gather_takes_plain_and_done_futures_and_checks_arguments)
{
	ASSERT_EQ(run_main(gather_plain, NULL), 0);
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, loop), 0);
	ASSERT_EQ(coil_gather(&f, 1, NULL, NULL, 0), COIL_EINVALSTATE);
	bool d;
	ASSERT_EQ(coil_wait(&f, 1, &d, COIL_ALL_COMPLETED, 0), COIL_EINVALSTATE);
	coil_future_release(f);
	coil_loop_close(loop);
}

/* --- wait --------------------------------------------------------------- */

static int wait_modes(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(10, 0, 1), J(20, -EIO, 2), J(50, 0, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[3];
	bool done[3];
	spawn_jobs(t, fs, j, 3);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_FIRST_COMPLETED, COIL_FOREVER), 1);
	ASSERT_EQ(now_ms(), 10);
	ASSERT(done[0] && !done[1] && !done[2]);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_FIRST_EXCEPTION, COIL_FOREVER), 2);
	ASSERT_EQ(now_ms(), 20);
	ASSERT(done[0] && done[1] && !done[2]);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_ALL_COMPLETED, COIL_FOREVER), 3);
	ASSERT_EQ(now_ms(), 50);
	ASSERT(done[2]);
	ASSERT_EQ(j[2].cancelled, 0);
	ASSERT_EQ(coil_future_exception(fs[1]), -EIO);
	/* All done already: no wait at all. */
	ASSERT_EQ(coil_wait(fs, 3, NULL, COIL_FIRST_EXCEPTION, 0), 3);
	detach_all(t, 3);
	return 0;
}

TEST(wait_returns_when_its_condition_holds)
{
	ASSERT_EQ(run_main(wait_modes, NULL), 0);
}

static int wait_first_exception_ignores_cancel(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[2] = { J(10, 0, 1), J(30, 0, 2) };
	coil_task_t *t[2];
	coil_future_t *fs[2];
	spawn_jobs(t, fs, j, 2);
	coil_task_cancel(t[0], NULL);
	ASSERT_EQ(coil_wait(fs, 2, NULL, COIL_FIRST_EXCEPTION, COIL_FOREVER), 2);
	ASSERT_EQ(now_ms(), 30);
	detach_all(t, 2);
	return 0;
}

TEST(wait_first_exception_does_not_count_cancellations)
{
	ASSERT_EQ(run_main(wait_first_exception_ignores_cancel, NULL), 0);
}

static int wait_timeout(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(10, 0, 1), J(40, 0, 2), J(50, 0, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[3];
	bool done[3];
	spawn_jobs(t, fs, j, 3);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_ALL_COMPLETED, 0), 0);
	ASSERT_EQ(now_ms(), 0);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_ALL_COMPLETED, 25 * MS), 1);
	ASSERT_EQ(now_ms(), 25);
	ASSERT(done[0] && !done[1] && !done[2]);
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 2);
	/* The timeout cancelled nothing. */
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_ALL_COMPLETED, COIL_FOREVER), 3);
	ASSERT_EQ(j[1].cancelled + j[2].cancelled, 0);
	ASSERT_EQ(coil_wait(fs, 0, done, COIL_ALL_COMPLETED, 0), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 3, done, 7, 0), -EINVAL);
	ASSERT_EQ(coil_wait(fs, 3, done, COIL_ALL_COMPLETED, -5), -EINVAL);
	detach_all(t, 3);
	return 0;
}

TEST(wait_timeout_returns_the_count_and_cancels_nothing)
{
	ASSERT_EQ(run_main(wait_timeout, NULL), 0);
}

struct waiter_arg {
	coil_future_t *f;
	int rc;
};

static int waiter_fn(void *arg, void **result)
{
	(void)result;
	struct waiter_arg *w = arg;
	w->rc = coil_wait(&w->f, 1, NULL, COIL_ALL_COMPLETED, 1000 * MS);
	return 0;
}

static int wait_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct waiter_arg w = { .rc = 1 };
	coil_task_t *t;
	ASSERT_EQ(coil_future_create(&w.f, NULL), 0);
	ASSERT_EQ(coil_spawn(&t, waiter_fn, &w, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	ASSERT(!coil__list_empty(&w.f->cbs));
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT_EQ(w.rc, -ECANCELED);
	/* No ghost: neither a callback nor the timer is left. */
	ASSERT(coil__list_empty(&w.f->cbs));
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	ASSERT(!coil_future_done(w.f));
	coil_future_set_result(w.f, NULL, NULL);
	coil_future_release(w.f);
	coil_task_detach(t);
	return 0;
}

TEST(cancelled_wait_returns_ecanceled_and_leaves_no_waiter)
{
	ASSERT_EQ(run_main(wait_cancelled, NULL), 0);
}

/* --- as_completed ---------------------------------------------------------- */

static int ac_order(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(30, 0, 1), J(10, 0, 2), J(20, -EIO, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[4];
	spawn_jobs(t, fs, j, 3);
	ASSERT_EQ(coil_future_create(&fs[3], NULL), 0);
	coil_future_set_result(fs[3], NULL, NULL);
	coil_as_completed_t *it;
	ASSERT_EQ(coil_as_completed_create(&it, fs, 4, COIL_FOREVER), 0);
	coil_future_release(fs[3]); /* the iterator keeps its own */
	detach_all(t, 3);
	static const int want[4] = { 3, 1, 2, 0 };
	static const int64_t at[4] = { 0, 10, 20, 30 };
	for (int i = 0; i < 4; i++) {
		coil_future_t *f = NULL;
		ASSERT_EQ(coil_as_completed_next(it, &f), 0);
		ASSERT_PTR_EQ(f, fs[want[i]]);
		ASSERT_EQ(now_ms(), at[i]);
	}
	ASSERT_EQ(coil_future_exception(fs[2]), -EIO);
	coil_future_t *f;
	ASSERT_EQ(coil_as_completed_next(it, &f), COIL_EDONE);
	ASSERT_EQ(coil_as_completed_next(it, &f), COIL_EDONE);
	ASSERT_EQ(coil_as_completed_next(NULL, &f), -EINVAL);
	coil_as_completed_destroy(it);
	ASSERT_EQ(coil_as_completed_create(&it, NULL, 0, COIL_FOREVER), 0);
	ASSERT_EQ(coil_as_completed_next(it, &f), COIL_EDONE);
	coil_as_completed_destroy(it);
	ASSERT_EQ(coil_as_completed_create(&it, fs, 1, -3), -EINVAL);
	return 0;
}

TEST(as_completed_yields_in_completion_order)
{
	ASSERT_EQ(run_main(ac_order, NULL), 0);
}

static int ac_timeout(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(10, 0, 1), J(40, 0, 2), J(20, 0, 3) };
	coil_task_t *t[3];
	coil_future_t *fs[3], *f;
	spawn_jobs(t, fs, j, 3);
	coil_as_completed_t *it;
	ASSERT_EQ(coil_as_completed_create(&it, fs, 3, 30 * MS), 0);
	ASSERT_EQ(coil_as_completed_next(it, &f), 0);
	ASSERT_PTR_EQ(f, fs[0]);
	/* Job 3 completes before the deadline though nobody waits. */
	ASSERT_EQ(coil_sleep_ns(15 * MS), 0);
	ASSERT_EQ(coil_as_completed_next(it, &f), 0);
	ASSERT_PTR_EQ(f, fs[2]);
	ASSERT_EQ(now_ms(), 25);
	ASSERT_EQ(coil_as_completed_next(it, &f), -ETIMEDOUT);
	ASSERT_EQ(now_ms(), 30);
	ASSERT_EQ(coil_as_completed_next(it, &f), -ETIMEDOUT);
	/* The timeout cancels nothing, and later completions are not
	 * yielded. */
	ASSERT_EQ(coil_await(fs[1], NULL), 0);
	ASSERT_EQ(coil_as_completed_next(it, &f), -ETIMEDOUT);
	coil_as_completed_destroy(it);
	detach_all(t, 3);
	return 0;
}

TEST(as_completed_total_timeout)
{
	ASSERT_EQ(run_main(ac_timeout, NULL), 0);
}

struct ac_user {
	coil_as_completed_t *it;
	int rc;
	coil_future_t *got;
};

static int ac_user_fn(void *arg, void **result)
{
	(void)result;
	struct ac_user *u = arg;
	u->rc = coil_as_completed_next(u->it, &u->got);
	return 0;
}

static int ac_cancel(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct job j = J(10, 0, 1);
	coil_task_t *t, *u;
	coil_future_t *fs[1], *f;
	spawn_jobs(&t, fs, &j, 1);
	struct ac_user st = { .rc = 1 };
	ASSERT_EQ(coil_as_completed_create(&st.it, fs, 1, 100 * MS), 0);
	ASSERT_EQ(coil_spawn(&u, ac_user_fn, &st, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	/* A second task cannot wait on the same iterator. */
	ASSERT_EQ(coil_as_completed_next(st.it, &f), -EBUSY);
	coil_task_cancel(u, NULL);
	ASSERT_EQ(coil_await(coil_task_future(u), NULL), 0);
	ASSERT_EQ(st.rc, -ECANCELED);
	coil_task_detach(u);
	/* Nothing was lost: the next call yields the future. */
	ASSERT_EQ(coil_as_completed_next(st.it, &f), 0);
	ASSERT_PTR_EQ(f, fs[0]);
	ASSERT_EQ(coil_as_completed_next(st.it, &f), COIL_EDONE);
	coil_as_completed_destroy(st.it);
	coil_task_detach(t);
	return 0;
}

TEST(as_completed_cancel_in_next_loses_nothing)
{
	ASSERT_EQ(run_main(ac_cancel, NULL), 0);
}

static int ac_destroy(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* Destroyed while a task waits in next: it gets COIL_ECLOSED. */
	struct ac_user st = { .rc = 1 };
	coil_task_t *u;
	coil_future_t *p;
	ASSERT_EQ(coil_future_create(&p, NULL), 0);
	ASSERT_EQ(coil_as_completed_create(&st.it, &p, 1, 100 * MS), 0);
	ASSERT_EQ(coil_spawn(&u, ac_user_fn, &st, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	coil_as_completed_destroy(st.it);
	ASSERT_EQ(coil_await(coil_task_future(u), NULL), 0);
	ASSERT_EQ(st.rc, COIL_ECLOSED);
	ASSERT(coil__list_empty(&p->cbs));
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	coil_task_detach(u);
	coil_future_release(p);
	return 0;
}

TEST(as_completed_destroyed_while_waited_on)
{
	ASSERT_EQ(run_main(ac_destroy, NULL), 0);
}

/* --- shield -------------------------------------------------------------- */

struct shielder {
	coil_future_t *f;
	int rc;
};

static int shielder_fn(void *arg, void **result)
{
	(void)result;
	struct shielder *s = arg;
	s->rc = coil_shield(s->f, NULL);
	return 0;
}

static int shield_test(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_loop_set_exception_handler(coil_get_running_loop(), count_handler, NULL);
	struct job j[2] = { J(50, 0, 7), J(50, -EIO, 8) };
	coil_task_t *t[2], *s[2];
	struct shielder st[2];
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(coil_spawn(&t[i], job_fn, &j[i], NULL), 0);
		st[i].f = coil_task_future(t[i]);
		st[i].rc = 1;
		ASSERT_EQ(coil_spawn(&s[i], shielder_fn, &st[i], NULL), 0);
	}
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	for (int i = 0; i < 2; i++) {
		coil_task_cancel(s[i], NULL);
		ASSERT_EQ(coil_await(coil_task_future(s[i]), NULL), 0);
		ASSERT_EQ(st[i].rc, -ECANCELED);
		ASSERT(!coil_future_done(st[i].f));
		coil_task_detach(s[i]);
	}
	ASSERT_EQ(now_ms(), 10);
	detach_all(t, 2);
	ASSERT_EQ(coil_sleep_ns(100 * MS), 0);
	/* The shielded work ran to its end; its failure counts as
	 * retrieved. */
	ASSERT_EQ(j[0].finished, 1);
	ASSERT_EQ(j[0].cancelled + j[1].cancelled, 0);
	ASSERT_EQ(j[1].finished, 1);
	ASSERT_EQ(unretrieved, 0);
	void *v;
	coil_future_t *f;
	coil_future_create(&f, NULL);
	coil_future_set_result(f, (void *)(intptr_t)3, NULL);
	ASSERT_EQ(coil_shield(f, &v), 0);
	ASSERT_EQ((intptr_t)v, 3);
	coil_future_release(f);
	return 0;
}

TEST(shield_keeps_the_future_running_when_the_awaiter_is_cancelled)
{
	ASSERT_EQ(run_main(shield_test, NULL), 0);
}

TEST_LIST(
	TEST_ENTRY(gather_returns_results_in_argument_order),
	TEST_ENTRY(gather_returns_first_error_and_others_keep_running),
	TEST_ENTRY(gather_return_exceptions_collects_every_outcome),
	TEST_ENTRY(gather_of_a_cancelled_child_returns_ecanceled),
	TEST_ENTRY(cancelling_a_gather_cancels_its_children),
	TEST_ENTRY(gather_takes_plain_and_done_futures_and_checks_arguments),
	TEST_ENTRY(wait_returns_when_its_condition_holds),
	TEST_ENTRY(wait_first_exception_does_not_count_cancellations),
	TEST_ENTRY(wait_timeout_returns_the_count_and_cancels_nothing),
	TEST_ENTRY(cancelled_wait_returns_ecanceled_and_leaves_no_waiter),
	TEST_ENTRY(as_completed_yields_in_completion_order),
	TEST_ENTRY(as_completed_total_timeout),
	TEST_ENTRY(as_completed_cancel_in_next_loses_nothing),
	TEST_ENTRY(as_completed_destroyed_while_waited_on),
	TEST_ENTRY(shield_keeps_the_future_running_when_the_awaiter_is_cancelled)
)
