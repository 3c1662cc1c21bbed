/*
 * runtime/executor/thread_pool.c: the thread pool executor (coil/executor.h).
 *
 * Jobs come in through `incoming`, a lock-free stack (one compare-and-swap
 * per submit, newest first). A pool thread moves the whole stack at once,
 * reversed, into the pool's FIFO (under `mu`) and takes jobs from the FIFO
 * one at a time, so that a job that blocks never holds others hostage in a
 * private batch: the other threads still see them.
 *
 * Roles. A pool thread is RUNNING (between taking a job and looking for the
 * next), SEARCHING (spinning on the queue for a short while after running
 * out of work, or just woken or started) or IDLE (asleep on its condition
 * variable, on the idle stack). `state` counts the running and searching
 * threads and holds two flags, WATCH and LAZY (below), in one atomic word
 * that a submitter reads with a single load.
 *
 * Waking. A submitter pushes its job, then reads `state`. It wakes nobody
 * when a thread is searching (that thread will see the job), nor when a
 * thread is running, the jobs are short (LAZY) and an idle thread watches
 * the queue (WATCH): the runner will come back for the job within
 * microseconds, and if it does not (a job that blocks after all), the
 * watcher will. Otherwise it takes `mu` and wakes one idle thread as a
 * searcher, or starts a new thread when none is idle and the pool is below
 * its maximum. Jobs that block (LAZY clear) therefore each get a thread at
 * once, as in Python's ThreadPoolExecutor, while a stream of short jobs
 * costs one compare-and-swap per job and no system call.
 *
 * No lost wake-up: a thread that stops searching or running (to sleep)
 * first takes its count out of `state`, then looks at `incoming` and the
 * FIFO once more; a submitter first pushes, then reads `state`. Both are
 * sequentially consistent, so either the submitter sees the count (and the
 * thread then sees the job) or the thread is already on the idle stack
 * when the submitter takes `mu` to wake it.
 *
 * LAZY. Runners keep an exponential average of job durations; below
 * SHORT_NS the pool is lazy: a runner taking a job that leaves others queued
 * wakes nobody for them (it will be back at once), and a searcher that
 * finds fresh work while a runner is at it leaves the work to the runner
 * and goes to sleep (as the watcher, if there is none). Above SHORT_NS, or
 * before any job was measured, the pool is eager: a runner that leaves
 * jobs queued wakes or starts one more thread for them (Go's rule: the
 * last searcher to find work makes sure another one searches), and
 * searchers take what they find.
 *
 * WATCH. While the pool is busy, one idle thread (the watcher) sleeps with
 * a short timeout (WATCH_NS) instead of its idle timeout and, when it wakes,
 * looks at how long the job at the head of the FIFO has waited. One that
 * waited a whole WATCH_NS means the runners are stuck in jobs longer than
 * their average: the watcher takes it and becomes a runner, and another idle
 * thread (or a new one) takes over the watch. This bounds the wait of a job
 * behind an unexpectedly long one to about two WATCH_NS while the pool has
 * threads to spare, and costs one timed wake-up per WATCH_NS while the pool
 * is busy, none while it is quiet.
 *
 * Completions are collected by each thread and handed to the futures'
 * loops in batches (executor_int.h): when FLUSH_MAX jobs have ended, when
 * FLUSH_NS passed since the first unsent one, or before the thread sleeps.
 *
 * Lifetime. `users` counts the references of the program; `mem` counts one
 * for all of them plus one per live thread. The last user reference shuts
 * the pool down; the last `mem` reference frees it, on whichever thread
 * drops it. Threads are joinable: a thread that exits puts itself on the
 * `dead` list, which shutdown(wait), a later idle exit, a thread start or
 * the final free joins.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "core.h"
#include "executor_int.h"

#define WATCH_NS ((int64_t)1000000)     /* the watcher's look interval */
#define SPIN_NS ((int64_t)20000)        /* searching before sleeping */
#define SHORT_NS ((int64_t)50000)       /* jobs shorter on average: lazy */
#define FLUSH_NS ((int64_t)20000)       /* hand completions over by then */
#define FLUSH_MAX 64                    /* ... or at this many */
#define DEFAULT_IDLE_NS ((int64_t)10 * COIL_NSEC_PER_SEC)
#define MAX_THREADS_LIMIT 4096u

/* `state`: WATCH, LAZY, then the searching count (bits 8..31) and the
 * running count (bits 32..63). */
#define ST_WATCH ((uint64_t)1)
#define ST_LAZY ((uint64_t)2)
#define ST_SEARCH1 ((uint64_t)1 << 8)
#define ST_RUN1 ((uint64_t)1 << 32)
#define ST_SEARCHING(w) (((w) >> 8) & 0xffffff)
#define ST_RUNNING(w) ((w) >> 32)

/* `incoming` once the pool is shut down: pushes fail. */
#define CLOSED_MARK ((coil__xdone_t *)(uintptr_t)1)

enum { ROLE_NONE, ROLE_SEARCHING, ROLE_RUNNING };
enum { WAKE_NONE, WAKE_SEARCH, WAKE_WATCH, WAKE_CLOSE };

typedef struct pool_thread pool_thread_t;
struct pool_thread {
	pool_thread_t *next;      /* idle stack or dead list (under mu) */
	coil_executor_t *ex;
	pthread_t tid;
	pthread_cond_t cv;        /* its sleep (with mu) */
	unsigned index;
	uint8_t wake;             /* WAKE_*: why it was woken (under mu) */
	bool idle;                /* on the idle stack (under mu) */
};

/* Padding between fields that different threads write, so that each sits
 * on a cache line of its own (alignment attributes would not hold: the
 * struct comes from malloc). */
#define LINE_PAD(n) char n[64]

struct coil_executor {
	/* Any thread: submitters push here, pool threads take it all. */
	_Atomic(coil__xdone_t *) incoming;
	LINE_PAD(pad0);
	/* Any thread: read by every submit, written at role changes. */
	_Atomic uint64_t state;
	LINE_PAD(pad1);
	/* Pool threads: the FIFO's length for searchers' lock-free look
	 * (written under mu), and the average job duration (-1: unknown). */
	atomic_size_t qavail;
	_Atomic int64_t avg_ns;
	LINE_PAD(pad2);

	pthread_mutex_t mu;
	/* Under mu. */
	coil__xdone_t *qhead, **qtailp;
	size_t qlen;
	int64_t qhead_since;      /* when the head job got to the head */
	pool_thread_t *idle;      /* sleeping threads, last to sleep first */
	pool_thread_t *watcher;   /* the idle thread watching, or NULL */
	pool_thread_t *dead;      /* exited, to be joined */
	unsigned nthreads;        /* started and not exited */
	unsigned nstarted;        /* ever, for thread names */
	bool closed;
	pthread_cond_t gone;      /* nthreads reached 0 (with mu) */

	/* References (see the top of the file). */
	atomic_uint users;
	atomic_uint mem;
	atomic_bool internal;     /* a default executor coil made */

	/* Read-only after create. */
	unsigned max_threads;
	int64_t idle_ns;          /* COIL_FOREVER: never */
	char name[11];
};

/* The pool whose thread this is (for the shutdown deadlock check). */
static __thread coil_executor_t *tls_pool;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

unsigned coil__executor_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

/* Whether a submitter may leave the job to the threads at work. */
static inline bool covered(uint64_t w)
{
	return ST_SEARCHING(w) ||
	       (ST_RUNNING(w) && (w & ST_WATCH) && (w & ST_LAZY));
}

static inline bool incoming_nonempty(coil_executor_t *ex)
{
	coil__xdone_t *h = atomic_load_explicit(&ex->incoming, memory_order_seq_cst);
	return h && h != CLOSED_MARK;
}

/* --- the FIFO (under mu) ----------------------------------------------- */

static void fifo_append(coil_executor_t *ex, coil__xdone_t *chain, size_t n,
			int64_t now)
{
	if (!chain)
		return;
	if (!ex->qhead)
		ex->qhead_since = now;
	*ex->qtailp = chain;
	coil__xdone_t *last = chain;
	while (last->next)
		last = last->next;
	ex->qtailp = &last->next;
	ex->qlen += n;
	atomic_store_explicit(&ex->qavail, ex->qlen, memory_order_relaxed);
}

/* Takes the whole incoming stack and appends it, oldest first. */
static void grab_locked(coil_executor_t *ex, int64_t now)
{
	coil__xdone_t *s = atomic_load_explicit(&ex->incoming, memory_order_acquire);
	do {
		if (!s || s == CLOSED_MARK)
			return;
	} while (!atomic_compare_exchange_weak_explicit(&ex->incoming, &s, NULL,
							memory_order_seq_cst,
							memory_order_acquire));
	coil__xdone_t *prev = NULL;
	size_t n = 0;
	while (s) {
		coil__xdone_t *next = s->next;
		s->next = prev;
		prev = s;
		s = next;
		n++;
	}
	fifo_append(ex, prev, n, now);
}

static coil__xdone_t *pop_locked(coil_executor_t *ex, int64_t now)
{
	if (!ex->qhead)
		grab_locked(ex, now);
	coil__xdone_t *d = ex->qhead;
	if (!d)
		return NULL;
	ex->qhead = d->next;
	if (!ex->qhead) {
		ex->qtailp = &ex->qhead;
		/* New jobs may be waiting on the stack: show them to the
		 * next look. */
		grab_locked(ex, now);
	}
	ex->qhead_since = now;
	ex->qlen--;
	atomic_store_explicit(&ex->qavail, ex->qlen, memory_order_relaxed);
	d->next = NULL;
	return d;
}

static bool work_locked(coil_executor_t *ex)
{
	return ex->qhead || incoming_nonempty(ex);
}

/* --- waking and starting threads (under mu) ----------------------------- */

static void idle_remove(coil_executor_t *ex, pool_thread_t *t)
{
	pool_thread_t **p = &ex->idle;
	while (*p && *p != t)
		p = &(*p)->next;
	if (*p)
		*p = t->next;
	t->next = NULL;
	t->idle = false;
	if (ex->watcher == t) {
		ex->watcher = NULL;
		atomic_fetch_and_explicit(&ex->state, ~ST_WATCH, memory_order_seq_cst);
	}
}

/* Wakes idle thread t as a searcher (counted here, on its behalf). */
static void wake_search_locked(coil_executor_t *ex, pool_thread_t *t)
{
	idle_remove(ex, t);
	atomic_fetch_add_explicit(&ex->state, ST_SEARCH1, memory_order_seq_cst);
	t->wake = WAKE_SEARCH;
	pthread_cond_signal(&t->cv);
}

/* Makes idle thread t the watcher: it stays idle, with a short timeout. */
static void arm_watch_locked(coil_executor_t *ex, pool_thread_t *t)
{
	ex->watcher = t;
	atomic_fetch_or_explicit(&ex->state, ST_WATCH, memory_order_seq_cst);
	t->wake = WAKE_WATCH;
	pthread_cond_signal(&t->cv);
}

/* Reserves a new thread (counted as searching). Returns false at the
 * maximum. */
static bool reserve_thread_locked(coil_executor_t *ex)
{
	if (ex->nthreads >= ex->max_threads)
		return false;
	ex->nthreads++;
	atomic_fetch_add_explicit(&ex->state, ST_SEARCH1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&ex->mem, 1, memory_order_relaxed);
	return true;
}

static void *thread_main(void *arg);
static void fail_queued(coil_executor_t *ex, int err);
static void mem_release(coil_executor_t *ex);

/* Starts a thread reserved with reserve_thread_locked; mu not held. */
static void start_thread(coil_executor_t *ex)
{
	pool_thread_t *t = coil__calloc(sizeof(*t));
	int err = t ? 0 : ENOMEM;
	pthread_condattr_t ca;
	if (!err && !(err = pthread_condattr_init(&ca))) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		err = pthread_cond_init(&t->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (!err) {
		t->ex = ex;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		/* Every asynchronous signal blocked from the first
		 * instruction on: they belong to the program's threads. */
		sigset_t all;
		sigfillset(&all);
		sigdelset(&all, SIGSEGV);
		sigdelset(&all, SIGBUS);
		sigdelset(&all, SIGFPE);
		sigdelset(&all, SIGILL);
		sigdelset(&all, SIGTRAP);
		sigdelset(&all, SIGABRT);
		pthread_attr_setsigmask_np(&attr, &all);
		pthread_mutex_lock(&ex->mu);
		t->index = ex->nstarted++;
		pthread_mutex_unlock(&ex->mu);
		err = pthread_create(&t->tid, &attr, thread_main, t);
		pthread_attr_destroy(&attr);
		if (err)
			pthread_cond_destroy(&t->cv);
	}
	if (!err)
		return;
	coil__free(t, sizeof(*t));
	pthread_mutex_lock(&ex->mu);
	ex->nthreads--;
	atomic_fetch_sub_explicit(&ex->state, ST_SEARCH1, memory_order_seq_cst);
	bool none = ex->nthreads == 0;
	if (none)
		pthread_cond_broadcast(&ex->gone);
	pthread_mutex_unlock(&ex->mu);
	/* With no thread at all, queued jobs would wait forever: fail them.
	 * With some, they run later. */
	if (none)
		fail_queued(ex, -err);
	mem_release(ex); /* the reference the thread would have held */
}

/*
 * After a thread took a job that leaves others queued: makes sure somebody
 * comes for them (see LAZY and WATCH at the top). Returns true when a new
 * thread must be started (after unlocking).
 */
static bool more_work_locked(coil_executor_t *ex)
{
	if (!work_locked(ex))
		return false;
	uint64_t w = atomic_load_explicit(&ex->state, memory_order_seq_cst);
	if (ST_SEARCHING(w))
		return false;
	if (!(w & ST_LAZY)) {
		if (ex->idle) {
			wake_search_locked(ex, ex->idle);
			return false;
		}
		return reserve_thread_locked(ex);
	}
	if (ex->watcher)
		return false;
	if (ex->idle) {
		arm_watch_locked(ex, ex->idle);
		return false;
	}
	return reserve_thread_locked(ex);
}

/* A submitter found no thread that will see its job: wake or start one. */
static void wake_slow(coil_executor_t *ex)
{
	bool start = false;
	pthread_mutex_lock(&ex->mu);
	uint64_t w = atomic_load_explicit(&ex->state, memory_order_seq_cst);
	if (!covered(w) && !ex->closed) {
		if ((w & ST_LAZY) && ST_RUNNING(w) && !ex->watcher && ex->idle)
			arm_watch_locked(ex, ex->idle);
		else if (ex->idle)
			wake_search_locked(ex, ex->idle);
		else
			start = reserve_thread_locked(ex);
	}
	pthread_mutex_unlock(&ex->mu);
	if (start)
		start_thread(ex);
}

/* --- freeing ------------------------------------------------------------ */

static void thread_free(pool_thread_t *t)
{
	pthread_cond_destroy(&t->cv);
	coil__free(t, sizeof(*t));
}

/* Joins (or, for the calling thread itself, detaches) and frees a list of
 * exited threads. */
static void reap_dead(pool_thread_t *t)
{
	while (t) {
		pool_thread_t *next = t->next;
		if (pthread_equal(t->tid, pthread_self()))
			pthread_detach(t->tid);
		else
			pthread_join(t->tid, NULL);
		thread_free(t);
		t = next;
	}
}

static void pool_free(coil_executor_t *ex)
{
	/* No thread is alive and nobody holds a reference: what is left on
	 * the dead list has exited or is exiting, past its last use of ex. */
	reap_dead(ex->dead);
	coil__xdone_t *d = ex->qhead;
	while (d) {
		coil__xdone_t *next = d->next;
		coil__xdone_set(d, -ECANCELED, NULL, NULL);
		coil__xdone_dispose(d);
		d = next;
	}
	pthread_mutex_destroy(&ex->mu);
	pthread_cond_destroy(&ex->gone);
	coil__free(ex, sizeof(*ex));
}

static void mem_release(coil_executor_t *ex)
{
	if (atomic_fetch_sub_explicit(&ex->mem, 1, memory_order_acq_rel) == 1)
		pool_free(ex);
}

/* --- running jobs ------------------------------------------------------- */

void coil__thread_job_free(coil__xdone_t *d)
{
	coil__free(d, sizeof(*d));
}

/* Runs one job (unless its future is already done) and records its
 * outcome in it. */
static void run_job(coil__xdone_t *d)
{
	if (coil__xdone_abandoned(d)) {
		coil__xdone_set(d, -ECANCELED, NULL, NULL);
		return;
	}
	void *result = NULL;
	int rc = d->fn(d->arg, &result);
	char *msg = coil__take_errmsg();
	if (rc < 0) {
		/* A failing job owns no result; one it wrote anyway is
		 * destroyed rather than leaked. */
		if (result && d->dtor)
			d->dtor(result);
		coil__xdone_set(d, rc, NULL, msg);
	} else {
		coil__strfree(msg);
		coil__xdone_set(d, 0, result, NULL);
	}
}

/* Folds a measured duration into the average and keeps LAZY in step. */
static void note_duration(coil_executor_t *ex, int64_t ns)
{
	int64_t avg = atomic_load_explicit(&ex->avg_ns, memory_order_relaxed);
	avg = avg < 0 ? ns : avg + (ns - avg) / 8;
	atomic_store_explicit(&ex->avg_ns, avg, memory_order_relaxed);
	bool lazy = avg < SHORT_NS;
	uint64_t w = atomic_load_explicit(&ex->state, memory_order_relaxed);
	if (lazy && !(w & ST_LAZY))
		atomic_fetch_or_explicit(&ex->state, ST_LAZY, memory_order_seq_cst);
	else if (!lazy && (w & ST_LAZY))
		atomic_fetch_and_explicit(&ex->state, ~ST_LAZY, memory_order_seq_cst);
}

/* A thread's private state. */
typedef struct worker {
	coil_executor_t *ex;
	pool_thread_t *t;
	int role;
	coil__xbatch_t batch;
	int64_t batch_t0;         /* when the oldest unsent completion ended */
	int64_t now;
} worker_t;

static void flush(worker_t *w)
{
	coil__xbatch_flush(&w->batch);
}

static void maybe_flush(worker_t *w)
{
	if (w->batch.n && (w->batch.n >= FLUSH_MAX || w->now - w->batch_t0 >= FLUSH_NS))
		flush(w);
}

/* Runs d, which the thread just took as a runner, and records it. */
static void run_one(worker_t *w, coil__xdone_t *d)
{
	int64_t t0 = w->now;
	run_job(d);
	w->now = mono_ns();
	note_duration(w->ex, w->now - t0);
	if (!w->batch.n)
		w->batch_t0 = w->now;
	coil__xbatch_add(&w->batch, d);
	maybe_flush(w);
}

/* Changes the thread's counted role. */
static void set_role(worker_t *w, int role)
{
	uint64_t add = 0, sub = 0;
	if (w->role == ROLE_SEARCHING)
		sub += ST_SEARCH1;
	else if (w->role == ROLE_RUNNING)
		sub += ST_RUN1;
	if (role == ROLE_SEARCHING)
		add += ST_SEARCH1;
	else if (role == ROLE_RUNNING)
		add += ST_RUN1;
	if (add != sub)
		atomic_fetch_add_explicit(&w->ex->state, add - sub, memory_order_seq_cst);
	w->role = role;
}

/*
 * Takes the next job as a runner, under mu (taken and dropped here).
 * Returns it, with a new thread to start in *start; or NULL if there is
 * none, with the thread's role unchanged. A searcher of a lazy pool leaves
 * fresh work to the threads already running it (they are back for it in
 * microseconds) and sets *defer: it then sleeps, as the watcher if nobody
 * watches, and joins in only if the work goes stale.
 */
static coil__xdone_t *take(worker_t *w, bool *start, bool *defer)
{
	coil_executor_t *ex = w->ex;
	pthread_mutex_lock(&ex->mu);
	if (w->role == ROLE_SEARCHING) {
		uint64_t st = atomic_load_explicit(&ex->state, memory_order_seq_cst);
		if ((st & ST_LAZY) && ST_RUNNING(st) && !ex->closed) {
			if (!ex->qhead)
				grab_locked(ex, w->now);
			if (ex->qhead && w->now - ex->qhead_since < WATCH_NS) {
				*defer = true;
				pthread_mutex_unlock(&ex->mu);
				return NULL;
			}
		}
	}
	coil__xdone_t *d = pop_locked(ex, w->now);
	if (d) {
		set_role(w, ROLE_RUNNING);
		*start = more_work_locked(ex);
	}
	pthread_mutex_unlock(&ex->mu);
	return d;
}

/* Spins for work as a searcher for up to SPIN_NS. Returns true if work
 * showed up. */
static bool spin(worker_t *w)
{
	coil_executor_t *ex = w->ex;
	int64_t t0 = w->now;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&ex->qavail, memory_order_relaxed) ||
		    incoming_nonempty(ex))
			return true;
		cpu_relax();
		if (i % 64 == 0) {
			w->now = mono_ns();
			maybe_flush(w);
			if (w->now - t0 >= SPIN_NS)
				return false;
			/* On a machine with few cores the thread that would
			 * submit may be waiting for this one's core. */
			if (i % 512 == 0)
				sched_yield();
		}
	}
}

/* The watcher woke up: takes the head job if it waited too long. Under
 * mu. Returns it (the thread is then running), or NULL. */
static coil__xdone_t *watch_locked(worker_t *w, bool *start)
{
	coil_executor_t *ex = w->ex;
	if (!ex->qhead)
		grab_locked(ex, w->now);
	if (!ex->qhead || w->now - ex->qhead_since < WATCH_NS)
		return NULL;
	idle_remove(ex, w->t);
	coil__xdone_t *d = pop_locked(ex, w->now);
	set_role(w, ROLE_RUNNING);
	*start = more_work_locked(ex);
	return d;
}

/*
 * Sleeps until woken, the watcher's timeout finds a stale job, or the idle
 * timeout passes. Under mu, role NONE, flushed. Returns a job to run (the
 * thread is running), or NULL with the role set to SEARCHING (woken, or
 * work seen) or left NONE (exit).
 */
static coil__xdone_t *sleep_locked(worker_t *w, bool *start)
{
	coil_executor_t *ex = w->ex;
	pool_thread_t *t = w->t;
	t->next = ex->idle;
	ex->idle = t;
	t->idle = true;
	t->wake = WAKE_NONE;
	/* While the pool is busy and nobody watches, watch. */
	uint64_t st = atomic_load_explicit(&ex->state, memory_order_seq_cst);
	if (!ex->watcher && (ST_RUNNING(st) || ex->qhead)) {
		ex->watcher = t;
		atomic_fetch_or_explicit(&ex->state, ST_WATCH, memory_order_seq_cst);
	}
	int64_t idle_since = w->now;
	for (;;) {
		if (t->wake == WAKE_SEARCH) {
			/* Counted as searching by the waker. */
			w->role = ROLE_SEARCHING;
			return NULL;
		}
		if (t->wake == WAKE_CLOSE || ex->closed) {
			if (t->idle)
				idle_remove(ex, t);
			if (work_locked(ex))
				set_role(w, ROLE_SEARCHING);
			return NULL;
		}
		t->wake = WAKE_NONE;
		int64_t timeout = ex->watcher == t ? WATCH_NS : ex->idle_ns;
		int rc;
		if (timeout == COIL_FOREVER) {
			rc = pthread_cond_wait(&t->cv, &ex->mu);
		} else {
			/* Saturated: a huge idle timeout (INT64_MAX for
			 * "never") must not wrap into a deadline already
			 * passed, which would spin this thread. */
			int64_t now = mono_ns();
			int64_t until = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
			struct timespec ts = { until / COIL_NSEC_PER_SEC,
					       until % COIL_NSEC_PER_SEC };
			rc = pthread_cond_timedwait(&t->cv, &ex->mu, &ts);
		}
		w->now = mono_ns();
		if (t->wake != WAKE_NONE && t->wake != WAKE_WATCH)
			continue;
		if (ex->watcher == t) {
			coil__xdone_t *d = watch_locked(w, start);
			if (d)
				return d;
			st = atomic_load_explicit(&ex->state, memory_order_seq_cst);
			if (!ST_RUNNING(st) && !ex->qhead) {
				/* Quiet again: stop watching. */
				ex->watcher = NULL;
				atomic_fetch_and_explicit(&ex->state, ~ST_WATCH,
							  memory_order_seq_cst);
			} else {
				idle_since = w->now;
			}
			continue;
		}
		if (rc == ETIMEDOUT && ex->idle_ns != COIL_FOREVER &&
		    w->now - idle_since >= ex->idle_ns) {
			idle_remove(ex, t);
			if (work_locked(ex)) {
				set_role(w, ROLE_SEARCHING);
				return NULL;
			}
			return NULL; /* exit */
		}
	}
}

/* Leaves the pool: the thread has no role and nothing to flush. */
static void thread_exit(worker_t *w)
{
	coil_executor_t *ex = w->ex;
	pthread_mutex_lock(&ex->mu);
	ex->nthreads--;
	pool_thread_t *older = NULL;
	if (!ex->closed) {
		/* An idle exit joins those that left before it, so that at
		 * most one exited thread waits to be joined. */
		older = ex->dead;
		ex->dead = NULL;
	}
	w->t->next = ex->dead;
	ex->dead = w->t;
	if (!ex->nthreads)
		pthread_cond_broadcast(&ex->gone);
	pthread_mutex_unlock(&ex->mu);
	reap_dead(older);
	mem_release(ex);
}

static void *thread_main(void *arg)
{
	pool_thread_t *t = arg;
	coil_executor_t *ex = t->ex;
	char name[16];
	snprintf(name, sizeof(name), "%s-%u", ex->name, t->index);
	pthread_setname_np(pthread_self(), name);
	tls_pool = ex;

	worker_t w = { .ex = ex, .t = t, .role = ROLE_SEARCHING };
	coil__xbatch_init(&w.batch);
	w.now = mono_ns();
	for (;;) {
		bool start = false, defer = false;
		coil__xdone_t *d = take(&w, &start, &defer);
		if (start)
			start_thread(ex);
		if (d) {
			run_one(&w, d);
			continue;
		}
		/* Out of work: search for a while (one searcher at a time),
		 * then sleep. */
		if (w.role == ROLE_RUNNING) {
			uint64_t st = atomic_load_explicit(&ex->state, memory_order_relaxed);
			set_role(&w, ST_SEARCHING(st) ? ROLE_NONE : ROLE_SEARCHING);
		}
		if (!defer && w.role == ROLE_SEARCHING && spin(&w))
			continue;
		flush(&w);
		pthread_mutex_lock(&ex->mu);
		set_role(&w, ROLE_NONE);
		/* The last look before sleeping (see "No lost wake-up"); a
		 * deferring searcher knows there is work and that runners
		 * will take it. */
		if (!defer && work_locked(ex)) {
			set_role(&w, ROLE_SEARCHING);
			pthread_mutex_unlock(&ex->mu);
			continue;
		}
		if (ex->closed && !work_locked(ex)) {
			pthread_mutex_unlock(&ex->mu);
			break;
		}
		d = sleep_locked(&w, &start);
		pthread_mutex_unlock(&ex->mu);
		if (start)
			start_thread(ex);
		if (d) {
			run_one(&w, d);
			continue;
		}
		if (w.role == ROLE_NONE)
			break;
	}
	flush(&w);
	thread_exit(&w);
	return NULL;
}

/* --- public API ------------------------------------------------------------ */

void coil_thread_pool_opts_init(coil_thread_pool_opts_t *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

int coil_thread_pool_create(coil_executor_t **out,
			    const coil_thread_pool_opts_t *opts)
{
	if (!out)
		return -EINVAL;
	coil_thread_pool_opts_t o;
	coil_thread_pool_opts_init(&o);
	if (opts)
		memcpy(&o, opts, opts->size && opts->size < sizeof(o) ? opts->size : sizeof(o));
	if (o.idle_timeout_ns < 0 && o.idle_timeout_ns != COIL_FOREVER)
		return -EINVAL;
	coil_executor_t *ex = coil__calloc(sizeof(*ex));
	if (!ex)
		return -ENOMEM;
	pthread_condattr_t ca;
	int err = pthread_condattr_init(&ca);
	if (!err) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		err = pthread_cond_init(&ex->gone, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (!err && (err = pthread_mutex_init(&ex->mu, NULL)))
		pthread_cond_destroy(&ex->gone);
	if (err) {
		coil__free(ex, sizeof(*ex));
		return -err;
	}
	atomic_init(&ex->incoming, NULL);
	atomic_init(&ex->state, 0);
	atomic_init(&ex->qavail, 0);
	atomic_init(&ex->avg_ns, -1);
	ex->qtailp = &ex->qhead;
	atomic_init(&ex->users, 1);
	atomic_init(&ex->mem, 1);
	atomic_init(&ex->internal, false);
	unsigned max = o.max_threads;
	if (!max) {
		max = coil__executor_cpus() + 4;
		if (max > 32)
			max = 32;
	}
	ex->max_threads = max > MAX_THREADS_LIMIT ? MAX_THREADS_LIMIT : max;
	ex->idle_ns = o.idle_timeout_ns ? o.idle_timeout_ns : DEFAULT_IDLE_NS;
	snprintf(ex->name, sizeof(ex->name), "%s", o.thread_name ? o.thread_name : "coil-pool");
	*out = ex;
	return 0;
}

coil_executor_t *coil_executor_ref(coil_executor_t *ex)
{
	if (ex)
		atomic_fetch_add_explicit(&ex->users, 1, memory_order_relaxed);
	return ex;
}

bool coil__executor_closed(coil_executor_t *ex)
{
	return atomic_load_explicit(&ex->incoming, memory_order_acquire) == CLOSED_MARK;
}

void coil__executor_set_internal(coil_executor_t *ex)
{
	atomic_store_explicit(&ex->internal, true, memory_order_relaxed);
}

bool coil__executor_internal(coil_executor_t *ex)
{
	return atomic_load_explicit(&ex->internal, memory_order_relaxed);
}

/* Completes every queued job as cancelled (or with err). mu not held. */
static void fail_queued(coil_executor_t *ex, int err)
{
	pthread_mutex_lock(&ex->mu);
	grab_locked(ex, 0);
	coil__xdone_t *d = ex->qhead;
	ex->qhead = NULL;
	ex->qtailp = &ex->qhead;
	ex->qlen = 0;
	atomic_store_explicit(&ex->qavail, 0, memory_order_relaxed);
	pthread_mutex_unlock(&ex->mu);
	coil__xbatch_t b;
	coil__xbatch_init(&b);
	while (d) {
		coil__xdone_t *next = d->next;
		coil__xdone_set(d, err, NULL,
				err == -ECANCELED ? NULL
						  : coil__strdup("the thread pool cannot start a thread"));
		coil__xbatch_add(&b, d);
		d = next;
	}
	coil__xbatch_flush(&b);
}

/* Shuts ex down without touching references. */
static int shutdown_pool(coil_executor_t *ex, bool wait, bool cancel_futures)
{
	bool start = false;
	pthread_mutex_lock(&ex->mu);
	if (!ex->closed) {
		ex->closed = true;
		coil__xdone_t *s = atomic_exchange_explicit(&ex->incoming, CLOSED_MARK,
							    memory_order_seq_cst);
		coil__xdone_t *prev = NULL;
		size_t n = 0;
		while (s) {
			coil__xdone_t *next = s->next;
			s->next = prev;
			prev = s;
			s = next;
			n++;
		}
		fifo_append(ex, prev, n, mono_ns());
	}
	while (ex->idle) {
		pool_thread_t *t = ex->idle;
		idle_remove(ex, t);
		t->wake = WAKE_CLOSE;
		pthread_cond_signal(&t->cv);
	}
	if (!cancel_futures && ex->qhead && !ex->nthreads)
		start = reserve_thread_locked(ex);
	pthread_mutex_unlock(&ex->mu);
	if (cancel_futures)
		fail_queued(ex, -ECANCELED);
	if (start)
		start_thread(ex);
	if (!wait)
		return 0;
	if (tls_pool == ex)
		return -EDEADLK;
	pthread_mutex_lock(&ex->mu);
	while (ex->nthreads)
		pthread_cond_wait(&ex->gone, &ex->mu);
	pool_thread_t *dead = ex->dead;
	ex->dead = NULL;
	pthread_mutex_unlock(&ex->mu);
	reap_dead(dead);
	return 0;
}

int coil_executor_shutdown(coil_executor_t *ex, bool wait, bool cancel_futures)
{
	if (!ex)
		return -EINVAL;
	int rc = shutdown_pool(ex, wait, cancel_futures);
	if (atomic_fetch_sub_explicit(&ex->users, 1, memory_order_acq_rel) == 1)
		mem_release(ex);
	return rc;
}

void coil_executor_release(coil_executor_t *ex)
{
	if (!ex)
		return;
	if (atomic_fetch_sub_explicit(&ex->users, 1, memory_order_acq_rel) != 1)
		return;
	if (!coil__executor_closed(ex))
		shutdown_pool(ex, true, false);
	mem_release(ex);
}

unsigned coil_executor_threads(coil_executor_t *ex)
{
	if (!ex)
		return 0;
	pthread_mutex_lock(&ex->mu);
	unsigned n = ex->nthreads;
	pthread_mutex_unlock(&ex->mu);
	return n;
}

/* Makes a job; the caller fills its future. */
static coil__xdone_t *job_new(coil_fn fn, void *arg, coil_dtor dtor)
{
	coil__xdone_t *d = coil__malloc(sizeof(*d));
	if (!d)
		return NULL;
	d->next = NULL;
	d->fut = NULL;
	d->dtor = dtor;
	d->fn = fn;
	d->arg = arg;
	d->rc = 0;
	d->is_cfut = false;
	d->type = COIL__XJOB_THREAD;
	return d;
}

/* Queues d; returns COIL_ECLOSED (d untouched) once ex is shut down. */
static int push(coil_executor_t *ex, coil__xdone_t *d)
{
	coil__xdone_t *h = atomic_load_explicit(&ex->incoming, memory_order_relaxed);
	do {
		if (h == CLOSED_MARK)
			return COIL_ECLOSED;
		d->next = h;
	} while (!atomic_compare_exchange_weak_explicit(&ex->incoming, &h, d,
							memory_order_seq_cst,
							memory_order_relaxed));
	if (!covered(atomic_load_explicit(&ex->state, memory_order_seq_cst)))
		wake_slow(ex);
	return 0;
}

int coil_executor_submit(coil_future_t **out, coil_executor_t *ex, coil_fn fn,
			 void *arg, coil_dtor result_dtor)
{
	if (!out || !fn)
		return -EINVAL;
	coil_loop_t *loop = coil__running_loop;
	if (!loop)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	int rc;
	bool dflt = !ex;
	if (dflt && !(ex = coil__executor_default(loop, &rc)))
		return rc;
	coil__xdone_t *d = job_new(fn, arg, result_dtor);
	if (!d)
		return -ENOMEM;
	coil_future_t *f;
	if ((rc = coil_future_create(&f, loop))) {
		coil__free(d, sizeof(*d));
		return rc;
	}
	d->fut = coil_future_ref(f);
	while ((rc = push(ex, d))) {
		/* A task on another worker may have replaced the default we
		 * looked up, and shut it down, since: the job goes to the
		 * one that replaced it. The same one closed means that the
		 * current default itself was shut down. */
		coil_executor_t *cur;
		if (dflt && rc == COIL_ECLOSED) {
			if ((cur = coil__executor_default(loop, &rc)) && cur != ex) {
				ex = cur;
				continue;
			}
			if (cur)
				rc = COIL_ECLOSED;
		}
		coil_future_release(f);
		coil_future_release(f);
		coil__free(d, sizeof(*d));
		return rc;
	}
	*out = f;
	return 0;
}

int coil_executor_submit_threadsafe(coil_cfuture_t **out, coil_executor_t *ex,
				    coil_fn fn, void *arg, coil_dtor result_dtor)
{
	if (!ex || !fn)
		return -EINVAL;
	coil__xdone_t *d = job_new(fn, arg, result_dtor);
	if (!d)
		return -ENOMEM;
	coil_cfuture_t *f;
	int rc = coil_cfuture_create(&f);
	if (rc) {
		coil__free(d, sizeof(*d));
		return rc;
	}
	/* The job's reference, and the caller's if it wants one. */
	d->cfut = f;
	d->is_cfut = true;
	if (out)
		coil_cfuture_ref(f);
	if ((rc = push(ex, d))) {
		if (out)
			coil_cfuture_release(f);
		coil_cfuture_release(f);
		coil__free(d, sizeof(*d));
		return rc;
	}
	if (out)
		*out = f;
	return 0;
}

int coil_run_in_executor_ex(coil_executor_t *ex, coil_fn fn, void *arg,
			    coil_dtor result_dtor, void **result)
{
	if (!fn)
		return -EINVAL;
	if (!coil_current_task())
		return COIL_EINVALSTATE;
	coil_future_t *f;
	int rc = coil_executor_submit(&f, ex, fn, arg, result_dtor);
	if (rc)
		return rc;
	void *r = NULL;
	rc = coil_await(f, &r);
	if (rc == 0) {
		if (result) {
			/* The caller takes the result over (the future's
			 * other holder, the job, let go of it when it
			 * completed it). */
			f->dtor = NULL;
			*result = r;
		}
	} else if (!coil_future_done(f)) {
		/* The task was cancelled (or closed) while it waited: a job
		 * still queued must never run now. */
		coil_future_cancel(f, NULL);
	}
	coil_future_release(f);
	return rc;
}

int coil_run_in_executor(coil_executor_t *ex, coil_fn fn, void *arg,
			 void **result)
{
	return coil_run_in_executor_ex(ex, fn, arg, NULL, result);
}
