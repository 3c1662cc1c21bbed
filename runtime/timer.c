/*
 * runtime/timer.c: the loop's timer heap.
 *
 * A binary min-heap of timer pointers ordered by (deadline, sequence), so
 * that timers with the same deadline fire in the order they were set, as in
 * asyncio. Each timer records its index, which makes cancellation O(log n):
 * the last entry takes the removed one's place and sifts up or down.
 */
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "core.h"

static inline bool before(const coil__timer_t *a, const coil__timer_t *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(coil__heap_t *h, uint32_t i)
{
	coil__timer_t *t = h->a[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!before(t, h->a[p]))
			break;
		h->a[i] = h->a[p];
		h->a[i]->idx = i;
		i = p;
	}
	h->a[i] = t;
	t->idx = i;
}

static void sift_down(coil__heap_t *h, uint32_t i)
{
	coil__timer_t *t = h->a[i];
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		const coil__timer_t *best = t;
		if (l < h->n && before(h->a[l], best)) {
			m = l;
			best = h->a[l];
		}
		if (l + 1 < h->n && before(h->a[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		h->a[i] = h->a[m];
		h->a[i]->idx = i;
		i = m;
	}
	h->a[i] = t;
	t->idx = i;
}

int coil__heap_push(coil__heap_t *h, coil__timer_t *t)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		if (cap < h->cap)
			return -ENOMEM;
		coil__timer_t **a = coil__malloc((size_t)cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		if (h->n)
			memcpy(a, h->a, (size_t)h->n * sizeof(*a));
		coil__free(h->a, (size_t)h->cap * sizeof(*a));
		h->a = a;
		h->cap = cap;
	}
	h->a[h->n] = t;
	sift_up(h, h->n++);
	return 0;
}

void coil__heap_remove(coil__heap_t *h, coil__timer_t *t)
{
	uint32_t i = t->idx;
	if (i == UINT32_MAX || i >= h->n || h->a[i] != t)
		return;
	t->idx = UINT32_MAX;
	coil__timer_t *last = h->a[--h->n];
	if (i == h->n)
		return;
	h->a[i] = last;
	last->idx = i;
	if (i > 0 && before(last, h->a[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

void coil__heap_free(coil__heap_t *h)
{
	coil__free(h->a, (size_t)h->cap * sizeof(*h->a));
	h->a = NULL;
	h->n = h->cap = 0;
}
