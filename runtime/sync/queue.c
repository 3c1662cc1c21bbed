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
 * Threads: all state belongs to the thread of the loop the queue's tasks
 * run on; wake-ups go through coil__waiter_wake, which the multi-core
 * scheduler will make safe across workers.
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
	void *item;
};

static int cmp_intptr(const void *a, const void *b, void *arg)
{
	(void)arg;
	intptr_t x = (intptr_t)a, y = (intptr_t)b;
	return (x > y) - (x < y);
}

static void waiter_unlink(coil__waiter_t *w)
{
	coil__list_del(&w->cb.link);
}

/* Unlinks and returns the first waiter of l (which must not be empty). */
static struct qwaiter *first_waiter(coil__list_t *l)
{
	coil__list_t *n = l->next;
	coil__list_del(n);
	return coil__container_of(n, struct qwaiter, w.cb.link);
}

static void wake_all(coil__list_t *l, int code)
{
	while (!coil__list_empty(l))
		coil__waiter_wake(&first_waiter(l)->w, code);
}

/* Suspends the calling task on l until a waker hands it something. */
static int wait_on(coil__list_t *l, struct qwaiter *qw, coil_task_t *t,
		   coil_queue_t *q)
{
	coil__waiter_init(&qw->w, t, waiter_unlink, q);
	coil__list_push(l, &qw->w.cb.link);
	return coil__task_suspend(&qw->w);
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

static void drop_items(coil_queue_t *q)
{
	while (q->count) {
		void *item = store_pop(q);
		if (q->unfinished)
			q->unfinished--;
		if (q->item_dtor)
			q->item_dtor(item);
	}
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
	if (q->count)
		return -EBUSY;
	q->cmp = cmp ? cmp : cmp_intptr;
	q->cmp_arg = cmp ? arg : NULL;
	return 0;
}

int coil_queue_set_item_dtor(coil_queue_t *q, coil_dtor dtor)
{
	if (!q)
		return -EINVAL;
	q->item_dtor = dtor;
	return 0;
}

int coil_queue_destroy(coil_queue_t *q)
{
	if (!q)
		return -EINVAL;
	if (!coil__list_empty(&q->getters) || !coil__list_empty(&q->putters) ||
	    !coil__list_empty(&q->joiners))
		return -EBUSY;
	drop_items(q);
	if (q->kind == COIL_QUEUE_PRIORITY)
		coil__free(q->heap, q->cap * sizeof(*q->heap));
	else
		coil__free(q->ring, q->cap * sizeof(*q->ring));
	coil__free(q, sizeof(*q));
	return 0;
}

/* ---- put and get ---- */

static int put_now(coil_queue_t *q, void *item)
{
	if (q->shutdown)
		return COIL_ECLOSED;
	if (!coil__list_empty(&q->getters)) {
		/* The queue is empty: the first getter takes the item. */
		struct qwaiter *g = first_waiter(&q->getters);
		g->item = item;
		q->unfinished++;
		coil__waiter_wake(&g->w, 0);
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

static int get_now(coil_queue_t *q, void **item)
{
	if (!q->count)
		return q->shutdown ? COIL_ECLOSED : -EAGAIN;
	*item = store_pop(q);
	if (!coil__list_empty(&q->putters)) {
		/* The queue was full: the slot just freed is the first
		 * putter's, so nobody who came later can take it. */
		struct qwaiter *p = first_waiter(&q->putters);
		store_push(q, p->item);
		q->unfinished++;
		coil__waiter_wake(&p->w, 0);
	}
	return 0;
}

int coil_queue_put_nowait(coil_queue_t *q, void *item)
{
	if (!q)
		return -EINVAL;
	return put_now(q, item);
}

int coil_queue_put(coil_queue_t *q, void *item)
{
	if (!q)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	rc = put_now(q, item);
	if (rc != -EAGAIN)
		return rc;
	struct qwaiter pw;
	pw.item = item;
	return wait_on(&q->putters, &pw, t, q);
}

int coil_queue_get_nowait(coil_queue_t *q, void **item)
{
	if (!q || !item)
		return -EINVAL;
	return get_now(q, item);
}

int coil_queue_get(coil_queue_t *q, void **item)
{
	if (!q || !item)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc)
		return rc;
	rc = get_now(q, item);
	if (rc != -EAGAIN)
		return rc;
	struct qwaiter gw;
	gw.item = NULL;
	rc = wait_on(&q->getters, &gw, t, q);
	if (rc == 0)
		*item = gw.item;
	return rc;
}

/* ---- join ---- */

int coil_queue_task_done(coil_queue_t *q)
{
	if (!q || !q->unfinished)
		return -EINVAL;
	if (--q->unfinished == 0)
		wake_all(&q->joiners, 0);
	return 0;
}

int coil_queue_join(coil_queue_t *q)
{
	if (!q)
		return -EINVAL;
	coil_task_t *t;
	int rc = coil__suspend_check(&t);
	if (rc || !q->unfinished)
		return rc;
	struct qwaiter jw;
	return wait_on(&q->joiners, &jw, t, q);
}

int coil_queue_shutdown(coil_queue_t *q, bool immediate)
{
	if (!q)
		return -EINVAL;
	q->shutdown = true;
	if (immediate) {
		drop_items(q);
		if (!q->unfinished)
			wake_all(&q->joiners, 0);
	}
	/* Getters wait only on an empty queue, so none has anything left to
	 * drain; putters' items were never put and stay theirs. */
	wake_all(&q->getters, COIL_ECLOSED);
	wake_all(&q->putters, COIL_ECLOSED);
	return 0;
}

/* ---- accessors ---- */

size_t coil_queue_qsize(const coil_queue_t *q)
{
	return q ? q->count : 0;
}

bool coil_queue_empty(const coil_queue_t *q)
{
	return !q || q->count == 0;
}

bool coil_queue_full(const coil_queue_t *q)
{
	return q && q->maxsize && q->count >= q->maxsize;
}

size_t coil_queue_maxsize(const coil_queue_t *q)
{
	return q ? q->maxsize : 0;
}

bool coil_queue_is_shutdown(const coil_queue_t *q)
{
	return q && q->shutdown;
}
