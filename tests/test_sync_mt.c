/*
 * tests/test_sync_mt.c: the synchronisation primitives shared by tasks that
 * run on several workers.
 *
 * Each test runs on a runtime of 2 and then of 4 workers (coil_run with
 * opts.workers). Many tasks (a "crowd"), spread over the workers by stealing
 * and moved between them by yields, hammer one primitive while a canceller
 * task cancels random members that have started. A member that sees
 * -ECANCELED withdraws the request (coil_task_uncancel) and tries again, as
 * a task that handles CancelledError and carries on would, so every member
 * still does all its work and the totals are exact:
 *  - Queue: producers and consumers through a small bounded queue; every
 *    item is received exactly once, join returns once all are done;
 *  - Lock: a plain (non-atomic) counter, incremented under the lock with a
 *    yield between the read and the write, reaches the exact total;
 *  - Semaphore: never more holders than its value;
 *  - Condition: items handed through a predicate, each taken once;
 *  - Event: every waiter of every round returns 0 once the event is set;
 *  - Barrier: without cancellations, every round lets exactly `parties`
 *    tasks through with distinct indices; with them, it keeps going and
 *    everybody leaves once it is aborted.
 * Each primitive must then be idle (destroy succeeds: no waiter left
 * linked). At least two workers must have run members, or the test proved
 * nothing. Sizes shrink under TSan, which must find no race.
 * COIL_TEST_VERBOSE=1 prints, per crowd, how many cancellations were made
 * and delivered and which workers ran members.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"

#define MAX_MEMBERS 64

typedef struct crowd crowd_t;

typedef struct member {
	crowd_t *crowd;
	coil_task_t *task;
	atomic_bool started;      /* its body runs: it may be cancelled */
	int index;
	uint64_t rng;
} member_t;

struct crowd {
	member_t m[MAX_MEMBERS];
	int n;
	void *ctx;                /* the scenario's shared state */
	coil_task_t *canceller;
	atomic_bool stop;
	atomic_long cancels;      /* requests that reached a live task */
	atomic_long delivered;    /* -ECANCELED seen by members */
};

static atomic_uint workers_seen; /* bit i: worker i ran a member */

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Scales a loop count down under the heavy tools. */
static int scaled(int n)
{
	return test_heavy_tools() ? n / 5 : n;
}

static void note_worker(void)
{
	int w = coil_current_worker();
	if (w >= 0 && w < 32)
		atomic_fetch_or_explicit(&workers_seen, 1u << w, memory_order_relaxed);
}

static member_t *member_begin(void *arg)
{
	member_t *m = arg;
	atomic_store(&m->started, true);
	note_worker();
	return m;
}

/* After an await returned -ECANCELED: withdraw the request and go on. */
static void absorb(member_t *m)
{
	atomic_fetch_add_explicit(&m->crowd->delivered, 1, memory_order_relaxed);
	coil_task_uncancel(coil_current_task());
}

/* One trip through the run queues, which may move the task elsewhere. */
static void yield(member_t *m)
{
	int rc = coil_sleep(0);
	if (rc == -ECANCELED)
		absorb(m);
	else
		ASSERT_EQ(rc, 0);
	note_worker();
}

static void crowd_init(crowd_t *c, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
}

/* Spawns one member running fn(member); returns its index. */
static int crowd_add(crowd_t *c, coil_fn fn)
{
	ASSERT_LT(c->n, MAX_MEMBERS);
	member_t *m = &c->m[c->n];
	m->crowd = c;
	m->index = c->n;
	m->rng = 0x5EED0000u + (uint64_t)c->n;
	ASSERT_EQ(coil_spawn(&m->task, fn, m, NULL), 0);
	return c->n++;
}

static int canceller_main(void *arg, void **result)
{
	crowd_t *c = arg;
	(void)result;
	uint64_t rng = 42;
	while (!atomic_load(&c->stop)) {
		member_t *m = &c->m[rnd(&rng) % (uint64_t)c->n];
		if (atomic_load(&m->started) && coil_task_cancel(m->task, NULL))
			atomic_fetch_add_explicit(&c->cancels, 1, memory_order_relaxed);
		/* Mostly one trip through the run queues, now and then a
		 * pause that lets a whole burst of work run uncancelled. */
		uint64_t r = rnd(&rng);
		ASSERT_EQ(coil_sleep_ns(r % 4 ? 0 : (int64_t)(r >> 32) % 40000), 0);
	}
	return 0;
}

/* Starts cancelling random members; spawned once every member's handle is
 * stored, so that the canceller reads them after they were written. */
static void crowd_cancel_start(crowd_t *c)
{
	ASSERT_EQ(coil_spawn(&c->canceller, canceller_main, c, NULL), 0);
}

static void crowd_cancel_stop(crowd_t *c)
{
	if (!c->canceller)
		return;
	atomic_store(&c->stop, true);
	ASSERT_EQ(coil_await(coil_task_future(c->canceller), NULL), 0);
	coil_task_detach(c->canceller);
	c->canceller = NULL;
}

/* Awaits members [from, to): each must end with 0. */
static void crowd_await(crowd_t *c, int from, int to)
{
	for (int i = from; i < to; i++)
		ASSERT_EQ(coil_await(coil_task_future(c->m[i].task), NULL), 0);
}

static void crowd_free(crowd_t *c)
{
	crowd_cancel_stop(c);
	if (getenv("COIL_TEST_VERBOSE"))
		fprintf(stderr, "  %d members, %ld cancels, %ld delivered, workers %#x\n",
			c->n, atomic_load(&c->cancels), atomic_load(&c->delivered),
			atomic_load(&workers_seen));
	for (int i = 0; i < c->n; i++)
		coil_task_detach(c->m[i].task);
}

/* Runs main_fn as the main task of a runtime of `workers` workers. */
static void run_on(unsigned workers, coil_fn main_fn)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	/* That the members really ran on several workers (else the run
	 * proves nothing cross-worker). A short run on a busy machine may
	 * leave everything to one worker: each run is checked in full, and
	 * one that stayed on one worker is run again, a few times at most.
	 * Valgrind runs one thread at a time: there it is not asked. */
	for (int attempt = 0;; attempt++) {
		atomic_store(&workers_seen, 0);
		int rc = coil_run(main_fn, NULL, NULL, &o);
		TEST_SKIP_UNLESS_RING(rc);
		ASSERT_EQ(rc, 0);
		if (getenv("COIL_VALGRIND") ||
		    __builtin_popcount(atomic_load(&workers_seen)) >= 2)
			break;
		ASSERT_LT(attempt, 9);
	}
}

/* --- Queue -------------------------------------------------------------- */

#define Q_PRODUCERS 4
#define Q_CONSUMERS 4
#define Q_SENTINEL ((void *)(intptr_t)-1)

typedef struct qstate {
	coil_queue_t *q;
	int per_producer;
	atomic_uchar *seen;       /* per item id (1..total): times received */
} qstate_t;

static int producer(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	qstate_t *s = m->crowd->ctx;
	(void)result;
	for (int i = 0; i < s->per_producer; i++) {
		intptr_t id = (intptr_t)m->index * s->per_producer + i + 1;
		int rc;
		/* A cancelled put has put nothing: put the item again. */
		while ((rc = coil_queue_put(s->q, (void *)id)) == -ECANCELED)
			absorb(m);
		ASSERT_EQ(rc, 0);
		if (rnd(&m->rng) % 16 == 0)
			yield(m);
	}
	return 0;
}

static int consumer(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	qstate_t *s = m->crowd->ctx;
	(void)result;
	intptr_t total = (intptr_t)Q_PRODUCERS * s->per_producer;
	for (;;) {
		void *item = NULL;
		int rc;
		/* A cancelled get has taken nothing. */
		while ((rc = coil_queue_get(s->q, &item)) == -ECANCELED)
			absorb(m);
		ASSERT_EQ(rc, 0);
		note_worker();
		if (item == Q_SENTINEL) {
			ASSERT_EQ(coil_queue_task_done(s->q), 0);
			return 0;
		}
		intptr_t id = (intptr_t)item;
		ASSERT(id >= 1 && id <= total);
		ASSERT_EQ(atomic_fetch_add(&s->seen[id], 1), 0);
		ASSERT_EQ(coil_queue_task_done(s->q), 0);
		if (rnd(&m->rng) % 16 == 0)
			yield(m);
	}
}

static int queue_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	qstate_t s = { .per_producer = scaled(40000) };
	size_t total = (size_t)Q_PRODUCERS * (size_t)s.per_producer;
	s.seen = calloc(total + 1, sizeof(*s.seen));
	ASSERT(s.seen != NULL);
	ASSERT_EQ(coil_queue_create(&s.q, COIL_QUEUE_FIFO, 4), 0);
	crowd_t c;
	crowd_init(&c, &s);
	for (int i = 0; i < Q_PRODUCERS; i++)
		crowd_add(&c, producer);
	for (int i = 0; i < Q_CONSUMERS; i++)
		crowd_add(&c, consumer);
	crowd_cancel_start(&c);
	crowd_await(&c, 0, Q_PRODUCERS);
	/* Every item is put: join returns once each has been marked done. */
	ASSERT_EQ(coil_queue_join(s.q), 0);
	for (size_t id = 1; id <= total; id++)
		ASSERT_EQ(atomic_load(&s.seen[id]), 1);
	crowd_cancel_stop(&c);
	for (int i = 0; i < Q_CONSUMERS; i++)
		ASSERT_EQ(coil_queue_put(s.q, Q_SENTINEL), 0);
	crowd_await(&c, Q_PRODUCERS, c.n);
	ASSERT_EQ(coil_queue_qsize(s.q), 0);
	ASSERT_EQ(coil_queue_destroy(s.q), 0);
	crowd_free(&c);
	free(s.seen);
	return 0;
}

TEST(queue_counts_every_item_once_across_workers)
{
	run_on(2, queue_main);
	run_on(4, queue_main);
}

/* --- Lock --------------------------------------------------------------- */

#define L_TASKS 8

typedef struct lstate {
	coil_lock_t *lock;
	int rounds;
	long counter;             /* plain: only the holder touches it */
	atomic_int inside;
} lstate_t;

static int locker(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	lstate_t *s = m->crowd->ctx;
	(void)result;
	for (int i = 0; i < s->rounds; i++) {
		int rc;
		while ((rc = coil_lock_acquire(s->lock)) == -ECANCELED)
			absorb(m);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(atomic_fetch_add(&s->inside, 1), 0);
		long v = s->counter;
		/* Held across a yield: the others queue, and this task may
		 * come back on another worker. */
		if (rnd(&m->rng) % 8 == 0)
			yield(m);
		s->counter = v + 1;
		ASSERT_EQ(atomic_fetch_sub(&s->inside, 1), 1);
		ASSERT_EQ(coil_lock_release(s->lock), 0);
	}
	return 0;
}

static int lock_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	lstate_t s = { .rounds = scaled(30000) };
	ASSERT_EQ(coil_lock_create(&s.lock), 0);
	crowd_t c;
	crowd_init(&c, &s);
	for (int i = 0; i < L_TASKS; i++)
		crowd_add(&c, locker);
	crowd_cancel_start(&c);
	crowd_await(&c, 0, c.n);
	ASSERT_EQ(s.counter, (long)L_TASKS * s.rounds);
	ASSERT(!coil_lock_locked(s.lock));
	ASSERT_EQ(coil_lock_destroy(s.lock), 0);
	crowd_free(&c);
	return 0;
}

TEST(lock_counter_reaches_exact_total_across_workers)
{
	run_on(2, lock_main);
	run_on(4, lock_main);
}

/* --- Semaphore ---------------------------------------------------------- */

#define S_TASKS 10
#define S_VALUE 3

typedef struct sstate {
	coil_semaphore_t *sem;
	int rounds;
	atomic_int holders;
	atomic_int most;
} sstate_t;

static int sem_user(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	sstate_t *s = m->crowd->ctx;
	(void)result;
	for (int i = 0; i < s->rounds; i++) {
		int rc;
		while ((rc = coil_semaphore_acquire(s->sem)) == -ECANCELED)
			absorb(m);
		ASSERT_EQ(rc, 0);
		int h = atomic_fetch_add(&s->holders, 1) + 1;
		ASSERT_LE(h, S_VALUE);
		int most = atomic_load(&s->most);
		while (h > most && !atomic_compare_exchange_weak(&s->most, &most, h))
			;
		if (rnd(&m->rng) % 4 == 0)
			yield(m);
		atomic_fetch_sub(&s->holders, 1);
		/* Bounded: a permit given twice would overflow here. */
		ASSERT_EQ(coil_semaphore_release(s->sem), 0);
	}
	return 0;
}

static int semaphore_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sstate_t s = { .rounds = scaled(20000) };
	ASSERT_EQ(coil_bounded_semaphore_create(&s.sem, S_VALUE), 0);
	crowd_t c;
	crowd_init(&c, &s);
	for (int i = 0; i < S_TASKS; i++)
		crowd_add(&c, sem_user);
	crowd_cancel_start(&c);
	crowd_await(&c, 0, c.n);
	ASSERT_LE(atomic_load(&s.most), S_VALUE);
	ASSERT_EQ(coil_semaphore_value(s.sem), S_VALUE);
	ASSERT_EQ(coil_semaphore_destroy(s.sem), 0);
	crowd_free(&c);
	return 0;
}

TEST(semaphore_never_has_more_holders_than_its_value)
{
	run_on(2, semaphore_main);
	run_on(4, semaphore_main);
}

/* --- Condition ---------------------------------------------------------- */

#define C_PRODUCERS 3
#define C_CONSUMERS 5

typedef struct cstate {
	coil_condition_t *cond;
	int per_producer;
	int avail;                /* under the condition's lock */
	int taken;
	bool done;
} cstate_t;

static bool has_item_or_done(void *arg)
{
	cstate_t *s = arg;
	return s->avail > 0 || s->done;
}

/* Takes the condition's lock, whatever cancellations come. */
static void cond_lock(member_t *m, cstate_t *s)
{
	int rc;
	while ((rc = coil_lock_acquire(coil_condition_lock(s->cond))) == -ECANCELED)
		absorb(m);
	ASSERT_EQ(rc, 0);
}

static int cond_producer(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	cstate_t *s = m->crowd->ctx;
	(void)result;
	for (int i = 0; i < s->per_producer; i++) {
		cond_lock(m, s);
		s->avail++;
		ASSERT_GE(coil_condition_notify(s->cond, 1), 0);
		ASSERT_EQ(coil_lock_release(coil_condition_lock(s->cond)), 0);
		if (rnd(&m->rng) % 8 == 0)
			yield(m);
	}
	return 0;
}

static int cond_consumer(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	cstate_t *s = m->crowd->ctx;
	(void)result;
	cond_lock(m, s);
	for (;;) {
		/* A cancelled wait still returns with the lock held. */
		int rc;
		while ((rc = coil_condition_wait_for(s->cond, has_item_or_done, s)) ==
		       -ECANCELED)
			absorb(m);
		ASSERT_EQ(rc, 0);
		note_worker();
		if (!s->avail)
			break;
		s->avail--;
		s->taken++;
	}
	ASSERT_EQ(coil_lock_release(coil_condition_lock(s->cond)), 0);
	return 0;
}

static int condition_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	cstate_t s = { .per_producer = scaled(30000) };
	ASSERT_EQ(coil_condition_create(&s.cond, NULL), 0);
	crowd_t c;
	crowd_init(&c, &s);
	for (int i = 0; i < C_PRODUCERS; i++)
		crowd_add(&c, cond_producer);
	for (int i = 0; i < C_CONSUMERS; i++)
		crowd_add(&c, cond_consumer);
	crowd_cancel_start(&c);
	crowd_await(&c, 0, C_PRODUCERS);
	crowd_cancel_stop(&c);
	ASSERT_EQ(coil_lock_acquire(coil_condition_lock(s.cond)), 0);
	s.done = true;
	ASSERT_GE(coil_condition_notify_all(s.cond), 0);
	ASSERT_EQ(coil_lock_release(coil_condition_lock(s.cond)), 0);
	crowd_await(&c, C_PRODUCERS, c.n);
	ASSERT_EQ(s.taken, C_PRODUCERS * s.per_producer);
	ASSERT_EQ(s.avail, 0);
	ASSERT_EQ(coil_condition_destroy(s.cond), 0);
	crowd_free(&c);
	return 0;
}

TEST(condition_hands_every_item_once_across_workers)
{
	run_on(2, condition_main);
	run_on(4, condition_main);
}

/* --- Event -------------------------------------------------------------- */

#define E_WAITERS 12

static int event_waiter(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	coil_event_t *e = m->crowd->ctx;
	(void)result;
	int rc;
	/* Cancelled before the set: wait again, the set must reach us. */
	while ((rc = coil_event_wait(e)) == -ECANCELED)
		absorb(m);
	ASSERT_EQ(rc, 0);
	note_worker();
	return 0;
}

static void event_round(uint64_t *rng)
{
	coil_event_t *e;
	ASSERT_EQ(coil_event_create(&e), 0);
	crowd_t c;
	crowd_init(&c, e);
	for (int i = 0; i < E_WAITERS; i++)
		crowd_add(&c, event_waiter);
	crowd_cancel_start(&c);
	/* Set while the waiters arrive, are cancelled and come back. */
	ASSERT_EQ(coil_sleep_ns((int64_t)(rnd(rng) % 50000)), 0);
	ASSERT_EQ(coil_event_set(e), 0);
	crowd_await(&c, 0, c.n);
	crowd_free(&c);
	ASSERT(coil_event_is_set(e));
	ASSERT_EQ(coil_event_destroy(e), 0);
}

static int event_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 7;
	int rounds = scaled(800);
	for (int r = 0; r < rounds; r++)
		event_round(&rng);
	return 0;
}

TEST(event_set_wakes_every_waiter_across_workers)
{
	run_on(2, event_main);
	run_on(4, event_main);
}

/* --- Barrier ------------------------------------------------------------ */

#define B_PARTIES 6
#define B_MAX_ROUNDS 10000

typedef struct bstate {
	coil_barrier_t *barrier;
	int rounds;
	atomic_int passes[B_MAX_ROUNDS];
	atomic_uint masks[B_MAX_ROUNDS]; /* indices handed out per round */
	atomic_long total;
} bstate_t;

/* Without cancellations: a party's k-th pass is round k, as it cannot
 * enter the next round before every party of this one has left. */
static int barrier_party(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	bstate_t *s = m->crowd->ctx;
	(void)result;
	for (int r = 0; r < s->rounds; r++) {
		int rc = coil_barrier_wait(s->barrier);
		ASSERT_GE(rc, 0);
		ASSERT_LT(rc, B_PARTIES);
		atomic_fetch_add(&s->passes[r], 1);
		ASSERT_EQ(atomic_fetch_or(&s->masks[r], 1u << rc) & (1u << rc), 0);
		if (rnd(&m->rng) % 4 == 0)
			yield(m);
		note_worker();
	}
	return 0;
}

/*
 * With cancellations: a party cancelled before its pass leaves and comes
 * back. (One cancelled after its round filled but before it was let
 * through leaves too, and that round lets one fewer through, as in
 * asyncio: so rounds are not counted here.) The parties go on until the
 * barrier is aborted.
 */
static int barrier_cancelled_party(void *arg, void **result)
{
	member_t *m = member_begin(arg);
	bstate_t *s = m->crowd->ctx;
	(void)result;
	for (;;) {
		int rc = coil_barrier_wait(s->barrier);
		if (rc == -ECANCELED) {
			absorb(m);
			continue;
		}
		if (rc == -EPIPE)
			return 0;
		ASSERT_GE(rc, 0);
		ASSERT_LT(rc, B_PARTIES);
		atomic_fetch_add(&s->total, 1);
		note_worker();
	}
}

static bstate_t *barrier_state(int rounds)
{
	bstate_t *s = calloc(1, sizeof(*s));
	ASSERT(s != NULL);
	s->rounds = rounds;
	ASSERT_EQ(coil_barrier_create(&s->barrier, B_PARTIES), 0);
	return s;
}

static int barrier_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	bstate_t *s = barrier_state(scaled(B_MAX_ROUNDS));
	crowd_t c;
	crowd_init(&c, s);
	for (int i = 0; i < B_PARTIES; i++)
		crowd_add(&c, barrier_party);
	crowd_await(&c, 0, c.n);
	for (int r = 0; r < s->rounds; r++) {
		ASSERT_EQ(atomic_load(&s->passes[r]), B_PARTIES);
		ASSERT_EQ(atomic_load(&s->masks[r]), (1u << B_PARTIES) - 1);
	}
	ASSERT_EQ(coil_barrier_n_waiting(s->barrier), 0);
	ASSERT_EQ(coil_barrier_destroy(s->barrier), 0);
	crowd_free(&c);
	free(s);
	return 0;
}

static int barrier_cancel_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	bstate_t *s = barrier_state(0);
	crowd_t c;
	crowd_init(&c, s);
	for (int i = 0; i < B_PARTIES; i++)
		crowd_add(&c, barrier_cancelled_party);
	crowd_cancel_start(&c);
	ASSERT_EQ(coil_sleep(test_heavy_tools() ? 0.1 : 0.3), 0);
	crowd_cancel_stop(&c);
	ASSERT_EQ(coil_barrier_abort(s->barrier), 0);
	crowd_await(&c, 0, c.n);
	ASSERT_GT(atomic_load(&s->total), 0);
	ASSERT(coil_barrier_broken(s->barrier));
	/* Every party left: none is counted in, none still linked. */
	ASSERT_EQ(coil_barrier_destroy(s->barrier), 0);
	crowd_free(&c);
	free(s);
	return 0;
}

TEST(barrier_lets_exactly_its_parties_through_each_round)
{
	run_on(2, barrier_main);
	run_on(4, barrier_main);
}

TEST(barrier_survives_cancelled_parties_until_aborted)
{
	run_on(2, barrier_cancel_main);
	run_on(4, barrier_cancel_main);
}

TEST_LIST(
	TEST_ENTRY(queue_counts_every_item_once_across_workers),
	TEST_ENTRY(lock_counter_reaches_exact_total_across_workers),
	TEST_ENTRY(semaphore_never_has_more_holders_than_its_value),
	TEST_ENTRY(condition_hands_every_item_once_across_workers),
	TEST_ENTRY(event_set_wakes_every_waiter_across_workers),
	TEST_ENTRY(barrier_lets_exactly_its_parties_through_each_round),
	TEST_ENTRY(barrier_survives_cancelled_parties_until_aborted)
)
