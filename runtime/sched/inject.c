/*
 * runtime/sched/inject.c: the global injection queue (see inject.h).
 */
#include "inject.h"

void coil__inject_init(coil__inject_t *in)
{
	pthread_mutex_init(&in->lock, NULL);
	coil__fifo_init(&in->q);
	atomic_init(&in->len, 0);
	in->closed = false;
}

void coil__inject_fini(coil__inject_t *in)
{
	pthread_mutex_destroy(&in->lock);
}

bool coil__inject_push_batch(coil__inject_t *in, coil__fifo_t *batch)
{
	if (!batch->len)
		return true;
	pthread_mutex_lock(&in->lock);
	if (in->closed) {
		pthread_mutex_unlock(&in->lock);
		return false;
	}
	coil__fifo_splice(&in->q, batch);
	atomic_store_explicit(&in->len, in->q.len, memory_order_release);
	pthread_mutex_unlock(&in->lock);
	return true;
}

bool coil__inject_push(coil__inject_t *in, coil__fnode_t *n)
{
	coil__fifo_t one;
	coil__fifo_init(&one);
	coil__fifo_push(&one, n);
	return coil__inject_push_batch(in, &one);
}

size_t coil__inject_pop_batch(coil__inject_t *in, coil__fifo_t *out, size_t max)
{
	if (!coil__inject_len(in) || !max)
		return 0;
	size_t n = 0;
	pthread_mutex_lock(&in->lock);
	coil__fnode_t *node;
	while (n < max && (node = coil__fifo_pop(&in->q))) {
		coil__fifo_push(out, node);
		n++;
	}
	atomic_store_explicit(&in->len, in->q.len, memory_order_release);
	pthread_mutex_unlock(&in->lock);
	return n;
}

void coil__inject_close(coil__inject_t *in)
{
	pthread_mutex_lock(&in->lock);
	in->closed = true;
	pthread_mutex_unlock(&in->lock);
}
