/* tests/test_gen.c: async generators (coil/gen.h). */
#include <stdint.h>

#include "coil/coil.h"
#include "coil/gen.h"
#include "test.h"

#define I(x) ((void *)(intptr_t)(x))
#define V(p) ((intptr_t)(p))

/* Runs fn as the main task on the virtual clock; skips without io_uring. */
static void run_main(coil_fn fn, void *arg)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

/* What a generator's body saw and did, for the tests to look at. */
struct probe {
	coil_gen_t *self;
	int n;                 /* values to yield */
	double delay;          /* seconds to sleep after each yield */
	int cleanups;          /* times the body saw COIL_ECLOSED */
	int last_rc;           /* what its last yield or await returned */
	coil_coro_state_t seen; /* its own state, seen from inside */
	intptr_t sent_sum;     /* what asend delivered */
};

/* Yields 0..n-1 (sleeping `delay` after each), adds up what it is sent,
 * and counts its cleanups. */
static int counter(void *arg, void **result)
{
	struct probe *p = arg;
	(void)result;
	p->seen = coil_gen_state(p->self);
	for (int i = 0; i < p->n; i++) {
		void *sent;
		int rc = coil_gen_yield(I(i), &sent);
		p->last_rc = rc;
		if (rc == COIL_ECLOSED)
			p->cleanups++;
		if (rc)
			return rc;
		p->sent_sum += V(sent);
		if (p->delay > 0 && (rc = coil_sleep(p->delay)) != 0) {
			p->last_rc = rc;
			return rc;
		}
	}
	return 0;
}

static coil_gen_t *make(coil_fn body, struct probe *p)
{
	coil_gen_t *g;
	coil_gen_opts_t o = { .name = "counter" };
	ASSERT_EQ(coil_gen_create(&g, body, p, &o), 0);
	p->self = g;
	return g;
}

TEST(states_through_a_lifetime)
{
	struct probe p = { .n = 2 };
	coil_gen_t *g = make(counter, &p);
	void *v = I(-1);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CREATED);
	ASSERT_STR_EQ(coil_gen_name(g), "counter");
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	ASSERT_EQ(p.seen, COIL_CORO_RUNNING);
	ASSERT_EQ(V(v), 0);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_SUSPENDED);
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	ASSERT_EQ(V(v), 1);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	ASSERT_PTR_EQ(v, NULL);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	coil_gen_destroy(g);
}

TEST(asend_delivers_to_the_pending_yield)
{
	struct probe p = { .n = 3 };
	coil_gen_t *g = make(counter, &p);
	void *v;
	/* Python: can't send non-None value to a just-started generator. */
	ASSERT_EQ(coil_gen_asend(g, I(5), &v), -EINVAL);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CREATED);
	ASSERT_EQ(coil_gen_asend(g, NULL, &v), 0);
	ASSERT_EQ(coil_gen_asend(g, I(10), &v), 0);
	ASSERT_EQ(V(v), 1);
	ASSERT_EQ(coil_gen_asend(g, I(20), &v), 0);
	ASSERT_EQ(p.sent_sum, 30);
	ASSERT_EQ(coil_gen_asend(g, I(7), &v), COIL_EDONE);
	ASSERT_EQ(p.sent_sum, 37);
	coil_gen_destroy(g);
}

/* Handles -EIO thrown in by yielding 100; passes anything else on. */
static int catcher(void *arg, void **result)
{
	int *handled = arg;
	(void)result;
	int rc = coil_gen_yield(I(1), NULL);
	while (rc == -EIO) {
		(*handled)++;
		rc = coil_gen_yield(I(100), NULL);
	}
	return rc;
}

TEST(athrow_is_handled_or_passed_on)
{
	int handled = 0;
	coil_gen_t *g;
	void *v;
	ASSERT_EQ(coil_gen_create(&g, catcher, &handled, NULL), 0);
	ASSERT_EQ(coil_gen_athrow(g, 0, &v), -EINVAL);
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	ASSERT_EQ(coil_gen_athrow(g, -EIO, &v), 0);
	ASSERT_EQ(V(v), 100);
	ASSERT_EQ(handled, 1);
	ASSERT_EQ(coil_gen_athrow(g, -EPIPE, &v), -EPIPE);
	ASSERT_PTR_EQ(v, NULL);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_gen_athrow(g, -EIO, &v), COIL_EDONE);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	coil_gen_destroy(g);

	/* Thrown into an unstarted generator: closed without running. */
	handled = 0;
	ASSERT_EQ(coil_gen_create(&g, catcher, &handled, NULL), 0);
	ASSERT_EQ(coil_gen_athrow(g, -EIO, &v), -EIO);
	ASSERT_EQ(handled, 0);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	coil_gen_destroy(g);
}

TEST(aclose_delivers_eclosed_and_runs_cleanup)
{
	struct probe p = { .n = 5 };
	coil_gen_t *g = make(counter, &p);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(p.cleanups, 1);
	ASSERT_EQ(p.last_rc, COIL_ECLOSED);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), COIL_EDONE);
	coil_gen_destroy(g);

	/* An unstarted generator is closed without running. */
	struct probe q = { .n = 5 };
	g = make(counter, &q);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(q.seen, COIL_CORO_CREATED); /* never looked */
	ASSERT_EQ(coil_gen_next(g, NULL), COIL_EDONE);
	coil_gen_destroy(g);
}

/* Yields again when closed: Python's "ignored GeneratorExit". */
static int stubborn(void *arg, void **result)
{
	int *second = arg;
	(void)result;
	int rc = coil_gen_yield(I(1), NULL);
	if (rc == COIL_ECLOSED)
		*second = coil_gen_yield(I(2), NULL);
	return 0;
}

/* Fails its cleanup with an error of its own. */
static int failing_cleanup(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = coil_gen_yield(I(1), NULL);
	return rc == COIL_ECLOSED ? -EIO : rc;
}

TEST(aclose_reports_ignored_close_and_cleanup_errors)
{
	int second = 0;
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, stubborn, &second, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), COIL_EINVALSTATE);
	/* The second yield was refused at once, and the body ran out. */
	ASSERT_EQ(second, COIL_ECLOSED);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	coil_gen_destroy(g);

	ASSERT_EQ(coil_gen_create(&g, failing_cleanup, NULL, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), -EIO);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	coil_gen_destroy(g);
}

/* Its cleanup tries to await (DESIGN.md section 6: that returns
 * COIL_ECLOSED at once). */
static int awaiting_cleanup(void *arg, void **result)
{
	int *sleep_rc = arg;
	(void)result;
	int rc = coil_gen_yield(I(1), NULL);
	if (rc == COIL_ECLOSED)
		*sleep_rc = coil_sleep(5);
	return rc;
}

static int cleanup_cannot_suspend_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int sleep_rc = 0;
	coil_gen_t *g;
	double t0 = coil_loop_time(NULL);
	ASSERT_EQ(coil_gen_create(&g, awaiting_cleanup, &sleep_rc, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(sleep_rc, COIL_ECLOSED);
	ASSERT_DBL_NEAR(coil_loop_time(NULL), t0, 1e-9);
	coil_gen_destroy(g);
	return 0;
}

TEST(cleanup_awaits_return_eclosed_at_once)
{
	run_main(cleanup_cannot_suspend_main, NULL);
}

static int ticks_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct probe p = { .n = 5, .delay = 1 };
	coil_gen_t *g = make(counter, &p);
	double t0 = coil_loop_time(NULL);
	void *v;
	int rc, i = 0;
	COIL_AFOR(v, g, rc) {
		ASSERT_EQ(V(v), i);
		/* The body sleeps 1 s after each yield, on the virtual clock. */
		ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, (double)i, 1e-6);
		i++;
	}
	ASSERT_EQ(rc, COIL_EDONE);
	ASSERT_EQ(i, 5);
	ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, 5.0, 1e-6);
	coil_gen_destroy(g);
	return 0;
}

TEST(generator_awaits_inside_a_task)
{
	run_main(ticks_main, NULL);
}

static int bump(void *arg, void **result)
{
	(void)result;
	int *n = arg;
	for (int i = 0; i < 3; i++) {
		(*n)++;
		coil_sleep(1);
	}
	return 0;
}

/* Another task runs while the consumer waits on the generator's sleeps, and
 * another consumer finds the generator running. */
static int others_run_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct probe p = { .n = 3, .delay = 1 };
	coil_gen_t *g = make(counter, &p);
	int bumps = 0;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, bump, &bumps, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(bumps, 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0); /* slept 1 s: bump ran */
	ASSERT_GE(bumps, 1);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	coil_gen_destroy(g);
	return 0;
}

TEST(other_tasks_run_while_the_generator_awaits)
{
	run_main(others_run_main, NULL);
}

static int reenter(void *arg, void **result)
{
	(void)result;
	coil_gen_t **self = arg;
	int rc = coil_gen_next(*self, NULL);
	if (rc != COIL_EINVALSTATE)
		return -EPROTO;
	rc = coil_gen_aclose(*self);
	if (rc != COIL_EINVALSTATE)
		return -EPROTO;
	return coil_gen_yield(I(1), NULL);
}

static int step_in_task(void *arg, void **result)
{
	(void)result;
	return coil_gen_next(arg, NULL);
}

static int running_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, reenter, &g, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	coil_gen_destroy(g);

	/* Suspended in an await, the generator counts as running. */
	struct probe p = { .n = 2, .delay = 1 };
	g = make(counter, &p);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, step_in_task, g, NULL), 0);
	ASSERT_EQ(coil_sleep(0.5), 0);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_RUNNING);
	ASSERT_EQ(coil_gen_next(g, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_gen_aclose(g), COIL_EINVALSTATE);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_SUSPENDED);
	coil_gen_destroy(g);
	return 0;
}

TEST(a_running_generator_refuses_another_step)
{
	run_main(running_main, NULL);
}

static int consume_all(void *arg, void **result)
{
	(void)result;
	void *v;
	int rc;
	COIL_AFOR(v, (coil_gen_t *)arg, rc)
		;
	return rc;
}

static int cancel_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct probe p = { .n = 3, .delay = 10 };
	coil_gen_t *g = make(counter, &p);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, consume_all, g, NULL), 0);
	ASSERT_EQ(coil_sleep(1), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	coil_task_detach(t);
	/* The sleep inside the generator got the cancellation, the body
	 * passed it on and ended, and no timer of it is left behind. */
	ASSERT_EQ(p.last_rc, -ECANCELED);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_CLOSED);
	ASSERT_EQ(coil_loop_timer_count(coil_get_running_loop()), 0);
	coil_gen_destroy(g);
	return 0;
}

TEST(cancelling_the_consumer_while_the_generator_awaits)
{
	run_main(cancel_main, NULL);
}

/* Carries on after a cancellation: yields what it has and ends. */
static int resilient(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = coil_sleep(10);
	if (rc != -ECANCELED)
		return -EPROTO;
	rc = coil_gen_yield(I(42), NULL);
	return rc;
}

static int next_value(void *arg, void **result)
{
	void *v = NULL;
	int rc = coil_gen_next(arg, &v);
	*result = v;
	return rc;
}

static int carry_on_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_gen_t *g;
	coil_task_t *t;
	void *v;
	ASSERT_EQ(coil_gen_create(&g, resilient, NULL, NULL), 0);
	ASSERT_EQ(coil_spawn(&t, next_value, g, NULL), 0);
	ASSERT_EQ(coil_sleep(1), 0);
	coil_task_cancel(t, NULL);
	/* The value the generator yielded after the cancellation is the
	 * consumer's. */
	ASSERT_EQ(coil_await(coil_task_future(t), &v), 0);
	ASSERT_EQ(V(v), 42);
	coil_task_detach(t);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_SUSPENDED);
	coil_gen_destroy(g);
	return 0;
}

TEST(a_generator_may_carry_on_after_a_cancellation)
{
	run_main(carry_on_main, NULL);
}

/* inner: echoes what it is sent (x10), handles -EIO by yielding -1, and
 * counts its cleanups. */
struct inner_state {
	int cleanups;
	int ends;
};

static int echo(void *arg, void **result)
{
	struct inner_state *s = arg;
	(void)result;
	void *sent = NULL;
	int rc = coil_gen_yield(I(1), &sent);
	for (int i = 0; i < 2 && rc != COIL_ECLOSED; i++) {
		if (rc == -EIO)
			rc = coil_gen_yield(I(-1), &sent);
		else if (rc)
			return rc;
		else
			rc = coil_gen_yield(I(V(sent) * 10), &sent);
	}
	if (rc == COIL_ECLOSED)
		s->cleanups++;
	if (rc)
		return rc;
	s->ends++;
	return 0;
}

struct outer_state {
	coil_gen_t *inner;
	int from_rc;
	int closed;
};

static int delegate(void *arg, void **result)
{
	struct outer_state *s = arg;
	(void)result;
	s->from_rc = coil_gen_yield_from(s->inner);
	if (s->from_rc == COIL_ECLOSED) {
		s->closed++;
		return s->from_rc;
	}
	if (s->from_rc)
		return s->from_rc;
	return coil_gen_yield(I(99), NULL);
}

TEST(yield_from_forwards_values_sends_and_throws)
{
	struct inner_state in = { 0 };
	struct outer_state out = { 0 };
	coil_gen_t *g;
	void *v;
	ASSERT_EQ(coil_gen_create(&out.inner, echo, &in, NULL), 0);
	ASSERT_EQ(coil_gen_create(&g, delegate, &out, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, &v), 0);
	ASSERT_EQ(V(v), 1);
	ASSERT_EQ(coil_gen_asend(g, I(4), &v), 0);
	ASSERT_EQ(V(v), 40);
	ASSERT_EQ(coil_gen_athrow(g, -EIO, &v), 0);
	ASSERT_EQ(V(v), -1);
	ASSERT_EQ(coil_gen_asend(g, I(5), &v), 0);
	ASSERT_EQ(V(v), 99); /* inner ended: the outer goes on */
	ASSERT_EQ(in.ends, 1);
	ASSERT_EQ(out.from_rc, 0);
	ASSERT_EQ(coil_gen_next(g, &v), COIL_EDONE);
	coil_gen_destroy(g);
	coil_gen_destroy(out.inner);
}

TEST(yield_from_closes_the_inner_generator_first)
{
	struct inner_state in = { 0 };
	struct outer_state out = { 0 };
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&out.inner, echo, &in, NULL), 0);
	ASSERT_EQ(coil_gen_create(&g, delegate, &out, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(in.cleanups, 1);
	ASSERT_EQ(out.closed, 1);
	ASSERT_EQ(coil_gen_state(out.inner), COIL_CORO_CLOSED);
	coil_gen_destroy(g);
	coil_gen_destroy(out.inner);

	/* An error the inner generator does not handle comes back. */
	struct inner_state in2 = { 0 };
	struct outer_state out2 = { 0 };
	ASSERT_EQ(coil_gen_create(&out2.inner, echo, &in2, NULL), 0);
	ASSERT_EQ(coil_gen_create(&g, delegate, &out2, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	ASSERT_EQ(coil_gen_athrow(g, -EPIPE, NULL), -EPIPE);
	ASSERT_EQ(out2.from_rc, -EPIPE);
	coil_gen_destroy(g);
	coil_gen_destroy(out2.inner);
}

/* Yields n values, then fails with -EIO if asked to. */
static int then_fail(void *arg, void **result)
{
	(void)result;
	for (int i = 0; i < 2; i++) {
		int rc = coil_gen_yield(I(i), NULL);
		if (rc)
			return rc;
	}
	return arg ? -EIO : 0;
}

TEST(afor_runs_to_the_end_or_the_error_or_a_break)
{
	coil_gen_t *g;
	intptr_t *v; /* any pointer type will do */
	int rc, n = 0;
	ASSERT_EQ(coil_gen_create(&g, then_fail, I(1), NULL), 0);
	COIL_AFOR(v, g, rc)
		n++;
	ASSERT_EQ(rc, -EIO);
	ASSERT_EQ(n, 2);
	coil_gen_destroy(g);

	struct probe p = { .n = 10 };
	g = make(counter, &p);
	n = 0;
	COIL_AFOR(v, g, rc) {
		if (V(v) == 3)
			break;
		n++;
	}
	/* A break leaves the generator open: the macro does not close it. */
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(n, 3);
	ASSERT_EQ(coil_gen_state(g), COIL_CORO_SUSPENDED);
	ASSERT_EQ(coil_gen_aclose(g), 0);
	ASSERT_EQ(p.cleanups, 1);
	coil_gen_destroy(g);
}

struct left_open {
	struct probe p[2];
	coil_gen_t *g[2];
};

/* Starts two generators and leaves them open. */
static int leave_open(void *arg, void **result)
{
	struct left_open *lo = arg;
	(void)result;
	for (int i = 0; i < 2; i++) {
		lo->p[i].n = 5;
		lo->g[i] = make(counter, &lo->p[i]);
		ASSERT_EQ(coil_gen_next(lo->g[i], NULL), 0);
	}
	return 0;
}

TEST(loop_close_finalizes_open_generators)
{
	coil_runtime_opts_t o;
	coil_loop_t *loop;
	coil_task_t *t;
	struct left_open lo = { 0 };
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_loop_create_task(loop, &t, leave_open, &lo, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(lo.p[0].cleanups, 0);
	/* coil_loop_close closes them itself. */
	ASSERT_EQ(coil_loop_close(loop), 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(lo.p[i].cleanups, 1);
		ASSERT_EQ(coil_gen_state(lo.g[i]), COIL_CORO_CLOSED);
		coil_gen_destroy(lo.g[i]);
	}
}

static int shutdown_main(void *arg, void **result)
{
	struct left_open *lo = arg;
	ASSERT_EQ(leave_open(lo, result), 0);
	/* A generator that has not started is not the loop's concern. */
	struct probe q = { .n = 1 };
	coil_gen_t *fresh = make(counter, &q);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(NULL), 2);
	ASSERT_EQ(lo->p[0].cleanups, 1);
	ASSERT_EQ(lo->p[1].cleanups, 1);
	ASSERT_EQ(coil_gen_state(fresh), COIL_CORO_CREATED);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(NULL), 0);
	coil_gen_destroy(fresh);
	for (int i = 0; i < 2; i++)
		coil_gen_destroy(lo->g[i]);
	return 0;
}

TEST(shutdown_asyncgens_closes_what_is_open)
{
	struct left_open lo = { 0 };
	run_main(shutdown_main, &lo);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(NULL), -EINVAL); /* no loop */
}

static int nothing(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return 0;
}

/* Plain code cannot run a runtime's worker loop to close its generators:
 * refused, and nothing is left behind to close them when it runs again. */
TEST(shutdown_asyncgens_from_plain_code_on_a_runtime_loop_is_refused)
{
	coil_runtime_opts_t o;
	coil_runtime_t *rt;
	struct left_open lo = { 0 };
	coil_runtime_opts_init(&o);
	o.workers = 1;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_block_on(rt, leave_open, &lo, NULL), 0);
	ASSERT_EQ(coil_loop_shutdown_asyncgens(coil_runtime_loop(rt, 0)), -EINVAL);
	ASSERT_EQ(coil_runtime_block_on(rt, nothing, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(lo.p[i].cleanups, 0);
		ASSERT_EQ(coil_gen_state(lo.g[i]), COIL_CORO_SUSPENDED);
		coil_gen_destroy(lo.g[i]);
		ASSERT_EQ(lo.p[i].cleanups, 1);
	}
}

static int handler_calls, handler_error;

static void count_handler(coil_loop_t *loop, const coil_exc_context_t *ctx,
			  void *arg)
{
	(void)loop;
	(void)arg;
	handler_calls++;
	handler_error = ctx->error;
	ASSERT(strstr(ctx->message, "closing of asynchronous generator"));
}

static int destroy_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct probe p = { .n = 3 };
	coil_gen_t *g = make(counter, &p);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	coil_gen_destroy(g);
	ASSERT_EQ(p.cleanups, 1);

	/* An error closing it goes to the loop's exception handler. */
	int second = 0;
	coil_loop_set_exception_handler(coil_get_running_loop(), count_handler, NULL);
	ASSERT_EQ(coil_gen_create(&g, stubborn, &second, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	coil_gen_destroy(g);
	ASSERT_EQ(handler_calls, 1);
	ASSERT_EQ(handler_error, COIL_EINVALSTATE);
	return 0;
}

TEST(destroy_closes_an_open_generator)
{
	run_main(destroy_main, NULL);
}

/* Destroys itself, then yields: freed once that step returns. */
static int self_destroying(void *arg, void **result)
{
	(void)result;
	coil_gen_t **self = arg;
	coil_gen_destroy(*self);
	return coil_gen_yield(I(1), NULL);
}

TEST(destroy_while_running_is_deferred_to_the_end_of_the_step)
{
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, self_destroying, &g, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), COIL_ECLOSED);
	/* g is gone; Valgrind and ASan check that nothing leaked. */
}

/* Yields once; its cleanup tries to close and destroy itself. */
static int destroys_itself_when_closed(void *arg, void **result)
{
	(void)result;
	coil_gen_t **self = arg;
	int rc = coil_gen_yield(I(1), NULL);
	ASSERT_EQ(rc, COIL_ECLOSED);
	/* Running (in its close): refused, and deferred. */
	ASSERT_EQ(coil_gen_aclose(*self), COIL_EINVALSTATE);
	coil_gen_destroy(*self);
	return rc;
}

static int finalize_self_destroying(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, destroys_itself_when_closed, &g, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), 0);
	/* The finalization frees it once its cleanup ended. */
	ASSERT_EQ(coil_loop_shutdown_asyncgens(NULL), 1);
	return 0;
}

TEST(destroy_from_a_cleanup_run_by_the_loops_finalization)
{
	run_main(finalize_self_destroying, NULL);
	/* Valgrind and ASan check that it was freed, once. */
}

TEST(bad_input_is_refused)
{
	coil_gen_t *g;
	void *v = I(1);
	ASSERT_EQ(coil_gen_create(NULL, counter, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_create(&g, NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_next(NULL, &v), -EINVAL);
	ASSERT_PTR_EQ(v, NULL);
	ASSERT_EQ(coil_gen_asend(NULL, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_athrow(NULL, -EIO, NULL), -EINVAL);
	ASSERT_EQ(coil_gen_aclose(NULL), -EINVAL);
	coil_gen_destroy(NULL);
	ASSERT_EQ(coil_gen_state(NULL), COIL_CORO_CLOSED);
	ASSERT_STR_EQ(coil_gen_name(NULL), "");
	ASSERT_PTR_EQ(coil_gen_aiter(NULL), NULL);
	/* Outside a generator's body. */
	ASSERT_EQ(coil_gen_yield(NULL, NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_gen_yield_from(NULL), COIL_EINVALSTATE);
}

/* yield_from with bad arguments, from inside a body. */
static int bad_delegate(void *arg, void **result)
{
	(void)result;
	coil_gen_t **self = arg;
	if (coil_gen_yield_from(NULL) != -EINVAL ||
	    coil_gen_yield_from(*self) != -EINVAL)
		return -EPROTO;
	return 0;
}

TEST(yield_from_refuses_null_and_itself)
{
	coil_gen_t *g;
	ASSERT_EQ(coil_gen_create(&g, bad_delegate, &g, NULL), 0);
	ASSERT_EQ(coil_gen_next(g, NULL), COIL_EDONE);
	coil_gen_destroy(g);
}

TEST_LIST(
	TEST_ENTRY(states_through_a_lifetime),
	TEST_ENTRY(asend_delivers_to_the_pending_yield),
	TEST_ENTRY(athrow_is_handled_or_passed_on),
	TEST_ENTRY(aclose_delivers_eclosed_and_runs_cleanup),
	TEST_ENTRY(aclose_reports_ignored_close_and_cleanup_errors),
	TEST_ENTRY(cleanup_awaits_return_eclosed_at_once),
	TEST_ENTRY(generator_awaits_inside_a_task),
	TEST_ENTRY(other_tasks_run_while_the_generator_awaits),
	TEST_ENTRY(a_running_generator_refuses_another_step),
	TEST_ENTRY(cancelling_the_consumer_while_the_generator_awaits),
	TEST_ENTRY(a_generator_may_carry_on_after_a_cancellation),
	TEST_ENTRY(yield_from_forwards_values_sends_and_throws),
	TEST_ENTRY(yield_from_closes_the_inner_generator_first),
	TEST_ENTRY(afor_runs_to_the_end_or_the_error_or_a_break),
	TEST_ENTRY(loop_close_finalizes_open_generators),
	TEST_ENTRY(shutdown_asyncgens_closes_what_is_open),
	TEST_ENTRY(shutdown_asyncgens_from_plain_code_on_a_runtime_loop_is_refused),
	TEST_ENTRY(destroy_closes_an_open_generator),
	TEST_ENTRY(destroy_while_running_is_deferred_to_the_end_of_the_step),
	TEST_ENTRY(destroy_from_a_cleanup_run_by_the_loops_finalization),
	TEST_ENTRY(bad_input_is_refused),
	TEST_ENTRY(yield_from_refuses_null_and_itself)
)
