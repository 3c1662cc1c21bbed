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

size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max)
{
	if (!coil__inject_len(in) || !max)
		return 0;
	size_t n = 0;
	coil__spin_lock(&in->lock);
	coil__fnode_t *node;
	while (n < max && (node = coil__fifo_pop(&in->q))) {
		coil__fifo_push(out, node);
		n++;
	}
	atomic_store_explicit(&in->len, in->q.len, memory_order_release);
	coil__spin_unlock(&in->lock);
	return n;
}

void coil__inject_close(coil__inject_t *in)
{
	coil__spin_lock(&in->lock);
	in->closed = true;
	coil__spin_unlock(&in->lock);
}
