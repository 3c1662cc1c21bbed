/*
 * runtime/compose/taskgroup.c: task groups, asyncio.TaskGroup (3.13's
 * rules).
 *
 * A group is NEW, ENTERED (its parent task runs the body and spawns
 * children), EXITING (the parent waits in coil_taskgroup_wait), then DONE.
 * Each child carries a done-callback; the first child that ends with an
 * error (not a cancellation) aborts the group: every other child is
 * cancelled, and so is the parent, once (parent_cancel_requested), so that
 * the body stops at whatever it awaits. Leaving the group withdraws that
 * request with coil_task_uncancel. A cancellation of the parent from
 * outside, seen by the body (status -ECANCELED) or while waiting, also
 * aborts, and is reported as -ECANCELED unless children failed: errors
 * take priority, as in asyncio, where the ExceptionGroup wins over
 * CancelledError; the outside cancellation is then re-armed so that the
 * parent's next await still sees it.
 *
 * Lifetime: the group is reference counted: the owner's reference, one per
 * child callback registered or queued, and one for the parent while it
 * waits. The group holds a reference to each running child, and to each
 * child whose error it recorded, until it is destroyed.
 *
 * Threads: the loop's thread only; cross-worker use arrives with the
 * scheduler.
 */
#include "alloc.h"
#include "fset.h"

enum { TG_NEW = 0, TG_ENTERED, TG_EXITING, TG_DONE };

struct tg_child {
	coil__list_t link;
	coil_taskgroup_t *tg;
	coil_task_t *task;        /* the group's reference */
};

struct tg_error {
	int code;
	coil_task_t *task;        /* a reference, or NULL for the body's */
};

struct coil_taskgroup {
	uint32_t refs;
	uint8_t state;
	bool aborting;
	bool parent_cancel_requested;
	bool destroyed;
	coil_task_t *parent;
	int32_t parent_cancelling;  /* its count when it entered */
	coil__list_t children;
	size_t nchildren;
	coil__waiter_t *waiter;   /* the parent waiting in wait, or NULL */
	int result;
	int first_error;          /* kept even if recording ran out of memory */
	struct tg_error *errors;
	size_t nerrors, cap;
};

static void tg_unref(coil_taskgroup_t *tg)
{
	if (--tg->refs)
		return;
	coil__free(tg->errors, tg->cap * sizeof(*tg->errors));
	coil__free(tg, sizeof(*tg));
}

int coil_taskgroup_create(coil_taskgroup_t **out)
{
	if (!out)
		return -EINVAL;
	coil_taskgroup_t *tg = coil__calloc(sizeof(*tg));
	if (!tg)
		return -ENOMEM;
	tg->refs = 1;
	tg->state = TG_NEW;
	tg->result = COIL_EINVALSTATE;
	coil__list_init(&tg->children);
	*out = tg;
	return 0;
}

int coil_taskgroup_enter(coil_taskgroup_t *tg)
{
	if (!tg)
		return -EINVAL;
	coil_task_t *t = coil_current_task();
	if (!t || tg->state != TG_NEW)
		return COIL_EINVALSTATE;
	tg->parent = t;
	tg->parent_cancelling = t->cancel_requests;
	tg->state = TG_ENTERED;
	return 0;
}

/* Records an error; task is a reference handed over, or NULL. */
static void record_error(coil_taskgroup_t *tg, int code, coil_task_t *task)
{
	if (!tg->first_error)
		tg->first_error = code;
	if (tg->nerrors == tg->cap) {
		size_t cap = tg->cap ? tg->cap * 2 : 4;
		struct tg_error *e = coil__malloc(cap * sizeof(*e));
		if (!e) {
			coil_task_detach(task);
			return;
		}
		if (tg->nerrors)
			memcpy(e, tg->errors, tg->nerrors * sizeof(*e));
		coil__free(tg->errors, tg->cap * sizeof(*e));
		tg->errors = e;
		tg->cap = cap;
	}
	tg->errors[tg->nerrors].code = code;
	tg->errors[tg->nerrors].task = task;
	tg->nerrors++;
}

static void tg_abort(coil_taskgroup_t *tg)
{
	tg->aborting = true;
	for (coil__list_t *p = tg->children.next; p != &tg->children; p = p->next) {
		struct tg_child *c = coil__container_of(p, struct tg_child, link);
		if (!coil_future_done(&c->task->fut))
			coil_task_cancel(c->task, NULL);
	}
}

static void tg_wake(coil_taskgroup_t *tg, int code)
{
	coil__waiter_t *w = tg->waiter;
	if (!w)
		return;
	tg->waiter = NULL;
	coil__waiter_wake(w, code);
}

static void on_child_done(coil_future_t *f, void *arg)
{
	struct tg_child *c = arg;
	coil_taskgroup_t *tg = c->tg;
	if (!tg->destroyed) {
		coil__list_del(&c->link);
		tg->nchildren--;
		if (!coil_future_cancelled(f)) {
			int code = coil_future_exception(f);
			if (code) {
				record_error(tg, code, c->task);
				c->task = NULL;
				if (!tg->aborting && !tg->parent_cancel_requested) {
					tg_abort(tg);
					tg->parent_cancel_requested = true;
					coil_task_cancel(tg->parent, NULL);
				}
			}
		}
		if (tg->nchildren == 0)
			tg_wake(tg, 0);
	}
	coil_task_detach(c->task);
	coil__free(c, sizeof(*c));
	tg_unref(tg);
}

int coil_taskgroup_spawn(coil_taskgroup_t *tg, coil_task_t **out, coil_fn fn,
			 void *arg, const coil_spawn_opts_t *opts)
{
	if (!tg || !fn)
		return -EINVAL;
	if (tg->state == TG_NEW)
		return COIL_EINVALSTATE;
	if (tg->state == TG_DONE || tg->aborting ||
	    (tg->state == TG_EXITING && tg->nchildren == 0))
		return COIL_ECLOSED;
	struct tg_child *c = coil__malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	coil_task_t *t;
	int rc = coil_loop_create_task(tg->parent->fut.loop, &t, fn, arg, opts);
	if (rc) {
		coil__free(c, sizeof(*c));
		return rc;
	}
	c->tg = tg;
	c->task = t;
	rc = coil_future_add_done_callback(&t->fut, on_child_done, c);
	if (rc) {
		coil_task_cancel(t, NULL);
		coil_task_detach(t);
		coil__free(c, sizeof(*c));
		return rc;
	}
	coil__list_push(&tg->children, &c->link);
	tg->nchildren++;
	tg->refs++;
	if (out)
		*out = (coil_task_t *)coil_future_ref(&t->fut);
	return 0;
}

static void tg_waiter_cancel(coil__waiter_t *w)
{
	coil_taskgroup_t *tg = w->source;
	tg->waiter = NULL;
}

/*
 * Waits until no child runs. Returns 0 or COIL_ECLOSED (the loop
 * force-closes the parent). *gone is set when the group was destroyed under
 * the waiting parent: tg is then freed and must not be touched.
 */
static int wait_children(coil_taskgroup_t *tg, bool *propagate, bool *gone)
{
	int rc = 0;
	/* Our reference keeps tg readable if it is destroyed meanwhile. */
	tg->refs++;
	while (tg->nchildren > 0) {
		coil_task_t *t;
		int c = coil__suspend_check(&t);
		if (c == 0) {
			coil__waiter_t w;
			coil__waiter_init(&w, t, tg_waiter_cancel, tg);
			tg->waiter = &w;
			c = coil__task_suspend(&w);
			tg->waiter = NULL;
		}
		if (tg->destroyed) {
			rc = COIL_ECLOSED;
			break;
		}
		if (c == -ECANCELED) {
			/* The parent is being cancelled while it waits. */
			if (!tg->aborting) {
				*propagate = true;
				tg_abort(tg);
			}
			continue;
		}
		if (c) {
			if (!tg->aborting)
				tg_abort(tg);
			rc = c;
			break;
		}
	}
	*gone = tg->destroyed;
	tg_unref(tg);
	return rc;
}

int coil_taskgroup_wait(coil_taskgroup_t *tg, int status)
{
	if (!tg)
		return -EINVAL;
	if (tg->state != TG_ENTERED || coil_current_task() != tg->parent)
		return COIL_EINVALSTATE;
	tg->state = TG_EXITING;
	bool propagate = status == -ECANCELED;
	if (status && !tg->aborting)
		tg_abort(tg);
	bool gone;
	int rc = wait_children(tg, &propagate, &gone);
	if (gone)
		return rc;
	tg->state = TG_DONE;
	coil_task_t *parent = tg->parent;
	if (tg->parent_cancel_requested &&
	    coil_task_uncancel(parent) <= tg->parent_cancelling)
		propagate = false;
	if (status && status != -ECANCELED)
		record_error(tg, status, NULL);
	if (!rc && tg->first_error) {
		rc = tg->first_error;
		/* Keep an outside cancellation that the body consumed pending
		 * for the parent's next await (asyncio re-cancels it). */
		if (coil_task_cancelling(parent) > 0) {
			coil_task_uncancel(parent);
			coil_task_cancel(parent, NULL);
		}
	} else if (!rc && propagate) {
		rc = -ECANCELED;
	}
	tg->result = rc;
	return rc;
}

int coil_taskgroup_result(const coil_taskgroup_t *tg)
{
	if (!tg || tg->state != TG_DONE)
		return COIL_EINVALSTATE;
	return tg->result;
}

size_t coil_taskgroup_error_count(const coil_taskgroup_t *tg)
{
	return tg ? tg->nerrors : 0;
}

int coil_taskgroup_error(const coil_taskgroup_t *tg, size_t i)
{
	return tg && i < tg->nerrors ? tg->errors[i].code : 0;
}

const char *coil_taskgroup_error_message(const coil_taskgroup_t *tg, size_t i)
{
	if (!tg || i >= tg->nerrors || !tg->errors[i].task)
		return NULL;
	return coil_future_error_message(&tg->errors[i].task->fut);
}

coil_task_t *coil_taskgroup_error_task(const coil_taskgroup_t *tg, size_t i)
{
	return tg && i < tg->nerrors ? tg->errors[i].task : NULL;
}

void coil_taskgroup_destroy(coil_taskgroup_t *tg)
{
	if (!tg)
		return;
	tg->destroyed = true;
	while (!coil__list_empty(&tg->children)) {
		struct tg_child *c = coil__container_of(tg->children.next,
							struct tg_child, link);
		coil__list_del(&c->link);
		tg->nchildren--;
		/* A callback already queued frees its child record itself. */
		if (coil_future_remove_done_callback(&c->task->fut, on_child_done, c)) {
			coil_task_detach(c->task);
			coil__free(c, sizeof(*c));
			tg->refs--;
		}
	}
	for (size_t i = 0; i < tg->nerrors; i++)
		coil_task_detach(tg->errors[i].task);
	tg->nerrors = 0;
	tg_wake(tg, COIL_ECLOSED);
	tg_unref(tg);
}

static int tg_cm_enter(void *self)
{
	return coil_taskgroup_enter(self);
}

static int tg_cm_exit(void *self, int status)
{
	return coil_taskgroup_wait(self, status);
}

coil_cm_t coil_taskgroup_cm(coil_taskgroup_t *tg)
{
	return coil_cm_make(tg_cm_enter, tg_cm_exit, tg);
}
