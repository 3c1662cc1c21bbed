/*
 * runtime/gen/aitertools.c: the tools over async iterators (coil/aiter.h):
 * count, cycle, repeat, accumulate, chain, compress, dropwhile, takewhile,
 * filter, filterfalse, map, starmap, groupby, islice, tee, zip, zip_longest,
 * product and enumerate.
 *
 * Each tool is a struct that embeds its coil_aiter_t first, so that the
 * iterator pointer is the struct pointer, and reads its sources only through
 * coil_aiter_next, which keeps the interface's rules (exhausted stays
 * exhausted, one step at a time). A tool never copies or frees a value: it
 * passes its sources' values on or yields what it computed (see the
 * ownership rules in the header). Where a step may fail after it has taken
 * something it must keep (cycle saving a value, tee buffering one), the
 * memory is reserved before the source is read, so that no value a source
 * gave up is lost to an allocation failure. An error from a source or a
 * callback is returned as it is and leaves the tool able to go on, as
 * Python's itertools do; only what that step had read is dropped.
 *
 * The semantics, including how far each tool reads its sources, are those
 * of the pure-Python equivalents in the itertools documentation (islice's
 * and groupby's are followed line by line). All state belongs to the one
 * consumer that drives the iterators, a task that may move between workers:
 * nothing is kept per thread.
 */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "core.h"
#include "coil/aiter.h"

/* --- helpers ---------------------------------------------------------- */

/* Integer arithmetic on values in pointers, wrapping instead of
 * overflowing (which would be undefined on intptr_t). */
static void *int_add(void *a, void *b)
{
	return (void *)(uintptr_t)((uintptr_t)a + (uintptr_t)b);
}

/* A predicate's verdict: 1, 0 or an error; pred NULL tests the value. */
static int truth(coil_apred_fn pred, void *arg, void *v)
{
	if (!pred)
		return v != NULL;
	int r = pred(arg, v);
	return r < 0 ? r : r != 0;
}

/* A growable array of values, for the tools that keep them. */
typedef struct vec {
	void **a;
	size_t n, cap;
} vec_t;

/* Makes room for one more value. Returns 0 or -ENOMEM. */
static int vec_reserve1(vec_t *v)
{
	if (v->n < v->cap)
		return 0;
	size_t cap = v->cap ? v->cap * 2 : 8;
	if (cap > SIZE_MAX / sizeof(void *))
		return -ENOMEM;
	void **a = coil__malloc(cap * sizeof(void *));
	if (!a)
		return -ENOMEM;
	if (v->n)
		memcpy(a, v->a, v->n * sizeof(void *));
	coil__free(v->a, v->cap * sizeof(void *));
	v->a = a;
	v->cap = cap;
	return 0;
}

static void vec_free(vec_t *v)
{
	coil__free(v->a, v->cap * sizeof(void *));
	v->a = NULL;
	v->n = v->cap = 0;
}

/* Allocates a tool of `size` bytes with its iterator set up. */
static void *tool_new(coil_aiter_t **out, size_t size, coil_aiter_next_fn next,
		      coil_aiter_destroy_fn destroy)
{
	coil_aiter_t *it = coil__calloc(size);
	if (!it)
		return NULL;
	coil_aiter_init(it, next, destroy);
	*out = it;
	return it;
}

/* Checks an array of n sources. */
static bool srcs_ok(coil_aiter_t *const *srcs, size_t n)
{
	if (n && !srcs)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!srcs[i])
			return false;
	return true;
}

#define TOOL_DESTROY(name, type)                                        \
	static void name(coil_aiter_t *it)                             \
	{                                                              \
		coil__free(it, sizeof(type));                          \
	}

/* --- count, repeat ---------------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	void *cur, *step;
} count_t;

static int count_next(coil_aiter_t *it, void **value)
{
	count_t *c = (count_t *)it;
	*value = c->cur;
	c->cur = int_add(c->cur, c->step);
	return 0;
}
TOOL_DESTROY(count_destroy, count_t)

int coil_aiter_count(coil_aiter_t **out, intptr_t start, intptr_t step)
{
	if (!out)
		return -EINVAL;
	count_t *c = tool_new(out, sizeof(*c), count_next, count_destroy);
	if (!c)
		return -ENOMEM;
	c->cur = (void *)start;
	c->step = (void *)step;
	return 0;
}

typedef struct {
	coil_aiter_t it;
	void *value;
	int64_t left; /* COIL_AITER_NONE: forever */
} repeat_t;

static int repeat_next(coil_aiter_t *it, void **value)
{
	repeat_t *r = (repeat_t *)it;
	if (r->left == 0)
		return COIL_EDONE;
	if (r->left > 0)
		r->left--;
	*value = r->value;
	return 0;
}
TOOL_DESTROY(repeat_destroy, repeat_t)

int coil_aiter_repeat(coil_aiter_t **out, void *value, int64_t times)
{
	if (out)
		*out = NULL;
	if (!out || (times < 0 && times != COIL_AITER_NONE))
		return -EINVAL;
	repeat_t *r = tool_new(out, sizeof(*r), repeat_next, repeat_destroy);
	if (!r)
		return -ENOMEM;
	r->value = value;
	r->left = times;
	return 0;
}

/* --- cycle ------------------------------------------------------------ */

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	vec_t saved;
	size_t i;
	bool replay; /* src ended: yield saved[i] round and round */
} cycle_t;

static int cycle_next(coil_aiter_t *it, void **value)
{
	cycle_t *c = (cycle_t *)it;
	if (!c->replay) {
		int rc = vec_reserve1(&c->saved);
		if (rc)
			return rc;
		rc = coil_aiter_next(c->src, value);
		if (rc == 0) {
			c->saved.a[c->saved.n++] = *value;
			return 0;
		}
		if (rc != COIL_EDONE)
			return rc;
		c->replay = true;
	}
	if (!c->saved.n)
		return COIL_EDONE;
	*value = c->saved.a[c->i];
	c->i = (c->i + 1) % c->saved.n;
	return 0;
}

static void cycle_destroy(coil_aiter_t *it)
{
	cycle_t *c = (cycle_t *)it;
	vec_free(&c->saved);
	coil__free(c, sizeof(*c));
}

int coil_aiter_cycle(coil_aiter_t **out, coil_aiter_t *src)
{
	if (out)
		*out = NULL;
	if (!out || !src)
		return -EINVAL;
	cycle_t *c = tool_new(out, sizeof(*c), cycle_next, cycle_destroy);
	if (!c)
		return -ENOMEM;
	c->src = src;
	return 0;
}

/* --- accumulate ------------------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	coil_afold_fn fn;
	void *arg;
	void *acc;
	bool started;
} accumulate_t;

static int accumulate_next(coil_aiter_t *it, void **value)
{
	accumulate_t *a = (accumulate_t *)it;
	void *v;
	int rc = coil_aiter_next(a->src, &v);
	if (rc)
		return rc;
	if (!a->started) {
		a->acc = v;
		a->started = true;
	} else if (a->fn) {
		void *acc;
		rc = a->fn(a->arg, a->acc, v, &acc);
		if (rc)
			return rc;
		a->acc = acc;
	} else {
		a->acc = int_add(a->acc, v);
	}
	*value = a->acc;
	return 0;
}
TOOL_DESTROY(accumulate_destroy, accumulate_t)

int coil_aiter_accumulate(coil_aiter_t **out, coil_aiter_t *src,
			  coil_afold_fn fn, void *arg)
{
	if (out)
		*out = NULL;
	if (!out || !src)
		return -EINVAL;
	accumulate_t *a = tool_new(out, sizeof(*a), accumulate_next,
				   accumulate_destroy);
	if (!a)
		return -ENOMEM;
	a->src = src;
	a->fn = fn;
	a->arg = arg;
	return 0;
}

/* --- chain ------------------------------------------------------------ */

typedef struct {
	coil_aiter_t it;
	size_t n, i;
	coil_aiter_t *srcs[];
} chain_t;

static int chain_next(coil_aiter_t *it, void **value)
{
	chain_t *c = (chain_t *)it;
	while (c->i < c->n) {
		int rc = coil_aiter_next(c->srcs[c->i], value);
		if (rc != COIL_EDONE)
			return rc;
		c->i++;
	}
	return COIL_EDONE;
}

static void chain_destroy(coil_aiter_t *it)
{
	chain_t *c = (chain_t *)it;
	coil__free(c, sizeof(*c) + c->n * sizeof(c->srcs[0]));
}

int coil_aiter_chain(coil_aiter_t **out, coil_aiter_t *const *srcs, size_t n)
{
	if (out)
		*out = NULL;
	if (!out || !srcs_ok(srcs, n) || n > SIZE_MAX / sizeof(void *) / 2)
		return -EINVAL;
	chain_t *c = tool_new(out, sizeof(*c) + n * sizeof(c->srcs[0]),
			      chain_next, chain_destroy);
	if (!c)
		return -ENOMEM;
	c->n = n;
	if (n)
		memcpy(c->srcs, srcs, n * sizeof(c->srcs[0]));
	return 0;
}

/* --- compress --------------------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *data, *selectors;
} compress_t;

static int compress_next(coil_aiter_t *it, void **value)
{
	compress_t *c = (compress_t *)it;
	for (;;) {
		void *d, *s;
		int rc = coil_aiter_next(c->data, &d);
		if (rc)
			return rc;
		rc = coil_aiter_next(c->selectors, &s);
		if (rc)
			return rc;
		if (s) {
			*value = d;
			return 0;
		}
	}
}
TOOL_DESTROY(compress_destroy, compress_t)

int coil_aiter_compress(coil_aiter_t **out, coil_aiter_t *data,
			coil_aiter_t *selectors)
{
	if (out)
		*out = NULL;
	if (!out || !data || !selectors)
		return -EINVAL;
	compress_t *c = tool_new(out, sizeof(*c), compress_next, compress_destroy);
	if (!c)
		return -ENOMEM;
	c->data = data;
	c->selectors = selectors;
	return 0;
}

/* --- dropwhile, takewhile, filter, filterfalse ------------------------ */

enum { PRED_DROPWHILE, PRED_TAKEWHILE, PRED_FILTER, PRED_FILTERFALSE };

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	coil_apred_fn pred;
	void *arg;
	int kind;
	bool settled; /* dropwhile: done dropping; takewhile: done taking */
} pred_t;

static int pred_next(coil_aiter_t *it, void **value)
{
	pred_t *p = (pred_t *)it;
	if (p->kind == PRED_TAKEWHILE && p->settled)
		return COIL_EDONE;
	for (;;) {
		void *v;
		int rc = coil_aiter_next(p->src, &v);
		if (rc)
			return rc;
		if (p->kind == PRED_DROPWHILE && p->settled) {
			*value = v;
			return 0;
		}
		int t = truth(p->pred, p->arg, v);
		if (t < 0)
			return t;
		switch (p->kind) {
		case PRED_DROPWHILE:
			if (t)
				continue;
			p->settled = true;
			break;
		case PRED_TAKEWHILE:
			if (!t) {
				p->settled = true;
				return COIL_EDONE;
			}
			break;
		case PRED_FILTER:
			if (!t)
				continue;
			break;
		default:
			if (t)
				continue;
			break;
		}
		*value = v;
		return 0;
	}
}
TOOL_DESTROY(pred_destroy, pred_t)

static int pred_make(coil_aiter_t **out, coil_aiter_t *src, coil_apred_fn pred,
		     void *arg, int kind)
{
	if (out)
		*out = NULL;
	if (!out || !src)
		return -EINVAL;
	pred_t *p = tool_new(out, sizeof(*p), pred_next, pred_destroy);
	if (!p)
		return -ENOMEM;
	p->src = src;
	p->pred = pred;
	p->arg = arg;
	p->kind = kind;
	return 0;
}

int coil_aiter_dropwhile(coil_aiter_t **out, coil_aiter_t *src,
			 coil_apred_fn pred, void *arg)
{
	return pred_make(out, src, pred, arg, PRED_DROPWHILE);
}

int coil_aiter_takewhile(coil_aiter_t **out, coil_aiter_t *src,
			 coil_apred_fn pred, void *arg)
{
	return pred_make(out, src, pred, arg, PRED_TAKEWHILE);
}

int coil_aiter_filter(coil_aiter_t **out, coil_aiter_t *src,
		      coil_apred_fn pred, void *arg)
{
	return pred_make(out, src, pred, arg, PRED_FILTER);
}

int coil_aiter_filterfalse(coil_aiter_t **out, coil_aiter_t *src,
			   coil_apred_fn pred, void *arg)
{
	return pred_make(out, src, pred, arg, PRED_FILTERFALSE);
}

/* --- map, starmap ----------------------------------------------------- */

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	coil_amap_fn fn;
	coil_astar_fn star;
	void *arg;
} map_t;

static int map_next(coil_aiter_t *it, void **value)
{
	map_t *m = (map_t *)it;
	void *v;
	int rc = coil_aiter_next(m->src, &v);
	if (rc)
		return rc;
	if (m->fn)
		return m->fn(m->arg, v, value);
	const coil_atuple_t *t = v;
	return m->star(m->arg, t ? (void *const *)t->v : NULL, t ? t->n : 0,
		       value);
}
TOOL_DESTROY(map_destroy, map_t)

int coil_aiter_map(coil_aiter_t **out, coil_aiter_t *src, coil_amap_fn fn,
		   void *arg)
{
	if (out)
		*out = NULL;
	if (!out || !src || !fn)
		return -EINVAL;
	map_t *m = tool_new(out, sizeof(*m), map_next, map_destroy);
	if (!m)
		return -ENOMEM;
	m->src = src;
	m->fn = fn;
	m->arg = arg;
	return 0;
}

int coil_aiter_starmap(coil_aiter_t **out, coil_aiter_t *src,
		       coil_astar_fn fn, void *arg)
{
	if (out)
		*out = NULL;
	if (!out || !src || !fn)
		return -EINVAL;
	map_t *m = tool_new(out, sizeof(*m), map_next, map_destroy);
	if (!m)
		return -ENOMEM;
	m->src = src;
	m->star = fn;
	m->arg = arg;
	return 0;
}

/* --- groupby ---------------------------------------------------------- */

/*
 * As the itertools documentation's groupby: the groupby holds the current
 * value and key read from the source (curr) and the key of the group it last
 * handed out (tgt). The group iterator yields curr while its key is tgt,
 * reading the next value after each but the first; the groupby skips values
 * until the key changes. `gen` numbers the groups, so that the group iterator
 * of an earlier group (a step of the groupby failed half way) yields nothing.
 */
typedef struct groupby groupby_t;

typedef struct {
	coil_aiter_t it;
	groupby_t *gb;
	uint64_t gen;
	bool first;
} grouper_t;

struct groupby {
	coil_aiter_t it;
	coil_aiter_t *src;
	coil_amap_fn key;
	coil_aeq_fn eq;
	void *arg;
	void *currkey, *currvalue, *tgtkey;
	bool have_curr, have_tgt;
	uint64_t gen;
	coil_agroup_t pair;
	grouper_t grouper;
};

/* Reads the next value and its key into curr. */
static int groupby_advance(groupby_t *gb)
{
	void *v, *k;
	int rc = coil_aiter_next(gb->src, &v);
	if (rc)
		return rc;
	if (gb->key) {
		rc = gb->key(gb->arg, v, &k);
		if (rc)
			return rc;
	} else {
		k = v;
	}
	gb->currvalue = v;
	gb->currkey = k;
	gb->have_curr = true;
	return 0;
}

/* 1 if curr's key is the target key, 0 if not, or an error. */
static int groupby_same(groupby_t *gb)
{
	if (!gb->have_curr || !gb->have_tgt)
		return 0;
	if (!gb->eq)
		return gb->currkey == gb->tgtkey;
	int r = gb->eq(gb->arg, gb->currkey, gb->tgtkey);
	return r < 0 ? r : r != 0;
}

static int grouper_next(coil_aiter_t *it, void **value)
{
	grouper_t *g = (grouper_t *)it;
	groupby_t *gb = g->gb;
	if (g->gen != gb->gen)
		return COIL_EDONE;
	if (!g->first) {
		int rc = groupby_advance(gb);
		if (rc)
			return rc;
	}
	g->first = false;
	int same = groupby_same(gb);
	if (same <= 0)
		return same < 0 ? same : COIL_EDONE;
	*value = gb->currvalue;
	return 0;
}

static int groupby_next(coil_aiter_t *it, void **value)
{
	groupby_t *gb = (groupby_t *)it;
	gb->gen++;
	for (;;) {
		int same = groupby_same(gb);
		if (same < 0)
			return same;
		if (gb->have_curr && !same)
			break;
		int rc = groupby_advance(gb);
		if (rc)
			return rc;
	}
	gb->tgtkey = gb->currkey;
	gb->have_tgt = true;
	/* The one group iterator starts over for the new group. */
	coil_aiter_init(&gb->grouper.it, grouper_next, NULL);
	gb->grouper.gb = gb;
	gb->grouper.gen = gb->gen;
	gb->grouper.first = true;
	gb->pair.key = gb->tgtkey;
	gb->pair.group = &gb->grouper.it;
	*value = &gb->pair;
	return 0;
}
TOOL_DESTROY(groupby_destroy, groupby_t)

int coil_aiter_groupby(coil_aiter_t **out, coil_aiter_t *src, coil_amap_fn key,
		       coil_aeq_fn eq, void *arg)
{
	if (out)
		*out = NULL;
	if (!out || !src)
		return -EINVAL;
	groupby_t *gb = tool_new(out, sizeof(*gb), groupby_next, groupby_destroy);
	if (!gb)
		return -ENOMEM;
	gb->src = src;
	gb->key = key;
	gb->eq = eq;
	gb->arg = arg;
	coil_aiter_init(&gb->grouper.it, grouper_next, NULL);
	gb->grouper.gb = gb;
	return 0;
}

/* --- islice ----------------------------------------------------------- */

/* CPython's islice_next: cnt counts the values read, next is the index of
 * the next value to yield, stop -1 is None. */
typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	int64_t cnt, next, stop, step;
} islice_t;

static int islice_next(coil_aiter_t *it, void **value)
{
	islice_t *s = (islice_t *)it;
	int rc;
	while (s->cnt < s->next) {
		void *skip;
		rc = coil_aiter_next(s->src, &skip);
		if (rc)
			return rc;
		s->cnt++;
	}
	if (s->stop != -1 && s->cnt >= s->stop)
		return COIL_EDONE;
	rc = coil_aiter_next(s->src, value);
	if (rc)
		return rc;
	s->cnt++;
	int64_t old = s->next;
	s->next = old > INT64_MAX - s->step ? INT64_MAX : old + s->step;
	if (s->stop != -1 && s->next > s->stop)
		s->next = s->stop;
	return 0;
}
TOOL_DESTROY(islice_destroy, islice_t)

int coil_aiter_islice(coil_aiter_t **out, coil_aiter_t *src, int64_t start,
		      int64_t stop, int64_t step)
{
	if (out)
		*out = NULL;
	if (!out || !src || start < 0 || step < 1 ||
	    (stop < 0 && stop != COIL_AITER_NONE))
		return -EINVAL;
	islice_t *s = tool_new(out, sizeof(*s), islice_next, islice_destroy);
	if (!s)
		return -ENOMEM;
	s->src = src;
	s->next = start;
	s->stop = stop;
	s->step = step;
	return 0;
}

/* --- tee -------------------------------------------------------------- */

/*
 * The buffer is a list of nodes from the oldest value some live child has
 * not read yet to an empty node at the tail, where every child that has read
 * everything stands. A child at the tail reads the source, fills the tail
 * node and appends a new empty one. A node's `pending` counts the live
 * children that have not read it; since a child that passed a node passed
 * every older one, pending never decreases towards the tail, and nodes are
 * freed from the head as soon as it reaches 0.
 */
typedef struct tee_node {
	struct tee_node *next;
	void *value;
	size_t pending;
	bool filled;
} tee_node_t;

typedef struct {
	coil_aiter_t *src;
	tee_node_t *head;
	size_t live;
} tee_shared_t;

typedef struct {
	coil_aiter_t it;
	tee_shared_t *sh;
	tee_node_t *pos;
} tee_child_t;

static tee_node_t *tee_node_new(size_t pending)
{
	tee_node_t *n = coil__calloc(sizeof(*n));
	if (n)
		n->pending = pending;
	return n;
}

static void tee_trim(tee_shared_t *sh)
{
	while (sh->head && sh->head->pending == 0 && sh->head->filled) {
		tee_node_t *n = sh->head;
		sh->head = n->next;
		coil__free(n, sizeof(*n));
	}
}

static int tee_next(coil_aiter_t *it, void **value)
{
	tee_child_t *c = (tee_child_t *)it;
	tee_shared_t *sh = c->sh;
	tee_node_t *n = c->pos;
	if (!n->filled) {
		/* The new tail first: once the source gave a value up, there
		 * must be no failure left that could lose it. */
		tee_node_t *tail = tee_node_new(sh->live);
		if (!tail)
			return -ENOMEM;
		void *v;
		int rc = coil_aiter_next(sh->src, &v);
		if (rc) {
			coil__free(tail, sizeof(*tail));
			return rc;
		}
		/* The source's step may have awaited, and another child may
		 * have filled this node meanwhile only if the source let two
		 * steps run at once, which coil_aiter_next refuses. */
		n->value = v;
		n->filled = true;
		n->next = tail;
	}
	*value = n->value;
	c->pos = n->next;
	n->pending--;
	tee_trim(sh);
	return 0;
}

static void tee_destroy(coil_aiter_t *it)
{
	tee_child_t *c = (tee_child_t *)it;
	tee_shared_t *sh = c->sh;
	for (tee_node_t *n = c->pos; n; n = n->next)
		n->pending--;
	sh->live--;
	tee_trim(sh);
	if (!sh->live) {
		while (sh->head) {
			tee_node_t *n = sh->head;
			sh->head = n->next;
			coil__free(n, sizeof(*n));
		}
		coil__free(sh, sizeof(*sh));
	}
	coil__free(c, sizeof(*c));
}

int coil_aiter_tee(coil_aiter_t **outs, size_t n, coil_aiter_t *src)
{
	if (!src || (n && !outs))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		outs[i] = NULL;
	if (!n)
		return 0;
	tee_shared_t *sh = coil__calloc(sizeof(*sh));
	tee_node_t *head = tee_node_new(n);
	if (!sh || !head)
		goto nomem;
	sh->src = src;
	sh->head = head;
	for (size_t i = 0; i < n; i++) {
		tee_child_t *c = tool_new(&outs[i], sizeof(*c), tee_next, tee_destroy);
		if (!c)
			goto nomem;
		c->sh = sh;
		c->pos = head;
		sh->live++;
	}
	return 0;
nomem:
	if (sh && sh->live) {
		/* The children made so far free the rest with the last. */
		head->pending -= n - sh->live;
		for (size_t i = 0; i < n; i++) {
			coil_aiter_destroy(outs[i]);
			outs[i] = NULL;
		}
		return -ENOMEM;
	}
	coil__free(head, sizeof(*head));
	coil__free(sh, sizeof(*sh));
	return -ENOMEM;
}

/* --- zip, zip_longest, enumerate -------------------------------------- */

typedef struct {
	coil_aiter_t it;
	size_t n, size;
	size_t active;       /* zip_longest: sources not ended yet */
	bool longest;
	void *fill;
	coil_atuple_t tup;
	coil_aiter_t **srcs; /* the arrays follow the struct */
	void **vals;
	bool *ended;
} zip_t;

static int zip_next(coil_aiter_t *it, void **value)
{
	zip_t *z = (zip_t *)it;
	if (!z->n || (z->longest && !z->active))
		return COIL_EDONE;
	for (size_t i = 0; i < z->n; i++) {
		if (z->longest && z->ended[i]) {
			z->vals[i] = z->fill;
			continue;
		}
		int rc = coil_aiter_next(z->srcs[i], &z->vals[i]);
		if (rc == COIL_EDONE && z->longest) {
			z->ended[i] = true;
			z->vals[i] = z->fill;
			if (!--z->active)
				return COIL_EDONE;
			continue;
		}
		if (rc)
			return rc;
	}
	z->tup.n = z->n;
	z->tup.v = z->vals;
	*value = &z->tup;
	return 0;
}

static void zip_destroy(coil_aiter_t *it)
{
	coil__free(it, ((zip_t *)it)->size);
}

static int zip_make(coil_aiter_t **out, coil_aiter_t *const *srcs, size_t n,
		    bool longest, void *fill)
{
	if (out)
		*out = NULL;
	if (!out || !srcs_ok(srcs, n) || n > SIZE_MAX / 64)
		return -EINVAL;
	size_t size = sizeof(zip_t) + n * (2 * sizeof(void *) + sizeof(bool));
	zip_t *z = tool_new(out, size, zip_next, zip_destroy);
	if (!z)
		return -ENOMEM;
	z->n = n;
	z->size = size;
	z->active = n;
	z->longest = longest;
	z->fill = fill;
	z->srcs = (coil_aiter_t **)(z + 1);
	z->vals = (void **)(z->srcs + n);
	z->ended = (bool *)(z->vals + n);
	if (n)
		memcpy(z->srcs, srcs, n * sizeof(*srcs));
	return 0;
}

int coil_aiter_zip(coil_aiter_t **out, coil_aiter_t *const *srcs, size_t n)
{
	return zip_make(out, srcs, n, false, NULL);
}

int coil_aiter_zip_longest(coil_aiter_t **out, coil_aiter_t *const *srcs,
			   size_t n, void *fill)
{
	return zip_make(out, srcs, n, true, fill);
}

typedef struct {
	coil_aiter_t it;
	coil_aiter_t *src;
	void *i;
	void *vals[2];
	coil_atuple_t tup;
} enumerate_t;

static int enumerate_next(coil_aiter_t *it, void **value)
{
	enumerate_t *e = (enumerate_t *)it;
	void *v;
	int rc = coil_aiter_next(e->src, &v);
	if (rc)
		return rc;
	e->vals[0] = e->i;
	e->vals[1] = v;
	e->i = int_add(e->i, (void *)1);
	e->tup.n = 2;
	e->tup.v = e->vals;
	*value = &e->tup;
	return 0;
}
TOOL_DESTROY(enumerate_destroy, enumerate_t)

int coil_aiter_enumerate(coil_aiter_t **out, coil_aiter_t *src, intptr_t start)
{
	if (out)
		*out = NULL;
	if (!out || !src)
		return -EINVAL;
	enumerate_t *e = tool_new(out, sizeof(*e), enumerate_next,
				  enumerate_destroy);
	if (!e)
		return -ENOMEM;
	e->src = src;
	e->i = (void *)start;
	return 0;
}

/* --- product ---------------------------------------------------------- */

/*
 * The first step reads each source into its pool, source by source; a
 * failure leaves what was read in place and the next step carries on from
 * there. Then an odometer of indexes walks the pools, the last fastest.
 */
typedef struct {
	coil_aiter_t it;
	size_t n, size;
	size_t loaded;       /* pools read to the end so far */
	bool started;        /* the first tuple went out */
	bool over;
	coil_atuple_t tup;
	coil_aiter_t **srcs; /* the arrays follow the struct */
	vec_t *pools;
	size_t *idx;
	void **vals;
} product_t;

static int product_load(product_t *p)
{
	while (p->loaded < p->n) {
		vec_t *pool = &p->pools[p->loaded];
		for (;;) {
			int rc = vec_reserve1(pool);
			if (rc)
				return rc;
			void *v;
			rc = coil_aiter_next(p->srcs[p->loaded], &v);
			if (rc == COIL_EDONE)
				break;
			if (rc)
				return rc;
			pool->a[pool->n++] = v;
		}
		p->loaded++;
	}
	return 0;
}

static int product_next(coil_aiter_t *it, void **value)
{
	product_t *p = (product_t *)it;
	if (p->over)
		return COIL_EDONE;
	int rc = product_load(p);
	if (rc)
		return rc;
	if (!p->started) {
		p->started = true;
		for (size_t i = 0; i < p->n; i++) {
			if (!p->pools[i].n) {
				p->over = true;
				return COIL_EDONE;
			}
		}
	} else {
		size_t i = p->n;
		for (;;) {
			if (i == 0) {
				p->over = true;
				return COIL_EDONE;
			}
			i--;
			if (++p->idx[i] < p->pools[i].n)
				break;
			p->idx[i] = 0;
		}
	}
	for (size_t i = 0; i < p->n; i++)
		p->vals[i] = p->pools[i].a[p->idx[i]];
	p->tup.n = p->n;
	p->tup.v = p->vals;
	*value = &p->tup;
	return 0;
}

static void product_destroy(coil_aiter_t *it)
{
	product_t *p = (product_t *)it;
	for (size_t i = 0; i < p->n; i++)
		vec_free(&p->pools[i]);
	coil__free(p, p->size);
}

int coil_aiter_product(coil_aiter_t **out, coil_aiter_t *const *srcs, size_t n)
{
	if (out)
		*out = NULL;
	if (!out || !srcs_ok(srcs, n) || n > SIZE_MAX / 128)
		return -EINVAL;
	size_t size = sizeof(product_t) +
		      n * (sizeof(void *) + sizeof(vec_t) + sizeof(size_t) +
			   sizeof(void *));
	product_t *p = tool_new(out, size, product_next, product_destroy);
	if (!p)
		return -ENOMEM;
	p->n = n;
	p->size = size;
	p->pools = (vec_t *)(p + 1);
	p->srcs = (coil_aiter_t **)(p->pools + n);
	p->idx = (size_t *)(p->srcs + n);
	p->vals = (void **)(p->idx + n);
	if (n)
		memcpy(p->srcs, srcs, n * sizeof(*srcs));
	return 0;
}
