/*
 * runtime/sync/condition.c: asyncio.Condition (see coil/sync.h).
 *
 * A condition is a list of waiters over a lock (its own, or one the caller
 * gives). wait releases the lock, queues the task and suspends; notify
 * unlinks up to n waiters in arrival order and wakes them with 0. A woken
 * or cancelled waiter then re-acquires the lock before wait returns, and
 * keeps trying when that acquire is itself cancelled (asyncio's "must
 * re-acquire lock even if wait is cancelled"), reporting -ECANCELED at the
 * end.
 *
 * A notification is never lost (Python 3.13, gh-112202): a waiter that was
 * notified but returns -ECANCELED, because the cancellation reached it while
 * it re-acquired the lock, passes its notification on to the next waiter.
 * A waiter cancelled before it was notified is unlinked by its cancel hook
 * and never consumes a notification.
 *
 * Threads: all state belongs to the thread of the loop the condition's
 * tasks run on; wake-ups go through coil__waiter_wake, which the multi-core
 * scheduler will make safe across workers.
 */
#include <limits.h>

#include "coil/sync.h"
#include "core.h"

struct coil_condition {
	coil_lock_t *lock;
	bool own_lock;            /* created with it, freed with it */
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

int coil_condition_create(coil_condition_t **out, coil_lock_t *lock)
{
	if (!out)
		return -EINVAL;
	coil_condition_t *c = coil__calloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (!lock) {
		int rc = coil_lock_create(&lock);
		if (rc) {
			coil__free(c, sizeof(*c));
			return rc;
		}
		c->own_lock = true;
	}
	c->lock = lock;
	coil__list_init(&c->waiters);
	*out = c;
	return 0;
}

int coil_condition_destroy(coil_condition_t *c)
{
	if (!c)
		return -EINVAL;
	if (!coil__list_empty(&c->waiters))
		return -EBUSY;
	if (c->own_lock) {
		int rc = coil_lock_destroy(c->lock);
		if (rc)
			return rc;
	}
	coil__free(c, sizeof(*c));
	return 0;
}

coil_lock_t *coil_condition_lock(coil_condition_t *c)
{
	return c ? c->lock : NULL;
}

static int wake_some(coil_condition_t *c, int n)
{
	int woken = 0;
	while (woken < n && !coil__list_empty(&c->waiters)) {
		coil__list_t *node = c->waiters.next;
		coil__list_del(node);
		coil__waiter_wake(coil__container_of(node, coil__waiter_t, cb.link), 0);
		woken++;
	}
	return woken;
}

/*
 * Takes the lock back after a wait that ended with `code`, whatever
 * cancellations arrive meanwhile, and returns what wait reports.
 */
static int reacquire(coil_condition_t *c, int code)
{
	int err = code;
	for (;;) {
		int rc = coil_lock_acquire(c->lock);
		if (rc == 0)
			break;
		if (rc == -ECANCELED) {
			if (err == 0)
				err = rc;
			continue;
		}
		/* COIL_ECLOSED: the loop is force-closing the task and every
		 * await fails at once. Take the lock if it is free; there is no
		 * way to wait for it. */
		(void)coil_lock_acquire_nowait(c->lock);
		if (err == 0 || err == -ECANCELED)
			err = rc;
		break;
	}
	if (code == 0 && err != 0)
		wake_some(c, 1);
	return err;
}

int coil_condition_wait(coil_condition_t *c)
{
	if (!c)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	rc = coil_lock_release(c->lock);
	if (rc)
		return rc;
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, c);
	coil__list_push(&c->waiters, &w.cb.link);
	return reacquire(c, coil__task_suspend(&w));
}

int coil_condition_wait_for(coil_condition_t *c, bool (*pred)(void *arg),
			    void *arg)
{
	if (!c || !pred)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	while (!pred(arg)) {
		rc = coil_condition_wait(c);
		if (rc)
			return rc;
	}
	return 0;
}

int coil_condition_notify(coil_condition_t *c, int n)
{
	if (!c || n < 0)
		return -EINVAL;
	if (!coil_lock_locked(c->lock))
		return COIL_EINVALSTATE;
	return wake_some(c, n);
}

int coil_condition_notify_all(coil_condition_t *c)
{
	return coil_condition_notify(c, INT_MAX);
}
