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
static __thread unsigned thread_depth;
static __thread unsigned thread_arena;
static __thread unsigned thread_prev_arena;
static __thread bool thread_bound;

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned *free_arenas;
static size_t nfree_arenas, cap_arenas;

/*
 * The thread is bound to the arena with "thread.arena" rather than passing
 * MALLOCX_ARENA on every call: with an explicit arena jemalloc leaves its
 * fast path (about 100 instructions per mallocx instead of 20, measured
 * with callgrind), while a bound thread keeps its thread cache.
 */
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
	unsigned prev = 0;
	size_t sz = sizeof(prev);
	if (mallctl("thread.arena", &prev, &sz, &arena, sizeof(arena)) != 0) {
		pthread_mutex_lock(&arena_lock);
		if (nfree_arenas < cap_arenas)
			free_arenas[nfree_arenas++] = arena;
		pthread_mutex_unlock(&arena_lock);
		return;
	}
	thread_arena = arena;
	thread_prev_arena = prev;
	thread_bound = true;
}

void coil__alloc_thread_release(void)
{
	if (!thread_depth || --thread_depth)
		return;
	if (!thread_bound)
		return;
	thread_bound = false;
	mallctl("thread.arena", NULL, NULL, &thread_prev_arena, sizeof(thread_prev_arena));
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
