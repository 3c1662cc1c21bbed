/*
 * tests/test_runtime.c: the multi-worker runtime (coil/runtime.h).
 *
 * Worker counts and names, the current worker and runtime, spawning trees
 * of tasks with coil_run and block_on, task migration with task-local
 * storage, pinning, futures resolved by other workers and by plain threads,
 * spawning and handing coroutines in from plain threads, an idle runtime's
 * CPU use, stop from a signal handler, shutdown with and without a wait,
 * and a ping-pong between two workers that would hang on a lost wake-up.
 *
 * Tests synchronise on conditions (semaphores, futures, concurrent
 * futures), never on sleeps: a hang is caught by the harness's timeout.
 * Whether a task resumes on another worker is the scheduler's choice, so
 * migration is counted and printed, never asserted; what must hold on
 * every worker (task-local values, pins, results) is asserted. The real
 * clock appears only where a time bound itself is under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np, sched_getaffinity */
#endif
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "coil/coil.h"
#include "fault.h"
#include "test.h"

/* --- helpers ------------------------------------------------------------- */

static const unsigned configs[] = { 1, 2, 4 };
#define NCONFIGS (sizeof(configs) / sizeof(configs[0]))

static coil_runtime_t *rt_make(unsigned workers, const char *name)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = workers;
	o.thread_name = name;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT(rt != NULL);
	return rt;
}

/* A function, not the macro, so that a failed assertion prints its name. */
static int load(atomic_int *a)
{
	return atomic_load(a);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Valgrind runs one thread at a time and switches slowly: the tests that
 * hand work between threads thousands of times scale down further there. */
static bool under_valgrind(void)
{
	return getenv("COIL_VALGRIND") != NULL;
}

/* User plus system CPU time of the whole process, in milliseconds. */
static double cpu_ms(void)
{
	struct rusage ru;
	ASSERT_EQ(getrusage(RUSAGE_SELF, &ru), 0);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* From a plain thread: runs fn(arg) as a task handed to worker w's loop
 * (COIL_ANY_WORKER: the injection queue), pinned there if asked, waits for
 * it and returns its code; an integer result goes to *result. */
static int run_on(coil_runtime_t *rt, int w, bool pinned, coil_fn fn,
		  void *arg, void **result)
{
	coil_spawn_opts_t so = { .pinned = pinned };
	coil_cfuture_t *f = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f, coil_runtime_loop(rt, w),
						     fn, arg, &so), 0);
	int rc = coil_cfuture_wait(f, COIL_FOREVER, result);
	coil_cfuture_release(f);
	return rc;
}

/* A callback on some worker's loop: resolves the future with itself and
 * drops the reference it was handed. */
static void resolve_here(void *arg)
{
	coil_future_t *f = arg;
	ASSERT_EQ(coil_future_set_result(f, f, NULL), 0);
	coil_future_release(f);
}

/* From a task: awaits a future made on the task's current worker and
 * resolved by a callback on worker w. */
static void hop_via(int w)
{
	coil_runtime_t *rt = coil_current_runtime();
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	coil_future_ref(f); /* the callback's */
	ASSERT_EQ(coil_loop_call_soon_threadsafe(coil_runtime_loop(rt, w),
						 resolve_here, f), 0);
	void *v = NULL;
	ASSERT_EQ(coil_await(f, &v), 0);
	ASSERT_PTR_EQ(v, f);
	coil_future_release(f);
}

static int next_worker(void)
{
	int n = (int)coil_runtime_workers(coil_current_runtime());
	return (coil_current_worker() + 1) % n;
}

/* From a task: spawns fn(base + i) for i < n with opts, awaits every one
 * and returns the sum of their integer results. */
static intptr_t spawn_all(coil_fn fn, int n, intptr_t base,
			  const coil_spawn_opts_t *opts)
{
	coil_task_t **t = calloc((size_t)n, sizeof(*t));
	ASSERT(t != NULL);
	for (int i = 0; i < n; i++)
		ASSERT_EQ(coil_spawn(&t[i], fn, (void *)(base + i), opts), 0);
	intptr_t sum = 0;
	for (int i = 0; i < n; i++) {
		void *v = NULL;
		ASSERT_EQ(coil_await(coil_task_future(t[i]), &v), 0);
		sum += (intptr_t)v;
		coil_task_detach(t[i]);
	}
	free(t);
	return sum;
}

/* --- worker counts, names, the current worker ---------------------------- */

TEST(new_takes_the_worker_count_from_the_options)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		ASSERT_EQ(coil_runtime_workers(rt), configs[c]);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.virtual_clock = true;
	o.workers = 2;
	coil_runtime_t *rt = NULL;
	ASSERT_EQ(coil_runtime_new(&rt, &o), -EINVAL);
	o.workers = 1;
	ASSERT_EQ(coil_runtime_new(&rt, &o), 0);
	ASSERT_EQ(coil_runtime_workers(rt), 1);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	ASSERT_EQ(coil_runtime_new(NULL, NULL), -EINVAL);
}

static unsigned allowed_cpus(int *cpus, unsigned cap)
{
	cpu_set_t set;
	ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	unsigned n = 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set)) {
			if (n < cap && cpus)
				cpus[n] = c;
			n++;
		}
	return n;
}

static unsigned workers_with_env(const char *value, unsigned opt_workers)
{
	if (value)
		ASSERT_EQ(setenv("COIL_WORKERS", value, 1), 0);
	else
		ASSERT_EQ(unsetenv("COIL_WORKERS"), 0);
	coil_runtime_t *rt = rt_make(opt_workers, NULL);
	unsigned n = coil_runtime_workers(rt);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	return n;
}

TEST(coil_workers_sets_the_default_worker_count)
{
	unsigned ncpus = allowed_cpus(NULL, 0);
	ASSERT_GE(ncpus, 1);
	ASSERT_EQ(workers_with_env(NULL, 0), ncpus);
	ASSERT_EQ(workers_with_env("3", 0), 3);
	ASSERT_EQ(workers_with_env("1", 0), 1);
	/* The options win over the environment. */
	ASSERT_EQ(workers_with_env("3", 2), 2);
	/* Anything but a positive number is ignored. */
	ASSERT_EQ(workers_with_env("0", 0), ncpus);
	ASSERT_EQ(workers_with_env("-2", 0), ncpus);
	ASSERT_EQ(workers_with_env("two", 0), ncpus);
	ASSERT_EQ(workers_with_env("", 0), ncpus);
	ASSERT_EQ(workers_with_env(NULL, 0), ncpus);
}

static int thread_name_is(void *arg, void **result)
{
	(void)result;
	char name[32] = "";
	ASSERT_EQ(pthread_getname_np(pthread_self(), name, sizeof(name)), 0);
	ASSERT_STR_EQ(name, (const char *)arg);
	return 0;
}

/* Each worker's thread is "<name>-<i>", the name cut to 10 characters. */
static void check_names(const char *name, const char *want_prefix, unsigned n)
{
	coil_runtime_t *rt = rt_make(n, name);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	for (unsigned i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%s-%u", want_prefix, i);
		ASSERT_EQ(run_on(rt, (int)i, true, thread_name_is, want, NULL), 0);
	}
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST(worker_threads_are_named_after_the_runtime)
{
	check_names("tname", "tname", 4);
	check_names(NULL, "coil", 2);
	check_names("abcdefghijklmnop", "abcdefghij", 2);
}

static int affinity_is(void *arg, void **result)
{
	(void)result;
	cpu_set_t set;
	ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(set), &set), 0);
	ASSERT_EQ(CPU_COUNT(&set), 1);
	ASSERT(CPU_ISSET((int)(intptr_t)arg, &set));
	return 0;
}

TEST(pin_workers_pins_worker_i_to_the_ith_allowed_cpu)
{
	/* Valgrind runs one thread at a time: with each worker held to its
	 * own CPU, every hand-off between them waits for a time slice. */
	if (under_valgrind())
		TEST_SKIP("pinned workers take seconds per hand-off under Valgrind");
	int cpus[4];
	unsigned n = allowed_cpus(cpus, 4);
	if (n > 4)
		n = 4;
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = n;
	o.pin_workers = true;
	coil_runtime_t *rt = NULL;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	for (unsigned i = 0; i < n; i++)
		ASSERT_EQ(run_on(rt, (int)i, true, affinity_is,
				 (void *)(intptr_t)cpus[i], NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

static int where_am_i(void *arg, void **result)
{
	coil_runtime_t *rt = arg;
	ASSERT_PTR_EQ(coil_current_runtime(), rt);
	int w = coil_current_worker();
	ASSERT_GE(w, 0);
	ASSERT_LT(w, (int)coil_runtime_workers(rt));
	ASSERT_PTR_EQ(coil_get_running_loop(), coil_runtime_loop(rt, w));
	*result = (void *)(intptr_t)w;
	return 0;
}

static void *outside_thread(void *arg)
{
	(void)arg;
	ASSERT_EQ(coil_current_worker(), -1);
	ASSERT(coil_current_runtime() == NULL);
	return NULL;
}

static int on_a_plain_loop(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_current_worker(), -1);
	ASSERT(coil_current_runtime() == NULL);
	ASSERT(coil_loop_runtime(coil_get_running_loop()) == NULL);
	return 0;
}

TEST(current_worker_and_runtime_inside_and_outside_tasks)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		unsigned n = configs[c];
		coil_runtime_t *rt = rt_make(n, NULL);
		ASSERT_EQ(coil_current_worker(), -1);
		ASSERT(coil_current_runtime() == NULL);
		ASSERT(coil_runtime_loop(rt, (int)n) == NULL);
		ASSERT(coil_runtime_loop(rt, -2) == NULL);
		ASSERT_PTR_EQ(coil_loop_runtime(coil_runtime_loop(rt, COIL_ANY_WORKER)), rt);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		for (unsigned i = 0; i < n; i++) {
			ASSERT_PTR_EQ(coil_loop_runtime(coil_runtime_loop(rt, (int)i)), rt);
			void *w = NULL;
			ASSERT_EQ(run_on(rt, (int)i, true, where_am_i, rt, &w), 0);
			ASSERT_EQ((intptr_t)w, i);
		}
		ASSERT_EQ(run_on(rt, COIL_ANY_WORKER, false, where_am_i, rt, NULL), 0);
		pthread_t th;
		ASSERT_EQ(pthread_create(&th, NULL, outside_thread, NULL), 0);
		ASSERT_EQ(pthread_join(th, NULL), 0);
		ASSERT_EQ(coil_current_worker(), -1);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
	ASSERT_EQ(coil_run(on_a_plain_loop, NULL, NULL, NULL), 0);
}

/* --- trees of tasks -------------------------------------------------------- */

#define BRANCHES 64
#define LEAVES 16

static int leaf(void *arg, void **result)
{
	intptr_t v = (intptr_t)arg;
	if (v % 3 == 0 && coil_sleep(0) != 0)
		return -EIO;
	*result = (void *)(v * 2);
	return 0;
}

static int branch(void *arg, void **result)
{
	intptr_t b = (intptr_t)arg;
	*result = (void *)spawn_all(leaf, LEAVES, b * LEAVES, NULL);
	return 0;
}

static int tree_main(void *arg, void **result)
{
	coil_runtime_t *rt = coil_current_runtime();
	ASSERT(rt != NULL);
	ASSERT_EQ(coil_runtime_workers(rt), (unsigned)(uintptr_t)arg);
	*result = (void *)spawn_all(branch, BRANCHES, 0, NULL);
	return 0;
}

/* The sum of 2k over every leaf k. */
static const intptr_t tree_sum = (intptr_t)BRANCHES * LEAVES * (BRANCHES * LEAVES - 1);

TEST(coil_run_with_workers_awaits_a_tree_of_tasks)
{
	for (size_t c = 1; c < NCONFIGS; c++) {
		coil_runtime_opts_t o;
		coil_runtime_opts_init(&o);
		o.workers = configs[c];
		void *r = NULL;
		int rc = coil_run(tree_main, (void *)(uintptr_t)configs[c], &r, &o);
		TEST_SKIP_UNLESS_RING(rc);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ((intptr_t)r, tree_sum);
	}
}

static int fails_with_edom(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return -EDOM;
}

static int refuses_nesting(void *arg, void **result)
{
	coil_runtime_t *rt = arg;
	(void)result;
	ASSERT_EQ(coil_runtime_block_on(rt, tree_main, NULL, NULL), -EBUSY);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -EBUSY);
	ASSERT_EQ(coil_runtime_start(rt), -EBUSY);
	return 0;
}

TEST(block_on_returns_the_result_and_may_run_again)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		void *r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, tree_main,
						(void *)(uintptr_t)configs[c], &r), 0);
		ASSERT_EQ((intptr_t)r, tree_sum);
		/* Again, on the same runtime, whose workers stayed up. */
		r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, tree_main,
						(void *)(uintptr_t)configs[c], &r), 0);
		ASSERT_EQ((intptr_t)r, tree_sum);
		ASSERT_EQ(coil_runtime_block_on(rt, fails_with_edom, NULL, NULL), -EDOM);
		ASSERT_EQ(coil_runtime_block_on(rt, refuses_nesting, rt, NULL), 0);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

TEST(start_refuses_a_running_runtime)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_start(rt), -EBUSY);
	ASSERT_EQ(coil_runtime_block_on(rt, tree_main, (void *)2, NULL), -EBUSY);
	ASSERT_EQ(run_on(rt, COIL_ANY_WORKER, false, refuses_nesting, rt, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- migration and task-local storage ------------------------------------ */

static int key_a, key_b, key_c; /* task-local keys: their addresses */
static atomic_int migrations, awaits_done;

#define HOPPERS 32

static int hopper(void *arg, void **result)
{
	intptr_t id = (intptr_t)arg;
	int hops = test_heavy_tools() ? 20 : 100;
	coil_task_t *me = coil_current_task();
	ASSERT_EQ(coil_task_local_set(&key_a, (void *)(id + 1)), 0);
	ASSERT_EQ(coil_task_local_set(&key_b, &key_b), 0);
	for (int i = 0; i < hops; i++) {
		if (i == hops / 2) /* a value changed midway moves along too */
			ASSERT_EQ(coil_task_local_set(&key_a, (void *)(id + 1000)), 0);
		int before = coil_current_worker();
		if (i % 10 == 9)
			ASSERT_EQ(coil_sleep(0), 0);
		else
			hop_via(next_worker());
		atomic_fetch_add(&awaits_done, 1);
		if (coil_current_worker() != before)
			atomic_fetch_add(&migrations, 1);
		ASSERT_PTR_EQ(coil_current_task(), me);
		ASSERT_PTR_EQ(coil_task_local_get(&key_a),
			      (void *)(id + (i < hops / 2 ? 1 : 1000)));
		ASSERT_PTR_EQ(coil_task_local_get(&key_b), &key_b);
		ASSERT(coil_task_local_get(&key_c) == NULL);
	}
	*result = (void *)id;
	return 0;
}

static int hoppers_main(void *arg, void **result)
{
	(void)arg;
	*result = (void *)spawn_all(hopper, HOPPERS, 0, NULL);
	return 0;
}

TEST(task_locals_survive_every_await_across_workers)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		atomic_store(&migrations, 0);
		atomic_store(&awaits_done, 0);
		void *r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, hoppers_main, NULL, &r), 0);
		ASSERT_EQ((intptr_t)r, HOPPERS * (HOPPERS - 1) / 2);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		/* Scheduling decides how many: printed, not asserted. */
		fprintf(stderr, "  %u worker(s): %d of %d awaits resumed on another worker\n",
			configs[c], load(&migrations), load(&awaits_done));
		if (configs[c] == 1)
			ASSERT_EQ(load(&migrations), 0);
	}
}

static int grandchild_sees_child_values(void *arg, void **result)
{
	*result = arg;
	ASSERT_PTR_EQ(coil_task_local_get(&key_a), (void *)10);
	ASSERT(coil_task_local_get(&key_b) == NULL);
	ASSERT_PTR_EQ(coil_task_local_get(&key_c), (void *)30);
	return 0;
}

static int child_sees_a_copy(void *arg, void **result)
{
	/* The values at the spawn, not the parent's later ones. */
	ASSERT_PTR_EQ(coil_task_local_get(&key_a), (void *)1);
	ASSERT_PTR_EQ(coil_task_local_get(&key_b), (void *)2);
	ASSERT(coil_task_local_get(&key_c) == NULL);
	ASSERT_EQ(coil_task_local_set(&key_a, (void *)10), 0);
	ASSERT_EQ(coil_task_local_set(&key_b, NULL), 0);
	ASSERT_EQ(coil_task_local_set(&key_c, (void *)30), 0);
	hop_via(next_worker());
	ASSERT_EQ(spawn_all(grandchild_sees_child_values, 2, 0, NULL), 1);
	ASSERT_PTR_EQ(coil_task_local_get(&key_a), (void *)10);
	ASSERT(coil_task_local_get(&key_b) == NULL);
	*result = arg;
	return 0;
}

static int parent_with_locals(void *arg, void **result)
{
	(void)arg;
	/* A task handed in from outside starts with no values. */
	ASSERT(coil_task_local_get(&key_a) == NULL);
	ASSERT_EQ(coil_task_local_set(&key_a, (void *)1), 0);
	ASSERT_EQ(coil_task_local_set(&key_b, (void *)2), 0);
	enum { N = 16 };
	coil_task_t *t[N];
	for (int i = 0; i < N; i++)
		ASSERT_EQ(coil_spawn(&t[i], child_sees_a_copy, (void *)(intptr_t)i, NULL), 0);
	ASSERT_EQ(coil_task_local_set(&key_a, (void *)3), 0);
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
		coil_task_detach(t[i]);
		/* What the children changed stayed theirs. */
		ASSERT_PTR_EQ(coil_task_local_get(&key_a), (void *)3);
		ASSERT_PTR_EQ(coil_task_local_get(&key_b), (void *)2);
		ASSERT(coil_task_local_get(&key_c) == NULL);
	}
	*result = (void *)7;
	return 0;
}

TEST(children_start_with_a_copy_of_the_parents_task_locals)
{
	ASSERT_EQ(coil_task_local_set(&key_a, (void *)1), COIL_EINVALSTATE);
	ASSERT(coil_task_local_get(&key_a) == NULL);
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		void *r = NULL;
		ASSERT_EQ(run_on(rt, COIL_ANY_WORKER, false, parent_with_locals, NULL, &r), 0);
		ASSERT_EQ((intptr_t)r, 7);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

/* --- pinning --------------------------------------------------------------- */

/* Awaits of every kind, checking after each that the task is on `home`. */
static void stays_on(int home, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		switch (i % 4) {
		case 0:
		case 1:
			hop_via(next_worker());
			break;
		case 2:
			ASSERT_EQ(coil_sleep(0), 0);
			break;
		default:
			ASSERT_EQ(coil_sleep_ns(200 * 1000), 0);
		}
		ASSERT_EQ(coil_current_worker(), home);
	}
}

static int pins_itself(void *arg, void **result)
{
	ASSERT_EQ(coil_task_pin(), 0);
	stays_on(coil_current_worker(), test_heavy_tools() ? 20 : 80);
	ASSERT_EQ(coil_task_pin(), 0); /* pins nest */
	ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	*result = arg;
	return 0;
}

static int pinned_and_free_tasks(void *arg, void **result)
{
	(void)arg;
	/* Unpinned hoppers beside them keep every worker busy and stealing. */
	coil_task_t *free_ones;
	ASSERT_EQ(coil_spawn(&free_ones, hoppers_main, NULL, NULL), 0);
	*result = (void *)spawn_all(pins_itself, 16, 0, NULL);
	ASSERT_EQ(coil_await(coil_task_future(free_ones), NULL), 0);
	coil_task_detach(free_ones);
	return 0;
}

TEST(pinned_task_resumes_only_on_its_worker)
{
	ASSERT_EQ(coil_task_pin(), COIL_EINVALSTATE);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		void *r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, pinned_and_free_tasks, NULL, &r), 0);
		ASSERT_EQ((intptr_t)r, 16 * 15 / 2);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

static int pinned_by_spawn(void *arg, void **result)
{
	int home = (int)(intptr_t)arg;
	ASSERT_EQ(coil_current_worker(), home);
	stays_on(home, test_heavy_tools() ? 12 : 40);
	/* The spawn's pin is one pin, which the task may undo. */
	ASSERT_EQ(coil_task_unpin(), 0);
	ASSERT_EQ(coil_task_unpin(), COIL_EINVALSTATE);
	*result = (void *)1;
	return 0;
}

static int spawns_pinned(void *arg, void **result)
{
	(void)arg;
	enum { N = 16 };
	coil_spawn_opts_t o = { .pinned = true };
	coil_task_t *t[N];
	for (int i = 0; i < N; i++) {
		/* Between spawns the spawner may move: homes vary. */
		hop_via(next_worker());
		int here = coil_current_worker();
		ASSERT_EQ(coil_spawn(&t[i], pinned_by_spawn, (void *)(intptr_t)here, &o), 0);
	}
	intptr_t sum = 0;
	for (int i = 0; i < N; i++) {
		void *v = NULL;
		ASSERT_EQ(coil_await(coil_task_future(t[i]), &v), 0);
		sum += (intptr_t)v;
		coil_task_detach(t[i]);
	}
	*result = (void *)sum;
	return 0;
}

TEST(task_spawned_pinned_stays_on_the_spawners_worker)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		void *r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, spawns_pinned, NULL, &r), 0);
		ASSERT_EQ((intptr_t)r, 16);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

/* --- futures resolved elsewhere -------------------------------------------- */

typedef struct resolver {
	sem_t req;
	coil_future_t *_Atomic pending; /* NULL with a post: quit */
	pthread_t thread;
} resolver_t;

static resolver_t res;

/* A plain thread that resolves whatever future it is handed: every tenth
 * with an error, some after a pause so that the awaiting worker parks. */
static void *resolver_main(void *arg)
{
	resolver_t *r = arg;
	for (intptr_t i = 0;; i++) {
		sem_wait(&r->req);
		coil_future_t *f = atomic_exchange(&r->pending, NULL);
		if (!f)
			return NULL;
		if (i % 8 == 0)
			nap_ms(i % 32 == 0 ? 1 : 0);
		if (i % 10 == 9)
			ASSERT_EQ(coil_future_set_exception(f, -EIO, "round"), 0);
		else
			ASSERT_EQ(coil_future_set_result(f, (void *)i, NULL), 0);
		coil_future_release(f);
	}
}

static int awaits_the_resolver(void *arg, void **result)
{
	int rounds = (int)(intptr_t)arg;
	for (intptr_t i = 0; i < rounds; i++) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		atomic_store(&res.pending, coil_future_ref(f));
		sem_post(&res.req);
		void *v = NULL;
		int rc = coil_await(f, &v);
		if (i % 10 == 9) {
			ASSERT_EQ(rc, -EIO);
			ASSERT_STR_EQ(coil_future_error_message(f), "round");
		} else {
			ASSERT_EQ(rc, 0);
			ASSERT_EQ((intptr_t)v, i);
		}
		coil_future_release(f);
	}
	*result = (void *)(intptr_t)rounds;
	return 0;
}

TEST(future_resolved_by_a_plain_thread_wakes_its_task)
{
	int rounds = test_heavy_tools() ? 200 : 1000;
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		sem_init(&res.req, 0, 0);
		atomic_store(&res.pending, NULL);
		ASSERT_EQ(pthread_create(&res.thread, NULL, resolver_main, &res), 0);
		void *r = NULL;
		ASSERT_EQ(coil_runtime_block_on(rt, awaits_the_resolver,
						(void *)(intptr_t)rounds, &r), 0);
		ASSERT_EQ((intptr_t)r, rounds);
		sem_post(&res.req); /* nothing pending: quit */
		ASSERT_EQ(pthread_join(res.thread, NULL), 0);
		sem_destroy(&res.req);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	}
}

typedef struct cb_seen {
	coil_loop_t *loop;
	coil_future_t *signal; /* resolved by the callback, on its loop */
} cb_seen_t;

static void records_its_loop(coil_future_t *f, void *arg)
{
	cb_seen_t *s = arg;
	ASSERT(coil_future_done(f));
	s->loop = coil_get_running_loop();
	ASSERT_EQ(coil_future_set_result(s->signal, NULL, NULL), 0);
}

static void *sets_from_a_plain_thread(void *arg)
{
	coil_future_t *f = arg;
	ASSERT_EQ(coil_future_set_result(f, f, NULL), 0);
	coil_future_release(f);
	return NULL;
}

/* Pinned on worker 0: f's done-callback runs on f's loop, whoever
 * resolves f (worker 1's callback, then a plain thread). */
static int callbacks_stay_home(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_t *home = coil_get_running_loop();
	for (int round = 0; round < 2; round++) {
		coil_future_t *f, *sig;
		cb_seen_t seen = { NULL, NULL };
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		ASSERT_EQ(coil_future_create(&sig, NULL), 0);
		seen.signal = sig;
		ASSERT_EQ(coil_future_add_done_callback(f, records_its_loop, &seen), 0);
		pthread_t th;
		if (round == 0)
			ASSERT_EQ(coil_loop_call_soon_threadsafe(coil_runtime_loop(
				coil_current_runtime(), 1), resolve_here, coil_future_ref(f)), 0);
		else
			ASSERT_EQ(pthread_create(&th, NULL, sets_from_a_plain_thread,
						 coil_future_ref(f)), 0);
		ASSERT_EQ(coil_await(sig, NULL), 0);
		ASSERT_PTR_EQ(seen.loop, home);
		ASSERT_EQ(coil_future_result(f, NULL), 0);
		if (round == 1)
			ASSERT_EQ(pthread_join(th, NULL), 0);
		coil_future_release(f);
		coil_future_release(sig);
	}
	return 0;
}

TEST(done_callbacks_run_on_the_futures_loop)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(run_on(rt, 0, true, callbacks_stay_home, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- spawning and handing coroutines in from plain threads ---------------- */

#define SPAWNERS 4

static atomic_uchar *runs;
static atomic_int total_runs;

static int counted(void *arg, void **result)
{
	(void)result;
	uintptr_t k = (uintptr_t)arg;
	ASSERT_EQ(atomic_fetch_add(&runs[k], 1), 0);
	atomic_fetch_add(&total_runs, 1);
	if (k % 5 == 0 && coil_sleep(0) != 0)
		return -EIO;
	return 0;
}

typedef struct spawner {
	coil_runtime_t *rt;
	uintptr_t base;
	int n;
} spawner_t;

/* Spawns n counted tasks; one in 16 with a handle, detached later from
 * this thread (a handle of coil_runtime_spawn may be dropped anywhere). */
static void *spawn_many(void *arg)
{
	spawner_t *s = arg;
	coil_task_t *held[16];
	int nheld = 0;
	for (int i = 0; i < s->n; i++) {
		bool keep = i % 16 == 0;
		ASSERT_EQ(coil_runtime_spawn(s->rt, keep ? &held[nheld] : NULL, counted,
					     (void *)(s->base + (uintptr_t)i), NULL), 0);
		if (keep && ++nheld == 16) {
			while (nheld)
				coil_task_detach(held[--nheld]);
		}
	}
	while (nheld)
		coil_task_detach(held[--nheld]);
	return NULL;
}

/*
 * Two waves of spawning threads, the second started once every task of the
 * first has run: the second wave's threads take the handles and bodies the
 * first wave's tasks left in the runtime's pool for outside spawners, in
 * batches into caches of their own (runtime/task.c, fcache), which go back
 * to the allocator when each thread exits.
 */
TEST(runtime_spawn_from_plain_threads_runs_every_task_once)
{
	int per = under_valgrind() ? 250 : test_heavy_tools() ? 1000 : 10000;
	int wave = per * SPAWNERS, total = 2 * wave;
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		runs = calloc((size_t)total, sizeof(*runs));
		ASSERT(runs != NULL);
		atomic_store(&total_runs, 0);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		for (int w = 0; w < 2; w++) {
			spawner_t s[SPAWNERS];
			pthread_t th[SPAWNERS];
			for (int i = 0; i < SPAWNERS; i++) {
				s[i] = (spawner_t){ rt, (uintptr_t)(w * wave + i * per), per };
				ASSERT_EQ(pthread_create(&th[i], NULL, spawn_many, &s[i]), 0);
			}
			for (int i = 0; i < SPAWNERS; i++)
				ASSERT_EQ(pthread_join(th[i], NULL), 0);
			while (load(&total_runs) < (w + 1) * wave)
				sched_yield();
		}
		/* Waits for every task: none may be left to cancel. */
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		ASSERT_EQ(load(&total_runs), total);
		for (int k = 0; k < total; k++)
			ASSERT_EQ(runs[k], 1);
		free(runs);
	}
}

static sem_t started, finished, called;
static atomic_int seen_rc;

static int add_one_here(void *arg, void **result)
{
	if (coil_sleep(0) != 0)
		return -EIO;
	ASSERT(coil_current_runtime() != NULL);
	*result = (void *)((intptr_t)arg + 1);
	return 0;
}

static int worker_index(void *arg, void **result)
{
	(void)arg;
	ASSERT_EQ(coil_sleep(0), 0);
	*result = (void *)(intptr_t)coil_current_worker();
	return 0;
}

static int fails_with_message(void *arg, void **result)
{
	(void)result;
	coil_errorf("bad input %d", (int)(intptr_t)arg);
	return -EINVAL;
}

static void on_done_post(coil_cfuture_t *f, void *arg)
{
	ASSERT(coil_cfuture_done(f));
	sem_post(arg);
}

TEST(threadsafe_coroutines_run_on_any_worker_or_the_one_named)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	sem_init(&called, 0, 0);
	coil_cfuture_t *any, *one, *bad;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_run_coroutine_threadsafe(&any, coil_runtime_loop(rt, COIL_ANY_WORKER),
						add_one_here, (void *)41), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(any, on_done_post, &called), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&one, coil_runtime_loop(rt, 1),
						     worker_index, NULL, &pinned), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe(&bad, coil_runtime_loop(rt, COIL_ANY_WORKER),
						fails_with_message, (void *)7), 0);
	void *v = NULL;
	ASSERT_EQ(coil_cfuture_wait(any, 30 * COIL_NSEC_PER_SEC, &v), 0);
	ASSERT_EQ((intptr_t)v, 42);
	ASSERT_EQ(coil_cfuture_wait(one, 30 * COIL_NSEC_PER_SEC, &v), 0);
	ASSERT_EQ((intptr_t)v, 1);
	ASSERT_EQ(coil_cfuture_wait(bad, 30 * COIL_NSEC_PER_SEC, NULL), -EINVAL);
	ASSERT_STR_EQ(coil_cfuture_error_message(bad), "bad input 7");
	sem_wait(&called); /* the done-callback ran, once */
	ASSERT_EQ(sem_trywait(&called), -1);
	/* A task handed to worker 1 without a pin may be stolen: any worker. */
	ASSERT_EQ(run_on(rt, 1, false, add_one_here, (void *)1, &v), 0);
	ASSERT_EQ((intptr_t)v, 2);
	coil_cfuture_release(any);
	coil_cfuture_release(one);
	coil_cfuture_release(bad);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	sem_destroy(&called);
}

static int sleeps_long(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sem_post(&started);
	int rc = coil_sleep(3600);
	atomic_store(&seen_rc, rc);
	sem_post(&finished);
	return rc;
}

/* The wait times out, then cancelling the cfuture cancels the task, on
 * worker 1 or wherever the injection queue sent it. */
static void cancel_through_cfuture(coil_runtime_t *rt, int w)
{
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	sem_init(&called, 0, 0);
	atomic_store(&seen_rc, 1);
	coil_cfuture_t *f;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&f, coil_runtime_loop(rt, w),
						sleeps_long, NULL), 0);
	ASSERT_EQ(coil_cfuture_add_done_callback(f, on_done_post, &called), 0);
	sem_wait(&started);
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_cfuture_wait(f, 20 * 1000 * 1000, NULL), -ETIMEDOUT);
	ASSERT_GE(now_ns() - t0, 20 * 1000 * 1000);
	ASSERT(coil_cfuture_cancel(f));
	ASSERT_EQ(coil_cfuture_wait(f, 0, NULL), -ECANCELED);
	ASSERT(coil_cfuture_cancelled(f));
	sem_wait(&called);
	sem_wait(&finished);
	ASSERT_EQ(load(&seen_rc), -ECANCELED);
	coil_cfuture_release(f);
	sem_destroy(&started);
	sem_destroy(&finished);
	sem_destroy(&called);
}

TEST(cancelled_cfuture_cancels_its_task)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	cancel_through_cfuture(rt, COIL_ANY_WORKER);
	cancel_through_cfuture(rt, 1);
	/* Both tasks ended: nothing left to cancel. */
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- idle ------------------------------------------------------------------ */

static void assert_idle_for_a_second(void)
{
	nap_ms(100); /* the workers finish searching and park */
	double c0 = cpu_ms();
	nap_ms(1000);
	double used = cpu_ms() - c0;
	fprintf(stderr, "  %.1f ms of CPU in 1 s idle\n", used);
	ASSERT_LT(used, 50);
}

TEST(idle_runtime_uses_no_cpu)
{
	if (under_valgrind())
		TEST_SKIP("CPU time means nothing under Valgrind");
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	assert_idle_for_a_second();
	/* Idle again after a burst of work that woke every worker. */
	void *r = NULL;
	ASSERT_EQ(run_on(rt, COIL_ANY_WORKER, false, tree_main, (void *)2, &r), 0);
	ASSERT_EQ((intptr_t)r, tree_sum);
	assert_idle_for_a_second();
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

TEST(runtime_with_a_sleeping_task_stays_idle)
{
	if (under_valgrind())
		TEST_SKIP("CPU time means nothing under Valgrind");
	coil_runtime_t *rt = rt_make(2, NULL);
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	atomic_store(&seen_rc, 1);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_spawn(rt, NULL, sleeps_long, NULL, NULL), 0);
	sem_wait(&started);
	assert_idle_for_a_second();
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
	ASSERT_EQ(load(&seen_rc), -ECANCELED);
	sem_destroy(&started);
	sem_destroy(&finished);
}

/* --- tasks that end away from their home worker --------------------------- */

/*
 * A task spawned on worker A belongs to A's list of tasks (coil_all_tasks,
 * shutdown). One that a thief ran to its end on worker B leaves that list
 * without B taking A's lock: B hands the body to A in batches, and A takes
 * it out at its next look at the list (runtime/task.c, task_finish).
 * Listings and shutdown must not see such a task, nor lose one.
 */
#define AWAY_N 64
static atomic_int away_done, away_elsewhere;

static int runs_where_it_is(void *arg, void **result)
{
	int home = (int)(intptr_t)arg;
	if (coil_current_worker() != home)
		atomic_fetch_add(&away_elsewhere, 1);
	atomic_fetch_add(&away_done, 1);
	*result = arg;
	return 0;
}

static int spawns_and_keeps_its_worker_busy(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int home = coil_current_worker();
	coil_task_t *mine = coil_current_task();
	for (int round = 0; round < 3; round++) {
		coil_task_t *t[AWAY_N];
		atomic_store(&away_done, 0);
		atomic_store(&away_elsewhere, 0);
		for (int i = 0; i < AWAY_N; i++)
			ASSERT_EQ(coil_spawn(&t[i], runs_where_it_is, (void *)(intptr_t)home,
					     NULL), 0);
		/* This task is pinned and does not yield: the other worker
		 * steals the children and ends them. */
		int64_t deadline = now_ns() + 60 * COIL_NSEC_PER_SEC;
		while (load(&away_elsewhere) < AWAY_N / 2) {
			ASSERT_LT(now_ns(), deadline);
			sched_yield();
		}
		for (int i = 0; i < AWAY_N; i++) {
			void *v = NULL;
			ASSERT_EQ(coil_await(coil_task_future(t[i]), &v), 0);
			ASSERT_EQ((intptr_t)v, home);
			/* Done: never listed again, on this loop or any. */
			coil_task_t *list[4];
			ASSERT(coil_all_tasks(NULL, list, 4) >= 1);
		}
		ASSERT_EQ(load(&away_done), AWAY_N);
		/* Every child is done and awaited: the home lists only this
		 * task, whether or not the thief has handed the children's
		 * bodies back yet. */
		coil_task_t *list[AWAY_N + 1];
		ASSERT_EQ(coil_all_tasks(NULL, list, AWAY_N + 1), 1);
		ASSERT_PTR_EQ(list[0], mine);
		for (int i = 0; i < AWAY_N; i++)
			coil_task_detach(t[i]);
	}
	return 0;
}

TEST(tasks_that_end_on_another_worker_leave_their_homes_list)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(run_on(rt, 0, true, spawns_and_keeps_its_worker_busy, NULL, NULL), 0);
	/* Nothing is left to wait for: the shutdown counts every task that
	 * ended on worker 1 as gone. */
	int64_t t0 = now_ns();
	ASSERT_EQ(coil_runtime_shutdown(rt, 30 * COIL_NSEC_PER_SEC), 0);
	ASSERT_LT(now_ns() - t0, 10 * COIL_NSEC_PER_SEC);
}

/*
 * A worker's tasks spawn onto and end off the worker's own list without a
 * lock; a listing from another thread holds the worker out of the list
 * while it reads (runtime/task.c, own_read_begin). Here a plain thread
 * lists and dumps both workers' tasks without a pause while each worker
 * runs fork-join trees (tasks that end where they were spawned, and some
 * that thieves end elsewhere and hand back) and a spawner whose children
 * mostly end on the other worker (which sends that worker's spawns to the
 * shared list for a while, and back). Nothing listed may be a task that
 * is done, the counts stay within what is alive, and under ASan or TSan
 * nothing is read as it changes or after it is freed.
 */
static atomic_bool list_stop;
static atomic_int list_live; /* an upper bound of the live tasks */

static int list_fib(void *arg, void **result)
{
	intptr_t k = (intptr_t)arg;
	if (k < 2) {
		*result = (void *)k;
		return 0;
	}
	coil_task_t *t;
	atomic_fetch_add(&list_live, 1);
	ASSERT_EQ(coil_spawn(&t, list_fib, (void *)(k - 1), NULL), 0);
	void *a = NULL, *b = NULL;
	ASSERT_EQ(list_fib((void *)(k - 2), &b), 0);
	ASSERT_EQ(coil_await(coil_task_future(t), &a), 0);
	coil_task_detach(t);
	atomic_fetch_sub(&list_live, 1);
	*result = (void *)((intptr_t)a + (intptr_t)b);
	return 0;
}

static int list_leaf(void *arg, void **result)
{
	(void)arg;
	*result = NULL;
	return 0;
}

/* Spawns bursts that the other worker mostly runs, then fork-join trees. */
static int list_worker(void *arg, void **result)
{
	(void)result;
	int rounds = (int)(intptr_t)arg;
	for (int r = 0; r < rounds && !atomic_load(&list_stop); r++) {
		enum { BURST = 3000 };
		coil_task_t **t = malloc(BURST * sizeof(*t));
		ASSERT(t != NULL);
		atomic_fetch_add(&list_live, BURST);
		for (int i = 0; i < BURST; i++)
			ASSERT_EQ(coil_spawn(&t[i], list_leaf, NULL, NULL), 0);
		for (int i = 0; i < BURST; i++) {
			ASSERT_EQ(coil_await(coil_task_future(t[i]), NULL), 0);
			coil_task_detach(t[i]);
		}
		atomic_fetch_sub(&list_live, BURST);
		free(t);
		for (int i = 0; i < 4; i++) {
			void *v = NULL;
			ASSERT_EQ(list_fib((void *)(intptr_t)14, &v), 0);
			ASSERT_EQ((intptr_t)v, 377);
		}
	}
	return 0;
}

static void *list_thread(void *arg)
{
	coil_runtime_t *rt = arg;
	FILE *null = fopen("/dev/null", "w");
	ASSERT(null != NULL);
	coil_task_t *v[64];
	unsigned lists = 0;
	while (!atomic_load(&list_stop)) {
		for (int w = 0; w < 2; w++) {
			coil_loop_t *loop = coil_runtime_loop(rt, w);
			/* The two workers' tasks, each task counted once; the
			 * bound is read after the count (it only grows while a
			 * task it counts is alive). */
			size_t n = coil_all_tasks(loop, v, 64);
			ASSERT_LE(n, (size_t)atomic_load(&list_live) + 4);
			ASSERT_GE(coil_loop_dump_tasks(loop, null, 0), 0);
			lists++;
		}
	}
	fclose(null);
	ASSERT(lists > 0);
	return NULL;
}

TEST(listings_from_another_thread_while_workers_spawn_and_end_tasks)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	atomic_store(&list_stop, false);
	atomic_store(&list_live, 2);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, list_thread, rt), 0);
	int rounds = under_valgrind() ? 1 : 20;
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_cfuture_t *f[2];
	for (int w = 0; w < 2; w++)
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f[w], coil_runtime_loop(rt, w),
							     list_worker, (void *)(intptr_t)rounds,
							     &pinned), 0);
	for (int w = 0; w < 2; w++) {
		ASSERT_EQ(coil_cfuture_wait(f[w], COIL_FOREVER, NULL), 0);
		coil_cfuture_release(f[w]);
	}
	atomic_store(&list_stop, true);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	/* Every task is done: none is listed, whatever is still on its way
	 * back to its home. */
	for (int w = 0; w < 2; w++)
		ASSERT_EQ(coil_all_tasks(coil_runtime_loop(rt, w), NULL, 0), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, 30 * COIL_NSEC_PER_SEC), 0);
}

/* --- the LIFO slot ------------------------------------------------------------ */

/* A task woken by a pinned task of a worker's ready batch goes to that
 * worker's LIFO slot, which other workers cannot steal from. If the next
 * item of the batch never yields, the woken task must still run: it goes
 * to the worker's deque first, where the other worker takes it. */
static coil_future_t *lifo_gate;
static atomic_int lifo_posted, lifo_waiting, lifo_woken_done;

static int awaits_the_gate(void *arg, void **result)
{
	(void)arg;
	(void)result;
	atomic_store(&lifo_waiting, 1);
	ASSERT_EQ(coil_await(lifo_gate, NULL), 0);
	atomic_store(&lifo_woken_done, 1);
	return 0;
}

/* Pinned on worker 1: makes the gate and its waiter (which worker 0
 * steals), and keeps worker 1 busy until the next two are posted, so
 * that they come in one batch. */
static int holds_worker_1(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_future_create(&lifo_gate, NULL), 0);
	ASSERT_EQ(coil_spawn(NULL, awaits_the_gate, NULL, NULL), 0);
	int64_t deadline = now_ns() + 30 * COIL_NSEC_PER_SEC;
	while (!load(&lifo_posted) || !load(&lifo_waiting)) {
		ASSERT_LT(now_ns(), deadline);
		sched_yield(); /* the thread, not the task: Valgrind runs one at a time */
	}
	nap_ms(20); /* the waiter is suspended by now; correct either way */
	return 0;
}

static int opens_the_gate(void *arg, void **result)
{
	(void)arg;
	(void)result;
	ASSERT_EQ(coil_future_set_result(lifo_gate, NULL, NULL), 0);
	return 0;
}

/* The next item of the batch: does not yield until the woken task ran. */
static int blocks_worker_1(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int64_t deadline = now_ns() + 10 * COIL_NSEC_PER_SEC;
	while (!load(&lifo_woken_done) && now_ns() < deadline)
		sched_yield();
	coil_future_release(lifo_gate);
	return load(&lifo_woken_done) ? 0 : -ETIMEDOUT;
}

TEST(a_task_woken_into_the_lifo_slot_runs_while_its_worker_is_blocked)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	atomic_store(&lifo_posted, 0);
	atomic_store(&lifo_waiting, 0);
	atomic_store(&lifo_woken_done, 0);
	coil_loop_t *w1 = coil_runtime_loop(rt, 1);
	coil_spawn_opts_t pinned = { .pinned = true };
	coil_cfuture_t *h = NULL, *a = NULL, *b = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&h, w1, holds_worker_1, NULL, &pinned), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&a, w1, opens_the_gate, NULL, &pinned), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&b, w1, blocks_worker_1, NULL, &pinned), 0);
	atomic_store(&lifo_posted, 1);
	ASSERT_EQ(coil_cfuture_wait(h, COIL_FOREVER, NULL), 0);
	ASSERT_EQ(coil_cfuture_wait(a, COIL_FOREVER, NULL), 0);
	ASSERT_EQ(coil_cfuture_wait(b, COIL_FOREVER, NULL), 0);
	ASSERT_EQ(load(&lifo_woken_done), 1);
	coil_cfuture_release(h);
	coil_cfuture_release(a);
	coil_cfuture_release(b);
	ASSERT_EQ(coil_runtime_shutdown(rt, 30 * COIL_NSEC_PER_SEC), 0);
}

/* --- stop and shutdown ----------------------------------------------------- */

static coil_runtime_t *volatile signal_rt;

static void stop_on_signal(int sig)
{
	(void)sig;
	coil_runtime_stop(signal_rt);
}

typedef struct raiser {
	pthread_t target;
	bool at_target; /* pthread_kill the block_on thread, else raise here */
} raiser_t;

static void *raises_sigusr1(void *arg)
{
	raiser_t *r = arg;
	sem_wait(&started);
	nap_ms(20); /* most likely parked by now; correct either way */
	if (r->at_target)
		ASSERT_EQ(pthread_kill(r->target, SIGUSR1), 0);
	else
		ASSERT_EQ(raise(SIGUSR1), 0);
	return NULL;
}

static void stop_by_signal(bool at_target)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	signal_rt = rt;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop_on_signal;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	sem_init(&started, 0, 0);
	sem_init(&finished, 0, 0);
	atomic_store(&seen_rc, 1);
	raiser_t r = { pthread_self(), at_target };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, raises_sigusr1, &r), 0);
	ASSERT_EQ(coil_runtime_block_on(rt, sleeps_long, NULL, NULL), -EINTR);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(load(&seen_rc), 1); /* stopped, not cancelled yet */
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
	ASSERT_EQ(load(&seen_rc), -ECANCELED);
	sem_destroy(&started);
	sem_destroy(&finished);
}

TEST(stop_from_a_signal_handler_on_the_block_on_thread)
{
	/* TSan defers a signal to the next call it intercepts, and a thread
	 * parked in io_uring_enter makes none: the handler would never run. */
	if (TEST_TSAN)
		TEST_SKIP("TSan defers signals that arrive in io_uring_enter");
	stop_by_signal(true);
}

TEST(stop_from_a_signal_handler_on_a_plain_thread)
{
	stop_by_signal(false);
}

static void *waits_stopped(void *arg)
{
	coil_runtime_wait_stopped(arg);
	sem_post(&finished);
	return NULL;
}

TEST(wait_stopped_returns_once_stopped)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	sem_init(&finished, 0, 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, waits_stopped, rt), 0);
	nap_ms(10);
	ASSERT_EQ(sem_trywait(&finished), -1);
	coil_runtime_stop(rt);
	sem_wait(&finished);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	sem_destroy(&finished);
}

#define NAPPERS 8

typedef struct napper {
	int64_t ns;
	atomic_int rc;
} napper_t;

static napper_t nappers[NAPPERS];

static int naps(void *arg, void **result)
{
	(void)result;
	napper_t *n = arg;
	sem_post(&started);
	int rc = coil_sleep_ns(n->ns);
	atomic_store(&n->rc, rc);
	return rc;
}

/* Spawns NAPPERS tasks on a runtime of `workers`, the odd ones sleeping
 * `odd_ns`, the even ones 2 ms, waits until all started, then shuts down
 * with `wait_ns`. */
static int nap_then_shutdown(unsigned workers, int64_t odd_ns, int64_t wait_ns,
			     int64_t *took)
{
	coil_runtime_t *rt = rt_make(workers, NULL);
	sem_init(&started, 0, 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	for (int i = 0; i < NAPPERS; i++) {
		nappers[i].ns = i % 2 ? odd_ns : 2 * 1000 * 1000;
		atomic_store(&nappers[i].rc, 1);
		ASSERT_EQ(coil_runtime_spawn(rt, NULL, naps, &nappers[i], NULL), 0);
	}
	for (int i = 0; i < NAPPERS; i++)
		sem_wait(&started);
	int64_t t0 = now_ns();
	int rc = coil_runtime_shutdown(rt, wait_ns);
	*took = now_ns() - t0;
	sem_destroy(&started);
	return rc;
}

TEST(shutdown_waits_for_tasks_that_end_in_time)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		int64_t took;
		ASSERT_EQ(nap_then_shutdown(configs[c], 10 * 1000 * 1000,
					    30 * COIL_NSEC_PER_SEC, &took), 0);
		for (int i = 0; i < NAPPERS; i++)
			ASSERT_EQ(load(&nappers[i].rc), 0);
		ASSERT_LT(took, 10 * COIL_NSEC_PER_SEC);
	}
}

TEST(shutdown_cancels_tasks_that_outlive_the_wait)
{
	int64_t wait = 100 * 1000 * 1000;
	for (size_t c = 0; c < NCONFIGS; c++) {
		int64_t took;
		ASSERT_EQ(nap_then_shutdown(configs[c], 3600 * COIL_NSEC_PER_SEC, wait, &took),
			  -ETIMEDOUT);
		for (int i = 0; i < NAPPERS; i++)
			ASSERT_EQ(load(&nappers[i].rc), i % 2 ? -ECANCELED : 0);
		ASSERT_GE(took, wait);
		ASSERT_LT(took, 10 * COIL_NSEC_PER_SEC);
		/* Without a wait, every sleeper is cancelled at once. */
		ASSERT_EQ(nap_then_shutdown(configs[c], 3600 * COIL_NSEC_PER_SEC, 0, &took),
			  -ETIMEDOUT);
		for (int i = 1; i < NAPPERS; i += 2)
			ASSERT_EQ(load(&nappers[i].rc), -ECANCELED);
	}
}

#if COIL_FAULT_INJECT
static atomic_int sleeper_rc;

static int sleeps_until_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int rc = coil_sleep(3600);
	atomic_store(&sleeper_rc, rc);
	return rc;
}

static int leaves_a_sleeper(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_spawn(NULL, sleeps_until_cancelled, NULL, NULL);
}
#endif

/* A shutdown that cannot start a worker's thread to end the tasks says so
 * and leaves the runtime (and its tasks) to be shut down again. */
TEST(shutdown_without_a_worker_thread_leaves_the_runtime_to_the_caller)
{
#if COIL_FAULT_INJECT
	coil_runtime_t *rt = rt_make(1, NULL);
	atomic_store(&sleeper_rc, 1);
	ASSERT_EQ(coil_runtime_block_on(rt, leaves_a_sleeper, NULL, NULL), 0);
	/* Worker 0 ran on this thread: the shutdown's first allocation is
	 * the stack of its own thread for it. */
	coil__fault_set(1);
	int rc = coil_runtime_shutdown(rt, 0);
	coil__fault_set(0);
	ASSERT_EQ(rc, -EAGAIN);
	ASSERT_EQ(load(&sleeper_rc), 1);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
	ASSERT_EQ(load(&sleeper_rc), -ECANCELED);
#else
	TEST_SKIP("built without COIL_FAULT_INJECT");
#endif
}

static atomic_int loop_reports;

static void count_loop_reports(coil_loop_t *loop, const coil_exc_context_t *ctx,
			       void *arg)
{
	(void)arg;
	atomic_fetch_add(&loop_reports, 1);
	coil_loop_default_exception_handler(loop, ctx);
}

static int counts_reports_here(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_loop_set_exception_handler(coil_get_running_loop(), count_loop_reports, NULL);
	return 0;
}

static int naps_200ms(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_sleep(0.2);
}

/* A started runtime's shutdown runs its workers on new threads while it
 * waits: their loops wait in the kernel as before (no error reported by
 * any loop, no CPU burnt while the tasks sleep). */
TEST(shutdown_of_a_started_runtime_waits_without_spinning)
{
	for (size_t c = 0; c < NCONFIGS; c++) {
		coil_runtime_t *rt = rt_make(configs[c], NULL);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		atomic_store(&loop_reports, 0);
		for (unsigned i = 0; i < configs[c]; i++)
			ASSERT_EQ(run_on(rt, (int)i, true, counts_reports_here, NULL, NULL), 0);
		for (int i = 0; i < 4; i++)
			ASSERT_EQ(coil_runtime_spawn(rt, NULL, naps_200ms, NULL, NULL), 0);
		double c0 = cpu_ms();
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		double used = cpu_ms() - c0;
		if (load(&loop_reports) != 0)
			TEST_FAIL_("%u worker(s): %d loop error(s) reported during the shutdown",
				   configs[c], load(&loop_reports));
		if (!under_valgrind() && used >= 100)
			TEST_FAIL_("%u worker(s): %.0f ms of CPU to wait 200 ms", configs[c], used);
	}
}

static int spawns_while_shutting_down(void *arg, void **result)
{
	(void)arg;
	(void)result;
	sem_post(&started);
	int rc = coil_sleep(3600);
	ASSERT_EQ(rc, -ECANCELED);
	/* The shutdown cancelled us: the runtime takes no more tasks. */
	ASSERT_EQ(coil_runtime_spawn(coil_current_runtime(), NULL, leaf, NULL, NULL),
		  COIL_ECLOSED);
	atomic_store(&seen_rc, rc);
	return rc;
}

TEST(runtime_spawn_is_refused_once_shutting_down)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	sem_init(&started, 0, 0);
	atomic_store(&seen_rc, 1);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(coil_runtime_spawn(rt, NULL, spawns_while_shutting_down, NULL, NULL), 0);
	sem_wait(&started);
	ASSERT_EQ(coil_runtime_shutdown(rt, 0), -ETIMEDOUT);
	ASSERT_EQ(load(&seen_rc), -ECANCELED);
	sem_destroy(&started);
}

/* --- no lost wake-ups -------------------------------------------------------- */

/*
 * Two tasks pinned on different workers pass a counter back and forth
 * through futures. box[i] holds the future side i awaits next, made by side
 * i (with a reference for the other side) before it sends, so the other
 * side always finds it. One lost wake-up hangs the test.
 */
typedef struct pingpong {
	coil_future_t *_Atomic box[2];
	int rounds;
	int worker[2];
	sem_t ready;
} pingpong_t;

static coil_future_t *pp_fresh(pingpong_t *p, int side)
{
	coil_future_t *f;
	ASSERT_EQ(coil_future_create(&f, NULL), 0);
	atomic_store(&p->box[side], coil_future_ref(f));
	return f;
}

static void pp_send(pingpong_t *p, int to, intptr_t v)
{
	coil_future_t *f = atomic_exchange(&p->box[to], NULL);
	ASSERT(f != NULL);
	ASSERT_EQ(coil_future_set_result(f, (void *)v, NULL), 0);
	coil_future_release(f);
}

static int pp_a(void *arg, void **result)
{
	pingpong_t *p = arg;
	intptr_t v = 0;
	for (int i = 0; i < p->rounds; i++) {
		coil_future_t *f = pp_fresh(p, 0);
		pp_send(p, 1, v + 1);
		void *r = NULL;
		ASSERT_EQ(coil_await(f, &r), 0);
		v = (intptr_t)r;
		ASSERT_EQ(v, 2 * i + 2);
		coil_future_release(f);
		if (i % 1024 == 0)
			ASSERT_EQ(coil_current_worker(), p->worker[0]);
	}
	*result = (void *)v;
	return 0;
}

static int pp_b(void *arg, void **result)
{
	pingpong_t *p = arg;
	ASSERT_EQ(coil_current_worker(), p->worker[1]);
	coil_future_t *f = pp_fresh(p, 1);
	sem_post(&p->ready);
	for (int i = 0; i < p->rounds; i++) {
		void *r = NULL;
		ASSERT_EQ(coil_await(f, &r), 0);
		intptr_t v = (intptr_t)r;
		ASSERT_EQ(v, 2 * i + 1);
		coil_future_release(f);
		if (i + 1 < p->rounds)
			f = pp_fresh(p, 1);
		pp_send(p, 0, v + 1);
		if (i % 1024 == 0)
			ASSERT_EQ(coil_current_worker(), p->worker[1]);
	}
	*result = (void *)(intptr_t)p->rounds;
	return 0;
}

TEST(pingpong_across_two_workers_loses_no_wakeup)
{
	/* 100k messages (50k round trips) between workers 0 and 1 of two;
	 * fewer between workers 0 and 3 of four. */
	static const unsigned ws[] = { 2, 4 };
	static const int rounds[] = { 50000, 10000 };
	for (size_t c = 0; c < 2; c++) {
		coil_runtime_t *rt = rt_make(ws[c], NULL);
		ASSERT_EQ(coil_runtime_start(rt), 0);
		pingpong_t p = { .rounds = under_valgrind() ? rounds[c] / 250 :
					   test_heavy_tools() ? rounds[c] / 25 : rounds[c] };
		p.worker[0] = 0;
		p.worker[1] = (int)ws[c] - 1;
		sem_init(&p.ready, 0, 0);
		coil_spawn_opts_t pin = { .pinned = true };
		coil_cfuture_t *fa, *fb;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&fb, coil_runtime_loop(rt, p.worker[1]),
							     pp_b, &p, &pin), 0);
		sem_wait(&p.ready);
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&fa, coil_runtime_loop(rt, p.worker[0]),
							     pp_a, &p, &pin), 0);
		void *va = NULL, *vb = NULL;
		ASSERT_EQ(coil_cfuture_wait(fa, COIL_FOREVER, &va), 0);
		ASSERT_EQ(coil_cfuture_wait(fb, COIL_FOREVER, &vb), 0);
		ASSERT_EQ((intptr_t)va, 2 * p.rounds);
		ASSERT_EQ((intptr_t)vb, p.rounds);
		coil_cfuture_release(fa);
		coil_cfuture_release(fb);
		ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
		sem_destroy(&p.ready);
	}
}

/* --- cancelling with a message while the task ends ------------------------ */

#define CANCEL_ROUNDS (under_valgrind() ? 5 : 300)

static coil_future_t *_Atomic never_set;

/* Awaits a future nobody resolves; ends cancelled once cancelled. */
static int ends_when_cancelled(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_await(atomic_load(&never_set), NULL);
}

/* Pinned on worker 1: cancels the task, with a message, until it is
 * done; the victim ends on worker 0 meanwhile. */
static int cancels_until_done(void *arg, void **result)
{
	(void)result;
	coil_task_t *t = arg;
	int n = 0;
	while (coil_task_cancel(t, n++ % 2 ? "again" : "stop"))
		ASSERT_EQ(coil_sleep(0), 0);
	return 0;
}

/*
 * Each round a task on worker 0 is cancelled, with a message, over and over
 * by a task pinned on worker 1 while it wakes and ends: a cancellation that
 * lands after the first wake-up replaces the message the ending task takes
 * for its outcome. Under ASan a message freed while the end still used it
 * shows, under TSan the unsynchronised read.
 */
static int cancel_rounds(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_runtime_t *rt = coil_current_runtime();
	coil_spawn_opts_t pinned = { .pinned = true };
	for (int i = 0; i < CANCEL_ROUNDS; i++) {
		coil_future_t *f;
		ASSERT_EQ(coil_future_create(&f, NULL), 0);
		atomic_store(&never_set, f);
		coil_task_t *v;
		ASSERT_EQ(coil_spawn(&v, ends_when_cancelled, NULL, &pinned), 0);
		ASSERT_EQ(coil_sleep(0), 0); /* the victim starts waiting */
		coil_cfuture_t *c = NULL;
		ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&c, coil_runtime_loop(rt, 1),
							     cancels_until_done, v, &pinned), 0);
		ASSERT_EQ(coil_await(coil_task_future(v), NULL), -ECANCELED);
		ASSERT(coil_future_cancelled(coil_task_future(v)));
		const char *m = coil_future_error_message(coil_task_future(v));
		ASSERT(m != NULL && (strcmp(m, "stop") == 0 || strcmp(m, "again") == 0));
		while (!coil_cfuture_done(c))
			ASSERT_EQ(coil_sleep(0), 0);
		ASSERT_EQ(coil_cfuture_wait(c, COIL_FOREVER, NULL), 0);
		coil_cfuture_release(c);
		coil_task_detach(v);
		coil_future_release(f);
	}
	return 0;
}

TEST(cancel_with_a_message_racing_the_tasks_end)
{
	coil_runtime_t *rt = rt_make(2, NULL);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	ASSERT_EQ(run_on(rt, 0, true, cancel_rounds, NULL, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* --- a worker that cannot set up its ring yet ----------------------------- */

static int reads_a_byte(void *arg, void **result)
{
	int fd = (int)(intptr_t)arg;
	char c = 0;
	ssize_t n = coil_read(fd, &c, 1, -1, COIL_FOREVER);
	*result = (void *)(intptr_t)(n == 1 ? c : n < 0 ? n : -1000);
	return 0;
}

/*
 * A worker sets its ring up again on its own thread when it first runs
 * (a ring of SINGLE_ISSUER takes only its own thread), which takes a
 * descriptor. With none left, the worker used to run with the ring of the
 * thread that made the runtime, where every wait failed (-EEXIST) and no
 * I/O of its tasks could complete; now it waits until it can set one up.
 */
TEST(a_worker_without_a_descriptor_for_its_ring_waits_until_it_has_one)
{
	/* Valgrind keeps a lowered RLIMIT_NOFILE to itself (test_io.c). */
	if (getenv("COIL_VALGRIND"))
		TEST_SKIP("Valgrind does not lower the descriptor limit");
	coil_runtime_t *rt = test_runtime_new(2);
	int p[2];
	ASSERT_EQ(pipe(p), 0);
	struct rlimit old, rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* The lowest free descriptor: every one below it is open, so with
	 * the limit there no new descriptor can be made. */
	int lowest = dup(0);
	ASSERT(lowest >= 0);
	close(lowest);
	rl = old;
	rl.rlim_cur = (rlim_t)lowest;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_cfuture_t *f = NULL;
	coil_spawn_opts_t pinned = { .pinned = true };
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&f, coil_runtime_loop(rt, 1), reads_a_byte,
						     (void *)(intptr_t)p[0], &pinned), 0);
	/* Let the workers try (and fail) to set their rings up. */
	struct timespec ts = { 0, 20 * 1000000L };
	nanosleep(&ts, NULL);
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	ASSERT_EQ(write(p[1], "x", 1), 1);
	void *v = NULL;
	ASSERT_EQ(coil_cfuture_wait(f, 20 * COIL_NSEC_PER_SEC, &v), 0);
	ASSERT_EQ((intptr_t)v, 'x');
	coil_cfuture_release(f);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
	close(p[0]);
	close(p[1]);
}

TEST_LIST(
	TEST_ENTRY(new_takes_the_worker_count_from_the_options),
	TEST_ENTRY(coil_workers_sets_the_default_worker_count),
	TEST_ENTRY(worker_threads_are_named_after_the_runtime),
	TEST_ENTRY(current_worker_and_runtime_inside_and_outside_tasks),
	TEST_ENTRY(coil_run_with_workers_awaits_a_tree_of_tasks),
	TEST_ENTRY(block_on_returns_the_result_and_may_run_again),
	TEST_ENTRY(start_refuses_a_running_runtime),
	TEST_ENTRY(task_locals_survive_every_await_across_workers),
	TEST_ENTRY(children_start_with_a_copy_of_the_parents_task_locals),
	TEST_ENTRY(pinned_task_resumes_only_on_its_worker),
	TEST_ENTRY(task_spawned_pinned_stays_on_the_spawners_worker),
	TEST_ENTRY(future_resolved_by_a_plain_thread_wakes_its_task),
	TEST_ENTRY(done_callbacks_run_on_the_futures_loop),
	TEST_ENTRY(runtime_spawn_from_plain_threads_runs_every_task_once),
	TEST_ENTRY(threadsafe_coroutines_run_on_any_worker_or_the_one_named),
	TEST_ENTRY(cancelled_cfuture_cancels_its_task),
	TEST_ENTRY(stop_from_a_signal_handler_on_the_block_on_thread),
	TEST_ENTRY(stop_from_a_signal_handler_on_a_plain_thread),
	TEST_ENTRY(wait_stopped_returns_once_stopped),
	TEST_ENTRY(tasks_that_end_on_another_worker_leave_their_homes_list),
	TEST_ENTRY(listings_from_another_thread_while_workers_spawn_and_end_tasks),
	TEST_ENTRY(a_task_woken_into_the_lifo_slot_runs_while_its_worker_is_blocked),
	TEST_ENTRY(cancel_with_a_message_racing_the_tasks_end),
	TEST_ENTRY(shutdown_waits_for_tasks_that_end_in_time),
	TEST_ENTRY(shutdown_cancels_tasks_that_outlive_the_wait),
	TEST_ENTRY(shutdown_without_a_worker_thread_leaves_the_runtime_to_the_caller),
	TEST_ENTRY(shutdown_of_a_started_runtime_waits_without_spinning),
	TEST_ENTRY(runtime_spawn_is_refused_once_shutting_down),
	TEST_ENTRY(pingpong_across_two_workers_loses_no_wakeup),
	/* Last: they skip under Valgrind, which ends an in-process run. */
	TEST_ENTRY(pin_workers_pins_worker_i_to_the_ith_allowed_cpu),
	TEST_ENTRY(idle_runtime_uses_no_cpu),
	TEST_ENTRY(runtime_with_a_sleeping_task_stays_idle),
	TEST_ENTRY(a_worker_without_a_descriptor_for_its_ring_waits_until_it_has_one))
