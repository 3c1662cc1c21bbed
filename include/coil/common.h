/*
 * coil/common.h: what every other coil header shares.
 *
 * The export macro, the error model (0 or a positive count on success, a
 * negative errno or one of coil's own codes below -4096 on failure), the
 * function shapes of DESIGN.md section 6 and the opaque handle types.
 *
 * This header compiles as C11 and as C++.
 */
#ifndef COIL_COMMON_H
#define COIL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(COIL_BUILDING) && defined(__GNUC__)
#define COIL_API __attribute__((visibility("default")))
#else
#define COIL_API
#endif

#if defined(__GNUC__)
#define COIL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define COIL_PRINTF(fmt, args)
#endif

/* Library version, also available at run time through coil_version(). */
#define COIL_VERSION_MAJOR 0
#define COIL_VERSION_MINOR 1
#define COIL_VERSION_PATCH 0

/*
 * Preconditions. Bad input gets a clear error: the codes below or a
 * negative errno (-EINVAL for an out-of-range size, count, timeout, enum
 * value or flag, or for a NULL out-parameter, array or callback that is
 * required; COIL_EINVALSTATE for a call made where it cannot run, such as
 * an await outside a task). What is left unchecked, as libc leaves it,
 * is the validity of memory the caller hands over: the object a method is
 * called on must be one the library made and has not freed yet (a NULL
 * one is refused with -EINVAL, or ignored by a release, free or destroy
 * call, where the function says so; elsewhere, on accessors and hot
 * paths, it is not checked), an array must hold the count of elements
 * given with it, a buffer its length, and a string must end. Releasing,
 * closing or freeing an object twice is such a use after free, unless its
 * function says a second call is allowed.
 */

/*
 * coil's own error codes. They sit below -4096 so that they never collide
 * with a negative errno value (libuv does the same).
 */
#define COIL_EINVALSTATE (-4097) /* asyncio's InvalidStateError */
#define COIL_EDONE       (-4098) /* end of iteration (StopAsyncIteration) */
#define COIL_ECLOSED     (-4099) /* the loop, coroutine or object is closed */
#define COIL_EBROKEN     (-4100) /* a process-pool worker died running the job */
#define COIL_EINCOMPLETE (-4101) /* the stream ended before the read was
				   * complete (asyncio's IncompleteReadError) */
#define COIL_ELIMIT      (-4102) /* no separator within the stream's limit
				   * (asyncio's LimitOverrunError) */
#define COIL_ENONAME     (-4103) /* the host or service name is not known
				   * (getaddrinfo's EAI_NONAME) */

/* Durations are int64_t nanoseconds; COIL_FOREVER waits without limit. */
#define COIL_FOREVER ((int64_t)-1)
#define COIL_NSEC_PER_SEC ((int64_t)1000000000)

/*
 * A task, coroutine or job body. It returns 0 after writing its result
 * through *result (which starts out NULL), or a negative error code.
 * coil_errorf() called before returning an error attaches a message to it.
 */
typedef int (*coil_fn)(void *arg, void **result);

/* A plain callback for call_soon, call_later, call_at and the like. */
typedef void (*coil_cb)(void *arg);

/* The destructor of a value a future or task owns. */
typedef void (*coil_dtor)(void *value);

typedef struct coil_loop coil_loop_t;
typedef struct coil_future coil_future_t;
typedef struct coil_task coil_task_t;
typedef struct coil_handle coil_handle_t;
typedef struct coil_coro coil_coro_t;

/* A future's done-callback receives the future, as in asyncio. */
typedef void (*coil_done_cb)(coil_future_t *f, void *arg);

/*
 * Returns a static, human-readable description of an error code: a negative
 * errno value (as strerror) or one of the COIL_E* codes. Any thread.
 */
COIL_API const char *coil_strerror(int err);

/*
 * Returns the name of an error code ("ECANCELED", "COIL_EDONE", ...), or
 * "unknown". Any thread.
 */
COIL_API const char *coil_err_name(int err);

/*
 * Attaches a formatted message to the error the calling task (or coroutine
 * body) is about to return; the future of the task then carries it, see
 * coil_future_error_message(). Called outside a task it sets the message of
 * the calling thread, which the next failing coil_fn picked up on this thread
 * takes. Returns 0, or -ENOMEM.
 */
COIL_API int coil_errorf(const char *fmt, ...) COIL_PRINTF(1, 2);

/* Returns the library version as MAJOR*10000 + MINOR*100 + PATCH. Any
 * thread. */
COIL_API int coil_version(void);

#ifdef __cplusplus
}
#endif
#endif /* COIL_COMMON_H */
