/* tests/test_compose_taskgroup.c: task groups (coil/compose.h), on the
 * virtual clock. */
#include "coil/coil.h"
#include "coil/compose.h"
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

/* A child: sleeps, then returns or fails with ret and a message. */
struct job {
	int64_t delay_ms;
	int ret;
	int cancelled;
	int finished;
};

#define J(d, r) { .delay_ms = (d), .ret = (r) }

static int job_fn(void *arg, void **result)
{
	(void)result;
	struct job *j = arg;
	int rc = coil_sleep_ns(j->delay_ms * MS);
	if (rc == -ECANCELED) {
		j->cancelled++;
		return rc;
	}
	j->finished = 1;
	if (j->ret)
		coil_errorf("failed after %d ms", (int)j->delay_ms);
	return j->ret;
}

static int tg_all(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(30, 0), J(10, 0), J(20, 0) };
	coil_taskgroup_t *tg;
	coil_task_t *t;
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[0], NULL), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_result(tg), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), COIL_EINVALSTATE);
	ASSERT_EQ(coil_taskgroup_spawn(tg, &t, job_fn, &j[0], NULL), 0);
	for (int i = 1; i < 3; i++)
		ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[i], NULL), 0);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), 0);
	ASSERT_EQ(now_ms(), 30);
	ASSERT(coil_future_done(coil_task_future(t)));
	ASSERT_EQ(j[0].finished + j[1].finished + j[2].finished, 3);
	ASSERT_EQ(coil_taskgroup_result(tg), 0);
	ASSERT_EQ(coil_taskgroup_error_count(tg), 0);
	/* Finished: closed to new children, and to a second wait. */
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[0], NULL), COIL_ECLOSED);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), COIL_EINVALSTATE);
	coil_task_detach(t);
	coil_taskgroup_destroy(tg);
	return 0;
}

TEST(taskgroup_waits_for_every_child)
{
	ASSERT_EQ(run_main(tg_all, NULL), 0);
}

static int tg_failure(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[3] = { J(10, -EIO), J(10, -EPIPE), J(100, 0) };
	coil_taskgroup_t *tg;
	coil_task_t *t[3];
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_taskgroup_spawn(tg, &t[i], job_fn, &j[i], NULL), 0);
	/* The first failure cancels the body's await... */
	int st = coil_sleep_ns(1000 * MS);
	ASSERT_EQ(st, -ECANCELED);
	ASSERT_EQ(now_ms(), 10);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[2], NULL), COIL_ECLOSED);
	ASSERT_EQ(coil_taskgroup_wait(tg, st), -EIO);
	/* ...and the siblings; every failure is collected. */
	ASSERT_EQ(j[2].cancelled, 1);
	ASSERT_EQ(coil_taskgroup_error_count(tg), 2);
	ASSERT_EQ(coil_taskgroup_error(tg, 0), -EIO);
	ASSERT_EQ(coil_taskgroup_error(tg, 1), -EPIPE);
	ASSERT_EQ(coil_taskgroup_error(tg, 2), 0);
	ASSERT_PTR_EQ(coil_taskgroup_error_task(tg, 0), t[0]);
	ASSERT_PTR_EQ(coil_taskgroup_error_task(tg, 1), t[1]);
	ASSERT_STR_EQ(coil_taskgroup_error_message(tg, 0), "failed after 10 ms");
	ASSERT(coil_taskgroup_error_message(tg, 5) == NULL);
	ASSERT_EQ(coil_taskgroup_result(tg), -EIO);
	/* The group withdrew its cancellation of the parent. */
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	for (int i = 0; i < 3; i++)
		coil_task_detach(t[i]);
	coil_taskgroup_destroy(tg);
	return 0;
}

TEST(taskgroup_first_failure_cancels_siblings_and_body)
{
	ASSERT_EQ(run_main(tg_failure, NULL), 0);
}

static int tg_failure_in_exit(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[2] = { J(10, -EIO), J(100, 0) };
	coil_taskgroup_t *tg;
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[i], NULL), 0);
	/* The body is over; the failure comes while the parent waits. */
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), -EIO);
	ASSERT_EQ(now_ms(), 10);
	ASSERT_EQ(j[1].cancelled, 1);
	ASSERT_EQ(coil_taskgroup_error_count(tg), 1);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	coil_taskgroup_destroy(tg);
	return 0;
}

TEST(taskgroup_failure_while_the_parent_waits_in_exit)
{
	ASSERT_EQ(run_main(tg_failure_in_exit, NULL), 0);
}

struct parent {
	struct job j[2];
	int body_rc, wait_rc, cancelling;
	bool cancel_in_body;
};

static int parent_fn(void *arg, void **result)
{
	(void)result;
	struct parent *p = arg;
	coil_taskgroup_t *tg;
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &p->j[i], NULL), 0);
	p->body_rc = p->cancel_in_body ? coil_sleep_ns(1000 * MS) : 0;
	p->wait_rc = coil_taskgroup_wait(tg, p->body_rc);
	p->cancelling = coil_task_cancelling(self());
	coil_taskgroup_destroy(tg);
	return p->wait_rc;
}

static int tg_external(void *arg, void **result)
{
	(void)arg;
	(void)result;
	/* Cancelled in the body, then while waiting in exit. */
	for (int k = 0; k < 2; k++) {
		struct parent p = { .j = { J(100, 0), J(200, 0) },
				    .cancel_in_body = k == 0 };
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, parent_fn, &p, NULL), 0);
		ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
		coil_task_cancel(t, NULL);
		ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
		ASSERT_EQ(p.body_rc, k == 0 ? -ECANCELED : 0);
		ASSERT_EQ(p.wait_rc, -ECANCELED);
		ASSERT_EQ(p.cancelling, 1);
		ASSERT_EQ(p.j[0].cancelled + p.j[1].cancelled, 2);
		coil_task_detach(t);
	}
	return 0;
}

TEST(taskgroup_cancelled_from_outside_cancels_children)
{
	ASSERT_EQ(run_main(tg_external, NULL), 0);
}

static int tg_body_error(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct job j = J(100, 0);
	coil_taskgroup_t *tg;
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(MS), 0);
	ASSERT_EQ(coil_taskgroup_wait(tg, -EINVAL), -EINVAL);
	ASSERT_EQ(j.cancelled, 1);
	ASSERT_EQ(coil_taskgroup_error_count(tg), 1);
	ASSERT_EQ(coil_taskgroup_error(tg, 0), -EINVAL);
	ASSERT(coil_taskgroup_error_task(tg, 0) == NULL);
	ASSERT(coil_taskgroup_error_message(tg, 0) == NULL);
	coil_taskgroup_destroy(tg);
	return 0;
}

TEST(taskgroup_body_error_cancels_children_and_is_collected)
{
	ASSERT_EQ(run_main(tg_body_error, NULL), 0);
}

struct spawner {
	coil_taskgroup_t *tg;
	struct job j;
	int rc;
};

static int spawner_fn(void *arg, void **result)
{
	(void)result;
	struct spawner *s = arg;
	coil_sleep_ns(10 * MS);
	s->rc = coil_taskgroup_spawn(s->tg, NULL, job_fn, &s->j, NULL);
	return 0;
}

static int tg_with(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct spawner s = { .j = J(30, 0), .rc = 1 };
	int rc;
	ASSERT_EQ(coil_taskgroup_create(&s.tg), 0);
	COIL_ASYNC_WITH(coil_taskgroup_cm(s.tg), rc) {
		/* A child spawns a sibling while the parent waits in exit. */
		coil_taskgroup_spawn(s.tg, NULL, spawner_fn, &s, NULL);
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(s.rc, 0);
	ASSERT_EQ(s.j.finished, 1);
	ASSERT_EQ(now_ms(), 40);
	ASSERT_EQ(coil_taskgroup_result(s.tg), 0);
	coil_taskgroup_destroy(s.tg);
	/* A failure inside a with-block. */
	struct job f = J(5, -ENOSPC);
	ASSERT_EQ(coil_taskgroup_create(&s.tg), 0);
	COIL_ASYNC_WITH(coil_taskgroup_cm(s.tg), rc) {
		coil_taskgroup_spawn(s.tg, NULL, job_fn, &f, NULL);
		coil_with.status = coil_sleep_ns(100 * MS);
	}
	ASSERT_EQ(coil_taskgroup_result(s.tg), -ENOSPC);
	ASSERT_EQ(now_ms(), 45);
	coil_taskgroup_destroy(s.tg);
	ASSERT_EQ(coil_taskgroup_create(NULL), -EINVAL);
	ASSERT_EQ(coil_taskgroup_enter(NULL), -EINVAL);
	ASSERT_EQ(coil_taskgroup_wait(NULL, 0), -EINVAL);
	return 0;
}

TEST(taskgroup_as_a_context_manager)
{
	ASSERT_EQ(run_main(tg_with, NULL), 0);
}

static int tg_in_timeout(void *arg, void **result)
{
	(void)arg;
	(void)result;
	clock_start();
	struct job j[2] = { J(100, 0), J(200, 0) };
	coil_timeout_t to;
	coil_taskgroup_t *tg;
	ASSERT_EQ(coil_timeout_enter(&to, 10 * MS), 0);
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &j[i], NULL), 0);
	ASSERT_EQ(coil_taskgroup_wait(tg, 0), -ECANCELED);
	ASSERT_EQ(j[0].cancelled + j[1].cancelled, 2);
	ASSERT_EQ(coil_timeout_exit(&to), -ETIMEDOUT);
	ASSERT_EQ(now_ms(), 10);
	ASSERT_EQ(coil_task_cancelling(self()), 0);
	coil_taskgroup_destroy(tg);
	/* Destroyed without waiting: the children go on, detached. */
	struct job k = J(20, 0);
	ASSERT_EQ(coil_taskgroup_create(&tg), 0);
	ASSERT_EQ(coil_taskgroup_enter(tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(tg, NULL, job_fn, &k, NULL), 0);
	coil_taskgroup_destroy(tg);
	ASSERT_EQ(coil_sleep_ns(30 * MS), 0);
	ASSERT_EQ(k.finished, 1);
	return 0;
}

TEST(taskgroup_inside_a_timeout_scope)
{
	ASSERT_EQ(run_main(tg_in_timeout, NULL), 0);
}

struct destroyer {
	coil_taskgroup_t *tg;
	struct job j;
	int rc;
};

static int destroyer_parent(void *arg, void **result)
{
	(void)result;
	struct destroyer *d = arg;
	ASSERT_EQ(coil_taskgroup_enter(d->tg), 0);
	ASSERT_EQ(coil_taskgroup_spawn(d->tg, NULL, job_fn, &d->j, NULL), 0);
	d->rc = coil_taskgroup_wait(d->tg, 0);
	return 0;
}

static int tg_destroyed_while_waited(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct destroyer d = { .j = J(50, 0), .rc = 1 };
	coil_task_t *p;
	ASSERT_EQ(coil_taskgroup_create(&d.tg), 0);
	ASSERT_EQ(coil_spawn(&p, destroyer_parent, &d, NULL), 0);
	ASSERT_EQ(coil_sleep_ns(10 * MS), 0);
	coil_taskgroup_destroy(d.tg);
	ASSERT_EQ(coil_await(coil_task_future(p), NULL), 0);
	ASSERT_EQ(d.rc, COIL_ECLOSED);
	coil_task_detach(p);
	ASSERT_EQ(coil_sleep_ns(100 * MS), 0);
	ASSERT_EQ(d.j.finished, 1);
	return 0;
}

TEST(taskgroup_destroyed_while_its_parent_waits)
{
	ASSERT_EQ(run_main(tg_destroyed_while_waited, NULL), 0);
}

TEST_LIST(
	TEST_ENTRY(taskgroup_waits_for_every_child),
	TEST_ENTRY(taskgroup_failure_while_the_parent_waits_in_exit),
	TEST_ENTRY(taskgroup_destroyed_while_its_parent_waits),
	TEST_ENTRY(taskgroup_first_failure_cancels_siblings_and_body),
	TEST_ENTRY(taskgroup_cancelled_from_outside_cancels_children),
	TEST_ENTRY(taskgroup_body_error_cancels_children_and_is_collected),
	TEST_ENTRY(taskgroup_as_a_context_manager),
	TEST_ENTRY(taskgroup_inside_a_timeout_scope)
)
