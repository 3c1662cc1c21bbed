/*
 * runtime/sched/deque.c: set-up of the work-stealing deque and stealing in
 * bulk (the protocol is in deque.h).
 */
#include "deque.h"

#include <errno.h>

#include "alloc.h"

int coil__deque_init(coil__deque_t *q, size_t capacity)
{
	size_t cap = 2;
	while (cap < capacity)
		cap <<= 1;
	q->buf = coil__calloc(cap * sizeof(*q->buf));
	if (!q->buf)
		return -ENOMEM;
	q->mask = cap - 1;
	atomic_init(&q->top, 0);
	atomic_init(&q->bottom, 0);
	return 0;
}

void coil__deque_fini(coil__deque_t *q)
{
	coil__free(q->buf, (q->mask + 1) * sizeof(*q->buf));
	q->buf = NULL;
}

size_t coil__deque_steal_half(coil__deque_t *src, coil__deque_t *dst, size_t max)
{
	size_t n = coil__deque_len(src);
	n = n - n / 2; /* half, rounded up: one item is worth taking */
	/* dst is the caller's own deque, so its length is exact and only our
	 * pushes fill it: staying within its free room makes every push below
	 * succeed. */
	size_t room = coil__deque_capacity(dst) - coil__deque_len(dst);
	if (max > room)
		max = room;
	if (n > max)
		n = max;
	size_t moved = 0;
	int aborts = 0;
	while (moved < n) {
		void *x = coil__deque_steal(src);
		if (x == NULL)
			break;
		if (x == COIL__DEQUE_ABORT) {
			/* Another thief or the owner won this one; a few
			 * retries, then leave the rest to them. */
			if (++aborts > 4)
				break;
			continue;
		}
		coil__deque_push(dst, x);
		moved++;
	}
	return moved;
}
