/*
 * runtime/fault.h: allocation-failure injection for the tests.
 *
 * Compiled in where COIL_FAULT_INJECT is 1 (the CMake option of the same
 * name: on in the checker builds, off in the jemalloc build that benchmarks
 * and installs use). Every runtime allocation point (coil__malloc and its
 * kin, the libc allocations of runtime/ and io/, task stacks) asks
 * coil__fault() first and fails as if memory were exhausted when it answers
 * true. Where the option is off coil__fault() is the constant false and the
 * allocation paths are the same code as before.
 *
 * Tests reach it through this header only (it is not part of include/coil/).
 */
#ifndef COIL_RUNTIME_FAULT_H
#define COIL_RUNTIME_FAULT_H

#include <stdbool.h>

#ifndef COIL_FAULT_INJECT
#define COIL_FAULT_INJECT 0
#endif

#if COIL_FAULT_INJECT
#include <stdatomic.h>

/* 0: no failure armed. n > 0: the nth allocation from now fails. */
extern _Atomic long coil__fault_countdown;

bool coil__fault_slow(void);

/* True when the allocation about to be made must fail. One relaxed load
 * and a branch while nothing is armed. */
static inline bool coil__fault(void)
{
	if (__builtin_expect(atomic_load_explicit(&coil__fault_countdown,
						  memory_order_relaxed) == 0, 1))
		return false;
	return coil__fault_slow();
}

/* Arms a failure of the nth following allocation, counted over every
 * thread (n = 1: the next one); 0 disarms. One failure per call: the
 * allocations after it succeed. */
void coil__fault_set(long n);
/* How many failures have been injected since the program started. */
long coil__fault_count(void);
#else
static inline bool coil__fault(void) { return false; }
#endif

#endif
