/*
 * runtime/sync/event.c: asyncio.Event (see coil/sync.h).
 *
 * Waiters queue in arrival order while the event is clear. set() unlinks
 * and wakes all of them at once, so a woken waiter returns 0 even if the
 * event is cleared again before it runs (asyncio behaves the same: its
 * waiter futures already hold True). A waiter cancelled while waiting is
 * unlinked by its cancel hook.
 *
 * Threads: the event's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards `set`
 * and the waiter list, and is never held across a suspension. set() claims
 * each waiter (coil__waiter_claim) and moves it to a list of its own under
 * the spinlock, and wakes them after dropping it, so that a woken task may
 * destroy the event at once. A waiter that a canceller claimed first stays
 * linked until the cancel hook, which takes the spinlock, unlinks it.
 */
#include "coil/sync.h"
#include "core.h"

struct coil_event {
	coil__spin_t lock;        /* the fields below */
	bool set;
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_event_t *e = w->source;
	coil__lock(&e->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&e->lock);
}

int coil_event_create(coil_event_t **out)
{
	if (!out)
		return -EINVAL;
	coil_event_t *e = coil__calloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	atomic_init(&e->lock.v, 0);
	coil__list_init(&e->waiters);
	*out = e;
	return 0;
}

int coil_event_destroy(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	coil__lock(&e->lock);
	bool busy = !coil__list_empty(&e->waiters);
	coil__unlock(&e->lock);
	if (busy)
		return -EBUSY;
	coil__free(e, sizeof(*e));
	return 0;
}

int coil_event_set(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	coil__list_t woken;
	coil__list_init(&woken);
	coil__lock(&e->lock);
	if (!e->set) {
		e->set = true;
		coil__list_t *p = e->waiters.next;
		while (p != &e->waiters) {
			coil__list_t *next = p->next;
			if (coil__waiter_claim(coil__container_of(p, coil__waiter_t, cb.link))) {
				coil__list_del(p);
				coil__list_push(&woken, p);
			}
			p = next;
		}
	}
	coil__unlock(&e->lock);
	/* Ours alone now: claimed waiters' tasks stay suspended until woken. */
	while (!coil__list_empty(&woken)) {
		coil__list_t *n = woken.next;
		coil__list_del(n);
		coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), 0);
	}
	return 0;
}

int coil_event_clear(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	coil__lock(&e->lock);
	e->set = false;
	coil__unlock(&e->lock);
	return 0;
}

bool coil_event_is_set(const coil_event_t *e)
{
	if (!e)
		return false;
	coil_event_t *m = (coil_event_t *)e;
	coil__lock(&m->lock);
	bool set = m->set;
	coil__unlock(&m->lock);
	return set;
}

int coil_event_wait(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__lock(&e->lock);
	if (e->set) {
		coil__unlock(&e->lock);
		return 0;
	}
	return coil__wait_in_list(&e->waiters, &e->lock, t, waiter_unlink, e, "event");
}
