/*
 * runtime/alloc.h: the runtime's own allocations.
 *
 * Served by jemalloc's non-standard API (mallocx/sdallocx, sized frees, one
 * arena per loop) in normal builds, and by libc malloc in sanitizer builds,
 * whose tools cannot see jemalloc's memory (COIL_USE_JEMALLOC unset).
 * Allocation failures return NULL; callers turn that into -ENOMEM.
 */
#ifndef COIL_RUNTIME_ALLOC_H
#define COIL_RUNTIME_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef COIL_USE_JEMALLOC
#include <jemalloc/jemalloc.h>

/* The calling thread's arena flags (MALLOCX_ARENA of its loop), 0 when the
 * thread has no loop. */
extern __thread int coil__alloc_flags;

static inline void *coil__malloc(size_t n)
{
	return mallocx(n ? n : 1, coil__alloc_flags);
}
static inline void *coil__calloc(size_t n)
{
	return mallocx(n ? n : 1, coil__alloc_flags | MALLOCX_ZERO);
}
static inline void coil__free(void *p, size_t n)
{
	if (p)
		sdallocx(p, n ? n : 1, 0);
}
#else
static inline void *coil__malloc(size_t n) { return malloc(n ? n : 1); }
static inline void *coil__calloc(size_t n) { return calloc(1, n ? n : 1); }
static inline void coil__free(void *p, size_t n) { (void)n; free(p); }
#endif

/* Copies a string into a runtime allocation of strlen + 1 bytes. */
char *coil__strdup(const char *s);
/* Frees a string from coil__strdup. NULL is allowed (and cheap: most
 * names and messages are never set). */
static inline void coil__strfree(char *s)
{
	if (s)
		coil__free(s, strlen(s) + 1);
}

/* Gives the calling thread an arena of its own (jemalloc builds) and
 * returns it with coil__alloc_thread_release. Nested calls are counted. */
void coil__alloc_thread_acquire(void);
void coil__alloc_thread_release(void);

#endif
