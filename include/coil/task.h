/*
 * coil/task.h: tasks, asyncio.Task in C.
 *
 * A task runs a coil_fn on a coroutine of its own, scheduled by a loop. It may
 * await futures (coil_await) at any depth of its call stack. A task is a
 * future: coil_task_future() gives the same object as a coil_future_t *, so
 * everything that takes a future takes a task.
 *
 * Ownership: coil_spawn() with a non-NULL out gives the caller a reference,
 * which coil_task_detach() (or coil_future_release on its future) drops. The
 * loop keeps its own reference until the task is done. The task's result is
 * owned by the task and freed with the result_dtor given at spawn when the
 * last reference goes.
 *
 * Cancellation (DESIGN.md section 5): coil_task_cancel() makes the await the
 * task is suspended in (or its next one) return -ECANCELED. The task may
 * clean up, may carry on, and ends cancelled if it returns -ECANCELED. A task
 * cancelled before it first runs never runs.
 *
 * Threads: calls are made from the thread running the task's loop or, for
 * a task of a runtime, from any of the runtime's workers (a task may run
 * on any of them), unless a function says otherwise. A plain thread hands
 * work to a loop with coil/threadsafe.h (coil_run_coroutine_threadsafe,
 * coil_loop_call_soon_threadsafe, concurrent futures) instead.
 */
#ifndef COIL_TASK_H
#define COIL_TASK_H

#include "common.h"
#include "coro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_spawn_opts {
	const char *name;      /* copied; NULL gives "Task-<id>" */
	size_t stack_size;     /* 0: the default stack size; one no
				* mapping can meet ends the task with
				* -ENOMEM when it first runs */
	coil_dtor result_dtor; /* destructor of the result the body returns */
	bool pinned;           /* keep the task on its worker */
} coil_spawn_opts_t;

/*
 * Spawns fn(arg, &result) as a task on the current loop (from inside a task
 * or a callback, or on the thread's current loop). The task first runs on a
 * later loop iteration. out NULL detaches it at once. opts may be NULL.
 * Goes through the loop's task factory if one is set (what the factory
 * returns is returned). The name in opts is copied; arg is the task's,
 * borrowed until it no longer uses it. Returns 0, -EINVAL (fn NULL, or no
 * loop), -ENOMEM or COIL_ECLOSED (the loop is closed, or its runtime is
 * shutting down and the caller is not one of its tasks). The stack is
 * taken when the task first runs: a task that gets none then ends with
 * -ENOMEM without running fn (reported as never retrieved if detached).
 * On failure (of the default factory) nothing was made and *out is
 * untouched.
 */
COIL_API int coil_spawn(coil_task_t **out, coil_fn fn, void *arg,
			const coil_spawn_opts_t *opts);

/*
 * As coil_spawn, on the given loop (asyncio's loop.create_task); -EINVAL
 * for loop NULL. On a runtime's COIL_ANY_WORKER stand-in it is
 * coil_runtime_spawn. From the loop's thread, or for a runtime's loop any
 * thread (as coil_runtime_spawn: the task is queued for the workers).
 */
COIL_API int coil_loop_create_task(coil_loop_t *loop, coil_task_t **out,
				   coil_fn fn, void *arg,
				   const coil_spawn_opts_t *opts);

/*
 * A task factory replaces how loop.create_task makes tasks. It receives the
 * spawn's arguments and must create the task, normally by calling
 * coil_task_factory_default() with options of its own choosing.
 */
typedef int (*coil_task_factory)(coil_loop_t *loop, coil_task_t **out,
				 coil_fn fn, void *arg,
				 const coil_spawn_opts_t *opts, void *factory_arg);

/* The default way to create a task, for factories to call: as
 * coil_loop_create_task without the factory. */
COIL_API int coil_task_factory_default(coil_loop_t *loop, coil_task_t **out,
				       coil_fn fn, void *arg,
				       const coil_spawn_opts_t *opts);

/* Sets (NULL: resets to the default) the loop's task factory; factory_arg
 * is the caller's and must outlive the setting. A plain store: set it
 * before tasks are spawned on the loop from other threads. */
COIL_API void coil_loop_set_task_factory(coil_loop_t *loop,
					 coil_task_factory factory, void *arg);

/* Returns the loop's task factory, NULL when the default is in use; its
 * argument goes to *arg if arg is not NULL. */
COIL_API coil_task_factory coil_loop_get_task_factory(coil_loop_t *loop,
						      void **arg);

/* The task as a future (no allocation, no new reference). */
COIL_API coil_future_t *coil_task_future(coil_task_t *t);

/* The future as a task, or NULL if it is not one. */
COIL_API coil_task_t *coil_future_task(coil_future_t *f);

/* Drops the caller's reference to the task; it goes on running. NULL is
 * allowed. */
COIL_API void coil_task_detach(coil_task_t *t);

/*
 * Requests cancellation with an optional message (copied; without memory
 * for the copy the request counts without a message). Returns true if the
 * task was not done (the request counts, see coil_task_cancelling), false
 * if it was. Any worker of the task's runtime, or the loop's thread for a
 * standalone loop; a plain thread cancels a task with coil_future_cancel on
 * its future, through coil_loop_call_soon_threadsafe, or through the
 * concurrent future of coil_run_coroutine_threadsafe. On a runtime of
 * several workers a cancellation of another task costs a system call
 * (membarrier: the tasks' own waits and ends take no lock in exchange).
 */
COIL_API bool coil_task_cancel(coil_task_t *t, const char *msg);

/* Returns the number of pending cancellation requests (Task.cancelling()). */
COIL_API int coil_task_cancelling(const coil_task_t *t);

/* Decrements the cancellation count and returns the new count
 * (Task.uncancel()). When it reaches 0, a cancellation not yet delivered is
 * withdrawn. */
COIL_API int coil_task_uncancel(coil_task_t *t);

/*
 * Returns the task's name (borrowed: "Task-<id>" unless one was set). The
 * pointer stays valid until the task is renamed or its handle released,
 * so it is for the task itself and for threads that do not race a
 * rename; elsewhere (another worker while the task may rename itself)
 * coil_task_get_info (coil/debug.h) copies the name safely.
 */
COIL_API const char *coil_task_get_name(const coil_task_t *t);

/* Sets the task's name (copied; NULL sets ""; the previous one is freed,
 * see coil_task_get_name). Any thread for a task of a runtime's loop; for a
 * task of a standalone loop, the loop's thread (any thread while it does
 * not run), since until the process makes a runtime coil takes no locks
 * (coil/runtime.h). Returns 0 or -ENOMEM (the name is unchanged then). */
COIL_API int coil_task_set_name(coil_task_t *t, const char *name);

/* Returns the task's id: unique in the process, at least 1, increasing in spawn order on each thread. */
COIL_API uint64_t coil_task_id(const coil_task_t *t);

/* Returns the task's coroutine, or NULL once the task is done. */
COIL_API coil_coro_t *coil_task_coro(coil_task_t *t);

/* Returns the task running on the calling thread, or NULL. */
COIL_API coil_task_t *coil_current_task(void);

/*
 * Writes up to `cap` not-done tasks of `loop` (NULL: the current loop) to
 * tasks[] (borrowed references) and returns how many tasks are not done,
 * which may exceed cap (tasks NULL: none is written, whatever cap is, and
 * the count is returned; 0 when there is no loop, and for a runtime's
 * COIL_ANY_WORKER stand-in, whose tasks belong to its workers' loops).
 * A task belongs to the loop it was spawned on,
 * whichever worker of a runtime runs it; one whose future is done is not
 * listed, even if the worker that ended it has not yet handed it back.
 * Any thread for a runtime's loop; for a standalone loop, its own thread
 * (any thread while it does not run), since until the process makes a
 * runtime coil takes no locks (coil/runtime.h) and the loop changes its
 * list of tasks without one. The references are borrowed, so from another
 * thread than the loop's, a listed task may end (and, unless the caller
 * holds a reference, be freed) at any time.
 */
COIL_API size_t coil_all_tasks(coil_loop_t *loop, coil_task_t **tasks,
			       size_t cap);

/*
 * From inside a task: suspends it for `seconds` (asyncio.sleep). 0 yields
 * once to the loop. Returns 0, -ECANCELED if cancelled meanwhile (or a
 * cancellation was pending), -EINVAL for a negative or NaN duration,
 * COIL_EINVALSTATE outside a task, COIL_ECLOSED while the task's coroutine
 * is being closed, -ENOMEM when the timer cannot be queued (not for 0,
 * which allocates nothing). A task sleeping on a timer stays on the worker
 * that armed it until it wakes.
 */
COIL_API int coil_sleep(double seconds);

/* As coil_sleep, with nanoseconds. */
COIL_API int coil_sleep_ns(int64_t ns);

#ifdef __cplusplus
}
#endif
#endif /* COIL_TASK_H */
