/*
 * coil/threadsafe.h: entry from other threads, and concurrent futures.
 *
 * coil_run_coroutine_threadsafe() is asyncio's run_coroutine_threadsafe: any
 * thread hands a coroutine (a coil_fn) to a loop, which runs it as a task,
 * and gets back a concurrent future (coil_cfuture_t), Python's
 * concurrent.futures.Future: a plain thread may block on it with a timeout,
 * add done-callbacks to it and cancel it (which cancels the task). Its
 * partner for plain callbacks is coil_loop_call_soon_threadsafe() (loop.h).
 *
 * A concurrent future is not a coil_future_t: a coil_future_t belongs to
 * its loop's thread, while a coil_cfuture_t may be used from any thread at
 * once (it has a lock of its own). Tasks await futures; threads wait on
 * concurrent futures.
 *
 * Outcomes are those of futures: 0 and a result, a negative error code with
 * an optional message, or cancellation (-ECANCELED). COIL_ECLOSED means that
 * the loop was closed before the coroutine could be scheduled on it.
 *
 * Ownership: concurrent futures are reference counted and every call here
 * that makes one gives the caller one reference. The result belongs to the
 * concurrent future, which calls its destructor (the result_dtor of the
 * spawn options, or the one given to coil_cfuture_set_result) once, when the
 * last reference goes, on whichever thread drops it: such a destructor must
 * be safe to call from any thread. The loop side of
 * coil_run_coroutine_threadsafe holds a reference of its own until the task
 * has ended, so a caller may release its reference at any time.
 *
 * Threads: every call here may be made from any thread, unless it says
 * otherwise. A coroutine handed to a runtime's worker loop runs as a task
 * of that runtime and may move between its workers; one handed to
 * coil_runtime_loop(rt, COIL_ANY_WORKER) starts on whichever worker takes
 * it (coil/runtime.h).
 */
#ifndef COIL_THREADSAFE_H
#define COIL_THREADSAFE_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_cfuture coil_cfuture_t;

/* A concurrent future's done-callback receives the future (borrowed: valid
 * during the call) and its argument. */
typedef void (*coil_cfuture_cb)(coil_cfuture_t *f, void *arg);

/*
 * Hands fn(arg, &result) to `loop`, which runs it as a task made with
 * coil_loop_create_task (so the loop's task factory applies), and returns a
 * concurrent future of its outcome through *out (NULL: nobody will look at
 * the outcome; an error the task returns is then reported by the loop's
 * exception handler, as for a detached task). The task is created by a
 * callback queued with coil_loop_call_soon_threadsafe, so coroutines handed
 * over by one thread start in the order they were handed over.
 *
 * The outcome is the task's: fn's result (owned by the concurrent future,
 * see above), or its error code and the message set with coil_errorf, or
 * -ECANCELED if the task ended cancelled. If the loop is closed before the
 * task is created, the outcome is COIL_ECLOSED and fn never runs; a task
 * still pending when the loop closes is cancelled by coil_loop_close. For a
 * runtime's loop, the same holds once coil_runtime_shutdown has stopped
 * waiting for the tasks: no task is created after that (COIL_ECLOSED), and
 * one created before is waited for or cancelled with the others.
 *
 * Returns 0; -EINVAL if loop or fn is NULL; -ENOMEM (or -EAGAIN, as
 * coil_cfuture_create); COIL_ECLOSED if the loop is already closed (only
 * while the closed loop's memory is still alive, which it is as long as
 * futures of it are: a loop pointer is invalid once coil_loop_close has
 * freed it). On failure fn never runs and *out is untouched. Any thread,
 * the loop's own included.
 */
COIL_API int coil_run_coroutine_threadsafe(coil_cfuture_t **out,
					   coil_loop_t *loop, coil_fn fn,
					   void *arg);

/*
 * As coil_run_coroutine_threadsafe, with spawn options (NULL: defaults). The
 * name is copied; result_dtor becomes the destructor of the result held by
 * the concurrent future (so it must be callable from any thread); stack_size
 * and pinned apply to the task. Any thread.
 */
COIL_API int coil_run_coroutine_threadsafe_opts(coil_cfuture_t **out,
						coil_loop_t *loop, coil_fn fn,
						void *arg,
						const coil_spawn_opts_t *opts);

/*
 * Creates a pending concurrent future with no task behind it, for code that
 * completes it itself with coil_cfuture_set_result or
 * coil_cfuture_set_exception (a thread pool, say); coil_cfuture_cancel just
 * marks it cancelled. *out gets a reference. Returns 0, -EINVAL (out NULL),
 * -ENOMEM, or the error of initialising its mutex or condition variable
 * (-EAGAIN). Any thread.
 */
COIL_API int coil_cfuture_create(coil_cfuture_t **out);

/* Adds a reference. Returns f (NULL for NULL). Any thread. */
COIL_API coil_cfuture_t *coil_cfuture_ref(coil_cfuture_t *f);

/*
 * Drops a reference; the last one runs the result's destructor (on the
 * calling thread) and frees the future. NULL is allowed. Any thread.
 */
COIL_API void coil_cfuture_release(coil_cfuture_t *f);

/*
 * Blocks the calling thread until f is done or `timeout_ns` nanoseconds have
 * passed (COIL_FOREVER: no limit; 0: do not block, just look). Returns the
 * outcome: 0, writing the result to *result if result is not NULL (borrowed:
 * valid while the caller holds its reference); the error code; -ECANCELED
 * if f was cancelled. Returns -ETIMEDOUT if f is not done in time, -EINVAL
 * for f NULL or a negative timeout other than COIL_FOREVER, and -EDEADLK
 * when called with a non-zero timeout on the thread running the loop that
 * must complete f (it would wait for itself; Python hangs there), or, for
 * a coroutine handed to COIL_ANY_WORKER of a runtime of one worker, on
 * that worker's thread. On a runtime of more workers a worker that waits
 * for a coroutine handed to COIL_ANY_WORKER is not refused: it blocks
 * while the other workers run the coroutine.
 *
 * Any thread; but called from a task it blocks that task's whole loop
 * while it waits.
 */
COIL_API int coil_cfuture_wait(coil_cfuture_t *f, int64_t timeout_ns,
			       void **result);

/* Returns true once f has an outcome (a result, an error or cancellation).
 * False for NULL. Any thread. */
COIL_API bool coil_cfuture_done(coil_cfuture_t *f);

/* Returns true if f was cancelled. False for NULL. Any thread. */
COIL_API bool coil_cfuture_cancelled(coil_cfuture_t *f);

/*
 * Returns the message attached to f's error (borrowed: valid while the
 * caller holds a reference), or NULL if f is pending, succeeded, was
 * cancelled, or its error came without a message. Any thread.
 */
COIL_API const char *coil_cfuture_error_message(coil_cfuture_t *f);

/*
 * Cancels f, as Python's Future.cancel(): if f is pending it is marked
 * cancelled at once, the threads waiting on it wake (their wait returns
 * -ECANCELED), its done-callbacks run on the calling thread, and true is
 * returned; if it is already done nothing happens and false is returned.
 *
 * For a future of coil_run_coroutine_threadsafe the cancellation is then
 * handed to the loop with coil_loop_call_soon_threadsafe: a coroutine that
 * has not started never runs, and a running one sees -ECANCELED at the await
 * it is suspended in (or at its next one). The future does not wait for the
 * task to end: a task that catches the cancellation and carries on still
 * leaves the future cancelled, and the result it may produce later is
 * destroyed by the loop. A caller that needs to know when the task's cleanup
 * has run must learn it from the coroutine itself. False for NULL. Any
 * thread, the loop's own included.
 */
COIL_API bool coil_cfuture_cancel(coil_cfuture_t *f);

/*
 * Adds a done-callback: cb(f, arg) runs once f is done, on the thread that
 * completes it (the loop's thread for a coroutine's outcome, or the thread
 * closing the loop; the cancelling thread for coil_cfuture_cancel; the
 * caller's for set_result and set_exception), after the waiting threads
 * were woken. If f is already done, cb runs at once on the calling thread,
 * before this returns (as in Python). Callbacks added before completion run
 * in the order they were added, each once. A callback may read f's outcome
 * with coil_cfuture_wait(f, 0, ...) and may drop references of its own; it
 * must not block or await: on the loop's thread it runs inside the task's
 * last step, before the loop goes on. Returns 0, -EINVAL (f or cb NULL) or
 * -ENOMEM. Any thread.
 */
COIL_API int coil_cfuture_add_done_callback(coil_cfuture_t *f,
					    coil_cfuture_cb cb, void *arg);

/*
 * Completes a future made with coil_cfuture_create with a result: f takes
 * ownership of `value` and calls dtor(value) (if dtor is not NULL) when its
 * last reference goes. Wakes the waiters and runs the done-callbacks on the
 * calling thread. Returns 0; COIL_EINVALSTATE if f is done or has a task
 * behind it (the value stays the caller's); -EINVAL for f NULL. Any thread.
 */
COIL_API int coil_cfuture_set_result(coil_cfuture_t *f, void *value,
				     coil_dtor dtor);

/*
 * Completes a future made with coil_cfuture_create with an error: err must
 * be negative (-ECANCELED cancels it); msg (copied) may be NULL. Returns 0,
 * -EINVAL (f NULL, err >= 0), -ENOMEM, or COIL_EINVALSTATE as above. Any
 * thread.
 */
COIL_API int coil_cfuture_set_exception(coil_cfuture_t *f, int err,
					const char *msg);

#ifdef __cplusplus
}
#endif
#endif /* COIL_THREADSAFE_H */
