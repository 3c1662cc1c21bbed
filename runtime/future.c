/*
 * runtime/future.c: futures (see coil/future.h) and coil_await.
 *
 * A future's callback list holds, in the order they were added, heap
 * done-callbacks and the waiters of tasks awaiting it (on their stacks).
 * When the future completes, the list is emptied front to back: a waiter
 * wakes its task (the task goes to the tail of the ready queue) and a
 * done-callback is itself queued as a runnable. Both land in the same FIFO,
 * so callbacks and task wake-ups keep asyncio's relative order.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"

static __attribute__((noinline)) int create_slow(coil_future_t **out, coil_loop_t *loop)
{
	if (!out)
		return -EINVAL;
	coil_loop_t *me = coil__running_loop;
	if (!loop)
		loop = me ? me : coil_get_event_loop();
	if (!loop || loop->any)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	/* coil__obj_get, with the running loop read once. */
	coil_future_t *f = me ? coil__objcache_get(&me->future_cache)
			      : coil__malloc(sizeof(coil_future_t));
	if (!f)
		return -ENOMEM;
	coil__future_init(f, loop, false);
	*out = f;
	return 0;
}

int coil_future_create(coil_future_t **out, coil_loop_t *loop)
{
	/* The common case, without a call: a future of the running loop from
	 * its cache, counted in the loop's own count (coil__loop_ref: a
	 * worker's `live`, or a standalone loop's refs while one thread runs
	 * everything). */
	coil_loop_t *me = coil__running_loop;
	if (__builtin_expect(out && me && (!loop || loop == me), 1)) {
		coil_future_t *f = me->future_cache.head;
		if (f && !me->closed && (me->rt || !coil__mt())) {
			me->future_cache.head = *(void **)f;
			me->future_cache.n--;
			coil__future_init_fields(f, me, false);
			coil__loop_ref_own(me);
			*out = f;
			return 0;
		}
	}
	return create_slow(out, loop);
}

/*
 * Whether the count may change with a plain load and store: one thread
 * touches the future. Before a multi-worker runtime starts (coil__mt()
 * false) that is its loop's thread while the loop is open. Once it is
 * closed, the thread of a thread or process pool may drop its job's
 * reference (a completion that found the loop closed is thrown away there:
 * runtime/executor/xdone.c) while the loop's thread drops its own, so both
 * take the atomic path: the loop's thread set `closed` itself, and the
 * pool's thread read it under the loop's inbox lock.
 */
static inline bool refs_plain(const coil_future_t *f)
{
	return !coil__mt() && !f->loop->closed;
}

coil_future_t *coil_future_ref(coil_future_t *f)
{
	if (!refs_plain(f))
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	else
		atomic_store_explicit(&f->refs, atomic_load_explicit(&f->refs, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	return f;
}

static inline uint8_t fstate(const coil_future_t *f)
{
	return atomic_load_explicit(&((coil_future_t *)f)->state, memory_order_acquire);
}

static void report_unretrieved(coil_future_t *f)
{
	coil_task_t *t = f->is_task ? (coil_task_t *)f : NULL;
	coil_exc_context_t ctx = {
		.message = t ? "Task exception was never retrieved"
			     : "Future exception was never retrieved",
		.error = f->code,
		.error_message = f->msg,
		.future = f,
		.task = t,
	};
	/* The handler may look at the future but must not keep it. */
	atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
	coil_loop_call_exception_handler(f->loop, &ctx);
}

/* The teardown of a future whose last reference went. */
static void __attribute__((noinline)) release_last(coil_future_t *f)
{
	uint8_t state = fstate(f);
	if (state == COIL__F_ERROR && !atomic_load_explicit(&f->retrieved, memory_order_relaxed))
		report_unretrieved(f);
	coil_loop_t *loop = f->loop;
	if (state == COIL__F_RESULT && f->dtor && f->result)
		f->dtor(f->result);
	coil__strfree(f->msg);
	/* A future still pending when released has no waiters (they hold no
	 * reference, but a task awaiting it keeps its caller's reference), and
	 * its heap done-callbacks die with it. */
	while (!coil__list_empty(&f->cbs)) {
		coil__cbnode_t *n = coil__container_of(f->cbs.next, coil__cbnode_t, link);
		coil__list_del(&n->link);
		if (n->kind == COIL__CB_DONE)
			coil__obj_put(donecb_cache, sizeof(coil__donecb_t),
				      coil__container_of(n, coil__donecb_t, cb));
	}
	if (f->is_task) {
		coil_task_t *t = (coil_task_t *)f;
		coil__strfree(t->name);
		coil__task_free_handle(t);
	} else {
		coil__obj_put(future_cache, sizeof(coil_future_t), f);
	}
	coil__loop_unref(loop);
}

void coil_future_release(coil_future_t *f)
{
	if (!f)
		return;
	/* A count of 1 is ours alone: nobody else holds a reference to take
	 * another one from, so the last release needs no atomic
	 * read-modify-write (the acquire pairs with the other holders'
	 * releasing decrements). */
	uint32_t r = atomic_load_explicit(&f->refs, memory_order_acquire);
	if (r != 1) {
		if (refs_plain(f)) {
			atomic_store_explicit(&f->refs, r - 1, memory_order_relaxed);
			return;
		}
		if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
			return;
	}
	/* The common end of a one-shot future, released on its loop: a
	 * plain result without a destructor and nothing left in its list
	 * goes straight back to the loop's cache, uncounted from the loop's
	 * own count (coil__loop_unref; an open loop keeps its owner's
	 * reference, so that count does not reach 0 here). */
	coil_loop_t *loop = f->loop;
	if (loop == coil__running_loop && !f->is_task &&
	    atomic_load_explicit(&f->state, memory_order_relaxed) == COIL__F_RESULT &&
	    !f->dtor && coil__list_empty(&f->cbs) && !loop->closed &&
	    (loop->rt || !coil__mt())) {
		coil__loop_unref_own(loop);
		coil__objcache_put(&loop->future_cache, f);
		return;
	}
	release_last(f);
}

bool coil_future_done(const coil_future_t *f)
{
	return fstate(f) != COIL__F_PENDING;
}

bool coil_future_cancelled(const coil_future_t *f)
{
	return fstate(f) == COIL__F_CANCELLED;
}

static inline int outcome(coil_future_t *f, void **result)
{
	switch (fstate(f)) {
	case COIL__F_PENDING:
		return COIL_EINVALSTATE;
	case COIL__F_RESULT:
		if (result)
			*result = f->result;
		return 0;
	case COIL__F_CANCELLED:
		return -ECANCELED;
	default:
		atomic_store_explicit(&f->retrieved, true, memory_order_relaxed);
		return f->code;
	}
}

int coil_future_result(coil_future_t *f, void **result)
{
	return outcome(f, result);
}

int coil_future_exception(coil_future_t *f)
{
	return outcome(f, NULL);
}

const char *coil_future_error_message(const coil_future_t *f)
{
	return fstate(f) != COIL__F_PENDING ? f->msg : NULL;
}

coil_loop_t *coil_future_loop(const coil_future_t *f)
{
	return f->loop;
}

void coil__donecb_run(coil__donecb_t *d)
{
	coil_future_t *f = d->fut;
	d->fn(f, d->arg);
	coil__obj_put(donecb_cache, sizeof(coil__donecb_t), d);
	coil_future_release(f);
}

/* Queues d on its future's loop: done-callbacks never migrate. */
static void schedule_donecb(coil_future_t *f, coil__donecb_t *d)
{
	d->fut = coil_future_ref(f);
	d->run.kind = COIL__RUN_DONE_CB;
	coil_loop_t *loop = f->loop;
	if (coil__running_loop == loop) {
		if (!loop->closed) {
			coil__loop_push_ready(loop, &d->run);
			return;
		}
	} else if (coil__loop_push_inbox(loop, &d->run)) {
		return;
	}
	/* Nothing will ever run it. */
	coil__obj_put(donecb_cache, sizeof(coil__donecb_t), d);
	coil_future_release(f);
}

/* Records a pending future's outcome; the state goes last (release: a
 * reader that sees it done sees the rest). */
static inline __attribute__((always_inline)) void
store_outcome(coil_future_t *f, int state, int code, void *result, coil_dtor dtor,
	      char *msg)
{
	f->code = code;
	f->result = result;
	f->dtor = dtor;
	f->msg = msg;
	atomic_store_explicit(&f->state, (uint8_t)state, memory_order_release);
}

/* An awaiter (coil_await): its task's waiter, and where it wants the
 * result. */
struct fwaiter {
	coil__waiter_t w;
	void **dst;
};
_Static_assert(sizeof(struct fwaiter) <= COIL__WAIT_SLOT, "an awaiter's tail wait");

/* outcome(f, dst) for a future just finished with (state, code, result),
 * without reading them back. */
static inline __attribute__((always_inline)) int
outcome_of(coil_future_t *f, int state, int code, void *result, void **dst)
{
	if (state == COIL__F_RESULT) {
		if (dst)
			*dst = result;
		return 0;
	}
	if (state == COIL__F_CANCELLED)
		return -ECANCELED;
	atomic_store_explicit(&f->retrieved, true, memory_order_relaxed);
	return code;
}

/* Wakes an awaiter of future f, just finished with (state, code, result)
 * (whoever claimed it), with what its await returns, having stored the
 * result through its pointer: the await may be a tail wait, which does
 * nothing once woken. */
static inline __attribute__((always_inline)) void
wake_awaiter(coil_future_t *f, coil__waiter_t *w, int state, int code, void *result,
	     bool mt)
{
	struct fwaiter *fw = coil__container_of(w, struct fwaiter, w);
	coil__waiter_wake_x(w, outcome_of(f, state, code, result, fw->dst), mt);
}

/*
 * Whether f is a task's future on the calling thread's loop, and that loop
 * is alone (core.h: standalone, or the only worker of a runtime). Only that
 * thread finishes such a future, adds and removes its done-callbacks and
 * links its waiters (they belong to tasks of the same loop), and only it
 * cancels those tasks (coil/task.h), so neither f's lock nor the waiters'
 * compare-and-swap claims are needed. Plain futures may be resolved from
 * any thread and keep their lock.
 */
static inline bool task_solo(const coil_future_t *f, const coil_loop_t *me)
{
	coil_loop_t *loop = f->loop;
	return f->is_task && loop == me && loop->alone;
}

/*
 * coil__future_finish while coil__mt() is false, or for a task's future on
 * a loop whose tasks all run on this thread (task_solo): only this thread
 * touches f and its waiters (a waiter's claim and its task's run state are
 * changed by others only after they won a claim of a waiter of their own),
 * so each is woken (queued, nothing runs) as the list is walked, in the
 * same order as the two passes below.
 */
static inline __attribute__((always_inline)) bool
finish_st(coil_future_t *f, int state, int code, void *result, coil_dtor dtor,
	  char *msg)
{
	if (atomic_load_explicit(&f->state, memory_order_relaxed) != COIL__F_PENDING)
		return false;
	store_outcome(f, state, code, result, dtor, msg);
	coil__list_t *p = f->cbs.next;
	while (p != &f->cbs) {
		coil__list_t *next = p->next;
		coil__cbnode_t *n = coil__container_of(p, coil__cbnode_t, link);
		if (n->kind == COIL__CB_WAITER) {
			/* One a timer claimed stays linked for its task. */
			coil__waiter_t *w = coil__container_of(n, coil__waiter_t, cb);
			if (!atomic_load_explicit(&w->claimed, memory_order_relaxed)) {
				coil__list_del(p);
				wake_awaiter(f, w, state, code, result, false);
			}
		} else {
			coil__list_del(p);
			schedule_donecb(f, coil__container_of(n, coil__donecb_t, cb));
		}
		p = next;
	}
	return true;
}

bool coil__future_finish(coil_future_t *f, int state, int code, void *result,
			 coil_dtor dtor, char *msg)
{
	if (!coil__mt() || task_solo(f, coil__running_loop))
		return finish_st(f, state, code, result, dtor, msg);
	coil__spin_lock(&f->lock);
	if (atomic_load_explicit(&f->state, memory_order_relaxed) != COIL__F_PENDING) {
		coil__spin_unlock(&f->lock);
		return false;
	}
	store_outcome(f, state, code, result, dtor, msg);
	/* Waiters are woken in order right here; done-callbacks are taken
	 * out and queued once the lock is dropped. A waiter somebody else
	 * claimed (a canceller) stays linked for its cancel hook. */
	coil__list_t cbs;
	coil__list_init(&cbs);
	coil__list_t *p = f->cbs.next;
	while (p != &f->cbs) {
		coil__list_t *next = p->next;
		coil__cbnode_t *n = coil__container_of(p, coil__cbnode_t, link);
		if (n->kind == COIL__CB_WAITER) {
			coil__waiter_t *w = coil__container_of(n, coil__waiter_t, cb);
			if (coil__waiter_claim(w)) {
				coil__list_del(p);
				coil__list_push(&cbs, p);
			}
		} else {
			coil__list_del(p);
			coil__list_push(&cbs, p);
		}
		p = next;
	}
	coil__spin_unlock(&f->lock);
	/* The list is ours now: the waiters in it were claimed by us, so their
	 * tasks stay suspended (and the waiters alive) until we wake them. */
	while (!coil__list_empty(&cbs)) {
		coil__cbnode_t *n = coil__container_of(cbs.next, coil__cbnode_t, link);
		coil__list_del(&n->link);
		if (n->kind == COIL__CB_WAITER)
			wake_awaiter(f, coil__container_of(n, coil__waiter_t, cb), state, code,
				     result, true);
		else
			schedule_donecb(f, coil__container_of(n, coil__donecb_t, cb));
	}
	return true;
}

bool coil__future_finish_solo(coil_future_t *f, int state, int code, void *result,
			      coil_dtor dtor, char *msg)
{
	return finish_st(f, state, code, result, dtor, msg);
}

/*
 * A thread that is not the one running the future's loop must not touch the
 * future while no multi-worker runtime exists (its loop's thread does so
 * without locks), nor, ever, one whose loop is alone (a standalone loop, a
 * one-worker runtime's worker), whose tasks' run states only that loop's
 * thread changes (loop.c, task_switched_out): it hands the resolution to
 * the loop instead.
 */
static bool foreign(const coil_future_t *f)
{
	coil_loop_t *loop = f->loop;
	if (coil__mt() && !loop->alone)
		return false;
	return coil__running_loop != loop && loop->running &&
	       !pthread_equal(loop->thread, pthread_self());
}

typedef struct posted {
	coil_future_t *f;
	int state, code;
	void *value;
	coil_dtor dtor;
	char *msg;
} posted_t;

static void posted_free(posted_t *p, bool run_dtor)
{
	if (run_dtor && p->dtor && p->value)
		p->dtor(p->value);
	coil__strfree(p->msg);
	coil_future_release(p->f);
	coil__free(p, sizeof(*p));
}

static void posted_run(void *arg)
{
	posted_t *p = arg;
	bool done = coil__future_finish(p->f, p->state, p->code, p->value, p->dtor, p->msg);
	if (done)
		p->msg = NULL;
	posted_free(p, !done);
}

static void posted_dropped(void *arg)
{
	posted_free(arg, true);
}

static int post_finish(coil_future_t *f, int state, int code, void *value,
		       coil_dtor dtor, char *msg)
{
	posted_t *p = coil__malloc(sizeof(*p));
	if (!p) {
		coil__strfree(msg);
		return -ENOMEM;
	}
	*p = (posted_t){ coil_future_ref(f), state, code, value, dtor, msg };
	int rc = coil__loop_call_soon_threadsafe_ex(f->loop, posted_run, posted_dropped, p);
	if (rc) {
		p->dtor = NULL; /* the caller keeps the value on failure */
		posted_free(p, false);
	}
	return rc;
}

static __attribute__((noinline)) int set_result_slow(coil_future_t *f, void *value,
							coil_dtor dtor)
{
	if (fstate(f) != COIL__F_PENDING || f->is_task)
		return COIL_EINVALSTATE;
	/* On the future's own loop while one thread runs everything: the
	 * single-thread completion, inlined. */
	if (coil__running_loop == f->loop && !coil__mt())
		return finish_st(f, COIL__F_RESULT, 0, value, dtor, NULL) ? 0 : COIL_EINVALSTATE;
	if (foreign(f))
		return post_finish(f, COIL__F_RESULT, 0, value, dtor, NULL);
	return coil__future_finish(f, COIL__F_RESULT, 0, value, dtor, NULL)
		       ? 0 : COIL_EINVALSTATE;
}

int coil_future_set_result(coil_future_t *f, void *value, coil_dtor dtor)
{
	/* The common cases without a call (set_result_slow does the rest):
	 * on the future's own loop while one thread runs everything, with
	 * nobody waiting, or with one awaiter, a task of this loop that is
	 * suspended: finish_st and wake_awaiter for that one waiter, which
	 * queues it on the loop's ready FIFO (coil__task_enqueue). */
	coil_loop_t *loop = f->loop;
	if (__builtin_expect(loop == coil__running_loop && !coil__mt() &&
			     atomic_load_explicit(&f->state, memory_order_relaxed) ==
				     COIL__F_PENDING && !f->is_task, 1)) {
		coil__list_t *p = f->cbs.next;
		if (p == &f->cbs) {
			store_outcome(f, COIL__F_RESULT, 0, value, dtor, NULL);
			return 0;
		}
		coil__cbnode_t *n = coil__container_of(p, coil__cbnode_t, link);
		if (p->next == &f->cbs && n->kind == COIL__CB_WAITER) {
			coil__waiter_t *w = coil__container_of(n, coil__waiter_t, cb);
			coil__task_body_t *b = w->task->body;
			if (!atomic_load_explicit(&w->claimed, memory_order_relaxed) &&
			    atomic_load_explicit(&b->rstate, memory_order_relaxed) ==
				    COIL__TS_WAITING &&
			    b->worker == loop && !loop->multi) {
				store_outcome(f, COIL__F_RESULT, 0, value, dtor, NULL);
				coil__list_init(&f->cbs);
				coil__list_init(p);
				struct fwaiter *fw = coil__container_of(w, struct fwaiter, w);
				if (fw->dst)
					*fw->dst = value;
				atomic_store_explicit(&w->claimed, 1, memory_order_relaxed);
				w->result = 0;
				atomic_store_explicit(&b->rstate, COIL__TS_QUEUED,
						      memory_order_relaxed);
				coil__loop_push_ready(loop, &b->run);
				return 0;
			}
		}
	}
	return set_result_slow(f, value, dtor);
}

int coil_future_set_exception(coil_future_t *f, int err, const char *msg)
{
	if (err >= 0)
		return -EINVAL;
	if (fstate(f) != COIL__F_PENDING || f->is_task)
		return COIL_EINVALSTATE;
	char *m = NULL;
	if (msg && !(m = coil__strdup(msg)))
		return -ENOMEM;
	/* Setting -ECANCELED as an error is cancelling, as in asyncio where
	 * CancelledError cannot be set as an exception. */
	int state = err == -ECANCELED ? COIL__F_CANCELLED : COIL__F_ERROR;
	if (foreign(f))
		return post_finish(f, state, err, NULL, NULL, m);
	if (coil__future_finish(f, state, err, NULL, NULL, m))
		return 0;
	coil__strfree(m);
	return COIL_EINVALSTATE;
}

/* On the task's loop: the cancellation a plain thread handed over. */
static void posted_cancel_run(void *arg)
{
	posted_t *p = arg;
	coil_task_cancel((coil_task_t *)p->f, p->msg);
	posted_free(p, false);
}

static void posted_cancel_dropped(void *arg)
{
	posted_free(arg, false);
}

/* A task of a loop that runs all of its tasks on its own thread is
 * cancelled only there (coil_task_cancel takes no lock on such a loop):
 * from another thread the request is handed to the loop, as a plain
 * future's completion is. */
static __attribute__((noinline)) bool post_task_cancel(coil_future_t *f, const char *msg)
{
	if (fstate(f) != COIL__F_PENDING)
		return false;
	posted_t *p = coil__malloc(sizeof(*p));
	if (!p)
		return false;
	*p = (posted_t){ .f = coil_future_ref(f), .msg = msg ? coil__strdup(msg) : NULL };
	if (coil__loop_call_soon_threadsafe_ex(f->loop, posted_cancel_run,
					       posted_cancel_dropped, p) == 0)
		return true;
	posted_free(p, false);
	return false;
}

bool coil_future_cancel(coil_future_t *f, const char *msg)
{
	if (f->is_task)
		return foreign(f) ? post_task_cancel(f, msg)
				  : coil_task_cancel((coil_task_t *)f, msg);
	if (fstate(f) != COIL__F_PENDING)
		return false;
	char *m = msg ? coil__strdup(msg) : NULL;
	if (foreign(f))
		return post_finish(f, COIL__F_CANCELLED, -ECANCELED, NULL, NULL, m) == 0;
	if (coil__future_finish(f, COIL__F_CANCELLED, -ECANCELED, NULL, NULL, m))
		return true;
	coil__strfree(m);
	return false;
}

int coil_future_add_done_callback(coil_future_t *f, coil_done_cb cb, void *arg)
{
	if (!cb)
		return -EINVAL;
	coil__donecb_t *d = coil__obj_get(donecb_cache, sizeof(coil__donecb_t));
	if (!d)
		return -ENOMEM;
	d->cb.kind = COIL__CB_DONE;
	d->fn = cb;
	d->arg = arg;
	coil__lock(&f->lock);
	if (atomic_load_explicit(&f->state, memory_order_relaxed) == COIL__F_PENDING) {
		coil__list_push(&f->cbs, &d->cb.link);
		coil__unlock(&f->lock);
		return 0;
	}
	coil__unlock(&f->lock);
	schedule_donecb(f, d);
	return 0;
}

int coil_future_remove_done_callback(coil_future_t *f, coil_done_cb cb,
				     void *arg)
{
	int n = 0;
	coil__list_t gone;
	coil__list_init(&gone);
	coil__lock(&f->lock);
	coil__list_t *p = f->cbs.next;
	while (p != &f->cbs) {
		coil__list_t *next = p->next;
		coil__cbnode_t *c = coil__container_of(p, coil__cbnode_t, link);
		if (c->kind == COIL__CB_DONE) {
			coil__donecb_t *d = coil__container_of(c, coil__donecb_t, cb);
			if (d->fn == cb && d->arg == arg) {
				coil__list_del(p);
				coil__list_push(&gone, p);
				n++;
			}
		}
		p = next;
	}
	coil__unlock(&f->lock);
	while (!coil__list_empty(&gone)) {
		coil__list_t *q = gone.next;
		coil__list_del(q);
		coil__obj_put(donecb_cache, sizeof(coil__donecb_t),
			      coil__container_of(q, coil__donecb_t, cb.link));
	}
	return n;
}

static void waiter_unlink(coil__waiter_t *w)
{
	coil_future_t *f = w->source;
	coil__lock(&f->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&f->lock);
}

/* coil_await of a pending future with several workers: the waiter is
 * linked under the future's lock. */
static __attribute__((noinline)) int await_mt(coil_future_t *f, coil_task_t *t, void **result)
{
	struct fwaiter w;
	coil__waiter_init(&w.w, t, waiter_unlink, f);
	w.w.what = "future";
	w.dst = result;
	coil__spin_lock(&f->lock);
	if (atomic_load_explicit(&f->state, memory_order_relaxed) == COIL__F_PENDING) {
		coil__list_push(&f->cbs, &w.w.cb.link);
		coil__spin_unlock(&f->lock);
		return coil__task_suspend_mt(&w.w);
	}
	coil__spin_unlock(&f->lock);
	return outcome(f, result);
}

/* await_join: not taken (the task is not at the bottom of this worker's
 * deque). */
#define JOIN_NO INT_MIN

/* coil_await of the pending future of a task that this worker could run
 * now (a fork-join child still in its deque): runs it as a call
 * (coil__task_join_run). Returns what the await returns, or JOIN_NO. */
static int await_join(coil_future_t *f, coil_task_t *t, coil_coro_t *c, void **result)
{
	coil_loop_t *me = coil__running_loop;
	/* Only compared, not read through, before the pop makes it ours. */
	coil__task_body_t *cb = coil__task_body_held((coil_task_t *)f);
	if (!cb || !coil__deque_pop_if(&me->deque, cb))
		return JOIN_NO;
	if (cb->task != (coil_task_t *)f) {
		/* The task ended elsewhere and this is its body again, for
		 * another task: back where it was. */
		coil__deque_push(&me->deque, cb);
		return JOIN_NO;
	}
	struct fwaiter w;
	coil__waiter_init(&w.w, t, waiter_unlink, f);
	w.w.what = "future";
	w.dst = result;
	if (coil__task_join_run(me, t, c, cb, &w.w) == 0)
		return w.w.result;
	/* Ended here: a cancellation that came meanwhile is delivered now,
	 * as it would have been to the wait. */
	int rc = coil__suspend_check(&t);
	return rc ? rc : outcome(f, result);
}

/* The awaiter of a tail wait (core.h) of task t, whose running coroutine is
 * c, on pending future f: in c's wait slot, linked at the end of f's list.
 * The future's finish stores the result through `result`. */
static inline __attribute__((always_inline)) struct fwaiter *
fwaiter_link(coil_future_t *f, coil_task_t *t, coil_coro_t *c, void **result)
{
	struct fwaiter *fw = coil__coro_wait_slot(c);
	coil__waiter_init(&fw->w, t, waiter_unlink, f);
	fw->w.what = "future";
	fw->dst = result;
	coil__list_push(&f->cbs, &fw->w.cb.link);
	return fw;
}

static __attribute__((noinline)) int await_slow(coil_future_t *f, void **result)
{
	if (!f)
		return -EINVAL;
	coil_coro_t *c = coil__cur;
	if (c && c->task == (coil_task_t *)f)
		return -EDEADLK;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil_loop_t *me = coil__running_loop;
	if (f->loop != me && (!me->rt || me->rt != f->loop->rt))
		return -EXDEV; /* another runtime's future (asyncio: a
				* future attached to a different loop) */
	if (fstate(f) == COIL__F_PENDING) {
		if (coil__mt() && !task_solo(f, me)) {
			if (f->is_task && me->multi && !me->alone && c == &t->body->coro &&
			    !COIL__OBSERVING(me)) {
				int rc2 = await_join(f, t, c, result);
				if (rc2 != JOIN_NO)
					return rc2;
			}
			return await_mt(f, t, result);
		}
		/* One thread, or a task's future on a loop whose tasks all run
		 * on this one (task_solo): a tail wait (core.h); the future's
		 * finish stores the result and hands over what the await
		 * returns. */
		return coil__task_wait_tail(&fwaiter_link(f, t, c, result)->w, t->body, c);
	}
	return outcome(f, result);
}

int coil_await(coil_future_t *f, void **result)
{
	/* The common case without a call (await_slow does the rest and the
	 * checks): a pending future of the running loop awaited by a task
	 * that may wait (coil__suspend_check's fast case) while one thread
	 * runs everything. */
	coil_coro_t *c = coil__cur;
	coil_task_t *t;
	if (__builtin_expect(f && c && (t = c->task) && t != (coil_task_t *)f && !c->closing &&
			     f->loop == coil__running_loop && !coil__mt() &&
			     atomic_load_explicit(&f->state, memory_order_relaxed) ==
				     COIL__F_PENDING, 1)) {
		coil__task_body_t *b = t->body;
		if (!atomic_load_explicit(&t->cancel, memory_order_relaxed))
			return coil__task_wait_tail_checked(&fwaiter_link(f, t, c, result)->w,
							    b, c);
	}
	return await_slow(f, result);
}
