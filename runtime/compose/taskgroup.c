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
 * child callback registered or queued, and one for the parent while it is
 * in coil_taskgroup_wait. The group holds a reference to each running
 * child, and to each child whose error it recorded, until it is destroyed.
 *
 * Threads: the parent, the tasks that spawn into the group and the
 * children may run on any worker, and each child's done-callback runs on
 * the child's loop. `lock` (a spinlock, free of cost until a multi-worker
 * runtime exists) guards every field but `parent` (set on entering), and
 * is never held across a suspension, a wake-up, a cancellation or another
 * object's lock: cancelling a task may take the lock of what it waits on,
 * which may be this group (its parent waiting) or a nested one. So an
 * abort moves each child to `cancelled` and takes a reference to it under
 * the lock, then cancels it outside. A callback that aborts takes a
 * reference to the parent (alive while the group is not DONE), cancels it
 * after unlocking, and counts its child out only after that, so that the
 * parent cannot leave the group before the cancellation has reached it.
 * The parent's waiter is claimed under the lock and woken after. A child
 * record is freed by its callback, or by destroy when destroy removed the
 * callback: a callback that finds its record unlinked only frees it.
 */
#include "alloc.h"
#include "fset.h"

enum { TG_NEW = 0, TG_ENTERED, TG_EXITING, TG_DONE };

struct tg_child {
	coil__list_t link;        /* in children or cancelled, or unlinked */
	coil_taskgroup_t *tg;
	coil_task_t *task;        /* the group's reference */
};

struct tg_error {
	int code;
	coil_task_t *task;        /* a reference, or NULL for the body's */
};

struct coil_taskgroup {
	coil__spin_t lock;        /* every field but parent */
	uint32_t refs;
	uint8_t state;
	bool aborting;
	bool parent_cancel_requested;
	bool destroyed;
	coil_task_t *parent;
	int32_t parent_cancelling;  /* its count when it entered */
	coil__list_t children;    /* running, not cancelled by an abort */
	coil__list_t cancelled;   /* running, cancelled by an abort */
	size_t nchildren;         /* in both lists */
	coil__waiter_t *waiter;   /* the parent waiting in wait, or NULL */
	int result;
	int first_error;          /* kept even if recording ran out of memory */
	struct tg_error *errors;
	size_t nerrors, cap;
};

static inline bool linked(const coil__list_t *n)
{
	return n->next != n;
}

/* Drops a reference; called without the lock. */
static void tg_unref(coil_taskgroup_t *tg)
{
	coil__lock(&tg->lock);
	bool last = --tg->refs == 0;
	coil__unlock(&tg->lock);
	if (!last)
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
	atomic_init(&tg->lock.v, 0);
	tg->refs = 1;
	tg->state = TG_NEW;
	tg->result = COIL_EINVALSTATE;
	coil__list_init(&tg->children);
	coil__list_init(&tg->cancelled);
	*out = tg;
	return 0;
}

int coil_taskgroup_enter(coil_taskgroup_t *tg)
{
	if (!tg)
		return -EINVAL;
	coil_task_t *t = coil_current_task();
	if (!t)
		return COIL_EINVALSTATE;
	coil__lock(&tg->lock);
	if (tg->state != TG_NEW) {
		coil__unlock(&tg->lock);
		return COIL_EINVALSTATE;
	}
	tg->parent = t;
	tg->parent_cancelling = atomic_load_explicit(&t->cancel_requests,
						     memory_order_relaxed);
	tg->state = TG_ENTERED;
	coil__unlock(&tg->lock);
	return 0;
}

/*
 * Under the lock: records an error; task is a reference handed over, or
 * NULL. Returns the reference back when there was no room for it (the
 * caller drops it after unlocking), else NULL.
 */
static coil_task_t *record_error(coil_taskgroup_t *tg, int code,
				 coil_task_t *task)
{
	if (!tg->first_error)
		tg->first_error = code;
	if (tg->nerrors == tg->cap) {
		/* Rare (errors only), so allocating under the lock is fine. */
		size_t cap = tg->cap ? tg->cap * 2 : 4;
		struct tg_error *e = coil__malloc(cap * sizeof(*e));
		if (!e)
			return task;
		if (tg->nerrors)
			memcpy(e, tg->errors, tg->nerrors * sizeof(*e));
		coil__free(tg->errors, tg->cap * sizeof(*e));
		tg->errors = e;
		tg->cap = cap;
	}
	tg->errors[tg->nerrors].code = code;
	tg->errors[tg->nerrors].task = task;
	tg->nerrors++;
	return NULL;
}

/*
 * Without the lock: marks the group aborting and cancels every child that
 * no abort has cancelled yet. Returns true if the group was not aborting
 * before. Children only leave the lists once aborting (spawn refuses new
 * ones), so the loop ends.
 */
static bool tg_abort(coil_taskgroup_t *tg)
{
	coil__lock(&tg->lock);
	bool first = !tg->aborting;
	tg->aborting = true;
	while (!coil__list_empty(&tg->children)) {
		struct tg_child *c = coil__container_of(tg->children.next,
							struct tg_child, link);
		coil__list_del(&c->link);
		coil__list_push(&tg->cancelled, &c->link);
		if (coil_future_done(&c->task->fut))
			continue;
		/* Our own reference: the child's callback may drop the
		 * group's as soon as we unlock. */
		coil_future_t *f = coil_future_ref(&c->task->fut);
		coil__unlock(&tg->lock);
		coil_task_cancel((coil_task_t *)f, NULL);
		coil_future_release(f);
		coil__lock(&tg->lock);
	}
	coil__unlock(&tg->lock);
	return first;
}

/* Under the lock: takes the parent's waiter to wake it, unless a canceller
 * claimed it first (its cancel hook clears tg->waiter then). */
static coil__waiter_t *take_waiter(coil_taskgroup_t *tg)
{
	coil__waiter_t *w = tg->waiter;
	if (!w || !coil__waiter_claim(w))
		return NULL;
	tg->waiter = NULL;
	return w;
}

/* Under the lock: a child is gone (ended, or its spawn failed). Returns
 * the parent's waiter to wake if it was the last. */
static coil__waiter_t *count_out(coil_taskgroup_t *tg)
{
	if (--tg->nchildren)
		return NULL;
	return take_waiter(tg);
}

static void on_child_done(coil_future_t *f, void *arg)
{
	struct tg_child *c = arg;
	coil_taskgroup_t *tg = c->tg;
	coil_task_t *drop = c->task;
	coil__waiter_t *w = NULL;
	coil_future_t *parent = NULL;
	bool abort = false;
	coil__lock(&tg->lock);
	/* Unlinked already: destroy took the record off, after this
	 * callback had left the future's list. */
	if (linked(&c->link)) {
		coil__list_del(&c->link);
		int code = coil_future_cancelled(f) ? 0 : coil_future_exception(f);
		if (code) {
			drop = record_error(tg, code, c->task);
			if (!tg->aborting && !tg->parent_cancel_requested) {
				/* Set now, so that spawn refuses at once; the
				 * children are cancelled below. */
				abort = tg->aborting = true;
				tg->parent_cancel_requested = true;
				/* The parent is inside the group until DONE,
				 * and cannot leave it while this child still
				 * counts. */
				parent = coil_future_ref(&tg->parent->fut);
			}
		}
		if (!abort)
			w = count_out(tg);
	}
	coil__unlock(&tg->lock);
	if (abort) {
		tg_abort(tg);
		coil_task_cancel((coil_task_t *)parent, NULL);
		coil_future_release(parent);
		/* Counted out only now: had the parent left the group
		 * before the cancellation reached it, a later await of its
		 * own would have received it. */
		coil__lock(&tg->lock);
		w = count_out(tg);
		coil__unlock(&tg->lock);
	}
	if (w)
		coil__waiter_wake(w, 0);
	coil_task_detach(drop);
	coil__free(c, sizeof(*c));
	tg_unref(tg);
}

/* Where children start: the spawning task's worker (their callbacks run
 * there too), or the parent's loop from outside a loop. */
static coil_loop_t *spawn_loop(coil_taskgroup_t *tg)
{
	coil_loop_t *loop = coil_get_running_loop();
	return loop ? loop : tg->parent->fut.loop;
}

/* Counts a child in before its task exists, so that the parent does not
 * leave the group meanwhile; or says why the group takes no more. */
static int reserve(coil_taskgroup_t *tg)
{
	int rc = 0;
	coil__lock(&tg->lock);
	if (tg->state == TG_NEW)
		rc = COIL_EINVALSTATE;
	else if (tg->state == TG_DONE || tg->aborting ||
		 (tg->state == TG_EXITING && tg->nchildren == 0))
		rc = COIL_ECLOSED;
	else
		tg->nchildren++;
	tg->refs += !rc;
	coil__unlock(&tg->lock);
	return rc;
}

/* Takes back what reserve counted, for a spawn that failed, and frees c
 * (unlinking it if it was put in a list). */
static void unreserve(coil_taskgroup_t *tg, struct tg_child *c)
{
	coil__lock(&tg->lock);
	coil__list_del(&c->link);
	coil__waiter_t *w = count_out(tg);
	coil__unlock(&tg->lock);
	if (w)
		coil__waiter_wake(w, 0);
	coil__free(c, sizeof(*c));
	tg_unref(tg);
}

int coil_taskgroup_spawn(coil_taskgroup_t *tg, coil_task_t **out, coil_fn fn,
			 void *arg, const coil_spawn_opts_t *opts)
{
	if (!tg || !fn)
		return -EINVAL;
	struct tg_child *c = coil__malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	int rc = reserve(tg);
	if (rc) {
		coil__free(c, sizeof(*c));
		return rc;
	}
	coil__list_init(&c->link);
	c->tg = tg;
	coil_task_t *t;
	rc = coil_loop_create_task(spawn_loop(tg), &t, fn, arg, opts);
	if (rc) {
		unreserve(tg, c);
		return rc;
	}
	c->task = t;
	coil__lock(&tg->lock);
	bool late = tg->aborting;
	coil__list_push(late ? &tg->cancelled : &tg->children, &c->link);
	coil__unlock(&tg->lock);
	rc = coil_future_add_done_callback(&t->fut, on_child_done, c);
	if (rc) {
		unreserve(tg, c);
		coil_task_cancel(t, NULL);
		coil_task_detach(t);
		return rc;
	}
	/* An abort that came after reserve's check has missed it. */
	if (late)
		coil_task_cancel(t, NULL);
	if (out)
		*out = (coil_task_t *)coil_future_ref(&t->fut);
	return 0;
}

/* The cancel hook: the canceller has claimed w. */
static void tg_waiter_cancel(coil__waiter_t *w)
{
	coil_taskgroup_t *tg = w->source;
	coil__lock(&tg->lock);
	if (tg->waiter == w)
		tg->waiter = NULL;
	coil__unlock(&tg->lock);
}

/*
 * Suspends the parent until a child callback finds no child left, or
 * returns at once if none is. Returns the suspension's code.
 */
static int wait_once(coil_taskgroup_t *tg)
{
	coil_task_t *t;
	int c = coil__suspend_check(&t);
	if (c)
		return c;
	coil__waiter_t w;
	coil__waiter_init(&w, t, tg_waiter_cancel, tg);
	w.what = "task group";
	coil__lock(&tg->lock);
	if (tg->nchildren == 0 || tg->destroyed) {
		coil__unlock(&tg->lock);
		return 0;
	}
	tg->waiter = &w;
	coil__unlock(&tg->lock);
	c = coil__task_suspend(&w);
	coil__lock(&tg->lock);
	if (tg->waiter == &w)
		tg->waiter = NULL;
	coil__unlock(&tg->lock);
	return c;
}

/*
 * Waits until no child runs. Returns 0 or COIL_ECLOSED (the loop
 * force-closes the parent, or the group was destroyed under the waiting
 * parent). The caller holds a reference to tg.
 */
static int wait_children(coil_taskgroup_t *tg, bool *propagate)
{
	int rc = 0;
	coil__lock(&tg->lock);
	while (tg->nchildren > 0 && !tg->destroyed) {
		coil__unlock(&tg->lock);
		int c = wait_once(tg);
		coil__lock(&tg->lock);
		if (tg->destroyed || c == 0)
			continue;
		coil__unlock(&tg->lock);
		if (c == -ECANCELED) {
			/* The parent is being cancelled while it waits. */
			if (tg_abort(tg))
				*propagate = true;
			coil__lock(&tg->lock);
			continue;
		}
		tg_abort(tg);
		rc = c;
		coil__lock(&tg->lock);
		break;
	}
	if (tg->destroyed)
		rc = COIL_ECLOSED;
	coil__unlock(&tg->lock);
	return rc;
}

int coil_taskgroup_wait(coil_taskgroup_t *tg, int status)
{
	if (!tg)
		return -EINVAL;
	coil__lock(&tg->lock);
	if (tg->state != TG_ENTERED || coil_current_task() != tg->parent) {
		coil__unlock(&tg->lock);
		return COIL_EINVALSTATE;
	}
	tg->state = TG_EXITING;
	/* Our reference keeps tg readable until we return, however soon
	 * another worker destroys it: once the last child has woken us, a
	 * destroyer cannot tell that we are still inside. */
	tg->refs++;
	coil__unlock(&tg->lock);
	bool propagate = status == -ECANCELED;
	if (status)
		tg_abort(tg);
	int rc = wait_children(tg, &propagate);
	coil_task_t *parent = tg->parent;
	coil__lock(&tg->lock);
	if (tg->destroyed) {
		/* Destroyed under the waiting parent, maybe after its last
		 * child woke it: destroy has taken the records, record
		 * nothing more. */
		coil__unlock(&tg->lock);
		tg_unref(tg);
		return COIL_ECLOSED;
	}
	tg->state = TG_DONE;
	bool requested = tg->parent_cancel_requested;
	int32_t cancelling = tg->parent_cancelling;
	if (status && status != -ECANCELED)
		(void)record_error(tg, status, NULL); /* holds no task */
	int first_error = tg->first_error;
	coil__unlock(&tg->lock);
	if (requested && coil_task_uncancel(parent) <= cancelling)
		propagate = false;
	if (!rc && first_error) {
		rc = first_error;
		/* Keep an outside cancellation that the body consumed pending
		 * for the parent's next await (asyncio re-cancels it). */
		if (coil_task_cancelling(parent) > 0) {
			coil_task_uncancel(parent);
			coil_task_cancel(parent, NULL);
		}
	} else if (!rc && propagate) {
		rc = -ECANCELED;
	}
	coil__lock(&tg->lock);
	tg->result = rc;
	coil__unlock(&tg->lock);
	tg_unref(tg);
	return rc;
}

int coil_taskgroup_result(const coil_taskgroup_t *tg)
{
	if (!tg)
		return COIL_EINVALSTATE;
	coil_taskgroup_t *m = (coil_taskgroup_t *)tg;
	coil__lock(&m->lock);
	int rc = m->state == TG_DONE ? m->result : COIL_EINVALSTATE;
	coil__unlock(&m->lock);
	return rc;
}

size_t coil_taskgroup_error_count(const coil_taskgroup_t *tg)
{
	if (!tg)
		return 0;
	coil_taskgroup_t *m = (coil_taskgroup_t *)tg;
	coil__lock(&m->lock);
	size_t n = m->nerrors;
	coil__unlock(&m->lock);
	return n;
}

/* The i-th error record, copied under the lock (code 0 if none). */
static struct tg_error error_at(const coil_taskgroup_t *tg, size_t i)
{
	struct tg_error e = { 0, NULL };
	if (!tg)
		return e;
	coil_taskgroup_t *m = (coil_taskgroup_t *)tg;
	coil__lock(&m->lock);
	if (i < m->nerrors)
		e = m->errors[i];
	coil__unlock(&m->lock);
	return e;
}

int coil_taskgroup_error(const coil_taskgroup_t *tg, size_t i)
{
	return error_at(tg, i).code;
}

const char *coil_taskgroup_error_message(const coil_taskgroup_t *tg, size_t i)
{
	coil_task_t *t = error_at(tg, i).task;
	return t ? coil_future_error_message(&t->fut) : NULL;
}

coil_task_t *coil_taskgroup_error_task(const coil_taskgroup_t *tg, size_t i)
{
	return error_at(tg, i).task;
}

/* Under the lock: the first child record still linked, or NULL. */
static struct tg_child *first_child(coil_taskgroup_t *tg)
{
	coil__list_t *l = !coil__list_empty(&tg->children) ? &tg->children
							   : &tg->cancelled;
	if (coil__list_empty(l))
		return NULL;
	return coil__container_of(l->next, struct tg_child, link);
}

void coil_taskgroup_destroy(coil_taskgroup_t *tg)
{
	if (!tg)
		return;
	coil__lock(&tg->lock);
	tg->destroyed = true;
	struct tg_child *c;
	while ((c = first_child(tg))) {
		coil__list_del(&c->link);
		tg->nchildren--;
		/* Ours while we hold the lock: its callback frees the record
		 * only after taking it. */
		coil_future_t *f = coil_future_ref(&c->task->fut);
		coil__unlock(&tg->lock);
		/* A callback already queued finds the record unlinked and
		 * frees it itself; one removed here never runs. */
		if (coil_future_remove_done_callback(f, on_child_done, c)) {
			coil_task_detach(c->task);
			coil__free(c, sizeof(*c));
			coil__lock(&tg->lock);
			tg->refs--;
			coil__unlock(&tg->lock);
		}
		coil_future_release(f);
		coil__lock(&tg->lock);
	}
	/* No callback records errors once destroyed is set. */
	size_t nerrors = tg->nerrors;
	tg->nerrors = 0;
	coil__waiter_t *w = take_waiter(tg);
	coil__unlock(&tg->lock);
	for (size_t i = 0; i < nerrors; i++)
		coil_task_detach(tg->errors[i].task);
	if (w)
		coil__waiter_wake(w, COIL_ECLOSED);
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
