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
 * is queued or running marks it pending, delivered by its next await; a task
 * cancelled before its first step ends cancelled without running.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* Mallocs a worker makes before it looks at the runtime's pool again after
 * finding it empty (a look costs a lock on a line other workers write). */
#define BODY_REFILL_BACKOFF 64
static __thread unsigned body_refill_skip;

/*
 * A worker whose own list of bodies is empty takes a batch of the
 * runtime's pool (see coil__runtime_pool_give) in one step. Where one
 * worker spawns and others run its tasks (W1), bodies pile up on the
 * runners, which hand the overflow to the pool: the spawner then reuses
 * them instead of asking the allocator for a body on one thread and freeing
 * it on another for every task. Returns the first body, or NULL.
 */
static coil__task_body_t *body_refill(coil_loop_t *loop)
{
	coil_runtime_t *rt = loop->rt;
	if (!rt || coil__cache_max == 0 || body_refill_skip) {
		if (body_refill_skip)
			body_refill_skip--;
		return NULL;
	}
	struct coil__pool_batch got;
	if (!coil__runtime_pool_take(rt, NULL, &got)) {
		body_refill_skip = BODY_REFILL_BACKOFF;
		return NULL;
	}
	coil__task_body_t *b = got.head;
	loop->free_bodies = (coil__task_body_t *)b->run.node.next;
	loop->nfree_bodies = got.n - 1;
	return b;
}

static coil__task_body_t *body_get(void)
{
	coil_loop_t *loop = coil__running_loop;
	if (!loop)
		return coil__malloc(sizeof(coil__task_body_t));
	coil__task_body_t *b = loop->free_bodies;
	if (b) {
		coil__task_body_t *n = (coil__task_body_t *)b->run.node.next;
		loop->free_bodies = n;
		loop->nfree_bodies--;
		/* The next spawn's body: lines the worker that ended its
		 * task wrote last (W1's spawner recycles bodies its runner
		 * ended). Fetched for writing now, they arrive while this
		 * spawn goes on instead of stalling its first locked
		 * instruction. */
		if (n) {
			for (size_t o = 0; o < sizeof(*n); o += 64)
				__builtin_prefetch((char *)n + o, 1, 3);
		}
		return b;
	}
	if ((b = body_refill(loop)))
		return b;
	return coil__malloc(sizeof(*b));
}

/*
 * Spawns from threads outside the runtime (coil_runtime_spawn from a plain
 * thread) take handles and bodies from the runtime's pool a batch at a
 * time (up to COIL__POOL_BATCH) into a cache of the thread's own: one lock
 * on the pool's line per batch instead of one per spawn, and the next
 * spawn's handle and body, lines a worker wrote last, are fetched for
 * writing while this one fills its own. The cache is plain memory of fixed
 * sizes, good for any runtime; what is left of it goes back to the
 * allocator when the thread exits (fcache_key's destructor).
 */
#define FCACHE_BATCH COIL__POOL_BATCH

typedef struct fcache {
	void *handles;            /* a list through their first word */
	coil__task_body_t *bodies; /* a list through run.node.next */
	unsigned nhandles, nbodies;
	unsigned skip;            /* spawns before the pool is looked at
				   * again after it was found empty */
	bool keyed;               /* the destructor is registered */
} fcache_t;

static __thread fcache_t fcache;
static pthread_key_t fcache_key;
static pthread_once_t fcache_once = PTHREAD_ONCE_INIT;
static bool fcache_key_ok;

static void fcache_free(void *p)
{
	fcache_t *c = p;
	while (c->handles) {
		void *h = c->handles;
		c->handles = *(void **)h;
		coil__free(h, sizeof(coil_task_t));
	}
	while (c->bodies) {
		coil__task_body_t *b = c->bodies;
		c->bodies = (coil__task_body_t *)b->run.node.next;
		coil__free(b, sizeof(*b));
	}
	c->nhandles = c->nbodies = 0;
}

static void fcache_key_make(void)
{
	fcache_key_ok = pthread_key_create(&fcache_key, fcache_free) == 0;
}

/* Fills each empty list of the thread's cache with a batch of rt's pool
 * (the other list may still hold some: the pool's batches of handles and
 * of bodies need not come in pairs). Returns false when the thread cannot
 * keep a cache (no destructor to give it back at exit). */
static bool fcache_refill(coil_runtime_t *rt)
{
	if (!fcache.keyed) {
		pthread_once(&fcache_once, fcache_key_make);
		if (!fcache_key_ok || pthread_setspecific(fcache_key, &fcache))
			return false;
		fcache.keyed = true;
	}
	struct coil__pool_batch h = { NULL, 0 }, b = { NULL, 0 };
	if (!coil__runtime_pool_take(rt, fcache.handles ? NULL : &h,
				     fcache.bodies ? NULL : &b))
		return true;
	if (h.head) {
		fcache.handles = h.head;
		fcache.nhandles = (unsigned)h.n;
	}
	if (b.head) {
		fcache.bodies = b.head;
		fcache.nbodies = (unsigned)b.n;
	}
	return true;
}

/* A handle and a body for a spawn from outside the runtime: from the
 * thread's cache, refilled from the runtime's pool when it has some, else
 * from the allocator. */
static void foreign_get(coil_runtime_t *rt, coil_task_t **t, coil__task_body_t **b)
{
	*t = NULL;
	*b = NULL;
	if (coil__cache_max) {
		if (!fcache.handles || !fcache.bodies) {
			/* After a refill that left a list empty, the next ones
			 * wait: the pool had none of that kind. */
			if (fcache.skip)
				fcache.skip--;
			else if (!fcache_refill(rt) || !fcache.handles || !fcache.bodies)
				fcache.skip = FCACHE_BATCH;
		}
		if (fcache.handles) {
			*t = fcache.handles;
			void *n = *(void **)*t;
			fcache.handles = n;
			fcache.nhandles--;
			if (n) {
				__builtin_prefetch(n, 1, 3);
				__builtin_prefetch((char *)n + sizeof(coil_task_t) - 1, 1, 3);
			}
		}
		if (fcache.bodies) {
			*b = fcache.bodies;
			coil__task_body_t *n = (coil__task_body_t *)(*b)->run.node.next;
			fcache.bodies = n;
			fcache.nbodies--;
			if (n) {
				for (size_t o = 0; o < sizeof(*n); o += 64)
					__builtin_prefetch((char *)n + o, 1, 3);
			}
		}
	}
	if (!*t)
		*t = coil__malloc(sizeof(coil_task_t));
	if (!*b)
		*b = coil__malloc(sizeof(coil__task_body_t));
}


/* What an ended task's body owns (its stack goes to the loop's spares),
 * leaving the body itself. */
static void body_clear(coil_loop_t *loop, coil__task_body_t *b)
{
	if (b->coro.stack && loop && !loop->closed && loop->nspare < COIL__SPARE_STACKS) {
		size_t req = coil__coro_stack_request(&b->coro);
		if (!loop->nspare)
			loop->spare_request = req;
		if (req == loop->spare_request)
			loop->spare[loop->nspare++] = coil__coro_take_stack(&b->coro);
	}
	coil__coro_fini(&b->coro);
	coil__strfree(b->cancel_msg);
	coil__strfree(b->errmsg);
	if (b->tls)
		coil__free(b->tls, b->ntls * sizeof(coil__tls_t));
}

/* Recycles a cleared body (body_clear) into loop's list, the runtime's
 * pool, or the allocator. */
static void body_recycle(coil_loop_t *loop, coil__task_body_t *b)
{
	if (loop && !loop->closed && loop->nfree_bodies < coil__cache_max) {
		b->run.node.next = (coil__fnode_t *)loop->free_bodies;
		loop->free_bodies = b;
		loop->nfree_bodies++;
		return;
	}
	if (loop && !loop->closed && loop->rt && coil__cache_max != 0) {
		/* The worker's own cache is full: tasks come from elsewhere.
		 * Hand bodies back to the runtime's pool for outside
		 * spawners. */
		b->run.node.next = (coil__fnode_t *)loop->rbodies;
		loop->rbodies = b;
		if (++loop->nrbodies >= COIL__POOL_BATCH)
			coil__runtime_pool_give(loop);
		return;
	}
	coil__free(b, sizeof(*b));
}

void coil__task_free_body(coil_loop_t *loop, coil__task_body_t *b)
{
	body_clear(loop, b);
	body_recycle(loop, b);
}

/*
 * The own list (coil_loop_t.own). A worker's tasks spawn on it and end on
 * it without a lock: only the worker's thread changes it, each change
 * inside own_begin/own_end. A thread that reads it (a listing, coil_all_tasks
 * from elsewhere) holds the loop's tasks_lock, which keeps other readers
 * out, sets own_want, makes every thread of the process execute a full
 * barrier (membarrier, as the cancellation protocol does: task_mark) and
 * waits until own_busy is 0; the worker stores own_busy and then reads
 * own_want with plain instructions. Either the worker's store came before
 * the barrier and the reader waits for the change to end, or its read
 * comes after it, sees own_want and waits, outside the change, for the
 * reader to finish.
 *
 * A task of the list that ends on another worker stays in it until that
 * worker hands its body back (own_ret, a batch at a time) and this one
 * unlinks it: other workers do not take the barrier's cost (a system call
 * and an interrupt of every other CPU of the process, some microseconds
 * here) for it. That moves the unlinking, a few cache misses per task, to
 * the home, which is right where few of its tasks end elsewhere (W2: a
 * fraction of a percent) and wrong where many do (W1: half, and the home is
 * the spawner everyone waits for). So each worker counts, per window of
 * OWN_WINDOW spawns of its tasks, how many of its tasks ended elsewhere,
 * and spawns onto the shared list, whose enders unlink their own batches,
 * while more than one in OWN_RATIO does.
 */
#define OWN_WINDOW 1024
#define OWN_RATIO 8

static void cancel_fence(void);

static __attribute__((noinline)) void own_wait(coil_loop_t *loop)
{
	for (;;) {
		atomic_store_explicit(&loop->own_busy, 0, memory_order_release);
		for (unsigned n = 0;
		     atomic_load_explicit(&loop->own_want, memory_order_acquire); n++) {
			if (n < 128)
				coil__cpu_relax();
			else
				sched_yield();
		}
		atomic_store_explicit(&loop->own_busy, 1, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&loop->own_want, memory_order_acquire))
			return;
	}
}

static inline void own_begin(coil_loop_t *loop)
{
	atomic_store_explicit(&loop->own_busy, 1, memory_order_relaxed);
	/* Only the compiler's order: the hardware's comes from the
	 * reader's membarrier. */
	atomic_signal_fence(memory_order_seq_cst);
	/* Acquire: a reader that let go is done with the list. */
	if (__builtin_expect(atomic_load_explicit(&loop->own_want, memory_order_acquire), 0))
		own_wait(loop);
}

static inline void own_end(coil_loop_t *loop)
{
	atomic_store_explicit(&loop->own_busy, 0, memory_order_release);
}

/* Under loop's tasks_lock: makes `own` safe to read until own_read_end. */
static bool own_read_begin(coil_loop_t *loop)
{
	if (coil__running_loop == loop)
		return false; /* the owner: nothing changes it meanwhile */
	atomic_store_explicit(&loop->own_want, 1, memory_order_relaxed);
	cancel_fence();
	for (unsigned n = 0; atomic_load_explicit(&loop->own_busy, memory_order_acquire); n++) {
		if (n < 128)
			coil__cpu_relax();
		else
			sched_yield(); /* the owner may be preempted in a change */
	}
	return true;
}

static void own_read_end(coil_loop_t *loop, bool fenced)
{
	if (fenced)
		atomic_store_explicit(&loop->own_want, 0, memory_order_release);
}

size_t coil__loop_tasks_each(coil_loop_t *loop, void (*fn)(coil__task_body_t *b, void *arg),
			     void *arg)
{
	size_t n = 0;
	coil__lock(&loop->tasks_lock);
	for (coil__list_t *p = loop->tasks.next; p != &loop->tasks; p = p->next, n++)
		fn(coil__container_of(p, coil__task_body_t, all), arg);
	if (loop->rt) {
		bool fenced = own_read_begin(loop);
		for (coil__list_t *p = loop->own.next; p != &loop->own; p = p->next, n++)
			fn(coil__container_of(p, coil__task_body_t, all), arg);
		own_read_end(loop, fenced);
	}
	coil__unlock(&loop->tasks_lock);
	return n;
}

struct collect {
	coil_task_t **v;
	size_t cap, n;
	bool short_;              /* more than cap */
};

static void collect_one(coil__task_body_t *b, void *arg)
{
	struct collect *c = arg;
	/* Not one that ended on another worker (task_finish). */
	if (!coil__task_listed(b))
		return;
	if (c->n == c->cap) {
		c->short_ = true;
		return;
	}
	c->v[c->n++] = coil_future_task(coil_future_ref(&b->task->fut));
}

int coil__loop_collect(coil_loop_t *loop, coil_task_t ***out)
{
	size_t cap = coil__loop_live_tasks(loop) + 16;
	for (;;) {
		/* Allocated outside the list lock; the lists may grow
		 * meanwhile, hence the room to spare and the retry. */
		struct collect c = { coil__libc_malloc(cap * sizeof(coil_task_t *)), cap, 0,
				     false };
		if (!c.v)
			return -ENOMEM;
		coil__loop_tasks_each(loop, collect_one, &c);
		if (!c.short_) {
			*out = c.v;
			return (int)c.n;
		}
		for (size_t i = 0; i < c.n; i++)
			coil_future_release(&c.v[i]->fut);
		free(c.v);
		cap = cap * 2;
	}
}

size_t coil__loop_live_tasks(coil_loop_t *loop)
{
	coil__lock(&loop->tasks_lock);
	size_t n = loop->ntasks;
	coil__unlock(&loop->tasks_lock);
	/* nown first: a worker unlinking what came back lowers own_gone
	 * before nown, so the difference is never below the true count. */
	int64_t own = (int64_t)atomic_load_explicit(&loop->nown, memory_order_acquire) -
		      atomic_load_explicit(&loop->own_gone, memory_order_acquire);
	return n + (own > 0 ? (size_t)own : 0);
}

/* Recycles a batch of ended tasks' bodies (through run.node.next, unlinked
 * from their lists) into `into` (NULL: frees them) and drops the loop's
 * reference to each task. */
static void ended_recycle(coil_loop_t *into, coil__task_body_t *b)
{
	while (b) {
		coil__task_body_t *next = (coil__task_body_t *)b->run.node.next;
		coil_task_t *t = b->task;
		body_recycle(into, b);
		coil_future_release(&t->fut); /* the loop's reference */
		b = next;
	}
}

/* Unlinks the bodies of the own list's tasks that ended on other workers
 * and came back, and recycles them into `into` (NULL: frees them). */
static void own_drain(coil_loop_t *loop, coil_loop_t *into)
{
	if (!atomic_load_explicit(&loop->own_ret, memory_order_relaxed))
		return;
	coil__task_body_t *b = atomic_exchange_explicit(&loop->own_ret, NULL, memory_order_acquire);
	int64_t n = 0;
	own_begin(loop);
	for (coil__task_body_t *p = b; p; p = (coil__task_body_t *)p->run.node.next) {
		coil__list_del(&p->all);
		n++;
	}
	atomic_fetch_sub_explicit(&loop->own_gone, n, memory_order_release);
	size_t left = atomic_load_explicit(&loop->nown, memory_order_relaxed) - (size_t)n;
	atomic_store_explicit(&loop->nown, left, memory_order_release);
	own_end(loop);
	ended_recycle(into, b);
}

void coil__loop_own_drain_final(coil_loop_t *loop)
{
	own_drain(loop, NULL);
}

/* Hands this worker's batch of home's own-list bodies back to home. */
static void own_send(coil_loop_t *loop, coil_loop_t *home)
{
	struct coil__ended *e = &loop->ended[home->index];
	coil__task_body_t *head = e->own_head, *tail = e->own_tail;
	int64_t n = e->own_n;
	e->own_head = e->own_tail = NULL;
	e->own_n = 0;
	if (!e->head)
		loop->nended--;
	atomic_fetch_add_explicit(&home->own_elsewhere, (size_t)n, memory_order_relaxed);
	coil__task_body_t *old = atomic_load_explicit(&home->own_ret, memory_order_relaxed);
	do
		tail->run.node.next = (coil__fnode_t *)old;
	while (!atomic_compare_exchange_weak_explicit(&home->own_ret, &old, head,
						      memory_order_release,
						      memory_order_relaxed));
	atomic_fetch_add_explicit(&home->own_gone, n, memory_order_release);
	/* A runtime waiting for its tasks to end counts them again. */
	coil__runtime_tasks_gone(home->rt);
}

/* After OWN_WINDOW spawns of loop's tasks: whether the next ones go on the
 * own list (see the protocol above). */
static void own_judge(coil_loop_t *loop)
{
	size_t away = atomic_exchange_explicit(&loop->own_elsewhere, 0, memory_order_relaxed);
	loop->own_off = away * OWN_RATIO > loop->own_window;
	loop->own_window = 0;
}

/* Unlinks the batch of home's bodies that ended on this worker (one lock
 * for all of them) and recycles them here. Unless `force`, only if the
 * home's lock is free: the batch waits for a later flush rather than this
 * worker for the home's spawn (or for its thread, preempted while holding
 * the lock). */
static void ended_flush_home(coil_loop_t *loop, coil_loop_t *home, bool force)
{
	struct coil__ended *e = &loop->ended[home->index];
	if (force)
		coil__spin_lock(&home->tasks_lock);
	else if (!coil__spin_trylock(&home->tasks_lock))
		return;
	coil__task_body_t *b = e->head;
	size_t n = e->n;
	e->head = e->tail = NULL;
	e->n = 0;
	if (!e->own_head)
		loop->nended--;
	for (coil__task_body_t *p = b; p; p = (coil__task_body_t *)p->run.node.next) {
		coil__list_del(&p->all);
		home->ntasks--;
	}
	if (home != loop) /* not the batch of outside spawns ended on their home */
		atomic_fetch_add_explicit(&home->own_elsewhere, n, memory_order_relaxed);
	size_t left = home->ntasks;
	coil__spin_unlock(&home->tasks_lock);
	ended_recycle(loop, b);
	/* A runtime waiting for its tasks to end counts them again. */
	if (!left)
		coil__runtime_tasks_gone(home->rt);
}

void coil__loop_ended_flush(coil_loop_t *loop, bool force)
{
	own_drain(loop, loop);
	for (unsigned i = 0; loop->nended && i < loop->rt->n; i++) {
		struct coil__ended *e = &loop->ended[i];
		if (e->own_head)
			own_send(loop, loop->rt->loops[i]);
		if (e->head)
			ended_flush_home(loop, loop->rt->loops[i], force);
	}
}

/* Queues the body of a task of another worker (home) that ended here for
 * ended_flush_home, or own_send for one of home's own list. */
static void ended_push(coil_loop_t *loop, coil_loop_t *home, coil__task_body_t *b)
{
	struct coil__ended *e = &loop->ended[home->index];
	b->run.node.next = NULL;
	if (!e->head && !e->own_head)
		loop->nended++;
	if (b->on_own) {
		if (e->own_tail)
			e->own_tail->run.node.next = (coil__fnode_t *)b;
		else
			e->own_head = b;
		e->own_tail = b;
		if (++e->own_n >= COIL__TICK)
			own_send(loop, home);
		return;
	}
	if (e->tail)
		e->tail->run.node.next = (coil__fnode_t *)b;
	else
		e->head = b;
	e->tail = b;
	/* Tried at every COIL__TICK ends, forced at 4 times that. */
	if (++e->n % COIL__TICK == 0)
		ended_flush_home(loop, home, e->n >= 4 * COIL__TICK);
}

/*
 * Task handles and bodies are recycled through per-loop free lists, so that
 * spawning a task costs no allocator call once the loop is warm. Only the
 * loop's own thread touches the lists, and nothing goes back to them once
 * the loop is closed.
 */
void coil__task_pools_free(coil_loop_t *loop)
{
	while (loop->nspare)
		coil__stack_free(loop->spare[--loop->nspare]);
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

/* Copies the spawning task's task-local values into b (contextvars'
 * copy_context at task creation). */
static int tls_inherit(coil__task_body_t *b)
{
	coil_coro_t *c = coil__cur;
	coil__task_body_t *pb = c && c->task ? c->task->body : NULL;
	b->tls = NULL;
	b->ntls = 0;
	if (!pb || !pb->ntls)
		return 0;
	b->tls = coil__malloc(pb->ntls * sizeof(coil__tls_t));
	if (!b->tls)
		return -ENOMEM;
	memcpy(b->tls, pb->tls, pb->ntls * sizeof(coil__tls_t));
	b->ntls = pb->ntls;
	return 0;
}

int coil__task_create(coil_loop_t *loop, coil_task_t **out, coil_fn fn, void *arg,
		      const coil_spawn_opts_t *opts, bool shared)
{
	if (!loop || !fn)
		return -EINVAL;
	if (loop->any)
		return coil_runtime_spawn(loop->rt, out, fn, arg, opts);
	/* Atomic: an outside spawner may look while a shutdown, which refuses
	 * it under the list lock below, closes the runtime's loops. */
	if (__atomic_load_n(&loop->closed, __ATOMIC_RELAXED))
		return COIL_ECLOSED;
	coil_task_t *t;
	coil__task_body_t *b;
	coil_loop_t *me = coil__running_loop;
	if (!me && loop->rt) {
		foreign_get(loop->rt, &t, &b);
	} else {
		t = coil__obj_get(task_cache, sizeof(coil_task_t));
		b = body_get();
	}
	if (!t || !b) {
		if (t)
			coil__task_cache_handle(t);
		/* Not coil__task_free_body: nothing in the body is set yet
		 * (a fresh one is garbage, a recycled one holds its last
		 * task's freed name and stack). */
		if (b)
			body_recycle(me, b);
		return -ENOMEM;
	}
	/* First: what an early failure below frees must be set. */
	size_t ss = opts && opts->stack_size ? opts->stack_size : loop->stack_size;
	coil__coro_init(&b->coro, fn, arg, ss, opts ? opts->result_dtor : NULL,
			COIL__CORO_F_TASK | COIL__CORO_F_EMBEDDED);
	b->cancel_msg = NULL;
	b->errmsg = NULL;
	b->tls = NULL; /* a recycled body's is stale until tls_inherit */
	b->ntls = 0;
	t->name = NULL;
	if ((opts && opts->name && !(t->name = coil__strdup(opts->name))) ||
	    tls_inherit(b)) {
		coil__strfree(t->name);
		coil__task_free_body(NULL, b);
		coil__task_cache_handle(t);
		return -ENOMEM;
	}
	coil__future_init(&t->fut, loop, true);
	/* The reference coil__future_init made is the loop's, dropped when the
	 * task is done; the caller gets one more only if it asked for it, now,
	 * before another worker can run the task to its end. */
	if (out)
		atomic_store_explicit(&t->fut.refs, 2, memory_order_relaxed);
	t->id = task_id_take();
	t->pooled = !me && loop->rt;
	__atomic_store_n(&t->body, b, __ATOMIC_RELAXED); /* read by joiners: await_join */
	atomic_init(&t->cancel_requests, 0);
	atomic_init(&t->cancel, 0);
	atomic_init(&t->clock.v, 0);
	b->coro.task = t;
	b->coro.ret_ctx = &loop->sched;
	b->task = t;
	b->worker = loop;
	atomic_init(&b->rstate, COIL__TS_QUEUED);
	b->yielding = false;
	b->pins = opts && opts->pinned ? 1 : 0;
	b->upins = b->pins;
	b->resume = &b->coro;
	atomic_init(&b->waiting, NULL);
	b->tail = false;
	atomic_init(&b->cancel_woken, false);
	b->started = false;
	b->shared_handle = shared || me != loop;
	b->created = loop->debug ? coil__clock_ns() : 0;
	b->run.kind = COIL__RUN_TASK;
	/* Spawned by one of this worker's tasks: on the worker's own list,
	 * without a lock (a shutdown lets the runtime's tasks spawn), unless
	 * many of them end elsewhere (own_judge). */
	b->join_w = NULL;
	b->on_own = false;
	if (me == loop && loop->rt && coil__cancel_fence_ok && coil__cur && coil__cur->task) {
		if (++loop->own_window >= OWN_WINDOW)
			own_judge(loop);
		b->on_own = !loop->own_off;
	}
	if (b->on_own) {
		own_begin(loop);
		coil__list_push(&loop->own, &b->all);
		atomic_store_explicit(&loop->nown,
				      atomic_load_explicit(&loop->nown, memory_order_relaxed) + 1,
				      memory_order_release);
		own_end(loop);
		if (out)
			*out = t;
		coil__task_enqueue_new(loop, b);
		return 0;
	}
	coil__lock(&loop->tasks_lock);
	if (__builtin_expect(loop->rt && atomic_load_explicit(&loop->rt->shutting_down,
							      memory_order_relaxed), 0) &&
	    (!me || me->rt != loop->rt || !coil__cur || !coil__cur->task)) {
		/* Not from one of the runtime's tasks, after the shutdown's
		 * last count began (coil_runtime_shutdown takes this lock
		 * after it sets the flag): the task would never run. */
		coil__unlock(&loop->tasks_lock);
		coil__task_free_body(NULL, b);
		atomic_store_explicit(&t->fut.refs, 1, memory_order_relaxed);
		coil_future_release(&t->fut);
		return COIL_ECLOSED;
	}
	coil__list_push(&loop->tasks, &b->all);
	loop->ntasks++;
	coil__unlock(&loop->tasks_lock);
	if (out)
		*out = t;
	coil__task_enqueue_new(loop, b);
	return 0;
}

int coil_task_factory_default(coil_loop_t *loop, coil_task_t **out,
			      coil_fn fn, void *arg,
			      const coil_spawn_opts_t *opts)
{
	return coil__task_create(loop, out, fn, arg, opts, false);
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
		/* The message is taken below, once the body is out of the
		 * cancellers' reach: until then coil_task_cancel may replace
		 * it. */
		state = COIL__F_CANCELLED;
	} else {
		state = COIL__F_ERROR;
		msg = b->errmsg;
		b->errmsg = NULL;
	}
	coil_loop_t *home = t->fut.loop;
	/* A task that ended on a worker other than its home stays in the
	 * home's list, with the handle's loop reference, until this worker
	 * unlinks a batch of them (coil_loop_t.ended): its end takes no lock
	 * that the home's spawns take too. */
	bool elsewhere = home != loop && home->rt && loop->rt == home->rt;
	/* A task spawned from outside ends on its home in batches too: the
	 * outside spawner takes the home's list lock for each spawn. */
	elsewhere |= home == loop && home->rt && !home->alone && b->shared_handle &&
		     !b->on_own;
	size_t left = 1;
	if (!elsewhere && b->on_own) {
		own_begin(home);
		coil__list_del(&b->all);
		left = atomic_load_explicit(&home->nown, memory_order_relaxed) - 1;
		atomic_store_explicit(&home->nown, left, memory_order_release);
		own_end(home);
	} else if (!elsewhere) {
		coil__lock(&home->tasks_lock);
		coil__list_del(&b->all);
		left = --home->ntasks;
		coil__unlock(&home->tasks_lock);
	}
	/* A loop alone (core.h) is the only one to touch its tasks'
	 * cancellation state: coil_task_cancel and task listings are for the
	 * task's worker (coil/task.h, coil/debug.h). It is also the only
	 * holder of references to the handle of a task spawned there with
	 * coil_spawn. */
	bool solo = home == loop && home->alone;
	bool plain_ref = solo && !b->shared_handle;
	if (solo) {
		__atomic_store_n(&t->body, NULL, __ATOMIC_RELAXED);
	} else if (coil__cancel_fence_ok &&
		   !(atomic_load_explicit(&t->cancel, memory_order_relaxed) &
		     COIL__CANCEL_HELD_MASK)) {
		/* Lookers read the body only while they hold the task
		 * (coil__task_hold): either one sees NULL, or this sees its
		 * mark and waits until it is done. A hold seen already (a
		 * cancellation this task may have ended on) takes the lock
		 * below: the look sees the body then, and counts it. */
		__atomic_store_n(&t->body, NULL, __ATOMIC_RELAXED);
		atomic_signal_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&t->cancel, memory_order_acquire) & COIL__CANCEL_HELD_MASK) {
			coil__spin_lock(&t->clock);
			coil__spin_unlock(&t->clock);
		}
	} else {
		coil__lock(&t->clock);
		__atomic_store_n(&t->body, NULL, __ATOMIC_RELAXED);
		coil__unlock(&t->clock);
	}
	/* No canceller reaches the body any more: the message of the last
	 * cancellation is final. */
	if (state == COIL__F_CANCELLED) {
		msg = b->cancel_msg;
		b->cancel_msg = NULL;
	}
	if (elsewhere) {
		body_clear(loop, b);
		coil__future_finish(&t->fut, state, ret, result, dtor, msg);
		/* The body and the loop's reference are let go of with the
		 * batch (the spawner's reference, if it kept one, stays). */
		ended_push(loop, home, b);
		return;
	}
	coil__task_free_body(loop, b);
	if (solo)
		coil__future_finish_solo(&t->fut, state, ret, result, dtor, msg);
	else
		coil__future_finish(&t->fut, state, ret, result, dtor, msg);
	if (!left && home->rt)
		coil__runtime_tasks_gone(home->rt);
	/* The loop's reference; the spawner's, if it kept one, stays. */
	uint32_t refs = atomic_load_explicit(&t->fut.refs, memory_order_relaxed);
	if (plain_ref && refs > 1)
		atomic_store_explicit(&t->fut.refs, refs - 1, memory_order_relaxed);
	else
		coil_future_release(&t->fut);
}

bool coil__task_begin_slow(coil_loop_t *loop, coil__task_body_t *b)
{
	coil_task_t *t = b->task;
	/* No lock: a cancellation that lands after this look is delivered
	 * at the task's first await. */
	if (atomic_load_explicit(&t->cancel, memory_order_relaxed) & COIL__CANCEL_PENDING) {
		if (loop->debug)
			coil__debug_task_never_ran(t);
		task_finish(loop, t, -ECANCELED);
		return false;
	}
	coil__stack_t *spare = NULL;
	if (loop->nspare && loop->spare_request == coil__coro_stack_request(&b->coro))
		spare = loop->spare[--loop->nspare];
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

int coil__suspend_check_slow(void)
{
	coil_coro_t *c = coil__cur;
	coil_task_t *t = c ? c->task : NULL;
	if (!t)
		return COIL_EINVALSTATE;
	if (c->closing)
		return COIL_ECLOSED;
	coil__lock(&t->clock);
	bool cancel = atomic_fetch_and_explicit(&t->cancel, (uint8_t)~COIL__CANCEL_PENDING,
						memory_order_relaxed) &
		      COIL__CANCEL_PENDING;
	coil__unlock(&t->clock);
	return cancel ? -ECANCELED : 0;
}

/*
 * The wait of a task that other workers may run, wake and cancel.
 *
 * A canceller on another thread (coil_task_cancel, a force-close, a
 * listing) reads b->waiting under the task's clock and may claim that
 * waiter, so the waiter must stay valid while it looks, and a cancellation
 * that finds no waiter must be seen by the task before it sleeps. Taking
 * the clock around publishing and withdrawing `waiting` gave both, at two
 * locked instructions per wait. Instead, where the kernel has membarrier
 * (coil__cancel_fence_ok), the order is made by the rare side: the task
 * stores `waiting` and then reads t->cancel with plain instructions; a
 * looker under the clock sets HELD (and PENDING, for a cancellation) in
 * t->cancel, makes every thread of the process execute a full barrier
 * (coil__task_hold) and only then reads `waiting`. Either the task's store
 * came before that barrier and the looker sees the waiter, or the task's
 * read comes after it and sees the bit, and takes the clock: before it
 * sleeps (the old, locked check of a pending cancellation) or before it
 * returns from the wait (the waiter lives until the looker, which may
 * still hold it, lets go of the clock). The task's end (task_finish)
 * clears t->body the same way: a looker reads the body only once it holds
 * the task, and an end that sees the mark waits for the clock before the
 * body is recycled. Without membarrier every wait and every end takes the
 * clock, as before.
 */
/* Publishes w as the waiter of task t (body b) and looks for a
 * cancellation made meanwhile (the protocol above). Returns true if there
 * was one: it is consumed, w withdrawn (claimed, its cancel hook run) and
 * c, unless NULL, marked running again, as the task goes on with it. */
static inline __attribute__((always_inline)) bool
waiter_publish(coil_task_t *t, coil__task_body_t *b, coil__waiter_t *w, coil_coro_t *c)
{
	atomic_store_explicit(&b->waiting, w, memory_order_release);
	/* Only the compiler's order: the hardware's comes from the looker's
	 * membarrier (above). */
	atomic_signal_fence(memory_order_seq_cst);
	if (coil__cancel_fence_ok &&
	    __builtin_expect(!atomic_load_explicit(&t->cancel, memory_order_relaxed), 1))
		return false;
	coil__spin_lock(&t->clock);
	if ((atomic_load_explicit(&t->cancel, memory_order_relaxed) & COIL__CANCEL_PENDING) &&
	    coil__waiter_claim(w)) {
		/* Cancelled by another thread since coil__suspend_check:
		 * nobody can wake w now, so withdraw it and deliver the
		 * cancellation. */
		atomic_fetch_and_explicit(&t->cancel, (uint8_t)~COIL__CANCEL_PENDING,
					  memory_order_relaxed);
		atomic_store_explicit(&b->waiting, NULL, memory_order_relaxed);
		if (c) {
			c->state = COIL_CORO_RUNNING;
			c->awaiting = false;
		}
		coil__spin_unlock(&t->clock);
		w->cancel(w);
		return true;
	}
	coil__spin_unlock(&t->clock);
	return false;
}

int coil__task_suspend_mt(coil__waiter_t *w)
{
	coil_coro_t *c = coil__cur;
	coil_task_t *t = c->task;
	coil__task_body_t *b = t->body;
	coil_loop_t *loop = coil__running_loop;
	if (loop->alone) {
		/* Only the loop's thread runs its tasks, and cancels them
		 * (coil/task.h: every call from the loop's thread), so nobody
		 * reads b->waiting while it changes: no cancellation lock.
		 * It also makes every wake-up of its tasks (a future that a
		 * plain thread resolves is posted to it: future.c, foreign),
		 * so the wait is the one-thread one. */
		return coil__task_suspend_in(w, b, c, false);
	}
	/* Set before the waiter is published: whoever claims it may look at
	 * the task's coroutines (a force-close at shutdown). */
	b->resume = c;
	c->state = COIL_CORO_SUSPENDED;
	c->awaiting = true;
	if (waiter_publish(t, b, w, c))
		return -ECANCELED;
	bool fenced = coil__cancel_fence_ok;
	coil__task_switch_out(loop, c, b, true);
	/* Running again, on this worker or another. */
	atomic_store_explicit(&b->waiting, NULL, memory_order_relaxed);
	atomic_store_explicit(&b->cancel_woken, false, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	/* Acquire: a looker that let go (clearing HELD) is done with w. */
	if (!fenced || __builtin_expect(atomic_load_explicit(&t->cancel, memory_order_acquire), 0)) {
		/* A looker may still hold w: it lives until the looker is
		 * done. */
		coil__spin_lock(&t->clock);
		coil__spin_unlock(&t->clock);
	}
	return w->result;
}

/*
 * Joins. A task that awaits a task still at the bottom of its own worker's
 * deque (fork-join: a child spawned and not taken by a thief) runs it at
 * once on this worker, switching into it and, when it ends, straight back,
 * as to a call: no waiter linked on its future, no wake-up, and the
 * joining task is never switched out nor made runnable again, which on the
 * multi-worker paths saves the future's lock at the await, the waiter's
 * claim and two run-state compare-and-swaps per task, and the scheduler's
 * round between them. The joining task stays "running" meanwhile: a
 * cancellation that arrives then is delivered when the await returns. If
 * the child suspends, the join turns into the wait it stands for: the
 * worker links the joining task's waiter then, before the child can be
 * queued anywhere (coil__task_join_convert), and the child's end wakes it
 * as any awaiter.
 */
int coil__task_join_run(coil_loop_t *loop, coil_task_t *t, coil_coro_t *c,
			coil__task_body_t *cb, coil__waiter_t *w)
{
	if (!coil__task_begin(loop, cb))
		return 1; /* cancelled before it started: ended already */
	intptr_t arg;
	coil_coro_t *cc = coil__task_step_begin(loop, cb, &arg);
	cb->join_w = w;
	/* Its end comes straight back here (coro_main, with COIL_EDONE or
	 * its error code: never 0); a suspension goes to the loop. */
	cb->coro.ret_ctx = &c->ctx;
	intptr_t r = coil__ctx_jump(&c->ctx, &cc->ctx, arg, false);
	if (r == 0) {
		/* The join became a wait and the wait ended: as at the end of
		 * coil__task_suspend_mt. */
		coil__task_body_t *b = t->body;
		atomic_store_explicit(&b->waiting, NULL, memory_order_relaxed);
		atomic_store_explicit(&b->cancel_woken, false, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		if (!coil__cancel_fence_ok ||
		    __builtin_expect(atomic_load_explicit(&t->cancel, memory_order_acquire), 0)) {
			coil__spin_lock(&t->clock);
			coil__spin_unlock(&t->clock);
		}
		return 0;
	}
	/* The child ended in this step: what the loop does after a task's
	 * last step (loop.c, run_task), with the child still current. */
	cb->join_w = NULL;
	coil__task_end(loop, cb);
	loop->lifo_run = 0;
	loop->current = t;
	coil__cur = c;
	/* A task the child woke into the LIFO slot would wait there, out of
	 * the thieves' reach, for as long as this task runs on. */
	if (loop->lifo)
		coil__sched_lifo_release(loop);
	return 1;
}

/* coil__task_suspend_mt's first half for joining task t (waiter w, on the
 * future of the task that switched out), done by the worker: returns
 * whether t is now waiting (false: a cancellation came first, and t is
 * queued to return it). */
static bool join_link(coil_task_t *t, coil__waiter_t *w)
{
	coil__task_body_t *b = t->body;
	coil_coro_t *c = &b->coro;
	coil_future_t *f = w->source;
	b->resume = c;
	c->state = COIL_CORO_SUSPENDED;
	c->awaiting = true;
	coil__spin_lock(&f->lock);
	/* Pending: the task it joined is alive, switched out and not queued
	 * again yet, so nothing can have finished it. */
	coil__list_push(&f->cbs, &w->cb.link);
	coil__spin_unlock(&f->lock);
	if (waiter_publish(t, b, w, NULL)) {
		w->result = -ECANCELED;
		/* Never switched out: runnable again, with the result. */
		atomic_store_explicit(&b->rstate, COIL__TS_QUEUED, memory_order_relaxed);
		coil__task_enqueue(b);
		return false;
	}
	return true;
}

/* Turns the join of waiter w's task into a wait, its own joiner's first:
 * a task joined by another cannot end, nor be woken, until it is linked
 * itself, so each link finds the future it goes on pending. */
static void join_convert_up(coil_loop_t *loop, coil__waiter_t *w)
{
	coil_task_t *t = w->task;
	coil__task_body_t *b = t->body;
	coil__waiter_t *up = b->join_w;
	if (up) {
		b->join_w = NULL;
		join_convert_up(loop, up);
	}
	/* The joining task switched out with the task it joined. */
	if (join_link(t, w))
		coil__task_switched_out(loop, b);
}

void coil__task_join_convert(coil_loop_t *loop, coil__task_body_t *b)
{
	coil__waiter_t *w = b->join_w;
	b->join_w = NULL;
	join_convert_up(loop, w);
}

bool coil__cancel_fence_ok;

static void cancel_fence_init(void)
{
	coil__cancel_fence_ok =
		syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void coil__cancel_fence_setup(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, cancel_fence_init);
}

/* The first half of coil__task_hold: marks the task held where the barrier
 * must follow, and says whether it must. */
static bool task_mark(coil_task_t *t)
{
	/* Not for a task of a loop alone (its cancellers run on its thread)
	 * nor for the caller's own task (it runs here, not waiting). */
	coil_coro_t *c = coil__cur;
	if (!coil__cancel_fence_ok || !coil__mt() || t->fut.loop->alone || (c && c->task == t))
		return false;
	uint8_t was = atomic_fetch_add_explicit(&t->cancel, COIL__CANCEL_HELD,
						memory_order_relaxed);
	/* Two holders at most (core.h): more is a bug, not load. */
	if ((was & COIL__CANCEL_HELD_MASK) == COIL__CANCEL_HELD_MASK) {
		fprintf(stderr, "coil: too many holders of task %llu\n", (unsigned long long)t->id);
		abort();
	}
	return true;
}

/* Every thread of the process executes a full barrier before this
 * returns. */
static void cancel_fence(void)
{
	/* Registered (cancel_fence_init): it cannot fail short of a seccomp
	 * filter that lets registration through and not this, for which
	 * there is no answer but to stop. */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
		fprintf(stderr, "coil: membarrier failed after it was registered: %s\n",
			strerror(errno));
		abort();
	}
}

bool coil__task_hold(coil_task_t *t)
{
	bool held = task_mark(t);
	if (held)
		cancel_fence();
	return held;
}

void coil__task_unhold(coil_task_t *t, bool held)
{
	if (held)
		atomic_fetch_sub_explicit(&t->cancel, COIL__CANCEL_HELD, memory_order_release);
}

int coil__wait_in_list_mt(coil__list_t *list, coil__spin_t *lock, coil_task_t *t,
			  void (*cancel)(coil__waiter_t *w), void *source, const char *what)
{
	coil__waiter_t w;
	coil__waiter_init(&w, t, cancel, source);
	w.what = what;
	coil__list_push(list, &w.cb.link);
	coil__spin_unlock(lock);
	return coil__task_suspend_mt(&w);
}

int coil__task_suspend_cancelled(coil__waiter_t *w)
{
	if (!coil__waiter_claim(w))
		return 0;
	atomic_fetch_and_explicit(&w->task->cancel, (uint8_t)~COIL__CANCEL_PENDING,
				  memory_order_relaxed);
	w->cancel(w);
	return -ECANCELED;
}

void coil__waiter_wake_mt(coil__waiter_t *w)
{
	coil__task_body_t *b = w->task->body;
	uint8_t s = atomic_load_explicit(&b->rstate, memory_order_acquire);
	for (;;) {
		if (s == COIL__TS_WAITING) {
			if (atomic_compare_exchange_weak_explicit(&b->rstate, &s, COIL__TS_QUEUED,
								  memory_order_acq_rel,
								  memory_order_acquire)) {
				coil__task_enqueue(b);
				return;
			}
		} else if (s == COIL__TS_RUNNING) {
			/* Still switching off its stack on its worker, which
			 * queues it once the switch is done (DESIGN.md 3). */
			if (atomic_compare_exchange_weak_explicit(&b->rstate, &s, COIL__TS_NOTIFIED,
								  memory_order_acq_rel,
								  memory_order_acquire))
				return;
		} else {
			return;
		}
	}
}

/*
 * A cancellation in two halves, so that many can share one barrier
 * (coil__task_cancel_all), both under t's clock. The first holds the task
 * before the barrier: from then on its waits and its end see the hold and
 * take the clock (coil__task_suspend_mt, task_finish), so a wait the look
 * below misses finds the request under the clock. It sets no PENDING: the
 * request is made by the look alone. cancel_all lets go of the clock
 * between the halves, and a task running on another worker meanwhile
 * would take a PENDING set here at its next await, before the look, which
 * (finding it woken by nothing) would deliver the same request again.
 */
static bool cancel_mark(coil_task_t *t)
{
	return task_mark(t);
}

/*
 * The second, after the barrier where `held`, which lets go of the clock:
 * false if the task is done. Else counts the request and wakes the task if
 * it waits (that delivers it) or leaves it pending for its next await. As
 * asyncio, a task already woken by a cancellation gets one CancelledError
 * however often it is cancelled before it runs, while cancelling() counts
 * every request. A task that ends on the PENDING set here (before its
 * first step) finds the hold too, as the look still holds it, and its end
 * waits for the look (task_finish).
 */
static bool cancel_look(coil_task_t *t, bool held, const char *msg)
{
	coil__task_body_t *b = coil__task_body_held(t);
	if (!b) {
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
		return false;
	}
	atomic_fetch_add_explicit(&t->cancel_requests, 1, memory_order_relaxed);
	if (msg) {
		coil__strfree(b->cancel_msg);
		b->cancel_msg = coil__strdup(msg);
	}
	if (!atomic_load_explicit(&b->cancel_woken, memory_order_relaxed))
		atomic_fetch_or_explicit(&t->cancel, COIL__CANCEL_PENDING, memory_order_relaxed);
	coil__waiter_t *w = atomic_load_explicit(&b->waiting, memory_order_acquire);
	if (w && coil__waiter_claim(w)) {
		/* This wake delivers it: nothing stays pending. */
		atomic_fetch_and_explicit(&t->cancel, (uint8_t)~COIL__CANCEL_PENDING,
					  memory_order_relaxed);
		atomic_store_explicit(&b->cancel_woken, true, memory_order_relaxed);
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
		/* Claimed: the task cannot run before our wake, so w lives. */
		w->cancel(w);
		coil__waiter_wake(w, -ECANCELED);
	} else {
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
	}
	return true;
}

bool coil_task_cancel(coil_task_t *t, const char *msg)
{
	coil__lock(&t->clock);
	/* A done task needs no mark, nor a barrier (its body only goes away;
	 * the look below checks again). */
	if (!coil__task_body_held(t)) {
		coil__unlock(&t->clock);
		return false;
	}
	bool held = cancel_mark(t);
	if (held)
		cancel_fence();
	return cancel_look(t, held, msg);
}

void coil__task_cancel_all(coil_task_t **tasks, size_t n)
{
	/* Whether each was held goes in a scratch array, or, without one,
	 * the tasks are cancelled one by one. */
	bool *held = n > 1 ? malloc(n * sizeof(*held)) : NULL;
	if (!held) {
		for (size_t i = 0; i < n; i++)
			coil_task_cancel(tasks[i], NULL);
		return;
	}
	bool fence = false;
	for (size_t i = 0; i < n; i++) {
		coil__lock(&tasks[i]->clock);
		held[i] = cancel_mark(tasks[i]);
		coil__unlock(&tasks[i]->clock);
		fence |= held[i];
	}
	if (fence)
		cancel_fence();
	for (size_t i = 0; i < n; i++) {
		coil__lock(&tasks[i]->clock);
		cancel_look(tasks[i], held[i], NULL);
	}
	free(held);
}

static void mark_closing(coil__task_body_t *b)
{
	for (coil_coro_t *c = b->resume; c; c = c->parent) {
		c->closing = true;
		if (c == &b->coro)
			break;
	}
}

void coil__task_force_close(coil_task_t *t)
{
	/* Every await and yield of a closing coroutine returns COIL_ECLOSED
	 * at once, so one more step runs the body to its end. On a runtime
	 * the coroutines are only touched once the waiter is claimed: until
	 * then another worker may be running the task. The body is read
	 * while the task is held, which keeps it from being recycled. */
	coil__lock(&t->clock);
	bool held = coil__task_hold(t);
	coil__task_body_t *b = coil__task_body_held(t);
	if (!b) {
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
		return;
	}
	/* Whether other workers may run it: from the loop the task belongs
	 * to, which never changes. b->worker is written by whichever worker
	 * starts a step, without this lock. */
	bool shared = t->fut.loop->rt != NULL;
	if (!shared)
		mark_closing(b);
	coil__waiter_t *w = atomic_load_explicit(&b->waiting, memory_order_acquire);
	if (w && coil__waiter_claim(w)) {
		coil__task_unhold(t, held);
		coil__unlock(&t->clock);
		if (shared)
			mark_closing(b); /* claimed: it cannot run, nor end */
		w->cancel(w);
		coil__waiter_wake(w, COIL_ECLOSED);
		return;
	}
	coil__task_unhold(t, held);
	coil__unlock(&t->clock);
}

int coil_task_cancelling(const coil_task_t *t)
{
	return atomic_load_explicit(&t->cancel_requests, memory_order_relaxed);
}

int coil_task_uncancel(coil_task_t *t)
{
	coil_task_t *m = (coil_task_t *)t;
	coil__lock(&m->clock);
	int n = atomic_load_explicit(&t->cancel_requests, memory_order_relaxed);
	if (n > 0) {
		atomic_store_explicit(&m->cancel_requests, --n, memory_order_relaxed);
		if (n == 0)
			atomic_fetch_and_explicit(&m->cancel, (uint8_t)~COIL__CANCEL_PENDING,
						  memory_order_relaxed);
	}
	coil__unlock(&m->clock);
	return n;
}

const char *coil_task_get_name(const coil_task_t *t)
{
	if (t->name)
		return t->name;
	/* Named on demand, so that spawning allocates no name. */
	coil_task_t *m = (coil_task_t *)t;
	char buf[32];
	snprintf(buf, sizeof(buf), "Task-%llu", (unsigned long long)t->id);
	char *n = coil__strdup(buf);
	if (!n)
		return "Task";
	/* Under the lock a listing on another worker copies it under; a
	 * name set meanwhile (another worker naming it too) stays. */
	coil__lock(&m->clock);
	if (!m->name) {
		m->name = n;
		n = NULL;
	}
	const char *name = m->name;
	coil__unlock(&m->clock);
	coil__strfree(n);
	return name;
}

int coil_task_set_name(coil_task_t *t, const char *name)
{
	char *n = coil__strdup(name ? name : "");
	if (!n)
		return -ENOMEM;
	/* A listing on another worker (introspect.c, task_name) may be
	 * copying the old name: it is freed once out of its reach. */
	coil__lock(&t->clock);
	char *old = t->name;
	t->name = n;
	coil__unlock(&t->clock);
	coil__strfree(old);
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

struct all_tasks {
	coil_task_t **tasks;
	size_t cap, n;
};

static void all_tasks_one(coil__task_body_t *b, void *arg)
{
	struct all_tasks *a = arg;
	if (!coil__task_listed(b))
		return;
	if (a->n < a->cap)
		a->tasks[a->n] = b->task;
	a->n++;
}

size_t coil_all_tasks(coil_loop_t *loop, coil_task_t **tasks, size_t cap)
{
	loop = loop ? loop : coil_get_event_loop();
	/* The stand-in of COIL_ANY_WORKER keeps no list: its tasks belong
	 * to the workers that took them. */
	if (!loop || loop->any)
		return 0;
	/* tasks NULL only counts, whatever cap says (there is no error to
	 * return through a count). */
	if (!tasks)
		cap = 0;
	struct all_tasks a = { tasks, cap, 0 };
	coil__loop_tasks_each(loop, all_tasks_one, &a);
	return a.n;
}

static void sleep_cancel(coil__waiter_t *w)
{
	(void)w; /* coil__waiter_timer_done takes the timer out */
}

void coil__task_pin_cur(void)
{
	coil_coro_t *c = coil__cur;
	if (c && c->task)
		c->task->body->pins++;
}

void coil__task_unpin_cur(void)
{
	coil_coro_t *c = coil__cur;
	if (c && c->task && c->task->body->pins)
		c->task->body->pins--;
}

int coil_task_pin(void)
{
	coil_coro_t *c = coil__cur;
	if (!c || !c->task)
		return COIL_EINVALSTATE;
	coil__task_body_t *b = c->task->body;
	/* The counts are 16 bits (the body's first lines are full): a wrap
	 * would unpin the task. */
	if (b->pins == UINT16_MAX || b->upins == UINT16_MAX)
		return -EOVERFLOW;
	b->pins++;
	b->upins++;
	return 0;
}

int coil_task_unpin(void)
{
	coil_coro_t *c = coil__cur;
	if (!c || !c->task || !c->task->body->upins)
		return COIL_EINVALSTATE;
	coil__task_body_t *b = c->task->body;
	b->pins--;
	b->upins--;
	return 0;
}

int coil__waiter_timer_arm(coil__waiter_t *w, int64_t when)
{
	coil_loop_t *loop = coil__running_loop;
	w->timer.kind = COIL__TIMER_WAITER;
	int rc = coil__loop_add_timer(loop, &w->timer, when);
	if (rc)
		return rc;
	w->timer_loop = loop;
	/* The heap is the loop's thread's: stay here until it is disarmed. */
	coil__task_pin_cur();
	return 0;
}

void coil__waiter_timer_done(coil__waiter_t *w)
{
	coil_loop_t *loop = w->timer_loop;
	if (!loop)
		return;
	if (w->timer.idx != UINT32_MAX)
		coil__loop_del_timer(loop, &w->timer);
	w->timer_loop = NULL;
	coil__task_unpin_cur();
}

static coil__tls_t *tls_find(coil__task_body_t *b, const void *key)
{
	for (uint32_t i = 0; i < b->ntls; i++)
		if (b->tls[i].key == key)
			return &b->tls[i];
	return NULL;
}

int coil_task_local_set(const void *key, void *value)
{
	coil_coro_t *c = coil__cur;
	if (!c || !c->task)
		return COIL_EINVALSTATE;
	coil__task_body_t *b = c->task->body;
	coil__tls_t *e = tls_find(b, key);
	if (e && value) {
		e->value = value;
		return 0;
	}
	if (e) {
		/* Removal: the block is always exactly ntls entries. */
		coil__tls_t *n = b->ntls > 1 ? coil__malloc((b->ntls - 1) * sizeof(*n)) : NULL;
		if (b->ntls > 1 && !n) {
			e->value = NULL; /* reads as unset all the same */
			return 0;
		}
		*e = b->tls[b->ntls - 1];
		if (n)
			memcpy(n, b->tls, (b->ntls - 1) * sizeof(*n));
		coil__free(b->tls, b->ntls * sizeof(*n));
		b->tls = n;
		b->ntls--;
		return 0;
	}
	if (!value)
		return 0;
	/* Sized exactly, so that copying to children is one memcpy and the
	 * size is always ntls entries. */
	coil__tls_t *n = coil__malloc((b->ntls + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (b->ntls)
		memcpy(n, b->tls, b->ntls * sizeof(*n));
	n[b->ntls] = (coil__tls_t){ key, value };
	if (b->tls)
		coil__free(b->tls, b->ntls * sizeof(*n));
	b->tls = n;
	b->ntls++;
	return 0;
}

void *coil_task_local_get(const void *key)
{
	coil_coro_t *c = coil__cur;
	if (!c || !c->task)
		return NULL;
	coil__tls_t *e = tls_find(c->task->body, key);
	return e ? e->value : NULL;
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
	coil_loop_t *loop = coil__running_loop;
	if (ns == 0) {
		/* asyncio.sleep(0): one trip through the run queue (its tail
		 * on one worker; the injection queue with several). */
		b->yielding = true;
		b->resume = c;
		c->state = COIL_CORO_SUSPENDED;
		c->awaiting = true;
		coil__coro_switch_out(c, &loop->sched);
		return 0;
	}
	coil__waiter_t w;
	coil__waiter_init(&w, t, sleep_cancel, NULL);
	w.what = "sleep";
	int64_t now = coil__loop_now(loop);
	int64_t when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
	rc = coil__waiter_timer_arm(&w, when);
	if (rc)
		return rc;
	rc = coil__task_suspend(&w);
	coil__waiter_timer_done(&w);
	return rc;
}

int coil_sleep(double seconds)
{
	if (!(seconds >= 0))
		return -EINVAL;
	double ns = seconds * 1e9;
	return coil_sleep_ns(ns >= 9.2e18 ? INT64_MAX : (int64_t)ns);
}
