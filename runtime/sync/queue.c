/*
 * runtime/sync/queue.c: asyncio's Queue, LifoQueue and PriorityQueue (see
 * coil/sync.h).
 *
 * Storage: FIFO and LIFO queues keep their items in a ring buffer whose
 * capacity is a power of two and doubles when it fills; a priority queue
 * keeps a binary min-heap of (item, sequence number) entries, the sequence
 * number making equal items come out in the order they were put. Nothing is
 * allocated per item: a put allocates only when the storage grows.
 *
 * Waiters: getters, putters and joiners wait in three intrusive lists, in
 * arrival order, each on a qwaiter on its own stack (a putter's carries the
 * item it wants to put, a getter's receives the item it is given).
 *
 * Invariants, which make the queue fair without any retry loop:
 *  - getters wait only while the queue is empty: a put with a getter
 *    waiting hands its item straight to the first getter;
 *  - putters wait only while the queue is full: a get that frees a slot
 *    moves the first putter's item in at once and wakes that putter;
 *  - `unfinished` counts the items put (stored or handed over) and not yet
 *    marked done by task_done; joiners wait while it is not 0.
 * A waiter is unlinked before it is woken, and a cancelled waiter is
 * unlinked by its cancel hook, so the lists hold only tasks still waiting:
 * a cancelled getter never swallows an item, a cancelled putter never puts
 * one, and what a woken waiter was handed stays its own.
 *
 * Threads: the queue's tasks may run on different workers. `lock` (a
 * spinlock, free of cost until a multi-worker runtime exists) guards the
 * storage, the counters and the three lists; it is never held across a
 * suspension. A waker claims the waiter it hands something to
 * (coil__waiter_claim), unlinks it and hands it over (the item, the stored
 * slot) under the spinlock, and wakes it after dropping it. A waiter that a
 * canceller claimed first stays linked until the cancel hook, which takes
 * the spinlock, unlinks it: wakers pass over it, so the invariants above
 * hold for the waiters nobody has claimed. The item destructor runs
 * without the spinlock, on items taken out of the queue first; a priority
 * queue's compare function runs under it, so it must not use the queue.
 * Storage grows under the spinlock (one allocation now and then).
 */
#include <stdint.h>

#include "coil/sync.h"
#include "core.h"

#define RING_MIN 8

struct hent {
	void *item;
	uint64_t seq;
};

struct coil_queue {
	coil__spin_t lock;        /* everything below but kind */
	coil_queue_kind_t kind;
	bool shutdown;
	size_t maxsize;           /* 0: unbounded */
	size_t count;             /* items stored */
	size_t cap;               /* slots allocated */
	size_t head;              /* ring: the oldest item */
	void **ring;              /* FIFO and LIFO */
	struct hent *heap;        /* priority */
	uint64_t seq;             /* priority: next sequence number */
	coil_queue_cmp cmp;
	void *cmp_arg;
	coil_dtor item_dtor;
	size_t unfinished;        /* put and not yet task_done */
	coil__list_t getters;
	coil__list_t putters;
	coil__list_t joiners;
};

struct qwaiter {
	coil__waiter_t w;
	void *item;               /* a putter's item */
	void **dst;               /* where a getter's item goes */
};
_Static_assert(sizeof(struct qwaiter) <= COIL__WAIT_SLOT, "a getter's tail wait");

static int cmp_intptr(const void *a, const void *b, void *arg)
{
	(void)arg;
	intptr_t x = (intptr_t)a, y = (intptr_t)b;
	return (x > y) - (x < y);
}

/* The cancel hook: the canceller has claimed w. */
static void waiter_unlink(coil__waiter_t *w)
{
	coil_queue_t *q = w->source;
	coil__lock(&q->lock);
	coil__list_del(&w->cb.link);
	coil__unlock(&q->lock);
}

/* Under the lock: claims and unlinks the first waiter of l that nobody
 * else has claimed, or returns NULL. Only a waiter's claimer unlinks it,
 * so it is unlinked once. */
static inline __attribute__((always_inline)) struct qwaiter *take_first(coil__list_t *l, bool mt)
{
	for (coil__list_t *p = l->next; p != l; p = p->next) {
		struct qwaiter *qw = coil__container_of(p, struct qwaiter, w.cb.link);
		if (coil__waiter_claim_x(&qw->w, mt)) {
			coil__list_del_once(p);
			return qw;
		}
	}
	return NULL;
}

/* Under the lock: moves every waiter of l it can claim to `to`. */
static void take_all(coil__list_t *l, coil__list_t *to)
{
	coil__list_t *p = l->next;
	while (p != l) {
		coil__list_t *next = p->next;
		if (coil__waiter_claim(coil__container_of(p, coil__waiter_t, cb.link))) {
			coil__list_del(p);
			coil__list_push(to, p);
		}
		p = next;
	}
}

/* Without the lock: wakes the waiters take_all took. */
static void wake_all(coil__list_t *l, int code)
{
	while (!coil__list_empty(l)) {
		coil__list_t *n = l->next;
		coil__list_del(n);
		coil__waiter_wake(coil__container_of(n, coil__waiter_t, cb.link), code);
	}
}

/* Queues the calling task on l, drops the lock and suspends until a waker
 * hands it something. */
static inline __attribute__((always_inline)) int wait_on(coil__list_t *l, struct qwaiter *qw, coil_task_t *t,
		   coil_queue_t *q, const char *what, bool mt)
{
	coil__waiter_init(&qw->w, t, waiter_unlink, q);
	qw->w.what = what;
	/* Read before the list stores, which the compiler cannot tell
	 * apart from stores to the task. */
	coil__task_body_t *b = t->body;
	coil_coro_t *c = coil__cur;
	coil__list_push(l, &qw->w.cb.link);
	coil__unlock_x(&q->lock, mt);
	return coil__task_suspend_in(&qw->w, b, c, mt);
}

/* ---- storage ---- */

static bool heap_less(const coil_queue_t *q, const struct hent *a,
		      const struct hent *b)
{
	int c = q->cmp(a->item, b->item, q->cmp_arg);
	return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Makes room for one more item. */
static int store_reserve(coil_queue_t *q)
{
	if (q->count < q->cap)
		return 0;
	size_t ncap = q->cap ? q->cap * 2 : RING_MIN;
	if (ncap > SIZE_MAX / sizeof(struct hent))
		return -ENOMEM;
	if (q->kind == COIL_QUEUE_PRIORITY) {
		struct hent *h = coil__malloc(ncap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		if (q->count)
			memcpy(h, q->heap, q->count * sizeof(*h));
		coil__free(q->heap, q->cap * sizeof(*h));
		q->heap = h;
	} else {
		void **r = coil__malloc(ncap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		/* Unwrap the ring so that the oldest item lands at 0. */
		for (size_t i = 0; i < q->count; i++)
			r[i] = q->ring[(q->head + i) & (q->cap - 1)];
		coil__free(q->ring, q->cap * sizeof(*r));
		q->ring = r;
		q->head = 0;
	}
	q->cap = ncap;
	return 0;
}

/* Stores an item; store_reserve has made room. */
static void store_push(coil_queue_t *q, void *item)
{
	if (q->kind != COIL_QUEUE_PRIORITY) {
		q->ring[(q->head + q->count++) & (q->cap - 1)] = item;
		return;
	}
	struct hent e = { item, q->seq++ };
	size_t i = q->count++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(q, &e, &q->heap[p]))
			break;
		q->heap[i] = q->heap[p];
		i = p;
	}
	q->heap[i] = e;
}

/* Removes and returns the next item; the queue must not be empty. */
static void *store_pop(coil_queue_t *q)
{
	void *item;
	switch (q->kind) {
	case COIL_QUEUE_FIFO:
		item = q->ring[q->head];
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
		return item;
	case COIL_QUEUE_LIFO:
		q->count--;
		return q->ring[(q->head + q->count) & (q->cap - 1)];
	default:
		break;
	}
	item = q->heap[0].item;
	struct hent last = q->heap[--q->count];
	size_t n = q->count, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(q, &q->heap[c + 1], &q->heap[c]))
			c++;
		if (!heap_less(q, &q->heap[c], &last))
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	q->heap[i] = last;
	return item;
}

/*
 * Under the lock: moves the stored items out of q into `out` (a queue that
 * only owns storage), so that their destructor can run without the lock;
 * each counts as done.
 */
static void take_items(coil_queue_t *q, coil_queue_t *out)
{
	*out = (coil_queue_t){ .kind = q->kind, .count = q->count, .cap = q->cap,
			       .head = q->head, .ring = q->ring, .heap = q->heap,
			       .cmp = q->cmp, .cmp_arg = q->cmp_arg,
			       .item_dtor = q->item_dtor };
	q->unfinished = q->unfinished > q->count ? q->unfinished - q->count : 0;
	q->count = 0;
	q->cap = 0;
	q->head = 0;
	q->ring = NULL;
	q->heap = NULL;
}

/* Without the lock: destroys what take_items took, in the order a get
 * would have returned it, and frees its storage. */
static void drop_items(coil_queue_t *q)
{
	while (q->count) {
		void *item = store_pop(q);
		if (q->item_dtor)
			q->item_dtor(item);
	}
	if (q->kind == COIL_QUEUE_PRIORITY)
		coil__free(q->heap, q->cap * sizeof(*q->heap));
	else
		coil__free(q->ring, q->cap * sizeof(*q->ring));
}

/* ---- life ---- */

int coil_queue_create(coil_queue_t **out, coil_queue_kind_t kind,
		      size_t maxsize)
{
	if (!out || maxsize > PTRDIFF_MAX)
		return -EINVAL;
	if (kind != COIL_QUEUE_FIFO && kind != COIL_QUEUE_LIFO &&
	    kind != COIL_QUEUE_PRIORITY)
		return -EINVAL;
	coil_queue_t *q = coil__calloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	atomic_init(&q->lock.v, 0);
	q->kind = kind;
	q->maxsize = maxsize;
	q->cmp = cmp_intptr;
	coil__list_init(&q->getters);
	coil__list_init(&q->putters);
	coil__list_init(&q->joiners);
	*out = q;
	return 0;
}

int coil_queue_set_compare(coil_queue_t *q, coil_queue_cmp cmp, void *arg)
{
	if (!q || q->kind != COIL_QUEUE_PRIORITY)
		return -EINVAL;
	int rc = 0;
	coil__lock(&q->lock);
	if (q->count) {
		rc = -EBUSY;
	} else {
		q->cmp = cmp ? cmp : cmp_intptr;
		q->cmp_arg = cmp ? arg : NULL;
	}
	coil__unlock(&q->lock);
	return rc;
}

int coil_queue_set_item_dtor(coil_queue_t *q, coil_dtor dtor)
{
	if (!q)
		return -EINVAL;
	coil__lock(&q->lock);
	q->item_dtor = dtor;
	coil__unlock(&q->lock);
	return 0;
}

int coil_queue_destroy(coil_queue_t *q)
{
	if (!q)
		return -EINVAL;
	coil__lock(&q->lock);
	bool busy = !coil__list_empty(&q->getters) ||
		    !coil__list_empty(&q->putters) ||
		    !coil__list_empty(&q->joiners);
	coil_queue_t items;
	if (!busy)
		take_items(q, &items);
	coil__unlock(&q->lock);
	if (busy)
		return -EBUSY;
	drop_items(&items);
	coil__free(q, sizeof(*q));
	return 0;
}

/* ---- put and get ---- */

/* Under the lock: puts item without waiting, or says -EAGAIN. A getter
 * handed the item directly is returned in *wake, to be woken unlocked. */
static inline __attribute__((always_inline)) int put_now(coil_queue_t *q, void *item, struct qwaiter **wake,
				       bool mt)
{
	if (q->shutdown)
		return COIL_ECLOSED;
	struct qwaiter *g = take_first(&q->getters, mt);
	if (g) {
		/* The queue is empty: the first getter takes the item. */
		*g->dst = item;
		q->unfinished++;
		*wake = g;
		return 0;
	}
	if (q->maxsize && q->count >= q->maxsize)
		return -EAGAIN;
	int rc = store_reserve(q);
	if (rc)
		return rc;
	store_push(q, item);
	q->unfinished++;
	return 0;
}

/* Under the lock: gets an item without waiting, or says -EAGAIN (or
 * COIL_ECLOSED). A putter whose item took the freed slot is returned in
 * *wake. */
static inline __attribute__((always_inline)) int get_now(coil_queue_t *q, void **item, struct qwaiter **wake,
				       bool mt)
{
	if (!q->count)
		return q->shutdown ? COIL_ECLOSED : -EAGAIN;
	*item = store_pop(q);
	struct qwaiter *p = take_first(&q->putters, mt);
	if (p) {
		/* The queue was full: the slot just freed is the first
		 * putter's, so nobody who came later can take it. */
		store_push(q, p->item);
		q->unfinished++;
		*wake = p;
	}
	return 0;
}

/* Wakes (unlocked) the waiter put_now or get_now handed something to. */
static inline __attribute__((always_inline)) void wake_one(struct qwaiter *qw, bool mt)
{
	if (qw)
		coil__waiter_wake_claimed_x(&qw->w, 0, mt);
}

int coil_queue_put_nowait(coil_queue_t *q, void *item)
{
	if (!q)
		return -EINVAL;
	struct qwaiter *wake = NULL;
	bool mt = coil__mt();
	coil__lock_x(&q->lock, mt);
	int rc = put_now(q, item, &wake, mt);
	coil__unlock_x(&q->lock, mt);
	wake_one(wake, mt);
	return rc;
}

/* Under the lock: the queue is full, wait for a slot. Out of line, so that
 * a put that does not wait saves no registers for a task switch. */
static __attribute__((noinline)) int put_wait(coil_queue_t *q, void *item,
					      coil_task_t *t, bool mt)
{
	struct qwaiter pw;
	pw.item = item;
	return wait_on(&q->putters, &pw, t, q, "queue put", mt);
}

static inline __attribute__((always_inline)) int put_x(coil_queue_t *q, void *item,
						       coil_task_t *t, bool mt)
{
	struct qwaiter *wake = NULL;
	coil__lock_x(&q->lock, mt);
	int rc = put_now(q, item, &wake, mt);
	if (rc != -EAGAIN) {
		coil__unlock_x(&q->lock, mt);
		wake_one(wake, mt);
		return rc;
	}
	return put_wait(q, item, t, mt);
}

int coil_queue_put(coil_queue_t *q, void *item)
{
	if (!q)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	return coil__mt() ? put_x(q, item, t, true) : put_x(q, item, t, false);
}

int coil_queue_get_nowait(coil_queue_t *q, void **item)
{
	if (!q || !item)
		return -EINVAL;
	struct qwaiter *wake = NULL;
	bool mt = coil__mt();
	coil__lock_x(&q->lock, mt);
	int rc = get_now(q, item, &wake, mt);
	coil__unlock_x(&q->lock, mt);
	wake_one(wake, mt);
	return rc;
}

/* Under the lock, several workers: the queue is empty, wait for an item,
 * which the putter stores in *item before it wakes us. */
static __attribute__((noinline)) int get_wait_mt(coil_queue_t *q, void **item, coil_task_t *t)
{
	struct qwaiter gw;
	gw.dst = item;
	return wait_on(&q->getters, &gw, t, q, "queue get", true);
}

static inline __attribute__((always_inline)) int get_x(coil_queue_t *q, void **item,
						       coil_task_t *t, bool mt)
{
	struct qwaiter *wake = NULL;
	coil__lock_x(&q->lock, mt);
	int rc = get_now(q, item, &wake, mt);
	if (rc != -EAGAIN) {
		coil__unlock_x(&q->lock, mt);
		wake_one(wake, mt);
		return rc;
	}
	if (mt)
		return get_wait_mt(q, item, t);
	/* One thread: a tail wait (core.h), the waiter in the coroutine's
	 * wait slot; a putter stores its item in *item. */
	coil_coro_t *c = coil__cur;
	struct qwaiter *gw = coil__coro_wait_slot(c);
	coil__waiter_init(&gw->w, t, waiter_unlink, q);
	gw->w.what = "queue get";
	gw->dst = item;
	coil__task_body_t *b = t->body;
	coil__list_push(&q->getters, &gw->w.cb.link);
	return coil__task_wait_tail(&gw->w, b, c);
}

int coil_queue_get(coil_queue_t *q, void **item)
{
	if (!q || !item)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	return coil__mt() ? get_x(q, item, t, true) : get_x(q, item, t, false);
}

/* ---- join ---- */

int coil_queue_task_done(coil_queue_t *q)
{
	if (!q)
		return -EINVAL;
	coil__list_t woken;
	coil__list_init(&woken);
	coil__lock(&q->lock);
	if (!q->unfinished) {
		coil__unlock(&q->lock);
		return -EINVAL;
	}
	if (--q->unfinished == 0)
		take_all(&q->joiners, &woken);
	coil__unlock(&q->lock);
	wake_all(&woken, 0);
	return 0;
}

int coil_queue_join(coil_queue_t *q)
{
	if (!q)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	bool mt = coil__mt();
	coil__lock_x(&q->lock, mt);
	if (!q->unfinished) {
		coil__unlock_x(&q->lock, mt);
		return 0;
	}
	struct qwaiter jw;
	return wait_on(&q->joiners, &jw, t, q, "queue join", mt);
}

int coil_queue_shutdown(coil_queue_t *q, bool immediate)
{
	if (!q)
		return -EINVAL;
	coil__list_t joiners, getters, putters;
	coil__list_init(&joiners);
	coil__list_init(&getters);
	coil__list_init(&putters);
	coil_queue_t items = { .count = 0 };
	coil__lock(&q->lock);
	q->shutdown = true;
	if (immediate) {
		take_items(q, &items);
		if (!q->unfinished)
			take_all(&q->joiners, &joiners);
	}
	/* Getters wait only on an empty queue, so none has anything left to
	 * drain; putters' items were never put and stay theirs. */
	take_all(&q->getters, &getters);
	take_all(&q->putters, &putters);
	coil__unlock(&q->lock);
	if (immediate)
		drop_items(&items);
	wake_all(&joiners, 0);
	wake_all(&getters, COIL_ECLOSED);
	wake_all(&putters, COIL_ECLOSED);
	return 0;
}

/* ---- accessors ---- */

size_t coil_queue_qsize(const coil_queue_t *q)
{
	if (!q)
		return 0;
	coil_queue_t *m = (coil_queue_t *)q;
	coil__lock(&m->lock);
	size_t n = m->count;
	coil__unlock(&m->lock);
	return n;
}

bool coil_queue_empty(const coil_queue_t *q)
{
	return coil_queue_qsize(q) == 0;
}

bool coil_queue_full(const coil_queue_t *q)
{
	return q && q->maxsize && coil_queue_qsize(q) >= q->maxsize;
}

size_t coil_queue_maxsize(const coil_queue_t *q)
{
	return q ? q->maxsize : 0;
}

bool coil_queue_is_shutdown(const coil_queue_t *q)
{
	if (!q)
		return false;
	coil_queue_t *m = (coil_queue_t *)q;
	coil__lock(&m->lock);
	bool down = m->shutdown;
	coil__unlock(&m->lock);
	return down;
}
