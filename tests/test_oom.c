/*
 * tests/test_oom.c: allocation failures (runtime/fault.h).
 *
 * Each test sweeps one operation: it makes the operation's 1st allocation
 * fail, then its 2nd, its 3rd, ... until a run of the operation hits no
 * injected failure. Every run must end with success or a clean error
 * (-ENOMEM, or the documented code of the call that failed), and the same
 * loop, objects and runtime must keep working afterwards: each run is
 * followed by the operation's check, made with nothing armed. Leaks are for
 * LeakSanitizer (ASan build) and Valgrind to find: every run frees what it
 * made, whichever allocation failed.
 *
 * Needs a build with COIL_FAULT_INJECT (the libc-malloc builds: sanitizers,
 * Valgrind); skips elsewhere. OOM_TRACE=1 prints each run before it
 * starts, to find the allocation behind a failure (a breakpoint in
 * coil__fault_slow then shows its stack).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>

#include "coil/coil.h"
#include "coil/io.h"
#include "fault.h"
#include "test.h"

#define MS (COIL_NSEC_PER_SEC / 1000)
#define SEC COIL_NSEC_PER_SEC

#if COIL_FAULT_INJECT

/* Runs op() with its nth allocation failing, n = 1, 2, ..., until a run
 * hits no failure; that run must succeed. After each run, check() (NULL:
 * none) verifies that what the run left still works. Returns the number of
 * allocations the operation made. */
/* Codes besides -ENOMEM that a run may end with, 0-terminated: set by
 * the sweeps whose operation sees a failure of another party (a peer's
 * connection dropped for want of memory). */
static const int *sweep_also;

static bool code_ok(int rc)
{
	if (rc == 0 || rc == -ENOMEM)
		return true;
	for (const int *c = sweep_also; c && *c; c++)
		if (rc == *c)
			return true;
	return false;
}

/* Allocations skipped between two runs of a sweep (1: every one). */
static int sweep_step = 1;

static int sweep(const char *what, int (*op)(void *), int (*check)(void *),
		 void *arg, int max)
{
	for (int n = 1;; n += sweep_step) {
		ASSERT_LE(n, max);
		long before = coil__fault_count();
		if (getenv("OOM_TRACE"))
			fprintf(stderr, "-- %s %d\n", what, n);
		coil__fault_set(n);
		int rc = op(arg);
		coil__fault_set(0);
		bool hit = coil__fault_count() != before;
		if (!code_ok(rc))
			TEST_FAIL_("%s: allocation %d failing: rc %d", what, n, rc);
		if (!hit && rc != 0)
			TEST_FAIL_("%s: no failure injected, rc %d", what, rc);
		if (check) {
			int crc = check(arg);
			if (crc != 0)
				TEST_FAIL_("%s: after allocation %d failed: check rc %d",
					   what, n, crc);
		}
		if (!hit) {
			printf("  %s: %d allocations%s\n", what, n - 1,
			       sweep_step > 1 ? " or fewer" : "");
			return n - 1;
		}
	}
}

/* Runs fn as the main task of a loop of its own. */
static void run(coil_fn fn)
{
	int rc = coil_run(fn, NULL, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

static int child_ok(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(intptr_t)7;
	return 0;
}

static int child_yield(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_sleep(0);
}

/* Spawns child_ok, awaits it and checks its result: the check after every
 * run of the tests below that run inside a loop. */
static int spawn_and_await(void *arg)
{
	(void)arg;
	coil_task_t *t = NULL;
	int rc = coil_spawn(&t, child_ok, NULL, NULL);
	if (rc)
		return rc;
	void *res = NULL;
	rc = coil_await(coil_task_future(t), &res);
	coil_task_detach(t);
	if (rc == 0 && res != (void *)(intptr_t)7)
		rc = -EIO;
	return rc;
}

/* --- the loop itself ------------------------------------------------------ */

static int loop_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = spawn_and_await(NULL);
	if (rc)
		return rc;
	return coil_sleep(0);
}

static int op_coil_run(void *arg)
{
	(void)arg;
	int rc = coil_run(loop_main, NULL, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	return rc;
}

TEST(coil_run)
{
	int n = sweep("coil_run", op_coil_run, op_coil_run, NULL, 500);
	ASSERT_GT(n, 0);
}

static int op_loop_explicit(void *arg)
{
	(void)arg;
	coil_loop_t *loop = NULL;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	if (rc)
		return rc;
	coil_task_t *t = NULL;
	rc = coil_loop_create_task(loop, &t, loop_main, NULL, NULL);
	if (rc == 0) {
		rc = coil_loop_run_until_complete(loop, coil_task_future(t), NULL);
		coil_task_detach(t);
	}
	int crc = coil_loop_close(loop);
	return rc ? rc : crc;
}

TEST(loop_explicit)
{
	sweep("new_event_loop", op_loop_explicit, op_loop_explicit, NULL, 500);
}

/* --- tasks, futures, composition ------------------------------------------ */

static int op_spawn(void *arg)
{
	return spawn_and_await(arg);
}

static int op_spawn_named(void *arg)
{
	(void)arg;
	coil_spawn_opts_t o = { .name = "named" };
	coil_task_t *t = NULL;
	int rc = coil_spawn(&t, child_yield, NULL, &o);
	if (rc)
		return rc;
	rc = coil_task_set_name(t, "renamed");
	int arc = coil_await(coil_task_future(t), NULL);
	if (rc == 0 && strcmp(coil_task_get_name(t), "renamed"))
		rc = -EIO;
	coil_task_detach(t);
	return rc ? rc : arc;
}

static int setter(void *arg, void **result)
{
	(void)result;
	coil_sleep(0);
	return coil_future_set_result(arg, (void *)(intptr_t)5, NULL);
}

static void done_cb(coil_future_t *f, void *arg)
{
	(void)f;
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* Waits until the done callback counting in *calls has run: it runs on
 * the future's loop, soon after the future is done, on a worker that need
 * not be this task's. */
static void wait_calls(atomic_int *calls)
{
	for (int i = 0; i < 5000 && !atomic_load(calls); i++)
		coil_sleep_ns(MS / 10);
}

static int op_future(void *arg)
{
	(void)arg;
	coil_future_t *f = NULL;
	int rc = coil_future_create(&f, NULL);
	if (rc)
		return rc;
	atomic_int calls = 0;
	rc = coil_future_add_done_callback(f, done_cb, &calls);
	if (rc) {
		coil_future_release(f);
		return rc;
	}
	coil_task_t *t = NULL;
	rc = coil_spawn(&t, setter, f, NULL);
	if (rc) {
		/* The callback, scheduled by the cancel, must run before
		 * calls goes out of scope. */
		coil_future_cancel(f, NULL);
		wait_calls(&calls);
		coil_future_release(f);
		return atomic_load(&calls) == 1 ? rc : -EIO;
	}
	/* The setter first: one that fails (no stack to start on, say)
	 * never sets f. */
	int trc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	void *res = NULL;
	if (trc)
		coil_future_cancel(f, NULL);
	else
		rc = coil_await(f, &res);
	wait_calls(&calls);
	coil_future_release(f);
	if (atomic_load(&calls) != 1 ||
	    (rc == 0 && trc == 0 && res != (void *)(intptr_t)5)) {
		fprintf(stderr, "future: rc %d, setter %d, result %p, %d done "
			"callback calls\n", rc, trc, res, atomic_load(&calls));
		return -EIO;
	}
	return rc ? rc : trc;
}

static int op_gather_wait(void *arg)
{
	(void)arg;
	enum { N = 3 };
	coil_task_t *t[N] = { NULL };
	coil_future_t *f[N];
	int rc = 0, i;
	for (i = 0; i < N; i++) {
		rc = coil_spawn(&t[i], i == 1 ? child_yield : child_ok, NULL, NULL);
		if (rc)
			break;
		f[i] = coil_task_future(t[i]);
	}
	if (rc == 0) {
		void *res[N];
		int err[N];
		rc = coil_gather(f, N, res, err, COIL_GATHER_RETURN_EXCEPTIONS);
		/* A child's own failure is its error. */
		for (int j = 0; j < N && rc == 0; j++)
			rc = err[j];
		if (rc == 0) {
			bool done[N];
			rc = coil_wait(f, N, done, COIL_ALL_COMPLETED, SEC);
			if (rc >= 0)
				rc = rc == N && done[0] && done[1] && done[2] ? 0 : -EIO;
		}
	}
	/* Whatever failed, every child that was spawned ends before the
	 * run does. */
	for (int j = 0; j < i; j++) {
		while (!coil_future_done(f[j]))
			coil_sleep(0);
		coil_task_detach(t[j]);
	}
	return rc;
}

static void soon_cb(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static int op_call_soon_later(void *arg)
{
	(void)arg;
	atomic_int calls = 0;
	int want = 0;
	int rc = coil_loop_call_soon(coil_get_running_loop(), soon_cb, &calls, NULL);
	if (rc == 0) {
		want++;
		rc = coil_loop_call_later(coil_get_running_loop(), MS, soon_cb,
					  &calls, NULL);
		if (rc == 0)
			want++;
	}
	coil_handle_t *h = NULL;
	if (rc == 0) {
		/* A handle kept and cancelled: its callback never runs. */
		rc = coil_loop_call_later(coil_get_running_loop(), MS, soon_cb,
					  &calls, &h);
		if (rc == 0) {
			coil_handle_cancel(h);
			coil_handle_release(h);
		}
	}
	for (int i = 0; i < 1000 && atomic_load(&calls) < want; i++)
		coil_sleep_ns(MS / 10);
	if (atomic_load(&calls) != want)
		return -EIO;
	return rc;
}

static int op_taskgroup(void *arg)
{
	(void)arg;
	coil_taskgroup_t *tg = NULL;
	int rc = coil_taskgroup_create(&tg);
	if (rc)
		return rc;
	rc = coil_taskgroup_enter(tg);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = coil_taskgroup_spawn(tg, NULL, i ? child_yield : child_ok,
					  NULL, NULL);
	int wrc = coil_taskgroup_wait(tg, rc);
	coil_taskgroup_destroy(tg);
	return rc ? rc : wrc;
}

static int op_wait_for(void *arg)
{
	(void)arg;
	coil_task_t *t = NULL;
	int rc = coil_spawn(&t, child_yield, NULL, NULL);
	if (rc)
		return rc;
	rc = coil_wait_for(coil_task_future(t), SEC, NULL);
	while (!coil_future_done(coil_task_future(t)))
		coil_sleep(0);
	coil_task_detach(t);
	if (rc)
		return rc;
	/* One that times out: the child is cancelled. */
	coil_future_t *f = NULL;
	rc = coil_future_create(&f, NULL);
	if (rc)
		return rc;
	rc = coil_wait_for(f, MS, NULL);
	if (rc == -ETIMEDOUT)
		rc = coil_future_cancelled(f) ? 0 : -EIO;
	coil_future_cancel(f, NULL);
	coil_future_release(f);
	return rc;
}

static int op_as_completed(void *arg)
{
	(void)arg;
	enum { N = 2 };
	coil_task_t *t[N] = { NULL };
	coil_future_t *f[N];
	int rc = 0, i;
	for (i = 0; i < N && rc == 0; i++) {
		rc = coil_spawn(&t[i], child_yield, NULL, NULL);
		f[i] = rc ? NULL : coil_task_future(t[i]);
	}
	if (rc)
		i--;
	if (rc == 0) {
		coil_as_completed_t *it = NULL;
		rc = coil_as_completed_create(&it, f, N, SEC);
		for (int k = 0; k < N && rc == 0; k++) {
			coil_future_t *d = NULL;
			rc = coil_as_completed_next(it, &d);
			if (rc == 0)
				rc = coil_await(d, NULL);
		}
		coil_as_completed_destroy(it);
	}
	for (int j = 0; j < i; j++) {
		while (!coil_future_done(f[j]))
			coil_sleep(0);
		coil_task_detach(t[j]);
	}
	return rc;
}

static int task_main_sweeps(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sweep("spawn", op_spawn, spawn_and_await, NULL, 200);
	sweep("spawn named", op_spawn_named, spawn_and_await, NULL, 200);
	sweep("future", op_future, spawn_and_await, NULL, 200);
	sweep("gather/wait", op_gather_wait, spawn_and_await, NULL, 300);
	sweep("call_soon/call_later", op_call_soon_later, spawn_and_await, NULL, 200);
	sweep("taskgroup", op_taskgroup, spawn_and_await, NULL, 200);
	sweep("wait_for", op_wait_for, spawn_and_await, NULL, 200);
	sweep("as_completed", op_as_completed, spawn_and_await, NULL, 200);
	return 0;
}

TEST(tasks_futures)
{
	run(task_main_sweeps);
}

static int sync_main(void *arg, void **result);

/* The same on a runtime of two workers, where tasks move between threads
 * and wake each other across them. */
TEST(tasks_sync_mt)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	int rc = coil_run(task_main_sweeps, NULL, NULL, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_run(sync_main, NULL, NULL, &o), 0);
}

/* --- queues and synchronization --------------------------------------------- */

static int consumer(void *arg, void **result)
{
	return coil_queue_get(arg, result);
}

static int op_queue(void *arg)
{
	(void)arg;
	coil_queue_t *q = NULL;
	int rc = coil_queue_create(&q, COIL_QUEUE_FIFO, 2);
	if (rc)
		return rc;
	coil_task_t *t = NULL;
	rc = coil_spawn(&t, consumer, q, NULL);
	if (rc == 0) {
		coil_sleep(0); /* the consumer waits in get */
		rc = coil_queue_put(q, (void *)(intptr_t)1);
		if (rc)
			coil_task_cancel(t, NULL); /* it would wait for ever */
		void *res = NULL;
		int crc = coil_await(coil_task_future(t), &res);
		if (rc == 0)
			rc = crc;
		if (rc == 0 && res != (void *)(intptr_t)1)
			rc = -EIO;
		while (!coil_future_done(coil_task_future(t)))
			coil_sleep(0);
		coil_task_detach(t);
	}
	if (rc == 0) {
		/* put_nowait / get_nowait on a queue with room. */
		rc = coil_queue_put_nowait(q, (void *)(intptr_t)2);
		void *v = NULL;
		if (rc == 0 && (coil_queue_get_nowait(q, &v) || v != (void *)(intptr_t)2))
			rc = -EIO;
	}
	void *v;
	while (coil_queue_get_nowait(q, &v) == 0)
		;
	int drc = coil_queue_destroy(q);
	return rc ? rc : drc;
}

typedef struct sync_objs {
	coil_lock_t *lock;
	coil_event_t *event;
	coil_semaphore_t *sem;
	int held;
} sync_objs_t;

static int locker(void *arg, void **result)
{
	(void)result;
	sync_objs_t *s = arg;
	int rc = coil_lock_acquire(s->lock);
	if (rc)
		return rc;
	s->held++;
	coil_lock_release(s->lock);
	rc = coil_semaphore_acquire(s->sem);
	if (rc)
		return rc;
	s->held++;
	coil_semaphore_release(s->sem);
	rc = coil_event_wait(s->event);
	if (rc == 0)
		s->held++;
	return rc;
}

/* Contends for the lock, semaphore and event of s with a second task. */
static int op_sync(void *arg)
{
	sync_objs_t *s = arg;
	s->held = 0;
	coil_event_clear(s->event);
	int rc = coil_lock_acquire(s->lock);
	if (rc)
		return rc;
	rc = coil_semaphore_acquire(s->sem);
	if (rc) {
		coil_lock_release(s->lock);
		return rc;
	}
	coil_task_t *t = NULL;
	rc = coil_spawn(&t, locker, s, NULL);
	if (rc) {
		coil_semaphore_release(s->sem);
		coil_lock_release(s->lock);
		return rc;
	}
	coil_sleep(0); /* the other task waits for the lock */
	coil_lock_release(s->lock);
	coil_sleep(0);
	coil_semaphore_release(s->sem);
	coil_sleep(0);
	coil_event_set(s->event);
	int trc = coil_await(coil_task_future(t), NULL);
	coil_task_detach(t);
	if (trc == 0 && s->held != 3)
		trc = -EIO;
	return trc;
}

/* The objects are whole after every run: free, and a second task can
 * take them. */
static int check_sync(void *arg)
{
	sync_objs_t *s = arg;
	if (coil_lock_locked(s->lock) || coil_semaphore_value(s->sem) != 1)
		return -EIO;
	coil__fault_set(0);
	int rc = op_sync(s);
	return rc ? rc : spawn_and_await(NULL);
}

static int op_task_local(void *arg)
{
	(void)arg;
	static char keys[8];
	int rc = 0;
	for (int i = 0; i < 8 && rc == 0; i++)
		rc = coil_task_local_set(&keys[i], &keys[i]);
	for (int i = 0; i < 8; i++) {
		void *v = coil_task_local_get(&keys[i]);
		if (v != NULL && v != &keys[i])
			return -EIO;
		if (rc == 0 && v != &keys[i])
			return -EIO;
	}
	/* A spawned task starts with a copy of the values. */
	if (rc == 0)
		rc = spawn_and_await(NULL);
	for (int i = 0; i < 8; i++)
		coil_task_local_set(&keys[i], NULL);
	return rc;
}

static int sync_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sweep("queue", op_queue, spawn_and_await, NULL, 200);
	sync_objs_t s = { 0 };
	int rc = coil_lock_create(&s.lock);
	if (rc)
		return rc;
	ASSERT_EQ(coil_event_create(&s.event), 0);
	ASSERT_EQ(coil_semaphore_create(&s.sem, 1), 0);
	sweep("lock/semaphore/event", op_sync, check_sync, &s, 200);
	ASSERT_EQ(coil_lock_destroy(s.lock), 0);
	ASSERT_EQ(coil_event_destroy(s.event), 0);
	ASSERT_EQ(coil_semaphore_destroy(s.sem), 0);
	/* Creation itself. */
	for (int n = 1; n < 4; n++) {
		coil__fault_set(n);
		coil_lock_t *l = NULL;
		coil_event_t *e = NULL;
		coil_semaphore_t *sm = NULL;
		int a = coil_lock_create(&l), b = coil_event_create(&e),
		    c = coil_semaphore_create(&sm, 2);
		coil__fault_set(0);
		ASSERT_EQ(a ? a : b ? b : c, -ENOMEM);
		if (!a) coil_lock_destroy(l);
		if (!b) coil_event_destroy(e);
		if (!c) coil_semaphore_destroy(sm);
	}
	sweep("task-local", op_task_local, spawn_and_await, NULL, 100);
	return 0;
}

TEST(sync)
{
	run(sync_main);
}

/* --- generators and async iterators ---------------------------------------- */

static int gen_body(void *arg, void **result)
{
	(void)arg;
	(void)result;
	for (intptr_t i = 1; i <= 3; i++) {
		int rc = coil_gen_yield((void *)i, NULL);
		if (rc)
			return rc;
	}
	return 0;
}

static int twice(void *arg, void *value, void **out)
{
	(void)arg;
	*out = (void *)((intptr_t)value * 2);
	return 0;
}

static int op_gen(void *arg)
{
	(void)arg;
	coil_gen_t *g = NULL;
	coil_gen_opts_t o = { .name = "gen" };
	int rc = coil_gen_create(&g, gen_body, NULL, &o);
	if (rc)
		return rc;
	intptr_t sum = 0;
	void *v;
	while ((rc = coil_gen_next(g, &v)) == 0)
		sum += (intptr_t)v;
	if (rc == COIL_EDONE)
		rc = sum == 6 ? 0 : -EIO;
	coil_gen_destroy(g);
	return rc;
}

static int op_aiter(void *arg)
{
	(void)arg;
	void *items[4] = { (void *)1, (void *)2, (void *)3, (void *)4 };
	coil_aiter_t *src = NULL, *m = NULL;
	int rc = coil_aiter_from_array(&src, items, 4);
	if (rc)
		return rc;
	rc = coil_aiter_map(&m, src, twice, NULL);
	if (rc) {
		coil_aiter_destroy(src);
		return rc;
	}
	void **out = NULL;
	size_t len = 0;
	rc = coil_alist(m, &out, &len);
	if (rc == 0 && (len != 4 || out[3] != (void *)8))
		rc = -EIO;
	coil_alist_free(out);
	coil_aiter_destroy(m); /* not its source */
	coil_aiter_destroy(src);
	return rc;
}

static int gen_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sweep("generator", op_gen, spawn_and_await, NULL, 100);
	sweep("aiter", op_aiter, spawn_and_await, NULL, 100);
	return 0;
}

TEST(gen_aiter)
{
	run(gen_main);
}

/* --- executors --------------------------------------------------------------- */

static int in_thread(void *arg, void **result)
{
	(void)arg;
	*result = (void *)(intptr_t)9;
	return 0;
}

static int op_executor(void *arg)
{
	(void)arg;
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	o.max_threads = 2;
	coil_executor_t *ex = NULL;
	int rc = coil_thread_pool_create(&ex, &o);
	if (rc)
		return rc;
	void *res = NULL;
	rc = coil_run_in_executor(ex, in_thread, NULL, &res);
	if (rc == 0 && res != (void *)(intptr_t)9)
		rc = -EIO;
	int src = coil_executor_shutdown(ex, true, false);
	return rc ? rc : src;
}

static int exec_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sweep("run_in_executor", op_executor, spawn_and_await, NULL, 200);
	return 0;
}

TEST(executor)
{
	run(exec_main);
}

/* --- I/O: files, streams, servers, processes --------------------------------- */

static int op_file(void *arg)
{
	(void)arg;
	int fd = coil_open("/proc/self/stat", O_RDONLY | O_CLOEXEC, 0, SEC);
	if (fd < 0)
		return fd;
	char buf[64];
	ssize_t n = coil_read(fd, buf, sizeof(buf), 0, SEC);
	int crc = coil_close(fd, SEC);
	if (n < 0)
		return (int)n;
	return n > 0 ? crc : -EIO;
}

static int echo_handler(coil_stream_t *s, void *arg)
{
	(void)arg;
	char buf[16];
	ssize_t n = coil_stream_read(s, buf, sizeof(buf), SEC);
	if (n > 0)
		coil_stream_write_all(s, buf, (size_t)n, SEC);
	return 0;
}

static int op_stream(void *arg)
{
	(void)arg;
	coil_server_t *srv = NULL;
	int rc = coil_start_server(&srv, echo_handler, NULL, "127.0.0.1", 0,
				   NULL, SEC);
	if (rc)
		return rc;
	coil_stream_t *s = NULL;
	rc = coil_open_connection(&s, "127.0.0.1", coil_server_port(srv), NULL, SEC);
	if (rc == 0) {
		rc = coil_stream_write_all(s, "ping", 4, SEC);
		char buf[4];
		if (rc == 0) {
			ssize_t n = coil_stream_readexactly(s, buf, 4, SEC);
			rc = n == 4 ? (memcmp(buf, "ping", 4) ? -EIO : 0)
				    : n < 0 ? (int)n : -EIO;
		}
		coil_stream_close(s);
		coil_stream_wait_closed(s, SEC);
		coil_stream_free(s);
	}
	int crc = coil_server_close(srv, SEC);
	int frc = coil_server_free(srv);
	return rc ? rc : crc ? crc : frc;
}

static int op_process(void *arg)
{
	(void)arg;
	const char *const argv[] = { "/bin/true", NULL };
	coil_process_t *p = NULL;
	int rc = coil_process_spawn(&p, argv, NULL);
	if (rc)
		return rc;
	int code = -1;
	rc = coil_process_wait(p, &code, 5 * SEC);
	coil_process_free(p);
	if (rc == 0 && code != 0)
		rc = -EIO;
	return rc;
}

static int op_communicate(void *arg)
{
	(void)arg;
	const char *const argv[] = { "/bin/cat", NULL };
	coil_process_opts_t o;
	coil_process_opts_init(&o);
	o.stdin_fd = COIL_PROCESS_PIPE;
	o.stdout_fd = COIL_PROCESS_PIPE;
	coil_process_t *p = NULL;
	int rc = coil_process_spawn(&p, argv, &o);
	if (rc)
		return rc;
	coil_bytes_t out = { 0 };
	int code = -1;
	rc = coil_process_communicate(p, "hi", 2, &out, NULL, &code, 5 * SEC);
	if (rc == 0 && (code != 0 || out.len != 2 || memcmp(out.data, "hi", 2)))
		rc = -EIO;
	coil_bytes_free(&out);
	if (rc) {
		/* The child may still run: end it before freeing. */
		coil_process_kill(p);
		coil_process_wait(p, NULL, 5 * SEC);
	}
	coil_process_free(p);
	return rc;
}

static int io_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sweep("file open/read", op_file, op_file, NULL, 100);
	/* The server drops a connection it has no memory for: the client
	 * sees the reset or the end of the stream. */
	static const int peer[] = { -ECONNRESET, -EPIPE, COIL_EINCOMPLETE, 0 };
	sweep_also = peer;
	sweep("stream/server", op_stream, op_stream, NULL, 300);
	sweep_also = NULL;
	if (access("/bin/true", X_OK) == 0)
		sweep("subprocess", op_process, op_process, NULL, 200);
	if (access("/bin/cat", X_OK) == 0)
		sweep("subprocess communicate", op_communicate, op_communicate,
		      NULL, 300);
	return 0;
}

TEST(io)
{
	run(io_main);
}

/* --- runtime of 2 workers ----------------------------------------------------- */

static int rt_main(void *arg, void **result)
{
	(void)arg;
	*result = NULL;
	/* Tasks on both workers. */
	coil_task_t *t[4] = { NULL };
	int rc = 0, i;
	for (i = 0; i < 4 && rc == 0; i++)
		rc = coil_spawn(&t[i], child_yield, NULL, NULL);
	if (rc)
		i--;
	for (int j = 0; j < i; j++) {
		int arc = coil_await(coil_task_future(t[j]), NULL);
		if (rc == 0)
			rc = arc;
		coil_task_detach(t[j]);
	}
	return rc;
}

/* Shuts rt down. A shutdown that could not make a worker's thread (its
 * stack failed) leaves the runtime as it was: it is shut down again, and
 * the first failure is the run's. */
static int shutdown_all(coil_runtime_t *rt)
{
	int rc = coil_runtime_shutdown(rt, 5 * SEC);
	for (int i = 0; rc == -EAGAIN && i < 10; i++) {
		int again = coil_runtime_shutdown(rt, 5 * SEC);
		if (again != -EAGAIN)
			return again ? again : rc;
	}
	return rc;
}

static int op_runtime(void *arg)
{
	(void)arg;
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	if (rc)
		return rc;
	coil_task_t *t = NULL;
	rc = coil_runtime_spawn(rt, &t, child_ok, NULL, NULL);
	int brc = coil_runtime_block_on(rt, rt_main, NULL, NULL);
	if (t)
		coil_task_detach(t);
	if (rc == 0)
		rc = brc;
	return rc ? rc : shutdown_all(rt);
}

/* A worker's thread is an allocation too (its stack): without it the
 * runtime refuses with pthread_create's -EAGAIN. */
static const int no_thread[] = { -EAGAIN, 0 };

TEST(runtime)
{
	sweep_also = no_thread;
	sweep("runtime", op_runtime, op_runtime, NULL, 1000);
	sweep_also = NULL;
}

/* rt_main detached: its failure is the run's, not an error for the loop
 * to report as never retrieved. */
static int rt_main_detached(void *arg, void **result)
{
	rt_main(arg, result);
	return 0;
}

/* Started in the background, a task spawned from this thread. */
static int op_runtime_start(void *arg)
{
	(void)arg;
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	if (rc)
		return rc;
	rc = coil_runtime_start(rt);
	if (rc == 0)
		rc = coil_runtime_spawn(rt, NULL, rt_main_detached, NULL, NULL);
	if (rc == 0) {
		/* From this plain thread into the running workers. */
		coil_cfuture_t *cf = NULL;
		rc = coil_run_coroutine_threadsafe(&cf, coil_runtime_loop(rt, 1),
						   child_ok, NULL);
		if (rc == 0) {
			void *res = NULL;
			rc = coil_cfuture_wait(cf, 5 * SEC, &res);
			if (rc == 0 && res != (void *)(intptr_t)7)
				rc = -EIO;
			coil_cfuture_release(cf);
		}
	}
	atomic_int calls = 0;
	if (rc == 0) {
		rc = coil_loop_call_soon_threadsafe(coil_runtime_loop(rt, 0),
						    soon_cb, &calls);
		/* Run before the shutdown returns, or dropped: either way
		 * never after, so calls may live on this stack. */
	}
	return rc ? rc : shutdown_all(rt);
}

TEST(runtime_start)
{
	/* Each run starts two runtimes of two workers, some seconds under
	 * Valgrind: there every fourth allocation fails (the sanitizer
	 * builds fail each in turn). */
	sweep_step = getenv("COIL_VALGRIND") ? 4 : 1;
	sweep_also = no_thread;
	sweep("runtime start", op_runtime_start, op_runtime_start, NULL, 1000);
	sweep_also = NULL;
	sweep_step = 1;
}

#define OOM_TESTS \
	TEST_ENTRY(coil_run), TEST_ENTRY(loop_explicit), \
	TEST_ENTRY(tasks_futures), TEST_ENTRY(sync), \
	TEST_ENTRY(tasks_sync_mt), TEST_ENTRY(gen_aiter), \
	TEST_ENTRY(executor), TEST_ENTRY(io), TEST_ENTRY(runtime), \
	TEST_ENTRY(runtime_start)
#else
TEST(not_built)
{
	TEST_SKIP("built without COIL_FAULT_INJECT");
}
#define OOM_TESTS TEST_ENTRY(not_built)
#endif

TEST_LIST(OOM_TESTS)
