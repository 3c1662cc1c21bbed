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
 * Threads: the loop's thread only; cross-worker use arrives with the
 * scheduler, behind the same coil__waiter_wake / coil__task_suspend.
 */
#include "alloc.h"
#include "fset.h"

static size_t fset_size(size_t n)
{
	return sizeof(coil__fset_t) + n * (sizeof(coil__fslot_t) + sizeof(size_t));
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
		else if (fs[i]->loop != loop)
			return -EINVAL;
	}
	if (!loop)
		return -EINVAL;
	coil__fset_t *s = coil__malloc(fset_size(n));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->detached = false;
	s->keep_tasks = false;
	s->armed = false;
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

static void fset_unref(coil__fset_t *s)
{
	if (--s->refs == 0)
		coil__free(s, fset_size(s->n));
}

/*
 * Wakes the waiting task, unless the deadline timer already did (the loop
 * fired it, which took it out of the heap, and woke the waiter itself).
 */
static void fset_wake(coil__fset_t *s, int code)
{
	coil__waiter_t *w = s->waiter;
	if (!w)
		return;
	s->waiter = NULL;
	if (s->armed) {
		if (w->timer.idx == UINT32_MAX)
			return;
		coil__loop_del_timer(s->loop, &w->timer);
	}
	coil__waiter_wake(w, code);
}

static void fset_on_done(coil_future_t *f, void *arg)
{
	coil__fslot_t *slot = arg;
	coil__fset_t *s = slot->set;
	slot->watched = false;
	if (s->detached) {
		/* asyncio's gather marks the errors of children that end after
		 * it returned as retrieved. */
		if (s->keep_tasks && coil__future_failed(f))
			(void)coil_future_exception(f);
	} else if (s->until == COIL_FOREVER || coil__loop_now(s->loop) < s->until) {
		s->order[s->nord++] = (size_t)(slot - s->slots);
		if (s->waiter && s->ready(s))
			fset_wake(s, 0);
	}
	fset_unref(s);
}

int coil__fset_watch(coil__fset_t *s)
{
	for (size_t i = 0; i < s->n; i++) {
		coil__fslot_t *slot = &s->slots[i];
		if (coil_future_done(slot->f)) {
			s->order[s->nord++] = i;
			continue;
		}
		int rc = coil_future_add_done_callback(slot->f, fset_on_done, slot);
		if (rc)
			return rc;
		slot->watched = true;
		s->refs++;
	}
	return 0;
}

static void fset_waiter_cancel(coil__waiter_t *w)
{
	coil__fset_t *s = w->source;
	s->waiter = NULL;
	if (s->armed)
		coil__loop_del_timer(s->loop, &w->timer);
}

int coil__fset_wait(coil__fset_t *s, coil_task_t *t, int64_t deadline)
{
	if (s->waiter)
		return -EBUSY;
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
		w.timer.idx = UINT32_MAX;
		if (deadline != COIL_FOREVER) {
			w.timer.kind = COIL__TIMER_WAITER;
			rc = coil__loop_add_timer(s->loop, &w.timer, deadline);
			if (rc)
				break;
			s->armed = true;
		}
		s->waiter = &w;
		rc = coil__task_suspend(&w);
		/* Whoever woke us cleared s->waiter, except the timer. */
		s->waiter = NULL;
		if (s->armed) {
			coil__loop_del_timer(s->loop, &w.timer);
			s->armed = false;
		}
		if (rc || s->detached) {
			if (!rc)
				rc = COIL_ECLOSED;
			break;
		}
	}
	fset_unref(s);
	return rc;
}

void coil__fset_stop(coil__fset_t *s)
{
	s->detached = true;
	for (size_t i = 0; i < s->n; i++) {
		coil__fslot_t *slot = &s->slots[i];
		if (!slot->watched)
			continue;
		if (s->keep_tasks && slot->f->is_task)
			continue;
		/* A callback already queued is not in the list any more: it
		 * runs later and drops its reference then. */
		if (coil_future_remove_done_callback(slot->f, fset_on_done, slot)) {
			slot->watched = false;
			s->refs--;
		}
	}
}

void coil__fset_detach(coil__fset_t *s)
{
	coil__fset_stop(s);
	/* Someone else's task may be waiting (as_completed destroyed while a
	 * task waits in next): it gets COIL_ECLOSED. */
	fset_wake(s, COIL_ECLOSED);
	fset_unref(s);
}
