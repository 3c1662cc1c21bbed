/* tests/test_queue.c: queues (coil/sync.h): FIFO, LIFO, priority, bounded
 * puts, fairness, cancellation at every await, join, shutdown. */
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
#define ITEM(i) ((void *)(intptr_t)(i))
#define VAL(p) ((int)(intptr_t)(p))

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

/* Awaits t, drops it and returns its code. */
static int join_task(coil_task_t *t)
{
	int rc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	return rc;
}


/* One task's call on a queue and what came of it. */
struct qop {
	coil_queue_t *q;
	void *item;
	int rc;
	int order;                /* when it finished, 1-based */
	int next_rc;              /* its next await after the call */
};

static int getter(void *arg, void **result)
{
	(void)result;
	struct qop *op = arg;
	op->rc = coil_queue_get(op->q, &op->item);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	return 0;
}

static int putter(void *arg, void **result)
{
	(void)result;
	struct qop *op = arg;
	op->rc = coil_queue_put(op->q, op->item);
	op->order = ++finish_order;
	op->next_rc = coil_sleep(0);
	return 0;
}

static int joiner(void *arg, void **result)
{
	(void)result;
	struct qop *op = arg;
	op->rc = coil_queue_join(op->q);
	op->order = ++finish_order;
	return 0;
}

static coil_queue_t *new_queue(coil_queue_kind_t kind, size_t maxsize)
{
	coil_queue_t *q;
	ASSERT_EQ(coil_queue_create(&q, kind, maxsize), 0);
	return q;
}

static void *get_now(coil_queue_t *q)
{
	void *v = NULL;
	ASSERT_EQ(coil_queue_get_nowait(q, &v), 0);
	return v;
}

static int fifo_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0);
	ASSERT(coil_queue_empty(q));
	ASSERT_EQ(coil_queue_maxsize(q), 0);
	/* Wrap the ring and make it grow while wrapped. */
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(coil_queue_put(q, ITEM(i)), 0);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(VAL(get_now(q)), i);
	for (int i = 6; i < 100; i++)
		ASSERT_EQ(coil_queue_put_nowait(q, ITEM(i)), 0);
	ASSERT_EQ(coil_queue_qsize(q), 96);
	ASSERT(!coil_queue_full(q));
	for (int i = 4; i < 100; i++) {
		void *v;
		ASSERT_EQ(coil_queue_get(q, &v), 0);
		ASSERT_EQ(VAL(v), i);
	}
	void *v;
	ASSERT_EQ(coil_queue_get_nowait(q, &v), -EAGAIN);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(fifo_gives_items_in_put_order_across_growth)
{
	RUN(fifo_body);
}

static int lifo_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_LIFO, 0);
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(coil_queue_put_nowait(q, ITEM(i)), 0);
	for (int i = 19; i >= 10; i--)
		ASSERT_EQ(VAL(get_now(q)), i);
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(42)), 0);
	ASSERT_EQ(VAL(get_now(q)), 42);
	for (int i = 9; i >= 0; i--)
		ASSERT_EQ(VAL(get_now(q)), i);
	ASSERT(coil_queue_empty(q));
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(lifo_gives_newest_first)
{
	RUN(lifo_body);
}

struct job {
	int prio;
	int id;
};

static int job_cmp(const void *a, const void *b, void *arg)
{
	const struct job *x = a, *y = b;
	ASSERT_PTR_EQ(arg, &finish_order);
	return (x->prio > y->prio) - (x->prio < y->prio);
}

static int priority_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_PRIORITY, 0);
	static const int vals[] = { 5, -3, 9, 0, 5, 1, -3, 7, 2, 100, -50 };
	static const int sorted[] = { -50, -3, -3, 0, 1, 2, 5, 5, 7, 9, 100 };
	for (size_t i = 0; i < 11; i++)
		ASSERT_EQ(coil_queue_put_nowait(q, ITEM(vals[i])), 0);
	ASSERT_EQ(coil_queue_set_compare(q, job_cmp, NULL), -EBUSY);
	for (size_t i = 0; i < 11; i++)
		ASSERT_EQ(VAL(get_now(q)), sorted[i]);
	/* A comparator; equal priorities come out in put order. */
	struct job jobs[40];
	ASSERT_EQ(coil_queue_set_compare(q, job_cmp, &finish_order), 0);
	for (int i = 0; i < 40; i++) {
		jobs[i].prio = (i * 7) % 4;
		jobs[i].id = i;
		ASSERT_EQ(coil_queue_put(q, &jobs[i]), 0);
	}
	int last_prio = -1, last_id = -1;
	for (int i = 0; i < 40; i++) {
		struct job *j = get_now(q);
		if (j->prio != last_prio)
			last_id = -1;
		ASSERT_GE(j->prio, last_prio);
		ASSERT_GT(j->id, last_id);
		last_prio = j->prio;
		last_id = j->id;
	}
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(priority_gives_smallest_first_fifo_among_equals)
{
	RUN(priority_body);
}

TEST(bad_input_is_refused)
{
	coil_queue_t *q;
	ASSERT_EQ(coil_queue_create(NULL, COIL_QUEUE_FIFO, 0), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, COIL_QUEUE_FIFO, (size_t)-1), -EINVAL);
	ASSERT_EQ(coil_queue_create(&q, (coil_queue_kind_t)7, 0), -EINVAL);
	ASSERT_EQ(coil_queue_put(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_put_nowait(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_get_nowait(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_join(NULL), -EINVAL);
	ASSERT_EQ(coil_queue_task_done(NULL), -EINVAL);
	ASSERT_EQ(coil_queue_shutdown(NULL, false), -EINVAL);
	ASSERT_EQ(coil_queue_destroy(NULL), -EINVAL);
	ASSERT_EQ(coil_queue_set_item_dtor(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_qsize(NULL), 0);
	ASSERT(coil_queue_empty(NULL));
	ASSERT(!coil_queue_full(NULL));
	ASSERT_EQ(coil_queue_create(&q, COIL_QUEUE_FIFO, 1), 0);
	ASSERT_EQ(coil_queue_set_compare(q, job_cmp, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_get_nowait(q, NULL), -EINVAL);
	ASSERT_EQ(coil_queue_task_done(q), -EINVAL);
	/* Awaits need a task; the non-blocking calls do not. */
	void *v;
	ASSERT_EQ(coil_queue_get(q, &v), COIL_EINVALSTATE);
	ASSERT_EQ(coil_queue_put(q, ITEM(1)), COIL_EINVALSTATE);
	ASSERT_EQ(coil_queue_join(q), COIL_EINVALSTATE);
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(1)), 0);
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(2)), -EAGAIN);
	ASSERT(coil_queue_full(q));
	ASSERT_EQ(coil_queue_destroy(q), 0);
}

static int get_waits_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0);
	struct qop ops[3];
	coil_task_t *t[3];
	for (int i = 0; i < 3; i++) {
		ops[i] = (struct qop){ .q = q };
		t[i] = spawn(getter, &ops[i]);
	}
	ASSERT_EQ(coil_sleep(1), 0);
	ASSERT_EQ(ops[0].order, 0);
	/* Puts go straight to the waiting getters, first come first served. */
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_queue_put(q, ITEM(10 + i)), 0);
	ASSERT_EQ(coil_queue_qsize(q), 0);
	void *v;
	ASSERT_EQ(coil_queue_get_nowait(q, &v), -EAGAIN);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(join_task(t[i]), 0);
		ASSERT_EQ(ops[i].rc, 0);
		ASSERT_EQ(VAL(ops[i].item), 10 + i);
		ASSERT_EQ(ops[i].order, i + 1);
	}
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(getters_wait_and_are_served_in_arrival_order)
{
	RUN(get_waits_body);
}

static int bounded_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 2);
	ASSERT_EQ(coil_queue_put(q, ITEM(0)), 0);
	ASSERT_EQ(coil_queue_put(q, ITEM(1)), 0);
	struct qop ops[3];
	coil_task_t *t[3];
	for (int i = 0; i < 3; i++) {
		ops[i] = (struct qop){ .q = q, .item = ITEM(2 + i) };
		t[i] = spawn(putter, &ops[i]);
	}
	settle();
	ASSERT_EQ(ops[0].order, 0);
	ASSERT(coil_queue_full(q));
	/* A newcomer cannot slip in ahead of the blocked putters. */
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(99)), -EAGAIN);
	/* Each get moves the first blocked putter's item in at once. */
	ASSERT_EQ(VAL(get_now(q)), 0);
	ASSERT_EQ(coil_queue_qsize(q), 2);
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(99)), -EAGAIN);
	for (int i = 1; i < 5; i++) {
		void *v;
		ASSERT_EQ(coil_queue_get(q, &v), 0);
		ASSERT_EQ(VAL(v), i);
	}
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(join_task(t[i]), 0);
		ASSERT_EQ(ops[i].rc, 0);
		ASSERT_EQ(ops[i].order, i + 1);
	}
	ASSERT(coil_queue_empty(q));
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(bounded_put_blocks_and_putters_hand_over_in_order)
{
	RUN(bounded_body);
}

static int cancelled_getter_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0);
	struct qop a = { .q = q }, b = { .q = q };
	coil_task_t *ta = spawn(getter, &a), *tb = spawn(getter, &b);
	settle();
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(coil_queue_put(q, ITEM(7)), 0);
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(join_task(tb), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	ASSERT_EQ(b.rc, 0);
	ASSERT_EQ(VAL(b.item), 7);
	ASSERT(coil_queue_empty(q));
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(cancelled_getter_does_not_swallow_the_next_item)
{
	RUN(cancelled_getter_body);
}

static int handed_getter_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0);
	struct qop a = { .q = q };
	coil_task_t *ta = spawn(getter, &a);
	settle();
	ASSERT_EQ(coil_queue_put(q, ITEM(5)), 0);
	/* The item is a's already: the cancellation waits for its next await. */
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(a.rc, 0);
	ASSERT_EQ(VAL(a.item), 5);
	ASSERT_EQ(a.next_rc, -ECANCELED);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(getter_handed_an_item_keeps_it_when_cancelled)
{
	RUN(handed_getter_body);
}

static int cancelled_putter_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 1);
	ASSERT_EQ(coil_queue_put(q, ITEM(1)), 0);
	struct qop a = { .q = q, .item = ITEM(2) }, b = { .q = q, .item = ITEM(3) };
	coil_task_t *ta = spawn(putter, &a), *tb = spawn(putter, &b);
	settle();
	ASSERT(coil_task_cancel(ta, NULL));
	ASSERT_EQ(join_task(ta), 0);
	ASSERT_EQ(a.rc, -ECANCELED);
	/* b's put is handed over on the next get, then b is cancelled
	 * before it runs: its item stays put. */
	ASSERT_EQ(VAL(get_now(q)), 1);
	ASSERT(coil_task_cancel(tb, NULL));
	ASSERT_EQ(join_task(tb), 0);
	ASSERT_EQ(b.rc, 0);
	ASSERT_EQ(b.next_rc, -ECANCELED);
	ASSERT_EQ(VAL(get_now(q)), 3);
	void *v;
	ASSERT_EQ(coil_queue_get_nowait(q, &v), -EAGAIN);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(coil_queue_task_done(q), -EINVAL);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(cancelled_putter_puts_nothing_handed_over_putter_keeps_its_put)
{
	RUN(cancelled_putter_body);
}

static int join_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0);
	ASSERT_EQ(coil_queue_join(q), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_queue_put(q, ITEM(i)), 0);
	struct qop j = { .q = q }, k = { .q = q };
	coil_task_t *tj = spawn(joiner, &j), *tk = spawn(joiner, &k);
	settle();
	ASSERT(coil_task_cancel(tk, NULL));
	for (int i = 0; i < 3; i++)
		(void)get_now(q);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	settle();
	ASSERT_EQ(j.order, 0);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(coil_queue_task_done(q), -EINVAL);
	ASSERT_EQ(join_task(tj), 0);
	ASSERT_EQ(join_task(tk), 0);
	ASSERT_EQ(j.rc, 0);
	ASSERT_EQ(k.rc, -ECANCELED);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	return 0;
}

TEST(join_waits_until_every_item_is_done)
{
	RUN(join_body);
}

static int shutdown_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_FIFO, 0), *full = new_queue(COIL_QUEUE_FIFO, 1);
	ASSERT_EQ(coil_queue_put(full, ITEM(1)), 0);
	struct qop g = { .q = q }, p = { .q = full, .item = ITEM(2) };
	coil_task_t *tg = spawn(getter, &g), *tp = spawn(putter, &p);
	settle();
	ASSERT_EQ(coil_queue_shutdown(q, false), 0);
	ASSERT_EQ(coil_queue_shutdown(full, false), 0);
	ASSERT_EQ(join_task(tg), 0);
	ASSERT_EQ(join_task(tp), 0);
	ASSERT_EQ(g.rc, COIL_ECLOSED);
	ASSERT_EQ(p.rc, COIL_ECLOSED);
	ASSERT(coil_queue_is_shutdown(full));
	/* Puts are refused; gets drain what is left, then report the end. */
	ASSERT_EQ(coil_queue_put(full, ITEM(3)), COIL_ECLOSED);
	ASSERT_EQ(coil_queue_put_nowait(q, ITEM(3)), COIL_ECLOSED);
	void *v;
	ASSERT_EQ(coil_queue_get(full, &v), 0);
	ASSERT_EQ(VAL(v), 1);
	ASSERT_EQ(coil_queue_get(full, &v), COIL_ECLOSED);
	ASSERT_EQ(coil_queue_get_nowait(full, &v), COIL_ECLOSED);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	ASSERT_EQ(coil_queue_destroy(full), 0);
	return 0;
}

TEST(shutdown_refuses_puts_drains_gets_and_wakes_waiters)
{
	RUN(shutdown_body);
}

static int dtor_calls;       /* reset by the tests that count */

static void count_dtor(void *item)
{
	(void)item;
	dtor_calls++;
}

static int immediate_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_PRIORITY, 0);
	dtor_calls = 0;
	ASSERT_EQ(coil_queue_set_item_dtor(q, count_dtor), 0);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(coil_queue_put(q, ITEM(i)), 0);
	/* One item is out (not done): join waits for it even after the drop. */
	(void)get_now(q);
	struct qop j = { .q = q };
	coil_task_t *tj = spawn(joiner, &j);
	settle();
	ASSERT_EQ(coil_queue_shutdown(q, true), 0);
	ASSERT_EQ(dtor_calls, 3);
	ASSERT(coil_queue_empty(q));
	settle();
	ASSERT_EQ(j.order, 0);
	ASSERT_EQ(coil_queue_task_done(q), 0);
	ASSERT_EQ(join_task(tj), 0);
	ASSERT_EQ(j.rc, 0);
	void *v;
	ASSERT_EQ(coil_queue_get(q, &v), COIL_ECLOSED);
	ASSERT_EQ(coil_queue_destroy(q), 0);
	ASSERT_EQ(dtor_calls, 3);
	return 0;
}

TEST(immediate_shutdown_drops_items_and_releases_joiners)
{
	RUN(immediate_body);
}

static int destroy_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_queue_t *q = new_queue(COIL_QUEUE_LIFO, 0);
	struct qop g = { .q = q };
	coil_task_t *tg = spawn(getter, &g);
	settle();
	ASSERT_EQ(coil_queue_destroy(q), -EBUSY);
	coil_task_cancel(tg, NULL);
	ASSERT_EQ(join_task(tg), 0);
	ASSERT_EQ(g.rc, -ECANCELED);
	ASSERT_EQ(coil_queue_set_item_dtor(q, count_dtor), 0);
	ASSERT_EQ(coil_queue_put(q, ITEM(1)), 0);
	ASSERT_EQ(coil_queue_put(q, ITEM(2)), 0);
	dtor_calls = 0;
	ASSERT_EQ(coil_queue_destroy(q), 0);
	ASSERT_EQ(dtor_calls, 2);
	return 0;
}

TEST(destroy_is_refused_while_waited_on_and_frees_items)
{
	RUN(destroy_body);
}

/* W3 of WORKLOADS.md in small: two one-slot queues between two tasks. */
struct pingpong {
	coil_queue_t *ping, *pong;
	int n;
};

static int pong_task(void *arg, void **result)
{
	(void)result;
	struct pingpong *pp = arg;
	void *x;
	while (coil_queue_get(pp->ping, &x) == 0)
		ASSERT_EQ(coil_queue_put(pp->pong, ITEM(VAL(x) + 1)), 0);
	return 0;
}

static int pingpong_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	struct pingpong pp = { new_queue(COIL_QUEUE_FIFO, 1),
			       new_queue(COIL_QUEUE_FIFO, 1), 10000 };
	coil_task_t *b = spawn(pong_task, &pp);
	void *v = ITEM(0);
	for (int i = 0; i < pp.n; i++) {
		ASSERT_EQ(coil_queue_put(pp.ping, ITEM(VAL(v) + 1)), 0);
		ASSERT_EQ(coil_queue_get(pp.pong, &v), 0);
	}
	ASSERT_EQ(VAL(v), 2 * pp.n);
	ASSERT_EQ(coil_queue_shutdown(pp.ping, false), 0);
	ASSERT_EQ(join_task(b), 0);
	ASSERT_EQ(coil_queue_destroy(pp.ping), 0);
	ASSERT_EQ(coil_queue_destroy(pp.pong), 0);
	return 0;
}

TEST(pingpong_over_one_slot_queues)
{
	RUN(pingpong_body);
}

/* The run ends with tasks still waiting in get, put and join: they are
 * cancelled and leave the queues clean, so destroy succeeds. */
struct leftover {
	coil_queue_t *empty, *full;
	struct qop g, p, j;
};

static int leftover_body(void *arg, void **result)
{
	(void)result;
	struct leftover *lo = arg;
	ASSERT_EQ(coil_queue_put(lo->full, ITEM(1)), 0);
	lo->g = (struct qop){ .q = lo->empty };
	lo->p = (struct qop){ .q = lo->full, .item = ITEM(2) };
	lo->j = (struct qop){ .q = lo->full };
	ASSERT_EQ(coil_spawn(NULL, getter, &lo->g, NULL), 0);
	ASSERT_EQ(coil_spawn(NULL, putter, &lo->p, NULL), 0);
	ASSERT_EQ(coil_spawn(NULL, joiner, &lo->j, NULL), 0);
	settle();
	return 0;
}

TEST(waiters_left_at_the_end_of_the_run_leave_no_ghost)
{
	struct leftover lo;
	ASSERT_EQ(coil_queue_create(&lo.empty, COIL_QUEUE_FIFO, 0), 0);
	ASSERT_EQ(coil_queue_create(&lo.full, COIL_QUEUE_FIFO, 1), 0);
	ASSERT_EQ(run_main(leftover_body, &lo), 0);
	ASSERT_EQ(lo.g.rc, -ECANCELED);
	ASSERT_EQ(lo.p.rc, -ECANCELED);
	ASSERT_EQ(lo.j.rc, -ECANCELED);
	ASSERT_EQ(coil_queue_qsize(lo.full), 1);
	ASSERT_EQ(coil_queue_destroy(lo.empty), 0);
	ASSERT_EQ(coil_queue_destroy(lo.full), 0);
}

TEST_LIST(
	TEST_ENTRY(fifo_gives_items_in_put_order_across_growth),
	TEST_ENTRY(lifo_gives_newest_first),
	TEST_ENTRY(priority_gives_smallest_first_fifo_among_equals),
	TEST_ENTRY(bad_input_is_refused),
	TEST_ENTRY(getters_wait_and_are_served_in_arrival_order),
	TEST_ENTRY(bounded_put_blocks_and_putters_hand_over_in_order),
	TEST_ENTRY(cancelled_getter_does_not_swallow_the_next_item),
	TEST_ENTRY(getter_handed_an_item_keeps_it_when_cancelled),
	TEST_ENTRY(cancelled_putter_puts_nothing_handed_over_putter_keeps_its_put),
	TEST_ENTRY(join_waits_until_every_item_is_done),
	TEST_ENTRY(shutdown_refuses_puts_drains_gets_and_wakes_waiters),
	TEST_ENTRY(immediate_shutdown_drops_items_and_releases_joiners),
	TEST_ENTRY(destroy_is_refused_while_waited_on_and_frees_items),
	TEST_ENTRY(pingpong_over_one_slot_queues),
	TEST_ENTRY(waiters_left_at_the_end_of_the_run_leave_no_ghost))
