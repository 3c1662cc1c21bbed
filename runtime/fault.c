/*
 * runtime/fault.c: allocation-failure injection (see fault.h).
 */
#include "fault.h"

#if COIL_FAULT_INJECT
_Atomic long coil__fault_countdown;
static _Atomic long fault_hits;

bool coil__fault_slow(void)
{
	/* A decrement that never takes the count below 0: allocations on
	 * other threads race for the armed one, and exactly one gets it. */
	long c = atomic_load_explicit(&coil__fault_countdown, memory_order_relaxed);
	while (c > 0) {
		if (atomic_compare_exchange_weak_explicit(&coil__fault_countdown,
							  &c, c - 1,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			if (c != 1)
				return false;
			atomic_fetch_add_explicit(&fault_hits, 1, memory_order_relaxed);
			return true;
		}
	}
	return false;
}

void coil__fault_set(long n)
{
	atomic_store_explicit(&coil__fault_countdown, n > 0 ? n : 0,
			      memory_order_relaxed);
}

long coil__fault_count(void)
{
	return atomic_load_explicit(&fault_hits, memory_order_relaxed);
}
#endif
