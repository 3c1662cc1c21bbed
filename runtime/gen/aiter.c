/*
 * runtime/gen/aiter.c: the async iterator interface (see coil/aiter.h), its
 * adapters from arrays and plain C iterators, and coil_alist.
 *
 * coil_aiter_next wraps every implementation's next with the rules the
 * header promises, so that no tool has to keep them itself:
 *  - exhausted stays exhausted (AITER_DONE, set when next returns
 *    COIL_EDONE);
 *  - one step at a time (AITER_RUNNING while next runs, which may be across
 *    an await of the calling task): a second caller gets COIL_EINVALSTATE
 *    instead of entering next while its state is half updated;
 *  - a destroy that arrives while a step runs is deferred (AITER_DOOMED)
 *    to the end of that step, because the step's frames still use the
 *    iterator.
 * Nothing here suspends by itself: an iterator's next awaits, if it does,
 * in the calling task. The flags are read and changed with atomic
 * compare-and-swap only: a destroy may come from a task on another worker
 * while the step ends, and the step's clearing of AITER_RUNNING and the
 * destroy's AITER_DOOMED must see each other: with plain read-modify-
 * writes the doom could be lost (the iterator never freed), or the destroy
 * could free the iterator between the step's clearing of the flag and its
 * look for the doom.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "coil/aiter.h"

enum {
	AITER_DONE = 1u << 0,
	AITER_RUNNING = 1u << 1,
	AITER_DOOMED = 1u << 2
};

/* Sets AITER_RUNNING unless the iterator is done or running: returns 0,
 * COIL_EDONE or COIL_EINVALSTATE. */
static int aiter_enter(coil_aiter_t *it)
{
	unsigned f = __atomic_load_n(&it->flags, __ATOMIC_ACQUIRE);
	if (!coil__mt() && !(f & (AITER_DONE | AITER_RUNNING))) {
		/* One thread touches it (core.h): no compare-and-swap. */
		__atomic_store_n(&it->flags, f | AITER_RUNNING, __ATOMIC_RELAXED);
		return 0;
	}
	for (;;) {
		if (f & AITER_DONE)
			return COIL_EDONE;
		if (f & AITER_RUNNING)
			return COIL_EINVALSTATE;
		if (__atomic_compare_exchange_n(&it->flags, &f, f | AITER_RUNNING,
						true, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return 0;
	}
}

/* Ends a step in one atomic change (AITER_RUNNING off, AITER_DONE on if
 * done): returns whether a destroy came meanwhile, which is then the
 * caller's to run. Otherwise it must not touch it again, as a destroy from
 * another worker may free it as soon as the change is made. */
static bool aiter_leave(coil_aiter_t *it, bool done)
{
	unsigned f = __atomic_load_n(&it->flags, __ATOMIC_ACQUIRE);
	if (!coil__mt()) {
		__atomic_store_n(&it->flags, (f & ~AITER_RUNNING) | (done ? AITER_DONE : 0),
				 __ATOMIC_RELAXED);
		return f & AITER_DOOMED;
	}
	for (;;) {
		unsigned to = (f & ~AITER_RUNNING) | (done ? AITER_DONE : 0);
		if (__atomic_compare_exchange_n(&it->flags, &f, to, true,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return f & AITER_DOOMED;
	}
}

int coil_aiter_next(coil_aiter_t *it, void **value)
{
	void *v = NULL;
	int rc;

	if (!it || !it->next) {
		rc = -EINVAL;
	} else if ((rc = aiter_enter(it)) == 0) {
		rc = it->next(it, &v);
		if (aiter_leave(it, rc == COIL_EDONE)) {
			it->destroy(it);
			rc = COIL_ECLOSED;
		} else if (rc > 0) {
			rc = 0;
		}
	}
	if (value)
		*value = rc == 0 ? v : NULL;
	return rc;
}

void coil_aiter_destroy(coil_aiter_t *it)
{
	if (!it || !it->destroy)
		return;
	unsigned f = __atomic_load_n(&it->flags, __ATOMIC_ACQUIRE);
	while (f & AITER_RUNNING) {
		/* The step frees it when it ends; if it ended first, the
		 * exchange fails and the loop sees it over. */
		if (__atomic_compare_exchange_n(&it->flags, &f, f | AITER_DOOMED,
						true, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return;
	}
	it->destroy(it);
}

/* --- from an array ---------------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	void *const *items;
	size_t n, i;
} array_iter_t;

static int array_next(coil_aiter_t *it, void **value)
{
	array_iter_t *a = (array_iter_t *)it;
	if (a->i >= a->n)
		return COIL_EDONE;
	*value = a->items[a->i++];
	return 0;
}

static void array_destroy(coil_aiter_t *it)
{
	coil__free(it, sizeof(array_iter_t));
}

int coil_aiter_from_array(coil_aiter_t **out, void *const *items, size_t n)
{
	if (!out || (!items && n))
		return -EINVAL;
	array_iter_t *a = coil__malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	coil_aiter_init(&a->it, array_next, array_destroy);
	a->items = items;
	a->n = n;
	a->i = 0;
	*out = &a->it;
	return 0;
}

/* --- from a plain iterator -------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	coil_aiter_fn fn;
	void *arg;
} fn_iter_t;

static int fn_next(coil_aiter_t *it, void **value)
{
	fn_iter_t *f = (fn_iter_t *)it;
	return f->fn(f->arg, value);
}

static void fn_destroy(coil_aiter_t *it)
{
	coil__free(it, sizeof(fn_iter_t));
}

int coil_aiter_from_fn(coil_aiter_t **out, coil_aiter_fn fn, void *arg)
{
	if (!out || !fn)
		return -EINVAL;
	fn_iter_t *f = coil__malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	coil_aiter_init(&f->it, fn_next, fn_destroy);
	f->fn = fn;
	f->arg = arg;
	*out = &f->it;
	return 0;
}

/* --- alist ------------------------------------------------------------ */

/*
 * The arrays of coil_alist carry their capacity in a hidden slot before the
 * first item, so that coil_alist_free can hand the allocator the size it
 * wants (jemalloc's sized free) without the caller keeping it.
 */
static void **list_alloc(size_t cap)
{
	if (cap > SIZE_MAX / sizeof(void *) - 1)
		return NULL;
	void **p = coil__malloc((cap + 1) * sizeof(void *));
	if (!p)
		return NULL;
	p[0] = (void *)(uintptr_t)cap;
	return p + 1;
}

void coil_alist_free(void **items)
{
	if (!items)
		return;
	void **p = items - 1;
	size_t cap = (size_t)(uintptr_t)p[0];
	coil__free(p, (cap + 1) * sizeof(void *));
}

int coil_alist(coil_aiter_t *it, void ***items, size_t *len)
{
	if (items)
		*items = NULL;
	if (len)
		*len = 0;
	if (!it || !items || !len)
		return -EINVAL;
	size_t cap = 8, n = 0;
	void **a = list_alloc(cap);
	if (!a)
		return -ENOMEM;
	for (;;) {
		void *v;
		int rc = coil_aiter_next(it, &v);
		if (rc == COIL_EDONE)
			break;
		if (rc) {
			coil_alist_free(a);
			return rc;
		}
		if (n == cap) {
			void **b = cap > SIZE_MAX / 2 ? NULL : list_alloc(cap * 2);
			if (!b) {
				coil_alist_free(a);
				return -ENOMEM;
			}
			memcpy(b, a, n * sizeof(void *));
			coil_alist_free(a);
			a = b;
			cap *= 2;
		}
		a[n++] = v;
	}
	*items = a;
	*len = n;
	return 0;
}
