/*
 * bench/deque_shim.c: C side of the deque benchmarks (the deque is C11
 * atomics, which C++17 cannot include). Each function runs a batch of
 * operations so that the call into it is amortised.
 */
#include <stdint.h>
#include <stdlib.h>

#include "sched/deque.h"

#define BATCH 64
#define ITEM(i) ((void *)(((uintptr_t)(i) + 1) << 3))

coil__deque_t *shim_deque_new(void)
{
	coil__deque_t *q = malloc(sizeof(*q));
	if (q && coil__deque_init(q, 256) != 0) {
		free(q);
		return NULL;
	}
	return q;
}

void shim_deque_free(coil__deque_t *q)
{
	coil__deque_fini(q);
	free(q);
}

/* BATCH pushes then BATCH pops by the owner. */
uintptr_t shim_push_pop(coil__deque_t *q)
{
	uintptr_t sum = 0;
	for (int i = 0; i < BATCH; i++)
		coil__deque_push(q, ITEM(i));
	for (int i = 0; i < BATCH; i++)
		sum += (uintptr_t)coil__deque_pop(q);
	return sum;
}

/* BATCH pushes by the owner, then BATCH steals (uncontended). */
uintptr_t shim_push_steal(coil__deque_t *q)
{
	uintptr_t sum = 0;
	for (int i = 0; i < BATCH; i++)
		coil__deque_push(q, ITEM(i));
	for (int i = 0; i < BATCH; i++)
		sum += (uintptr_t)coil__deque_steal(q);
	return sum;
}

/* Contended: the owner pushes BATCH and pops what is left, while another
 * thread steals. Returns how many the owner got back. */
unsigned shim_owner_round(coil__deque_t *q)
{
	unsigned got = 0;
	for (int i = 0; i < BATCH; i++)
		while (!coil__deque_push(q, ITEM(i)))
			got += coil__deque_pop(q) != NULL;
	void *x;
	while ((x = coil__deque_pop(q)))
		got++;
	return got;
}

unsigned shim_thief_round(coil__deque_t *q)
{
	unsigned got = 0;
	for (int i = 0; i < BATCH; i++) {
		void *x = coil__deque_steal(q);
		got += x != NULL && x != COIL__DEQUE_ABORT;
	}
	return got;
}
