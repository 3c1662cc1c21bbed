/*
 * tests/test_metrics.c: per-worker counters (coil/debug.h) and debug
 * mode's slow-callback warning.
 *
 * Counters: steals forced by an unbalanced spawn (a task that keeps worker
 * 0 busy until a task it spawned has run elsewhere), parks and wake-ups of
 * an idle runtime woken from a plain thread, injection-queue pops, the LIFO
 * slot, timers, callbacks and I/O on a standalone loop, busy and idle time
 * against the wall clock, the one-line-per-worker dump, a reader on a plain
 * thread while the workers run (the TSan build checks that), and bad
 * arguments. Slow callbacks: a callback and a task step that burn 120 ms
 * against a 50 ms threshold are reported, naming the callback's function
 * and the task; nothing is reported without debug mode or under the
 * threshold.
 *
 * What may vary between runs (which worker runs what) is never asserted;
 * tests wait on conditions, bounded by the harness's timeout. A build made
 * with COIL_METRICS=OFF skips the counter tests (77).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "coil/coil.h"
#include "test.h"

/* --- helpers ------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static void nap_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Holds the thread (and its loop) for `ms` of wall time. */
static void burn_ms(int ms)
{
	int64_t until = now_ns() + (int64_t)ms * 1000000;
	while (now_ns() < until)
		;
}

static coil_runtime_t *rt_make(unsigned workers, bool debug)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	o.debug = debug;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	return rt;
}

/* Reads every worker's counters (at most 8). Skips in a build without
 * counters. */
static int snap(coil_runtime_t *rt, coil_worker_metrics_t *m)
{
	m[0].size = sizeof(m[0]);
	int n = coil_runtime_metrics(rt, m, 8);
	if (n == -ENOTSUP)
		TEST_SKIP("built with COIL_METRICS=OFF");
	ASSERT_GT(n, 0);
	return n;
}

static coil_worker_metrics_t loop_snap(coil_loop_t *loop)
{
	coil_worker_metrics_t m = { .size = sizeof(m) };
	int rc = coil_loop_metrics(loop, &m);
	if (rc == -ENOTSUP)
		TEST_SKIP("built with COIL_METRICS=OFF");
	ASSERT_EQ(rc, 0);
	return m;
}

/* --- steals -------------------------------------------------------------- */

struct unbalanced {
	atomic_int ran;
	int worker;      /* where the spawned task ran */
	int main_worker; /* where the spawner held its worker */
};

static int stolen_task(void *arg, void **result)
{
	struct unbalanced *u = arg;
	(void)result;
	u->worker = coil_current_worker();
	atomic_store(&u->ran, 1);
	return 0;
}

/* Spawns a task and holds worker 0 until it has run: only a steal can run
 * it. */
static int unbalanced_main(void *arg, void **result)
{
	struct unbalanced *u = arg;
	(void)result;
	u->main_worker = coil_current_worker();
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, stolen_task, u, NULL), 0);
	while (!atomic_load(&u->ran))
		;
	ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	return 0;
}

TEST(counts_steals_of_an_unbalanced_spawn)
{
	coil_runtime_t *rt = rt_make(2, false);
	coil_worker_metrics_t m[8];
	snap(rt, m);
	struct unbalanced u = { .worker = -1, .main_worker = -1 };
	ASSERT_EQ(coil_runtime_block_on(rt, unbalanced_main, &u, NULL), 0);
	/* The main task itself may have been stolen before it started: the
	 * thief is whichever worker the spawner did not hold. */
	int thief = u.worker, victim = u.main_worker;
	ASSERT(thief == 0 || thief == 1);
	ASSERT_EQ(victim, 1 - thief);
	ASSERT_EQ(snap(rt, m), 2);
	ASSERT_GE(m[thief].stolen, 1);
	ASSERT_GE(m[thief].steals, 1);
	ASSERT_GE(m[thief].steal_attempts, m[thief].steals);
	ASSERT_GE(m[thief].stolen, m[thief].steals);
	ASSERT_GE(m[thief].steps, 1);  /* the stolen task */
	ASSERT_GE(m[victim].steps, 1); /* the spawner */
	ASSERT_EQ(m[0].worker, 0);
	ASSERT_EQ(m[1].worker, 1);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- parks, wake-ups, the injection queue -------------------------------- */

static int post_sem(void *arg, void **result)
{
	(void)result;
	sem_post(arg);
	return 0;
}

static uint64_t sum_of(const coil_worker_metrics_t *m, int n, size_t off)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += *(const uint64_t *)((const char *)&m[i] + off);
	return s;
}
#define SUM(m, n, f) sum_of(m, n, offsetof(coil_worker_metrics_t, f))

/* Waits until every worker is parked. (Waiting for the park counts to
 * grow would hang when the workers were parked already and stayed so.) */
static void wait_all_parked(coil_runtime_t *rt)
{
	coil_worker_metrics_t m[8];
	for (;;) {
		int n = snap(rt, m);
		int parked = 0;
		for (int i = 0; i < n; i++)
			parked += m[i].parked && m[i].parks > 0;
		if (parked == n)
			return;
		nap_ms(1);
	}
}

TEST(counts_parks_and_wakeups_from_a_plain_thread)
{
	coil_runtime_t *rt = rt_make(2, false);
	coil_worker_metrics_t zero[8], before[8], after[8];
	snap(rt, zero);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	sem_t sem;
	sem_init(&sem, 0, 0);
	/* A spawn from this thread goes through the injection queue and
	 * wakes a parked worker. A worker may be between two parks (spinning
	 * before it sleeps, or woken by Valgrind's wait slices) when the
	 * spawn lands, and then nobody needs waking: try until one did. */
	int n = 0;
	for (int tries = 0; tries < 100; tries++) {
		wait_all_parked(rt);
		n = snap(rt, before);
		ASSERT_EQ(coil_runtime_spawn(rt, NULL, post_sem, &sem, NULL), 0);
		sem_wait(&sem);
		snap(rt, after);
		ASSERT_GE(SUM(after, n, inject_pops), SUM(before, n, inject_pops) + 1);
		if (SUM(after, n, wakeups_received) > SUM(before, n, wakeups_received))
			break;
	}
	ASSERT_GT(SUM(after, n, wakeups_received), SUM(before, n, wakeups_received));
	for (int i = 0; i < n; i++) {
		ASSERT_GE(after[i].parks, 1);
		ASSERT(after[i].running);
		ASSERT_GT(after[i].idle_ns, 0);
	}
	ASSERT_GE(SUM(after, n, steps), 1);
	sem_destroy(&sem);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- the LIFO slot ------------------------------------------------------- */

static int await_future(void *arg, void **result)
{
	(void)result;
	return coil_await(arg, NULL);
}

/* Wakes a task from a running task: the woken one takes the LIFO slot. */
static int lifo_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (int i = 0; i < 10; i++) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		coil_task_t *t;
		ASSERT_EQ(coil_spawn(&t, await_future, f, NULL), 0);
		ASSERT_EQ(coil_sleep(0), 0); /* t runs and waits on f */
		ASSERT_EQ(coil_future_set_result(f, NULL, NULL), 0);
		ASSERT_EQ(coil_await(coil_task_future(t), NULL), 0);
		coil_task_detach(t);
		coil_future_release(f);
	}
	return 0;
}

TEST(counts_lifo_slot_hits)
{
	coil_runtime_t *rt = rt_make(1, false);
	coil_worker_metrics_t m[8];
	snap(rt, m);
	ASSERT_EQ(coil_runtime_block_on(rt, lifo_main, NULL, NULL), 0);
	ASSERT_EQ(snap(rt, m), 1);
	ASSERT_GE(m[0].lifo_hits, 1);
	ASSERT_GE(m[0].steps, 30);
	ASSERT_EQ(m[0].steals, 0);
	ASSERT_EQ(m[0].deque_depth, 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- a standalone loop: timers, callbacks, I/O, time --------------------- */

static void count_cb(void *arg)
{
	(*(int *)arg)++;
}

struct loop_run {
	int64_t started;
	int calls;
	coil_worker_metrics_t m;
};

static int loop_main(void *arg, void **result)
{
	struct loop_run *r = arg;
	(void)result;
	coil_loop_t *loop = coil_get_running_loop();
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(coil_sleep_ns(1000000), 0);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(coil_loop_call_soon(loop, count_cb, &r->calls, NULL), 0);
	ASSERT_EQ(coil_sleep(0), 0); /* the callbacks run */
	int p[2];
	ASSERT_EQ(pipe(p), 0);
	char c = 'x';
	ASSERT_EQ(write(p[1], &c, 1), 1);
	ASSERT_EQ(coil_read(p[0], &c, 1, -1, COIL_FOREVER), 1);
	close(p[0]);
	close(p[1]);
	burn_ms(20);
	r->m = loop_snap(loop);
	return 0;
}

TEST(counts_timers_callbacks_io_and_time_of_a_loop)
{
	struct loop_run r = { .started = now_ns() };
	int rc = coil_run(loop_main, &r, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	int64_t elapsed = now_ns() - r.started;
	ASSERT_EQ(r.calls, 5);
	ASSERT_EQ(r.m.worker, -1);
	ASSERT(r.m.running);
	ASSERT_GE(r.m.timers_fired, 3);
	ASSERT_GE(r.m.callbacks, 5);
	ASSERT_GE(r.m.steps, 5);
	ASSERT_GE(r.m.parks, 1);      /* the sleeps had nothing else to wait for */
	ASSERT_GE(r.m.io_submitted, 1);
	ASSERT_GE(r.m.io_completed, 1);
	ASSERT_GE(r.m.busy_ns, 20 * 1000000);
	ASSERT_GT(r.m.idle_ns, 0);
	ASSERT_LE(r.m.busy_ns + r.m.idle_ns, elapsed);
	ASSERT_EQ(r.m.steals + r.m.inject_pops + r.m.lifo_hits + r.m.deque_depth, 0);
}

/* --- the dump ------------------------------------------------------------ */

TEST(dump_writes_one_line_per_worker)
{
	coil_runtime_t *rt = rt_make(3, false);
	coil_worker_metrics_t m[8];
	snap(rt, m);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ASSERT(f != NULL);
	ASSERT_EQ(coil_runtime_dump_metrics(rt, f), 3);
	fclose(f);
	int lines = 0;
	for (char *p = buf; *p; p = strchr(p, '\n') + 1) {
		char want[32];
		snprintf(want, sizeof(want), "worker %d: steps=", lines);
		ASSERT(!strncmp(p, want, strlen(want)));
		ASSERT(strchr(p, '\n') != NULL);
		ASSERT(strstr(p, " busy=") && strstr(p, " idle="));
		lines++;
	}
	ASSERT_EQ(lines, 3);
	free(buf);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);

	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	f = open_memstream(&buf, &len);
	ASSERT_EQ(coil_loop_dump_metrics(loop, f), 1);
	fclose(f);
	ASSERT(!strncmp(buf, "loop: steps=0 ", 14));
	free(buf);
	coil_loop_close(loop);
}

/* --- reading while the workers run -------------------------------------- */

struct reader {
	coil_runtime_t *rt;
	atomic_bool stop;
	atomic_int reads;
	long fib;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	coil_worker_metrics_t prev[8] = { { 0 } }, m[8];
	FILE *null = fopen("/dev/null", "w");
	while (!atomic_load(&r->stop)) {
		int n = snap(r->rt, m);
		for (int i = 0; i < n; i++) {
			ASSERT_GE(m[i].steps, prev[i].steps);
			ASSERT_GE(m[i].parks, prev[i].parks);
			ASSERT_GE(m[i].busy_ns, 0);
			ASSERT_GE(m[i].idle_ns, 0);
			prev[i] = m[i];
		}
		ASSERT_EQ(coil_runtime_dump_metrics(r->rt, null), n);
		atomic_fetch_add(&r->reads, 1);
	}
	fclose(null);
	return NULL;
}

static long fib(long k);

static int fib_task(void *arg, void **result)
{
	*result = (void *)(intptr_t)fib((long)(intptr_t)arg);
	return 0;
}

static long fib(long k)
{
	if (k < 2)
		return k;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, fib_task, (void *)(intptr_t)(k - 1), NULL), 0);
	long b = fib(k - 2);
	void *a;
	ASSERT_EQ(coil_await(coil_task_future(t), &a), 0);
	coil_task_detach(t);
	return (long)(intptr_t)a + b;
}

/* Computes fib once the reader is reading (under Valgrind, which runs
 * one thread at a time, it might otherwise not get a turn before fib is
 * done). */
static int fib_main(void *arg, void **result)
{
	struct reader *r = arg;
	(void)result;
	while (!atomic_load(&r->reads))
		ASSERT_EQ(coil_sleep_ns(1000000), 0);
	r->fib = fib(test_heavy_tools() ? 12 : 16);
	return 0;
}

TEST(counters_read_from_a_plain_thread_while_workers_run)
{
	struct reader r = { .rt = rt_make(2, false) };
	coil_worker_metrics_t m[8];
	snap(r.rt, m);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, reader_main, &r), 0);
	ASSERT_EQ(coil_runtime_block_on(r.rt, fib_main, &r, NULL), 0);
	ASSERT_EQ(r.fib, test_heavy_tools() ? 144 : 987);
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	int n = snap(r.rt, m);
	/* fib(k) spawns fib(k+1) - 1 tasks, each at least one step. */
	ASSERT_GE(SUM(m, n, steps), test_heavy_tools() ? 232 : 1596);
	ASSERT_EQ(coil_runtime_shutdown(r.rt, COIL_FOREVER), 0);
}

/* --- arguments ----------------------------------------------------------- */

TEST(metrics_reject_bad_arguments)
{
	coil_runtime_t *rt = rt_make(2, false);
	coil_worker_metrics_t m[8];
	snap(rt, m);
	ASSERT_EQ(coil_runtime_metrics(rt, NULL, 0), 2);
	ASSERT_EQ(coil_runtime_metrics(NULL, m, 1), -EINVAL);
	ASSERT_EQ(coil_runtime_metrics(rt, NULL, 1), -EINVAL);
	m[0].size = 0;
	ASSERT_EQ(coil_runtime_metrics(rt, m, 1), -EINVAL);
	ASSERT_EQ(coil_loop_metrics(NULL, m), -EINVAL);
	ASSERT_EQ(coil_loop_metrics(coil_runtime_loop(rt, COIL_ANY_WORKER), m), -EINVAL);
	ASSERT_EQ(coil_runtime_dump_metrics(NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_loop_dump_metrics(NULL, NULL), -EINVAL);
	/* A caller built against a shorter struct (here: up to `steps`):
	 * its array's stride is its own size, and nothing past it is
	 * written. */
	struct old { size_t size; int worker; bool running; uint64_t steps; };
	uint64_t mem[(2 * sizeof(struct old)) / 8 + 4];
	memset(mem, 0xAA, sizeof(mem));
	struct old *old = (struct old *)mem;
	old[0].size = sizeof(struct old);
	ASSERT_EQ(coil_runtime_metrics(rt, (coil_worker_metrics_t *)old, 2), 2);
	ASSERT_EQ(old[0].worker, 0);
	ASSERT_EQ(old[1].worker, 1);
	ASSERT_EQ(old[1].size, sizeof(struct old));
	ASSERT_EQ(old[1].steps, 0);
	const unsigned char *tail = (const unsigned char *)&old[2];
	for (size_t i = 0; i < sizeof(mem) - 2 * sizeof(struct old); i++)
		ASSERT_EQ(tail[i], 0xAA);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- slow callbacks (debug mode) ---------------------------------------- */

struct warnings {
	int n;
	char msg[4][256];
	coil_task_t *task[4];
};

static void record_warning(coil_loop_t *loop, const coil_exc_context_t *ctx, void *arg)
{
	struct warnings *w = arg;
	(void)loop;
	if (w->n < 4) {
		snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", ctx->message);
		w->task[w->n] = ctx->task;
	}
	w->n++;
}

static void burn_cb(void *arg)
{
	(void)arg;
	burn_ms(120);
}

static int burner_task(void *arg, void **result)
{
	(void)arg;
	(void)result;
	burn_ms(120);
	return 0;
}

/* Runs burn_cb and a task 'burner' that each hold the loop 120 ms, on a
 * standalone loop in debug mode (or not) with the given threshold. */
static void run_burners(bool debug, int64_t slow_ns, struct warnings *w)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.debug = debug;
	coil_loop_t *loop;
	int rc = coil_new_event_loop_opts(&loop, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	coil_loop_set_exception_handler(loop, record_warning, w);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(loop, slow_ns), 0);
	ASSERT_EQ(coil_loop_call_soon(loop, burn_cb, NULL, NULL), 0);
	coil_spawn_opts_t so = { .name = "burner" };
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, burner_task, NULL, &so), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	/* The step may have ended the task: the warning names it, the
	 * context does not hand it over. */
	for (int i = 0; i < w->n && i < 4; i++)
		ASSERT(w->task[i] == NULL);
	char id[32];
	snprintf(id, sizeof(id), "(id %llu)", (unsigned long long)coil_task_id(t));
	for (int i = 0; i < w->n && i < 4; i++)
		if (strstr(w->msg[i], "task 'burner'"))
			ASSERT(strstr(w->msg[i], id));
	coil_task_detach(t);
	ASSERT_EQ(coil_loop_close(loop), 0);
}

/* The seconds a warning says after "took ", which must follow `prefix`. */
static double took(const char *msg, const char *prefix)
{
	const char *p = strstr(msg, prefix);
	ASSERT(p != NULL);
	p = strstr(p, " took ");
	ASSERT(p != NULL);
	double sec = -1;
	char unit[16] = "";
	ASSERT_EQ(sscanf(p, " took %lf %15s", &sec, unit), 2);
	ASSERT_STR_EQ(unit, "seconds");
	return sec;
}

TEST(slow_callback_and_step_are_reported_in_debug_mode)
{
	struct warnings w = { 0 };
	run_burners(true, 50 * 1000000, &w);
	ASSERT_EQ(w.n, 2);
	/* Each held the loop at least its 120 ms (more on a busy machine). */
	ASSERT_GE(took(w.msg[0], "Executing callback burn_cb"), 0.119);
	ASSERT(w.task[0] == NULL);
	ASSERT_GE(took(w.msg[1], "Executing task 'burner' (id "), 0.119);
}

TEST(slow_callback_is_silent_without_debug_or_under_the_threshold)
{
	struct warnings w = { 0 };
	run_burners(false, 50 * 1000000, &w);
	ASSERT_EQ(w.n, 0);
	run_burners(true, 5 * COIL_NSEC_PER_SEC, &w);
	ASSERT_EQ(w.n, 0);
}

static int worker_burner(void *arg, void **result)
{
	(void)result;
	*(int *)arg = coil_current_worker();
	burn_ms(120);
	return 0;
}

TEST(slow_step_is_reported_on_a_runtime_worker)
{
	coil_runtime_t *rt = rt_make(2, true);
	struct warnings w[2] = { { 0 }, { 0 } };
	for (int i = 0; i < 2; i++) {
		coil_loop_t *l = coil_runtime_loop(rt, i);
		coil_loop_set_exception_handler(l, record_warning, &w[i]);
		ASSERT_EQ(coil_loop_set_slow_callback_duration(l, 50 * 1000000), 0);
	}
	int worker = -1;
	ASSERT_EQ(coil_runtime_block_on(rt, worker_burner, &worker, NULL), 0);
	ASSERT(worker == 0 || worker == 1);
	ASSERT_EQ(w[worker].n, 1);
	ASSERT_EQ(w[1 - worker].n, 0);
	ASSERT(strstr(w[worker].msg[0], "Executing task 'Task-"));
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST(slow_callback_duration_is_settable)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_loop_get_slow_callback_duration(loop), 100 * 1000000);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(loop, 250 * 1000000), 0);
	ASSERT_EQ(coil_loop_get_slow_callback_duration(loop), 250 * 1000000);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(loop, 0), 0);
	ASSERT_EQ(coil_loop_get_slow_callback_duration(loop), 100 * 1000000);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(loop, -1), -EINVAL);
	ASSERT_EQ(coil_loop_set_slow_callback_duration(NULL, 1), -EINVAL);
	ASSERT_EQ(coil_loop_get_slow_callback_duration(NULL), -EINVAL);
	coil_loop_close(loop);
}

TEST_LIST(
	TEST_ENTRY(counts_steals_of_an_unbalanced_spawn),
	TEST_ENTRY(counts_parks_and_wakeups_from_a_plain_thread),
	TEST_ENTRY(counts_lifo_slot_hits),
	TEST_ENTRY(counts_timers_callbacks_io_and_time_of_a_loop),
	TEST_ENTRY(dump_writes_one_line_per_worker),
	TEST_ENTRY(counters_read_from_a_plain_thread_while_workers_run),
	TEST_ENTRY(metrics_reject_bad_arguments),
	TEST_ENTRY(slow_callback_and_step_are_reported_in_debug_mode),
	TEST_ENTRY(slow_callback_is_silent_without_debug_or_under_the_threshold),
	TEST_ENTRY(slow_step_is_reported_on_a_runtime_worker),
	TEST_ENTRY(slow_callback_duration_is_settable),
)
