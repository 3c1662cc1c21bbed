/*
 * runtime/sync/lock.c: asyncio.Lock with FIFO handoff (see coil/sync.h).
 *
 * The lock records the task that holds it. Release hands the lock straight
 * to the first waiter it can claim: `owner` becomes that task before it
 * even runs, so a task that arrives later finds the lock held and queues
 * behind. Hence the invariant: while the lock is free, no unclaimed waiter
 * waits for it. A waiter that is cancelled while waiting is unlinked by its
 * cancel hook and is never handed the lock; one that was handed the lock
 * and is cancelled before it runs keeps it (its acquire returns 0, the
 * cancellation comes at its next await).
 *
 * Threads: the lock's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards every
 * field and the waiter list; it is never held across a suspension. Release
 * claims the waiter it hands the lock to (coil__waiter_claim) under the
 * spinlock, unlinks it and makes it the owner, and wakes it only after
 * dropping the spinlock, so that the woken task may destroy the lock at
 * once. A waiter that a canceller claimed first stays linked until the
 * cancel hook, which takes the spinlock, unlinks it; release passes over
 * it.
 */
#include "coil/sync.h"
#include "core.h"

struct coil_lock {
	coil__spin_t lock;        /* every field below */
	bool locked;
	coil_task_t *owner;       /* NULL when taken outside a task */
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_lock_t *l = w->source;
	coil__lock(&l->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&l->lock);
}

int coil_lock_create(coil_lock_t **out)
{
	if (!out)
		return -EINVAL;
	coil_lock_t *l = coil__calloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	atomic_init(&l->lock.v, 0);
	coil__list_init(&l->waiters);
	*out = l;
	return 0;
}

int coil_lock_destroy(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	/* A held lock without waiters may go: its holder may be a task that
	 * ended without releasing it, and nothing else could free it then. */
	coil__lock(&l->lock);
	bool busy = !coil__list_empty(&l->waiters);
	coil__unlock(&l->lock);
	if (busy)
		return -EBUSY;
	coil__free(l, sizeof(*l));
	return 0;
}

int coil_lock_acquire(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__lock(&l->lock);
	if (!l->locked) {
		l->locked = true;
		l->owner = t;
		coil__unlock(&l->lock);
		return 0;
	}
	if (l->owner == t) {
		coil__unlock(&l->lock);
		return -EDEADLK;
	}
	/* On 0, release has made this task the owner. */
	return coil__wait_in_list(&l->waiters, &l->lock, t, waiter_unlink, l, "lock");
}

int coil_lock_acquire_nowait(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	coil_task_t *t = coil_current_task();
	coil__lock(&l->lock);
	if (l->locked) {
		coil__unlock(&l->lock);
		return -EAGAIN;
	}
	l->locked = true;
	l->owner = t;
	coil__unlock(&l->lock);
	return 0;
}

int coil_lock_release(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	coil_task_t *t = coil_current_task();
	coil__lock(&l->lock);
	if (!l->locked || l->owner != t) {
		coil__unlock(&l->lock);
		return COIL_EINVALSTATE;
	}
	coil__waiter_t *next = NULL;
	for (coil__list_t *p = l->waiters.next; p != &l->waiters; p = p->next) {
		coil__waiter_t *w = coil__container_of(p, coil__waiter_t, cb.link);
		if (coil__waiter_claim(w)) {
			coil__list_del(p);
			next = w;
			break;
		}
	}
	if (next) {
		l->owner = next->task;
	} else {
		l->locked = false;
		l->owner = NULL;
	}
	coil__unlock(&l->lock);
	/* Claimed: its task stays suspended, and w alive, until this wake. */
	if (next)
		coil__waiter_wake(next, 0);
	return 0;
}

bool coil_lock_locked(const coil_lock_t *l)
{
	if (!l)
		return false;
	coil_lock_t *m = (coil_lock_t *)l;
	coil__lock(&m->lock);
	bool locked = m->locked;
	coil__unlock(&m->lock);
	return locked;
}

static int lock_cm_enter(void *self)
{
	return coil_lock_acquire(self);
}

static int lock_cm_exit(void *self, int status)
{
	(void)status;
	return coil_lock_release(self);
}

coil_cm_t coil_lock_cm(coil_lock_t *l)
{
	return coil_cm_make(lock_cm_enter, lock_cm_exit, l);
}
