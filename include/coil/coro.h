/*
 * coil/coro.h: stackful coroutines.
 *
 * A coroutine runs a coil_fn on a stack of its own. Whoever resumes it runs
 * it until it yields a value back or returns. It is the generator of Python:
 * resume is send(), coil_coro_throw() is throw(), coil_coro_close() is
 * close(); its state follows inspect.getcoroutinestate().
 *
 * Coroutines are the building block of tasks (coil/task.h): a task is a
 * coroutine that the loop resumes. A coroutine may also be used on its own,
 * from plain code or from inside a task; if it awaits a future while running
 * inside a task (coil_await), the whole task suspends and resumes later at
 * that point.
 *
 * Threads: a coroutine is used by one thread at a time. A coroutine created
 * and resumed inside a task belongs to that task and may move with it.
 */
#ifndef COIL_CORO_H
#define COIL_CORO_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum coil_coro_state {
	COIL_CORO_CREATED = 0,   /* not started yet */
	COIL_CORO_RUNNING = 1,   /* executing (or resuming a nested coroutine) */
	COIL_CORO_SUSPENDED = 2, /* stopped at a yield or at an await */
	COIL_CORO_CLOSED = 3     /* returned, or closed */
} coil_coro_state_t;

typedef struct coil_coro_opts {
	/* Stack size in bytes; 0 means the default (64 KiB, see
	 * coil_stack_default_size()). Rounded up to whole pages. */
	size_t stack_size;
	/* A name used in messages (stack overflow, debug output). Copied. */
	const char *name;
	/* Destructor of the value the body returns through *result; run when
	 * the coroutine is destroyed, unless the value was taken. */
	coil_dtor result_dtor;
} coil_coro_opts_t;

/*
 * Creates a coroutine that will run fn(arg, &result) when first resumed. The
 * stack is taken only when it first runs. opts may be NULL. On success *out
 * holds the new coroutine, owned by the caller (free it with
 * coil_coro_destroy). Returns 0, -EINVAL or -ENOMEM. Any thread.
 */
COIL_API int coil_coro_create(coil_coro_t **out, coil_fn fn, void *arg,
			      const coil_coro_opts_t *opts);

/*
 * Runs the coroutine until it yields or returns, handing it `value` (the
 * return of its pending coil_coro_yield; ignored on the first resume).
 * Returns:
 *   0            it yielded; *out (if not NULL) gets the yielded value;
 *   COIL_EDONE   it returned 0; *out gets its result (still owned by the
 *                coroutine: see coil_coro_result);
 *   < 0          it returned that error; or COIL_EINVALSTATE if it is
 *                running, closed, or suspended in an await, or is a
 *                task's own coroutine (coil_task_coro: only its loop
 *                resumes it); or -ENOMEM on the first resume when its
 *                stack cannot be had (a stack_size no mapping can meet,
 *                say): it stays created; or -EINVAL for c NULL.
 * The value handed in and the one handed out are borrowed pointers: the
 * coroutine neither copies nor frees them. The calling thread must be the
 * one the coroutine last ran on, or the coroutine must not have started.
 */
COIL_API int coil_coro_resume(coil_coro_t *c, void *value, void **out);

/*
 * Like coil_coro_resume, but the coroutine's pending coil_coro_yield returns
 * the error `err` (a negative code) instead of a value: Python's throw().
 * Throwing into a coroutine that has not started closes it without running it
 * and returns err. Returns as coil_coro_resume, and -EINVAL if err is not
 * negative (nothing is thrown then).
 */
COIL_API int coil_coro_throw(coil_coro_t *c, int err, void **out);

/*
 * Closes the coroutine. A created one is marked closed and never runs. A
 * suspended one is resumed with COIL_ECLOSED: its pending yield returns
 * COIL_ECLOSED, and so does every yield or await it attempts afterwards, at
 * once, so that its cleanup runs to the end. Returns 0; or COIL_EINVALSTATE if
 * it tried to yield a value while closing (Python's "generator ignored
 * GeneratorExit"; it is closed all the same), or, without touching it, if
 * it is running, suspended in an await, or a task's own coroutine; or
 * -EINVAL for c NULL. Closing a closed coroutine returns 0. Same thread
 * rule as coil_coro_resume.
 */
COIL_API int coil_coro_close(coil_coro_t *c);

/*
 * Closes the coroutine if needed (see coil_coro_close), runs the result
 * destructor if a result is still owned, and frees it, name included. NULL
 * is allowed. Only for a coroutine from coil_coro_create that is not
 * running and not suspended in an await; a call for one that is (it would
 * be freed under whoever resumes it), or for a task's coroutine, does
 * nothing (debug mode reports one suspended in an await), and the
 * coroutine stays the caller's to destroy once it has yielded or ended. Same thread rule as
 * coil_coro_resume.
 */
COIL_API void coil_coro_destroy(coil_coro_t *c);

/* Returns the coroutine's state. */
COIL_API coil_coro_state_t coil_coro_state(const coil_coro_t *c);

/* Returns a static name for a state: "CORO_CREATED", "CORO_RUNNING", ... */
COIL_API const char *coil_coro_state_name(coil_coro_state_t s);

/*
 * Takes the result of a coroutine that returned 0: the value is handed to the
 * caller, who becomes its owner (the destructor will no longer run on it).
 * Returns 0, or COIL_EINVALSTATE if it has not returned 0, its result was
 * taken already, or c is NULL (*result is left alone then).
 */
COIL_API int coil_coro_take_result(coil_coro_t *c, void **result);

/*
 * From inside a coroutine: hands `value` to the resumer and suspends until
 * resumed again. Returns 0 and writes the value sent by the next resume to
 * *sent (if not NULL); returns the error passed to coil_coro_throw; returns
 * COIL_ECLOSED at once (without suspending) while the coroutine is being
 * closed; returns COIL_EINVALSTATE if not called from inside a coroutine,
 * or from a task's own body (a task awaits; only a coroutine it runs may
 * yield). `value` is handed over as it is, not copied.
 */
COIL_API int coil_coro_yield(void *value, void **sent);

/* Returns the coroutine the calling code runs in, or NULL on a thread's own
 * stack. A task's body is a coroutine too. */
COIL_API coil_coro_t *coil_coro_current(void);

/* Returns the name given at creation ("" if none). */
COIL_API const char *coil_coro_name(const coil_coro_t *c);

/* Returns the default stack size for coroutines and tasks, in bytes. */
COIL_API size_t coil_stack_default_size(void);

/*
 * Sets the process-wide default stack size (rounded up to whole pages).
 * Returns 0, or -EINVAL below 16 KiB or above 1 TiB (nothing changes
 * then). Call before creating coroutines, tasks or loops: the value is a
 * plain variable, read without synchronisation, so set it while no other
 * thread may be creating them.
 */
COIL_API int coil_stack_set_default_size(size_t size);

#ifdef __cplusplus
}
#endif
#endif /* COIL_CORO_H */
