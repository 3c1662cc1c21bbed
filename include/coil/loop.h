/*
 * coil/loop.h: event loops, callbacks, timers, the exception handler and
 * coil_run (asyncio.run).
 *
 * A loop runs ready callbacks in FIFO order, fires timers by deadline (FIFO
 * among equal deadlines), resumes tasks, and waits in the kernel (io_uring)
 * when nothing is due, using no CPU. stop() semantics are asyncio's: what was
 * scheduled for the current iteration runs, later callbacks wait for the next
 * run.
 *
 * Threads: a loop is driven by one thread (the one that runs it). Every call
 * here is for that thread unless it says otherwise.
 */
#ifndef COIL_LOOP_H
#define COIL_LOOP_H

#include "common.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options of a runtime or loop. Initialise with coil_runtime_opts_init(),
 * then set what you need: new fields are only ever appended, and `size`
 * tells the library which ones the caller knows (the ABI promise).
 */
typedef struct coil_runtime_opts {
	uint32_t size;            /* set by coil_runtime_opts_init */
	size_t stack_size;        /* default task stack size, 0: 64 KiB */
	unsigned ring_entries;    /* io_uring SQ size, 0: 256; rounded up
				   * to a power of 2, at least 4, at most
				   * the kernel's maximum (32768) */
	bool virtual_clock;       /* time stands still while work can run and
				   * jumps to the next timer when all wait
				   * (Tokio's time::pause): for tests; one
				   * worker only */
	unsigned workers;         /* coil_runtime_new: 0 = COIL_WORKERS or
				   * the CPUs of the affinity mask;
				   * coil_run: 0 = 1 (asyncio.run) */
	bool pin_workers;         /* pin worker i to the i-th allowed CPU */
	const char *thread_name;  /* worker threads: "<name>-<i>"; NULL:
				   * "coil" (at most 10 characters used) */
	bool debug;               /* debug mode (coil/debug.h); also on for
				   * every loop when COIL_DEBUG is set */
} coil_runtime_opts_t;

/* Fills *opts with the defaults. */
COIL_API void coil_runtime_opts_init(coil_runtime_opts_t *opts);

/*
 * asyncio.run: makes a loop on the calling thread, runs fn(arg, &result) as
 * its main task until it completes, cancels and finalizes what is left,
 * closes the loop and returns the main task's code. With opts->workers > 1
 * it makes a runtime of that many workers instead (see coil/runtime.h),
 * worker 0 on the calling thread, and shuts it down the same way. On 0 the
 * result is handed to the caller through *result (if not NULL), who then
 * owns it; with result NULL it is dropped without being freed (the main
 * task has no result destructor). opts may be NULL. Returns the task's
 * code, or -EINVAL (fn NULL), -ENOMEM, -EBUSY (a loop is already running
 * on this thread), or the error of creating the ring (see
 * coil_new_event_loop_opts); with several workers, the errors of
 * coil_runtime_new and coil_runtime_block_on. Any thread that runs no
 * loop; it blocks until the main task is done.
 */
COIL_API int coil_run(coil_fn fn, void *arg, void **result,
		      const coil_runtime_opts_t *opts);

/*
 * Makes a loop driven from the calling thread (asyncio.new_event_loop). The
 * caller owns it and frees it with coil_loop_close(). Returns 0, -EINVAL
 * (out NULL), -ENOMEM, or a negative errno when io_uring cannot be set up:
 * -ENOSYS or -EPERM where the kernel refuses io_uring, -EMFILE without
 * descriptors. A message on stderr then gives the reason and the remedy.
 * Any thread.
 */
COIL_API int coil_new_event_loop(coil_loop_t **out);

/* As coil_new_event_loop, with options (NULL: defaults). */
COIL_API int coil_new_event_loop_opts(coil_loop_t **out,
				      const coil_runtime_opts_t *opts);

/* Sets the calling thread's current loop (NULL clears it). The loop stays
 * the caller's; coil_loop_close clears it where it is current on the
 * closing thread, other threads must clear it themselves. */
COIL_API void coil_set_event_loop(coil_loop_t *loop);

/* Returns the running loop of the calling thread, else its current loop set
 * with coil_set_event_loop, else NULL. */
COIL_API coil_loop_t *coil_get_event_loop(void);

/* Returns the loop running on the calling thread, or NULL. */
COIL_API coil_loop_t *coil_get_running_loop(void);

/*
 * Runs the loop until f is done, then returns f's code and writes its result
 * (borrowed) to *result. f must belong to this loop (else -EINVAL; -EINVAL
 * too for a runtime's worker loop, which its runtime runs). Returns -EBUSY
 * if this or another loop is already running on the thread, COIL_ECLOSED
 * if closed, -EINTR if the loop was stopped before f was done (asyncio
 * raises RuntimeError there), -ENOMEM (the done-callback that stops the
 * loop), or, run from another thread than before, the error of moving the
 * ring to this thread (a descriptor or memory short). The caller keeps its
 * reference to f.
 */
COIL_API int coil_loop_run_until_complete(coil_loop_t *loop, coil_future_t *f,
					  void **result);

/* Runs the loop until coil_loop_stop(). Returns 0, -EINVAL (NULL, or a
 * runtime's worker loop), -EBUSY, COIL_ECLOSED, or the error of moving
 * the ring to this thread (as coil_loop_run_until_complete). */
COIL_API int coil_loop_run_forever(coil_loop_t *loop);

/*
 * Stops the loop after the current iteration: callbacks already scheduled for
 * it run, later ones wait for the next run. Called before a run, the next run
 * does one iteration and returns. For a runtime's worker loop it stops the
 * whole runtime (coil_runtime_stop), and may then be called from any
 * thread.
 */
COIL_API void coil_loop_stop(coil_loop_t *loop);

/* Returns true while the loop runs. */
COIL_API bool coil_loop_is_running(const coil_loop_t *loop);

/* Returns true once coil_loop_close has run. */
COIL_API bool coil_loop_is_closed(const coil_loop_t *loop);

/*
 * Closes the loop: tasks still pending are cancelled and run until they end,
 * open callbacks are dropped, and the loop is freed. Refused with -EBUSY while
 * it runs, and with -EINVAL for NULL or a runtime's worker loop (those
 * close with coil_runtime_shutdown). Returns 0. The loop pointer is invalid
 * afterwards (its memory lives on only while futures of it do).
 */
COIL_API int coil_loop_close(coil_loop_t *loop);

/* The loop's clock (CLOCK_MONOTONIC, or the virtual clock), in seconds.
 * NULL: the current loop, or CLOCK_MONOTONIC itself when the thread has
 * none. Any thread may read it. */
COIL_API double coil_loop_time(const coil_loop_t *loop);

/* The loop's clock in nanoseconds; NULL as for coil_loop_time. Any
 * thread. */
COIL_API int64_t coil_loop_time_ns(const coil_loop_t *loop);

/*
 * Schedules cb(arg) to run on a next iteration, FIFO. If out is not NULL,
 * *out gets a handle reference that can cancel it and must be released with
 * coil_handle_release(). arg stays the caller's and must stay valid until
 * the callback ran or was cancelled. Returns 0, -EINVAL (loop or cb NULL),
 * -ENOMEM or COIL_ECLOSED. The loop's
 * thread; for a runtime's worker loop called from another thread (a task
 * that moved to another worker since it took the pointer) it behaves as
 * coil_loop_call_soon_threadsafe when out is NULL and returns -EXDEV
 * otherwise. call_later and call_at return -EXDEV there: timers belong to
 * their loop's thread.
 */
COIL_API int coil_loop_call_soon(coil_loop_t *loop, coil_cb cb, void *arg,
				 coil_handle_t **out);

/* Schedules cb(arg) `delay_ns` from now (negative counts as 0). out, arg
 * and threads as for coil_loop_call_soon. Returns 0, -EINVAL (loop or cb
 * NULL, or a runtime's COIL_ANY_WORKER stand-in, which has no timers),
 * -EXDEV (see coil_loop_call_soon), -ENOMEM or COIL_ECLOSED. */
COIL_API int coil_loop_call_later(coil_loop_t *loop, int64_t delay_ns,
				  coil_cb cb, void *arg, coil_handle_t **out);

/* Schedules cb(arg) at loop time `when_ns` (see coil_loop_time_ns); a time
 * already passed runs it at the next iteration. Returns as
 * coil_loop_call_later. */
COIL_API int coil_loop_call_at(coil_loop_t *loop, int64_t when_ns, coil_cb cb,
			       void *arg, coil_handle_t **out);

/*
 * Cancels the callback if it has not run. Returns true if it was pending:
 * then the callback never runs; false if it ran, is running or was
 * cancelled or dropped before. For a runtime's worker loop, any thread,
 * so that a task that moved to another worker since it took the handle
 * may cancel it: the loop's run and the cancel race for the handle and
 * exactly one wins; from another thread than the loop's, a timer leaves
 * the loop's timer heap (coil_loop_timer_count) at the loop's next
 * iteration rather than at once. For a loop of one's own, its thread.
 */
COIL_API bool coil_handle_cancel(coil_handle_t *h);

/* Returns true if the handle was cancelled. Any thread. */
COIL_API bool coil_handle_cancelled(const coil_handle_t *h);

/* Returns the deadline of a timer handle in loop nanoseconds, or -1 for a
 * call_soon handle. Any thread. */
COIL_API int64_t coil_handle_when(const coil_handle_t *h);

/* Drops the caller's handle reference (the callback stays scheduled).
 * Any thread. */
COIL_API void coil_handle_release(coil_handle_t *h);

/*
 * The context of an error handed to the exception handler (asyncio's
 * context dict). Fields that do not apply are NULL or 0.
 */
typedef struct coil_exc_context {
	const char *message;   /* always set */
	int error;             /* the error code, 0 if none */
	const char *error_message; /* the error's message, or NULL */
	coil_future_t *future; /* the future concerned, borrowed */
	coil_task_t *task;     /* the task concerned, borrowed */
	coil_handle_t *handle; /* the callback handle concerned, borrowed */
} coil_exc_context_t;

typedef void (*coil_exception_handler)(coil_loop_t *loop,
				       const coil_exc_context_t *ctx,
				       void *arg);

/* Sets the loop's exception handler (NULL: the default one). */
COIL_API void coil_loop_set_exception_handler(coil_loop_t *loop,
					      coil_exception_handler h,
					      void *arg);

/* Returns the handler set, or NULL when the default is in use. */
COIL_API coil_exception_handler
coil_loop_get_exception_handler(coil_loop_t *loop, void **arg);

/* The default handler: prints the context to stderr. */
COIL_API void coil_loop_default_exception_handler(coil_loop_t *loop,
						  const coil_exc_context_t *ctx);

/* Calls the loop's handler (or the default one) with ctx. */
COIL_API void coil_loop_call_exception_handler(coil_loop_t *loop,
					       const coil_exc_context_t *ctx);

/*
 * Thread-safe: schedules cb(arg) on `loop` from any thread and wakes the loop
 * if it sleeps. Returns 0, -ENOMEM or COIL_ECLOSED. Callbacks from one thread
 * run in the order they were handed over.
 */
COIL_API int coil_loop_call_soon_threadsafe(coil_loop_t *loop, coil_cb cb,
					    void *arg);

/* Returns the number of callbacks and task steps ready to run, and of timers
 * pending (for tests and diagnostics). */
COIL_API size_t coil_loop_ready_count(const coil_loop_t *loop);
COIL_API size_t coil_loop_timer_count(const coil_loop_t *loop);

#ifdef __cplusplus
}
#endif
#endif /* COIL_LOOP_H */
