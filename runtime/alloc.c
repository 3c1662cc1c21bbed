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

void coil__objcache_free(coil__objcache_t *c, void *p)
{
	coil__free(p, c->size);
}


#ifdef COIL_USE_JEMALLOC
#include <sys/mman.h>

/*
 * coil's arenas ask for transparent huge pages (where the kernel gives
 * them on request: transparent_hugepage=madvise, the usual default). A
 * runtime touches fresh memory at a high rate (a million spawned handles
 * is ~100 MB) and on a VM each first-touched 4 KiB page costs ~12 us:
 * with 2 MiB pages the same memory takes 512 times fewer faults (W1 spawn
 * went from ~1200 to ~550 ns per task). jemalloc grows an arena's address
 * space in extents of 2 MiB and more, which is where the hint goes; the
 * rest of the hooks are jemalloc's own.
 */
static extent_hooks_t *default_hooks;
static extent_hooks_t thp_hooks;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *thp_alloc(extent_hooks_t *h, void *new_addr, size_t size,
		       size_t alignment, bool *zero, bool *commit, unsigned arena)
{
	(void)h;
	void *p = default_hooks->alloc(default_hooks, new_addr, size, alignment,
				       zero, commit, arena);
	if (p && size >= ((size_t)2 << 20))
		madvise(p, size, MADV_HUGEPAGE);
	return p;
}

static void hooks_init(void)
{
	extent_hooks_t *d = NULL;
	size_t sz = sizeof(d);
	if (mallctl("arena.0.extent_hooks", &d, &sz, NULL, 0) != 0 || !d || !d->alloc)
		return;
	thp_hooks = *d;
	thp_hooks.alloc = thp_alloc;
	default_hooks = d;
}

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
		pthread_once(&hooks_once, hooks_init);
		extent_hooks_t *hooks = default_hooks ? &thp_hooks : NULL;
		size_t sz = sizeof(arena);
		if (mallctl("arenas.create", &arena, &sz, hooks ? &hooks : NULL,
			    hooks ? sizeof(hooks) : 0) != 0)
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
