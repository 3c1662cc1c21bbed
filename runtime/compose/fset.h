/*
 * runtime/compose/fset.h: a watched set of futures, the machinery under
 * gather, wait and as_completed.
 *
 * A set records the order in which its futures complete (order[0..nord)),
 * through one done-callback per pending future, and lets one task wait
 * until a condition of the primitive's (ready) holds, with an optional
 * deadline. Futures done when the set starts watching are recorded at once,
 * in argument order, which is the order asyncio's done-callbacks for them
 * would run in.
 *
 * Lifetime: the set is reference counted: one reference for its owner (the
 * primitive), one for each done-callback registered or queued, one for a
 * task suspended in coil__fset_wait. The owner leaves with
 * coil__fset_detach, which removes the callbacks still in the futures'
 * lists; callbacks already queued on the loop run later against the
 * detached set and only drop their reference. With keep_tasks, callbacks on
 * tasks stay registered after detach so that an error a child ends with is
 * marked retrieved (asyncio's gather does that); a task always completes,
 * so they always run. Plain futures never keep a callback after detach: a
 * pending future released by its owner frees its callbacks unrun.
 *
 * Protocol: the waiting task is woken exactly once per suspension, by
 * whoever claims its waiter first (coil__waiter_claim): a callback that
 * finds ready() true, the deadline timer (armed with
 * coil__waiter_timer_arm, which wakes with 0), cancellation (through the
 * waiter's cancel hook), or detach by another party (COIL_ECLOSED). A
 * callback or a detach that wins the claim clears s->waiter; the cancel
 * hook clears it for a canceller; after a timer wake-up the task clears it
 * itself, and tells the timeout from the clock.
 *
 * Threads: the owner's task and the waiting task may run on any worker, and
 * each done-callback runs on its future's loop, which may be another
 * worker's thread. `lock` (a spinlock, free of cost until a multi-worker
 * runtime exists) guards refs, detached, waiter, nord and order, each
 * slot's `watched`, and the primitive's own state that ready() and the
 * owner read (ready() is always called under it). It is never held across
 * a suspension, a future's own lock (adding and removing callbacks happen
 * outside it) or a wake-up: a waiter is claimed under the lock and woken
 * after it is dropped. The futures may belong to different loops of one
 * runtime; their loops share one clock (the virtual clock needs a single
 * worker), so `loop` is only where deadlines are read.
 */
#ifndef COIL_RUNTIME_COMPOSE_FSET_H
#define COIL_RUNTIME_COMPOSE_FSET_H

#include "coil/compose.h"
#include "core.h"

typedef struct coil__fset coil__fset_t;

typedef struct coil__fslot {
	coil__fset_t *set;
	coil_future_t *f;
	bool watched;             /* its callback is registered or queued */
} coil__fslot_t;

struct coil__fset {
	coil__spin_t lock;        /* see "Threads" above */
	uint32_t refs;
	bool detached;            /* the owner stopped watching, or left */
	bool keep_tasks;          /* see above; set before watching */
	coil__waiter_t *waiter;   /* the task waiting, or NULL */
	coil_loop_t *loop;        /* the clock deadlines are read on */
	bool (*ready)(coil__fset_t *s); /* called under lock */
	void *ctx;                /* the primitive's own state */
	int64_t until;            /* completions from then on are not
				   * recorded (COIL_FOREVER: always are) */
	size_t n;
	size_t nord;              /* completions recorded */
	size_t *order;            /* indices, in completion order */
	coil__fslot_t *slots;
};

/*
 * Makes a set over fs[0..n) (n may be 0) whose waiter wakes when
 * ready(s) is true. Checks the futures (none NULL, all of one loop or of
 * loops of one runtime, that of the running loop if there is one, and not
 * the calling task). Returns 0, -EINVAL, -EXDEV, -EDEADLK or -ENOMEM.
 * Watches nothing yet.
 */
int coil__fset_create(coil__fset_t **out, coil_future_t *const *fs, size_t n,
		      bool (*ready)(coil__fset_t *s), void *ctx);

/* Records the futures already done and registers a callback on the others.
 * Returns 0 or -ENOMEM (the owner then detaches). */
int coil__fset_watch(coil__fset_t *s);

/*
 * Suspends task t (the current one) until ready(s), or until the loop time
 * reaches deadline (COIL_FOREVER: none). Returns 0 when ready, -ETIMEDOUT,
 * -ECANCELED, COIL_ECLOSED (loop force-close, or the set was detached by
 * another party: the caller must then not touch the owner's state), -EBUSY
 * when another task waits already, or -ENOMEM.
 */
int coil__fset_wait(coil__fset_t *s, coil_task_t *t, int64_t deadline);

/* Stops recording: removes the callbacks (but those on tasks with
 * keep_tasks); what was recorded stays readable. The owner keeps s. */
void coil__fset_stop(coil__fset_t *s);

/* The owner leaves (stopping the set first if needed): see the top of this
 * file. s is invalid afterwards. */
void coil__fset_detach(coil__fset_t *s);

/* A reference of the caller's own, for a task that must read the set
 * after its owner may have detached it; dropped with coil__fset_unref
 * (without the lock), which frees the set after the last one. */
void coil__fset_ref(coil__fset_t *s);
void coil__fset_unref(coil__fset_t *s);

/* True if f ended with an error (not a cancellation). */
static inline bool coil__future_failed(const coil_future_t *f)
{
	return atomic_load_explicit(&((coil_future_t *)f)->state,
				    memory_order_acquire) == COIL__F_ERROR;
}

/* Deadline `delay` ns from the loop's now; COIL_FOREVER stays so. */
static inline int64_t coil__deadline(coil_loop_t *loop, int64_t delay)
{
	if (delay == COIL_FOREVER)
		return COIL_FOREVER;
	int64_t now = coil__loop_now(loop);
	return delay > INT64_MAX - now ? INT64_MAX : now + delay;
}

#endif
