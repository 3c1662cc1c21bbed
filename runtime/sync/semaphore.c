/*
 * runtime/sync/semaphore.c: asyncio.Semaphore and BoundedSemaphore (see
 * coil/sync.h).
 *
 * `value` counts the free permits. A release with tasks waiting hands its
 * permit straight to the first waiter instead of adding it to `value`, so a
 * task that arrives later cannot take it first. Hence the invariant: while a
 * permit is free, nobody waits. A waiter cancelled while waiting is unlinked
 * by its cancel hook and never receives a permit; one that was handed a
 * permit and is cancelled before it runs keeps it (its acquire returns 0).
 *
 * A bounded semaphore remembers its initial value; a release that would
 * take `value` above it fails with -EOVERFLOW (asyncio raises ValueError).
 * The check comes first, before any handoff, as in asyncio.
 *
 * Threads: all state belongs to the thread of the loop the semaphore's
 * tasks run on; wake-ups go through coil__waiter_wake, which the multi-core
 * scheduler will make safe across workers.
 */
#include <limits.h>

#include "coil/sync.h"
#include "core.h"

struct coil_semaphore {
	int value;                /* free permits */
	int bound;                /* the initial value, if bounded */
	bool bounded;
	coil__list_t waiters;     /* coil__waiter_t, by cb.link, in order */
};

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

static int create(coil_semaphore_t **out, int value, bool bounded)
{
	if (!out || value < 0)
		return -EINVAL;
	coil_semaphore_t *s = coil__calloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
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
	if (!coil__list_empty(&s->waiters))
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
	if (s->value > 0) {
		s->value--;
		return 0;
	}
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, s);
	coil__list_push(&s->waiters, &w.cb.link);
	/* On 0, release has handed this task its permit. */
	return coil__task_suspend(&w);
}

int coil_semaphore_acquire_nowait(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	if (s->value == 0)
		return -EAGAIN;
	s->value--;
	return 0;
}

int coil_semaphore_release(coil_semaphore_t *s)
{
	if (!s)
		return -EINVAL;
	if ((s->bounded && s->value >= s->bound) || s->value == INT_MAX)
		return -EOVERFLOW;
	if (coil__list_empty(&s->waiters)) {
		s->value++;
		return 0;
	}
	coil__list_t *n = s->waiters.next;
	coil__list_del(n);
	coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), 0);
	return 0;
}

int coil_semaphore_value(const coil_semaphore_t *s)
{
	return s ? s->value : 0;
}

bool coil_semaphore_locked(const coil_semaphore_t *s)
{
	return s && s->value == 0;
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
