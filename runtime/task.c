/*
 * runtime/task.c: tasks (see coil/task.h), suspension and cancellation.
 *
 * Life of a task: spawn makes the handle (a future) and a body, links the
 * body into the loop's task list and queues its first step. Each step
 * switches into the innermost coroutine the task was running; the step ends
 * when the task suspends on a waiter (coil__task_suspend) or its body
 * returns. On return the body's stack and the body go back to their pools at
 * once, the outcome goes into the handle, and the loop drops its reference.
 *
 * Cancellation: cancelling a suspended task unlinks its waiter through the
 * waiter's cancel hook and wakes it with -ECANCELED; cancelling a task that
 * is queued or running sets must_cancel, delivered by its next await; a task
 * cancelled before its first step ends cancelled without running.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"

/*
 * Task ids are unique in the process. Each thread takes them from the shared
 * counter in blocks, so that spawning does not pay for a locked instruction
 * on a contended cache line every time.
 */
#define TASK_ID_BLOCK 1024
static _Atomic uint64_t next_task_id_block = 1;
static __thread uint64_t task_id_next, task_id_end;

static uint64_t task_id_take(void)
{
	if (task_id_next == task_id_end) {
		task_id_next = atomic_fetch_add_explicit(&next_task_id_block, TASK_ID_BLOCK,
							 memory_order_relaxed);
		task_id_end = task_id_next + TASK_ID_BLOCK;
	}
	return task_id_next++;
}

static coil__task_body_t *body_get(coil_loop_t *loop)
{
	coil__task_body_t *b = loop->free_bodies;
	if (b) {
		loop->free_bodies = (coil__task_body_t *)b->run.node.next;
		loop->nfree_bodies--;
		return b;
	}
	return coil__malloc(sizeof(*b));
}

void coil__task_free_body(coil_loop_t *loop, coil__task_body_t *b)
{
	/* Keep one ended task's stack at hand for the next task that starts:
	 * spawn-and-finish loops then never reach the stack pool. */
	if (b->coro.stack && loop && !loop->closed && !loop->spare_stack) {
		loop->spare_request = coil__coro_stack_request(&b->coro);
		loop->spare_stack = coil__coro_take_stack(&b->coro);
	}
	coil__coro_fini(&b->coro);
	coil__strfree(b->cancel_msg);
	coil__strfree(b->errmsg);
	if (loop && !loop->closed && loop->nfree_bodies < coil__cache_max) {
		b->run.node.next = (coil__fnode_t *)loop->free_bodies;
		loop->free_bodies = b;
		loop->nfree_bodies++;
		return;
	}
	coil__free(b, sizeof(*b));
}

/*
 * Task handles and bodies are recycled through per-loop free lists, so that
 * spawning a task costs no allocator call once the loop is warm. Only the
 * loop's own thread touches the lists, and nothing goes back to them once
 * the loop is closed.
 */
void coil__task_pools_free(coil_loop_t *loop)
{
	coil__stack_free(loop->spare_stack);
	loop->spare_stack = NULL;
	while (loop->free_bodies) {
		coil__task_body_t *b = loop->free_bodies;
		loop->free_bodies = (coil__task_body_t *)b->run.node.next;
		coil__free(b, sizeof(*b));
	}
	loop->nfree_bodies = 0;
	coil__objcache_drain(&loop->task_cache);
	coil__objcache_drain(&loop->future_cache);
	coil__objcache_drain(&loop->handle_cache);
	coil__objcache_drain(&loop->donecb_cache);
}

int coil_task_factory_default(coil_loop_t *loop, coil_task_t **out,
			      coil_fn fn, void *arg,
			      const coil_spawn_opts_t *opts)
{
	if (!loop || !fn)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	coil_task_t *t = coil__loop_obj_get(loop, &loop->task_cache);
	if (!t)
		return -ENOMEM;
	coil__task_body_t *b = body_get(loop);
	if (!b) {
		coil__task_free_handle(loop, t);
		return -ENOMEM;
	}
	t->name = NULL;
	if (opts && opts->name && !(t->name = coil__strdup(opts->name))) {
		coil__task_free_body(loop, b);
		coil__task_free_handle(loop, t);
		return -ENOMEM;
	}
	coil__future_init(&t->fut, loop, true);
	t->id = task_id_take();
	t->body = b;
	t->cancel_requests = 0;
	size_t ss = opts && opts->stack_size ? opts->stack_size : loop->stack_size;
	coil__coro_init(&b->coro, fn, arg, ss, opts ? opts->result_dtor : NULL,
			COIL__CORO_F_TASK | COIL__CORO_F_EMBEDDED);
	b->coro.task = t;
	b->coro.ret_ctx = &loop->sched;
	b->task = t;
	b->resume = &b->coro;
	b->waiting = NULL;
	b->cancel_msg = NULL;
	b->errmsg = NULL;
	b->must_cancel = false;
	b->cancel_woken = false;
	b->started = false;
	b->queued = false;
	b->pinned = opts && opts->pinned;
	b->run.kind = COIL__RUN_TASK;
	coil__list_push(&loop->tasks, &b->all);
	loop->ntasks++;
	/* The reference coil__future_init made is the loop's, dropped when the
	 * task is done; the caller gets one more only if it asked for it. */
	b->queued = true;
	coil__loop_push_ready(loop, &b->run);
	if (out) {
		t->fut.refs++;
		*out = t;
	}
	return 0;
}

int coil_loop_create_task(coil_loop_t *loop, coil_task_t **out, coil_fn fn,
			  void *arg, const coil_spawn_opts_t *opts)
{
	if (!loop)
		return -EINVAL;
	if (loop->factory)
		return loop->factory(loop, out, fn, arg, opts, loop->factory_arg);
	return coil_task_factory_default(loop, out, fn, arg, opts);
}

int coil_spawn(coil_task_t **out, coil_fn fn, void *arg,
	       const coil_spawn_opts_t *opts)
{
	coil_loop_t *loop = coil__running_loop;
	if (!loop)
		return coil_loop_create_task(coil_get_event_loop(), out, fn, arg, opts);
	if (loop->factory)
		return loop->factory(loop, out, fn, arg, opts, loop->factory_arg);
	return coil_task_factory_default(loop, out, fn, arg, opts);
}

void coil_loop_set_task_factory(coil_loop_t *loop, coil_task_factory factory,
				void *arg)
{
	loop->factory = factory;
	loop->factory_arg = factory ? arg : NULL;
}

coil_task_factory coil_loop_get_task_factory(coil_loop_t *loop, void **arg)
{
	if (arg)
		*arg = loop->factory_arg;
	return loop->factory;
}

coil_future_t *coil_task_future(coil_task_t *t)
{
	return &t->fut;
}

coil_task_t *coil_future_task(coil_future_t *f)
{
	return f && f->is_task ? (coil_task_t *)f : NULL;
}

void coil_task_detach(coil_task_t *t)
{
	if (t)
		coil_future_release(&t->fut);
}

/* Ends the task with its body's outcome and recycles the body. */
static void task_finish(coil_loop_t *loop, coil_task_t *t, int ret)
{
	coil__task_body_t *b = t->body;
	void *result = NULL;
	coil_dtor dtor = NULL;
	char *msg = NULL;
	int state;
	if (ret == 0) {
		state = COIL__F_RESULT;
		result = b->coro.result;
		dtor = b->coro.result_dtor;
	} else if (ret == -ECANCELED) {
		state = COIL__F_CANCELLED;
		msg = b->cancel_msg;
		b->cancel_msg = NULL;
	} else {
		state = COIL__F_ERROR;
		msg = b->errmsg;
		b->errmsg = NULL;
	}
	coil__list_del(&b->all);
	loop->ntasks--;
	t->body = NULL;
	coil__task_free_body(loop, b);
	coil__future_finish(&t->fut, state, ret, result, dtor, msg);
	coil_future_release(&t->fut);
}

bool coil__task_begin(coil_loop_t *loop, coil__task_body_t *b)
{
	b->queued = false;
	b->cancel_woken = false;
	if (b->started)
		return true;
	if (b->must_cancel) {
		task_finish(loop, b->task, -ECANCELED);
		return false;
	}
	coil__stack_t *spare = NULL;
	if (loop->spare_stack &&
	    loop->spare_request == coil__coro_stack_request(&b->coro)) {
		spare = loop->spare_stack;
		loop->spare_stack = NULL;
	}
	int rc = coil__coro_prepare(&b->coro, spare);
	if (rc) {
		task_finish(loop, b->task, rc);
		return false;
	}
	b->started = true;
	return true;
}

void coil__task_end(coil_loop_t *loop, coil__task_body_t *b)
{
	task_finish(loop, b->task, b->coro.ret);
}

int coil__suspend_check(coil_task_t **out)
{
	coil_coro_t *c = coil__cur;
	coil_task_t *t = c ? c->task : NULL;
	if (!t)
		return COIL_EINVALSTATE;
	if (c->closing)
		return COIL_ECLOSED;
	coil__task_body_t *b = t->body;
	if (b->must_cancel) {
		b->must_cancel = false;
		return -ECANCELED;
	}
	*out = t;
	return 0;
}

int coil__task_suspend(coil__waiter_t *w)
{
	coil_coro_t *c = coil__cur;
	coil_task_t *t = c->task;
	coil__task_body_t *b = t->body;
	coil_loop_t *loop = t->fut.loop;
	b->waiting = w;
	b->resume = c;
	c->state = COIL_CORO_SUSPENDED;
	c->awaiting = true;
	coil__coro_switch_out(c, &loop->sched);
	return w->result;
}

void coil__waiter_wake(coil__waiter_t *w, int result)
{
	coil_task_t *t = w->task;
	coil__task_body_t *b = t->body;
	w->result = result;
	if (b->waiting != w)
		return;
	b->waiting = NULL;
	b->queued = true;
	coil__loop_push_ready(t->fut.loop, &b->run);
}

bool coil_task_cancel(coil_task_t *t, const char *msg)
{
	coil__task_body_t *b = t->body;
	if (!b)
		return false;
	t->cancel_requests++;
	if (msg) {
		coil__strfree(b->cancel_msg);
		b->cancel_msg = coil__strdup(msg);
	}
	coil__waiter_t *w = b->waiting;
	if (w) {
		w->cancel(w);
		coil__waiter_wake(w, -ECANCELED);
		b->cancel_woken = true;
	} else if (!b->cancel_woken) {
		/* As asyncio: a task already woken by a cancellation gets one
		 * CancelledError however often it is cancelled before it
		 * runs; cancelling() still counts every request. */
		b->must_cancel = true;
	}
	return true;
}

void coil__task_force_close(coil__task_body_t *b)
{
	/* Every await and yield of a closing coroutine returns COIL_ECLOSED
	 * at once, so one more step runs the body to its end. */
	for (coil_coro_t *c = b->resume; c; c = c->parent) {
		c->closing = true;
		if (c == &b->coro)
			break;
	}
	coil__waiter_t *w = b->waiting;
	if (w) {
		w->cancel(w);
		coil__waiter_wake(w, COIL_ECLOSED);
	}
}

int coil_task_cancelling(const coil_task_t *t)
{
	return t->cancel_requests;
}

int coil_task_uncancel(coil_task_t *t)
{
	if (t->cancel_requests > 0 && --t->cancel_requests == 0 && t->body)
		t->body->must_cancel = false;
	return t->cancel_requests;
}

const char *coil_task_get_name(const coil_task_t *t)
{
	if (t->name)
		return t->name;
	/* Named on demand, so that spawning allocates no name. */
	coil_task_t *m = (coil_task_t *)t;
	char buf[32];
	snprintf(buf, sizeof(buf), "Task-%llu", (unsigned long long)t->id);
	m->name = coil__strdup(buf);
	return m->name ? m->name : "Task";
}

int coil_task_set_name(coil_task_t *t, const char *name)
{
	char *n = coil__strdup(name ? name : "");
	if (!n)
		return -ENOMEM;
	coil__strfree(t->name);
	t->name = n;
	return 0;
}

uint64_t coil_task_id(const coil_task_t *t)
{
	return t->id;
}

coil_coro_t *coil_task_coro(coil_task_t *t)
{
	return t->body ? &t->body->coro : NULL;
}

coil_task_t *coil_current_task(void)
{
	coil_coro_t *c = coil__cur;
	return c ? c->task : NULL;
}

size_t coil_all_tasks(coil_loop_t *loop, coil_task_t **tasks, size_t cap)
{
	loop = loop ? loop : coil_get_event_loop();
	if (!loop)
		return 0;
	size_t i = 0;
	for (coil__list_t *p = loop->tasks.next; p != &loop->tasks; p = p->next) {
		coil__task_body_t *b = coil__container_of(p, coil__task_body_t, all);
		if (i < cap)
			tasks[i] = b->task;
		i++;
	}
	return i;
}

static void sleep_cancel(coil__waiter_t *w)
{
	coil__loop_del_timer(w->task->fut.loop, &w->timer);
}

int coil_sleep_ns(int64_t ns)
{
	if (ns < 0)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	coil__task_body_t *b = t->body;
	coil_coro_t *c = coil__cur;
	coil_loop_t *loop = t->fut.loop;
	if (ns == 0) {
		/* asyncio.sleep(0): one trip through the ready queue. */
		b->queued = true;
		coil__loop_push_ready(loop, &b->run);
		b->resume = c;
		c->state = COIL_CORO_SUSPENDED;
		c->awaiting = true;
		coil__coro_switch_out(c, &loop->sched);
		return 0;
	}
	coil__waiter_t w;
	coil__waiter_init(&w, t, sleep_cancel, NULL);
	w.timer.kind = COIL__TIMER_WAITER;
	int64_t now = coil__loop_now(loop);
	int64_t when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
	rc = coil__loop_add_timer(loop, &w.timer, when);
	if (rc)
		return rc;
	return coil__task_suspend(&w);
}

int coil_sleep(double seconds)
{
	if (!(seconds >= 0))
		return -EINVAL;
	double ns = seconds * 1e9;
	return coil_sleep_ns(ns >= 9.2e18 ? INT64_MAX : (int64_t)ns);
}
