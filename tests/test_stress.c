/*
 * tests/test_stress.c: the multi-worker runtime under random load.
 *
 * For COIL_STRESS_SECONDS seconds per test (30 when unset; ctest sets 3,
 * which sanitizer and Valgrind builds cut to 2) tasks are spawned from
 * every worker and from plain threads in random patterns: random fan-out
 * and nesting, children awaited or detached, yields
 * (coil_sleep(0)), sleeps of 0 to 5 microseconds, and futures resolved
 * across workers (by a callback on a random worker, by a sibling task, by
 * plain resolver threads). Plain threads spawn with coil_runtime_spawn,
 * hand coroutines to a random worker's loop or to the injection queue with
 * coil_run_coroutine_threadsafe, and post callbacks that spawn on a given
 * worker. Then the spawning stops, the runtime drains and shuts down.
 *
 * Every task has an id and a slot incremented exactly once, atomically,
 * when it starts: at the end every slot must be exactly 1 (no task lost,
 * none run twice). Along the way each task checks that its task-local value
 * survives every await and, when pinned, that it never left its worker. A
 * hang is caught by the harness's timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

#define MAX_TASKS (1u << 25) /* ids; when they run out, spawning stops */
/* Where spawning stops: the ids above are for the setters that tasks
 * still running spawn after that (cross_await), which may not be refused. */
#define SPAWN_CAP (MAX_TASKS - (1u << 20))
#define MAX_DEPTH 4
#define MAX_KIDS 4
#define OUTSIDE_THREADS 2
#define RESOLVERS 2

static atomic_uchar *slots;        /* per id: how many times it started */
static atomic_uint next_id;
static atomic_int live;            /* tasks spawned and not yet ended */
static atomic_bool draining;       /* past the deadline: no new work */
static atomic_long hops, migrated, foreign_sets, sibling_sets;
static int live_cap;
static coil_runtime_t *the_rt;
static int tls_key;

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static void nap_ns(long ns)
{
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

/* Reserves an id for a task about to be spawned, or returns false when
 * no new task should be made (draining, too many live, ids used up). */
static bool reserve(uint32_t *id)
{
	if (atomic_load_explicit(&draining, memory_order_relaxed) ||
	    atomic_load_explicit(&live, memory_order_relaxed) >= live_cap)
		return false;
	/* An id taken is an id spawned (the final count checks every one
	 * below next_id): past the cap none is taken. */
	uint32_t k = atomic_load(&next_id);
	do {
		if (k >= SPAWN_CAP) {
			atomic_store(&draining, true);
			return false;
		}
	} while (!atomic_compare_exchange_weak(&next_id, &k, k + 1));
	atomic_fetch_add(&live, 1);
	*id = k;
	return true;
}

/* The start of every task: its slot goes from 0 to 1, once. */
static void count_start(uint32_t id)
{
	ASSERT_EQ(atomic_fetch_add(&slots[id], 1), 0);
}

static void count_end(void)
{
	atomic_fetch_sub(&live, 1);
}

/* A task's argument: id, depth and whether it was spawned pinned. */
static void *pack(uint32_t id, unsigned depth, bool pinned)
{
	return (void *)(((uintptr_t)id << 8) | (uintptr_t)(depth << 4) | (pinned ? 1u : 0u));
}

/* --- resolving futures elsewhere -------------------------------------- */

static void set_to_itself(void *arg)
{
	coil_future_t *f = arg;
	ASSERT_EQ(coil_future_set_result(f, f, NULL), 0);
	coil_future_release(f);
}

/* Plain threads that resolve the futures queued to them. */
typedef struct job {
	coil_future_t *f;
	struct job *next;
} job_t;

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cv = PTHREAD_COND_INITIALIZER;
static job_t *jobs;
static bool jobs_quit;

static void *resolver_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&jobs_mu);
	for (;;) {
		while (!jobs && !jobs_quit)
			pthread_cond_wait(&jobs_cv, &jobs_mu);
		if (!jobs)
			break;
		job_t *j = jobs;
		jobs = j->next;
		pthread_mutex_unlock(&jobs_mu);
		set_to_itself(j->f);
		free(j);
		atomic_fetch_add_explicit(&foreign_sets, 1, memory_order_relaxed);
		pthread_mutex_lock(&jobs_mu);
	}
	pthread_mutex_unlock(&jobs_mu);
	return NULL;
}

static void post_job(coil_future_t *f)
{
	job_t *j = malloc(sizeof(*j));
	ASSERT(j != NULL);
	j->f = f;
	pthread_mutex_lock(&jobs_mu);
	j->next = jobs;
	jobs = j;
	pthread_cond_signal(&jobs_cv);
	pthread_mutex_unlock(&jobs_mu);
}

typedef struct setter {
	uint32_t id;
	coil_future_t *f;
} setter_t;

/* A sibling task that resolves its spawner's future, maybe after a yield. */
static int setter_task(void *arg, void **result)
{
	setter_t *s = arg;
	(void)result;
	count_start(s->id);
	if (s->id % 2)
		ASSERT_EQ(coil_sleep(0), 0);
	set_to_itself(s->f);
	atomic_fetch_add_explicit(&sibling_sets, 1, memory_order_relaxed);
	free(s);
	count_end();
	return 0;
}

/* From a task: makes a future here, has it resolved elsewhere and awaits
 * it, sometimes after a yield that may move the task first. */
static void cross_await(uint64_t *rng)
{
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	unsigned how = (unsigned)(rnd(rng) % 8);
	if (how < 5) {
		int n = (int)coil_runtime_workers(the_rt);
		coil_loop_t *to = coil_runtime_loop(the_rt, (int)(rnd(rng) % (uint64_t)n));
		ASSERT_EQ(coil_loop_call_soon_threadsafe(to, set_to_itself, coil_future_ref(f)), 0);
	} else if (how < 7) {
		post_job(coil_future_ref(f));
	} else {
		setter_t *s = malloc(sizeof(*s));
		ASSERT(s != NULL);
		s->f = coil_future_ref(f);
		/* A setter is spawned even past the deadline or the cap: the
		 * future needs it. */
		s->id = atomic_fetch_add(&next_id, 1);
		ASSERT_LT(s->id, MAX_TASKS);
		atomic_fetch_add(&live, 1);
		ASSERT_EQ(coil_spawn(NULL, setter_task, s, NULL), 0);
	}
	if (rnd(rng) % 4 == 0)
		ASSERT_EQ(coil_sleep(0), 0);
	void *v = NULL;
	ASSERT_EQ(coil_await(f, &v), 0);
	ASSERT_PTR_EQ(v, f);
	coil_future_release(f);
	atomic_fetch_add_explicit(&hops, 1, memory_order_relaxed);
}

/* --- the tasks ------------------------------------------------------------ */

static int stress_task(void *arg, void **result);

static int stress_task(void *arg, void **result)
{
	uintptr_t a = (uintptr_t)arg;
	uint32_t id = (uint32_t)(a >> 8);
	unsigned depth = (unsigned)(a >> 4) & 15;
	bool pinned = a & 1;
	count_start(id);
	uint64_t rng = 0x5eed0000ull ^ ((uint64_t)id * 0x9E3779B97F4A7C15ull);
	int home = coil_current_worker();
	ASSERT_GE(home, 0);
	ASSERT_EQ(coil_task_local_set(&tls_key, (void *)(uintptr_t)(id + 1)), 0);
	coil_task_t *kids[MAX_KIDS];
	uint32_t kid_ids[MAX_KIDS];
	int nkids = 0;
	int steps = (int)(rnd(&rng) % 7);
	for (int s = 0; s < steps && !atomic_load_explicit(&draining, memory_order_relaxed); s++) {
		unsigned r = (unsigned)(rnd(&rng) % 100);
		int before = coil_current_worker();
		uint32_t kid;
		if (r < 35) {
			if (depth >= MAX_DEPTH || nkids == MAX_KIDS || !reserve(&kid))
				continue;
			bool pin = rnd(&rng) % 8 == 0;
			coil_spawn_opts_t o = { .pinned = pin };
			bool keep = rnd(&rng) % 2 == 0;
			ASSERT_EQ(coil_spawn(keep ? &kids[nkids] : NULL, stress_task,
					     pack(kid, depth + 1, pin), &o), 0);
			if (keep)
				kid_ids[nkids++] = kid;
			continue;
		} else if (r < 50) {
			ASSERT_EQ(coil_sleep(0), 0);
		} else if (r < 60) {
			ASSERT_EQ(coil_sleep_ns((int64_t)(rnd(&rng) % 5000)), 0);
		} else {
			cross_await(&rng);
		}
		if (coil_current_worker() != before)
			atomic_fetch_add_explicit(&migrated, 1, memory_order_relaxed);
		if (pinned)
			ASSERT_EQ(coil_current_worker(), home);
		ASSERT_PTR_EQ(coil_task_local_get(&tls_key), (void *)(uintptr_t)(id + 1));
	}
	/* Await some children, leave the others to end on their own. */
	for (int k = 0; k < nkids; k++) {
		if (rnd(&rng) % 4 != 0) {
			void *v = NULL;
			ASSERT_EQ(coil_await(coil_task_future(kids[k]), &v), 0);
			ASSERT_EQ((uintptr_t)v, kid_ids[k]);
		}
		coil_task_detach(kids[k]);
	}
	if (pinned)
		ASSERT_EQ(coil_current_worker(), home);
	ASSERT_PTR_EQ(coil_task_local_get(&tls_key), (void *)(uintptr_t)(id + 1));
	*result = (void *)(uintptr_t)id;
	count_end();
	return 0;
}

/* A callback posted to a worker: spawns a task there. */
static void spawn_here(void *arg)
{
	ASSERT(coil_current_runtime() == the_rt);
	ASSERT_EQ(coil_spawn(NULL, stress_task, arg, NULL), 0);
}

/* --- plain threads feeding the runtime -------------------------------------- */

typedef struct outside {
	int64_t deadline;
	uint64_t seed;
	long spawned;
} outside_t;

#define HELD 32

typedef struct held {
	coil_cfuture_t *cf[HELD];
	uint32_t cf_id[HELD];
	int ncf;
	coil_task_t *t[HELD];
	int nt;
} held_t;

/* Waits for (when `all`) or polls the concurrent futures held, releasing
 * those done and checking their results. */
static void reap_cfutures(held_t *h, bool all)
{
	int k = 0;
	for (int i = 0; i < h->ncf; i++) {
		void *v = NULL;
		int rc = coil_cfuture_wait(h->cf[i], all ? COIL_FOREVER : 0, &v);
		if (rc == -ETIMEDOUT) {
			h->cf[k] = h->cf[i];
			h->cf_id[k++] = h->cf_id[i];
			continue;
		}
		ASSERT_EQ(rc, 0);
		ASSERT_EQ((uintptr_t)v, h->cf_id[i]);
		coil_cfuture_release(h->cf[i]);
	}
	h->ncf = k;
}

static void outside_step(outside_t *o, held_t *h, uint64_t *rng)
{
	uint32_t id;
	if (!reserve(&id)) {
		nap_ns(50 * 1000);
		return;
	}
	int n = (int)coil_runtime_workers(the_rt);
	int w = (int)(rnd(rng) % (uint64_t)(n + 1)) - 1; /* -1: any worker */
	unsigned r = (unsigned)(rnd(rng) % 100);
	void *arg = pack(id, 1, false);
	if (r < 40) {
		bool keep = h->nt < HELD && rnd(rng) % 2;
		ASSERT_EQ(coil_runtime_spawn(the_rt, keep ? &h->t[h->nt] : NULL,
					     stress_task, arg, NULL), 0);
		h->nt += keep;
	} else if (r < 70) {
		coil_spawn_opts_t so = { .pinned = rnd(rng) % 4 == 0 };
		bool keep = h->ncf < HELD;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(keep ? &h->cf[h->ncf] : NULL,
							     coil_runtime_loop(the_rt, w),
							     stress_task, pack(id, 1, so.pinned),
							     &so), 0);
		if (keep)
			h->cf_id[h->ncf++] = id;
	} else {
		ASSERT_EQ(coil_loop_call_soon_threadsafe(coil_runtime_loop(the_rt, w),
							 spawn_here, arg), 0);
	}
	o->spawned++;
	if (h->nt == HELD)
		while (h->nt)
			coil_task_detach(h->t[--h->nt]);
	if (h->ncf == HELD)
		reap_cfutures(h, false);
	if (rnd(rng) % 64 == 0)
		nap_ns((long)(rnd(rng) % 20000));
}

static void *outside_main(void *arg)
{
	outside_t *o = arg;
	uint64_t rng = o->seed;
	held_t h = { .ncf = 0, .nt = 0 };
	while (now_ns() < o->deadline)
		outside_step(o, &h, &rng);
	while (h.nt)
		coil_task_detach(h.t[--h.nt]);
	reap_cfutures(&h, true);
	return NULL;
}

/* --- the test --------------------------------------------------------------- */

static double stress_seconds(void)
{
	const char *e = getenv("COIL_STRESS_SECONDS");
	double s = e && atof(e) > 0 ? atof(e) : 30;
	/* Under sanitizers and Valgrind 2 s cover as many paths as ctest's
	 * few seconds do elsewhere; a long run asked for is a long run. */
	if (test_heavy_tools() && s > 2 && s <= 10)
		s = 2;
	return s;
}

static void stress(unsigned workers)
{
	coil_runtime_opts_t opts;
	coil_runtime_opts_init(&opts);
	opts.workers = workers;
	int rc = coil_runtime_new(&the_rt, &opts);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	slots = calloc(MAX_TASKS, sizeof(*slots));
	ASSERT(slots != NULL);
	/* From scratch: with COIL_TEST_NOFORK the tests share one process. */
	atomic_store(&next_id, 0);
	atomic_store(&live, 0);
	atomic_store(&draining, false);
	atomic_store(&hops, 0);
	atomic_store(&migrated, 0);
	atomic_store(&foreign_sets, 0);
	atomic_store(&sibling_sets, 0);
	jobs_quit = false;
	live_cap = test_heavy_tools() ? 256 : 2048;
	pthread_t res[RESOLVERS], out[OUTSIDE_THREADS];
	for (int i = 0; i < RESOLVERS; i++)
		ASSERT_EQ(pthread_create(&res[i], NULL, resolver_main, NULL), 0);
	ASSERT_EQ(coil_runtime_start(the_rt), 0);
	double secs = stress_seconds();
	int64_t deadline = now_ns() + (int64_t)(secs * 1e9);
	outside_t o[OUTSIDE_THREADS];
	for (int i = 0; i < OUTSIDE_THREADS; i++) {
		o[i] = (outside_t){ deadline, 1234567ull * (uint64_t)(i + 1) * workers, 0 };
		ASSERT_EQ(pthread_create(&out[i], NULL, outside_main, &o[i]), 0);
	}
	for (int i = 0; i < OUTSIDE_THREADS; i++)
		ASSERT_EQ(pthread_join(out[i], NULL), 0);
	atomic_store(&draining, true);
	/* Every task ends without being cancelled. */
	ASSERT_EQ(coil_runtime_shutdown(the_rt, COIL_FOREVER), 0);
	pthread_mutex_lock(&jobs_mu);
	jobs_quit = true;
	pthread_cond_broadcast(&jobs_cv);
	pthread_mutex_unlock(&jobs_mu);
	for (int i = 0; i < RESOLVERS; i++)
		ASSERT_EQ(pthread_join(res[i], NULL), 0);
	uint32_t n = atomic_load(&next_id);
	if (n > MAX_TASKS)
		n = MAX_TASKS;
	for (uint32_t k = 0; k < n; k++)
		if (slots[k] != 1)
			TEST_FAIL_("task %u started %d times (of %u tasks)", k, slots[k], n);
	ASSERT_EQ(atomic_load(&live), 0);
	fprintf(stderr, "  %u workers, %.1f s: %u tasks, %ld awaits of futures resolved "
		"elsewhere (%ld by plain threads, %ld by sibling tasks), %ld resumed "
		"on another worker\n", workers, secs, n, atomic_load(&hops),
		atomic_load(&foreign_sets), atomic_load(&sibling_sets),
		atomic_load(&migrated));
	free(slots);
}

TEST(random_load_on_two_workers_runs_every_task_once)
{
	stress(2);
}

TEST(random_load_on_four_workers_runs_every_task_once)
{
	stress(4);
}

TEST_LIST(
	TEST_ENTRY(random_load_on_two_workers_runs_every_task_once),
	TEST_ENTRY(random_load_on_four_workers_runs_every_task_once))
