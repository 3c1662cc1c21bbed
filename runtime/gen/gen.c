/*
 * runtime/gen/gen.c: async generators (see coil/gen.h) and their
 * finalization when a loop closes (asyncio's shutdown_asyncgens).
 *
 * A generator is a coroutine (embedded, so one allocation makes both) whose
 * function is gen_main, a trampoline that calls the user's body. That is how
 * coil_gen_yield knows it is called from a generator's body: the running
 * coroutine's fn is gen_main. Each step (next, asend, athrow) is a resume or
 * a throw of that coroutine from the consumer. When the body awaits inside a
 * task, the task suspends with the generator's coroutine as the one to
 * resume (runtime/task.c), and the consumer's step returns only once the body
 * yields or ends: from the consumer's side a step is one await.
 *
 * Invariants:
 *  - A generator is "running" while its coroutine is RUNNING or suspended in
 *    an await; a step, a close and a destroy are refused (destroy: deferred)
 *    then, as Python refuses with "asynchronous generator is already
 *    running".
 *  - A generator is registered with a loop from its first step until its
 *    body ends, and only then: the registry of a loop holds exactly the
 *    generators that loop must finalize.
 *  - Closing never suspends (DESIGN.md section 6): coil_coro_close makes each
 *    yield and await of the body return COIL_ECLOSED at once. So aclose,
 *    destroy and the loop's finalization complete wherever they are called.
 *  - The stack of a generator whose body ended is given back at once; the
 *    object stays until coil_gen_destroy.
 *  - Whoever runs the generator's coroutine holds its claim (`own`): the
 *    consumer for a step, an aclose or a destroy (GEN_STEP), a loop's
 *    finalization for a close (GEN_CLOSE). The consumer is one task at a
 *    time, but a task migrates between workers, and a finalization of the
 *    loop the generator registered with may run on another worker than the
 *    consumer's: the claim keeps the two from running the coroutine at
 *    once. A finalization only tries it and leaves a claimed generator
 *    alone (it is running); the consumer waits out a close, which never
 *    suspends, and then finds the generator closed.
 *
 * The registry: each loop keeps the list of the generators registered with
 * it (loop->gens, under loop->gens_lock: a consumer that migrated ends its
 * generator on another worker than the one it registered on), emptied when
 * the loop closes (coil__gen_shutdown_loop, which coil_loop_close calls; a
 * runtime's worker loop only forgets them, coil__gen_forget_loop).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "coil/gen.h"

enum { GEN_FREE, GEN_STEP, GEN_CLOSE };

struct coil_gen {
	coil_coro_t coro;    /* first: coil__cur is the generator */
	coil_aiter_t it;     /* the generator as an async iterator */
	coil_fn body;
	void *arg;
	coil_loop_t *loop;   /* where it is registered, or NULL */
	coil__list_t link;   /* in loop->gens */
	atomic_uint own;     /* GEN_*: who runs the coroutine */
	_Atomic(const void *) closer; /* the thread of a GEN_CLOSE claim */
	bool doomed;         /* destroyed while running: free after the step */
	bool destroying;     /* coil_gen_destroy is freeing it */
};

/* --- the claim -------------------------------------------------------- */

/* Its address tells the threads apart. */
static __thread char thread_token;

/*
 * The consumer's claim, for a step, an aclose or a destroy. Returns false
 * if the generator is running: a step holds the claim (its own body, or a
 * step suspended in an await), or a close made by this thread, which is
 * then inside the body's cleanup. A close by another thread (a loop's
 * finalization on another worker) is waited out: it runs the body's
 * cleanup to the end without suspending.
 */
static bool gen_claim(coil_gen_t *g)
{
	if (!coil__mt()) {
		/* One thread touches the generator (core.h): no compare-and-
		 * swap; a close under way is this thread's own. */
		if (atomic_load_explicit(&g->own, memory_order_relaxed) != GEN_FREE)
			return false;
		atomic_store_explicit(&g->own, GEN_STEP, memory_order_relaxed);
		return true;
	}
	for (;;) {
		unsigned v = GEN_FREE;
		if (atomic_compare_exchange_weak_explicit(&g->own, &v, GEN_STEP,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
		if (v == GEN_STEP)
			return false;
		if (v == GEN_CLOSE) {
			if (atomic_load_explicit(&g->closer, memory_order_relaxed) ==
			    &thread_token)
				return false;
			sched_yield();
		}
	}
}

/* Waits out a close by another thread, for a look at the state. */
static void gen_wait_close(coil_gen_t *g)
{
	while (atomic_load_explicit(&g->own, memory_order_acquire) == GEN_CLOSE &&
	       atomic_load_explicit(&g->closer, memory_order_relaxed) != &thread_token)
		sched_yield();
}

static void gen_unclaim(coil_gen_t *g)
{
	atomic_store_explicit(&g->own, GEN_FREE, memory_order_release);
}

/* --- the registry ----------------------------------------------------- */

/* asyncio's firstiter hook: the loop learns of a generator at its first
 * step. Without a loop (plain code) there is nothing to register with. */
static void gen_register(coil_gen_t *g)
{
	coil_loop_t *loop = coil_get_event_loop();
	if (!loop || loop->closed)
		return;
	coil__lock(&loop->gens_lock);
	g->loop = loop;
	coil__list_push(&loop->gens, &g->link);
	coil__unlock(&loop->gens_lock);
}

/* By the claim's holder. */
static void gen_unregister(coil_gen_t *g)
{
	coil_loop_t *loop = g->loop;
	if (!loop)
		return;
	coil__lock(&loop->gens_lock);
	g->loop = NULL;
	coil__list_del(&g->link);
	coil__unlock(&loop->gens_lock);
}

/* --- steps ------------------------------------------------------------ */

static int gen_main(void *arg, void **result)
{
	coil_gen_t *g = arg;
	void *ignored = NULL;
	(void)result;
	int rc = g->body(g->arg, &ignored);
	return rc == COIL_EDONE ? 0 : rc;
}

static coil_gen_t *gen_current(void)
{
	coil_coro_t *c = coil__cur;
	if (!c || c->fn != gen_main)
		return NULL;
	return coil__container_of(c, coil_gen_t, coro);
}

/* A step holds the claim from its start to its end, its awaits included. */
static bool gen_running(const coil_gen_t *g)
{
	return atomic_load_explicit(&((coil_gen_t *)g)->own, memory_order_relaxed) == GEN_STEP;
}

/* Whether the caller is being closed: then a step, which may suspend, is an
 * await like any other and returns COIL_ECLOSED at once. */
static bool caller_closing(void)
{
	return coil__cur && coil__cur->closing;
}

static void gen_free(coil_gen_t *g);

static void report_close_error(coil_loop_t *loop, coil_gen_t *g, int err)
{
	char msg[192];
	const char *name = g->coro.name ? g->coro.name : "";
	snprintf(msg, sizeof(msg),
		 "an error occurred during closing of asynchronous generator%s%s",
		 *name ? " " : "", name);
	coil_exc_context_t ctx = {
		.message = msg,
		.error = err,
		.error_message = err == COIL_EINVALSTATE ?
				 "async generator ignored GeneratorExit" : NULL,
	};
	coil_loop_call_exception_handler(loop, &ctx);
}

/*
 * After a step or a close: a generator whose body ended leaves its loop's
 * registry and gives its stack back; one destroyed meanwhile is freed.
 * Returns true if it was freed.
 */
static bool step_end(coil_gen_t *g)
{
	if (g->coro.state == COIL_CORO_CLOSED) {
		gen_unregister(g);
		coil__coro_release_stack(&g->coro);
	}
	if (g->doomed && !g->destroying) {
		gen_free(g);
		return true;
	}
	return false;
}

static int gen_step(coil_gen_t *g, void *value, int err, void **out)
{
	coil_coro_t *c;
	void *v = NULL;
	int rc;

	if (!g) {
		rc = -EINVAL;
		goto out;
	}
	c = &g->coro;
	if (caller_closing()) {
		rc = COIL_ECLOSED;
	} else if (g->doomed) {
		rc = COIL_EDONE;
	} else if (!gen_claim(g)) {
		rc = COIL_EINVALSTATE;
	} else if (c->state == COIL_CORO_CLOSED) {
		gen_unclaim(g);
		rc = COIL_EDONE;
	} else if (c->state == COIL_CORO_CREATED && !err && value) {
		gen_unclaim(g);
		rc = -EINVAL;
	} else {
		if (c->state == COIL_CORO_CREATED && !err)
			gen_register(g);
		rc = err ? coil_coro_throw(c, err, &v)
			 : coil_coro_resume(c, value, &v);
		if (step_end(g)) {
			rc = COIL_ECLOSED;
			v = NULL;
		} else {
			gen_unclaim(g);
		}
	}
out:
	if (out)
		*out = rc == 0 ? v : NULL;
	return rc;
}

int coil_gen_next(coil_gen_t *g, void **value)
{
	return gen_step(g, NULL, 0, value);
}

int coil_gen_asend(coil_gen_t *g, void *value, void **out)
{
	return gen_step(g, value, 0, out);
}

int coil_gen_athrow(coil_gen_t *g, int err, void **out)
{
	if (err >= 0) {
		if (out)
			*out = NULL;
		return -EINVAL;
	}
	return gen_step(g, NULL, err, out);
}

/* Closes a generator that is not running; returns as coil_gen_aclose. */
static int gen_close(coil_gen_t *g)
{
	coil_coro_t *c = &g->coro;
	if (c->state == COIL_CORO_CLOSED)
		return 0;
	if (c->state == COIL_CORO_CREATED) {
		/* Never ran: nothing to clean up, never registered. */
		coil_coro_close(c);
		return 0;
	}
	int rc = coil_coro_close(c);
	/* coil_coro_close tells only whether the body ignored the close; a
	 * cleanup that failed with an error of its own says so through the
	 * body's return code. */
	if (rc == 0 && c->ret != 0 && c->ret != COIL_ECLOSED)
		rc = c->ret;
	return rc;
}

int coil_gen_aclose(coil_gen_t *g)
{
	if (!g)
		return -EINVAL;
	if (g->doomed)
		return 0;
	if (!gen_claim(g))
		return COIL_EINVALSTATE;
	int rc = gen_close(g);
	if (step_end(g))
		return COIL_ECLOSED;
	gen_unclaim(g);
	return rc;
}

/* Closes (if open) and frees a generator whose claim the caller holds. */
static void gen_free(coil_gen_t *g)
{
	g->destroying = true;
	coil_loop_t *loop = g->loop ? g->loop : coil_get_event_loop();
	/* Left open at a yield: debug mode reports it. */
	if (g->coro.state == COIL_CORO_SUSPENDED)
		coil__debug_gen_unclosed(loop, g->coro.name, (void *)g->body,
					 "was destroyed without being closed (closed now)");
	int rc = gen_close(g);
	if (rc)
		report_close_error(loop, g, rc);
	gen_unregister(g);
	coil__coro_fini(&g->coro);
	coil__free(g, sizeof(*g));
}

void coil_gen_destroy(coil_gen_t *g)
{
	if (!g || g->destroying || g->doomed)
		return;
	if (!gen_claim(g)) {
		/* Its own body, or a step suspended in an await, on the
		 * consumer's thread: the step frees it at its end. */
		g->doomed = true;
		return;
	}
	gen_free(g);
}

/* --- creation and inspection ------------------------------------------ */

static int gen_aiter_next(coil_aiter_t *it, void **value)
{
	return coil_gen_next(coil__container_of(it, coil_gen_t, it), value);
}

int coil_gen_create(coil_gen_t **out, coil_fn body, void *arg,
		    const coil_gen_opts_t *opts)
{
	if (!out || !body)
		return -EINVAL;
	coil_gen_t *g = coil__malloc(sizeof(*g));
	if (!g)
		return -ENOMEM;
	coil__coro_init(&g->coro, gen_main, g, opts ? opts->stack_size : 0,
			NULL, COIL__CORO_F_EMBEDDED);
	if (opts && opts->name && !(g->coro.name = coil__strdup(opts->name))) {
		coil__free(g, sizeof(*g));
		return -ENOMEM;
	}
	coil_aiter_init(&g->it, gen_aiter_next, NULL);
	g->body = body;
	g->arg = arg;
	g->loop = NULL;
	coil__list_init(&g->link);
	atomic_init(&g->own, GEN_FREE);
	atomic_init(&g->closer, NULL);
	g->doomed = false;
	g->destroying = false;
	*out = g;
	return 0;
}

coil_coro_state_t coil_gen_state(const coil_gen_t *g)
{
	if (!g)
		return COIL_CORO_CLOSED;
	if (gen_running(g))
		return COIL_CORO_RUNNING;
	gen_wait_close((coil_gen_t *)g);
	return (coil_coro_state_t)g->coro.state;
}

const char *coil_gen_name(const coil_gen_t *g)
{
	return g && g->coro.name ? g->coro.name : "";
}

coil_aiter_t *coil_gen_aiter(coil_gen_t *g)
{
	return g ? &g->it : NULL;
}

/* --- inside the body -------------------------------------------------- */

int coil_gen_yield(void *value, void **sent)
{
	if (sent)
		*sent = NULL;
	if (!gen_current())
		return COIL_EINVALSTATE;
	return coil_coro_yield(value, sent);
}

int coil_gen_yield_from(coil_gen_t *inner)
{
	coil_gen_t *self = gen_current();
	if (!self)
		return COIL_EINVALSTATE;
	if (!inner || inner == self)
		return -EINVAL;
	void *v, *sent;
	int rc = coil_gen_next(inner, &v);
	for (;;) {
		if (rc == COIL_EDONE)
			return 0;
		if (rc)
			return rc;
		int y = coil_gen_yield(v, &sent);
		if (y == 0) {
			rc = coil_gen_asend(inner, sent, &v);
		} else if (y == COIL_ECLOSED) {
			/* Python's yield from closes the inner generator
			 * first, and reports its error if closing failed. */
			rc = coil_gen_aclose(inner);
			return rc ? rc : COIL_ECLOSED;
		} else {
			rc = coil_gen_athrow(inner, y, &v);
		}
	}
}

/* --- loop finalization ------------------------------------------------ */

/*
 * Acloses every generator registered with loop that is not running, in the
 * calling context. Returns how many it closed. Each is claimed under the
 * registry's lock, while it is surely alive, and closed with the lock
 * dropped: its cleanup may end other generators of the loop, and its
 * consumer, a task that may have moved to another worker, waits for the
 * close to end (gen_claim). The walk starts over after each close, as the
 * list may have changed meanwhile.
 */
static int close_all(coil_loop_t *loop)
{
	int n = 0;
	for (;;) {
		coil_gen_t *g = NULL;
		coil__lock(&loop->gens_lock);
		for (coil__list_t *p = loop->gens.next; p != &loop->gens; p = p->next) {
			coil_gen_t *x = coil__container_of(p, coil_gen_t, link);
			unsigned v = GEN_FREE;
			if (atomic_compare_exchange_strong_explicit(&x->own, &v, GEN_CLOSE,
								    memory_order_acquire,
								    memory_order_relaxed)) {
				g = x;
				break;
			}
		}
		coil__unlock(&loop->gens_lock);
		if (!g)
			break;
		atomic_store_explicit(&g->closer, &thread_token, memory_order_relaxed);
		int rc = gen_close(g);
		if (rc)
			report_close_error(loop, g, rc);
		/* Closed now, whatever rc says: it leaves the registry, and
		 * is freed if its cleanup destroyed it. */
		gen_unregister(g);
		atomic_store_explicit(&g->closer, NULL, memory_order_relaxed);
		if (!step_end(g))
			gen_unclaim(g);
		n++;
	}
	return n;
}

static bool has_gens(coil_loop_t *loop)
{
	coil__lock(&loop->gens_lock);
	bool any = !coil__list_empty(&loop->gens);
	coil__unlock(&loop->gens_lock);
	return any;
}

static int shutdown_body(void *arg, void **result)
{
	*result = (void *)(intptr_t)close_all(arg);
	return 0;
}

/* Runs close_all in a task of the stopped loop, so that the cleanups run as
 * they would have in a task of theirs (their awaits return COIL_ECLOSED). */
static int shutdown_in_task(coil_loop_t *loop)
{
	coil_spawn_opts_t opts = { .name = "shutdown_asyncgens" };
	coil_task_t *t;
	void *res = NULL;
	int rc = coil_loop_create_task(loop, &t, shutdown_body, loop, &opts);
	if (rc)
		return rc;
	rc = coil_loop_run_until_complete(loop, coil_task_future(t), &res);
	coil_task_detach(t);
	return rc ? rc : (int)(intptr_t)res;
}

int coil_loop_shutdown_asyncgens(coil_loop_t *loop)
{
	if (!loop)
		loop = coil_get_event_loop();
	/* Generators register with the worker that made their first step,
	 * never with the stand-in of COIL_ANY_WORKER, which has no registry. */
	if (!loop || loop->any)
		return -EINVAL;
	if (loop->closed)
		return COIL_ECLOSED;
	coil_task_t *t = coil_current_task();
	if (t) {
		/* Any task of a worker loop's runtime, wherever it runs (it
		 * may have moved away from its own loop): close_all locks the
		 * registry and claims each generator it closes. */
		coil_loop_t *home = t->fut.loop;
		bool mine = home == loop || (loop->rt && home->rt == loop->rt);
		return mine ? close_all(loop) : -EINVAL;
	}
	if (loop->running || coil__running_loop)
		return -EBUSY;
	if (!has_gens(loop))
		return 0;
	/* coil_loop_run_until_complete refuses a runtime's loop: a task
	 * spawned for it would stay queued and close the generators
	 * whenever the runtime ran again, after this call had failed. */
	if (loop->rt)
		return -EINVAL;
	return shutdown_in_task(loop);
}

/* Empties the registry: what is left is in the middle of a step of a live
 * task (or, on a runtime's loop, was left open), and cannot be closed. */
static void forget_all(coil_loop_t *loop)
{
	coil__lock(&loop->gens_lock);
	while (!coil__list_empty(&loop->gens)) {
		coil_gen_t *g = coil__container_of(loop->gens.next, coil_gen_t, link);
		g->loop = NULL;
		coil__list_del(&g->link);
	}
	coil__unlock(&loop->gens_lock);
}

void coil__gen_shutdown_loop(coil_loop_t *loop)
{
	if (!loop || !has_gens(loop))
		return;
	/* Debug mode reports the generators left open at a yield. The loop
	 * is not running: its generators' consumers are its tasks. */
	for (coil__list_t *p = loop->gens.next; loop->debug && p != &loop->gens; p = p->next) {
		coil_gen_t *g = coil__container_of(p, coil_gen_t, link);
		if (!gen_running(g))
			coil__debug_gen_unclosed(loop, g->coro.name, (void *)g->body,
						 "was still open when its loop closed (closed now)");
	}
	if (!loop->closed && !loop->running && !coil__running_loop)
		(void)shutdown_in_task(loop);
	/* What is left could not be closed in a task (none could be made, or
	 * the loop is not in a state to run one): close it here. */
	close_all(loop);
	forget_all(loop);
}

void coil__gen_forget_loop(coil_loop_t *loop)
{
	forget_all(loop);
}
