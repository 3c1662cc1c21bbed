/*
 * tests/test_race_task.c: a task's own bookkeeping raced across the
 * workers of a runtime: cancellation requests from two workers at once,
 * uncancel from the task while another worker cancels it, pins held while
 * another worker wakes the task, and task-local storage copied to children
 * that run on either worker while their spawner changes its own.
 *
 * Each round is deterministic in what it asserts (tests/race.h): the
 * victim task is pinned on the driver's worker, which does not yield while
 * the two sides race, so the victim's state during the race is known.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>

#include "coil/coil.h"
#include "test.h"
#include "race.h"

#define ROUNDS (under_valgrind() ? 20 : TEST_TSAN ? 1500 : 4000)

/* Waits, without yielding (the driver's worker runs nothing else
 * meanwhile), for the helper's job. */
static void helper_wait_busy(void)
{
	unsigned s = atomic_load(&helper.seq), spins = 0;
	while (atomic_load_explicit(&helper.done, memory_order_acquire) != s)
		spin_pause(&spins);
}

/* --- two workers cancel a suspended task at once -------------------------- */

typedef struct victim {
	coil_event_t *ev;
	atomic_int suspended; /* set just before the first wait */
	int rc1, rc2, rc3;    /* the first wait's, then two more awaits' */
	int uncancelled;      /* what coil_task_uncancel returned */
	bool uncancel;        /* uncancel once woken */
	coil_task_t *self;
} victim_t;

static int victim_main(void *arg, void **result)
{
	(void)result;
	victim_t *v = arg;
	atomic_store(&v->suspended, 1);
	v->rc1 = coil_event_wait(v->ev);
	if (v->uncancel) {
		/* Races the helper's cancellation (helper_go before the
		 * driver let this task run). */
		v->uncancelled = coil_task_uncancel(v->self);
	}
	v->rc2 = coil_sleep(0);
	v->rc3 = coil_sleep(0);
	return 0;
}

static coil_task_t *cancel_target;
static atomic_bool helper_cancelled;

static void cancel_job(void *arg)
{
	(void)arg;
	atomic_store(&helper_cancelled, coil_task_cancel(cancel_target, "helper"));
}

/* Spawns a victim pinned on this worker and lets it run into its wait. */
static coil_task_t *victim_start(victim_t *v, bool uncancel)
{
	ASSERT_EQ(coil_event_create(&v->ev), 0);
	atomic_store(&v->suspended, 0);
	v->rc1 = v->rc2 = v->rc3 = 1;
	v->uncancelled = -1;
	v->uncancel = uncancel;
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, victim_main, v, &pinned), 0);
	v->self = t;
	/* Pinned here: once it has set the flag and we run again, it is
	 * suspended in its wait. */
	while (!atomic_load(&v->suspended))
		ASSERT_EQ(coil_sleep(0), 0);
	return t;
}

static void victim_end(victim_t *v, coil_task_t *t)
{
	ASSERT_EQ(coil_event_set(v->ev), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	ASSERT_EQ(coil_event_destroy(v->ev), 0);
}

/*
 * The victim waits on an event; the driver (its worker) and the helper
 * (the other worker) cancel it at once. Whoever comes first wakes it, the
 * other finds it woken by a cancellation: as asyncio, one -ECANCELED for
 * the wake-up, and both requests counted.
 */
static void double_cancel_round(int i, uint64_t *rng)
{
	(void)i;
	victim_t v;
	coil_task_t *t = victim_start(&v, false);
	cancel_target = t;
	helper_go(cancel_job, NULL);
	jitter(rng);
	ASSERT(coil_task_cancel(t, "driver"));
	helper_wait_busy();
	ASSERT(atomic_load(&helper_cancelled));
	ASSERT_EQ(coil_task_cancelling(t), 2);
	victim_end(&v, t);
	ASSERT_EQ(v.rc1, -ECANCELED);
	ASSERT_EQ(v.rc2, 0);
	ASSERT_EQ(v.rc3, 0);
	ASSERT_EQ(coil_task_cancelling(t), 2);
	coil_task_detach(t);
}

TEST(cancel_from_two_workers_at_once)
{
	race_run_rounds(double_cancel_round, ROUNDS, 11);
}

/*
 * The driver cancels the victim; the victim, woken, uncancels itself
 * while the helper cancels it again. Whatever the order, the count ends at
 * 1 (0 if the helper came after the victim's end), the uncancel saw 0 or
 * 1 left, and the helper's request is delivered once at most.
 */
static void uncancel_round(int i, uint64_t *rng)
{
	(void)i;
	(void)rng;
	victim_t v;
	coil_task_t *t = victim_start(&v, true);
	cancel_target = t;
	ASSERT(coil_task_cancel(t, "driver"));
	helper_go(cancel_job, NULL);
	/* Let the victim run its uncancel while the helper cancels. */
	victim_end(&v, t);
	helper_wait();
	ASSERT(atomic_load(&helper_cancelled) || coil_future_done(coil_task_future(t)));
	ASSERT_EQ(v.rc1, -ECANCELED);
	ASSERT(v.uncancelled == 0 || v.uncancelled == 1);
	/* The helper's request lands before the victim ran (merged into
	 * the first wake-up), or is delivered by one of the two awaits. */
	ASSERT(v.rc2 == 0 || v.rc2 == -ECANCELED);
	ASSERT(v.rc3 == 0 || v.rc3 == -ECANCELED);
	ASSERT(v.rc2 == 0 || v.rc3 == 0);
	if (!atomic_load(&helper_cancelled))
		ASSERT(v.rc2 == 0 && v.rc3 == 0);
	if (atomic_load(&helper_cancelled))
		ASSERT_EQ(coil_task_cancelling(t), 1);
	else
		ASSERT_EQ(coil_task_cancelling(t), 0);
	coil_task_detach(t);
}

TEST(uncancel_racing_a_cancel_from_another_worker)
{
	race_run_rounds(uncancel_round, ROUNDS, 12);
}

/* --- pins held while another worker wakes the task ------------------------ */

typedef struct pinner {
	coil_future_t *f1, *f2;
	atomic_int ready;
	int w0, w1, w2;
} pinner_t;

static int pinner_main(void *arg, void **result)
{
	(void)result;
	pinner_t *p = arg;
	ASSERT_EQ(coil_task_pin(), 0);
	ASSERT_EQ(coil_task_pin(), 0);
	p->w0 = coil_current_worker();
	atomic_store(&p->ready, 1);
	ASSERT_EQ(coil_await(p->f1, NULL), 0);
	p->w1 = coil_current_worker();
	/* Still pinned once: a wake from the other worker keeps it here. */
	ASSERT_EQ(coil_task_unpin(), 0);
	atomic_store(&p->ready, 2);
	ASSERT_EQ(coil_await(p->f2, NULL), 0);
	p->w2 = coil_current_worker();
	ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	return 0;
}

static coil_future_t *resolve_target;

static void resolve_job(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_future_set_result(resolve_target, NULL, NULL), 0);
}

/*
 * An unpinned task pins itself twice wherever it first runs and awaits
 * futures the helper resolves on worker 1: it resumes on the worker it
 * pinned itself to each time, until the last unpin.
 */
static void pin_round(int i, uint64_t *rng)
{
	(void)i;
	(void)rng;
	pinner_t p;
	ASSERT_EQ(coil_future_create(&p.f1, NULL), 0);
	ASSERT_EQ(coil_future_create(&p.f2, NULL), 0);
	atomic_store(&p.ready, 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, pinner_main, &p, NULL), 0);
	while (atomic_load(&p.ready) < 1)
		ASSERT_EQ(coil_sleep(0), 0);
	resolve_target = p.f1;
	helper_go(resolve_job, NULL);
	helper_wait();
	while (atomic_load(&p.ready) < 2)
		ASSERT_EQ(coil_sleep(0), 0);
	resolve_target = p.f2;
	helper_go(resolve_job, NULL);
	helper_wait();
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(p.w1, p.w0);
	ASSERT_EQ(p.w2, p.w0);
	coil_future_release(p.f1);
	coil_future_release(p.f2);
}

TEST(pinned_task_woken_from_another_worker)
{
	race_run_rounds(pin_round, under_valgrind() ? 10 : TEST_TSAN ? 200 : 1000, 13);
}

/* --- the runtime's own pins are not the task's to undo -------------------- */

/*
 * An unpinned task enters a timeout scope, which pins it to its worker
 * (the scope's expiry callback is that worker's), then calls
 * coil_task_unpin without a coil_task_pin of its own: the call must fail
 * and leave the scope's pin, else the task moves to the other worker at
 * its next wake-up (the helper's, from worker 1) and leaves the scope
 * there, cancelling worker 0's handle from worker 1's thread.
 */
typedef struct scoped {
	coil_future_t *f;
	atomic_int ready;
	int w0, w1, unpin;
} scoped_t;

static int scoped_main(void *arg, void **result)
{
	(void)result;
	scoped_t *p = arg;
	coil_timeout_t to;
	ASSERT_EQ(coil_timeout_enter(&to, COIL_FOREVER), 0);
	ASSERT_EQ(coil_timeout_reschedule(&to, 3600 * COIL_NSEC_PER_SEC), 0);
	p->w0 = coil_current_worker();
	p->unpin = coil_task_unpin();
	atomic_store(&p->ready, 1);
	ASSERT_EQ(coil_await(p->f, NULL), 0);
	p->w1 = coil_current_worker();
	ASSERT_EQ(coil_timeout_exit(&to), 0);
	/* Its own pins still nest as before, on top of none. */
	ASSERT_EQ(coil_task_pin(), 0);
	ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	return 0;
}

static void scope_round(int i, uint64_t *rng)
{
	(void)i;
	(void)rng;
	scoped_t p;
	ASSERT_EQ(coil_future_create(&p.f, NULL), 0);
	atomic_store(&p.ready, 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, scoped_main, &p, NULL), 0);
	while (!atomic_load(&p.ready))
		ASSERT_EQ(coil_sleep(0), 0);
	resolve_target = p.f;
	helper_go(resolve_job, NULL);
	helper_wait();
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(p.unpin, COIL_EINVALSTATE);
	ASSERT_EQ(p.w1, p.w0);
	coil_future_release(p.f);
}

TEST(unpin_leaves_a_timeout_scopes_pin)
{
	race_run_rounds(scope_round, under_valgrind() ? 10 : TEST_TSAN ? 200 : 1000, 15);
}

/* --- task-local storage copied to children on either worker --------------- */

static char tls_key, tls_key2;

static int tls_child(void *arg, void **result)
{
	(void)result;
	intptr_t want = (intptr_t)arg;
	ASSERT_EQ((intptr_t)coil_task_local_get(&tls_key), want);
	ASSERT(coil_task_local_get(&tls_key2) == NULL ||
	       (intptr_t)coil_task_local_get(&tls_key2) == want);
	/* Its own value survives its moves between workers. */
	ASSERT_EQ(coil_task_local_set(&tls_key2, (void *)(want + 1)), 0);
	for (int k = 0; k < 4; k++) {
		ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ((intptr_t)coil_task_local_get(&tls_key), want);
		ASSERT_EQ((intptr_t)coil_task_local_get(&tls_key2), want + 1);
	}
	return 0;
}

/* On worker 1: spawns a child there with its own values. */
static void tls_job(void *arg)
{
	intptr_t v = (intptr_t)arg;
	ASSERT_EQ(coil_task_local_set(&tls_key, (void *)v), 0);
	ASSERT_EQ(coil_spawn(NULL, tls_child, (void *)v, NULL), 0);
	ASSERT_EQ(coil_task_local_set(&tls_key, NULL), 0);
}

/*
 * Both workers spawn unpinned children at once, each after setting its
 * own value and changing it (or removing it) right after: each child sees
 * its spawner's values as they were at the spawn, wherever it runs.
 */
static void tls_round(int i, uint64_t *rng)
{
	intptr_t mine = 2 * i + 2;
	helper_go(tls_job, (void *)(intptr_t)(mine + 1000000));
	jitter(rng);
	ASSERT_EQ(coil_task_local_set(&tls_key, (void *)mine), 0);
	ASSERT_EQ(coil_task_local_set(&tls_key2, i % 2 ? (void *)mine : NULL), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, tls_child, (void *)mine, NULL), 0);
	ASSERT_EQ(coil_task_local_set(&tls_key, (void *)(mine + 7)), 0);
	ASSERT_EQ(coil_task_local_set(&tls_key2, NULL), 0);
	helper_wait();
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ((intptr_t)coil_task_local_get(&tls_key), mine + 7);
}

TEST(task_locals_copied_at_spawn_on_both_workers)
{
	race_run_rounds(tls_round, ROUNDS, 14);
}

/* --- a cancellation racing the start and the end of a wait ---------------- */

/*
 * The wait of a task that other workers may cancel publishes its waiter
 * and then looks for a pending cancellation without a lock; a canceller
 * marks the task and then looks for its waiter, with a process-wide
 * barrier between (runtime/task.c, coil__task_suspend_mt). A request that
 * both looks missed would leave the task asleep for good.
 */
typedef struct starter {
	coil_event_t *ev;
	uint64_t seed;
	atomic_int started;
	int rc;
} starter_t;

static int starter_main(void *arg, void **result)
{
	(void)result;
	starter_t *s = arg;
	atomic_store(&s->started, 1);
	uint64_t r = s->seed;
	jitter(&r);
	s->rc = coil_event_wait(s->ev);
	return s->rc; /* -ECANCELED: the task ends cancelled */
}

/*
 * The victim, pinned on the driver's worker, spins a random time and waits
 * on an event nobody sets; the helper cancels it from the other worker at
 * a random moment: before it ran, while it runs, while it publishes its
 * wait, or once it sleeps. Every way, the request ends the task.
 */
static void start_round(int i, uint64_t *rng)
{
	starter_t s;
	ASSERT_EQ(coil_event_create(&s.ev), 0);
	s.seed = rnd(rng) + (uint64_t)i;
	atomic_store(&s.started, 0);
	s.rc = 1;
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, starter_main, &s, &pinned), 0);
	cancel_target = t;
	helper_go(cancel_job, NULL);
	/* Yield to the victim (same worker) until it ends: a lost request
	 * is a task that never does (the bound is generous). */
	uint64_t spins = 0;
	while (!coil_future_done(coil_task_future(t))) {
		ASSERT_EQ(coil_sleep(0), 0);
		ASSERT(++spins < 100000000ull);
	}
	helper_wait();
	ASSERT(atomic_load(&helper_cancelled));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	if (atomic_load(&s.started))
		ASSERT_EQ(s.rc, -ECANCELED);
	coil_task_detach(t);
	ASSERT_EQ(coil_event_destroy(s.ev), 0);
}

TEST(cancel_racing_the_start_of_a_wait)
{
	race_run_rounds(start_round, ROUNDS, 16);
}

/*
 * The victim awaits, again and again, futures that a plain thread
 * resolves (their wake-ups are posted to the victim's worker), while the
 * helper cancels it over and over from the other worker: a canceller that
 * read the victim's waiter just as the victim resumed must be done with
 * it before the victim's next wait reuses its memory. The victim counts
 * the cancellations delivered and takes each back (uncancel): never more
 * than were requested, and every wait ends.
 */
#define RESUMES (under_valgrind() ? 200 : TEST_TSAN ? 20000 : 100000)

static struct {
	_Atomic(coil_future_t *) slot; /* the next future to resolve */
	atomic_bool done;              /* the victim is through */
	coil_task_t *victim;
	int delivered;
	atomic_int requested;
} res;

static void *resolver_main(void *arg)
{
	(void)arg;
	unsigned spins = 0;
	while (!atomic_load(&res.done)) {
		coil_future_t *f = atomic_exchange(&res.slot, NULL);
		if (!f) {
			spin_pause(&spins);
			continue;
		}
		ASSERT_EQ(coil_future_set_result(f, NULL, NULL), 0);
		coil_future_release(f);
	}
	return NULL;
}

static int resumer_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int i = 0; i < RESUMES; i++) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		/* The resolver's reference; one it never took is dropped. */
		coil_future_t *old = atomic_exchange(&res.slot, coil_future_ref(f));
		if (old)
			coil_future_release(old);
		int rc = coil_await(f, NULL);
		if (rc == -ECANCELED) {
			res.delivered++;
			coil_task_uncancel(res.victim);
		} else {
			ASSERT_EQ(rc, 0);
		}
		coil_future_release(f);
	}
	atomic_store(&res.done, true);
	return 0;
}

static void cancel_loop_job(void *arg)
{
	uint64_t rng = (uintptr_t)arg;
	while (!atomic_load(&res.done)) {
		if (coil_task_cancel(res.victim, NULL))
			atomic_fetch_add(&res.requested, 1);
		jitter(&rng);
	}
}

static int resume_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&res.slot, NULL);
	atomic_store(&res.done, false);
	atomic_store(&res.requested, 0);
	res.delivered = 0;
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, resolver_main, NULL), 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, resumer_main, NULL, &pinned), 0);
	res.victim = t;
	helper_go(cancel_loop_job, (void *)(uintptr_t)17);
	/* The victim may end cancelled: a request that came before its
	 * first step ends it there (it never runs, nor says it is done). */
	int rc = coil_await(coil_task_future(t), NULL);
	ASSERT(rc == 0 || rc == -ECANCELED);
	atomic_store(&res.done, true);
	helper_wait();
	ASSERT_EQ(pthread_join(th, NULL), 0);
	coil_future_t *left = atomic_exchange(&res.slot, NULL);
	if (left)
		coil_future_release(left);
	ASSERT(res.delivered <= atomic_load(&res.requested));
	coil_task_detach(t);
	return 0;
}

TEST(cancel_racing_the_end_of_a_wait)
{
	race_drive(resume_body, NULL);
}

/*
 * The membarrier registration (runtime/task.c, cancel_fence_init) is made
 * once per process and belongs to the address space, which fork(2) copies:
 * a runtime made in a child (a server that forks its workers after setting
 * up) cancels a task of another worker with the barrier, which would fail
 * with EPERM, and stop the program, if the child had no registration.
 */
static int forked_victim(void *arg, void **result)
{
	(void)result;
	coil_event_t *ev = arg;
	return coil_event_wait(ev);
}

static int forked_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_event_t *ev;
	ASSERT_EQ(coil_event_create(&ev), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, forked_victim, ev, NULL), 0);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(coil_sleep(0), 0);
	ASSERT(coil_task_cancel(t, NULL));
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), -ECANCELED);
	coil_task_detach(t);
	ASSERT_EQ(coil_event_destroy(ev), 0);
	return 0;
}

TEST(cancel_in_a_forked_child)
{
	/* TSan does not follow threads started after a fork of a process
	 * that has threads. */
	if (TEST_TSAN)
		TEST_SKIP("threads after fork under TSan");
	/* The parent sets the barrier up first, as a server that forks its
	 * workers after making a runtime would. */
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_block_on(rt, forked_main, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	fflush(NULL);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		coil_runtime_t *c = test_runtime_new(2);
		int rc = coil_runtime_block_on(c, forked_main, NULL, NULL);
		if (rc == 0)
			rc = coil_runtime_shutdown(c, COIL_FOREVER);
		_exit(rc == 0 ? 0 : 1);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* --- the shutdown's cancellation of a task running on another worker ------ */

/*
 * A loop's shutdown cancels all its tasks with one barrier
 * (coil__task_cancel_all): it marks them all, then looks at each. A task of
 * the loop that runs on another worker meanwhile may take the request at
 * its next await, before the look: the look must not deliver it again.
 * The victim, homed on worker 0, moves to worker 1 (woken from there),
 * pins itself and yields until it is cancelled, then yields on for a
 * while: as asyncio, one request is one -ECANCELED.
 */
static struct {
	atomic_int ready;
	atomic_int first;  /* what the first failed yield returned */
	atomic_int extra;  /* -ECANCELED seen after the first */
	coil_loop_t *there;
} sd;

static void resolve_cb(void *arg)
{
	ASSERT_EQ(coil_future_set_result(arg, NULL, NULL), 0);
	coil_future_release(arg);
}

static int moved_victim(void *arg, void **result)
{
	(void)arg;
	(void)result;
	while (coil_current_worker() != 1) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		ASSERT_EQ(coil_loop_call_soon_threadsafe(sd.there, resolve_cb,
							 coil_future_ref(f)), 0);
		ASSERT_EQ(coil_await(f, NULL), 0);
		coil_future_release(f);
	}
	ASSERT_EQ(coil_task_pin(), 0);
	atomic_store(&sd.ready, 1);
	int rc;
	while ((rc = coil_sleep(0)) == 0)
		;
	atomic_store(&sd.first, rc);
	/* Long enough for the shutdown's look at this task to come (its
	 * barrier is a system call), short of its next round. */
	for (int i = 0; i < 2000; i++)
		if (coil_sleep(0) == -ECANCELED)
			atomic_fetch_add(&sd.extra, 1);
	return rc;
}

/* Waits on worker 0 to be cancelled: the shutdown has two tasks to cancel
 * there, which takes its batched path. */
static int homed_sleeper(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_sleep(3600);
}

TEST(shutdown_cancels_a_task_on_another_worker_once)
{
	int rounds = under_valgrind() ? 3 : TEST_TSAN ? 20 : 100;
	for (int i = 0; i < rounds; i++) {
		coil_runtime_t *rt = test_runtime_new(2);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&sd.ready, 0);
		atomic_store(&sd.first, 1);
		atomic_store(&sd.extra, 0);
		sd.there = coil_runtime_loop(rt, 1);
		coil_loop_t *home = coil_runtime_loop(rt, 0);
		ASSERT_EQ(coil_loop_create_task(home, NULL, homed_sleeper, NULL, NULL), 0);
		ASSERT_EQ(coil_loop_create_task(home, NULL, moved_victim, NULL, NULL), 0);
		while (!atomic_load(&sd.ready))
			sched_yield();
		ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
		ASSERT_EQ(atomic_load(&sd.first), -ECANCELED);
		ASSERT_EQ(atomic_load(&sd.extra), 0);
	}
}

TEST_LIST(
	TEST_ENTRY(cancel_from_two_workers_at_once),
	TEST_ENTRY(uncancel_racing_a_cancel_from_another_worker),
	TEST_ENTRY(pinned_task_woken_from_another_worker),
	TEST_ENTRY(unpin_leaves_a_timeout_scopes_pin),
	TEST_ENTRY(task_locals_copied_at_spawn_on_both_workers),
	TEST_ENTRY(cancel_racing_the_start_of_a_wait),
	TEST_ENTRY(cancel_racing_the_end_of_a_wait),
	TEST_ENTRY(cancel_in_a_forked_child),
	TEST_ENTRY(shutdown_cancels_a_task_on_another_worker_once))
