/*
 * runtime/compose/wait_for.c: timeout scopes (asyncio.timeout) and
 * coil_wait_for (asyncio.wait_for), which is built on a scope as in
 * asyncio 3.12.
 *
 * A scope's state goes CREATED -> ENTERED -> (EXPIRING ->) EXPIRED or
 * EXITED. While entered, a loop callback is pending for the deadline (a
 * call_soon one when the deadline has already passed). When it runs, it
 * cancels the task inside the scope (coil_task_cancel: whatever the task
 * awaits returns -ECANCELED) and the scope is EXPIRING. Leaving the scope
 * withdraws that request with coil_task_uncancel; the count it falls back
 * to tells whether the cancellation was the scope's alone (it is back at
 * the count seen on entry: report -ETIMEDOUT) or another one is pending
 * too. That is how nested scopes work: each withdraws only its own request,
 * and only the one that expired reports a timeout.
 *
 * Invariants: t->handle is non-NULL exactly while a deadline callback is
 * pending, and then holds our reference to the handle; an entered scope
 * must be left by its task before its storage goes away.
 *
 * Threads: the deadline callback is a handle on the loop of the worker
 * the task enters the scope on, and handles never migrate; so the task is
 * pinned there (coil__task_pin_cur) from entering the scope to leaving it
 * (on every path, coil_wait_for's included), and the scope's fields are
 * only touched on that worker's thread: by the task and by the callback.
 * The callback cancels the task with coil_task_cancel, which is safe
 * against cancellations from other threads. Rescheduling is for the task
 * inside: with a multi-worker runtime, others get -EXDEV, as they cannot
 * know that they run on that worker. A scope from coil_timeout_create that
 * is destroyed while still entered is destroyed on that worker too.
 */
#include "alloc.h"
#include "fset.h"

enum {
	TO_CREATED = 0,
	TO_ENTERED,
	TO_EXPIRING,
	TO_EXPIRED,
	TO_EXITED
};

static void timeout_disarm(coil_timeout_t *t)
{
	if (!t->handle)
		return;
	coil_handle_cancel(t->handle);
	coil_handle_release(t->handle);
	t->handle = NULL;
}

static void timeout_fire(void *arg)
{
	coil_timeout_t *t = arg;
	coil_handle_release(t->handle);
	t->handle = NULL;
	t->state = TO_EXPIRING;
	coil_task_cancel(t->task, NULL);
}

/* The scope's loop: the calling thread's, where the task inside is pinned
 * (without a multi-worker runtime, a plain thread may reschedule: the
 * task's own loop then). */
static coil_loop_t *scope_loop(const coil_timeout_t *t)
{
	coil_loop_t *loop = coil_get_running_loop();
	return loop ? loop : t->task->fut.loop;
}

/* Arms the deadline callback on the scope's loop. */
static int timeout_arm(coil_timeout_t *t, int64_t when)
{
	timeout_disarm(t);
	t->when = when;
	if (when == COIL_FOREVER)
		return 0;
	coil_loop_t *loop = scope_loop(t);
	if (when <= coil__loop_now(loop))
		return coil_loop_call_soon(loop, timeout_fire, t, &t->handle);
	return coil_loop_call_at(loop, when, timeout_fire, t, &t->handle);
}

static bool when_valid(int64_t when)
{
	return when >= 0 || when == COIL_FOREVER;
}

int coil_timeout_enter_at(coil_timeout_t *t, int64_t when_ns)
{
	if (!t || !when_valid(when_ns))
		return -EINVAL;
	coil_task_t *task = coil_current_task();
	if (!task)
		return COIL_EINVALSTATE;
	t->task = task;
	t->handle = NULL;
	t->cancelling = atomic_load_explicit(&task->cancel_requests,
					     memory_order_relaxed);
	t->relative = false;
	t->state = TO_CREATED;
	/* Pinned before arming: the handle is this worker's, and must be
	 * cancelled from here (see the top of this file). */
	coil__task_pin_cur();
	int rc = timeout_arm(t, when_ns);
	if (rc) {
		coil__task_unpin_cur();
		return rc;
	}
	t->state = TO_ENTERED;
	return 0;
}

int coil_timeout_enter(coil_timeout_t *t, int64_t delay_ns)
{
	if (!t || !when_valid(delay_ns))
		return -EINVAL;
	coil_task_t *task = coil_current_task();
	if (!task)
		return COIL_EINVALSTATE;
	return coil_timeout_enter_at(t, coil__deadline(coil_get_running_loop(),
						       delay_ns));
}

int coil_timeout_exit(coil_timeout_t *t)
{
	if (!t)
		return -EINVAL;
	if (t->state != TO_ENTERED && t->state != TO_EXPIRING)
		return COIL_EINVALSTATE;
	if (coil_current_task() != t->task)
		return COIL_EINVALSTATE;
	timeout_disarm(t);
	coil__task_unpin_cur();
	if (t->state == TO_ENTERED) {
		t->state = TO_EXITED;
		return 0;
	}
	t->state = TO_EXPIRED;
	if (coil_task_uncancel(t->task) <= t->cancelling)
		return -ETIMEDOUT;
	return -ECANCELED;
}

/*
 * Whether the caller may move the deadline: the task inside the scope
 * (pinned to the worker whose loop holds the callback), or anyone while no
 * multi-worker runtime exists. Nothing else can know that it runs on the
 * scope's worker, as tasks migrate.
 */
static bool on_scope_thread(const coil_timeout_t *t)
{
	return !coil__mt() || coil_current_task() == t->task;
}

int coil_timeout_reschedule_at(coil_timeout_t *t, int64_t when_ns)
{
	if (!t || !when_valid(when_ns))
		return -EINVAL;
	if (t->state != TO_ENTERED)
		return COIL_EINVALSTATE;
	if (!on_scope_thread(t))
		return -EXDEV;
	return timeout_arm(t, when_ns);
}

int coil_timeout_reschedule(coil_timeout_t *t, int64_t delay_ns)
{
	if (!t || !when_valid(delay_ns))
		return -EINVAL;
	if (t->state != TO_ENTERED)
		return COIL_EINVALSTATE;
	if (!on_scope_thread(t))
		return -EXDEV;
	return timeout_arm(t, coil__deadline(scope_loop(t), delay_ns));
}

bool coil_timeout_expired(const coil_timeout_t *t)
{
	return t && (t->state == TO_EXPIRING || t->state == TO_EXPIRED);
}

int64_t coil_timeout_when(const coil_timeout_t *t)
{
	if (!t || (t->state == TO_CREATED && t->relative))
		return COIL_FOREVER;
	return t->when;
}

int coil_timeout_create(coil_timeout_t **out)
{
	if (!out)
		return -EINVAL;
	coil_timeout_t *t = coil__calloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->when = COIL_FOREVER;
	t->state = TO_CREATED;
	*out = t;
	return 0;
}

void coil_timeout_destroy(coil_timeout_t *t)
{
	if (!t)
		return;
	timeout_disarm(t);
	coil__free(t, sizeof(*t));
}

static int timeout_cm_enter(void *self)
{
	coil_timeout_t *t = self;
	if (!t)
		return -EINVAL;
	if (t->relative)
		return coil_timeout_enter(t, t->when);
	return coil_timeout_enter_at(t, t->when);
}

static int timeout_cm_exit(void *self, int status)
{
	(void)status;
	return coil_timeout_exit(self);
}

static coil_cm_t timeout_cm(coil_timeout_t *t, int64_t when, bool relative)
{
	if (t) {
		t->when = when;
		t->relative = relative;
		t->handle = NULL;
		t->task = NULL;
		t->state = TO_CREATED;
	}
	return coil_cm_make(timeout_cm_enter, timeout_cm_exit, t);
}

coil_cm_t coil_timeout_cm(coil_timeout_t *t, int64_t delay_ns)
{
	return timeout_cm(t, delay_ns, true);
}

coil_cm_t coil_timeout_at_cm(coil_timeout_t *t, int64_t when_ns)
{
	return timeout_cm(t, when_ns, false);
}

/*
 * wait_for: await f inside a scope. Whoever cancels us (the scope at its
 * deadline, or someone else), f is cancelled too, as asyncio cancels the
 * future a cancelled task awaits, and we wait until f is really done, so
 * that nothing f owns outlives the call unnoticed. The scope's exit then
 * says whose cancellation it was.
 */
int coil_wait_for(coil_future_t *f, int64_t timeout_ns, void **result)
{
	if (!f || !when_valid(timeout_ns))
		return -EINVAL;
	coil_task_t *self = coil_current_task();
	if (!self)
		return COIL_EINVALSTATE;
	if (&self->fut == f)
		return -EDEADLK;
	/* coil_await would refuse f as well, but only after the scope is
	 * entered, and the clean-up below would then cancel a future the
	 * caller never had a chance to wait for. */
	coil_loop_t *me = coil__running_loop;
	if (f->loop != me && (!me->rt || me->rt != f->loop->rt))
		return -EXDEV;
	coil_timeout_t to;
	int rc = coil_timeout_enter(&to, timeout_ns);
	if (rc)
		return rc;
	bool self_cancelled = false;
	rc = coil_await(f, result);
	while (rc == -ECANCELED && !coil_future_done(f)) {
		self_cancelled = true;
		coil_future_cancel(f, NULL);
		rc = coil_await(f, result);
	}
	/* A cancellation that was pending when we called is delivered even
	 * though f is done. */
	if (rc == -ECANCELED && !coil_future_cancelled(f))
		self_cancelled = true;
	if (!coil_future_done(f)) {
		/* The loop is force-closing this task (COIL_ECLOSED). */
		coil_future_cancel(f, NULL);
		coil_timeout_exit(&to);
		return rc;
	}
	int xrc = coil_timeout_exit(&to);
	if (self_cancelled && xrc != -ETIMEDOUT)
		return -ECANCELED;
	rc = coil_future_result(f, result);
	if (rc == -ECANCELED && xrc == -ETIMEDOUT)
		return -ETIMEDOUT;
	return rc;
}
