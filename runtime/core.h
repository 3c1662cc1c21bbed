/*
 * runtime/core.h: the internal structures of the single-loop core.
 *
 * Objects and who owns them:
 *  - coil_coro: a coroutine; its context (saved stack pointer and the
 *    sanitizer bookkeeping of its stack) and its stack, taken at first run
 *    and given back when it ends.
 *  - coil_future: state, reference count, outcome and the list of
 *    done-callbacks and waiters.
 *  - coil_task: a future plus a pointer to its body. The body (coroutine,
 *    links, cancellation state) is recycled as soon as the task ends; the
 *    handle stays until its last reference goes.
 *  - coil_handle: a call_soon or timer callback.
 *  - coil_loop: the ready queue (FIFO of runnables: handles, task steps,
 *    done-callbacks), the timer heap, the ring, the all-tasks list.
 *
 * Threads: all fields belong to the loop's thread except those marked
 * "any thread" (the inbox of call_soon_threadsafe, behind inbox_lock).
 *
 * The suspension protocol: a task suspends by registering a coil__waiter_t
 * with the thing it waits for and switching to its loop
 * (coil__task_suspend). Whatever completes the wait calls coil__waiter_wake
 * exactly once after unlinking the waiter; cancellation unlinks it through
 * the waiter's cancel hook and wakes it with -ECANCELED. A woken task goes to
 * the tail of its loop's ready queue, as asyncio schedules a task step with
 * call_soon.
 */
#ifndef COIL_RUNTIME_CORE_H
#define COIL_RUNTIME_CORE_H

#include <pthread.h>
#include <stdatomic.h>

#include "coil/coil.h"
#include "list.h"
#include "stack.h"
#include "ring.h"
#include "ctx.h"
#include "alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define COIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define COIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COIL_TSAN 1
#endif
#endif

#ifdef COIL_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef COIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* A place execution can switch to or from: a coroutine or a thread stack. */
typedef struct coil__ctx {
	void *sp;
	const void *stack_lo;   /* for ASan's fiber switch */
	size_t stack_size;
#ifdef COIL_ASAN
	void *asan_fake;
#endif
#ifdef COIL_TSAN
	void *tsan_fiber;
#endif
} coil__ctx_t;

/*
 * Switches from `from` to `to`, handing `arg` over as the return value of the
 * switch call the other side is suspended in, and returns what the side that
 * switches back hands over. Without ASan the switch is the caller's last
 * act, a tail jump (see ctx.h); ASan needs a hook after the switch.
 */
static inline int coil__ctx_jump(coil__ctx_t *from, coil__ctx_t *to, intptr_t arg,
			   bool exiting)
{
#ifdef COIL_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake,
				       to->stack_lo, to->stack_size);
	int r = coil__ctx_switch_int(&from->sp, to->sp, arg);
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
	return r;
#else
	(void)exiting;
#ifdef COIL_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	return coil__ctx_switch_int(&from->sp, to->sp, arg);
#endif
}

enum {
	COIL__CORO_F_TASK = 1,    /* the body of a task */
	COIL__CORO_F_EMBEDDED = 2 /* lives inside a task body, not malloc'ed */
};

struct coil_coro {
	coil__ctx_t ctx;
	coil__ctx_t *ret_ctx;     /* where yield and return switch to */
	struct coil_coro *parent; /* the coroutine that resumed it, or NULL */
	coil_task_t *task;        /* the task it currently runs in, or NULL */
	coil__stack_t *stack;
	coil_fn fn;
	void *arg;
	void **out_ptr;           /* where the resumer wants the yielded value */
	void **sent_ptr;          /* where the yielder wants the sent value */
	void *result;
	coil_dtor result_dtor;
	char *name;
	size_t stack_size;        /* 0: default */
	int ret;                  /* the body's return code */
	uint8_t state;            /* coil_coro_state_t */
	uint8_t flags;
	bool closing;
	bool ignored_close;       /* tried to yield while closing */
	bool awaiting;            /* suspended in an await, not a yield */
	bool result_taken;
};

/* The coroutine running on the calling thread (NULL on a thread stack). */
extern __thread coil_coro_t *coil__cur;

/* Prepares c's stack and context for its first run, on `stack` if not NULL
 * (a stack of coil__coro_stack_request(c) bytes), else on a new one.
 * Returns 0 or -ENOMEM. */
int coil__coro_prepare(coil_coro_t *c, coil__stack_t *stack);
/* The process-wide default stack size (coil_stack_set_default_size). */
extern size_t coil__default_stack_size;

/* The stack size c asks for. */
static inline size_t coil__coro_stack_request(const coil_coro_t *c)
{
	return c->stack_size ? c->stack_size : coil__default_stack_size;
}
/* Detaches an ended coroutine's stack and returns it (NULL if none). */
coil__stack_t *coil__coro_take_stack(coil_coro_t *c);
/* From inside a coroutine: switches to `to`, saving into the coroutine. */
void coil__coro_switch_out(coil_coro_t *c, coil__ctx_t *to);
/* Gives back the stack of an ended coroutine. */
void coil__coro_release_stack(coil_coro_t *c);
/* Fills a context describing the calling thread's current stack. */
void coil__ctx_here(coil__ctx_t *ctx);
/* Initialises an embedded coroutine. */
static inline void coil__coro_init(coil_coro_t *c, coil_fn fn, void *arg, size_t stack_size,
		     coil_dtor dtor, unsigned flags)
{
	memset(c, 0, sizeof(*c));
	c->fn = fn;
	c->arg = arg;
	c->stack_size = stack_size;
	c->result_dtor = dtor;
	c->flags = (uint8_t)flags;
	c->state = COIL_CORO_CREATED;
}

/* Frees what an embedded coroutine holds (stack, name). */
static inline void coil__coro_fini(coil_coro_t *c)
{
	if (c->stack)
		coil__coro_release_stack(c);
	coil__strfree(c->name);
	c->name = NULL;
}

/* Kinds of runnables in a ready queue. */
enum { COIL__RUN_HANDLE = 1, COIL__RUN_TASK, COIL__RUN_DONE_CB };

typedef struct coil__runnable {
	coil__fnode_t node;
	uint8_t kind;
} coil__runnable_t;

/* A timer in the loop's heap: a handle's or a sleeping task's. */
typedef struct coil__timer {
	int64_t when;
	uint64_t seq;             /* FIFO among equal deadlines */
	uint32_t idx;             /* position in the heap, UINT32_MAX if none */
	uint8_t kind;             /* COIL__TIMER_HANDLE or COIL__TIMER_WAITER */
} coil__timer_t;

enum { COIL__TIMER_HANDLE = 1, COIL__TIMER_WAITER };

typedef struct coil__heap {
	coil__timer_t **a;
	uint32_t n, cap;
} coil__heap_t;

int coil__heap_push(coil__heap_t *h, coil__timer_t *t);
void coil__heap_remove(coil__heap_t *h, coil__timer_t *t);
static inline coil__timer_t *coil__heap_top(const coil__heap_t *h)
{
	return h->n ? h->a[0] : NULL;
}
void coil__heap_free(coil__heap_t *h);

/* Entries of a future's callback list. */
enum { COIL__CB_DONE = 1, COIL__CB_WAITER };

typedef struct coil__cbnode {
	coil__list_t link;
	uint8_t kind;
} coil__cbnode_t;

/* A done-callback: in the future's list, then in the ready queue. */
typedef struct coil__donecb {
	coil__cbnode_t cb;
	coil__runnable_t run;
	coil_future_t *fut;       /* a reference, taken when scheduled */
	coil_done_cb fn;
	void *arg;
} coil__donecb_t;

typedef struct coil__waiter coil__waiter_t;
struct coil__waiter {
	coil__cbnode_t cb;        /* when waiting on a future */
	coil__timer_t timer;      /* when sleeping */
	coil_task_t *task;
	void (*cancel)(coil__waiter_t *w); /* unlinks it from its source */
	void *source;
	int result;
};

enum {
	COIL__F_PENDING = 0,
	COIL__F_RESULT,
	COIL__F_ERROR,
	COIL__F_CANCELLED
};

struct coil_future {
	uint32_t refs;
	uint8_t state;
	bool is_task;
	bool retrieved;
	int32_t code;
	coil_loop_t *loop;
	void *result;
	coil_dtor dtor;
	char *msg;
	coil__list_t cbs;         /* done-callbacks and waiters, in order */
};

typedef struct coil__task_body {
	coil__runnable_t run;
	coil_task_t *task;
	coil_coro_t coro;         /* the task's own coroutine */
	coil_coro_t *resume;      /* innermost coroutine to resume */
	coil__waiter_t *waiting;  /* what it is suspended on, or NULL */
	coil__list_t all;         /* the loop's list of live tasks */
	char *cancel_msg;
	char *errmsg;             /* set by coil_errorf */
	bool must_cancel;         /* deliver -ECANCELED at the next await */
	bool cancel_woken;        /* woken with -ECANCELED, not yet run: a
				   * second cancel is the same delivery */
	bool started;
	bool queued;              /* in the ready queue */
	bool pinned;
} coil__task_body_t;

struct coil_task {
	coil_future_t fut;
	uint64_t id;
	coil__task_body_t *body;  /* NULL once done */
	char *name;               /* NULL: "Task-<id>" */
	int32_t cancel_requests;
};

struct coil_handle {
	coil__runnable_t run;
	coil__timer_t timer;
	coil_loop_t *loop;
	coil_cb cb;
	void *arg;
	uint32_t refs;            /* the loop's while scheduled, the user's */
	coil_cb dropped;          /* thread-safe handles: runs instead of cb
				   * if the loop closes first (NULL: none) */
	bool cancelled;
	bool scheduled;           /* in the ready queue or the heap */
	bool is_timer;
};

struct coil_loop {
	coil__ctx_t sched;        /* the loop's own context while it runs */
	coil_coro_t *sched_cur;   /* coil__cur to restore when a task yields */
	coil__fifo_t ready;
	coil__heap_t timers;
	uint64_t timer_seq;
	coil__ring_t *ring;
	int64_t vnow;             /* the virtual clock, when enabled */
	coil_task_t *current;
	coil__list_t tasks;       /* live tasks (their bodies) */
	size_t ntasks;
	uint32_t refs;            /* futures alive on this loop, +1 until closed */
	bool virtual_clock;
	bool running;
	bool stopping;
	bool closed;
	size_t stack_size;
	coil_exception_handler exc_handler;
	void *exc_arg;
	coil_task_factory factory;
	void *factory_arg;
	coil__task_body_t *free_bodies; /* recycled bodies */
	size_t nfree_bodies;
	coil__objcache_t task_cache;    /* task handles */
	coil__objcache_t future_cache;  /* plain futures */
	coil__objcache_t handle_cache;  /* call_soon / timer handles */
	coil__objcache_t donecb_cache;  /* done-callbacks */
	coil__stack_t *spare_stack; /* the last ended task's stack, for the next */
	size_t spare_request;     /* the size it was asked for */
	char *name;
	pthread_t thread;         /* the thread running it */
	pthread_t ring_thread;    /* the ring's submitter thread */
	bool ring_error_reported; /* a failed ring wait was reported once */
	/* Any thread: call_soon_threadsafe's inbox. */
	pthread_mutex_t inbox_lock;
	coil__fifo_t inbox;
	atomic_size_t inbox_len;
};

/* The calling thread's running loop. */
extern __thread coil_loop_t *coil__running_loop;

/* Objects go back to a loop's caches only from the loop's own thread while
 * it runs, and never once it is closed (the caches are drained then). */
static inline void *coil__loop_obj_get(coil_loop_t *loop, coil__objcache_t *c)
{
	return coil__running_loop == loop ? coil__objcache_get(c) : coil__malloc(c->size);
}

static inline void coil__loop_obj_put(coil_loop_t *loop, coil__objcache_t *c, void *p)
{
	if (coil__running_loop == loop && !loop->closed)
		coil__objcache_put(c, p);
	else
		coil__free(p, c->size);
}

int64_t coil__clock_ns(void);
int64_t coil__loop_now(const coil_loop_t *loop);
static inline void coil__loop_push_ready(coil_loop_t *loop, coil__runnable_t *r)
{
	coil__fifo_push(&loop->ready, &r->node);
}
int coil__loop_add_timer(coil_loop_t *loop, coil__timer_t *t, int64_t when);
void coil__loop_del_timer(coil_loop_t *loop, coil__timer_t *t);
void coil__loop_unref(coil_loop_t *loop);

/*
 * As coil_loop_call_soon_threadsafe, but if the loop is closed before cb has
 * run, dropped(arg) (if not NULL) runs instead, once, on the thread closing
 * the loop: when this returns 0, exactly one of the two runs. Any thread.
 */
int coil__loop_call_soon_threadsafe_ex(coil_loop_t *loop, coil_cb cb,
				       coil_cb dropped, void *arg);

static inline void coil__future_init(coil_future_t *f, coil_loop_t *loop, bool is_task)
{
	f->refs = 1;
	f->state = COIL__F_PENDING;
	f->is_task = is_task;
	f->retrieved = false;
	f->code = 0;
	f->loop = loop;
	f->result = NULL;
	f->dtor = NULL;
	f->msg = NULL;
	coil__list_init(&f->cbs);
	loop->refs++;
}

void coil__future_finish(coil_future_t *f, int state, int code, void *result,
			 coil_dtor dtor, char *msg);
void coil__donecb_run(coil__donecb_t *d);

/*
 * The one way a task waits (DESIGN.md section 3). A primitive that makes a
 * task wait:
 *   1. calls coil__suspend_check() to get the current task (it fails outside
 *      a task, while the task's coroutine is being closed, or with a pending
 *      cancellation, which it delivers);
 *   2. fills a coil__waiter_t on its stack with coil__waiter_init(), giving a
 *      cancel hook that unlinks the waiter from the primitive, and links it
 *      (w->cb.link is free for the primitive's own list);
 *   3. calls coil__task_suspend(w), which returns the code passed to
 *      coil__waiter_wake: 0 or the primitive's own code when woken normally,
 *      -ECANCELED when the task was cancelled (the hook has already
 *      unlinked w), COIL_ECLOSED when the loop force-closes the task.
 * The side that completes the wait unlinks the waiter and calls
 * coil__waiter_wake(w, code) exactly once; whatever it hands over (an item,
 * the lock) is the waiter's from then on, even if a cancellation arrives
 * before the task runs again: that one is delivered at its next await.
 */
int coil__suspend_check(coil_task_t **out);

static inline void coil__waiter_init(coil__waiter_t *w, coil_task_t *t,
				     void (*cancel)(coil__waiter_t *w),
				     void *source)
{
	w->cb.kind = COIL__CB_WAITER;
	w->task = t;
	w->cancel = cancel;
	w->source = source;
	w->result = 0;
}

/* Suspends the current task on w until coil__waiter_wake. Returns w's
 * result. The caller has registered w with its source. */
int coil__task_suspend(coil__waiter_t *w);
void coil__waiter_wake(coil__waiter_t *w, int result);
void coil__task_free_body(coil_loop_t *loop, coil__task_body_t *b);
/* Frees a task handle whose last reference went. */
static inline void coil__task_free_handle(coil_loop_t *loop, coil_task_t *t)
{
	coil__loop_obj_put(loop, &loop->task_cache, t);
}
/* Frees the loop's pools of bodies and handles (loop close). */
void coil__task_pools_free(coil_loop_t *loop);
/* Before a task step: takes the stack on the first step, or ends a task
 * cancelled before it started. Returns false if there is nothing to run. */
bool coil__task_begin(coil_loop_t *loop, coil__task_body_t *b);
/* After a step in which the task's body returned: records the outcome. */
void coil__task_end(coil_loop_t *loop, coil__task_body_t *b);
/* Closes a task that ignored repeated cancellation (loop close). */
void coil__task_force_close(coil__task_body_t *b);

/* Closes the async generators still open on the loop (runtime/gen/gen.c);
 * called by coil_loop_close before it finishes the tasks. */
void coil__gen_shutdown_loop(coil_loop_t *loop);

/* Takes the message set by coil_errorf on this thread/task, or NULL. */
char *coil__take_errmsg(void);

#endif
