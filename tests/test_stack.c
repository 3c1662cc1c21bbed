/*
 * tests/test_stack.c: coroutine stacks (runtime/stack.c).
 *
 * The guard mode and the pool's high-water mark are read once per process,
 * so the tests that change them re-execute this binary with the variable
 * set and the test's name (COIL_STACK_TEST_INNER marks the inner run).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "stack.h"
#include "test.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#endif
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#endif

/* TSan maps metadata beside each of our mappings and keeps it after they are
 * unmapped: counting mappings would measure TSan, not us. */
#ifdef TSAN
#define MAPS_PER_CHUNK 4
#define COUNT_MAPS_AFTER_TRIM 0
#else
#define MAPS_PER_CHUNK 1
#define COUNT_MAPS_AFTER_TRIM 1
#endif

#define KiB ((size_t)1024)

static size_t maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	ASSERT(f);
	size_t n = 0;
	int c;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static volatile char *top_byte(const coil__stack_t *s)
{
	return (volatile char *)s->lo + s->size - 1;
}

/* Writes one byte at p in a child; returns whether the child died of
 * SIGSEGV. */
static bool write_faults(volatile char *p)
{
	fflush(NULL);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*p = 1;
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

/* Runs test `name` in a fresh process with var=val; returns true if it
 * passed. */
static bool run_fresh(const char *name, const char *var, const char *val)
{
	/* The resolved path, not /proc/self/exe itself: under Valgrind that
	 * is the tool, and only readlink is translated to the client. */
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT(len > 0);
	exe[len] = '\0';
	fflush(NULL);
	pid_t pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		setenv(var, val, 1);
		setenv("COIL_STACK_TEST_INNER", "1", 1);
		setenv("COIL_TEST_NOFORK", "1", 1);
		/* Only the inner run's failures matter: keep its stderr. */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execl(exe, exe, name, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool inner(void)
{
	return getenv("COIL_STACK_TEST_INNER") != NULL;
}

TEST(alloc_gives_writable_memory_of_requested_size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t live = coil__stack_live_count();
	coil__stack_t *s = coil__stack_alloc(10000);
	ASSERT(s);
	ASSERT_GE(s->size, 10000);
	ASSERT_EQ(s->size, (10000 + page - 1) / page * page);
	ASSERT_EQ((uintptr_t)s->lo % page, 0);
	((volatile char *)s->lo)[0] = 1;
	*top_byte(s) = 2;
	ASSERT_EQ(coil__stack_live_count(), live + 1);
	ASSERT_GT(coil__stack_mapped_bytes(), 0);
	if (RUNNING_ON_VALGRIND)
		ASSERT_NE(s->vg_id, 0);
	coil__stack_free(s);
	ASSERT_EQ(coil__stack_live_count(), live);
	coil__stack_free(NULL);
	ASSERT(!coil__stack_alloc(SIZE_MAX));
	ASSERT_EQ(coil__stack_live_count(), live);
}

TEST(write_below_stack_hits_guard_and_faults)
{
	if (coil__stack_guard_mode() == COIL__GUARD_NONE)
		TEST_SKIP("guards disabled by COIL_STACK_GUARD=none");
	coil__stack_t *s = coil__stack_alloc(64 * KiB);
	ASSERT(s);
	volatile char *lo = s->lo;
	size_t guard = coil__stack_guard_size();
	ASSERT_GE(guard, (size_t)sysconf(_SC_PAGESIZE));
	ASSERT(write_faults(lo - 1));
	ASSERT(write_faults(lo - guard));
	ASSERT(!write_faults(lo));
	ASSERT(coil__stack_is_overflow(s, (const void *)(lo - 1), 0));
	ASSERT(coil__stack_is_overflow(s, (const void *)(lo - guard), 0));
	ASSERT(!coil__stack_is_overflow(s, (const void *)(lo - guard - 1), 0));
	/* Past the guard, within the slack a big frame may jump. */
	const void *below = (const void *)(lo - guard - 1);
	ASSERT(coil__stack_is_overflow(s, below, 2 * guard));
	ASSERT(!coil__stack_is_overflow(s, (const void *)lo, 2 * guard));
	coil__stack_free(s);
}

TEST(freed_stack_comes_back_from_thread_cache)
{
	coil__stack_t *a = coil__stack_alloc(64 * KiB);
	ASSERT(a);
	size_t mapped = coil__stack_mapped_bytes();
	coil__stack_free(a);
	coil__stack_t *b = coil__stack_alloc(64 * KiB);
	ASSERT_PTR_EQ(b, a);
	ASSERT_EQ(coil__stack_mapped_bytes(), mapped);
	coil__stack_free(b);
}

TEST(size_classes_do_not_mix)
{
	coil__stack_t *small = coil__stack_alloc(16 * KiB);
	ASSERT(small);
	ASSERT_EQ(small->size, 16 * KiB);
	coil__stack_free(small);
	coil__stack_t *big = coil__stack_alloc(64 * KiB);
	ASSERT(big);
	ASSERT(big != small);
	ASSERT_EQ(big->size, 64 * KiB);
	coil__stack_free(big);
	coil__stack_t *again = coil__stack_alloc(16 * KiB);
	ASSERT_PTR_EQ(again, small);
	coil__stack_t *big2 = coil__stack_alloc(64 * KiB);
	ASSERT_PTR_EQ(big2, big);
	coil__stack_free(again);
	coil__stack_free(big2);
}

/* A thread caches a few size classes; stacks of more sizes than that go
 * straight to the global pool and are still reused and counted. */
TEST(more_sizes_than_the_thread_cache_holds_still_reuse)
{
	enum { SIZES = 12 };
	coil__stack_t *v[SIZES];
	size_t live = coil__stack_live_count();
	for (int i = 0; i < SIZES; i++) {
		v[i] = coil__stack_alloc((size_t)(i + 1) * 8 * KiB);
		ASSERT(v[i]);
		*top_byte(v[i]) = 1;
	}
	ASSERT_EQ(coil__stack_live_count(), live + SIZES);
	size_t mapped = coil__stack_mapped_bytes();
	for (int i = 0; i < SIZES; i++)
		coil__stack_free(v[i]);
	ASSERT_EQ(coil__stack_live_count(), live);
	for (int i = 0; i < SIZES; i++) {
		coil__stack_t *s = coil__stack_alloc((size_t)(i + 1) * 8 * KiB);
		ASSERT_PTR_EQ(s, v[i]);
	}
	ASSERT_EQ(coil__stack_mapped_bytes(), mapped);
	for (int i = 0; i < SIZES; i++)
		coil__stack_free(v[i]);
	/* A stack bigger than a quarter of a chunk's cap gets a short chunk. */
	coil__stack_t *big = coil__stack_alloc(32 << 20);
	ASSERT(big);
	*top_byte(big) = 1;
	coil__stack_free(big);
	ASSERT_EQ(coil__stack_live_count(), live);
}

/* A million guarded stacks must fit under vm.max_map_count; 100,000 here. */
TEST(many_madvise_guarded_stacks_take_few_mappings)
{
	if (coil__stack_guard_mode() != COIL__GUARD_MADVISE)
		TEST_SKIP("no MADV_GUARD_INSTALL (Linux 6.13+)");
	size_t n = RUNNING_ON_VALGRIND ? 2000 : 100000;
	coil__stack_t **v = calloc(n, sizeof(*v));
	ASSERT(v);
	size_t live = coil__stack_live_count();
	size_t maps = maps_count();
	for (size_t i = 0; i < n; i++) {
		v[i] = coil__stack_alloc(64 * KiB);
		ASSERT(v[i]);
		if (i % 16 == 0)
			*top_byte(v[i]) = 1;
	}
	/* Chunks of 64 stacks, each one mapping (adjacent ones merge). */
	ASSERT_LE(maps_count() - maps, n / 64 * MAPS_PER_CHUNK + 16);
	ASSERT_EQ(coil__stack_live_count(), live + n);
	/* Valgrind's leak check in the faulting child would scan every
	 * stack: minutes. */
	if (!RUNNING_ON_VALGRIND)
		ASSERT(write_faults((volatile char *)v[n / 2]->lo - 1));
	for (size_t i = 0; i < n; i++)
		coil__stack_free(v[i]);
	ASSERT_EQ(coil__stack_live_count(), live);
	free(v);
	coil__stack_trim();
	if (COUNT_MAPS_AFTER_TRIM) /* the allocator may map a little */
		ASSERT_LE(maps_count(), maps + 16);
}

TEST(mprotect_guards_work_when_forced)
{
	if (!inner()) {
		ASSERT(run_fresh("mprotect_guards_work_when_forced",
				 "COIL_STACK_GUARD", "mprotect"));
		return;
	}
	ASSERT_EQ(coil__stack_guard_mode(), COIL__GUARD_MPROTECT);
	size_t n = 2000, maps = maps_count();
	coil__stack_t **v = calloc(n, sizeof(*v));
	ASSERT(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = coil__stack_alloc(64 * KiB);
		ASSERT(v[i]);
		((volatile char *)v[i]->lo)[0] = 1;
	}
	/* Each mprotect'ed guard splits its mapping. */
	ASSERT_GE(maps_count() - maps, n);
	ASSERT(write_faults((volatile char *)v[n - 1]->lo - 1));
	ASSERT(!write_faults((volatile char *)v[n - 1]->lo));
	for (size_t i = 0; i < n; i++)
		coil__stack_free(v[i]);
	free(v);
	coil__stack_trim();
	ASSERT_EQ(coil__stack_mapped_bytes(), 0);
	if (COUNT_MAPS_AFTER_TRIM) /* the allocator may map a little */
		ASSERT_LE(maps_count(), maps + 16);
}

static bool resident(const coil__stack_t *s)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	ASSERT_EQ(mincore((char *)s->lo + s->size - page, page, &v), 0);
	return v & 1;
}

/* With a high-water mark of 0 every stack that reaches the global pool
 * (past the thread cache) gives its memory back at the next shrink (a loop
 * about to sleep) and keeps its guard. */
TEST(pool_past_high_water_mark_gives_memory_back)
{
	if (!inner()) {
		ASSERT(run_fresh("pool_past_high_water_mark_gives_memory_back",
				 "COIL_STACK_POOL_MAX", "0"));
		return;
	}
	enum { N = 40 };
	coil__stack_t *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = coil__stack_alloc(64 * KiB);
		ASSERT(v[i]);
		*top_byte(v[i]) = (char)0xab;
	}
	for (int i = 0; i < N; i++)
		coil__stack_free(v[i]);
	coil__stack_pool_shrink(true);
	int cold = 0;
	for (int i = 0; i < N; i++)
		cold += !resident(v[i]);
	ASSERT_GE(cold, N - 16);
	bool guarded = coil__stack_guard_mode() != COIL__GUARD_NONE;
	int zeroed = 0;
	for (int i = 0; i < N; i++) {
		v[i] = coil__stack_alloc(64 * KiB);
		if (*top_byte(v[i]) == 0 && zeroed++ == 0 && guarded)
			ASSERT(write_faults((volatile char *)v[i]->lo - 1));
	}
	ASSERT_GE(zeroed, N - 16);
	for (int i = 0; i < N; i++)
		coil__stack_free(v[i]);
	coil__stack_trim();
	ASSERT_EQ(coil__stack_mapped_bytes(), 0);
}

TEST(trim_unmaps_everything_once_all_stacks_are_free)
{
	enum { N = 300 };
	coil__stack_t *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = coil__stack_alloc(i % 3 ? 64 * KiB : 24 * KiB);
		ASSERT(v[i]);
		*top_byte(v[i]) = 1;
	}
	ASSERT_GT(coil__stack_mapped_bytes(), 0);
	coil__stack_free(v[0]);
	coil__stack_trim();
	/* Live stacks keep their chunks. */
	ASSERT_GT(coil__stack_mapped_bytes(), 0);
	ASSERT_EQ(*top_byte(v[1]), 1);
	for (int i = 1; i < N; i++)
		coil__stack_free(v[i]);
	coil__stack_trim();
	ASSERT_EQ(coil__stack_mapped_bytes(), 0);
	ASSERT_EQ(coil__stack_live_count(), 0);
	/* The pool still works after a trim. */
	coil__stack_t *s = coil__stack_alloc(64 * KiB);
	ASSERT(s);
	*top_byte(s) = 1;
	coil__stack_free(s);
	coil__stack_trim();
	ASSERT_EQ(coil__stack_mapped_bytes(), 0);
}

enum { XN = 100 };

static void *free_all(void *arg)
{
	coil__stack_t **v = arg;
	for (int i = 0; i < XN; i++)
		coil__stack_free(v[i]);
	return NULL;
}

TEST(stacks_freed_on_another_thread_are_reused)
{
	/* 48 KiB + a 16 KiB guard: 64 stacks a chunk, so XN stacks take two
	 * chunks with 28 to spare, and taking XN again without reusing the
	 * freed ones would need a third. */
	coil__stack_t *v[XN];
	size_t live = coil__stack_live_count();
	for (int i = 0; i < XN; i++) {
		v[i] = coil__stack_alloc(48 * KiB);
		ASSERT(v[i]);
		*top_byte(v[i]) = 1;
	}
	size_t mapped = coil__stack_mapped_bytes();
	pthread_t t;
	ASSERT_EQ(pthread_create(&t, NULL, free_all, v), 0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(coil__stack_live_count(), live);
	for (int i = 0; i < XN; i++) {
		v[i] = coil__stack_alloc(48 * KiB);
		ASSERT(v[i]);
		*top_byte(v[i]) = 2;
	}
	ASSERT_EQ(coil__stack_mapped_bytes(), mapped);
	free_all(v);
	ASSERT_EQ(coil__stack_live_count(), live);
}

enum { SLOTS = 64, THREADS = 4, ITERS = 20000 };
static _Atomic(coil__stack_t *) slots[SLOTS];

/* Each thread puts a stack tagged with a fresh value into a random slot and
 * frees the one it displaces, after checking that nobody else wrote to it:
 * a stack handed out twice would show a torn tag. */
static void *swap_stacks(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < ITERS; i++) {
		size_t size = i & 1 ? 64 * KiB : 32 * KiB;
		coil__stack_t *s = coil__stack_alloc(size);
		ASSERT(s);
		char tag = (char)rand_r(&seed);
		((volatile char *)s->lo)[0] = tag;
		*top_byte(s) = tag;
		s = atomic_exchange_explicit(&slots[rand_r(&seed) % SLOTS], s,
					     memory_order_acq_rel);
		if (s)
			ASSERT_EQ(((volatile char *)s->lo)[0], *top_byte(s));
		coil__stack_free(s);
	}
	return NULL;
}

TEST(concurrent_alloc_and_free_across_threads_keep_counts)
{
	size_t live = coil__stack_live_count();
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++) {
		void *seed = (void *)(i + 1);
		ASSERT_EQ(pthread_create(&t[i], NULL, swap_stacks, seed), 0);
	}
	for (int i = 0; i < THREADS; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < SLOTS; i++)
		coil__stack_free(atomic_exchange(&slots[i], NULL));
	ASSERT_EQ(coil__stack_live_count(), live);
	coil__stack_trim();
	if (live == 0)
		ASSERT_EQ(coil__stack_mapped_bytes(), 0);
}

TEST_LIST(
	TEST_ENTRY(alloc_gives_writable_memory_of_requested_size),
	TEST_ENTRY(write_below_stack_hits_guard_and_faults),
	TEST_ENTRY(freed_stack_comes_back_from_thread_cache),
	TEST_ENTRY(size_classes_do_not_mix),
	TEST_ENTRY(more_sizes_than_the_thread_cache_holds_still_reuse),
	TEST_ENTRY(many_madvise_guarded_stacks_take_few_mappings),
	TEST_ENTRY(mprotect_guards_work_when_forced),
	TEST_ENTRY(pool_past_high_water_mark_gives_memory_back),
	TEST_ENTRY(trim_unmaps_everything_once_all_stacks_are_free),
	TEST_ENTRY(stacks_freed_on_another_thread_are_reused),
	TEST_ENTRY(concurrent_alloc_and_free_across_threads_keep_counts)
)
