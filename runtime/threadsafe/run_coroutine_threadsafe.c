/*
 * runtime/threadsafe/run_coroutine_threadsafe.c: handing a coroutine to a
 * loop from any thread (see coil/threadsafe.h), asyncio's
 * run_coroutine_threadsafe.
 *
 * One allocation per call, a bridge_t: the concurrent future the caller
 * gets, followed by what the loop needs to make the task. Its life:
 *
 *   1. Any thread: the bridge is filled in and handed to the loop with a
 *      thread-safe call (the hand-off); from then on the loop side holds a
 *      reference of its own.
 *   2. The loop's thread runs the hand-off: unless the future was cancelled
 *      meanwhile (then fn never runs), it creates the task, whose body is
 *      trampoline(), keeps a reference to it in `task`, and adds a
 *      done-callback (task_ended) for a task that ends without ever running.
 *   3. The trampoline runs fn. When fn returns, still inside the task, it
 *      gives up the task (reference and done-callback) and completes the
 *      future with fn's outcome, then drops the loop side's reference. The
 *      task itself ends with fn's code but without the result: the result
 *      belongs to the concurrent future, whose last reference runs its
 *      destructor on whichever thread drops it. The future is thus complete
 *      the moment fn returns, with no callback left in the loop's queues to
 *      be dropped if the loop is stopped and closed right after.
 *   4. A task that never runs (cancelled before its first step, or out of
 *      memory for its stack) completes the future from task_ended instead.
 *
 * Cancellation: coil_cfuture_cancel marks the future cancelled at once (as
 * Python's concurrent future) and, still under the future's lock, hands
 * cancel_run to the loop, which cancels the task if there is one. The lock
 * is what keeps the loop alive during that hand-off: the loop side must
 * take it to complete the future, which it always does before it lets go of
 * the loop, so the loop cannot be closed and freed under a canceller.
 * Handed to COIL_ANY_WORKER, cancel_run and the hand-off may run on two
 * workers at once: the hand-off looks at the future again once `task` is
 * set, so that a cancel_run that came too early to find the task is not
 * lost.
 *
 * A runtime's shutdown takes no new task once it has begun: a hand-off that
 * runs after that completes the future with COIL_ECLOSED, as a dropped one
 * does, and one that made its task before is counted by the shutdown,
 * which waits for it or cancels it (coil__task_create).
 *
 * Closing: coil_loop_close cancels the tasks and runs them to their end, so
 * a running coroutine completes its future (cancelled) through step 3. But
 * the close drops what is still queued, and two things may be: a hand-off
 * (or a cancellation) that arrived after the loop last ran, and task_ended
 * for a task cancelled before its first step. The hand-off goes through
 * coil__loop_call_soon_threadsafe_ex, whose drop hook completes the future
 * with COIL_ECLOSED, and the close delivers queued done-callbacks instead of
 * dropping them, so task_ended runs.
 *
 * Threads: `task` is under task_lock (on a runtime the hand-off, the task
 * and a cancellation may run on three workers); everything else of the
 * bridge is written before the hand-off and only read afterwards. The
 * hand-off goes to a loop's inbox, or for COIL_ANY_WORKER to the runtime's
 * injection queue, and spawns the task pinned to the worker running it, so
 * that `task` and the done-callback are in place before the task's first
 * step; the trampoline then unpins it unless the caller asked for a pinned
 * task.
 */
#include "alloc.h"
#include "core.h"
#include "cfuture.h"

typedef struct bridge {
	coil_cfuture_t cf;
	/* Read-only once handed over. */
	coil_fn fn;
	void *arg;
	char *name;
	size_t stack_size;
	coil_dtor result_dtor;
	bool pinned;
	/* Our reference to the task until fn has returned (or the task ended
	 * without running it), else NULL; under task_lock, since on a runtime
	 * the task, the hand-off and a cancellation may each be on another
	 * worker. */
	coil__spin_t task_lock;
	coil_task_t *task;
} bridge_t;

/* Takes the bridge's task reference (NULL if already taken). */
static coil_task_t *take_task(bridge_t *b)
{
	coil__spin_lock(&b->task_lock);
	coil_task_t *t = b->task;
	b->task = NULL;
	coil__spin_unlock(&b->task_lock);
	return t;
}

static bridge_t *bridge_of(coil_cfuture_t *f)
{
	return coil__container_of(f, bridge_t, cf);
}

/*
 * Queues cb(arg) on the loop from any thread; if the loop closes with it
 * still queued, dropped(arg) runs instead.
 */
static int post(coil_loop_t *loop, coil_cb cb, coil_cb dropped, void *arg)
{
	return coil__loop_call_soon_threadsafe_ex(loop, cb, dropped, arg);
}

/*
 * The loop side's last act: completes the future with an outcome and drops
 * the loop side's reference. If the future was cancelled first, the outcome
 * is nobody's and is destroyed here.
 */
static void finish(bridge_t *b, int ret, void *result, char *msg)
{
	coil_dtor dtor = ret == 0 ? b->result_dtor : NULL;
	if (!coil__cfuture_complete(&b->cf, ret, result, dtor, msg)) {
		if (result && dtor)
			dtor(result);
		coil__strfree(msg);
	}
	coil_cfuture_release(&b->cf);
}

static void task_ended(coil_future_t *f, void *arg);

static int trampoline(void *arg, void **result)
{
	bridge_t *b = arg;
	/* Spawned pinned so that the hand-off had finished with it before
	 * it first ran (it could be stolen otherwise); from here on it may
	 * move, unless the caller asked for a pinned task. */
	if (!b->pinned)
		coil__task_unpin_cur();
	void *res = NULL;
	int ret = b->fn(b->arg, &res);
	coil_task_t *t = take_task(b);
	coil_future_remove_done_callback(coil_task_future(t), task_ended, b);
	char *msg = NULL;
	if (ret != 0) {
		/* As for any body: the result of a failing one is nobody's. */
		if (res && b->result_dtor)
			b->result_dtor(res);
		res = NULL;
		/*
		 * Someone besides the loop side holds the future: it reports
		 * the error, so the task hands its message over and does not
		 * report it again as never retrieved (the flag survives the
		 * task's completion). Nobody else: the task keeps both, and
		 * the loop's exception handler reports the error as for any
		 * detached task. A holder that lets go right after this
		 * check only loses the report, as in Python.
		 */
		if (ret != -ECANCELED &&
		    atomic_load_explicit(&b->cf.refs, memory_order_relaxed) > 1) {
			msg = coil__take_errmsg();
			atomic_store_explicit(&t->fut.retrieved, true, memory_order_relaxed);
		}
	}
	/* The loop keeps its own reference until the task has ended. */
	coil_task_detach(t);
	finish(b, ret, res, msg);
	*result = NULL;
	return ret;
}

/* A done-callback for the task that ended without running the trampoline:
 * cancelled before its first step, or no stack for it. */
static void task_ended(coil_future_t *f, void *arg)
{
	bridge_t *b = arg;
	int ret = coil_future_exception(f);
	const char *m = coil_future_error_message(f);
	char *msg = ret != -ECANCELED && m ? coil__strdup(m) : NULL;
	coil_task_detach(take_task(b));
	finish(b, ret, NULL, msg);
}

/* On the loop's thread: the hand-off. */
static void handoff_run(void *arg)
{
	bridge_t *b = arg;
	if (coil_cfuture_cancelled(&b->cf)) {
		/* Cancelled before it was scheduled: it never runs. */
		coil_cfuture_release(&b->cf);
		return;
	}
	coil_spawn_opts_t o = {
		.name = b->name,
		.stack_size = b->stack_size,
		.result_dtor = NULL, /* the result goes to the future */
		.pinned = true,      /* until its first step: see trampoline */
	};
	/* A runtime that is shutting down takes no new task from here: one
	 * made after its last look would never run (coil__task_create). */
	coil_task_t *t;
	int rc = coil_loop_create_task(b->cf.loop, &t, trampoline, b, &o);
	if (rc == COIL_ECLOSED && b->cf.loop->rt) {
		finish(b, COIL_ECLOSED, NULL,
		       coil__strdup("the runtime was shut down before the "
				    "coroutine was scheduled"));
		return;
	}
	if (rc == 0) {
		rc = coil_future_add_done_callback(coil_task_future(t), task_ended, b);
		if (rc == 0) {
			coil__spin_lock(&b->task_lock);
			b->task = t;
			coil__spin_unlock(&b->task_lock);
			/*
			 * Handed to COIL_ANY_WORKER, cancel_run may have run
			 * on another worker since the check above, found no
			 * task and let go: look again now that it would find
			 * one. A cancellation before cancel_run read `task`
			 * was set before cancel_run was queued, and the
			 * task_lock orders that read before our store; if
			 * cancel_run sees the task too, the task is only
			 * cancelled twice before its first step.
			 */
			if (coil_cfuture_cancelled(&b->cf))
				coil_task_cancel(t, NULL);
			return;
		}
		/* Nothing would see the task end if it never ran: keep it
		 * from running at all (it has not started yet). */
		coil_task_cancel(t, NULL);
		coil_task_detach(t);
	}
	finish(b, rc, NULL, NULL);
}

/* The loop closed with the hand-off still queued. */
static void handoff_dropped(void *arg)
{
	bridge_t *b = arg;
	finish(b, COIL_ECLOSED, NULL,
	       coil__strdup("the loop was closed before the coroutine was scheduled"));
}

/* On the loop's thread: a cancellation handed over by coil_cfuture_cancel. */
static void cancel_run(void *arg)
{
	bridge_t *b = arg;
	coil__spin_lock(&b->task_lock);
	coil_task_t *t = b->task;
	if (t)
		coil_future_ref(coil_task_future(t));
	coil__spin_unlock(&b->task_lock);
	if (t) {
		coil_task_cancel(t, NULL);
		coil_task_detach(t);
	}
	coil_cfuture_release(&b->cf);
}

static void cancel_dropped(void *arg)
{
	bridge_t *b = arg;
	coil_cfuture_release(&b->cf);
}

/* Called with the future's lock held, see cfuture.h. */
static void bridge_cancelled(coil_cfuture_t *f)
{
	bridge_t *b = bridge_of(f);
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	if (post(f->loop, cancel_run, cancel_dropped, b) != 0) {
		/*
		 * The loop is closed (its tasks were cancelled with it) or
		 * memory ran out: the future is cancelled all the same, the
		 * task is left to run. The canceller still holds a reference,
		 * so this one is not the last.
		 */
		atomic_fetch_sub_explicit(&f->refs, 1, memory_order_relaxed);
	}
}

static void bridge_free(coil_cfuture_t *f)
{
	bridge_t *b = bridge_of(f);
	coil__strfree(b->name);
	coil__free(b, sizeof(*b));
}

static const coil__cfuture_ops_t bridge_ops = {
	.cancelled = bridge_cancelled,
	.free = bridge_free,
};

int coil_run_coroutine_threadsafe_opts(coil_cfuture_t **out, coil_loop_t *loop,
				       coil_fn fn, void *arg,
				       const coil_spawn_opts_t *opts)
{
	if (!loop || !fn)
		return -EINVAL;
	bridge_t *b = coil__calloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (opts && opts->name && !(b->name = coil__strdup(opts->name))) {
		coil__free(b, sizeof(*b));
		return -ENOMEM;
	}
	/* The caller's reference, if it wants one, and the loop side's. */
	int rc = coil__cfuture_init(&b->cf, &bridge_ops, loop, out ? 2 : 1);
	if (rc) {
		bridge_free(&b->cf);
		return rc;
	}
	b->fn = fn;
	b->arg = arg;
	if (opts) {
		b->stack_size = opts->stack_size;
		b->result_dtor = opts->result_dtor;
		b->pinned = opts->pinned;
	}
	/* The inbox's lock publishes the writes above to the loop's thread. */
	rc = post(loop, handoff_run, handoff_dropped, b);
	if (rc) {
		coil__cfuture_fini(&b->cf);
		bridge_free(&b->cf);
		return rc;
	}
	if (out)
		*out = &b->cf;
	return 0;
}

int coil_run_coroutine_threadsafe(coil_cfuture_t **out, coil_loop_t *loop,
				  coil_fn fn, void *arg)
{
	return coil_run_coroutine_threadsafe_opts(out, loop, fn, arg, NULL);
}
