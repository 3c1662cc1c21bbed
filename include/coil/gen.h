/*
 * coil/gen.h: async generators, Python's `async def` with `yield`.
 *
 * A generator runs a coil_fn body on a coroutine of its own (coil/coro.h).
 * The body hands values to its consumer with coil_gen_yield() and may await
 * between yields (coil_sleep, coil_await, ...): run from inside a task, an
 * await in the body suspends the whole consuming task, and the consumer's
 * coil_gen_next() returns once the next value is ready. The consumer drives
 * it as Python drives an async generator:
 *
 *     Python                          coil
 *     await agen.__anext__()          coil_gen_next(g, &v)
 *     await agen.asend(x)             coil_gen_asend(g, x, &v)
 *     await agen.athrow(exc)          coil_gen_athrow(g, err, &v)
 *     await agen.aclose()             coil_gen_aclose(g)
 *     async for v in agen: ...        COIL_AFOR(v, g, rc) { ... }
 *     StopAsyncIteration              COIL_EDONE
 *     GeneratorExit                   COIL_ECLOSED (at the body's yield)
 *     yield from (forwarding)         coil_gen_yield_from(inner)
 *     loop.shutdown_asyncgens()       coil_loop_shutdown_asyncgens(loop)
 *
 *     static int ticker(void *arg, void **result)
 *     {
 *         int to = (int)(intptr_t)arg, rc;
 *         for (int i = 0; i < to; i++) {
 *             if ((rc = coil_gen_yield((void *)(intptr_t)i, NULL)))
 *                 return rc;              // closed, or an error thrown in
 *             if ((rc = coil_sleep(1)))
 *                 return rc;              // cancelled
 *         }
 *         return 0;                       // StopAsyncIteration
 *     }
 *
 * The body: returns 0 (or COIL_EDONE) at the end of the iteration, or an
 * error, which the step that ran it returns to the consumer; either way the
 * generator is then closed. Its *result is ignored (an async generator has
 * no return value in Python either): leave it NULL.
 *
 * Ownership of values: a generator never copies, owns or frees the values it
 * yields or is sent. A yielded value is whatever the body says it is (an
 * integer in the pointer, a pointer into the body's state, ...), and stays
 * valid as long as the body keeps it so; a body that yields allocated values
 * documents who frees them. A value sent with coil_gen_asend() is borrowed
 * from the sender.
 *
 * Closing (DESIGN.md section 6): coil_gen_aclose() resumes the body with
 * COIL_ECLOSED at its pending yield, and every await or yield it attempts
 * from then on returns COIL_ECLOSED at once, so its cleanup always runs to
 * the end without suspending. (Python lets a `finally` of an async generator
 * await; coil does not, so that a generator can be closed from anywhere,
 * destroy and loop close included.) A body that yields a value anyway makes
 * aclose report COIL_EINVALSTATE, Python's "async generator ignored
 * GeneratorExit".
 *
 * Loop finalization: a generator that has started is registered with the
 * thread's current loop (coil_get_event_loop() at its first step: in a
 * runtime, the loop of the worker that made that step) until it ends. When
 * a loop closes (coil_loop_close), the generators still open on it are
 * aclosed there, as asyncio's shutdown_asyncgens() does at the end of
 * asyncio.run(): their cleanup runs. A runtime's worker loops do not do
 * that when the runtime shuts down: a generator left open there stays open
 * (destroy closes it); close them before, or call
 * coil_loop_shutdown_asyncgens() on each worker's loop from a task of the
 * runtime. The generator objects themselves stay the caller's to destroy.
 *
 * Threads: a generator is used by one consumer at a time: one task, or plain
 * code of one thread. Its steps are made from a task (so that the body may
 * await) or from plain code (then an await in the body returns
 * COIL_EINVALSTATE). In a runtime the consumer task may move between
 * workers between and during steps (the body then runs on whichever worker
 * resumes the task), and the loop it registered with may be finalized
 * (coil_loop_shutdown_asyncgens) from a task on another worker: that closes
 * it only between two steps, never during one, and a step, aclose or
 * destroy that starts while such a close runs waits for it to end (it never
 * suspends) and then finds the generator closed.
 */
#ifndef COIL_GEN_H
#define COIL_GEN_H

#include "common.h"
#include "coro.h"
#include "aiter.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_gen coil_gen_t;

typedef struct coil_gen_opts {
	/* Stack size in bytes; 0 means the default (coil_stack_default_size).
	 * The stack is taken at the first step and given back when the body
	 * ends. */
	size_t stack_size;
	/* A name used in messages (stack overflow, close errors). Copied. */
	const char *name;
} coil_gen_opts_t;

/*
 * Creates a generator that will run body(arg, &result) at its first step.
 * Nothing runs until then. opts may be NULL. On success *out holds the new
 * generator, owned by the caller (free it with coil_gen_destroy). Returns 0,
 * -EINVAL (out or body NULL) or -ENOMEM. Any thread.
 */
COIL_API int coil_gen_create(coil_gen_t **out, coil_fn body, void *arg,
			     const coil_gen_opts_t *opts);

/*
 * __anext__: runs the generator to its next yield and writes the yielded
 * value to *value (if not NULL). Same as coil_gen_asend(g, NULL, value).
 * Returns:
 *   0                 a value was yielded;
 *   COIL_EDONE        the body ended (StopAsyncIteration), now or before;
 *   < 0               the body returned that error (the generator is then
 *                     closed: the next call returns COIL_EDONE);
 *   COIL_EINVALSTATE  the generator is already running: in its own body, or
 *                     suspended in an await of another step;
 *   COIL_ECLOSED      the caller itself is being closed (its awaits return
 *                     COIL_ECLOSED at once, so does a generator step);
 *   -ECANCELED        the consuming task was cancelled while the body awaited
 *                     and the body passed that on;
 *   -EINVAL           g is NULL;
 *   -ENOMEM           at the first step, the body's stack could not be had
 *                     (the generator stays unstarted).
 * On any return but 0, *value is set to NULL. From the generator's thread,
 * inside a task when the body awaits.
 */
COIL_API int coil_gen_next(coil_gen_t *g, void **value);

/*
 * asend: resumes the generator with `value` as the result of its pending
 * coil_gen_yield() (written to the body's *sent), and runs it to its next
 * yield. A generator that has not started yet only accepts NULL (Python's
 * "can't send non-None value to a just-started async generator"): a non-NULL
 * value returns -EINVAL and leaves it unstarted. `value` is borrowed from
 * the caller. Returns as coil_gen_next.
 */
COIL_API int coil_gen_asend(coil_gen_t *g, void *value, void **out);

/*
 * athrow: makes the body's pending coil_gen_yield() return `err` (a
 * negative code) and runs it on: the body may handle it and yield again
 * (returns 0 and that value), end (returns COIL_EDONE) or return an error
 * (returned; often err itself). Throwing into a generator that has not
 * started closes it without running it and returns err, as Python does.
 * Returns COIL_EDONE on a generator that is closed, -EINVAL if g is NULL or
 * err is not negative, otherwise as coil_gen_next.
 */
COIL_API int coil_gen_athrow(coil_gen_t *g, int err, void **out);

/*
 * aclose: closes the generator (see the top of this file). An unstarted one
 * is marked closed and never runs; a closed one is left alone. A suspended
 * one gets COIL_ECLOSED at its pending yield and runs its cleanup to the end
 * without suspending. Returns 0 when the body ended (whatever it returned:
 * 0, COIL_EDONE or COIL_ECLOSED), the body's own error if its cleanup failed
 * with another one, COIL_EINVALSTATE if the body tried to yield a value
 * while closing (the value is not delivered; the generator is closed all the
 * same) or if the generator is running (then nothing is done), -EINVAL if g
 * is NULL. The generator is closed on every return but the last two.
 * From the generator's thread.
 */
COIL_API int coil_gen_aclose(coil_gen_t *g);

/*
 * Closes the generator if it is open (as coil_gen_aclose; an error of its
 * cleanup goes to the exception handler of its loop, as asyncio reports an
 * error closing an async generator) and frees it. NULL is allowed.
 * Destroying a generator while it runs (from its own body, or while a step of
 * it is suspended in an await) is deferred to the end of that step, which
 * then returns COIL_ECLOSED; its caller must not touch the generator again.
 */
COIL_API void coil_gen_destroy(coil_gen_t *g);

/*
 * The state, as inspect.getasyncgenstate(): CREATED before the first step;
 * RUNNING while a step runs, also while the body is suspended in an await
 * (Python's ag_running); SUSPENDED at a yield; CLOSED once the body ended or
 * the generator was closed. Returns COIL_CORO_CLOSED for NULL.
 */
COIL_API coil_coro_state_t coil_gen_state(const coil_gen_t *g);

/* Returns the name given at creation ("" if none or g is NULL). */
COIL_API const char *coil_gen_name(const coil_gen_t *g);

/*
 * The generator as an async iterator (coil/aiter.h), for the aitertools:
 * its next is coil_gen_next. The iterator is part of the generator (no
 * allocation; coil_aiter_destroy on it does nothing) and lives as long as it.
 * Returns NULL if g is NULL.
 */
COIL_API coil_aiter_t *coil_gen_aiter(coil_gen_t *g);

/*
 * From inside a generator's body: hands `value` to the consumer and suspends
 * until the next step. Returns 0 and writes the value the next asend passed
 * (NULL for coil_gen_next) to *sent (if not NULL); returns the error passed
 * to coil_gen_athrow; returns COIL_ECLOSED when the generator is being
 * closed (then the body should clean up and return; a value offered while
 * already closing is not delivered); returns COIL_EINVALSTATE when not
 * called from a generator's body (a plain coroutine, a task, or a thread).
 */
COIL_API int coil_gen_yield(void *value, void **sent);

/*
 * From inside a generator's body: delegates to `inner` until it ends, as
 * `yield from` does for Python's generators (an async generator writes
 * `async for v in inner: yield v`, which forwards only values). Every value
 * inner yields is yielded to this generator's consumer; what the consumer
 * sends (asend) is sent on to inner, what it throws (athrow) is thrown into
 * inner; when this generator is closed, inner is aclosed first. inner stays
 * the caller's (not destroyed). Returns 0 once inner is exhausted (it may
 * already have been), inner's error if it ended with one (a thrown error it
 * did not handle comes back here), COIL_ECLOSED when this generator is being
 * closed (or aclose's error for inner, if closing inner failed),
 * COIL_EINVALSTATE outside a generator's body or if inner is running,
 * -EINVAL if inner is NULL or is the calling generator itself.
 */
COIL_API int coil_gen_yield_from(coil_gen_t *inner);

/*
 * asyncio's loop.shutdown_asyncgens(): acloses every generator that is open
 * on `loop` (NULL: the current loop) and not running (no step of it is
 * under way, from a task on any worker). Called from a task of that loop
 * (for a runtime's worker loop: from any task of that runtime, on any
 * worker), it closes them in the calling task; called with a standalone
 * loop stopped (from plain code on its thread), it runs the loop until
 * that is done. A runtime's worker loop is finalized only from a task of
 * the runtime. An error a generator's cleanup returns is reported to the
 * loop's exception handler, as asyncio does, and does not stop the others.
 * Returns the number of generators closed; -EINVAL if there is no such
 * loop (or it is a runtime's COIL_ANY_WORKER stand-in), a task of another
 * loop (another runtime) calls it, or plain code calls it on a runtime's
 * worker loop that is not running and has generators open (nothing is
 * closed then, nor later); -EBUSY if the
 * loop runs but the caller is not one of its tasks; COIL_ECLOSED if the
 * loop is closed; when it runs a stopped loop, the errors of
 * coil_loop_run_until_complete (-ENOMEM, ...). coil_loop_close() does this
 * by itself before it closes the loop.
 */
COIL_API int coil_loop_shutdown_asyncgens(coil_loop_t *loop);

/*
 * `async for (v) in (g)`: runs the statement or block that follows once per
 * value of generator g, with v (an lvalue of any pointer type) holding the
 * value. When the loop ends, rc (an int lvalue) is COIL_EDONE at the end of
 * the iteration, or the error of the step that failed (see coil_gen_next).
 * `break` leaves early with rc 0; the macro does not close the generator
 * then (neither does Python's `async for`): aclose or destroy it, or leave it
 * to the loop's finalization.
 *
 *     void *v;
 *     int rc;
 *     COIL_AFOR(v, g, rc)
 *         printf("%d\n", (int)(intptr_t)v);
 *     if (rc != COIL_EDONE)
 *         return rc;
 */
#define COIL_AFOR(v, g, rc)                                                 \
	for (void *coil_afor_v_ = NULL;                                     \
	     ((rc) = coil_gen_next((g), &coil_afor_v_)) == 0 &&             \
	     ((v) = coil_afor_v_, (void)(v), 1);)

#ifdef __cplusplus
}
#endif
#endif /* COIL_GEN_H */
