/*
 * runtime/sync/barrier.c: asyncio.Barrier (see coil/sync.h).
 *
 * The state machine is asyncio's (Python 3.11+):
 *  - FILLING: tasks arrive and wait until `parties` of them are in; the
 *    last one to arrive moves the barrier to DRAINING and lets all through;
 *  - DRAINING: the round's tasks are leaving; newcomers wait (in `blocked`)
 *    until the last one has left, which moves the barrier back to FILLING;
 *  - RESETTING: reset() was called while tasks were inside; the waiting
 *    ones leave with -EPIPE and newcomers wait until all have left;
 *  - BROKEN: abort() was called; every wait fails with -EPIPE until reset.
 * `count` is the number of tasks inside wait (arrived and not yet left);
 * each task counts itself out when it leaves, in its own continuation, so
 * that a round is over only when all its tasks have run again.
 *
 * asyncio builds Barrier on a Condition; here two waiter lists take its
 * place: `waiting` (tasks of the filling round) and `blocked` (newcomers
 * held while the barrier drains or resets). Letting a round through unlinks
 * its waiters and wakes them with 0, which is their pass: a waiter
 * cancelled after that still returns its index (the cancellation comes at
 * its next await). A waiter cancelled before is unlinked by its cancel hook
 * and counts itself out; the barrier stays usable, as in asyncio.
 *
 * Threads: all state belongs to the thread of the loop the barrier's tasks
 * run on; wake-ups go through coil__waiter_wake, which the multi-core
 * scheduler will make safe across workers.
 */
#include "coil/sync.h"
#include "core.h"

enum { FILLING, DRAINING, RESETTING, BROKEN };

struct coil_barrier {
	int parties;
	int count;                /* tasks inside wait */
	int state;
	coil__list_t waiting;     /* coil__waiter_t, by cb.link, in order */
	coil__list_t blocked;
};

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

static void wake_all(coil__list_t *l, int code)
{
	while (!coil__list_empty(l)) {
		coil__list_t *n = l->next;
		coil__list_del(n);
		coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), code);
	}
}

/* Suspends the calling task on l; checks first for a cancellation that
 * reached the task since its last suspension. */
static int wait_on(coil_barrier_t *b, coil__list_t *l)
{
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__waiter_t w;
	coil__waiter_init(&w, t, waiter_unlink, b);
	coil__list_push(l, &w.cb.link);
	return coil__task_suspend(&w);
}

/* Counts a task out; the last one out of a drained or reset round opens
 * the barrier to newcomers. */
static void leave(coil_barrier_t *b)
{
	if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING)) {
		b->state = FILLING;
		wake_all(&b->blocked, 0);
	}
}

int coil_barrier_create(coil_barrier_t **out, int parties)
{
	if (!out || parties < 1)
		return -EINVAL;
	coil_barrier_t *b = coil__calloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->parties = parties;
	b->state = FILLING;
	coil__list_init(&b->waiting);
	coil__list_init(&b->blocked);
	*out = b;
	return 0;
}

int coil_barrier_destroy(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	if (b->count || !coil__list_empty(&b->blocked))
		return -EBUSY;
	coil__free(b, sizeof(*b));
	return 0;
}

int coil_barrier_wait(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	while (b->state == DRAINING || b->state == RESETTING) {
		rc = wait_on(b, &b->blocked);
		if (rc)
			return rc;
	}
	if (b->state == BROKEN)
		return -EPIPE;
	int index = b->count++;
	if (index + 1 == b->parties) {
		b->state = DRAINING;
		wake_all(&b->waiting, 0);
	} else {
		rc = wait_on(b, &b->waiting);
		if (rc) {
			leave(b);
			return rc;
		}
	}
	leave(b);
	return index;
}

int coil_barrier_reset(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	if (b->count > 0) {
		if (b->state != RESETTING) {
			b->state = RESETTING;
			wake_all(&b->waiting, -EPIPE);
		}
	} else {
		b->state = FILLING;
		wake_all(&b->blocked, 0);
	}
	return 0;
}

int coil_barrier_abort(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	b->state = BROKEN;
	wake_all(&b->waiting, -EPIPE);
	/* Held newcomers look again and find the barrier broken. */
	wake_all(&b->blocked, 0);
	return 0;
}

int coil_barrier_parties(const coil_barrier_t *b)
{
	return b ? b->parties : 0;
}

int coil_barrier_n_waiting(const coil_barrier_t *b)
{
	return b && b->state == FILLING ? b->count : 0;
}

bool coil_barrier_broken(const coil_barrier_t *b)
{
	return b && b->state == BROKEN;
}
