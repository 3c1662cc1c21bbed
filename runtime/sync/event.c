/*
 * runtime/sync/event.c: asyncio.Event (see coil/sync.h).
 *
 * Waiters queue in arrival order while the event is clear. set() unlinks
 * and wakes all of them at once, so a woken waiter returns 0 even if the
 * event is cleared again before it runs (asyncio behaves the same: its
 * waiter futures already hold True). A waiter cancelled while waiting is
 * unlinked by its cancel hook.
 *
 * Threads: all state belongs to the thread of the loop the event's tasks
 * run on; wake-ups go through coil__waiter_wake, which the multi-core
 * scheduler will make safe across workers.
 */
#include "coil/sync.h"
#include "core.h"

struct coil_event {
	bool set;
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

int coil_event_create(coil_event_t **out)
{
	if (!out)
		return -EINVAL;
	coil_event_t *e = coil__calloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	coil__list_init(&e->waiters);
	*out = e;
	return 0;
}

int coil_event_destroy(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	if (!coil__list_empty(&e->waiters))
		return -EBUSY;
	coil__free(e, sizeof(*e));
	return 0;
}

int coil_event_set(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	if (e->set)
		return 0;
	e->set = true;
	while (!coil__list_empty(&e->waiters)) {
		coil__list_t *n = e->waiters.next;
		coil__list_del(n);
		coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), 0);
	}
	return 0;
}

int coil_event_clear(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	e->set = false;
	return 0;
}

bool coil_event_is_set(const coil_event_t *e)
{
	return e && e->set;
}

int coil_event_wait(coil_event_t *e)
{
	if (!e)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc || e->set)
		return rc;
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, e);
	coil__list_push(&e->waiters, &w.cb.link);
	return coil__task_suspend(&w);
}
