/*
 * runtime/stack.c: coroutine stacks, carved from big mappings, guarded,
 * pooled per thread and globally.
 *
 * Layout. A chunk is one mmap (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
 * MAP_STACK) holding stacks of one size class, each with its guard below it:
 *
 *	base: [guard][stack 0][guard][stack 1] ... [guard][stack n-1]
 *
 * A size class is the requested size rounded up to pages; every class has
 * its own free list, so a 64 KiB request never gets a 16 KiB stack, nor a
 * 1 MiB one. A chunk holds at least 64 stacks and at least 4 MiB, at most
 * 1 GiB unless one stack is bigger (then it holds one). Mapping stacks one
 * at a time would cost a syscall and a fresh set of page faults per spawn;
 * a chunk is mapped once and its stacks are reused for the life of the
 * process. The descriptors live in a malloc'ed array beside the chunk, never
 * in the stack memory, which may be given back to the kernel at any time
 * while pooled. A descriptor's flags keep its index in the chunk, so that
 * the chunk is found from the descriptor without a search.
 *
 * Guards. The guard is 16 KiB (at least a page) rather than one page: a
 * frame with a local array bigger than a page can step over a single guard
 * page into the top of the neighbouring stack without touching the guard.
 * The mode is probed once per process:
 *  - MADV_GUARD_INSTALL (Linux 6.13+) puts the guard in the page tables
 *    without splitting the mapping, so a chunk stays one VMA however many
 *    stacks it holds, and a million guarded stacks fit under the default
 *    vm.max_map_count of 65530. Such guards survive MADV_DONTNEED.
 *  - mprotect(PROT_NONE) elsewhere: each guard splits the mapping into two
 *    more VMAs, which limits a process to about 32,000 stacks under the
 *    default vm.max_map_count. A chunk whose guards run out of mappings is
 *    cut short to the stacks that did get one.
 * The environment variable COIL_STACK_GUARD=mprotect forces the mprotect
 * mode and COIL_STACK_GUARD=none leaves the guards unprotected (tests and
 * measurements only; the address layout stays the same). Any other value,
 * or none, probes.
 *
 * Pooling. A free goes to the calling thread's cache: up to TC_MAX stacks
 * per size class, for up to TC_BINS size classes, reached without a lock or
 * a syscall. A full bin moves its colder half to the global pool, behind
 * pool_lock; an empty one refills TC_REFILL stacks from it in one lock
 * round trip, mapping a new chunk (outside the lock) when the pool has none.
 * A thread's cache goes back to the global pool when the thread exits
 * (a pthread key destructor).
 *
 * High-water mark. Stacks in the global pool past COIL_STACK_POOL_MAX bytes
 * (environment, in bytes; 64 MiB by default) of memory are given back to the
 * kernel with MADV_DONTNEED by coil__stack_pool_shrink, which a loop calls
 * when it is about to sleep, once no thread has drawn from the pool for a
 * second (memory given back while stacks are still in demand is faulted in
 * again at once): it takes them out of the pool first (another thread could
 * take one otherwise and have its frames zeroed under it) and advises
 * neighbours away in one call.
 * STACK_F_COLD marks a stack with no memory behind it (new, or advised
 * away), so that it is neither counted nor advised twice. The address range
 * and the guard stay. coil__stack_trim() empties the calling thread's cache,
 * unmaps every chunk whose stacks are all in the pool and advises away the
 * pooled stacks of the others; it also runs at process exit.
 *
 * Counting. coil__stack_live_count() adds per-thread counters, each written
 * by its own thread only with relaxed atomics (a plain store, no locked
 * instruction on the spawn path), plus one shared counter for the rare
 * frees and allocations that bypass a thread cache.
 *
 * Valgrind learns each stack when its chunk is mapped and forgets it when
 * the chunk is unmapped. ASan builds unpoison a stack when it is freed: a
 * coroutine that never returned from its frames leaves them poisoned, and
 * the next task on that stack would trip over them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "list.h"
#include "stack.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define COIL_HAVE_VALGRIND 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_ASAN 1
#endif
#endif
#ifdef STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum {
	TC_BINS = 8,            /* size classes a thread caches */
	TC_MAX = 16,            /* stacks per bin */
	TC_REFILL = TC_MAX / 2, /* stacks taken from the pool on a miss */
	CHUNK_MIN_STACKS = 64,
	STACK_F_COLD = 1,       /* no memory behind the stack */
	STACK_IDX_SHIFT = 8     /* flags >> STACK_IDX_SHIFT: index in chunk */
};

#define CHUNK_MIN_BYTES ((size_t)4 << 20)
#define CHUNK_MAX_BYTES ((size_t)1 << 30)
#define GUARD_MIN_BYTES ((size_t)16 << 10)
#define POOL_MAX_DEFAULT ((size_t)64 << 20)

/* One mapping of stacks of one size. All fields behind pool_lock. */
struct chunk {
	struct chunk *next;       /* in its class's list */
	char *base;
	size_t len;               /* bytes mapped */
	unsigned nstacks;
	unsigned nfree;           /* of its stacks, how many in the pool */
	coil__stack_t stacks[];
};

/* The global pool of one size. All fields behind pool_lock. A class with
 * chunks is never freed, so a stack's class outlives the stack. */
struct size_class {
	struct size_class *next;
	size_t size;
	coil__stack_t *free;
	struct chunk *chunks;
};

/* A thread's cache. Owned by its thread, except `live` (written by the
 * owner only, read by coil__stack_live_count) and `link` (behind
 * pool_lock). */
struct tc_bin {
	size_t size;              /* 0: unused */
	coil__stack_t *head;
	unsigned count;
};

struct tcache {
	struct tc_bin bins[TC_BINS];
	_Atomic long live;        /* allocated minus freed by this thread */
	coil__list_t link;        /* in tcaches */
	bool registered;
	bool dead;                /* the thread is exiting: bypass the cache */
};

static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static atomic_bool stack_ready;   /* release-stored at the end of stack_init */
static size_t page_size;
static size_t guard_size;
static int guard_mode;
static size_t pool_max;
static pthread_key_t tc_key;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct size_class *classes;      /* pool_lock */
static size_t pool_resident;            /* pool_lock: warm pooled bytes */
static coil__list_t tcaches = { &tcaches, &tcaches }; /* pool_lock */

static _Atomic long stray_live;         /* live stacks no thread cache counts */
static atomic_size_t mapped_bytes;

static __thread struct tcache tc;

/* --- setup ------------------------------------------------------------- */

static int guard_probe(void)
{
	const char *e = getenv("COIL_STACK_GUARD");
	if (e && !strcmp(e, "none"))
		return COIL__GUARD_NONE;
	if (e && !strcmp(e, "mprotect"))
		return COIL__GUARD_MPROTECT;
	/* Kernels before 6.13 answer EINVAL to an advice they do not know. */
	void *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return COIL__GUARD_MPROTECT;
	int ok = madvise(p, page_size, MADV_GUARD_INSTALL) == 0;
	munmap(p, 2 * page_size);
	return ok ? COIL__GUARD_MADVISE : COIL__GUARD_MPROTECT;
}

static void tc_exit(void *arg);

/* A fork child inherits pool_lock in whatever state it was in the parent;
 * hold it across fork so that the child gets it unlocked and consistent. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&pool_lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&pool_lock);
}

static void stack_init(void)
{
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	guard_size = GUARD_MIN_BYTES > page_size ? GUARD_MIN_BYTES : page_size;
	guard_size = (guard_size + page_size - 1) & ~(page_size - 1);
	guard_mode = guard_probe();
	pool_max = POOL_MAX_DEFAULT;
	const char *e = getenv("COIL_STACK_POOL_MAX");
	if (e && *e) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(e, &end, 10);
		if (!*end && !errno)
			pool_max = (size_t)v;
	}
	pthread_key_create(&tc_key, tc_exit);
	pthread_atfork(atfork_prepare, atfork_release, atfork_release);
	atomic_store_explicit(&stack_ready, true, memory_order_release);
}

/* The spawn path checks a flag instead of calling pthread_once: a load it
 * would make anyway, without the call. */
static inline void stack_init_once(void)
{
	if (unlikely(!atomic_load_explicit(&stack_ready, memory_order_acquire)))
		pthread_once(&stack_once, stack_init);
}

int coil__stack_guard_mode(void)
{
	stack_init_once();
	return guard_mode;
}

size_t coil__stack_guard_size(void)
{
	stack_init_once();
	return guard_size;
}

/* Called from the SIGSEGV handler: no locks, no init (a stack exists, so
 * guard_size is set). */
bool coil__stack_is_overflow(const coil__stack_t *s, const void *addr,
			     size_t slack)
{
	uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->lo;
	if (a >= lo)
		return false;
	return lo - a <= guard_size || lo - a <= slack;
}

/* --- chunks (mapping and unmapping, no lock needed) --------------------- */

static inline struct chunk *chunk_of(coil__stack_t *s)
{
	coil__stack_t *first = s - (s->flags >> STACK_IDX_SHIFT);
	return coil__container_of(first, struct chunk, stacks[0]);
}

static unsigned chunk_count_for(size_t stride)
{
	if (stride >= CHUNK_MAX_BYTES)
		return 1;
	if (stride > CHUNK_MAX_BYTES / CHUNK_MIN_STACKS)
		return (unsigned)(CHUNK_MAX_BYTES / stride);
	size_t n = (CHUNK_MIN_BYTES + stride - 1) / stride;
	return n < CHUNK_MIN_STACKS ? CHUNK_MIN_STACKS : (unsigned)n;
}

static int guard_install(char *p)
{
	switch (guard_mode) {
	case COIL__GUARD_MADVISE:
		return madvise(p, guard_size, MADV_GUARD_INSTALL);
	case COIL__GUARD_MPROTECT:
		return mprotect(p, guard_size, PROT_NONE);
	default:
		return 0;
	}
}

static struct chunk *chunk_create(size_t size)
{
	size_t stride = size + guard_size;
	unsigned n = chunk_count_for(stride);
	size_t len = (size_t)n * stride;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK;
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	unsigned ok = 0;
	while (ok < n && guard_install(base + (size_t)ok * stride) == 0)
		ok++;
	if (ok == 0) {
		munmap(base, len);
		return NULL;
	}
	/* Out of mappings (mprotect guards): keep the stacks that got a guard
	 * and give back the rest of the range. */
	if (ok < n) {
		munmap(base + (size_t)ok * stride, len - (size_t)ok * stride);
		n = ok;
		len = (size_t)n * stride;
	}
	struct chunk *ch = coil__libc_calloc(1, sizeof(*ch) + n * sizeof(coil__stack_t));
	if (!ch) {
		munmap(base, len);
		return NULL;
	}
	ch->base = base;
	ch->len = len;
	ch->nstacks = n;
	for (unsigned i = 0; i < n; i++) {
		coil__stack_t *s = &ch->stacks[i];
		s->lo = base + (size_t)i * stride + guard_size;
		s->size = size;
		s->flags = (i << STACK_IDX_SHIFT) | STACK_F_COLD;
#ifdef COIL_HAVE_VALGRIND
		s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + size);
#endif
	}
	atomic_fetch_add_explicit(&mapped_bytes, len, memory_order_relaxed);
	return ch;
}

static void chunk_destroy(struct chunk *ch)
{
#ifdef COIL_HAVE_VALGRIND
	for (unsigned i = 0; i < ch->nstacks; i++)
		if (ch->stacks[i].vg_id)
			VALGRIND_STACK_DEREGISTER(ch->stacks[i].vg_id);
#endif
	munmap(ch->base, ch->len);
	atomic_fetch_sub_explicit(&mapped_bytes, ch->len, memory_order_relaxed);
	free(ch);
}

/* --- the global pool (callers hold pool_lock) --------------------------- */

static struct size_class *class_find(size_t size)
{
	for (struct size_class *c = classes; c; c = c->next)
		if (c->size == size)
			return c;
	return NULL;
}

static void pool_push(struct size_class *c, coil__stack_t *s)
{
	s->next = c->free;
	c->free = s;
	chunk_of(s)->nfree++;
	if (!(s->flags & STACK_F_COLD))
		pool_resident += s->size;
}

static coil__stack_t *pool_pop(struct size_class *c)
{
	coil__stack_t *s = c->free;
	c->free = s->next;
	chunk_of(s)->nfree--;
	if (!(s->flags & STACK_F_COLD))
		pool_resident -= s->size;
	return s;
}

/* Set (under pool_lock) while the pool holds more resident bytes than
 * pool_max: coil__stack_pool_shrink has work. */
static atomic_bool pool_over;
/* When a thread last drew stacks from the pool (CLOCK_MONOTONIC ns): memory
 * is not given back while the pool is in use, or it would be faulted in
 * again at once. */
static _Atomic int64_t pool_last_take;
#define POOL_QUIET_NS ((int64_t)1000000000)

static int64_t pool_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Puts a list of stacks of one size into the pool. Memory past the
 * high-water mark is given back later, in bulk, by coil__stack_pool_shrink:
 * one madvise per stack here cost a system call and a TLB shootdown for
 * every task that ended (a million sleepers took a minute). */
static void pool_put(coil__stack_t *list)
{
	coil__stack_t *next;
	pthread_mutex_lock(&pool_lock);
	struct size_class *c = class_find(list->size);
	for (coil__stack_t *s = list; s; s = next) {
		next = s->next;
		pool_push(c, s);
	}
	if (pool_resident > pool_max)
		atomic_store_explicit(&pool_over, true, memory_order_relaxed);
	pthread_mutex_unlock(&pool_lock);
}

static int stack_addr_cmp(const void *a, const void *b)
{
	const char *x = (*(coil__stack_t *const *)a)->lo;
	const char *y = (*(coil__stack_t *const *)b)->lo;
	return x < y ? -1 : x > y;
}

int64_t coil__stack_pool_shrink(bool now)
{
	if (!atomic_load_explicit(&pool_over, memory_order_relaxed))
		return 0;
	int64_t quiet = pool_now_ns() - atomic_load_explicit(&pool_last_take, memory_order_relaxed);
	if (!now && quiet < POOL_QUIET_NS)
		return POOL_QUIET_NS - quiet;
	enum { BATCH = 4096 };
	coil__stack_t **v = coil__libc_malloc(BATCH * sizeof(*v));
	if (!v)
		return 0;
	for (;;) {
		/* Take warm stacks out of the pool (nobody can reuse them while
		 * their memory goes), advise them away outside the lock, with
		 * neighbours in one call (a guard between two stacks survives
		 * MADV_DONTNEED), and put them back cold. */
		size_t n = 0;
		pthread_mutex_lock(&pool_lock);
		for (struct size_class *c = classes; c && n < BATCH; c = c->next) {
			coil__stack_t **pp = &c->free;
			while (*pp && n < BATCH && pool_resident > pool_max) {
				coil__stack_t *st = *pp;
				if (st->flags & STACK_F_COLD) {
					pp = &st->next;
					continue;
				}
				*pp = st->next;
				chunk_of(st)->nfree--;
				pool_resident -= st->size;
				v[n++] = st;
			}
		}
		bool more = pool_resident > pool_max;
		if (!more)
			atomic_store_explicit(&pool_over, false, memory_order_relaxed);
		pthread_mutex_unlock(&pool_lock);
		if (!n)
			break;
		qsort(v, n, sizeof(*v), stack_addr_cmp);
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;
			while (j < n && chunk_of(v[j]) == chunk_of(v[i]) &&
			       (char *)v[j]->lo - (char *)v[j - 1]->lo ==
				       (ptrdiff_t)(v[i]->size + coil__stack_guard_size()))
				j++;
			char *lo = v[i]->lo;
			char *hi = (char *)v[j - 1]->lo + v[j - 1]->size;
			if (madvise(lo, (size_t)(hi - lo), MADV_DONTNEED) == 0)
				for (size_t k = i; k < j; k++)
					v[k]->flags |= STACK_F_COLD;
			i = j;
		}
		pthread_mutex_lock(&pool_lock);
		for (size_t i = 0; i < n; i++)
			pool_push(class_find(v[i]->size), v[i]);
		pthread_mutex_unlock(&pool_lock);
		if (!more)
			break;
	}
	free(v);
	return 0;
}

/* --- thread caches ------------------------------------------------------ */

/* The hot paths take &tc once and pass it down: in a shared library each
 * mention of a __thread variable may cost a call to __tls_get_addr. */
static inline struct tc_bin *tc_lookup(struct tcache *t, size_t size)
{
	for (int i = 0; i < TC_BINS; i++)
		if (t->bins[i].size == size)
			return &t->bins[i];
	return NULL;
}

static inline void tc_live_add(struct tcache *t, long d)
{
	long v = atomic_load_explicit(&t->live, memory_order_relaxed);
	atomic_store_explicit(&t->live, v + d, memory_order_relaxed);
}

/* Returns the bin for `size`, claiming an empty one; NULL when the thread is
 * exiting or every bin holds stacks of other sizes. */
static struct tc_bin *tc_bin_get(size_t size)
{
	struct tc_bin *b = tc_lookup(&tc, size);
	if (b || tc.dead)
		return b;
	for (int i = 0; i < TC_BINS && !b; i++)
		if (tc.bins[i].count == 0)
			b = &tc.bins[i];
	if (!b)
		return NULL;
	if (!tc.registered) {
		pthread_mutex_lock(&pool_lock);
		coil__list_push(&tcaches, &tc.link);
		pthread_mutex_unlock(&pool_lock);
		pthread_setspecific(tc_key, &tc);
		tc.registered = true;
	}
	b->size = size;
	return b;
}

static void tc_exit(void *arg)
{
	(void)arg;
	for (int i = 0; i < TC_BINS; i++) {
		if (tc.bins[i].head)
			pool_put(tc.bins[i].head);
		tc.bins[i] = (struct tc_bin){ 0 };
	}
	tc.dead = true;
	pthread_mutex_lock(&pool_lock);
	long live = atomic_load_explicit(&tc.live, memory_order_relaxed);
	atomic_fetch_add_explicit(&stray_live, live, memory_order_relaxed);
	atomic_store_explicit(&tc.live, 0, memory_order_relaxed);
	coil__list_del(&tc.link);
	tc.registered = false;
	pthread_mutex_unlock(&pool_lock);
}

/* --- allocation and free ------------------------------------------------ */

__attribute__((noinline))
static coil__stack_t *alloc_slow(size_t size)
{
	struct tc_bin *b = tc_bin_get(size);
	pthread_mutex_lock(&pool_lock);
	struct size_class *c = class_find(size);
	if (!c || !c->free) {
		/* Map without the lock: guard installation is a syscall per
		 * stack. Another thread may map a chunk meanwhile; both are
		 * kept. */
		pthread_mutex_unlock(&pool_lock);
		struct chunk *ch = chunk_create(size);
		if (!ch)
			return NULL;
		pthread_mutex_lock(&pool_lock);
		c = class_find(size);
		if (!c) {
			c = coil__libc_calloc(1, sizeof(*c));
			if (!c) {
				pthread_mutex_unlock(&pool_lock);
				chunk_destroy(ch);
				return NULL;
			}
			c->size = size;
			c->next = classes;
			classes = c;
		}
		ch->next = c->chunks;
		c->chunks = ch;
		for (unsigned i = ch->nstacks; i-- > 0;)
			pool_push(c, &ch->stacks[i]);
	}
	coil__stack_t *s = pool_pop(c);
	atomic_store_explicit(&pool_last_take, pool_now_ns(), memory_order_relaxed);
	for (unsigned got = 1; b && got < TC_REFILL && c->free; got++) {
		coil__stack_t *t = pool_pop(c);
		t->next = b->head;
		b->head = t;
		b->count++;
	}
	pthread_mutex_unlock(&pool_lock);
	if (b)
		tc_live_add(&tc, 1);
	else
		atomic_fetch_add_explicit(&stray_live, 1, memory_order_relaxed);
	s->next = NULL;
	s->flags &= ~(unsigned)STACK_F_COLD;
	return s;
}

coil__stack_t *coil__stack_alloc(size_t size)
{
	stack_init_once();
	if (size > SIZE_MAX / 2 || coil__fault())
		return NULL;
	size = size ? (size + page_size - 1) & ~(page_size - 1) : page_size;
	struct tcache *t = &tc;
	struct tc_bin *b = tc_lookup(t, size);
	if (likely(b && b->head)) {
		coil__stack_t *s = b->head;
		b->head = s->next;
		b->count--;
		tc_live_add(t, 1);
		s->next = NULL;
		s->flags &= ~(unsigned)STACK_F_COLD;
		return s;
	}
	return alloc_slow(size);
}

__attribute__((noinline))
static void free_slow(coil__stack_t *s, struct tc_bin *b)
{
	if (!b)
		b = tc_bin_get(s->size);
	if (!b) {
		s->next = NULL;
		pool_put(s);
		atomic_fetch_sub_explicit(&stray_live, 1, memory_order_relaxed);
		return;
	}
	if (b->count >= TC_MAX) {
		/* Keep the most recently freed half: its pages are the ones
		 * still in the CPU caches and the TLB. */
		coil__stack_t *p = b->head;
		for (unsigned i = 1; i < TC_MAX / 2; i++)
			p = p->next;
		coil__stack_t *rest = p->next;
		p->next = NULL;
		b->count = TC_MAX / 2;
		pool_put(rest);
	}
	s->next = b->head;
	b->head = s;
	b->count++;
	tc_live_add(&tc, -1);
}

void coil__stack_free(coil__stack_t *s)
{
	if (!s)
		return;
#ifdef STACK_ASAN
	ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
	struct tcache *t = &tc;
	struct tc_bin *b = tc_lookup(t, s->size);
	if (likely(b && b->count < TC_MAX)) {
		s->next = b->head;
		b->head = s;
		b->count++;
		tc_live_add(t, -1);
		return;
	}
	free_slow(s, b);
}

/* --- accounting and trimming -------------------------------------------- */

size_t coil__stack_live_count(void)
{
	long n = atomic_load_explicit(&stray_live, memory_order_relaxed);
	pthread_mutex_lock(&pool_lock);
	for (coil__list_t *l = tcaches.next; l != &tcaches; l = l->next) {
		struct tcache *t = coil__container_of(l, struct tcache, link);
		n += atomic_load_explicit(&t->live, memory_order_relaxed);
	}
	pthread_mutex_unlock(&pool_lock);
	return n > 0 ? (size_t)n : 0;
}

size_t coil__stack_mapped_bytes(void)
{
	return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

/* Drops from c's free list the stacks of chunks that are entirely free, and
 * advises away the memory of the others; then unmaps those chunks. */
static void class_trim(struct size_class *c)
{
	coil__stack_t **pp = &c->free;
	while (*pp) {
		coil__stack_t *s = *pp;
		struct chunk *ch = chunk_of(s);
		if (!(s->flags & STACK_F_COLD)) {
			pool_resident -= s->size;
			if (ch->nfree == ch->nstacks ||
			    madvise(s->lo, s->size, MADV_DONTNEED) == 0)
				s->flags |= STACK_F_COLD;
			else
				pool_resident += s->size;
		}
		if (ch->nfree == ch->nstacks)
			*pp = s->next;
		else
			pp = &s->next;
	}
	struct chunk **cp = &c->chunks;
	while (*cp) {
		struct chunk *ch = *cp;
		if (ch->nfree == ch->nstacks) {
			*cp = ch->next;
			chunk_destroy(ch);
		} else {
			cp = &ch->next;
		}
	}
}

void coil__stack_trim(void)
{
	if (!atomic_load_explicit(&stack_ready, memory_order_acquire))
		return;
	pthread_mutex_lock(&pool_lock);
	for (int i = 0; i < TC_BINS; i++) {
		struct tc_bin *b = &tc.bins[i];
		if (!b->head)
			continue;
		struct size_class *c = class_find(b->size);
		coil__stack_t *next;
		for (coil__stack_t *s = b->head; s; s = next) {
			next = s->next;
			pool_push(c, s);
		}
		b->head = NULL;
		b->count = 0;
	}
	struct size_class **pc = &classes;
	while (*pc) {
		struct size_class *c = *pc;
		class_trim(c);
		if (!c->chunks) {
			*pc = c->next;
			free(c);
		} else {
			pc = &c->next;
		}
	}
	pthread_mutex_unlock(&pool_lock);
}

/* Leave nothing mapped at exit, for leak checkers and for a host process
 * that unloads the library. Stacks still in use or cached by other threads
 * keep their chunks. */
__attribute__((destructor)) static void stack_fini(void)
{
	coil__stack_trim();
}
