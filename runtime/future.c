/*
 * runtime/future.c: futures (see coil/future.h) and coil_await.
 *
 * A future's callback list holds, in the order they were added, heap
 * done-callbacks and the waiters of tasks awaiting it (on their stacks).
 * When the future completes, the list is emptied front to back: a waiter
 * wakes its task (the task goes to the tail of the ready queue) and a
 * done-callback is itself queued as a runnable. Both land in the same FIFO,
 * so callbacks and task wake-ups keep asyncio's relative order.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"

static coil_loop_t *pick_loop(coil_loop_t *loop)
{
	return loop ? loop : coil_get_event_loop();
}

int coil_future_create(coil_future_t **out, coil_loop_t *loop)
{
	if (!out)
		return -EINVAL;
	loop = pick_loop(loop);
	if (!loop)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	coil_future_t *f = coil__loop_obj_get(loop, &loop->future_cache);
	if (!f)
		return -ENOMEM;
	coil__future_init(f, loop, false);
	*out = f;
	return 0;
}

coil_future_t *coil_future_ref(coil_future_t *f)
{
	f->refs++;
	return f;
}

static void report_unretrieved(coil_future_t *f)
{
	coil_task_t *t = f->is_task ? (coil_task_t *)f : NULL;
	coil_exc_context_t ctx = {
		.message = t ? "Task exception was never retrieved"
			     : "Future exception was never retrieved",
		.error = f->code,
		.error_message = f->msg,
		.future = f,
		.task = t,
	};
	/* The handler may look at the future but must not keep it. */
	f->refs = 1;
	coil_loop_call_exception_handler(f->loop, &ctx);
}

void coil_future_release(coil_future_t *f)
{
	if (!f || --f->refs)
		return;
	if (f->state == COIL__F_ERROR && !f->retrieved)
		report_unretrieved(f);
	coil_loop_t *loop = f->loop;
	if (f->state == COIL__F_RESULT && f->dtor && f->result)
		f->dtor(f->result);
	coil__strfree(f->msg);
	/* A future still pending when released has no waiters (they hold no
	 * reference, but a task awaiting it keeps its caller's reference), and
	 * its heap done-callbacks die with it. */
	while (!coil__list_empty(&f->cbs)) {
		coil__cbnode_t *n = coil__container_of(f->cbs.next, coil__cbnode_t, link);
		coil__list_del(&n->link);
		if (n->kind == COIL__CB_DONE)
			coil__loop_obj_put(loop, &loop->donecb_cache,
					   coil__container_of(n, coil__donecb_t, cb));
	}
	if (f->is_task) {
		coil_task_t *t = (coil_task_t *)f;
		coil__strfree(t->name);
		coil__task_free_handle(loop, t);
	} else {
		coil__loop_obj_put(loop, &loop->future_cache, f);
	}
	coil__loop_unref(loop);
}

bool coil_future_done(const coil_future_t *f)
{
	return f->state != COIL__F_PENDING;
}

bool coil_future_cancelled(const coil_future_t *f)
{
	return f->state == COIL__F_CANCELLED;
}

static int outcome(coil_future_t *f, void **result)
{
	switch (f->state) {
	case COIL__F_PENDING:
		return COIL_EINVALSTATE;
	case COIL__F_RESULT:
		if (result)
			*result = f->result;
		return 0;
	case COIL__F_CANCELLED:
		return -ECANCELED;
	default:
		f->retrieved = true;
		return f->code;
	}
}

int coil_future_result(coil_future_t *f, void **result)
{
	return outcome(f, result);
}

int coil_future_exception(coil_future_t *f)
{
	return outcome(f, NULL);
}

const char *coil_future_error_message(const coil_future_t *f)
{
	return f->msg;
}

coil_loop_t *coil_future_loop(const coil_future_t *f)
{
	return f->loop;
}

void coil__donecb_run(coil__donecb_t *d)
{
	coil_future_t *f = d->fut;
	d->fn(f, d->arg);
	coil__loop_obj_put(f->loop, &f->loop->donecb_cache, d);
	coil_future_release(f);
}

static void schedule_donecb(coil_future_t *f, coil__donecb_t *d)
{
	if (f->loop->closed) {
		/* Nothing will ever run it. */
		coil__loop_obj_put(f->loop, &f->loop->donecb_cache, d);
		return;
	}
	d->fut = coil_future_ref(f);
	d->run.kind = COIL__RUN_DONE_CB;
	coil__loop_push_ready(f->loop, &d->run);
}

void coil__future_finish(coil_future_t *f, int state, int code, void *result,
			 coil_dtor dtor, char *msg)
{
	f->state = (uint8_t)state;
	f->code = code;
	f->result = result;
	f->dtor = dtor;
	f->msg = msg;
	while (!coil__list_empty(&f->cbs)) {
		coil__cbnode_t *n = coil__container_of(f->cbs.next, coil__cbnode_t, link);
		coil__list_del(&n->link);
		if (n->kind == COIL__CB_WAITER)
			coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb), 0);
		else
			schedule_donecb(f, coil__container_of(n, coil__donecb_t, cb));
	}
}

int coil_future_set_result(coil_future_t *f, void *value, coil_dtor dtor)
{
	if (f->state != COIL__F_PENDING || f->is_task)
		return COIL_EINVALSTATE;
	coil__future_finish(f, COIL__F_RESULT, 0, value, dtor, NULL);
	return 0;
}

int coil_future_set_exception(coil_future_t *f, int err, const char *msg)
{
	if (err >= 0)
		return -EINVAL;
	if (f->state != COIL__F_PENDING || f->is_task)
		return COIL_EINVALSTATE;
	char *m = NULL;
	if (msg && !(m = coil__strdup(msg)))
		return -ENOMEM;
	/* Setting -ECANCELED as an error is cancelling, as in asyncio where
	 * CancelledError cannot be set as an exception. */
	coil__future_finish(f, err == -ECANCELED ? COIL__F_CANCELLED : COIL__F_ERROR,
			    err, NULL, NULL, m);
	return 0;
}

bool coil_future_cancel(coil_future_t *f, const char *msg)
{
	if (f->is_task)
		return coil_task_cancel((coil_task_t *)f, msg);
	if (f->state != COIL__F_PENDING)
		return false;
	char *m = msg ? coil__strdup(msg) : NULL;
	coil__future_finish(f, COIL__F_CANCELLED, -ECANCELED, NULL, NULL, m);
	return true;
}

int coil_future_add_done_callback(coil_future_t *f, coil_done_cb cb, void *arg)
{
	if (!cb)
		return -EINVAL;
	coil__donecb_t *d = coil__loop_obj_get(f->loop, &f->loop->donecb_cache);
	if (!d)
		return -ENOMEM;
	d->cb.kind = COIL__CB_DONE;
	d->fn = cb;
	d->arg = arg;
	if (f->state != COIL__F_PENDING)
		schedule_donecb(f, d);
	else
		coil__list_push(&f->cbs, &d->cb.link);
	return 0;
}

int coil_future_remove_done_callback(coil_future_t *f, coil_done_cb cb,
				     void *arg)
{
	int n = 0;
	coil__list_t *p = f->cbs.next;
	while (p != &f->cbs) {
		coil__list_t *next = p->next;
		coil__cbnode_t *c = coil__container_of(p, coil__cbnode_t, link);
		if (c->kind == COIL__CB_DONE) {
			coil__donecb_t *d = coil__container_of(c, coil__donecb_t, cb);
			if (d->fn == cb && d->arg == arg) {
				coil__list_del(p);
				coil__loop_obj_put(f->loop, &f->loop->donecb_cache, d);
				n++;
			}
		}
		p = next;
	}
	return n;
}

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

int coil_await(coil_future_t *f, void **result)
{
	if (!f)
		return -EINVAL;
	coil_coro_t *c = coil__cur;
	if (c && c->task == (coil_task_t *)f)
		return -EDEADLK;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	if (f->state == COIL__F_PENDING) {
		coil__waiter_t w;
		coil__waiter_init(&w, t, waiter_unlink, f);
		coil__list_push(&f->cbs, &w.cb.link);
		rc = coil__task_suspend(&w);
		if (rc)
			return rc;
	}
	return outcome(f, result);
}
