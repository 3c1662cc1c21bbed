/*
 * tests/test_signal.c: signal handlers as loop callbacks
 * (coil_add_signal_handler, coil_remove_signal_handler).
 *
 * A server-like group of tasks shuts down gracefully on SIGTERM and on
 * SIGINT sent with kill(getpid()) from another thread, on a standalone loop
 * and on a 2-worker runtime; a signal ends a task's long await; a signal
 * delivered to a thread that does not block it is forwarded to the loop;
 * several signals with several handlers, real-time signals queued, a
 * real-time signal alone; a handler replaced; removal (the callback
 * stops, the previous disposition and mask come back); a loop that closes
 * with handlers left; two loops; bad arguments.
 *
 * Signals are sent by plain threads; every wait for a callback is an
 * await on an event the callback sets, bounded by a timeout so that a lost
 * signal fails the test instead of hanging it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "coil/coil.h"
#include "test.h"

#define SEC COIL_NSEC_PER_SEC

static void run(coil_fn fn, void *arg)
{
	int rc = coil_run(fn, arg, NULL, NULL);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
}

static bool blocked_here(int sig)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig);
}

/* --- sending from another thread -------------------------------------------- */

typedef struct sender {
	pthread_t th;
	int sig;
	int count;
	bool unblock;             /* take the signal in this thread if it comes */
} sender_t;

static void *sender_main(void *arg)
{
	sender_t *s = arg;
	if (s->unblock) {
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, s->sig);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	}
	for (int i = 0; i < s->count; i++) {
		if (s->sig >= SIGRTMIN) {
			union sigval v = { .sival_int = i };
			sigqueue(getpid(), s->sig, v);
		} else {
			kill(getpid(), s->sig);
		}
	}
	return NULL;
}

static void send_from_thread(sender_t *s, int sig, int count, bool unblock)
{
	s->sig = sig;
	s->count = count;
	s->unblock = unblock;
	ASSERT_EQ(pthread_create(&s->th, NULL, sender_main, s), 0);
}

static void sender_join(sender_t *s)
{
	pthread_join(s->th, NULL);
}

/* Waits for the event, failing (-ETIMEDOUT) after 10 s instead of
 * hanging if a signal was lost. */
static int wait_event(coil_event_t *e)
{
	coil_timeout_t to;
	int rc = coil_timeout_enter(&to, 10 * SEC);
	if (rc)
		return rc;
	rc = coil_event_wait(e);
	int x = coil_timeout_exit(&to);
	return x ? x : rc;
}

/* --- a server-like group of tasks ---------------------------------------------- */

/*
 * Tasks that serve "requests" from a queue until told to stop, then finish
 * what they hold and leave: the shape of a server's graceful shutdown. The
 * signal's callback only sets the stop event.
 */
typedef struct server {
	coil_event_t *stop;
	coil_queue_t *jobs;
	atomic_int served;
	atomic_int finished;      /* workers that left cleanly */
	atomic_int callbacks;
	int worker_of_callback;   /* coil_current_worker() in the callback */
	int sig;
	bool unblock_sender;
	unsigned workers;
} server_t;

static void on_stop(void *arg)
{
	server_t *s = arg;
	s->worker_of_callback = coil_current_worker();
	atomic_fetch_add(&s->callbacks, 1);
	coil_event_set(s->stop);
	/* Stop taking work: the workers drain the queue, then leave. */
	coil_queue_shutdown(s->jobs, false);
}

static int server_worker(void *arg, void **result)
{
	(void)result;
	server_t *s = arg;
	for (;;) {
		void *job;
		int rc = coil_queue_get(s->jobs, &job);
		if (rc == COIL_ECLOSED)
			break;
		if (rc)
			return rc;
		atomic_fetch_add(&s->served, 1);
		coil_queue_task_done(s->jobs);
	}
	atomic_fetch_add(&s->finished, 1);
	return 0;
}

static int producer(void *arg, void **result)
{
	(void)result;
	server_t *s = arg;
	/* Requests keep coming until the stop; each one is an await. */
	for (uintptr_t i = 1; !coil_event_is_set(s->stop); i++) {
		int rc = coil_queue_put(s->jobs, (void *)i);
		if (rc == COIL_ECLOSED)
			break;
		if (rc)
			return rc;
		coil_sleep(0);
	}
	atomic_fetch_add(&s->finished, 1);
	return 0;
}

static int server_main(void *arg, void **result)
{
	(void)result;
	server_t *s = arg;
	ASSERT_EQ(coil_event_create(&s->stop), 0);
	ASSERT_EQ(coil_queue_create(&s->jobs, COIL_QUEUE_FIFO, 16), 0);
	int added_on = coil_current_worker();
	ASSERT_EQ(coil_add_signal_handler(s->sig, on_stop, s), 0);
	ASSERT(blocked_here(s->sig));
	coil_task_t *t[8];
	ASSERT(s->workers < 8);
	for (unsigned i = 0; i < s->workers; i++)
		ASSERT_EQ(coil_spawn(&t[i], server_worker, s, NULL), 0);
	ASSERT_EQ(coil_spawn(&t[s->workers], producer, s, NULL), 0);
	/* Some requests are served before the signal comes. */
	while (atomic_load(&s->served) < 50)
		coil_sleep(0);
	sender_t snd;
	send_from_thread(&snd, s->sig, 1, s->unblock_sender);
	ASSERT_EQ(coil_wait_for(coil_task_future(t[s->workers]), 10 * SEC, NULL), 0);
	for (unsigned i = 0; i < s->workers; i++) {
		ASSERT_EQ(coil_wait_for(coil_task_future(t[i]), 10 * SEC, NULL), 0);
		coil_task_detach(t[i]);
	}
	coil_task_detach(t[s->workers]);
	sender_join(&snd);
	ASSERT_EQ(atomic_load(&s->callbacks), 1);
	ASSERT_EQ(atomic_load(&s->finished), (int)s->workers + 1);
	/* The callback ran on the loop that added the handler. */
	ASSERT_EQ(s->worker_of_callback, added_on);
	ASSERT_EQ(coil_remove_signal_handler(s->sig), 1);
	coil_queue_destroy(s->jobs);
	coil_event_destroy(s->stop);
	return 0;
}

TEST(sigterm_shuts_a_server_down)
{
	server_t s = { .sig = SIGTERM, .workers = 3 };
	run(server_main, &s);
	ASSERT(!blocked_here(SIGTERM));
}

TEST(sigint_shuts_a_server_down)
{
	server_t s = { .sig = SIGINT, .workers = 3 };
	run(server_main, &s);
	ASSERT(!blocked_here(SIGINT));
}

/* The signal lands on a thread that does not block it: forwarded. */
TEST(signal_to_an_unblocked_thread_is_forwarded)
{
	server_t s = { .sig = SIGTERM, .workers = 2, .unblock_sender = true };
	run(server_main, &s);
}

TEST(sigterm_on_a_two_worker_runtime)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	server_t s = { .sig = SIGTERM, .workers = 4 };
	ASSERT_EQ(coil_runtime_block_on(rt, server_main, &s, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, 10 * SEC), 0);
	ASSERT(!blocked_here(SIGTERM));
}

/* On a runtime, adding from another worker moves the handler there; a
 * plain thread removes it. */
typedef struct moving {
	atomic_int hits[2];
	atomic_int ran_on;        /* worker of the last callback, + 1 */
	int added_on[2];
} moving_t;

static moving_t *moving_arg;

static void moving_cb0(void *arg)
{
	moving_t *m = arg;
	atomic_fetch_add(&m->hits[0], 1);
	atomic_store(&m->ran_on, coil_current_worker() + 1);
}

static void moving_cb1(void *arg)
{
	moving_t *m = arg;
	atomic_fetch_add(&m->hits[1], 1);
	atomic_store(&m->ran_on, coil_current_worker() + 1);
}

static int add_on_worker(void *arg, void **result)
{
	(void)result;
	int k = (int)(intptr_t)arg;
	moving_t *m = moving_arg;
	m->added_on[k] = coil_current_worker();
	return coil_add_signal_handler(SIGUSR1, k ? moving_cb1 : moving_cb0, m);
}

static void add_from_worker(coil_runtime_t *rt, int k)
{
	coil_cfuture_t *cf;
	ASSERT_EQ(coil_run_coroutine_threadsafe(&cf, coil_runtime_loop(rt, k), add_on_worker,
						(void *)(intptr_t)k), 0);
	ASSERT_EQ(coil_cfuture_wait(cf, 10 * SEC, NULL), 0);
	coil_cfuture_release(cf);
}

TEST(handler_moves_between_workers)
{
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	moving_t m;
	memset(&m, 0, sizeof(m));
	moving_arg = &m;
	add_from_worker(rt, 0);
	add_from_worker(rt, 1);
	/* This thread does not block SIGUSR1: forwarded to the worker. */
	kill(getpid(), SIGUSR1);
	int64_t until = coil_loop_time_ns(coil_runtime_loop(rt, 0)) + 10 * SEC;
	while (!atomic_load(&m.hits[1]) &&
	       coil_loop_time_ns(coil_runtime_loop(rt, 0)) < until)
		usleep(1000);
	ASSERT_EQ(atomic_load(&m.hits[1]), 1);
	ASSERT_EQ(atomic_load(&m.hits[0]), 0);
	ASSERT_EQ(atomic_load(&m.ran_on), m.added_on[1] + 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	ASSERT_EQ(coil_runtime_shutdown(rt, 10 * SEC), 0);
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGUSR1, NULL, &cur), 0);
	ASSERT(cur.sa_handler == SIG_DFL);
}

/* --- a long await ended by a signal ------------------------------------------------ */

static void cancel_task(void *arg)
{
	coil_task_cancel(arg, "signal");
}

static int long_sleeper(void *arg, void **result)
{
	(void)arg;
	(void)result;
	return coil_sleep(3600);
}

static int long_await_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	coil_task_t *t;
	ASSERT_EQ(coil_spawn(&t, long_sleeper, NULL, NULL), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, cancel_task, t), 0);
	coil_sleep(0); /* the sleeper is in its await */
	sender_t snd;
	send_from_thread(&snd, SIGUSR1, 1, false);
	ASSERT_EQ(coil_wait_for(coil_task_future(t), 10 * SEC, NULL), -ECANCELED);
	ASSERT(coil_future_cancelled(coil_task_future(t)));
	sender_join(&snd);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	coil_task_detach(t);
	return 0;
}

TEST(signal_arrives_while_a_task_awaits)
{
	run(long_await_main, NULL);
}

/* --- several signals, several handlers ------------------------------------------ */

typedef struct counter {
	atomic_int n;
	int want;
	coil_event_t *done;
} counter_t;

static void count_cb(void *arg)
{
	counter_t *c = arg;
	if (atomic_fetch_add(&c->n, 1) + 1 == c->want)
		coil_event_set(c->done);
}

static void wait_count(counter_t *c)
{
	ASSERT_EQ(wait_event(c->done), 0);
}

static int several_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int sigs[4] = { SIGUSR1, SIGUSR2, SIGHUP, SIGRTMIN + 1 };
	int sends[4] = { 1, 1, 1, 5 };
	counter_t c[4];
	for (int i = 0; i < 4; i++) {
		atomic_init(&c[i].n, 0);
		c[i].want = sends[i];
		ASSERT_EQ(coil_event_create(&c[i].done), 0);
		ASSERT_EQ(coil_add_signal_handler(sigs[i], count_cb, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		sender_t snd;
		send_from_thread(&snd, sigs[i], sends[i], false);
		sender_join(&snd);
		wait_count(&c[i]);
	}
	/* Real-time signals queue: each one ran the callback once. */
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(atomic_load(&c[i].n), sends[i]);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(coil_remove_signal_handler(sigs[i]), 1);
		coil_event_destroy(c[i].done);
	}
	return 0;
}

TEST(several_signals_several_handlers)
{
	run(several_main, NULL);
}

/* A loop whose only handler is for a real-time signal reads it all the
 * same (glibc's sigisemptyset takes a set of real-time signals alone for
 * empty). */
static int rt_alone_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int sig = SIGRTMIN + 2;
	counter_t c = { .want = 3 };
	ASSERT_EQ(coil_event_create(&c.done), 0);
	ASSERT_EQ(coil_add_signal_handler(sig, count_cb, &c), 0);
	sender_t snd;
	send_from_thread(&snd, sig, 3, false);
	sender_join(&snd);
	wait_count(&c);
	ASSERT_EQ(atomic_load(&c.n), 3);
	ASSERT_EQ(coil_remove_signal_handler(sig), 1);
	coil_event_destroy(c.done);
	return 0;
}

TEST(a_real_time_signal_alone)
{
	run(rt_alone_main, NULL);
}

/* --- replacing and removing --------------------------------------------------- */

static atomic_int old_hits;

static void old_action(int sig)
{
	(void)sig;
	atomic_fetch_add(&old_hits, 1);
}

static void install_old_action(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = old_action;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(sig, &sa, NULL), 0);
}

static int replace_remove_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	counter_t first = { .want = 1 }, second = { .want = 1 };
	ASSERT_EQ(coil_event_create(&first.done), 0);
	ASSERT_EQ(coil_event_create(&second.done), 0);
	ASSERT(!blocked_here(SIGUSR1));
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, count_cb, &first), 0);
	ASSERT(blocked_here(SIGUSR1));
	/* asyncio: adding again replaces the callback. */
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, count_cb, &second), 0);
	kill(getpid(), SIGUSR1);
	wait_count(&second);
	ASSERT_EQ(atomic_load(&first.n), 0);
	ASSERT_EQ(atomic_load(&old_hits), 0);

	/* Removed: the previous action and mask are back, at once. */
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 0);
	ASSERT(!blocked_here(SIGUSR1));
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGUSR1, NULL, &cur), 0);
	ASSERT(cur.sa_handler == old_action);
	kill(getpid(), SIGUSR1); /* delivered to this thread before kill returns */
	ASSERT_EQ(atomic_load(&old_hits), 1);
	coil_sleep(0.01);
	ASSERT_EQ(atomic_load(&second.n), 1);

	/* And it can be added again. */
	coil_event_clear(second.done);
	atomic_store(&second.n, 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, count_cb, &second), 0);
	kill(getpid(), SIGUSR1);
	wait_count(&second);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	ASSERT_EQ(atomic_load(&old_hits), 1);
	coil_event_destroy(first.done);
	coil_event_destroy(second.done);
	return 0;
}

TEST(replace_and_remove)
{
	install_old_action(SIGUSR1);
	run(replace_remove_main, NULL);
}

/* A handler removed while its signal waits to be dispatched never runs. */
static int remove_pending_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	counter_t c = { .want = 1 };
	ASSERT_EQ(coil_event_create(&c.done), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR2, count_cb, &c), 0);
	kill(getpid(), SIGUSR2); /* pending for the signalfd */
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR2), 1);
	/* Unblocked again: the pending signal met the restored action. */
	ASSERT_EQ(atomic_load(&old_hits), 1);
	coil_sleep(0.01);
	ASSERT_EQ(atomic_load(&c.n), 0);
	coil_event_destroy(c.done);
	return 0;
}

TEST(removed_handler_never_runs)
{
	install_old_action(SIGUSR2);
	run(remove_pending_main, NULL);
}

/* coil_run's loop closes with a handler left: the close removes it. */
static int leave_installed_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	counter_t *c = arg;
	ASSERT_EQ(coil_event_create(&c->done), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR2, count_cb, c), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGHUP, count_cb, c), 0);
	kill(getpid(), SIGUSR2);
	wait_count(c);
	coil_event_destroy(c->done);
	return 0;
}

TEST(loop_close_removes_handlers)
{
	install_old_action(SIGUSR2);
	/* The previous disposition the close must put back: the default, set
	 * here, not inherited (nohup, for one, starts a program with SIGHUP
	 * ignored). */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	ASSERT_EQ(sigaction(SIGHUP, &dfl, NULL), 0);
	counter_t c = { .want = 1 };
	run(leave_installed_main, &c);
	ASSERT(!blocked_here(SIGUSR2));
	ASSERT(!blocked_here(SIGHUP));
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGHUP, NULL, &cur), 0);
	ASSERT(cur.sa_handler == SIG_DFL);
	kill(getpid(), SIGUSR2);
	ASSERT_EQ(atomic_load(&old_hits), 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR2), 0);
}

/* A runtime shut down with a handler left: its workers move to fresh
 * threads on the way (the handler follows), then the close removes it. */
static int runtime_leave_main(void *arg, void **result)
{
	(void)result;
	counter_t *c = arg;
	ASSERT_EQ(coil_event_create(&c->done), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, count_cb, c), 0);
	sender_t snd;
	send_from_thread(&snd, SIGUSR1, 1, false);
	ASSERT_EQ(wait_event(c->done), 0);
	sender_join(&snd);
	coil_event_destroy(c->done);
	return 0;
}

TEST(runtime_shutdown_removes_handlers)
{
	install_old_action(SIGUSR1);
	coil_runtime_opts_t o;
	coil_runtime_opts_init(&o);
	o.workers = 2;
	coil_runtime_t *rt;
	int rc = coil_runtime_new(&rt, &o);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	counter_t c = { .want = 1 };
	ASSERT_EQ(coil_runtime_block_on(rt, runtime_leave_main, &c, NULL), 0);
	ASSERT_EQ(coil_runtime_shutdown(rt, 10 * SEC), 0);
	ASSERT(!blocked_here(SIGUSR1));
	struct sigaction cur;
	ASSERT_EQ(sigaction(SIGUSR1, NULL, &cur), 0);
	ASSERT(cur.sa_handler == old_action);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 0);
}

/* A standalone loop run several times keeps its handler between runs:
 * a signal sent while it does not run waits for the next run. */
static int add_handler_task(void *arg, void **result)
{
	(void)result;
	counter_t *c = arg;
	return coil_add_signal_handler(SIGUSR2, count_cb, c);
}

static int wait_count_task(void *arg, void **result)
{
	(void)result;
	counter_t *c = arg;
	return wait_event(c->done);
}

TEST(handler_lives_across_loop_runs)
{
	coil_loop_t *loop;
	int rc = coil_new_event_loop(&loop);
	TEST_SKIP_UNLESS_RING(rc);
	ASSERT_EQ(rc, 0);
	counter_t c = { .want = 1 };
	ASSERT_EQ(coil_event_create(&c.done), 0);
	coil_task_t *t;
	ASSERT_EQ(coil_loop_create_task(loop, &t, add_handler_task, &c, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	/* Between runs: the signal stays pending, blocked. */
	kill(getpid(), SIGUSR2);
	ASSERT_EQ(atomic_load(&c.n), 0);
	ASSERT_EQ(coil_loop_create_task(loop, &t, wait_count_task, &c, NULL), 0);
	ASSERT_EQ(coil_loop_run_until_complete(loop, coil_task_future(t), NULL), 0);
	coil_task_detach(t);
	ASSERT_EQ(atomic_load(&c.n), 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR2), 1);
	coil_event_destroy(c.done);
	ASSERT_EQ(coil_loop_close(loop), 0);
	ASSERT(!blocked_here(SIGUSR2));
}

/* --- two loops ------------------------------------------------------------------ */

typedef struct two {
	counter_t c;
	int busy_rc;
} two_t;

static int other_loop_main(void *arg, void **result)
{
	(void)result;
	two_t *w = arg;
	/* SIGUSR1 is the first loop's. */
	w->busy_rc = coil_add_signal_handler(SIGUSR1, count_cb, &w->c);
	ASSERT_EQ(coil_event_create(&w->c.done), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGUSR2, count_cb, &w->c), 0);
	/* The main thread does not block SIGUSR2: the signal lands there
	 * and is forwarded to this loop's thread. */
	kill(getpid(), SIGUSR2);
	int rc = wait_event(w->c.done);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR2), 1);
	coil_event_destroy(w->c.done);
	return rc;
}

static void *other_loop_thread(void *arg)
{
	int rc = coil_run(other_loop_main, arg, NULL, NULL);
	return (void *)(intptr_t)rc;
}

static int two_loops_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	counter_t mine = { .want = 0 };
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, count_cb, &mine), 0);
	two_t w = { .c = { .want = 1 } };
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, other_loop_thread, &w), 0);
	/* A plain join would block this loop; the other loop does not need
	 * it, so joining here is fine. */
	void *ret;
	pthread_join(th, &ret);
	ASSERT_EQ((int)(intptr_t)ret, 0);
	ASSERT_EQ(w.busy_rc, -EBUSY);
	ASSERT_EQ(atomic_load(&w.c.n), 1);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 1);
	return 0;
}

TEST(two_loops)
{
	run(two_loops_main, NULL);
}

/* --- errors --------------------------------------------------------------------- */

static void nop_cb(void *arg)
{
	(void)arg;
}

static int errors_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	int bad[] = { 0, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
		      32, 33, _NSIG, 1000 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(coil_add_signal_handler(bad[i], nop_cb, NULL), -EINVAL);
		ASSERT_EQ(coil_remove_signal_handler(bad[i]), -EINVAL);
	}
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, NULL, NULL), -EINVAL);
	ASSERT_EQ(coil_remove_signal_handler(SIGUSR1), 0);
	ASSERT_EQ(coil_add_signal_handler(SIGRTMIN + 2, nop_cb, NULL), 0);
	ASSERT_EQ(coil_remove_signal_handler(SIGRTMIN + 2), 1);
	return 0;
}

TEST(bad_arguments)
{
	ASSERT_EQ(coil_add_signal_handler(SIGUSR1, nop_cb, NULL), COIL_EINVALSTATE);
	run(errors_main, NULL);
}

TEST_LIST(
	TEST_ENTRY(sigterm_shuts_a_server_down),
	TEST_ENTRY(sigint_shuts_a_server_down),
	TEST_ENTRY(signal_to_an_unblocked_thread_is_forwarded),
	TEST_ENTRY(sigterm_on_a_two_worker_runtime),
	TEST_ENTRY(handler_moves_between_workers),
	TEST_ENTRY(signal_arrives_while_a_task_awaits),
	TEST_ENTRY(several_signals_several_handlers),
	TEST_ENTRY(a_real_time_signal_alone),
	TEST_ENTRY(replace_and_remove),
	TEST_ENTRY(removed_handler_never_runs),
	TEST_ENTRY(loop_close_removes_handlers),
	TEST_ENTRY(runtime_shutdown_removes_handlers),
	TEST_ENTRY(handler_lives_across_loop_runs),
	TEST_ENTRY(two_loops),
	TEST_ENTRY(bad_arguments),
)
