/*
 * coil/compose.h: composing futures and tasks, asyncio's gather, wait,
 * as_completed, wait_for, timeout scopes (asyncio.timeout), shield and
 * TaskGroup.
 *
 * The set functions take an array of futures and a count (DESIGN.md section
 * 6 "Sets"); a task is passed as coil_task_future(t). Results are borrowed
 * from the futures, which keep owning them: the caller keeps its references
 * to the futures for as long as it uses the results, and in any case for
 * the duration of the call.
 *
 * Cancellation follows asyncio. Every awaiting function here returns
 * -ECANCELED when the calling task is cancelled while it waits (or had a
 * cancellation pending when it called), and leaves nothing registered
 * behind. gather and wait_for pass the cancellation on to what they wait
 * for (gather cancels its children, wait_for cancels its future), wait,
 * as_completed and shield do not. Timeout scopes and wait_for tell their own
 * cancellation from one that came from outside with coil_task_cancelling()
 * and coil_task_uncancel(), as asyncio's Task.cancelling()/uncancel().
 *
 * Threads: the awaiting functions are called from inside a task; the
 * futures given to one call belong to one loop or to loops of one runtime
 * (its workers), whatever worker the calling task runs on. A task inside a
 * timeout scope (or wait_for) stays on the worker that armed the deadline
 * until the scope ends.
 */
#ifndef COIL_COMPOSE_H
#define COIL_COMPOSE_H

#include "common.h"
#include "task.h"
#include "cm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- gather ------------------------------------------------------------ */

/* coil_gather flag: collect every error instead of returning the first. */
#define COIL_GATHER_RETURN_EXCEPTIONS 1u

/*
 * asyncio.gather: from inside a task, waits for the n futures.
 *
 * Without COIL_GATHER_RETURN_EXCEPTIONS, returns 0 once all have a result,
 * or the first error as soon as one fails (in the order they fail; -ECANCELED
 * when a child is cancelled); the other children keep running, as in
 * asyncio, and an error one of them ends with later counts as retrieved
 * (the loop does not report it as "never retrieved"). With the flag, returns
 * 0 once all are done, each error in errors[i].
 *
 * results[i] (borrowed from futures[i]) and errors[i] are filled in argument
 * order for every future done when it returns; a future still pending gets
 * NULL and COIL_EINVALSTATE, a failed one NULL and its code. results and
 * errors may be NULL. The same future may appear more than once.
 *
 * Cancelling the task in coil_gather cancels every child that is not done
 * and returns -ECANCELED at once (the children end on their own; await them
 * to know when). Returns 0 at once for n == 0; -EINVAL for a NULL array or
 * future, unknown flags, or futures of different loops; -EXDEV for futures
 * of a loop that is neither the caller's nor another worker of its runtime
 * (as coil_await); -EDEADLK when the calling task is one of the futures (it
 * cannot be done while it waits for itself); COIL_EINVALSTATE outside a
 * task; -ENOMEM.
 */
COIL_API int coil_gather(coil_future_t *const *futures, size_t n,
			 void **results, int *errors, unsigned flags);

/* --- wait -------------------------------------------------------------- */

/* When coil_wait returns (asyncio's return_when). */
#define COIL_ALL_COMPLETED   0 /* all are done (the default) */
#define COIL_FIRST_COMPLETED 1 /* any is done */
#define COIL_FIRST_EXCEPTION 2 /* any failed (not: was cancelled), or all done */

/*
 * asyncio.wait: from inside a task, waits until the return_when condition
 * holds or timeout_ns (COIL_FOREVER: no limit; 0: do not block) has passed,
 * then sets done[i] (if done is not NULL) to whether futures[i] is done and
 * returns how many are. A timeout is not an error: the count (possibly 0)
 * is returned and nothing is cancelled. Cancelling the waiting task returns
 * -ECANCELED and cancels nothing either. Returns -EINVAL for n == 0 (asyncio
 * refuses an empty set), a NULL array or future, a bad return_when or a
 * negative timeout other than COIL_FOREVER; -EXDEV and -EDEADLK as for
 * coil_gather; COIL_EINVALSTATE outside a task; -ENOMEM.
 */
COIL_API int coil_wait(coil_future_t *const *futures, size_t n, bool *done,
		       int return_when, int64_t timeout_ns);

/* --- as_completed -------------------------------------------------------- */

typedef struct coil_as_completed coil_as_completed_t;

/*
 * asyncio.as_completed: makes an iterator that yields the n futures in the
 * order they complete, within a total timeout of timeout_ns from now
 * (COIL_FOREVER: none). The iterator holds a reference to each future until
 * it is destroyed. Futures already done are yielded first, in argument
 * order. On success *out is the caller's; free it with
 * coil_as_completed_destroy(). Call on the loop's thread (a task or a
 * callback). Returns 0, -EINVAL (NULL out, NULL array with n > 0, a NULL
 * future, futures of different loops, a negative timeout other than
 * COIL_FOREVER, no loop), -EXDEV and -EDEADLK as for coil_gather (the
 * calling task among the futures), or -ENOMEM.
 */
COIL_API int coil_as_completed_create(coil_as_completed_t **out,
				      coil_future_t *const *futures, size_t n,
				      int64_t timeout_ns);

/*
 * From inside a task: waits for the next future to complete and returns 0
 * with it in *f (borrowed from the iterator). Returns COIL_EDONE when all n
 * were yielded; -ETIMEDOUT once the total timeout has expired (futures that
 * completed before it are still yielded first; every later call returns
 * -ETIMEDOUT again); -ECANCELED if the task is cancelled (no future is lost:
 * the next call yields it); -EBUSY if another task is waiting on the
 * iterator; -EINVAL for NULL arguments; COIL_EINVALSTATE outside a task.
 */
COIL_API int coil_as_completed_next(coil_as_completed_t *it, coil_future_t **f);

/*
 * Frees the iterator and drops its references to the futures (which go on
 * running). A task still waiting in coil_as_completed_next on it gets
 * COIL_ECLOSED. NULL is allowed.
 */
COIL_API void coil_as_completed_destroy(coil_as_completed_t *it);

/* --- timeout scopes ------------------------------------------------------ */

/*
 * A timeout scope (asyncio.timeout). Caller storage, or made with
 * coil_timeout_create(); the fields are private. The task that enters it is
 * cancelled at the deadline, so that whatever it awaits returns -ECANCELED;
 * leaving the scope withdraws that cancellation and reports -ETIMEDOUT.
 * Scopes nest: only the one whose deadline came first reports a timeout.
 * Every entered scope must be left (coil_timeout_exit) by the task that
 * entered it, before the storage goes away.
 */
typedef struct coil_timeout {
	int64_t when;           /* deadline (loop ns) or COIL_FOREVER */
	coil_task_t *task;      /* the task inside the scope */
	coil_handle_t *handle;  /* the pending expiry callback, or NULL */
	int32_t cancelling;     /* task's cancellation count at entry */
	uint8_t state;
	bool relative;          /* when is still a delay (coil_timeout_cm) */
} coil_timeout_t;

/*
 * Enters the scope from inside a task, with a deadline delay_ns from now
 * (COIL_FOREVER: none yet; 0 or a passed deadline expires at the next loop
 * iteration). Initialises t. Returns 0, -EINVAL (NULL t, negative delay
 * other than COIL_FOREVER), COIL_EINVALSTATE outside a task, or -ENOMEM.
 */
COIL_API int coil_timeout_enter(coil_timeout_t *t, int64_t delay_ns);

/* As coil_timeout_enter, with an absolute deadline in loop time
 * (coil_loop_time_ns), or COIL_FOREVER. Loop time is never negative: any
 * other negative deadline is -EINVAL. */
COIL_API int coil_timeout_enter_at(coil_timeout_t *t, int64_t when_ns);

/*
 * Leaves the scope (from the task that entered it) and cancels its timer.
 * If the scope expired, its cancellation is withdrawn (coil_task_uncancel)
 * and it returns -ETIMEDOUT, or -ECANCELED when a cancellation from outside
 * the scope is pending as well (asyncio then lets CancelledError through).
 * Returns 0 when the scope did not expire, COIL_EINVALSTATE if t is not
 * entered or another task calls, -EINVAL for NULL. Never suspends.
 */
COIL_API int coil_timeout_exit(coil_timeout_t *t);

/*
 * Moves the deadline of an entered scope that has not expired to delay_ns
 * from now (COIL_FOREVER: no deadline). Returns 0, -EINVAL, COIL_EINVALSTATE
 * (not entered, or already expired), or -ENOMEM; on a multi-worker runtime
 * -EXDEV when called by a task other than the one inside the scope (the
 * deadline belongs to that task's worker).
 */
COIL_API int coil_timeout_reschedule(coil_timeout_t *t, int64_t delay_ns);

/* As coil_timeout_reschedule, with an absolute deadline (asyncio's
 * Timeout.reschedule(when)). */
COIL_API int coil_timeout_reschedule_at(coil_timeout_t *t, int64_t when_ns);

/* Returns true once the scope's deadline has passed and it cancelled its
 * task (it stays true after the scope is left). */
COIL_API bool coil_timeout_expired(const coil_timeout_t *t);

/* Returns the deadline in loop nanoseconds, or COIL_FOREVER. */
COIL_API int64_t coil_timeout_when(const coil_timeout_t *t);

/* Allocates a scope (to be entered later, once). Returns 0, -EINVAL or
 * -ENOMEM. */
COIL_API int coil_timeout_create(coil_timeout_t **out);

/* Frees a scope from coil_timeout_create; one still entered has its timer
 * cancelled first. NULL is allowed. */
COIL_API void coil_timeout_destroy(coil_timeout_t *t);

/*
 * A context manager for COIL_ASYNC_WITH over t (caller storage): enters
 * with a deadline delay_ns after the block starts, exits with
 * coil_timeout_exit. The macro discards exit's return value: after the
 * block, coil_timeout_expired(t) says whether the scope timed out.
 */
COIL_API coil_cm_t coil_timeout_cm(coil_timeout_t *t, int64_t delay_ns);

/* As coil_timeout_cm, with an absolute deadline. */
COIL_API coil_cm_t coil_timeout_at_cm(coil_timeout_t *t, int64_t when_ns);

/* --- wait_for ------------------------------------------------------------ */

/*
 * asyncio.wait_for: from inside a task, awaits f for at most timeout_ns
 * (COIL_FOREVER: no limit). Returns f's code, with its result (borrowed) in
 * *result (if not NULL) on 0.
 *
 * At the timeout, f is cancelled and wait_for waits until f is really done,
 * then returns -ETIMEDOUT; if f completed before the cancellation took
 * effect, its outcome is returned instead (as asyncio 3.12). If the calling
 * task is cancelled, f is cancelled, wait_for waits until it is done and
 * returns -ECANCELED (f keeps its outcome). Returns -EINVAL (NULL f,
 * negative timeout other than COIL_FOREVER), -EDEADLK (f is the calling
 * task), -EXDEV (f belongs to another runtime's loop, as coil_await),
 * COIL_EINVALSTATE outside a task, -ENOMEM.
 */
COIL_API int coil_wait_for(coil_future_t *f, int64_t timeout_ns, void **result);

/* --- shield -------------------------------------------------------------- */

/*
 * asyncio.shield: from inside a task, awaits f, but cancelling the awaiting
 * task never cancels f: the await returns -ECANCELED and f keeps running.
 * If f then fails, its error counts as retrieved (asyncio does the same),
 * also when it failed on another worker as the cancellation came, just
 * before the await returned.
 * Use it inside a timeout scope or a task group body to protect f from
 * their cancellation. Returns as coil_await.
 */
COIL_API int coil_shield(coil_future_t *f, void **result);

/* --- TaskGroup ----------------------------------------------------------- */

typedef struct coil_taskgroup coil_taskgroup_t;

/*
 * asyncio.TaskGroup. Create it, enter it from a task (the group's "parent":
 * the task whose body spawns into it), spawn children, and leave it with
 * coil_taskgroup_wait, which waits for every child. The first child that
 * fails (an error other than -ECANCELED) cancels its siblings and the
 * parent, so that whatever the body awaits returns -ECANCELED; wait then
 * withdraws that cancellation. All failures are collected, with each
 * child's code and message (C's ExceptionGroup).
 *
 * Returns 0, -EINVAL or -ENOMEM. The group is the caller's: free it with
 * coil_taskgroup_destroy().
 */
COIL_API int coil_taskgroup_create(coil_taskgroup_t **out);

/* Enters the group from inside a task. Returns 0, -EINVAL, or
 * COIL_EINVALSTATE outside a task or when entered before. */
COIL_API int coil_taskgroup_enter(coil_taskgroup_t *tg);

/*
 * Spawns fn(arg, &result) as a child of the group (opts as coil_spawn,
 * NULL for defaults). If out is not NULL, *out gets a reference to the task
 * that the caller drops with coil_task_detach(); the group holds its own
 * until the child is done. Returns 0; -EINVAL (tg or fn NULL);
 * COIL_EINVALSTATE if the group was not entered; COIL_ECLOSED if it is
 * finished, or aborting after a failure or a cancellation (asyncio's "is
 * shutting down"); -ENOMEM; or coil_loop_create_task's error. A child
 * starts on the calling thread's running loop (the spawning task's
 * worker), else on the parent's loop.
 */
COIL_API int coil_taskgroup_spawn(coil_taskgroup_t *tg, coil_task_t **out,
				  coil_fn fn, void *arg,
				  const coil_spawn_opts_t *opts);

/*
 * Leaves the group (asyncio's __aexit__), from the parent task: waits until
 * every child is done. status is how the body ended: 0, -ECANCELED (it was
 * cancelled: the children are cancelled too), or another error (the
 * children are cancelled and the error joins the collected ones, last,
 * without a task). A cancellation of the parent while it waits here cancels
 * the children and is reported.
 *
 * Returns 0; the first collected error's code when any child (or the body)
 * failed (see coil_taskgroup_error_count); -ECANCELED when the parent is
 * being cancelled from outside the group and nothing failed; COIL_ECLOSED
 * when the loop force-closes the parent or the group is destroyed
 * meanwhile. COIL_EINVALSTATE if not entered, already left, or called by
 * another task; -EINVAL for tg NULL.
 */
COIL_API int coil_taskgroup_wait(coil_taskgroup_t *tg, int status);

/* Returns what coil_taskgroup_wait returned (the result of a
 * COIL_ASYNC_WITH block), or COIL_EINVALSTATE before it returned. */
COIL_API int coil_taskgroup_result(const coil_taskgroup_t *tg);

/* Returns how many errors were collected. */
COIL_API size_t coil_taskgroup_error_count(const coil_taskgroup_t *tg);

/* Returns the code of collected error i (in the order they happened; the
 * body's own error last), or 0 if i is out of range. */
COIL_API int coil_taskgroup_error(const coil_taskgroup_t *tg, size_t i);

/* Returns the message of error i (borrowed, valid until the group is
 * destroyed), or NULL. */
COIL_API const char *coil_taskgroup_error_message(const coil_taskgroup_t *tg,
						  size_t i);

/* Returns the child that raised error i (borrowed, valid until the group
 * is destroyed), or NULL for the body's error or i out of range. */
COIL_API coil_task_t *coil_taskgroup_error_task(const coil_taskgroup_t *tg,
					       size_t i);

/*
 * Frees the group and what it collected. Children still running (the group
 * was not waited for) go on, detached. A parent still waiting in
 * coil_taskgroup_wait on it gets COIL_ECLOSED. NULL is allowed.
 */
COIL_API void coil_taskgroup_destroy(coil_taskgroup_t *tg);

/*
 * A context manager for COIL_ASYNC_WITH: enter is coil_taskgroup_enter,
 * exit is coil_taskgroup_wait(tg, coil_with.status). Set coil_with.status
 * to -ECANCELED (or the error) when the block ends because an await
 * failed. After the block, coil_taskgroup_result(tg) is the group's result.
 */
COIL_API coil_cm_t coil_taskgroup_cm(coil_taskgroup_t *tg);

#ifdef __cplusplus
}
#endif
#endif /* COIL_COMPOSE_H */
