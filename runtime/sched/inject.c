/*
 * runtime/sched/inject.c: the global injection queue (see inject.h).
 */
#include "inject.h"

void coil__inject_init(coil__inject_t *in)
{
	atomic_init(&in->lock.v, 0);
	coil__fifo_init(&in->q);
	atomic_init(&in->len, 0);
	in->closed = false;
}

void coil__inject_fini(coil__inject_t *in)
{
	(void)in;
}

bool coil__inject_push_batch_ex(coil__inject_t *in, coil__fifo_t *batch, bool *was_empty)
{
	if (was_empty)
		*was_empty = false;
	if (!batch->len)
		return true;
	coil__spin_lock(&in->lock);
	if (in->closed) {
		coil__spin_unlock(&in->lock);
		return false;
	}
	if (was_empty)
		*was_empty = in->q.len == 0;
	coil__fifo_splice(&in->q, batch);
	atomic_store_explicit(&in->len, in->q.len, memory_order_release);
	coil__spin_unlock(&in->lock);
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

size_t coil__inject_pop_batch_ex(coil__inject_t *in, coil__fifo_t *out, size_t max,
				 bool *returned)
{
	if (returned)
		*returned = false;
	if (!coil__inject_len(in) || !max)
		return 0;
	/* Everything is taken at once and the batch cut off outside the
	 * lock: walking the list is a cache miss per node (the nodes were
	 * written by the pushers' CPUs), which must not stall the pushers
	 * spinning on the lock. `len` keeps its value meanwhile, so that a
	 * worker about to park still sees work. */
	coil__spin_lock(&in->lock);
	coil__fifo_t all = in->q;
	coil__fifo_init(&in->q);
	coil__spin_unlock(&in->lock);
	if (!all.len)
		return 0; /* another worker is cutting its batch */
	size_t n = 0;
	coil__fnode_t *node;
	while (n < max && (node = coil__fifo_pop(&all))) {
		coil__fifo_push(out, node);
		n++;
	}
	coil__spin_lock(&in->lock);
	if (all.len) {
		/* The rest goes back in front of what was pushed meanwhile. */
		*all.tailp = in->q.head;
		if (!in->q.head)
			in->q.tailp = all.tailp;
		in->q.head = all.head;
		in->q.len += all.len;
		if (returned)
			*returned = true;
	}
	atomic_store_explicit(&in->len, in->q.len, memory_order_release);
	coil__spin_unlock(&in->lock);
	return n;
}

size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max)
{
	return coil__inject_pop_batch_ex(in, out, max, NULL);
}

void coil__inject_close(coil__inject_t *in)
{
	coil__spin_lock(&in->lock);
	in->closed = true;
	coil__spin_unlock(&in->lock);
}
