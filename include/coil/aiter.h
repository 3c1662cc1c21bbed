/*
 * coil/aiter.h: the async iterator interface and the aitertools over it.
 *
 * An async iterator is anything with a next function that may await:
 * embed a coil_aiter_t in a struct (usually first), fill it with
 * coil_aiter_init(), and coil_aiter_next() calls your next. next returns 0
 * with a value, COIL_EDONE at the end (StopAsyncIteration) or an error. The
 * iterators made here follow the tools of Python's itertools and of the
 * aitertools package the asyncio tutorial lists (aiter, alist, atuple,
 * count, cycle, repeat, accumulate, chain, compress, dropwhile, filterfalse,
 * groupby, islice, starmap, takewhile, tee, zip_longest, product), plus
 * filter, map, zip and enumerate. Generators are async iterators too
 * (coil_gen_aiter in coil/gen.h).
 *
 *     // [i async for i in ticker if i % 2]
 *     coil_aiter_t *odd;
 *     void **items;
 *     size_t n;
 *     coil_aiter_filter(&odd, coil_gen_aiter(ticker), is_odd, NULL);
 *     rc = coil_alist(odd, &items, &n);
 *     coil_aiter_destroy(odd);
 *
 * Values are void *. Integers travel in the pointer ((void *)(intptr_t)i,
 * read back with (intptr_t)v): count, enumerate's index, accumulate's
 * default sum and the truth tests below use that convention. A value is true
 * when it is not NULL (so an integer 0 is false, as in Python).
 *
 * Ownership of iterators: each function that makes an iterator gives the
 * caller one to free with coil_aiter_destroy(). An iterator borrows the
 * iterators it reads from (its sources): they must outlive it and are not
 * destroyed with it; destroy never touches a source. The exceptions, owned by
 * their parent and never destroyed by the caller: coil_gen_aiter()'s and
 * groupby's group iterators.
 *
 * Ownership of values: borrowed through the chain. No tool copies, owns or
 * frees a value. A tool hands on either its source's values unchanged (they
 * live as long as their producer keeps them: an array's items as long as the
 * array, a generator's as its body says), or values it computes: count,
 * repeat, accumulate, map and starmap yield what the arithmetic or the
 * callback returns, and a callback that allocates a value decides who frees
 * it. Tuples (zip, zip_longest, product, enumerate) and groups (groupby) are
 * storage owned by the tool, valid until its next call of next or its
 * destroy: copy what you keep. Tools that hold values across several steps
 * of their source (cycle, tee, groupby, product, coil_alist) need stable
 * values, which stay valid after the source's next step: integers, pointers
 * into data that lives on, not another tool's tuples.
 *
 * Callbacks (predicates, key and map functions) are C functions with a user
 * argument. They run in the task that calls next and may await.
 *
 * Iterators keep these rules, whoever implements next: once next returned
 * COIL_EDONE, coil_aiter_next returns COIL_EDONE without calling it again;
 * while a step runs (suspended in an await, say), another call of the same
 * iterator returns COIL_EINVALSTATE ("already running") instead of entering
 * next twice. An error from a source or a callback is returned by the tool
 * and does not end it: a later call reads on (as Python's itertools do); a
 * partly built tuple is dropped.
 *
 * Threads: an iterator is used by one consumer at a time: one task, or
 * plain code of one thread (the iterators of one tee, which share a buffer,
 * count as one). In a runtime that task may move between workers between
 * and during steps: an iterator keeps no per-thread state.
 */
#ifndef COIL_AITER_H
#define COIL_AITER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coil_aiter coil_aiter_t;

/* The next step of an iterator: 0 and *value, COIL_EDONE, or an error.
 * value is never NULL. May await. */
typedef int (*coil_aiter_next_fn)(coil_aiter_t *self, void **value);
/* Frees the iterator (the struct that embeds it). May be NULL: nothing to
 * free. Must not await. */
typedef void (*coil_aiter_destroy_fn)(coil_aiter_t *self);

struct coil_aiter {
	coil_aiter_next_fn next;
	coil_aiter_destroy_fn destroy;
	unsigned flags; /* coil's own bookkeeping, set by coil_aiter_init */
};

/* Fills an iterator you implement. */
static inline void coil_aiter_init(coil_aiter_t *it, coil_aiter_next_fn next,
				   coil_aiter_destroy_fn destroy)
{
	it->next = next;
	it->destroy = destroy;
	it->flags = 0;
}

/* Python's None where a count may be unbounded: islice's stop, repeat's
 * times. */
#define COIL_AITER_NONE ((int64_t)-1)

/* A tuple of values (zip, zip_longest, product, enumerate; starmap's
 * argument lists). */
typedef struct coil_atuple {
	size_t n;
	void **v;
} coil_atuple_t;

/* A group of groupby: its key and an iterator over its values. */
typedef struct coil_agroup {
	void *key;
	coil_aiter_t *group;
} coil_agroup_t;

/* A predicate: returns 1 (true), 0 (false) or a negative error. */
typedef int (*coil_apred_fn)(void *arg, void *value);
/* A function of one value (map, groupby's key): writes *out, returns 0 or
 * an error. */
typedef int (*coil_amap_fn)(void *arg, void *value, void **out);
/* A function of an accumulated value and the next one (accumulate). */
typedef int (*coil_afold_fn)(void *arg, void *acc, void *value, void **out);
/* A function of an argument list (starmap). */
typedef int (*coil_astar_fn)(void *arg, void *const *args, size_t nargs,
			     void **out);
/* Equality of two keys (groupby): 1 equal, 0 not, or a negative error. */
typedef int (*coil_aeq_fn)(void *arg, void *a, void *b);
/* A plain iterator: 0 and *value, COIL_EDONE at the end, or an error. */
typedef int (*coil_aiter_fn)(void *arg, void **value);

/*
 * __anext__: runs one step of it. Returns 0 and writes the value to *value
 * (if not NULL), COIL_EDONE at the end (and every call after it),
 * COIL_EINVALSTATE if a step of it is already running, -EINVAL if it is
 * NULL, or next's error. On any return but 0, *value is set to NULL. From
 * the iterator's thread, inside a task when it awaits.
 */
COIL_API int coil_aiter_next(coil_aiter_t *it, void **value);

/*
 * Frees an iterator through its destroy function (not its sources). NULL is
 * allowed. An iterator destroyed while a step of it runs is freed when that
 * step returns, which then returns COIL_ECLOSED. The destroy may come from
 * another task, on another worker, while the step is suspended or ending:
 * the iterator is then freed exactly once, by the step or by the destroy,
 * and the step returns its value (destroyed after it) or COIL_ECLOSED.
 */
COIL_API void coil_aiter_destroy(coil_aiter_t *it);

/* `async for (v) in (it)`: as COIL_AFOR (coil/gen.h) over an iterator. */
#define COIL_AITER_FOR(v, it, rc)                                           \
	for (void *coil_afor_v_ = NULL;                                     \
	     ((rc) = coil_aiter_next((it), &coil_afor_v_)) == 0 &&          \
	     ((v) = coil_afor_v_, (void)(v), 1);)

/* --- making iterators ------------------------------------------------- */

/*
 * aiter(list): an iterator over items[0..n-1], borrowed (the array must
 * outlive the iterator; it is not copied). items may be NULL when n is 0.
 * Returns 0, -EINVAL or -ENOMEM. Every function below returns the same.
 */
COIL_API int coil_aiter_from_array(coil_aiter_t **out, void *const *items,
				   size_t n);

/*
 * aiter(iterable) for a plain C iterator: each step calls fn(arg, &value),
 * which returns 0 with a value, COIL_EDONE at the end, or an error.
 */
COIL_API int coil_aiter_from_fn(coil_aiter_t **out, coil_aiter_fn fn,
				void *arg);

/*
 * alist / atuple: runs it to its end and collects its values into a new
 * array; *items gets the array (never NULL on success; free it with
 * coil_alist_free) and *len its length. Returns 0; or its error (not
 * COIL_EDONE, which is the normal end), -EINVAL or -ENOMEM, and then *items
 * is NULL and *len 0. In C a tuple is the same array: there is no separate
 * atuple.
 */
COIL_API int coil_alist(coil_aiter_t *it, void ***items, size_t *len);

/* Frees an array from coil_alist (not the values). NULL is allowed. */
COIL_API void coil_alist_free(void **items);

/* --- infinite iterators ----------------------------------------------- */

/* count(start, step): start, start + step, ... as integers. */
COIL_API int coil_aiter_count(coil_aiter_t **out, intptr_t start,
			      intptr_t step);

/* cycle(src): src's values, then the same values again and again (saved as
 * src yields them). Ends at once if src is empty. */
COIL_API int coil_aiter_cycle(coil_aiter_t **out, coil_aiter_t *src);

/* repeat(value, times): value `times` times, or forever when times is
 * COIL_AITER_NONE. Other negative counts are -EINVAL. */
COIL_API int coil_aiter_repeat(coil_aiter_t **out, void *value,
			       int64_t times);

/* --- iterators that end with the shortest input ----------------------- */

/* accumulate(src, fn): the running fold of src: v0, fn(v0, v1),
 * fn(fn(v0, v1), v2), ... fn NULL adds integers (operator.add). */
COIL_API int coil_aiter_accumulate(coil_aiter_t **out, coil_aiter_t *src,
				   coil_afold_fn fn, void *arg);

/* chain(*srcs): the values of srcs[0], then of srcs[1], ... The array of n
 * sources is copied; the sources are borrowed. */
COIL_API int coil_aiter_chain(coil_aiter_t **out, coil_aiter_t *const *srcs,
			      size_t n);

/* compress(data, selectors): the values of data whose selector (read in step
 * with it) is true. Ends when either ends. */
COIL_API int coil_aiter_compress(coil_aiter_t **out, coil_aiter_t *data,
				 coil_aiter_t *selectors);

/* dropwhile(pred, src): skips values while pred is true, then yields the
 * rest without testing them. pred NULL tests the value itself. */
COIL_API int coil_aiter_dropwhile(coil_aiter_t **out, coil_aiter_t *src,
				  coil_apred_fn pred, void *arg);

/* takewhile(pred, src): yields values while pred is true, and ends at the
 * first false one (which is consumed). pred NULL tests the value itself. */
COIL_API int coil_aiter_takewhile(coil_aiter_t **out, coil_aiter_t *src,
				  coil_apred_fn pred, void *arg);

/* filter(pred, src): the values for which pred is true. pred NULL tests the
 * value itself (filter(None, ...)). */
COIL_API int coil_aiter_filter(coil_aiter_t **out, coil_aiter_t *src,
			       coil_apred_fn pred, void *arg);

/* filterfalse(pred, src): the values for which pred is false. pred NULL
 * tests the value itself. */
COIL_API int coil_aiter_filterfalse(coil_aiter_t **out, coil_aiter_t *src,
				    coil_apred_fn pred, void *arg);

/* map(fn, src): fn(value) for each value of src. fn is required. */
COIL_API int coil_aiter_map(coil_aiter_t **out, coil_aiter_t *src,
			    coil_amap_fn fn, void *arg);

/*
 * starmap(fn, src): fn(*args) for each value of src. In C each value of src
 * is a pointer to a coil_atuple_t holding the argument list (as zip and
 * product yield, or your own array of tuples); fn gets its n values. A NULL
 * value is an empty argument list. fn is required.
 */
COIL_API int coil_aiter_starmap(coil_aiter_t **out, coil_aiter_t *src,
				coil_astar_fn fn, void *arg);

/*
 * groupby(src, key): yields, for each run of consecutive values with equal
 * keys, a coil_agroup_t * (owned by the groupby): the run's key and an
 * iterator over the run's values, which reads from the same source. Both are
 * valid until the groupby's next step, which skips what is left of the
 * group; the group iterator belongs to the groupby (do not destroy it).
 * key NULL uses the value itself; eq NULL compares keys as pointers
 * (integers compare by value). Keys and values must be stable (see above).
 */
COIL_API int coil_aiter_groupby(coil_aiter_t **out, coil_aiter_t *src,
				coil_amap_fn key, coil_aeq_fn eq, void *arg);

/*
 * islice(src, start, stop, step): the values of src at indexes start,
 * start + step, ... below stop (COIL_AITER_NONE: no stop). It reads no
 * further than it needs: nothing past stop - 1. start >= 0, step >= 1, stop
 * >= 0 or COIL_AITER_NONE, else -EINVAL. islice(src, stop) is (0, stop, 1).
 */
COIL_API int coil_aiter_islice(coil_aiter_t **out, coil_aiter_t *src,
			       int64_t start, int64_t stop, int64_t step);

/*
 * tee(src, n): n independent iterators over the values of src, written to
 * outs[0..n-1] (each destroyed by the caller, in any order). Values one
 * iterator has read and another not yet are buffered (so they must be
 * stable); the buffer holds only those. Once made, src must be read only
 * through them. n 0 makes none. On -ENOMEM every outs[i] is NULL.
 */
COIL_API int coil_aiter_tee(coil_aiter_t **outs, size_t n, coil_aiter_t *src);

/*
 * zip(*srcs): tuples of one value from each source, in order, until any
 * source ends (the values already read from the others in that last round
 * are dropped, as Python does). n 0 yields nothing. Each tuple is a
 * coil_atuple_t * owned by the zip (see above).
 */
COIL_API int coil_aiter_zip(coil_aiter_t **out, coil_aiter_t *const *srcs,
			    size_t n);

/* zip_longest(*srcs, fillvalue=fill): as zip, until every source has ended,
 * with `fill` in place of the values of those that have. */
COIL_API int coil_aiter_zip_longest(coil_aiter_t **out,
				    coil_aiter_t *const *srcs, size_t n,
				    void *fill);

/* --- combinatorics ---------------------------------------------------- */

/*
 * product(*srcs): the cartesian product, as tuples (coil_atuple_t *, owned by
 * the product) in lexicographic order, the last source varying fastest. The
 * first step reads every source to its end (they must be finite and their
 * values stable). An empty source makes the product empty; n 0 yields one
 * empty tuple.
 */
COIL_API int coil_aiter_product(coil_aiter_t **out, coil_aiter_t *const *srcs,
				size_t n);

/* enumerate(src, start): tuples (coil_atuple_t *, owned by the enumerate)
 * of two values: the index as an integer, from start, and src's value. */
COIL_API int coil_aiter_enumerate(coil_aiter_t **out, coil_aiter_t *src,
				  intptr_t start);

#ifdef __cplusplus
}
#endif
#endif /* COIL_AITER_H */
