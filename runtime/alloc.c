/*
 * runtime/alloc.c: arenas for the runtime's allocations (see alloc.h).
 *
 * Each thread that drives a loop gets a jemalloc arena of its own, so that
 * loops on different threads never contend on an arena lock. Arenas cannot
 * be destroyed while memory from them is alive (a future may outlive its
 * loop), so released arenas go to a free list and are handed to the next
 * thread that asks, instead of creating new ones without bound.
 */
#include "alloc.h"

#include <pthread.h>
#include <string.h>

char *coil__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = coil__malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}


#ifdef COIL_USE_JEMALLOC
__thread int coil__alloc_flags;
static __thread unsigned thread_depth;
static __thread unsigned thread_arena;

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned *free_arenas;
static size_t nfree_arenas, cap_arenas;

void coil__alloc_thread_acquire(void)
{
	if (thread_depth++)
		return;
	unsigned arena = 0;
	bool have = false;
	pthread_mutex_lock(&arena_lock);
	if (nfree_arenas) {
		arena = free_arenas[--nfree_arenas];
		have = true;
	}
	pthread_mutex_unlock(&arena_lock);
	if (!have) {
		size_t sz = sizeof(arena);
		if (mallctl("arenas.create", &arena, &sz, NULL, 0) != 0)
			return; /* keep the default arena */
	}
	thread_arena = arena;
	coil__alloc_flags = (int)MALLOCX_ARENA(arena);
}

void coil__alloc_thread_release(void)
{
	if (!thread_depth || --thread_depth)
		return;
	if (!coil__alloc_flags)
		return;
	coil__alloc_flags = 0;
	pthread_mutex_lock(&arena_lock);
	if (nfree_arenas == cap_arenas) {
		size_t cap = cap_arenas ? cap_arenas * 2 : 8;
		unsigned *a = realloc(free_arenas, cap * sizeof(*a));
		if (!a) {
			pthread_mutex_unlock(&arena_lock);
			return;
		}
		free_arenas = a;
		cap_arenas = cap;
	}
	free_arenas[nfree_arenas++] = thread_arena;
	pthread_mutex_unlock(&arena_lock);
}

__attribute__((destructor)) static void arenas_fini(void)
{
	free(free_arenas);
	free_arenas = NULL;
	nfree_arenas = cap_arenas = 0;
}
#else
void coil__alloc_thread_acquire(void)
{
}

void coil__alloc_thread_release(void)
{
}
#endif
