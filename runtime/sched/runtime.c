/*
 * runtime/sched/runtime.c: the multi-core runtime (see coil/runtime.h) and
 * the scheduler's queues (DESIGN.md section 3).
 *
 * Where a runnable task sits:
 *  - one-worker loops (a standalone loop, or a runtime of one worker): the
 *    loop's ready FIFO, with the callbacks, in asyncio's order;
 *  - a worker of a multi-worker runtime: its LIFO slot (the task just woken
 *    by the running task), its Chase-Lev deque (spawned tasks and tasks
 *    woken by callbacks, timers or completions), the runtime's injection
 *    queue (tasks from foreign threads, yields, deque overflow), or, for a
 *    pinned task woken from another thread, its home loop's inbox.
 *
 * Taking work (coil__sched_next): every COIL__TICK-th step the injection
 * queue first (so that it never starves behind a busy deque); else the LIFO
 * slot (at most LIFO_MAX steps in a row, then its task goes to the
 * injection queue and the deque's tasks run), the deque's bottom (depth
 * first: a stackful task that has started holds a stack, so running the
 * newest work first keeps few stacks alive), a batch from the injection
 * queue, and at last half of a random victim's deque (its oldest, largest
 * pieces of work). At most half of the workers search at once.
 *
 * Parking: a worker that found nothing spins a little, then puts itself on
 * the idle list (nidle += 1, a seq_cst read-modify-write), looks at every
 * queue once more and sleeps in its ring's wait (until its next timer). A
 * thread that makes work visible (a seq_cst read-modify-write or fence
 * after the push) then reads nsearching and nidle: if nobody searches and
 * someone is idle it pops one worker off the idle list and writes its
 * eventfd. Either the parker's last look sees the work or the pusher sees
 * the parker: no wake-up is lost, and an idle runtime makes no system call.
 * Only a push onto an empty injection queue or deque does this; one onto a
 * non-empty queue relies on the push that made it non-empty (see
 * coil__runtime_inject and local_pushed).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"

#define cpu_relax() coil__cpu_relax()

#define LIFO_MAX 3        /* LIFO-slot steps in a row (Tokio's cap) */
#define SPIN_NS 20000     /* looking for work before parking, ns: longer
			   * than a wake-up costs here (a write to an
			   * eventfd and a ring wait: some microseconds) */
#define INJECT_BATCH 32   /* most runnables taken from the injection queue */

atomic_bool coil__mt_flag;

void coil__spin_wait(coil__spin_t *l)
{
	for (unsigned n = 0;; n++) {
		while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
			if (++n < 128)
				cpu_relax();
			else
				sched_yield(); /* the holder may be preempted */
		}
		if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
			return;
	}
}

/* --- queues ------------------------------------------------------------- */

static uint64_t rng_next(coil_loop_t *loop)
{
	/* xorshift64 */
	uint64_t x = loop->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return loop->rng = x;
}

static void notify_one(coil_runtime_t *rt);

/* After work became visible to other workers: wake one if none searches. */
static void work_pushed(coil_runtime_t *rt)
{
	/* StoreLoad: our push against a parker's nidle increment. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&rt->nidle, memory_order_relaxed) &&
	    !atomic_load_explicit(&rt->nsearching, memory_order_relaxed))
		notify_one(rt);
}

/*
 * A push onto a non-empty injection queue skips the wake-up check (a
 * seq_cst fence and two reads of lines the workers write). Why that loses
 * no wake-up: let X be the push that found the queue empty, the last one
 * before ours that did (pushes and pops are ordered by the queue's lock).
 * X's fence and read of nidle pair with every parker's seq_cst increment of
 * nidle and later read of the queue's length: a parker whose read came
 * after X's push sees a non-empty queue and does not sleep; one whose read
 * came before is seen by X, which wakes a worker (or leaves it to a
 * searcher, which wakes the next when it finds work). From X's push until
 * the queue is empty again, then, some worker is awake or about to be, and
 * the queue keeps a length other than zero for the parkers to see; the
 * queue is only emptied by a worker taking everything in it, ours among
 * them (a worker that took part of it sees what is left before it can
 * park: its own pop stored the length). So our item always has an awake
 * worker that will take it; only the fence for the first item of a burst
 * is paid, as for a loop's inbox (runtime/loop.c).
 */
bool coil__runtime_inject(coil_runtime_t *rt, coil__runnable_t *r)
{
	bool was_empty;
	if (!coil__inject_push_ex(&rt->inject, &r->node, &was_empty))
		return false;
	if (was_empty)
		work_pushed(rt);
	return true;
}

/*
 * After the owner pushed onto its own deque, which looked empty before
 * (was_empty) or not. Only a push onto an empty deque runs the wake-up
 * check (the fence): when the deque already held an item X, the push that
 * put X there ran the check, and X's fence made X visible to every worker.
 * A parker whose last look came before that fence was seen by it and woken
 * (or left to a searcher, as always); one whose look comes later sees X, as
 * long as X is there, and does not sleep. X leaves the deque only to a
 * thief from the top (the owner pops its newer items first), and a thief
 * is a worker that is awake and comes back to this deque when it runs out
 * of work: so whenever our item is in the deque some other worker is awake
 * or will be woken, and with two workers that is the only other one. With
 * more, a third worker that parked just after a thief took X and before our
 * push became visible may sleep while the owner and the thief are busy,
 * until the next push that finds a deque or the injection queue empty or a
 * searcher's wake-up: that costs parallelism for a while, never the item,
 * which its owner runs before it can park. A runtime of one worker has
 * nobody to wake.
 */
static inline void local_pushed(coil_runtime_t *rt, bool was_empty)
{
	if (was_empty && rt->n > 1)
		work_pushed(rt);
}

/* Owner: pushes a task on the worker's deque; a full deque moves half of
 * itself (the oldest) to the injection queue first, a chunk at a time
 * (one CAS on the deque's top and one push per chunk, touching only the
 * pointers). */
static void push_local(coil_loop_t *loop, coil__task_body_t *b)
{
	bool was_empty;
	if (__builtin_expect(!coil__deque_push_ex(&loop->deque, b, &was_empty), 0)) {
		enum { CHUNK = 32 };
		void *x[CHUNK];
		coil__fnode_t *nodes[CHUNK];
		size_t half = coil__deque_capacity(&loop->deque) / 2;
		for (size_t moved = 0, k; moved < half; moved += k) {
			k = coil__deque_take_oldest(&loop->deque, x,
						    half - moved < CHUNK ? half - moved : CHUNK);
			if (!k)
				break; /* thieves took the rest */
			for (size_t i = 0; i < k; i++)
				nodes[i] = &((coil__task_body_t *)x[i])->run.node;
			if (!coil__inject_push_nodes(&loop->rt->inject, nodes, k, NULL)) {
				/* Closed (only once every worker has left, so
				 * not today): back where they came from, where
				 * there is room for them now. */
				for (size_t i = 0; i < k; i++)
					coil__deque_push(&loop->deque, x[i]);
				break;
			}
		}
		/* Still full if nothing could move: this worker runs it. */
		if (!coil__deque_push(&loop->deque, b))
			coil__loop_push_ready(loop, &b->run);
		/* Work on the shared queue: the full protocol. */
		work_pushed(loop->rt);
		return;
	}
	local_pushed(loop->rt, was_empty);
}

/* A pinned task or a task of a one-worker loop: its home's FIFO. */
static void push_home(coil_loop_t *home, coil__task_body_t *b)
{
	if (coil__running_loop == home)
		coil__loop_push_ready(home, &b->run);
	else
		coil__loop_push_inbox(home, &b->run);
}

void coil__task_enqueue_new(coil_loop_t *loop, coil__task_body_t *b)
{
	if (!loop->multi || b->pins) {
		push_home(loop, b);
		return;
	}
	if (coil__running_loop == loop)
		push_local(loop, b);
	else
		coil__runtime_inject(loop->rt, &b->run);
}

void coil__task_enqueue_slow(coil__task_body_t *b)
{
	coil_loop_t *home = b->worker;
	if (!home->multi || b->pins) {
		push_home(home, b);
		return;
	}
	coil_loop_t *me = coil__running_loop;
	if (me && me->rt == home->rt) {
		if (me->current) {
			/* Woken by the running task: it runs next here. */
			coil__task_body_t *prev = me->lifo;
			me->lifo = b;
			if (prev)
				push_local(me, prev);
		} else {
			push_local(me, b);
		}
		return;
	}
	coil__runtime_inject(home->rt, &b->run);
}

void coil__task_yielded(coil_loop_t *loop, coil__task_body_t *b)
{
	if (!loop->multi || b->pins) {
		push_home(loop, b);
		return;
	}
	/* Go's Gosched: behind everything, and any worker may take it. */
	if (!coil__runtime_inject(loop->rt, &b->run))
		push_local(loop, b);
}

/* Takes up to INJECT_BATCH runnables: returns the first and puts the tasks
 * among the rest on the deque (callbacks on the ready FIFO). */
static coil__runnable_t *take_injected(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	size_t len = coil__inject_len(&rt->inject);
	if (!len)
		return NULL;
	size_t want = len / rt->n + 1;
	if (want > INJECT_BATCH)
		want = INJECT_BATCH;
	coil__fifo_t got;
	coil__fifo_init(&got);
	size_t taken = coil__inject_pop_batch(&rt->inject, &got, want);
	if (!taken)
		return NULL;
	COIL__M_ADD(loop, inject_pops, taken);
	coil__fnode_t *n = coil__fifo_pop(&got);
	coil__fnode_t *m;
	bool first = true, was_empty = false;
	while ((m = coil__fifo_pop(&got))) {
		coil__runnable_t *r = coil__container_of(m, coil__runnable_t, node);
		if (r->kind != COIL__RUN_TASK) {
			coil__loop_push_ready(loop, r);
			continue;
		}
		coil__task_body_t *b = coil__container_of(r, coil__task_body_t, run);
		bool e;
		if (__builtin_expect(!coil__deque_push_ex(&loop->deque, b, &e), 0)) {
			push_local(loop, b); /* full: half goes back, with its check */
			continue;
		}
		if (first)
			was_empty = e;
		first = false;
	}
	/* One wake-up check for the batch (its first push is the one that
	 * may have found the deque empty), not one per task. */
	local_pushed(rt, was_empty);
	return coil__container_of(n, coil__runnable_t, node);
}

static void stop_searching_slow(coil_loop_t *loop, bool found)
{
	loop->searching = false;
	/* The last searcher to find work wakes another worker, so that work
	 * left behind is picked up (Tokio's transition_from_searching). */
	if (atomic_fetch_sub_explicit(&loop->rt->nsearching, 1, memory_order_seq_cst) == 1 &&
	    found && atomic_load_explicit(&loop->rt->nidle, memory_order_relaxed))
		notify_one(loop->rt);
}

/* Inline: every step of a worker passes here, and almost never searches. */
static inline void stop_searching(coil_loop_t *loop, bool found)
{
	if (__builtin_expect(loop->searching, 0))
		stop_searching_slow(loop, found);
}

static coil__task_body_t *steal(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	if (rt->n == 1)
		return NULL; /* no victim */
	if (!loop->searching) {
		/* At most about half of the workers search at once. */
		unsigned s = atomic_load_explicit(&rt->nsearching, memory_order_relaxed);
		if (2 * s >= rt->n)
			return NULL;
		atomic_fetch_add_explicit(&rt->nsearching, 1, memory_order_seq_cst);
		loop->searching = true;
	}
	COIL__M_INC(loop, steal_attempts);
	unsigned n = rt->n;
	unsigned start = (unsigned)(rng_next(loop) % n);
	for (unsigned k = 0; k < n; k++) {
		coil_loop_t *v = rt->loops[(start + k) % n];
		if (v == loop)
			continue;
		for (int tries = 0; tries < 4 && coil__deque_len(&v->deque); tries++) {
			size_t got = coil__deque_steal_half(&v->deque, &loop->deque,
							    coil__deque_capacity(&loop->deque) / 2);
			if (got) {
				COIL__M_INC(loop, steals);
				COIL__M_ADD(loop, stolen, got);
				COIL__TRACE_STEAL(loop, v->index, got);
				return coil__deque_pop(&loop->deque);
			}
		}
	}
	return NULL;
}

void coil__sched_lifo_release(coil_loop_t *loop)
{
	coil__task_body_t *b = loop->lifo;
	if (b) {
		loop->lifo = NULL;
		loop->lifo_run = 0;
		push_local(loop, b);
	}
}

coil__runnable_t *coil__sched_next(coil_loop_t *loop)
{
	coil__task_body_t *b;
	coil__runnable_t *r;
	/* tick counts the steps since the last such look (no division). */
	if (__builtin_expect(++loop->tick >= COIL__TICK, 0)) {
		loop->tick = 0;
		if ((r = take_injected(loop))) {
			/* The slot's task is not stealable: it must not wait
			 * behind a step that may not yield. */
			coil__sched_lifo_release(loop);
			goto found;
		}
	}
	if ((b = loop->lifo)) {
		loop->lifo = NULL;
		if (loop->lifo_run++ < LIFO_MAX) {
			COIL__M_INC(loop, lifo_hits);
			goto found_task;
		}
		/* Tasks waking each other: the one due now goes behind the
		 * injection queue, so that the deque's tasks get their turn
		 * (the oldest local task would be the depth-first order's
		 * worst choice: a whole new subtree, each with a stack). */
		loop->lifo_run = 0;
		if (!coil__runtime_inject(loop->rt, &b->run))
			goto found_task;
	}
	loop->lifo_run = 0;
	/* With one worker nobody steals: the pop needs no fence. */
	b = loop->rt->n == 1 ? coil__deque_pop_unshared(&loop->deque)
			     : coil__deque_pop(&loop->deque);
	if (b)
		goto found_task;
	if ((r = take_injected(loop)))
		goto found;
	if ((b = steal(loop)))
		goto found_task;
	stop_searching(loop, false);
	return NULL;
found_task:
	r = &b->run;
found:
	stop_searching(loop, true);
	return r;
}

bool coil__runtime_has_work(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	if (loop->lifo || coil__inject_len(&rt->inject) || loop->ready.len)
		return true;
	for (unsigned i = 0; i < rt->n; i++)
		if (coil__deque_len(&rt->loops[i]->deque))
			return true;
	return false;
}

/* --- parking ------------------------------------------------------------ */

static void notify_one(coil_runtime_t *rt)
{
	pthread_mutex_lock(&rt->idle_lock);
	if (!rt->nidle_list) {
		pthread_mutex_unlock(&rt->idle_lock);
		return;
	}
	coil_loop_t *w = rt->loops[rt->idle[--rt->nidle_list]];
	w->in_idle = false;
	atomic_fetch_sub_explicit(&rt->nidle, 1, memory_order_relaxed);
	/* Under the lock: the runtime cannot be torn down meanwhile. */
	COIL__METRICS_WAKE_SENT();
	coil__ring_wake(w->ring);
	pthread_mutex_unlock(&rt->idle_lock);
}

static void idle_remove(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	pthread_mutex_lock(&rt->idle_lock);
	if (loop->in_idle) {
		for (unsigned i = 0; i < rt->nidle_list; i++) {
			if (rt->idle[i] == loop->index) {
				rt->idle[i] = rt->idle[--rt->nidle_list];
				break;
			}
		}
		loop->in_idle = false;
		atomic_fetch_sub_explicit(&rt->nidle, 1, memory_order_relaxed);
	} else {
		COIL__M_INC(loop, wakeups_received); /* notify_one took it */
	}
	pthread_mutex_unlock(&rt->idle_lock);
}

bool coil__sched_park_begin(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	/* The spin is for work other workers make, which would otherwise
	 * cost them a wake-up. A worker that is alone has none to wait for:
	 * its ring's wait catches its completions as fast, and a spin would
	 * only burn CPU an I/O-bound server pays per request (W6). */
	int64_t until = coil__clock_ns() + (loop->alone ? 0 : SPIN_NS);
	for (unsigned i = 1;; i++) {
		/* A completion of this worker's ring is work too: with
		 * DEFER_TASKRUN it only shows through the SQ flags until the
		 * next enter, which the loop's next round makes. */
		if (coil__runtime_has_work(loop) ||
		    atomic_load_explicit(&loop->inbox_len, memory_order_relaxed) ||
		    atomic_load_explicit(&rt->stop, memory_order_relaxed) == COIL__RT_STOP ||
		    (*loop->ring_inflight && coil__ring_has_events(loop->ring)))
			return false;
		cpu_relax();
		if (i % 16 == 0 && coil__clock_ns() >= until)
			break;
	}
	pthread_mutex_lock(&rt->idle_lock);
	rt->idle[rt->nidle_list++] = loop->index;
	loop->in_idle = true;
	atomic_fetch_add_explicit(&rt->nidle, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&rt->idle_lock);
	if (coil__runtime_has_work(loop) ||
	    atomic_load_explicit(&rt->stop, memory_order_relaxed) == COIL__RT_STOP) {
		idle_remove(loop);
		return false;
	}
	return true;
}

void coil__sched_park_end(coil_loop_t *loop)
{
	idle_remove(loop);
}

/* --- the runtime -------------------------------------------------------- */

static unsigned affinity_cpus(int **out)
{
	cpu_set_t set;
	*out = NULL;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	unsigned n = (unsigned)CPU_COUNT(&set);
	if (!n)
		return 1;
	int *cpus = coil__libc_malloc(n * sizeof(*cpus));
	if (!cpus)
		return n;
	unsigned k = 0;
	for (int c = 0; c < CPU_SETSIZE && k < n; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	*out = cpus;
	return k;
}

void coil__runtime_opts_read(coil_runtime_opts_t *o, const coil_runtime_opts_t *in);

/* Frees a list of handles and one of bodies (either may be NULL). */
static void pool_free_lists(void *h, coil__task_body_t *b)
{
	while (h) {
		void *next = *(void **)h;
		coil__free(h, sizeof(coil_task_t));
		h = next;
	}
	while (b) {
		coil__task_body_t *next = (coil__task_body_t *)b->run.node.next;
		coil__free(b, sizeof(*b));
		b = next;
	}
}

/* Frees the loops and the runtime itself: once shut down and no future of
 * the runtime is left. */
static void runtime_destroy(coil_runtime_t *rt)
{
	if (rt->loops) {
		for (unsigned i = 0; i < rt->n; i++)
			if (rt->loops[i])
				coil__loop_free_worker(rt->loops[i]);
		free(rt->loops);
	}
	free(rt);
}

void coil__runtime_unref_foreign(coil_runtime_t *rt)
{
	if (atomic_fetch_sub_explicit(&rt->live_foreign, 1, memory_order_acq_rel) == 1)
		runtime_destroy(rt);
}

/* Closes everything of a runtime whose workers have all left; its loops and
 * the struct itself go once no future of the runtime is left (futures,
 * tasks among them, may outlive the runtime, and they point to a loop). */
static void runtime_free(coil_runtime_t *rt)
{
	int64_t workers_live = 0;
	/* Debug mode: descriptors left open by the runtime's tasks, through
	 * worker 0's exception handler. */
	if (rt->loops && rt->loops[0])
		coil__debug_fds_check(rt, rt->loops[0]);
	/* What workers handed back to a worker that had already left. */
	if (rt->loops) {
		for (unsigned i = 0; i < rt->n; i++)
			if (rt->loops[i])
				coil__loop_own_drain_final(rt->loops[i]);
	}
	if (rt->loops) {
		for (unsigned i = 0; i < rt->n; i++) {
			if (!rt->loops[i])
				continue;
			coil__loop_close_worker(rt->loops[i]);
			pool_free_lists(rt->loops[i]->rhandles, rt->loops[i]->rbodies);
			rt->loops[i]->rhandles = NULL;
			rt->loops[i]->rbodies = NULL;
			workers_live += atomic_load_explicit(&rt->loops[i]->live,
							     memory_order_relaxed);
		}
	}
	/* What was never taken from the injection queue: callbacks handed in
	 * from other threads hear that they will not run. */
	coil__inject_close(&rt->inject);
	coil__fifo_t left;
	coil__fifo_init(&left);
	while (coil__inject_pop_batch(&rt->inject, &left, 1024)) {
		coil__fnode_t *n;
		while ((n = coil__fifo_pop(&left))) {
			coil__runnable_t *r = coil__container_of(n, coil__runnable_t, node);
			if (r->kind == COIL__RUN_HANDLE) {
				coil_handle_t *h = coil__container_of(r, coil_handle_t, run);
				if (h->dropped)
					h->dropped(h->arg);
				coil__free_aligned64(h, sizeof(*h));
			}
		}
	}
	coil__inject_fini(&rt->inject);
	for (unsigned i = 0; i < rt->nfhandles; i++)
		pool_free_lists(rt->fhandles[i].head, NULL);
	for (unsigned i = 0; i < rt->nfbodies; i++)
		pool_free_lists(NULL, rt->fbodies[i].head);
	rt->nfhandles = rt->nfbodies = 0;
	free(rt->any);
	free(rt->idle);
	free(rt->threads);
	free(rt->thread_created);
	free(rt->want_run);
	free(rt->in_loop);
	free(rt->cpus);
	if (rt->stop_pipe[0] >= 0) {
		close(rt->stop_pipe[0]);
		close(rt->stop_pipe[1]);
	}
	pthread_mutex_destroy(&rt->idle_lock);
	pthread_mutex_destroy(&rt->lock);
	pthread_mutex_destroy(&rt->wait_mu);
	pthread_cond_destroy(&rt->cond);
	pthread_cond_destroy(&rt->park_cond);
	/* The workers' counts join the foreign one, without the bias: from
	 * here on whoever takes it to zero frees what is left. */
	int64_t d = workers_live - COIL__RT_BIAS;
	if (atomic_fetch_add_explicit(&rt->live_foreign, d, memory_order_acq_rel) + d == 0)
		runtime_destroy(rt);
}

int coil_runtime_new(coil_runtime_t **out, const coil_runtime_opts_t *opts)
{
	if (!out)
		return -EINVAL;
	coil_runtime_opts_t o;
	coil__runtime_opts_read(&o, opts);
	/* Beyond it the arrays sized by the count would be gigabytes, and a
	 * worker index would not fit the int of coil_current_worker: a clear
	 * error before anything is made, not a ring per worker until the
	 * descriptors run out. */
	if (o.workers > COIL__MAX_WORKERS)
		return -EINVAL;
	int *cpus;
	unsigned ncpus = affinity_cpus(&cpus);
	unsigned n = o.workers;
	if (!n) {
		const char *env = getenv("COIL_WORKERS");
		char *end;
		long v = env ? strtol(env, &end, 10) : 0;
		n = env && *env && !*end && v > 0 && v <= COIL__MAX_WORKERS ? (unsigned)v : ncpus;
	}
	if (o.virtual_clock && n > 1) {
		free(cpus);
		return -EINVAL;
	}
	/* Aligned for the cache-line groups of struct coil_runtime. */
	coil_runtime_t *rt = coil__libc_aligned_alloc(_Alignof(coil_runtime_t),
					   (sizeof(*rt) + 63) & ~(size_t)63);
	if (!rt) {
		free(cpus);
		return -ENOMEM;
	}
	memset(rt, 0, sizeof(*rt));
	atomic_init(&rt->live_foreign, COIL__RT_BIAS);
	rt->n = n;
	rt->cpus = cpus;
	rt->ncpus = cpus ? ncpus : 0;
	rt->pin = o.pin_workers;
	rt->stop_pipe[0] = rt->stop_pipe[1] = -1;
	snprintf(rt->name, sizeof(rt->name), "%.10s", o.thread_name ? o.thread_name : "coil");
	pthread_mutex_init(&rt->idle_lock, NULL);
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->wait_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&rt->park_cond, NULL);
	coil__inject_init(&rt->inject);
	/* From now on objects may be shared between threads: every lock is
	 * taken for real (it is never turned off again). */
	coil__cancel_fence_setup(); /* before any task may wait on the mt paths */
	atomic_store_explicit(&coil__mt_flag, true, memory_order_seq_cst);
	int rc = -ENOMEM;
	rt->loops = coil__libc_calloc(n, sizeof(*rt->loops));
	rt->idle = coil__libc_calloc(n, sizeof(*rt->idle));
	rt->threads = coil__libc_calloc(n, sizeof(*rt->threads));
	rt->thread_created = coil__libc_calloc(n, sizeof(*rt->thread_created));
	rt->want_run = coil__libc_calloc(n, sizeof(*rt->want_run));
	rt->in_loop = coil__libc_calloc(n, sizeof(*rt->in_loop));
	/* Aligned for the cache-line groups of struct coil_loop. */
	rt->any = coil__libc_aligned_alloc(_Alignof(coil_loop_t), (sizeof(*rt->any) + 63) & ~(size_t)63);
	if (rt->any)
		memset(rt->any, 0, sizeof(*rt->any));
	int p[2];
	if (!rt->loops || !rt->idle || !rt->threads || !rt->thread_created ||
	    !rt->want_run || !rt->in_loop || !rt->any)
		goto fail;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = -errno;
		goto fail;
	}
	rt->stop_pipe[0] = p[0];
	rt->stop_pipe[1] = p[1];
	rt->any->any = true;
	rt->any->rt = rt;
	rt->any->multi = true;
	rt->any->closed = false;
	for (unsigned i = 0; i < n; i++)
		if ((rc = coil__loop_new_worker(&rt->loops[i], rt, i, &o)))
			goto fail;
	*out = rt;
	return 0;
fail:
	runtime_free(rt);
	return rc;
}

unsigned coil_runtime_workers(const coil_runtime_t *rt)
{
	return rt->n;
}

coil_loop_t *coil_runtime_loop(coil_runtime_t *rt, int i)
{
	if (!rt)
		return NULL;
	if (i == COIL_ANY_WORKER)
		return rt->any;
	return i >= 0 && (unsigned)i < rt->n ? rt->loops[i] : NULL;
}

coil_runtime_t *coil_loop_runtime(const coil_loop_t *loop)
{
	return loop ? loop->rt : NULL;
}

coil_runtime_t *coil_current_runtime(void)
{
	return coil__running_loop ? coil__running_loop->rt : NULL;
}

int coil_current_worker(void)
{
	coil_loop_t *l = coil__running_loop;
	return l && l->rt ? (int)l->index : -1;
}

int coil_runtime_spawn(coil_runtime_t *rt, coil_task_t **out, coil_fn fn,
		       void *arg, const coil_spawn_opts_t *opts)
{
	if (!rt || !fn)
		return -EINVAL;
	if (atomic_load_explicit(&rt->shutting_down, memory_order_acquire))
		return COIL_ECLOSED;
	coil_loop_t *me = coil__running_loop;
	/* On a worker: spawn there (its deque is where thieves look). From
	 * elsewhere: listed on worker 0, queued on the injection queue. A
	 * shutdown that begins meanwhile is caught in coil__task_create. */
	coil_loop_t *loop = me && me->rt == rt ? me : rt->loops[0];
	return coil__task_create(loop, out, fn, arg, opts, true);
}

void coil__runtime_pool_give(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	coil__spin_lock(&rt->fpool_lock);
	if (loop->rhandles && rt->nfhandles < COIL__FPOOL_BATCHES) {
		rt->fhandles[rt->nfhandles++] = (struct coil__pool_batch){ loop->rhandles,
									   loop->nrhandles };
		loop->rhandles = NULL;
	}
	if (loop->rbodies && rt->nfbodies < COIL__FPOOL_BATCHES) {
		rt->fbodies[rt->nfbodies++] = (struct coil__pool_batch){ loop->rbodies,
									 loop->nrbodies };
		loop->rbodies = NULL;
	}
	coil__spin_unlock(&rt->fpool_lock);
	/* The pool is full: what is left goes back to the allocator. */
	pool_free_lists(loop->rhandles, loop->rbodies);
	loop->rhandles = NULL;
	loop->rbodies = NULL;
	loop->nrhandles = loop->nrbodies = 0;
}

bool coil__runtime_pool_take(coil_runtime_t *rt, struct coil__pool_batch *handles,
			     struct coil__pool_batch *bodies)
{
	bool any = false;
	coil__spin_lock(&rt->fpool_lock);
	if (handles && rt->nfhandles) {
		*handles = rt->fhandles[--rt->nfhandles];
		any = true;
	}
	if (bodies && rt->nfbodies) {
		*bodies = rt->fbodies[--rt->nfbodies];
		any = true;
	}
	coil__spin_unlock(&rt->fpool_lock);
	return any;
}

/* --- worker threads ---------------------------------------------------- */

/*
 * Enters a worker's loop on its thread. The loop's ring must be set up
 * again for this thread (coil__loop_enter), which needs a descriptor: when
 * the process has none left (EMFILE) or memory is short, the worker says
 * so once and tries again, backing off up to 100 ms, until it can or the
 * runtime is stopped (a shutdown's finishing rounds keep it trying: its
 * tasks must end). Its tasks wait meanwhile; other workers may steal
 * them.
 */
static int enter_worker(coil_runtime_t *rt, coil_loop_t *loop, unsigned i)
{
	bool told = false;
	long wait_ms = 1;
	for (;;) {
		int rc = coil__loop_enter(loop);
		if (rc == 0 || rc == COIL_ECLOSED || rc == -EBUSY)
			return rc;
		if (atomic_load_explicit(&rt->stop, memory_order_acquire) == COIL__RT_STOP)
			return rc;
		if (!told) {
			char msg[160];
			int n = snprintf(msg, sizeof(msg),
					 "coil: worker %u cannot set up its io_uring ring (%s); "
					 "retrying until it can\n", i, strerror(-rc));
			if (n > 0) {
				ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
				(void)w;
			}
			told = true;
		}
		struct timespec ts = { 0, wait_ms * 1000000L };
		nanosleep(&ts, NULL);
		if (wait_ms < 100)
			wait_ms *= 2;
	}
}

static void wake_all(coil_runtime_t *rt)
{
	for (unsigned i = 0; i < rt->n; i++)
		coil__ring_wake(rt->loops[i]->ring);
}

/* p is the worker's loop, which names its runtime and index: starting a
 * thread allocates nothing, so a shutdown out of memory still runs every
 * worker to end the tasks. */
static void *worker_main(void *p)
{
	coil_loop_t *loop = p;
	coil_runtime_t *rt = loop->rt;
	unsigned i = loop->index;
	char name[32];
	snprintf(name, sizeof(name), "%s-%u", rt->name, i);
	name[15] = '\0'; /* the kernel's limit */
	pthread_setname_np(pthread_self(), name);
	if (rt->pin && rt->ncpus) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(rt->cpus[i % rt->ncpus], &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	pthread_mutex_lock(&rt->lock);
	for (;;) {
		while (!rt->want_run[i] && !rt->exiting)
			pthread_cond_wait(&rt->park_cond, &rt->lock);
		if (rt->exiting)
			break;
		rt->in_loop[i] = true;
		unsigned gen = rt->run_gen;
		pthread_mutex_unlock(&rt->lock);
		if (enter_worker(rt, loop, i) == 0) {
			coil__worker_loop(loop);
			coil__loop_leave(loop);
		}
		pthread_mutex_lock(&rt->lock);
		rt->in_loop[i] = false;
		/* A stop seen late, after the runtime was started again
		 * (block_on or start after a stop): that start's want_run
		 * stands, and the worker runs its loop again. */
		if (rt->run_gen == gen)
			rt->want_run[i] = false;
		pthread_cond_broadcast(&rt->park_cond);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

/* Under rt->lock: has workers from..n-1 run their loops in background
 * threads, starting the threads that do not exist yet. state: COIL__RT_RUN,
 * or COIL__RT_FINISH for shutdown, which coil_runtime_stop must not end. */
static int start_threads(coil_runtime_t *rt, unsigned from, int state)
{
	rt->run_gen++;
	atomic_store_explicit(&rt->stop, state, memory_order_seq_cst);
	int rc = 0;
	for (unsigned i = from; i < rt->n; i++) {
		rt->want_run[i] = true;
		if (rt->thread_created[i])
			continue;
		/* Workers block nothing: signals go to the program's threads. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		/* A thread's stack is an allocation too: the tests make it
		 * fail as pthread_create does without memory for one. */
		int e = coil__fault() ? EAGAIN
				      : pthread_create(&rt->threads[i], NULL, worker_main, rt->loops[i]);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e) {
			rt->want_run[i] = false;
			rc = -e;
			break;
		}
		rt->thread_created[i] = true;
	}
	pthread_cond_broadcast(&rt->park_cond);
	return rc;
}

/* Under rt->lock: makes every background worker leave its loop and waits
 * until they are all parked. */
static void park_threads(coil_runtime_t *rt)
{
	atomic_store_explicit(&rt->stop, COIL__RT_STOP, memory_order_seq_cst);
	wake_all(rt);
	for (unsigned i = 0; i < rt->n; i++) {
		rt->want_run[i] = false;
		while (rt->in_loop[i])
			pthread_cond_wait(&rt->park_cond, &rt->lock);
	}
}

/* Under rt->lock: parks the workers, then ends and joins their threads. */
static void exit_threads(coil_runtime_t *rt)
{
	park_threads(rt);
	rt->exiting = true;
	pthread_cond_broadcast(&rt->park_cond);
	pthread_mutex_unlock(&rt->lock);
	for (unsigned i = 0; i < rt->n; i++)
		if (rt->thread_created[i])
			pthread_join(rt->threads[i], NULL);
	pthread_mutex_lock(&rt->lock);
	for (unsigned i = 0; i < rt->n; i++)
		rt->thread_created[i] = false;
}

int coil_runtime_start(coil_runtime_t *rt)
{
	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	if (rt->started || rt->block_on_active) {
		pthread_mutex_unlock(&rt->lock);
		return -EBUSY;
	}
	int rc = start_threads(rt, 0, COIL__RT_RUN);
	if (rc)
		park_threads(rt);
	else
		rt->started = true;
	pthread_mutex_unlock(&rt->lock);
	return rc;
}

/* arg: the block_on it ends (rt->block_on_gen). A done-callback already
 * queued when block_on removes it (a stop as the main task ended) runs
 * all the same, at worker 0's next run: it must not stop a later
 * block_on's, or a started runtime's, worker 0. */
static void main_done(coil_future_t *f, void *arg)
{
	coil_loop_t *loop = f->loop;
	if ((uintptr_t)arg == loop->rt->block_on_gen)
		loop->stopping = true;
}

int coil_runtime_block_on(coil_runtime_t *rt, coil_fn fn, void *arg,
			  void **result)
{
	if (!rt || !fn)
		return -EINVAL;
	if (coil__running_loop)
		return -EBUSY;
	pthread_mutex_lock(&rt->lock);
	if (rt->started || rt->block_on_active) {
		pthread_mutex_unlock(&rt->lock);
		return -EBUSY;
	}
	rt->block_on_active = true;
	void *gen = (void *)++rt->block_on_gen;
	int rc = start_threads(rt, 1, COIL__RT_RUN);
	pthread_mutex_unlock(&rt->lock);
	coil_loop_t *loop = rt->loops[0];
	coil_task_t *t = NULL;
	if (rc == 0)
		rc = coil__loop_enter(loop);
	if (rc == 0) {
		rc = coil_task_factory_default(loop, &t, fn, arg, NULL);
		if (rc == 0)
			rc = coil_future_add_done_callback(&t->fut, main_done, gen);
		if (rc == 0)
			coil__worker_loop(loop);
		coil__loop_leave(loop);
	}
	if (t) {
		if (rc == 0) {
			if (!coil_future_done(&t->fut)) {
				rc = -EINTR;
			} else {
				void *res = NULL;
				rc = coil_future_result(&t->fut, &res);
				if (rc == 0 && result) {
					t->fut.dtor = NULL; /* the caller owns it */
					*result = res;
				}
			}
		}
		coil_future_remove_done_callback(&t->fut, main_done, gen);
		coil_task_detach(t);
	}
	pthread_mutex_lock(&rt->lock);
	rt->block_on_active = false;
	pthread_mutex_unlock(&rt->lock);
	return rc;
}

void coil_runtime_stop(coil_runtime_t *rt)
{
	/* Async-signal-safe: an atomic compare-and-swap and write()s. Not
	 * once shutdown runs the workers to end the tasks (COIL__RT_FINISH):
	 * they would leave their loops with tasks left, which nobody would
	 * run (a shutdown without a time limit would wait for ever). One
	 * atomic operation: a store after a check could land after shutdown
	 * began. */
	int v = COIL__RT_RUN;
	if (!atomic_compare_exchange_strong_explicit(&rt->stop, &v, COIL__RT_STOP,
						     memory_order_seq_cst, memory_order_seq_cst) &&
	    v == COIL__RT_FINISH)
		return;
	for (unsigned i = 0; i < rt->n; i++)
		coil__ring_wake(rt->loops[i]->ring);
	char c = 1;
	ssize_t n = write(rt->stop_pipe[1], &c, 1);
	(void)n;
}

void coil_runtime_wait_stopped(coil_runtime_t *rt)
{
	while (atomic_load_explicit(&rt->stop, memory_order_acquire) != COIL__RT_STOP) {
		fd_set r;
		FD_ZERO(&r);
		FD_SET(rt->stop_pipe[0], &r);
		struct timeval tv = { 1, 0 };
		select(rt->stop_pipe[0] + 1, &r, NULL, NULL, &tv);
		/* The bytes of stops before the runtime ran again: drained,
		 * or select would return at once for ever (a busy loop). A
		 * stop stores the flag before it writes, so a byte drained
		 * here after the flag was read is a stop the next look sees;
		 * another waiter about to select may then sleep out its
		 * second before it sees it. */
		if (atomic_load_explicit(&rt->stop, memory_order_acquire) != COIL__RT_STOP) {
			char buf[64];
			while (read(rt->stop_pipe[0], buf, sizeof(buf)) > 0)
				;
		}
	}
}

static bool wait_tasks_locked(coil_runtime_t *rt, int64_t deadline);

static size_t live_tasks(coil_runtime_t *rt)
{
	size_t n = 0;
	for (unsigned i = 0; i < rt->n; i++)
		n += coil__loop_live_tasks(rt->loops[i]);
	return n;
}

void coil__runtime_tasks_gone(coil_runtime_t *rt)
{
	if (!atomic_load_explicit(&rt->waiting, memory_order_acquire))
		return;
	pthread_mutex_lock(&rt->wait_mu);
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->wait_mu);
}

/* Waits until no task is left or `deadline` (CLOCK_MONOTONIC ns, -1: none).
 * Returns whether none is left. */
static bool wait_tasks(coil_runtime_t *rt, int64_t deadline)
{
	pthread_mutex_lock(&rt->wait_mu);
	atomic_store_explicit(&rt->waiting, true, memory_order_seq_cst);
	bool none = wait_tasks_locked(rt, deadline);
	atomic_store_explicit(&rt->waiting, false, memory_order_relaxed);
	pthread_mutex_unlock(&rt->wait_mu);
	return none;
}

static bool wait_tasks_locked(coil_runtime_t *rt, int64_t deadline)
{
	for (;;) {
		if (!live_tasks(rt))
			return true;
		int64_t now = coil__clock_ns();
		if (deadline >= 0 && now >= deadline)
			return false;
		/* Woken by the last task's end; the slice bounds a wake-up
		 * that slipped between the count and the wait. */
		int64_t until = now + 20 * 1000000;
		if (deadline >= 0 && deadline < until)
			until = deadline;
		struct timespec ts = { until / COIL_NSEC_PER_SEC, until % COIL_NSEC_PER_SEC };
		pthread_cond_timedwait(&rt->cond, &rt->wait_mu, &ts);
	}
}

typedef struct finish_arg {
	coil_loop_t *loop;
	int round;
} finish_arg_t;

static void finish_round(void *p)
{
	finish_arg_t *a = p;
	coil__loop_finish_tasks(a->loop, a->round);
	free(a);
}

/* The round's callback was still queued when the loops closed. */
static void finish_dropped(void *p)
{
	free(p);
}

int coil_runtime_shutdown(coil_runtime_t *rt, int64_t wait_ns)
{
	/* Refused before anything is touched: the caller can shut down
	 * again with a wait that means what it wants. */
	if (!rt || (wait_ns < 0 && wait_ns != COIL_FOREVER))
		return -EINVAL;
	if (coil__running_loop && coil__running_loop->rt == rt)
		return -EBUSY;
	pthread_mutex_lock(&rt->lock);
	if (rt->block_on_active) {
		pthread_mutex_unlock(&rt->lock);
		return -EBUSY;
	}
	/* Every worker in a background thread, whether it was started,
	 * stopped (coil_runtime_stop) or driven by block_on until now. */
	park_threads(rt);
	int rc = start_threads(rt, 0, COIL__RT_FINISH);
	if (rc) {
		/* Without all of its workers the runtime cannot end its tasks
		 * (one may be pinned to the worker that has no thread): it is
		 * left stopped, with its tasks, for the caller to shut down
		 * again. */
		park_threads(rt);
		pthread_mutex_unlock(&rt->lock);
		return rc;
	}
	rt->block_on_active = true; /* keeps block_on and start out */
	pthread_mutex_unlock(&rt->lock);
	int64_t now = coil__clock_ns();
	int64_t deadline = wait_ns < 0 ? -1 : (wait_ns > INT64_MAX - now ? INT64_MAX : now + wait_ns);
	bool clean = wait_tasks(rt, deadline);
	atomic_store_explicit(&rt->shutting_down, true, memory_order_seq_cst);
	/* A spawn from outside the runtime's tasks checks the flag under its
	 * loop's list lock as it lists its task (coil__task_create): once
	 * every list lock has been taken after the flag was set, each such
	 * spawn either listed its task before, and is counted below, or
	 * refuses. Those tasks are waited for, or cancelled, as the others:
	 * without this, a task made just after the last count was never run
	 * nor cancelled, and whoever waited for it (a concurrent future of
	 * coil_run_coroutine_threadsafe) waited for ever. */
	for (unsigned i = 0; i < rt->n; i++) {
		coil__lock(&rt->loops[i]->tasks_lock);
		coil__unlock(&rt->loops[i]->tasks_lock);
	}
	if (clean)
		clean = wait_tasks(rt, deadline);
	/* Cancel what is left (four rounds), then close what keeps ignoring
	 * it (four more), each worker on its own thread. */
	for (int round = 0; !clean && round < 8; round++) {
		for (unsigned i = 0; i < rt->n; i++) {
			finish_arg_t *a = coil__libc_malloc(sizeof(*a));
			if (!a)
				continue;
			a->loop = rt->loops[i];
			a->round = round;
			if (coil__loop_call_soon_threadsafe_ex(rt->loops[i], finish_round,
							       finish_dropped, a))
				free(a);
		}
		if (wait_tasks(rt, coil__clock_ns() + (round < 4 ? 2000 : 500) * (int64_t)1000000))
			break;
	}
	/* The default executor's last jobs complete on the loops, which
	 * still run. */
	coil__executor_owner_close(rt);
	size_t left = live_tasks(rt);
	pthread_mutex_lock(&rt->lock);
	exit_threads(rt);
	pthread_mutex_unlock(&rt->lock);
	/* No worker runs a callback any more that could ask for a default. */
	coil__executor_owner_forget(rt);
	if (left)
		fprintf(stderr, "coil: runtime shut down with %zu task(s) that ignored "
			"cancellation and close; their memory is abandoned\n", left);
	runtime_free(rt);
	return clean ? 0 : -ETIMEDOUT;
}
