/*
 * runtime/sync/lock.c: asyncio.Lock with FIFO handoff (see coil/sync.h).
 *
 * The lock records the task that holds it. Release hands the lock straight
 * to the first waiter: `owner` becomes that task before it even runs, so a
 * task that arrives later finds the lock held and queues behind. Hence the
 * invariant: while the lock is free, nobody waits for it. A waiter that is
 * cancelled while waiting is unlinked by its cancel hook and is never handed
 * the lock; one that was handed the lock and is cancelled before it runs
 * keeps it (its acquire returns 0, the cancellation comes at its next
 * await).
 *
 * Threads: all state belongs to the thread of the loop the lock's tasks run
 * on; wake-ups go through coil__waiter_wake, which the multi-core scheduler
 * will make safe across workers.
 */
#include "coil/sync.h"
#include "core.h"

struct coil_lock {
	bool locked;
	coil_task_t *owner;       /* NULL when taken outside a task */
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

int coil_lock_create(coil_lock_t **out)
{
	if (!out)
		return -EINVAL;
	coil_lock_t *l = coil__calloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
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
	if (!coil__list_empty(&l->waiters))
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
	if (!l->locked) {
		l->locked = true;
		l->owner = t;
		return 0;
	}
	if (l->owner == t)
		return -EDEADLK;
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, l);
	coil__list_push(&l->waiters, &w.cb.link);
	/* On 0, release has made this task the owner. */
	return coil__task_suspend(&w);
}

int coil_lock_acquire_nowait(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	if (l->locked)
		return -EAGAIN;
	l->locked = true;
	l->owner = coil_current_task();
	return 0;
}

int coil_lock_release(coil_lock_t *l)
{
	if (!l)
		return -EINVAL;
	if (!l->locked || l->owner != coil_current_task())
		return COIL_EINVALSTATE;
	if (coil__list_empty(&l->waiters)) {
		l->locked = false;
		l->owner = NULL;
		return 0;
	}
	coil__list_t *n = l->waiters.next;
	coil__list_del(n);
	coil__waiter_t *w = coil__container_of(n, coil__waiter_t, cb.link);
	l->owner = w->task;
	coil__waiter_wake(w, 0);
	return 0;
}

bool coil_lock_locked(const coil_lock_t *l)
{
	return l && l->locked;
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
