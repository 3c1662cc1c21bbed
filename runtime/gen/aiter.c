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
 * in the calling task. All state belongs to the thread that drives the
 * iterator (its loop's); use across workers arrives with the multi-core
 * scheduler.
 */
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

int coil_aiter_next(coil_aiter_t *it, void **value)
{
	void *v = NULL;
	int rc;

	if (!it || !it->next) {
		rc = -EINVAL;
	} else if (it->flags & AITER_DONE) {
		rc = COIL_EDONE;
	} else if (it->flags & AITER_RUNNING) {
		rc = COIL_EINVALSTATE;
	} else {
		it->flags |= AITER_RUNNING;
		rc = it->next(it, &v);
		it->flags &= ~AITER_RUNNING;
		if (it->flags & AITER_DOOMED) {
			it->destroy(it);
			rc = COIL_ECLOSED;
		} else if (rc == COIL_EDONE) {
			it->flags |= AITER_DONE;
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
	if (it->flags & AITER_RUNNING) {
		it->flags |= AITER_DOOMED;
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
