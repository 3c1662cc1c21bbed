/* tests/test_sync.c: Lock, Event, Condition, Semaphore, BoundedSemaphore
 * and Barrier (coil/sync.h): each operation, FIFO fairness, cancellation at
 * every await, context managers, and a many-task stress over a queue. */
#include "coil/coil.h"
#include "coil/sync.h"
#include "test.h"

/* Counts the awaits that returned, to check the order of wake-ups. */
static int finish_order;

static int run_main(coil_fn fn, void *arg)
{
	finish_order = 0;
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	int rc = coil_run(fn, arg, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

#define RUN(fn) ASSERT_EQ(run_main(fn, NULL), 0)

/* Lets the tasks spawned so far run until they wait. */
static void settle(void)
{
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_sleep(0), 0);
}

static coil_task_t *spawn(coil_fn fn, void *arg)
{
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, fn, arg, NULL), 0);
	return t;
}

static int join_task(coil_task_t *t)
{
	int rc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	return rc;
}


/* One task's await on a primitive and what came of it. */
struct op {
	void *obj;
	int rc;
	int order;                /* when the await returned, 1-based */
	int next_rc;              /* the task's next await */
	bool held;                /* lock: held when the await returned */
};

/* ---- Lock ---- */

static int lock_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	coil_lock_t *l = op->obj;
	op->rc = coil_lock_acquire(l);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	if (op->rc == 0)
		ASSERT_EQ(coil_lock_release(l), 0);
	return 0;
}

static int lock_basic_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_lock_t *l;
	ASSERT_EQ(coil_lock_create(&l), 0);
	ASSERT(!coil_lock_locked(l));
	ASSERT_EQ(coil_lock_release(l), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT(coil_lock_locked(l));
	ASSERT_EQ(coil_lock_acquire(l), -EDEADLK);
	ASSERT_EQ(coil_lock_acquire_nowait(l), -EAGAIN);
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(coil_lock_release(l), COIL_EINVALSTATE);
	ASSERT_EQ(coil_lock_acquire_nowait(l), 0);
	ASSERT_EQ(coil_lock_release(l), 0);
	int rc, ran = 0;
	COIL_ASYNC_WITH(coil_lock_cm(l), rc) {
		ASSERT(coil_lock_locked(l));
		ran++;
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(ran, 1);
	ASSERT(!coil_lock_locked(l));
	COIL_ASYNC_WITH(coil_lock_cm(NULL), rc)
		ran++;
	ASSERT_EQ(rc, -EINVAL);
	ASSERT_EQ(ran, 1);
	ASSERT_EQ(coil_lock_destroy(l), 0);
	return 0;
}

TEST(lock_acquire_release_and_context_manager)
{
	ASSERT_EQ(coil_lock_create(NULL), -EINVAL);
	ASSERT_EQ(coil_lock_acquire(NULL), -EINVAL);
	ASSERT_EQ(coil_lock_release(NULL), -EINVAL);
	ASSERT_EQ(coil_lock_destroy(NULL), -EINVAL);
	ASSERT(!coil_lock_locked(NULL));
	RUN(lock_basic_body);
}

static int lock_fifo_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_lock_t *l;
	ASSERT_EQ(coil_lock_create(&l), 0);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	struct op ops[4];
	coil_task_t *t[4];
	for (int i = 0; i < 4; i++) {
		ops[i] = (struct op){ .obj = l };
		t[i] = spawn(lock_waiter, &ops[i]);
	}
	settle();
	ASSERT_EQ(coil_lock_destroy(l), -EBUSY);
	ASSERT_EQ(coil_lock_release(l), 0);
	/* Handed to the first waiter: nobody can barge in meanwhile, and the
	 * releaser is not the owner any more. */
	ASSERT(coil_lock_locked(l));
	ASSERT_EQ(coil_lock_acquire_nowait(l), -EAGAIN);
	ASSERT_EQ(coil_lock_release(l), COIL_EINVALSTATE);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(join_task(t[i]), 0);
		ASSERT_EQ(ops[i].rc, 0);
		ASSERT_EQ(ops[i].order, i + 1);
	}
	ASSERT(!coil_lock_locked(l));
	ASSERT_EQ(coil_lock_destroy(l), 0);
	return 0;
}

TEST(lock_is_handed_to_waiters_in_arrival_order)
{
	RUN(lock_fifo_body);
}

static int lock_cancel_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_lock_t *l;
	ASSERT_EQ(coil_lock_create(&l), 0);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	struct op a = { .obj = l }, b = { .obj = l }, c = { .obj = l };
	coil_task_t *ta = spawn(lock_waiter, &a), *tb = spawn(lock_waiter, &b);
	coil_task_t *tc = spawn(lock_waiter, &c);
	settle();
	/* a leaves the line: b is next. b is then handed the lock and
	 * cancelled before it runs: it keeps the lock, and the cancellation
	 * reaches it at its next await. */
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT(coil_task_cancel(tb, NULL));
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tb), 0);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	ASSERT_EQ(b.rc, 0);
	ASSERT_EQ(b.next_rc, -ECANCELED);
	ASSERT_EQ(c.rc, 0);
	ASSERT_EQ(c.order, 3);
	ASSERT(!coil_lock_locked(l));
	ASSERT_EQ(coil_lock_destroy(l), 0);
	return 0;
}

TEST(lock_cancelled_waiter_is_skipped_handed_waiter_keeps_lock)
{
	RUN(lock_cancel_body);
}

/* ---- Event ---- */

static int event_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	op->rc = coil_event_wait(op->obj);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	return 0;
}

static int event_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_event_t *e;
	ASSERT_EQ(coil_event_create(&e), 0);
	ASSERT(!coil_event_is_set(e));
	struct op ops[4];
	coil_task_t *t[4];
	for (int i = 0; i < 4; i++) {
		ops[i] = (struct op){ .obj = e };
		t[i] = spawn(event_waiter, &ops[i]);
	}
	settle();
	ASSERT_EQ(coil_event_destroy(e), -EBUSY);
	ASSERT(coil_task_cancel(t[1], NULL));
	/* Woken waiters return 0 even though the event is cleared before
	 * they run; t[3] was woken, then cancelled: it keeps its wake-up. */
	ASSERT_EQ(coil_event_set(e), 0);
	ASSERT(coil_event_is_set(e));
	ASSERT_EQ(coil_event_clear(e), 0);
	ASSERT(coil_task_cancel(t[3], NULL));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(join_task(t[i]), 0);
	ASSERT_EQ(ops[0].rc, 0);
	ASSERT_EQ(ops[1].rc, -ECANCELED);
	ASSERT_EQ(ops[2].rc, 0);
	ASSERT_EQ(ops[3].rc, 0);
	ASSERT_EQ(ops[3].next_rc, -ECANCELED);
	ASSERT_LT(ops[0].order, ops[2].order);
	ASSERT_LT(ops[2].order, ops[3].order);
	ASSERT_EQ(coil_event_set(e), 0);
	ASSERT_EQ(coil_event_wait(e), 0);
	ASSERT_EQ(coil_event_destroy(e), 0);
	return 0;
}

TEST(event_set_wakes_all_waiters_in_order)
{
	coil_event_t *e;
	ASSERT_EQ(coil_event_create(NULL), -EINVAL);
	ASSERT_EQ(coil_event_wait(NULL), -EINVAL);
	ASSERT_EQ(coil_event_set(NULL), -EINVAL);
	ASSERT_EQ(coil_event_clear(NULL), -EINVAL);
	ASSERT_EQ(coil_event_destroy(NULL), -EINVAL);
	ASSERT_EQ(coil_event_create(&e), 0);
	ASSERT_EQ(coil_event_wait(e), COIL_EINVALSTATE);
	ASSERT_EQ(coil_event_destroy(e), 0);
	RUN(event_body);
}

/* ---- Condition ---- */

struct cond_state {
	coil_condition_t *c;
	int value;
	int want;
};

static int cond_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	coil_condition_t *c = op->obj;
	coil_lock_t *l = coil_condition_lock(c);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	op->rc = coil_condition_wait(c);
	op->order = ++finish_order;
	op->held = coil_lock_locked(l);
	ASSERT_EQ(coil_lock_release(l), 0);
	return 0;
}

static int cond_notify_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_condition_t *c;
	ASSERT_EQ(coil_condition_create(&c, NULL), 0);
	coil_lock_t *l = coil_condition_lock(c);
	ASSERT_EQ(coil_condition_wait(c), COIL_EINVALSTATE);
	ASSERT_EQ(coil_condition_notify(c, 1), COIL_EINVALSTATE);
	struct op ops[4];
	coil_task_t *t[4];
	for (int i = 0; i < 4; i++) {
		ops[i] = (struct op){ .obj = c };
		t[i] = spawn(cond_waiter, &ops[i]);
	}
	settle();
	ASSERT_EQ(coil_condition_destroy(c), -EBUSY);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_condition_notify(c, -1), -EINVAL);
	ASSERT_EQ(coil_condition_notify(c, 1), 1);
	ASSERT_EQ(coil_lock_release(l), 0);
	settle();
	ASSERT_EQ(ops[0].order, 1);
	ASSERT_EQ(ops[1].order, 0);
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_condition_notify_all(c), 3);
	ASSERT_EQ(coil_condition_notify_all(c), 0);
	ASSERT_EQ(coil_lock_release(l), 0);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(join_task(t[i]), 0);
		ASSERT_EQ(ops[i].rc, 0);
		ASSERT_EQ(ops[i].order, i + 1);
		ASSERT(ops[i].held);
	}
	ASSERT_EQ(coil_condition_destroy(c), 0);
	return 0;
}

TEST(condition_notify_wakes_n_waiters_in_order_with_the_lock)
{
	ASSERT_EQ(coil_condition_create(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_condition_wait(NULL), -EINVAL);
	ASSERT_EQ(coil_condition_notify(NULL, 1), -EINVAL);
	ASSERT_EQ(coil_condition_destroy(NULL), -EINVAL);
	RUN(cond_notify_body);
}

static bool reached(void *arg)
{
	struct cond_state *s = arg;
	return s->value >= s->want;
}

static int cond_pred_waiter(void *arg, void **result)
{
	(void)result;
	struct cond_state *s = arg;
	int rc;
	COIL_ASYNC_WITH(coil_lock_cm(coil_condition_lock(s->c)), rc) {
		rc = coil_condition_wait_for(s->c, reached, s);
		ASSERT_EQ(rc, 0);
		ASSERT_GE(s->value, s->want);
	}
	*result = (void *)(intptr_t)coil_loop_time_ns(NULL);
	return rc;
}

static int cond_wait_for_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_lock_t *l;
	ASSERT_EQ(coil_lock_create(&l), 0);
	struct cond_state s = { .want = 3 };
	ASSERT_EQ(coil_condition_create(&s.c, l), 0);
	ASSERT_PTR_EQ(coil_condition_lock(s.c), l);
	int64_t t0 = coil_loop_time_ns(NULL);
	coil_task_t *t = spawn(cond_pred_waiter, &s);
	for (int i = 0; i < 5; i++) {
		ASSERT_EQ(coil_sleep(1), 0);
		int rc;
		COIL_ASYNC_WITH(coil_lock_cm(l), rc) {
			s.value++;
			ASSERT_EQ(coil_condition_notify_all(s.c), i < 3 ? 1 : 0);
		}
	}
	void *when;
	ASSERT_EQ(coil_await(coil_task_future(t), &when), 0);
	ASSERT_EQ((intptr_t)when - t0, 3 * COIL_NSEC_PER_SEC);
	coil_task_detach(t);
	ASSERT_EQ(coil_condition_destroy(s.c), 0);
	ASSERT_EQ(coil_lock_destroy(l), 0);
	return 0;
}

TEST(condition_wait_for_returns_when_the_predicate_holds)
{
	RUN(cond_wait_for_body);
}

static int cond_cancel_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_condition_t *c;
	ASSERT_EQ(coil_condition_create(&c, NULL), 0);
	coil_lock_t *l = coil_condition_lock(c);
	struct op a = { .obj = c }, b = { .obj = c };
	coil_task_t *ta = spawn(cond_waiter, &a), *tb = spawn(cond_waiter, &b);
	settle();
	/* a is cancelled while it waits and we hold the lock: it must wait
	 * for the lock before it returns -ECANCELED. */
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT(coil_task_cancel(ta, NULL));
	settle();
	ASSERT_EQ(a.order, 0);
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	ASSERT(a.held);
	/* a cancelled waiter consumed no notification: b gets this one. */
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_condition_notify(c, 1), 1);
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(join_task(tb), 0);
	ASSERT_EQ(b.rc, 0);
	ASSERT(b.held);
	ASSERT_EQ(coil_condition_destroy(c), 0);
	return 0;
}

TEST(condition_cancelled_waiter_reacquires_the_lock)
{
	RUN(cond_cancel_body);
}

static int cond_pass_on_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_condition_t *c;
	ASSERT_EQ(coil_condition_create(&c, NULL), 0);
	coil_lock_t *l = coil_condition_lock(c);
	struct op a = { .obj = c }, b = { .obj = c };
	coil_task_t *ta = spawn(cond_waiter, &a), *tb = spawn(cond_waiter, &b);
	settle();
	/* a is notified, then cancelled before it runs: it reports the
	 * cancellation and passes the notification on to b. */
	ASSERT_EQ(coil_lock_acquire(l), 0);
	ASSERT_EQ(coil_condition_notify(c, 1), 1);
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(coil_lock_release(l), 0);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tb), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	ASSERT(a.held);
	ASSERT_EQ(b.rc, 0);
	ASSERT(b.held);
	ASSERT_EQ(coil_condition_destroy(c), 0);
	return 0;
}

TEST(condition_notification_is_passed_on_by_a_cancelled_waiter)
{
	RUN(cond_pass_on_body);
}

/* ---- Semaphore ---- */

static int sem_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	op->rc = coil_semaphore_acquire(op->obj);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	return 0;
}

static int sem_basic_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_semaphore_t *s, *b;
	ASSERT_EQ(coil_semaphore_create(&s, 2), 0);
	ASSERT_EQ(coil_semaphore_acquire(s), 0);
	ASSERT_EQ(coil_semaphore_acquire_nowait(s), 0);
	ASSERT_EQ(coil_semaphore_value(s), 0);
	ASSERT(coil_semaphore_locked(s));
	ASSERT_EQ(coil_semaphore_acquire_nowait(s), -EAGAIN);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_semaphore_release(s), 0);
	ASSERT_EQ(coil_semaphore_value(s), 3);
	ASSERT_EQ(coil_bounded_semaphore_create(&b, 1), 0);
	ASSERT_EQ(coil_semaphore_release(b), -EOVERFLOW);
	int rc;
	COIL_ASYNC_WITH(coil_semaphore_cm(b), rc) {
		ASSERT(coil_semaphore_locked(b));
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_semaphore_value(b), 1);
	ASSERT_EQ(coil_semaphore_release(b), -EOVERFLOW);
	ASSERT_EQ(coil_semaphore_destroy(s), 0);
	ASSERT_EQ(coil_semaphore_destroy(b), 0);
	return 0;
}

TEST(semaphore_counts_permits_bounded_refuses_extra_release)
{
	coil_semaphore_t *s;
	ASSERT_EQ(coil_semaphore_create(&s, -1), -EINVAL);
	ASSERT_EQ(coil_bounded_semaphore_create(NULL, 1), -EINVAL);
	ASSERT_EQ(coil_semaphore_acquire(NULL), -EINVAL);
	ASSERT_EQ(coil_semaphore_release(NULL), -EINVAL);
	ASSERT_EQ(coil_semaphore_destroy(NULL), -EINVAL);
	RUN(sem_basic_body);
}

static int sem_fifo_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_semaphore_t *s;
	ASSERT_EQ(coil_semaphore_create(&s, 0), 0);
	struct op ops[5];
	coil_task_t *t[5];
	for (int i = 0; i < 5; i++) {
		ops[i] = (struct op){ .obj = s };
		t[i] = spawn(sem_waiter, &ops[i]);
	}
	settle();
	ASSERT_EQ(coil_semaphore_destroy(s), -EBUSY);
	/* 1 leaves the line; 3 is handed a permit and then cancelled. */
	ASSERT(coil_task_cancel(t[1], NULL));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_semaphore_release(s), 0);
	ASSERT(coil_task_cancel(t[3], NULL));
	/* The permits went to waiters, not to the semaphore. */
	ASSERT_EQ(coil_semaphore_value(s), 0);
	ASSERT_EQ(coil_semaphore_acquire_nowait(s), -EAGAIN);
	settle();
	ASSERT_EQ(ops[4].order, 0);
	ASSERT_EQ(coil_semaphore_release(s), 0);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(join_task(t[i]), 0);
	ASSERT_EQ(ops[1].rc, -ECANCELED);
	ASSERT_EQ(ops[3].rc, 0);
	ASSERT_EQ(ops[3].next_rc, -ECANCELED);
	ASSERT_LT(ops[0].order, ops[2].order);
	ASSERT_LT(ops[2].order, ops[3].order);
	ASSERT_LT(ops[3].order, ops[4].order);
	ASSERT_EQ(coil_semaphore_value(s), 0);
	ASSERT_EQ(coil_semaphore_destroy(s), 0);
	return 0;
}

TEST(semaphore_hands_permits_in_order_and_skips_cancelled_waiters)
{
	RUN(sem_fifo_body);
}

struct limited {
	coil_semaphore_t *s;
	int inside, max_inside;
};

static int limited_worker(void *arg, void **result)
{
	(void)result;
	struct limited *lim = arg;
	int rc;
	COIL_ASYNC_WITH(coil_semaphore_cm(lim->s), rc) {
		if (++lim->inside > lim->max_inside)
			lim->max_inside = lim->inside;
		rc = coil_sleep(1);
		lim->inside--;
	}
	return rc;
}

static int sem_cm_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct limited lim = { 0 };
	double t0 = coil_loop_time(NULL);
	ASSERT_EQ(coil_bounded_semaphore_create(&lim.s, 2), 0);
	coil_task_t *t[5];
	for (int i = 0; i < 5; i++)
		t[i] = spawn(limited_worker, &lim);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(join_task(t[i]), 0);
	ASSERT_EQ(lim.max_inside, 2);
	ASSERT_DBL_NEAR(coil_loop_time(NULL) - t0, 3.0, 1e-6);
	ASSERT_EQ(coil_semaphore_value(lim.s), 2);
	ASSERT_EQ(coil_semaphore_destroy(lim.s), 0);
	return 0;
}

TEST(semaphore_context_manager_limits_concurrency)
{
	RUN(sem_cm_body);
}

/* ---- Barrier ---- */

struct party {
	coil_barrier_t *b;
	int rounds;
	int idx[4];
	int rc;
};

static int barrier_party(void *arg, void **result)
{
	(void)result;
	struct party *p = arg;
	for (int r = 0; r < p->rounds; r++) {
		int rc = coil_barrier_wait(p->b);
		if (rc < 0) {
			p->rc = rc;
			return 0;
		}
		p->idx[r] = rc;
	}
	p->rc = coil_sleep(0);
	return 0;
}

static int barrier_rounds_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 3), 0);
	ASSERT_EQ(coil_barrier_parties(b), 3);
	struct party p[3];
	coil_task_t *t[3];
	for (int i = 0; i < 3; i++) {
		p[i] = (struct party){ .b = b, .rounds = 4 };
		t[i] = spawn(barrier_party, &p[i]);
	}
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(join_task(t[i]), 0);
	for (int r = 0; r < 4; r++) {
		int seen = 0;
		for (int i = 0; i < 3; i++) {
			ASSERT_EQ(p[i].rc, 0);
			seen |= 1 << p[i].idx[r];
		}
		ASSERT_EQ(seen, 7);
	}
	ASSERT_EQ(coil_barrier_n_waiting(b), 0);
	ASSERT(!coil_barrier_broken(b));
	ASSERT_EQ(coil_barrier_destroy(b), 0);
	return 0;
}

TEST(barrier_lets_each_full_round_through)
{
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 0), -EINVAL);
	ASSERT_EQ(coil_barrier_create(NULL, 2), -EINVAL);
	ASSERT_EQ(coil_barrier_wait(NULL), -EINVAL);
	ASSERT_EQ(coil_barrier_reset(NULL), -EINVAL);
	ASSERT_EQ(coil_barrier_abort(NULL), -EINVAL);
	ASSERT_EQ(coil_barrier_destroy(NULL), -EINVAL);
	RUN(barrier_rounds_body);
}

static int barrier_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	op->rc = coil_barrier_wait(op->obj);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	return 0;
}

static int barrier_abort_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 3), 0);
	struct op a = { .obj = b }, c = { .obj = b };
	coil_task_t *ta = spawn(barrier_waiter, &a), *tc = spawn(barrier_waiter, &c);
	settle();
	ASSERT_EQ(coil_barrier_n_waiting(b), 2);
	ASSERT_EQ(coil_barrier_destroy(b), -EBUSY);
	ASSERT_EQ(coil_barrier_abort(b), 0);
	ASSERT(coil_barrier_broken(b));
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(a.rc, -EPIPE);
	ASSERT_EQ(c.rc, -EPIPE);
	ASSERT_EQ(coil_barrier_wait(b), -EPIPE);
	/* Reset makes it usable again. */
	ASSERT_EQ(coil_barrier_reset(b), 0);
	ASSERT(!coil_barrier_broken(b));
	a.rc = c.rc = 99;
	ta = spawn(barrier_waiter, &a);
	tc = spawn(barrier_waiter, &c);
	settle();
	ASSERT_EQ(coil_barrier_wait(b), 2);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(a.rc + c.rc, 1);
	ASSERT_EQ(coil_barrier_destroy(b), 0);
	return 0;
}

TEST(barrier_abort_breaks_it_until_reset)
{
	RUN(barrier_abort_body);
}

static int barrier_reset_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 3), 0);
	struct op a = { .obj = b }, c = { .obj = b }, d = { .obj = b };
	coil_task_t *ta = spawn(barrier_waiter, &a), *tc = spawn(barrier_waiter, &c);
	settle();
	/* Reset while two wait: they fail, and once they have left a
	 * newcomer starts a fresh round. */
	ASSERT_EQ(coil_barrier_reset(b), 0);
	coil_task_t *td = spawn(barrier_waiter, &d);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(a.rc, -EPIPE);
	ASSERT_EQ(c.rc, -EPIPE);
	settle();
	ASSERT_EQ(coil_barrier_n_waiting(b), 1);
	ASSERT(!coil_barrier_broken(b));
	/* Cancelled while waiting: it is counted out, the barrier survives. */
	ASSERT(coil_task_cancel(td, NULL));
	ASSERT_EQ(join_task(td), 0);
	ASSERT_EQ(d.rc, -ECANCELED);
	ASSERT_EQ(coil_barrier_n_waiting(b), 0);
	ASSERT_EQ(coil_barrier_destroy(b), 0);
	return 0;
}

TEST(barrier_reset_fails_waiters_and_cancelled_waiter_is_counted_out)
{
	RUN(barrier_reset_body);
}

static int barrier_drain_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_barrier_t *b;
	ASSERT_EQ(coil_barrier_create(&b, 2), 0);
	struct op a = { .obj = b }, c = { .obj = b };
	coil_task_t *ta = spawn(barrier_waiter, &a);
	settle();
	/* We complete the round; a is let through and cancelled before it
	 * runs: it keeps its pass. */
	ASSERT_EQ(coil_barrier_wait(b), 1);
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(coil_barrier_n_waiting(b), 0);
	/* a has not left yet, so our next wait is held until it has; c,
	 * which runs after a, therefore arrives first in the new round. */
	coil_task_t *tc = spawn(barrier_waiter, &c);
	ASSERT_EQ(coil_barrier_wait(b), 1);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(a.rc, 0);
	ASSERT_EQ(a.next_rc, -ECANCELED);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(c.rc, 0);
	ASSERT_EQ(coil_barrier_destroy(b), 0);
	return 0;
}

TEST(barrier_pass_survives_cancel_and_newcomers_wait_for_drain)
{
	RUN(barrier_drain_body);
}

struct held {
	coil_barrier_t *b;
	coil_event_t *go;
	coil_task_t *victim;      /* cancelled by the first party out */
	int rc, victim_done_at_cancel;
};

/* Arrives when `go` is set: while the previous round drains. */
static int late_party(void *arg, void **result)
{
	(void)result;
	struct held *h = arg;
	ASSERT_EQ(coil_event_wait(h->go), 0);
	h->rc = coil_barrier_wait(h->b);
	h->victim_done_at_cancel++;
	return 0;
}

static int cancelling_party(void *arg, void **result)
{
	(void)result;
	struct held *h = arg;
	ASSERT_EQ(coil_barrier_wait(h->b), 0);
	/* The round is still draining: the late party is held, waiting. */
	h->victim_done_at_cancel = 100;
	ASSERT(coil_task_cancel(h->victim, NULL));
	return 0;
}

static int barrier_blocked_cancel_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct held h = { 0 };
	struct op c;
	ASSERT_EQ(coil_barrier_create(&h.b, 3), 0);
	ASSERT_EQ(coil_event_create(&h.go), 0);
	c = (struct op){ .obj = h.b };
	h.victim = spawn(late_party, &h);
	coil_task_t *ta = spawn(cancelling_party, &h);
	coil_task_t *tc = spawn(barrier_waiter, &c);
	settle();
	ASSERT_EQ(coil_event_set(h.go), 0);
	ASSERT_EQ(coil_barrier_wait(h.b), 2);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tc), 0);
	ASSERT_EQ(join_task(h.victim), 0);
	ASSERT_EQ(c.rc, 1);
	ASSERT_EQ(h.rc, -ECANCELED);
	ASSERT_EQ(h.victim_done_at_cancel, 101);
	ASSERT_EQ(coil_barrier_n_waiting(h.b), 0);
	ASSERT_EQ(coil_barrier_destroy(h.b), 0);
	ASSERT_EQ(coil_event_destroy(h.go), 0);
	return 0;
}

TEST(barrier_newcomer_cancelled_while_held_leaves_no_trace)
{
	RUN(barrier_blocked_cancel_body);
}

/* ---- Stress ---- */

struct stress {
	coil_queue_t *q;
	coil_lock_t *lock;
	coil_semaphore_t *sem;
	unsigned char *seen;
	int per_producer;
	long consumed;            /* under lock */
	long in_sem, max_in_sem;  /* under sem */
	int next_producer;
};

static int stress_producer(void *arg, void **result)
{
	(void)result;
	struct stress *s = arg;
	int base = s->next_producer++ * s->per_producer;
	for (int i = 0; i < s->per_producer; i++) {
		int rc = coil_queue_put(s->q, (void *)(intptr_t)(base + i));
		if (rc)
			return rc;
		if (i % 7 == 0 && (rc = coil_sleep(0)))
			return rc;
	}
	return 0;
}

static int stress_consumer(void *arg, void **result)
{
	(void)result;
	struct stress *s = arg;
	void *v;
	int rc;
	while ((rc = coil_queue_get(s->q, &v)) == 0) {
		int id = (int)(intptr_t)v;
		COIL_ASYNC_WITH(coil_lock_cm(s->lock), rc) {
			long c = s->consumed;
			/* Another task runs here; the lock keeps it out. */
			if (id % 5 == 0 && (rc = coil_sleep(0)))
				return rc;
			s->consumed = c + 1;
			s->seen[id]++;
		}
		if (rc)
			return rc;
		COIL_ASYNC_WITH(coil_semaphore_cm(s->sem), rc) {
			if (++s->in_sem > s->max_in_sem)
				s->max_in_sem = s->in_sem;
			/* A timer: the others pile up at the semaphore. */
			if (id % 3 == 0 && (rc = coil_sleep_ns(1000)))
				return rc;
			s->in_sem--;
		}
		if (rc)
			return rc;
		ASSERT_EQ(coil_queue_task_done(s->q), 0);
	}
	return rc == COIL_ECLOSED ? 0 : rc;
}

static int stress_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int producers = 100, consumers = 100, per = 1000;
	if (test_heavy_tools())
		producers = consumers = 20, per = 250;
	struct stress s = { .per_producer = per };
	int n = producers * per;
	s.seen = calloc((size_t)n, 1);
	ASSERT(s.seen);
	ASSERT_EQ(coil_queue_create(&s.q, COIL_QUEUE_FIFO, 64), 0);
	ASSERT_EQ(coil_lock_create(&s.lock), 0);
	ASSERT_EQ(coil_bounded_semaphore_create(&s.sem, 4), 0);
	coil_task_t **t = calloc((size_t)(producers + consumers), sizeof(*t));
	ASSERT(t);
	for (int i = 0; i < producers + consumers; i++)
		t[i] = spawn(i % 2 ? stress_consumer : stress_producer, &s);
	for (int i = 0; i < producers + consumers; i += 2)
		ASSERT_EQ(join_task(t[i]), 0);
	ASSERT_EQ(coil_queue_join(s.q), 0);
	ASSERT_EQ(coil_queue_shutdown(s.q, false), 0);
	for (int i = 1; i < producers + consumers; i += 2)
		ASSERT_EQ(join_task(t[i]), 0);
	ASSERT_EQ(s.consumed, n);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(s.seen[i], 1);
	ASSERT_EQ(s.max_in_sem, 4);
	ASSERT_EQ(coil_semaphore_value(s.sem), 4);
	ASSERT(!coil_lock_locked(s.lock));
	ASSERT_EQ(coil_queue_destroy(s.q), 0);
	ASSERT_EQ(coil_lock_destroy(s.lock), 0);
	ASSERT_EQ(coil_semaphore_destroy(s.sem), 0);
	free(s.seen);
	free(t);
	return 0;
}

TEST(stress_many_producers_and_consumers_lose_and_repeat_nothing)
{
	RUN(stress_body);
}

/* A waiter whose lock's holder ended without releasing it: cancellation
 * cannot get the lock back, and only the loop's force-close ends the
 * wait, without the lock. */
static int orphan_waiter(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	coil_condition_t *c = op->obj;
	ASSERT_EQ(coil_lock_acquire(coil_condition_lock(c)), 0);
	op->rc = coil_condition_wait(c);
	op->held = coil_lock_locked(coil_condition_lock(c));
	return 0;
}

static int orphan_body(void *arg, void **result)
{
	(void)result;
	struct op *op = arg;
	ASSERT_EQ(coil_spawn(NULL, orphan_waiter, op, NULL), 0);
	settle();
	/* We take the lock and end holding it. */
	ASSERT_EQ(coil_lock_acquire(coil_condition_lock(op->obj)), 0);
	return 0;
}

TEST(condition_wait_ends_without_the_lock_only_when_force_closed)
{
	coil_condition_t *c;
	ASSERT_EQ(coil_condition_create(&c, NULL), 0);
	struct op op = { .obj = c, .rc = 1 };
	ASSERT_EQ(run_main(orphan_body, &op), 0);
	ASSERT_EQ(op.rc, COIL_ECLOSED);
	/* The main task still holds it: nothing else changed it. A held lock
	 * nobody waits for may be destroyed. */
	ASSERT(op.held);
	ASSERT_EQ(coil_condition_destroy(c), 0);
}

TEST_LIST(
	TEST_ENTRY(lock_acquire_release_and_context_manager),
	TEST_ENTRY(lock_is_handed_to_waiters_in_arrival_order),
	TEST_ENTRY(lock_cancelled_waiter_is_skipped_handed_waiter_keeps_lock),
	TEST_ENTRY(event_set_wakes_all_waiters_in_order),
	TEST_ENTRY(condition_notify_wakes_n_waiters_in_order_with_the_lock),
	TEST_ENTRY(condition_wait_for_returns_when_the_predicate_holds),
	TEST_ENTRY(condition_cancelled_waiter_reacquires_the_lock),
	TEST_ENTRY(condition_notification_is_passed_on_by_a_cancelled_waiter),
	TEST_ENTRY(condition_wait_ends_without_the_lock_only_when_force_closed),
	TEST_ENTRY(semaphore_counts_permits_bounded_refuses_extra_release),
	TEST_ENTRY(semaphore_hands_permits_in_order_and_skips_cancelled_waiters),
	TEST_ENTRY(semaphore_context_manager_limits_concurrency),
	TEST_ENTRY(barrier_lets_each_full_round_through),
	TEST_ENTRY(barrier_abort_breaks_it_until_reset),
	TEST_ENTRY(barrier_reset_fails_waiters_and_cancelled_waiter_is_counted_out),
	TEST_ENTRY(barrier_pass_survives_cancel_and_newcomers_wait_for_drain),
	TEST_ENTRY(barrier_newcomer_cancelled_while_held_leaves_no_trace),
	TEST_ENTRY(stress_many_producers_and_consumers_lose_and_repeat_nothing))
