/*
 * runtime/alloc.h: the runtime's own allocations.
 *
 * Served by jemalloc's non-standard API (mallocx/sdallocx, sized frees, one
 * arena per loop thread) in normal builds, and by libc malloc in sanitizer builds,
 * whose tools cannot see jemalloc's memory (COIL_USE_JEMALLOC unset).
 * Allocation failures return NULL; callers turn that into -ENOMEM.
 */
#ifndef COIL_RUNTIME_ALLOC_H
#define COIL_RUNTIME_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#ifdef COIL_USE_JEMALLOC
#include <jemalloc/jemalloc.h>

/* mallocx without flags: the thread's own arena (bound while it drives a
 * loop, see coil__alloc_thread_acquire) and its thread cache. */
static inline void *coil__malloc(size_t n)
{
	if (coil__fault())
		return NULL;
	return mallocx(n ? n : 1, 0);
}
static inline void *coil__calloc(size_t n)
{
	if (coil__fault())
		return NULL;
	return mallocx(n ? n : 1, MALLOCX_ZERO);
}
static inline void coil__free(void *p, size_t n)
{
	if (p)
		sdallocx(p, n ? n : 1, 0);
}
/* Frees p (of n bytes) straight back to the arena it came from, past the
 * calling thread's cache: memory another thread allocated, which the next
 * allocations here would otherwise reuse from that cache, sharing cache
 * lines with that thread's objects of the same size. */
static inline void coil__free_remote(void *p, size_t n)
{
	if (p)
		sdallocx(p, n ? n : 1, MALLOCX_TCACHE_NONE);
}
/* Zeroed, 64-byte aligned (structures with cache-line groups); freed with
 * coil__free_aligned64 and the same size. */
static inline void *coil__calloc_aligned64(size_t n)
{
	if (coil__fault())
		return NULL;
	return mallocx(n ? n : 1, MALLOCX_ZERO | MALLOCX_ALIGN(64));
}
static inline void coil__free_aligned64(void *p, size_t n)
{
	if (p)
		sdallocx(p, n ? n : 1, MALLOCX_ALIGN(64));
}
#else
static inline void *coil__malloc(size_t n)
{
	return coil__fault() ? NULL : malloc(n ? n : 1);
}
static inline void *coil__calloc(size_t n)
{
	return coil__fault() ? NULL : calloc(1, n ? n : 1);
}
static inline void coil__free(void *p, size_t n) { (void)n; free(p); }
static inline void coil__free_remote(void *p, size_t n) { (void)n; free(p); }
static inline void *coil__calloc_aligned64(size_t n)
{
	if (coil__fault())
		return NULL;
	size_t r = (n + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, r ? r : 64);
	if (p)
		memset(p, 0, r ? r : 64);
	return p;
}
static inline void coil__free_aligned64(void *p, size_t n) { (void)n; free(p); }
#endif

/* libc's allocator, for the runtime's allocations that are not its hot
 * objects (tables sized at setup, memory freed by code that uses free()),
 * behind the same failure injection as the others. */
static inline void *coil__libc_malloc(size_t n)
{
	return coil__fault() ? NULL : malloc(n);
}
static inline void *coil__libc_calloc(size_t n, size_t size)
{
	return coil__fault() ? NULL : calloc(n, size);
}
static inline void *coil__libc_realloc(void *p, size_t n)
{
	return coil__fault() ? NULL : realloc(p, n);
}
static inline void *coil__libc_aligned_alloc(size_t align, size_t n)
{
	return coil__fault() ? NULL : aligned_alloc(align, n);
}

/*
 * A free list of same-size objects, owned by one thread (a loop's). Hot
 * objects that come and go at every await (futures, handles, done-
 * callbacks, task handles) are recycled through one, which costs a few
 * instructions where even jemalloc's mallocx takes about 80 here.
 */
/* Builds for checkers (sanitizers, Valgrind: the libc-malloc builds) cache
 * nothing, so that every object's life ends in a real free they can see. */
#ifdef COIL_USE_JEMALLOC
#define COIL__CACHE_MAX 1024
#else
#define COIL__CACHE_MAX 0
#endif
/* As a variable, so that comparing a count with it is not a constant
 * comparison the compiler warns about when it is 0. */
static const size_t coil__cache_max = COIL__CACHE_MAX;

typedef struct coil__objcache {
	void *head;
	size_t n, max, size;
} coil__objcache_t;

static inline void coil__objcache_init(coil__objcache_t *c, size_t size, size_t max)
{
	c->head = NULL;
	c->n = 0;
	c->max = max;
	c->size = size < sizeof(void *) ? sizeof(void *) : size;
}

static inline void *coil__objcache_get(coil__objcache_t *c)
{
	if (coil__fault())
		return NULL;
	void *p = c->head;
	if (p) {
		void *n = *(void **)p;
		c->head = n;
		c->n--;
		/* The next object's lines, for writing: another thread may
		 * have written them last (objects freed where their task or
		 * future ended). */
		if (n) {
			__builtin_prefetch(n, 1, 3);
			__builtin_prefetch((char *)n + c->size - 1, 1, 3);
		}
		return p;
	}
	return coil__malloc(c->size);
}

/* The rare end of coil__objcache_put, out of line so that callers' fast
 * paths need no frame for the call. */
void coil__objcache_free(coil__objcache_t *c, void *p);
static inline void coil__objcache_put(coil__objcache_t *c, void *p)
{
	if (__builtin_expect(c->n < c->max, 1)) {
		*(void **)p = c->head;
		c->head = p;
		c->n++;
		return;
	}
	coil__objcache_free(c, p);
}

/* Frees every cached object. */
static inline void coil__objcache_drain(coil__objcache_t *c)
{
	while (c->head) {
		void *p = c->head;
		c->head = *(void **)p;
		coil__free(p, c->size);
	}
	c->n = 0;
}

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
