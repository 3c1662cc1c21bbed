/*
 * coil/future.h: futures, asyncio.Future in C.
 *
 * A future is pending until it gets a result (a void * with an optional
 * destructor), an error (a negative code and an optional message), or is
 * cancelled. Tasks await futures with coil_await(); done-callbacks are
 * scheduled on the future's loop with call_soon when it completes, never run
 * inline.
 *
 * Ownership: futures are reference counted. coil_future_create() returns one
 * reference; coil_future_ref() adds one, coil_future_release() drops one.
 * The future owns its result and runs the result's destructor once, when its
 * last reference goes. An error that nobody retrieved (coil_await,
 * coil_future_result or coil_future_exception) is reported through the loop's
 * exception handler at that moment, as asyncio's "exception was never
 * retrieved".
 *
 * Threads: a future belongs to the loop it was created on; use it from that
 * loop's thread (on a multi-worker runtime, from any of its workers). A
 * plain thread may also resolve it (coil_future_set_result,
 * coil_future_set_exception, coil_future_cancel) and release its reference:
 * a future of a multi-worker runtime is resolved right there; one of a loop
 * that is the only one running its tasks (a standalone loop, a one-worker
 * runtime) is resolved on that loop's thread, to which the call hands it
 * (returning 0 once handed over, -ENOMEM, or COIL_ECLOSED if the loop
 * closed meanwhile), so that its tasks' wake-ups all happen on that
 * thread. A task's future is the exception: it is never set, and is
 * cancelled as coil_task_cancel does (coil/task.h); from a plain thread
 * while such a loop runs, the cancellation is handed to that loop too
 * (see coil_future_cancel).
 */
#ifndef COIL_FUTURE_H
#define COIL_FUTURE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Creates a pending future on `loop` (NULL: the running loop, or the calling
 * thread's current loop). *out gets a new reference, the caller's to drop
 * with coil_future_release. Returns 0, -EINVAL (out NULL, no loop, or a
 * runtime's COIL_ANY_WORKER stand-in, which owns no futures), -ENOMEM, or
 * COIL_ECLOSED if the loop is closed.
 */
COIL_API int coil_future_create(coil_future_t **out, coil_loop_t *loop);

/* Adds a reference. Returns f. */
COIL_API coil_future_t *coil_future_ref(coil_future_t *f);

/* Drops a reference; the last one frees the future (see above). NULL is
 * allowed. */
COIL_API void coil_future_release(coil_future_t *f);

/* Returns true when the future has a result, an error or was cancelled. */
COIL_API bool coil_future_done(const coil_future_t *f);

/* Returns true when the future was cancelled. */
COIL_API bool coil_future_cancelled(const coil_future_t *f);

/*
 * Cancels the future with an optional message (copied; NULL for none) and
 * schedules its callbacks. For a task this is coil_task_cancel(), which a
 * plain thread may call this way on any loop: for a task of a loop that
 * runs all of its tasks on its own thread (a standalone loop, a one-worker
 * runtime) the request is handed to that loop while it runs, and true then
 * means it was handed over: the loop makes the request when it runs the
 * hand-over, unless the task has ended by then. Returns true if it was
 * cancelled (or, for a task, cancellation was requested or handed over),
 * false if it was already done, or if, called from a thread other than the
 * running loop's, the hand-over to that loop could not be allocated (it
 * stays pending; the same if that loop closed meanwhile). Out of memory for
 * the message, it is cancelled without one.
 */
COIL_API bool coil_future_cancel(coil_future_t *f, const char *msg);

/*
 * Gets the outcome: returns 0 and writes the result (borrowed: the future
 * still owns it) to *result (if not NULL); or returns the error code,
 * -ECANCELED if it was cancelled, COIL_EINVALSTATE if it is still pending.
 * Marks the error retrieved.
 */
COIL_API int coil_future_result(coil_future_t *f, void **result);

/*
 * Returns the error code of a done future (0 if it has a result,
 * -ECANCELED if cancelled), or COIL_EINVALSTATE if pending. Marks the
 * error retrieved.
 */
COIL_API int coil_future_exception(coil_future_t *f);

/*
 * Returns the message attached to the error or cancellation (borrowed, valid
 * while the future lives), or NULL.
 */
COIL_API const char *coil_future_error_message(const coil_future_t *f);

/*
 * Sets the result; the future takes ownership of `value` and calls dtor(value)
 * (if dtor is not NULL) when its last reference goes. Returns 0;
 * COIL_EINVALSTATE if the future is done (the value stays the caller's) or is
 * a task; -ENOMEM from a thread other than the running loop's, whose
 * completion is handed to that loop, when the hand-over cannot be allocated,
 * or COIL_ECLOSED when that loop closed meanwhile (either way the future
 * stays pending and the value the caller's).
 */
COIL_API int coil_future_set_result(coil_future_t *f, void *value,
				    coil_dtor dtor);

/*
 * Sets an error: `err` must be negative; `msg` (copied) may be NULL. Returns
 * 0, -EINVAL for err >= 0, COIL_EINVALSTATE if done or a task, or -ENOMEM
 * (copying msg, or as coil_future_set_result from another thread: the
 * future stays pending), or COIL_ECLOSED as coil_future_set_result. err
 * -ECANCELED cancels the future (coil_future_cancelled is then true).
 */
COIL_API int coil_future_set_exception(coil_future_t *f, int err,
				       const char *msg);

/*
 * Adds a done-callback: cb(f, arg) runs on the future's loop, scheduled with
 * call_soon once the future is done (at once if it already is). Callbacks run
 * in the order they were added. Returns 0, -EINVAL (cb NULL) or -ENOMEM.
 * arg is the caller's: it must stay valid until the callback has run or
 * was removed.
 */
COIL_API int coil_future_add_done_callback(coil_future_t *f, coil_done_cb cb,
					   void *arg);

/*
 * Removes every pending done-callback equal to (cb, arg). Returns how many
 * were removed.
 */
COIL_API int coil_future_remove_done_callback(coil_future_t *f,
					      coil_done_cb cb, void *arg);

/* Returns the loop the future belongs to. */
COIL_API coil_loop_t *coil_future_loop(const coil_future_t *f);

/*
 * From inside a task: suspends the task until f is done and returns its code
 * (0 or its error; -ECANCELED if f was cancelled or the awaiting task is being
 * cancelled: coil_task_cancelling tells which). On 0, *result (if not NULL)
 * gets the result, borrowed from the future. Awaiting a done future returns
 * at once. Returns COIL_EINVALSTATE outside a task, -EDEADLK when a task
 * awaits itself, -EXDEV when f belongs to a loop that is neither the task's
 * nor another worker of its runtime (asyncio: a future attached to a
 * different loop), -EINVAL for f NULL, COIL_ECLOSED while the task's
 * coroutine is being closed. The caller keeps its reference to f.
 *
 * Joins: on a runtime with several workers, awaiting the future of a task
 * that waits at the bottom of the calling worker's deque (a child just
 * spawned and not taken by another worker: fork-join) runs that task at
 * once, on this worker, as a call, as oneTBB's task_group::wait and Cilk's
 * sync do; only if it suspends does the awaiting task wait for it as for
 * any future. The child may so run ahead of a task this worker woke just
 * before, and a cancellation of the awaiting task that arrives while the
 * child runs so is delivered when the await returns (-ECANCELED; the child
 * goes on). A one-worker runtime and a standalone loop keep
 * asyncio's order: the child runs when its turn comes.
 */
COIL_API int coil_await(coil_future_t *f, void **result);

#ifdef __cplusplus
}
#endif
#endif /* COIL_FUTURE_H */
