/*
 * runtime/loop.c: the event loop (see coil/loop.h).
 *
 * One iteration (run_once), as asyncio's _run_once:
 *   1. take what other threads handed over (the inbox);
 *   2. wait in the ring: not at all if something is ready, until the next
 *      timer if one is pending, else until a completion or a wake-up;
 *   3. with the virtual clock, jump to the next deadline when nothing is
 *      ready;
 *   4. move due timers to the tail of the ready queue;
 *   5. run the runnables that are ready now, and only those: what they
 *      schedule runs in the next iteration. That is what makes stop() let
 *      the current iteration finish and leave later callbacks for the next
 *      run.
 *
 * Runnables are handles (call_soon, due timers), task steps and
 * done-callbacks, all in one FIFO so that their relative order is asyncio's.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "core.h"

__thread coil_loop_t *coil__running_loop;
static __thread coil_loop_t *current_loop;

int64_t coil__clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * COIL_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t coil__loop_now(const coil_loop_t *loop)
{
	return loop->virtual_clock ? loop->vnow : coil__clock_ns();
}

void coil_runtime_opts_init(coil_runtime_opts_t *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

/* Reads the caller's options field by field: a caller built against an
 * older header passes a smaller struct. */
static void opts_read(coil_runtime_opts_t *o, const coil_runtime_opts_t *in)
{
	coil_runtime_opts_init(o);
	if (!in)
		return;
	size_t n = in->size < sizeof(*o) ? in->size : sizeof(*o);
	if (n > sizeof(o->size))
		memcpy((char *)o + sizeof(o->size), (const char *)in + sizeof(o->size),
		       n - sizeof(o->size));
	o->size = sizeof(*o);
}

static int loop_new(coil_loop_t **out, const coil_runtime_opts_t *o,
		    bool portable)
{
	coil_loop_t *loop = coil__calloc_aligned64(sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	int rc = coil__ring_create(&loop->ring, o->ring_entries, portable);
	if (rc) {
		coil__free_aligned64(loop, sizeof(*loop));
		return rc;
	}
	coil__fifo_init(&loop->ready);
	coil__fifo_init(&loop->inbox);
	coil__list_init(&loop->tasks);
	coil__list_init(&loop->own);
	coil__list_init(&loop->gens);
	atomic_init(&loop->inbox_lock.v, 0);
	atomic_init(&loop->gens_lock.v, 0);
	atomic_init(&loop->refs, 1);
	loop->ring_tid = gettid();
	loop->ring_inflight = coil__ring_inflight_ptr(loop->ring);
	loop->alone = true; /* a runtime's worker says otherwise */
	coil__objcache_init(&loop->task_cache, sizeof(coil_task_t), coil__cache_max);
	coil__objcache_init(&loop->future_cache, sizeof(coil_future_t), coil__cache_max);
	coil__objcache_init(&loop->handle_cache, sizeof(coil_handle_t), coil__cache_max);
	coil__objcache_init(&loop->donecb_cache, sizeof(coil__donecb_t), coil__cache_max);
	loop->virtual_clock = o->virtual_clock;
	loop->stack_size = o->stack_size;
	if (loop->virtual_clock)
		loop->vnow = coil__clock_ns();
	loop->debug = o->debug || coil__debug_env();
	coil__debug_loop_register(loop);
	*out = loop;
	return 0;
}

int coil_new_event_loop_opts(coil_loop_t **out, const coil_runtime_opts_t *in)
{
	if (!out)
		return -EINVAL;
	coil_runtime_opts_t o;
	opts_read(&o, in);
	return loop_new(out, &o, false);
}

void coil__runtime_opts_read(coil_runtime_opts_t *o, const coil_runtime_opts_t *in)
{
	opts_read(o, in);
}

int coil__loop_new_worker(coil_loop_t **out, coil_runtime_t *rt, unsigned index,
			  const coil_runtime_opts_t *o)
{
	coil_loop_t *loop;
	/* Worker 0 runs on block_on's caller and, at other times, on a
	 * thread of the runtime's: its ring must be able to move. */
	int rc = loop_new(&loop, o, index == 0);
	if (rc)
		return rc;
	loop->rt = rt;
	loop->index = index;
	loop->multi = true; /* depth-first deques even with one worker */
	loop->alone = rt->n == 1;
	loop->rng = 0x9E3779B97F4A7C15ull * (index + 1);
	loop->ended = coil__libc_calloc(rt->n, sizeof(*loop->ended));
	if (!loop->ended)
		rc = -ENOMEM;
	else if (loop->multi)
		rc = coil__deque_init(&loop->deque, 1024);
	if (rc) {
		free(loop->ended);
		coil__debug_loop_unregister(loop);
		coil__ring_destroy(loop->ring);
		coil__free_aligned64(loop, sizeof(*loop));
		return rc;
	}
	*out = loop;
	return 0;
}

int coil_new_event_loop(coil_loop_t **out)
{
	return coil_new_event_loop_opts(out, NULL);
}

void coil_set_event_loop(coil_loop_t *loop)
{
	current_loop = loop;
}

coil_loop_t *coil_get_event_loop(void)
{
	return coil__running_loop ? coil__running_loop : current_loop;
}

coil_loop_t *coil_get_running_loop(void)
{
	return coil__running_loop;
}

double coil_loop_time(const coil_loop_t *loop)
{
	return (double)coil_loop_time_ns(loop) / 1e9;
}

int64_t coil_loop_time_ns(const coil_loop_t *loop)
{
	if (!loop)
		loop = coil_get_event_loop();
	return loop ? coil__loop_now(loop) : coil__clock_ns();
}

/* --- runnables, timers, handles --------------------------------------- */

int coil__loop_add_timer(coil_loop_t *loop, coil__timer_t *t, int64_t when)
{
	t->when = when;
	t->seq = loop->timer_seq++;
	t->idx = UINT32_MAX;
	return coil__heap_push(&loop->timers, t);
}

void coil__loop_del_timer(coil_loop_t *loop, coil__timer_t *t)
{
	coil__heap_remove(&loop->timers, t);
}

/*
 * Handles and threads. The loop holds a reference while the handle is
 * scheduled, the caller of call_soon/call_later/call_at one if it asked for
 * the handle. The caller may cancel and release it on any thread: a task
 * that took it may have moved to another worker since. So `refs` is
 * atomic, and the handle leaves COIL__H_PENDING exactly once, by a
 * compare-and-swap: to CANCELLED by a canceller, to DONE by the loop that
 * is about to run it (or drops it at close). Whoever wins decides: the
 * callback runs, or the cancellation returns true, never both. A handle
 * that only the loop holds (no caller's reference, refs 1) cannot be
 * cancelled, so it pays for neither locked instruction: the common
 * call_soon without a handle, and the thread-safe calls.
 *
 * The heap belongs to the loop's thread: a timer cancelled there leaves it
 * at once; one cancelled elsewhere is taken out by timer_reap, posted to
 * the loop with a reference of its own (until then it stays in the heap,
 * where firing it only drops it).
 */
static void handle_unref(coil_handle_t *h)
{
	/* Acquire: another thread's cancel and release happened before. */
	if (atomic_load_explicit(&h->refs, memory_order_acquire) == 1 ||
	    atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
		coil__obj_put(handle_cache, sizeof(coil_handle_t), h);
}

/* The loop's claim before it runs or drops h: true if h was pending. */
static bool handle_claim(coil_handle_t *h)
{
	if (atomic_load_explicit(&h->refs, memory_order_acquire) == 1) {
		/* Only the loop holds it: nobody else can cancel it now. */
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != COIL__H_PENDING)
			return false;
		atomic_store_explicit(&h->state, COIL__H_DONE, memory_order_relaxed);
		return true;
	}
	uint8_t s = COIL__H_PENDING;
	return atomic_compare_exchange_strong_explicit(&h->state, &s, COIL__H_DONE,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

static coil_handle_t *handle_new(coil_loop_t *loop, coil_cb cb, void *arg,
				 coil_handle_t **out)
{
	coil_handle_t *h = coil__obj_get(handle_cache, sizeof(coil_handle_t));
	if (!h)
		return NULL;
	h->run.kind = COIL__RUN_HANDLE;
	h->loop = loop;
	h->cb = cb;
	h->arg = arg;
	atomic_store_explicit(&h->refs, out ? 2 : 1, memory_order_relaxed);
	h->dropped = NULL;
	atomic_store_explicit(&h->state, COIL__H_PENDING, memory_order_relaxed);
	h->is_timer = false;
	h->timer.kind = COIL__TIMER_HANDLE;
	h->timer.idx = UINT32_MAX;
	h->timer.when = -1;
	if (out)
		*out = h;
	return h;
}

int coil_loop_call_soon(coil_loop_t *loop, coil_cb cb, void *arg,
			coil_handle_t **out)
{
	if (!loop || !cb)
		return -EINVAL;
	if (loop->rt && coil__running_loop != loop) {
		/* Another worker's (or a plain thread's) call: a task that
		 * kept a loop pointer across an await may be elsewhere now. */
		if (out)
			return -EXDEV;
		return coil__loop_call_soon_threadsafe_ex(loop, cb, NULL, arg);
	}
	if (loop->closed)
		return COIL_ECLOSED;
	coil_handle_t *h = handle_new(loop, cb, arg, out);
	if (!h)
		return -ENOMEM;
	coil__loop_push_ready(loop, &h->run);
	return 0;
}

int coil_loop_call_at(coil_loop_t *loop, int64_t when_ns, coil_cb cb,
		      void *arg, coil_handle_t **out)
{
	if (!loop || !cb || loop->any)
		return -EINVAL;
	if (loop->rt && coil__running_loop != loop)
		return -EXDEV; /* timers belong to their loop's thread */
	if (loop->closed)
		return COIL_ECLOSED;
	coil_handle_t *h = handle_new(loop, cb, arg, NULL);
	if (!h)
		return -ENOMEM;
	h->is_timer = true;
	int rc = coil__loop_add_timer(loop, &h->timer, when_ns);
	if (rc) {
		coil__obj_put(handle_cache, sizeof(coil_handle_t), h);
		return rc;
	}
	if (out) {
		/* Not shared yet: the loop's thread alone has seen it. */
		atomic_store_explicit(&h->refs, 2, memory_order_relaxed);
		*out = h;
	}
	return 0;
}

int coil_loop_call_later(coil_loop_t *loop, int64_t delay_ns, coil_cb cb,
			 void *arg, coil_handle_t **out)
{
	if (!loop)
		return -EINVAL;
	if (delay_ns < 0)
		delay_ns = 0;
	int64_t now = coil__loop_now(loop);
	int64_t when = delay_ns > INT64_MAX - now ? INT64_MAX : now + delay_ns;
	return coil_loop_call_at(loop, when, cb, arg, out);
}

/* On the loop's thread: takes a cancelled timer out of the heap if it is
 * still there, O(log n), with the loop's reference. Once due, it sits in
 * the ready queue, which skips it. */
static void timer_take_out(coil_handle_t *h)
{
	if (h->timer.idx != UINT32_MAX) {
		coil__loop_del_timer(h->loop, &h->timer);
		handle_unref(h);
	}
}

/* Posted by a canceller on another thread, with a reference of its own. */
static void timer_reap(void *arg)
{
	coil_handle_t *h = arg;
	timer_take_out(h);
	handle_unref(h);
}

/* The loop closed first: its close takes the timer out of the heap. */
static void timer_reap_dropped(void *arg)
{
	handle_unref(arg);
}

bool coil_handle_cancel(coil_handle_t *h)
{
	uint8_t s = COIL__H_PENDING;
	if (!atomic_compare_exchange_strong_explicit(&h->state, &s, COIL__H_CANCELLED,
						     memory_order_acq_rel,
						     memory_order_acquire))
		return false;
	if (!h->is_timer)
		return true;
	coil_loop_t *loop = h->loop;
	if (!loop->rt || coil__running_loop == loop) {
		timer_take_out(h);
		return true;
	}
	/* Our reference keeps h alive; the one taken here is timer_reap's.
	 * If the post fails (the loop closed, or no memory), the timer is
	 * dropped with the loop's heap, or skipped when it fires. */
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
	if (coil__loop_call_soon_threadsafe_ex(loop, timer_reap, timer_reap_dropped, h))
		handle_unref(h);
	return true;
}

bool coil_handle_cancelled(const coil_handle_t *h)
{
	return atomic_load_explicit(&((coil_handle_t *)h)->state, memory_order_acquire) ==
	       COIL__H_CANCELLED;
}

int64_t coil_handle_when(const coil_handle_t *h)
{
	return h->is_timer ? h->timer.when : -1;
}

void coil_handle_release(coil_handle_t *h)
{
	if (h)
		handle_unref(h);
}

size_t coil_loop_ready_count(const coil_loop_t *loop)
{
	return loop->ready.len;
}

size_t coil_loop_timer_count(const coil_loop_t *loop)
{
	return loop->timers.n;
}

/* --- cross-thread entry ----------------------------------------------- */

int coil_loop_call_soon_threadsafe(coil_loop_t *loop, coil_cb cb, void *arg)
{
	return coil__loop_call_soon_threadsafe_ex(loop, cb, NULL, arg);
}

/*
 * Wakes the loop if it sleeps in its ring wait (or is about to). The pusher
 * has made its item visible with a seq_cst read-modify-write (for the
 * inbox, the first push since the loop last drained it: see inbox_pushed);
 * the loop sets `sleeping` (seq_cst) before it looks at its queues one last
 * time: one of the two sees the other, so no wake-up is lost and an awake
 * loop costs no system call.
 */
static void loop_kick(coil_loop_t *loop)
{
	/* The first kicker takes the flag: a burst of pushes to a sleeping
	 * loop costs one eventfd write, not one each until it wakes. */
	if (atomic_load_explicit(&loop->sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&loop->sleeping, false, memory_order_seq_cst)) {
		COIL__METRICS_WAKE_SENT();
		coil__ring_wake(loop->ring);
	}
}

/*
 * Under inbox_lock, after a push: counts it and wakes the loop if needed.
 * inbox_len changes only under inbox_lock (pushes count up, drain_inbox
 * sets 0), so a pusher that finds it above zero knows that the first push
 * since the last drain has not been taken yet: that push made itself
 * visible with the seq_cst read-modify-write and did the loop_kick
 * handshake, so the loop either sees it before it sleeps or is kicked, and
 * the drain that takes it takes ours too (it takes the whole inbox under
 * the lock we hold now). A burst of pushes from another thread therefore
 * pays for one locked instruction and one look at `sleeping` per drain,
 * not per push. The relaxed store is enough: the loop reads the items
 * under the lock, and any non-zero count sends it there.
 */
static inline void inbox_pushed(coil_loop_t *loop)
{
	size_t n = atomic_load_explicit(&loop->inbox_len, memory_order_relaxed);
	if (n) {
		atomic_store_explicit(&loop->inbox_len, n + 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&loop->inbox_len, 1, memory_order_seq_cst);
	loop_kick(loop);
}

bool coil__loop_push_inbox(coil_loop_t *loop, coil__runnable_t *r)
{
	coil__spin_lock(&loop->inbox_lock);
	if (loop->closed) {
		coil__spin_unlock(&loop->inbox_lock);
		return false;
	}
	coil__fifo_push(&loop->inbox, &r->node);
	/* The kick happens under the lock: close sets `closed` under it, so
	 * the loop (and its ring) cannot be freed under our feet. */
	inbox_pushed(loop);
	coil__spin_unlock(&loop->inbox_lock);
	return true;
}

/* The most thread-safe call handles a loop keeps for reuse. */
#define HANDLE_REUSE_MAX 4096

static void ts_handle_init(coil_handle_t *h, coil_loop_t *loop, coil_cb cb,
			   coil_cb dropped, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->run.kind = COIL__RUN_HANDLE;
	h->loop = loop;
	h->cb = cb;
	h->arg = arg;
	h->dropped = dropped;
	atomic_store_explicit(&h->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&h->state, COIL__H_PENDING, memory_order_relaxed);
	h->timer.idx = UINT32_MAX;
	h->timer.when = -1;
}

int coil__loop_call_soon_threadsafe_ex(coil_loop_t *loop, coil_cb cb,
				       coil_cb dropped, void *arg)
{
	if (!loop || !cb)
		return -EINVAL;
	if (!loop->any) {
		/* A handle that already ran here, if there is one: taken
		 * under the lock the push needs anyway. */
		coil__spin_lock(&loop->inbox_lock);
		coil__fnode_t *n = loop->hfree;
		if (n && !loop->closed) {
			loop->hfree = n->next;
			loop->nhfree--;
			coil_handle_t *h = coil__container_of(n, coil_handle_t, run.node);
			ts_handle_init(h, loop, cb, dropped, arg);
			coil__fifo_push(&loop->inbox, &h->run.node);
			inbox_pushed(loop);
			coil__spin_unlock(&loop->inbox_lock);
			return 0;
		}
		coil__spin_unlock(&loop->inbox_lock);
	}
	/* Cache-line aligned: the caller fills one handle while the loop's
	 * thread runs the one before it, which would otherwise share a line. */
	coil_handle_t *h = coil__calloc_aligned64(sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->run.kind = COIL__RUN_HANDLE;
	h->loop = loop;
	h->cb = cb;
	h->arg = arg;
	h->dropped = dropped;
	atomic_store_explicit(&h->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&h->state, COIL__H_PENDING, memory_order_relaxed);
	h->timer.idx = UINT32_MAX;
	h->timer.when = -1;
	bool ok = loop->any ? coil__runtime_inject(loop->rt, &h->run)
			    : coil__loop_push_inbox(loop, &h->run);
	if (!ok) {
		coil__free_aligned64(h, sizeof(*h));
		return COIL_ECLOSED;
	}
	return 0;
}

/* Under inbox_lock: makes the handles that ran here reusable by callers. */
static void hret_give_back(coil_loop_t *loop)
{
	while (loop->hret && loop->nhfree < HANDLE_REUSE_MAX) {
		coil__fnode_t *n = loop->hret;
		loop->hret = n->next;
		loop->nhret--;
		n->next = loop->hfree;
		loop->hfree = n;
		loop->nhfree++;
	}
}

static void drain_inbox(coil_loop_t *loop)
{
	if (!atomic_load_explicit(&loop->inbox_len, memory_order_acquire))
		return;
	coil__spin_lock(&loop->inbox_lock);
	coil__fifo_t q = loop->inbox;
	coil__fifo_init(&loop->inbox);
	atomic_store_explicit(&loop->inbox_len, 0, memory_order_relaxed);
	hret_give_back(loop);
	coil__spin_unlock(&loop->inbox_lock);
	/* Handles in there come from coil__calloc with timer.kind 0 (see
	 * coil__loop_call_soon_threadsafe_ex), which is how run_handle and
	 * drop_ready know to free them directly, not through a cache. */
	coil__fifo_splice(&loop->ready, &q);
}

/* --- running ------------------------------------------------------------ */

static void run_handle(coil_handle_t *h)
{
	if (handle_claim(h))
		h->cb(h->arg);
	if (h->timer.kind == 0) {
		/* A call_soon_threadsafe handle (not from a cache): kept for
		 * the next caller when it came through this loop's inbox. */
		coil_loop_t *loop = h->loop;
		if (loop == coil__running_loop && !loop->closed &&
		    loop->nhret < HANDLE_REUSE_MAX) {
			h->run.node.next = loop->hret;
			loop->hret = &h->run.node;
			loop->nhret++;
			return;
		}
		coil__free_aligned64(h, sizeof(*h));
		return;
	}
	handle_unref(h);
}

/*
 * After a task step that did not end the task: the task has switched off its
 * stack, so it may now run elsewhere. A yield goes back to a run queue; a
 * wait becomes WAITING unless a wake-up came in while it was switching out
 * (NOTIFIED), in which case it is queued now (DESIGN.md section 3).
 */
static void task_switched_out(coil_loop_t *loop, coil__task_body_t *b)
{
	if (b->yielding) {
		b->yielding = false;
		atomic_store_explicit(&b->rstate, COIL__TS_QUEUED, memory_order_relaxed);
		coil__task_yielded(loop, b);
		return;
	}
	/* On a loop that is alone, every wake-up of its tasks comes from its
	 * own thread (a plain thread's future resolution is posted to it:
	 * future.c, foreign), as when one thread runs everything. */
	if (!coil__mt() || loop->alone) {
		if (atomic_load_explicit(&b->rstate, memory_order_relaxed) == COIL__TS_RUNNING) {
			atomic_store_explicit(&b->rstate, COIL__TS_WAITING, memory_order_relaxed);
			return;
		}
	} else {
		uint8_t s = COIL__TS_RUNNING;
		if (atomic_compare_exchange_strong_explicit(&b->rstate, &s, COIL__TS_WAITING,
							    memory_order_acq_rel,
							    memory_order_acquire))
			return;
	}
	atomic_store_explicit(&b->rstate, COIL__TS_QUEUED, memory_order_relaxed);
	coil__task_enqueue(b);
}

/*
 * One task step. The switch into the task is made right here, inlined into
 * the dispatch loop: when the task switches back, execution continues in
 * this loop without returning through any function, so no ret meets a return
 * address the predictor does not expect (a task that runs to its end costs
 * no misprediction at all).
 */
static inline __attribute__((always_inline)) void
run_task(coil_loop_t *loop, coil__task_body_t *b)
{
	if (!coil__task_begin(loop, b))
		return;
	intptr_t arg;
	coil_coro_t *c = coil__task_step_begin(loop, b, &arg);
	coil__ctx_jump(&loop->sched, &c->ctx, arg, false);
	coil__cur = loop->sched_cur;
	/* Hand-offs (coil__task_switch_out) may have run other tasks since:
	 * the one that came back is the current one. */
	b = loop->current->body;
	if (b->coro.state == COIL_CORO_CLOSED) {
		coil__task_end(loop, b); /* a wake it makes counts as the task's */
		/* A task that ended and woke its awaiter is a chain of
		 * completions, not two tasks waking each other: it does not
		 * count against the LIFO slot's cap. */
		loop->lifo_run = 0;
	} else {
		/* A task run as a join (coil__task_join_run) suspended: its
		 * joiners wait for it now, linked before it can be queued. */
		if (__builtin_expect(b->join_w != NULL, 0))
			coil__task_join_convert(loop, b);
		task_switched_out(loop, b);
	}
	loop->current = NULL;
}

static inline __attribute__((always_inline)) void
run_runnable(coil_loop_t *loop, coil__runnable_t *r)
{
	int64_t t0 = COIL__OBSERVE_BEGIN(loop, r); /* debug mode, tracing */
	switch (r->kind) {
	case COIL__RUN_TASK:
		run_task(loop, coil__container_of(r, coil__task_body_t, run));
		break;
	case COIL__RUN_HANDLE:
		COIL__M_INC(loop, callbacks);
		run_handle(coil__container_of(r, coil_handle_t, run));
		break;
	case COIL__RUN_DONE_CB:
		COIL__M_INC(loop, callbacks);
		coil__donecb_run(coil__container_of(r, coil__donecb_t, run));
		break;
	}
	COIL__OBSERVE_END(loop, t0);
}

static void fire_timers(coil_loop_t *loop)
{
	coil__timer_t *t = coil__heap_top(&loop->timers);
	if (!t)
		return;
	int64_t now = coil__loop_now(loop);
	while ((t = coil__heap_top(&loop->timers)) && t->when <= now) {
		coil__heap_remove(&loop->timers, t);
		COIL__M_INC(loop, timers_fired);
		if (t->kind == COIL__TIMER_HANDLE) {
			coil_handle_t *h = coil__container_of(t, coil_handle_t, timer);
			coil__loop_push_ready(loop, &h->run);
		} else {
			/* A canceller may have claimed it first: then the task
			 * is already woken, and finds the timer gone. */
			coil__waiter_try_wake(coil__container_of(t, coil__waiter_t, timer), 0);
		}
	}
}

/* Sleeps in the ring up to timeout_ns (0: just reap), announcing it so
 * that cross-thread pushers know to wake the loop (see loop_kick). */
static int loop_wait(coil_loop_t *loop, int64_t timeout)
{
	if (timeout != 0) {
		/* Idle for a while (not between two close timers, when the
		 * stacks are about to be reused): give pooled memory back. */
		if (timeout < 0 || timeout >= 50 * 1000000) {
			int64_t again = coil__stack_pool_shrink(false);
			if (again && (timeout < 0 || again < timeout))
				timeout = again; /* come back to finish it */
		}
		atomic_store_explicit(&loop->sleeping, true, memory_order_seq_cst);
		if (atomic_load_explicit(&loop->inbox_len, memory_order_seq_cst) ||
		    (loop->multi && coil__runtime_has_work(loop)))
			timeout = 0;
		else
			COIL__METRICS_WAIT_BEGIN(loop); /* a park: idle time */
	}
	int rc = coil__ring_wait(loop->ring, timeout);
	if (timeout != 0) {
		COIL__METRICS_WAIT_END(loop);
		atomic_store_explicit(&loop->sleeping, false, memory_order_relaxed);
	}
	if (rc < 0 && !loop->ring_error_reported) {
		loop->ring_error_reported = true;
		coil_exc_context_t ctx = {
			.message = "io_uring wait failed; the loop may spin",
			.error = rc,
		};
		coil_loop_call_exception_handler(loop, &ctx);
	}
	return rc;
}

/* The time to the next timer, COIL_FOREVER if none. */
static int64_t timer_timeout(coil_loop_t *loop)
{
	coil__timer_t *top = coil__heap_top(&loop->timers);
	if (!top)
		return COIL_FOREVER;
	if (loop->virtual_clock)
		return 0;
	int64_t d = top->when - coil__clock_ns();
	return d > 0 ? d : 0;
}

void coil__task_switched_out(coil_loop_t *loop, coil__task_body_t *b)
{
	task_switched_out(loop, b);
}

static void run_once(coil_loop_t *loop)
{
	drain_inbox(loop);
	int64_t timeout = loop->ready.len || loop->stopping ? 0 : timer_timeout(loop);
	loop_wait(loop, timeout);
	drain_inbox(loop);
	coil__timer_t *top;
	if (loop->virtual_clock && !loop->ready.len &&
	    (top = coil__heap_top(&loop->timers)) && top->when > loop->vnow)
		loop->vnow = top->when;
	fire_timers(loop);
	loop->batch = loop->ready.len;
	/* Observed steps (debug mode, a trace) go through the loop, one by
	 * one. A stop asked for before this round still lets its batch run,
	 * but no hand-off starts another round. */
	loop->handoff = COIL__OBSERVING(loop) ? COIL__HANDOFF_NONE : COIL__HANDOFF_ROUNDS;
	loop->handoff_budget = loop->handoff && !loop->stopping ? COIL__TICK : 0;
	while (loop->batch) {
		loop->batch--;
		coil__fnode_t *node = coil__fifo_pop(&loop->ready);
		run_runnable(loop, coil__container_of(node, coil__runnable_t, node));
	}
	loop->handoff = COIL__HANDOFF_NONE;
}

/*
 * A worker of a multi-worker runtime. Each round: take the inbox, reap the
 * ring, fire due timers, run the callbacks (and pinned tasks) that are
 * ready, then up to COIL__TICK task steps from the LIFO slot, the deque, the
 * injection queue (every COIL__TICK steps even when the deque is busy) and
 * other workers' deques. With nothing anywhere it spins briefly, then parks
 * in its ring's wait until the next timer or a wake-up.
 */


static bool worker_should_leave(coil_loop_t *loop)
{
	return loop->stopping ||
	       atomic_load_explicit(&loop->rt->stop, memory_order_relaxed) == COIL__RT_STOP;
}

void coil__worker_loop(coil_loop_t *loop)
{
	while (!worker_should_leave(loop)) {
		coil__loop_ended_flush(loop, false);
		drain_inbox(loop);
		if (coil__ring_inflight(loop->ring))
			loop_wait(loop, 0);
		fire_timers(loop);
		size_t ran = loop->ready.len;
		/* A one-worker runtime's worker hands off between the tasks of
		 * this batch as a standalone loop does (coil__handoff_next):
		 * no other worker can take its tasks. Observed steps go
		 * through the loop. */
		loop->batch = ran;
		loop->handoff_budget = 0;
		loop->handoff = loop->rt->n == 1 && !COIL__OBSERVING(loop) ?
				COIL__HANDOFF_BATCH : COIL__HANDOFF_NONE;
		while (loop->batch) {
			loop->batch--;
			/* A task of the batch woke an unpinned task into the
			 * LIFO slot, which no other worker can take from: to
			 * the deque with it before the next item, which may
			 * not yield for a long time. */
			if (loop->lifo)
				coil__sched_lifo_release(loop);
			coil__fnode_t *node = coil__fifo_pop(&loop->ready);
			run_runnable(loop, coil__container_of(node, coil__runnable_t, node));
		}
		loop->handoff = COIL__HANDOFF_NONE;
		unsigned steps = 0;
		coil__runnable_t *r;
		while (steps < COIL__TICK && (r = coil__sched_next(loop))) {
			run_runnable(loop, r);
			steps++;
			if (worker_should_leave(loop)) {
				coil__loop_ended_flush(loop, true);
				return;
			}
		}
		/* What ran from the ready FIFO (pinned tasks, woken by their
		 * I/O) counts too: it may have queued SQEs, which the next
		 * round submits at once instead of after the idle spin. */
		if (ran || steps || loop->ready.len || worker_should_leave(loop) ||
		    atomic_load_explicit(&loop->inbox_len, memory_order_acquire))
			continue;
		/* Nothing found: park until the next timer, an I/O completion
		 * or a wake-up (the runtime's idle protocol). */
		coil__loop_ended_flush(loop, true);
		if (coil__sched_park_begin(loop)) {
			loop_wait(loop, timer_timeout(loop));
			coil__sched_park_end(loop);
		}
	}
	coil__loop_ended_flush(loop, true);
}

int coil__loop_enter(coil_loop_t *loop)
{
	if (loop->closed)
		return COIL_ECLOSED;
	if (loop->running || coil__running_loop)
		return -EBUSY;
	/* By kernel thread id: a pthread_t is reused by the next thread
	 * created once the old one is joined (a runtime restarting its
	 * workers), and the ring's single issuer is a kernel task. */
	pid_t tid = gettid();
	if (loop->ring_tid != tid) {
		/* A ring of SINGLE_ISSUER only takes its own thread: without
		 * a fresh one (no descriptor or memory left) every wait
		 * would fail, so the loop does not run. */
		int rc = coil__ring_rebind(loop->ring);
		if (rc)
			return rc;
		loop->ring_tid = tid;
	}
	loop->running = true;
	loop->thread = pthread_self();
	coil__running_loop = loop;
	loop->sched_cur = coil__cur;
	coil__ctx_here(&loop->sched);
	coil__alloc_thread_acquire();
	COIL__METRICS_ENTER(loop);
	return 0;
}

void coil__loop_leave(coil_loop_t *loop)
{
	/* The ring can only be entered by this thread: end what is in flight
	 * before another thread may take the loop over (io/ring.h). */
	coil__ring_quiesce(loop->ring);
	COIL__METRICS_LEAVE(loop);
	coil__alloc_thread_release();
	loop->running = false;
	loop->stopping = false;
	coil__running_loop = NULL;
}

int coil_loop_run_forever(coil_loop_t *loop)
{
	if (!loop || loop->rt)
		return -EINVAL; /* a runtime's workers run through the runtime */
	int rc = coil__loop_enter(loop);
	if (rc)
		return rc;
	for (;;) {
		run_once(loop);
		if (loop->stopping)
			break;
	}
	coil__loop_leave(loop);
	return 0;
}

static void stop_when_done(coil_future_t *f, void *arg)
{
	(void)f;
	coil_loop_stop(arg);
}

int coil_loop_run_until_complete(coil_loop_t *loop, coil_future_t *f,
				 void **result)
{
	if (!loop || !f || f->loop != loop || loop->rt)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	if (!coil_future_done(f)) {
		int rc = coil_future_add_done_callback(f, stop_when_done, loop);
		if (rc)
			return rc;
		rc = coil_loop_run_forever(loop);
		coil_future_remove_done_callback(f, stop_when_done, loop);
		if (rc)
			return rc;
		if (!coil_future_done(f))
			return -EINTR;
	}
	return coil_future_result(f, result);
}

void coil_loop_stop(coil_loop_t *loop)
{
	/* On a runtime, stop acts on the whole runtime (DESIGN.md 6). */
	if (loop->rt) {
		coil_runtime_stop(loop->rt);
	} else {
		loop->stopping = true;
		/* No hand-off starts another round: the loop's own round,
		 * which looks at the flag, comes after this batch. */
		loop->handoff_budget = 0;
	}
}

bool coil_loop_is_running(const coil_loop_t *loop)
{
	return loop->running;
}

bool coil_loop_is_closed(const coil_loop_t *loop)
{
	return loop->closed;
}

/* Cancels (rounds 0-3) or force-closes (later rounds) every live task of
 * the loop. On the loop's thread. */
void coil__loop_finish_tasks(coil_loop_t *loop, int round)
{
	/* Collected first, each with a reference: the list lock must not be
	 * held across a cancel. Without memory for the array, nothing is
	 * cancelled this round; the next ones try again. */
	coil_task_t **all = NULL;
	int got = coil__loop_collect(loop, &all);
	size_t n = got > 0 ? (size_t)got : 0;
	if (round < 4)
		coil__task_cancel_all(all, n);
	for (size_t i = 0; i < n; i++) {
		coil_task_t *t = all[i];
		if (round >= 4)
			coil__task_force_close(t);
		coil_future_release(&t->fut);
	}
	free(all);
}

static void finish_tasks(coil_loop_t *loop)
{
	for (int round = 0; loop->ntasks && round < 8; round++) {
		coil__loop_finish_tasks(loop, round);
		for (int i = 0; loop->ntasks && i < 100000; i++) {
			if (!loop->ready.len && !loop->timers.n &&
			    !atomic_load_explicit(&loop->inbox_len, memory_order_acquire)) {
				/* Only I/O left: a cancelled operation completes at
				 * once, but one that a task which ignores cancellation
				 * started again may never: wait for it a bounded time,
				 * then go on to the next round. */
				if (!coil__ring_inflight(loop->ring) ||
				    loop_wait(loop, 100 * 1000000) <= 0)
					break;
				continue;
			}
			run_once(loop);
		}
	}
	if (loop->ntasks)
		fprintf(stderr, "coil: loop closed with %zu task(s) that ignored "
			"cancellation and close; their memory is abandoned\n",
			loop->ntasks);
}

static void drop_ready(coil_loop_t *loop)
{
	coil__fnode_t *n;
	while ((n = coil__fifo_pop(&loop->ready))) {
		coil__runnable_t *r = coil__container_of(n, coil__runnable_t, node);
		if (r->kind == COIL__RUN_HANDLE) {
			coil_handle_t *h = coil__container_of(r, coil_handle_t, run);
			bool pending = handle_claim(h);
			if (h->timer.kind == 0) {
				/* A thread-safe caller may need to hear that
				 * its callback will never run. */
				if (h->dropped && pending)
					h->dropped(h->arg);
				coil__free_aligned64(h, sizeof(*h));
			} else {
				handle_unref(h);
			}
		} else if (r->kind == COIL__RUN_DONE_CB) {
			/* Its future is done: deliver the completion rather
			 * than lose it with whatever the callback owns or
			 * someone waits for. The loop is closed, so what the
			 * callback schedules is refused. */
			coil__donecb_run(coil__container_of(r, coil__donecb_t, run));
		}
	}
	while (loop->timers.n) {
		coil__timer_t *t = coil__heap_top(&loop->timers);
		coil__heap_remove(&loop->timers, t);
		if (t->kind == COIL__TIMER_HANDLE) {
			coil_handle_t *h = coil__container_of(t, coil_handle_t, timer);
			handle_claim(h);
			handle_unref(h);
		}
	}
}

static void handles_free(coil__fnode_t *n)
{
	while (n) {
		coil__fnode_t *next = n->next;
		coil__free_aligned64(coil__container_of(n, coil_handle_t, run.node),
				     sizeof(coil_handle_t));
		n = next;
	}
}

static void loop_free(coil_loop_t *loop)
{
	coil__debug_loop_unregister(loop);
	COIL__TRACE_LOOP_FREE(loop);
	handles_free(loop->hfree);
	handles_free(loop->hret);
	if (loop->multi)
		coil__deque_fini(&loop->deque);
	free(loop->ended);
	coil__ring_destroy(loop->ring);
	coil__free_aligned64(loop, sizeof(*loop));
}

/* Standalone loops with several threads about, or closed: the atomic
 * count. */
void coil__loop_unref_slow(coil_loop_t *loop)
{
	if (atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_acq_rel) == 1)
		loop_free(loop);
}

/* Closes a runtime's worker loop once its tasks are gone and no worker
 * runs (coil_runtime_shutdown). Its memory stays until the runtime's last
 * future is freed (coil__loop_free_worker). */
void coil__loop_close_worker(coil_loop_t *loop)
{
	coil__signal_loop_close(loop);
	/* Generators left open stay the caller's; they leave the registry,
	 * which must not outlive the loop. */
	coil__gen_forget_loop(loop);
	coil__spin_lock(&loop->inbox_lock);
	__atomic_store_n(&loop->closed, true, __ATOMIC_RELAXED); /* coil__task_create */
	coil__fifo_splice(&loop->ready, &loop->inbox);
	coil__spin_unlock(&loop->inbox_lock);
	drop_ready(loop);
	coil__heap_free(&loop->timers);
	coil__task_pools_free(loop);
}

void coil__loop_free_worker(coil_loop_t *loop)
{
	loop_free(loop);
}

int coil_loop_close(coil_loop_t *loop)
{
	if (!loop || loop->rt)
		return -EINVAL; /* a runtime's loops close with the runtime */
	if (loop->running)
		return -EBUSY;
	if (loop->closed)
		return 0;
	/* asyncio's shutdown_asyncgens: generators still open are closed
	 * first, so that their cleanup runs while the loop still works. */
	coil__gen_shutdown_loop(loop);
	if (loop->ntasks && coil__loop_enter(loop) == 0) {
		finish_tasks(loop);
		coil__loop_leave(loop);
	}
	coil__executor_owner_close(loop);
	/* Not running, the loop runs no callback that could use it again. */
	coil__executor_owner_forget(loop);
	/* Debug mode: what the program left open is reported while the
	 * loop's exception handler still applies. */
	coil__debug_fds_check(loop, loop);
	coil__signal_loop_close(loop);
	coil__spin_lock(&loop->inbox_lock);
	loop->closed = true;
	coil__fifo_splice(&loop->ready, &loop->inbox);
	coil__spin_unlock(&loop->inbox_lock);
	drop_ready(loop);
	coil__heap_free(&loop->timers);
	coil__task_pools_free(loop);
	if (current_loop == loop)
		current_loop = NULL;
	coil__loop_unref(loop);
	return 0;
}

/* --- the exception handler -------------------------------------------- */

void coil_loop_set_exception_handler(coil_loop_t *loop,
				     coil_exception_handler h, void *arg)
{
	loop->exc_handler = h;
	loop->exc_arg = h ? arg : NULL;
}

coil_exception_handler coil_loop_get_exception_handler(coil_loop_t *loop,
						       void **arg)
{
	if (arg)
		*arg = loop->exc_arg;
	return loop->exc_handler;
}

void coil_loop_default_exception_handler(coil_loop_t *loop,
					 const coil_exc_context_t *ctx)
{
	(void)loop;
	fprintf(stderr, "coil: %s\n", ctx->message ? ctx->message : "error");
	if (ctx->error)
		fprintf(stderr, "  error: %s (%s)%s%s\n", coil_err_name(ctx->error),
			coil_strerror(ctx->error), ctx->error_message ? ": " : "",
			ctx->error_message ? ctx->error_message : "");
	if (ctx->task)
		fprintf(stderr, "  task: %s\n", coil_task_get_name(ctx->task));
	else if (ctx->future)
		fprintf(stderr, "  future: %p\n", (void *)ctx->future);
	if (ctx->handle)
		fprintf(stderr, "  handle: %p\n", (void *)ctx->handle);
}

void coil_loop_call_exception_handler(coil_loop_t *loop,
				      const coil_exc_context_t *ctx)
{
	if (loop && loop->exc_handler)
		loop->exc_handler(loop, ctx, loop->exc_arg);
	else
		coil_loop_default_exception_handler(loop, ctx);
}

/* --- coil_run ----------------------------------------------------------- */

int coil_run(coil_fn fn, void *arg, void **result,
	     const coil_runtime_opts_t *opts)
{
	if (!fn)
		return -EINVAL;
	if (coil__running_loop)
		return -EBUSY;
	coil_runtime_opts_t o;
	opts_read(&o, opts);
	if (o.workers > 1) {
		coil_runtime_t *rt = NULL;
		int rc = coil_runtime_new(&rt, &o);
		if (rc)
			return rc;
		rc = coil_runtime_block_on(rt, fn, arg, result);
		coil_runtime_shutdown(rt, 0);
		return rc;
	}
	coil_loop_t *loop;
	int rc = coil_new_event_loop_opts(&loop, opts);
	if (rc)
		return rc;
	coil_loop_t *prev = current_loop;
	current_loop = loop;
	coil_task_t *main_task;
	rc = coil_loop_create_task(loop, &main_task, fn, arg, NULL);
	if (rc == 0) {
		void *res = NULL;
		rc = coil_loop_run_until_complete(loop, &main_task->fut, &res);
		if (rc == 0) {
			if (result) {
				/* The caller takes the result over. */
				main_task->fut.dtor = NULL;
				*result = res;
			}
		}
		coil_task_detach(main_task);
	}
	coil_loop_close(loop);
	current_loop = prev;
	return rc;
}
