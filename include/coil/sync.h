/*
 * coil/sync.h: synchronisation primitives for tasks, asyncio's Queue
 * (FIFO, LIFO, priority), Lock, Event, Condition, Semaphore,
 * BoundedSemaphore and Barrier.
 *
 * The semantics are asyncio's (Python 3.13) with one deliberate difference:
 * every primitive hands over what it gives directly to the first waiter, in
 * arrival order. A released lock goes to the task that has waited longest, a
 * released permit to the first task blocked on the semaphore, a put item to
 * the first blocked getter, and a get that frees a slot in a full queue moves
 * the first blocked putter's item in. Nothing can be taken by a task that
 * came later (asyncio lets a newcomer barge in before the woken waiter runs).
 *
 * Awaits. The calls documented as awaits (acquire, wait, get, put, join)
 * suspend the calling task; they must be called from inside a task and
 * return COIL_EINVALSTATE elsewhere. Like coil_await, each first delivers a
 * cancellation that is pending on the task (returning -ECANCELED), even when
 * it would not have had to wait. An await that is cancelled while it waits
 * returns -ECANCELED and leaves nothing behind: the waiter is unlinked, it is
 * handed nothing later, and no item or permit is lost. What was handed to a
 * waiter before the cancellation arrived (an item, the lock, a permit, a
 * notification, a barrier pass) stays its own: the await returns success and
 * the cancellation is delivered at the task's next await (DESIGN.md section
 * 6). COIL_ECLOSED is returned when the loop force-closes the waiting task.
 * Awaits take no timeout: bound them with coil_wait_for or a timeout scope.
 *
 * Non-blocking calls (the *_nowait ones, release, set, notify, shutdown,
 * accessors) never suspend and may also be called from callbacks. Calls that
 * would block return -EAGAIN.
 *
 * Ownership: every object is created by the library and freed with its
 * destroy call, which is refused with -EBUSY while tasks wait on it. Queue
 * items are opaque void * that the queue never
 * dereferences: see coil_queue_set_item_dtor for what happens to items still
 * in a queue when it is shut down immediately or destroyed.
 *
 * Threads: an object may be used by tasks (and callbacks) on any workers of
 * one runtime at once; each holds a spinlock over its state, taken for a
 * few pointer updates per call (and for nothing while no multi-worker
 * runtime exists). A priority queue's compare function runs under that
 * lock: it must be quick and must not call into the queue. Plain threads
 * outside the runtime hand work in with the thread-safe calls
 * (coil/threadsafe.h), not through these objects. "Loop thread" below
 * means any thread running a loop of that runtime (a task or a callback
 * there), or the thread of a standalone loop; "any thread" (the create
 * calls) includes plain threads.
 *
 * This header compiles as C11 and as C++.
 */
#ifndef COIL_SYNC_H
#define COIL_SYNC_H

#include "common.h"
#include "cm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Queue                                                              */
/* ------------------------------------------------------------------ */

typedef struct coil_queue coil_queue_t;

typedef enum coil_queue_kind {
	COIL_QUEUE_FIFO = 0,     /* asyncio.Queue: first in, first out */
	COIL_QUEUE_LIFO = 1,     /* asyncio.LifoQueue: last in, first out */
	COIL_QUEUE_PRIORITY = 2  /* asyncio.PriorityQueue: smallest first */
} coil_queue_kind_t;

/*
 * Orders the items of a priority queue: returns < 0 when a comes out before
 * b, > 0 when after, 0 when they are equal (equal items come out in the
 * order they were put). `arg` is the one given to coil_queue_set_compare.
 */
typedef int (*coil_queue_cmp)(const void *a, const void *b, void *arg);

/*
 * Creates an empty queue of the given kind holding at most `maxsize` items
 * (0: unbounded). A priority queue orders its items as signed integers
 * ((intptr_t)item, smallest first) until coil_queue_set_compare gives it
 * another order. Items are stored in a growing ring buffer (FIFO, LIFO) or
 * a binary heap (priority): nothing is allocated per item. *out gets the
 * queue, owned by the caller (coil_queue_destroy). Returns 0, -EINVAL (out
 * NULL, an unknown kind, or a maxsize above PTRDIFF_MAX, which is what a
 * negative size becomes) or -ENOMEM. Any thread.
 */
COIL_API int coil_queue_create(coil_queue_t **out, coil_queue_kind_t kind,
			       size_t maxsize);

/*
 * Sets the order of a priority queue (cmp NULL: back to comparing items as
 * intptr_t). Only while the queue is empty. Returns 0, -EINVAL (q NULL or
 * not a priority queue) or -EBUSY (items are in it).
 */
COIL_API int coil_queue_set_compare(coil_queue_t *q, coil_queue_cmp cmp,
				    void *arg);

/*
 * Sets the destructor the queue runs on each item it drops: the items left
 * when coil_queue_shutdown(q, true) or coil_queue_destroy runs. Without one
 * (the default), dropped items are forgotten and stay the caller's to free,
 * so keep another way to reach them. Returns 0 or -EINVAL (q NULL).
 */
COIL_API int coil_queue_set_item_dtor(coil_queue_t *q, coil_dtor dtor);

/*
 * Frees the queue, running the item destructor (if set) on the items still
 * in it. Returns 0, -EINVAL (q NULL) or -EBUSY while tasks wait in get, put
 * or join (nothing is freed then). Loop thread.
 */
COIL_API int coil_queue_destroy(coil_queue_t *q);

/*
 * Await: puts `item` in the queue, waiting while it is full. Blocked putters
 * are served in arrival order; when a task is waiting in get, the item goes
 * straight to the first one. On 0 the item belongs to the queue (and then
 * its getter). Returns 0, COIL_ECLOSED once the queue is shut down (also
 * for a putter blocked when that happens: the item was not put and is still
 * the caller's), -ECANCELED (not put), -ENOMEM, -EINVAL (q NULL) or
 * COIL_EINVALSTATE outside a task. Loop thread.
 */
COIL_API int coil_queue_put(coil_queue_t *q, void *item);

/*
 * Puts `item` without waiting. Returns 0, -EAGAIN when the queue is full,
 * COIL_ECLOSED once it is shut down, -ENOMEM or -EINVAL. Loop thread.
 */
COIL_API int coil_queue_put_nowait(coil_queue_t *q, void *item);

/*
 * Await: takes the next item (the oldest for FIFO, the newest for LIFO, the
 * smallest for priority) into *item, waiting while the queue is empty.
 * Blocked getters are served in arrival order. On 0 the caller owns the item
 * (and should call coil_queue_task_done when it has processed it, if anyone
 * joins the queue). After a shutdown, get still drains the items left and
 * then returns COIL_ECLOSED. Returns 0, COIL_ECLOSED, -ECANCELED (nothing
 * was taken), -EINVAL (q or item NULL) or COIL_EINVALSTATE outside a task.
 * Loop thread.
 */
COIL_API int coil_queue_get(coil_queue_t *q, void **item);

/*
 * Takes the next item without waiting. Returns 0, -EAGAIN when the queue is
 * empty, COIL_ECLOSED when it is empty and shut down, or -EINVAL. Loop
 * thread.
 */
COIL_API int coil_queue_get_nowait(coil_queue_t *q, void **item);

/*
 * Marks one item taken out of the queue as processed (Queue.task_done).
 * Each put counts one unfinished item; join waits until all are done.
 * Returns 0, or -EINVAL when called more times than items were put (asyncio's
 * ValueError) or q is NULL. Loop thread.
 */
COIL_API int coil_queue_task_done(coil_queue_t *q);

/*
 * Await: waits until every item put has been marked done with
 * coil_queue_task_done (at once when none is unfinished). Returns 0,
 * -ECANCELED, -EINVAL or COIL_EINVALSTATE outside a task. Loop thread.
 */
COIL_API int coil_queue_join(coil_queue_t *q);

/*
 * Shuts the queue down (Python 3.13's Queue.shutdown): put and put_nowait
 * return COIL_ECLOSED from now on, and so do blocked putters; get returns
 * the items left, then COIL_ECLOSED, and blocked getters (the queue is empty
 * when there are some) wake with COIL_ECLOSED. With `immediate`, the items
 * left are dropped at once (see coil_queue_set_item_dtor), each counting as
 * done for join, and joiners wake if nothing is unfinished any more. Calling
 * it again is allowed (an immediate call then drops what is left). Returns 0
 * or -EINVAL. Loop thread.
 */
COIL_API int coil_queue_shutdown(coil_queue_t *q, bool immediate);

/* Returns the number of items in the queue (items handed straight to a
 * waiting getter never count); 0 for NULL. */
COIL_API size_t coil_queue_qsize(const coil_queue_t *q);

/* Returns true when the queue holds no item (also for NULL). */
COIL_API bool coil_queue_empty(const coil_queue_t *q);

/* Returns true when the queue is bounded and holds maxsize items. */
COIL_API bool coil_queue_full(const coil_queue_t *q);

/* Returns the queue's maxsize (0: unbounded, also for NULL). */
COIL_API size_t coil_queue_maxsize(const coil_queue_t *q);

/* Returns true once coil_queue_shutdown has been called. */
COIL_API bool coil_queue_is_shutdown(const coil_queue_t *q);

/* ------------------------------------------------------------------ */
/* Lock                                                               */
/* ------------------------------------------------------------------ */

typedef struct coil_lock coil_lock_t;

/*
 * Creates an unlocked lock (asyncio.Lock). *out gets it, owned by the
 * caller. Returns 0, -EINVAL or -ENOMEM. Any thread.
 */
COIL_API int coil_lock_create(coil_lock_t **out);

/*
 * Frees the lock, also while it is held (its holder must not touch it
 * again). Returns 0, -EINVAL (NULL) or -EBUSY while tasks wait for it.
 * Loop thread.
 */
COIL_API int coil_lock_destroy(coil_lock_t *l);

/*
 * Await: acquires the lock for the calling task, waiting while another task
 * holds it. Waiters get the lock in arrival order, handed over by release.
 * Returns 0 (the task holds the lock), -ECANCELED (it does not), -EDEADLK
 * when the task already holds it (asyncio would hang), -EINVAL (NULL),
 * COIL_EINVALSTATE outside a task. Loop thread.
 */
COIL_API int coil_lock_acquire(coil_lock_t *l);

/*
 * Acquires the lock if it is free, for the calling task (or, from a
 * callback, for no task: release it from a callback then). Returns 0,
 * -EAGAIN when it is held, -EINVAL. Loop thread.
 */
COIL_API int coil_lock_acquire_nowait(coil_lock_t *l);

/*
 * Releases the lock held by the calling task; the first waiter, if any,
 * holds it from now on. Returns 0, COIL_EINVALSTATE when the lock is not
 * held or held by another task (asyncio's RuntimeError), -EINVAL (NULL).
 * Loop thread.
 */
COIL_API int coil_lock_release(coil_lock_t *l);

/* Returns true while the lock is held (false for NULL). */
COIL_API bool coil_lock_locked(const coil_lock_t *l);

/*
 * Returns a context manager for COIL_ASYNC_WITH (coil/cm.h): enter is
 * coil_lock_acquire, exit coil_lock_release, so the lock is released
 * however the block is left.
 *
 *     COIL_ASYNC_WITH(coil_lock_cm(lock), rc) { ... }
 */
COIL_API coil_cm_t coil_lock_cm(coil_lock_t *l);

/* ------------------------------------------------------------------ */
/* Event                                                              */
/* ------------------------------------------------------------------ */

typedef struct coil_event coil_event_t;

/* Creates a clear event (asyncio.Event). Returns 0, -EINVAL or -ENOMEM.
 * Any thread. */
COIL_API int coil_event_create(coil_event_t **out);

/* Frees the event. Returns 0, -EINVAL or -EBUSY while tasks wait on it.
 * Loop thread. */
COIL_API int coil_event_destroy(coil_event_t *e);

/*
 * Sets the event and wakes every waiting task, in arrival order; waits
 * return at once while it stays set. A woken waiter returns 0 even if the
 * event is cleared before it runs. Returns 0 or -EINVAL. Loop thread.
 */
COIL_API int coil_event_set(coil_event_t *e);

/* Clears the event. Returns 0 or -EINVAL. Loop thread. */
COIL_API int coil_event_clear(coil_event_t *e);

/* Returns true while the event is set (false for NULL). */
COIL_API bool coil_event_is_set(const coil_event_t *e);

/*
 * Await: waits until the event is set (at once if it is). Returns 0,
 * -ECANCELED, -EINVAL or COIL_EINVALSTATE outside a task. Loop thread.
 */
COIL_API int coil_event_wait(coil_event_t *e);

/* ------------------------------------------------------------------ */
/* Condition                                                          */
/* ------------------------------------------------------------------ */

typedef struct coil_condition coil_condition_t;

/*
 * Creates a condition variable (asyncio.Condition) over `lock`, which the
 * caller keeps owning and must not destroy before the condition; lock NULL
 * gives the condition a lock of its own, freed with it. Returns 0, -EINVAL
 * or -ENOMEM. Any thread.
 */
COIL_API int coil_condition_create(coil_condition_t **out, coil_lock_t *lock);

/*
 * Frees the condition (and its own lock). Returns 0, -EINVAL, or -EBUSY
 * while tasks are inside coil_condition_wait on it (waiting, or notified
 * and still taking the lock back, perhaps on another worker) or wait on its
 * own lock. Loop thread.
 */
COIL_API int coil_condition_destroy(coil_condition_t *c);

/* Returns the condition's lock (acquire it with coil_lock_acquire or
 * coil_lock_cm), or NULL for NULL. */
COIL_API coil_lock_t *coil_condition_lock(coil_condition_t *c);

/*
 * Await: releases the lock, which the calling task must hold, waits until
 * notified, and re-acquires the lock before returning, also when the wait
 * was cancelled (as asyncio does). Returns 0 when notified, -ECANCELED when
 * cancelled (a notification it had received by then is passed on to the
 * next waiter, so none is lost), COIL_EINVALSTATE when the task does not
 * hold the lock or outside a task, -EINVAL. The lock is held on every
 * return except COIL_EINVALSTATE and -EINVAL (where nothing changed) and
 * COIL_ECLOSED (the loop force-closed the task while the lock was taken by
 * someone else). Loop thread.
 */
COIL_API int coil_condition_wait(coil_condition_t *c);

/*
 * Await: waits (coil_condition_wait) until pred(arg) returns true; checks
 * it first, so it may return at once. The lock must be held. Returns 0 (the
 * predicate is true, the lock held), or the error of the failing wait.
 * Loop thread.
 */
COIL_API int coil_condition_wait_for(coil_condition_t *c,
				     bool (*pred)(void *arg), void *arg);

/*
 * Wakes up to n waiting tasks, in arrival order. The lock must be held (as
 * in asyncio, by any task). Returns how many were woken, COIL_EINVALSTATE
 * when the lock is not held, -EINVAL (NULL, n < 0). Loop thread.
 */
COIL_API int coil_condition_notify(coil_condition_t *c, int n);

/* Wakes every waiting task; as coil_condition_notify. */
COIL_API int coil_condition_notify_all(coil_condition_t *c);

/* ------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore                                     */
/* ------------------------------------------------------------------ */

typedef struct coil_semaphore coil_semaphore_t;

/*
 * Creates a semaphore with `value` permits (asyncio.Semaphore). Returns 0,
 * -EINVAL (out NULL, value < 0) or -ENOMEM. Any thread.
 */
COIL_API int coil_semaphore_create(coil_semaphore_t **out, int value);

/*
 * Creates a bounded semaphore (asyncio.BoundedSemaphore): a release that
 * would raise its value above `value` fails with -EOVERFLOW (asyncio's
 * ValueError). Returns as coil_semaphore_create.
 */
COIL_API int coil_bounded_semaphore_create(coil_semaphore_t **out, int value);

/* Frees the semaphore. Returns 0, -EINVAL or -EBUSY while tasks wait on it.
 * Loop thread. */
COIL_API int coil_semaphore_destroy(coil_semaphore_t *s);

/*
 * Await: takes a permit, waiting while there is none. Waiters are served in
 * arrival order: a release hands its permit straight to the first one.
 * Returns 0, -ECANCELED (no permit taken), -EINVAL or COIL_EINVALSTATE
 * outside a task. Loop thread.
 */
COIL_API int coil_semaphore_acquire(coil_semaphore_t *s);

/* Takes a permit if one is free. Returns 0, -EAGAIN or -EINVAL. Loop
 * thread. */
COIL_API int coil_semaphore_acquire_nowait(coil_semaphore_t *s);

/*
 * Gives a permit back (any task or callback may): to the first waiter if
 * there is one, else to the semaphore. Returns 0, -EOVERFLOW when a bounded
 * semaphore would go above its initial value or any semaphore above INT_MAX,
 * -EINVAL. Loop thread.
 */
COIL_API int coil_semaphore_release(coil_semaphore_t *s);

/* Returns the number of free permits (0 for NULL). */
COIL_API int coil_semaphore_value(const coil_semaphore_t *s);

/* Returns true when no permit is free, so acquire would wait. */
COIL_API bool coil_semaphore_locked(const coil_semaphore_t *s);

/* Returns a context manager for COIL_ASYNC_WITH: enter is
 * coil_semaphore_acquire, exit coil_semaphore_release. */
COIL_API coil_cm_t coil_semaphore_cm(coil_semaphore_t *s);

/* ------------------------------------------------------------------ */
/* Barrier                                                            */
/* ------------------------------------------------------------------ */

typedef struct coil_barrier coil_barrier_t;

/*
 * Creates a barrier for `parties` tasks (asyncio.Barrier). Returns 0,
 * -EINVAL (out NULL, parties < 1) or -ENOMEM. Any thread.
 */
COIL_API int coil_barrier_create(coil_barrier_t **out, int parties);

/* Frees the barrier. Returns 0, -EINVAL or -EBUSY while tasks are inside
 * coil_barrier_wait. Loop thread. */
COIL_API int coil_barrier_destroy(coil_barrier_t *b);

/*
 * Await: waits until `parties` tasks have called it, then lets them all
 * through. Returns the task's arrival index in this round (0 to parties-1,
 * as asyncio does). Tasks that arrive while the previous round is still
 * leaving (or while a reset is in progress) wait for that first. Returns -EPIPE
 * when the barrier is broken: aborted (coil_barrier_abort), or reset while
 * the task waited (asyncio's BrokenBarrierError); -ECANCELED (the task is
 * not counted any more; the barrier stays usable), -EINVAL,
 * COIL_EINVALSTATE outside a task. Loop thread.
 */
COIL_API int coil_barrier_wait(coil_barrier_t *b);

/*
 * Returns the barrier to its empty state: tasks waiting in it get -EPIPE, and
 * it is usable again once they have left. Returns 0 or -EINVAL. Loop thread.
 */
COIL_API int coil_barrier_reset(coil_barrier_t *b);

/*
 * Breaks the barrier: waiting tasks and every later wait get -EPIPE until
 * coil_barrier_reset. Returns 0 or -EINVAL. Loop thread.
 */
COIL_API int coil_barrier_abort(coil_barrier_t *b);

/* Returns the number of parties the barrier needs (0 for NULL). */
COIL_API int coil_barrier_parties(const coil_barrier_t *b);

/* Returns the number of tasks waiting for the current round to fill. */
COIL_API int coil_barrier_n_waiting(const coil_barrier_t *b);

/* Returns true while the barrier is broken (aborted and not yet reset). */
COIL_API bool coil_barrier_broken(const coil_barrier_t *b);

#ifdef __cplusplus
}
#endif
#endif /* COIL_SYNC_H */
