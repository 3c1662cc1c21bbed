/*
 * runtime/core.h: the internal structures of loops, tasks and futures.
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
 * Threads: a loop's fields belong to its thread except the inbox (behind
 * inbox_lock), the shared task list (behind tasks_lock), the own task
 * list (changed by the worker alone, read by others under the own-list
 * protocol: task.c) and the owner-side deque (thieves steal from its
 * top). Futures, task cancellation state and the synchronisation
 * primitives carry their own spinlocks (see coil__lock).
 *
 * The suspension protocol is below (coil__suspend_check): a task registers
 * a coil__waiter_t with what it waits for and switches to its worker; the
 * one side that claims the waiter wakes it; a woken task goes to the ready
 * FIFO of a one-worker loop (asyncio's order) or to a runtime worker's LIFO
 * slot or deque.
 */
#ifndef COIL_RUNTIME_CORE_H
#define COIL_RUNTIME_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "coil/coil.h"
#include "list.h"
#include "stack.h"
#include "ring.h"
#include "ctx.h"
#include "alloc.h"
#include "spin.h"
#include "sched/deque.h"
#include "sched/inject.h"
#include "debug/debug_int.h"
#include "debug/metrics_int.h"

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

/*
 * Threading. coil__mt() turns true, for good, when the first runtime with
 * more than one worker starts; until then every object is touched by one
 * thread only and the locks below cost nothing. (One exception: the
 * reference counts of a closed loop and of its futures, which the thread
 * of a thread or process pool may drop too; they are atomic once the loop
 * is closed, see refs_plain in runtime/future.c.) Objects shared by the tasks
 * of several workers (futures, task bodies, the synchronisation primitives)
 * carry a coil__spin_t taken through coil__lock, which is a no-op while
 * coil__mt() is false.
 */
extern atomic_bool coil__mt_flag;
static inline bool coil__mt(void)
{
	return atomic_load_explicit(&coil__mt_flag, memory_order_relaxed);
}

static inline void coil__lock(coil__spin_t *l)
{
	if (coil__mt())
		coil__spin_lock(l);
}

static inline void coil__unlock(coil__spin_t *l)
{
	if (coil__mt())
		coil__spin_unlock(l);
}

/*
 * The _x forms take coil__mt() as read once by the caller: a hot path that
 * branches on it at its start and calls an always_inline body with a
 * constant gets a lock-free copy and a locked one, instead of testing the
 * flag at every lock, claim and wake-up.
 */
static inline __attribute__((always_inline)) void coil__lock_x(coil__spin_t *l, bool mt)
{
	if (mt)
		coil__spin_lock(l);
}

static inline __attribute__((always_inline)) void coil__unlock_x(coil__spin_t *l, bool mt)
{
	if (mt)
		coil__spin_unlock(l);
}

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
	/* What a suspension and a resumption touch comes first: with many
	 * tasks waiting on I/O at once, every cache line of a task's state is
	 * a miss when it resumes (the kernel's copies evict them). */
	coil__ctx_t ctx;
	coil__ctx_t *ret_ctx;     /* where yield and return switch to */
	coil_task_t *task;        /* the task it currently runs in, or NULL */
	int ret;                  /* the body's return code */
	uint8_t state;            /* coil_coro_state_t */
	uint8_t flags;
	bool closing;
	bool ignored_close;       /* tried to yield while closing */
	bool awaiting;            /* suspended in an await, not a yield */
	bool result_taken;
	struct coil_coro *parent; /* the coroutine that resumed it, or NULL */
	coil__stack_t *stack;
	coil_fn fn;
	void *arg;
	void **out_ptr;           /* where the resumer wants the yielded value */
	void **sent_ptr;          /* where the yielder wants the sent value */
	void *result;
	coil_dtor result_dtor;
	char *name;
	size_t stack_size;        /* 0: default */
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
/*
 * Stack colouring. Stacks start on page boundaries, so the hot top lines
 * of every stack (the first frames, the wait slot, the registers a switch
 * saves) would fall in the same few sets of a CPU's L1 cache, which has
 * 64 sets of 64-byte lines indexed by address bits 6-11: with more tasks
 * suspended than the cache has ways, each resumption would miss there.
 * Each stack's frames start below its top by a colour of 0 to
 * COIL__STACK_COLORS - 1 lines, taken from the stack's address; the
 * request has a page more (COIL__STACK_PAD), so a task still gets the
 * bytes it asked for, and the size reported is the stack's less that page.
 * The page costs address space only: it is at the bottom, never touched
 * unless the task needs it.
 */
#define COIL__STACK_COLORS 32
#define COIL__STACK_PAD 4096
static inline size_t coil__coro_stack_request(const coil_coro_t *c)
{
	size_t size = c->stack_size ? c->stack_size : coil__default_stack_size;
	/* A size near SIZE_MAX must not wrap to a tiny stack: saturated, it
	 * is one no allocation can meet, and the first run fails with
	 * -ENOMEM. */
	return size > SIZE_MAX - COIL__STACK_PAD ? SIZE_MAX : size + COIL__STACK_PAD;
}
/* Detaches an ended coroutine's stack and returns it (NULL if none). */
coil__stack_t *coil__coro_take_stack(coil_coro_t *c);
/* From inside a coroutine: switches to `to`, saving into the coroutine. */
void coil__coro_switch_out(coil_coro_t *c, coil__ctx_t *to);
/* Gives back the stack of an ended coroutine. */
void coil__coro_release_stack(coil_coro_t *c);
/* Fills a context describing the calling thread's current stack. */
void coil__ctx_here(coil__ctx_t *ctx);
/* Initialises an embedded coroutine. Field by field rather than with a
 * memset, which compiles to `rep stos` here, whose start-up cost was a
 * quarter of a spawn's time; the assertion below catches a field added to
 * struct coil_coro without a line here. */
static inline void coil__coro_init(coil_coro_t *c, coil_fn fn, void *arg, size_t stack_size,
		     coil_dtor dtor, unsigned flags)
{
	c->ctx.sp = NULL;
	c->ctx.stack_lo = NULL;
	c->ctx.stack_size = 0;
#ifdef COIL_ASAN
	c->ctx.asan_fake = NULL;
#endif
#ifdef COIL_TSAN
	c->ctx.tsan_fiber = NULL;
#endif
	c->ret_ctx = NULL;
	c->task = NULL;
	c->ret = 0;
	c->state = COIL_CORO_CREATED;
	c->flags = (uint8_t)flags;
	c->closing = false;
	c->ignored_close = false;
	c->awaiting = false;
	c->result_taken = false;
	c->parent = NULL;
	c->stack = NULL;
	c->fn = fn;
	c->arg = arg;
	c->out_ptr = NULL;
	c->sent_ptr = NULL;
	c->result = NULL;
	c->result_dtor = dtor;
	c->name = NULL;
	c->stack_size = stack_size;
}
#if __SIZEOF_POINTER__ == 8
_Static_assert(sizeof(coil__ctx_t) == 24
#ifdef COIL_ASAN
			       + 8
#endif
#ifdef COIL_TSAN
			       + 8
#endif
	       && sizeof(coil_coro_t) == sizeof(coil__ctx_t) + 112,
	       "coil__coro_init sets every field of struct coil_coro");
#endif

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
	coil__timer_t timer;      /* when a timer can end the wait */
	coil_task_t *task;
	void (*cancel)(coil__waiter_t *w); /* unlinks it from its source */
	void *source;
	coil_loop_t *timer_loop;  /* the loop whose heap holds `timer`, or NULL */
	int result;
	atomic_uchar claimed;     /* 1 once someone took it to wake it */
	const char *what;         /* what it waits for, for task listings
				   * (runtime/debug): a static string set by
				   * the primitive after coil__waiter_init */
};

enum {
	COIL__F_PENDING = 0,
	COIL__F_RESULT,
	COIL__F_ERROR,
	COIL__F_CANCELLED
};

struct coil_future {
	_Atomic uint32_t refs;
	coil__spin_t lock;        /* state and cbs, when coil__mt() */
	_Atomic uint8_t state;
	bool is_task;
	atomic_bool retrieved;
	int32_t code;
	coil_loop_t *loop;
	void *result;
	coil_dtor dtor;
	char *msg;
	coil__list_t cbs;         /* done-callbacks and waiters, in order */
};

/* coil_task_t.cancel: bit 0 PENDING, bits 1-7 the number of
 * lookers holding the task (coil__task_hold): one under the task's clock
 * and the shutdown of the task's loop (coil__task_cancel_all) at most. */
enum { COIL__CANCEL_PENDING = 1, COIL__CANCEL_HELD = 2, COIL__CANCEL_HELD_MASK = 0xfe };

/* Where a task is (coil__task_body_t.rstate). */
enum {
	COIL__TS_QUEUED = 0,      /* in a run queue, or spawned not yet run */
	COIL__TS_RUNNING,         /* a worker runs it (or it is switching out) */
	COIL__TS_WAITING,         /* suspended, no wake-up yet */
	COIL__TS_NOTIFIED         /* woken while still switching out */
};

/* A task-local variable (coil_task_local_set). */
typedef struct coil__tls {
	const void *key;
	void *value;
} coil__tls_t;

typedef struct coil__task_body {
	/* The fields a wait and a wake-up touch come first, with the head of
	 * the coroutine: the first two cache lines (see struct coil_coro). */
	coil__runnable_t run;
	coil_task_t *task;
	coil_loop_t *worker;      /* the loop it last ran on (home when pinned) */
	_Atomic uint8_t rstate;   /* COIL__TS_* */
	bool yielding;            /* switched out by coil_sleep(0) */
	uint16_t pins;            /* > 0: never leaves `worker` */
	/* Woken with -ECANCELED, not yet run: a second cancel is the same
	 * delivery. Set by a canceller under the clock, cleared by the task
	 * when it runs again (without the lock: a canceller that still reads
	 * it set came before the task ran). */
	_Atomic bool cancel_woken;
	bool started;
	bool tail;                /* in a tail wait: its resumer ends the wait
				   * (coil__task_wait_tail) */
	coil_coro_t *resume;      /* innermost coroutine to resume */
	/* What it is suspended on, or NULL. Written only by the task itself
	 * (release: whoever loads it with acquire sees the waiter filled). */
	_Atomic(coil__waiter_t *) waiting;
	coil_coro_t coro;         /* the task's own coroutine */
	uint32_t ntls;
	bool shared_handle;       /* the handle may be released off the task's
				   * loop (coil_runtime_spawn's, or a spawn
				   * from another thread) */
	bool on_own;              /* in its home's `own` list, not `tasks` */
	/* Of pins, the task's own (coil_task_pin, the spawn's pinned): only
	 * these may coil_task_unpin undo. The rest are the runtime's, held
	 * while something of the worker's is armed for the task (a timer, a
	 * timeout scope's handle, an acceptor, an I/O request); dropping one
	 * would let the task run on another worker while that is armed.
	 * Changed only by the running task on its own thread, as pins; kept
	 * here, off the lines a wait touches (only the pin calls use it). */
	uint16_t upins;
	coil__tls_t *tls;         /* task-local storage, ntls entries */
	coil__list_t all;         /* the loop's list of live tasks */
	char *cancel_msg;
	char *errmsg;             /* set by coil_errorf */
	int64_t created;          /* spawn time (coil__clock_ns) in debug mode, else 0 */
	/* While a task that awaits this one runs it on its own worker as a
	 * call (coil__task_join_run): that task's waiter, not linked yet. */
	struct coil__waiter *join_w;
} coil__task_body_t;

struct coil_task {
	coil_future_t fut;
	uint64_t id;
	/* NULL once done. Read by lookers on other threads only while they
	 * hold the task (coil__task_hold), whose end waits for them. */
	coil__task_body_t *body;
	/* COIL__CANCEL_*: PENDING, deliver -ECANCELED at the next await;
	 * HELD (a count), cancellers (or a listing) on other threads may be
	 * looking at the body and its `waiting` (see coil__task_suspend_mt).
	 * Changed under clock (by read-modify-writes: they change apart),
	 * read without it by the task's waits and its end, where any bit set
	 * sends them to the locked path. */
	_Atomic uint8_t cancel;
	/* The handle came from the runtime's pool for outside spawners
	 * (coil__task_free_handle): set at the spawn. */
	bool pooled;
	/* NULL: "Task-<id>". Changed under clock, which listings on other
	 * workers take to copy it (a rename frees the old name). */
	char *name;
	_Atomic int32_t cancel_requests;
	/* The cancellation lock (coil__mt()): cancel, the body's
	 * cancel_woken and cancel_msg, lookers' holds (see
	 * coil__task_suspend_mt); changes of name. Taken
	 * before a waiter's source lock, never after; distinct from fut.lock
	 * so that tasks awaiting each other cannot deadlock their
	 * cancellers. */
	coil__spin_t clock;
};

/* A handle's state: it leaves PENDING once, to CANCELLED (a canceller,
 * any thread) or DONE (the loop, which runs or drops it), by a
 * compare-and-swap when a canceller may hold it (see runtime/loop.c). */
enum { COIL__H_PENDING = 0, COIL__H_CANCELLED, COIL__H_DONE };

/*
 * A call_soon or timer callback. Written before it is scheduled, then
 * read-only but for `state` and `refs` (atomics: the user's reference may
 * be cancelled and released on any thread) and `run` and `timer`, which
 * belong to the loop's thread (its ready queue and heap).
 */
struct coil_handle {
	coil__runnable_t run;
	coil__timer_t timer;
	coil_loop_t *loop;
	coil_cb cb;
	void *arg;
	atomic_uint refs;         /* the loop's while scheduled, the user's */
	coil_cb dropped;          /* thread-safe handles: runs instead of cb
				   * if the loop closes first (NULL: none) */
	_Atomic uint8_t state;    /* COIL__H_* */
	bool is_timer;
};

/* A list of free task handles (through their first word) or bodies
 * (through run.node.next) in a runtime's pool, and its length. */
struct coil__pool_batch {
	void *head;
	size_t n;
};
/* The most batches of each kind a runtime's pool keeps (of up to
 * COIL__POOL_BATCH each: 8,192 handles and as many bodies). */
#define COIL__FPOOL_BATCHES 128

/* A batch of a home worker's task bodies that ended on another worker
 * (coil_loop_t.ended). */
struct coil__ended {
	struct coil__task_body *head, *tail; /* through run.node.next */
	unsigned n;
	/* Those of tasks on the home's own list (coil_loop_t.own), which go
	 * back to the home for it to unlink. */
	struct coil__task_body *own_head, *own_tail;
	unsigned own_n;
};

/* Stacks a loop keeps from ended tasks for the next ones to start (task.c):
 * a few, so that a chain of tasks ending in a row (a tree of awaits
 * unwinding) leaves a stack for each of the next tasks started without
 * going through the stack pool, and so that a burst of endings still gives
 * its stacks back to the pool, which trims what stays idle. */
#define COIL__SPARE_STACKS 8

struct coil_loop {
	coil__ctx_t sched;        /* the loop's own context while it runs */
	coil_coro_t *sched_cur;   /* coil__cur to restore when a task yields */
	coil__fifo_t ready;
	coil__heap_t timers;
	uint64_t timer_seq;
	coil__ring_t *ring;
	const unsigned *ring_inflight; /* the ring's operations in flight */
	int64_t vnow;             /* the virtual clock, when enabled */
	coil_task_t *current;
	/* Standalone loops (run_once): what is left of the current round's
	 * batch of ready items, and whether a suspending task may hand the
	 * loop straight to the next ready task (coil__task_switch_out). */
	size_t batch;
	unsigned handoff_budget;  /* rounds a hand-off may still start (0
				   * unless COIL__HANDOFF_ROUNDS) */
	uint8_t handoff;          /* COIL__HANDOFF_* */
	/* Live tasks (their bodies): those spawned here by other threads and
	 * by callbacks, under tasks_lock. */
	coil__list_t tasks;
	size_t ntasks;
	/* The tasks this worker's own tasks spawned here (a runtime's worker
	 * where the kernel has membarrier): changed by this thread only,
	 * without a lock, inside own_busy (task.c, own_begin). Other threads
	 * read it under tasks_lock with the own-list protocol (task.c,
	 * own_read_begin). nown counts it (this thread writes it; any thread
	 * may read it); bodies of its tasks that ended on other workers stay
	 * in it until this worker unlinks them (own_ret). own_window counts
	 * this worker's tasks' spawns since own_judge, which sets own_off
	 * while many of them end elsewhere: spawns go on `tasks` then. */
	coil__list_t own;
	_Atomic size_t nown;
	atomic_uchar own_busy;
	bool own_off;
	unsigned own_window;
	/* Async generators started on this loop and not ended
	 * (runtime/gen/gen.c), under gens_lock: a consumer task that moved
	 * to another worker ends its generator there. */
	coil__list_t gens;
	coil__spin_t gens_lock;
	/* Futures alive on this loop, +1 until closed: standalone loops only.
	 * A runtime counts its loops' futures itself (coil__loop_ref). */
	_Atomic uint32_t refs;
	/* Runtime workers: futures of this runtime made minus futures freed
	 * on this worker's thread (either sign). Only this thread writes it;
	 * shutdown adds them up once the workers have been joined. */
	_Atomic int64_t live;
	bool virtual_clock;
	bool running;
	bool stopping;
	bool closed;
	bool debug;               /* debug mode (coil/debug.h) */
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
	/* Ended tasks' stacks for the next ones, newest last. An array of
	 * the loop's own rather than a list through the stacks' descriptors:
	 * those lie two to a cache line, and a stack that came to this worker
	 * with a task that moved would otherwise have its descriptor written
	 * here at every task's start and end, beside one the other worker
	 * writes as often. */
	coil__stack_t *spare[COIL__SPARE_STACKS];
	size_t spare_request;     /* the size they were asked for */
	unsigned nspare;          /* stacks in spare */
	char *name;
	pthread_t thread;         /* the thread running it */
	pid_t ring_tid;           /* the ring's submitter thread (kernel id) */
	bool ring_error_reported; /* a failed ring wait was reported once */
	/* The runtime, when the loop is one of its workers (else NULL).
	 * Read-mostly, read by submitting threads: kept off the lines that
	 * the inbox's writers and the owner write all the time. */
	coil_runtime_t *rt;
	unsigned index;           /* worker index */
	bool multi;               /* a runtime's worker (deques, even with
				   * one worker) */
	bool alone;               /* no other thread runs tasks that share
				   * objects with this loop's: a standalone
				   * loop, or a one-worker runtime's worker */
	bool any;                 /* the COIL_ANY_WORKER stand-in of rt */
	/* Other workers, once per batch: bodies of tasks of `own` that ended
	 * there, handed back (through run.node.next) for this worker to
	 * unlink and recycle, and how many (counted out of nown until then:
	 * it may go below 0 for a while); and the count of this worker's
	 * tasks that ended elsewhere, either list, since own_judge (task.c).
	 * A lister on another thread sets own_want while it reads `own`. */
	_Alignas(64) _Atomic(struct coil__task_body *) own_ret;
	_Atomic int64_t own_gone;
	atomic_size_t own_elsewhere;
	atomic_uchar own_want;
	/* Any thread: call_soon_threadsafe's inbox (and tasks pinned here,
	 * woken from other threads). A cache line of its own: submitting
	 * threads write it on every call, and an owner-only field beside it
	 * would bounce between their core and the worker's on every callback
	 * the worker runs. */
	_Alignas(64) coil__spin_t inbox_lock;
	coil__fifo_t inbox;
	/* Thread-safe call handles that ran here, for the next callers to
	 * reuse (under inbox_lock): a thread that only submits would
	 * otherwise allocate fresh memory for every call, which the loop's
	 * thread frees into its own arena. */
	coil__fnode_t *hfree;
	size_t nhfree;
	atomic_size_t inbox_len;
	atomic_bool sleeping;     /* in (or entering) its ring's wait */
	/* Owner only, from the next cache line: hret is the loop thread's own
	 * list of thread-safe handles that ran since it last took the lock. */
	_Alignas(64) coil__fnode_t *hret;
	size_t nhret;
	/* Runtime workers: task handles and bodies on their way back to the
	 * runtime's pool for outside spawners (owner only). */
	void *rhandles;
	size_t nrhandles;
	struct coil__task_body *rbodies;
	size_t nrbodies;
	coil__spin_t tasks_lock;  /* tasks, ntasks when coil__mt() */
	/* Bodies of other workers' tasks that ended here (and of this
	 * worker's own tasks spawned from outside, whose spawner takes the
	 * list lock for each spawn), per home worker (rt->n entries, by
	 * index; owner only), still linked in their home's
	 * `tasks` (listings skip them: their futures are done, see
	 * coil__task_listed) and holding their handle's loop reference. A
	 * home's batch is unlinked here, under its tasks_lock, once it holds
	 * COIL__TICK bodies and at every round of the worker's loop
	 * (coil__loop_ended_flush): one lock per batch instead of one per
	 * end, and the bodies recycle into this worker's caches, where they
	 * are warm, instead of costing the home (or an outside spawner) a
	 * cache miss each. */
	struct coil__ended *ended;
	unsigned nended;          /* homes with a batch */
	/* Multi-worker scheduling (multi): the owner's side. */
	coil__task_body_t *lifo;  /* the task just woken by a running task */
	unsigned lifo_run;        /* LIFO-slot steps in a row */
	uint32_t tick;
	uint64_t rng;
	bool searching;
	bool in_idle;             /* on rt's idle list (under idle_lock) */
	coil__deque_t deque;      /* runnable tasks; thieves steal the top */
	coil__metrics_t metrics;  /* counters and trace state (debug/metrics_int.h) */
};

/* The most workers a runtime may have (opts->workers, COIL_WORKERS). */
#define COIL__MAX_WORKERS 4096

/* rt->stop. */
enum { COIL__RT_RUN, COIL__RT_STOP, COIL__RT_FINISH };

/* A runtime: N workers (sched/runtime.c). */
struct coil_runtime {
	/* Read-mostly (an idle worker's spin reads `stop` all the time):
	 * kept off the lines written on every spawn or park, which the
	 * _Alignas below start. Allocated 64-byte aligned. */
	unsigned n;
	coil_loop_t **loops;
	coil_loop_t *any;         /* coil_runtime_loop(rt, COIL_ANY_WORKER) */
	atomic_int stop;          /* COIL__RT_RUN, _STOP (leave the loops) or
				   * _FINISH (shutdown: coil_runtime_stop
				   * is ignored) */
	atomic_int stop_pipe[2];  /* wait_stopped's pipe (async-signal-safe) */
	atomic_bool shutting_down;
	_Alignas(64) coil__inject_t inject; /* runnables any worker may take */
	_Alignas(64) atomic_uint nsearching; /* workers looking for work to steal */
	atomic_uint nidle;        /* workers parked (or about to) */
	pthread_mutex_t idle_lock;
	unsigned *idle;           /* parked worker indices, a stack */
	unsigned nidle_list;
	/* Futures of this runtime made and freed off its workers, plus
	 * COIL__RT_BIAS until shutdown folds the workers' counts in: the one
	 * that takes it to zero then frees the loops and the runtime. */
	_Alignas(64) _Atomic int64_t live_foreign;
	/* Task handles and bodies for spawns from threads outside the
	 * runtime (coil_runtime_spawn), which have no cache of their own:
	 * workers hand back, in batches, what tasks spawned that way leave
	 * behind, so that such a thread reuses memory instead of touching
	 * fresh pages for every task (under fpool_lock). They are kept as
	 * the batches the workers gave (coil__runtime_pool_give), taken
	 * whole: moving a list node by node would cost a cache miss per node
	 * under the lock, the nodes' lines being the giver's. */
	coil__spin_t fpool_lock;
	struct coil__pool_batch fhandles[COIL__FPOOL_BATCHES];
	struct coil__pool_batch fbodies[COIL__FPOOL_BATCHES];
	unsigned nfhandles, nfbodies; /* batches held */
	_Alignas(64) pthread_mutex_t lock; /* threads, state below */
	pthread_mutex_t wait_mu;  /* shutdown waiting for the tasks to end */
	pthread_cond_t cond;
	atomic_bool waiting;
	/* Background worker threads live until shutdown: a stopped worker
	 * parks (park_cond, under lock) rather than exits, so that its ring,
	 * whose operations only its thread may reap, stays with it. */
	pthread_cond_t park_cond;
	pthread_t *threads;
	bool *thread_created;
	bool *want_run;           /* told to run its loop */
	bool *in_loop;            /* running its loop */
	unsigned run_gen;         /* bumped by every start of the workers */
	uintptr_t block_on_gen;   /* bumped by every block_on (main_done) */
	bool exiting;             /* shutdown: threads leave for good */
	bool started;
	bool block_on_active;
	bool pin;
	char name[16];
	int *cpus;                /* the affinity mask's CPUs, for pinning */
	unsigned ncpus;
};

/* The calling thread's running loop. */
extern __thread coil_loop_t *coil__running_loop;

/*
 * Objects of one kind have one size, so any loop's cache can take them:
 * they come from and go back to the cache of the loop running on the calling
 * thread (a task handle made on worker A and freed on worker B goes to B's
 * cache), and to the allocator when no loop runs there or it is closed
 * (the caches are drained then). `field` names the cache in coil_loop_t.
 */
#define coil__obj_get(field, size)                                            \
	(coil__running_loop ? coil__objcache_get(&coil__running_loop->field)  \
			    : coil__malloc(size))
#define coil__obj_put(field, size, p)                                         \
	do {                                                                  \
		coil_loop_t *l_ = coil__running_loop;                         \
		if (l_ && !l_->closed)                                        \
			coil__objcache_put(&l_->field, (p));                  \
		else                                                          \
			coil__free((p), (size));                              \
	} while (0)

int64_t coil__clock_ns(void);
int64_t coil__loop_now(const coil_loop_t *loop);
static inline void coil__loop_push_ready(coil_loop_t *loop, coil__runnable_t *r)
{
	coil__fifo_push(&loop->ready, &r->node);
}
/* Any thread: queues r on loop's inbox and wakes the loop. Returns false if
 * the loop is closed. */
bool coil__loop_push_inbox(coil_loop_t *loop, coil__runnable_t *r);
/* Makes a task runnable: on the running worker (LIFO slot when woken by a
 * running task, else its deque), on its home worker when pinned, on the
 * ready FIFO of a one-worker loop, or through the injection queue from a
 * foreign thread (sched/runtime.c). Its rstate is already QUEUED. */
void coil__task_enqueue_slow(coil__task_body_t *b);
static inline void coil__task_enqueue(coil__task_body_t *b)
{
	coil_loop_t *home = b->worker;
	/* The common case of a one-worker loop, woken from its own thread. */
	if (!home->multi && coil__running_loop == home)
		coil__loop_push_ready(home, &b->run);
	else
		coil__task_enqueue_slow(b);
}
/* After a task step that did not end the task (runtime/loop.c): a yield
 * goes back to a run queue, a wait becomes WAITING or, if woken while it
 * was switching out, is queued. */
void coil__task_switched_out(coil_loop_t *loop, coil__task_body_t *b);

/* Makes b the running task of `loop` for a step and returns the coroutine
 * to switch into (the loop's dispatch and the hand-off below), and in *arg
 * what to hand over with the switch: the result of a tail wait, whose
 * wait ends here (coil__task_wait_tail), else 0. */
static inline __attribute__((always_inline)) coil_coro_t *
coil__task_step_begin(coil_loop_t *loop, coil__task_body_t *b, intptr_t *arg)
{
	COIL__M_INC(loop, steps);
	coil_coro_t *c = b->resume;
	c->state = COIL_CORO_RUNNING;
	c->awaiting = false;
	atomic_store_explicit(&b->rstate, COIL__TS_RUNNING, memory_order_relaxed);
	b->worker = loop;
	b->coro.ret_ctx = &loop->sched;
	loop->current = b->task;
	coil__cur = c;
	*arg = 0;
	if (b->tail) {
		b->tail = false;
		atomic_store_explicit(&b->cancel_woken, false, memory_order_relaxed);
		*arg = atomic_load_explicit(&b->waiting, memory_order_relaxed)->result;
		atomic_store_explicit(&b->waiting, NULL, memory_order_relaxed);
	}
	return c;
}

/*
 * Hand-off between tasks on a standalone loop. A task that suspends while
 * the next ready item is a suspended task switches straight into it, saving
 * the switch into the loop and back and the loop's round: in a ping-pong of
 * two tasks that is half the work of a wake-up. The order is asyncio's all
 * the same: within a round the next item of the round's batch is the one
 * the loop would run next; once the batch is done, the next round starts
 * right here only if the loop's round in between would have nothing to do
 * (no thread-safe calls in the inbox, nothing in the ring), and at most
 * COIL__TICK times in a row before the loop makes a round of its own,
 * which looks at the clock and the timers. Stopping the loop spends that
 * budget, so the loop's round comes next; a round's batch runs to its end
 * either way. On a standalone loop only this thread runs
 * its tasks, so the task switching out can be marked waiting (or queued,
 * if a wake-up came in meanwhile) before it is off its stack: nobody can
 * resume it until this thread is done with it. The same holds for the one
 * worker of a one-worker runtime (another thread's wake-up only queues the
 * task where this worker takes it from), which hands off within the batch
 * of its ready FIFO (tasks woken by their I/O) but never starts a round:
 * its round also looks at its deque, the injection queue and the stop
 * flag. Inline in every suspension point: it is the whole of a wake-up's
 * cost in a ping-pong.
 */
enum {
	COIL__HANDOFF_NONE = 0,   /* every step goes through the loop */
	COIL__HANDOFF_BATCH,      /* within the batch of a round only */
	COIL__HANDOFF_ROUNDS,     /* and on into the next rounds */
};

static inline __attribute__((always_inline)) coil__task_body_t *
coil__handoff_next(coil_loop_t *loop)
{
	if (!loop->batch) {
		if (!loop->handoff_budget || !loop->ready.len ||
		    atomic_load_explicit(&loop->inbox_len, memory_order_acquire) ||
		    *loop->ring_inflight)
			return NULL;
		loop->handoff_budget--;
		loop->batch = loop->ready.len;
	}
	coil__fnode_t *node = loop->ready.head;
	coil__runnable_t *r = coil__container_of(node, coil__runnable_t, node);
	if (r->kind != COIL__RUN_TASK)
		return NULL;
	coil__task_body_t *b = coil__container_of(r, coil__task_body_t, run);
	if (!b->started || b->resume->state != COIL_CORO_SUSPENDED)
		return NULL;
	coil__fifo_pop(&loop->ready);
	loop->batch--;
	/* The task after it resumes next: the frames its switch pops, on a
	 * stack the kernel's copies may have evicted, are on their way while
	 * this one runs. */
	coil__fnode_t *after = loop->ready.head;
	if (after) {
		coil__runnable_t *ar = coil__container_of(after, coil__runnable_t, node);
		coil__task_body_t *ab = coil__container_of(ar, coil__task_body_t, run);
		if (ar->kind == COIL__RUN_TASK && ab->started) {
			const char *sp = ab->resume->ctx.sp;
			__builtin_prefetch(sp, 0, 3);
			__builtin_prefetch(sp + 56, 0, 3);
		}
	}
	return b;
}

/* From inside a task on `loop` that waits (the task's innermost coroutine
 * c, its body cur; a yield switches out on its own): switches the task out,
 * straight into the next ready task where the loop allows it
 * (coil__handoff_next), else to the loop. mt is coil__mt(). */
static inline __attribute__((always_inline)) void
coil__task_switch_out(coil_loop_t *loop, coil_coro_t *c, coil__task_body_t *cur, bool mt)
{
	coil__task_body_t *b;
	if (loop->handoff && (b = coil__handoff_next(loop))) {
		/* coil__task_switched_out's common case: one thread. */
		if (!mt && atomic_load_explicit(&cur->rstate, memory_order_relaxed) == COIL__TS_RUNNING)
			atomic_store_explicit(&cur->rstate, COIL__TS_WAITING, memory_order_relaxed);
		else
			coil__task_switched_out(loop, cur);
		intptr_t arg;
		coil_coro_t *n = coil__task_step_begin(loop, b, &arg);
		coil__ctx_jump(&c->ctx, &n->ctx, arg, false);
		return;
	}
	coil__coro_switch_out(c, &loop->sched);
}

/* Queues a task just spawned on `loop` (sched/runtime.c). */
void coil__task_enqueue_new(coil_loop_t *loop, coil__task_body_t *b);
/* After the last task of one of rt's loops ended (sched/runtime.c). */
void coil__runtime_tasks_gone(coil_runtime_t *rt);
/* Any thread: queues a runnable (task or callback) on rt's injection queue
 * and wakes a parked worker. Returns false once rt is shutting down. */
bool coil__runtime_inject(coil_runtime_t *rt, coil__runnable_t *r);
/* A task that yielded (coil_sleep(0)) on `loop` goes back to a queue. */
void coil__task_yielded(coil_loop_t *loop, coil__task_body_t *b);
/* Worker side of the scheduler (sched/runtime.c): the next task step (or
 * injected callback) for this worker, or NULL; whether any queue this
 * worker could take from holds something; parking. */
coil__runnable_t *coil__sched_next(coil_loop_t *loop);
/* Moves the task in loop's LIFO slot, if any, to its deque, where other
 * workers may steal it: before the worker runs something else than that
 * task, which may not yield for a long time. */
void coil__sched_lifo_release(coil_loop_t *loop);
bool coil__runtime_has_work(coil_loop_t *loop);
bool coil__sched_park_begin(coil_loop_t *loop);
void coil__sched_park_end(coil_loop_t *loop);
/* Steps between looks at the injection queue, the ring and the timers. */
#define COIL__TICK 61
/* Runs a worker's dispatch loop until it is told to leave (loop.c). */
void coil__worker_loop(coil_loop_t *loop);
/* Makes a worker loop for rt, and frees one (loop.c). */
int coil__loop_new_worker(coil_loop_t **out, coil_runtime_t *rt, unsigned index,
			  const coil_runtime_opts_t *opts);
int coil__loop_enter(coil_loop_t *loop);
void coil__loop_leave(coil_loop_t *loop);
/* Cancels and finishes what is left on a worker loop (on its thread), then
 * closes it (any thread, once no worker runs). */
void coil__loop_finish_tasks(coil_loop_t *loop, int round);
void coil__loop_close_worker(coil_loop_t *loop);
void coil__loop_free_worker(coil_loop_t *loop);
int coil__loop_add_timer(coil_loop_t *loop, coil__timer_t *t, int64_t when);
void coil__loop_del_timer(coil_loop_t *loop, coil__timer_t *t);
void coil__loop_unref_slow(coil_loop_t *loop);
void coil__runtime_unref_foreign(coil_runtime_t *rt);
#define COIL__RT_BIAS ((int64_t)1 << 62)

/*
 * A future holds its loop (and, for a worker's loop, its runtime) until it
 * is freed. On a runtime the count is split by thread so that making and
 * freeing futures never bounces a shared cache line between workers: a
 * worker counts in its own loop's `live`, other threads in the runtime's
 * atomic live_foreign.
 */
static inline void coil__loop_ref(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	if (rt) {
		coil_loop_t *me = coil__running_loop;
		if (me && me->rt == rt)
			atomic_store_explicit(&me->live,
					      atomic_load_explicit(&me->live, memory_order_relaxed) + 1,
					      memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&rt->live_foreign, 1, memory_order_relaxed);
	} else if (coil__mt()) {
		atomic_fetch_add_explicit(&loop->refs, 1, memory_order_relaxed);
	} else {
		atomic_store_explicit(&loop->refs,
				      atomic_load_explicit(&loop->refs, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
}

static inline void coil__loop_unref(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	if (rt) {
		coil_loop_t *me = coil__running_loop;
		if (me && me->rt == rt)
			atomic_store_explicit(&me->live,
					      atomic_load_explicit(&me->live, memory_order_relaxed) - 1,
					      memory_order_relaxed);
		else
			coil__runtime_unref_foreign(rt);
		return;
	}
	/* Plain while one thread touches the loop: it is open (a closed
	 * loop's futures may be released on a pool's thread too, see
	 * refs_plain in runtime/future.c). The last reference goes
	 * through the atomic count all the same. */
	if (!coil__mt() && !loop->closed) {
		uint32_t r = atomic_load_explicit(&loop->refs, memory_order_relaxed) - 1;
		if (r) {
			atomic_store_explicit(&loop->refs, r, memory_order_relaxed);
			return;
		}
	}
	coil__loop_unref_slow(loop);
}

/* coil__loop_ref and coil__loop_unref of the running loop `me`, on its
 * thread, when it is a runtime's worker or coil__mt() is false (both
 * counts are then plain), and, for the unref, while it is open (its owner's
 * reference keeps the count above 0). */
static inline __attribute__((always_inline)) void coil__loop_ref_own(coil_loop_t *me)
{
	if (me->rt)
		atomic_store_explicit(&me->live,
				      atomic_load_explicit(&me->live, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	else
		atomic_store_explicit(&me->refs,
				      atomic_load_explicit(&me->refs, memory_order_relaxed) + 1,
				      memory_order_relaxed);
}

static inline __attribute__((always_inline)) void coil__loop_unref_own(coil_loop_t *me)
{
	if (me->rt)
		atomic_store_explicit(&me->live,
				      atomic_load_explicit(&me->live, memory_order_relaxed) - 1,
				      memory_order_relaxed);
	else
		atomic_store_explicit(&me->refs,
				      atomic_load_explicit(&me->refs, memory_order_relaxed) - 1,
				      memory_order_relaxed);
}

/*
 * As coil_loop_call_soon_threadsafe, but if the loop is closed before cb has
 * run, dropped(arg) (if not NULL) runs instead, once, on the thread closing
 * the loop: when this returns 0, exactly one of the two runs. Any thread.
 */
int coil__loop_call_soon_threadsafe_ex(coil_loop_t *loop, coil_cb cb,
				       coil_cb dropped, void *arg);

/* A future's fields, as made (without its loop's reference). */
static inline __attribute__((always_inline)) void
coil__future_init_fields(coil_future_t *f, coil_loop_t *loop, bool is_task)
{
	atomic_init(&f->refs, 1);
	atomic_init(&f->lock.v, 0);
	atomic_init(&f->state, COIL__F_PENDING);
	f->is_task = is_task;
	atomic_init(&f->retrieved, false);
	f->code = 0;
	f->loop = loop;
	f->result = NULL;
	f->dtor = NULL;
	f->msg = NULL;
	coil__list_init(&f->cbs);
}

static inline void coil__future_init(coil_future_t *f, coil_loop_t *loop, bool is_task)
{
	coil__future_init_fields(f, loop, is_task);
	coil__loop_ref(loop);
}

/* Completes f unless it is done already (returns false then, owning
 * nothing). Any thread. */
bool coil__future_finish(coil_future_t *f, int state, int code, void *result,
			 coil_dtor dtor, char *msg);
/* The same for a task's future on the thread of its loop, when that loop
 * runs all of its tasks there (a standalone loop, a one-worker runtime):
 * without the future's lock (runtime/future.c, task_solo). */
bool coil__future_finish_solo(coil_future_t *f, int state, int code, void *result,
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
 *      (w->cb.link is free for the primitive's own list), under the
 *      primitive's lock;
 *   3. calls coil__task_suspend(w) (after dropping its lock), which returns
 *      the code passed to coil__waiter_wake: 0 or the primitive's own code
 *      when woken normally, -ECANCELED when the task was cancelled (the hook
 *      has already unlinked w), COIL_ECLOSED when the task is force-closed.
 *
 * Step 1 comes before the primitive's lock is taken (it may take the
 * task's cancellation lock, which is always taken first).
 *
 * Waking is a claim: whoever wins coil__waiter_claim(w) (one compare and
 * swap) is the only one to wake w, and calls coil__waiter_wake(w, code).
 * The side that completes the wait does, under its lock: claim; if won,
 * unlink w and hand over what it hands over (an item, the lock), which is
 * the waiter's from then on, even if a cancellation arrives before the task
 * runs again: that one is delivered at its next await; if lost, leave w
 * linked and go on to the next waiter: a canceller or a timer owns w and
 * the cancel hook will unlink it. The canceller claims w, then calls the
 * hook (which takes the primitive's lock to unlink w), then wakes it. Wake
 * after dropping the primitive's lock: a woken task on another worker may
 * destroy the primitive at once. A timer that claims w leaves it linked in
 * the primitive: the waiting side unlinks it itself once it runs. Cancelling
 * another task after dropping a lock may land after that task has moved on
 * (to an unrelated await): decide under the lock what must be cancelled and
 * keep the state consistent until the cancellation has landed.
 *
 * Timers: a wait that a deadline can end arms w's timer with
 * coil__waiter_timer_arm (on the running loop); the timer claims w when it
 * fires and wakes it with 0. The task then stays on that worker until the
 * wait is over, and calls coil__waiter_timer_done(w) after
 * coil__task_suspend returns (whatever woke it): that takes the timer out
 * of the heap if it is still there, and unpins the task.
 */
/* The rest of coil__suspend_check: 0 when the running coroutine's task may
 * wait, else the error to return. */
int coil__suspend_check_slow(void);
static inline int coil__suspend_check(coil_task_t **out)
{
	coil_coro_t *c = coil__cur;
	coil_task_t *t;
	/* The common case (a task, not closing, no cancellation pending)
	 * without a call or a lock; everything else takes the slow path. */
	if (__builtin_expect(c && (t = c->task) && !c->closing &&
			     !atomic_load_explicit(&t->cancel, memory_order_relaxed), 1)) {
		*out = t;
		return 0;
	}
	/* No address of a local escapes: the caller's task pointer stays in
	 * a register, and a tail wait (coil__task_wait_tail) stays a jump. */
	int rc = coil__suspend_check_slow();
	if (!rc)
		*out = coil__cur->task;
	return rc;
}

static inline void coil__waiter_init(coil__waiter_t *w, coil_task_t *t,
				     void (*cancel)(coil__waiter_t *w),
				     void *source)
{
	w->cb.kind = COIL__CB_WAITER;
	w->task = t;
	w->cancel = cancel;
	w->source = source;
	w->timer_loop = NULL;
	w->result = 0;
	atomic_init(&w->claimed, 0);
	w->what = NULL;
}

/* Returns true for exactly one caller per wait: the one that may wake w. */
static inline __attribute__((always_inline)) bool coil__waiter_claim_x(coil__waiter_t *w, bool mt)
{
	if (!mt) {
		if (atomic_load_explicit(&w->claimed, memory_order_relaxed))
			return false;
		atomic_store_explicit(&w->claimed, 1, memory_order_relaxed);
		return true;
	}
	unsigned char z = 0;
	return atomic_compare_exchange_strong_explicit(&w->claimed, &z, 1,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

static inline bool coil__waiter_claim(coil__waiter_t *w)
{
	return coil__waiter_claim_x(w, coil__mt());
}

/* Suspends the current task on w until coil__waiter_wake. Returns w's
 * result. The caller has registered w with its source. */
int coil__task_suspend_mt(coil__waiter_t *w);
/*
 * Looks at another thread's task (coil__task_suspend_mt): whether
 * cancellers fence with membarrier (set once, before the first
 * multi-worker runtime starts: coil__cancel_fence_setup); under t's clock,
 * coil__task_hold marks the task HELD in t->cancel where it may be running
 * on another thread, with a process-wide barrier after it; from then on
 * the body read from t->body (coil__task_body_held), and the waiter read
 * from its `waiting`, stay valid until coil__task_unhold(t, returned
 * value).
 */
extern bool coil__cancel_fence_ok;
void coil__cancel_fence_setup(void);
bool coil__task_hold(coil_task_t *t);
void coil__task_unhold(coil_task_t *t, bool held);
static inline coil__task_body_t *coil__task_body_held(coil_task_t *t)
{
	return __atomic_load_n(&t->body, __ATOMIC_ACQUIRE);
}
/* coil_task_cancel(tasks[i], NULL) for each, with one barrier for all
 * (the tasks' owners keep them alive meanwhile). */
void coil__task_cancel_all(coil_task_t **tasks, size_t n);
/* A cancellation pending at suspension: withdraws w and returns
 * -ECANCELED if nobody claimed it yet, else 0 (it is woken normally). */
int coil__task_suspend_cancelled(coil__waiter_t *w);
/* The start of a wait on one thread (or on a loop that is alone), for w's
 * task's body b and the running coroutine c (coil__cur): nothing can cancel
 * the task between coil__suspend_check and here but this thread, through
 * the same flag, and the task's cancellation lock is not needed. Returns 0
 * (the task is marked suspended on w; switch out next) or the error the
 * await returns. b->resume is set before the waiter is published: whoever
 * claims it may look at the task's coroutines (a force-close at
 * shutdown). */
static inline __attribute__((always_inline)) int
coil__task_wait_begin(coil__waiter_t *w, coil__task_body_t *b, coil_coro_t *c)
{
	b->resume = c;
	if (__builtin_expect(atomic_load_explicit(&w->task->cancel, memory_order_relaxed), 0)) {
		int rc = coil__task_suspend_cancelled(w);
		if (rc)
			return rc;
	}
	c->state = COIL_CORO_SUSPENDED;
	c->awaiting = true;
	atomic_store_explicit(&b->waiting, w, memory_order_relaxed);
	return 0;
}

/* As coil__task_suspend_x, given w's task's body b and the running
 * coroutine c (coil__cur). */
static inline __attribute__((always_inline)) int
coil__task_suspend_in(coil__waiter_t *w, coil__task_body_t *b, coil_coro_t *c, bool mt)
{
	if (mt)
		return coil__task_suspend_mt(w);
	int rc = coil__task_wait_begin(w, b, c);
	if (rc)
		return rc;
	/* The running task's worker is the running loop. */
	coil__task_switch_out(b->worker, c, b, false);
	atomic_store_explicit(&b->waiting, NULL, memory_order_relaxed);
	atomic_store_explicit(&b->cancel_woken, false, memory_order_relaxed);
	return w->result;
}

/*
 * Tail waits. A context switch made by a call that returns afterwards makes
 * the resumed task return through frames whose return addresses the CPU's
 * return predictor took from the task that switched out: each such return
 * is mispredicted (4-6 ns per switch against 12-19 here, measured with the
 * bare switch). A primitive whose await has nothing left to do once woken
 * but return the waiter's result can instead end with
 * `return coil__task_wait_tail(w, b, c)`: it compiles to a jump into the
 * switch, and the task resumes straight in the await's caller. For that,
 * no local of the await's frame may have its address taken (the waiter
 * lives in the coroutine's wait slot below, anything handed over goes
 * through a pointer into the caller's frame), and whoever resumes the task
 * ends the wait and hands the result over (coil__task_step_begin). One
 * thread only (coil__mt() false): with several workers the wait ends on
 * the task's side (coil__task_suspend_mt).
 *
 * The wait slot: COIL__WAIT_SLOT bytes at the top of each coroutine's
 * stack, above its first frame (coil__coro_prepare), on the page its first
 * frames touch anyway.
 */
#define COIL__WAIT_SLOT 192
static inline void *coil__coro_wait_slot(coil_coro_t *c)
{
	return (char *)c->ctx.stack_lo + c->ctx.stack_size - COIL__WAIT_SLOT;
}

/* The rest of a tail wait (below) once the task is marked suspended: with
 * a hand-off to the next ready task where the loop allows it and the task
 * was not woken meanwhile (a task woken while switching out goes through
 * the loop, which queues it again: coil__task_switched_out), else into the
 * loop. */
static inline __attribute__((always_inline)) int
coil__task_wait_switch(coil__task_body_t *b, coil_coro_t *c)
{
	b->tail = true;
	coil_loop_t *loop = b->worker;
	coil__task_body_t *n;
	if (loop->handoff &&
	    atomic_load_explicit(&b->rstate, memory_order_relaxed) == COIL__TS_RUNNING &&
	    (n = coil__handoff_next(loop))) {
		atomic_store_explicit(&b->rstate, COIL__TS_WAITING, memory_order_relaxed);
		intptr_t arg;
		coil_coro_t *nc = coil__task_step_begin(loop, n, &arg);
		return coil__ctx_jump(&c->ctx, &nc->ctx, arg, false);
	}
	return coil__ctx_jump(&c->ctx, &loop->sched, 0, false);
}

/* As coil__task_suspend_in on one thread, as a tail wait (above): w sits
 * in c's wait slot, b is its task's body, c the running coroutine. */
static inline __attribute__((always_inline)) int
coil__task_wait_tail(coil__waiter_t *w, coil__task_body_t *b, coil_coro_t *c)
{
	int rc = coil__task_wait_begin(w, b, c);
	if (rc)
		return rc;
	return coil__task_wait_switch(b, c);
}

/* As coil__task_wait_tail, for a caller that has just seen no cancellation
 * pending (t->cancel) on this thread, with nothing run since: on one
 * thread nothing else could have set it. */
static inline __attribute__((always_inline)) int
coil__task_wait_tail_checked(coil__waiter_t *w, coil__task_body_t *b, coil_coro_t *c)
{
	b->resume = c;
	c->state = COIL_CORO_SUSPENDED;
	c->awaiting = true;
	atomic_store_explicit(&b->waiting, w, memory_order_relaxed);
	return coil__task_wait_switch(b, c);
}

/*
 * The whole wait of a primitive whose waiters sit in a list and have
 * nothing to do once woken (a lock, an event, a semaphore): under the
 * primitive's `lock`, held by the caller (coil__lock), links a waiter for
 * the running task t at the tail of `list` with the given cancel hook,
 * source and description, drops the lock and suspends. Returns what
 * coil__task_suspend returns. On one thread it is a tail wait (call it as
 * `return coil__wait_in_list(...)`); with several workers the waiter sits
 * on the frame of coil__wait_in_list_mt.
 */
int coil__wait_in_list_mt(coil__list_t *list, coil__spin_t *lock, coil_task_t *t,
			  void (*cancel)(coil__waiter_t *w), void *source, const char *what);
static inline __attribute__((always_inline)) int
coil__wait_in_list(coil__list_t *list, coil__spin_t *lock, coil_task_t *t,
		   void (*cancel)(coil__waiter_t *w), void *source, const char *what)
{
	if (coil__mt())
		return coil__wait_in_list_mt(list, lock, t, cancel, source, what);
	/* One thread: the lock is not held (coil__lock is free). */
	coil_coro_t *c = coil__cur;
	coil__waiter_t *w = coil__coro_wait_slot(c);
	coil__waiter_init(w, t, cancel, source);
	w->what = what;
	coil__task_body_t *b = t->body;
	coil__list_push(list, &w->cb.link);
	return coil__task_wait_tail(w, b, c);
}

static inline __attribute__((always_inline)) int coil__task_suspend_x(coil__waiter_t *w, bool mt)
{
	return coil__task_suspend_in(w, w->task->body, coil__cur, mt);
}

static inline int coil__task_suspend(coil__waiter_t *w)
{
	return coil__task_suspend_x(w, coil__mt());
}
/* Makes w's task runnable with `result`. Only the claimer calls it. */
void coil__waiter_wake_mt(coil__waiter_t *w);
/* As coil__waiter_wake_x, for a waker that won coil__waiter_claim(w). */
static inline __attribute__((always_inline)) void
coil__waiter_wake_claimed_x(coil__waiter_t *w, int result, bool mt)
{
	w->result = result;
	if (mt) {
		coil__waiter_wake_mt(w);
		return;
	}
	coil__task_body_t *b = w->task->body;
	uint8_t s = atomic_load_explicit(&b->rstate, memory_order_relaxed);
	if (s == COIL__TS_WAITING) {
		atomic_store_explicit(&b->rstate, COIL__TS_QUEUED, memory_order_relaxed);
		coil__task_enqueue(b);
	} else if (s == COIL__TS_RUNNING) {
		atomic_store_explicit(&b->rstate, COIL__TS_NOTIFIED, memory_order_relaxed);
	}
}

static inline __attribute__((always_inline)) void coil__waiter_wake_x(coil__waiter_t *w, int result, bool mt)
{
	/* Claimed by whoever wakes it (a waker that unlinked it under its
	 * source's lock owns it even without coil__waiter_claim). */
	atomic_store_explicit(&w->claimed, 1, memory_order_relaxed);
	coil__waiter_wake_claimed_x(w, result, mt);
}

static inline void coil__waiter_wake(coil__waiter_t *w, int result)
{
	coil__waiter_wake_x(w, result, coil__mt());
}
/* Claims w and, if that won, wakes it. Returns whether it won. */
static inline bool coil__waiter_try_wake(coil__waiter_t *w, int result)
{
	if (!coil__waiter_claim(w))
		return false;
	coil__waiter_wake(w, result);
	return true;
}
/*
 * As coil__waiter_try_wake, for a waker on the thread of the loop that w's
 * task is pinned to (an I/O completion reaped by the task's own worker).
 * Once the claim is won nothing else may change the task's run state:
 * other threads change it only after winning a claim of their own, and a
 * pinned task that waits sits in no queue another worker could take it
 * from. So the state moves with plain stores and the task goes straight to
 * the loop's ready FIFO, as on a standalone loop, without the atomic
 * read-modify-write coil__waiter_wake_mt needs. Falls back to
 * coil__waiter_try_wake when the task is not pinned to the running loop.
 * The caller keeps the task waiting on w (an I/O request with a
 * completion still owed).
 */
static inline bool coil__waiter_try_wake_pinned(coil__waiter_t *w, int result)
{
	/* The task is waiting on w (its caller keeps it so), so its body and
	 * pins can be read before the claim. */
	coil__task_body_t *b = w->task->body;
	coil_loop_t *loop = coil__running_loop;
	if (__builtin_expect(!b->pins || b->worker != loop, 0))
		return coil__waiter_try_wake(w, result);
	/* On a loop that is the only one of its runtime (or a standalone
	 * one), the task's cancellers run on this thread too (coil/task.h):
	 * the claim needs no compare-and-swap. */
	if (!coil__waiter_claim_x(w, !loop->alone))
		return false;
	w->result = result;
	uint8_t s = atomic_load_explicit(&b->rstate, memory_order_relaxed);
	if (s == COIL__TS_WAITING) {
		atomic_store_explicit(&b->rstate, COIL__TS_QUEUED, memory_order_relaxed);
		coil__loop_push_ready(loop, &b->run);
	} else if (s == COIL__TS_RUNNING) {
		/* Switching out on this thread: the loop queues it then. */
		atomic_store_explicit(&b->rstate, COIL__TS_NOTIFIED, memory_order_relaxed);
	}
	return true;
}
/* Arms w's timer for loop time `when` on the running loop and pins the
 * task there until coil__waiter_timer_done. Returns 0 or -ENOMEM. */
int coil__waiter_timer_arm(coil__waiter_t *w, int64_t when);
/* After the wait: disarms w's timer if it has not fired; unpins. */
void coil__waiter_timer_done(coil__waiter_t *w);
/* Pins/unpins the calling task (internal counterpart of coil_task_pin). */
void coil__task_pin_cur(void);
void coil__task_unpin_cur(void);
void coil__task_free_body(coil_loop_t *loop, coil__task_body_t *b);
/* Whether a body found in a loop's `tasks` (under its lock) is a task not
 * done yet: one that ended on another worker stays there, done, until
 * that worker unlinks it (coil__loop_ended_flush). */
static inline bool coil__task_listed(const coil__task_body_t *b)
{
	return atomic_load_explicit(&b->task->fut.state, memory_order_acquire) ==
	       COIL__F_PENDING;
}
/* On a worker's thread: unlinks the bodies of other loops' tasks that
 * ended here from their homes and recycles them (see coil_loop_t.ended);
 * unless `force`, only those whose home's lock is free now. Those on a
 * home's own list go back to it (own_ret). First, unlinks and recycles
 * those of this loop's own list that came back. A worker forces it before
 * it parks or leaves, so that a shutdown counting the tasks left does not
 * wait for it. */
void coil__loop_ended_flush(coil_loop_t *loop, bool force);
/* Unlinks what came back to loop's own list (coil_loop_t.own_ret) once no
 * worker runs, freeing the bodies (runtime shutdown, before the loops
 * close). */
void coil__loop_own_drain_final(coil_loop_t *loop);
/* Live tasks of a worker loop (its two lists, less those ended elsewhere
 * and handed back): any thread; never below the true count, which is what
 * a runtime shutdown waiting for 0 needs (task.c). */
size_t coil__loop_live_tasks(coil_loop_t *loop);
/* Takes a reference to each live task of loop into *out (a libc array the
 * caller frees). Returns how many, or -ENOMEM. Threads as
 * coil__loop_tasks_each. */
int coil__loop_collect(coil_loop_t *loop, coil_task_t ***out);
/* Calls fn(b, arg) for the body of each task in loop's lists, under the
 * list lock and the own-list protocol: fn must not block, take a lock or
 * spawn. Any thread for a runtime's loop (the owner's, for a standalone
 * loop). Returns how many bodies it passed. */
size_t coil__loop_tasks_each(coil_loop_t *loop,
			     void (*fn)(struct coil__task_body *b, void *arg), void *arg);
/* Hands a worker's batch of spare handles and bodies to its runtime's
 * pool for outside spawners (sched/runtime.c). */
void coil__runtime_pool_give(coil_loop_t *loop);
/* Takes a batch of handles into *handles and one of bodies into *bodies
 * (each unless NULL, and if the pool has one: a batch not taken leaves
 * its argument as it was). Returns whether it took anything. Any thread. */
bool coil__runtime_pool_take(coil_runtime_t *rt, struct coil__pool_batch *handles,
			     struct coil__pool_batch *bodies);
#define COIL__POOL_BATCH 64

/* coil_task_factory_default, with `shared`: whether the handle (out) may
 * be released from a thread other than the loop's (coil_runtime_spawn). */
int coil__task_create(coil_loop_t *loop, coil_task_t **out, coil_fn fn, void *arg,
		      const coil_spawn_opts_t *opts, bool shared);

/* Keeps a task handle that is no longer used (its task was never set up,
 * or coil__task_free_handle) for the next spawns, or frees it. */
static inline void coil__task_cache_handle(coil_task_t *t)
{
	coil_loop_t *l = coil__running_loop;
	if (l && !l->closed && coil__cache_max != 0) {
		if (l->task_cache.n < l->task_cache.max || !l->rt) {
			coil__objcache_put(&l->task_cache, t);
			return;
		}
		*(void **)t = l->rhandles;
		l->rhandles = t;
		if (++l->nrhandles >= COIL__POOL_BATCH)
			coil__runtime_pool_give(l);
		return;
	}
	coil__free(t, sizeof(*t));
}

/* Frees a task handle whose last reference went. */
static inline void coil__task_free_handle(coil_task_t *t)
{
	coil_loop_t *l = coil__running_loop;
	if (__builtin_expect(l && l->rt && t->fut.loop != l && !t->pooled, 0)) {
		/* A handle another worker spawned with (its task moved
		 * here): back to that worker's memory, not into this
		 * worker's cache. A handle is not a whole number of cache
		 * lines, and one kept here would be reused for spawn after
		 * spawn beside the other worker's handles on the same lines:
		 * each locked instruction on either would pull the line
		 * across (W2 on two workers: 0.94, W1: 0.91). */
		coil__free_remote(t, sizeof(*t));
		return;
	}
	coil__task_cache_handle(t);
}
/* Frees the loop's pools of bodies and handles (loop close). */
void coil__task_pools_free(coil_loop_t *loop);
/* From a task t (running coroutine c, its own) on a runtime's worker that
 * awaits the task whose body is cb, which it just took from the bottom of
 * its deque: runs cb's task now, on this worker, switching to it and back
 * as to a call. w is t's waiter on that task's future, initialised and not
 * linked: if the task suspends, the worker links it then (a join turns
 * into a wait: coil__task_join_convert). Returns 1 when the task ended
 * here (its end done), 0 when t was woken through w (w->result holds the
 * wait's result). */
int coil__task_join_run(coil_loop_t *loop, coil_task_t *t, coil_coro_t *c,
			coil__task_body_t *cb, struct coil__waiter *w);
/* On a worker, after task body b switched out of a step it ran as a join:
 * links the joining task's waiter (b->join_w) as coil__task_suspend_mt
 * would have, marks it switched out, and does the same for its own joiner,
 * up the chain (loop.c, run_task). */
void coil__task_join_convert(coil_loop_t *loop, coil__task_body_t *b);

/* Before a task step: takes the stack on the first step, or ends a task
 * cancelled before it started. Returns false if there is nothing to run. */
bool coil__task_begin_slow(coil_loop_t *loop, coil__task_body_t *b);
static inline bool coil__task_begin(coil_loop_t *loop, coil__task_body_t *b)
{
	return b->started || coil__task_begin_slow(loop, b);
}
/* After a step in which the task's body returned: records the outcome. */
void coil__task_end(coil_loop_t *loop, coil__task_body_t *b);
/* Closes a task that ignored repeated cancellation (loop close). */
void coil__task_force_close(coil_task_t *t);

/* Closes the async generators still open on the loop (runtime/gen/gen.c);
 * called by coil_loop_close before it finishes the tasks. */
void coil__gen_shutdown_loop(coil_loop_t *loop);
/* Unregisters the generators still registered with a runtime's worker
 * loop, without closing them; called when the runtime closes it. */
void coil__gen_forget_loop(coil_loop_t *loop);

/* Removes the signal handlers still installed on the loop and frees its
 * signal state (io/signal.c); called when the loop closes, once its tasks
 * have ended and no ring of it is reaped any more. */
void coil__signal_loop_close(coil_loop_t *loop);

/* Shuts down the default executor of `owner` (a runtime, or a loop made
 * with coil_new_event_loop) and waits for its threads
 * (runtime/executor/default.c); called by coil_runtime_shutdown and
 * coil_loop_close once the tasks have ended, before the loops close. */
void coil__executor_owner_close(void *owner);

/* Forgets `owner` once nothing of it runs any more (its loops closed):
 * until then the default executor stays refused to it, rather than made
 * anew after coil__executor_owner_close. */
void coil__executor_owner_forget(void *owner);

/* Takes the message set by coil_errorf on this thread/task, or NULL. */
char *coil__take_errmsg(void);

#endif
