/*
 * coil/runtime.h: the multi-core runtime (DESIGN.md sections 2 and 3).
 *
 * A runtime owns N workers; each worker is one OS thread running one loop
 * (coil_loop_t). Tasks spawned on a runtime sit in their worker's
 * work-stealing deque and may be resumed by any worker: a task that was
 * suspended on worker A may continue on worker B. Callbacks (call_soon,
 * call_later, call_at, done-callbacks) never migrate: they run on the loop
 * they were scheduled on. A task can be pinned to its worker.
 *
 * What a migrating task may and may not do: it must not keep thread-local
 * state (errno aside) across an await; task-local storage
 * (coil_task_local_get/set) moves with it. While a task waits on a timer
 * (coil_sleep, a timeout scope, wait_for) it stays on the worker whose
 * timer it armed.
 *
 * A runtime with one worker is exactly an asyncio event loop: tasks and
 * callbacks share one FIFO, in asyncio's order. With more workers the order
 * among tasks is the scheduler's (depth first on each worker, oldest first
 * for thieves). A task woken by a running task runs next on that task's
 * worker (its LIFO slot, as in Go and Tokio), which other workers cannot
 * take it from: before the worker runs anything else (a pinned task, a
 * callback, work from the injection queue) the woken task goes to the
 * deque, where they can. So a task that does not yield for a long time
 * holds back, besides what is pinned to its worker or waits on that
 * worker's timers, only the one task it woke itself, until its next
 * await; the other runnable tasks move to idle workers.
 *
 * Threads: every function here may be called from any thread unless it
 * says otherwise.
 */
#ifndef COIL_RUNTIME_H
#define COIL_RUNTIME_H

#include "common.h"
#include "task.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_runtime coil_runtime_t;

/* coil_runtime_loop(rt, COIL_ANY_WORKER): the runtime's injection queue,
 * usable wherever a loop is taken for cross-thread work: a coroutine handed
 * there (coil_run_coroutine_threadsafe) runs on whichever worker takes it,
 * and so does a callback (coil_loop_call_soon_threadsafe). */
#define COIL_ANY_WORKER (-1)

/*
 * Makes a runtime (not started). opts may be NULL. Worker count:
 * opts->workers if not 0 (at most 4096: -EINVAL beyond), else the
 * environment variable COIL_WORKERS if it holds a number from 1 to 4096
 * (anything else in it is ignored), else the number of CPUs in the
 * process's affinity mask. opts->pin_workers pins worker i to the i-th CPU
 * of that mask; opts->thread_name names the worker threads "<name>-<i>"
 * (default "coil").
 * The virtual clock needs one worker (-EINVAL otherwise).
 * Returns 0, -EINVAL (also for out NULL), -ENOMEM, the error of pipe2 (a
 * descriptor short) or of setting up a worker's ring; nothing is left on
 * failure. The caller owns the runtime and ends it with
 * coil_runtime_shutdown(). From the first runtime on, coil's objects take
 * their locks for real in the whole process.
 */
COIL_API int coil_runtime_new(coil_runtime_t **out,
			      const coil_runtime_opts_t *opts);

/* The number of workers. rt must not be NULL. */
COIL_API unsigned coil_runtime_workers(const coil_runtime_t *rt);

/*
 * Worker i's loop (0 <= i < workers), or with COIL_ANY_WORKER the runtime's
 * injection queue (see above). NULL if i is out of range. The loop belongs
 * to the runtime: do not close it.
 */
COIL_API coil_loop_t *coil_runtime_loop(coil_runtime_t *rt, int i);

/* The runtime a loop belongs to, or NULL for a loop made with
 * coil_new_event_loop. */
COIL_API coil_runtime_t *coil_loop_runtime(const coil_loop_t *loop);

/* The runtime of the worker running the calling thread, or NULL. */
COIL_API coil_runtime_t *coil_current_runtime(void);

/* The index of the worker running the calling thread, or -1 if the thread
 * is not a worker. */
COIL_API int coil_current_worker(void);

/*
 * Starts every worker in a background thread. Returns 0, -EINVAL (NULL),
 * -EBUSY if it is already started or coil_runtime_block_on runs it, or
 * the error of creating a thread (the workers already started are stopped
 * again).
 */
COIL_API int coil_runtime_start(coil_runtime_t *rt);

/*
 * Spawns fn(arg) as a task on the runtime from any thread: the task goes to
 * the injection queue and the first worker free takes it. out and opts as
 * for coil_spawn (out NULL detaches the task). A task handle obtained here
 * may be released from any thread. Returns 0, -EINVAL, -ENOMEM or
 * COIL_ECLOSED once the runtime is shutting down.
 */
COIL_API int coil_runtime_spawn(coil_runtime_t *rt, coil_task_t **out,
				coil_fn fn, void *arg,
				const coil_spawn_opts_t *opts);

/*
 * Runs fn(arg) as the runtime's main task with worker 0 on the calling
 * thread and the others in background threads, until the task is done or
 * coil_runtime_stop() is called. Returns the task's code and writes its
 * result (the caller owns it; with result NULL it is dropped without being
 * freed) to *result; -EINTR if stopped first; -EBUSY if the runtime is
 * already running or the thread already runs a loop; -EINVAL (rt or fn
 * NULL); -ENOMEM; the error of creating a worker thread or of moving worker
 * 0's ring to the calling thread. The workers stay up (idle) until
 * coil_runtime_shutdown(). Any thread that runs no loop.
 */
COIL_API int coil_runtime_block_on(coil_runtime_t *rt, coil_fn fn, void *arg,
				   void **result);

/*
 * Asks every worker to stop after its current step. Async-signal-safe: a
 * signal handler may call it. The workers' threads leave their loops;
 * coil_runtime_block_on returns -EINTR. Tasks are left as they are, for
 * coil_runtime_shutdown. The runtime may be run again afterwards
 * (coil_runtime_block_on, or coil_runtime_start if it was not started);
 * a stop before that (one that comes before the runtime runs) asks
 * nothing. Once coil_runtime_shutdown runs the workers to end the tasks,
 * a stop does nothing: the shutdown goes on.
 */
COIL_API void coil_runtime_stop(coil_runtime_t *rt);

/* Blocks until coil_runtime_stop() has been called (since the runtime last
 * ran again, if it did). For a plain thread. The runtime must outlive the
 * wait: coil_runtime_shutdown does not end it (stop first, and shut down
 * once the waiter has returned). */
COIL_API void coil_runtime_wait_stopped(coil_runtime_t *rt);

/*
 * Ends the runtime: runs the workers (again, if stopped) until every task
 * is done or `wait_ns` has passed (COIL_FOREVER: no limit; 0: not at all),
 * then cancels the tasks left and runs them to their end (closing those
 * that ignore cancellation), stops and joins the worker threads, closes
 * the loops and frees everything. No thread, descriptor or byte of the
 * runtime is left. Once the wait is over, a task that is not spawned by
 * one of the runtime's tasks (coil_runtime_spawn or coil_loop_create_task
 * from a plain thread or a callback, coil_run_coroutine_threadsafe) is
 * refused with COIL_ECLOSED; one that got in just before is waited for
 * too, within the same wait_ns, so that no task is left that neither ran
 * nor was cancelled. Returns 0 if every task had finished within the wait,
 * -ETIMEDOUT if some had to be cancelled. The runtime pointer is invalid
 * afterwards. Call it from a thread that is not a worker (-EBUSY). A
 * negative wait other than COIL_FOREVER (or rt NULL) is -EINVAL, and
 * then, as for -EBUSY, nothing was done: the runtime is still the
 * caller's to shut down. The error of creating a worker thread (-EAGAIN)
 * means that the workers could not all be run to end the tasks: nothing
 * was cancelled or freed, the runtime is left stopped (as by
 * coil_runtime_stop; its tasks may have run meanwhile), and it is still
 * the caller's to shut down again.
 */
COIL_API int coil_runtime_shutdown(coil_runtime_t *rt, int64_t wait_ns);

/*
 * Pins the calling task to the worker it runs on: it resumes only there
 * until as many coil_task_unpin() calls. Returns 0, COIL_EINVALSTATE
 * outside a task, or -EOVERFLOW past 65,535 pins held at once. Task
 * thread.
 */
COIL_API int coil_task_pin(void);

/* Undoes one coil_task_pin() (or the spawn's pinned). Returns 0, or
 * COIL_EINVALSTATE outside a task or when the task holds no pin of its own:
 * the pins coil takes itself while something of the worker's is armed for
 * the task (a timeout scope, an acceptor, a timed wait) are not undone. */
COIL_API int coil_task_unpin(void);

/*
 * Task-local storage, as Python's contextvars: each task has its own value
 * for a key (any address the program owns, usually that of a static
 * variable), and a spawned task starts with a copy of its spawner's values.
 * Values are borrowed pointers: coil never frees them. The values move with
 * the task from worker to worker.
 *
 * coil_task_local_set sets the calling task's value (NULL removes it) and
 * returns 0, -ENOMEM, or COIL_EINVALSTATE outside a task.
 * coil_task_local_get returns the calling task's value, or NULL when it has
 * none or the caller is not a task. Task thread.
 */
COIL_API int coil_task_local_set(const void *key, void *value);
COIL_API void *coil_task_local_get(const void *key);

#ifdef __cplusplus
}
#endif
#endif /* COIL_RUNTIME_H */
