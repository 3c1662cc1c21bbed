/*
 * runtime/sched/inject.c: the global injection queue (see inject.h).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inject.h"

/* The ring's first size, and the size above which an empty queue gives
 * its ring back. */
#define RING_MIN 256
#define RING_KEEP 4096

void coil__inject_init(coil__inject_t *in)
{
	atomic_init(&in->lock.v, 0);
	in->ring = NULL;
	in->cap = in->head = in->n = 0;
	coil__fifo_init(&in->over);
	in->max_cap = 0;
	atomic_init(&in->len, 0);
	in->closed = false;
}

void coil__inject_fini(coil__inject_t *in)
{
	free(in->ring);
	in->ring = NULL;
	in->cap = 0;
}

/* With the lock held: a ring of `cap` slots (a power of two, at least n)
 * replaces the queue's, keeping its order. Returns the old ring for the
 * caller to free once the lock is dropped. */
static coil__fnode_t **ring_swap(coil__inject_t *in, coil__fnode_t **ring, size_t cap)
{
	coil__fnode_t **old = in->ring;
	for (size_t i = 0; i < in->n; i++)
		ring[i] = old[(in->head + i) & (in->cap - 1)];
	in->ring = ring;
	in->cap = cap;
	in->head = 0;
	return old;
}

static inline void publish_len(coil__inject_t *in)
{
	atomic_store_explicit(&in->len, in->n + in->over.len, memory_order_release);
}

/*
 * Takes the lock and makes room in the ring for `extra` more nodes if it
 * can (allocating without the lock, then looking again). Returns with the
 * lock held and true, or, for a closed queue, false without it; *room
 * tells whether the nodes go into the ring (else behind it, on `over`).
 * The ring a growth replaced (or one allocated and not needed after all)
 * is left in *old for the caller to free once the lock is dropped.
 */
static bool lock_for_push(coil__inject_t *in, size_t extra, bool *room,
			  coil__fnode_t ***old)
{
	coil__fnode_t **grown = NULL;
	size_t grown_cap = 0;
	bool no_mem = false;
	*old = NULL;
	coil__spin_lock(&in->lock);
	for (;;) {
		if (in->closed) {
			coil__spin_unlock(&in->lock);
			free(grown);
			return false;
		}
		size_t need = in->n + extra;
		if (in->over.len || no_mem) {
			*room = false;
			break;
		}
		if (need <= in->cap) {
			*room = true;
			break;
		}
		if (grown_cap >= need) {
			*old = ring_swap(in, grown, grown_cap);
			grown = NULL;
			*room = true;
			break;
		}
		size_t cap = in->cap ? in->cap : RING_MIN;
		while (cap < need)
			cap *= 2;
		coil__spin_unlock(&in->lock);
		free(grown);
		grown = in->max_cap && cap > in->max_cap ? NULL : coil__libc_malloc(cap * sizeof(*grown));
		grown_cap = grown ? cap : 0;
		no_mem = !grown;
		coil__spin_lock(&in->lock);
	}
	/* A growth allocated for a need that shrank meanwhile goes unused
	 * (only the swap above sets *old, and it uses grown). */
	if (grown)
		*old = grown;
	return true;
}

bool coil__inject_push_batch_ex(coil__inject_t *in, coil__fifo_t *batch, bool *was_empty)
{
	if (was_empty)
		*was_empty = false;
	if (!batch->len)
		return true;
	bool room;
	coil__fnode_t **old;
	if (!lock_for_push(in, batch->len, &room, &old))
		return false;
	if (was_empty)
		*was_empty = in->n + in->over.len == 0;
	if (room) {
		coil__fnode_t *node;
		size_t mask = in->cap - 1;
		while ((node = coil__fifo_pop(batch)))
			in->ring[(in->head + in->n++) & mask] = node;
	} else {
		coil__fifo_splice(&in->over, batch);
	}
	publish_len(in);
	coil__spin_unlock(&in->lock);
	free(old);
	return true;
}

bool coil__inject_push_nodes(coil__inject_t *in, coil__fnode_t *const *nodes, size_t n,
			     bool *was_empty)
{
	if (was_empty)
		*was_empty = false;
	if (!n)
		return true;
	bool room;
	coil__fnode_t **old;
	if (!lock_for_push(in, n, &room, &old))
		return false;
	if (was_empty)
		*was_empty = in->n + in->over.len == 0;
	size_t mask = in->cap - 1;
	for (size_t i = 0; i < n; i++) {
		if (room)
			in->ring[(in->head + in->n++) & mask] = nodes[i];
		else
			coil__fifo_push(&in->over, nodes[i]);
	}
	publish_len(in);
	coil__spin_unlock(&in->lock);
	free(old);
	return true;
}

bool coil__inject_push_batch(coil__inject_t *in, coil__fifo_t *batch)
{
	return coil__inject_push_batch_ex(in, batch, NULL);
}

bool coil__inject_push_ex(coil__inject_t *in, coil__fnode_t *n, bool *was_empty)
{
	coil__fifo_t one;
	coil__fifo_init(&one);
	coil__fifo_push(&one, n);
	return coil__inject_push_batch_ex(in, &one, was_empty);
}

bool coil__inject_push(coil__inject_t *in, coil__fnode_t *n)
{
	return coil__inject_push_ex(in, n, NULL);
}

size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max)
{
	if (!coil__inject_len(in) || !max)
		return 0;
	if (max > COIL__INJECT_POP_MAX)
		max = COIL__INJECT_POP_MAX;
	coil__fnode_t *got[COIL__INJECT_POP_MAX];
	coil__fnode_t **freed = NULL;
	size_t k = 0;
	coil__spin_lock(&in->lock);
	if (in->n) {
		size_t mask = in->cap - 1;
		k = in->n < max ? in->n : max;
		for (size_t i = 0; i < k; i++)
			got[i] = in->ring[(in->head + i) & mask];
		in->head = (in->head + k) & mask;
		in->n -= k;
		if (!in->n && !in->over.len && in->cap > RING_KEEP) {
			freed = in->ring;
			in->ring = NULL;
			in->cap = in->head = 0;
		}
	} else {
		/* The ring is empty: what queued behind it while it could
		 * not grow. */
		while (k < max && (got[k] = coil__fifo_pop(&in->over)))
			k++;
	}
	publish_len(in);
	coil__spin_unlock(&in->lock);
	free(freed);
	/* The links are written here, outside the lock: a cache miss per
	 * node, but independent ones, which overlap. */
	for (size_t i = 0; i < k; i++)
		coil__fifo_push(out, got[i]);
	return k;
}

void coil__inject_close(coil__inject_t *in)
{
	coil__spin_lock(&in->lock);
	in->closed = true;
	coil__spin_unlock(&in->lock);
}
