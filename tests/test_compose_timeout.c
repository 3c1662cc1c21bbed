/* tests/test_compose_timeout.c: coil_wait_for and timeout scopes
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

static coil_task_t *self(void)
{
	return coil_current_task();
}

/*
 * A child: sleeps delay_ms and returns value. Cancelled, it cleans up for
 * cleanup_ms, then ends cancelled, or returns its value anyway with
 * ignore_cancel.
 */
struct job {
	int64_t delay_ms;
	int64_t cleanup_ms;
	bool ignore_cancel;
	intptr_t value;
	int cancelled;
	int64_t end_ms;
};

static int job_fn(void *arg, void **result)
{
	struct job *j = arg;
	int rc = coil_sleep_ns(j->delay_ms * MS);
	if (rc == -ECANCELED) {
		j->cancelled++;
		if (j->cleanup_ms)
			coil_sleep_ns(j->cleanup_ms * MS);
		if (!j->ignore_cancel) {
			j->end_ms = now_ms();
			return rc;
		}
	}
	j->end_ms = now_ms();
	*result = (void *)j->value;
	return 0;
}

static coil_task_t *spawn_job(struct job *j)
{
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, job_fn, j, NULL), 0);
	return t;
}

/* --- wait_for ------------------------------------------------------------ */

static int wait_for_in_time(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j = { .delay_ms = 10, .value = 42 };
	coil_task_t *t = spawn_job(&j);
	void *v = NULL;
	ASSERT_EQ(coil_wait_for(coil_task_future(t), 50 * MS, &v), 0);
	ASSERT_EQ((intptr_t)v, 42);
	ASSERT_EQ(now_ms(), 10);
	/* The scope's timer is gone, no cancellation is left over. */
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(100 * MS), 0);
	coil_task_detach(t);
	return 0;
}

TEST(wait_for_returns_the_result_in_time)
{
	ASSERT_EQ(run_main(wait_for_in_time, NULL), 0);
}

static int wait_for_timeout(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j = { .delay_ms = 100, .cleanup_ms = 20 };
	coil_task_t *t = spawn_job(&j);
	ASSERT_EQ(coil_wait_for(coil_task_future(t), 10 * MS, NULL), -ETIMEDOUT);
	/* It cancelled the task and waited for its cleanup. */
	ASSERT_EQ(now_ms(), 30);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	ASSERT_EQ(j.cancelled, 1);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	coil_task_detach(t);
	/* A plain future that never completes is cancelled. */
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	ASSERT_EQ(coil_wait_for(f, 5 * MS, NULL), -ETIMEDOUT);
	ASSERT(coil_future_cancelled(f));
	coil_future_release(f);
	return 0;
}

TEST(wait_for_timeout_cancels_and_waits_for_the_future)
{
	ASSERT_EQ(run_main(wait_for_timeout, NULL), 0);
}

static int wait_for_race(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	/* The task catches the cancellation and completes anyway. */
	struct job j = { .delay_ms = 100, .cleanup_ms = 5, .ignore_cancel = true,
			 .value = 9 };
	coil_task_t *t = spawn_job(&j);
	void *v = NULL;
	ASSERT_EQ(coil_wait_for(coil_task_future(t), 10 * MS, &v), 0);
	ASSERT_EQ((intptr_t)v, 9);
	ASSERT_EQ(now_ms(), 15);
	coil_task_detach(t);
	/* The task completes in the very iteration the deadline fires. */
	struct job k = { .delay_ms = 10, .value = 8 };
	t = spawn_job(&k);
	v = NULL;
	ASSERT_EQ(coil_wait_for(coil_task_future(t), 10 * MS, &v), 0);
	ASSERT_EQ((intptr_t)v, 8);
	ASSERT_EQ(k.cancelled, 0);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	coil_task_detach(t);
	return 0;
}

TEST(wait_for_completion_racing_the_timeout_returns_the_result)
{
	ASSERT_EQ(run_main(wait_for_race, NULL), 0);
}

struct wf {
	coil_future_t *f;
	int64_t timeout;
	int rc;
	int cancelling;
	int64_t end_ms;
};

static int wf_fn(void *arg, void **result)
{
	(void)result;
	struct wf *w = arg;
	w->rc = coil_wait_for(w->f, w->timeout, NULL);
	w->cancelling = coil_task_cancelling(self());
	w->end_ms = now_ms();
	return 0;
}

static int wait_for_caller_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j = { .delay_ms = 100, .cleanup_ms = 20 };
	coil_task_t *t = spawn_job(&j), *w;
	struct wf st = { .f = coil_task_future(t), .timeout = 1000 * MS, .rc = 1 };
	ASSERT_EQ(coil_spawn(&w, wf_fn, &st, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	coil_task_cancel(w, NULL);
	ASSERT_EQ(coil_await(coil_task_future(w), NULL), 0);
	ASSERT_EQ(st.rc, -ECANCELED);
	ASSERT_EQ(st.cancelling, 1);
	ASSERT_EQ(st.end_ms, 30);
	ASSERT(coil_future_cancelled(st.f));
	coil_task_detach(w);
	coil_task_detach(t);
	/* Even when the future ignores the cancellation, the caller's own
	 * cancellation is what it reports. */
	struct job k = { .delay_ms = 100, .ignore_cancel = true, .value = 1 };
	t = spawn_job(&k);
	st.f = coil_task_future(t);
	ASSERT_EQ(coil_spawn(&w, wf_fn, &st, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	coil_task_cancel(w, NULL);
	ASSERT_EQ(coil_await(coil_task_future(w), NULL), 0);
	ASSERT_EQ(st.rc, -ECANCELED);
	ASSERT_EQ(coil_future_result(st.f, NULL), 0);
	coil_task_detach(w);
	coil_task_detach(t);
	return 0;
}

TEST(wait_for_cancelled_caller_cancels_the_future)
{
	ASSERT_EQ(run_main(wait_for_caller_cancelled, NULL), 0);
}

static int wait_for_edges(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_future_t *f;
	void *v;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	ASSERT_EQ(coil_wait_for(f, 0, NULL), -ETIMEDOUT);
	coil_future_release(f);
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	coil_future_set_result(f, (void *)(intptr_t)3, NULL);
	ASSERT_EQ(coil_wait_for(f, 0, &v), 0);
	ASSERT_EQ((intptr_t)v, 3);
	ASSERT_EQ(coil_wait_for(f, COIL_FOREVER, &v), 0);
	ASSERT_EQ(coil_wait_for(NULL, 0, &v), -EINVAL);
	ASSERT_EQ(coil_wait_for(f, -7, &v), -EINVAL);
	ASSERT_EQ(coil_wait_for(coil_task_future(self()), 10, &v), -EDEADLK);
	/* A pending cancellation is delivered, even on a done future. */
	coil_task_cancel(self(), NULL);
	ASSERT_EQ(coil_wait_for(f, 10 * MS, &v), -ECANCELED);
	coil_task_uncancel(self());
	coil_future_release(f);
	/* An error of the future is returned as it is. */
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	coil_future_set_exception(f, -EIO, NULL);
	ASSERT_EQ(coil_wait_for(f, 10 * MS, &v), -EIO);
	coil_future_release(f);
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	return 0;
}

TEST(wait_for_edge_cases)
{
	ASSERT_EQ(run_main(wait_for_edges, NULL), 0);
	coil_future_t *f = NULL;
	ASSERT_EQ(coil_wait_for(f, 0, NULL), -EINVAL);
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(&t, MS), COIL_EINVALSTATE);
}

/* --- timeout scopes ---------------------------------------------------------- */

static int scope_expires(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(&t, 10 * MS), 0);
	ASSERT_EQ(coil_timeout_when(&t), t0 + 10 * MS);
	ASSERT(!coil_timeout_expired(&t));
	ASSERT_EQ(coil_sleep_ns(100 * MS), -ECANCELED);
	ASSERT_EQ(now_ms(), 10);
	ASSERT(coil_timeout_expired(&t));
	ASSERT_EQ(coil_timeout_reschedule(&t, MS), COIL_EINVALSTATE);
	ASSERT_EQ(coil_timeout_exit(&t), -ETIMEDOUT);
	ASSERT(coil_timeout_expired(&t));
	ASSERT_EQ(coil_timeout_exit(&t), COIL_EINVALSTATE);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	/* Not expired: 0, and the timer is gone. */
	ASSERT_EQ(coil_timeout_enter(&t, 10 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(5 * MS), 0);
	ASSERT_EQ(coil_timeout_exit(&t), 0);
	ASSERT(!coil_timeout_expired(&t));
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	/* Expired while the task never awaited: the cancellation is
	 * withdrawn, the next await is not disturbed. */
	ASSERT_EQ(coil_timeout_enter(&t, 0), 0);
	ASSERT_EQ(coil_sleep_ns(0), 0);
	ASSERT(coil_timeout_expired(&t));
	ASSERT_EQ(coil_timeout_exit(&t), -ETIMEDOUT);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	return 0;
}

TEST(timeout_scope_cancels_at_the_deadline_and_reports_etimedout)
{
	ASSERT_EQ(run_main(scope_expires, NULL), 0);
}

static int scopes_nested(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_timeout_t outer, inner;
	ASSERT_EQ(coil_timeout_enter(&outer, 50 * MS), 0);
	ASSERT_EQ(coil_timeout_enter(&inner, 10 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(100 * MS), -ECANCELED);
	ASSERT_EQ(coil_timeout_exit(&inner), -ETIMEDOUT);
	ASSERT_EQ(now_ms(), 10);
	ASSERT_EQ(coil_sleep_ns(20 * MS), 0);
	ASSERT_EQ(coil_timeout_exit(&outer), 0);
	ASSERT(!coil_timeout_expired(&outer));
	/* The outer one expires first: only it reports the timeout. */
	ASSERT_EQ(coil_timeout_enter(&outer, 10 * MS), 0);
	ASSERT_EQ(coil_timeout_enter(&inner, 50 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(100 * MS), -ECANCELED);
	ASSERT_EQ(coil_timeout_exit(&inner), 0);
	ASSERT(!coil_timeout_expired(&inner));
	ASSERT_EQ(coil_timeout_exit(&outer), -ETIMEDOUT);
	ASSERT_EQ(now_ms(), 40);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	return 0;
}

TEST(nested_timeout_scopes_report_only_their_own_timeout)
{
	ASSERT_EQ(run_main(scopes_nested, NULL), 0);
}

static int scope_reschedule(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(&t, 10 * MS), 0);
	ASSERT_EQ(coil_timeout_reschedule(&t, 50 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(30 * MS), 0);
	ASSERT_EQ(coil_timeout_reschedule(&t, COIL_FOREVER), 0);
	ASSERT_EQ(coil_timeout_when(&t), COIL_FOREVER);
	ASSERT_EQ(coil_sleep_ns(100 * MS), 0);
	ASSERT_EQ(coil_timeout_reschedule_at(&t, coil_loop_time_ns(NULL) + 5 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(100 * MS), -ECANCELED);
	ASSERT_EQ(now_ms(), 135);
	ASSERT_EQ(coil_timeout_exit(&t), -ETIMEDOUT);
	ASSERT_EQ(coil_timeout_reschedule(&t, MS), COIL_EINVALSTATE);
	/* A deadline already passed expires at the next iteration. */
	ASSERT_EQ(coil_timeout_enter_at(&t, COIL_FOREVER), 0);
	ASSERT_EQ(coil_timeout_reschedule_at(&t, 0), 0);
	ASSERT_EQ(coil_sleep_ns(MS), -ECANCELED);
	ASSERT_EQ(coil_timeout_exit(&t), -ETIMEDOUT);
	ASSERT_EQ(coil_timeout_enter(&t, -2), -EINVAL);
	ASSERT_EQ(coil_timeout_enter_at(NULL, 0), -EINVAL);
	return 0;
}

TEST(timeout_scope_reschedule_moves_the_deadline)
{
	ASSERT_EQ(run_main(scope_reschedule, NULL), 0);
}

struct scoped {
	int sleep_rc, exit_rc, cancelling;
	bool expired;
	int64_t delay;
};

static int scoped_fn(void *arg, void **result)
{
	(void)result;
	struct scoped *s = arg;
	coil_timeout_t t;
	ASSERT_EQ(coil_timeout_enter(&t, s->delay), 0);
	s->sleep_rc = coil_sleep_ns(100 * MS);
	s->exit_rc = coil_timeout_exit(&t);
	s->expired = coil_timeout_expired(&t);
	s->cancelling = coil_task_cancelling(self());
	return 0;
}

static int scope_external(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* Cancelled from outside before the deadline: not a timeout. */
	struct scoped s = { .delay = 50 * MS };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, scoped_fn, &s, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT_EQ(s.sleep_rc, -ECANCELED);
	ASSERT_EQ(s.exit_rc, 0);
	ASSERT(!s.expired);
	ASSERT_EQ(s.cancelling, 1);
	coil_task_detach(t);
	/* Both in the same iteration: the outside one wins. */
	s.delay = 10 * MS;
	ASSERT_EQ(coil_spawn(&t, scoped_fn, &s, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	coil_task_cancel(t, NULL);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT_EQ(s.sleep_rc, -ECANCELED);
	ASSERT_EQ(s.exit_rc, -ECANCELED);
	ASSERT(s.expired);
	ASSERT_EQ(s.cancelling, 1);
	coil_task_detach(t);
	return 0;
}

TEST(timeout_scope_tells_an_outside_cancellation_apart)
{
	ASSERT_EQ(run_main(scope_external, NULL), 0);
}

static int scope_with(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	coil_timeout_t t;
	int rc, ran = 0;
	COIL_ASYNC_WITH(coil_timeout_cm(&t, 10 * MS), rc) {
		ran++;
		coil_with.status = coil_sleep_ns(100 * MS);
		ASSERT_EQ(coil_with.status, -ECANCELED);
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(ran, 1);
	ASSERT(coil_timeout_expired(&t));
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(now_ms(), 10);
	COIL_ASYNC_WITH(coil_timeout_at_cm(&t, coil_loop_time_ns(NULL) + 10 * MS), rc)
		ASSERT_EQ(coil_sleep_ns(5 * MS), 0);
	ASSERT(!coil_timeout_expired(&t));
	COIL_ASYNC_WITH(coil_timeout_cm(&t, -9), rc)
		ran++;
	ASSERT_EQ(rc, -EINVAL);
	ASSERT_EQ(ran, 1);
	/* A created scope. */
	coil_timeout_t *h;
	ASSERT_EQ(coil_timeout_create(&h), 0);
	ASSERT_EQ(coil_timeout_when(h), COIL_FOREVER);
	ASSERT_EQ(coil_timeout_exit(h), COIL_EINVALSTATE);
	ASSERT_EQ(coil_timeout_enter(h, 5 * MS), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), -ECANCELED);
	ASSERT_EQ(coil_timeout_exit(h), -ETIMEDOUT);
	coil_timeout_destroy(h);
	ASSERT_EQ(coil_timeout_create(&h), 0);
	ASSERT_EQ(coil_timeout_enter(h, 5 * MS), 0);
	coil_timeout_destroy(h);
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	return 0;
}

TEST(timeout_scope_as_a_context_manager)
{
	ASSERT_EQ(run_main(scope_with, NULL), 0);
}

static int scope_wrong_task_fn(void *arg, void **result)
{
	(void)result;
	return coil_timeout_exit(arg);
}

static int scope_wrong_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_timeout_t t;
	coil_task_t *o;
	ASSERT_EQ(coil_timeout_enter(&t, 10 * MS), 0);
	ASSERT_EQ(coil_spawn(&o, scope_wrong_task_fn, &t, NULL), 0);
	ASSERT_EQ(coil_await(coil_task_future(o), NULL), COIL_EINVALSTATE);
	coil_task_detach(o);
	ASSERT_EQ(coil_timeout_exit(&t), 0);
	return 0;
}

TEST(timeout_scope_is_left_by_the_task_that_entered_it)
{
	ASSERT_EQ(run_main(scope_wrong_task, NULL), 0);
}

TEST_LIST(
	TEST_ENTRY(wait_for_returns_the_result_in_time),
	TEST_ENTRY(wait_for_timeout_cancels_and_waits_for_the_future),
	TEST_ENTRY(wait_for_completion_racing_the_timeout_returns_the_result),
	TEST_ENTRY(wait_for_cancelled_caller_cancels_the_future),
	TEST_ENTRY(wait_for_edge_cases),
	TEST_ENTRY(timeout_scope_cancels_at_the_deadline_and_reports_etimedout),
	TEST_ENTRY(nested_timeout_scopes_report_only_their_own_timeout),
	TEST_ENTRY(timeout_scope_reschedule_moves_the_deadline),
	TEST_ENTRY(timeout_scope_tells_an_outside_cancellation_apart),
	TEST_ENTRY(timeout_scope_as_a_context_manager),
	TEST_ENTRY(timeout_scope_is_left_by_the_task_that_entered_it)
)
