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
 * Threads: the barrier's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards the
 * state, the count and both lists, and is never held across a suspension.
 * Letting waiters go claims each one (coil__waiter_claim) and moves it to
 * a list of the waker's own under the spinlock; they are woken after it is
 * dropped. A waiter that a canceller claimed first stays linked until the
 * cancel hook, which takes the spinlock, unlinks it. A task woken on
 * another worker still uses the barrier until it leaves wait: destroy
 * refuses while any is inside, counted in `count` or, for a newcomer
 * between `blocked` and being counted in, in `held`.
 */
#include "coil/sync.h"
#include "core.h"

enum { FILLING, DRAINING, RESETTING, BROKEN };

struct coil_barrier {
	coil__spin_t lock;        /* every field but parties */
	int parties;
	int count;                /* tasks inside wait */
	int held;                 /* newcomers in enter's wait, linked or woken */
	int state;
	coil__list_t waiting;     /* coil__waiter_t, by cb.link, in order */
	coil__list_t blocked;
};

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_barrier_t *b = w->source;
	coil__lock(&b->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&b->lock);
}

/* Under the lock: moves the waiters of l that can be claimed to `to`. */
static void take_all(coil__list_t *l, coil__list_t *to)
{
	coil__list_t *p = l->next;
	while (p != l) {
		coil__list_t *next = p->next;
		if (coil__waiter_claim(coil__container_of(p, coil__waiter_t, cb.link))) {
			coil__list_del(p);
			coil__list_push(to, p);
		}
		p = next;
	}
}

/* Without the lock: wakes the waiters take_all took. */
static void wake_all(coil__list_t *l, int code)
{
	while (!coil__list_empty(l)) {
		coil__list_t *n = l->next;
		coil__list_del(n);
		coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), code);
	}
}

/* Under the lock: counts a task out; the last one out of a drained or
 * reset round opens the barrier to newcomers, moved to `open`. */
static void leave(coil_barrier_t *b, coil__list_t *open)
{
	if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING)) {
		b->state = FILLING;
		take_all(&b->blocked, open);
	}
}

int coil_barrier_create(coil_barrier_t **out, int parties)
{
	if (!out || parties < 1)
		return -EINVAL;
	coil_barrier_t *b = coil__calloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	atomic_init(&b->lock.v, 0);
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
	coil__lock(&b->lock);
	bool busy = b->count || b->held || !coil__list_empty(&b->blocked);
	coil__unlock(&b->lock);
	if (busy)
		return -EBUSY;
	coil__free(b, sizeof(*b));
	return 0;
}

/*
 * Waits until the barrier fills or drains; returns with the lock held and
 * 0, or without it and the error. Checks for a cancellation that reached
 * the task since its last suspension before each wait.
 */
static int enter(coil_barrier_t *b, coil_task_t **out)
{
	/* Counted in b->held from queuing on `blocked` until we hold the
	 * lock again: a newcomer that was let go is off the list but not
	 * yet counted in, and the task that let it go (or another, on any
	 * worker) could otherwise destroy the barrier under it. */
	bool held = false;
	int rc;
	for (;;) {
		rc = coil__suspend_check(out);
		if (rc)
			break;
		coil__lock(&b->lock);
		if (held) {
			b->held--;
			held = false;
		}
		if (b->state != DRAINING && b->state != RESETTING)
			return 0;
		coil__waiter_t w;
		coil__waiter_init(&w, *out, waiter_unlink, b);
		w.what = "barrier";
		coil__list_push(&b->blocked, &w.cb.link);
		b->held++;
		held = true;
		coil__unlock(&b->lock);
		rc = coil__task_suspend(&w);
		if (rc)
			break;
	}
	if (held) {
		coil__lock(&b->lock);
		b->held--;
		coil__unlock(&b->lock);
	}
	return rc;
}

int coil_barrier_wait(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	coil_task_t *t;
	int rc = enter(b, &t);
	if (rc)
		return rc;
	if (b->state == BROKEN) {
		coil__unlock(&b->lock);
		return -EPIPE;
	}
	coil__list_t pass, open;
	coil__list_init(&pass);
	coil__list_init(&open);
	int index = b->count++;
	if (index + 1 == b->parties) {
		b->state = DRAINING;
		take_all(&b->waiting, &pass);
	} else {
		coil__waiter_t w;
		coil__waiter_init(&w, t, waiter_unlink, b);
		w.what = "barrier";
		coil__list_push(&b->waiting, &w.cb.link);
		coil__unlock(&b->lock);
		rc = coil__task_suspend(&w);
		coil__lock(&b->lock);
	}
	leave(b, &open);
	coil__unlock(&b->lock);
	wake_all(&pass, 0);
	wake_all(&open, 0);
	return rc ? rc : index;
}

int coil_barrier_reset(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	coil__list_t out, open;
	coil__list_init(&out);
	coil__list_init(&open);
	coil__lock(&b->lock);
	if (b->count > 0) {
		if (b->state != RESETTING) {
			b->state = RESETTING;
			take_all(&b->waiting, &out);
		}
	} else {
		b->state = FILLING;
		take_all(&b->blocked, &open);
	}
	coil__unlock(&b->lock);
	wake_all(&out, -EPIPE);
	wake_all(&open, 0);
	return 0;
}

int coil_barrier_abort(coil_barrier_t *b)
{
	if (!b)
		return -EINVAL;
	coil__list_t out, open;
	coil__list_init(&out);
	coil__list_init(&open);
	coil__lock(&b->lock);
	b->state = BROKEN;
	take_all(&b->waiting, &out);
	/* Held newcomers look again and find the barrier broken. */
	take_all(&b->blocked, &open);
	coil__unlock(&b->lock);
	wake_all(&out, -EPIPE);
	wake_all(&open, 0);
	return 0;
}

int coil_barrier_parties(const coil_barrier_t *b)
{
	return b ? b->parties : 0;
}

int coil_barrier_n_waiting(const coil_barrier_t *b)
{
	if (!b)
		return 0;
	coil_barrier_t *m = (coil_barrier_t *)b;
	coil__lock(&m->lock);
	int n = m->state == FILLING ? m->count : 0;
	coil__unlock(&m->lock);
	return n;
}

bool coil_barrier_broken(const coil_barrier_t *b)
{
	if (!b)
		return false;
	coil_barrier_t *m = (coil_barrier_t *)b;
	coil__lock(&m->lock);
	bool broken = m->state == BROKEN;
	coil__unlock(&m->lock);
	return broken;
}
