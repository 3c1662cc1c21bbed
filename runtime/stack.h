/*
 * runtime/stack.h: coroutine stacks, guarded, pooled and reused.
 *
 * Stacks are carved from large mappings (a chunk holds many stacks), each
 * with a guard page below it: MADV_GUARD_INSTALL where the kernel has it
 * (Linux 6.13+; one mapping then holds many guarded stacks without splitting
 * it, so a million guarded stacks fit under vm.max_map_count), mprotect
 * elsewhere (each guard splits the mapping: about 32,000 stacks under the
 * default vm.max_map_count of 65530). Freed stacks go to a per-thread cache
 * and then to a global pool; past a high-water mark of pooled bytes the
 * memory of pooled stacks is returned to the kernel (MADV_DONTNEED) while the
 * address range stays reserved. Stacks are registered with Valgrind.
 *
 * Threads: any thread may allocate and free; a stack freed on another thread
 * than the one that allocated it is fine.
 */
#ifndef COIL_RUNTIME_STACK_H
#define COIL_RUNTIME_STACK_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct coil__stack {
	void *lo;               /* lowest usable byte (just above the guard) */
	size_t size;            /* usable bytes, a multiple of the page size */
	struct coil__stack *next; /* free-list link, owned by the pool */
	unsigned vg_id;         /* Valgrind stack id, 0 if none */
	unsigned flags;         /* pool-private */
} coil__stack_t;

enum { COIL__GUARD_NONE = 0, COIL__GUARD_MADVISE = 1, COIL__GUARD_MPROTECT = 2 };

/* Returns a stack of at least `size` usable bytes (rounded up to pages) with
 * a guard page below it. Returns NULL when out of memory or mappings. */
coil__stack_t *coil__stack_alloc(size_t size);

/* Gives a stack back to the pool. NULL is allowed. */
void coil__stack_free(coil__stack_t *s);

/* Returns the guard mode in use (probed once). */
int coil__stack_guard_mode(void);

/* Returns the size of a guard region in bytes. */
size_t coil__stack_guard_size(void);

/* Returns true if addr lies in s's guard page, or below s->lo within
 * `slack` bytes (a large frame may jump past the guard). */
bool coil__stack_is_overflow(const coil__stack_t *s, const void *addr, size_t slack);

/* Returns the process-wide count of stacks handed out and not freed, and of
 * bytes mapped for stacks (for tests). */
size_t coil__stack_live_count(void);
size_t coil__stack_mapped_bytes(void);

/* Gives back to the kernel the memory of pooled stacks past the high-water
 * mark (COIL_STACK_POOL_MAX), unless stacks were drawn from the pool in the
 * last second (and `now` is false): then it returns how many ns to wait
 * before trying again (else 0). Cheap when there is nothing to do; loops
 * call it before they sleep. Any thread. */
int64_t coil__stack_pool_shrink(bool now);

/* Frees every pooled stack and unmaps chunks whose stacks are all free (tests
 * and process exit). */
void coil__stack_trim(void);

#endif
