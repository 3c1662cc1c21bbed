/*
 * runtime/sync/semaphore.c: asyncio.Semaphore and BoundedSemaphore (see
 * coil/sync.h).
 *
 * `value` counts the free permits. A release with tasks waiting hands its
 * permit straight to the first waiter it can claim instead of adding it to
 * `value`, so a task that arrives later cannot take it first. Hence the
 * invariant: while a permit is free, no unclaimed waiter waits. A waiter
 * cancelled while waiting is unlinked by its cancel hook and never receives
 * a permit; one that was handed a permit and is cancelled before it runs
 * keeps it (its acquire returns 0).
 *
 * A bounded semaphore remembers its initial value; a release that would
 * take `value` above it fails with -EOVERFLOW (asyncio raises ValueError).
 * The check comes first, before any handoff, as in asyncio.
 *
 * Threads: the semaphore's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards
 * `value` and the waiter list, and is never held across a suspension.
 * Release claims the waiter it hands its permit to (coil__waiter_claim)
 * and unlinks it under the spinlock, and wakes it after dropping it. A
 * waiter that a canceller claimed first stays linked until the cancel hook,
 * which takes the spinlock, unlinks it; release passes over it.
 */
#include <limits.h>

#include "coil/sync.h"
#include "core.h"

struct coil_semaphore {
	coil__spin_t lock;        /* value and waiters */
	int value;                /* free permits */
	int bound;                /* the initial value, if bounded */
	bool bounded;
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_semaphore_t *s = w->source;
	coil__lock(&s->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&s->lock);
}

static int create(coil_semaphore_t **out, int value, bool bounded)
{
	if (!out || value < 0)
		return -EINVAL;
	coil_semaphore_t *s = coil__calloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	atomic_init(&s->lock.v, 0);
	s->value = value;
	s->bound = value;
	s->bounded = bounded;
	coil__list_init(&s->waiters);
	*out = s;
	return 0;
}

int coil_semaphore_create(coil_semaphore_t **out, int value)
{
	return create(out, value, false);
}

int coil_bounded_semaphore_create(coil_semaphore_t **out, int value)
{
	return create(out, value, true);
}

int coil_semaphore_destroy(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	coil__lock(&s->lock);
	bool busy = !coil__list_empty(&s->waiters);
	coil__unlock(&s->lock);
	if (busy)
		return -EBUSY;
	coil__free(s, sizeof(*s));
	return 0;
}

int coil_semaphore_acquire(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__lock(&s->lock);
	if (s->value > 0) {
		s->value--;
		coil__unlock(&s->lock);
		return 0;
	}
	/* On 0, release has handed this task its permit. */
	return coil__wait_in_list(&s->waiters, &s->lock, t, waiter_unlink, s, "semaphore");
}

int coil_semaphore_acquire_nowait(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	coil__lock(&s->lock);
	int rc = s->value == 0 ? -EAGAIN : 0;
	if (!rc)
		s->value--;
	coil__unlock(&s->lock);
	return rc;
}

int coil_semaphore_release(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	coil__lock(&s->lock);
	if ((s->bounded && s->value >= s->bound) || s->value == INT_MAX) {
		coil__unlock(&s->lock);
		return -EOVERFLOW;
	}
	coil__waiter_t *next = NULL;
	for (coil__list_t *p = s->waiters.next; p != &s->waiters; p = p->next) {
		coil__waiter_t *w = coil__container_of(p, coil__waiter_t, cb.link);
		if (coil__waiter_claim(w)) {
			coil__list_del(p);
			next = w;
			break;
		}
	}
	if (!next)
		s->value++;
	coil__unlock(&s->lock);
	/* Claimed: its task stays suspended, and w alive, until this wake. */
	if (next)
		coil__waiter_wake(next, 0);
	return 0;
}

int coil_semaphore_value(const coil_semaphore_t *s)
{
	if (!s)
		return 0;
	coil_semaphore_t *m = (coil_semaphore_t *)s;
	coil__lock(&m->lock);
	int v = m->value;
	coil__unlock(&m->lock);
	return v;
}

bool coil_semaphore_locked(const coil_semaphore_t *s)
{
	return s && coil_semaphore_value(s) == 0;
}

static int sem_cm_enter(void *self)
{
	return coil_semaphore_acquire(self);
}

static int sem_cm_exit(void *self, int status)
{
	(void)status;
	return coil_semaphore_release(self);
}

coil_cm_t coil_semaphore_cm(coil_semaphore_t *s)
{
	return coil_cm_make(sem_cm_enter, sem_cm_exit, s);
}
