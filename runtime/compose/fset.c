/*
 * runtime/compose/fset.c: a watched set of futures (see fset.h for the
 * lifetime and wake-up protocol).
 *
 * The set is one allocation: the header, the slots (callback arguments,
 * one per future, so that a callback finds its index without a search) and
 * the completion order. Callbacks run on the loop like asyncio's
 * done-callbacks, one iteration after the future completes, so the order
 * and timing of wake-ups are asyncio's.
 *
 * Threads: see fset.h. Every reader and writer of the set's state takes
 * s->lock; a waiter is claimed under it and woken after it is dropped, and
 * the set is freed by whoever drops the last reference, after the lock.
 */
#include "alloc.h"
#include "fset.h"

static size_t fset_size(size_t n)
{
	return sizeof(coil__fset_t) + n * (sizeof(coil__fslot_t) + sizeof(size_t));
}

/* Loops whose futures one set may watch: the same loop, or two workers of
 * one runtime. */
static bool same_runtime(const coil_loop_t *a, const coil_loop_t *b)
{
	return a == b || (a->rt && a->rt == b->rt);
}

int coil__fset_create(coil__fset_t **out, coil_future_t *const *fs, size_t n,
		      bool (*ready)(coil__fset_t *s), void *ctx)
{
	if (n && !fs)
		return -EINVAL;
	if (n > (SIZE_MAX - sizeof(coil__fset_t)) /
		    (sizeof(coil__fslot_t) + sizeof(size_t)))
		return -EINVAL;
	coil_loop_t *loop = n ? NULL : coil_get_event_loop();
	for (size_t i = 0; i < n; i++) {
		if (!fs[i])
			return -EINVAL;
		if (!loop)
			loop = fs[i]->loop;
		else if (!same_runtime(fs[i]->loop, loop))
			return -EINVAL;
	}
	if (!loop)
		return -EINVAL;
	/* As coil_await refuses them: futures of a loop that is not the
	 * caller's, nor a worker of its runtime, complete (and run the set's
	 * callbacks) on a loop that need not ever run again for it; and a
	 * set holding the calling task is only complete once that task is
	 * done, which it cannot be while it waits on the set. Either way
	 * the wait could only hang. */
	coil_loop_t *me = coil__running_loop;
	if (n && me && !same_runtime(loop, me))
		return -EXDEV;
	coil_coro_t *c = coil__cur;
	if (c && c->task)
		for (size_t i = 0; i < n; i++)
			if (fs[i] == (coil_future_t *)c->task)
				return -EDEADLK;
	coil__fset_t *s = coil__malloc(fset_size(n));
	if (!s)
		return -ENOMEM;
	atomic_init(&s->lock.v, 0);
	s->refs = 1;
	s->detached = false;
	s->keep_tasks = false;
	s->waiter = NULL;
	s->loop = loop;
	s->ready = ready;
	s->ctx = ctx;
	s->until = COIL_FOREVER;
	s->n = n;
	s->nord = 0;
	s->slots = (coil__fslot_t *)(s + 1);
	s->order = (size_t *)(s->slots + n);
	for (size_t i = 0; i < n; i++) {
		s->slots[i].set = s;
		s->slots[i].f = fs[i];
		s->slots[i].watched = false;
	}
	*out = s;
	return 0;
}

void coil__fset_ref(coil__fset_t *s)
{
	coil__lock(&s->lock);
	s->refs++;
	coil__unlock(&s->lock);
}

/* Drops a reference; frees the set after the last one. Called without the
 * lock. */
void coil__fset_unref(coil__fset_t *s)
{
	coil__lock(&s->lock);
	bool last = --s->refs == 0;
	coil__unlock(&s->lock);
	if (last)
		coil__free(s, fset_size(s->n));
}

/* Under the lock: takes the waiting task's waiter to wake it, unless a
 * canceller or the timer claimed it first (they clear s->waiter then). */
static coil__waiter_t *take_waiter(coil__fset_t *s)
{
	coil__waiter_t *w = s->waiter;
	if (!w || !coil__waiter_claim(w))
		return NULL;
	s->waiter = NULL;
	return w;
}

static void fset_on_done(coil_future_t *f, void *arg)
{
	coil__fslot_t *slot = arg;
	coil__fset_t *s = slot->set;
	coil__waiter_t *w = NULL;
	bool retrieve = false;
	coil__lock(&s->lock);
	slot->watched = false;
	if (s->detached) {
		/* asyncio's gather marks the errors of children that end after
		 * it returned as retrieved. */
		retrieve = s->keep_tasks && coil__future_failed(f);
	} else if (s->until == COIL_FOREVER || coil__loop_now(s->loop) < s->until) {
		s->order[s->nord++] = (size_t)(slot - s->slots);
		if (s->waiter && s->ready(s))
			w = take_waiter(s);
	}
	bool last = --s->refs == 0;
	coil__unlock(&s->lock);
	if (retrieve)
		(void)coil_future_exception(f);
	if (w)
		coil__waiter_wake(w, 0);
	if (last)
		coil__free(s, fset_size(s->n));
}

int coil__fset_watch(coil__fset_t *s)
{
	for (size_t i = 0; i < s->n; i++) {
		coil__fslot_t *slot = &s->slots[i];
		if (coil_future_done(slot->f)) {
			coil__lock(&s->lock);
			s->order[s->nord++] = i;
			coil__unlock(&s->lock);
			continue;
		}
		/* Counted before it is added: on another worker, the callback
		 * may run before coil_future_add_done_callback returns. */
		coil__lock(&s->lock);
		slot->watched = true;
		s->refs++;
		coil__unlock(&s->lock);
		int rc = coil_future_add_done_callback(slot->f, fset_on_done, slot);
		if (rc) {
			coil__lock(&s->lock);
			slot->watched = false;
			s->refs--;
			coil__unlock(&s->lock);
			return rc;
		}
	}
	return 0;
}

/* The cancel hook: the canceller has claimed w. */
static void fset_waiter_cancel(coil__waiter_t *w)
{
	coil__fset_t *s = w->source;
	coil__lock(&s->lock);
	if (s->waiter == w)
		s->waiter = NULL;
	coil__unlock(&s->lock);
}

int coil__fset_wait(coil__fset_t *s, coil_task_t *t, int64_t deadline)
{
	coil__lock(&s->lock);
	if (s->waiter) {
		coil__unlock(&s->lock);
		return -EBUSY;
	}
	int rc = 0;
	/* The waiting task's reference keeps the set alive if the owner's
	 * state is destroyed under it (as_completed destroyed while waited). */
	s->refs++;
	while (!s->ready(s)) {
		if (deadline != COIL_FOREVER && coil__loop_now(s->loop) >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		coil__waiter_t w;
		coil__waiter_init(&w, t, fset_waiter_cancel, s);
		w.what = "futures"; /* gather, wait, as_completed */
		/* The timer is this worker's and cannot fire before the task
		 * has switched out; arming it (rarely an allocation, when the
		 * heap grows) under the lock keeps s->waiter ours meanwhile. */
		if (deadline != COIL_FOREVER &&
		    (rc = coil__waiter_timer_arm(&w, deadline)))
			break;
		s->waiter = &w;
		coil__unlock(&s->lock);
		rc = coil__task_suspend(&w);
		coil__waiter_timer_done(&w);
		coil__lock(&s->lock);
		/* Whoever woke us cleared s->waiter, except the timer. */
		if (s->waiter == &w)
			s->waiter = NULL;
		if (rc || s->detached) {
			if (!rc)
				rc = COIL_ECLOSED;
			break;
		}
	}
	bool last = --s->refs == 0;
	coil__unlock(&s->lock);
	if (last)
		coil__free(s, fset_size(s->n));
	return rc;
}

void coil__fset_stop(coil__fset_t *s)
{
	coil__lock(&s->lock);
	s->detached = true;
	coil__unlock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		coil__fslot_t *slot = &s->slots[i];
		coil__lock(&s->lock);
		bool watched = slot->watched;
		coil__unlock(&s->lock);
		if (!watched || (s->keep_tasks && slot->f->is_task))
			continue;
		/* A callback already queued is not in the list any more: it
		 * runs later and drops its reference then. One removed here
		 * never runs, so its reference is ours to drop; the owner's
		 * keeps the set alive. */
		if (coil_future_remove_done_callback(slot->f, fset_on_done, slot)) {
			coil__lock(&s->lock);
			slot->watched = false;
			s->refs--;
			coil__unlock(&s->lock);
		}
	}
}

void coil__fset_detach(coil__fset_t *s)
{
	coil__fset_stop(s);
	/* Someone else's task may be waiting (as_completed destroyed while a
	 * task waits in next): it gets COIL_ECLOSED. */
	coil__lock(&s->lock);
	coil__waiter_t *w = take_waiter(s);
	coil__unlock(&s->lock);
	if (w)
		coil__waiter_wake(w, COIL_ECLOSED);
	coil__fset_unref(s);
}
