/*
 * runtime/spin.h: the spinlock of coil's short critical sections (a few
 * pointer updates): an exchange to take it, a release store to drop it, and
 * after a short spin sched_yield (runtime/sched/runtime.c), because on a
 * machine with few cores the holder may have been preempted.
 */
#ifndef COIL_RUNTIME_SPIN_H
#define COIL_RUNTIME_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct coil__spin {
	atomic_uchar v;
} coil__spin_t;

void coil__spin_wait(coil__spin_t *l);

/* One step of a spin: tells the core it is spinning. */
static inline void coil__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void coil__spin_lock(coil__spin_t *l)
{
	if (__builtin_expect(atomic_exchange_explicit(&l->v, 1, memory_order_acquire), 0))
		coil__spin_wait(l);
}

/* Takes the lock if it is free now; returns whether it did. */
static inline bool coil__spin_trylock(coil__spin_t *l)
{
	return !atomic_load_explicit(&l->v, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}

static inline void coil__spin_unlock(coil__spin_t *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

#endif
