/*
 * tests/race.h: what the race tests (tests/test_race_*.c) share.
 *
 * A race test runs a driver task pinned on worker 0 of a two-worker
 * runtime and hands jobs to a helper task pinned on worker 1
 * (race_drive, helper_go, helper_wait): each round, both sides act at once after a
 * random spin (jitter), so that either may come first, thousands of times.
 * What a test asserts holds whatever the timing; ASan or TSan sees the use
 * after free or the unsynchronised access behind a failure.
 *
 * A file may define RACE_JITTER_BITS (default 15) before including this:
 * its random spins last up to about 2^bits iterations (2^(bits-7) under
 * Valgrind).
 */
#ifndef COIL_TESTS_RACE_H
#define COIL_TESTS_RACE_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "coil/coil.h"
#include "test.h"

#ifndef RACE_JITTER_BITS
#define RACE_JITTER_BITS 15
#endif

static inline bool under_valgrind(void)
{
	return getenv("COIL_VALGRIND") != NULL;
}

/* Under Valgrind one thread runs at a time: a busy wait must hand the CPU
 * over at once. Read by both workers. */
static inline unsigned pause_every(void)
{
	static atomic_uint every;
	unsigned e = atomic_load_explicit(&every, memory_order_relaxed);
	if (!e) {
		e = under_valgrind() ? 1 : 64;
		atomic_store_explicit(&every, e, memory_order_relaxed);
	}
	return e;
}

/* A busy wait's turn: give the CPU away now and then, as the other side's
 * thread may be waiting for one (two cores, shared). */
static inline void spin_pause(unsigned *spins)
{
	if (++*spins % pause_every() == 0)
		sched_yield();
}

static inline uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A random spin, its length spread over several orders of magnitude, as
 * the time the other side takes to start is not known (and far longer
 * under TSan). */
static inline void jitter(uint64_t *s)
{
	uint64_t r = rnd(s);
	unsigned bits = pause_every() == 1 ? RACE_JITTER_BITS - 7 : RACE_JITTER_BITS;
	unsigned n = (1u << (r % bits)) + (unsigned)((r >> 8) % 64);
	for (volatile unsigned i = 0; i < n; i++)
		;
}

/* ---- the helper on worker 1 ---- */

typedef void (*job_fn)(void *arg);

static struct {
	job_fn job;               /* written before seq is bumped */
	void *arg;
	atomic_uint seq;
	atomic_uint done;
	atomic_bool quit;
} helper;

/* The helper's task: runs each job handed to it, after a random spin,
 * until told to quit. */
static inline int helper_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = 7;
	unsigned last = 0;
	for (;;) {
		unsigned s, spins = 0, pauses = 0;
		while ((s = atomic_load_explicit(&helper.seq, memory_order_acquire)) == last) {
			if (atomic_load(&helper.quit))
				return 0;
			/* Let worker 1's loop run what was posted to it and
			 * the callbacks of its futures. */
			if (++spins % 256 == 0)
				ASSERT_EQ(coil_sleep(0), 0);
			spin_pause(&pauses);
		}
		last = s;
		jitter(&rng);
		helper.job(helper.arg);
		atomic_store_explicit(&helper.done, s, memory_order_release);
		/* Run the done-callbacks the job queued on worker 1's loop
		 * now, while the other side of the race is still under way. */
		ASSERT_EQ(coil_sleep(0), 0);
	}
}

static inline void helper_go(job_fn job, void *arg)
{
	helper.job = job;
	helper.arg = arg;
	atomic_fetch_add_explicit(&helper.seq, 1, memory_order_release);
}

/* Waits (yielding, so that worker 0's loop runs) for the helper's job. */
static inline void helper_wait(void)
{
	unsigned s = atomic_load(&helper.seq), spins = 0;
	while (atomic_load_explicit(&helper.done, memory_order_acquire) != s) {
		ASSERT_EQ(coil_sleep(0), 0);
		spin_pause(&spins);
	}
}

/* From a plain thread: runs body(arg) as a task pinned on worker 0 of a new
 * two-worker runtime, with the helper pinned on worker 1, then stops the
 * helper and shuts the runtime down. */
static inline void race_drive(coil_fn body, void *arg)
{
	coil_runtime_t *rt = test_runtime_new(2);
	ASSERT_EQ(coil_runtime_start(rt), 0);
	coil_spawn_opts_t pinned = { .pinned = true };
	atomic_store(&helper.quit, false);
	atomic_store(&helper.seq, 0);
	atomic_store(&helper.done, 0);
	coil_cfuture_t *h = NULL, *d = NULL;
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&h, coil_runtime_loop(rt, 1),
						     helper_main, NULL, &pinned), 0);
	ASSERT_EQ(coil_run_coroutine_threadsafe_opts(&d, coil_runtime_loop(rt, 0),
						     body, arg, &pinned), 0);
	ASSERT_EQ(coil_cfuture_wait(d, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(d);
	atomic_store(&helper.quit, true);
	ASSERT_EQ(coil_cfuture_wait(h, COIL_FOREVER, NULL), 0);
	coil_cfuture_release(h);
	ASSERT_EQ(coil_runtime_shutdown(rt, COIL_FOREVER), 0);
}

/* ---- a future the helper cancels ---- */

/* A future the driver awaits while the helper cancels it (race_cancel_job),
 * and how often its done-callback (race_counted_done) ran. */
typedef struct race_fut {
	coil_future_t *f;
	atomic_int callbacks;
} race_fut_t;

static inline void race_counted_done(coil_future_t *f, void *arg)
{
	race_fut_t *s = arg;
	ASSERT(coil_future_done(f));
	atomic_fetch_add(&s->callbacks, 1);
}

static inline void race_cancel_job(void *arg)
{
	race_fut_t *s = arg;
	coil_future_cancel(s->f, NULL);
}

/* ---- rounds on the driver's side ---- */

/* One round of a test, on worker 0: i counts from 0, rng is the driver's
 * random state (for jitter). */
typedef void (*rounds_fn)(int i, uint64_t *rng);

static rounds_fn race_round;
static int race_nrounds;
static uint64_t race_seed;

static inline int race_rounds_main(void *arg, void **result)
{
	(void)arg;
	(void)result;
	uint64_t rng = race_seed;
	for (int i = 0; i < race_nrounds; i++)
		race_round(i, &rng);
	return 0;
}

/* Runs fn(0 .. rounds - 1) in the driver task of a fresh runtime
 * (race_drive), with random state from seed. */
static inline void race_run_rounds(rounds_fn fn, int rounds, uint64_t seed)
{
	race_round = fn;
	race_nrounds = rounds;
	race_seed = seed;
	race_drive(race_rounds_main, NULL);
}

#endif
