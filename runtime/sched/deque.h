/*
 * runtime/sched/deque.h: the per-worker work-stealing deque.
 *
 * A bounded Chase-Lev deque of pointers (Chase and Lev, SPAA 2005) with the
 * C11 memory orderings of Le, Pop, Cohen and Zappa Nardelli (PPoPP 2013,
 * "Correct and efficient work-stealing for weak memory models"). The owner
 * pushes and pops at the bottom; any thread steals from the top.
 *
 * Who touches what:
 *   bottom  written by the owner only; read by thieves.
 *   top     advanced by thieves (CAS) and by the owner taking the last item
 *           (CAS); read by everyone.
 *   buf[]   slots written by the owner (push), read by everyone; atomic so
 *           that a thief's read of a slot the owner is reusing is not a data
 *           race (the thief's CAS then fails and the value is discarded).
 *
 * Orderings. The paper uses standalone fences; ThreadSanitizer does not model
 * those (DESIGN.md section 3), so each fence is folded into the access next
 * to it, which is at least as strong:
 *   push:  the release fence before `bottom = b + 1` becomes a release store
 *          of bottom: a thief that reads the new bottom with acquire sees the
 *          item written into the slot.
 *   pop:   the seq_cst fence between `bottom = b - 1` and reading top becomes
 *          a seq_cst store and a seq_cst load: the owner's claim on slot b
 *          and a thief's claim through top are ordered in the single total
 *          order, so both cannot miss each other when one item is left.
 *   steal: the acquire load of top followed by a seq_cst fence becomes a
 *          seq_cst load of top, and bottom is read seq_cst after it.
 *   The last item is contended through a seq_cst CAS on top by both sides.
 *
 * The deque is bounded (capacity a power of two): push fails when it is
 * full, and the scheduler then moves half of the deque to the global
 * injection queue (coil__deque_take_oldest from its own top, a chunk per
 * CAS on top, which thieves' claims go through too).
 */
#ifndef COIL_SCHED_DEQUE_H
#define COIL_SCHED_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct coil__deque {
	/* Thieves hammer top; keep it off the owner's line. */
	_Alignas(64) atomic_size_t top;
	_Alignas(64) atomic_size_t bottom;
	size_t mask;              /* capacity - 1; fixed at init */
	_Atomic(void *) *buf;
} coil__deque_t;

/* Result of coil__deque_steal when it lost a race (retry may succeed),
 * distinct from NULL (empty). */
#define COIL__DEQUE_ABORT ((void *)1)

/* Makes an empty deque of `capacity` slots (rounded up to a power of two,
 * at least 2). Returns 0 or -ENOMEM. */
int coil__deque_init(coil__deque_t *q, size_t capacity);
void coil__deque_fini(coil__deque_t *q);

static inline size_t coil__deque_capacity(const coil__deque_t *q)
{
	return q->mask + 1;
}

/* Owner only: pushes x (not NULL) at the bottom. Returns false if full.
 * Sets *was_empty to whether the deque looked empty just before (thieves
 * may have taken its last items since: a hint, see push_local). */
static inline bool coil__deque_push_ex(coil__deque_t *q, void *x, bool *was_empty)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->top, memory_order_acquire);
	if (b - t > q->mask)
		return false;
	*was_empty = b == t;
	atomic_store_explicit(&q->buf[b & q->mask], x, memory_order_relaxed);
	/* Publishes the slot to thieves (their acquire load of bottom). */
	atomic_store_explicit(&q->bottom, b + 1, memory_order_release);
	return true;
}

/* Owner only: pushes x (not NULL) at the bottom. Returns false if full. */
static inline bool coil__deque_push(coil__deque_t *q, void *x)
{
	bool was_empty;
	return coil__deque_push_ex(q, x, &was_empty);
}

/* Owner only: pops from the bottom (LIFO). Returns NULL if empty. */
static inline void *coil__deque_pop(coil__deque_t *q)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed) - 1;
	/* seq_cst store then seq_cst load: the paper's StoreLoad fence. */
	atomic_store_explicit(&q->bottom, b, memory_order_seq_cst);
	size_t t = atomic_load_explicit(&q->top, memory_order_seq_cst);
	if ((ptrdiff_t)(b - t) < 0) {
		/* Empty: restore bottom. */
		atomic_store_explicit(&q->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	void *x = atomic_load_explicit(&q->buf[b & q->mask], memory_order_relaxed);
	if (b != t)
		return x; /* more than one item: no thief can reach slot b */
	/* The last item: race the thieves for it through top. */
	if (!atomic_compare_exchange_strong_explicit(&q->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		x = NULL;
	atomic_store_explicit(&q->bottom, b + 1, memory_order_relaxed);
	return x;
}

/* Owner only: pops the bottom item if it is x (not NULL); returns whether
 * it did. Thieves take from the top: the slot read here is the one the pop
 * takes, or the pop finds the deque empty. */
static inline bool coil__deque_pop_if(coil__deque_t *q, void *x)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed);
	if (b == atomic_load_explicit(&q->top, memory_order_relaxed) ||
	    atomic_load_explicit(&q->buf[(b - 1) & q->mask], memory_order_relaxed) != x)
		return false;
	return coil__deque_pop(q) == x;
}

/* Owner, when no thief can reach q (a runtime of one worker: nobody calls
 * coil__deque_steal_half on it): the pop without the StoreLoad fence and
 * the race for the last item, which only exist against thieves. The owner
 * may still mix it with its own coil__deque_push and coil__deque_steal. */
static inline void *coil__deque_pop_unshared(coil__deque_t *q)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->top, memory_order_relaxed);
	if (b == t)
		return NULL;
	b--;
	void *x = atomic_load_explicit(&q->buf[b & q->mask], memory_order_relaxed);
	atomic_store_explicit(&q->bottom, b, memory_order_relaxed);
	return x;
}

/* Any thread: steals from the top (FIFO). Returns the item, NULL if empty,
 * or COIL__DEQUE_ABORT if it lost a race. */
static inline void *coil__deque_steal(coil__deque_t *q)
{
	size_t t = atomic_load_explicit(&q->top, memory_order_seq_cst);
	size_t b = atomic_load_explicit(&q->bottom, memory_order_seq_cst);
	if ((ptrdiff_t)(b - t) <= 0)
		return NULL;
	void *x = atomic_load_explicit(&q->buf[t & q->mask], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&q->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return COIL__DEQUE_ABORT;
	return x;
}

/*
 * Owner only: takes up to n of the oldest items (from the top, as thieves
 * do) into out[] with one CAS on top, and returns how many (0: empty).
 * Safe where a thief's batch is not (coil__deque_steal_half): the owner
 * is not popping at the bottom meanwhile, and the thieves' own claims of
 * the top go through the same CAS, which fails for the loser. Used to
 * move half of a full deque away (W1's spawner): one locked instruction
 * per batch instead of one per item.
 */
static inline size_t coil__deque_take_oldest(coil__deque_t *q, void **out, size_t n)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->top, memory_order_seq_cst);
	for (;;) {
		if ((ptrdiff_t)(b - t) <= 0)
			return 0;
		size_t k = b - t < n ? b - t : n;
		for (size_t i = 0; i < k; i++)
			out[i] = atomic_load_explicit(&q->buf[(t + i) & q->mask],
						      memory_order_relaxed);
		/* A failed CAS reloads t: a thief took the oldest meanwhile. */
		if (atomic_compare_exchange_strong_explicit(&q->top, &t, t + k,
							    memory_order_seq_cst,
							    memory_order_seq_cst))
			return k;
	}
}

/* Any thread: an estimate of the number of items (exact for the owner when
 * no thief runs). */
static inline size_t coil__deque_len(const coil__deque_t *q)
{
	size_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->top, memory_order_relaxed);
	return (ptrdiff_t)(b - t) > 0 ? b - t : 0;
}

/*
 * Any thread but the owner of dst: steals about half of src's items into
 * dst (whose owner must be the caller), at most `max`. Returns how many
 * moved. Each item is taken with its own CAS: one CAS for several items is
 * not safe against the owner's CAS-free pops of Chase-Lev.
 */
size_t coil__deque_steal_half(coil__deque_t *src, coil__deque_t *dst, size_t max);

#endif
