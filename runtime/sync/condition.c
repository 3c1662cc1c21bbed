/*
 * runtime/sync/condition.c: asyncio.Condition (see coil/sync.h).
 *
 * A condition is a list of waiters over a lock (its own, or one the caller
 * gives). wait queues the task, releases the lock and suspends; notify
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
 * Threads: the condition's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards the
 * waiter list; it is never held across a suspension nor together with the
 * coil_lock's own spinlock. wait queues its waiter before it releases the
 * coil_lock: released first, a task on another worker could take the lock,
 * change the state and notify before the waiter is in the list, and the
 * notification would be lost. notify claims the waiters it takes
 * (coil__waiter_claim) and unlinks them under the spinlock, and wakes them
 * after dropping it. A waiter that a canceller claimed first stays linked
 * until the cancel hook, which takes the spinlock, unlinks it; notify
 * passes over it and does not count it. A notified task is off the list
 * but still uses the condition while it takes the lock back, perhaps on
 * another worker than its notifier's: `inside` (under the spinlock) counts
 * the tasks in wait until they return, and destroy refuses while it is
 * not 0.
 */
#include <limits.h>

#include "coil/sync.h"
#include "core.h"

struct coil_condition {
	coil__spin_t lock;        /* waiters and inside */
	coil_lock_t *mutex;       /* the coil_lock the condition is over */
	bool own_lock;            /* created with it, freed with it */
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
	int inside;               /* tasks in wait, queued or not */
};

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_condition_t *c = w->source;
	coil__lock(&c->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&c->lock);
}

int coil_condition_create(coil_condition_t **out, coil_lock_t *lock)
{
	if (!out)
		return -EINVAL;
	coil_condition_t *c = coil__calloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->lock.v, 0);
	if (!lock) {
		int rc = coil_lock_create(&lock);
		if (rc) {
			coil__free(c, sizeof(*c));
			return rc;
		}
		c->own_lock = true;
	}
	c->mutex = lock;
	coil__list_init(&c->waiters);
	*out = c;
	return 0;
}

int coil_condition_destroy(coil_condition_t *c)
{
	if (!c)
		return -EINVAL;
	/* A notified task is off the list but still in wait, taking the
	 * lock back (and maybe passing its notification on): it uses c until
	 * it leaves, on whatever worker, and the notifier cannot tell when. */
	coil__lock(&c->lock);
	bool busy = !coil__list_empty(&c->waiters) || c->inside;
	coil__unlock(&c->lock);
	if (busy)
		return -EBUSY;
	if (c->own_lock) {
		int rc = coil_lock_destroy(c->mutex);
		if (rc)
			return rc;
	}
	coil__free(c, sizeof(*c));
	return 0;
}

coil_lock_t *coil_condition_lock(coil_condition_t *c)
{
	return c ? c->mutex : NULL;
}

/* Wakes up to n waiters with 0; returns how many. */
static int wake_some(coil_condition_t *c, int n)
{
	int woken = 0;
	coil__list_t list;
	coil__list_init(&list);
	coil__lock(&c->lock);
	coil__list_t *p = c->waiters.next;
	while (woken < n && p != &c->waiters) {
		coil__list_t *next = p->next;
		if (coil__waiter_claim(coil__container_of(p, coil__waiter_t, cb.link))) {
			coil__list_del(p);
			coil__list_push(&list, p);
			woken++;
		}
		p = next;
	}
	coil__unlock(&c->lock);
	/* Ours alone now: claimed waiters' tasks stay suspended until woken. */
	while (!coil__list_empty(&list)) {
		coil__list_t *node = list.next;
		coil__list_del(node);
		coil__waiter_wake(coil__container_of(node, coil__waiter_t, cb.link), 0);
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
		int rc = coil_lock_acquire(c->mutex);
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
		(void)coil_lock_acquire_nowait(c->mutex);
		if (err == 0 || err == -ECANCELED)
			err = rc;
		break;
	}
	if (code == 0 && err != 0)
		wake_some(c, 1);
	return err;
}

/* The end of a wait: the task no longer touches c. */
static int wait_done(coil_condition_t *c, int rc)
{
	coil__lock(&c->lock);
	c->inside--;
	coil__unlock(&c->lock);
	return rc;
}

int coil_condition_wait(coil_condition_t *c)
{
	if (!c)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, c);
	w.what = "condition";
	coil__lock(&c->lock);
	coil__list_push(&c->waiters, &w.cb.link);
	c->inside++;
	coil__unlock(&c->lock);
	rc = coil_lock_release(c->mutex);
	if (rc) {
		/* Not the lock's holder: withdraw, unless a notify took the
		 * waiter meanwhile; then take its wake-up, which is already on
		 * its way, and pass the notification on. */
		coil__lock(&c->lock);
		bool mine = coil__waiter_claim(&w);
		if (mine)
			coil__list_del(&w.cb.link);
		coil__unlock(&c->lock);
		if (!mine && coil__task_suspend(&w) == 0)
			wake_some(c, 1);
		return wait_done(c, rc);
	}
	return wait_done(c, reacquire(c, coil__task_suspend(&w)));
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
	if (!coil_lock_locked(c->mutex))
		return COIL_EINVALSTATE;
	return wake_some(c, n);
}

int coil_condition_notify_all(coil_condition_t *c)
{
	return coil_condition_notify(c, INT_MAX);
}
